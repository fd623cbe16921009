//! The classification layer allocates nothing on the success path. A test binary of its own,
//! so that no other test's allocations are counted.

use std::alloc::System;

use seawall_classify::{Class, Classifier, ClassifyLayer, DefaultClassifier, FailureKind};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service, ServiceExt, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn classify_layer_and_classifiers_do_not_allocate() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut service = ClassifyLayer::new().layer(service_fn(|x: u64| async move {
        Ok::<_, std::io::Error>(x + 1)
    }));
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);

    runtime.block_on(async {
        // Warm up anything lazily initialised.
        service.ready().await.unwrap().call(0).await.unwrap();

        let region = Region::new(GLOBAL);
        for i in 0..1_000 {
            let out = service.ready().await.unwrap().call(i).await.unwrap();
            assert_eq!(out, i + 1);
            let class = Classifier::<(), _>::classify(&DefaultClassifier, Err(&io));
            assert_eq!(class.kind(), Some(FailureKind::Disconnect));
            assert_ne!(class, Class::Success);
        }
        let stats = region.change();
        assert_eq!(stats.allocations, 0, "{stats:?}");
        assert_eq!(stats.reallocations, 0, "{stats:?}");
    });
}
