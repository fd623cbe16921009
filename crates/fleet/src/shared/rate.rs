//! The rate limit's state: local GCRA per key, or fleet-wide on Redis with leased tokens.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use seawall_classify::Error;
use tokio::time::Instant;

use crate::error::RateLimited;
use crate::shared::gcra::Gcra;
use crate::shared::store::{Fleet, Op, Reply};

pub(crate) const RATE_LAYER: &str = "rate limit";

/// How many lease fetches a caller waits through before it takes the fleet's last answer.
pub(crate) const FETCH_ROUNDS: usize = 4;

/// One key's state: its local schedule (the whole limit locally, or the local share while
/// Redis is away), and the tokens leased from the fleet.
pub(crate) struct KeyState {
    pub(crate) tat: AtomicU64,
    pub(crate) lease: Mutex<Lease>,
    /// One lease fetch at a time per key: the callers that arrive meanwhile wait for its
    /// tokens, and it asks for as many as are waiting (one round trip serves them all).
    pub(crate) fetching: tokio::sync::Mutex<()>,
    /// Callers deciding on the fleet for this key now.
    pub(crate) waiting: AtomicU64,
    pub(crate) redis_key: Option<Arc<str>>,
}

#[derive(Default)]
pub(crate) struct Lease {
    pub(crate) tokens: u32,
    /// Leased tokens are good until then (nanoseconds on the limit's clock): a lease is the
    /// fleet's schedule for a while, not a stock to spend later.
    pub(crate) until: u64,
    /// The fleet refused until then: calls before it are refused here, without asking Redis.
    pub(crate) refused_until: u64,
}

/// What a fleet-wide key's local state says of a call.
pub(crate) enum Local {
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
    pub(crate) fn live(&self, now: u64) -> bool {
        if self.tat.load(Ordering::Relaxed) > now {
            return true;
        }
        let lease = self.lease.lock().expect("lease lock");
        (lease.tokens > 0 && lease.until > now) || lease.refused_until > now
    }

    /// Whether the key's lease answers a call at `now` (leased tokens, or the fleet's
    /// refusal), without taking anything.
    pub(crate) fn answers(&self, now: u64) -> bool {
        let lease = self.lease.lock().expect("lease lock");
        (lease.tokens > 0 && now < lease.until) || now < lease.refused_until
    }

    pub(crate) fn take_leased(&self, now: u64) -> Local {
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

pub(crate) struct FleetRate {
    pub(crate) fleet: Fleet,
    pub(crate) name: String,
    pub(crate) lease: u32,
}

pub(crate) struct RateShared {
    pub(crate) gcra: Gcra,
    /// This instance's share of the fleet's limit, enforced while Redis is away.
    pub(crate) local_share: Gcra,
    pub(crate) base: Instant,
    pub(crate) fleet: Option<FleetRate>,
    /// The limit of every request, when there are no keys.
    pub(crate) all: Arc<KeyState>,
    /// Per key, by the key's 64-bit hash: at most `max_keys` of them.
    pub(crate) keys: RwLock<HashMap<u64, Arc<KeyState>>>,
    pub(crate) max_keys: usize,
    /// The limit the keys past `max_keys` share while every remembered key is live.
    pub(crate) overflow: Arc<KeyState>,
    /// No sweep of the keys before then (nanoseconds on the limit's clock): a full map of
    /// live keys is swept at most once a sweep interval, not once per new key.
    pub(crate) sweep_after: AtomicU64,
    pub(crate) decisions: super::Decisions,
    /// Lease fetches sent to Redis.
    pub(crate) fetches: AtomicU64,
}

impl KeyState {
    pub(crate) fn new(redis_key: Option<Arc<str>>) -> Arc<Self> {
        Arc::new(KeyState {
            tat: AtomicU64::new(0),
            lease: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
            waiting: AtomicU64::new(0),
            redis_key,
        })
    }
}

impl RateShared {
    pub(crate) fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// A key's state. The limit of every request is borrowed (no reference count moves on
    /// its path); a known key takes a read lock; a new one the write lock.
    pub(crate) fn state<K: Hash + fmt::Display>(
        &self,
        key: Option<K>,
        now: u64,
    ) -> Cow<'_, Arc<KeyState>> {
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
    pub(crate) fn sweep_interval(&self) -> u64 {
        (self.gcra.tolerance + self.gcra.interval).max(1_000_000)
    }

    /// How long leased tokens stay good: the time they stand for at the fleet's rate, or the
    /// burst's window if longer. Spent later than that, they would add to the burst; spent
    /// within it, the fleet admits at most `rate × interval + 2 × burst` over any interval.
    pub(crate) fn lease_life(&self, granted: u32) -> u64 {
        (u64::from(granted) * self.gcra.interval).max(self.gcra.tolerance + self.gcra.interval)
    }

    pub(crate) fn refuse(&self, retry_after: Duration, shared: bool) -> Error {
        self.decisions.refuse();
        RateLimited::error(retry_after, shared)
    }

    /// The slow path of a fleet-wide limit: lease tokens from Redis (one fetch per key at a
    /// time, asking for as many tokens as callers wait), or decide on the local share when
    /// Redis cannot answer. The fetch runs as a task of its own, which holds the key's fetch
    /// lock: a caller cancelled while it is out loses nothing (its tokens land in the key's
    /// lease for the next callers), and the next caller waits for that fetch rather than
    /// sending another, whose answer (a refusal: the first took the burst) could land after
    /// the first's and hide its tokens.
    pub(crate) async fn decide(self: Arc<Self>, state: Arc<KeyState>) -> Result<(), Error> {
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
    pub(crate) fn local_decision(&self, state: &KeyState) -> Result<(), Error> {
        let now = self.now();
        match self.local_share.take(&state.tat, now) {
            Ok(()) => {
                self.decisions.admit();
                Ok(())
            }
            Err(retry_after) => Err(self.refuse(retry_after, false)),
        }
    }

    /// What the key's lease says of a call, when it says something: admitted on a leased
    /// token, or refused while the fleet's last refusal holds; `None`: ask the fleet.
    pub(crate) fn answer_from_lease(&self, local: Local) -> Option<Result<(), Error>> {
        match local {
            Local::Leased => {
                self.decisions.admit();
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
