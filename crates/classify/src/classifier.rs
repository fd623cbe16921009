//! The `Classifier` trait, its combinators and the default classifier.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::{BoxError, Class, Error, FailureKind, RetryHint};

/// Turns a finished call into a [`Class`].
///
/// A classifier looks at a response or an error and either recognises it (`Some(class)`) or
/// has no opinion (`None`), so classifiers compose with
/// [`or_classifier`](ClassifierExt::or_classifier): the first one with an opinion wins.
/// [`classify`](Classifier::classify) fills in the fallbacks: a response nobody objects to is
/// [`Class::Success`], an error nobody recognises is [`Class::UNKNOWN_ERROR`]. Classifying
/// never allocates.
///
/// Every Seawall layer hands its classifier the inner service's error as an [`Error`]
/// (converted by [`Error::from_inner`], which already gives a known error type its class), so
/// one classifier of `Result<&Res, &Error>` configures every layer, whatever the client's own
/// error type: the error parameter `E` defaults to [`Error`]. Most users start from
/// [`DefaultClassifier`] and add their own rules in front of it:
///
/// ```
/// use seawall_classify::{
///     cause_ref, from_error_fn, Class, Classifier, ClassifierExt, DefaultClassifier, Error,
///     FailureKind, RetryHint,
/// };
///
/// #[derive(Debug)]
/// struct QuotaExceeded;
/// impl std::fmt::Display for QuotaExceeded {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("quota exceeded")
///     }
/// }
/// impl std::error::Error for QuotaExceeded {}
///
/// let classifier = from_error_fn(|e: &Error| {
///     cause_ref::<QuotaExceeded>(e)
///         .map(|_| Class::failure(FailureKind::Overloaded, RetryHint::Retry))
/// })
/// .or_classifier(DefaultClassifier);
///
/// let err = Error::from_inner(QuotaExceeded);
/// let class = Classifier::<()>::classify(&classifier, Err(&err));
/// assert_eq!(class.kind(), Some(FailureKind::Overloaded));
///
/// let refused = Error::from_inner(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// let class = Classifier::<()>::classify(&classifier, Err(&refused));
/// assert_eq!(class.kind(), Some(FailureKind::Connect));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot classify calls answering `{Res}` or failing with `{E}`",
    label = "not a classifier of these outcomes",
    note = "Seawall layers classify `Result<&{Res}, &seawall_classify::Error>`: implement `Classifier<{Res}>`, or build one with `from_response_fn` / `from_error_fn(|e: &seawall_classify::Error| ..)`"
)]
pub trait Classifier<Res, E = Error> {
    /// Classifies a response, or `None` for no opinion (which [`classify`](Self::classify)
    /// reads as success). The default has no opinion.
    fn classify_response(&self, response: &Res) -> Option<Class> {
        let _ = response;
        None
    }

    /// Classifies an error, or `None` when the error is not one this classifier knows.
    fn classify_error(&self, error: &E) -> Option<Class>;

    /// Classifies a finished call, filling in the fallbacks.
    fn classify(&self, outcome: Result<&Res, &E>) -> Class {
        match outcome {
            Ok(response) => self.classify_response(response).unwrap_or(Class::Success),
            Err(error) => self.classify_error(error).unwrap_or(Class::UNKNOWN_ERROR),
        }
    }
}

/// Classifies a finished call as every Seawall layer does, and converts its error: an error
/// becomes an [`Error`] ([`Error::from_inner`]: moved, not boxed again, when it is one), the
/// classifier is asked about it, and the error returned carries the class it was given.
///
/// ```
/// use seawall_classify::{classify_outcome, DefaultClassifier, FailureKind};
///
/// let failed: Result<(), _> = Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
/// let (class, result) = classify_outcome(&DefaultClassifier, failed);
/// assert_eq!(class.kind(), Some(FailureKind::Timeout));
/// assert_eq!(result.unwrap_err().class(), class);
/// ```
#[inline]
pub fn classify_outcome<T, E, C>(classifier: &C, result: Result<T, E>) -> (Class, Result<T, Error>)
where
    E: Into<BoxError> + 'static,
    C: Classifier<T> + ?Sized,
{
    match result {
        Ok(response) => {
            let class = classifier
                .classify_response(&response)
                .unwrap_or(Class::Success);
            (class, Ok(response))
        }
        Err(error) => {
            let error = classified_error(classifier, error);
            (error.class(), Err(error))
        }
    }
}

/// An inner service's error as an [`Error`] carrying the class `classifier` gives it: the one
/// conversion behind [`classify_outcome`] and `ClassifyLayer`.
#[inline]
pub(crate) fn classified_error<Res, E, C>(classifier: &C, error: E) -> Error
where
    E: Into<BoxError> + 'static,
    C: Classifier<Res> + ?Sized,
{
    let error = Error::from_inner(error);
    let class = classifier
        .classify_error(&error)
        .unwrap_or(Class::UNKNOWN_ERROR);
    error.with_class(class)
}

/// Combinators for classifiers: [`or_classifier`](ClassifierExt::or_classifier) and [`map_class`](ClassifierExt::map_class).
///
/// Implemented for every type, so it can be used on any classifier.
pub trait ClassifierExt: Sized {
    /// Asks `self` first and `other` when `self` has no opinion.
    fn or_classifier<C>(self, other: C) -> Or<Self, C> {
        Or {
            first: self,
            second: other,
        }
    }

    /// Rewrites every class this classifier produces, e.g. to count contention as a fault.
    fn map_class<F>(self, f: F) -> Map<Self, F>
    where
        F: Fn(Class) -> Class,
    {
        Map { inner: self, f }
    }
}

impl<T> ClassifierExt for T {}

impl<Res, E, C: Classifier<Res, E> + ?Sized> Classifier<Res, E> for &C {
    fn classify_response(&self, response: &Res) -> Option<Class> {
        (**self).classify_response(response)
    }
    fn classify_error(&self, error: &E) -> Option<Class> {
        (**self).classify_error(error)
    }
}

impl<Res, E, C: Classifier<Res, E> + ?Sized> Classifier<Res, E> for Arc<C> {
    fn classify_response(&self, response: &Res) -> Option<Class> {
        (**self).classify_response(response)
    }
    fn classify_error(&self, error: &E) -> Option<Class> {
        (**self).classify_error(error)
    }
}

/// Two classifiers, the second asked when the first has no opinion. See [`ClassifierExt::or_classifier`].
#[derive(Debug, Clone, Copy)]
pub struct Or<A, B> {
    first: A,
    second: B,
}

impl<Res, E, A: Classifier<Res, E>, B: Classifier<Res, E>> Classifier<Res, E> for Or<A, B> {
    fn classify_response(&self, response: &Res) -> Option<Class> {
        self.first
            .classify_response(response)
            .or_else(|| self.second.classify_response(response))
    }
    fn classify_error(&self, error: &E) -> Option<Class> {
        self.first
            .classify_error(error)
            .or_else(|| self.second.classify_error(error))
    }
}

/// A classifier whose classes are rewritten by a function. See [`ClassifierExt::map_class`].
#[derive(Clone, Copy)]
pub struct Map<C, F> {
    inner: C,
    f: F,
}

impl<C: fmt::Debug, F> fmt::Debug for Map<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").field("inner", &self.inner).finish()
    }
}

impl<Res, E, C: Classifier<Res, E>, F: Fn(Class) -> Class> Classifier<Res, E> for Map<C, F> {
    fn classify_response(&self, response: &Res) -> Option<Class> {
        self.inner.classify_response(response).map(&self.f)
    }
    fn classify_error(&self, error: &E) -> Option<Class> {
        self.inner.classify_error(error).map(&self.f)
    }
}

/// A classifier of errors made from a closure. See [`from_error_fn`].
#[derive(Clone, Copy)]
pub struct ErrorFn<F> {
    f: F,
}

impl<F> fmt::Debug for ErrorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorFn").finish_non_exhaustive()
    }
}

/// A classifier of errors from a closure returning `Some(class)` for errors it knows.
///
/// ```
/// use seawall_classify::{from_error_fn, Class, Classifier};
///
/// let never_retry = from_error_fn(|_: &std::io::Error| Some(Class::UNKNOWN_ERROR));
/// let err = std::io::Error::other("x");
/// assert_eq!(Classifier::<(), _>::classify(&never_retry, Err(&err)), Class::UNKNOWN_ERROR);
/// ```
pub fn from_error_fn<E, F>(f: F) -> ErrorFn<F>
where
    F: Fn(&E) -> Option<Class>,
{
    ErrorFn { f }
}

impl<Res, E, F: Fn(&E) -> Option<Class>> Classifier<Res, E> for ErrorFn<F> {
    fn classify_error(&self, error: &E) -> Option<Class> {
        (self.f)(error)
    }
}

/// A classifier of responses made from a closure. See [`from_response_fn`].
#[derive(Clone, Copy)]
pub struct ResponseFn<F> {
    f: F,
}

impl<F> fmt::Debug for ResponseFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFn").finish_non_exhaustive()
    }
}

/// A classifier of responses from a closure returning `Some(class)` for responses that are
/// not plain successes (an application-level "busy" reply, say). It has no opinion on errors.
///
/// ```
/// use seawall_classify::{from_response_fn, Class, Classifier, FailureKind, RetryHint};
///
/// let busy_reply = from_response_fn(|body: &&str| {
///     (*body == "BUSY").then_some(Class::failure(FailureKind::Overloaded, RetryHint::Retry))
/// });
/// assert!(Classifier::<_, ()>::classify(&busy_reply, Ok(&"BUSY")).is_fault());
/// assert!(Classifier::<_, ()>::classify(&busy_reply, Ok(&"OK")).is_success());
/// ```
pub fn from_response_fn<Res, F>(f: F) -> ResponseFn<F>
where
    F: Fn(&Res) -> Option<Class>,
{
    ResponseFn { f }
}

impl<Res, E, F: Fn(&Res) -> Option<Class>> Classifier<Res, E> for ResponseFn<F> {
    fn classify_response(&self, response: &Res) -> Option<Class> {
        (self.f)(response)
    }
    fn classify_error(&self, _error: &E) -> Option<Class> {
        None
    }
}

/// The classifier of the layers above a [`ClassifyLayer`](crate::ClassifyLayer): an error
/// was classified below (idempotency included), so its class is read as it is, in O(1);
/// only responses are asked of `C`.
///
/// The standard pipeline gives it to its retry, breaker and limit, so that a 503 response
/// counts the same at every layer while a lost connection on a write, which the
/// `ClassifyLayer` marked never to retry, stays so.
///
/// ```
/// use seawall_classify::{
///     from_response_fn, Class, Classifier, Error, FailureKind, ResponsesOnly, RetryHint,
/// };
///
/// let busy = from_response_fn(|code: &u16| {
///     (*code == 503).then_some(Class::failure(FailureKind::Overloaded, RetryHint::Retry))
/// });
/// let above = ResponsesOnly::new(busy);
/// assert!(above.classify(Ok(&503)).is_fault());
/// let lost = Error::new(Class::failure(FailureKind::Disconnect, RetryHint::Never), "reset");
/// assert_eq!(above.classify(Err(&lost)), lost.class());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponsesOnly<C> {
    inner: C,
}

impl<C> ResponsesOnly<C> {
    /// Reads errors by their class and asks `inner` about responses.
    pub const fn new(inner: C) -> Self {
        ResponsesOnly { inner }
    }

    /// The classifier asked about responses.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }
}

impl<Res, C: Classifier<Res>> Classifier<Res> for ResponsesOnly<C> {
    #[inline]
    fn classify_response(&self, response: &Res) -> Option<Class> {
        self.inner.classify_response(response)
    }

    #[inline]
    fn classify_error(&self, error: &Error) -> Option<Class> {
        Some(error.class())
    }
}

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
    crate::error::chain(error).find_map(known_type)
}

fn known_type(error: &(dyn StdError + 'static)) -> Option<Class> {
    if let Some(err) = error.downcast_ref::<Error>() {
        return Some(err.class());
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

    fn classify(err: BoxError) -> Class {
        Classifier::<(), _>::classify(&DefaultClassifier, Err(&err))
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
