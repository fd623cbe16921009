//! reqwest: `reqwest::Error` and `reqwest::Response` (feature `reqwest`).
//!
//! | reqwest | class |
//! |---|---|
//! | a `Response`, through [`HttpClassifier`] | by status and `Retry-After`, as an `http::Response` (see [`http`](crate::http)): a 503 with `Retry-After: 2` is `Overloaded`, retry after 2 s |
//! | an error with a status (`error_for_status()`) | by status: a 503 is `Overloaded`, retry (reqwest drops the headers, so a `Retry-After` is lost: classify the response instead) |
//! | a timeout (`Client::timeout`, `RequestBuilder::timeout`) | `Timeout`, retry |
//! | could not connect | `Connect`, retry: nothing was sent |
//! | building the request (a bad URL, a bad header) | `Invalid`, never |
//! | anything else | the error's `source()` chain decides: a connection closed before the whole response came is `Disconnect` (see [`classify_hyper`](crate::http::classify_hyper)) |

//!
//! Behind the standard pipeline, send `http::Request<Bytes>`s (which a retrying pipeline can
//! clone, and whose extensions carry the deadline) through the facade's `seawall::http::Reqwest`
//! and the HTTP preset: a 503 *response* is then retried after its `Retry-After` with no
//! classifier of your own, and with `collect_body` a body cut mid-stream is the attempt's
//! error (`Disconnect`, retried when the request may be replayed). After the last attempt a
//! failing response is the answer (`Ok(503)`): the upstream did answer. (`tests/tests/
//! http_bodies.rs` runs it against a server on loopback.)

use crate::{AsError, Class, Classifier, FailureKind, HttpClassifier, RetryHint, known_class};

/// Classifies a `reqwest::Error`; see the [module docs](self). `None` when only its source
/// chain can tell.
#[must_use]
pub fn classify(error: &reqwest::Error) -> Option<Class> {
    use FailureKind as K;
    if error.is_timeout() {
        return Some(Class::failure(K::Timeout, RetryHint::Retry));
    }
    if error.is_connect() {
        return Some(Class::failure(K::Connect, RetryHint::Retry));
    }
    if let Some(status) = error.status() {
        return Some(crate::http::classify_status(status, None));
    }
    if error.is_builder() {
        return Some(Class::failure(K::Invalid, RetryHint::Never));
    }
    None
}

impl<E: AsError> Classifier<reqwest::Response, E> for HttpClassifier {
    fn classify_response(&self, response: &reqwest::Response) -> Option<Class> {
        Some(crate::http::classify_parts(
            response.status(),
            response.headers(),
        ))
    }

    fn classify_error(&self, error: &E) -> Option<Class> {
        known_class(error.as_error())
    }
}
