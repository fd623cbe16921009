//! The classified error every Seawall layer returns, and helpers over `source()` chains.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::{BoxError, Class, Failure, FailureKind};

/// An error together with its [`Class`]: the `Service::Error` of every Seawall layer.
///
/// seawall-classify's `ClassifyLayer` turns a client's errors into this type, every
/// Seawall layer accepts any inner error that is `Into<BoxError>` and returns this type, and
/// a layer's own failure (such as an attempt timeout's `Elapsed`) is the source of one.
/// Outer layers and handlers then read the class in O(1) with [`Error::class`] (or
/// [`kind`](Error::kind) and [`retry_after`](Error::retry_after)), and the original error
/// stays reachable through [`Error::source_ref`], [`std::error::Error::source`] and
/// [`cause_ref`]. An `Error` passing through a stack of layers is moved, never boxed again.
///
/// `Display` shows the source error's message unchanged; the class is data, not text.
///
/// ```
/// use seawall_core::{Class, Error, FailureKind, RetryHint};
///
/// let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let err = Error::new(Class::failure(FailureKind::Connect, RetryHint::Retry), io);
/// assert_eq!(err.class().kind(), Some(FailureKind::Connect));
/// assert!(err.is::<std::io::Error>());
/// ```
pub struct Error {
    // One pointer: every layer's `Poll<Result<Response, Error>>` stays small on the success
    // path, at the price of one more allocation when an error is made.
    inner: Box<Inner>,
}

struct Inner {
    class: Class,
    source: BoxError,
    // `true` when no one has classified the source yet: `from_inner` met a type the floor
    // does not know and gave it the floor's best guess for now. A classifier that knows more
    // (seawall-classify's `DefaultClassifier`) looks past such an error to its source.
    provisional: bool,
}

impl Error {
    /// Wraps `source` with the class it was given.
    pub fn new(class: Class, source: impl Into<BoxError>) -> Self {
        Error {
            inner: Box::new(Inner {
                class,
                source: source.into(),
                provisional: false,
            }),
        }
    }

    /// `source` with the floor's best guess at its class, to be looked past by a classifier
    /// that knows more (see [`is_provisional`](Self::is_provisional)).
    pub(crate) fn provisional(class: Class, source: BoxError) -> Self {
        let mut error = Error::new(class, source);
        error.inner.provisional = true;
        error
    }

    /// `true` when no one has classified this error's source yet: [`from_inner`](Self::from_inner)
    /// met a type the floor does not know and gave it the floor's best guess. A classifier
    /// that knows more looks past such an error to its source; [`with_class`](Self::with_class)
    /// settles it.
    #[must_use]
    pub fn is_provisional(&self) -> bool {
        self.inner.provisional
    }

    /// The class of this error.
    #[must_use]
    pub fn class(&self) -> Class {
        self.inner.class
    }

    /// The failure, if the class is one (it is for every error Seawall produces).
    #[must_use]
    pub fn failure(&self) -> Option<Failure> {
        self.inner.class.as_failure()
    }

    /// The failure kind, if the class is a failure.
    #[must_use]
    pub fn kind(&self) -> Option<FailureKind> {
        self.inner.class.kind()
    }

    /// When the caller may try again, if the failure says so: a remote's `Retry-After`, or
    /// the time a local refusal (an open breaker) may last. What an HTTP handler sends as
    /// `Retry-After`.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.class.retry_after()
    }

    /// The wrapped error.
    #[must_use]
    pub fn source_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner.source
    }

    /// Unwraps the wrapped error.
    #[must_use]
    pub fn into_source(self) -> BoxError {
        self.inner.source
    }

    /// `true` when the wrapped error itself is an `E` (not looking further down the chain;
    /// see [`is_caused_by`] for that).
    #[must_use]
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.inner.source.is::<E>()
    }

    /// The wrapped error as an `E`, if it is one.
    #[must_use]
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.source.downcast_ref::<E>()
    }

    /// Replaces the class, keeping the source.
    #[must_use]
    pub fn with_class(mut self, class: Class) -> Self {
        self.inner.class = class;
        self.inner.provisional = false;
        self
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("class", &self.inner.class)
            .field("source", &self.inner.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner.source, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.inner.source)
    }
}

/// `Ok` when `error` is a Seawall [`Error`], moved out without allocating (or unboxed, when it
/// arrives boxed); otherwise the error, boxed.
pub(crate) fn take_error<E: Into<BoxError> + 'static>(error: E) -> Result<Error, BoxError> {
    let mut slot = Some(error);
    if let Some(error) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Error>>() {
        return Ok(error.take().expect("just filled"));
    }
    let boxed: BoxError = slot.take().expect("just filled").into();
    match boxed.downcast::<Error>() {
        Ok(error) => Ok(*error),
        Err(other) => Err(other),
    }
}

/// Iterates over an error and its `source()` chain, outermost first. An `std::io::Error`
/// wrapping another error (`io::Error::other(e)`) is followed by `e` itself.
///
/// ```
/// use seawall_core::chain;
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
/// use seawall_core::{cause_ref, Class, Error};
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
/// use seawall_core::is_caused_by;
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
    fn a_seawall_error_passes_through_unchanged() {
        let err = Error::new(Class::rejected(Duration::from_secs(1)), "open");
        let err = Error::from_inner(err);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
        let boxed: BoxError = Box::new(err);
        let err = Error::from_inner(boxed);
        assert_eq!(err.kind(), Some(FailureKind::Rejected));
        assert_eq!(err.to_string(), "open");
        let err = Error::from_inner(err).with_class(Class::UNKNOWN_ERROR);
        assert_eq!(err.class(), Class::UNKNOWN_ERROR);
        assert!(
            !is_caused_by::<Error>(err.source_ref()),
            "not wrapped twice"
        );
    }

    #[test]
    fn foreign_errors_are_classified_by_their_chain() {
        let err = Error::from_inner(Outer(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(err.kind(), Some(FailureKind::Disconnect));
        assert!(err.is::<Outer>());
        let err = Error::from_inner(std::fmt::Error);
        assert_eq!(err.class(), Class::UNKNOWN_ERROR);
    }

    #[test]
    fn an_error_the_floor_does_not_know_is_provisional_until_classified() {
        let err = Error::from_inner(Outer(std::io::ErrorKind::ConnectionReset.into()));
        assert!(err.is_provisional(), "Outer is not a floor type");
        assert_eq!(
            err.kind(),
            Some(FailureKind::Disconnect),
            "the floor's best guess"
        );
        assert_eq!(crate::floor_class(&err), None, "a classifier looks past it");
        let settled = err.with_class(Class::UNKNOWN_ERROR);
        assert!(!settled.is_provisional());
        assert_eq!(crate::floor_class(&settled), Some(Class::UNKNOWN_ERROR));
        let known = Error::from_inner(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(!known.is_provisional(), "io is a floor type");
        assert!(!Error::new(Class::UNKNOWN_ERROR, "made").is_provisional());
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
