//! Active recovery probes: a cheap check of the dependency, run in the background only while
//! the breaker is open, whose first success ends the open period.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Poll;
use std::time::Duration;

use seawall_classify::{BoxError, ConfigError, schema};
use tokio::time::Instant;

use crate::gate::{Gate, State};
use crate::trip::TripPolicy;

type Check =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send + Sync>;

/// The shortest interval between two probes: a probe is a call too, and an outage is no time
/// to add load.
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// A check of the dependency a breaker guards, run in the background while it is open (see
/// [`CircuitBreakerBuilder::probe`](crate::CircuitBreakerBuilder::probe)).
///
/// One probe is in flight per breaker at a time, each bounded by its [`timeout`](Self::timeout),
/// started every [`interval`](Self::interval) (jittered down to three quarters of it, so that
/// replicas do not probe in lockstep). The first that succeeds moves the breaker to half-open, where the
/// next call confirms: the dependency is noticed within an interval of its return, and user
/// traffic is never what discovers it. While a probe is set, the open period's timer does
/// not admit user calls: the probe decides. A probe that cannot succeed (a wrong query, no
/// permission) therefore keeps the breaker open: its failures are counted in
/// [`BreakerHandle::probes`](crate::BreakerHandle::probes) and reported as
/// `seawall.breaker.probes`.
///
/// ```
/// use std::time::Duration;
/// use seawall_breaker::{CircuitBreakerLayer, Probe};
///
/// # fn main() -> Result<(), seawall_classify::ConfigError> {
/// let addr = "127.0.0.1:5432";
/// let breaker = CircuitBreakerLayer::builder()
///     .name("postgres")
///     // A connection that opens is enough here; PostgreSQL's own probe would run `SELECT 1`.
///     .probe(
///         Probe::new(move || async move { tokio::net::TcpStream::connect(addr).await.map(drop) })
///             .interval(Duration::from_millis(200))
///             .timeout(Duration::from_millis(500)),
///     )
///     .build()?;
/// # let _ = breaker;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Probe {
    check: Check,
    interval: Duration,
    timeout: Duration,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Probe {
    /// A probe running `check`: every 75 to 100 ms (at most 13 a second, one at a time), each
    /// bounded by 1 s. A dependency back from an outage is noticed within 100 ms, 50 on
    /// average.
    pub fn new<F, Fut, E>(check: F) -> Probe
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Probe {
            check: Arc::new(move || {
                let check = check();
                Box::pin(async move { check.await.map_err(Into::into) })
            }),
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
        }
    }

    /// The time between probes (each waits a random three quarters to all of it). At least
    /// [`MIN_PROBE_INTERVAL`].
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long one probe may take before it counts as failed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn interval_value(&self) -> Duration {
        self.interval
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.interval < MIN_PROBE_INTERVAL {
            return Err(ConfigError::new(
                "circuit breaker",
                "probe.interval",
                format!("is {:?}, under {MIN_PROBE_INTERVAL:?}", self.interval),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "circuit breaker",
                "probe.timeout",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

/// What a breaker's probes have found so far (see [`BreakerHandle::probes`](crate::BreakerHandle::probes)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeStats {
    /// Probes that succeeded.
    pub succeeded: u64,
    /// Probes that failed or timed out.
    pub failed: u64,
    /// The last probe's result, when it ended, and how long it took.
    pub last: Option<ProbeOutcome>,
}

/// One probe's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether the dependency answered in time.
    pub ok: bool,
    /// When the probe ended.
    pub at: Instant,
    /// How long it took.
    pub took: Duration,
}

/// A breaker's probe and its state: whether the prober task runs, and what it found.
pub(crate) struct Prober {
    pub(crate) probe: Probe,
    running: AtomicBool,
    succeeded: AtomicU64,
    failed: AtomicU64,
    last: Mutex<Option<ProbeOutcome>>,
}

impl fmt::Debug for Prober {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prober")
            .field("probe", &self.probe)
            .field("running", &self.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Prober {
    pub(crate) fn new(probe: Probe) -> Prober {
        Prober {
            probe,
            running: AtomicBool::new(false),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    /// Whether a prober task is watching the breaker (the open period's timer then admits no
    /// user call).
    pub(crate) fn active(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    pub(crate) fn stats(&self) -> ProbeStats {
        ProbeStats {
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            last: *self.last.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Starts the prober task for `gate` unless one runs. Without a tokio runtime nothing
    /// starts, and the open period's timer decides as without a probe. A task that ends any
    /// way (its loop's own end, a panic, its runtime shutting down, an abort) says so as it is
    /// dropped, and the next call refused while open starts another.
    pub(crate) fn start<P: TripPolicy>(&self, gate: Weak<Gate<P>>) {
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Made now, not at the task's first poll: a task dropped before it ever ran
                // (its runtime shut down at once) clears the flag too.
                let running = Running(gate.clone());
                runtime.spawn(run(gate, running));
            }
            Err(_) => self.running.store(false, Ordering::SeqCst),
        }
    }

    fn record(&self, name: &str, ok: bool, started: Instant) {
        let at = Instant::now();
        let took = at.saturating_duration_since(started);
        if ok {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(ProbeOutcome { ok, at, took });
        tracing::debug!(
            target: "seawall::breaker",
            {
                { schema::FIELD_BREAKER_PROBES } = 1u64,
                { schema::BREAKER_NAME } = name,
                { schema::CLASS } = if ok { "success" } else { "failure" },
                { schema::TIMEOUT_MS } = took.as_millis() as u64
            },
            "breaker probe"
        );
    }
}

/// Clears the prober's flag when its task ends, however it ends.
struct Running<P: TripPolicy>(Weak<Gate<P>>);

impl<P: TripPolicy> Running<P> {
    /// The task ends with the flag no longer its own: dropped, this clears nothing.
    fn disarm(mut self) {
        self.0 = Weak::new();
    }
}

impl<P: TripPolicy> Drop for Running<P> {
    fn drop(&mut self) {
        if let Some(gate) = self.0.upgrade()
            && let Some(prober) = gate.prober()
        {
            prober.running.store(false, Ordering::SeqCst);
        }
    }
}

/// The most probes out at once: a probe that hangs (a host that accepts nothing and
/// refuses nothing) does not hold back the next one for its whole timeout. While probes hang,
/// one starts every half timeout; probes that answer (even with a refusal) go every interval.
const MAX_PROBES_OUT: usize = 2;

/// The prober task: while the breaker is open, a probe every (jittered) interval, up to
/// [`MAX_PROBES_OUT`] at once; the first success moves it to half-open. It watches through
/// half-open (a failed trial reopens it) and ends when the breaker closes, is forced or
/// disabled, or is dropped. A probe that panics counts as failed: it runs as a task of its
/// own, whose panic ends only that task. Probes still out when the task ends are stopped.
async fn run<P: TripPolicy>(gate: Weak<Gate<P>>, running: Running<P>) {
    let mut out = tokio::task::JoinSet::new();
    let mut next = Instant::now();
    let mut last_start = next;
    loop {
        let Some(wait) = gate.upgrade().map(|gate| gate.probe_wait()) else {
            return;
        };
        next += wait;
        // Meanwhile, the answers of the probes out.
        let sleep = tokio::time::sleep_until(next);
        tokio::pin!(sleep);
        while let Some(answer) = std::future::poll_fn(|cx| {
            if let Poll::Ready(Some(answer)) = out.poll_join_next(cx) {
                return Poll::Ready(Some(answer));
            }
            sleep.as_mut().poll(cx).map(|()| None)
        })
        .await
        {
            let Some(gate) = gate.upgrade() else {
                return;
            };
            let prober = gate
                .prober()
                .expect("a prober task runs for a breaker with a probe");
            // Failed, panicked, or timed out (then it was stopped).
            let (ok, started) = answer.unwrap_or_else(|_| (false, Instant::now()));
            prober.record(&gate.config.name, ok, started);
            if ok && gate.state() == State::Open {
                gate.end_open_period();
            }
        }
        next = next.max(Instant::now());
        let Some(gate) = gate.upgrade() else {
            return;
        };
        let prober = gate
            .prober()
            .expect("a prober task runs for a breaker with a probe");
        match gate.state() {
            State::Open => {}
            State::HalfOpen => continue,
            _ => {
                // With `Gate::open`: the flag's store before the word is read again, or the
                // opener sees the flag down and starts a prober (a store-buffering handshake:
                // sequentially consistent on both sides).
                prober.running.store(false, Ordering::SeqCst);
                std::sync::atomic::fence(Ordering::SeqCst);
                if gate.state() == State::Open && !prober.running.swap(true, Ordering::SeqCst) {
                    // Reopened between the read and the store: keep watching.
                    continue;
                }
                // The flag is down, or another task's now: not this one's to clear.
                running.disarm();
                return;
            }
        }
        let timeout = prober.probe.timeout;
        // While probes hang, they are spread over the timeout rather than sent together.
        let spread = timeout / MAX_PROBES_OUT as u32;
        if out.len() >= MAX_PROBES_OUT || (!out.is_empty() && last_start.elapsed() < spread) {
            continue;
        }
        last_start = Instant::now();
        let check = (prober.probe.check)();
        out.spawn(async move {
            let started = Instant::now();
            let ok = matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(())));
            (ok, started)
        });
    }
}
