//! Futures of every layer, and of the whole pipeline, can be handed to `tokio::spawn` after
//! `ready().await` in the same task, even over a client whose error is already a `BoxError`.
//! The check is the compilation itself: the compiler's `Send` proof for such futures is
//! fragile (a function-pointer type in the stack once broke it). Both retry modes of the
//! pipeline, and a pipeline with stages switched off, are probed.

use seawall::prelude::*;
use std::time::Duration;
use tower::{Layer, Service, ServiceExt, service_fn};

fn client()
-> impl Service<WithDeadline<u32>, Response = u32, Error = seawall::BoxError, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(|r: WithDeadline<u32>| async move { Ok::<_, seawall::BoxError>(r.into_inner()) })
}

macro_rules! probe {
    ($name:ident, $svc:expr) => {
        #[tokio::test]
        async fn $name() {
            let mut svc = $svc;
            tokio::spawn(
                async move { svc.ready().await.unwrap().call(WithDeadline::new(1)).await },
            )
            .await
            .unwrap()
            .unwrap();
        }
    };
}

probe!(classify, ClassifyLayer::new().layer(client()));
probe!(
    deadline,
    DeadlineLayer::try_new(Duration::from_secs(1))
        .unwrap()
        .layer(client())
);
probe!(
    attempt,
    AttemptTimeoutLayer::try_new(Duration::from_secs(1))
        .unwrap()
        .layer(client())
);
probe!(
    retry,
    RetryLayer::builder().build().unwrap().layer(client())
);
probe!(
    breaker,
    CircuitBreakerLayer::builder()
        .build()
        .unwrap()
        .layer(client())
);
probe!(
    limit,
    ConcurrencyLimitLayer::builder(2)
        .build()
        .unwrap()
        .layer(client())
);

probe!(
    full_direct,
    tower::ServiceBuilder::new()
        .layer(DeadlineLayer::try_new(Duration::from_secs(1)).unwrap())
        .layer(RetryLayer::builder().build().unwrap())
        .layer(CircuitBreakerLayer::builder().build().unwrap())
        .layer(ConcurrencyLimitLayer::builder(2).build().unwrap())
        .layer(AttemptTimeoutLayer::try_new(Duration::from_secs(1)).unwrap())
        .layer(ClassifyLayer::new())
        .service(client())
);

probe!(
    standard_without_retry,
    StandardPipeline::new("x", 4)
        .no_retry()
        .no_deadline()
        .build()
        .unwrap()
        .layer(client())
);

probe!(
    standard,
    StandardPipeline::new("x", 4)
        .build()
        .unwrap()
        .layer(client())
);
