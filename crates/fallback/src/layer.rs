//! The layer, its builder, the request the fallback receives and the error of a failed
//! fallback.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use seawall_classify::{BoxError, Class, ConfigError, Error, Failure, FailureKind, KindSet};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;

/// The failure kinds a fallback answers for unless told otherwise: the dependency cannot
/// answer now. Not `Invalid` (the caller's fault: hiding it is a bug), `Internal` (a bug of
/// the dependency's or of the client's: a default would hide it), `Contention` (a retry
/// clears it) or `Disconnect` (the request may have run: answering something else for a
/// write that may have happened misleads the caller).
pub const DEFAULT_TRIGGERS: [FailureKind; 5] = [
    FailureKind::Rejected,
    FailureKind::Unavailable,
    FailureKind::Connect,
    FailureKind::Overloaded,
    FailureKind::Timeout,
];

/// What the fallback service receives: the class of the primary's failure and, when the
/// layer keeps one ([`FallbackBuilder::keep_request`]), a copy of the request.
#[derive(Debug, Clone)]
pub struct Fallback<Req> {
    request: Option<Req>,
    failure: Failure,
}

impl<Req> Fallback<Req> {
    /// A fallback request; how the layer makes one (public for fallback services' tests).
    pub fn new(request: Option<Req>, failure: Failure) -> Self {
        Fallback { request, failure }
    }

    /// The copy of the request made before the primary call, when the layer keeps one.
    pub fn request(&self) -> Option<&Req> {
        self.request.as_ref()
    }

    /// Takes the copy of the request.
    pub fn into_request(self) -> Option<Req> {
        self.request
    }

    /// How the primary failed.
    pub fn failure(&self) -> Failure {
        self.failure
    }

    /// The kind of the primary's failure.
    pub fn kind(&self) -> FailureKind {
        self.failure.kind
    }
}

/// How the layer gets the fallback its copy of the request; chosen by the builder.
#[diagnostic::on_unimplemented(
    message = "the fallback keeps a copy of each request (`keep_request`), so `{Req}` must be `Clone`",
    label = "`{Req}` is not `Clone`",
    note = "derive or implement `Clone` for the request, or build the layer without `keep_request()`"
)]
pub trait RequestCopy<Req> {
    /// The copy to keep before the primary call, if any.
    fn copy(request: &Req) -> Option<Req>;
}

/// No copy of the request is kept: the fallback receives the primary's class only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRequest;

impl<Req> RequestCopy<Req> for NoRequest {
    #[inline]
    fn copy(_: &Req) -> Option<Req> {
        None
    }
}

/// A copy of each request is kept (a clone before the primary call) for the fallback.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepRequest;

impl<Req: Clone> RequestCopy<Req> for KeepRequest {
    #[inline]
    fn copy(request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// Builds a [`FallbackLayer`]; see [`FallbackLayer::builder`].
#[derive(Debug, Clone)]
pub struct FallbackBuilder<F, K = NoRequest> {
    fallback: F,
    triggers: KindSet,
    copy: K,
}

impl<F, K> FallbackBuilder<F, K> {
    /// The failure kinds the fallback answers for, replacing [`DEFAULT_TRIGGERS`]. Including
    /// [`FailureKind::Invalid`] is refused at [`build`](Self::build).
    #[must_use]
    pub fn on(mut self, kinds: impl IntoIterator<Item = FailureKind>) -> Self {
        self.triggers = kinds.into_iter().collect();
        self
    }

    /// Keeps a copy of each request (a clone made before the primary call) for the
    /// fallback, which then receives it in [`Fallback::request`]. The request must be
    /// `Clone`.
    #[must_use]
    pub fn keep_request(self) -> FallbackBuilder<F, KeepRequest> {
        FallbackBuilder {
            fallback: self.fallback,
            triggers: self.triggers,
            copy: KeepRequest,
        }
    }

    /// The layer; an error when no kind triggers the fallback or when `Invalid` does.
    pub fn build(self) -> Result<FallbackLayer<F, K>, ConfigError> {
        if self.triggers.is_empty() {
            return Err(ConfigError::new(
                "fallback",
                "on",
                "names no failure kind: the fallback would never answer",
            ));
        }
        if self.triggers.contains(FailureKind::Invalid) {
            return Err(ConfigError::new(
                "fallback",
                "on",
                "includes `Invalid`: the caller's own mistakes must reach the caller, not a fallback",
            ));
        }
        Ok(FallbackLayer {
            shared: Arc::new(Shared {
                fallback: self.fallback,
                triggers: self.triggers,
            }),
            _copy: self.copy,
        })
    }
}

pub(crate) struct Shared<F> {
    /// Cloned for a call only when the primary failed with a trigger.
    pub(crate) fallback: F,
    pub(crate) triggers: KindSet,
}

/// Answers from a fallback service when the primary fails with one of the chosen failure
/// kinds; see the [crate documentation](crate).
pub struct FallbackLayer<F, K = NoRequest> {
    shared: Arc<Shared<F>>,
    _copy: K,
}

impl<F> FallbackLayer<F> {
    /// A builder answering from `fallback` for [`DEFAULT_TRIGGERS`], without a copy of the
    /// request.
    pub fn builder(fallback: F) -> FallbackBuilder<F> {
        FallbackBuilder {
            fallback,
            triggers: DEFAULT_TRIGGERS.into_iter().collect(),
            copy: NoRequest,
        }
    }
}

impl<F, K: Clone> Clone for FallbackLayer<F, K> {
    fn clone(&self) -> Self {
        FallbackLayer {
            shared: self.shared.clone(),
            _copy: self._copy.clone(),
        }
    }
}

impl<F, K> fmt::Debug for FallbackLayer<F, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("triggers", &self.shared.triggers)
            .finish()
    }
}

impl<S, F, K: Clone> Layer<S> for FallbackLayer<F, K> {
    type Service = FallbackService<S, F, K>;

    fn layer(&self, inner: S) -> Self::Service {
        FallbackService {
            inner,
            shared: self.shared.clone(),
            _copy: self._copy.clone(),
        }
    }
}

/// The service [`FallbackLayer`] makes.
pub struct FallbackService<S, F, K = NoRequest> {
    inner: S,
    shared: Arc<Shared<F>>,
    _copy: K,
}

impl<S: Clone, F, K: Clone> Clone for FallbackService<S, F, K> {
    fn clone(&self) -> Self {
        FallbackService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            _copy: self._copy.clone(),
        }
    }
}

impl<S: fmt::Debug, F, K> fmt::Debug for FallbackService<S, F, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackService")
            .field("inner", &self.inner)
            .field("triggers", &self.shared.triggers)
            .finish()
    }
}

impl<S, F, K> FallbackService<S, F, K> {
    /// The primary service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, F, K, Req> Service<Req> for FallbackService<S, F, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    F: Service<Fallback<Req>, Response = S::Response> + Clone,
    F::Error: Into<BoxError> + 'static,
    K: RequestCopy<Req>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, F, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The fallback's readiness is awaited only when it is called.
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let copy = K::copy(&request);
        ResponseFuture::new(self.inner.call(request), self.shared.clone(), copy)
    }
}

/// The primary failed and so did the fallback: the primary's error (its class is the
/// error's class) with the fallback's failure attached.
#[derive(Debug)]
pub struct FallbackFailed {
    primary: BoxError,
    fallback: Error,
}

impl FallbackFailed {
    pub(crate) fn error(primary: Error, fallback: Error) -> Error {
        let class: Class = primary.class();
        Error::new(
            class,
            FallbackFailed {
                primary: primary.into_source(),
                fallback,
            },
        )
    }

    /// The fallback's error.
    pub fn fallback(&self) -> &Error {
        &self.fallback
    }
}

impl fmt::Display for FallbackFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (the fallback failed too: {})",
            self.primary, self.fallback
        )
    }
}

impl std::error::Error for FallbackFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.primary)
    }
}
