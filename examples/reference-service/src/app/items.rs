//! `POST /items` and `GET /items/{id}`: writes to PostgreSQL, reads through the cache.

use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use seawall::WithDeadline;
use serde::Deserialize;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::deps::{CacheOp, DbOp, DbReply, Item, NewItem};
use crate::problem::{self, Body};

use super::*;

impl App {
    pub(super) async fn create_item(
        &self,
        request: Request<Incoming>,
        deadline: Instant,
    ) -> Response<Body> {
        let (parts, body) = request.into_parts();
        if !is_json(&parts.headers) {
            return problem::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the item as Content-Type: application/json",
            );
        }
        let key = match parts
            .headers
            .get("idempotency-key")
            .map(HeaderValue::as_bytes)
        {
            None => return problem::bad_request("the Idempotency-Key header is required"),
            Some(key)
                if key.is_empty() || key.len() > 128 || !key.iter().all(u8::is_ascii_graphic) =>
            {
                return problem::bad_request(
                    "Idempotency-Key must be 1 to 128 visible ASCII characters",
                );
            }
            Some(key) => String::from_utf8_lossy(key).into_owned(),
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_BODY as u64) {
            // Read (and drop) a body of moderate size before answering: a client still
            // writing it when the connection closes gets a broken pipe instead of the 413.
            if declared.is_some_and(|length| length <= DRAIN_LIMIT as u64) {
                let _ = Limited::new(body, DRAIN_LIMIT).collect().await;
            }
            return too_large();
        }
        let bytes = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(_) => return problem::bad_request("the request body could not be read"),
        };
        let new = match parse_item(&bytes) {
            Ok((name, value)) => NewItem::new(key, name, value),
            Err(response) => return *response,
        };
        let db = &self.inner.db;
        let call = WithDeadline::new(DbOp::Insert(new)).deadline_at(deadline);
        match db.service.clone().oneshot(call).await {
            Ok(DbReply::Created(item)) => item_response(StatusCode::CREATED, &item, None, false),
            Ok(DbReply::Replayed(item)) => item_response(StatusCode::CREATED, &item, None, true),
            Ok(DbReply::KeyReused) => problem::unprocessable(
                "this Idempotency-Key was already used with a different body",
            ),
            Ok(DbReply::Found(_) | DbReply::Stale(_) | DbReply::Pong) => problem::internal(),
            Err(error) => self.failed("PostgreSQL", &db.last_failure, &error),
        }
    }

    pub(super) async fn get_item(&self, id: i64, deadline: Instant) -> Response<Body> {
        let cache = &self.inner.cache;
        let lookup = WithDeadline::new(CacheOp::Get(id)).deadline_at(deadline);
        let cache_state = match cache.service.clone().oneshot(lookup).await {
            Ok(Some(json)) => match serde_json::from_str::<Item>(&json) {
                Ok(item) if item.id == id => {
                    return item_response(StatusCode::OK, &item, Some("hit"), false);
                }
                _ => "miss",
            },
            Ok(None) => "miss",
            Err(error) => {
                cache.last_failure.record(&error);
                "bypass"
            }
        };
        let db = &self.inner.db;
        let call = WithDeadline::new(DbOp::Get(id)).deadline_at(deadline);
        match db.reads.clone().oneshot(call).await {
            Ok(DbReply::Stale(item)) => {
                // PostgreSQL could not answer (its breaker and /health say why): Redis's
                // stale copy did, and the response says so.
                item_response(StatusCode::OK, &item, Some("stale"), false)
            }
            Ok(DbReply::Found(Some(item))) => {
                if cache_state == "miss"
                    && let Ok(json) = serde_json::to_string(&item)
                {
                    let config = &self.inner.config;
                    let fill = CacheOp::Put(id, json, config.cache_ttl, config.stale_ttl);
                    let fill = WithDeadline::new(fill).deadline_at(deadline);
                    if let Err(error) = cache.service.clone().oneshot(fill).await {
                        cache.last_failure.record(&error);
                    }
                }
                item_response(StatusCode::OK, &item, Some(cache_state), false)
            }
            Ok(DbReply::Found(None)) => {
                let mut response = problem::not_found("no item has this id");
                response
                    .headers_mut()
                    .insert("x-cache", HeaderValue::from_static(cache_state));
                response
            }
            Ok(_) => problem::internal(),
            Err(error) => self.failed("PostgreSQL", &db.last_failure, &error),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemBody {
    name: String,
    value: i64,
}

/// Syntax errors are 400 (the body is not JSON); JSON of the wrong shape or with a name of
/// the wrong length is 422.
pub(super) fn parse_item(bytes: &[u8]) -> Result<(String, i64), Box<Response<Body>>> {
    let body: ItemBody = serde_json::from_slice(bytes).map_err(|error| {
        Box::new(match error.classify() {
            serde_json::error::Category::Data => problem::unprocessable(
                "the body must be {\"name\": string, \"value\": 64-bit integer} and nothing else",
            ),
            _ => problem::bad_request("the body is not valid JSON"),
        })
    })?;
    let length = body.name.chars().count();
    if !(1..=200).contains(&length) {
        return Err(Box::new(problem::unprocessable(
            "name must be 1 to 200 characters long",
        )));
    }
    Ok((body.name, body.value))
}

pub(super) fn item_response(
    status: StatusCode,
    item: &Item,
    cache: Option<&'static str>,
    replayed: bool,
) -> Response<Body> {
    let mut response = json_response(status, item);
    if let Some(cache) = cache {
        response
            .headers_mut()
            .insert("x-cache", HeaderValue::from_static(cache));
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
