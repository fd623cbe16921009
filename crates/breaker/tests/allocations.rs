//! The closed path allocates nothing. A test binary of its own, so that no other test's
//! allocations are counted.

use std::time::Duration;

use seawall_breaker::{CircuitBreakerLayer, CountWindow, TimeWindow};
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn the_closed_path_does_not_allocate() {
    let stats = allocations_per_call(
        || {
            CircuitBreakerLayer::builder()
                .consecutive_faults(5)
                .count_window(CountWindow::new(100).min_calls(50).failure_rate(0.5))
                .time_window(TimeWindow::new(Duration::from_secs(10), 10).failure_rate(0.5))
                .build()
                .unwrap()
                .layer(service_fn(|x: u64| async move {
                    Ok::<_, std::io::Error>(x + 1)
                }))
        },
        |i| i,
        // Across the time window's buckets, so that they are reused while counting.
        Warmup::calls(3_000).advancing(Duration::from_millis(70)),
    );
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
