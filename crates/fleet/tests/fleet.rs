//! The rate limit and the concurrency budget: locally on tokio's paused clock, and
//! fleet-wide against the real Redis server (`REDIS_URL`, default the local one), with
//! several instances in one process, and through the fault proxy for Redis outages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_chaos::proxy::{Delay, Mode, Proxy};
use seawall_classify::{Error, FailureKind, RetryHint};
use seawall_fleet::error::{BudgetSpent, RateLimited};
use seawall_fleet::{ConcurrencyBudgetLayer, Fleet, RateLimitLayer};
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt, service_fn};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A name no other run of these tests uses, so that runs never share a limit.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn fleet(instance: &str) -> Fleet {
    Fleet::builder(redis_url())
        .prefix("seawall-test")
        .expected_replicas(2)
        .instance(unique(instance))
        .build()
        .unwrap()
}

fn echo() -> impl Service<u64, Response = u64, Error = Error, Future: Send> + Clone + Send {
    service_fn(|id: u64| async move { Ok::<_, Error>(id) })
}

#[tokio::test(start_paused = true)]
async fn a_local_rate_limit_admits_the_burst_then_one_per_interval() {
    let layer = RateLimitLayer::builder(10.0).burst(2).build().unwrap();
    let mut service = layer.layer(echo());
    for id in 0..2 {
        assert_eq!(service.ready().await.unwrap().call(id).await.unwrap(), id);
    }
    let refused = service.ready().await.unwrap().call(2).await.unwrap_err();
    assert_eq!(refused.kind(), Some(FailureKind::Rejected));
    let limited = refused
        .downcast_ref::<RateLimited>()
        .expect("a RateLimited");
    assert_eq!(limited.retry_after(), Duration::from_millis(100));
    assert!(!limited.shared());
    assert!(matches!(
        refused.class().retry_hint(),
        Some(RetryHint::RetryAfter(d)) if d == Duration::from_millis(100)
    ));
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(service.ready().await.unwrap().call(3).await.unwrap(), 3);
    assert_eq!(
        (layer.handle().admitted(), layer.handle().rejected()),
        (3, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn keys_are_limited_apart() {
    let layer = RateLimitLayer::builder(1.0)
        .burst(1)
        .key(|id: &u64| id % 2)
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    assert!(service.ready().await.unwrap().call(0).await.is_ok());
    assert!(
        service.ready().await.unwrap().call(1).await.is_ok(),
        "another key"
    );
    assert!(
        service.ready().await.unwrap().call(2).await.is_err(),
        "key 0 again"
    );
    assert!(
        service.ready().await.unwrap().call(3).await.is_err(),
        "key 1 again"
    );
}

#[test]
fn bad_settings_are_refused_at_build() {
    let refused = |result: Result<(), seawall_classify::ConfigError>, setting: &str| {
        let error = result.unwrap_err();
        assert!(error.to_string().contains(setting), "{error}");
    };
    refused(RateLimitLayer::builder(0.0).build().map(drop), "rate");
    refused(RateLimitLayer::builder(f64::NAN).build().map(drop), "rate");
    refused(
        RateLimitLayer::builder(10.0).burst(0).build().map(drop),
        "burst",
    );
    refused(
        RateLimitLayer::builder(10.0)
            .burst(4)
            .lease(5)
            .build()
            .map(drop),
        "lease",
    );
    refused(ConcurrencyBudgetLayer::builder(0).build().map(drop), "max");
    refused(
        ConcurrencyBudgetLayer::builder(4)
            .lease(Duration::from_millis(10))
            .build()
            .map(drop),
        "lease",
    );
    refused(Fleet::builder("not a url").build().map(drop), "url");
    refused(
        Fleet::builder(redis_url())
            .expected_replicas(0)
            .build()
            .map(drop),
        "expected_replicas",
    );
}

/// A service whose calls wait until the test lets them go, counting those in flight.
#[derive(Clone)]
struct Held {
    gate: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
}

impl Held {
    fn new() -> Self {
        Held {
            gate: Arc::new(Semaphore::new(0)),
            in_flight: Arc::default(),
        }
    }

    fn service(
        &self,
    ) -> impl Service<u64, Response = u64, Error = Error, Future: Send> + Clone + use<> {
        let this = self.clone();
        service_fn(move |id: u64| {
            let this = this.clone();
            async move {
                this.in_flight.fetch_add(1, Ordering::SeqCst);
                this.gate.acquire().await.unwrap().forget();
                this.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Error>(id)
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_local_budget_refuses_past_its_calls_in_flight() {
    let held = Held::new();
    let layer = ConcurrencyBudgetLayer::builder(2).build().unwrap();
    let service = layer.layer(held.service());
    let mut calls: Vec<_> = (0..2)
        .map(|id| tokio::spawn(service.clone().oneshot(id)))
        .collect();
    while held.in_flight.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    let refused = service.clone().oneshot(9).await.unwrap_err();
    assert_eq!(refused.kind(), Some(FailureKind::Rejected));
    assert!(!refused.downcast_ref::<BudgetSpent>().unwrap().shared());
    // One call ends: its permit serves the next.
    held.gate.add_permits(1);
    let first = calls.remove(0).await.unwrap().unwrap();
    assert!(first < 2);
    calls.push(tokio::spawn(service.clone().oneshot(3)));
    while held.in_flight.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    assert!(
        service.clone().oneshot(10).await.is_err(),
        "two in flight again"
    );
    held.gate.add_permits(2);
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(
        (layer.handle().admitted(), layer.handle().rejected()),
        (3, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_fleet_rate() {
    // Two instances, each asking as fast as it can for 2 s, of a limit of 100 a second.
    let name = unique("rate");
    let instances: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|instance| {
            RateLimitLayer::builder(100.0)
                .burst(10)
                .lease(2)
                .fleet(&fleet(instance), name.clone())
                .build()
                .unwrap()
        })
        .collect();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for layer in &instances {
        let mut service = layer.layer(echo());
        tasks.push(tokio::spawn(async move {
            while tokio::time::Instant::now() < until {
                let _ = service.ready().await.unwrap().call(0).await;
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let admitted: u64 = instances
        .iter()
        .map(|layer| layer.handle().admitted())
        .sum();
    // 2 s at 100 a second plus the burst; leases may leave up to one token each unused.
    assert!(
        (195..=212).contains(&admitted),
        "{admitted} admitted across two instances"
    );
    for layer in &instances {
        assert!(layer.handle().admitted() > 50, "both instances were served");
        assert!(layer.handle().rejected() > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_fleet_budget() {
    let name = unique("budget");
    let (fleet_a, fleet_b) = (fleet("a"), fleet("b"));
    let budget = |fleet: &Fleet| {
        ConcurrencyBudgetLayer::builder(3)
            .fleet(fleet, name.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (budget(&fleet_a), budget(&fleet_b));
    let held = Held::new();
    let calls: Vec<_> = (0..3)
        .map(|id| tokio::spawn(a.layer(held.service()).oneshot(id)))
        .collect();
    while held.in_flight.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(a.handle().held(), 3);
    // The other instance finds the fleet's three taken.
    let refused = b.layer(echo()).oneshot(9).await.unwrap_err();
    let spent = refused
        .downcast_ref::<BudgetSpent>()
        .expect("a BudgetSpent");
    assert!(spent.shared(), "{refused}");
    // One call ends: its permit goes back, and the other instance gets it.
    held.gate.add_permits(1);
    while held.in_flight.load(Ordering::SeqCst) > 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut admitted = false;
    for _ in 0..100 {
        if b.layer(echo()).oneshot(10).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted, "the permit given back reached the other instance");
    held.gate.add_permits(2);
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fleet_a.local_decisions() + fleet_b.local_decisions(), 0);
}

#[test]
fn the_permits_of_an_instance_that_stops_return_within_the_lease() {
    let name = unique("lease");
    let lease = Duration::from_millis(600);
    // An instance takes the whole budget, then its runtime stops without a word: nothing
    // renews or removes its permits any more, as after a `kill -9`.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let held = Held::new();
    doomed.block_on(async {
        let layer = ConcurrencyBudgetLayer::builder(2)
            .fleet(&fleet("doomed"), name.clone())
            .lease(lease)
            .build()
            .unwrap();
        for id in 0..2 {
            tokio::spawn(layer.layer(held.service()).oneshot(id));
        }
        while held.in_flight.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    doomed.shutdown_background();

    let survivor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    survivor.block_on(async {
        let layer = ConcurrencyBudgetLayer::builder(2)
            .fleet(&fleet("survivor"), name.clone())
            .lease(lease)
            .build()
            .unwrap();
        let started = tokio::time::Instant::now();
        assert!(
            layer.layer(echo()).oneshot(1).await.is_err(),
            "the stopped instance still holds both"
        );
        loop {
            if layer.layer(echo()).oneshot(2).await.is_ok() {
                break;
            }
            assert!(
                started.elapsed() < lease * 2,
                "the permits did not return within the lease"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Sends `n` calls, 2 ms apart, and counts those that failed.
async fn failures(service: &mut BoxCloneSyncService<u64, u64, Error>, n: u64) -> usize {
    let mut failed = 0;
    for id in 0..n {
        if service.ready().await.unwrap().call(id).await.is_err() {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_the_local_share_applies_and_no_call_fails() {
    let proxy = Proxy::start(redis_addr().await).await.unwrap();
    let fleet = Fleet::builder(format!("redis://{}/", proxy.addr()))
        .prefix("seawall-test")
        .expected_replicas(2)
        .open_duration(Duration::from_millis(200))
        .build()
        .unwrap();
    let name = unique("away");
    let rate = RateLimitLayer::builder(1_000.0)
        .fleet(&fleet, name.clone())
        .build()
        .unwrap();
    let budget = ConcurrencyBudgetLayer::builder(10)
        .fleet(&fleet, name)
        .build()
        .unwrap();
    let mut service = BoxCloneSyncService::new(rate.layer(budget.layer(echo())));
    assert_eq!(failures(&mut service, 50).await, 0);
    assert!(fleet.shared_decisions() > 0 && fleet.local_decisions() == 0);

    proxy.down();
    proxy.settled().await;
    assert_eq!(
        failures(&mut service, 200).await,
        0,
        "Redis away fails no call"
    );
    assert!(fleet.is_local());
    assert!(fleet.local_decisions() > 0);

    proxy.up();
    proxy.settled().await;
    let shared = fleet.shared_decisions();
    let mut back = false;
    for _ in 0..100 {
        assert_eq!(failures(&mut service, 10).await, 0);
        if fleet.shared_decisions() > shared && !fleet.is_local() {
            back = true;
            break;
        }
    }
    assert!(back, "shared mode resumed: {fleet:?}");
    proxy.shutdown().await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    #[test]
    fn the_keys_stay_at_most_max_keys_under_a_flood_of_new_keys(
        max_keys in 1usize..64,
        keys in 1u64..400,
        per_second in 0.01f64..1_000.0,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let layer = RateLimitLayer::builder(per_second)
                .burst(1)
                .key(|id: &u64| *id)
                .max_keys(max_keys)
                .build()
                .unwrap();
            let mut service = layer.layer(echo());
            for id in 0..keys {
                let _ = service.ready().await.unwrap().call(id).await;
                proptest::prop_assert!(layer.handle().keys() <= max_keys, "{} keys", layer.handle().keys());
            }
            Ok(())
        })?;
    }
}

/// A fleet whose Redis is 200 ms away through the fault proxy (operations may take a second):
/// a call polled once is still waiting for Redis when it is dropped, however loaded the
/// machine (on loopback alone, a reply could come back before the first poll).
async fn distant_fleet(instance: &str) -> (Proxy, Fleet) {
    let proxy = Proxy::start(redis_addr().await).await.unwrap();
    let fleet = Fleet::builder(format!("redis://{}/", proxy.addr()))
        .prefix("seawall-test")
        .expected_replicas(2)
        .instance(unique(instance))
        .op_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(fleet.connect().await, "Redis answers");
    proxy.set_mode(Mode::Latency {
        up: Delay::default(),
        down: Delay::fixed(Duration::from_millis(200)),
    });
    (proxy, fleet)
}

/// Polls a call through `service` once, so that its first Redis operation goes out, and
/// drops it there: a caller that gave up (its deadline) while the fleet was asked.
async fn cancelled_in_flight<S: Service<u64>>(service: &mut S, id: u64) {
    let call = service.ready().await.ok().unwrap().call(id);
    let mut call = tokio_test::task::spawn(call);
    assert!(call.poll().is_pending(), "waits for Redis");
    drop(call);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_call_cancelled_during_its_acquire_gives_its_permit_back_at_once() {
    let name = unique("cancelled");
    let (proxy, fleet) = distant_fleet("cancelled").await;
    let layer = ConcurrencyBudgetLayer::builder(1)
        .fleet(&fleet, name)
        .lease(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    cancelled_in_flight(&mut service, 1).await;
    // Its permit, taken on Redis or not, is released at once, not when its minute ends.
    let mut admitted = false;
    for _ in 0..100 {
        if layer.layer(echo()).oneshot(2).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted, "the cancelled call's permit came back");
    assert_eq!(fleet.local_decisions(), 0);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_call_cancelled_during_its_lease_fetch_loses_no_tokens() {
    let name = unique("rate-cancelled");
    let (proxy, fleet) = distant_fleet("rate-cancelled").await;
    // A burst of 10, leased 10 at a time, refilling one a minute: the first fetch takes the
    // whole burst.
    let layer = RateLimitLayer::builder(1.0 / 60.0)
        .burst(10)
        .lease(10)
        .fleet(&fleet, name)
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    cancelled_in_flight(&mut service, 0).await;
    // The tokens the cancelled fetch leased serve the next callers.
    let mut admitted = 0;
    for id in 1..=20 {
        if layer.layer(echo()).oneshot(id).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 10,
        "the burst, none of it lost with the cancelled caller"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_after_a_cancelled_one_waits_for_its_lease_fetch_rather_than_sending_another() {
    // Redis 200 ms away: the cancelled caller's fetch is still out when the next caller comes.
    let (proxy, fleet) = distant_fleet("rate-one-fetch").await;
    let layer = RateLimitLayer::builder(1.0 / 60.0)
        .burst(10)
        .lease(10)
        .fleet(&fleet, unique("rate-one-fetch"))
        .build()
        .unwrap();
    cancelled_in_flight(&mut layer.layer(echo()), 0).await;
    // The next caller is answered from the cancelled caller's fetch: no second fetch was sent
    // while it was out (one would be refused by Redis, the first having taken the burst, and
    // its refusal could land first and refuse callers the first fetch's tokens were for).
    assert!(layer.layer(echo()).oneshot(1).await.is_ok());
    assert_eq!(
        layer.handle().redis_fetches(),
        1,
        "one fetch served the next caller"
    );
    let mut admitted = 1;
    for id in 2..=20 {
        if layer.layer(echo()).oneshot(id).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "the burst, none of it lost");
    proxy.shutdown().await;
}

/// The address of the test Redis.
async fn redis_addr() -> std::net::SocketAddr {
    let url = redis_url();
    let host = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    tokio::net::lookup_host(host).await.unwrap().next().unwrap()
}

#[test]
fn a_renewer_that_died_with_its_runtime_is_replaced() {
    let name = unique("renewer");
    let lease = Duration::from_millis(300);
    let fleet = fleet("renewer");
    let layer = ConcurrencyBudgetLayer::builder(2)
        .fleet(&fleet, name.clone())
        .lease(lease)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The connection lives in the runtime that stays.
    assert!(runtime.block_on(fleet.connect()), "Redis answers");
    // The first call starts the renewer in a runtime that then ends (setup code, a test).
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    setup.block_on(async { layer.layer(echo()).oneshot(0).await.unwrap() });
    drop(setup);

    runtime.block_on(async {
        let held = Held::new();
        let call = tokio::spawn(layer.layer(held.service()).oneshot(1));
        while held.in_flight.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Three leases later the permit is still held on Redis: renewed by a new renewer.
        tokio::time::sleep(lease * 3).await;
        let other = ConcurrencyBudgetLayer::builder(1)
            .fleet(&fleet, name.clone())
            .lease(lease)
            .build()
            .unwrap();
        let refused = other.layer(echo()).oneshot(2).await.unwrap_err();
        assert!(
            refused
                .downcast_ref::<BudgetSpent>()
                .is_some_and(BudgetSpent::shared),
            "the held permit was renewed: {refused}"
        );
        held.gate.add_permits(1);
        call.await.unwrap().unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_do_not_renew_every_held_permit() {
    let name = unique("writes");
    let fleet = fleet("writes");
    assert!(fleet.connect().await, "Redis answers");
    let layer = ConcurrencyBudgetLayer::builder(20)
        .fleet(&fleet, name)
        .build()
        .unwrap();
    // Ten long calls hold ten permits while a hundred short ones come and go.
    let held = Held::new();
    let long: Vec<_> = (0..10)
        .map(|id| tokio::spawn(layer.layer(held.service()).oneshot(id)))
        .collect();
    while held.in_flight.load(Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = layer.handle().redis_writes();
    for id in 100..200 {
        layer.layer(echo()).oneshot(id).await.unwrap();
        // Let the renewer take each release in turn, as calls spread over time do.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let per_call = (layer.handle().redis_writes() - before) as f64 / 100.0;
    eprintln!("{per_call:.2} Redis operations per call");
    // An acquire and a release each; renewals every third of the 5 s lease only.
    assert!(per_call <= 2.1, "{per_call} Redis writes per call");
    held.gate.add_permits(10);
    for call in long {
        call.await.unwrap().unwrap();
    }
}

/// A TCP forwarder to the local Redis that holds each new connection for `hold` before it
/// forwards anything: a Redis whose connection takes longer to make than an operation may
/// take (TLS, another zone). Loopback only; it ends with the test.
async fn slow_to_connect(hold: Duration) -> std::net::SocketAddr {
    let upstream = seawall_tests_redis_addr();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}

fn seawall_tests_redis_addr() -> std::net::SocketAddr {
    let url = redis_url();
    let host_port = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .unwrap()
        .next()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_slower_than_the_operation_timeout_is_still_made() {
    let addr = slow_to_connect(Duration::from_millis(300)).await;
    let fleet = Fleet::builder(format!("redis://{addr}/"))
        .prefix("seawall-test")
        .op_timeout(Duration::from_millis(50))
        .instance(unique("slow-connect"))
        .build()
        .unwrap();
    let layer = RateLimitLayer::builder(1_000.0)
        .fleet(&fleet, unique("slow-connect"))
        .build()
        .unwrap();
    // The first decisions come before the connection is made: local, none refused.
    layer.layer(echo()).oneshot(0).await.unwrap();
    assert!(fleet.local_decisions() >= 1);
    // The connect goes on in the background, beyond the 50 ms each operation may take, and
    // the decisions are shared once it is made (a connect made inside the operation's
    // timeout was cancelled every time, and the fleet stayed local for good).
    let mut shared = false;
    for id in 1..200 {
        let _ = layer.layer(echo()).oneshot(id).await;
        if fleet.shared_decisions() > 0 {
            shared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(shared, "the fleet never shared a decision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_on_one_key_share_one_lease_fetch() {
    let fleet = fleet("fetches");
    assert!(fleet.connect().await, "Redis answers");
    // Leases of one token: one fetch per call if each caller fetched for itself.
    let layer = RateLimitLayer::builder(100_000.0)
        .burst(1_000)
        .lease(1)
        .fleet(&fleet, unique("fetches"))
        .build()
        .unwrap();
    let gate = Arc::new(tokio::sync::Barrier::new(64));
    let calls: Vec<_> = (0..64)
        .map(|id| {
            let (gate, service) = (gate.clone(), layer.layer(echo()));
            tokio::spawn(async move {
                gate.wait().await;
                service.oneshot(id).await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let fetches = layer.handle().redis_fetches();
    eprintln!("{fetches} lease fetches for 64 callers");
    assert!(fetches < 32, "{fetches} fetches for 64 callers");
}
