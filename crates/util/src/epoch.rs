//! Time split into numbered buckets, and a ring of buckets each holding two counts stamped
//! with its bucket's number in one atomic word: the ring of a breaker's time window and of the
//! retry budget, where a bucket is reused, not cleared, when its turn comes round again.
//!
//! A bucket's word stamps its counts with the low [`EPOCH_BITS`] bits of its bucket number.
//! [`Ring`] keeps that stamp unambiguous: its length is a power of two, so a bucket number
//! lands in the same slot whether it is read whole or from the stamp (the stamp wraps at a
//! multiple of the ring); the first writer of each new bucket empties every bucket that has
//! left the window, and a ring idle for longer than itself is emptied whole, so no stamp
//! outlives `2^23` buckets and an old stamp is never mistaken for a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Bits of the bucket number stamped on counts; stamps wrap around at 2^24.
pub const EPOCH_BITS: u32 = 24;
/// Bits of each of the two counts.
pub const COUNT_BITS: u32 = 20;
/// The largest count a bucket holds.
pub const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;
/// Stamps within this many buckets ahead of a bucket number are newer than it.
const HALF: u64 = 1 << (EPOCH_BITS - 1);

/// Numbers the buckets of `bucket` length since `base`.
///
/// ```
/// use std::time::Duration;
/// use seawall_util::epoch::Epochs;
/// use tokio::time::Instant;
///
/// let base = Instant::now();
/// let epochs = Epochs::new(base, Duration::from_millis(100));
/// assert_eq!(epochs.at(base + Duration::from_millis(250)), 2);
/// assert!(Epochs::is_live(2, 1, 2));
/// assert!(!Epochs::is_live(3, 1, 2));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Epochs {
    base: Instant,
    /// The bucket's length in nanoseconds (at least 1).
    bucket_nanos: u64,
}

impl Epochs {
    /// Buckets of `bucket` (not zero) from `base`.
    #[must_use]
    pub fn new(base: Instant, bucket: Duration) -> Self {
        Epochs {
            base,
            bucket_nanos: u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX).max(1),
        }
    }

    /// The number of the bucket `now` falls in (the whole number: it never wraps).
    #[must_use]
    #[inline]
    pub fn at(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.base);
        // In 64-bit nanoseconds (584 years from `base`): a 128-bit division is a library call
        // of about a hundred instructions on every deposit and every windowed outcome.
        let nanos = since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()));
        nanos / self.bucket_nanos
    }

    /// How many buckets `current` (a whole number) is past the bucket stamped `stored`,
    /// counting across the stamp's wrap-around.
    #[must_use]
    #[inline]
    pub fn age(current: u64, stored: u64) -> u64 {
        current.wrapping_sub(stored) & EPOCH_MASK
    }

    /// `true` when the bucket stamped `stored` is one of the `buckets` latest as of `current`
    /// (itself included).
    #[must_use]
    pub fn is_live(current: u64, stored: u64, buckets: u64) -> bool {
        Self::age(current, stored) < buckets
    }

    /// `true` when the bucket stamped `stored` is later than `current`: a writer or reader
    /// whose clock reading is older than another's.
    #[must_use]
    pub fn is_newer(current: u64, stored: u64) -> bool {
        Self::age(current, stored) >= HALF
    }

    /// `true` when the bucket stamped `stored` has left a window of `buckets` as of
    /// `current`: neither live nor newer.
    #[must_use]
    pub fn is_expired(current: u64, stored: u64, buckets: u64) -> bool {
        let age = Self::age(current, stored);
        age >= buckets && age < HALF
    }
}

/// Two counts and the bucket they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// The bucket's stamp: its number's low [`EPOCH_BITS`] bits.
    pub epoch: u64,
    /// The first count.
    pub a: u64,
    /// The second count.
    pub b: u64,
}

impl Counts {
    fn pack(self) -> u64 {
        (self.epoch & EPOCH_MASK) << (2 * COUNT_BITS) | self.a << COUNT_BITS | self.b
    }

    fn unpack(word: u64) -> Self {
        Counts {
            epoch: word >> (2 * COUNT_BITS),
            a: (word >> COUNT_BITS) & COUNT_MAX,
            b: word & COUNT_MAX,
        }
    }

    fn is_empty(self) -> bool {
        self.a == 0 && self.b == 0
    }
}

/// Why nothing was added to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdded {
    /// A count would exceed [`COUNT_MAX`].
    Full,
    /// The bucket holds a later bucket's counts: the writer's clock reading is older than the
    /// ring (a thread preempted for longer than the window), so its bucket has left the window.
    Stale,
}

/// Two counts stamped with their bucket's number, in one atomic word, updated lock-free.
///
/// ```
/// use seawall_util::epoch::{Counts, EpochCounts};
///
/// let bucket = EpochCounts::new();
/// assert_eq!(bucket.add(5, 1, 0), Ok(Some(Counts::default())), "bucket 0's (empty) counts left");
/// assert_eq!(bucket.add(5, 2, 1), Ok(None));
/// assert_eq!(bucket.load(), Counts { epoch: 5, a: 3, b: 1 });
/// // A later bucket reuses it and hands back what it held.
/// assert_eq!(bucket.add(9, 1, 0), Ok(Some(Counts { epoch: 5, a: 3, b: 1 })));
/// ```
#[derive(Debug, Default)]
pub struct EpochCounts {
    word: AtomicU64,
}

impl EpochCounts {
    /// An empty bucket.
    #[must_use]
    pub const fn new() -> Self {
        EpochCounts {
            word: AtomicU64::new(0),
        }
    }

    /// The counts now.
    #[must_use]
    pub fn load(&self) -> Counts {
        Counts::unpack(self.word.load(Ordering::Acquire))
    }

    /// Adds `a` and `b` to the counts of bucket `epoch` (a whole bucket number). A bucket that
    /// holds an earlier bucket's counts restarts at (`a`, `b`), and what it held is returned,
    /// so that the caller can forget it. Nothing is added when a
    /// count would exceed [`COUNT_MAX`], or when the bucket holds a later bucket's counts.
    #[inline]
    pub fn add(&self, epoch: u64, a: u64, b: u64) -> Result<Option<Counts>, NotAdded> {
        let stamp = epoch & EPOCH_MASK;
        if a > COUNT_MAX || b > COUNT_MAX {
            return Err(NotAdded::Full);
        }
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let held = Counts::unpack(current);
            let (next, left) = if held.epoch == stamp {
                if held.a + a > COUNT_MAX || held.b + b > COUNT_MAX {
                    return Err(NotAdded::Full);
                }
                let next = Counts {
                    epoch: stamp,
                    a: held.a + a,
                    b: held.b + b,
                };
                (next, None)
            } else if !held.is_empty() && Epochs::is_newer(epoch, held.epoch) {
                // An empty bucket has nothing to lose, whatever bucket it was.
                return Err(NotAdded::Stale);
            } else {
                (Counts { epoch: stamp, a, b }, Some(held))
            };
            match self.word.compare_exchange_weak(
                current,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(left),
                Err(actual) => current = actual,
            }
        }
    }

    /// Empties the bucket.
    pub fn reset(&self) {
        self.word.store(0, Ordering::Release);
    }

    /// Empties the bucket when `expired` says its stamp is over and it holds anything;
    /// returns what it held, exactly once however many threads race to empty it.
    pub fn clear_if(&self, expired: impl Fn(u64) -> bool) -> Option<Counts> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let held = Counts::unpack(current);
            if held.is_empty() || !expired(held.epoch) {
                return None;
            }
            let emptied = Counts {
                epoch: held.epoch,
                a: 0,
                b: 0,
            };
            match self.word.compare_exchange_weak(
                current,
                emptied.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(held),
                Err(actual) => current = actual,
            }
        }
    }
}

/// A window of the `buckets` latest buckets, kept in a ring of [`EpochCounts`] whose length
/// is a power of two (see the [module docs](self)).
///
/// Whatever leaves the window is handed, exactly once, to the `forget` function of the call
/// that empties it, so that a running total (the retry budget's balance) can take it out.
///
/// ```
/// use seawall_util::epoch::{Counts, Ring};
///
/// let ring = Ring::new(3);
/// ring.add(10, 2, 0, |_| {}).unwrap();
/// ring.add(11, 1, 1, |_| {}).unwrap();
/// assert_eq!(ring.sum(12), (3, 1));
/// let mut forgotten = Vec::new();
/// ring.expire(13, |left| forgotten.push(left));
/// assert_eq!(forgotten, [Counts { epoch: 10, a: 2, b: 0 }]);
/// assert_eq!(ring.sum(13), (1, 1));
/// ```
#[derive(Debug)]
pub struct Ring {
    slots: Box<[EpochCounts]>,
    /// The ring's length less one: a bucket's slot is its number masked by it.
    mask: u64,
    /// How many of the latest buckets are live.
    buckets: u64,
    /// The latest bucket number written or expired, whole.
    last: AtomicU64,
}

impl Ring {
    /// A window of `buckets` buckets (1 to 2^22).
    #[must_use]
    pub fn new(buckets: usize) -> Self {
        let buckets = buckets.clamp(1, 1 << 22);
        let len = buckets.next_power_of_two();
        Ring {
            slots: (0..len).map(|_| EpochCounts::new()).collect(),
            mask: len as u64 - 1,
            buckets: buckets as u64,
            last: AtomicU64::new(0),
        }
    }

    /// How many of the latest buckets are live.
    #[must_use]
    pub fn buckets(&self) -> u64 {
        self.buckets
    }

    /// Adds `a` and `b` to bucket `epoch`. What it held for an earlier bucket, and what other
    /// buckets held once the window moved past them, goes to `forget`. A writer whose clock
    /// reading is older than the window adds nothing where a later bucket is
    /// ([`NotAdded::Stale`]); where its own bucket is still there, its counts are not live and
    /// the next [`expire`](Self::expire) forgets them.
    ///
    /// The window moves when a bucket is first written into its slot: after an idle spell of
    /// `2^24` buckets a stamp may read as the current one, and a write then joins the old
    /// counts; they read as nothing ([`fold`](Self::fold) knows the ring was idle) until the
    /// next bucket's first write empties them, so a budget errs towards fewer retries.
    // Always inlined: it is the deposit of every first attempt through a retry layer, and
    // out of line it cost the retry layer 32 more instructions a call (scripts/icount.sh).
    #[inline(always)]
    pub fn add(
        &self,
        epoch: u64,
        a: u64,
        b: u64,
        mut forget: impl FnMut(Counts),
    ) -> Result<(), NotAdded> {
        match self.slots[(epoch & self.mask) as usize].add(epoch, a, b)? {
            None => Ok(()),
            Some(left) => {
                self.recycled(epoch, left, &mut forget);
                Ok(())
            }
        }
    }

    /// The first write of bucket `epoch` into its slot: the window may have moved, and what
    /// the slot held is forgotten.
    #[cold]
    #[inline(never)]
    fn recycled(&self, epoch: u64, left: Counts, forget: &mut dyn FnMut(Counts)) {
        if epoch > self.last.load(Ordering::Relaxed) {
            self.advance(epoch, true, forget);
        }
        if !left.is_empty() {
            forget(left);
        }
    }

    /// Empties every bucket that has left the window as of `epoch`, handing what each held
    /// to `forget`. (A bucket newer than `epoch`, from a writer whose clock reading is later,
    /// is left alone.)
    pub fn expire(&self, epoch: u64, mut forget: impl FnMut(Counts)) {
        if epoch > self.last.load(Ordering::Relaxed) {
            self.advance(epoch, false, &mut forget);
        } else {
            self.sweep(epoch, false, false, &mut forget);
        }
    }

    /// The sums of both counts over the live buckets as of `epoch`.
    #[must_use]
    pub fn sum(&self, epoch: u64) -> (u64, u64) {
        self.fold(epoch, (0, 0), |(a, b), counts| (a + counts.a, b + counts.b))
    }

    /// Folds `f` over the counts of the live buckets as of `epoch`.
    pub fn fold<T>(&self, epoch: u64, init: T, mut f: impl FnMut(T, Counts) -> T) -> T {
        if epoch.saturating_sub(self.last.load(Ordering::Acquire)) >= self.buckets {
            // Nothing was written within the window: every stamp is old, whatever it reads.
            return init;
        }
        self.slots.iter().fold(init, |acc, slot| {
            let counts = slot.load();
            if Epochs::is_live(epoch, counts.epoch, self.buckets) {
                f(acc, counts)
            } else {
                acc
            }
        })
    }

    /// Empties every bucket (without forgetting: the caller starts over).
    pub fn reset(&self) {
        for slot in self.slots.iter() {
            slot.reset();
        }
    }

    /// The window moved to `epoch` (`written`: by a write into `epoch`'s bucket): the first to
    /// see it empties what has left the window.
    #[cold]
    fn advance(&self, epoch: u64, written: bool, forget: &mut dyn FnMut(Counts)) {
        let previous = self.last.fetch_max(epoch, Ordering::AcqRel);
        if previous < epoch {
            // Idle for longer than the ring: every stamp is older than the window, even one
            // that reads as live after wrapping.
            let idle = epoch - previous > self.mask;
            self.sweep(epoch, idle, written, forget);
        }
    }

    #[cold]
    #[inline(never)]
    fn sweep(&self, epoch: u64, idle: bool, written: bool, forget: &mut dyn FnMut(Counts)) {
        let buckets = self.buckets;
        for slot in self.slots.iter() {
            let left = if idle {
                // Everything but later buckets (and `epoch`'s own, when it was just written).
                slot.clear_if(|stored| {
                    let age = Epochs::age(epoch, stored);
                    let just_written = written && age == 0;
                    !(just_written || Epochs::is_newer(epoch, stored))
                })
            } else {
                slot.clear_if(|stored| Epochs::is_expired(epoch, stored, buckets))
            };
            if let Some(left) = left {
                forget(left);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_bucket_holds_the_sum_of_its_epoch_and_hands_back_the_rest(
            adds in proptest::collection::vec((0u64..4, 0u64..3, 0u64..3), 1..200),
        ) {
            let bucket = EpochCounts::new();
            let (mut epoch, mut a, mut b) = (0, 0, 0);
            for (step, da, db) in adds {
                // Epochs only move forward, as a clock does.
                let e = epoch + step;
                let left = bucket.add(e, da, db).unwrap();
                if e == epoch {
                    prop_assert_eq!(left, None);
                    a += da;
                    b += db;
                } else {
                    let held = Counts { epoch, a, b };
                    prop_assert_eq!(left, Some(held));
                    (epoch, a, b) = (e, da, db);
                }
                prop_assert_eq!(bucket.load(), Counts { epoch, a, b });
            }
            let cleared = bucket.clear_if(|stored| stored == epoch);
            prop_assert_eq!(cleared, (a + b > 0).then_some(Counts { epoch, a, b }));
            prop_assert_eq!(bucket.clear_if(|_| true), None);
        }

        /// Whatever the order of writers (each at most a ring's length behind the latest), the
        /// ring's live sum is what was added within the window, and everything else was
        /// forgotten exactly once.
        #[test]
        fn a_ring_forgets_exactly_what_left_its_window(
            writes in proptest::collection::vec((0u64..40, 0u64..6, 1u64..4), 1..200),
        ) {
            let ring = Ring::new(5);
            let mut now = 0u64;
            let mut added: Vec<(u64, u64)> = Vec::new();
            let mut forgotten = 0u64;
            for (jump, behind, a) in writes {
                now += jump / 8;
                let epoch = now.saturating_sub(behind);
                match ring.add(epoch, a, 0, |left| forgotten += left.a) {
                    Ok(()) => added.push((epoch, a)),
                    // Only a bucket already out of the window is refused.
                    Err(NotAdded::Stale) => prop_assert!(now - epoch >= 8),
                    Err(NotAdded::Full) => unreachable!("small counts"),
                }
            }
            ring.expire(now, |left| forgotten += left.a);
            let live: u64 = added.iter().filter(|(e, _)| now - e < 5).map(|(_, a)| a).sum();
            let total: u64 = added.iter().map(|(_, a)| a).sum();
            prop_assert_eq!(ring.sum(now).0, live);
            prop_assert_eq!(forgotten + live, total, "every count kept or forgotten once");
        }
    }

    #[test]
    fn a_full_bucket_refuses_and_keeps_its_counts() {
        let bucket = EpochCounts::new();
        assert_eq!(bucket.add(1, COUNT_MAX, 0), Ok(Some(Counts::default())));
        assert_eq!(bucket.add(1, 1, 0), Err(NotAdded::Full));
        assert_eq!(bucket.add(1, 0, COUNT_MAX), Ok(None));
        assert_eq!(
            bucket.load(),
            Counts {
                epoch: 1,
                a: COUNT_MAX,
                b: COUNT_MAX
            }
        );
    }

    #[test]
    fn liveness_counts_across_the_wrap_around() {
        assert!(Epochs::is_live(1 << EPOCH_BITS, EPOCH_MASK, 2));
        assert!(!Epochs::is_live((1 << EPOCH_BITS) + 1, EPOCH_MASK, 2));
        assert!(Epochs::is_live(7, 7, 1));
        assert!(Epochs::is_newer(6, 7));
        assert!(!Epochs::is_expired(6, 7, 3), "newer is not expired");
        assert!(Epochs::is_expired(10, 7, 3));
    }

    #[test]
    fn a_writer_stale_by_a_whole_ring_does_not_evict_a_newer_bucket() {
        let bucket = EpochCounts::new();
        bucket.add(100, 3, 0).unwrap();
        // A writer whose clock reading is 16 buckets older lands in the same slot of a ring
        // of 16: its bucket has left the window, the newer one has not.
        assert_eq!(bucket.add(84, 1, 0), Err(NotAdded::Stale));
        assert_eq!(
            bucket.load(),
            Counts {
                epoch: 100,
                a: 3,
                b: 0
            }
        );
    }

    #[test]
    fn buckets_stay_in_their_slots_across_the_stamp_wrap() {
        // Bucket numbers around 2^24 map to the same slots whole or stamped: the buckets
        // just before the wrap stay live after it.
        let ring = Ring::new(11);
        let wrap = 1u64 << EPOCH_BITS;
        for epoch in wrap - 4..wrap + 3 {
            ring.add(epoch, 1, 0, |left| panic!("{left:?} forgotten early"))
                .unwrap();
        }
        assert_eq!(ring.sum(wrap + 2), (7, 0));
    }

    #[test]
    fn a_ring_idle_for_a_whole_stamp_cycle_reads_empty() {
        let ring = Ring::new(30);
        ring.add(5, 4, 4, |_| {}).unwrap();
        let later = 5 + (1 << EPOCH_BITS);
        // The stamp reads as live after wrapping; the ring knows nothing was written since.
        assert_eq!(ring.sum(later), (0, 0));
        // A write in that bucket joins the old counts, and they all read as nothing...
        ring.add(later, 1, 0, |_| {}).unwrap();
        assert_eq!(ring.sum(later), (0, 0));
        // ...until the next bucket's first write empties what the idle spell left behind.
        let mut forgotten = Vec::new();
        ring.add(later + 1, 1, 0, |left| forgotten.push(left))
            .unwrap();
        assert_eq!(
            forgotten,
            [Counts {
                epoch: 5,
                a: 5,
                b: 4
            }]
        );
        assert_eq!(ring.sum(later + 1), (1, 0));
    }
}
