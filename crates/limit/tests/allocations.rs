//! A call admitted at once allocates nothing. A test binary of its own, so that no other
//! test's allocations are counted.

use std::time::Duration;

use seawall_classify::WithDeadline;
use seawall_limit::ConcurrencyLimitLayer;
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn admitted_calls_do_not_allocate() {
    let stats = allocations_per_call(
        || {
            ConcurrencyLimitLayer::builder(4)
                .queue(16)
                .max_wait(Duration::from_millis(100))
                .build()
                .unwrap()
                .layer(service_fn(|req: WithDeadline<u64>| async move {
                    Ok::<_, std::io::Error>(req.into_inner() + 1)
                }))
        },
        WithDeadline::new,
        Warmup::calls(1),
    );
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
