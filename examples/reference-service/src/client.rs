//! A small HTTP/1.1 client over one keep-alive connection, for the load run and the tests.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use seawall::BoxError;
use tokio::net::TcpStream;

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics when it is not: for tests).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One keep-alive HTTP/1.1 connection, remade after an error.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Client {
    /// A client of the server at `addr` (connected on first use).
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, sender: None }
    }

    /// Sends `request` and reads the whole answer; after an error the next call reconnects.
    ///
    /// The server may close a keep-alive connection after any answer (it does after an answer
    /// to a request whose body it did not read), and a request sent on it meanwhile is lost:
    /// a request the connection gave back unsent, or one that a reused connection closed on
    /// before any answer, is sent again once on a new connection. (Every request to this
    /// service may be sent twice: reads, rejected requests, and writes under an
    /// `Idempotency-Key`.)
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, BoxError> {
        let reused = self
            .sender
            .as_ref()
            .is_some_and(|sender| !sender.is_closed());
        let copy = reused.then(|| copy_of(&request));
        let result = match self.try_send(request).await {
            Err(Unsent::Request(request)) => {
                self.sender = None;
                self.try_send(*request).await
            }
            Err(Unsent::Closed(_)) if let Some(copy) = copy => {
                self.sender = None;
                self.try_send(copy).await
            }
            other => other,
        };
        result.map_err(|error| {
            self.sender = None;
            match error {
                Unsent::Request(_) => "the connection closed before the request was sent".into(),
                Unsent::Closed(error) | Unsent::Error(error) => error,
            }
        })
    }

    async fn try_send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, Unsent> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = TcpStream::connect(self.addr).await.map_err(boxed)?;
                stream.set_nodelay(true).map_err(boxed)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(boxed)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                self.sender.insert(sender)
            }
        };
        if sender.ready().await.is_err() {
            return Err(Unsent::Request(Box::new(request)));
        }
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut error) => {
                return Err(match error.take_message() {
                    Some(request) => Unsent::Request(Box::new(request)),
                    None => {
                        let error = error.into_error();
                        if error.is_incomplete_message() {
                            Unsent::Closed(error.into())
                        } else {
                            boxed(error)
                        }
                    }
                });
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(boxed)?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<Reply, BoxError> {
        self.send(request(Method::GET, path).body(Full::default()).unwrap())
            .await
    }

    /// `POST /items` with the JSON body `{"name", "value"}` and an `Idempotency-Key`.
    pub async fn post_item(
        &mut self,
        key: &str,
        name: &str,
        value: i64,
    ) -> Result<Reply, BoxError> {
        let body = serde_json::json!({ "name": name, "value": value }).to_string();
        self.send(
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await
    }
}

/// Why a send failed: the request came back unsent, the connection closed before any answer,
/// or something else went wrong.
enum Unsent {
    Request(Box<Request<Full<Bytes>>>),
    Closed(BoxError),
    Error(BoxError),
}

/// A copy of `request`, to send again.
fn copy_of(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

fn boxed(error: impl Into<BoxError>) -> Unsent {
    Unsent::Error(error.into())
}

/// A request to this server with a `Host` header.
pub fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
}
