//! axum: answering a caller from a Seawall error (feature `axum`).
//!
//! [`Error`] implements `IntoResponse`, so a handler returns `Result<T, seawall::Error>` and
//! every failure becomes a `application/problem+json` answer whose status comes from the
//! class alone ([`http::response_parts`](crate::http::response_parts): 503 with
//! `Retry-After` for refusals and overload, 504 for timeouts, 400 for the caller's own
//! mistakes, 500 otherwise). The body names the class, never the error's message: a
//! dependency's internals do not leak to the caller.
//!
//! ```
//! use axum_core::response::IntoResponse;
//! use seawall_classify::{Class, Error};
//!
//! let refused = Error::new(Class::rejected(std::time::Duration::from_millis(1500)), "breaker open");
//! let response = refused.into_response();
//! assert_eq!(response.status(), 503);
//! assert_eq!(response.headers()["retry-after"], "2");
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! ```
//!
//! The pipeline goes in the router's state, cloned per request (its breaker, limit and
//! budget are shared by every clone): `examples/axum-sqlx` is the whole pattern. As a layer
//! around routes, the pipeline's error has to become a response first, since axum's routes
//! cannot fail: `HandleErrorLayer::new(|e: seawall::Error| async move { e.into_response() })`
//! outside it.
//!
//! A handler returns `Result<_, seawall::Error>`, and `?` answers every failure in one place:
//!
//! ```
//! use std::time::Duration;
//! use axum_core::response::IntoResponse;
//! use seawall_classify::{Class, Error};
//!
//! // What an open breaker's refusal becomes: 503 with the time until its next probe.
//! let refused = Error::new(Class::rejected(Duration::from_secs(2)), "circuit breaker open");
//! let response = refused.into_response();
//! assert_eq!(response.status(), 503);
//! assert_eq!(response.headers()["retry-after"], "2");
//! ```

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::Error;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, retry_after) = crate::http::response_parts(&self);
        let kind = self.kind().map_or("none", |kind| kind.as_str());
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
