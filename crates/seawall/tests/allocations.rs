//! The whole standard pipeline allocates nothing per successful request beyond the request's
//! own clone (none here: the request owns no heap memory). A test binary of its own, so that
//! no other test's allocations are counted.

use std::time::Duration;

use seawall::{StandardPipeline, WithDeadline};
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn the_standard_pipeline_does_not_allocate_per_request() {
    let stats = allocations_per_call(
        || {
            StandardPipeline::postgres(8)
                .build()
                .unwrap()
                .layer(service_fn(|req: WithDeadline<u64>| async move {
                    Ok::<_, std::io::Error>(req.into_inner() + 1)
                }))
        },
        WithDeadline::new,
        // Across several seconds, so that every time window (breaker buckets, retry budget
        // epochs) has rolled over before counting, and keeps rolling over while counting.
        Warmup::calls(3_000).advancing(Duration::from_millis(7)),
    );
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
