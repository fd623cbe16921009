//! The fallback layer allocates nothing per call when the primary answers. A test binary of
//! its own, so that no other test's allocations are counted.

use seawall_classify::Error;
use seawall_fallback::{FallbackLayer, FallbackRequest};
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn the_fallback_layer_does_not_allocate_per_call() {
    for keep_request in [false, true] {
        let stats = allocations_per_call(
            || {
                let fallback =
                    service_fn(|_: FallbackRequest<u64>| async { Ok::<_, Error>(0_u64) });
                let primary = service_fn(|request: u64| async move { Ok::<_, Error>(request + 1) });
                let builder = FallbackLayer::builder(fallback);
                if keep_request {
                    tower::util::Either::Left(
                        builder.keep_request().build().unwrap().layer(primary),
                    )
                } else {
                    tower::util::Either::Right(builder.build().unwrap().layer(primary))
                }
            },
            |i| i,
            Warmup::calls(16),
        );
        assert_eq!(
            stats.allocations, 0,
            "keep_request {keep_request}: {stats:?}"
        );
    }
}
