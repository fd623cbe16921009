//! A cheap handle for reading and steering a breaker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::gate::probe::ProbeStats;
use crate::gate::{Gate, State};
use crate::trip::TripPolicy;
use crate::trip::WindowStats;

/// What a handle can do with a gate, whatever its policy.
pub(crate) trait Control: Send + Sync + fmt::Debug {
    fn name(&self) -> &str;
    fn state(&self) -> State;
    fn force(&self, state: State);
    fn stats(&self) -> Option<WindowStats>;
    fn transitions(&self) -> u64;
    fn retry_after(&self) -> Option<Duration>;
    fn probes(&self) -> Option<ProbeStats>;
}

impl<P: TripPolicy + fmt::Debug> Control for Gate<P> {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn state(&self) -> State {
        Gate::state(self)
    }
    fn force(&self, state: State) {
        Gate::force(self, state);
    }
    fn stats(&self) -> Option<WindowStats> {
        self.policy.stats(Instant::now())
    }
    fn transitions(&self) -> u64 {
        Gate::transitions(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        Gate::retry_after(self, Instant::now())
    }
    fn probes(&self) -> Option<ProbeStats> {
        self.prober().map(crate::gate::probe::Prober::stats)
    }
}

/// Reads a breaker's state and steers it by hand; shared with every service the layer built.
///
/// ```
/// use seawall_breaker::{CircuitBreakerLayer, State};
///
/// let layer = CircuitBreakerLayer::builder().name("postgres").build().unwrap();
/// let handle = layer.handle();
/// assert_eq!(handle.state(), State::Closed);
/// handle.force_open();
/// assert_eq!(handle.state(), State::ForcedOpen);
/// handle.reset();
/// assert_eq!(handle.state(), State::Closed);
/// ```
#[derive(Clone)]
pub struct BreakerHandle {
    pub(crate) control: Arc<dyn Control>,
}

impl BreakerHandle {
    /// The breaker's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.control.name()
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> State {
        self.control.state()
    }

    /// Counts in the trip policy's window (the count window if there is one, else the time
    /// window), or `None` for a policy without a window.
    #[must_use]
    pub fn stats(&self) -> Option<WindowStats> {
        self.control.stats()
    }

    /// State changes so far.
    #[must_use]
    pub fn transitions(&self) -> u64 {
        self.control.transitions()
    }

    /// While open: time until the next probe is admitted.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.control.retry_after()
    }

    /// What the breaker's [`Probe`](crate::Probe) has found (`None` without a probe).
    #[must_use]
    pub fn probes(&self) -> Option<ProbeStats> {
        self.control.probes()
    }

    /// Rejects every call until [`reset`](Self::reset) (or [`disable`](Self::disable)): to
    /// isolate a dependency by hand.
    pub fn force_open(&self) {
        self.control.force(State::ForcedOpen);
    }

    /// Closes the breaker and forgets its window and its open back-off.
    pub fn reset(&self) {
        self.control.force(State::Closed);
    }

    /// The same as [`reset`](Self::reset).
    pub fn force_closed(&self) {
        self.reset();
    }

    /// Admits every call and never opens, still recording outcomes, until
    /// [`reset`](Self::reset).
    pub fn disable(&self) {
        self.control.force(State::Disabled);
    }
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}
