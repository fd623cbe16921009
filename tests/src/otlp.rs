//! A small OTLP/HTTP receiver: it keeps every request body by path, and decodes the spans.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
pub use opentelemetry_proto::tonic::trace::v1::Span;

/// What the receiver got: (path, body) in arrival order.
pub type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Starts the receiver on a free loopback port.
pub async fn start() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let store = store.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request.into_body().collect().await?.to_bytes().to_vec();
                        store.lock().unwrap().push((path, body));
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

/// Every export the receiver got at `path`, decoded as `M`.
fn decoded<M: prost::Message + Default>(received: &Received, path: &str) -> Vec<M> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| at == path)
        .map(|(_, body)| M::decode(body.as_slice()).unwrap())
        .collect()
}

/// Every batch of spans the receiver got, with its resource.
fn resource_spans(received: &Received) -> impl Iterator<Item = ResourceSpans> {
    decoded::<ExportTraceServiceRequest>(received, "/v1/traces")
        .into_iter()
        .flat_map(|export| export.resource_spans)
}

/// Every span the receiver got, decoded with the OpenTelemetry protobuf definitions.
pub fn spans(received: &Received) -> Vec<Span> {
    resource_spans(received)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

/// The resources the spans were exported with.
pub fn span_resources(received: &Received) -> Vec<Resource> {
    resource_spans(received)
        .filter_map(|r| r.resource)
        .collect()
}

/// The name of every metric the receiver got.
pub fn metric_names(received: &Received) -> Vec<String> {
    decoded::<ExportMetricsServiceRequest>(received, "/v1/metrics")
        .into_iter()
        .flat_map(|export| export.resource_metrics)
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .map(|m| m.name)
        .collect()
}

/// A span attribute as text (strings as they are, integers in decimal).
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        })
}
