//! Property: whatever calls are started, answered, timed out or dropped at whatever await
//! point through the whole pipeline, no limiter permit, queue place or breaker probe slot
//! leaks.

use std::task::Poll;
use std::time::Duration;

use proptest::prelude::*;
use seawall::breaker::CircuitBreakerLayer;
use seawall::limit::ConcurrencyLimitLayer;
use seawall::retry::{Backoff, RetryBudget, RetryLayer};
use seawall::{StandardPipeline, WithDeadline};
use tokio_test::task;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

#[derive(Debug, Clone)]
enum Op {
    Start,
    Poll(usize),
    Drop(usize),
    Answer(bool),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Start),
        3 => any::<usize>().prop_map(Op::Poll),
        2 => any::<usize>().prop_map(Op::Drop),
        2 => any::<bool>().prop_map(Op::Answer),
        2 => (1u64..400).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn nothing_leaks_whatever_is_dropped_when(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async move {
            let layer = StandardPipeline::new("dep", 2)
                .deadline(Duration::from_millis(1_000))
                .attempt_timeout(Duration::from_millis(300))
                .retry(
                    RetryLayer::builder()
                        .max_attempts(3)
                        .backoff(Backoff::constant(Duration::from_millis(50)))
                        .budget(RetryBudget::new(Duration::from_secs(10), 10, 0.2).unwrap()),
                )
                .circuit_breaker(
                    CircuitBreakerLayer::builder()
                        .consecutive_faults(2)
                        .open_duration(Duration::from_millis(500))
                        .permitted_probes(1),
                )
                .concurrency_limit(
                    ConcurrencyLimitLayer::builder(2).queue(2).max_wait(Duration::from_millis(100)),
                )
                .build()
                .unwrap();
            let limit = layer.limit().unwrap();
            let (client, mut handle) = mock::pair::<WithDeadline<u32>, u32>();
            handle.allow(u64::MAX);
            let mut service = layer.layer(client);
            let mut calls = Vec::new();
            let mut pending = std::collections::VecDeque::new();

            for op in ops {
                match op {
                    Op::Start => {
                        let ready = service.ready().await.unwrap();
                        let mut call = task::spawn(ready.call(WithDeadline::new(0)));
                        if call.poll().is_pending() {
                            calls.push(call);
                        }
                    }
                    Op::Poll(i) if !calls.is_empty() => {
                        let i = i % calls.len();
                        if calls[i].poll().is_ready() {
                            drop(calls.swap_remove(i));
                        }
                    }
                    Op::Drop(i) if !calls.is_empty() => {
                        drop(calls.swap_remove(i % calls.len()));
                    }
                    Op::Answer(ok) => {
                        while let Poll::Ready(Some((_, respond))) = handle.poll_request() {
                            pending.push_back(respond);
                        }
                        if let Some(respond) = pending.pop_front() {
                            if ok {
                                respond.send_response(1);
                            } else {
                                respond.send_error(std::io::Error::from(
                                    std::io::ErrorKind::ConnectionRefused,
                                ));
                            }
                        }
                    }
                    Op::Advance(ms) => {
                        tokio::time::advance(Duration::from_millis(ms)).await;
                        calls.retain_mut(|call| call.poll().is_pending());
                    }
                    _ => {}
                }
                prop_assert!(limit.in_flight() <= 2);
                prop_assert!(limit.queued() <= 2);
            }

            drop(calls);
            drop(pending);
            prop_assert_eq!(limit.in_flight(), 0, "a limiter permit leaked");
            prop_assert_eq!(limit.queued(), 0, "a queue place leaked");

            // Whatever state the breaker is in, once its open period is over a new request
            // reaches the client: no probe slot leaked.
            tokio::time::advance(Duration::from_secs(60)).await;
            while let Poll::Ready(Some(_)) = handle.poll_request() {}
            let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
            prop_assert!(call.poll().is_pending(), "the request was refused");
            let reached = matches!(handle.poll_request(), Poll::Ready(Some(_)));
            prop_assert!(reached, "the request never reached the client");
            Ok(())
        })?;
    }
}
