//! When to try again: the backoff between attempts and the budget that bounds retries across
//! requests.

pub(crate) mod backoff;
pub(crate) mod budget;
