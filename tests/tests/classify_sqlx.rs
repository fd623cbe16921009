//! sqlx errors against the real PostgreSQL: each case is provoked on the server and the
//! class comes from the default classification alone (feature `sqlx`, no classifier of our
//! own), exactly as a pipeline around a sqlx client would see it.

use std::time::Duration;

use seawall_classify::{Class, FailureKind, RetryHint};
use seawall_tests::{database_url, unique_name};
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool};

/// The class every Seawall layer would give `err`.
fn class_of(err: sqlx::Error) -> Class {
    seawall_classify::classified(err).class()
}

async fn pool(max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_millis(500))
        .connect(&database_url())
        .await
        .expect("cannot connect to PostgreSQL with sqlx: is scripts/services.sh running?")
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|db| db.code())
        .map(|code| code.into_owned())
}

/// Checks that the server answered `code` and that the error is classified as `expected`;
/// returns the class.
fn assert_answered(err: sqlx::Error, code: &str, expected: Class) -> Class {
    assert_eq!(sqlstate(&err).as_deref(), Some(code), "{err:?}");
    let class = class_of(err);
    assert_eq!(class, expected);
    class
}

#[tokio::test]
async fn a_syntax_error_is_invalid_and_never_retried() {
    let pool = pool(2).await;
    let err = sqlx::query("SELEC 1").execute(&pool).await.unwrap_err();
    assert_answered(
        err,
        "42601",
        Class::failure(FailureKind::Invalid, RetryHint::Never),
    );
}

#[tokio::test]
async fn a_unique_violation_is_invalid_and_not_a_fault() {
    let pool = pool(2).await;
    let table = unique_name("seawall_sqlx_unique");
    pool.execute(format!("CREATE TABLE {table} (id int PRIMARY KEY)").as_str())
        .await
        .unwrap();
    let insert = format!("INSERT INTO {table} VALUES (1)");
    pool.execute(insert.as_str()).await.unwrap();
    let err = pool.execute(insert.as_str()).await.unwrap_err();
    pool.execute(format!("DROP TABLE {table}").as_str())
        .await
        .unwrap();
    assert_eq!(sqlstate(&err).as_deref(), Some("23505"));
    let class = class_of(err);
    assert_eq!(class.kind(), Some(FailureKind::Invalid));
    assert!(!class.is_fault() && !class.is_retryable());
}

#[tokio::test]
async fn a_serialization_failure_is_retryable_contention() {
    let pool = pool(4).await;
    let table = unique_name("seawall_sqlx_ssi");
    pool.execute(format!("CREATE TABLE {table} (v int)").as_str())
        .await
        .unwrap();
    let (mut a, mut b) = (pool.begin().await.unwrap(), pool.begin().await.unwrap());
    for tx in [&mut a, &mut b] {
        tx.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .await
            .unwrap();
        tx.execute(format!("SELECT count(*) FROM {table}").as_str())
            .await
            .unwrap();
    }
    // Each inserts what it read: a write skew that SSI refuses to one of them.
    let mut errors = Vec::new();
    for tx in [&mut a, &mut b] {
        if let Err(err) = tx
            .execute(format!("INSERT INTO {table} VALUES (1)").as_str())
            .await
        {
            errors.push(err);
        }
    }
    for tx in [a, b] {
        if let Err(err) = tx.commit().await {
            errors.push(err);
        }
    }
    pool.execute(format!("DROP TABLE {table}").as_str())
        .await
        .unwrap();
    assert_eq!(errors.len(), 1, "exactly one transaction fails: {errors:?}");
    let err = errors.pop().unwrap();
    let class = assert_answered(
        err,
        "40001",
        Class::failure(FailureKind::Contention, RetryHint::Retry),
    );
    assert!(class.is_retryable() && !class.is_fault());
}

#[tokio::test]
async fn a_terminated_backend_is_unavailable_and_retryable() {
    let pool = pool(2).await;
    let mut victim = pool.acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *victim)
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        sqlx::query("SELECT pg_sleep(30)")
            .execute(&mut *victim)
            .await
            .unwrap_err()
    });
    // Wait until the victim's query runs, then end its backend.
    let admin = pool.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
        )
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
        if active == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the query never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(killed);
    let err = running.await.unwrap();
    assert_answered(
        err,
        "57P01",
        Class::failure(FailureKind::Unavailable, RetryHint::Retry),
    );
}

#[tokio::test]
async fn a_role_over_its_connection_limit_is_overloaded() {
    let admin = pool(2).await;
    let role = "seawall_sqlx_limited";
    admin
        .execute(
            format!(
                "DO $$ BEGIN
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                        CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;
                    END IF;
                 END $$"
            )
            .as_str(),
        )
        .await
        .unwrap();
    let options: sqlx::postgres::PgConnectOptions = database_url().parse().unwrap();
    let options = options.username(role).database("postgres");
    let first = PgConnection::connect_with(&options)
        .await
        .expect("the first connection fits the limit");
    let err = PgConnection::connect_with(&options)
        .await
        .expect_err("a second connection exceeds the limit");
    drop(first);
    let class = assert_answered(
        err,
        "53300",
        Class::failure(FailureKind::Overloaded, RetryHint::Retry),
    );
    assert!(class.is_fault());
}

#[tokio::test]
async fn an_exhausted_pool_times_out_as_overloaded() {
    let pool = pool(1).await;
    let held = pool.acquire().await.unwrap();
    let err = pool.acquire().await.unwrap_err();
    drop(held);
    assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
    let class = class_of(err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Overloaded, RetryHint::Retry)
    );
    assert!(class.is_fault());
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure_and_a_closed_pool_a_local_refusal() {
    let port = seawall_tests::closed_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let err = PgConnection::connect(&url).await.unwrap_err();
    let class = class_of(err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Connect, RetryHint::Retry)
    );
    // Nothing was sent: even a request that is not idempotent may be retried.
    assert!(class.for_request(false).is_retryable());

    let pool = pool(1).await;
    pool.close().await;
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(err, sqlx::Error::PoolClosed), "{err:?}");
    let class = class_of(err);
    assert_eq!(class.kind(), Some(FailureKind::Rejected));
    assert!(!class.is_fault() && !class.is_retryable());
}
