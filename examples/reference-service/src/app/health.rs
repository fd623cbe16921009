//! `GET /health`: each dependency's state, breaker, limit and last failure.

use std::time::Duration;

use http::{Response, StatusCode};
use seawall::breaker::{BreakerHandle, State};
use serde_json::json;

use crate::deps::{self};
use crate::problem::Body;

use super::*;

impl App {
    /// `/health`: both pings at once (each bounded), breakers, pool and limits.
    pub async fn health(&self) -> Response<Body> {
        let (db, cache) = (&self.inner.db, &self.inner.cache);
        let ((db_ok, db_ping), (cache_ok, cache_ping)) =
            tokio::join!(timed(ping_db(db)), timed(ping_cache(cache)));
        let db_status = dependency_status(db_ok, db_ping, db.breaker.as_ref());
        let cache_status = dependency_status(cache_ok, cache_ping, cache.breaker.as_ref());
        let overall = match (db_status, cache_status) {
            ("down", _) => "down",
            ("up", "up") => "ok",
            _ => "degraded",
        };
        let pool = db.pool.status();
        let body = json!({
            "status": overall,
            "dependencies": {
                "postgres": {
                    "status": db_status,
                    "breaker": db.breaker.as_ref().map(|b| b.state().as_str()),
                    "probes": db.breaker.as_ref().and_then(probes_json),
                    "last_failure": last_failure(&db.last_failure),
                    "ping_ms": db_ping.map(millis),
                    "pool": {
                        "max": pool.max_size,
                        "size": pool.size,
                        "available": pool.available,
                        "waiting": pool.waiting,
                    },
                    "limit": db.limit.as_ref().map(limit_json),
                },
                "redis": {
                    "status": cache_status,
                    "breaker": cache.breaker.as_ref().map(|b| b.state().as_str()),
                    "probes": cache.breaker.as_ref().and_then(probes_json),
                    "last_failure": last_failure(&cache.last_failure),
                    "ping_ms": cache_ping.map(millis),
                    "limit": cache.limit.as_ref().map(limit_json),
                },
            },
        });
        let status = if overall == "down" {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        json_response(status, &body)
    }

    pub(super) fn breakers(&self) -> Vec<BreakerHandle> {
        [&self.inner.db.breaker, &self.inner.cache.breaker]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Whether a ping succeeded; a failure is remembered as the dependency's last.
pub(super) fn recorded(result: Result<(), seawall::BoxError>, last: &deps::LastFailure) -> bool {
    match result {
        Ok(()) => true,
        Err(error) => {
            last.record(&seawall::classify::classified(error));
            false
        }
    }
}

/// `down` when the ping failed or the breaker refuses calls, `recovering` while it probes,
/// `slow` when the ping took longer than [`SLOW_PING`], `up` otherwise.
pub(super) fn dependency_status(
    ok: bool,
    ping: Option<Duration>,
    breaker: Option<&BreakerHandle>,
) -> &'static str {
    let state = breaker.map(BreakerHandle::state);
    if !ok || matches!(state, Some(State::Open | State::ForcedOpen)) {
        "down"
    } else if state == Some(State::HalfOpen) {
        "recovering"
    } else if ping.is_some_and(|p| p > SLOW_PING) {
        "slow"
    } else {
        "up"
    }
}

pub(super) fn last_failure(last: &deps::LastFailure) -> serde_json::Value {
    match last.get() {
        Some((kind, age)) => json!({ "class": kind.as_str(), "seconds_ago": millis(age) / 1e3 }),
        None => serde_json::Value::Null,
    }
}

/// What a breaker's recovery probe found: counts, and the last probe's result, age and time.
pub(super) fn probes_json(breaker: &BreakerHandle) -> Option<serde_json::Value> {
    let stats = breaker.probes()?;
    Some(json!({
        "succeeded": stats.succeeded,
        "failed": stats.failed,
        "last": stats.last.map(|last| json!({
            "ok": last.ok,
            "seconds_ago": millis(last.at.elapsed()) / 1e3,
            "took_ms": millis(last.took),
        })),
    }))
}

pub(super) fn limit_json(limit: &seawall::limit::LimitHandle) -> serde_json::Value {
    json!({
        "in_flight": limit.in_flight(),
        "queued": limit.queued(),
        "limit": limit.limit(),
    })
}

pub(super) fn breaker_json(breaker: &BreakerHandle) -> serde_json::Value {
    json!({
        "name": breaker.name(),
        "state": breaker.state().as_str(),
        "retry_after_ms": breaker.retry_after().map(|d| d.as_millis() as u64),
    })
}
