//! When the fallback answers, and when it must not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{Class, Error, Failure, FailureKind, RetryHint, WithDeadline, cause_ref};
use seawall_fallback::error::FallbackFailed;
use seawall_fallback::{DEFAULT_TRIGGERS, FallbackLayer, FallbackRequest};
use tower::{Layer, ServiceExt, service_fn};

fn failing(kind: FailureKind) -> Error {
    Error::new(
        Class::failure(kind, RetryHint::Retry),
        std::io::Error::other(format!("primary: {}", kind.as_str())),
    )
}

/// A fallback answering `"fallback"` and counting its calls.
fn counted_fallback(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    FallbackRequest<u32>,
    Response = &'static str,
    Error = Error,
    Future = impl Future<Output = Result<&'static str, Error>> + Send,
> + Clone
+ Send {
    service_fn(move |_: FallbackRequest<u32>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Error>("fallback") }
    })
}

async fn call_failing_with(
    kind: FailureKind,
    calls: &Arc<AtomicUsize>,
) -> Result<&'static str, Error> {
    let primary = service_fn(move |_: u32| async move { Err::<&'static str, _>(failing(kind)) });
    FallbackLayer::builder(counted_fallback(calls.clone()))
        .build()
        .unwrap()
        .layer(primary)
        .oneshot(1)
        .await
}

#[tokio::test]
async fn each_default_trigger_answers_from_the_fallback() {
    for kind in DEFAULT_TRIGGERS {
        let calls = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            call_failing_with(kind, &calls).await.unwrap(),
            "fallback",
            "{kind:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{kind:?}");
    }
}

#[tokio::test]
async fn the_callers_mistakes_and_other_kinds_reach_the_caller() {
    for kind in FailureKind::ALL
        .into_iter()
        .filter(|kind| !DEFAULT_TRIGGERS.contains(kind))
    {
        let calls = Arc::new(AtomicUsize::new(0));
        let error = call_failing_with(kind, &calls).await.unwrap_err();
        assert_eq!(error.kind(), Some(kind));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{kind:?}: fallback called");
    }
    // A primary that answers is never second-guessed.
    let calls = Arc::new(AtomicUsize::new(0));
    let answered = FallbackLayer::builder(counted_fallback(calls.clone()))
        .build()
        .unwrap()
        .layer(service_fn(|_: u32| async { Ok::<_, Error>("primary") }))
        .oneshot(1)
        .await;
    assert_eq!(answered.unwrap(), "primary");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn chosen_kinds_replace_the_defaults() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = FallbackLayer::builder(counted_fallback(calls.clone()))
        .on([FailureKind::Internal])
        .build()
        .unwrap();
    let internal = layer
        .layer(service_fn(|_: u32| async {
            Err::<&str, _>(failing(FailureKind::Internal))
        }))
        .oneshot(1)
        .await;
    assert_eq!(internal.unwrap(), "fallback");
    let timeout = layer
        .layer(service_fn(|_: u32| async {
            Err::<&str, _>(failing(FailureKind::Timeout))
        }))
        .oneshot(1)
        .await;
    assert_eq!(timeout.unwrap_err().kind(), Some(FailureKind::Timeout));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_fallback_for_the_callers_mistakes_or_for_nothing_is_refused_at_build() {
    let fallback = service_fn(|_: FallbackRequest<u32>| async { Ok::<_, Error>(()) });
    let err = FallbackLayer::builder(fallback)
        .on([FailureKind::Timeout, FailureKind::Invalid])
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "on");
    assert!(err.to_string().contains("`Invalid`"), "{err}");
    let err = FallbackLayer::builder(fallback).on([]).build().unwrap_err();
    assert!(err.to_string().contains("no failure kind"), "{err}");
}

#[tokio::test]
async fn the_fallback_gets_the_class_and_a_copy_of_the_request_when_kept() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let fallback = service_fn(move |fallback: FallbackRequest<u32>| {
        record
            .lock()
            .unwrap()
            .push((fallback.request().copied(), fallback.failure()));
        async { Ok::<_, Error>(0_u32) }
    });
    let primary = service_fn(|_: u32| async { Err::<u32, _>(failing(FailureKind::Unavailable)) });
    let failure = Failure::new(FailureKind::Unavailable, RetryHint::Retry);

    let without = FallbackLayer::builder(fallback.clone()).build().unwrap();
    without.layer(primary).oneshot(7).await.unwrap();
    let kept = FallbackLayer::builder(fallback)
        .keep_request()
        .build()
        .unwrap();
    kept.layer(primary).oneshot(7).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [(None, failure), (Some(7), failure)]);
}

#[tokio::test]
async fn a_failed_fallback_returns_the_primarys_error_with_the_fallbacks_attached() {
    let fallback = service_fn(|_: FallbackRequest<u32>| async {
        Err::<u32, _>(std::io::Error::other("the cache is down too"))
    });
    let error = FallbackLayer::builder(fallback)
        .build()
        .unwrap()
        .layer(service_fn(|_: u32| async {
            Err::<u32, _>(failing(FailureKind::Connect))
        }))
        .oneshot(1)
        .await
        .unwrap_err();
    // The primary's class, and its error in the chain.
    assert_eq!(error.kind(), Some(FailureKind::Connect));
    let failed = cause_ref::<FallbackFailed>(error.source_ref()).expect("FallbackFailed");
    assert!(
        failed
            .fallback()
            .to_string()
            .contains("the cache is down too")
    );
    let primary = cause_ref::<std::io::Error>(error.source_ref()).expect("the primary's error");
    assert_eq!(primary.to_string(), "primary: connect");
    assert!(
        error.to_string().contains("the fallback failed too"),
        "{error}"
    );
}

/// A future that counts its drops, never finishing.
struct Hanging(Arc<AtomicUsize>);

impl Future for Hanging {
    type Output = Result<u32, Error>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Dropping the call while the primary or the fallback runs drops what runs, and the layer
/// keeps nothing of it: the next call is answered as usual.
#[tokio::test(start_paused = true)]
async fn a_call_dropped_midway_leaves_nothing_behind() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (d1, d2) = (drops.clone(), drops.clone());
    let fallback = service_fn(move |fallback: FallbackRequest<u32>| {
        let hang = fallback.request() == Some(&1);
        let drops = d1.clone();
        async move { if hang { Hanging(drops).await } else { Ok(2) } }
    });
    let primary = service_fn(move |request: u32| {
        let drops = d2.clone();
        async move {
            if request == 0 {
                Hanging(drops).await
            } else {
                Err(failing(FailureKind::Timeout))
            }
        }
    });
    let service = FallbackLayer::builder(fallback)
        .keep_request()
        .build()
        .unwrap()
        .layer(primary);
    let limit = Duration::from_millis(10);
    // Dropped while the primary hangs, then while the fallback hangs.
    for request in [0, 1] {
        let call = service.clone().oneshot(request);
        assert!(tokio::time::timeout(limit, call).await.is_err());
    }
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(service.clone().oneshot(2).await.unwrap(), 2);
}

#[tokio::test]
async fn works_with_deadline_requests() {
    let primary =
        service_fn(|_: WithDeadline<u32>| async { Err::<u32, _>(failing(FailureKind::Rejected)) });
    let fallback = service_fn(|fallback: FallbackRequest<WithDeadline<u32>>| async move {
        Ok::<_, Error>(fallback.into_request().map_or(0, |r| *r.get_ref()) + 1)
    });
    let answer = FallbackLayer::builder(fallback)
        .keep_request()
        .build()
        .unwrap()
        .layer(primary)
        .oneshot(WithDeadline::new(41))
        .await;
    assert_eq!(answer.unwrap(), 42);
}

/// The typical use: around a breaker, a refusal of the open breaker is answered from the
/// fallback at once, and the dependency is not called.
#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_answered_from_the_fallback_without_calling_the_dependency() {
    let dependency_calls = Arc::new(AtomicUsize::new(0));
    let counted = dependency_calls.clone();
    let database = service_fn(move |_: u32| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Error>("fresh") }
    });
    let breaker = seawall_breaker::CircuitBreakerLayer::builder()
        .build()
        .unwrap();
    let handle = breaker.handle();
    let fallback_calls = Arc::new(AtomicUsize::new(0));
    let reads = FallbackLayer::builder(counted_fallback(fallback_calls.clone()))
        .build()
        .unwrap()
        .layer(breaker.layer(database));

    assert_eq!(reads.clone().oneshot(1).await.unwrap(), "fresh");
    handle.force_open();
    let started = tokio::time::Instant::now();
    assert_eq!(reads.clone().oneshot(1).await.unwrap(), "fallback");
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(dependency_calls.load(Ordering::SeqCst), 1);
    assert_eq!(fallback_calls.load(Ordering::SeqCst), 1);
}
