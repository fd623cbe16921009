//! Runs the axum + sqlx example: `cargo run -p seawall-example-axum-sqlx`, against the local
//! PostgreSQL and Redis (or `DATABASE_URL`, `REDIS_URL`), on `ADDR` (127.0.0.1:3000).

use std::process::ExitCode;
use std::time::Duration;

use seawall_example_axum_sqlx::{AppState, app, create_schema};

#[tokio::main]
async fn main() -> ExitCode {
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let database = env(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let redis = env("REDIS_URL", "redis://127.0.0.1:6379/");
    let addr = env("ADDR", "127.0.0.1:3000");
    match run(&database, &redis, &addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(database: &str, redis: &str, addr: &str) -> Result<(), seawall::BoxError> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        // Well under the 2 s request budget: a database that is down is noticed by each of
        // the three attempts in time to answer 503, not 504.
        .acquire_timeout(Duration::from_millis(300))
        .connect(database)
        .await?;
    create_schema(&pool).await?;
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(redis)?).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(AppState::new(pool, redis)?)).await?;
    Ok(())
}
