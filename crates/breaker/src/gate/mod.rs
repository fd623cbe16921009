//! The gate: the breaker's state machine, shared by all clones. It admits or rejects calls
//! and moves between states; a [`TripPolicy`] tells it when to open.

pub(crate) mod probe;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Weak};
use std::time::Duration;

use seawall_classify::schema;
use seawall_classify::{Class, Policy};
use seawall_util::rng::AtomicSplitMix64;
use tokio::time::Instant;

use crate::gate::probe::{Probe, Prober};
use crate::trip::{Outcome, TripPolicy};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Traffic flows; outcomes are recorded.
    Closed,
    /// Rejecting every call until the open period ends.
    Open,
    /// Admitting a bounded number of probe calls to decide whether to close.
    HalfOpen,
    /// Rejecting every call until told otherwise (see
    /// [`BreakerHandle::force_open`](crate::BreakerHandle::force_open)).
    ForcedOpen,
    /// Admitting every call and never opening; outcomes are still recorded.
    Disabled,
}

impl State {
    /// A short, stable, lower-case name for telemetry (`seawall.breaker.state`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }

    fn tag(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    fn from_tag(tag: u64) -> State {
        match tag {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            _ => State::Disabled,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The packed state word: tag, probes in flight (of any period), probe successes in this
/// period, and a generation that changes with every transition, so that a late outcome from
/// an earlier period is not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word {
    state: State,
    in_flight: u16,
    successes: u16,
    generation: u32,
}

const GENERATION_MASK: u32 = (1 << 24) - 1;

impl Word {
    fn unpack(bits: u64) -> Word {
        Word {
            state: State::from_tag(bits & 0xff),
            in_flight: (bits >> 8) as u16,
            successes: (bits >> 24) as u16,
            generation: Word::generation_of(bits),
        }
    }

    /// The generation alone, without decoding the rest.
    #[inline(always)]
    fn generation_of(bits: u64) -> u32 {
        (bits >> 40) as u32 & GENERATION_MASK
    }

    fn pack(self) -> u64 {
        self.state.tag()
            | u64::from(self.in_flight) << 8
            | u64::from(self.successes) << 24
            | u64::from(self.generation & GENERATION_MASK) << 40
    }

    /// The word after a transition to `state`. Probes still out stay counted in
    /// `in_flight` whatever the generation, so a new half-open period never has more calls at
    /// the dependency than `permitted_probes`.
    fn next(self, state: State) -> Word {
        Word {
            state,
            in_flight: self.in_flight,
            successes: 0,
            generation: self.generation.wrapping_add(1) & GENERATION_MASK,
        }
    }
}

/// The gate's fixed configuration, validated by the builder.
#[derive(Debug, Clone)]
pub(crate) struct GateConfig {
    pub(crate) name: Arc<str>,
    pub(crate) open_base: Duration,
    pub(crate) open_max: Duration,
    pub(crate) jitter: f64,
    pub(crate) probes: u16,
    pub(crate) slow_call: Option<Duration>,
    pub(crate) policy: Policy,
    pub(crate) seed: u64,
}

/// What the gate decided for one call: taken in `poll_ready`, carried by the service to
/// `call` and by the response future to the outcome. `Copy`: the closed path moves nothing
/// else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ticket {
    /// Closed: record the outcome in this generation.
    Closed { generation: u32 },
    /// Disabled: record the outcome in this generation, but never open.
    Disabled { generation: u32 },
    /// A half-open probe slot of this generation is reserved: whoever holds the ticket
    /// finishes the probe or releases the slot (see [`ProbeSlot`]).
    Probe { generation: u32 },
    /// Rejected. (The time until the next probe is read when the refusal is made, in `call`:
    /// the ticket, copied on every call, stays one word.)
    Reject,
}

pub(crate) struct Gate<P> {
    pub(crate) config: GateConfig,
    pub(crate) policy: P,
    word: AtomicU64,
    // The open period of the latest open: when it ends (nanoseconds since `base`), and its
    // generation and backoff level, written by the transition's winner after it won (so no
    // loser's value lands over it) and read only by the generation it was written for.
    open_until: AtomicU64,
    open_meta: AtomicU64,
    rng: AtomicSplitMix64,
    transitions: AtomicU64,
    base: Instant,
    pub(crate) needs_clock: bool,
    prober: Option<Prober>,
    // The gate itself, for the prober task it starts when it opens.
    me: Weak<Gate<P>>,
}

impl<P: TripPolicy> Gate<P> {
    pub(crate) fn new(config: GateConfig, policy: P, probe: Option<Probe>) -> Arc<Self> {
        let needs_clock = policy.needs_clock() || config.slow_call.is_some();
        let seed = config.seed;
        Arc::new_cyclic(|me| Gate {
            config,
            policy,
            word: AtomicU64::new(Word::unpack(0).pack()),
            open_until: AtomicU64::new(0),
            // No open period yet: a generation no word has at first.
            open_meta: AtomicU64::new(u64::MAX),
            rng: AtomicSplitMix64::new(seed),
            transitions: AtomicU64::new(0),
            base: Instant::now(),
            needs_clock,
            prober: probe.map(Prober::new),
            me: me.clone(),
        })
    }

    /// The probe and what it found, if the breaker has one.
    pub(crate) fn prober(&self) -> Option<&Prober> {
        self.prober.as_ref()
    }

    /// How long the prober waits before its next probe: three quarters to all of its
    /// interval, as [`Probe`] documents.
    pub(crate) fn probe_wait(&self) -> Duration {
        let interval = self
            .prober
            .as_ref()
            .map_or(Duration::ZERO, |p| p.probe.interval_value());
        interval.mul_f64(0.75 + 0.25 * self.next_random())
    }

    /// A probe succeeded: the open period ends now, in half-open, where the next call
    /// confirms (a success closes, a fault reopens).
    pub(crate) fn end_open_period(&self) {
        let mut bits = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(bits);
            if word.state != State::Open {
                return;
            }
            let next = word.next(State::HalfOpen);
            match self
                .word
                .compare_exchange(bits, next.pack(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.announce(State::Open, State::HalfOpen);
                    return;
                }
                Err(actual) => bits = actual,
            }
        }
    }

    /// The instant the gate was built: a time that costs nothing to read.
    pub(crate) fn epoch(&self) -> Instant {
        self.base
    }

    /// `now` as nanoseconds since the gate was built, plus one: never zero, so that zero can
    /// stand for "not timed" in a response future without an `Option<Instant>`.
    #[inline]
    pub(crate) fn stamp(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    pub(crate) fn state(&self) -> State {
        Word::unpack(self.word.load(Ordering::Acquire)).state
    }

    pub(crate) fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// Time until the next probe may be admitted, while open.
    pub(crate) fn retry_after(&self, now: Instant) -> Option<Duration> {
        let word = Word::unpack(self.word.load(Ordering::Acquire));
        match word.state {
            State::Open => Some(match self.prober.as_ref().filter(|p| p.active()) {
                // The probe decides: the next one is at most an interval away.
                Some(prober) => prober.probe.interval_value(),
                None => match self.open_period_of(word.generation) {
                    Some((until, _)) => until.saturating_duration_since(now),
                    // Opened a moment ago, its period not yet written: a whole base period.
                    None => self.config.open_base,
                },
            }),
            _ => None,
        }
    }

    /// The open period written for `generation`: when it ends, and its backoff level;
    /// `None` while it is not written yet (or the breaker moved on).
    fn open_period_of(&self, generation: u32) -> Option<(Instant, u32)> {
        let meta = self.open_meta.load(Ordering::Acquire);
        if meta >> 32 != u64::from(generation) {
            return None;
        }
        let until = self.base + Duration::from_nanos(self.open_until.load(Ordering::Acquire));
        Some((until, meta as u32))
    }

    /// The generation, if the breaker is closed: the closed path's admission on its own, so
    /// that the caller branches once on the word rather than again on a merged ticket.
    #[inline(always)]
    pub(crate) fn closed_generation(&self) -> Option<u32> {
        let word = Word::unpack(self.word.load(Ordering::Acquire));
        (word.state == State::Closed).then_some(word.generation)
    }

    /// Decides whether a call may go through.
    #[inline]
    pub(crate) fn admit(&self) -> Ticket {
        let bits = self.word.load(Ordering::Acquire);
        let word = Word::unpack(bits);
        match word.state {
            State::Closed => Ticket::Closed {
                generation: word.generation,
            },
            _ => self.admit_slow(bits),
        }
    }

    #[inline(never)]
    fn admit_slow(&self, mut bits: u64) -> Ticket {
        loop {
            let word = Word::unpack(bits);
            let (next, admission) = match word.state {
                State::Closed => {
                    return Ticket::Closed {
                        generation: word.generation,
                    };
                }
                State::Disabled => {
                    return Ticket::Disabled {
                        generation: word.generation,
                    };
                }
                State::ForcedOpen => return Ticket::Reject,
                State::Open => {
                    if let Some(prober) = &self.prober {
                        if !prober.active() {
                            // Its task is gone (its runtime ended, or it was aborted): start
                            // another, in this caller's runtime if there is one.
                            prober.start(self.me.clone());
                        }
                        if prober.active() {
                            // The probe, not a user call, finds out when the dependency is
                            // back.
                            return Ticket::Reject;
                        }
                    }
                    let now = Instant::now();
                    match self.open_period_of(word.generation) {
                        Some((until, _)) if now >= until => {}
                        _ => return Ticket::Reject,
                    }
                    if word.in_flight >= self.config.probes {
                        // Probes of an earlier period are still out: wait for them.
                        return Ticket::Reject;
                    }
                    // The open period is over: this call is the first probe.
                    let mut next = word.next(State::HalfOpen);
                    next.in_flight += 1;
                    (next, next.generation)
                }
                State::HalfOpen => {
                    if u32::from(word.in_flight) + u32::from(word.successes)
                        >= u32::from(self.config.probes)
                    {
                        // Every probe slot is taken: their outcome decides.
                        return Ticket::Reject;
                    }
                    let mut next = word;
                    next.in_flight += 1;
                    (next, word.generation)
                }
            };
            match self
                .word
                .compare_exchange(bits, next.pack(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if word.state != next.state {
                        self.announce(word.state, next.state);
                    }
                    return Ticket::Probe {
                        generation: admission,
                    };
                }
                Err(actual) => bits = actual,
            }
        }
    }

    /// Whether `ticket` was taken in the generation the breaker is in now.
    pub(crate) fn is_current(&self, ticket: Ticket) -> bool {
        let generation = Word::generation_of(self.word.load(Ordering::Acquire));
        match ticket {
            Ticket::Closed { generation: g }
            | Ticket::Disabled { generation: g }
            | Ticket::Probe { generation: g } => g == generation,
            // A refusal is admitted again: the breaker may have closed.
            Ticket::Reject => false,
        }
    }

    /// Records the outcome of a call admitted while closed (or disabled) in `generation`.
    #[inline]
    pub(crate) fn record(&self, generation: u32, disabled: bool, outcome: Outcome, now: Instant) {
        if Word::generation_of(self.word.load(Ordering::Acquire)) != generation {
            // The breaker moved on since this call was admitted: its outcome is stale.
            return;
        }
        if self.policy.record(outcome, now) && !disabled {
            self.trip(generation);
        }
    }

    #[cold]
    fn trip(&self, generation: u32) {
        // Read the clock here: `record` may have been given the fixed epoch.
        let now = Instant::now();
        let mut bits = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(bits);
            if word.state != State::Closed || word.generation != generation {
                return;
            }
            match self.open(word, word.in_flight, 0, now) {
                Ok(()) => return,
                Err(actual) => bits = actual,
            }
        }
    }

    /// Opens from `from` (compare-and-swap), with `in_flight` probes still out, for the
    /// open period of `level` failed probes in a row.
    fn open(&self, from: Word, in_flight: u16, level: u32, now: Instant) -> Result<(), u64> {
        let mut next = from.next(State::Open);
        next.in_flight = in_flight;
        self.word.compare_exchange(
            from.pack(),
            next.pack(),
            Ordering::AcqRel,
            Ordering::Acquire,
        )?;
        // Won: the period is this transition's alone. Until it is written, readers of this
        // generation see none, and refuse.
        let period = self.open_period(level);
        self.open_until.store(
            u64::try_from(
                (now + period)
                    .saturating_duration_since(self.base)
                    .as_nanos(),
            )
            .unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.open_meta.store(
            u64::from(next.generation) << 32 | u64::from(level),
            Ordering::Release,
        );
        self.announce(from.state, State::Open);
        if let Some(prober) = &self.prober {
            // With the prober's exit (see `probe::run`): the word's store before the
            // prober's flag is read, or the prober sees the word Open. One of the two sees the
            // other, so an open breaker is never left without a prober.
            fence(Ordering::SeqCst);
            prober.start(self.me.clone());
        }
        tracing::debug!(
            target: "seawall::breaker",
            { { schema::BREAKER_NAME } = %self.config.name, { schema::BREAKER_OPEN_MS } = period.as_millis() as u64 },
            "breaker open"
        );
        Ok(())
    }

    /// The next open period: the base, doubled for each failed probe in a row, capped, then
    /// shortened by up to `jitter` of itself so that many breakers do not probe in lockstep.
    fn open_period(&self, level: u32) -> Duration {
        let reopened = level.min(32);
        let doubled = self
            .config
            .open_base
            .saturating_mul(1u32.checked_shl(reopened).unwrap_or(u32::MAX));
        let capped = doubled.min(self.config.open_max);
        let r = self.next_random();
        capped.mul_f64(1.0 - self.config.jitter * r)
    }

    /// A uniform number in [0, 1) from the shared lock-free generator (seedable for tests).
    fn next_random(&self) -> f64 {
        self.rng.next_f64()
    }

    pub(crate) fn finish_probe(&self, generation: u32, result: ProbeResult) {
        let mut bits = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(bits);
            let in_flight = word.in_flight.saturating_sub(1);
            let current = word.state == State::HalfOpen && word.generation == generation;
            let next = match result {
                ProbeResult::Success if current => {
                    let successes = word.successes + 1;
                    if successes >= self.config.probes {
                        // Forget the faults that opened it before anyone can be admitted
                        // closed (half-open records nothing into the policy).
                        self.policy.reset(Instant::now());
                        let mut closed = word.next(State::Closed);
                        closed.in_flight = in_flight;
                        closed
                    } else {
                        Word {
                            in_flight,
                            successes,
                            ..word
                        }
                    }
                }
                ProbeResult::Fault if current => {
                    // The level of the open period this half-open one followed.
                    let opened = word.generation.wrapping_sub(1) & GENERATION_MASK;
                    let level = self
                        .open_period_of(opened)
                        .map_or(0, |(_, level)| level)
                        .saturating_add(1);
                    match self.open(word, in_flight, level, Instant::now()) {
                        Ok(()) => return,
                        Err(actual) => {
                            bits = actual;
                            continue;
                        }
                    }
                }
                // Released, or an outcome from an earlier period: only the slot is returned.
                _ => Word { in_flight, ..word },
            };
            match self
                .word
                .compare_exchange(bits, next.pack(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if next.state == State::Closed && word.state != State::Closed {
                        self.announce(State::HalfOpen, State::Closed);
                    }
                    return;
                }
                Err(actual) => bits = actual,
            }
        }
    }

    /// Moves to `state` from whatever the state is now (manual control). To Closed, the
    /// policy forgets everything first, before any call is admitted closed: a fault that
    /// lands meanwhile, from a call admitted before, may trip it again, and then the loop
    /// closes it again, forgetting that too.
    pub(crate) fn force(&self, state: State) {
        let mut bits = self.word.load(Ordering::Acquire);
        loop {
            let word = Word::unpack(bits);
            if state == State::Closed {
                self.policy.reset(Instant::now());
            }
            let next = word.next(state);
            match self
                .word
                .compare_exchange(bits, next.pack(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.announce(word.state, state);
                    return;
                }
                Err(actual) => bits = actual,
            }
        }
    }

    fn announce(&self, from: State, to: State) {
        self.transitions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            target: "seawall::breaker",
            {
                { schema::FIELD_BREAKER_TRANSITIONS } = 1u64,
                { schema::BREAKER_NAME } = %self.config.name,
                { schema::BREAKER_STATE } = to.as_str(),
                { schema::BREAKER_PREVIOUS_STATE } = from.as_str()
            },
            "breaker state changed"
        );
    }

    /// Turns a finished call's class into an outcome, or `None` when it counts nowhere.
    #[inline(always)]
    pub(crate) fn outcome(&self, class: &Class, started: u64, now: Instant) -> Option<Outcome> {
        let fault = self.outcome_untimed(class)?.fault;
        let slow = match self.config.slow_call {
            Some(threshold) if started != 0 => {
                u128::from(self.stamp(now).saturating_sub(started)) >= threshold.as_nanos()
            }
            _ => false,
        };
        Some(Outcome { fault, slow })
    }

    /// The outcome of a call whose duration does not matter (no slow-call threshold).
    #[inline(always)]
    pub(crate) fn outcome_untimed(&self, class: &Class) -> Option<Outcome> {
        match class {
            Class::Ignored => None,
            // No fault policy counts a success: skip the indirect call.
            Class::Success => Some(Outcome::SUCCESS),
            Class::Failure(_) => Some(Outcome {
                fault: self.config.policy.is_fault(*class),
                slow: false,
            }),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for Gate<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("name", &self.config.name)
            .field(
                "state",
                &Word::unpack(self.word.load(Ordering::Acquire)).state,
            )
            .field("policy", &self.policy)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ProbeResult {
    Success,
    Fault,
    Released,
}

/// The guard of a reserved half-open probe slot, held by the service between `poll_ready`
/// and `call`. Dropping it unfinished releases the slot: the probe counts as neither success
/// nor fault, and another caller may probe.
pub(crate) struct ProbeSlot<P: TripPolicy> {
    gate: Arc<Gate<P>>,
    generation: u32,
    armed: bool,
}

impl<P: TripPolicy> ProbeSlot<P> {
    pub(crate) fn new(gate: Arc<Gate<P>>, generation: u32) -> Self {
        ProbeSlot {
            gate,
            generation,
            armed: true,
        }
    }

    /// Hands the slot over to a response future, which then finishes or releases it.
    pub(crate) fn hand_over(mut self) {
        self.armed = false;
    }
}

impl<P: TripPolicy> Drop for ProbeSlot<P> {
    fn drop(&mut self) {
        if self.armed {
            self.gate
                .finish_probe(self.generation, ProbeResult::Released);
        }
    }
}

impl<P: TripPolicy> fmt::Debug for ProbeSlot<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeSlot")
            .field("generation", &self.generation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trip::ConsecutiveFaults;

    fn gate(probe: Option<Probe>) -> Arc<Gate<ConsecutiveFaults>> {
        let config = GateConfig {
            name: Arc::from("test"),
            open_base: Duration::from_secs(1),
            open_max: Duration::from_secs(60),
            jitter: 0.5,
            probes: 1,
            slow_call: None,
            policy: Policy::standard(),
            seed: 7,
        };
        Gate::new(config, ConsecutiveFaults::new(1), probe)
    }

    fn word(gate: &Gate<ConsecutiveFaults>) -> Word {
        Word::unpack(gate.word.load(Ordering::Acquire))
    }

    #[tokio::test(start_paused = true)]
    async fn a_losing_open_leaves_the_winners_period_alone() {
        let gate = gate(None);
        let now = Instant::now();
        let closed = word(&gate);
        gate.open(closed, 0, 0, now).unwrap();
        let opened = word(&gate);
        let winner = gate.open_period_of(opened.generation).unwrap();
        // A second opener that read the same closed word, with a longer period (level 3):
        // it loses the swap and writes nothing.
        assert!(gate.open(closed, 0, 3, now).is_err());
        assert_eq!(gate.open_period_of(opened.generation), Some(winner));
        assert_eq!(winner.1, 0, "level of the winner");
        assert!(winner.0 > now && winner.0 <= now + Duration::from_secs(1));
        // An older generation's period is never read as the current one.
        assert_eq!(gate.open_period_of(closed.generation), None);
    }

    #[tokio::test(start_paused = true)]
    async fn probe_waits_are_three_quarters_to_all_of_the_interval() {
        let interval = Duration::from_millis(100);
        let gate = gate(Some(
            Probe::new(|| async { Ok::<_, std::io::Error>(()) }).interval(interval),
        ));
        let waits: Vec<Duration> = (0..1_000).map(|_| gate.probe_wait()).collect();
        let (least, most) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*least >= interval.mul_f64(0.75), "{least:?}");
        assert!(*most <= interval, "{most:?}");
        // Spread over the range, not stuck at one end.
        assert!(*least < interval.mul_f64(0.76) && *most > interval.mul_f64(0.99));
    }
}
