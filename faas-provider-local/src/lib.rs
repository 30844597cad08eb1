//! Runs functions as local processes: the embedded default provider of faas-rs.
//!
//! Every replica of a function is a [faas-watchdog](faas_watchdog) running in this process on its
//! own loopback port, wrapping the function's `envProcess` (the watchdog's `fprocess`) with the
//! deployment's environment variables. There are no images on this provider: `envProcess` is the
//! command (a deployment without one is rejected naming `envProcess`, unless its `mode` env var is
//! `static`); `image` is kept and shown, and is the working directory of the function when it
//! names an existing directory (a relative `static_path` starts there too). Replicas see
//! `OPENFAAS_NAME` and `OPENFAAS_NAMESPACE` unless the deployment sets them.
//!
//! - Replicas are endpoints only once their watchdog answers `/_/ready`; a replica whose watchdog
//!   stops (in `http` mode, the function process exited) is restarted with exponential backoff.
//! - Scaling down and updates drain replicas: they leave the endpoints, then finish their in-flight
//!   requests. Updates are rolling: the old replicas serve until the new ones are ready.
//! - Functions and secrets are durable in the data directory (default `~/.local/share/faas`);
//!   [`LocalProvider::open`] brings every function back with its replica count.
//! - Secrets are files; a function reads `$secret_mount_path/<name>`.
//! - Every replica's output lines are kept in a bounded buffer per function, served by
//!   [`Provider::logs`](faas_core::Provider::logs) with tail, since and follow.
//!
//! ```no_run
//! use faas_core::Provider;
//! use faas_core::model::FunctionDeployment;
//! use faas_provider_local::{LocalConfig, LocalProvider};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = LocalProvider::open(LocalConfig::new("/tmp/faas-data")).await?;
//! provider.deploy(FunctionDeployment::new("echo", "echo").with_env_process("cat")).await?;
//! let endpoints = provider.endpoints("echo", "openfaas-fn").await?; // once ready
//! println!("{endpoints:?}");
//! provider.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod error;
mod function;
mod logs;
mod provider;
mod replica;
mod store;

pub use error::{Error, Result};
pub use provider::{LocalConfig, LocalProvider, SECRET_MOUNT_PATH};
