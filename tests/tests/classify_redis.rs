//! seawall-classify against a real Redis: each class provoked for real.

use std::time::Duration;

use redis::AsyncConnectionConfig;
use seawall_classify::{Class, FailureKind, RetryHint, known_class, redis as classify_redis};
use seawall_tests::{closed_port, redis_client, unique_name};

fn class_of(err: &redis::RedisError) -> Class {
    let class = classify_redis::classify(err);
    assert_eq!(
        known_class(err),
        Some(class),
        "default classifier disagrees on {err:?}"
    );
    class
}

async fn connect() -> redis::aio::MultiplexedConnection {
    redis_client()
        .get_multiplexed_async_connection()
        .await
        .expect("cannot connect to Redis: is scripts/services.sh running?")
}

#[tokio::test]
async fn wrong_type_is_invalid() {
    let mut conn = connect().await;
    let key = unique_name("seawall:wrongtype");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = redis::cmd("LPUSH")
        .arg(&key)
        .arg("x")
        .query_async::<i64>(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Invalid, RetryHint::Never)
    );
}

#[tokio::test]
async fn unknown_command_is_invalid() {
    let mut conn = connect().await;
    let err = redis::cmd("SEAWALLNOSUCHCOMMAND")
        .query_async::<()>(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Invalid, RetryHint::Never)
    );
    assert!(!class_of(&err).is_fault());
}

#[tokio::test]
async fn connection_refused_is_a_connect_failure() {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", closed_port())).unwrap();
    let err = client
        .get_multiplexed_async_connection()
        .await
        .expect_err("nothing listens there");
    let class = class_of(&err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Connect, RetryHint::Retry)
    );
    assert!(class.for_request(false).is_retryable());
}

#[tokio::test]
async fn killed_client_connection_is_a_disconnect() {
    let mut victim = connect().await;
    let mut admin = connect().await;
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut victim)
        .await
        .unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);

    let err = redis::cmd("PING")
        .query_async::<String>(&mut victim)
        .await
        .unwrap_err();
    let class = class_of(&err);
    assert_eq!(class.kind(), Some(FailureKind::Disconnect), "{err:?}");
    assert!(class.for_request(true).is_retryable());
    assert_eq!(
        class.for_request(false).retry_hint(),
        Some(RetryHint::Never)
    );
}

#[tokio::test]
async fn response_timeout_is_a_timeout() {
    let config =
        AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_millis(100)));
    let mut conn = redis_client()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    // BLPOP on an empty list blocks on the server for one second: longer than we wait.
    let err = redis::cmd("BLPOP")
        .arg(unique_name("seawall:empty"))
        .arg(1)
        .query_async::<Option<(String, String)>>(&mut conn)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Timeout, RetryHint::Retry)
    );
}
