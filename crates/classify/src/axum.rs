//! axum: answering a caller from a Seawall error (feature `axum`).
//!
//! A handler returns `Result<T, Problem>`, and `?` answers every failure in one place: any
//! error converts into a [`Problem`] (a Seawall [`Error`] keeps its class; any other error
//! is classified by the [`DefaultClassifier`](crate::DefaultClassifier)), whose
//! `IntoResponse` is an `application/problem+json` answer with the status from the class
//! alone ([`http::response_parts`](crate::http::response_parts): 503 with `Retry-After` for
//! refusals and overload, 504 for timeouts, 400 for the caller's own mistakes, 500
//! otherwise). The body names the class, never the error's message: a dependency's
//! internals do not leak to the caller.
//!
//! `Problem` is a type of its own, not `IntoResponse` for `Error`, because `Error` lives in
//! seawall-core, which has no optional dependency (and so cannot know axum), and Rust lets
//! only the crate of the type or of the trait implement one for the other.
//!
//! ```
//! use std::time::Duration;
//! use axum_core::response::IntoResponse;
//! use seawall_classify::axum::Problem;
//! use seawall_classify::{Class, Error};
//!
//! // What an open breaker's refusal becomes: 503 with the time until its next probe.
//! let refused = Error::new(Class::rejected(Duration::from_millis(1500)), "circuit breaker open");
//! let response = Problem::from(refused).into_response();
//! assert_eq!(response.status(), 503);
//! assert_eq!(response.headers()["retry-after"], "2");
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//!
//! // In a handler, `?` converts: a Seawall error as it is, a client's error classified.
//! fn handler() -> Result<&'static str, Problem> {
//!     Err(std::io::Error::from(std::io::ErrorKind::TimedOut))?;
//!     Ok("never")
//! }
//! assert_eq!(handler().unwrap_err().into_response().status(), 504);
//! ```
//!
//! The pipeline goes in the router's state, cloned per request (its breaker, limit and
//! budget are shared by every clone): `examples/axum-sqlx` is the whole pattern. As a layer
//! around routes, the pipeline's error has to become a response first, since axum's routes
//! cannot fail: `HandleErrorLayer::new(|e: seawall::Error| async move { Problem::from(e) })`
//! outside it.

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::{BoxError, Error};

/// A Seawall error as axum's answer: see the [module docs](self). Any error converts into
/// one, so `?` works on a pipeline's errors and a client's alike.
#[derive(Debug)]
pub struct Problem(pub Error);

impl<E: Into<BoxError> + 'static> From<E> for Problem {
    fn from(error: E) -> Self {
        Problem(crate::classified(error))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (status, retry_after) = crate::http::response_parts(&self.0);
        let kind = self.0.kind().map_or("none", |kind| kind.as_str());
        // Every part is a fixed ASCII word or a number: nothing to escape.
        let body = format!(
            r#"{{"type":"about:blank","title":"{}","status":{},"seawall_class":"{kind}"}}"#,
            status.canonical_reason().unwrap_or("Error"),
            status.as_u16(),
        );
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
