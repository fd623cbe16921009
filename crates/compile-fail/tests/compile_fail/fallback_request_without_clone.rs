// A fallback that keeps a copy of each request, around a client whose request cannot be cloned.
use seawall::fallback::{FallbackRequest, FallbackLayer};
use tower::util::BoxCloneSyncService;
use tower::{Layer, service_fn};

struct Query(String);

fn main() {
    let client = service_fn(|query: Query| async move { Ok::<_, seawall::Error>(query.0.len()) });
    let fallback = service_fn(|_: FallbackRequest<Query>| async { Ok::<_, seawall::Error>(0) });
    let reads = FallbackLayer::builder(fallback)
        .keep_request()
        .build()
        .unwrap()
        .layer(client);
    let _reads: BoxCloneSyncService<Query, usize, seawall::Error> = BoxCloneSyncService::new(reads);
}
