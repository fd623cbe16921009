//! HTTP responses: classification by status code and `Retry-After`.
//!
//! | status | class |
//! |---|---|
//! | 1xx, 2xx, 3xx | success |
//! | 408 Request Timeout | `Timeout`, retry |
//! | 425 Too Early | `Unavailable`, retry |
//! | 429 Too Many Requests | `Overloaded`, retry after `Retry-After` if present |
//! | other 4xx | `Invalid`, never |
//! | 500 Internal Server Error | `Internal`, retry |
//! | 501 Not Implemented, 505 HTTP Version Not Supported | `Invalid`, never |
//! | 502 Bad Gateway | `Unavailable`, retry |
//! | 503 Service Unavailable | `Overloaded`, retry after `Retry-After` if present |
//! | 504 Gateway Timeout | `Timeout`, retry |
//! | 507, 508 | `Internal`, never |
//! | 511 Network Authentication Required | `Invalid`, never |
//! | other 5xx | `Internal`, retry |
//!
//! `Retry-After` is read in both of its forms, delay-seconds and HTTP-date, and only on
//! 429 and 503 responses, where it means "come back later".

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Response, StatusCode, header::RETRY_AFTER};

use crate::{AsError, Class, Classifier, Error, FailureKind, RetryHint, known_class};

/// Classifies `http::Response`s by status and `Retry-After`, and errors like
/// [`DefaultClassifier`](crate::DefaultClassifier).
///
/// ```
/// use std::time::Duration;
/// use seawall_classify::{BoxError, Classifier, FailureKind, HttpClassifier, RetryHint};
///
/// let res = http::Response::builder().status(503).header("retry-after", "7").body(()).unwrap();
/// let class = Classifier::<_, BoxError>::classify(&HttpClassifier, Ok(&res));
/// assert_eq!(class.kind(), Some(FailureKind::Overloaded));
/// assert_eq!(class.retry_hint(), Some(RetryHint::RetryAfter(Duration::from_secs(7))));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpClassifier;

impl<B, E: AsError> Classifier<Response<B>, E> for HttpClassifier {
    fn classify_response(&self, response: &Response<B>) -> Option<Class> {
        Some(classify_response(response))
    }

    fn classify_error(&self, error: &E) -> Option<Class> {
        known_class(error.as_error())
    }
}

/// Classifies a response by status and `Retry-After`; see the [module docs](self).
#[must_use]
pub fn classify_response<B>(response: &Response<B>) -> Class {
    classify_parts(response.status(), response.headers())
}

/// Classifies a response given as its status and headers (for clients with a response type
/// of their own); see the [module docs](self).
#[must_use]
pub fn classify_parts(status: StatusCode, headers: &HeaderMap) -> Class {
    let retry_after = if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        retry_after(headers, SystemTime::now())
    } else {
        None
    };
    classify_status(status, retry_after)
}

/// Classifies an error of hyper's HTTP client (hyper, or hyper-util's legacy client, whose
/// errors have it as their source):
///
/// | hyper error | class |
/// |---|---|
/// | the connection closed before the whole response came (`IncompleteMessage`) | `Disconnect`, retry (if idempotent: the request may have run) |
/// | canceled: the connection closed before the request was sent | `Connect`, retry |
/// | the connection closed | `Disconnect`, retry (if idempotent) |
/// | a timeout | `Timeout`, retry |
/// | a malformed response | `Internal`, never |
/// | anything else | no opinion |
///
/// A connection that could not be opened surfaces as the `std::io::Error` under
/// hyper-util's error, which the [`io`](crate::io) table classifies (`Connect`).
#[must_use]
pub fn classify_hyper(error: &hyper::Error) -> Option<Class> {
    use FailureKind as K;
    Some(if error.is_incomplete_message() {
        Class::failure(K::Disconnect, RetryHint::Retry)
    } else if error.is_canceled() {
        Class::failure(K::Connect, RetryHint::Retry)
    } else if error.is_closed() {
        Class::failure(K::Disconnect, RetryHint::Retry)
    } else if error.is_timeout() {
        Class::failure(K::Timeout, RetryHint::Retry)
    } else if error.is_parse() || error.is_parse_status() {
        Class::UNKNOWN_ERROR
    } else {
        return None;
    })
}

/// Classifies a status code, given the `Retry-After` delay if the response had one.
///
/// ```
/// use seawall_classify::{http::classify_status, FailureKind};
///
/// assert!(classify_status(http::StatusCode::OK, None).is_success());
/// assert_eq!(classify_status(http::StatusCode::NOT_FOUND, None).kind(), Some(FailureKind::Invalid));
/// assert_eq!(classify_status(http::StatusCode::GATEWAY_TIMEOUT, None).kind(), Some(FailureKind::Timeout));
/// ```
#[must_use]
pub fn classify_status(status: StatusCode, retry_after: Option<Duration>) -> Class {
    use FailureKind as K;
    use RetryHint::{Never, Retry};
    let later = retry_after.map_or(Retry, RetryHint::RetryAfter);
    let (kind, hint) = match status.as_u16() {
        100..=399 => return Class::Success,
        408 => (K::Timeout, Retry),
        425 => (K::Unavailable, Retry),
        429 => (K::Overloaded, later),
        400..=499 => (K::Invalid, Never),
        501 | 505 | 511 => (K::Invalid, Never),
        502 => (K::Unavailable, Retry),
        503 => (K::Overloaded, later),
        504 => (K::Timeout, Retry),
        507 | 508 => (K::Internal, Never),
        _ => (K::Internal, Retry),
    };
    Class::failure(kind, hint)
}

/// The delay a `Retry-After` header asks for, as of `now`: delay-seconds, or an HTTP-date
/// (a date in the past means no delay). `None` when the header is absent or malformed.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use seawall_classify::http::retry_after;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(120)));
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767); // 1994-11-06 08:49:27
/// headers.insert("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(10)));
/// ```
#[must_use]
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurd values saturate rather than fail; layers cap the delay anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

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
/// use seawall_classify::{Class, Error, FailureKind, RetryHint};
///
/// let busy = Error::new(
///     Class::failure(FailureKind::Overloaded, RetryHint::RetryAfter(Duration::from_millis(1500))),
///     "pool exhausted",
/// );
/// let (status, retry_after) = seawall_classify::http::response_parts(&busy);
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
            // Rounded up; a wait of `Duration::MAX` (a remote's huge header) saturates.
            let secs = after
                .as_secs()
                .saturating_add(u64::from(after.subsec_nanos() > 0));
            (StatusCode::SERVICE_UNAVAILABLE, Some(secs.max(1)))
        }
        FailureKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
        FailureKind::Invalid => (StatusCode::BAD_REQUEST, None),
        FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_huge_retry_after_does_not_overflow_the_answer() {
        let huge = Class::failure(
            FailureKind::Overloaded,
            RetryHint::RetryAfter(Duration::MAX),
        );
        assert_eq!(
            status_for(huge),
            (StatusCode::SERVICE_UNAVAILABLE, Some(u64::MAX))
        );
    }

    fn response(status: u16, retry_after: Option<&str>) -> Response<()> {
        let mut builder = Response::builder().status(status);
        if let Some(value) = retry_after {
            builder = builder.header(RETRY_AFTER, value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn statuses_map_as_documented() {
        let kind = |s: u16| classify_response(&response(s, None)).kind();
        assert_eq!(kind(200), None);
        assert_eq!(kind(304), None);
        assert_eq!(kind(400), Some(FailureKind::Invalid));
        assert_eq!(kind(404), Some(FailureKind::Invalid));
        assert_eq!(kind(408), Some(FailureKind::Timeout));
        assert_eq!(kind(429), Some(FailureKind::Overloaded));
        assert_eq!(kind(500), Some(FailureKind::Internal));
        assert_eq!(kind(501), Some(FailureKind::Invalid));
        assert_eq!(kind(502), Some(FailureKind::Unavailable));
        assert_eq!(kind(503), Some(FailureKind::Overloaded));
        assert_eq!(kind(504), Some(FailureKind::Timeout));
        assert_eq!(kind(505), Some(FailureKind::Invalid));
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let hint = |s: u16| classify_response(&response(s, Some("3"))).retry_hint();
        let three = Some(RetryHint::RetryAfter(Duration::from_secs(3)));
        assert_eq!(hint(429), three);
        assert_eq!(hint(503), three);
        assert_eq!(hint(500), Some(RetryHint::Retry));
    }

    #[test]
    fn malformed_retry_after_is_ignored() {
        for value in ["soon", "-1", "1.5", ""] {
            let class = classify_response(&response(503, Some(value)));
            assert_eq!(class.retry_hint(), Some(RetryHint::Retry), "{value:?}");
        }
    }

    #[test]
    fn a_past_http_date_means_no_delay() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::ZERO)
        );
    }

    proptest! {
        #[test]
        fn any_status_and_header_classifies(status in 100u16..=999, header in "[ -~]{0,40}") {
            let mut res = Response::new(());
            *res.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Ok(value) = header.parse() {
                res.headers_mut().insert(RETRY_AFTER, value);
            }
            let class = classify_response(&res);
            if class.kind() == Some(FailureKind::Overloaded) {
                prop_assert!(class.is_retryable());
            }
            if (400..500).contains(&status) && ![408, 425, 429].contains(&status) {
                prop_assert_eq!(class.kind(), Some(FailureKind::Invalid));
                prop_assert!(!class.is_fault());
            }
        }
    }
}
