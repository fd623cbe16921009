//! Shared by the service's tests: a service in-process behind fault proxies, and a small
//! keep-alive HTTP client.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;

use seawall_chaos::proxy::Proxy;
#[allow(unused_imports)]
pub use seawall_example_service::client::{Client, Reply, request};
use seawall_example_service::{App, Config, Layers, Metrics, Running};

/// The admin token of the test services.
pub const TOKEN: &str = "test-admin-token-0123456789";

/// A service whose PostgreSQL and Redis are reached through fault proxies.
pub struct Harness {
    pub pg: Proxy,
    pub redis: Proxy,
    pub running: Running,
    pub app: App,
}

/// The variables of a test service: short timeouts so faults show within a test's time.
pub fn test_vars(pg: SocketAddr, redis: SocketAddr) -> HashMap<String, String> {
    let server = seawall_tests::pg_config();
    let user = server.get_user().unwrap_or("postgres");
    let db = server.get_dbname().unwrap_or("postgres");
    [
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", format!("postgres://{user}@{pg}/{db}")),
        ("REDIS_URL", format!("redis://{redis}/")),
        ("DB_POOL_MAX", "8".to_owned()),
        ("DB_POOL_WAIT_MS", "500".to_owned()),
        ("REQUEST_TIMEOUT_MS", "2000".to_owned()),
        ("DB_TIMEOUT_MS", "500".to_owned()),
        ("REDIS_TIMEOUT_MS", "100".to_owned()),
        ("CACHE_TTL_S", "60".to_owned()),
        ("SHUTDOWN_GRACE_MS", "3000".to_owned()),
        ("ADMIN_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(change: impl FnOnce(&mut HashMap<String, String>)) -> Harness {
        let pg = Proxy::start(seawall_tests::pg_socket_addr()).await.unwrap();
        let redis = Proxy::start(seawall_tests::redis_socket_addr())
            .await
            .unwrap();
        let mut vars = test_vars(pg.addr(), redis.addr());
        change(&mut vars);
        let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let app = App::new(config, Layers::Seawall, Metrics::standalone().unwrap())
            .await
            .unwrap();
        let running = Running::start(app.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Harness {
            pg,
            redis,
            running,
            app,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.running.addr)
    }
}

/// The service binary, started as its README runs it, killed when dropped unless it was
/// stopped with [`Binary::terminate`] first.
pub struct Binary {
    child: Option<std::process::Child>,
    /// Its standard output, line by line, after the lines read before it listened.
    pub lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// What it printed up to `listening on ...`.
    pub printed: Vec<String>,
}

impl Binary {
    /// Starts it with `vars` (and no `RUST_LOG` or OTLP endpoint unless `vars` sets them),
    /// and waits until it prints that it listens.
    pub async fn start(vars: &HashMap<String, String>) -> Binary {
        use std::io::BufRead as _;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_seawall-example-service"));
        for name in [
            "RUST_LOG",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_TRACES_EXPORTER",
        ] {
            command.env_remove(name);
        }
        let mut child = command
            .envs(vars)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut binary = Binary {
            child: Some(child),
            lines,
            printed: Vec::new(),
        };
        let wait = std::time::Duration::from_secs(20);
        while let Ok(Some(line)) = tokio::time::timeout(wait, binary.lines.recv()).await {
            let listening = line.starts_with("listening on");
            binary.printed.push(line);
            if listening {
                return binary;
            }
        }
        panic!("the service did not start: {:?}", binary.printed);
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
