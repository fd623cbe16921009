//! Several processes sharing one fleet-wide rate limit and one concurrency budget through
//! Redis, and the figures that say whether they hold: the admitted rate across every
//! process, the most calls in flight at a shared server, how soon a killed process's permits
//! return, and what a Redis outage costs.
//!
//! The binary (`seawall-fleet-demo`) is both the parent that runs a measurement and the
//! worker processes it starts (`worker` subcommand); the tests drive the same functions.
//! `worker.rs` is one worker, `server.rs` the shared server, `runs.rs` the measurements.

mod runs;
mod server;
mod worker;

pub use self::runs::{
    BudgetFigures, OutageFigures, RateFigures, WorkerOutput, budget_run, crash_run, outage_run,
    rate_run,
};
pub use self::server::CountingServer;
use self::worker::*;
pub use self::worker::{Tick, WorkerArgs, WorkerReport, worker};

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seawall_chaos::proxy::Proxy;
use seawall_classify::Error;
use seawall_fleet::error::{BudgetSpent, RateLimited};
use seawall_fleet::{ConcurrencyBudgetLayer, Fleet, RateLimitLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A name no other run uses.
pub fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), unix_ms())
}
