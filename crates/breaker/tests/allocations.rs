//! The closed path allocates nothing. A test binary of its own, so that no other test's
//! allocations are counted.

use std::alloc::System;

use seawall_breaker::{CircuitBreakerLayer, CountWindow};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service, ServiceExt, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn the_closed_path_does_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let layer = CircuitBreakerLayer::builder()
            .consecutive_faults(5)
            .count_window(CountWindow::new(100).min_calls(50).failure_rate(0.5))
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|x: u64| async move {
            Ok::<_, std::io::Error>(x + 1)
        }));
        service.ready().await.unwrap().call(0).await.unwrap();

        let region = Region::new(GLOBAL);
        for i in 0..1_000 {
            assert_eq!(service.ready().await.unwrap().call(i).await.unwrap(), i + 1);
        }
        let stats = region.change();
        assert_eq!(stats.allocations, 0, "{stats:?}");
    });
}
