//! The classification layer and the default classifier allocate nothing on the success
//! path. A test binary of its own, so that no other test's allocations are counted.

use seawall_classify::{Class, Classifier, ClassifyLayer, DefaultClassifier, FailureKind};
use seawall_util::alloc_test::{Warmup, allocations_per_call, fewest_allocations};
use tower::{Layer, service_fn};

seawall_util::install_counting_allocator!();

#[test]
fn classify_layer_and_the_default_classifier_do_not_allocate() {
    let stats = allocations_per_call(
        || {
            ClassifyLayer::new().layer(service_fn(|x: u64| async move {
                Ok::<_, std::io::Error>(x + 1)
            }))
        },
        |i| i,
        Warmup::calls(1),
    );
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");

    // In the same test: tests of one binary run at once, and the count is process-wide.
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    let stats = fewest_allocations(|| {
        for _ in 0..1_000 {
            let class = Classifier::<(), _>::classify(&DefaultClassifier, Err(&io));
            assert_eq!(class.kind(), Some(FailureKind::Disconnect));
            assert_ne!(class, Class::Success);
        }
    });
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
