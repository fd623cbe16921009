//! HTTP clients behind the pipeline, and any Seawall error as an HTTP response.
//!
//! - [`CollectBodyLayer`]: a response's body read to its end within the attempt, so that a
//!   body cut mid-stream is retried (where the request may be replayed) and counted by the
//!   breaker, as tower-http classifies at the end of a stream; for hyper-util's client and
//!   any service answering `http::Response<B: Body>`.
//! - [`Reqwest`] (feature `reqwest`): a `reqwest::Client` serving `http::Request<B>`, which
//!   a retrying pipeline can clone and the HTTP preset classifies as it is.
//! - [`response_parts`] and [`status_for`]: the status and `Retry-After` of an error; the
//!   mapping lives in [`seawall_classify::http`], next to the HTTP classification, so that
//!   every integration (this facade, axum's `IntoResponse`) answers alike.

mod collect;
#[cfg(feature = "reqwest")]
mod reqwest;

pub use self::collect::{
    BodyTooLarge, CollectBody, CollectBodyLayer, MAX_BODY_LIMIT, ResponseFuture,
};
#[cfg(feature = "reqwest")]
pub use self::reqwest::{Reqwest, ReqwestFuture};
pub use seawall_classify::http::{response_parts, status_for};
