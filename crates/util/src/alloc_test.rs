//! The allocation-counting harness of the test suites: the counting allocator, and the loop
//! every crate's `tests/allocations.rs` runs.
//!
//! Each allocation test is a test binary of its own (so that no other test's allocations
//! are counted) that installs the counting allocator and calls [`allocations_per_call`]:
//!
//! ```
//! use std::convert::Infallible;
//! use std::future::{Ready, ready};
//! use std::task::{Context, Poll};
//!
//! use seawall_util::alloc_test::{Warmup, allocations_per_call};
//!
//! seawall_util::install_counting_allocator!();
//!
//! /// A service that answers at once, without allocating.
//! struct Echo;
//!
//! impl tower_service::Service<u64> for Echo {
//!     type Response = u64;
//!     type Error = Infallible;
//!     type Future = Ready<Result<u64, Infallible>>;
//!     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
//!         Poll::Ready(Ok(()))
//!     }
//!     fn call(&mut self, n: u64) -> Self::Future {
//!         ready(Ok(n))
//!     }
//! }
//!
//! fn main() {
//!     let stats = allocations_per_call(|| Echo, |n| n, Warmup::calls(1));
//!     assert_eq!(stats.allocations, 0, "{stats:?}");
//! }
//! ```

use std::fmt::Debug;
use std::future::poll_fn;
use std::time::Duration;

pub use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};
use tower_service::Service;

/// Installs the counting allocator as the test binary's global allocator.
#[macro_export]
macro_rules! install_counting_allocator {
    () => {
        #[global_allocator]
        static SEAWALL_COUNTING_ALLOCATOR: &$crate::alloc_test::StatsAlloc<::std::alloc::System> =
            &$crate::alloc_test::INSTRUMENTED_SYSTEM;
    };
}

/// How the service is warmed up before counting.
#[derive(Debug, Clone, Copy)]
pub struct Warmup {
    calls: u64,
    tick: Option<Duration>,
}

impl Warmup {
    /// `calls` calls before counting, on a clock that does not move.
    #[must_use]
    pub const fn calls(calls: u64) -> Self {
        Warmup { calls, tick: None }
    }

    /// Moves the paused clock forward by `tick` every ten calls, while warming up and while
    /// counting, so that every time window (breaker buckets, budget epochs) rolls over before
    /// anything is counted and keeps rolling over while it is.
    #[must_use]
    pub const fn advancing(mut self, tick: Duration) -> Self {
        self.tick = Some(tick);
        self
    }
}

/// Calls counted by [`allocations_per_call`].
pub const COUNTED_CALLS: u64 = 1_000;

/// Builds a service with `make` on a paused current-thread runtime, warms it up, then
/// counts the allocations of [`COUNTED_CALLS`] calls (`ready`, then `call` with
/// `request(i)`, awaited; a failed call panics), in [`ROUNDS`] rounds, and returns the round
/// with the fewest. Needs the counting allocator
/// ([`install_counting_allocator!`](crate::install_counting_allocator)).
///
/// Why rounds: the count is process-wide, and on a loaded machine the test harness's own
/// thread (printing the test's name) can allocate while a round runs (seen in CI: 4
/// allocations, 900 bytes, in one run of twenty under load). A service that allocates per
/// call allocates in every round, at least [`COUNTED_CALLS`] times; a stranger's one-off
/// allocation lands in one round at most.
pub fn allocations_per_call<S, Req>(
    make: impl FnOnce() -> S,
    request: impl Fn(u64) -> Req,
    warmup: Warmup,
) -> Stats
where
    S: Service<Req>,
    S::Error: Debug,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused tokio runtime");
    runtime.block_on(async {
        let mut service = make();
        let mut calls = async |from: u64, to: u64| {
            for i in from..to {
                if let Some(tick) = warmup.tick
                    && i % 10 == 0
                {
                    tokio::time::advance(tick).await;
                }
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .expect("the service is ready");
                service.call(request(i)).await.expect("the call succeeds");
            }
        };
        calls(0, warmup.calls).await;
        let mut fewest = None;
        for round in 0..ROUNDS {
            let from = warmup.calls + round * COUNTED_CALLS;
            let region = Region::new(&INSTRUMENTED_SYSTEM);
            calls(from, from + COUNTED_CALLS).await;
            fewest = fewer(fewest, region.change());
        }
        fewest.expect("at least one round")
    })
}

/// The round with fewer allocations.
fn fewer(best: Option<Stats>, round: Stats) -> Option<Stats> {
    match best {
        Some(best) if best.allocations <= round.allocations => Some(best),
        _ => Some(round),
    }
}

/// Rounds counted by [`allocations_per_call`], the fewest allocations of which it returns.
pub const ROUNDS: u64 = 3;

/// Runs `f` in [`ROUNDS`] counted rounds and returns the fewest allocations of one, for a
/// test that counts a loop of its own (see [`allocations_per_call`] for why rounds).
pub fn fewest_allocations(mut f: impl FnMut()) -> Stats {
    let mut fewest = None;
    for _ in 0..ROUNDS {
        let region = Region::new(&INSTRUMENTED_SYSTEM);
        f();
        fewest = fewer(fewest, region.change());
    }
    fewest.expect("at least one round")
}
