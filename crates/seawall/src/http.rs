//! Turning any Seawall error into an HTTP response, in one call.

use std::time::Duration;

use http::StatusCode;

use crate::{Class, Error, FailureKind, RetryHint};

/// The status code and `Retry-After` (in whole seconds, rounded up) that answer a caller
/// whose request failed with `error`:
///
/// | class | status | `Retry-After` |
/// |---|---|---|
/// | `Rejected`, `Overloaded`, `Unavailable`, `Connect`, `Disconnect`, `Contention` | 503 | the hint's delay, else 1 s |
/// | `Timeout` | 504 | none |
/// | `Invalid` | 400 | none |
/// | `Internal`, anything else | 500 | none |
///
/// The message of the error is not part of it: the body a service returns should not leak
/// a dependency's internals.
///
/// ```
/// use std::time::Duration;
/// use seawall::{Class, Error, FailureKind, RetryHint};
///
/// let busy = Error::new(
///     Class::failure(FailureKind::Overloaded, RetryHint::RetryAfter(Duration::from_millis(1500))),
///     "pool exhausted",
/// );
/// let (status, retry_after) = seawall::http::response_parts(&busy);
/// assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(retry_after, Some(2));
/// ```
#[must_use]
pub fn response_parts(error: &Error) -> (StatusCode, Option<u64>) {
    status_for(error.class())
}

/// [`response_parts`] for a class alone.
#[must_use]
pub fn status_for(class: Class) -> (StatusCode, Option<u64>) {
    let Some(failure) = class.as_failure() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, None);
    };
    match failure.kind {
        FailureKind::Rejected
        | FailureKind::Overloaded
        | FailureKind::Unavailable
        | FailureKind::Connect
        | FailureKind::Disconnect
        | FailureKind::Contention => {
            let after = match failure.retry {
                RetryHint::RetryAfter(delay) => delay,
                _ => Duration::from_secs(1),
            };
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            (StatusCode::SERVICE_UNAVAILABLE, Some(secs.max(1)))
        }
        FailureKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
        FailureKind::Invalid => (StatusCode::BAD_REQUEST, None),
        FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}
