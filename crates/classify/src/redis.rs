//! Redis: `redis::RedisError` by its kind and server error code.
//!
//! | error | class |
//! |---|---|
//! | connection refused | `Connect`, retry |
//! | I/O timeout (the client's response or connection timeout) | `Timeout`, retry |
//! | connection dropped, reset, broken pipe, other I/O | `Disconnect`, retry (if idempotent) |
//! | `LOADING`, `MASTERDOWN`, `READONLY`, `CLUSTERDOWN`, `TRYAGAIN`, `MOVED`, `ASK`, `MISCONF`, `NOREPLICAS`, `MASTERDOWN` | `Unavailable`, retry |
//! | `BUSY` (a script is running), `OOM`, `ERR max number of clients reached` | `Overloaded`, retry |
//! | `WRONGTYPE`, `ERR` (unknown command, wrong arguments), `NOSCRIPT`, `EXECABORT`, `CROSSSLOT`, `NOPERM`, `NOAUTH`, `WRONGPASS`, `BUSYKEY`, `NOTBUSY`, `NOSUB` | `Invalid`, never |
//! | authentication failed, invalid client configuration, type conversion, client errors | `Invalid`, never |
//! | cluster node not found, sentinel found no master or replica | `Connect`, retry |
//! | parse error (the protocol is out of step) | `Internal`, never |
//! | any other code | `Internal`, retried only where redis-rs's own `retry_method` says so |

use redis::{ErrorKind, RedisError, RetryMethod, ServerErrorKind};

use crate::{Class, FailureKind, RetryHint};

/// Classifies an error from `redis`; see the [module docs](self) for the table.
///
/// ```
/// use seawall_classify::{redis as classify_redis, FailureKind};
///
/// let err = redis::make_extension_error("WRONGTYPE".into(), Some("wrong kind of value".into()));
/// assert_eq!(classify_redis::classify(&err).kind(), Some(FailureKind::Invalid));
/// ```
#[must_use]
pub fn classify(error: &RedisError) -> Class {
    use FailureKind as K;
    use RetryHint::{Never, Retry};
    let (kind, hint) = match error.kind() {
        ErrorKind::Io => {
            if error.is_connection_refusal() {
                (K::Connect, Retry)
            } else if error.is_timeout() {
                (K::Timeout, Retry)
            } else {
                (K::Disconnect, Retry)
            }
        }
        ErrorKind::Server(server) => return classify_server(server, error.detail()),
        ErrorKind::Extension => return classify_code(error.code().unwrap_or(""), error.detail()),
        ErrorKind::AuthenticationFailed
        | ErrorKind::InvalidClientConfig
        | ErrorKind::UnexpectedReturnType
        | ErrorKind::Client
        | ErrorKind::EmptySentinelList
        | ErrorKind::RESP3NotSupported => (K::Invalid, Never),
        ErrorKind::ClusterConnectionNotFound
        | ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel => (K::Connect, Retry),
        ErrorKind::Parse => (K::Internal, Never),
        _ => (K::Internal, hint_from_retry_method(error.retry_method())),
    };
    Class::failure(kind, hint)
}

fn classify_server(server: ServerErrorKind, detail: Option<&str>) -> Class {
    use FailureKind as K;
    use RetryHint::{Never, Retry};
    let (kind, hint) = match server {
        ServerErrorKind::ResponseError => {
            if detail.is_some_and(|d| d.starts_with("max number of clients reached")) {
                (K::Overloaded, Retry)
            } else {
                (K::Invalid, Never)
            }
        }
        ServerErrorKind::BusyLoading
        | ServerErrorKind::MasterDown
        | ServerErrorKind::ReadOnly
        | ServerErrorKind::ClusterDown
        | ServerErrorKind::TryAgain
        | ServerErrorKind::Moved
        | ServerErrorKind::Ask => (K::Unavailable, Retry),
        ServerErrorKind::ExecAbort
        | ServerErrorKind::NoScript
        | ServerErrorKind::CrossSlot
        | ServerErrorKind::NotBusy
        | ServerErrorKind::NoSub
        | ServerErrorKind::NoPerm => (K::Invalid, Never),
        _ => (K::Internal, Never),
    };
    Class::failure(kind, hint)
}

/// Classifies a Redis error reply by its code (the first word of the reply, such as
/// `WRONGTYPE`) and the rest of the message; see the [module docs](self).
///
/// ```
/// use seawall_classify::{redis, FailureKind};
///
/// assert_eq!(redis::classify_code("LOADING", None).kind(), Some(FailureKind::Unavailable));
/// assert_eq!(redis::classify_code("BUSY", None).kind(), Some(FailureKind::Overloaded));
/// ```
#[must_use]
pub fn classify_code(code: &str, detail: Option<&str>) -> Class {
    use FailureKind as K;
    use RetryHint::{Never, Retry};
    let (kind, hint) = match code {
        "BUSY" | "OOM" => (K::Overloaded, Retry),
        "LOADING" | "MASTERDOWN" | "READONLY" | "CLUSTERDOWN" | "TRYAGAIN" | "MOVED" | "ASK"
        | "MISCONF" | "NOREPLICAS" => (K::Unavailable, Retry),
        "ERR" => {
            return classify_server(ServerErrorKind::ResponseError, detail);
        }
        "WRONGTYPE" | "NOSCRIPT" | "EXECABORT" | "CROSSSLOT" | "NOPERM" | "NOAUTH"
        | "WRONGPASS" | "BUSYKEY" | "NOTBUSY" | "NOSUB" | "NOPROTO" | "UNBLOCKED" => {
            (K::Invalid, Never)
        }
        _ => (K::Internal, Never),
    };
    Class::failure(kind, hint)
}

fn hint_from_retry_method(method: RetryMethod) -> RetryHint {
    match method {
        RetryMethod::NoRetry => RetryHint::Never,
        _ => RetryHint::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn server_error(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_owned(), Some(detail.to_owned()))
    }

    #[test]
    fn io_errors_split_into_connect_timeout_and_disconnect() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused).kind(), Some(FailureKind::Connect));
        let timed_out = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(classify(&timed_out).kind(), Some(FailureKind::Timeout));
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(classify(&reset).kind(), Some(FailureKind::Disconnect));
        let dropped = RedisError::from((ErrorKind::Io, "Connection dropped"));
        assert_eq!(classify(&dropped).kind(), Some(FailureKind::Disconnect));
    }

    #[test]
    fn server_state_codes_are_unavailable() {
        for code in [
            "LOADING",
            "MASTERDOWN",
            "READONLY",
            "CLUSTERDOWN",
            "TRYAGAIN",
            "MISCONF",
        ] {
            let class = classify(&server_error(code, "x"));
            assert_eq!(class.kind(), Some(FailureKind::Unavailable), "{code}");
            assert!(class.is_retryable(), "{code}");
        }
    }

    #[test]
    fn busy_servers_are_overloaded() {
        let busy = server_error("BUSY", "Redis is busy running a script.");
        assert_eq!(classify(&busy).kind(), Some(FailureKind::Overloaded));
        let full = server_error("ERR", "max number of clients reached");
        assert_eq!(classify(&full).kind(), Some(FailureKind::Overloaded));
        let oom = server_error("OOM", "command not allowed when used memory > 'maxmemory'.");
        assert_eq!(classify(&oom).kind(), Some(FailureKind::Overloaded));
    }

    #[test]
    fn caller_errors_are_invalid() {
        for (code, detail) in [
            (
                "WRONGTYPE",
                "Operation against a key holding the wrong kind of value",
            ),
            ("ERR", "unknown command 'FOO'"),
            ("NOSCRIPT", "No matching script."),
            ("NOAUTH", "Authentication required."),
            ("WRONGPASS", "invalid username-password pair"),
        ] {
            let class = classify(&server_error(code, detail));
            assert_eq!(class.kind(), Some(FailureKind::Invalid), "{code}");
            assert!(!class.is_retryable(), "{code}");
        }
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "bad password"));
        assert_eq!(classify(&auth).kind(), Some(FailureKind::Invalid));
        let types = RedisError::from((ErrorKind::UnexpectedReturnType, "not an int"));
        assert_eq!(classify(&types).kind(), Some(FailureKind::Invalid));
    }

    #[test]
    fn unknown_codes_are_internal() {
        assert_eq!(
            classify(&server_error("FANCYMODULE", "?")),
            Class::UNKNOWN_ERROR
        );
    }

    proptest! {
        #[test]
        fn any_reply_classifies_without_panicking(code in "\\PC{0,12}", detail in "\\PC{0,40}") {
            let _ = classify(&server_error(&code, &detail));
            let _ = classify_code(&code, Some(&detail));
        }

        #[test]
        fn overload_is_never_marked_unretryable(code in "[A-Z]{2,10}", detail in "\\PC{0,40}") {
            let class = classify_code(&code, Some(&detail));
            if class.kind() == Some(FailureKind::Overloaded) {
                prop_assert!(class.is_retryable());
            }
        }
    }
}
