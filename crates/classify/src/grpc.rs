//! gRPC: `tonic::Status` by code, `grpc-status` in a response's headers, the server's
//! pushback, and Seawall's own errors as a status for a gRPC caller (feature `grpc`).
//!
//! | code | class |
//! |---|---|
//! | `OK` | success |
//! | `UNAVAILABLE` | `Unavailable`, retry (the retryable code of gRPC's retry design) |
//! | `RESOURCE_EXHAUSTED` | `Overloaded`, retry (after the pushback, when the server sent one) |
//! | `DEADLINE_EXCEEDED` | `Timeout`, retry (an attempt's budget ran out; the request's deadline still bounds retrying) |
//! | `ABORTED` | `Contention`, retry (a concurrency conflict: retry the whole operation) |
//! | `CANCELLED` | ignored: the call was cancelled, and says nothing about the server |
//! | `INVALID_ARGUMENT`, `NOT_FOUND`, `ALREADY_EXISTS`, `PERMISSION_DENIED`, `UNAUTHENTICATED`, `FAILED_PRECONDITION`, `OUT_OF_RANGE`, `UNIMPLEMENTED` | `Invalid`, never |
//! | `UNKNOWN`, `INTERNAL`, `DATA_LOSS` | `Internal`, never |
//!
//! A server's pushback (`grpc-retry-pushback-ms`) is honoured as gRPC's retry design says: a
//! delay in milliseconds becomes `RetryAfter`, and a negative or malformed value means "do
//! not retry" (`Never`).
//!
//! [`GrpcClassifier`] classifies the responses of a gRPC channel (`http::Response` with
//! `grpc-status` in its headers: the trailers-only answer a server gives when a call fails
//! before any message, such as `UNAVAILABLE` or `NOT_FOUND`). A status sent in trailers,
//! after messages, is seen by the client's decoder, which returns it as a `tonic::Status`
//! error: the default classification reads those.
//!
//! Seawall's errors become a status for a gRPC caller with [`status_of`] (or [`into_status`]
//! in a `map_err`): a local refusal or overload is `UNAVAILABLE` / `RESOURCE_EXHAUSTED` with
//! the pushback set to the error's `retry_after`, a timeout `DEADLINE_EXCEEDED`, the caller's
//! mistakes `INVALID_ARGUMENT`. The message is the class, never the error's own text.

use std::time::Duration;

use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::{AsError, Class, Classifier, Error, FailureKind, RetryHint, known_class};

/// The metadata key of a server's pushback.
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// Classifies a gRPC status code, given the server's pushback if it sent one; see the
/// [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use seawall_classify::{grpc, FailureKind, RetryHint};
///
/// let busy = grpc::classify_code(tonic::Code::ResourceExhausted, Some(Some(Duration::from_millis(250))));
/// assert_eq!(busy.retry_hint(), Some(RetryHint::RetryAfter(Duration::from_millis(250))));
/// assert_eq!(grpc::classify_code(tonic::Code::InvalidArgument, None).kind(), Some(FailureKind::Invalid));
/// ```
#[must_use]
pub fn classify_code(code: Code, pushback: Option<Option<Duration>>) -> Class {
    use FailureKind as K;
    let retry = match pushback {
        None => RetryHint::Retry,
        Some(Some(delay)) => RetryHint::RetryAfter(delay),
        Some(None) => RetryHint::Never,
    };
    match code {
        Code::Ok => Class::Success,
        Code::Cancelled => Class::Ignored,
        Code::Unavailable => Class::failure(K::Unavailable, retry),
        Code::ResourceExhausted => Class::failure(K::Overloaded, retry),
        Code::DeadlineExceeded => Class::failure(K::Timeout, retry),
        Code::Aborted => Class::failure(K::Contention, retry),
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented => Class::failure(K::Invalid, RetryHint::Never),
        Code::Unknown | Code::Internal | Code::DataLoss => Class::UNKNOWN_ERROR,
    }
}

/// The server's pushback in `metadata`: `None` without one, `Some(None)` for "do not retry"
/// (negative or malformed), `Some(Some(delay))` otherwise.
#[must_use]
pub fn pushback(metadata: &MetadataMap) -> Option<Option<Duration>> {
    metadata
        .get(PUSHBACK)
        .map(|value| parse_pushback(value.to_str().ok()))
}

/// A pushback value: a delay in milliseconds, or `None` (do not retry) when it is negative
/// or malformed.
fn parse_pushback(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// Classifies a `tonic::Status` by its code and pushback; see the [module docs](self).
#[must_use]
pub fn classify_status(status: &tonic::Status) -> Class {
    classify_code(status.code(), pushback(status.metadata()))
}

/// Classifies the responses of a gRPC channel by the `grpc-status` in their headers (and
/// errors like the [`DefaultClassifier`](crate::DefaultClassifier)); see the
/// [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcClassifier;

impl<B, E: AsError> Classifier<http::Response<B>, E> for GrpcClassifier {
    fn classify_response(&self, response: &http::Response<B>) -> Option<Class> {
        let headers = response.headers();
        let code = headers
            .get("grpc-status")?
            .to_str()
            .ok()?
            .parse::<i32>()
            .ok()?;
        let pushback = headers
            .get(PUSHBACK)
            .map(|value| parse_pushback(value.to_str().ok()));
        Some(classify_code(Code::from_i32(code), pushback))
    }

    fn classify_error(&self, error: &E) -> Option<Class> {
        known_class(error.as_error())
    }
}

/// The status a gRPC caller gets for a Seawall error; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use seawall_classify::{grpc, Class, Error};
///
/// let open = Error::new(Class::rejected(Duration::from_millis(1200)), "breaker open");
/// let status = grpc::status_of(&open);
/// assert_eq!(status.code(), tonic::Code::Unavailable);
/// assert_eq!(status.metadata().get(grpc::PUSHBACK).unwrap(), "1200");
/// assert!(!status.message().contains("breaker"));
/// ```
#[must_use]
pub fn status_of(error: &Error) -> tonic::Status {
    use FailureKind as K;
    let Some(failure) = error.failure() else {
        return tonic::Status::unknown("unclassified");
    };
    let code = match failure.kind {
        K::Rejected | K::Unavailable | K::Connect | K::Disconnect => Code::Unavailable,
        K::Overloaded => Code::ResourceExhausted,
        K::Timeout => Code::DeadlineExceeded,
        K::Contention => Code::Aborted,
        K::Invalid => Code::InvalidArgument,
        K::Internal => Code::Internal,
    };
    let mut status = tonic::Status::new(code, failure.kind.as_str());
    let pushback = match failure.retry {
        RetryHint::RetryAfter(delay) => Some(delay.as_millis().to_string()),
        // Nothing to wait for, but nothing to gain from trying again either.
        RetryHint::Never if matches!(code, Code::Unavailable | Code::ResourceExhausted) => {
            Some("-1".to_owned())
        }
        _ => None,
    };
    if let Some(value) = pushback.and_then(|v| v.parse().ok()) {
        status.metadata_mut().insert(PUSHBACK, value);
    }
    status
}

/// [`status_of`], taking the error: what a `map_err` needs (`map_err(into_status)`).
/// (Seawall's `Error` lives in seawall-core, which knows no tonic, so there is no
/// `From<Error> for tonic::Status`.)
#[must_use]
pub fn into_status(error: Error) -> tonic::Status {
    status_of(&error)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any `grpc-status` and pushback a server sends classifies without a panic, and
        /// `UNAVAILABLE`'s retry hint follows the pushback as gRPC's retry design says.
        #[test]
        fn any_status_and_pushback_classify(
            status in prop_oneof![Just("14".to_owned()), "[0-9]{1,3}", "[ -~]{0,12}"],
            pushback in prop_oneof!["-?[0-9]{1,7}", " ?[0-9]{1,4} ?", "[ -~]{0,24}"],
        ) {
            let mut response = http::Response::new(());
            let headers = response.headers_mut();
            let status_sent = http::HeaderValue::from_str(&status).ok();
            let pushback_sent = http::HeaderValue::from_str(&pushback).ok();
            if let Some(value) = status_sent.clone() {
                headers.insert("grpc-status", value);
            }
            if let Some(value) = pushback_sent.clone() {
                headers.insert(PUSHBACK, value);
            }
            let class = Classifier::<_, Error>::classify_response(&GrpcClassifier, &response);
            let unavailable = status_sent.is_some_and(|v| v.to_str().ok() == Some("14"));
            if unavailable {
                let hint = class.and_then(|c| c.retry_hint());
                let expected = match pushback_sent {
                    None => RetryHint::Retry,
                    Some(value) => match value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                        Some(ms) => RetryHint::RetryAfter(Duration::from_millis(ms)),
                        None => RetryHint::Never,
                    },
                };
                prop_assert_eq!(hint, Some(expected));
            }
        }
    }
}
