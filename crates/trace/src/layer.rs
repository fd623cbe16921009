//! [`ClientSpanLayer`].

use std::sync::Arc;

use seawall_classify::DefaultClassifier;
use tower_layer::Layer;

use crate::{ClientSpan, ClientSpanConfig};

/// Wraps a client in [`ClientSpanConfig`]'s span: see the [module docs](crate). The standard
/// pipeline puts one outermost; use it on its own around any stack whose error is Seawall's
/// [`Error`](seawall_classify::Error).
#[derive(Clone, Debug)]
pub struct ClientSpanLayer<C = DefaultClassifier> {
    config: Option<Arc<ClientSpanConfig>>,
    classifier: C,
}

impl ClientSpanLayer {
    /// Spans as `config` says; responses are successes (errors carry their class).
    #[must_use]
    pub fn new(config: ClientSpanConfig) -> Self {
        ClientSpanLayer {
            config: Some(Arc::new(config)),
            classifier: DefaultClassifier,
        }
    }
}

impl<C> ClientSpanLayer<C> {
    /// The classifier that says which responses are failures (an HTTP 503), for the span's
    /// status.
    #[must_use]
    pub fn classifier<C2>(self, classifier: C2) -> ClientSpanLayer<C2> {
        ClientSpanLayer {
            config: self.config,
            classifier,
        }
    }

    /// A layer that adds no span (the pipeline's
    /// `no_client_span`). The span is switched off
    /// inside its own service rather than by a seawall's `Stage` around it: the service
    /// already passes a call through bare when no subscriber wants its span, and that one
    /// branch serves both (a `Stage` around it moved the whole future once more: 1,436
    /// instructions per call against 1,313, `scripts/icount.sh`).
    #[must_use]
    pub fn off(classifier: C) -> Self {
        ClientSpanLayer {
            config: None,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for ClientSpanLayer<C> {
    type Service = ClientSpan<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientSpan {
            inner,
            config: self.config.clone(),
            classifier: self.classifier.clone(),
        }
    }
}
