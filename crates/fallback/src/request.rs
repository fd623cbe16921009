//! What the fallback receives ([`FallbackRequest`]), and whether the layer keeps a copy of
//! the request for it ([`RequestCopy`]).

use seawall_classify::{Failure, FailureKind};

/// What the fallback service receives: the class of the primary's failure and, when the
/// layer keeps one ([`FallbackBuilder::keep_request`](crate::FallbackBuilder::keep_request)), a copy of the request.
#[derive(Debug, Clone)]
pub struct FallbackRequest<Req> {
    request: Option<Req>,
    failure: Failure,
}

impl<Req> FallbackRequest<Req> {
    /// A fallback request; how the layer makes one (public for fallback services' tests).
    pub fn new(request: Option<Req>, failure: Failure) -> Self {
        FallbackRequest { request, failure }
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
