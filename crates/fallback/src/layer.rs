//! The layer and its builder.

use std::fmt;
use std::sync::Arc;

use seawall_classify::{ConfigError, FailureKind, KindSet};
use tower_layer::Layer;

use crate::service::Shared;
use crate::{Fallback, KeepRequest, NoRequest};

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
    /// fallback, which then receives it in [`FallbackRequest::request`](crate::FallbackRequest::request). The request must be
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
    type Service = Fallback<S, F, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback {
            inner,
            shared: self.shared.clone(),
            _copy: self._copy.clone(),
        }
    }
}
