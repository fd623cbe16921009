//! Retrying whole PostgreSQL transactions on serialization failures and deadlocks.
//!
//! Under `SERIALIZABLE` (or with row locks and `NOWAIT`), PostgreSQL refuses transactions
//! that conflict with concurrent ones: SQLSTATE `40001` (serialization failure), `40P01`
//! (deadlock), `55P03` (lock not available). The only correct response is to run the whole
//! transaction again, from `BEGIN`: retrying the failed statement alone reuses reads the
//! database has just declared stale. [`transaction`] does that, and nothing more:
//!
//! - the body runs in a fresh transaction each attempt; a contention error from any statement
//!   or from `COMMIT` rolls it back and, after a backoff, runs the body again;
//! - any other error is returned at once, the transaction rolled back;
//! - a `COMMIT` whose outcome is unknown (the connection dropped while committing) is never
//!   retried: the transaction may have committed, and running it again could apply it twice.
//!
//! The body must keep its side effects inside the transaction (it may run several times).
//! It returns a boxed future ([`TxFuture`]) that borrows the transaction; anything else it
//! needs is cloned into the future (an `Arc`, a `String`), once per attempt.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use seawall_classify::FailureKind;
use seawall_classify::schema;
use tokio_postgres::{Client, IsolationLevel, Transaction};

use crate::Backoff;

/// How [`transaction`] retries.
///
/// ```
/// use std::time::Duration;
/// use seawall_retry::postgres::TransactionRetry;
/// use tokio_postgres::IsolationLevel;
///
/// let retry = TransactionRetry::new()
///     .max_attempts(10)
///     .isolation(IsolationLevel::Serializable);
/// ```
#[derive(Debug, Clone)]
pub struct TransactionRetry {
    max_attempts: u32,
    backoff: Backoff,
    isolation: Option<IsolationLevel>,
}

impl Default for TransactionRetry {
    fn default() -> Self {
        Self::new()
    }
}

impl TransactionRetry {
    /// Up to 5 attempts, exponential backoff from 5 ms to 500 ms with decorrelated jitter
    /// (conflicting transactions must not retry in lockstep, or they conflict again), and the
    /// session's default isolation level.
    #[must_use]
    pub fn new() -> Self {
        TransactionRetry {
            max_attempts: 5,
            backoff: Backoff::exponential(Duration::from_millis(5))
                .max_delay(Duration::from_millis(500)),
            isolation: None,
        }
    }

    /// Attempts in all (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay schedule between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The isolation level each attempt's transaction starts with.
    #[must_use]
    pub fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation = Some(level);
        self
    }
}

/// The future a transaction body returns: boxed, so that the body can borrow the
/// transaction and the whole call stays `Send` (for `tokio::spawn`).
pub type TxFuture<'t, T> =
    Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 't>>;

/// `true` for the errors that call for running the whole transaction again.
fn is_contention(error: &tokio_postgres::Error) -> bool {
    let class = seawall_classify::postgres::classify(error);
    class.kind() == Some(FailureKind::Contention) && class.is_retryable()
}

/// Runs `body` in a transaction, running it again from the start when PostgreSQL refuses it
/// for contention; see the [module docs](self).
///
/// ```no_run
/// # async fn demo(client: &mut tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
/// use seawall_retry::postgres::{transaction, TransactionRetry};
/// use tokio_postgres::IsolationLevel;
///
/// let retry = TransactionRetry::new().isolation(IsolationLevel::Serializable);
/// let balance: i64 = transaction(client, &retry, |tx| {
///     Box::pin(async move {
///         let row = tx.query_one("SELECT balance FROM accounts WHERE id = 1", &[]).await?;
///         let balance: i64 = row.get(0);
///         tx.execute("UPDATE accounts SET balance = $1 WHERE id = 1", &[&(balance + 10)])
///             .await?;
///         Ok(balance + 10)
///     })
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn transaction<T, F>(
    client: &mut Client,
    retry: &TransactionRetry,
    mut body: F,
) -> Result<T, tokio_postgres::Error>
where
    F: for<'t> FnMut(&'t Transaction<'_>) -> TxFuture<'t, T>,
{
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut backoff = retry.backoff.start(seed);
    let mut attempt = 1;
    loop {
        let mut builder = client.build_transaction();
        if let Some(level) = retry.isolation {
            builder = builder.isolation_level(level);
        }
        let tx = builder.start().await?;
        let error = match body(&tx).await {
            // A refused COMMIT rolled back: safe to run again. A COMMIT cut off by a lost
            // connection is not contention, so it is returned, never retried.
            Ok(value) => match tx.commit().await {
                Ok(()) => return Ok(value),
                Err(error) => error,
            },
            Err(error) => {
                // Dropping the transaction rolls it back; say so explicitly while the
                // connection is known good, ignoring a failure to do so.
                let _ = tx.rollback().await;
                error
            }
        };
        if attempt >= retry.max_attempts || !is_contention(&error) {
            return Err(error);
        }
        let delay = backoff.next_delay(&retry.backoff);
        tracing::debug!(
            target: "seawall::retry",
            { { schema::RETRY_ATTEMPT } = attempt + 1, { schema::RETRY_DELAY_MS } = delay.as_millis() as u64 },
            "retrying transaction after contention"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}
