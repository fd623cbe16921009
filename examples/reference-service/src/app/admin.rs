//! `/admin/breakers`: the breakers' state, forced open or closed, behind a token.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;

use crate::problem::{self, Body};

use super::health::breaker_json;
use super::*;

impl App {
    /// `/admin/breakers[/{name}/reset|isolate]`: 404 when admin is off, 401 without the
    /// token, then the route.
    pub(super) fn admin(&self, request: &Request<Incoming>, rest: &[&str]) -> Response<Body> {
        let Some(token) = &self.inner.config.admin_token else {
            return problem::not_found("no such resource");
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(presented, token.as_bytes()) {
            let mut response = problem::problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "the admin endpoints need Authorization: Bearer <ADMIN_TOKEN>",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"admin\""),
            );
            return response;
        }
        let breakers = self.breakers();
        match rest {
            [] | [""] => {
                if request.method() != Method::GET {
                    return problem::method_not_allowed("GET");
                }
                let list: Vec<_> = breakers.iter().map(breaker_json).collect();
                json_response(StatusCode::OK, &json!({ "breakers": list }))
            }
            [name, action @ ("reset" | "isolate")] => {
                if request.method() != Method::POST {
                    return problem::method_not_allowed("POST");
                }
                let Some(breaker) = breakers.iter().find(|b| b.name() == *name) else {
                    return problem::not_found("no breaker has this name");
                };
                if *action == "reset" {
                    breaker.reset();
                } else {
                    breaker.force_open();
                }
                tracing::warn!(
                    breaker = breaker.name(),
                    action,
                    "breaker changed by an admin"
                );
                json_response(StatusCode::OK, &breaker_json(breaker))
            }
            _ => problem::not_found("no such resource"),
        }
    }
}

/// Compares every byte whatever the first difference, so the time taken says nothing about
/// how much of a guess was right (only whether its length was).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (i, &expected) in b.iter().enumerate() {
        let presented = a.get(i).copied().unwrap_or(0);
        difference |= usize::from(presented ^ expected);
    }
    difference == 0
}
