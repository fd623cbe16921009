//! A call admitted at once allocates nothing. A test binary of its own, so that no other
//! test's allocations are counted.

use std::alloc::System;
use std::time::Duration;

use seawall_classify::WithDeadline;
use seawall_limit::ConcurrencyLimitLayer;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service, ServiceExt, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn admitted_calls_do_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let layer = ConcurrencyLimitLayer::builder(4)
            .queue(16)
            .max_wait(Duration::from_millis(100))
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|req: WithDeadline<u64>| async move {
            Ok::<_, std::io::Error>(req.into_inner() + 1)
        }));
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(0))
            .await
            .unwrap();

        let region = Region::new(GLOBAL);
        for i in 0..1_000 {
            let out = service
                .ready()
                .await
                .unwrap()
                .call(WithDeadline::new(i))
                .await
                .unwrap();
            assert_eq!(out, i + 1);
        }
        let stats = region.change();
        assert_eq!(stats.allocations, 0, "{stats:?}");
    });
}
