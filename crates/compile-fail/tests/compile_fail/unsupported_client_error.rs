// A client whose error type is not an error: nothing can classify or carry it.
use seawall::{StandardPipeline, WithDeadline};
use tower::util::BoxCloneSyncService;
use tower::{Layer, service_fn};

#[derive(Debug, Clone)]
struct NotAnError;

fn main() {
    let client = service_fn(|_: WithDeadline<u32>| async { Err::<u32, _>(NotAnError) });
    let pipeline = StandardPipeline::postgres(10).build().unwrap();
    let _db: BoxCloneSyncService<WithDeadline<u32>, u32, seawall::Error> =
        BoxCloneSyncService::new(pipeline.layer(client));
}
