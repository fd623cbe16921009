//! The hedge layer allocates nothing per call on its closed path: a request answered before
//! its hedge delay, with a fixed or a learnt delay. A test binary of its own, so that no other
//! test's allocations are counted.

use std::time::Duration;

use seawall_classify::{AssumeIdempotent, Error, WithDeadline};
use seawall_hedge::HedgeLayer;
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn the_hedge_layer_does_not_allocate_per_call() {
    for learnt in [false, true] {
        let stats = allocations_per_call(
            || {
                let inner = service_fn(|request: WithDeadline<u64>| async move {
                    Ok::<_, Error>(request.into_inner() + 1)
                });
                let builder = HedgeLayer::builder(AssumeIdempotent);
                let builder = if learnt {
                    // Learnt from the warm-up calls: every call is timed and counted.
                    builder.min_samples(1)
                } else {
                    builder.after(Duration::from_millis(50))
                };
                builder.build().unwrap().layer(inner)
            },
            |i| WithDeadline::new(i).deadline_in(Duration::from_secs(1)),
            Warmup::calls(64).advancing(Duration::from_millis(700)),
        );
        assert_eq!(stats.allocations, 0, "learnt {learnt}: {stats:?}");
    }
}
