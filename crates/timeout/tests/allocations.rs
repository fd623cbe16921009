//! Both timeout layers allocate nothing per call on the success path. A test binary of its
//! own, so that no other test's allocations are counted.

use std::alloc::System;
use std::time::Duration;

use seawall_classify::WithDeadline;
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn deadline_and_attempt_timeout_do_not_allocate_per_call() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut service = ServiceBuilder::new()
            .layer(DeadlineLayer::try_new(Duration::from_secs(30)).unwrap())
            .layer(
                AttemptTimeoutLayer::try_new(Duration::from_secs(5))
                    .unwrap()
                    .include_readiness(true),
            )
            .service(service_fn(|req: WithDeadline<u64>| async move {
                Ok::<_, std::io::Error>(req.into_inner() + 1)
            }));
        // Warm up the timer wheel and anything else initialised lazily.
        for i in 0..16 {
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
