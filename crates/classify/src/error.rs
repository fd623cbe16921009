//! The classified error every Seawall layer returns, and helpers over `source()` chains.

use std::error::Error as StdError;
use std::fmt;

use crate::{BoxError, Class, Failure, FailureKind};

/// An error together with its [`Class`].
///
/// [`ClassifyLayer`](crate::ClassifyLayer) turns a client's errors into this type, and every
/// Seawall layer that adds a failure mode returns its own error (such as an attempt timeout's
/// `Elapsed`) wrapped in it. Outer layers and handlers then read the class in O(1) with
/// [`Error::class`], and the original error stays reachable through [`Error::source_ref`],
/// [`std::error::Error::source`] and [`cause_ref`].
///
/// `Display` shows the source error's message unchanged; the class is data, not text.
///
/// ```
/// use seawall_classify::{Class, Error, FailureKind, RetryHint};
///
/// let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let err = Error::new(Class::failure(FailureKind::Connect, RetryHint::Retry), io);
/// assert_eq!(err.class().kind(), Some(FailureKind::Connect));
/// assert!(err.is::<std::io::Error>());
/// ```
pub struct Error {
    class: Class,
    source: BoxError,
}

impl Error {
    /// Wraps `source` with the class it was given.
    pub fn new(class: Class, source: impl Into<BoxError>) -> Self {
        Error {
            class,
            source: source.into(),
        }
    }

    /// The class of this error.
    #[must_use]
    pub fn class(&self) -> Class {
        self.class
    }

    /// The failure, if the class is one (it is for every error Seawall produces).
    #[must_use]
    pub fn failure(&self) -> Option<Failure> {
        self.class.as_failure()
    }

    /// The failure kind, if the class is a failure.
    #[must_use]
    pub fn kind(&self) -> Option<FailureKind> {
        self.class.kind()
    }

    /// The wrapped error.
    #[must_use]
    pub fn source_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// Unwraps the wrapped error.
    #[must_use]
    pub fn into_source(self) -> BoxError {
        self.source
    }

    /// `true` when the wrapped error itself is an `E` (not looking further down the chain;
    /// see [`is_caused_by`] for that).
    #[must_use]
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.source.is::<E>()
    }

    /// The wrapped error as an `E`, if it is one.
    #[must_use]
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }

    /// Replaces the class, keeping the source.
    #[must_use]
    pub fn with_class(self, class: Class) -> Self {
        Error { class, ..self }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("class", &self.class)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// Iterates over an error and its `source()` chain, outermost first. An `std::io::Error`
/// wrapping another error (`io::Error::other(e)`) is followed by `e` itself.
///
/// ```
/// use seawall_classify::chain;
///
/// let io = std::io::Error::other("disk on fire");
/// assert_eq!(chain(&io).count(), 2);
/// ```
pub fn chain<'a>(error: &'a (dyn StdError + 'static)) -> Chain<'a> {
    Chain { next: Some(error) }
}

/// The iterator returned by [`chain`].
#[derive(Debug, Clone)]
pub struct Chain<'a> {
    next: Option<&'a (dyn StdError + 'static)>,
}

impl<'a> Iterator for Chain<'a> {
    type Item = &'a (dyn StdError + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next?;
        // `io::Error::source` skips the error it wraps and returns that error's source;
        // `get_ref` yields the wrapped error itself, so nothing in the chain is missed.
        self.next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
        Some(current)
    }
}

/// The first error of type `E` in `error`'s `source()` chain, itself included.
///
/// ```
/// use seawall_classify::{cause_ref, Class, Error};
///
/// let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// let err = Error::new(Class::UNKNOWN_ERROR, io);
/// let found = cause_ref::<std::io::Error>(&err).unwrap();
/// assert_eq!(found.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[must_use]
pub fn cause_ref<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    chain(error).find_map(|e| e.downcast_ref::<E>())
}

/// `true` when an error of type `E` is anywhere in `error`'s `source()` chain, itself
/// included.
///
/// ```
/// use seawall_classify::is_caused_by;
///
/// let io = std::io::Error::other(std::fmt::Error);
/// assert!(is_caused_by::<std::fmt::Error>(&io));
/// assert!(!is_caused_by::<std::str::Utf8Error>(&io));
/// ```
#[must_use]
pub fn is_caused_by<E: StdError + 'static>(error: &(dyn StdError + 'static)) -> bool {
    cause_ref::<E>(error).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetryHint;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn cause_ref_walks_through_wrappers() {
        let err = Error::new(
            Class::failure(FailureKind::Connect, RetryHint::Retry),
            Outer(std::io::ErrorKind::ConnectionRefused.into()),
        );
        let io = cause_ref::<std::io::Error>(&err).expect("io error in chain");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(is_caused_by::<Outer>(&err));
        assert!(is_caused_by::<Error>(&err));
        assert!(!err.is::<std::io::Error>());
        assert!(err.is::<Outer>());
        assert_eq!(chain(&err).count(), 3);
    }

    #[test]
    fn display_is_the_source_message() {
        let err = Error::new(Class::UNKNOWN_ERROR, "boom");
        assert_eq!(err.to_string(), "boom");
        let err = err.with_class(Class::Ignored);
        assert_eq!(err.class(), Class::Ignored);
        assert_eq!(err.into_source().to_string(), "boom");
    }
}
