//! The response future of [`Classify`](crate::Classify).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{BoxError, Classifier, Error};

pin_project! {
    /// Classifies the inner service's error, if any, once the call finishes.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        classifier: C,
        idempotent: bool,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn new(inner: F, classifier: C, idempotent: bool) -> Self {
        ResponseFuture {
            inner,
            classifier,
            idempotent,
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("idempotent", &self.idempotent)
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError> + 'static,
    C: Classifier<T>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match ready!(this.inner.poll(cx)) {
            Ok(response) => Poll::Ready(Ok(response)),
            Err(error) => {
                let error = crate::classified_error::<T, _, _>(this.classifier, error);
                let class = error.class().for_request(*this.idempotent);
                Poll::Ready(Err(error.with_class(class)))
            }
        }
    }
}
