//! The whole standard pipeline allocates nothing per successful request beyond the request's
//! own clone (none here: the request owns no heap memory). A test binary of its own, so that
//! no other test's allocations are counted.

use std::alloc::System;
use std::time::Duration;

use seawall::{StandardPipeline, WithDeadline};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service, ServiceExt, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn the_standard_pipeline_does_not_allocate_per_request() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let layer = StandardPipeline::postgres(8).build().unwrap();
        let mut service = layer.layer(service_fn(|req: WithDeadline<u64>| async move {
            Ok::<_, std::io::Error>(req.into_inner() + 1)
        }));
        // Warm up across several seconds so that every time window (breaker buckets, retry
        // budget epochs) has rolled over at least once before counting.
        for i in 0..3_000 {
            if i % 10 == 0 {
                tokio::time::advance(Duration::from_millis(7)).await;
            }
            service
                .ready()
                .await
                .unwrap()
                .call(WithDeadline::new(i))
                .await
                .unwrap();
        }

        let region = Region::new(GLOBAL);
        for i in 0..1_000 {
            if i % 10 == 0 {
                tokio::time::advance(Duration::from_millis(7)).await;
            }
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
