//! Turning any Seawall error into an HTTP response, in one call: the mapping lives in
//! [`seawall_classify::http`], next to the HTTP classification, so that every integration
//! (this facade, axum's `IntoResponse`) answers alike.

pub use seawall_classify::http::{response_parts, status_for};
