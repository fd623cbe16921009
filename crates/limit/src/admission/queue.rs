//! The queue of calls waiting for a permit, and its discipline: which waiter a freed permit
//! goes to, and which waiters are shed.
//!
//! One lock guards the lines (one per [`Priority`]); it is taken only by calls that queue, by
//! permits given back while calls wait, and by limit changes. The admitted-at-once path
//! never takes it (see [`Shared::take_spare`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use seawall_classify::{ConfigError, Priority};
use tokio::time::Instant;

use crate::admission::{Shared, take_one};
use crate::error::Reason;

/// How the queue orders its waiting calls and when it gives up on them.
///
/// [`Discipline::Fifo`] keeps every call that may still make its deadline and serves them in
/// order of arrival: as many calls are served as with any discipline, but under a standing
/// overload the calls at the back of the line wait until their deadline and fail there.
///
/// [`Discipline::ControlledDelay`] tells a burst from a standing queue, after Facebook's
/// "Fail at Scale" (Maurer, ACM Queue 2015) and CoDel (Nichols and Jacobson, 2012). While the
/// queue has been empty within the last `interval`, it is a burst: calls wait in FIFO order,
/// as long as [`Discipline::Fifo`] lets them. Once it has not been empty for `interval`, it is
/// standing: a call waits at most `target` (a sheddable one not at all), and a freed permit
/// goes to the newest waiter (adaptive LIFO), which has the most time left and is the likeliest
/// to be answered in time; the oldest, which would fail at their deadline anyway, are refused
/// at once instead. The pool stays as busy as under FIFO (a permit still goes to whoever
/// waits), and no caller waits out its deadline in a queue that does not drain.
///
/// Under either discipline a freed permit goes to the highest [`Priority`] waiting first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discipline {
    /// First in, first out; a call waits for at most `max_wait` and never past its deadline.
    Fifo,
    /// FIFO while the queue drains; once it has stood for `interval`, newest first and no
    /// wait longer than `target`.
    ControlledDelay {
        /// How long the queue must stay non-empty to count as standing (Fail at Scale: 100 ms).
        interval: Duration,
        /// The longest wait under a standing queue (Fail at Scale: 5 ms); critical calls may
        /// wait the interval, sheddable calls wait none.
        target: Duration,
    },
}

impl Discipline {
    /// Controlled delay with Fail at Scale's figures: standing after 100 ms, then at most 5 ms
    /// of wait, newest first.
    pub const CONTROLLED_DELAY: Discipline = Discipline::ControlledDelay {
        interval: Duration::from_millis(100),
        target: Duration::from_millis(5),
    };

    /// Checks the settings, for the builder.
    pub(crate) fn check(self, layer: &'static str) -> Result<Self, ConfigError> {
        if let Discipline::ControlledDelay { interval, target } = self {
            if interval.is_zero() || interval > MAX_WAIT_LIMIT {
                return Err(ConfigError::new(
                    layer,
                    "discipline.interval",
                    format!("is {interval:?}: must be more than zero and at most one hour"),
                ));
            }
            if target > interval {
                return Err(ConfigError::new(
                    layer,
                    "discipline.target",
                    format!("is {target:?}: must be at most the interval ({interval:?})"),
                ));
            }
        }
        Ok(self)
    }
}

/// One queued call, shared by its future and the lines.
pub(crate) struct Waiter {
    state: Mutex<WaitState>,
    pub(crate) deadline: Option<Instant>,
    /// Its place when it joined: 1 for the first in its line.
    pub(crate) place: usize,
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("place", &self.place)
            .finish()
    }
}

enum WaitState {
    /// In line, with the waker of its last poll.
    Waiting(Option<Waker>),
    /// A permit was handed to it (counted out of the spare permits), not yet taken; `lifo`
    /// when it was served newest first.
    Granted { lifo: bool },
    /// Refused while in line.
    Refused(Reason, Duration),
    /// Its answer was taken, or its future dropped: the entry in the lines is stale.
    Done,
}

impl WaitState {
    /// The answer a waiter in this state has: a permit or a refusal; `None` while it waits
    /// or once its answer was taken.
    fn answer(self) -> Option<Answer> {
        match self {
            WaitState::Granted { lifo } => Some(Answer::Permit { lifo }),
            WaitState::Refused(reason, retry_after) => Some(Answer::Refused(reason, retry_after)),
            WaitState::Waiting(_) | WaitState::Done => None,
        }
    }
}

impl Waiter {
    fn lock(&self) -> MutexGuard<'_, WaitState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_waiting(&self) -> bool {
        matches!(*self.lock(), WaitState::Waiting(_))
    }

    /// Answers it (under the lines' lock), waking its future.
    fn answer(&self, answer: WaitState) {
        let previous = std::mem::replace(&mut *self.lock(), answer);
        if let WaitState::Waiting(Some(waker)) = previous {
            waker.wake();
        }
    }
}

/// What a waiter's future learns when it polls.
#[derive(Debug)]
pub(crate) enum Answer {
    /// It holds a permit now; `lifo` when it was served newest first.
    Permit { lifo: bool },
    /// It was refused in line, with the caller's `retry_after`.
    Refused(Reason, Duration),
}

/// The waiting calls, one line per priority.
#[derive(Debug)]
pub(crate) struct Lines {
    lines: [VecDeque<Arc<Waiter>>; 3],
    /// Entries answered or dropped but still in a line (removed when reached, or compacted).
    stale: usize,
    /// When the queue last went from empty to not empty.
    busy_since: Instant,
    /// When the queue last became empty.
    idle_since: Instant,
    /// Whether the queue is standing (controlled delay): it has not been empty for an
    /// interval, and has not stayed empty for an interval since.
    standing: bool,
}

impl Lines {
    pub(crate) fn new(now: Instant) -> Self {
        Lines {
            lines: Default::default(),
            stale: 0,
            busy_since: now,
            idle_since: now,
            standing: false,
        }
    }

    /// Takes the next waiter still waiting: highest priority first, newest first when `lifo`.
    fn pick(&mut self, lifo: bool) -> Option<Arc<Waiter>> {
        (0..self.lines.len()).find_map(|rank| self.pop_waiting(rank, lifo))
    }

    /// The newest waiter of a lower priority than `priority`, lowest first.
    fn lowest_below(&mut self, priority: Priority) -> Option<Arc<Waiter>> {
        (priority.rank() + 1..self.lines.len())
            .rev()
            .find_map(|rank| self.pop_waiting(rank, true))
    }

    /// Takes the oldest (or, `newest`, the newest) waiter still waiting in line `rank`,
    /// dropping the stale entries it passes.
    fn pop_waiting(&mut self, rank: usize, newest: bool) -> Option<Arc<Waiter>> {
        let line = &mut self.lines[rank];
        while let Some(waiter) = if newest {
            line.pop_back()
        } else {
            line.pop_front()
        } {
            if waiter.is_waiting() {
                return Some(waiter);
            }
            self.stale -= 1;
        }
        None
    }

    /// An entry left the queue without leaving its line.
    fn left_stale(&mut self, live: usize) {
        self.stale += 1;
        // Bounded memory: stale entries never outnumber live ones by more than a few.
        if self.stale > live + 64 {
            for line in &mut self.lines {
                line.retain(|waiter| waiter.is_waiting());
            }
            self.stale = 0;
        }
    }
}

impl Shared {
    fn lines(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the queue is standing now (controlled delay): it becomes so once it has not
    /// been empty for the interval, and stops once it has stayed empty for the interval. The
    /// short waits of a standing queue empty it often for a moment (a call shed, the next
    /// not yet arrived); only an interval without a call to queue says the overload is over.
    fn standing(&self, lines: &mut Lines, now: Instant) -> bool {
        let Discipline::ControlledDelay { interval, .. } = self.discipline else {
            return false;
        };
        if self.queued.load(Ordering::SeqCst) == 0 {
            if lines.standing && now.saturating_duration_since(lines.idle_since) >= interval {
                lines.standing = false;
            }
        } else if !lines.standing && now.saturating_duration_since(lines.busy_since) >= interval {
            lines.standing = true;
        }
        lines.standing
    }

    /// One fewer call waiting; whether the queue stood until now, and its emptiness, noted.
    fn leave(&self, lines: &mut Lines, now: Instant) {
        self.standing(lines, now);
        if self.queued.fetch_sub(1, Ordering::SeqCst) == 1 {
            lines.idle_since = now;
        }
    }

    /// A waiter leaves the queue without leaving its line (its entry is stale).
    fn leave_stale(&self, lines: &mut Lines, now: Instant) {
        self.leave(lines, now);
        let live = self.queued.load(Ordering::SeqCst);
        lines.left_stale(live);
    }

    /// Puts a call in line, or refuses it when the queue is full of calls of its priority or
    /// higher (a lower one gives up its place). The waiter may be handed a permit at once.
    /// Returns the waiter and when its wait ends under a standing queue (`None`: only its
    /// deadline or `max_wait` ends it).
    pub(crate) fn join(
        self: &Arc<Self>,
        priority: Priority,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Result<(Arc<Waiter>, Option<Instant>), Reason> {
        let mut lines = self.lines();
        let standing = self.standing(&mut lines, now);
        let queued = self.queued.load(Ordering::SeqCst);
        if queued >= self.queue {
            let victim = lines.lowest_below(priority).ok_or(Reason::QueueFull)?;
            victim.answer(WaitState::Refused(
                Reason::Displaced(priority),
                self.max_wait,
            ));
            self.record_rejected();
            // Its place goes to the newcomer: the count of waiting calls stays.
        } else {
            if queued == 0 {
                lines.busy_since = now;
            }
            // Sequentially consistent: see `take_spare`.
            self.queued.fetch_add(1, Ordering::SeqCst);
        }
        let waiter = Arc::new(Waiter {
            state: Mutex::new(WaitState::Waiting(None)),
            deadline,
            place: lines.lines[priority.rank()].len() + 1,
        });
        lines.lines[priority.rank()].push_back(waiter.clone());
        let shed_at = match self.discipline {
            Discipline::Fifo => None,
            Discipline::ControlledDelay { interval, target } => {
                // Sheddable work waits none under a standing queue; a critical call, which
                // goes before every other, as long as the interval (a flood of lower work
                // makes the queue stand without delaying it more than a permit's turn).
                let target = match priority {
                    Priority::Critical => interval,
                    Priority::Default => target,
                    Priority::Sheddable => Duration::ZERO,
                };
                // The queue stays non-empty while this call waits, so it is standing from
                // `busy_since + interval` on (now, if it stands already), and then this call
                // waits at most `target`.
                let standing_from = if standing {
                    now
                } else {
                    lines.busy_since + interval
                };
                Some((now + target).max(standing_from))
            }
        };
        // A permit given back spare since `poll_ready` found none comes to the queue now.
        self.dispatch(&mut lines, now);
        Ok((waiter, shed_at))
    }

    /// Hands spare permits to waiting calls while there are both (the lines' lock held):
    /// the highest priority first, FIFO or (under a standing queue) newest first. A waiter
    /// whose deadline would come before a call at the recent pace could answer is refused
    /// instead, and the permit goes to the next.
    fn dispatch(&self, lines: &mut Lines, now: Instant) {
        let lifo = self.standing(lines, now);
        while self.queued.load(Ordering::SeqCst) != 0 {
            if !take_one(&self.spare, Ordering::SeqCst, Ordering::SeqCst) {
                return;
            }
            let Some(waiter) = lines.pick(lifo) else {
                // Counted as waiting, not in line yet: it takes the permit when it joins.
                self.spare.fetch_add(1, Ordering::SeqCst);
                return;
            };
            self.leave(lines, now);
            if let (Some(deadline), Some(service)) = (waiter.deadline, self.expected_service(now))
                && now + service > deadline
            {
                self.spare.fetch_add(1, Ordering::SeqCst);
                self.record_rejected();
                waiter.answer(WaitState::Refused(Reason::TooLate(service), service));
                continue;
            }
            waiter.answer(WaitState::Granted { lifo });
        }
    }

    /// Moves spare permits to waiting calls; called when a permit comes back while calls
    /// wait, and when the limit grows.
    #[cold]
    #[inline(never)]
    pub(crate) fn hand_spare_to_queue(&self) {
        let now = Instant::now();
        let mut lines = self.lines();
        self.dispatch(&mut lines, now);
    }

    /// A waiter's answer, if it has one; else its waker is kept.
    pub(crate) fn poll_answer(&self, waiter: &Waiter, cx: &mut Context<'_>) -> Poll<Answer> {
        let mut state = waiter.lock();
        match std::mem::replace(&mut *state, WaitState::Done) {
            WaitState::Waiting(waker) => {
                let waker = match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => waker,
                    _ => cx.waker().clone(),
                };
                *state = WaitState::Waiting(Some(waker));
                Poll::Pending
            }
            // Its answer was taken already: a future polled after it completed.
            answered => Poll::Ready(
                answered
                    .answer()
                    .unwrap_or(Answer::Refused(Reason::QueueFull, self.max_wait)),
            ),
        }
    }

    /// The waiter's time is up: it leaves the line, unless a permit came in the same instant
    /// (then it keeps it: `Some`).
    pub(crate) fn give_up(&self, waiter: &Waiter) -> Option<Answer> {
        let now = Instant::now();
        let mut lines = self.lines();
        let state = std::mem::replace(&mut *waiter.lock(), WaitState::Done);
        if let WaitState::Waiting(_) = state {
            self.leave_stale(&mut lines, now);
        }
        state.answer()
    }

    /// The waiter's future was dropped: it leaves the line, and a permit handed to it and
    /// not taken goes to the next.
    pub(crate) fn cancel(&self, waiter: &Waiter) {
        // Answered and taken (the usual end of a wait): final, so nothing to do, and no need
        // for the lines' lock.
        if matches!(*waiter.lock(), WaitState::Done) {
            return;
        }
        // The locks are released when `give_up` returns, before the permit goes back.
        if let Some(Answer::Permit { .. }) = self.give_up(waiter) {
            self.give_back_permit();
        }
    }
}

/// A call's place in line: leaving it (the future dropped) gives back anything it was handed.
#[derive(Debug)]
pub(crate) struct Place {
    pub(crate) shared: Arc<Shared>,
    pub(crate) waiter: Arc<Waiter>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.shared.cancel(&self.waiter);
    }
}

/// The longest `max_wait` accepted.
pub const MAX_WAIT_LIMIT: Duration = Duration::from_secs(60 * 60);
