//! Every name a layer emits (span names, event fields, metrics carried on events) is in the
//! schema: each layer is run through the paths that report something, under a subscriber
//! that collects the names, and any name missing from `seawall_classify::schema` fails.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::classify::schema;
use seawall::limit::adaptive::Aimd;
use seawall::prelude::*;
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Collects the names of every span and event field under a `seawall` target.
#[derive(Clone, Default)]
struct Names(Arc<Mutex<BTreeSet<String>>>);

impl Names {
    fn add(&self, metadata: &tracing::Metadata<'_>, span: bool) {
        if !metadata.target().starts_with("seawall") {
            return;
        }
        let mut names = self.0.lock().unwrap();
        if span {
            names.insert(format!("span {}", metadata.name()));
        }
        names.extend(metadata.fields().iter().map(|f| f.name().to_owned()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Names {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        self.add(event.metadata(), false);
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        self.add(attrs.metadata(), true);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn refused() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
}

async fn timeouts() {
    let slow = service_fn(|_: WithDeadline<()>| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, std::io::Error>(())
    });
    let attempt = AttemptTimeoutLayer::try_new(ms(10)).unwrap().layer(slow);
    let _ = attempt.oneshot(WithDeadline::new(())).await;
    let deadline = DeadlineLayer::try_new(ms(10)).unwrap().layer(slow);
    let _ = deadline.oneshot(WithDeadline::new(())).await;
}

async fn retries() {
    let failing = service_fn(|_: WithDeadline<()>| async { Err::<(), _>(refused()) });
    let retry = RetryLayer::builder()
        .backoff(Backoff::constant(ms(1)))
        .build()
        .unwrap();
    let _ = retry.layer(failing).oneshot(WithDeadline::new(())).await;
    // A budget with nothing in it.
    let broke = RetryLayer::builder()
        .budget(RetryBudget::new(Duration::from_secs(1), 0, 0.0).unwrap())
        .build()
        .unwrap();
    let _ = broke.layer(failing).oneshot(WithDeadline::new(())).await;
    // A deadline too close for the backoff.
    let _ = RetryLayer::builder()
        .backoff(Backoff::constant(ms(100)))
        .build()
        .unwrap()
        .layer(failing)
        .oneshot(WithDeadline::new(()).deadline_in(ms(50)))
        .await;
}

async fn breaker() {
    let failing = service_fn(|_: ()| async { Err::<(), _>(refused()) });
    let mut service = CircuitBreakerLayer::builder()
        .name("names")
        .consecutive_faults(1)
        .build()
        .unwrap()
        .layer(failing);
    for _ in 0..2 {
        let _ = service.ready().await.unwrap().call(()).await;
    }
}

async fn limit() {
    let slow = service_fn(|_: WithDeadline<()>| async {
        tokio::time::sleep(ms(20)).await;
        Ok::<_, std::io::Error>(())
    });
    let mut service = ConcurrencyLimitLayer::builder(1)
        .queue(1)
        .max_wait(ms(10))
        .build()
        .unwrap()
        .layer(slow);
    // One running, one waiting too long, one refused at once.
    let running = service.ready().await.unwrap().call(WithDeadline::new(()));
    let waiting = service.ready().await.unwrap().call(WithDeadline::new(()));
    let turned_away = service.ready().await.unwrap().call(WithDeadline::new(()));
    let _ = tokio::join!(running, waiting, turned_away);
    // One admitted from the queue.
    let mut service = ConcurrencyLimitLayer::builder(1)
        .queue(1)
        .max_wait(ms(100))
        .build()
        .unwrap()
        .layer(slow);
    let running = service.ready().await.unwrap().call(WithDeadline::new(()));
    let waiting = service.ready().await.unwrap().call(WithDeadline::new(()));
    let _ = tokio::join!(running, waiting);
    // An adaptive limit that moves.
    let failing = service_fn(|_: WithDeadline<()>| async { Err::<(), _>(refused()) });
    let mut adaptive = ConcurrencyLimitLayer::builder(8)
        .adaptive(Aimd::new(8, 1, 8).unwrap())
        .build()
        .unwrap()
        .layer(failing);
    for _ in 0..3 {
        let _ = adaptive
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(()))
            .await;
    }
}

async fn pipeline() {
    let db = StandardPipeline::postgres(2)
        .build()
        .unwrap()
        .layer(service_fn(|_: WithDeadline<()>| async {
            seawall::trace::record_db_operation("SELECT", Some("items"));
            Err::<(), _>(refused())
        }));
    let _ = db.oneshot(WithDeadline::new(())).await;
}

async fn hedges_and_fallbacks() {
    // The first call of each request is slow: hedged, and the hedge answers.
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let replica = service_fn(move |_: WithDeadline<()>| {
        let slow = calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(2);
        async move {
            tokio::time::sleep(if slow { ms(500) } else { ms(5) }).await;
            Ok::<_, Error>(())
        }
    });
    let hedged = HedgeLayer::builder(seawall::classify::AssumeIdempotent)
        .after(ms(20))
        .build()
        .unwrap()
        .layer(replica.clone());
    hedged.oneshot(WithDeadline::new(())).await.unwrap();
    let held_back = HedgeLayer::builder(seawall::classify::AssumeIdempotent)
        .after(ms(20))
        .gate(|| false)
        .build()
        .unwrap()
        .layer(replica);
    held_back.oneshot(WithDeadline::new(())).await.unwrap();

    // A failed primary answered by a fallback that fails too.
    let fallback =
        service_fn(|_: FallbackRequest<WithDeadline<()>>| async { Err::<(), _>(refused()) });
    let primary = service_fn(|_: WithDeadline<()>| async { Err::<(), _>(refused()) });
    let layer = FallbackLayer::builder(fallback).build().unwrap();
    let _ = layer.layer(primary).oneshot(WithDeadline::new(())).await;
}

/// A fleet-wide limit whose Redis does not answer (nothing listens on port 1): its decisions
/// are local, and reported.
#[cfg(feature = "fleet")]
async fn fleet() {
    let fleet = seawall::fleet::Fleet::builder("redis://127.0.0.1:1/")
        .build()
        .unwrap();
    let limit = seawall::fleet::RateLimitLayer::builder(100.0)
        .fleet(&fleet, "names")
        .build()
        .unwrap();
    let service = limit.layer(service_fn(|_: ()| async { Ok::<_, Error>(()) }));
    service.oneshot(()).await.unwrap();
    assert!(fleet.local_decisions() > 0);
}

#[cfg(not(feature = "fleet"))]
async fn fleet() {}

#[test]
fn every_name_a_layer_emits_is_in_the_schema() {
    let names = Names::default();
    let subscriber = tracing_subscriber::registry().with(names.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            timeouts().await;
            retries().await;
            breaker().await;
            limit().await;
            pipeline().await;
            hedges_and_fallbacks().await;
            fleet().await;
        });
    });
    let names = names.0.lock().unwrap().clone();
    let unknown: Vec<_> = names
        .iter()
        .filter(|name| match name.strip_prefix("span ") {
            Some(span) => !schema::SPANS.contains(&span),
            None => !schema::is_known_field(name),
        })
        .collect();
    assert!(unknown.is_empty(), "not in the schema: {unknown:?}");
    // The run reached every kind of report, so that the check above means something.
    for expected in [
        "span seawall.client",
        schema::DB_SYSTEM_NAME,
        schema::OTEL_KIND,
        schema::FIELD_RETRIES,
        schema::FIELD_BUDGET_EXHAUSTED,
        schema::FIELD_BREAKER_TRANSITIONS,
        schema::FIELD_REJECTIONS,
        schema::FIELD_LIMIT_QUEUE_WAIT,
        schema::BREAKER_OPEN_MS,
        schema::TIMEOUT_MS,
        schema::LIMIT_VALUE_ATTR,
        schema::LIMIT_QUEUE_WAIT_MS,
        schema::RETRY_DELAY_MS,
        schema::FIELD_HEDGES,
        schema::FIELD_HEDGE_WINS,
        schema::FIELD_HEDGES_SKIPPED,
        schema::HEDGE_REASON,
        schema::HEDGE_DELAY_MS,
        #[cfg(feature = "fleet")]
        schema::FIELD_FLEET_DECISIONS,
        #[cfg(feature = "fleet")]
        schema::FLEET_MODE,
    ] {
        assert!(
            names.contains(expected),
            "{expected} was not emitted: {names:?}"
        );
    }
}
