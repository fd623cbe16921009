//! Export to an endpoint nobody listens on never blocks or fails the instrumented calls.

use std::time::Duration;

use seawall_telemetry::{Config, Exporter, init};
use tracing::Instrument;

#[test]
fn an_unreachable_collector_does_not_block_calls() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let guard = init(Config {
        service_name: "seawall-test".to_owned(),
        exporter: Exporter::Otlp(format!("http://127.0.0.1:{port}")),
        log_filter: "info".to_owned(),
        trace_filter: None,
        logs: false,
        export_timeout: Duration::from_millis(500),
    })
    .expect("telemetry set up even if the collector is down");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answered = runtime.block_on(async {
        let mut answered = 0;
        for i in 0..2_000 {
            let span = tracing::info_span!("seawall.request", "seawall.layer" = "retry", i);
            answered += async { 1 }.instrument(span).await;
        }
        answered
    });
    assert_eq!(answered, 2_000);

    // Shutting down reports the failed export rather than hanging on it.
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = guard.shutdown();
        let _ = done.send(());
    });
    wait.recv_timeout(Duration::from_secs(30))
        .expect("shutdown returned within the export timeouts");
}
