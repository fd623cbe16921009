// The HTTP preset around a client of URLs: its idempotency policy reads an `http::Request`.
use seawall::{StandardPipeline, WithDeadline};
use tower::util::BoxCloneSyncService;
use tower::{Layer, service_fn};

fn main() {
    let client = service_fn(|url: WithDeadline<String>| async move {
        Ok::<_, std::io::Error>(http::Response::new(url.into_inner()))
    });
    let pipeline = StandardPipeline::http("api", 32).build().unwrap();
    let _api: BoxCloneSyncService<WithDeadline<String>, http::Response<String>, seawall::Error> =
        BoxCloneSyncService::new(pipeline.layer(client));
}
