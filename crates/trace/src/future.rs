//! The client span's response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{Classifier, Error, schema};
use tracing::Span;

use crate::ClientSpanConfig;

/// What a traced call keeps until it ends.
pub(crate) struct Observed<C> {
    pub(crate) span: Span,
    pub(crate) classifier: C,
    pub(crate) started: Option<tokio::time::Instant>,
    pub(crate) config: Arc<ClientSpanConfig>,
}

pin_project! {
    /// The response future of [`ClientSpan`]: the inner future, polled inside the
    /// span, which records the outcome when it ends.
    pub struct ClientSpanFuture<F, C> {
        #[pin]
        future: F,
        observed: Option<Box<Observed<C>>>,
    }
}

impl<F, C> ClientSpanFuture<F, C> {
    pub(crate) fn bare(future: F) -> Self {
        ClientSpanFuture {
            future,
            observed: None,
        }
    }
}

impl<F, C> ClientSpanFuture<F, C> {
    pub(crate) fn observed(future: F, observed: Box<Observed<C>>) -> Self {
        ClientSpanFuture {
            future,
            observed: Some(observed),
        }
    }
}

impl<F, C> fmt::Debug for ClientSpanFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpanFuture")
            .field("span", &self.observed.as_ref().map(|o| &o.span))
            .finish_non_exhaustive()
    }
}

impl<F, C, T> Future for ClientSpanFuture<F, C>
where
    F: Future<Output = Result<T, Error>>,
    C: Classifier<T>,
{
    type Output = Result<T, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(observed) = this.observed.as_ref() else {
            return this.future.poll(cx);
        };
        let span = &observed.span;
        let output = ready!(span.in_scope(|| this.future.poll(cx)));
        let class = match &output {
            Ok(response) => observed
                .classifier
                .classify_response(response)
                .unwrap_or(seawall_classify::Class::Success),
            Err(error) => error.class(),
        };
        let kind = class.kind().map(|kind| kind.as_str());
        span.record(schema::CLASS, class.as_str());
        if let Some(kind) = kind {
            span.record(schema::ERROR_TYPE, kind);
            span.record(schema::OTEL_STATUS_CODE, "error");
        }
        if let Some(started) = observed.started {
            // A metric only (TRACE: no log, no span event at the usual filters).
            tracing::trace!(
                target: "seawall::client",
                {
                    { schema::FIELD_CLIENT_DURATION } = started.elapsed().as_secs_f64(),
                    { schema::DEPENDENCY } = &*observed.config.name,
                    { schema::CLASS } = class.as_str(),
                    { schema::ERROR_TYPE } = kind.unwrap_or(""),
                },
                "call finished"
            );
        }
        Poll::Ready(output)
    }
}
