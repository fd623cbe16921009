//! [`Reqwest`]: a `reqwest::Client` as a tower service of `http::Request`s, for the pipeline.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::ConfigError;
use tower_service::Service;

use super::collect::{CollectBody, CollectBodyLayer};

/// A `reqwest::Client` serving `http::Request<B>` (any body reqwest takes: `Bytes`, `String`,
/// `Vec<u8>`, `&'static str`), answering `http::Response<reqwest::Body>`.
///
/// A `reqwest::Request` cannot be cloned, so a retrying pipeline cannot hold one; an
/// `http::Request<Bytes>` can, carries its deadline in its extensions
/// ([`HasDeadline`](seawall_classify::HasDeadline)) and its idempotency in its method and
/// `Idempotency-Key` ([`HttpIdempotency`](seawall_classify::HttpIdempotency)): the HTTP
/// preset then works as it is, classifying responses by status and `Retry-After`. With
/// [`collect_body`](Self::collect_body) each response's body is read within the attempt, so a
/// body cut mid-stream is retried (when the request may be replayed) and counted:
///
/// ```no_run
/// use bytes::Bytes;
/// use seawall::StandardPipeline;
/// use seawall::http::Reqwest;
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let api = StandardPipeline::http("api", 32)
///     .build()?
///     .layer(Reqwest::new(reqwest::Client::new()).collect_body(1 << 20)?);
/// let request = http::Request::get("http://127.0.0.1:8080/items/1").body(Bytes::new())?;
/// let response = api.oneshot(request).await?;
/// // A 503 is retried after its Retry-After; after the last attempt it is the answer.
/// println!("{} {:?}", response.status(), response.body());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Reqwest {
    client: reqwest::Client,
}

impl Reqwest {
    /// Sends requests with `client`.
    #[must_use]
    pub fn new(client: reqwest::Client) -> Self {
        Reqwest { client }
    }

    /// This client, with each response's body read to its end (at most `limit` bytes) within
    /// the call: see [`CollectBody`].
    pub fn collect_body(self, limit: usize) -> Result<CollectBody<Reqwest>, ConfigError> {
        Ok(tower_layer::Layer::layer(
            &CollectBodyLayer::new(limit)?,
            self,
        ))
    }

    /// The wrapped client.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl<B: Into<reqwest::Body>> Service<http::Request<B>> for Reqwest {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = ReqwestFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> ReqwestFuture {
        ReqwestFuture {
            state: match reqwest::Request::try_from(request) {
                Ok(request) => State::Sent {
                    pending: Box::pin(self.client.execute(request)),
                },
                Err(error) => State::Failed { error: Some(error) },
            },
        }
    }
}

pin_project! {
    /// The future of [`Reqwest`]: the response's head.
    pub struct ReqwestFuture {
        #[pin]
        state: State,
    }
}

/// reqwest's own future cannot be named: boxed (one allocation next to reqwest's many).
type Pending =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + 'static>>;

pin_project! {
    #[project = StateProj]
    enum State {
        Sent {
            pending: Pending,
        },
        // The request could not be made (a URL reqwest refuses): a builder error, `Invalid`.
        Failed {
            error: Option<reqwest::Error>,
        },
    }
}

impl fmt::Debug for ReqwestFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestFuture").finish_non_exhaustive()
    }
}

impl Future for ReqwestFuture {
    type Output = Result<http::Response<reqwest::Body>, reqwest::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent { pending } => {
                Poll::Ready(ready!(pending.as_mut().poll(cx)).map(Into::into))
            }
            StateProj::Failed { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion")))
            }
        }
    }
}
