//! The gates that hold hedges back: [`HedgeGate`].

/// Says whether a hedge may be sent now. Asked only when a request has been slow for the
/// hedge delay, never on a request's ordinary path.
///
/// With feature `breaker`, a [`BreakerHandle`](seawall_breaker::BreakerHandle) is a gate
/// (hedges only while the breaker is closed or disabled: a hedge into an open breaker is
/// refused, a hedge into a half-open one spends a probe); with feature `limit`, a
/// [`LimitHandle`](seawall_limit::LimitHandle) is (hedges only while a permit is free and
/// nobody queues: a hedge must not take a slot a first attempt waits for). Closures
/// `Fn() -> bool` are gates too.
pub trait HedgeGate: Send + Sync + 'static {
    /// `true` when a hedge may be sent now.
    fn allows_hedge(&self) -> bool;
}

impl<F: Fn() -> bool + Send + Sync + 'static> HedgeGate for F {
    fn allows_hedge(&self) -> bool {
        self()
    }
}

#[cfg(feature = "breaker")]
impl HedgeGate for seawall_breaker::BreakerHandle {
    fn allows_hedge(&self) -> bool {
        use seawall_breaker::State;
        matches!(self.state(), State::Closed | State::Disabled)
    }
}

#[cfg(feature = "limit")]
impl HedgeGate for seawall_limit::LimitHandle {
    fn allows_hedge(&self) -> bool {
        self.queued() == 0 && self.in_flight() < self.limit()
    }
}
