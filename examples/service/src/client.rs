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
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, BoxError> {
        let result = self.try_send(request).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, BoxError> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                self.sender.insert(sender)
            }
        };
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
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

/// A request to this server with a `Host` header.
pub fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
}
