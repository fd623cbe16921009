use std::fmt;

use tower_layer::Layer;

use crate::{AssumeNotIdempotent, Classify, DefaultClassifier};

/// Wraps a client so that its errors become [`seawall_classify::Error`](crate::Error), each
/// carrying its [`Class`](crate::Class).
///
/// Put it innermost, directly around the client, so every layer above reads classified
/// errors in O(1). Responses pass through unchanged; layers that care about response
/// classes (an HTTP 503, say) classify them with the same classifier.
///
/// The idempotency policy decides whether a lost connection
/// ([`Disconnect`](crate::FailureKind::Disconnect)) may be retried; the default,
/// [`AssumeNotIdempotent`], says never.
///
/// ```
/// use seawall_classify::{AssumeIdempotent, BoxError, ClassifyLayer, Error, FailureKind};
/// use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut client = ServiceBuilder::new()
///     .layer(ClassifyLayer::new().idempotency(AssumeIdempotent))
///     .service(service_fn(|_: ()| async {
///         Err::<(), BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into())
///     }));
///
/// let err: Error = client.ready().await.unwrap().call(()).await.unwrap_err();
/// assert_eq!(err.kind(), Some(FailureKind::Disconnect));
/// assert!(err.class().is_retryable());
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct ClassifyLayer<C = DefaultClassifier, I = AssumeNotIdempotent> {
    classifier: C,
    idempotency: I,
}

impl ClassifyLayer {
    /// A layer with the [`DefaultClassifier`] and the [`AssumeNotIdempotent`] policy.
    #[must_use]
    pub fn new() -> Self {
        ClassifyLayer {
            classifier: DefaultClassifier,
            idempotency: AssumeNotIdempotent,
        }
    }
}

impl Default for ClassifyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<C, I> ClassifyLayer<C, I> {
    /// Uses `classifier` to classify errors. It is cloned once per call, so keep it cheap to
    /// clone (unit structs, closures without captures, or an `Arc`).
    #[must_use]
    pub fn classifier<C2>(self, classifier: C2) -> ClassifyLayer<C2, I> {
        ClassifyLayer {
            classifier,
            idempotency: self.idempotency,
        }
    }

    /// Uses `idempotency` to decide whether a request survives a lost connection.
    #[must_use]
    pub fn idempotency<I2>(self, idempotency: I2) -> ClassifyLayer<C, I2> {
        ClassifyLayer {
            classifier: self.classifier,
            idempotency,
        }
    }
}

impl<C: fmt::Debug, I> fmt::Debug for ClassifyLayer<C, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyLayer")
            .field("classifier", &self.classifier)
            .field("idempotency", &std::any::type_name::<I>())
            .finish()
    }
}

impl<S, C: Clone, I: Clone> Layer<S> for ClassifyLayer<C, I> {
    type Service = Classify<S, C, I>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify::new(inner, self.classifier.clone(), self.idempotency.clone())
    }
}
