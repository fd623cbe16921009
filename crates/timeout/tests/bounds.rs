//! Property: for any attempt timeout, request deadline and service latency, a call ends at
//! exactly the smallest of the three, with the error that names the bound that won.

use std::time::Duration;

use proptest::prelude::*;
use seawall_classify::{DeadlineExceeded, WithDeadline, cause_ref};
use seawall_timeout::{AttemptTimeoutLayer, error::Elapsed};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

fn run(
    timeout_ms: u64,
    deadline_ms: Option<u64>,
    latency_ms: u64,
) -> (Duration, Result<(), String>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let layer = AttemptTimeoutLayer::try_new(Duration::from_millis(timeout_ms)).unwrap();
        let mut service = layer.layer(service_fn(move |_: WithDeadline<()>| async move {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
            Ok::<_, std::io::Error>(())
        }));
        let start = Instant::now();
        let mut request = WithDeadline::new(());
        if let Some(d) = deadline_ms {
            request = request.deadline_at(start + Duration::from_millis(d));
        }
        let result = service.ready().await.unwrap().call(request).await;
        let outcome = result.map_err(|err| {
            if cause_ref::<DeadlineExceeded>(&err).is_some() {
                "deadline".to_owned()
            } else if cause_ref::<Elapsed>(&err).is_some() {
                "elapsed".to_owned()
            } else {
                err.to_string()
            }
        });
        (start.elapsed(), outcome)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_call_ends_at_the_smallest_bound(
        timeout in 1u64..500,
        deadline in proptest::option::of(0u64..500),
        latency in 0u64..700,
    ) {
        let (took, outcome) = run(timeout, deadline, latency);
        let bound = deadline.map_or(timeout, |d| d.min(timeout));
        let ms = |n| Duration::from_millis(n);
        if deadline == Some(0) {
            prop_assert_eq!(took, ms(0));
            prop_assert_eq!(outcome, Err("deadline".to_owned()));
        } else if latency < bound {
            prop_assert_eq!(took, ms(latency));
            prop_assert_eq!(outcome, Ok(()));
        } else if latency > bound {
            prop_assert_eq!(took, ms(bound));
            let which = if deadline.is_some_and(|d| d < timeout) { "deadline" } else { "elapsed" };
            prop_assert_eq!(outcome, Err(which.to_owned()));
        } else {
            // Response and timer due in the same instant: either may win, never later.
            prop_assert_eq!(took, ms(bound));
        }
    }
}
