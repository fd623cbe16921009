//! A request that succeeds at once allocates nothing beyond its own clone (none here: the
//! request type owns no heap memory), budget deposit included. A test binary of its own, so
//! that no other test's allocations are counted.

use std::time::Duration;

use seawall_classify::WithDeadline;
use seawall_retry::RetryLayer;
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn successful_requests_do_not_allocate() {
    let stats = allocations_per_call(
        || {
            RetryLayer::builder().build().unwrap().layer(service_fn(
                |req: WithDeadline<u64>| async move { Ok::<_, std::io::Error>(req.into_inner() + 1) },
            ))
        },
        WithDeadline::new,
        // Across the budget's epochs, so that its buckets are reused while counting.
        Warmup::calls(3_000).advancing(Duration::from_millis(7)),
    );
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
