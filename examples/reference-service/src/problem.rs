//! Error responses: `application/problem+json` (RFC 9457) with a type, a title, the status
//! and a detail written for the client. Nothing from a dependency's error goes into them.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use seawall::{Error, FailureKind};
use serde::Serialize;

/// The response body type of every route.
pub type Body = Full<Bytes>;

/// Where the problem types are documented (each type is an anchor of the service's README).
const TYPE_BASE: &str =
    "https://github.com/seawall-rs/seawall/blob/main/examples/reference-service/README.md#problem-";

#[derive(Serialize)]
struct Problem<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

/// A problem response: `slug` names its type (`#problem-<slug>` in the README).
pub fn problem(status: StatusCode, slug: &str, title: &str, detail: &str) -> Response<Body> {
    let body = serde_json::to_vec(&Problem {
        r#type: format!("{TYPE_BASE}{slug}"),
        title,
        status: status.as_u16(),
        detail,
    })
    .unwrap_or_default();
    respond(status, "application/problem+json", body)
}

/// A response with `status`, a `Content-Type` and a whole body: every route answers with one.
pub fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// 400: the request cannot be read.
pub fn bad_request(detail: &str) -> Response<Body> {
    problem(
        StatusCode::BAD_REQUEST,
        "bad-request",
        "Bad request",
        detail,
    )
}

/// 404: nothing here.
pub fn not_found(detail: &str) -> Response<Body> {
    problem(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
}

/// 405 with the methods the route allows.
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        &format!("this resource allows {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// 422: well-formed, but not acceptable.
pub fn unprocessable(detail: &str) -> Response<Body> {
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        "Unprocessable request",
        detail,
    )
}

/// 504: the request's deadline passed.
pub fn deadline_exceeded() -> Response<Body> {
    problem(
        StatusCode::GATEWAY_TIMEOUT,
        "deadline-exceeded",
        "Deadline exceeded",
        "the request could not be completed within its deadline",
    )
}

/// 500, for what is nobody's fault but ours. Details go to the log, not to the client.
pub fn internal() -> Response<Body> {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "the request failed; the error was logged",
    )
}

/// The answer to a failed dependency call, from its class alone: 503 with `Retry-After`
/// when the dependency is unavailable, overloaded or refused locally (breaker open, queue
/// full, budget spent), 504 when time ran out, 500 otherwise (the service sends only valid
/// requests, so a dependency calling one invalid is a bug here).
pub fn dependency_error(dependency: &str, error: &Error) -> Response<Body> {
    let (status, retry_after) = seawall::http::response_parts(error);
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            let detail = match error.kind() {
                Some(FailureKind::Rejected) => {
                    format!("{dependency} is failing or overloaded; the request was not attempted")
                }
                Some(FailureKind::Overloaded) => format!("{dependency} is overloaded"),
                _ => format!("{dependency} is unavailable"),
            };
            let mut response = problem(status, "unavailable", "Service unavailable", &detail);
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        StatusCode::GATEWAY_TIMEOUT => deadline_exceeded(),
        _ => internal(),
    }
}
