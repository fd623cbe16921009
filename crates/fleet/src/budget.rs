//! The concurrency budget: at most N calls in flight across every instance, as leases on
//! Redis that their holder renews while the call runs and that expire if it dies.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, Class, ConfigError, Error, FailureKind, RetryHint};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower_layer::Layer;
use tower_service::Service;

use crate::admission::ResponseFuture;
use crate::store::{Fleet, Op, Reply};

const LAYER: &str = "concurrency budget";

/// A call refused by a concurrency budget: as many calls as it allows are in flight.
/// Classified `Rejected`, with a retry hint of when the next lease ends.
#[derive(Debug, Clone)]
pub struct BudgetSpent {
    max: u32,
    shared: bool,
}

impl BudgetSpent {
    /// `true` when the fleet's shared budget refused, `false` for this instance's own share.
    #[must_use]
    pub fn shared(&self) -> bool {
        self.shared
    }
}

impl fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shared {
            write!(f, "the fleet's {} calls in flight are taken", self.max)
        } else {
            write!(
                f,
                "this instance's share of {} calls in flight is taken (the fleet's store does not answer)",
                self.max
            )
        }
    }
}

impl std::error::Error for BudgetSpent {}

struct FleetBudget {
    fleet: Fleet,
    key: Arc<str>,
    lease: Duration,
    /// Permits this instance holds on Redis, renewed every third of the lease.
    held: Mutex<HashSet<Arc<str>>>,
    /// Permits given back and not yet removed from Redis.
    released: Mutex<Vec<Arc<str>>>,
    wake: Arc<Notify>,
    /// Whether a renewer task runs: set by the call that starts one, cleared by the task as
    /// it ends however it ends (its runtime shut down, a panic), so that the next call
    /// starts another.
    renewer: AtomicBool,
    /// Redis operations made for this budget (acquire, release and renew batches).
    writes: AtomicU64,
}

impl FleetBudget {
    /// Gives `member` back: removed from Redis by the renewer, soon.
    fn release(&self, member: Arc<str>) {
        self.released.lock().expect("released lock").push(member);
        self.wake.notify_one();
    }
}

/// Gives back a permit whose acquisition was cancelled while its `ACQUIRE` was out: it may
/// have been taken on Redis (the request went out, the answer never came back to anyone).
struct Acquiring<'a> {
    fleet: &'a FleetBudget,
    member: Option<Arc<str>>,
}

impl Drop for Acquiring<'_> {
    fn drop(&mut self) {
        if let Some(member) = self.member.take() {
            self.fleet.release(member);
        }
    }
}

/// Clears the renewer flag when the renewer task ends, however it ends.
struct Renewing(Weak<Shared>);

impl Drop for Renewing {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade()
            && let Some(fleet) = &shared.fleet
        {
            fleet.renewer.store(false, Ordering::Release);
        }
    }
}

struct Shared {
    max: u32,
    /// The whole budget (local mode), or this instance's share while Redis is away.
    local: Arc<Semaphore>,
    fleet: Option<FleetBudget>,
    admitted: AtomicU64,
    rejected: AtomicU64,
}

impl Shared {
    fn refuse(&self, shared: bool, retry_after: Duration) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        Error::new(
            Class::failure(FailureKind::Rejected, RetryHint::RetryAfter(retry_after)),
            BudgetSpent {
                max: self.max,
                shared,
            },
        )
    }

    fn local_permit(&self) -> Result<Permit, Error> {
        match self.local.clone().try_acquire_owned() {
            Ok(permit) => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(Permit(Held::Local { _permit: permit }))
            }
            Err(_) => Err(self.refuse(false, Duration::from_millis(10))),
        }
    }

    async fn acquire(self: Arc<Self>) -> Result<Permit, Error> {
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
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(Permit(Held::Shared {
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
async fn renew(shared: Weak<Shared>, _renewing: Renewing) {
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

enum Held {
    Local {
        _permit: OwnedSemaphorePermit,
    },
    Shared {
        member: Arc<str>,
        shared: Weak<Shared>,
    },
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Held::Local { .. } => "local",
            Held::Shared { .. } => "shared",
        };
        f.debug_tuple("Permit").field(&kind).finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Held::Shared { member, shared } = &self.0
            && let Some(shared) = shared.upgrade()
            && let Some(fleet) = &shared.fleet
        {
            fleet.held.lock().expect("held lock").remove(&**member);
            fleet.release(member.clone());
        }
    }
}

/// Configures a [`ConcurrencyBudgetLayer`]; see [`ConcurrencyBudgetLayer::builder`].
#[derive(Debug)]
#[must_use]
pub struct ConcurrencyBudgetBuilder {
    max: u32,
    fleet: Option<(Fleet, String)>,
    lease: Duration,
}

impl ConcurrencyBudgetBuilder {
    /// Makes the budget fleet-wide: every instance building a budget of this `name` on the
    /// same Redis shares the `max` calls in flight. While Redis cannot answer, each instance
    /// allows its share (`max / expected_replicas`, at least 1) on its own.
    pub fn fleet(mut self, fleet: &Fleet, name: impl Into<String>) -> Self {
        self.fleet = Some((fleet.clone(), name.into()));
        self
    }

    /// How long a permit lives on Redis unless its holder renews it (default 5 s; 300 ms to
    /// 10 minutes). The holder renews every third of it while the call runs; a crashed
    /// instance's permits return within it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Checks the settings and builds the layer.
    pub fn build(self) -> Result<ConcurrencyBudgetLayer, ConfigError> {
        if self.max == 0 {
            return Err(ConfigError::new(
                LAYER,
                "max",
                "is 0: no call could ever run",
            ));
        }
        if self.lease < Duration::from_millis(300) || self.lease > Duration::from_secs(600) {
            return Err(ConfigError::new(
                LAYER,
                "lease",
                format!("is {:?}, outside 300 ms to 10 minutes", self.lease),
            ));
        }
        let local = match &self.fleet {
            Some((fleet, _)) => (self.max / fleet.replicas()).max(1),
            None => self.max,
        };
        Ok(ConcurrencyBudgetLayer {
            shared: Arc::new(Shared {
                max: self.max,
                local: Arc::new(Semaphore::new(local as usize)),
                fleet: self.fleet.map(|(fleet, name)| FleetBudget {
                    key: fleet.key("budget", &name),
                    fleet,
                    lease: self.lease,
                    held: Mutex::default(),
                    released: Mutex::default(),
                    wake: Arc::new(Notify::new()),
                    renewer: AtomicBool::new(false),
                    writes: AtomicU64::new(0),
                }),
                admitted: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        })
    }
}

/// At most `max` calls in flight, on this instance or across a fleet; a call over the budget
/// is refused at once. See the [crate documentation](crate).
#[derive(Clone)]
pub struct ConcurrencyBudgetLayer {
    shared: Arc<Shared>,
}

impl ConcurrencyBudgetLayer {
    /// A budget of `max` calls in flight, on this instance until
    /// [`fleet`](ConcurrencyBudgetBuilder::fleet) says otherwise.
    pub fn builder(max: u32) -> ConcurrencyBudgetBuilder {
        ConcurrencyBudgetBuilder {
            max,
            fleet: None,
            lease: Duration::from_secs(5),
        }
    }

    /// Calls admitted so far.
    #[must_use]
    pub fn admitted(&self) -> u64 {
        self.shared.admitted.load(Ordering::Relaxed)
    }

    /// Calls refused so far.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Operations this budget has sent to Redis so far: one per acquisition, one per batch of
    /// releases, one per renewal of the permits held (every third of the lease).
    #[must_use]
    pub fn redis_writes(&self) -> u64 {
        self.shared
            .fleet
            .as_ref()
            .map_or(0, |f| f.writes.load(Ordering::Relaxed))
    }

    /// Permits this instance holds on Redis now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.shared
            .fleet
            .as_ref()
            .map_or(0, |f| f.held.lock().expect("held lock").len())
    }
}

impl fmt::Debug for ConcurrencyBudgetLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyBudgetLayer")
            .field("max", &self.shared.max)
            .field("fleet", &self.shared.fleet.as_ref().map(|f| &f.key))
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ConcurrencyBudgetLayer {
    type Service = ConcurrencyBudget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyBudget {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`ConcurrencyBudgetLayer`] makes.
#[derive(Clone)]
pub struct ConcurrencyBudget<S> {
    inner: S,
    shared: Arc<Shared>,
}

seawall_classify::inner_accessors!(impl[S] ConcurrencyBudget<S>);

impl<S: fmt::Debug> fmt::Debug for ConcurrencyBudget<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyBudget")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, Req> Service<Req> for ConcurrencyBudget<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, Permit>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if self.shared.fleet.is_none() {
            return match self.shared.local_permit() {
                Ok(permit) => ResponseFuture::called(self.inner.call(request), permit),
                Err(error) => ResponseFuture::refused(error),
            };
        }
        // The readied service goes with the call; a clone takes its place.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::deciding(Box::pin(self.shared.clone().acquire()), service, request)
    }
}
