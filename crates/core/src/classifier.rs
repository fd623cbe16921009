//! The `Classifier` trait, its combinators and the default classifier.

use std::fmt;
use std::sync::Arc;

use crate::{BoxError, Class, Error};

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
/// (converted by [`Error::from_inner`], which already gives the error types the floor knows
/// their class: see [`floor_class`](crate::floor_class)), so one classifier of
/// `Result<&Res, &Error>` configures every layer, whatever the client's own error type: the
/// error parameter `E` defaults to [`Error`]. Most users start from seawall-classify's
/// `DefaultClassifier` (which knows the clients too) and add their own rules in front of it
/// with [`or_classifier`](ClassifierExt::or_classifier):
///
/// ```
/// use seawall_core::{
///     cause_ref, floor_class, from_error_fn, Class, Classifier, ClassifierExt, Error,
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
/// .or_classifier(from_error_fn(|e: &Error| floor_class(e)));
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
    note = "Seawall layers classify `Result<&{Res}, &seawall_core::Error>`: implement `Classifier<{Res}>`, or build one with `from_response_fn` / `from_error_fn(|e: &seawall_core::Error| ..)`"
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
/// use seawall_core::{classify_outcome, floor_class, from_error_fn, Error, FailureKind};
///
/// let floor = from_error_fn(|e: &Error| floor_class(e));
/// let failed: Result<(), _> = Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
/// let (class, result) = classify_outcome(&floor, failed);
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

/// An inner service's error as an [`Error`] carrying the class `classifier` gives it (or
/// [`Class::UNKNOWN_ERROR`] when it has no opinion): the one conversion behind
/// [`classify_outcome`], seawall-classify's `ClassifyLayer`, and every layer's readiness
/// error.
#[inline]
pub fn classified_error<Res, E, C>(classifier: &C, error: E) -> Error
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
/// use seawall_core::{from_error_fn, Class, Classifier};
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
/// use seawall_core::{from_response_fn, Class, Classifier, FailureKind, RetryHint};
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

/// The classifier of the layers above a seawall-classify's `ClassifyLayer`: an error
/// was classified below (idempotency included), so its class is read as it is, in O(1);
/// only responses are asked of `C`.
///
/// The standard pipeline gives it to its retry, breaker and limit, so that a 503 response
/// counts the same at every layer while a lost connection on a write, which the
/// `ClassifyLayer` marked never to retry, stays so.
///
/// ```
/// use seawall_core::{
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
