//! The provider behind `faas up`: which backend runs the functions.
//!
//! [`build_provider`] is the one place that turns `--provider` into a running [`Provider`]; a new
//! backend adds a [`ProviderKind`] variant and a match arm there.

use std::path::PathBuf;
use std::sync::Arc;

use faas_core::Provider;
use futures_util::future::BoxFuture;

use crate::cmd::up::UpArgs;
use crate::{Error, Result};

/// The backends `faas up` can run functions on (`--provider`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Local processes on this machine, state under `--data-dir` (the default).
    #[default]
    Local,
    /// Docker Swarm services through the Docker Engine API; configured by `DOCKER_HOST` and the
    /// `FAAS_SWARM_*` variables (see docs/providers/swarm.md).
    Swarm,
}

type ShutdownFn = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// A running provider and how to stop it gracefully.
pub struct BuiltProvider {
    /// The provider, as the gateway holds it.
    pub provider: Arc<dyn Provider>,
    shutdown: Option<ShutdownFn>,
}

impl std::fmt::Debug for BuiltProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltProvider")
            .field("provider", &self.provider.info().name)
            .finish_non_exhaustive()
    }
}

impl BuiltProvider {
    /// A provider with nothing to do on shutdown.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        BuiltProvider {
            provider,
            shutdown: None,
        }
    }

    /// A provider that runs `shutdown` when `faas up` stops (draining replicas, closing clients).
    pub fn with_shutdown<F>(provider: Arc<dyn Provider>, shutdown: F) -> Self
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    {
        BuiltProvider {
            provider,
            shutdown: Some(Box::new(shutdown)),
        }
    }

    /// Stops the provider (for the local one: drains and stops every replica, keeping the functions
    /// in the data dir for the next start).
    pub async fn shutdown(self) {
        if let Some(shutdown) = self.shutdown {
            shutdown().await;
        }
    }
}

/// The data directory of `faas up`: `--data-dir`, else `$XDG_DATA_HOME/faas` or
/// `~/.local/share/faas`.
///
/// # Errors
/// [`Error::InvalidArgument`] when no flag is given and there is no home directory.
pub fn data_dir(args: &UpArgs) -> Result<PathBuf> {
    match &args.data_dir {
        Some(dir) => Ok(dir.clone()),
        None => faas_provider_local::LocalConfig::default_data_dir()
            .map_err(|e| Error::InvalidArgument(format!("{e}: pass --data-dir"))),
    }
}

/// Starts the provider `args.provider` names.
///
/// # Errors
/// [`Error::ProviderStart`] when the backend cannot be started (for the local provider: the data
/// directory cannot be created or read).
pub async fn build_provider(args: &UpArgs) -> Result<BuiltProvider> {
    match args.provider {
        ProviderKind::Local => {
            let dir = data_dir(args)?;
            let config = faas_provider_local::LocalConfig::new(&dir);
            let local = faas_provider_local::LocalProvider::open(config)
                .await
                .map_err(|e| Error::ProviderStart {
                    provider: "local",
                    detail: format!("data dir {}", dir.display()),
                    source: e.into(),
                })?;
            tracing::info!(data_dir = %dir.display(), "local provider ready");
            let stopper = local.clone();
            Ok(BuiltProvider::with_shutdown(Arc::new(local), move || {
                Box::pin(async move { stopper.shutdown().await })
            }))
        }
        ProviderKind::Swarm => {
            let config =
                faas_provider_swarm::SwarmConfig::from_env().map_err(|e| Error::ProviderStart {
                    provider: "swarm",
                    detail: "configuration".to_owned(),
                    source: e.into(),
                })?;
            let detail = format!("function network {}", config.network);
            let swarm = faas_provider_swarm::SwarmProvider::connect(config)
                .await
                .map_err(|e| Error::ProviderStart {
                    provider: "swarm",
                    detail,
                    source: e.into(),
                })?;
            let engine = swarm.engine();
            tracing::info!(engine = %engine.version, api = %engine.api_version, nodes = engine.nodes, "swarm provider ready");
            Ok(BuiltProvider::new(Arc::new(swarm)))
        }
    }
}
