//! PostgreSQL: `tokio_postgres::Error` by SQLSTATE, and `deadpool_postgres::PoolError`.
//!
//! Errors the server reported carry a SQLSTATE code, classified by
//! [`sqlstate::classify`](crate::sqlstate::classify); errors without one are classified by
//! what the client was doing.
//!
//! The SQLSTATE table is [`sqlstate`](crate::sqlstate)'s, shared with sqlx (feature `sqlx`).
//!
//! Errors without a SQLSTATE:
//!
//! | client error | class |
//! |---|---|
//! | could not connect, TLS handshake failed, timed out connecting | `Connect`, retry (nothing was sent) |
//! | I/O error talking to the server, connection closed | `Disconnect`, retry (if idempotent) |
//! | authentication, bad connection string or configuration | `Invalid`, never |
//! | parameter or column conversion, wrong row or column count | `Invalid`, never |
//! | unexpected message, parse or encode failure | `Internal`, never |
//!
//! A connection that is already closed when a query is issued and one that closes while the
//! query runs look the same to the client, so both are `Disconnect`: an idempotent request
//! is retried, any other is not.
//!
//! From the pool: waiting for a free connection timed out is `Overloaded` (the pool is
//! exhausted), creating or recycling one timed out is `Connect`, a closed pool is
//! `Rejected`, and a backend error is classified as above.

use deadpool_postgres::PoolError;
use deadpool_postgres::TimeoutType;
use tokio_postgres::error::SqlState;

use crate::{Class, FailureKind, RetryHint};

/// Classifies an error from `tokio_postgres`; see the [module docs](self) for the table.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use seawall_classify::{postgres, FailureKind};
///
/// let (client, connection) =
///     tokio_postgres::connect("host=127.0.0.1 user=postgres", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let err = client.simple_query("SELEC 1").await.unwrap_err();
/// assert_eq!(postgres::classify(&err).kind(), Some(FailureKind::Invalid));
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn classify(error: &tokio_postgres::Error) -> Class {
    use FailureKind as K;
    if let Some(code) = error.code() {
        return classify_code(code);
    }
    if error.is_closed() {
        return Class::failure(K::Disconnect, RetryHint::Retry);
    }
    // tokio-postgres keeps its error kinds private; its `Display` of the kind alone is the
    // stable, documented-by-use signal. Compared without allocating.
    let message_starts = |prefix: &str| crate::display_starts_with(error, prefix);
    let (kind, hint) = if message_starts("error connecting to server")
        || message_starts("error performing TLS handshake")
        || message_starts("timeout waiting for server")
    {
        (K::Connect, RetryHint::Retry)
    } else if message_starts("error communicating with the server") {
        (K::Disconnect, RetryHint::Retry)
    } else if message_starts("authentication error")
        || message_starts("invalid connection string")
        || message_starts("invalid configuration")
        || message_starts("error serializing parameter")
        || message_starts("error deserializing column")
        || message_starts("invalid column")
        || message_starts("query returned an unexpected number")
        || message_starts("expected ")
    {
        (K::Invalid, RetryHint::Never)
    } else {
        (K::Internal, RetryHint::Never)
    };
    Class::failure(kind, hint)
}

/// Classifies a SQLSTATE; see the [module docs](self) for the table.
///
/// ```
/// use seawall_classify::{postgres, FailureKind};
/// use tokio_postgres::error::SqlState;
///
/// let class = postgres::classify_code(&SqlState::T_R_SERIALIZATION_FAILURE);
/// assert_eq!(class.kind(), Some(FailureKind::Contention));
/// assert!(class.is_retryable());
/// ```
#[must_use]
pub fn classify_code(code: &SqlState) -> Class {
    classify_sqlstate(code.code())
}

/// Classifies a SQLSTATE given as its five-character code: the same as
/// [`sqlstate::classify`](crate::sqlstate::classify).
///
/// ```
/// use seawall_classify::{postgres, FailureKind, RetryHint};
///
/// assert_eq!(postgres::classify_sqlstate("53300").kind(), Some(FailureKind::Overloaded));
/// assert_eq!(postgres::classify_sqlstate("23505").retry_hint(), Some(RetryHint::Never));
/// ```
#[must_use]
pub fn classify_sqlstate(code: &str) -> Class {
    crate::sqlstate::classify(code)
}

/// Classifies an error from a `deadpool_postgres` pool; see the [module docs](self).
///
/// ```
/// use deadpool_postgres::{PoolError, TimeoutType};
/// use seawall_classify::{postgres, FailureKind};
///
/// let exhausted = PoolError::Timeout(TimeoutType::Wait);
/// assert_eq!(postgres::classify_pool_error(&exhausted).kind(), Some(FailureKind::Overloaded));
/// ```
#[must_use]
pub fn classify_pool_error(error: &PoolError) -> Class {
    use FailureKind as K;
    match error {
        PoolError::Timeout(TimeoutType::Wait) => Class::failure(K::Overloaded, RetryHint::Retry),
        PoolError::Timeout(_) => Class::failure(K::Connect, RetryHint::Retry),
        PoolError::Backend(err) => classify(err),
        PoolError::Closed => Class::failure(K::Rejected, RetryHint::Never),
        PoolError::NoRuntimeSpecified => Class::failure(K::Invalid, RetryHint::Never),
        PoolError::PostCreateHook(_) => Class::failure(K::Internal, RetryHint::Never),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind(code: &str) -> Option<FailureKind> {
        classify_sqlstate(code).kind()
    }

    #[test]
    fn connection_exceptions() {
        assert_eq!(kind("08001"), Some(FailureKind::Connect));
        assert_eq!(kind("08004"), Some(FailureKind::Connect));
        assert_eq!(kind("08006"), Some(FailureKind::Disconnect));
        assert_eq!(kind("08003"), Some(FailureKind::Disconnect));
        assert!(!classify_sqlstate("08007").is_retryable());
        assert_eq!(kind("08P01"), Some(FailureKind::Internal));
    }

    #[test]
    fn resource_exhaustion_is_overload() {
        for code in ["53000", "53200", "53300", "53400"] {
            let class = classify_sqlstate(code);
            assert_eq!(class.kind(), Some(FailureKind::Overloaded), "{code}");
            assert!(class.is_retryable(), "{code}");
        }
        assert_eq!(kind("53100"), Some(FailureKind::Unavailable));
    }

    #[test]
    fn shutdown_and_startup_are_unavailable() {
        for code in ["57P01", "57P02", "57P03", "57000"] {
            let class = classify_sqlstate(code);
            assert_eq!(class.kind(), Some(FailureKind::Unavailable), "{code}");
            assert!(class.is_retryable(), "{code}");
        }
        assert_eq!(kind("25006"), Some(FailureKind::Unavailable));
        assert_eq!(kind("57P05"), Some(FailureKind::Disconnect));
        assert_eq!(kind("57P04"), Some(FailureKind::Invalid));
    }

    #[test]
    fn statement_timeout_is_a_timeout() {
        assert_eq!(
            classify_code(&SqlState::QUERY_CANCELED),
            Class::failure(FailureKind::Timeout, RetryHint::Retry)
        );
    }

    #[test]
    fn contention_is_retried_but_not_a_fault() {
        for code in [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::SNAPSHOT_TOO_OLD,
        ] {
            let class = classify_code(&code);
            assert_eq!(class.kind(), Some(FailureKind::Contention), "{code:?}");
            assert!(class.is_retryable());
            assert!(!class.is_fault());
        }
        assert!(!classify_sqlstate("40003").is_retryable());
    }

    #[test]
    fn caller_errors_are_invalid_and_never_retried() {
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::FOREIGN_KEY_VIOLATION,
            SqlState::NOT_NULL_VIOLATION,
            SqlState::DIVISION_BY_ZERO,
            SqlState::INVALID_TEXT_REPRESENTATION,
            SqlState::SYNTAX_ERROR,
            SqlState::UNDEFINED_TABLE,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::FEATURE_NOT_SUPPORTED,
            SqlState::IN_FAILED_SQL_TRANSACTION,
            SqlState::RAISE_EXCEPTION,
            SqlState::UNDEFINED_DATABASE,
        ] {
            let class = classify_code(&code);
            assert_eq!(class.kind(), Some(FailureKind::Invalid), "{code:?}");
            assert!(!class.is_retryable(), "{code:?}");
        }
    }

    #[test]
    fn internal_errors_are_never_retried() {
        for code in [
            "XX000", "XX001", "58030", "F0000", "HV000", "zzzzz", "", "5",
        ] {
            assert_eq!(classify_sqlstate(code), Class::UNKNOWN_ERROR, "{code}");
        }
    }

    #[test]
    fn pool_exhaustion_is_overload() {
        let class = classify_pool_error(&PoolError::Timeout(TimeoutType::Wait));
        assert_eq!(
            class,
            Class::failure(FailureKind::Overloaded, RetryHint::Retry)
        );
        let class = classify_pool_error(&PoolError::Timeout(TimeoutType::Create));
        assert_eq!(class.kind(), Some(FailureKind::Connect));
        let class = classify_pool_error(&PoolError::Closed);
        assert_eq!(class.kind(), Some(FailureKind::Rejected));
    }

    proptest! {
        #[test]
        fn any_string_classifies_without_panicking(code in "\\PC{0,8}") {
            let _ = classify_sqlstate(&code);
        }

        #[test]
        fn overload_is_never_marked_unretryable(code in "[0-9A-Z]{5}") {
            let class = classify_sqlstate(&code);
            if class.kind() == Some(FailureKind::Overloaded) {
                prop_assert!(class.is_retryable());
            }
        }

        #[test]
        fn class_53_is_overload_except_disk_full(rest in "[0-9A-Z]{3}") {
            let code = format!("53{rest}");
            let expected = if code == "53100" { FailureKind::Unavailable } else { FailureKind::Overloaded };
            prop_assert_eq!(classify_sqlstate(&code).kind(), Some(expected));
        }
    }
}
