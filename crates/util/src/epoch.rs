//! Time split into numbered buckets, and two counts stamped with their bucket's number in
//! one atomic word: the ring of a breaker's time window and of the retry budget, where a
//! bucket is reused, not cleared, when its turn comes round again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Bits of the bucket number stamped on counts; numbers wrap around at 2^24.
pub const EPOCH_BITS: u32 = 24;
/// Bits of each of the two counts.
pub const COUNT_BITS: u32 = 20;
/// The largest count a bucket holds.
pub const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;

/// Numbers the buckets of `bucket` length since `base` (modulo 2^24).
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

    /// The number of the bucket `now` falls in.
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
        (nanos / self.bucket_nanos) & EPOCH_MASK
    }

    /// `true` when bucket number `stored` is one of the `buckets` latest as of `current`
    /// (itself included), counting across the wrap-around.
    #[must_use]
    pub fn is_live(current: u64, stored: u64, buckets: u64) -> bool {
        current.wrapping_sub(stored) & EPOCH_MASK < buckets
    }
}

/// Two counts and the bucket they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// The bucket number.
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
}

/// A bucket's two counts would exceed [`COUNT_MAX`]; nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Two counts stamped with their bucket's number, in one atomic word, updated lock-free.
///
/// ```
/// use seawall_util::epoch::{Counts, EpochCounts};
///
/// let bucket = EpochCounts::new();
/// assert_eq!(bucket.add(5, 1, 0), Ok(Some(Counts::default())), "epoch 0's (empty) counts left");
/// assert_eq!(bucket.add(5, 2, 1), Ok(None));
/// assert_eq!(bucket.load(), Counts { epoch: 5, a: 3, b: 1 });
/// // A later epoch reuses the bucket and hands back what it held.
/// assert_eq!(bucket.add(9, 1, 0), Ok(Some(Counts { epoch: 5, a: 3, b: 1 })));
/// ```
#[derive(Debug, Default)]
pub struct EpochCounts {
    word: AtomicU64,
}

impl EpochCounts {
    /// An empty bucket of epoch 0.
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

    /// Adds `a` and `b` to the counts of `epoch`. A bucket that holds another epoch restarts
    /// at (`a`, `b`), and what it held is returned, so that the caller can forget it. `Err`
    /// (and nothing added) when a count would exceed [`COUNT_MAX`].
    #[inline]
    pub fn add(&self, epoch: u64, a: u64, b: u64) -> Result<Option<Counts>, Full> {
        let epoch = epoch & EPOCH_MASK;
        if a > COUNT_MAX || b > COUNT_MAX {
            return Err(Full);
        }
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let held = Counts::unpack(current);
            let (next, left) = if held.epoch == epoch {
                if held.a + a > COUNT_MAX || held.b + b > COUNT_MAX {
                    return Err(Full);
                }
                let next = Counts {
                    epoch,
                    a: held.a + a,
                    b: held.b + b,
                };
                (next, None)
            } else {
                (Counts { epoch, a, b }, Some(held))
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

    /// Empties the bucket and sets it back to epoch 0.
    pub fn reset(&self) {
        self.word.store(0, Ordering::Release);
    }

    /// Empties the bucket when `expired` says its epoch is over and it holds anything;
    /// returns what it held, exactly once however many threads race to empty it.
    pub fn clear_if(&self, expired: impl Fn(u64) -> bool) -> Option<Counts> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let held = Counts::unpack(current);
            if !expired(held.epoch) || (held.a == 0 && held.b == 0) {
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
            for (e, da, db) in adds {
                let left = bucket.add(e, da, db).unwrap();
                if e == epoch {
                    prop_assert_eq!(left, None);
                    a += da;
                    b += db;
                } else {
                    prop_assert_eq!(left, Some(Counts { epoch, a, b }));
                    (epoch, a, b) = (e, da, db);
                }
                prop_assert_eq!(bucket.load(), Counts { epoch, a, b });
            }
            let cleared = bucket.clear_if(|stored| stored == epoch);
            prop_assert_eq!(cleared, (a + b > 0).then_some(Counts { epoch, a, b }));
            prop_assert_eq!(bucket.clear_if(|_| true), None);
        }
    }

    #[test]
    fn a_full_bucket_refuses_and_keeps_its_counts() {
        let bucket = EpochCounts::new();
        assert_eq!(bucket.add(1, COUNT_MAX, 0), Ok(Some(Counts::default())));
        assert_eq!(bucket.add(1, 1, 0), Err(Full));
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
        assert!(Epochs::is_live(0, EPOCH_MASK, 2));
        assert!(!Epochs::is_live(1, EPOCH_MASK, 2));
        assert!(Epochs::is_live(7, 7, 1));
    }
}
