//! The retry budget: caps retries at a share of recent first attempts, so that when
//! everything fails, retries cannot multiply the load on a struggling dependency.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use seawall_classify::ConfigError;
use seawall_util::epoch::{Counts, Epochs, Ring};
use tokio::time::Instant;

thread_local! {
    /// The budget whose deposit the call being made on this thread is covered by (its
    /// address; 0: none). See [`RetryBudget::covered`].
    static COVERED: Cell<usize> = const { Cell::new(0) };
}

const LAYER: &str = "retry budget";
/// The window is cut into at least this many buckets, and into buckets of at most a second
/// (a bucket counts up to about a million deposits, `seawall_util::epoch::COUNT_MAX`: that
/// many a second, whatever the ttl); one more is kept, so that nothing leaves the window before `ttl` has passed: a
/// deposit or withdrawal counts for between `ttl` and `ttl` plus one bucket.
const MIN_BUCKETS: u32 = 10;

/// A lock-free retry budget, shared by every clone of a retry layer.
///
/// Every first attempt deposits `ratio` of a retry; every retry withdraws one. Deposits and
/// withdrawals expire after `ttl`, and `min_retries_per_sec` retries per second are always
/// allowed, so a quiet service can still retry. This is Finagle's budget (Linkerd and tower
/// use the same defaults: 20 % of requests plus 10 retries per second, over 10 seconds).
///
/// Exact: the ratio is kept as a fraction (`0.2` is 1/5, `1/3` stays 1/3), and tokens are
/// integers, so three first attempts at a ratio of 1/3 allow exactly one retry, never zero
/// and never two. The balance is one atomic counter, so concurrent callers can never
/// overdraw it.
///
/// It counts up to about a million first attempts a second on one budget (its buckets are at
/// most a second long and hold 2^20 each); deposits beyond that are dropped, so the budget
/// errs towards fewer retries, never more.
///
/// ```
/// use std::time::Duration;
/// use seawall_retry::RetryBudget;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5).unwrap();
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw(), "two requests at 50 % buy one retry");
/// # }
/// ```
pub struct RetryBudget {
    ttl: Duration,
    /// A deposit is worth `deposit` tokens and a retry costs `withdraw`: ratio = deposit / withdraw.
    deposit: i64,
    withdraw: i64,
    floor: i64,
    balance: AtomicI64,
    // (interval, deposits, withdrawals), each bucket in one word.
    ring: Ring,
    epochs: Epochs,
    exhausted: AtomicU64,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per first attempt (0 to 1,000; 0.2 is 20 %), plus
    /// `min_retries_per_sec`, over a window of `ttl` (1 to 60 s).
    pub fn new(ttl: Duration, min_retries_per_sec: u32, ratio: f64) -> Result<Self, ConfigError> {
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
            return Err(ConfigError::new(
                LAYER,
                "ttl",
                format!("is {ttl:?}, outside 1 s to 60 s"),
            ));
        }
        if !(0.0..=1_000.0).contains(&ratio) {
            return Err(ConfigError::new(
                LAYER,
                "ratio",
                format!("is {ratio}, outside 0 to 1000"),
            ));
        }
        let (deposit, withdraw) = rational(ratio, 10_000);
        let floor_retries = (f64::from(min_retries_per_sec) * ttl.as_secs_f64()).floor() as i64;
        let floor = floor_retries.saturating_mul(withdraw);
        let buckets = MIN_BUCKETS.max(ttl.as_secs_f64().ceil() as u32);
        Ok(RetryBudget {
            ttl,
            deposit,
            withdraw,
            floor,
            balance: AtomicI64::new(floor),
            ring: Ring::new(buckets as usize + 1),
            epochs: Epochs::new(Instant::now(), ttl / buckets),
            exhausted: AtomicU64::new(0),
        })
    }

    /// The usual defaults: 20 % of requests plus 10 retries per second, over 10 seconds.
    #[must_use]
    pub fn standard() -> Self {
        Self::new(Duration::from_secs(10), 10, 0.2).expect("valid defaults")
    }

    /// Records a request's first attempt, unless a layer outside already deposited for this
    /// request into this same budget and made this call inside [`RetryBudget::covered`] (a
    /// hedge sharing the budget: one request, one deposit, however many layers and attempts
    /// share the budget).
    #[inline]
    pub fn deposit_for_request(&self) {
        if COVERED.with(Cell::get) != self.key() {
            self.deposit();
        }
    }

    /// Runs `call` (an inner service's `call`, for a request this budget holds a deposit
    /// for already) so that a [`RetryBudget::deposit_for_request`] on this budget in it, on
    /// this thread, deposits nothing; what was covered before is restored afterwards.
    #[inline]
    pub fn covered<R>(&self, call: impl FnOnce() -> R) -> R {
        struct Restore(usize);
        impl Drop for Restore {
            #[inline]
            fn drop(&mut self) {
                COVERED.with(|covered| covered.set(self.0));
            }
        }
        let _restore = Restore(COVERED.with(|covered| covered.replace(self.key())));
        call()
    }

    /// This budget's identity while it lives (its address).
    #[inline]
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Records a first attempt.
    pub fn deposit(&self) {
        // The instant an enclosing layer read for this call, or the clock.
        self.deposit_at(seawall_classify::call_instant::get());
    }

    /// Records a first attempt made at `now`, for a caller that has just read the clock (a
    /// hedge times its request anyway): one clock read fewer per request.
    #[inline]
    pub fn deposit_at(&self, now: Instant) {
        if self.record(now, 1, 0) {
            self.balance.fetch_add(self.deposit, Ordering::AcqRel);
        }
    }

    /// Takes one retry from the budget; `false` when it is spent (and counted as exhausted).
    pub fn withdraw(&self) -> bool {
        let now = Instant::now();
        self.expire(now);
        let taken = self
            .balance
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |balance| {
                (balance >= self.withdraw).then_some(balance - self.withdraw)
            })
            .is_ok();
        if taken && self.record(now, 0, 1) {
            return true;
        }
        if taken {
            // The withdrawal could not be recorded for later expiry (a saturated bucket):
            // refund it rather than let the budget leak.
            self.balance.fetch_add(self.withdraw, Ordering::AcqRel);
        }
        self.exhausted.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Retries the budget would allow now.
    #[must_use]
    pub fn available(&self) -> u64 {
        self.expire(Instant::now());
        (self.balance.load(Ordering::Acquire).max(0) / self.withdraw) as u64
    }

    /// Retries refused so far because the budget was spent.
    #[must_use]
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// The ratio as the exact fraction the budget uses: `(deposit, withdraw)`.
    #[must_use]
    pub fn fraction(&self) -> (i64, i64) {
        (self.deposit, self.withdraw)
    }

    /// Adds to the current bucket, recycling it if it belongs to an older interval (and
    /// removing that interval's tokens from the balance). `false` if the bucket is full, or if
    /// `now` is older than the window.
    #[inline]
    fn record(&self, now: Instant, deposits: u64, withdrawals: u64) -> bool {
        let epoch = self.epochs.at(now);
        self.ring
            .add(epoch, deposits, withdrawals, |left| self.forget(left))
            .is_ok()
    }

    /// Empties every bucket that has left the window, removing its tokens from the balance.
    fn expire(&self, now: Instant) {
        self.ring
            .expire(self.epochs.at(now), |left| self.forget(left));
    }

    #[cold]
    #[inline(never)]
    fn forget(&self, left: Counts) {
        let tokens = left.a as i64 * self.deposit - left.b as i64 * self.withdraw;
        self.balance.fetch_sub(tokens, Ordering::AcqRel);
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("ttl", &self.ttl)
            .field("ratio", &format_args!("{}/{}", self.deposit, self.withdraw))
            .field("floor_retries", &(self.floor / self.withdraw))
            .field("exhausted", &self.exhausted())
            .finish()
    }
}

/// The fraction closest to `x` with a denominator of at most `max_denominator`, by continued
/// fractions: 0.2 is 1/5 and 0.333… is 1/3, so budgets are exact for the ratios people write.
fn rational(x: f64, max_denominator: i64) -> (i64, i64) {
    let (mut p0, mut q0, mut p1, mut q1) = (0i64, 1i64, 1i64, 0i64);
    let mut value = x;
    for _ in 0..64 {
        let a = value.floor();
        let a_int = a as i64;
        let q2 = a_int.saturating_mul(q1).saturating_add(q0);
        if q2 > max_denominator {
            break;
        }
        let p2 = a_int.saturating_mul(p1).saturating_add(p0);
        (p0, q0, p1, q1) = (p1, q1, p2, q2);
        let fraction = value - a;
        if fraction < 1e-12 {
            break;
        }
        value = 1.0 / fraction;
    }
    if q1 == 0 { (0, 1) } else { (p1, q1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ratios_become_exact_fractions() {
        assert_eq!(rational(0.2, 10_000), (1, 5));
        assert_eq!(rational(0.1, 10_000), (1, 10));
        assert_eq!(rational(1.0 / 3.0, 10_000), (1, 3));
        assert_eq!(rational(0.25, 10_000), (1, 4));
        assert_eq!(rational(1.5, 10_000), (3, 2));
        assert_eq!(rational(0.0, 10_000), (0, 1));
        assert_eq!(rational(2.0, 10_000), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_ratios_allow_exactly_the_floor_of_their_share() {
        for (ratio, deposits, allowed) in [
            (1.0 / 3.0, 3, 1),
            (1.0 / 3.0, 2, 0),
            (1.0 / 3.0, 9, 3),
            (0.2, 5, 1),
            (0.2, 4, 0),
            (0.1, 100, 10),
            (0.7, 10, 7),
        ] {
            let budget = RetryBudget::new(Duration::from_secs(10), 0, ratio).unwrap();
            for _ in 0..deposits {
                budget.deposit();
            }
            let mut granted = 0;
            while budget.withdraw() {
                granted += 1;
            }
            assert_eq!(granted, allowed, "ratio {ratio}, {deposits} deposits");
            assert_eq!(budget.exhausted(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_retries_without_traffic_and_refills_after_ttl() {
        let budget = RetryBudget::new(Duration::from_secs(2), 3, 0.0).unwrap();
        let mut granted = 0;
        while budget.withdraw() {
            granted += 1;
        }
        assert_eq!(granted, 6, "3 per second over 2 s");
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(budget.available(), 6, "withdrawals expired");
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire_after_ttl() {
        let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0).unwrap();
        for _ in 0..5 {
            budget.deposit();
        }
        assert_eq!(budget.available(), 5);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert_eq!(budget.available(), 5, "still within the window");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(budget.available(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_ttl_counts_a_million_first_attempts_a_second() {
        // A 60 s ttl used to keep 6 s buckets of at most 2^20 deposits: about 175,000 a
        // second. Two seconds at a million a second fit now.
        let budget = RetryBudget::new(Duration::from_secs(60), 0, 0.2).unwrap();
        for _ in 0..2 {
            let now = Instant::now();
            for _ in 0..1_000_000 {
                budget.deposit_at(now);
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(budget.available(), 400_000);
    }

    /// The bucket stamps wrap at 2^24 intervals (19 days at a 1 s ttl): deposits made just
    /// before stay in the window after.
    #[tokio::test(start_paused = true)]
    async fn deposits_just_before_the_stamp_wrap_stay_in_the_window() {
        let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0).unwrap();
        let interval = Duration::from_millis(100);
        tokio::time::advance(interval * ((1 << 24) - 5)).await;
        budget.deposit();
        tokio::time::advance(interval * 5).await;
        budget.deposit();
        assert_eq!(
            budget.available(),
            2,
            "both deposits are within the 1 s window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_idle_for_a_whole_stamp_cycle_forgets_its_deposits() {
        let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0).unwrap();
        for _ in 0..5 {
            budget.deposit();
        }
        tokio::time::advance(Duration::from_millis(100) * (1 << 24)).await;
        assert_eq!(
            budget.available(),
            0,
            "19 days later, the deposits are long gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expiring_with_a_stale_now_does_not_refund_the_newest_withdrawals() {
        let budget = RetryBudget::new(Duration::from_secs(1), 0, 1.0).unwrap();
        let before = Instant::now();
        budget.deposit();
        budget.deposit();
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(budget.withdraw());
        // A caller whose clock reading is one interval old (preempted) expires the ring: the
        // newest bucket, holding the withdrawal, is not over.
        budget.expire(before);
        assert_eq!(budget.available(), 1, "two deposits, one retry spent");
    }

    #[test]
    fn invalid_budgets_are_errors() {
        assert_eq!(
            RetryBudget::new(Duration::from_millis(10), 0, 0.2)
                .unwrap_err()
                .field(),
            "ttl"
        );
        assert_eq!(
            RetryBudget::new(Duration::from_secs(61), 0, 0.2)
                .unwrap_err()
                .field(),
            "ttl"
        );
        assert_eq!(
            RetryBudget::new(Duration::from_secs(10), 0, -0.1)
                .unwrap_err()
                .field(),
            "ratio"
        );
        assert_eq!(
            RetryBudget::new(Duration::from_secs(10), 0, f64::NAN)
                .unwrap_err()
                .field(),
            "ratio"
        );
    }

    #[derive(Debug, Clone)]
    enum Step {
        Advance(u64),
        Deposits(u8),
        Retries(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u64..3_000).prop_map(Step::Advance),
            (0u8..20).prop_map(Step::Deposits),
            (0u8..20).prop_map(Step::Retries),
        ]
    }

    proptest! {
        /// Whenever a retry is granted, the retries granted over the last `ttl` never exceed
        /// `ratio ×` the first attempts over the same window (plus one bucket of granularity)
        /// `+ floor`.
        #[test]
        fn the_budget_never_overdraws(
            ratio in prop_oneof![Just(0.2), Just(0.1), Just(1.0 / 3.0), Just(0.5), 0.0f64..2.0],
            min_per_sec in 0u32..5,
            steps in proptest::collection::vec(step(), 1..80),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async move {
                let ttl = Duration::from_secs(5);
                let budget = RetryBudget::new(ttl, min_per_sec, ratio).unwrap();
                let (p, q) = budget.fraction();
                let floor = i64::from(min_per_sec) * 5;
                let start = Instant::now();
                let mut deposits: Vec<Duration> = Vec::new();
                let mut retries: Vec<Duration> = Vec::new();
                for step in steps {
                    match step {
                        Step::Advance(ms) => tokio::time::advance(Duration::from_millis(ms)).await,
                        Step::Deposits(n) => {
                            for _ in 0..n {
                                budget.deposit();
                                deposits.push(start.elapsed());
                            }
                        }
                        Step::Retries(n) => {
                            let before = retries.len();
                            for _ in 0..n {
                                if budget.withdraw() {
                                    retries.push(start.elapsed());
                                }
                            }
                            if retries.len() == before {
                                continue;
                            }
                            let now = start.elapsed();
                            let within = |window: Duration, at: &Duration| now < window || now - window < *at;
                            let granted = retries.iter().filter(|t| within(ttl, t)).count() as i64;
                            let earned = deposits.iter().filter(|t| within(ttl + ttl / 10, t)).count() as i64;
                            prop_assert!(
                                granted * q <= earned * p + floor * q,
                                "{granted} retries granted against {earned} deposits at {p}/{q} + {floor}"
                            );
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
}
