//! Model-based property test: random sequences of outcomes, time steps, dropped calls and
//! manual commands run against the breaker and against a plain single-threaded model; they
//! must agree on every admission and every state.

use std::time::Duration;

use proptest::prelude::*;
use seawall_breaker::{CircuitBreakerLayer, State, error::BreakerOpen};
use seawall_classify::{BoxError, Class, Error, FailureKind, RetryHint, cause_ref, from_error_fn};
use tokio_test::task;
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Success,
    Fault,
    Invalid,
    Ignored,
}

#[derive(Debug, Clone)]
enum Op {
    Call(Kind),
    CallAndDrop,
    Advance(u64),
    ForceOpen,
    Reset,
    Disable,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop_oneof![
            Just(Kind::Success), Just(Kind::Fault), Just(Kind::Fault),
            Just(Kind::Invalid), Just(Kind::Ignored)
        ].prop_map(Op::Call),
        1 => Just(Op::CallAndDrop),
        3 => (1u64..3_000).prop_map(Op::Advance),
        1 => prop_oneof![Just(Op::ForceOpen), Just(Op::Reset), Just(Op::Disable)],
    ]
}

/// The reference: the breaker's rules written plainly, one call at a time.
struct Model {
    threshold: u32,
    probes: u16,
    base: u64,
    max: u64,
    now: u64,
    state: State,
    consecutive: u32,
    until: u64,
    reopened: u32,
    successes: u16,
}

impl Model {
    /// Whether a call is admitted now (moving Open to HalfOpen when its time is up).
    fn admit(&mut self) -> bool {
        match self.state {
            State::Closed | State::Disabled => true,
            State::ForcedOpen => false,
            State::Open if self.now >= self.until => {
                self.state = State::HalfOpen;
                self.successes = 0;
                true
            }
            State::Open => false,
            State::HalfOpen => self.successes < self.probes,
        }
    }

    fn open(&mut self) {
        let period = (self.base << self.reopened.min(32)).min(self.max);
        self.until = self.now + period;
        self.state = State::Open;
    }

    fn finish(&mut self, kind: Kind, probe: bool) {
        if kind == Kind::Ignored {
            return;
        }
        let fault = kind == Kind::Fault;
        if probe {
            if fault {
                self.reopened += 1;
                self.open();
            } else {
                self.successes += 1;
                if self.successes >= self.probes {
                    self.close();
                }
            }
            return;
        }
        if fault {
            self.consecutive += 1;
            if self.consecutive >= self.threshold && self.state == State::Closed {
                self.reopened = 0;
                self.open();
            }
        } else {
            self.consecutive = 0;
        }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.consecutive = 0;
        self.reopened = 0;
    }
}

fn error_for(kind: Kind) -> BoxError {
    match kind {
        Kind::Fault => std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
        Kind::Invalid => Error::new(
            Class::failure(FailureKind::Invalid, RetryHint::Never),
            "invalid",
        )
        .into(),
        _ => "ignored".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_breaker_agrees_with_the_model(
        threshold in 1u32..4,
        probes in 1u16..3,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async move {
            let classifier = from_error_fn(|e: &Error| {
                if e.to_string() == "ignored" {
                    Some(Class::Ignored)
                } else {
                    Some(e.class())
                }
            });
            let layer = CircuitBreakerLayer::builder()
                .consecutive_faults(threshold)
                .permitted_probes(probes)
                .open_duration(Duration::from_millis(1_000))
                .max_open_duration(Duration::from_millis(4_000))
                .jitter(0.0)
                .classifier(classifier)
                .build()
                .unwrap();
            let breaker = layer.handle();
            let (inner, mut handle) = mock::pair::<u32, u32>();
            handle.allow(u64::MAX);
            let mut service = layer.layer(inner);
            let mut model = Model {
                threshold, probes, base: 1_000, max: 4_000, now: 0,
                state: State::Closed, consecutive: 0, until: 0, reopened: 0, successes: 0,
            };

            for op in ops {
                match op {
                    Op::Call(kind) => {
                        let probe = matches!(model.state, State::Open | State::HalfOpen);
                        let admitted = model.admit();
                        let mut call = task::spawn(service.ready().await.unwrap().call(1));
                        if let std::task::Poll::Ready(result) = call.poll() {
                            let err = result.unwrap_err();
                            prop_assert!(cause_ref::<BreakerOpen>(&err).is_some());
                            prop_assert!(!admitted, "the breaker refused a call the model admits");
                        } else {
                            prop_assert!(admitted, "the breaker admitted a call the model refuses");
                            let (_, respond) = handle.next_request().await.unwrap();
                            match kind {
                                Kind::Success => respond.send_response(1),
                                other => respond.send_error(error_for(other)),
                            }
                            let _ = call.await;
                            model.finish(kind, probe);
                        }
                    }
                    Op::CallAndDrop => {
                        let admitted = model.admit();
                        let mut call = task::spawn(service.ready().await.unwrap().call(1));
                        if call.poll().is_pending() {
                            prop_assert!(admitted);
                            let _request = handle.next_request().await.unwrap();
                        } else {
                            prop_assert!(!admitted);
                        }
                        // Dropped: counts as neither; a probe slot is released.
                    }
                    Op::Advance(ms) => {
                        tokio::time::advance(Duration::from_millis(ms)).await;
                        model.now += ms;
                    }
                    Op::ForceOpen => {
                        breaker.force_open();
                        model.state = State::ForcedOpen;
                    }
                    Op::Reset => {
                        breaker.reset();
                        model.close();
                    }
                    Op::Disable => {
                        breaker.disable();
                        model.state = State::Disabled;
                    }
                }
                prop_assert_eq!(breaker.state(), model.state);
                if model.state == State::Open {
                    let expected = Duration::from_millis(model.until.saturating_sub(model.now));
                    prop_assert_eq!(breaker.retry_after(), Some(expected));
                }
            }
            Ok(())
        })?;
    }
}
