//! SQLSTATE codes: the one table by which PostgreSQL errors are classified, whichever client
//! reported them (`tokio-postgres` with feature `postgres`, sqlx with feature `sqlx`, or your
//! own: any five-character code is accepted). Needs no client library.
//!
//! | SQLSTATE | condition | class |
//! |---|---|---|
//! | `08001`, `08004` | unable to connect, connection rejected | `Connect`, retry |
//! | `08007` | transaction resolution unknown | `Disconnect`, never |
//! | `08P01` | protocol violation | `Internal`, never |
//! | other `08xxx` | connection failure | `Disconnect`, retry (if idempotent) |
//! | `53300`, `53400` | too many connections, configuration limit | `Overloaded`, retry |
//! | `53200`, other `53xxx` | out of memory, insufficient resources | `Overloaded`, retry |
//! | `53100` | disk full | `Unavailable`, never (does not heal within a retry) |
//! | `57014` | query canceled (`statement_timeout`) | `Timeout`, retry |
//! | `57P01`, `57P02` | admin or crash shutdown (`pg_terminate_backend`) | `Unavailable`, retry |
//! | `57P03` | cannot connect now (starting up, recovering) | `Unavailable`, retry |
//! | `57P05` | idle session timeout | `Disconnect`, retry (if idempotent) |
//! | `57P04` | database dropped | `Invalid`, never |
//! | other `57xxx` | operator intervention | `Unavailable`, retry |
//! | `40001`, `40P01` | serialization failure, deadlock | `Contention`, retry the transaction |
//! | `55P03` | lock not available (`NOWAIT`, `lock_timeout`) | `Contention`, retry |
//! | `72000` | snapshot too old | `Contention`, retry |
//! | `40003` | statement completion unknown | `Disconnect`, never |
//! | other `40xxx` | transaction rollback | `Contention`, retry |
//! | `25006` | read-only transaction (a replica, mid-failover) | `Unavailable`, retry |
//! | `23xxx` | constraint violations | `Invalid`, never |
//! | `22xxx` | data exceptions | `Invalid`, never |
//! | `42xxx` | syntax error or access rule violation | `Invalid`, never |
//! | `28xxx` | invalid authorization | `Invalid`, never |
//! | `0A`, `20`, `21`, `24`, `25`, `26`, `27`, `2B`, `2D`, `2F`, `34`, `38`, `39`, `3B`, `3D`, `3F`, `44`, `54`, `55`, `P0` classes | the request cannot work as sent | `Invalid`, never |
//! | `58xxx`, `XXxxx`, `F0xxx`, `HVxxx`, anything else | system or internal error | `Internal`, never |
//!

use crate::{Class, FailureKind, RetryHint};

/// Classifies a SQLSTATE given as its five-character code; see the [module docs](self) for
/// the table. Any string is accepted: one that is not a known code is `Internal`, never
/// retried.
///
/// ```
/// use seawall_classify::{sqlstate, FailureKind, RetryHint};
///
/// assert_eq!(sqlstate::classify("40001").kind(), Some(FailureKind::Contention));
/// assert_eq!(sqlstate::classify("57P01").kind(), Some(FailureKind::Unavailable));
/// assert_eq!(sqlstate::classify("23505").retry_hint(), Some(RetryHint::Never));
/// ```
#[must_use]
pub fn classify(code: &str) -> Class {
    use FailureKind as K;
    use RetryHint::{Never, Retry};
    let class = code.get(..2).unwrap_or("");
    let (kind, hint) = match code {
        "08001" | "08004" => (K::Connect, Retry),
        "08007" => (K::Disconnect, Never),
        "08P01" => (K::Internal, Never),
        "53100" => (K::Unavailable, Never),
        "57014" => (K::Timeout, Retry),
        "57P04" => (K::Invalid, Never),
        "57P05" => (K::Disconnect, Retry),
        "55P03" | "72000" => (K::Contention, Retry),
        "40003" => (K::Disconnect, Never),
        "25006" => (K::Unavailable, Retry),
        _ => match class {
            "08" => (K::Disconnect, Retry),
            "53" => (K::Overloaded, Retry),
            "57" => (K::Unavailable, Retry),
            "40" => (K::Contention, Retry),
            "0A" | "20" | "21" | "22" | "23" | "24" | "25" | "26" | "27" | "28" | "2B" | "2D"
            | "2F" | "34" | "38" | "39" | "3B" | "3D" | "3F" | "42" | "44" | "54" | "55" | "P0" => {
                (K::Invalid, Never)
            }
            _ => (K::Internal, Never),
        },
    };
    Class::failure(kind, hint)
}
