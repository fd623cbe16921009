//! The smallest Seawall program: one standard pipeline around one Redis client.
//!
//! ```sh
//! cargo run -p seawall-example-minimal     # REDIS_URL (redis://127.0.0.1:6379/)
//! ```

use std::time::Duration;

use redis::aio::ConnectionManager;
use seawall::{StandardPipeline, WithDeadline};
use tower::{Layer, ServiceExt};

/// A Redis command: the pipeline may send it again, so it is `Clone`.
#[derive(Debug, Clone)]
enum Command {
    Set(String, String),
    Get(String),
}

async fn run(mut redis: ConnectionManager, command: Command) -> redis::RedisResult<Option<String>> {
    match command {
        Command::Set(key, value) => {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query_async(&mut redis)
                .await
        }
        Command::Get(key) => redis::cmd("GET").arg(key).query_async(&mut redis).await,
    }
}

#[tokio::main]
async fn main() -> Result<(), seawall::BoxError> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let redis = ConnectionManager::new(redis::Client::open(url)?).await?;

    // The Redis preset: 64 calls in flight, 500 ms per attempt, 2 s per request, retries with
    // jitter within a budget, a circuit breaker, and redis-rs's errors classified.
    let pipeline = StandardPipeline::redis(64).build()?;
    let breaker = pipeline.breaker().expect("the preset has a breaker");
    let cache = pipeline.layer(tower::service_fn(move |call: WithDeadline<Command>| {
        run(redis.clone(), call.into_inner())
    }));

    // One deadline for the whole request, given to every call it makes.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    let set = Command::Set("seawall:minimal".into(), "hello".into());
    cache
        .clone()
        .oneshot(WithDeadline::new(set).deadline_at(deadline))
        .await?;
    let get = Command::Get("seawall:minimal".into());
    match cache
        .oneshot(WithDeadline::new(get).deadline_at(deadline))
        .await
    {
        Ok(value) => println!("seawall:minimal = {value:?}"),
        // Every failure carries its class: what happened, and whether trying again may help.
        Err(error) => println!("failed: {} ({error})", error.class()),
    }
    println!("breaker: {:?}", breaker.state());
    Ok(())
}
