//! `seawall-example-service`: reads its configuration, creates its schema, serves until
//! SIGTERM or SIGINT, drains, closes the pool, flushes telemetry, and exits 0.

use std::process::ExitCode;

use seawall_example_service::{App, Config, Drained, Layers, Metrics, metrics, serve};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    // Configuration first: a bad value stops the service before anything starts or binds.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    let registry = prometheus::Registry::new();
    let telemetry = metrics::prometheus_reader(&registry).and_then(|reader| {
        let telemetry = seawall_telemetry::Config::from_env("seawall-example-service");
        seawall_telemetry::init_with_metrics_reader(telemetry, reader).map_err(|e| e.to_string())
    });
    let telemetry = match telemetry {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    println!("seawall-example-service configuration:\n{config}");
    let listen = config.listen_addr;
    let app = match App::new(config, Layers::Seawall, Metrics::global(registry)).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    println!("listening on http://{addr}");
    let drained = serve(app.clone(), listener, shutdown_signal()).await;
    app.database().pool.close();
    let flushed = telemetry.shutdown();
    if drained == Drained::GraceExpired {
        eprintln!("shutdown: the grace period ran out before every request finished");
    }
    if let Err(error) = flushed {
        eprintln!("shutdown: {error}");
    }
    println!("stopped");
    ExitCode::SUCCESS
}

/// SIGTERM (what orchestrators send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
