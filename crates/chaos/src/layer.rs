//! A tower layer that injects faults into calls: errors, latency, and hangs.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Class, ConfigError, Error, FailureKind, RetryHint};
use seawall_util::rng::{SplitMix64, mix};
use tokio::time::{Instant, Sleep, sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::proxy::Delay;

const LAYER: &str = "chaos";

/// The error a [`Chaos`] service injects, wrapped in a [`seawall_classify::Error`] with the
/// configured class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    class: Class,
}

impl InjectedFault {
    /// The class it was injected with.
    #[must_use]
    pub fn class(&self) -> Class {
        self.class
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected fault ({})", self.class)
    }
}

impl std::error::Error for InjectedFault {}

/// Counts of what a chaos layer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChaosStats {
    /// Calls seen.
    pub calls: u64,
    /// Calls failed with an injected error.
    pub errors: u64,
    /// Calls that will never answer.
    pub hangs: u64,
    /// Calls whose answer was delayed.
    pub delayed: u64,
}

struct Shared {
    error: f64,
    error_class: Class,
    hang: f64,
    latency: f64,
    delay: Delay,
    during: Option<Range<Duration>>,
    calls_window: Option<Range<u64>>,
    start: Instant,
    seed: u64,
    calls: AtomicU64,
    errors: AtomicU64,
    hangs: AtomicU64,
    delayed: AtomicU64,
}

/// What to do with one call.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Pass(Option<Duration>),
    Fail,
    Hang,
}

impl Shared {
    fn plan(&self) -> Plan {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let since = self.start.elapsed();
        let active = self
            .during
            .as_ref()
            .is_none_or(|range| range.contains(&since))
            && self
                .calls_window
                .as_ref()
                .is_none_or(|range| range.contains(&index));
        if !active {
            return Plan::Pass(None);
        }
        // One stream per call, from the seed and the call's index: the same calls get the
        // same faults whatever else runs.
        let mut rng = SplitMix64::new(self.seed ^ mix(index));
        let draw = rng.next_f64();
        if draw < self.error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return Plan::Fail;
        }
        if draw < self.error + self.hang {
            self.hangs.fetch_add(1, Ordering::Relaxed);
            return Plan::Hang;
        }
        if rng.next_f64() < self.latency {
            self.delayed.fetch_add(1, Ordering::Relaxed);
            let extra = self.delay.jitter.mul_f64(rng.next_f64());
            return Plan::Pass(Some(self.delay.fixed + extra));
        }
        Plan::Pass(None)
    }
}

/// Injects faults into the calls of the service it wraps, with given probabilities, seeded
/// so the same calls get the same faults every run.
///
/// Each call independently: with probability `error` fails at once with [`InjectedFault`]
/// (of the configured class) without reaching the service; else with probability `hang`
/// never answers; else reaches the service, and with probability `latency` its answer is
/// delayed by the configured [`Delay`]. Faults can be limited to a window of time since the
/// layer was built, or to a range of call numbers.
///
/// ```
/// use std::time::Duration;
/// use seawall_chaos::{ChaosLayer, proxy::Delay};
/// use seawall_classify::{Class, FailureKind, RetryHint};
///
/// let chaos = ChaosLayer::builder()
///     .seed(7)
///     .error(0.1, Class::failure(FailureKind::Unavailable, RetryHint::Retry))
///     .latency(0.05, Delay::fixed(Duration::from_millis(200)))
///     .during(Duration::from_secs(10)..Duration::from_secs(20))
///     .build()
///     .unwrap();
/// ```
#[derive(Clone)]
pub struct ChaosLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for ChaosLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosLayer")
            .field("error", &self.shared.error)
            .field("hang", &self.shared.hang)
            .field("latency", &self.shared.latency)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ChaosLayer {
    /// Starts configuring a chaos layer that injects nothing yet.
    pub fn builder() -> ChaosBuilder {
        ChaosBuilder {
            error: 0.0,
            error_class: Class::failure(FailureKind::Internal, RetryHint::Retry),
            hang: 0.0,
            latency: 0.0,
            delay: Delay::default(),
            during: None,
            calls: None,
            seed: 0x5EA_3A11,
        }
    }

    /// What the layer's services did so far.
    #[must_use]
    pub fn stats(&self) -> ChaosStats {
        self.handle().stats()
    }

    /// A cheap handle reading what this layer's services did, for tests that hand the layer
    /// away.
    #[must_use]
    pub fn handle(&self) -> ChaosHandle {
        ChaosHandle {
            shared: self.shared.clone(),
        }
    }
}

/// Reads a [`ChaosLayer`]'s counts; clones share them.
#[derive(Clone)]
pub struct ChaosHandle {
    shared: Arc<Shared>,
}

impl ChaosHandle {
    /// What the layer's services did so far.
    #[must_use]
    pub fn stats(&self) -> ChaosStats {
        ChaosStats {
            calls: self.shared.calls.load(Ordering::Relaxed),
            errors: self.shared.errors.load(Ordering::Relaxed),
            hangs: self.shared.hangs.load(Ordering::Relaxed),
            delayed: self.shared.delayed.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for ChaosHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosHandle")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S> Layer<S> for ChaosLayer {
    type Service = Chaos<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Chaos {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Configures a [`ChaosLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ChaosBuilder {
    error: f64,
    error_class: Class,
    hang: f64,
    latency: f64,
    delay: Delay,
    during: Option<Range<Duration>>,
    calls: Option<Range<u64>>,
    seed: u64,
}

impl ChaosBuilder {
    /// Fails calls with probability `p`, with an [`InjectedFault`] of class `class`.
    pub fn error(mut self, p: f64, class: Class) -> Self {
        self.error = p;
        self.error_class = class;
        self
    }

    /// Never answers calls with probability `p`.
    pub fn hang(mut self, p: f64) -> Self {
        self.hang = p;
        self
    }

    /// Delays answers with probability `p` by `delay`.
    pub fn latency(mut self, p: f64, delay: Delay) -> Self {
        self.latency = p;
        self.delay = delay;
        self
    }

    /// Injects only during this window of time since the layer was built.
    pub fn during(mut self, window: Range<Duration>) -> Self {
        self.during = Some(window);
        self
    }

    /// Injects only into calls whose number (from 0) is in `calls`.
    pub fn calls(mut self, calls: Range<u64>) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Seeds the random choices.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the probabilities and builds the layer.
    pub fn build(self) -> Result<ChaosLayer, ConfigError> {
        for (field, p) in [
            ("error", self.error),
            ("hang", self.hang),
            ("latency", self.latency),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::new(
                    LAYER,
                    field,
                    format!("is {p}, not a probability in [0, 1]"),
                ));
            }
        }
        if self.error + self.hang > 1.0 {
            return Err(ConfigError::new(
                LAYER,
                "hang",
                "plus the error probability exceeds 1",
            ));
        }
        Ok(ChaosLayer {
            shared: Arc::new(Shared {
                error: self.error,
                error_class: self.error_class,
                hang: self.hang,
                latency: self.latency,
                delay: self.delay,
                during: self.during,
                calls_window: self.calls,
                start: Instant::now(),
                seed: self.seed,
                calls: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                hangs: AtomicU64::new(0),
                delayed: AtomicU64::new(0),
            }),
        })
    }
}

/// A service with injected faults; see [`ChaosLayer`].
pub struct Chaos<S> {
    inner: S,
    shared: Arc<Shared>,
}

seawall_classify::inner_accessors!(impl[S] Chaos<S>);

impl<S: Clone> Clone for Chaos<S> {
    fn clone(&self) -> Self {
        Chaos {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Chaos<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos").field("inner", &self.inner).finish()
    }
}

impl<S, Req> Service<Req> for Chaos<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let state = match self.shared.plan() {
            Plan::Fail => State::Failed {
                class: Some(self.shared.error_class),
            },
            Plan::Hang => State::Hanging,
            Plan::Pass(delay) => State::Calling {
                inner: self.inner.call(request),
                delay,
            },
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// The response future of [`Chaos`].
    pub struct ResponseFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Calling { #[pin] inner: F, delay: Option<Duration> },
        Delaying { response: Option<T>, #[pin] sleep: Sleep },
        Failed { class: Option<Class> },
        Hanging,
    }
}

impl<F, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError> + 'static,
{
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Calling { inner, delay } => {
                    let result = ready!(inner.poll(cx));
                    match (result, *delay) {
                        (Ok(response), Some(delay)) => this.state.set(State::Delaying {
                            response: Some(response),
                            sleep: sleep(delay),
                        }),
                        (result, _) => return Poll::Ready(result.map_err(Error::from_inner)),
                    }
                }
                StateProj::Delaying { response, sleep } => {
                    ready!(sleep.poll(cx));
                    let response = response.take().expect("response kept while delaying");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Failed { class } => {
                    let class = class.take().expect("polled after completion");
                    return Poll::Ready(Err(Error::new(class, InjectedFault { class })));
                }
                StateProj::Hanging => return Poll::Pending,
            }
        }
    }
}
