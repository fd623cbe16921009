//! [`ClientSpan`].

use std::sync::Arc;
use std::task::{Context, Poll};

use seawall_classify::{Classifier, DefaultClassifier, Error};
use tower_service::Service;
use tracing::Level;
use tracing::level_filters::LevelFilter;

use crate::ClientSpanConfig;
use crate::future::{ClientSpanFuture, Observed};

/// A service in a client span; built by [`ClientSpanLayer`](crate::ClientSpanLayer).
#[derive(Clone, Debug)]
pub struct ClientSpan<S, C = DefaultClassifier> {
    pub(crate) inner: S,
    pub(crate) config: Option<Arc<ClientSpanConfig>>,
    pub(crate) classifier: C,
}

seawall_classify::inner_accessors!(impl[S, C] ClientSpan<S, C>);

impl<S, C, Req> Service<Req> for ClientSpan<S, C>
where
    S: Service<Req, Error = Error>,
    C: Classifier<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ClientSpanFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let Some(config) = &self.config else {
            return ClientSpanFuture::bare(self.inner.call(request));
        };
        // No subscriber wants the span's level or the metric's (TRACE): one relaxed load.
        let max = LevelFilter::current();
        if max < config.level && max < LevelFilter::TRACE {
            return ClientSpanFuture::bare(self.inner.call(request));
        }
        let span = config.span();
        // The call metric, when a metrics subscriber listens (a level check otherwise).
        let started = tracing::enabled!(target: "seawall::client", Level::TRACE)
            .then(tokio::time::Instant::now);
        if span.is_disabled() && started.is_none() {
            return ClientSpanFuture::bare(self.inner.call(request));
        }
        // The layers below decide in `call` (a breaker's refusal, a full queue): inside.
        let future = span.in_scope(|| self.inner.call(request));
        // Boxed: the future stays one word larger than the inner one when nothing
        // listens; a listening subscriber allocates per span anyway.
        let observed = Box::new(Observed {
            span,
            classifier: self.classifier.clone(),
            started,
            config: config.clone(),
        });
        ClientSpanFuture::observed(future, observed)
    }
}
