//! PostgreSQL: the schema, and one database call with its statement timeout.

use super::*;

/// The table, created on start. The unique idempotency key is what makes a repeated write
/// harmless: a second insert with the same key finds the first row instead of adding one.
pub(super) const SCHEMA: &str = "
    SELECT pg_advisory_xact_lock(7316400112);
    CREATE TABLE IF NOT EXISTS seawall_items (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key text   NOT NULL UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
        name            text   NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
        value           bigint NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE seawall_items ADD COLUMN IF NOT EXISTS request_id bigint;
";

/// Creates the table if it is missing; safe to run from many instances at once (an
/// advisory lock orders them).
pub async fn create_schema(pool: &Pool) -> Result<(), BoxError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction.batch_execute(SCHEMA).await?;
    transaction.commit().await?;
    Ok(())
}

/// Runs `query` with `statement_timeout` set on the connection for it alone: the three
/// statements are pipelined (one round trip), and the reset goes out with the query, so the
/// connection goes back to the pool with no timeout of this call's (a later recovery probe or
/// `/health` ping on it would otherwise inherit a few milliseconds' bound).
pub(super) async fn bounded<T>(
    client: &tokio_postgres::Client,
    statement_timeout: &str,
    query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    let (set, result, reset) = tokio::join!(
        client.batch_execute(statement_timeout),
        query,
        client.batch_execute("RESET statement_timeout")
    );
    set?;
    let result = result?;
    reset?;
    Ok(result)
}

/// One database call. The statement timeout is the attempt's share of the time left, set in
/// the same round trip as the query (the two are pipelined on the connection), so the server
/// gives up on a query nobody is waiting for.
pub(super) async fn run_db(
    pool: &Pool,
    attempt_timeout: Duration,
    request: WithDeadline<DbOp>,
) -> Result<DbReply, BoxError> {
    let budget = request
        .remaining()
        .map_or(attempt_timeout, |left| left.min(attempt_timeout));
    let statement_timeout = format!(
        "SET statement_timeout = {}",
        budget.as_millis().clamp(1, i32::MAX as u128)
    );
    let operation = match request.get_ref() {
        DbOp::Get(_) | DbOp::Ping => "SELECT",
        DbOp::Insert(_) => "INSERT",
    };
    record_db_operation(operation, Some("seawall_items"));
    let client = pool.get().await?;
    match request.into_inner() {
        DbOp::Get(id) => {
            let select = client
                .prepare_cached("SELECT id, name, value FROM seawall_items WHERE id = $1")
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
            let row = bounded(
                &client,
                &statement_timeout,
                client.query_opt(&select, &params),
            )
            .await?;
            Ok(DbReply::Found(row.as_ref().map(Item::from_row)))
        }
        DbOp::Ping => {
            bounded(&client, &statement_timeout, client.simple_query("SELECT 1")).await?;
            Ok(DbReply::Pong)
        }
        DbOp::Insert(new) => {
            let insert = client
                .prepare_cached(
                    "INSERT INTO seawall_items (idempotency_key, name, value, request_id) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                )
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&new.key, &new.name, &new.value, &new.request];
            let row = bounded(
                &client,
                &statement_timeout,
                client.query_opt(&insert, &params),
            )
            .await?;
            if let Some(row) = row {
                return Ok(DbReply::Created(Item {
                    id: row.get(0),
                    name: new.name,
                    value: new.value,
                }));
            }
            // The key was used before (the row is committed: the insert waited for it).
            let select = client
                .prepare_cached(
                    "SELECT id, name, value, request_id FROM seawall_items \
                     WHERE idempotency_key = $1",
                )
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&new.key];
            let row = bounded(
                &client,
                &statement_timeout,
                client.query_one(&select, &params),
            )
            .await?;
            let item = Item::from_row(&row);
            let by: Option<i64> = row.get(3);
            Ok(if item.name != new.name || item.value != new.value {
                DbReply::KeyReused
            } else if by == Some(new.request) {
                // Written by an earlier attempt of this same request, whose answer was lost
                // (a retry inside the pipeline): this request's own write, not a replay.
                DbReply::Created(item)
            } else {
                DbReply::Replayed(item)
            })
        }
    }
}
