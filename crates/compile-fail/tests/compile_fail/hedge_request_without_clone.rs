// A hedge around a client whose request cannot be cloned: the hedge sends a copy.
use seawall::WithDeadline;
use seawall::classify::AssumeIdempotent;
use seawall::hedge::HedgeLayer;
use tower::util::BoxCloneSyncService;
use tower::{Layer, service_fn};

struct Query(String);

fn main() {
    let client = service_fn(|query: WithDeadline<Query>| async move {
        Ok::<_, std::io::Error>(query.into_inner().0.len())
    });
    let hedge = HedgeLayer::builder(AssumeIdempotent).build().unwrap();
    let _db: BoxCloneSyncService<WithDeadline<Query>, usize, seawall::Error> =
        BoxCloneSyncService::new(hedge.layer(client));
}
