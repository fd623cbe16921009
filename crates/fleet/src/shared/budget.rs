//! The concurrency budget's state: at most N calls in flight across every instance, as
//! leases on Redis that their holder renews while the call runs and that expire if it dies.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use seawall_classify::{Class, Error, FailureKind, RetryHint};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::error::BudgetSpent;
use crate::shared::store::{Fleet, Op, Reply};

pub(crate) const BUDGET_LAYER: &str = "concurrency budget";

pub(crate) struct FleetBudget {
    pub(crate) fleet: Fleet,
    pub(crate) key: Arc<str>,
    pub(crate) lease: Duration,
    /// Permits this instance holds on Redis, renewed every third of the lease.
    pub(crate) held: Mutex<HashSet<Arc<str>>>,
    /// Permits given back and not yet removed from Redis.
    pub(crate) released: Mutex<Vec<Arc<str>>>,
    pub(crate) wake: Arc<Notify>,
    /// Whether a renewer task runs: set by the call that starts one, cleared by the task as
    /// it ends however it ends (its runtime shut down, a panic), so that the next call
    /// starts another.
    pub(crate) renewer: AtomicBool,
    /// Redis operations made for this budget (acquire, release and renew batches).
    pub(crate) writes: AtomicU64,
}

impl FleetBudget {
    /// Gives `member` back: removed from Redis by the renewer, soon.
    pub(crate) fn release(&self, member: Arc<str>) {
        self.released.lock().expect("released lock").push(member);
        self.wake.notify_one();
    }
}

/// Gives back a permit whose acquisition was cancelled while its `ACQUIRE` was out: it may
/// have been taken on Redis (the request went out, the answer never came back to anyone).
pub(crate) struct Acquiring<'a> {
    pub(crate) fleet: &'a FleetBudget,
    pub(crate) member: Option<Arc<str>>,
}

impl Drop for Acquiring<'_> {
    fn drop(&mut self) {
        if let Some(member) = self.member.take() {
            self.fleet.release(member);
        }
    }
}

/// Clears the renewer flag when the renewer task ends, however it ends.
pub(crate) struct Renewing(Weak<BudgetShared>);

impl Drop for Renewing {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade()
            && let Some(fleet) = &shared.fleet
        {
            fleet.renewer.store(false, Ordering::Release);
        }
    }
}

pub(crate) struct BudgetShared {
    pub(crate) max: u32,
    /// The whole budget (local mode), or this instance's share while Redis is away.
    pub(crate) local: Arc<Semaphore>,
    pub(crate) fleet: Option<FleetBudget>,
    pub(crate) decisions: super::Decisions,
}

impl BudgetShared {
    pub(crate) fn refuse(&self, shared: bool, retry_after: Duration) -> Error {
        self.decisions.refuse();
        Error::new(
            Class::failure(FailureKind::Rejected, RetryHint::RetryAfter(retry_after)),
            BudgetSpent {
                max: self.max,
                shared,
                retry_after,
            },
        )
    }

    pub(crate) fn local_permit(&self) -> Result<Permit, Error> {
        match self.local.clone().try_acquire_owned() {
            Ok(permit) => {
                self.decisions.admit();
                Ok(Permit(Held::Local { _permit: permit }))
            }
            Err(_) => Err(self.refuse(false, Duration::from_millis(10))),
        }
    }

    pub(crate) async fn acquire(self: Arc<Self>) -> Result<Permit, Error> {
        let fleet = self.fleet.as_ref().expect("a fleet-wide budget");
        if !fleet.renewer.swap(true, Ordering::AcqRel) {
            // The flag is cleared by the task as it ends: made here, so that a task dropped
            // before its first poll clears it too.
            let renewing = Renewing(Arc::downgrade(&self));
            tokio::spawn(renew(Arc::downgrade(&self), renewing));
        }
        let member = fleet.fleet.member();
        let op = Op::Acquire {
            key: fleet.key.clone(),
            member: member.clone(),
            limit: self.max,
            lease_ms: fleet.lease.as_millis() as u64,
        };
        let mut acquiring = Acquiring {
            fleet,
            member: Some(member.clone()),
        };
        fleet.writes.fetch_add(1, Ordering::Relaxed);
        let reply = fleet.fleet.run(op).await;
        match reply {
            Some(Reply::Acquired(Ok(()))) => {
                acquiring.member = None;
                fleet.fleet.record(true);
                fleet.held.lock().expect("held lock").insert(member.clone());
                self.decisions.admit();
                Ok(Permit(Held::BudgetShared {
                    member,
                    shared: Arc::downgrade(&self),
                }))
            }
            Some(Reply::Acquired(Err(retry_after))) => {
                acquiring.member = None;
                fleet.fleet.record(true);
                Err(self.refuse(true, retry_after))
            }
            _ => {
                fleet.fleet.record(false);
                // The permit may have been taken on Redis before the answer was lost: given
                // back by `acquiring` (or its lease ends).
                drop(acquiring);
                self.local_permit()
            }
        }
    }
}

/// Removes the permits given back as soon as they are, and renews the permits this instance
/// holds every third of the lease, until the budget is dropped. A release renews nothing:
/// one write per release batch, one per renewal period, not one renewal of every held permit
/// per call.
async fn renew(shared: Weak<BudgetShared>, _renewing: Renewing) {
    let period = match shared.upgrade() {
        Some(shared) => shared.fleet.as_ref().expect("a fleet").lease / 3,
        None => return,
    };
    let mut due = tokio::time::Instant::now() + period;
    loop {
        let wake = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let fleet = shared.fleet.as_ref().expect("a fleet");
            let released = std::mem::take(&mut *fleet.released.lock().expect("released lock"));
            if !released.is_empty() {
                let op = Op::Release {
                    key: fleet.key.clone(),
                    members: released,
                };
                fleet.writes.fetch_add(1, Ordering::Relaxed);
                // Not removed: their leases end on their own.
                let _ = fleet.fleet.run(op).await;
            }
            if tokio::time::Instant::now() >= due {
                due = tokio::time::Instant::now() + period;
                let held: Vec<Arc<str>> = fleet
                    .held
                    .lock()
                    .expect("held lock")
                    .iter()
                    .cloned()
                    .collect();
                if !held.is_empty() {
                    let op = Op::Renew {
                        key: fleet.key.clone(),
                        members: held,
                        lease_ms: fleet.lease.as_millis() as u64,
                    };
                    fleet.writes.fetch_add(1, Ordering::Relaxed);
                    let _ = fleet.fleet.run(op).await;
                }
            }
            fleet.wake.clone()
        };
        // Woken by a release, or due for renewal; the budget is not held meanwhile.
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep_until(due) => {}
        }
    }
}

/// A permit held for one call, given back when the call ends or is dropped.
pub struct Permit(Held);

pub(crate) enum Held {
    Local {
        _permit: OwnedSemaphorePermit,
    },
    BudgetShared {
        member: Arc<str>,
        shared: Weak<BudgetShared>,
    },
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Held::Local { .. } => "local",
            Held::BudgetShared { .. } => "shared",
        };
        f.debug_tuple("Permit").field(&kind).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Held::BudgetShared { member, shared } = &self.0
            && let Some(shared) = shared.upgrade()
            && let Some(fleet) = &shared.fleet
        {
            fleet.held.lock().expect("held lock").remove(&**member);
            fleet.release(member.clone());
        }
    }
}
