//! [`Classify`]: a client whose errors carry their class.

use std::fmt;
use std::task::{Context, Poll};

use tower_service::Service;

use crate::{
    AssumeNotIdempotent, BoxError, Classifier, DefaultClassifier, Error, Idempotency,
    classified_error, future,
};

/// A service whose errors are classified; see [`ClassifyLayer`](crate::ClassifyLayer).
#[derive(Clone)]
pub struct Classify<S, C = DefaultClassifier, I = AssumeNotIdempotent> {
    inner: S,
    classifier: C,
    idempotency: I,
}

seawall_core::inner_accessors!(impl[S, C, I] Classify<S, C, I>);

impl<S, C, I> Classify<S, C, I> {
    /// Wraps `inner`, classifying its errors with `classifier` and deciding idempotency with
    /// `idempotency`.
    pub fn new(inner: S, classifier: C, idempotency: I) -> Self {
        Classify {
            inner,
            classifier,
            idempotency,
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug, I> fmt::Debug for Classify<S, C, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classify")
            .field("inner", &self.inner)
            .field("classifier", &self.classifier)
            .field("idempotency", &std::any::type_name::<I>())
            .finish()
    }
}

impl<S, C, I, Req> Service<Req> for Classify<S, C, I>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    C: Classifier<S::Response> + Clone,
    I: Idempotency<Req>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = future::ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|error| {
            // No request was sent yet, so nothing can have run twice: idempotent.
            classified_error::<S::Response, _, _>(&self.classifier, error)
        })
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let idempotent = self.idempotency.is_idempotent(&request);
        future::ResponseFuture::new(
            self.inner.call(request),
            self.classifier.clone(),
            idempotent,
        )
    }
}
