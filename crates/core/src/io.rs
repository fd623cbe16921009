//! `std::io::Error` classification by kind.

use std::io::ErrorKind;

use crate::{Class, FailureKind, RetryHint};

/// Classifies an I/O error by its [`ErrorKind`], or `None` for kinds that say nothing on
/// their own (`Other` and friends), so that the cause further down the chain can decide.
///
/// | io kind | class |
/// |---|---|
/// | `ConnectionRefused`, `HostUnreachable`, `NetworkUnreachable`, `NetworkDown`, `AddrNotAvailable`, `AddrInUse` | `Connect`, retry |
/// | `ConnectionReset`, `ConnectionAborted`, `BrokenPipe`, `UnexpectedEof`, `NotConnected` | `Disconnect`, retry (if idempotent) |
/// | `TimedOut`, `WouldBlock` | `Timeout`, retry |
/// | `Interrupted` | `Internal`, retry |
/// | `PermissionDenied`, `InvalidInput`, `Unsupported` | `Invalid`, never |
/// | `InvalidData`, `OutOfMemory` | `Internal`, never |
/// | anything else | `None` |
///
/// ```
/// use seawall_core::{io, FailureKind};
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert_eq!(io::classify(&refused).and_then(|c| c.kind()), Some(FailureKind::Connect));
/// assert_eq!(io::classify(&std::io::Error::other("?")), None);
/// ```
#[must_use]
pub fn classify(error: &std::io::Error) -> Option<Class> {
    classify_kind(error.kind())
}

/// Classifies an [`ErrorKind`]; see [`classify`].
#[must_use]
pub fn classify_kind(kind: ErrorKind) -> Option<Class> {
    use FailureKind as K;
    let (kind, hint) = match kind {
        ErrorKind::ConnectionRefused
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::NetworkDown
        | ErrorKind::AddrNotAvailable
        | ErrorKind::AddrInUse => (K::Connect, RetryHint::Retry),
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof
        | ErrorKind::NotConnected => (K::Disconnect, RetryHint::Retry),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => (K::Timeout, RetryHint::Retry),
        ErrorKind::Interrupted => (K::Internal, RetryHint::Retry),
        ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::Unsupported => {
            (K::Invalid, RetryHint::Never)
        }
        ErrorKind::InvalidData | ErrorKind::OutOfMemory => (K::Internal, RetryHint::Never),
        _ => return None,
    };
    Some(Class::failure(kind, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(kind: ErrorKind) -> Option<FailureKind> {
        classify_kind(kind).and_then(|c| c.kind())
    }

    #[test]
    fn connection_errors_split_by_whether_the_request_was_sent() {
        assert_eq!(
            kind_of(ErrorKind::ConnectionRefused),
            Some(FailureKind::Connect)
        );
        assert_eq!(
            kind_of(ErrorKind::HostUnreachable),
            Some(FailureKind::Connect)
        );
        assert_eq!(
            kind_of(ErrorKind::ConnectionReset),
            Some(FailureKind::Disconnect)
        );
        assert_eq!(
            kind_of(ErrorKind::BrokenPipe),
            Some(FailureKind::Disconnect)
        );
        assert_eq!(
            kind_of(ErrorKind::UnexpectedEof),
            Some(FailureKind::Disconnect)
        );
        assert_eq!(
            kind_of(ErrorKind::ConnectionAborted),
            Some(FailureKind::Disconnect)
        );
    }

    #[test]
    fn timeouts_are_retryable_timeouts() {
        let class = classify_kind(ErrorKind::TimedOut).unwrap();
        assert_eq!(
            class,
            Class::failure(FailureKind::Timeout, RetryHint::Retry)
        );
    }

    #[test]
    fn caller_mistakes_are_never_retried() {
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::InvalidInput,
            ErrorKind::Unsupported,
        ] {
            let class = classify_kind(kind).unwrap();
            assert_eq!(class.kind(), Some(FailureKind::Invalid));
            assert!(!class.is_retryable());
        }
    }

    #[test]
    fn vague_kinds_defer_to_the_cause() {
        assert_eq!(classify_kind(ErrorKind::Other), None);
        assert_eq!(classify_kind(ErrorKind::NotFound), None);
    }
}
