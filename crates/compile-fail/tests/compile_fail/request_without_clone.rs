// A retrying pipeline around a client whose request cannot be cloned.
use seawall::{StandardPipeline, WithDeadline};
use tower::util::BoxCloneSyncService;
use tower::{Layer, service_fn};

struct Query(String);

fn main() {
    let client = service_fn(|query: WithDeadline<Query>| async move {
        Ok::<_, std::io::Error>(query.into_inner().0.len())
    });
    let pipeline = StandardPipeline::postgres(10).build().unwrap();
    let _db: BoxCloneSyncService<WithDeadline<Query>, usize, seawall::Error> =
        BoxCloneSyncService::new(pipeline.layer(client));
}
