//! SplitMix64: a small, fast, seedable generator, enough for jitter and fault injection, and
//! exact in tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a well-mixed 64-bit value from any state.
#[must_use]
pub const fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform `f64` in [0, 1) from 53 bits of `x`.
#[must_use]
pub fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform `f64` in [0, 1] from 53 bits of `x`.
#[must_use]
pub fn unit_inclusive(x: u64) -> f64 {
    (x >> 11) as f64 / ((1u64 << 53) - 1) as f64
}

/// A SplitMix64 generator with one owner.
///
/// ```
/// use seawall_util::rng::SplitMix64;
///
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!((0.0..1.0).contains(&a.next_f64()));
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// The next value as a uniform `f64` in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// The next value as a uniform `f64` in [0, 1].
    pub fn next_f64_inclusive(&mut self) -> f64 {
        unit_inclusive(self.next_u64())
    }
}

/// A SplitMix64 generator shared by many threads without a lock: each draw takes the next
/// state with one `fetch_add`. With one thread it yields exactly [`SplitMix64`]'s sequence.
///
/// ```
/// use seawall_util::rng::{AtomicSplitMix64, SplitMix64};
///
/// let shared = AtomicSplitMix64::new(7);
/// let mut owned = SplitMix64::new(7);
/// assert_eq!(shared.next_u64(), owned.next_u64());
/// ```
#[derive(Debug, Default)]
pub struct AtomicSplitMix64 {
    state: AtomicU64,
}

impl AtomicSplitMix64 {
    /// A generator starting from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        AtomicSplitMix64 {
            state: AtomicU64::new(seed),
        }
    }

    /// The next value.
    pub fn next_u64(&self) -> u64 {
        mix(self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA))
    }

    /// The next value as a uniform `f64` in [0, 1).
    pub fn next_f64(&self) -> f64 {
        unit(self.next_u64())
    }

    /// A seed for a [`SplitMix64`] of one owner (one per request, say): the generator's
    /// successive states, the first being the seed itself, so that the first owner draws
    /// exactly what `SplitMix64::new(seed)` would and the next ones distinct sequences.
    pub fn next_seed(&self) -> u64 {
        self.state.fetch_add(GAMMA, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_the_reference_splitmix64() {
        // The first outputs for seed 1234567 of the reference implementation (Vigna).
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    proptest! {
        #[test]
        fn the_shared_and_the_owned_generator_agree(seed in any::<u64>(), n in 1usize..50) {
            let shared = AtomicSplitMix64::new(seed);
            let mut owned = SplitMix64::new(seed);
            for _ in 0..n {
                prop_assert_eq!(shared.next_u64(), owned.next_u64());
            }
        }

        #[test]
        fn units_stay_in_range(x in any::<u64>()) {
            prop_assert!((0.0..1.0).contains(&unit(x)));
            prop_assert!((0.0..=1.0).contains(&unit_inclusive(x)));
        }
    }
}
