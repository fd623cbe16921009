//! `cargo run -p seawall-example-grpc`: a health server that answers a third of its calls
//! with `UNAVAILABLE` (injected by seawall-chaos), called through both pipelines. Needs no
//! other service.

use std::time::Duration;

use seawall::{Class, FailureKind, RetryHint, WithDeadline};
use seawall_chaos::ChaosLayer;
use seawall_example_grpc::{SERVICE, channel_client, check, serve, typed_checks};
use tonic::transport::Endpoint;
use tower::{Service, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), seawall::BoxError> {
    // A third of the calls fail with UNAVAILABLE and a pushback of 20 ms.
    let unavailable = Class::failure(
        FailureKind::Unavailable,
        RetryHint::RetryAfter(Duration::from_millis(20)),
    );
    let chaos = ChaosLayer::builder()
        .error(1.0 / 3.0, unavailable)
        .seed(7)
        .build()?;
    let (url, seen) = serve(chaos).await?;
    let channel = Endpoint::from_shared(url)?.connect_lazy();

    let (mut typed, pipeline) = typed_checks(channel.clone());
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..200 {
        let call = typed.ready().await?.call(WithDeadline::new(check(SERVICE)));
        match call.await {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    let retries = pipeline.retry().map_or(0, |retry| retry.retries());
    println!(
        "typed calls, 1 in 3 answered UNAVAILABLE: {ok} served, {failed} failed, {retries} retries"
    );

    let err = typed
        .ready()
        .await?
        .call(WithDeadline::new(check("no.such.Service")))
        .await
        .unwrap_err();
    println!("a NOT_FOUND answer: {} (not retried)", err.class());

    let (mut client, breaker) = channel_client(channel);
    let mut codes = Vec::new();
    for _ in 0..20 {
        match client.check(check(SERVICE)).await {
            Ok(_) => codes.push("OK".to_owned()),
            Err(status) => codes.push(format!("{:?}", status.code())),
        }
    }
    println!("channel calls: {codes:?}; breaker {:?}", breaker.state());
    println!(
        "grpc-timeout the server saw last: {:?}",
        seen.timeouts().last()
    );
    Ok(())
}
