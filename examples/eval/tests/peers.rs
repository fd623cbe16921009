//! The peer stacks behave as their libraries do, so that the comparison is fair: on the
//! simulated clock, tower-resilience's breaker opens on its preset's rule, refuses for its
//! 10 s wait, then lets exactly one trial call through; a failed trial opens it again, a
//! successful one closes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use seawall::{Class, Error, FailureKind, Priority, RetryHint};
use seawall_eval::peers::{Clock, Sizing, resilience_stack};
use seawall_eval::scenario::Client;
use seawall_eval::sim::{Request, id_of, request};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A dependency that fails while `down` is set, counting the calls it receives.
fn dependency(down: Arc<AtomicBool>, calls: Arc<AtomicUsize>) -> Client {
    BoxCloneSyncService::new(tower::service_fn(move |call: Request| {
        calls.fetch_add(1, Ordering::SeqCst);
        let failing = down.load(Ordering::SeqCst);
        async move {
            if failing {
                Err(Error::new(
                    Class::failure(FailureKind::Unavailable, RetryHint::Retry),
                    std::io::Error::other("down"),
                ))
            } else {
                Ok(id_of(&call))
            }
        }
    }))
}

async fn call(client: &Client) -> Result<u64, Error> {
    client
        .clone()
        .oneshot(request(1, None, Priority::Default))
        .await
}

fn refused(result: &Result<u64, Error>) -> bool {
    matches!(result, Err(e) if e.kind() == Some(FailureKind::Rejected))
}

#[tokio::test(start_paused = true)]
async fn the_simulated_open_timer_keeps_the_breakers_rule() {
    let (down, calls) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let sizing = Sizing {
        limit: 10,
        attempt_timeout: secs(1),
        deadline: secs(2),
    };
    let (client, breaker) = resilience_stack(
        dependency(down.clone(), calls.clone()),
        sizing,
        Clock::Simulated,
    );

    // Failing calls (each retried by the stack's retry layer) open the breaker once its
    // window of 20 calls is a quarter failures.
    let mut made = 0;
    while breaker.state() != seawall::breaker::State::Open {
        assert!(call(&client).await.is_err());
        made += 1;
        assert!(made < 20, "the breaker never opened");
    }
    let at_open = calls.load(Ordering::SeqCst);

    // Open: refused at once, the dependency untouched, until the 10 s wait is over.
    tokio::time::advance(secs(9)).await;
    for _ in 0..5 {
        assert!(refused(&call(&client).await));
    }
    assert_eq!(calls.load(Ordering::SeqCst), at_open);

    // After the wait: one trial call; it fails, so the breaker opens again for 10 s.
    tokio::time::advance(secs(2)).await;
    assert!(call(&client).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), at_open + 1, "one trial");
    assert_eq!(breaker.state(), seawall::breaker::State::Open);
    assert!(refused(&call(&client).await));
    assert_eq!(calls.load(Ordering::SeqCst), at_open + 1);

    // The dependency is back; after the next wait, the trial succeeds and closes it.
    down.store(false, Ordering::SeqCst);
    tokio::time::advance(secs(10)).await;
    assert_eq!(call(&client).await.unwrap(), 1);
    assert_eq!(breaker.state(), seawall::breaker::State::Closed);
    for _ in 0..5 {
        assert_eq!(call(&client).await.unwrap(), 1);
    }
    assert_eq!(calls.load(Ordering::SeqCst), at_open + 7);
}
