//! The operations files against the real thing: the binary's `/metrics` passes
//! `promtool check metrics` and names what the schema says; a real Prometheus (Debian's
//! package, installed by `scripts/services.sh`) scrapes the binary on loopback while
//! PostgreSQL is cut off through the fault proxy, and the breaker-open alert of
//! `ops/prometheus/alerts.yml` fires, then resolves after recovery; every query of
//! `ops/grafana/seawall.json` is valid PromQL and the main ones return data.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Client, test_vars};
use seawall::classify::schema;
use seawall_chaos::proxy::Proxy;
use tokio::time::Instant;

const OPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ops");

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tool(name: &str) -> PathBuf {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "`{name}` is not installed: run scripts/services.sh (it installs Debian's prometheus package)"
    );
    PathBuf::from(String::from_utf8(found.stdout).unwrap().trim())
}

/// The service binary behind fault proxies, metrics on `/metrics`.
async fn start_service(pg: &Proxy, redis: &Proxy) -> (common::Binary, u16) {
    let port = seawall_tests::closed_port();
    let mut vars = test_vars(pg.addr(), redis.addr());
    vars.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    (common::Binary::start(&vars).await, port)
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Steady reads of an item that is not cached: a Redis and a PostgreSQL call each.
fn traffic(port: u16, until: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = Client::new(format!("127.0.0.1:{port}").parse().unwrap());
        while !*until.borrow() {
            let _ = client.get("/items/987654321").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Every metric family in a Prometheus text exposition: name -> (type, label names).
fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut families: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.entry(name.to_owned()).or_default().0 = kind.to_owned();
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, _) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|base| families.get(*base).is_some_and(|f| f.0 == "histogram"))
                })
                .unwrap_or(name);
            let entry = families.entry(family.to_owned()).or_default();
            for pair in labels.trim_end_matches('}').split("\",") {
                if let Some((label, _)) = pair.split_once('=') {
                    entry.1.insert(label.to_owned());
                }
            }
        }
    }
    families
}

/// The Prometheus form of an OpenTelemetry attribute name.
fn label(attribute: &str) -> String {
    attribute.replace('.', "_")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_alerts_fire_and_resolve_on_a_real_prometheus() {
    let promtool = tool("promtool");
    let prometheus = tool("prometheus");
    let pg = Proxy::start(seawall_tests::pg_socket_addr()).await.unwrap();
    let redis = Proxy::start(seawall_tests::redis_socket_addr())
        .await
        .unwrap();
    let (_service, port) = start_service(&pg, &redis).await;

    // Prometheus, its rules the shipped ones with every `for` shortened to 2 s (their full
    // lengths are what `promtool test rules` checks), scraping every second.
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(seawall_tests::unique_name("prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = std::fs::read_to_string(Path::new(OPS).join("prometheus/alerts.yml")).unwrap();
    let rules: String = rules
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 2s\n", &line[..line.len() - line.trim_start().len()]),
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(dir.join("alerts.yml"), rules).unwrap();
    let mut config = std::fs::File::create(dir.join("prometheus.yml")).unwrap();
    write!(
        config,
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\n\
         scrape_configs:\n  - job_name: seawall-example\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    .unwrap();
    drop(config);
    let web = seawall_tests::closed_port();
    let _prometheus = Killed(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api: std::net::SocketAddr = format!("127.0.0.1:{web}").parse().unwrap();
    let query = {
        move |promql: String| {
            let mut api = Client::new(api);
            async move {
                let reply = api
                    .get(&format!("/api/v1/query?query={}", encode(&promql)))
                    .await
                    .ok()?;
                serde_json::from_slice::<serde_json::Value>(&reply.body).ok()
            }
        }
    };
    let firing = {
        move || {
            let mut api = Client::new(api);
            async move {
                let Ok(reply) = api.get("/api/v1/alerts").await else {
                    return Vec::new();
                };
                let Ok(reply) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
                    return Vec::new();
                };
                reply["data"]["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["state"] == "firing")
                    .map(|a| {
                        format!(
                            "{} {}",
                            a["labels"]["alertname"].as_str().unwrap_or(""),
                            a["labels"]["seawall_breaker_name"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
            }
        }
    };

    let (stop, until) = tokio::sync::watch::channel(false);
    let load = traffic(port, until);
    seawall_tests::wait_until(
        "Prometheus scrapes the service",
        Duration::from_secs(30),
        || async move {
            query("up{job=\"seawall-example\"}".into())
                .await
                .is_some_and(|r| r["data"]["result"][0]["value"][1] == "1")
        },
    )
    .await;

    // PostgreSQL cut off: the breaker opens, and the alert fires.
    pg.down();
    let cut = Instant::now();
    seawall_tests::wait_until(
        "the breaker-open alert fires",
        Duration::from_secs(30),
        || async move {
            firing()
                .await
                .contains(&"SeawallBreakerOpen postgres".to_owned())
        },
    )
    .await;
    let fired_after = cut.elapsed();

    // /metrics during the outage, every family present: a Prometheus parser accepts it, and
    // each Seawall family has the schema's name, type, unit suffix and attributes.
    let mut client = Client::new(format!("127.0.0.1:{port}").parse().unwrap());
    let text = String::from_utf8(client.get("/metrics").await.unwrap().body.to_vec()).unwrap();
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let found = families(&text);
    let expected: [(&str, &str, &[&str]); 9] = [
        (
            "seawall_client_duration_seconds",
            "histogram",
            &[schema::DEPENDENCY, schema::CLASS, schema::ERROR_TYPE],
        ),
        (
            "seawall_retries_total",
            "counter",
            &[schema::DEPENDENCY, schema::ERROR_TYPE],
        ),
        (
            "seawall_rejections_total",
            "counter",
            &[schema::LAYER, schema::ERROR_TYPE, schema::BREAKER_NAME],
        ),
        (
            "seawall_breaker_transitions_total",
            "counter",
            &[
                schema::BREAKER_NAME,
                schema::BREAKER_STATE,
                schema::BREAKER_PREVIOUS_STATE,
            ],
        ),
        ("seawall_breaker_state", "gauge", &[schema::BREAKER_NAME]),
        (
            "seawall_limit_in_flight",
            "gauge",
            &[schema::DB_SYSTEM_NAME],
        ),
        ("seawall_limit_queued", "gauge", &[schema::DB_SYSTEM_NAME]),
        ("seawall_limit_value", "gauge", &[schema::DB_SYSTEM_NAME]),
        (
            "http_server_request_duration_seconds",
            "histogram",
            &[
                "http.request.method",
                "http.route",
                "http.response.status_code",
            ],
        ),
    ];
    let infrastructure: BTreeSet<String> = [
        "job",
        "instance",
        "le",
        "otel_scope_name",
        "otel_scope_version",
        "otel_scope_schema_url",
    ]
    .map(String::from)
    .into();
    for (name, kind, attributes) in expected {
        let (found_kind, labels) = found
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"));
        assert_eq!(found_kind, kind, "{name}");
        let expected: BTreeSet<String> = attributes.iter().map(|a| label(a)).collect();
        let extra: Vec<_> = labels
            .difference(&expected)
            .filter(|l| !infrastructure.contains(*l))
            .collect();
        assert!(
            extra.is_empty(),
            "{name} has labels outside the schema: {extra:?}"
        );
        assert!(
            expected.iter().all(|l| labels.contains(l)),
            "{name}: expected labels {expected:?}, found {labels:?}"
        );
    }
    // Every Seawall family is in the schema's list of metrics.
    for name in found.keys().filter(|n| n.starts_with("seawall_")) {
        let base = ["_seconds", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            schema::METRICS.iter().any(|m| label(m) == base),
            "{name} is not a metric of the schema"
        );
    }

    // Every dashboard query is valid PromQL; the rate and latency panels have data.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(OPS).join("grafana/seawall.json")).unwrap(),
    )
    .unwrap();
    let exprs: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("").to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert!(exprs.len() >= 8, "{exprs:?}");
    for (title, expr) in &exprs {
        let promql = expr
            .replace("$__rate_interval", "30s")
            .replace("$job", "seawall-example");
        let reply = query(promql.clone()).await.expect("Prometheus answers");
        assert_eq!(reply["status"], "success", "{title}: {promql}: {reply}");
        let has_data = reply["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        if title.starts_with("Calls")
            || title.starts_with("Latency")
            || title.starts_with("Breaker state")
        {
            assert!(has_data, "{title}: {promql} returned nothing");
        }
    }

    // PostgreSQL back: the breaker closes and the alert resolves.
    pg.up();
    let restored = Instant::now();
    seawall_tests::wait_until(
        "the breaker-open alert resolves",
        Duration::from_secs(30),
        || async move {
            !firing()
                .await
                .contains(&"SeawallBreakerOpen postgres".to_owned())
        },
    )
    .await;
    eprintln!(
        "alert fired {:.1} s after the cut; resolved {:.1} s after recovery",
        fired_after.as_secs_f64(),
        restored.elapsed().as_secs_f64()
    );
    let _ = stop.send(true);
    load.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
