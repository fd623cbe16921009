//! The rate limit: local GCRA per key, or fleet-wide on Redis with leased tokens.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, Class, ConfigError, Error, FailureKind, RetryHint};
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::admission::ResponseFuture;
use crate::gcra::Gcra;
use crate::store::{Fleet, Op, Reply};

const LAYER: &str = "rate limit";

/// How many lease fetches a caller waits through before it takes the fleet's last answer.
const FETCH_ROUNDS: usize = 4;

/// Reads the key a request is limited under. Closures `Fn(&Req) -> K` are key functions,
/// for any `K: Hash + Display` (the display names the key on Redis).
pub trait KeyOf<Req> {
    /// The key.
    type Key: Hash + fmt::Display;

    /// The request's key; `None` for the one limit of every request.
    fn key_of(&self, request: &Req) -> Option<Self::Key>;
}

impl<Req, K: Hash + fmt::Display, F: Fn(&Req) -> K> KeyOf<Req> for F {
    type Key = K;

    fn key_of(&self, request: &Req) -> Option<K> {
        Some(self(request))
    }
}

/// One limit for every request (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllRequests;

impl<Req> KeyOf<Req> for AllRequests {
    type Key = &'static str;

    #[inline]
    fn key_of(&self, _: &Req) -> Option<&'static str> {
        None
    }
}

/// A call refused by a rate limit: the caller should come back after
/// [`retry_after`](Self::retry_after). Classified `Rejected` with that hint.
#[derive(Debug, Clone)]
pub struct RateLimited {
    retry_after: Duration,
    shared: bool,
}

impl RateLimited {
    /// When a call would be admitted again.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// `true` when the fleet's shared limit refused, `false` for this instance's own.
    #[must_use]
    pub fn shared(&self) -> bool {
        self.shared
    }

    fn error(retry_after: Duration, shared: bool) -> Error {
        Error::new(
            Class::failure(FailureKind::Rejected, RetryHint::RetryAfter(retry_after)),
            RateLimited {
                retry_after,
                shared,
            },
        )
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = if self.shared { "fleet's" } else { "local" };
        write!(
            f,
            "the {whose} rate limit is reached: retry after {:?}",
            self.retry_after
        )
    }
}

impl std::error::Error for RateLimited {}

/// One key's state: its local schedule (the whole limit locally, or the local share while
/// Redis is away), and the tokens leased from the fleet.
struct KeyState {
    tat: AtomicU64,
    lease: Mutex<Lease>,
    /// One lease fetch at a time per key: the callers that arrive meanwhile wait for its
    /// tokens, and it asks for as many as are waiting (one round trip serves them all).
    fetching: tokio::sync::Mutex<()>,
    /// Callers deciding on the fleet for this key now.
    waiting: AtomicU64,
    redis_key: Option<Arc<str>>,
}

#[derive(Default)]
struct Lease {
    tokens: u32,
    /// Leased tokens are good until then (nanoseconds on the limit's clock): a lease is the
    /// fleet's schedule for a while, not a stock to spend later.
    until: u64,
    /// The fleet refused until then: calls before it are refused here, without asking Redis.
    refused_until: u64,
}

/// What a fleet-wide key's local state says of a call.
enum Local {
    /// A leased token: admitted.
    Leased,
    /// The fleet refused a moment ago, and would still: refused.
    Refused(Duration),
    /// Ask the fleet.
    Ask,
}

impl KeyState {
    /// Whether this key still limits anything at `now`: its local schedule is ahead of now,
    /// or it holds leased tokens or a fleet refusal that are still good. A key that does not
    /// may be forgotten.
    fn live(&self, now: u64) -> bool {
        if self.tat.load(Ordering::Relaxed) > now {
            return true;
        }
        let lease = self.lease.lock().expect("lease lock");
        (lease.tokens > 0 && lease.until > now) || lease.refused_until > now
    }

    /// Whether the key's lease answers a call at `now` (leased tokens, or the fleet's
    /// refusal), without taking anything.
    fn answers(&self, now: u64) -> bool {
        let lease = self.lease.lock().expect("lease lock");
        (lease.tokens > 0 && now < lease.until) || now < lease.refused_until
    }

    fn take_leased(&self, now: u64) -> Local {
        let mut lease = self.lease.lock().expect("lease lock");
        if lease.tokens > 0 && now < lease.until {
            lease.tokens -= 1;
            Local::Leased
        } else if now < lease.refused_until {
            Local::Refused(Duration::from_nanos(lease.refused_until - now))
        } else {
            Local::Ask
        }
    }
}

struct FleetRate {
    fleet: Fleet,
    name: String,
    lease: u32,
}

struct Shared {
    gcra: Gcra,
    /// This instance's share of the fleet's limit, enforced while Redis is away.
    local_share: Gcra,
    base: Instant,
    fleet: Option<FleetRate>,
    /// The limit of every request, when there are no keys.
    all: Arc<KeyState>,
    /// Per key, by the key's 64-bit hash: at most `max_keys` of them.
    keys: RwLock<HashMap<u64, Arc<KeyState>>>,
    max_keys: usize,
    /// The limit the keys past `max_keys` share while every remembered key is live.
    overflow: Arc<KeyState>,
    /// No sweep of the keys before then (nanoseconds on the limit's clock): a full map of
    /// live keys is swept at most once a sweep interval, not once per new key.
    sweep_after: AtomicU64,
    admitted: AtomicU64,
    rejected: AtomicU64,
    /// Lease fetches sent to Redis.
    fetches: AtomicU64,
}

impl KeyState {
    fn new(redis_key: Option<Arc<str>>) -> Arc<Self> {
        Arc::new(KeyState {
            tat: AtomicU64::new(0),
            lease: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
            waiting: AtomicU64::new(0),
            redis_key,
        })
    }
}

impl Shared {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// A key's state. The limit of every request is borrowed (no reference count moves on
    /// its path); a known key takes a read lock; a new one the write lock.
    fn state<K: Hash + fmt::Display>(&self, key: Option<K>, now: u64) -> Cow<'_, Arc<KeyState>> {
        let Some(key) = key else {
            return Cow::Borrowed(&self.all);
        };
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        let hash = std::hash::Hasher::finish(&hasher);
        if let Some(state) = self.keys.read().expect("keys lock").get(&hash) {
            return Cow::Owned(state.clone());
        }
        let mut keys = self.keys.write().expect("keys lock");
        if let Some(state) = keys.get(&hash) {
            return Cow::Owned(state.clone());
        }
        if keys.len() >= self.max_keys {
            if now < self.sweep_after.load(Ordering::Relaxed) {
                return Cow::Borrowed(&self.overflow);
            }
            // Keys that limit nothing any more are forgotten.
            keys.retain(|_, state| state.live(now));
            self.sweep_after
                .store(now + self.sweep_interval(), Ordering::Relaxed);
            if keys.len() >= self.max_keys {
                // Every remembered key is live: the new one shares the overflow limit until
                // some are not, so that the map stays bounded.
                return Cow::Borrowed(&self.overflow);
            }
        }
        Cow::Owned(
            keys.entry(hash)
                .or_insert_with(|| {
                    KeyState::new(
                        self.fleet
                            .as_ref()
                            .map(|f| f.fleet.key("rate", &format!("{}:{key}", f.name))),
                    )
                })
                .clone(),
        )
    }

    /// How long a full map of live keys is left before it is swept again: a burst's window
    /// (the longest a key's local schedule is ahead of now), at least a millisecond.
    fn sweep_interval(&self) -> u64 {
        (self.gcra.tolerance + self.gcra.interval).max(1_000_000)
    }

    /// How long leased tokens stay good: the time they stand for at the fleet's rate, or the
    /// burst's window if longer. Spent later than that, they would add to the burst; spent
    /// within it, the fleet admits at most `rate × interval + 2 × burst` over any interval.
    fn lease_life(&self, granted: u32) -> u64 {
        (u64::from(granted) * self.gcra.interval).max(self.gcra.tolerance + self.gcra.interval)
    }

    fn refuse(&self, retry_after: Duration, shared: bool) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        RateLimited::error(retry_after, shared)
    }

    /// The slow path of a fleet-wide limit: lease tokens from Redis (one fetch per key at a
    /// time, asking for as many tokens as callers wait), or decide on the local share when
    /// Redis cannot answer. The fetch runs as a task of its own, which holds the key's fetch
    /// lock: a caller cancelled while it is out loses nothing (its tokens land in the key's
    /// lease for the next callers), and the next caller waits for that fetch rather than
    /// sending another, whose answer (a refusal: the first took the burst) could land after
    /// the first's and hide its tokens.
    async fn decide(self: Arc<Self>, state: Arc<KeyState>) -> Result<(), Error> {
        struct Waiting<'a>(&'a AtomicU64);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        state.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&state.waiting);
        // A fetch that leased tokens other callers took before this one could (waiters of
        // one fetch race for its lease) sends this caller round again, a few times at most.
        for _ in 0..FETCH_ROUNDS {
            if let Some(answer) = self.answer_from_lease(state.take_leased(self.now())) {
                return answer;
            }
            let fetch = tokio::spawn(self.clone().fetch_once(state.clone()));
            if !fetch.await.unwrap_or(false) {
                return self.local_decision(&state);
            }
        }
        // Leased and taken by others every round: the fleet's answer for this moment is spent.
        self.answer_from_lease(state.take_leased(self.now()))
            .unwrap_or_else(|| Err(self.refuse(Duration::from_nanos(self.gcra.interval), true)))
    }

    /// Redis did not answer: the local share decides.
    fn local_decision(&self, state: &KeyState) -> Result<(), Error> {
        let now = self.now();
        match self.local_share.take(&state.tat, now) {
            Ok(()) => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(retry_after) => Err(self.refuse(retry_after, false)),
        }
    }

    /// What the key's lease says of a call, when it says something: admitted on a leased
    /// token, or refused while the fleet's last refusal holds; `None`: ask the fleet.
    fn answer_from_lease(&self, local: Local) -> Option<Result<(), Error>> {
        match local {
            Local::Leased => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Some(Ok(()))
            }
            Local::Refused(retry_after) => Some(Err(self.refuse(retry_after, true))),
            Local::Ask => None,
        }
    }

    /// A lease fetch for `state` unless one that ran while this waited for the key's fetch
    /// lock left an answer: `true` when the lease answers now.
    async fn fetch_once(self: Arc<Self>, state: Arc<KeyState>) -> bool {
        let _one_at_a_time = state.fetching.lock().await;
        if state.answers(self.now()) {
            return true;
        }
        self.fetch(state.clone()).await
    }

    /// One lease fetch for `state`: what Redis grants lands in the key's lease (a refusal in
    /// its `refused_until`). `false` when Redis did not answer.
    async fn fetch(self: Arc<Self>, state: Arc<KeyState>) -> bool {
        let fleet = self.fleet.as_ref().expect("a fleet-wide limit");
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let waiting = u32::try_from(state.waiting.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        let op = Op::Lease {
            key: state.redis_key.clone().expect("a fleet key"),
            interval_ns: self.gcra.interval.max(1),
            tolerance_ns: self.gcra.tolerance,
            wanted: fleet.lease.max(waiting.min(self.gcra.burst())),
        };
        let reply = fleet.fleet.run(op).await;
        let now = self.now();
        match reply {
            Some(Reply::Lease(0, retry_after)) => {
                fleet.fleet.record(true);
                let mut lease = state.lease.lock().expect("lease lock");
                lease.refused_until = now + retry_after.as_nanos() as u64;
                true
            }
            Some(Reply::Lease(granted, _)) => {
                fleet.fleet.record(true);
                let mut lease = state.lease.lock().expect("lease lock");
                lease.tokens = granted;
                lease.until = now + self.lease_life(granted);
                true
            }
            _ => {
                fleet.fleet.record(false);
                false
            }
        }
    }
}

/// Configures a [`RateLimitLayer`]; see [`RateLimitLayer::builder`].
#[must_use]
pub struct RateLimitBuilder<F = AllRequests> {
    per_second: f64,
    burst: Option<u32>,
    key: F,
    fleet: Option<(Fleet, String)>,
    lease: Option<u32>,
    max_keys: usize,
}

impl<F> fmt::Debug for RateLimitBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .field("fleet", &self.fleet.as_ref().map(|(_, name)| name))
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<F> RateLimitBuilder<F> {
    /// Calls admitted at once after a quiet spell (default: a tenth of a second's worth, at
    /// least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// One limit per key, the key read from each request by `key` (a closure
    /// `Fn(&Req) -> K`, `K: Hash + Display`; default: one limit for all requests).
    pub fn key<G>(self, key: G) -> RateLimitBuilder<G> {
        RateLimitBuilder {
            per_second: self.per_second,
            burst: self.burst,
            key,
            fleet: self.fleet,
            lease: self.lease,
            max_keys: self.max_keys,
        }
    }

    /// Keys remembered at most (default 100,000). At the bound, the keys that limit nothing
    /// any more (their schedule caught up with the present, no leased tokens or fleet
    /// refusal still good) are forgotten; while every remembered key is live, new keys share
    /// one overflow limit (at the same rate), so memory stays bounded under a flood of keys.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Makes the limit fleet-wide: every instance building a limit of this `name` on the same
    /// Redis shares one rate. While Redis cannot answer, each instance enforces its share
    /// (`rate / expected_replicas`) on its own.
    pub fn fleet(mut self, fleet: &Fleet, name: impl Into<String>) -> Self {
        self.fleet = Some((fleet.clone(), name.into()));
        self
    }

    /// Tokens an instance leases from Redis at a time (default: a quarter of the burst, at
    /// least 1): one Redis round trip per `lease` calls. A refusal from Redis is kept until
    /// its `retry_after`, so that refused calls do not ask Redis either. The cost in accuracy:
    /// leased tokens stay good for the time they stand for at the fleet's rate or the burst's
    /// window (`burst / rate`), whichever is longer, and unused ones are lost; over any
    /// interval the fleet admits at most `rate × interval + 2 × burst` calls, and may admit
    /// up to `lease - 1` fewer per instance than `rate × interval`.
    pub fn lease(mut self, tokens: u32) -> Self {
        self.lease = Some(tokens);
        self
    }

    /// Checks the settings and builds the layer.
    pub fn build(self) -> Result<RateLimitLayer<F>, ConfigError> {
        let burst = self
            .burst
            .unwrap_or_else(|| ((self.per_second / 10.0) as u32).max(1));
        let gcra = Gcra::new(LAYER, self.per_second, burst)?;
        if self.fleet.is_some() && self.per_second > 1_000_000.0 {
            return Err(ConfigError::new(
                LAYER,
                "rate",
                format!(
                    "is {} per second, more than a fleet-wide limit keeps (1,000,000: Redis schedules in microseconds)",
                    self.per_second
                ),
            ));
        }
        let lease = self.lease.unwrap_or((burst / 4).max(1));
        if lease == 0 || lease > burst {
            return Err(ConfigError::new(
                LAYER,
                "lease",
                format!("is {lease}, outside 1 to the burst ({burst})"),
            ));
        }
        if self.max_keys == 0 {
            return Err(ConfigError::new(LAYER, "max_keys", "is 0"));
        }
        let replicas = self.fleet.as_ref().map_or(1, |(f, _)| f.replicas());
        let all = KeyState::new(
            self.fleet
                .as_ref()
                .map(|(fleet, name)| fleet.key("rate", &format!("{name}:all"))),
        );
        let overflow = KeyState::new(
            self.fleet
                .as_ref()
                .map(|(fleet, name)| fleet.key("rate", &format!("{name}:overflow"))),
        );
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                all,
                gcra,
                local_share: gcra.share(replicas),
                base: Instant::now(),
                fleet: self
                    .fleet
                    .map(|(fleet, name)| FleetRate { fleet, name, lease }),
                keys: RwLock::default(),
                max_keys: self.max_keys,
                overflow,
                sweep_after: AtomicU64::new(0),
                admitted: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
            }),
            key: Arc::new(self.key),
        })
    }
}

/// Admits calls at a rate (GCRA: at most `burst` at once, then one per interval), per key if
/// given a key function, locally or fleet-wide; see the [crate documentation](crate).
pub struct RateLimitLayer<F = AllRequests> {
    shared: Arc<Shared>,
    key: Arc<F>,
}

impl RateLimitLayer {
    /// A limit of `per_second` calls a second, for every request together until
    /// [`key`](RateLimitBuilder::key) says otherwise.
    pub fn builder(per_second: f64) -> RateLimitBuilder {
        RateLimitBuilder {
            per_second,
            burst: None,
            key: AllRequests,
            fleet: None,
            lease: None,
            max_keys: 100_000,
        }
    }
}

impl<F> Clone for RateLimitLayer<F> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: self.shared.clone(),
            key: self.key.clone(),
        }
    }
}

impl<F> fmt::Debug for RateLimitLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("interval", &Duration::from_nanos(self.shared.gcra.interval))
            .field("fleet", &self.shared.fleet.as_ref().map(|f| &f.name))
            .finish_non_exhaustive()
    }
}

impl<F> RateLimitLayer<F> {
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

    /// Lease fetches sent to Redis so far (fleet-wide limits): one per lease, or one for all
    /// the callers that waited for it.
    #[must_use]
    pub fn redis_fetches(&self) -> u64 {
        self.shared.fetches.load(Ordering::Relaxed)
    }

    /// Keys remembered now: at most [`max_keys`](RateLimitBuilder::max_keys).
    #[must_use]
    pub fn keys(&self) -> usize {
        self.shared.keys.read().expect("keys lock").len()
    }
}

impl<S, F> Layer<S> for RateLimitLayer<F> {
    type Service = RateLimit<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
            key: self.key.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] makes.
pub struct RateLimit<S, F = AllRequests> {
    inner: S,
    shared: Arc<Shared>,
    key: Arc<F>,
}

seawall_classify::inner_accessors!(impl[S, F] RateLimit<S, F>);

impl<S: Clone, F> Clone for RateLimit<S, F> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for RateLimit<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, F, Req> Service<Req> for RateLimit<S, F>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    F: KeyOf<Req>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, ()>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let now = shared.now();
        let state = shared.state(self.key.key_of(&request), now);
        if shared.fleet.is_none() {
            return match shared.gcra.take(&state.tat, now) {
                Ok(()) => {
                    shared.admitted.fetch_add(1, Ordering::Relaxed);
                    ResponseFuture::called(self.inner.call(request), ())
                }
                Err(retry_after) => ResponseFuture::refused(shared.refuse(retry_after, false)),
            };
        }
        match shared.answer_from_lease(state.take_leased(now)) {
            Some(Ok(())) => return ResponseFuture::called(self.inner.call(request), ()),
            Some(Err(refused)) => return ResponseFuture::refused(refused),
            None => {}
        }
        // The readied service goes with the call; a clone takes its place.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let state = state.into_owned();
        ResponseFuture::deciding(Box::pin(shared.clone().decide(state)), service, request)
    }
}
