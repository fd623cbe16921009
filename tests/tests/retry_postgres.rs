//! Retrying whole transactions against a real PostgreSQL: concurrent SERIALIZABLE
//! increments conflict, the helper runs them again, and every increment lands exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use seawall_retry::postgres::{TransactionRetry, transaction};
use seawall_tests::{pg_connect, unique_name};
use tokio_postgres::IsolationLevel;

const WORKERS: u32 = 8;
const INCREMENTS: u32 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_serializable_increments_converge_exactly_once() {
    let setup = pg_connect().await;
    let counter = unique_name("seawall_counter");
    let ledger = unique_name("seawall_ledger");
    setup
        .batch_execute(&format!(
            "CREATE TABLE {counter} (id int PRIMARY KEY, n bigint NOT NULL);
             INSERT INTO {counter} VALUES (1, 0);
             CREATE TABLE {ledger} (worker int, step int, PRIMARY KEY (worker, step));"
        ))
        .await
        .unwrap();

    let attempts = Arc::new(AtomicU32::new(0));
    let retry = TransactionRetry::new()
        .max_attempts(100)
        .isolation(IsolationLevel::Serializable);
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (counter, ledger, retry, attempts) = (
                counter.clone(),
                ledger.clone(),
                retry.clone(),
                attempts.clone(),
            );
            tokio::spawn(async move {
                let mut client = pg_connect().await;
                for step in 0..INCREMENTS as i32 {
                    transaction(&mut client, &retry, |tx| {
                        let (counter, ledger, attempts) =
                            (counter.clone(), ledger.clone(), attempts.clone());
                        Box::pin(async move {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            let n: i64 = tx
                                .query_one(&format!("SELECT n FROM {counter} WHERE id = 1"), &[])
                                .await?
                                .get(0);
                            tx.execute(
                                &format!("UPDATE {counter} SET n = $1 WHERE id = 1"),
                                &[&(n + 1)],
                            )
                            .await?;
                            tx.execute(
                                &format!("INSERT INTO {ledger} VALUES ($1, $2)"),
                                &[&(worker as i32), &step],
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .await
                    .expect("the transaction converges");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }

    let n: i64 = setup
        .query_one(&format!("SELECT n FROM {counter} WHERE id = 1"), &[])
        .await
        .unwrap()
        .get(0);
    let rows: i64 = setup
        .query_one(&format!("SELECT count(*) FROM {ledger}"), &[])
        .await
        .unwrap()
        .get(0);
    setup
        .batch_execute(&format!("DROP TABLE {counter}; DROP TABLE {ledger};"))
        .await
        .unwrap();

    let expected = i64::from(WORKERS * INCREMENTS);
    assert_eq!(n, expected, "every increment landed exactly once");
    assert_eq!(rows, expected, "every ledger row written exactly once");
    let attempts = attempts.load(Ordering::SeqCst);
    assert!(
        attempts > WORKERS * INCREMENTS,
        "{attempts} attempts: the workload never conflicted, so nothing was retried"
    );
}

#[tokio::test]
async fn other_errors_are_returned_at_once() {
    let mut client = pg_connect().await;
    let attempts = AtomicU32::new(0);
    let attempts = Arc::new(attempts);
    let err = transaction(&mut client, &TransactionRetry::new(), |tx| {
        let attempts = attempts.clone();
        Box::pin(async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            tx.execute("SELEC 1", &[]).await?;
            Ok(())
        })
    })
    .await
    .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::SYNTAX_ERROR)
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}
