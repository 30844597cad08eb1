//! Runs functions as Docker Swarm services through [bollard]: the Swarm
//! [`Provider`](faas_core::Provider) of faas-rs.
//!
//! Every function is one replicated service named after the function, labelled
//! `com.openfaas.function=<name>` (only such services are listed), attached to one attachable
//! overlay network (`func_functions`), with `envProcess` as the watchdog's `fprocess`, limits and
//! requests as Swarm resources, secrets as Docker secrets mounted at
//! `/var/openfaas/secrets/<name>`, placement constraints passed through, and start-first rolling
//! updates gated by the image's HEALTHCHECK so that an update drops no request.
//!
//! How the gateway reaches replicas is the [`Resolution`]: task addresses on the function network
//! for a gateway running inside it, per-task `mode=host` published ports for a gateway on a host,
//! or the service name (VIP or DNS round robin).
//!
//! ```no_run
//! use std::sync::Arc;
//! use faas_core::Provider;
//! use faas_core::model::FunctionDeployment;
//! use faas_provider_swarm::{Resolution, SwarmConfig, SwarmProvider};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SwarmConfig::default().resolution(Resolution::PublishedPortsAt("127.0.0.1".into()));
//! let provider: Arc<dyn Provider> = Arc::new(SwarmProvider::connect(config).await?);
//! provider
//!     .deploy(FunctionDeployment::new("echo", "faas-rs/fwatchdog:dev").with_env_process("cat"))
//!     .await?;
//! let endpoints = provider.endpoints("echo", "openfaas-fn").await?;
//! println!("{endpoints:?}");
//! # Ok(()) }
//! ```

//!
//! The public API is the provider ([`SwarmProvider`]), its configuration ([`SwarmConfig`], read
//! from `DOCKER_HOST` and the `FAAS_SWARM_*` variables by [`SwarmConfig::from_env`]) and its
//! errors ([`Error`], [`ConfigError`]); everything else is internal. `docs/providers/swarm.md`
//! describes the deployment.
//!
//! # Modules (internal)
//! - `provider`: the [`Provider`](faas_core::Provider) implementation, dispatching to:
//! - `functions`: deploy, update, delete, list, scale;
//! - `update`: the read-modify-write of a service's spec as the engine's own JSON;
//! - `endpoints`: where the gateway reaches replicas; `logs`: log history and streams;
//! - `secrets`: OpenFaaS secrets as Docker secrets, and their rotation;
//! - `spec`: the pure mapping between deployments and Swarm service specs;
//! - `engine`, `raw`, `tasks`: the connection, the raw Engine API client, the task model.

mod config;
mod endpoints;
mod engine;
mod error;
mod functions;
mod logs;
mod provider;
mod raw;
mod secrets;
mod spec;
mod tasks;
mod update;

pub use config::{DEFAULT_FUNCTION_PORT, DEFAULT_NETWORK, EndpointMode, Resolution, SwarmConfig};
pub use engine::EngineInfo;
pub use error::{ConfigError, Error, Result};
pub use provider::SwarmProvider;
