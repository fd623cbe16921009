//! The binary as users run it: a bad variable stops it before it binds; SIGTERM under load
//! lets requests in flight finish, refuses new ones, and exits 0; `/metrics` carries the
//! Seawall layers' metrics through the process-wide telemetry.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Client, test_vars};
use http::StatusCode;
use seawall_chaos::proxy::{Delay, Mode, Proxy};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_seawall-example-service");

fn free_port() -> u16 {
    seawall_tests::closed_port()
}

#[test]
fn a_bad_variable_stops_start_up_with_one_line() {
    let port = free_port();
    let output = Command::new(BINARY)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DB_POOL_MAX", "lots")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        "invalid configuration: DB_POOL_MAX is `lots`, not a whole number (expected an integer from 1 to 1024)"
    );
    assert!(output.stdout.is_empty(), "nothing started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_exits_zero() {
    // Every answer from PostgreSQL arrives 300 ms late, so requests are surely in flight
    // when the signal comes.
    let pg = Proxy::start(seawall_tests::pg_socket_addr()).await.unwrap();
    let redis = Proxy::start(seawall_tests::redis_socket_addr())
        .await
        .unwrap();
    let port = free_port();
    let mut vars = test_vars(pg.addr(), redis.addr());
    vars.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    vars.insert("REQUEST_TIMEOUT_MS".into(), "5000".into());
    vars.insert("DB_TIMEOUT_MS".into(), "3000".into());
    vars.insert("SHUTDOWN_GRACE_MS".into(), "5000".into());
    vars.insert("DB_POOL_MAX".into(), "16".into());
    vars.insert("DB_POOL_WAIT_MS".into(), "4000".into());
    // Traces printed on standard output, the dependencies' spans included.
    vars.insert(
        "RUST_LOG".into(),
        "warn,seawall_example_service=info,seawall=debug".into(),
    );
    vars.insert("OTEL_TRACES_EXPORTER".into(), "console".into());
    let mut binary = common::Binary::start(&vars).await;
    let printed = binary.printed.clone();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        printed
            .iter()
            .any(|l| l == &format!("listening on http://{addr}")),
        "{printed:?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("DATABASE_URL=postgres://"))
    );

    // The process-wide metrics carry the layers' gauges and the HTTP server's histogram.
    let mut client = Client::new(addr);
    assert_eq!(client.get("/health").await.unwrap().status, StatusCode::OK);
    let metrics = client.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    for name in [
        "seawall_breaker_state{",
        "seawall_limit_in_flight{",
        "http_server_request_duration_seconds_count{",
    ] {
        assert!(text.contains(name), "{name} missing");
    }

    pg.set_mode(Mode::Latency {
        up: Delay::default(),
        down: Delay::fixed(Duration::from_millis(300)),
    });
    let prefix = seawall_tests::unique_name("drain");
    let writes: Vec<_> = (0..16)
        .map(|i| {
            let mut client = Client::new(addr);
            let key = format!("{prefix}_{i}");
            tokio::spawn(async move { (key.clone(), client.post_item(&key, "drained", i).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let signalled = Instant::now();
    let stopped = tokio::spawn(async move {
        let status = binary.terminate().await;
        (status, binary)
    });
    // New connections are refused soon after the signal.
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every request in flight finished with its answer.
    let db = seawall_tests::pg_connect().await;
    for write in writes {
        let (key, reply) = write.await.unwrap();
        let reply = reply.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED, "{key}");
        let id = reply.json()["id"].as_i64().unwrap();
        let row = db
            .query_one(
                "SELECT id FROM seawall_items WHERE idempotency_key = $1",
                &[&key],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), id);
    }
    let (status, mut binary) = stopped.await.unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = Vec::new();
    while let Ok(Some(line)) =
        tokio::time::timeout(Duration::from_secs(5), binary.lines.recv()).await
    {
        rest.push(line);
    }
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
    // Each request was a server span named by its route; each dependency call a
    // client span under it (named after its operation), in the same trace.
    let spans = rest.join("\n");
    let trace_of = |name: &str| {
        let at = spans
            .find(&format!("Name         : {name}\n"))
            .unwrap_or_else(|| panic!("no span {name}"));
        let trace = spans[at..].split("TraceId      : ").nth(1).unwrap();
        trace[..32].to_owned()
    };
    let _ = trace_of("POST /items");
    assert!(spans.contains("Kind         : Server"));
    let dependency = trace_of("INSERT seawall_items");
    assert!(
        spans
            .matches(&format!("TraceId      : {dependency}"))
            .count()
            >= 2,
        "the dependency's span shares its trace with the request's"
    );
}
