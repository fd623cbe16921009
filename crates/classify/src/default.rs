//! The default classifier: the floor's error types and the clients' ([`DefaultClassifier`]).

use std::error::Error as StdError;
use std::sync::Arc;

use crate::{BoxError, Class, Classifier, Error};

/// Errors whose `source()` chain the [`DefaultClassifier`] can walk.
///
/// Implemented for boxed errors and for the error types of the clients Seawall knows. For
/// your own error type, return `self`:
///
/// ```
/// use seawall_classify::AsError;
///
/// #[derive(Debug)]
/// struct MyError(std::io::Error);
/// # impl std::fmt::Display for MyError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("my") }
/// # }
/// impl std::error::Error for MyError {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// impl AsError for MyError {
///     fn as_error(&self) -> &(dyn std::error::Error + 'static) {
///         self
///     }
/// }
/// ```
pub trait AsError {
    /// The error as a trait object, so its chain can be walked.
    fn as_error(&self) -> &(dyn StdError + 'static);
}

impl AsError for BoxError {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        &**self
    }
}

impl AsError for Box<dyn StdError + 'static> {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        &**self
    }
}

impl AsError for Arc<dyn StdError + Send + Sync + 'static> {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        &**self
    }
}

impl AsError for dyn StdError + 'static {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        self
    }
}

impl AsError for dyn StdError + Send + Sync + 'static {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        self
    }
}

impl<T: AsError + ?Sized> AsError for &T {
    fn as_error(&self) -> &(dyn StdError + 'static) {
        (**self).as_error()
    }
}

macro_rules! as_error_self {
    ($($ty:ty),* $(,)?) => {$(
        impl AsError for $ty {
            fn as_error(&self) -> &(dyn StdError + 'static) {
                self
            }
        }
    )*};
}

as_error_self!(
    Error,
    crate::DeadlineExceeded,
    crate::ConfigError,
    std::convert::Infallible,
    std::io::Error,
    tower::timeout::error::Elapsed,
    tower::load_shed::error::Overloaded,
    tokio::time::error::Elapsed,
);
#[cfg(feature = "postgres")]
as_error_self!(tokio_postgres::Error, deadpool_postgres::PoolError);
#[cfg(feature = "redis")]
as_error_self!(redis::RedisError);
#[cfg(feature = "sqlx")]
as_error_self!(sqlx_core::error::Error);
#[cfg(feature = "http")]
as_error_self!(hyper::Error);
#[cfg(feature = "reqwest")]
as_error_self!(reqwest::Error);
#[cfg(feature = "grpc")]
as_error_self!(tonic::Status);

/// The classifier every Seawall layer uses unless told otherwise.
///
/// Responses are successes. Errors are looked up anywhere in their `source()` chain,
/// outermost first, and the first error of a known type decides:
///
/// | error type | class |
/// |---|---|
/// | [`seawall_classify::Error`](crate::Error) (every Seawall layer's error) | its class |
/// | [`DeadlineExceeded`](crate::DeadlineExceeded) | `Timeout`, never |
/// | `tower::timeout::error::Elapsed`, `tokio::time::error::Elapsed` | `Timeout`, retry |
/// | `tower::load_shed::error::Overloaded` | `Rejected`, retry after zero (a local refusal) |
/// | `std::io::Error` | by kind, see [`io::classify`](crate::io::classify) |
/// | `tokio_postgres::Error` (feature `postgres`) | see [`postgres`](crate::postgres) |
/// | `deadpool_postgres::PoolError` (feature `postgres`) | see [`postgres`](crate::postgres) |
/// | `redis::RedisError` (feature `redis`) | see [`redis`](crate::redis) |
/// | `sqlx::Error` (feature `sqlx`) | see [`sqlx`](crate::sqlx) |
/// | `hyper::Error` (feature `http`; under hyper-util's client errors too) | see [`classify_hyper`](crate::http::classify_hyper) |
/// | `reqwest::Error` (feature `reqwest`) | see [`reqwest`](crate::reqwest) |
/// | `tonic::Status` (feature `grpc`) | by code and pushback, see [`grpc`](crate::grpc) |
///
/// Anything else has no class, which [`Classifier::classify`] reads as
/// [`Class::UNKNOWN_ERROR`].
///
/// ```
/// use seawall_classify::{BoxError, Classifier, DefaultClassifier, FailureKind};
///
/// let err: BoxError = Box::new(tower::timeout::error::Elapsed::new());
/// let class = Classifier::<(), _>::classify(&DefaultClassifier, Err(&err));
/// assert_eq!(class.kind(), Some(FailureKind::Timeout));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultClassifier;

impl<Res, E: AsError> Classifier<Res, E> for DefaultClassifier {
    fn classify_error(&self, error: &E) -> Option<Class> {
        known_class(error.as_error())
    }
}

/// Converts any error into an [`Error`] classified by the [`DefaultClassifier`]: what a
/// handler or a `map_err` uses around a client outside a pipeline. (The floor's
/// [`Error::from_inner`] knows only the floor's types; this knows the clients too.)
///
/// ```
/// use seawall_classify::{classified, FailureKind};
///
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert_eq!(classified(reset).kind(), Some(FailureKind::Disconnect));
/// ```
pub fn classified<E: Into<BoxError> + 'static>(error: E) -> Error {
    crate::classified_error::<(), _, _>(&DefaultClassifier, error)
}

/// The class of the first error of a known type in `error`'s `source()` chain: the lookup
/// behind [`DefaultClassifier`].
///
/// ```
/// use seawall_classify::{known_class, FailureKind};
///
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert_eq!(known_class(&reset).and_then(|c| c.kind()), Some(FailureKind::Disconnect));
/// assert_eq!(known_class(&std::fmt::Error), None);
/// ```
#[must_use]
pub fn known_class(error: &(dyn StdError + 'static)) -> Option<Class> {
    crate::chain(error).find_map(known_type)
}

fn known_type(error: &(dyn StdError + 'static)) -> Option<Class> {
    // What the floor knows first (Seawall's own errors, io, timeouts, load shedding), then the
    // clients. A provisional `Error` is none of them: the chain goes on to its source.
    if let Some(class) = seawall_core::floor_class(error) {
        return Some(class);
    }
    #[cfg(feature = "postgres")]
    {
        if let Some(err) = error.downcast_ref::<tokio_postgres::Error>() {
            return Some(crate::postgres::classify(err));
        }
        if let Some(err) = error.downcast_ref::<deadpool_postgres::PoolError>() {
            return Some(crate::postgres::classify_pool_error(err));
        }
    }
    #[cfg(feature = "redis")]
    if let Some(err) = error.downcast_ref::<redis::RedisError>() {
        return Some(crate::redis::classify(err));
    }
    #[cfg(feature = "sqlx")]
    if let Some(err) = error.downcast_ref::<sqlx_core::error::Error>() {
        return crate::sqlx::classify(err);
    }
    #[cfg(feature = "http")]
    if let Some(err) = error.downcast_ref::<hyper::Error>() {
        return crate::http::classify_hyper(err);
    }
    #[cfg(feature = "reqwest")]
    if let Some(err) = error.downcast_ref::<reqwest::Error>() {
        return crate::reqwest::classify(err);
    }
    #[cfg(feature = "grpc")]
    if let Some(err) = error.downcast_ref::<tonic::Status>() {
        return Some(crate::grpc::classify_status(err));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassifierExt, FailureKind, RetryHint, from_error_fn};

    fn classify(err: BoxError) -> Class {
        Classifier::<(), _>::classify(&DefaultClassifier, Err(&err))
    }

    #[test]
    fn the_default_classifier_looks_past_a_provisional_error_to_its_source() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("wrapper")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let provisional = Error::from_inner(Wrapper(std::io::ErrorKind::TimedOut.into()));
        assert!(provisional.is_provisional());
        assert_eq!(
            known_class(&provisional),
            known_class(&Wrapper(std::io::ErrorKind::TimedOut.into()))
        );
        let classified = classified(Wrapper(std::io::ErrorKind::TimedOut.into()));
        assert!(!classified.is_provisional());
        assert_eq!(classified.kind(), Some(FailureKind::Timeout));
    }

    #[test]
    fn known_types_are_found_below_wrappers() {
        let wrapped: BoxError =
            Box::new(std::io::Error::other(tower::timeout::error::Elapsed::new()));
        assert_eq!(classify(wrapped).kind(), Some(FailureKind::Timeout));
    }

    #[test]
    fn the_outermost_known_type_wins() {
        let inner = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let outer = Error::new(
            Class::failure(FailureKind::Rejected, RetryHint::Never),
            inner,
        );
        assert_eq!(
            classify(Box::new(outer)).kind(),
            Some(FailureKind::Rejected)
        );
    }

    #[test]
    fn unknown_errors_are_internal_and_not_retried() {
        assert_eq!(classify("mystery".into()), Class::UNKNOWN_ERROR);
        let other: BoxError = Box::new(std::io::Error::other("mystery"));
        assert_eq!(classify(other), Class::UNKNOWN_ERROR);
    }

    #[test]
    fn tower_load_shed_is_a_local_rejection() {
        let err: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
        let class = classify(err);
        assert_eq!(class.kind(), Some(FailureKind::Rejected));
        assert!(!class.is_fault());
    }

    #[test]
    fn or_asks_the_second_only_without_an_opinion() {
        let first =
            from_error_fn(|e: &BoxError| e.is::<std::fmt::Error>().then_some(Class::Ignored));
        let both = first.or_classifier(DefaultClassifier);
        let fmt_err: BoxError = Box::new(std::fmt::Error);
        assert_eq!(
            Classifier::<(), _>::classify(&both, Err(&fmt_err)),
            Class::Ignored
        );
        let io: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(
            Classifier::<(), _>::classify(&both, Err(&io)).kind(),
            Some(FailureKind::Timeout)
        );
    }

    #[test]
    fn map_rewrites_classes() {
        let contention_is_fault = DefaultClassifier.map_class(|class| match class.kind() {
            Some(FailureKind::Contention) => {
                Class::failure(FailureKind::Internal, RetryHint::Retry)
            }
            _ => class,
        });
        let err: BoxError = Box::new(Error::new(
            Class::failure(FailureKind::Contention, RetryHint::Retry),
            "40001",
        ));
        let class = Classifier::<(), _>::classify(&contention_is_fault, Err(&err));
        assert!(class.is_fault());
    }

    #[test]
    fn responses_are_successes_by_default() {
        let class = Classifier::<u8, BoxError>::classify(&DefaultClassifier, Ok(&7));
        assert_eq!(class, Class::Success);
    }
}
