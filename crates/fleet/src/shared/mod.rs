//! What the fleet layers share: the rate limit's and the concurrency budget's state, the
//! GCRA arithmetic, and the Redis store.

pub(crate) mod budget;
pub(crate) mod gcra;
pub(crate) mod rate;
pub(crate) mod store;
