//! Both timeout layers allocate nothing per call on the success path. A test binary of its
//! own, so that no other test's allocations are counted.

use std::time::Duration;

use seawall_classify::WithDeadline;
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};
use seawall_util::alloc_test::{Warmup, allocations_per_call};
use tower::{ServiceBuilder, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn deadline_and_attempt_timeout_do_not_allocate_per_call() {
    let stats = allocations_per_call(
        || {
            ServiceBuilder::new()
                .layer(DeadlineLayer::try_new(Duration::from_secs(30)).unwrap())
                .layer(
                    AttemptTimeoutLayer::try_new(Duration::from_secs(5))
                        .unwrap()
                        .include_readiness(true),
                )
                .service(service_fn(|req: WithDeadline<u64>| async move {
                    Ok::<_, std::io::Error>(req.into_inner() + 1)
                }))
        },
        WithDeadline::new,
        // Warm up the timer wheel and anything else initialised lazily.
        Warmup::calls(16),
    );
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
