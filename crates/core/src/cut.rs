//! Why an unfinished call is dropped: its caller went away, or a timeout cut it.
//!
//! A layer that records outcomes (a circuit breaker, an adaptive limit) learns nothing from a
//! call whose future is dropped before it answers: the caller may have gone away (a client
//! that hung up), and a cancellation says nothing about the dependency. But a call that a
//! timeout cut short is an outcome, the one a breaker exists for: a hung dependency. The
//! timeout layers drop the call they cut inside [`by`], and a layer inside them reads
//! [`current`] while its future is dropped: `Some(class)` means "record this call as `class`",
//! `None` means "cancelled, record nothing".
//!
//! Like [`call_instant`](crate::call_instant), this is per thread and scoped to one synchronous drop:
//! dropping a tower future drops the futures inside it on the same thread, at once, so the
//! scope covers exactly the call that was cut.
//!
//! ```
//! use seawall_core::{cut, DeadlineExceeded};
//!
//! struct Recorder;
//! impl Drop for Recorder {
//!     fn drop(&mut self) {
//!         // A breaker would record a fault here.
//!         assert_eq!(cut::current(), Some(DeadlineExceeded::CLASS));
//!     }
//! }
//!
//! cut::by(DeadlineExceeded::CLASS, || drop(Recorder));
//! assert_eq!(cut::current(), None, "a plain drop is a cancellation");
//! ```

use std::cell::Cell;

use crate::Class;

thread_local! {
    static CUT: Cell<Option<Class>> = const { Cell::new(None) };
}

/// Runs `drop_call` (which drops a call's future) with `class` as the reason: every
/// [`current`] made on this thread meanwhile returns it. What was set before is restored
/// afterwards, also when `drop_call` panics.
pub fn by<R>(class: Class, drop_call: impl FnOnce() -> R) -> R {
    struct Restore(Option<Class>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CUT.with(|cut| cut.set(self.0));
        }
    }
    let _restore = Restore(CUT.with(|cut| cut.replace(Some(class))));
    drop_call()
}

/// The class of the timeout that is cutting the call being dropped now, or `None` when the
/// drop is a cancellation (or nothing is being dropped).
#[must_use]
pub fn current() -> Option<Class> {
    CUT.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FailureKind, RetryHint};

    #[test]
    fn a_cut_nests_and_ends_with_its_drop() {
        let outer = Class::failure(FailureKind::Timeout, RetryHint::Never);
        let inner = Class::failure(FailureKind::Timeout, RetryHint::Retry);
        let seen = by(outer, || (current(), by(inner, current), current()));
        assert_eq!(seen, (Some(outer), Some(inner), Some(outer)));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panicking_drop_still_ends_the_cut() {
        let class = Class::failure(FailureKind::Timeout, RetryHint::Never);
        let result = std::panic::catch_unwind(|| by(class, || panic!("while dropping")));
        assert!(result.is_err());
        assert_eq!(current(), None);
    }
}
