//! Admission: the state shared by every clone of one limit (its permits, queue and
//! counters), the queue's lines and discipline, and the permits themselves.

pub(crate) mod permit;
pub(crate) mod queue;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall_classify::schema;
use tokio::time::Instant;

use crate::adaptive::{LimitAlgorithm, Sample};
use crate::admission::queue::{Discipline, Lines};
use crate::error::{LimitReached, Reason};

#[derive(Debug)]
pub(crate) struct Shared {
    /// Where queued calls wait, and the order they are served in (see [`crate::queue`]).
    pub(crate) lines: Mutex<Lines>,
    pub(crate) discipline: Discipline,
    /// Free permits: taking and giving back one is one atomic operation; a permit given back
    /// while calls wait goes to one of them through the lines.
    pub(crate) spare: AtomicUsize,
    /// The most the limit can be (the fixed limit, or the adaptive maximum).
    pub(crate) max: usize,
    /// The limit now.
    pub(crate) limit: AtomicUsize,
    /// Permits to retire as they come back, because the limit shrank while they were held.
    pub(crate) debt: AtomicUsize,
    /// How many times the limit has changed: a call admitted in this generation is one the
    /// latest change has not answered yet.
    pub(crate) generation: AtomicU64,
    /// Serialises an adaptive algorithm's updates with the limit changes they make: two
    /// finishing calls never apply their limits out of order, and the algorithm sees one
    /// sample at a time.
    pub(crate) resizing: Mutex<()>,
    pub(crate) algorithm: Option<Arc<dyn LimitAlgorithm>>,
    pub(crate) queue: usize,
    pub(crate) max_wait: Duration,
    /// What an outcome means to an adaptive algorithm.
    pub(crate) policy: seawall_classify::Policy,
    /// Calls waiting in the lines.
    pub(crate) queued: AtomicUsize,
    pub(crate) admitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) waited_nanos: AtomicU64,
    /// The queue's drain interval learnt from calls it admitted: the wait of each divided by
    /// its place in the queue (an exponential moving average, in nanoseconds; 0 before the
    /// first), and when it was last learnt (nanoseconds since `epoch`).
    pub(crate) per_place_nanos: AtomicU64,
    pub(crate) learnt_at: AtomicU64,
    pub(crate) epoch: Instant,
}

/// How long a learnt drain interval is trusted without a new sample.
const FRESH: Duration = Duration::from_secs(2);

impl Shared {
    pub(crate) fn new(
        max: usize,
        queue: usize,
        max_wait: Duration,
        discipline: Discipline,
        algorithm: Option<Arc<dyn LimitAlgorithm>>,
        policy: seawall_classify::Policy,
    ) -> Self {
        let (limit, max) = match &algorithm {
            Some(algorithm) => (algorithm.initial(), algorithm.bounds().1),
            None => (max, max),
        };
        let epoch = Instant::now();
        Shared {
            lines: Mutex::new(Lines::new(epoch)),
            discipline,
            spare: AtomicUsize::new(limit),
            max,
            limit: AtomicUsize::new(limit),
            debt: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            resizing: Mutex::new(()),
            algorithm,
            queue,
            max_wait,
            policy,
            queued: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            waited_nanos: AtomicU64::new(0),
            per_place_nanos: AtomicU64::new(0),
            learnt_at: AtomicU64::new(0),
            epoch,
        }
    }

    /// A queued call that joined at `place` (1: first in line) was admitted after `waited`.
    ///
    /// The sample is the wait over `place + limit - 1` places: calls that started together
    /// end together, so the first in line may wait a whole call for a permit (the drain comes
    /// in bursts); counting the calls in flight as places keeps a burst from reading as a slow
    /// queue. It errs low, which admits rather than refuses.
    pub(crate) fn learn_drain(&self, place: usize, waited: Duration) {
        let places = place.max(1) + self.limit().saturating_sub(1);
        let sample = waited.as_nanos() as f64 / places as f64;
        let _ = self
            .per_place_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                let next = if old == 0 {
                    sample
                } else {
                    0.8 * old as f64 + 0.2 * sample
                };
                Some((next as u64).max(1))
            });
        let now = Instant::now().saturating_duration_since(self.epoch);
        self.learnt_at.store(
            u64::try_from(now.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
    }

    /// The learnt drain interval (a permit frees every `service / limit`), if learnt in the
    /// last two seconds.
    fn per_place(&self, now: Instant) -> Option<Duration> {
        let per_place = self.per_place_nanos.load(Ordering::Acquire);
        if per_place == 0 {
            return None;
        }
        let learnt = self.epoch + Duration::from_nanos(self.learnt_at.load(Ordering::Acquire));
        (now.saturating_duration_since(learnt) <= FRESH).then(|| Duration::from_nanos(per_place))
    }

    /// How long a call joining the queue at `place` can expect to wait for its permit, at
    /// the pace the queue drained recently; `None` without a recent estimate.
    pub(crate) fn expected_wait(&self, place: usize, now: Instant) -> Option<Duration> {
        let places = u32::try_from(place).unwrap_or(u32::MAX);
        self.per_place(now)
            .map(|per_place| per_place.saturating_mul(places))
    }

    /// How long a call holds its permit, by the same estimate (`limit` drain intervals).
    pub(crate) fn expected_service(&self, now: Instant) -> Option<Duration> {
        let limit = u32::try_from(self.limit()).unwrap_or(u32::MAX);
        self.per_place(now)
            .map(|per_place| per_place.saturating_mul(limit))
    }

    pub(crate) fn record_admitted(&self) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_admitted_after(&self, waited: Duration) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn record_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Refuses a call for `reason`: counted, reported (an event, and on the caller's span
    /// who refused and how loaded the limit was), and the error with `retry_after`.
    pub(crate) fn refuse(&self, reason: Reason, retry_after: Duration) -> seawall_classify::Error {
        self.record_rejected();
        let error = LimitReached::error(reason, retry_after);
        let (in_flight, queued) = (self.in_flight(), self.queued());
        let waited = match reason {
            Reason::QueueFull | Reason::Displaced(_) => None,
            Reason::WaitedTooLong(wait)
            | Reason::Shed(wait)
            | Reason::TooLate(wait)
            | Reason::Deadline(wait)
            | Reason::LateFromQueue { waited: wait, .. } => Some(wait.as_millis() as u64),
        };
        tracing::debug!(
            target: "seawall::limit",
            {
                { schema::FIELD_REJECTIONS } = 1u64,
                { schema::LAYER } = "limit",
                { schema::ERROR_TYPE } = "rejected",
                { schema::LIMIT_IN_FLIGHT } = in_flight,
                { schema::LIMIT_QUEUED_ATTR } = queued,
                { schema::LIMIT_QUEUE_WAIT_MS } = waited
            },
            "call refused: {error}"
        );
        let refusal = schema::record_refusal("limit")
            .with(schema::LIMIT_IN_FLIGHT, in_flight as i64)
            .with(schema::LIMIT_QUEUED_ATTR, queued as i64);
        if let Some(waited) = waited {
            let _ = refusal.with(schema::LIMIT_QUEUE_WAIT_MS, waited as i64);
        }
        error
    }

    pub(crate) fn in_flight(&self) -> usize {
        let total = self.limit.load(Ordering::Acquire) + self.debt.load(Ordering::Acquire);
        total.saturating_sub(self.spare.load(Ordering::Acquire))
    }

    /// Takes a spare permit, unless none is left or a call is queued (it goes first).
    ///
    /// With [`give_back_spare`](Self::give_back_spare) and
    /// [`hand_spare_to_queue`](Self::hand_spare_to_queue), a Dekker-style handshake on two
    /// sequentially consistent counters: a caller that queues counts itself in `queued` and
    /// then looks at `spare`; a caller that gives a permit back adds it to `spare` and then
    /// looks at `queued`. One of the two sees the other, so a queued call never waits while a
    /// permit sits spare.
    #[inline]
    pub(crate) fn take_spare(&self) -> bool {
        if self.queued.load(Ordering::SeqCst) != 0 {
            return false;
        }
        take_one(&self.spare, Ordering::SeqCst, Ordering::SeqCst)
    }

    /// Gives back `permits` (one coming back, or more when the limit grows): to queued calls
    /// if there are any (see [`crate::queue`]), else to the spare count.
    #[inline]
    pub(crate) fn give_back_spare(&self, permits: usize) {
        self.spare.fetch_add(permits, Ordering::SeqCst);
        if self.queued.load(Ordering::SeqCst) != 0 {
            self.hand_spare_to_queue();
        }
    }

    /// Whether the limit is fixed (no adaptive algorithm).
    pub(crate) fn is_fixed(&self) -> bool {
        self.algorithm.is_none()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// The limit's generation (how many times it has changed), read before [`Self::limit`]
    /// at admission: a change in between reads as an older generation than the limit, so the
    /// call's sample is not taken for one of the new limit's.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Gives a finished call's `sample` (admitted in `generation`) to the adaptive algorithm
    /// and applies the limit it returns, as one step: no other sample is learnt in between.
    pub(crate) fn learn(&self, mut sample: Sample, generation: u64) {
        let Some(algorithm) = &self.algorithm else {
            return;
        };
        let _guard = self
            .resizing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sample.current = self.generation.load(Ordering::Acquire) == generation;
        let limit = algorithm.update(sample);
        self.resize(limit);
    }

    /// Moves the limit to `limit` (the resize lock held): new permits when it grows (paying
    /// back debt first, the rest to waiting calls or spare), and when it shrinks, spare
    /// permits retired now and held ones as they come back.
    fn resize(&self, limit: usize) {
        let old = self.limit.load(Ordering::Acquire);
        if limit > old {
            let mut grow = limit - old;
            let repaid = self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                    Some(debt - debt.min(grow))
                })
                .map_or(0, |debt| debt.min(grow));
            grow -= repaid;
            if grow > 0 {
                self.give_back_spare(grow);
            }
        } else if limit < old {
            let shrink = old - limit;
            let retired = self
                .spare
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |spare| {
                    Some(spare - spare.min(shrink))
                })
                .map_or(0, |spare| spare.min(shrink));
            self.debt.fetch_add(shrink - retired, Ordering::AcqRel);
        } else {
            return;
        }
        // The limit before the generation: a reader that sees the new generation sees the
        // new limit.
        self.limit.store(limit, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(target: "seawall::limit", { { schema::LIMIT_VALUE_ATTR } = limit }, "limit changed");
    }

    /// Gives a permit back, or retires it if the limit shrank while it was held.
    #[inline]
    pub(crate) fn give_back_permit(&self) {
        if self.debt.load(Ordering::Acquire) != 0
            && take_one(&self.debt, Ordering::AcqRel, Ordering::Acquire)
        {
            return;
        }
        self.give_back_spare(1);
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

/// Takes one from `counter` unless it is zero; whether it did.
#[inline]
pub(crate) fn take_one(counter: &AtomicUsize, success: Ordering, failure: Ordering) -> bool {
    counter
        .fetch_update(success, failure, |count| count.checked_sub(1))
        .is_ok()
}
