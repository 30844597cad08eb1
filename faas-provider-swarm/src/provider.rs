//! [`SwarmProvider`]: the [`Provider`] implementation over the Docker Engine API.
//!
//! The trait methods here check the namespace and the request, then hand over to the module that
//! does the job: [`functions`](crate::functions) (deploy, update, delete, list, scale),
//! [`endpoints`](crate::endpoints), [`logs`](crate::logs) and [`secrets`](crate::secrets).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bollard::Docker;
use faas_core::Provider;
use faas_core::model::{
    Endpoint, FunctionDeployment, FunctionStatus, LogMessage, LogRequest, ProviderInfo, Secret,
    SecretInfo, VersionInfo,
};
use faas_core::validate::{validate_deployment, validate_secret};
use futures::stream::BoxStream;

use crate::config::SwarmConfig;
use crate::engine::{Engine, EngineInfo};
use crate::error::{Error, Result};

/// Runs functions as Docker Swarm services.
///
/// Cheap to clone: clones share one engine connection.
///
/// ```no_run
/// # async fn run() -> Result<(), faas_provider_swarm::Error> {
/// use std::sync::Arc;
/// use faas_provider_swarm::{SwarmConfig, SwarmProvider};
///
/// let provider = SwarmProvider::connect(SwarmConfig::default()).await?;
/// let provider: Arc<dyn faas_core::Provider> = Arc::new(provider);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SwarmProvider {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) config: SwarmConfig,
    /// node id -> address, for [`Resolution::PublishedPorts`](crate::Resolution::PublishedPorts).
    pub(crate) nodes: Mutex<HashMap<String, String>>,
}

impl SwarmProvider {
    /// Connects to the engine, negotiates the API version, checks that it is a swarm manager and
    /// creates the function network when missing.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the engine cannot be reached, [`Error::NotManager`] when it is
    /// not a swarm manager, [`Error::UnsupportedHost`] for a bad host.
    pub async fn connect(config: SwarmConfig) -> Result<SwarmProvider> {
        let engine = Engine::connect(&config).await?;
        engine.ensure_network(&config.network).await?;
        Ok(SwarmProvider {
            inner: Arc::new(Inner {
                engine,
                config,
                nodes: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The engine this provider talks to.
    pub fn engine(&self) -> &EngineInfo {
        &self.inner.engine.info
    }

    /// The configuration.
    pub fn config(&self) -> &SwarmConfig {
        &self.inner.config
    }

    /// The bollard client (to build images, inspect what the provider created...).
    pub fn docker(&self) -> &Docker {
        &self.inner.engine.docker
    }

    /// The namespace a request names: the served one (`""` stands for it), else not found.
    fn namespace<'a>(&'a self, namespace: &'a str) -> Result<&'a str> {
        let served = self.inner.config.namespace.as_str();
        if namespace.is_empty() || namespace == served {
            Ok(served)
        } else {
            Err(Error::NamespaceNotFound(
                namespace.to_owned(),
                served.to_owned(),
            ))
        }
    }
}

#[async_trait]
impl Provider for SwarmProvider {
    fn info(&self) -> ProviderInfo {
        let engine = self.engine();
        ProviderInfo {
            name: "faas-provider-swarm".to_owned(),
            version: VersionInfo {
                commit_message: format!(
                    "docker engine {} (api {}), {} node(s)",
                    engine.version, engine.api_version, engine.nodes
                ),
                sha: String::new(),
                release: env!("CARGO_PKG_VERSION").to_owned(),
            },
            orchestration: "swarm".to_owned(),
        }
    }

    fn default_namespace(&self) -> &str {
        &self.inner.config.namespace
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> faas_core::Result<()> {
        validate_deployment(&deployment)?;
        let namespace = self.namespace(deployment.namespace.as_deref().unwrap_or_default())?;
        Ok(self.deploy_function(&deployment, namespace).await?)
    }

    async fn update(&self, deployment: FunctionDeployment) -> faas_core::Result<()> {
        validate_deployment(&deployment)?;
        let namespace = self.namespace(deployment.namespace.as_deref().unwrap_or_default())?;
        Ok(self.update_function(&deployment, namespace).await?)
    }

    async fn delete(&self, name: &str, namespace: &str) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace)?;
        Ok(self.delete_function(name, namespace).await?)
    }

    async fn list(&self, namespace: &str) -> faas_core::Result<Vec<FunctionStatus>> {
        let namespace = self.namespace(namespace)?;
        Ok(self.list_functions(namespace).await?)
    }

    async fn get(&self, name: &str, namespace: &str) -> faas_core::Result<FunctionStatus> {
        let namespace = self.namespace(namespace)?;
        Ok(self.function_status(name, namespace).await?)
    }

    async fn scale(&self, name: &str, namespace: &str, replicas: u32) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace)?;
        Ok(self.scale_function(name, namespace, replicas).await?)
    }

    async fn endpoints(&self, name: &str, namespace: &str) -> faas_core::Result<Vec<Endpoint>> {
        let namespace = self.namespace(namespace)?;
        Ok(self.function_endpoints(name, namespace).await?)
    }

    async fn logs(
        &self,
        request: LogRequest,
    ) -> faas_core::Result<BoxStream<'static, faas_core::Result<LogMessage>>> {
        let namespace = self.namespace(&request.namespace)?.to_owned();
        Ok(self.function_logs(request, namespace).await?)
    }

    async fn secrets(&self, namespace: &str) -> faas_core::Result<Vec<SecretInfo>> {
        let namespace = self.namespace(namespace)?;
        Ok(self.list_secrets(namespace).await?)
    }

    async fn create_secret(&self, secret: Secret) -> faas_core::Result<()> {
        validate_secret(&secret)?;
        let namespace = self.namespace(&secret.namespace)?;
        Ok(self.create_managed_secret(&secret, namespace).await?)
    }

    async fn update_secret(&self, secret: Secret) -> faas_core::Result<()> {
        validate_secret(&secret)?;
        let namespace = self.namespace(&secret.namespace)?;
        Ok(self.rotate_secret(&secret, namespace).await?)
    }

    async fn delete_secret(&self, name: &str, namespace: &str) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace)?;
        Ok(self.delete_managed_secret(name, namespace).await?)
    }

    async fn namespaces(&self) -> faas_core::Result<Vec<String>> {
        Ok(vec![self.inner.config.namespace.clone()])
    }
}
