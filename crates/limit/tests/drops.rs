//! Property: whatever calls are started, answered, timed out or dropped at whatever point,
//! the limit never admits more than `max`, never queues more than `queue`, and ends with
//! nothing in flight and nothing queued.

use std::time::Duration;

use proptest::prelude::*;
use seawall_classify::WithDeadline;
use seawall_limit::ConcurrencyLimitLayer;
use tokio_test::task;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

#[derive(Debug, Clone)]
enum Op {
    /// Start a call, with an optional deadline in ms.
    Start(Option<u64>),
    /// Poll call `i` (modulo the live calls).
    Poll(usize),
    /// Drop call `i`.
    Drop(usize),
    /// Answer the oldest request the inner service has received: with success, or with a
    /// fault (which shrinks an adaptive limit while other permits are held).
    Answer(bool),
    /// Let time pass.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::option::of(1u64..300).prop_map(Op::Start),
        3 => any::<usize>().prop_map(Op::Poll),
        2 => any::<usize>().prop_map(Op::Drop),
        2 => any::<bool>().prop_map(Op::Answer),
        1 => (1u64..150).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_permit_or_queue_place_leaks(
        max in 1usize..4,
        queue in 0usize..4,
        adaptive in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (service, mut handle) = mock::pair::<WithDeadline<u32>, u32>();
            handle.allow(u64::MAX);
            let mut builder = ConcurrencyLimitLayer::builder(max)
                .queue(queue)
                .max_wait(Duration::from_millis(100));
            if adaptive {
                // Starts at the maximum and moves within 1..=max as calls finish.
                builder = builder.adaptive(
                    seawall_limit::adaptive::Aimd::new(max, 1, max).unwrap(),
                );
            }
            let layer = builder.build().unwrap();
            let limits = layer.handle();
            let mut service = layer.layer(service);
            let mut calls = Vec::new();
            let mut answers = std::collections::VecDeque::new();

            for op in ops {
                match op {
                    Op::Start(deadline) => {
                        let mut request = WithDeadline::new(0);
                        if let Some(ms) = deadline {
                            request = request.deadline_in(Duration::from_millis(ms));
                        }
                        let ready = service.ready().await.unwrap();
                        let mut call = task::spawn(ready.call(request));
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
                        while let std::task::Poll::Ready(Some((_, respond))) = handle.poll_request() {
                            answers.push_back(respond);
                        }
                        if let Some(respond) = answers.pop_front() {
                            if ok {
                                respond.send_response(1);
                            } else {
                                respond.send_error(std::io::Error::from(
                                    std::io::ErrorKind::ConnectionReset,
                                ));
                            }
                        }
                    }
                    Op::Advance(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
                    _ => {}
                }
                assert!(limits.in_flight() <= max, "in flight {} > {max}", limits.in_flight());
                assert!((1..=max).contains(&limits.limit()), "limit {}", limits.limit());
                assert!(limits.queued() <= queue, "queued {} > {queue}", limits.queued());
            }

            drop(calls);
            drop(answers);
            assert_eq!(limits.in_flight(), 0, "a permit leaked");
            assert_eq!(limits.queued(), 0, "a queue place leaked");
            // And the full limit is usable again.
            let limit = limits.limit();
            let mut held = Vec::new();
            for _ in 0..limit {
                let ready = service.ready().await.unwrap();
                held.push(ready.call(WithDeadline::new(1)));
            }
            assert_eq!(limits.in_flight(), limit);
        });
    }
}
