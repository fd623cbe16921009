//! The test server: tonic's standard health service on a loopback port, behind a chaos layer
//! whose faults are answered as the gRPC status of their class, recording the `grpc-timeout`
//! of every call it receives.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use seawall_chaos::ChaosLayer;
use tonic::transport::Server;
use tower::{Layer, Service};

/// The service name the server reports as serving.
pub const SERVICE: &str = "seawall.Items";

type Req = http::Request<tonic::body::Body>;
type Res = http::Response<tonic::body::Body>;

/// The `grpc-timeout` of every call the server received, in order.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Option<String>>>>);

impl Seen {
    /// The headers seen so far.
    pub fn timeouts(&self) -> Vec<Option<String>> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// Serves the health service on a free loopback port, behind `chaos`; returns its URL and
/// what it saw. A fault `chaos` injects is answered as the gRPC status of its class.
pub async fn serve(chaos: ChaosLayer) -> std::io::Result<(String, Seen)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let seen = Seen::default();
    let layers = tower::ServiceBuilder::new()
        .layer(Record(seen.clone()))
        .layer(AnswerWithStatus)
        .layer(chaos);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        Server::builder()
            .layer(layers)
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    Ok((url, seen))
}

/// Answers a Seawall error from the layers inside (the chaos layer's faults) with the gRPC
/// status of its class, as a trailers-only response.
#[derive(Debug, Clone, Copy)]
struct AnswerWithStatus;

impl<S> Layer<S> for AnswerWithStatus {
    type Service = AnswerWithStatusService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AnswerWithStatusService { inner }
    }
}

#[derive(Debug, Clone)]
struct AnswerWithStatusService<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Req> for AnswerWithStatusService<S>
where
    S: Service<Req, Response = Res, Error = seawall::Error>,
    S::Future: Send + 'static,
{
    type Response = Res;
    type Error = Infallible;
    type Future = BoxFuture<Result<Res, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The health service is always ready; a readiness error would be a status too.
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            Ok(future
                .await
                .unwrap_or_else(|error| seawall::classify::grpc::into_status(error).into_http()))
        })
    }
}

/// Records each call's `grpc-timeout`.
#[derive(Debug, Clone)]
struct Record(Seen);

impl<S> Layer<S> for Record {
    type Service = RecordService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RecordService {
            inner,
            seen: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct RecordService<S> {
    inner: S,
    seen: Seen,
}

impl<S: Service<Req>> Service<Req> for RecordService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        self.seen.0.lock().expect("not poisoned").push(timeout);
        self.inner.call(request)
    }
}
