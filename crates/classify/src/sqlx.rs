//! sqlx: `sqlx::Error` (feature `sqlx`), by the same SQLSTATE table as `tokio-postgres`.
//!
//! | error | class |
//! |---|---|
//! | `Database` with a SQLSTATE | by [`sqlstate`](crate::sqlstate): `40001` `Contention`, `57P01` `Unavailable`, `53300` `Overloaded`, `23505` and `42601` `Invalid`... |
//! | `Database` without one | `Internal`, never |
//! | `PoolTimedOut` | `Overloaded`, retry: no connection within the pool's acquire timeout, because the pool is exhausted or the server cannot be reached (sqlx keeps trying to connect until then); nothing was sent |
//! | `PoolClosed` | `Rejected`, retry after zero: the pool was closed locally (shutting down) |
//! | `Io` | by the I/O error: refused `Connect`, reset `Disconnect`... (see [`io`](crate::io)) |
//! | `Tls` | `Connect`, retry |
//! | `Protocol`, `WorkerCrashed` | `Internal`, never |
//! | `Configuration`, `RowNotFound`, `TypeNotFound`, `ColumnNotFound`, `ColumnIndexOutOfBounds`, `ColumnDecode`, `Decode`, `Encode` | `Invalid`, never: the query or its use is wrong |
//! | anything else | no opinion (`Internal`, never, from the default) |
//!
//! The [`DefaultClassifier`](crate::DefaultClassifier) finds a `sqlx::Error` anywhere in an
//! error's `source()` chain, so a pipeline around a sqlx client needs no classifier of its
//! own.

use sqlx_core::error::Error as SqlxError;

use crate::{Class, FailureKind, RetryHint};

/// Classifies a `sqlx::Error`; see the [module docs](self) for the table. `None` for a
/// variant sqlx added after this table.
///
/// ```
/// use seawall_classify::{sqlx, FailureKind};
///
/// let exhausted = sqlx_core::error::Error::PoolTimedOut;
/// assert_eq!(sqlx::classify(&exhausted).and_then(|c| c.kind()), Some(FailureKind::Overloaded));
/// ```
#[must_use]
pub fn classify(error: &SqlxError) -> Option<Class> {
    use FailureKind as K;
    Some(match error {
        SqlxError::Database(database) => match database.code() {
            Some(code) => crate::sqlstate::classify(&code),
            None => Class::UNKNOWN_ERROR,
        },
        SqlxError::PoolTimedOut => Class::failure(K::Overloaded, RetryHint::Retry),
        SqlxError::PoolClosed => Class::rejected(std::time::Duration::ZERO),
        SqlxError::Io(io) => crate::io::classify(io)?,
        SqlxError::Tls(_) => Class::failure(K::Connect, RetryHint::Retry),
        SqlxError::Protocol(_) | SqlxError::WorkerCrashed => Class::UNKNOWN_ERROR,
        SqlxError::Configuration(_)
        | SqlxError::RowNotFound
        | SqlxError::TypeNotFound { .. }
        | SqlxError::ColumnNotFound(_)
        | SqlxError::ColumnIndexOutOfBounds { .. }
        | SqlxError::ColumnDecode { .. }
        | SqlxError::Decode(_)
        | SqlxError::Encode(_) => Class::failure(K::Invalid, RetryHint::Never),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_without_a_server_get_their_class() {
        let kind = |e: &SqlxError| classify(e).and_then(|c| c.kind());
        assert_eq!(
            kind(&SqlxError::PoolTimedOut),
            Some(FailureKind::Overloaded)
        );
        assert_eq!(kind(&SqlxError::PoolClosed), Some(FailureKind::Rejected));
        assert_eq!(kind(&SqlxError::RowNotFound), Some(FailureKind::Invalid));
        let refused = SqlxError::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(kind(&refused), Some(FailureKind::Connect));
        assert!(!classify(&SqlxError::PoolClosed).unwrap().is_retryable());
    }
}
