//! An HTTP service over PostgreSQL and Redis with Seawall's standard pipeline on each
//! dependency: a read-through cache, idempotent writes, health, metrics and breaker admin.
//! See the README for the routes and the reasons behind each choice.
//!
//! The binary (`src/main.rs`) reads the [`Config`] from the environment, sets up telemetry
//! and serves an [`App`] until SIGTERM or SIGINT. Tests and the load run start the same
//! [`App`] in-process with [`Running::start`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use seawall_example_service::{App, Config, Layers, Metrics, Running};
//!
//! let config = Config::from_env()?;
//! let app = App::new(config, Layers::Seawall, Metrics::standalone()?).await?;
//! let running = Running::start(app, "127.0.0.1:0".parse()?).await?;
//! println!("listening on http://{}", running.addr);
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod app;
pub mod client;
pub mod config;
pub mod deps;
pub mod metrics;
pub mod problem;
pub mod server;

pub use crate::app::{App, StartError};
pub use crate::config::{Config, ConfigError};
pub use crate::deps::Layers;
pub use crate::metrics::Metrics;
pub use crate::server::{Drained, Running, serve};
