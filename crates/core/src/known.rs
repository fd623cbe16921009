//! What the floor knows: the classes of the error types every Seawall layer can meet without
//! knowing any client.

use std::error::Error as StdError;

use crate::{BoxError, Class, Error, FailureKind, RetryHint};

/// The class of `error` itself when it is of a type the floor knows, `None` otherwise:
///
/// | error type | class |
/// |---|---|
/// | [`Error`] (every Seawall layer's error) | its class (`None` while [provisional](Error::is_provisional)) |
/// | [`DeadlineExceeded`](crate::DeadlineExceeded) | `Timeout`, never |
/// | `tower::timeout::error::Elapsed`, `tokio::time::error::Elapsed` | `Timeout`, retry |
/// | `tower::load_shed::error::Overloaded` | `Rejected`, retry after zero (a local refusal) |
/// | `std::io::Error` | by kind, see [`io::classify`](crate::io::classify) |
///
/// It looks at `error` alone, not its `source()` chain: a classifier walks the chain (see
/// [`chain`](crate::chain)) and asks this first of each link.
///
/// ```
/// use seawall_core::{floor_class, FailureKind};
///
/// let elapsed = tower::timeout::error::Elapsed::new();
/// assert_eq!(floor_class(&elapsed).and_then(|c| c.kind()), Some(FailureKind::Timeout));
/// assert_eq!(floor_class(&std::fmt::Error), None);
/// ```
#[must_use]
pub fn floor_class(error: &(dyn StdError + 'static)) -> Option<Class> {
    if let Some(err) = error.downcast_ref::<Error>() {
        return (!err.is_provisional()).then(|| err.class());
    }
    if error.is::<crate::DeadlineExceeded>() {
        return Some(crate::DeadlineExceeded::CLASS);
    }
    if error.is::<tower::timeout::error::Elapsed>() || error.is::<tokio::time::error::Elapsed>() {
        return Some(Class::failure(FailureKind::Timeout, RetryHint::Retry));
    }
    if error.is::<tower::load_shed::error::Overloaded>() {
        return Some(Class::rejected(std::time::Duration::ZERO));
    }
    if let Some(err) = error.downcast_ref::<std::io::Error>() {
        // An `Other` io error usually wraps the real cause: keep walking.
        return crate::io::classify(err);
    }
    None
}

/// The class of the first error of a type the floor knows in `error`'s chain.
pub(crate) fn floor_chain_class(error: &(dyn StdError + 'static)) -> Option<Class> {
    crate::chain(error).find_map(floor_class)
}

impl Error {
    /// Converts an inner service's error: an `Error` (or a boxed one) is returned as it is,
    /// without allocating; an error of a type the floor knows gets that type's class
    /// ([`floor_class`](crate::floor_class): Seawall's own errors, `std::io::Error`, tower's
    /// and tokio's timeouts, tower's load shedding); anything else gets the class of the
    /// first such type in its `source()` chain, or [`Class::UNKNOWN_ERROR`], until a
    /// classifier that knows its type classifies it ([`is_provisional`](Self::is_provisional)). The clients' errors (SQLSTATE,
    /// Redis, HTTP, gRPC) are known to seawall-classify's `DefaultClassifier`, which every
    /// layer asks.
    ///
    /// ```
    /// use seawall_core::{Class, Error, FailureKind};
    ///
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let err = Error::from_inner(refused);
    /// assert_eq!(err.kind(), Some(FailureKind::Connect));
    /// assert_eq!(Error::from_inner(err).kind(), Some(FailureKind::Connect));
    /// let unknown = Error::from_inner(std::fmt::Error);
    /// assert_eq!(unknown.class(), Class::UNKNOWN_ERROR);
    /// assert!(unknown.is_provisional());
    /// ```
    pub fn from_inner<E: Into<BoxError> + 'static>(error: E) -> Self {
        match crate::error::take_error(error) {
            Ok(error) => error,
            // Settled when the error itself is of a type the floor knows; otherwise the
            // class of the first floor type in its chain (or unknown), provisional: a client's
            // error wrapping an io error is the client's to classify, not the io error's.
            Err(other) => match floor_class(&*other) {
                Some(class) => Error::new(class, other),
                None => {
                    let class = floor_chain_class(&*other).unwrap_or(Class::UNKNOWN_ERROR);
                    Error::provisional(class, other)
                }
            },
        }
    }
}
