//! The call's instant: the instant the outermost timing layer read when a call began, lent
//! to the layers it calls, so that one call reads the clock once.
//!
//! Reading the clock costs about 30 ns on a typical Linux machine, more than a whole layer's
//! work on a call that succeeds at once, and a stack of layers used to read it once each (the
//! deadline, the retry budget's deposit, the attempt timeout). A layer that reads the clock in
//! `call` and then calls its inner service synchronously can lend that instant to the layers
//! inside with [`lend`]; they read it with [`get`], which falls back to the clock outside a
//! loan. The loan ends when the inner `call` returns, so nothing that runs later (a retry, a
//! response future's poll) ever sees it: only the synchronous part of one call shares one
//! instant, a few microseconds at most, as tower's `call` does no blocking work.
//!
//! ```
//! use seawall_core::call_instant;
//! use tokio::time::Instant;
//!
//! let read = Instant::now();
//! let seen = call_instant::lend(read, call_instant::get);
//! assert_eq!(seen, read);
//! assert!(call_instant::get() >= read); // the loan is over: the clock again
//! ```

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    static LENT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The instant this call began, as lent by an enclosing layer's [`lend`] on this thread, or
/// the clock outside a loan ([`tokio::time::Instant::now`], so paused time in tests applies).
/// Read it where a layer would read the clock at the start of a call, never later.
#[inline]
#[must_use]
pub fn get() -> Instant {
    LENT.with(Cell::get).unwrap_or_else(Instant::now)
}

/// Runs `call` with `now` lent to every [`get`] it makes on this thread, then restores what
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
            let nested = lend(inner, get);
            (get(), nested)
        });
        assert_eq!(seen, (outer, inner));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(get(), inner + Duration::from_secs(1), "the clock again");
    }

    #[test]
    fn a_panicking_call_still_ends_the_loan() {
        let lent = Instant::now() - Duration::from_secs(60);
        let result = std::panic::catch_unwind(|| lend(lent, || panic!("inside the loan")));
        assert!(result.is_err());
        assert!(get() > lent, "the loan ended with the panic");
    }
}
