//! seawall-classify against a real PostgreSQL: each class provoked for real.

use std::time::Duration;

use seawall_classify::{
    Class, ClassifyLayer, Error, FailureKind, RetryHint, known_class, postgres,
};
use seawall_tests::{closed_port, pg_config, pg_connect, pg_connect_with, unique_name, wait_until};
use tokio_postgres::error::SqlState;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn class_of(err: &tokio_postgres::Error) -> Class {
    let class = postgres::classify(err);
    // The default classifier, walking the error chain, must agree with the direct call.
    assert_eq!(
        known_class(err),
        Some(class),
        "default classifier disagrees on {err:?}"
    );
    class
}

#[tokio::test]
async fn syntax_error_is_invalid_and_never_retried() {
    let client = pg_connect().await;
    let err = client.simple_query("SELEC 1").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::SYNTAX_ERROR));
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Invalid, RetryHint::Never)
    );
    assert!(!class_of(&err).is_fault());
}

#[tokio::test]
async fn unique_violation_is_invalid() {
    let client = pg_connect().await;
    client
        .batch_execute("CREATE TEMP TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)")
        .await
        .unwrap();
    let err = client
        .execute("INSERT INTO items VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Invalid, RetryHint::Never)
    );
}

#[tokio::test]
async fn statement_timeout_cancel_is_a_retryable_timeout() {
    let client = pg_connect().await;
    client
        .batch_execute("SET statement_timeout = '50ms'")
        .await
        .unwrap();
    let err = client.simple_query("SELECT pg_sleep(5)").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED));
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Timeout, RetryHint::Retry)
    );
}

#[tokio::test]
async fn concurrent_serializable_transactions_fail_with_contention() {
    let setup = pg_connect().await;
    let table = unique_name("seawall_ssi");
    setup
        .batch_execute(&format!("CREATE TABLE {table} (v int)"))
        .await
        .unwrap();
    let (a, b) = (pg_connect().await, pg_connect().await);
    for client in [&a, &b] {
        client
            .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
            .unwrap();
        client
            .simple_query(&format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap();
    }
    // Each inserts what it read: a write skew that SSI must refuse for one of them.
    let mut errors = Vec::new();
    for client in [&a, &b] {
        if let Err(err) = client
            .batch_execute(&format!("INSERT INTO {table} VALUES (1)"))
            .await
        {
            errors.push(err);
        }
    }
    for client in [&a, &b] {
        if let Err(err) = client.batch_execute("COMMIT").await {
            errors.push(err);
        }
    }
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();

    assert_eq!(
        errors.len(),
        1,
        "exactly one transaction must fail: {errors:?}"
    );
    assert_eq!(errors[0].code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
    let class = class_of(&errors[0]);
    assert_eq!(
        class,
        Class::failure(FailureKind::Contention, RetryHint::Retry)
    );
    assert!(!class.is_fault());
}

#[tokio::test]
async fn deadlock_is_contention() {
    let setup = pg_connect().await;
    let table = unique_name("seawall_deadlock");
    setup
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v int); INSERT INTO {table} VALUES (1, 0), (2, 0)"
        ))
        .await
        .unwrap();
    let (a, b) = (pg_connect().await, pg_connect().await);
    for (client, row) in [(&a, 1), (&b, 2)] {
        client
            .batch_execute(&format!(
                "SET deadlock_timeout = '50ms'; BEGIN; UPDATE {table} SET v = 1 WHERE id = {row}"
            ))
            .await
            .unwrap();
    }
    let cross = |row: i32| format!("UPDATE {table} SET v = 2 WHERE id = {row}");
    let (to_two, to_one) = (cross(2), cross(1));
    let (ra, rb) = tokio::join!(a.batch_execute(&to_two), b.batch_execute(&to_one));
    let _ = a.batch_execute("ROLLBACK").await;
    let _ = b.batch_execute("ROLLBACK").await;
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();

    let errors: Vec<_> = [ra, rb].into_iter().filter_map(Result::err).collect();
    assert_eq!(
        errors.len(),
        1,
        "exactly one side is the deadlock victim: {errors:?}"
    );
    assert_eq!(errors[0].code(), Some(&SqlState::T_R_DEADLOCK_DETECTED));
    assert_eq!(
        class_of(&errors[0]),
        Class::failure(FailureKind::Contention, RetryHint::Retry)
    );
}

#[tokio::test]
async fn terminated_backend_is_unavailable_then_disconnected() {
    let victim = pg_connect().await;
    let admin = pg_connect().await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    let running = tokio::spawn(async move {
        let err = victim
            .simple_query("SELECT pg_sleep(30)")
            .await
            .unwrap_err();
        let after = victim.simple_query("SELECT 1").await.unwrap_err();
        (err, after)
    });
    wait_until(
        "the victim's query to run",
        Duration::from_secs(10),
        || async {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                    &[&pid],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                == 1
        },
    )
    .await;
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);

    let (err, after) = running.await.unwrap();
    assert_eq!(err.code(), Some(&SqlState::ADMIN_SHUTDOWN));
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Unavailable, RetryHint::Retry)
    );
    // The next query finds the connection gone: it may have been sent, so it is a
    // disconnect, retryable only for idempotent requests.
    assert!(after.is_closed(), "{after:?}");
    let class = class_of(&after);
    assert_eq!(class.kind(), Some(FailureKind::Disconnect));
    assert_eq!(
        class.for_request(false).retry_hint(),
        Some(RetryHint::Never)
    );
}

#[tokio::test]
async fn role_connection_limit_is_overload() {
    let admin = pg_connect().await;
    admin
        .batch_execute(
            "DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'seawall_limited') THEN
                    CREATE ROLE seawall_limited LOGIN CONNECTION LIMIT 1;
                END IF;
             END $$",
        )
        .await
        .unwrap();
    let mut config = pg_config();
    config.user("seawall_limited").dbname("postgres");
    let first = pg_connect_with(&config)
        .await
        .expect("first connection fits the limit");
    let err = pg_connect_with(&config)
        .await
        .expect_err("second connection exceeds the limit");
    drop(first);

    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS));
    let class = class_of(&err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Overloaded, RetryHint::Retry)
    );
    assert!(class.is_fault());
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_a_connect_failure() {
    let mut config = tokio_postgres::Config::new();
    config
        .user("postgres")
        .host("127.0.0.1")
        .port(closed_port())
        .connect_timeout(Duration::from_secs(5));
    let err = pg_connect_with(&config)
        .await
        .expect_err("nothing listens there");
    let class = class_of(&err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Connect, RetryHint::Retry)
    );
    // Nothing was sent, so even a non-idempotent request may be retried.
    assert!(class.for_request(false).is_retryable());
}

#[tokio::test]
async fn exhausted_pool_is_overload() {
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(seawall_tests::database_url());
    config.pool = Some(deadpool_postgres::PoolConfig {
        max_size: 1,
        timeouts: deadpool_postgres::Timeouts {
            wait: Some(Duration::from_millis(50)),
            ..Default::default()
        },
        ..Default::default()
    });
    let pool = config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .unwrap();
    let held = pool.get().await.unwrap();
    let err = pool.get().await.expect_err("the only connection is taken");
    drop(held);

    let class = postgres::classify_pool_error(&err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Overloaded, RetryHint::Retry)
    );
    assert_eq!(known_class(&err), Some(class));
}

#[tokio::test]
async fn classify_layer_wraps_real_client_errors() {
    let client = std::sync::Arc::new(pg_connect().await);
    let mut service = ServiceBuilder::new()
        .layer(ClassifyLayer::new())
        .service(service_fn(move |sql: &'static str| {
            let client = client.clone();
            async move { client.query(sql, &[]).await.map(|rows| rows.len()) }
        }));

    let rows = service
        .ready()
        .await
        .unwrap()
        .call("SELECT 1")
        .await
        .unwrap();
    assert_eq!(rows, 1);

    let err: Error = service
        .ready()
        .await
        .unwrap()
        .call("SELECT * FROM seawall_no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Invalid));
    let source = err.downcast_ref::<tokio_postgres::Error>().unwrap();
    assert_eq!(source.code(), Some(&SqlState::UNDEFINED_TABLE));
}
