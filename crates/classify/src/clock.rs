//! One clock read per call: the instant the outermost layer read, lent to the layers it calls.
//!
//! Reading the clock costs about 30 ns on a typical Linux machine, more than a whole layer's
//! work on a call that succeeds at once, and a stack of layers used to read it once each (the
//! deadline, the retry budget's deposit, the attempt timeout). A layer that reads the clock in
//! `call` and then calls its inner service synchronously can lend that instant to the layers
//! inside with [`lend`]; they read it with [`now`], which falls back to the clock outside a
//! loan. The loan ends when the inner `call` returns, so nothing that runs later (a retry, a
//! response future's poll) ever sees it: only the synchronous part of one call shares one
//! instant, a few microseconds at most, as tower's `call` does no blocking work.
//!
//! ```
//! use seawall_classify::clock;
//! use tokio::time::Instant;
//!
//! let read = Instant::now();
//! let seen = clock::lend(read, || clock::now());
//! assert_eq!(seen, read);
//! assert!(clock::now() >= read); // the loan is over: the clock again
//! ```

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    static LENT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The instant lent by an enclosing layer's [`lend`] on this thread, or the clock
/// ([`tokio::time::Instant::now`], so paused time in tests applies).
#[inline]
#[must_use]
pub fn now() -> Instant {
    LENT.with(Cell::get).unwrap_or_else(Instant::now)
}

/// Runs `call` with `now` lent to every [`now`] it makes on this thread, then restores what
/// was lent before (also when `call` panics).
#[inline]
pub fn lend<R>(now: Instant, call: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        #[inline]
        fn drop(&mut self) {
            LENT.with(|lent| lent.set(self.0));
        }
    }
    let _restore = Restore(LENT.with(|lent| lent.replace(Some(now))));
    call()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loan_ends_with_its_call_and_nests() {
        let outer = Instant::now();
        tokio::time::advance(Duration::from_secs(1)).await;
        let inner = Instant::now();
        let seen = lend(outer, || {
            let nested = lend(inner, now);
            (now(), nested)
        });
        assert_eq!(seen, (outer, inner));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(now(), inner + Duration::from_secs(1), "the clock again");
    }

    #[test]
    fn a_panicking_call_still_ends_the_loan() {
        let lent = Instant::now() - Duration::from_secs(60);
        let result = std::panic::catch_unwind(|| lend(lent, || panic!("inside the loan")));
        assert!(result.is_err());
        assert!(now() > lent, "the loan ended with the panic");
    }
}
