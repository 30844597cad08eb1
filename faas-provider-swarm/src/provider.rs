//! [`SwarmProvider`]: the [`Provider`] implementation over the Docker Engine API.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use bollard::Docker;
use bollard::models::{
    NetworkCreateRequest, Secret as DockerSecret, SecretSpec, Service, ServiceSpec,
};
use bollard::query_parameters::{
    InspectNetworkOptions, ListSecretsOptions, ListServicesOptions, LogsOptions,
    UpdateServiceOptions,
};
use chrono::{DateTime, Utc};
use faas_core::Provider;
use faas_core::model::{
    Endpoint, FunctionDeployment, FunctionStatus, LABEL_FUNCTION, LogMessage, LogRequest,
    ProviderInfo, Secret, SecretInfo, VersionInfo,
};
use faas_core::validate::{validate_deployment, validate_secret};
use futures::stream::{self, BoxStream, StreamExt};
use tracing::{debug, warn};

use crate::config::{Resolution, SwarmConfig};
use crate::error::{Error, Result};
use crate::logs::{LogLine, sort_and_tail, split_lines};
use crate::spec::{
    LABEL_MANAGED, LABEL_NAMESPACE, LABEL_SECRET, SecretRef, desired_replicas, function_status,
    is_function_of, service_spec,
};
use crate::tasks::{RawClient, Task, ready_by_service, task_endpoint};

/// How many times a service update is retried when the service changed in between.
const UPDATE_ATTEMPTS: usize = 8;

/// What the engine said of itself when the provider connected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineInfo {
    /// Engine version (`20.10.24`).
    pub version: String,
    /// The API version in use after negotiation (`1.41`).
    pub api_version: String,
    /// This manager's node id.
    pub node_id: String,
    /// Nodes in the swarm.
    pub nodes: u64,
    /// Managers in the swarm.
    pub managers: u64,
}

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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    docker: Docker,
    raw: RawClient,
    config: SwarmConfig,
    engine: EngineInfo,
    /// node id -> address, for [`Resolution::PublishedPorts`].
    nodes: Mutex<HashMap<String, String>>,
}

/// The host bollard and the raw client connect to.
fn docker_host(config: &SwarmConfig) -> String {
    config
        .docker_host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

/// Asks Docker for the swarm details of service log lines (the task id of every line), which
/// bollard's `LogsOptions` has no field for.
fn with_log_details(request: bollard::BollardRequest) -> bollard::BollardRequest {
    let uri = request.uri();
    if !(uri.path().contains("/services/") && uri.path().ends_with("/logs")) {
        return request;
    }
    let separator = if uri.query().is_some() { '&' } else { '?' };
    let Ok(new_uri) = format!("{uri}{separator}details=1").parse::<http::Uri>() else {
        return request;
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = new_uri;
    bollard::BollardRequest::from_parts(parts, body)
}

impl SwarmProvider {
    /// Connects to the engine, negotiates the API version, checks that it is a swarm manager and
    /// creates the function network when missing.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the engine cannot be reached, [`Error::NotManager`] when it is
    /// not a swarm manager, [`Error::UnsupportedHost`] for a bad host.
    pub async fn connect(config: SwarmConfig) -> Result<SwarmProvider> {
        let host = docker_host(&config);
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| match e {
                bollard::errors::Error::UnsupportedURISchemeError { .. } => {
                    Error::UnsupportedHost(host.clone())
                }
                other => Error::from(other),
            })?
            .with_timeout(config.request_timeout)
            .with_request_modifier(with_log_details);
        let docker = docker.negotiate_version().await?;
        let version = docker.version().await?;
        let info = docker.info().await?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        if state != "active" || swarm.control_available != Some(true) {
            return Err(Error::NotManager { state });
        }
        let api = docker.client_version();
        let api_version = format!("{}.{}", api.major_version, api.minor_version);
        let raw = RawClient::new(&host, api_version.clone(), config.request_timeout)?;
        let engine = EngineInfo {
            version: version.version.unwrap_or_default(),
            api_version,
            node_id: swarm.node_id.unwrap_or_default(),
            nodes: swarm.nodes.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            managers: swarm.managers.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
        };
        debug!(host = %host, engine = %engine.version, api = %engine.api_version, "connected to docker swarm");
        let provider = SwarmProvider {
            inner: Arc::new(Inner {
                docker,
                raw,
                config,
                engine,
                nodes: Mutex::new(HashMap::new()),
            }),
        };
        provider.ensure_network().await?;
        Ok(provider)
    }

    /// The engine this provider talks to.
    pub fn engine(&self) -> &EngineInfo {
        &self.inner.engine
    }

    /// The configuration.
    pub fn config(&self) -> &SwarmConfig {
        &self.inner.config
    }

    /// The bollard client (to build images, inspect what the provider created...).
    pub fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    async fn ensure_network(&self) -> Result<()> {
        let name = self.inner.config.network.as_str();
        let docker = &self.inner.docker;
        match docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(network) => {
                let driver = network.driver.unwrap_or_default();
                let attachable = network.attachable.unwrap_or(false);
                if driver != "overlay" || !attachable {
                    warn!(network = name, %driver, attachable, "the function network is not an attachable overlay network");
                }
                Ok(())
            }
            Err(e) if Error::from_ref_status(&e) == Some(404) => {
                let request = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("overlay".to_owned()),
                    attachable: Some(true),
                    labels: Some(HashMap::from([(
                        LABEL_MANAGED.to_owned(),
                        "true".to_owned(),
                    )])),
                    ..Default::default()
                };
                match docker.create_network(request).await {
                    Ok(_) => Ok(()),
                    // created concurrently by another provider
                    Err(e) if Error::from_ref_status(&e) == Some(409) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

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

    /// The service of function `name`, if it is one of ours.
    async fn service(&self, name: &str, namespace: &str) -> Result<Service> {
        let not_found = || Error::FunctionNotFound {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        };
        match self.inner.docker.inspect_service(name, None).await {
            // inspect also matches id prefixes: insist on the exact name
            Ok(service)
                if is_function_of(&service, namespace)
                    && service.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name) =>
            {
                Ok(service)
            }
            Ok(_) => Err(not_found()),
            Err(e) if Error::from_ref_status(&e) == Some(404) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    async fn running_tasks(&self, service_id: Option<&str>) -> Result<Vec<Task>> {
        let mut filters = vec![("desired-state", "running")];
        if let Some(id) = service_id {
            filters.push(("service", id));
        }
        self.inner.raw.tasks(&filters).await
    }

    async fn status(&self, service: &Service, namespace: &str) -> Result<FunctionStatus> {
        let id = service.id.as_deref().unwrap_or_default();
        let tasks = self.running_tasks(Some(id)).await?;
        let ready = ready_by_service(&tasks).get(id).copied().unwrap_or(0);
        Ok(function_status(service, namespace, ready))
    }

    /// Applies `change` to the current spec of a function and updates its service, retrying when
    /// the service changed in between (`update out of sequence`).
    async fn update_service(
        &self,
        name: &str,
        namespace: &str,
        change: impl Fn(&Service, &mut ServiceSpec) -> Result<()>,
    ) -> Result<()> {
        for attempt in 0..UPDATE_ATTEMPTS {
            let service = self.service(name, namespace).await?;
            let mut spec = service.spec.clone().unwrap_or_default();
            change(&service, &mut spec)?;
            let version = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let options = UpdateServiceOptions {
                version: i32::try_from(version).unwrap_or(i32::MAX),
                ..Default::default()
            };
            match self
                .inner
                .docker
                .update_service(name, spec, options, None)
                .await
            {
                Ok(response) => {
                    for warning in response.warnings.iter().flatten() {
                        debug!(service = name, %warning, "docker warning");
                    }
                    return Ok(());
                }
                Err(e) => {
                    let err = Error::from(e);
                    if matches!(&err, Error::Docker { message, .. } if message.contains("out of sequence"))
                    {
                        debug!(
                            service = name,
                            attempt, "service changed during update, retrying"
                        );
                        tokio::time::sleep(std::time::Duration::from_millis(
                            50 * (attempt as u64 + 1),
                        ))
                        .await;
                        continue;
                    }
                    if err.docker_status() == Some(404) {
                        return Err(Error::FunctionNotFound {
                            name: name.to_owned(),
                            namespace: namespace.to_owned(),
                        });
                    }
                    return Err(err);
                }
            }
        }
        Err(Error::Conflict(name.to_owned()))
    }

    async fn node_address(&self, node_id: &str) -> Result<Option<String>> {
        if let Some(addr) = self
            .inner
            .nodes
            .lock()
            .expect("node cache poisoned")
            .get(node_id)
        {
            return Ok(Some(addr.clone()));
        }
        let nodes = self.inner.docker.list_nodes(None).await?;
        let mut cache = self.inner.nodes.lock().expect("node cache poisoned");
        for node in nodes {
            let addr = node
                .status
                .and_then(|s| s.addr)
                .filter(|a| !a.is_empty() && a != "0.0.0.0");
            if let (Some(id), Some(addr)) = (node.id, addr) {
                cache.insert(id, addr);
            }
        }
        Ok(cache.get(node_id).cloned())
    }

    /// The endpoint of a task that started but has not passed its HEALTHCHECK yet, when its
    /// `/_/health` answers 200 already.
    ///
    /// Docker runs the first health probe one interval after the start and publishes a task's
    /// ports only once it is `running`: the address is its overlay address, or for published
    /// ports the container's port binding (readable for containers on this engine's node only).
    async fn probe_starting_task(
        &self,
        task: &Task,
        timeout: std::time::Duration,
    ) -> Option<Endpoint> {
        let config = &self.inner.config;
        let host = match &config.resolution {
            Resolution::TaskAddresses => {
                let addr = task.address_on(&config.network)?;
                let authority = format!("{}:{}", crate::tasks::bracket(addr), config.function_port);
                return probe(task, authority, timeout).await;
            }
            Resolution::PublishedPorts => self.node_address(&task.node_id).await.ok()??,
            Resolution::PublishedPortsAt(host) => host.clone(),
            Resolution::ServiceName => return None,
        };
        if task.node_id != self.inner.engine.node_id {
            return None;
        }
        let container = self
            .inner
            .docker
            .inspect_container(task.container_id()?, None)
            .await
            .ok()?;
        let key = format!("{}/tcp", config.function_port);
        let port = container
            .network_settings?
            .ports?
            .remove(&key)??
            .into_iter()
            .find_map(|b| b.host_port.filter(|p| !p.is_empty()))?;
        probe(
            task,
            format!("{}:{port}", crate::tasks::bracket(&host)),
            timeout,
        )
        .await
    }

    /// The managed Docker secrets of logical secret `name`, newest first.
    async fn managed_secrets(&self, name: &str, namespace: &str) -> Result<Vec<DockerSecret>> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_SECRET}={name}")])]);
        let mut secrets = self
            .inner
            .docker
            .list_secrets(Some(ListSecretsOptions {
                filters: Some(filters),
            }))
            .await?;
        secrets.retain(|s| secret_namespace(s) == Some(namespace));
        secrets.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(secrets)
    }

    /// Resolves the secrets a deployment mounts: a secret created through faas-rs, else a Docker
    /// secret of that exact name (created with `docker secret create`, as on faas-swarm).
    async fn resolve_secrets(
        &self,
        deployment: &FunctionDeployment,
        namespace: &str,
    ) -> Result<Vec<SecretRef>> {
        let mut resolved = Vec::with_capacity(deployment.secrets.len());
        for (i, name) in deployment.secrets.iter().enumerate() {
            let managed = self.managed_secrets(name, namespace).await?;
            let found = match managed.into_iter().next() {
                Some(secret) => Some(secret),
                None => match self.inner.docker.inspect_secret(name).await {
                    Ok(secret)
                        if secret.spec.as_ref().and_then(|s| s.name.as_deref())
                            == Some(name.as_str()) =>
                    {
                        Some(secret)
                    }
                    Ok(_) => None,
                    Err(e) if Error::from_ref_status(&e) == Some(404) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            let secret = found.ok_or_else(|| {
                Error::invalid(
                    format!("secrets[{i}]"),
                    format!("secret {name} does not exist: create it first"),
                )
            })?;
            resolved.push(SecretRef {
                name: name.clone(),
                id: secret.id.unwrap_or_default(),
                docker_name: secret.spec.and_then(|s| s.name).unwrap_or_default(),
            });
        }
        Ok(resolved)
    }

    /// The function services of a namespace.
    async fn function_services(&self, namespace: &str) -> Result<Vec<Service>> {
        let filters = HashMap::from([("label".to_owned(), vec![LABEL_FUNCTION.to_owned()])]);
        let services = self
            .inner
            .docker
            .list_services(Some(ListServicesOptions {
                filters: Some(filters),
                status: None,
            }))
            .await?;
        Ok(services
            .into_iter()
            .filter(|s| is_function_of(s, namespace))
            .collect())
    }

    fn secret_spec(&self, docker_name: String, secret: &Secret, namespace: &str) -> SecretSpec {
        SecretSpec {
            name: Some(docker_name),
            labels: Some(HashMap::from([
                (LABEL_SECRET.to_owned(), secret.name.clone()),
                (LABEL_NAMESPACE.to_owned(), namespace.to_owned()),
                (LABEL_MANAGED.to_owned(), "true".to_owned()),
            ])),
            data: Some(base64::engine::general_purpose::STANDARD.encode(secret.bytes())),
            ..Default::default()
        }
    }
}

async fn probe(task: &Task, authority: String, timeout: std::time::Duration) -> Option<Endpoint> {
    crate::tasks::probe_health(&authority, timeout)
        .await
        .then(|| Endpoint::new(task.id.clone(), authority))
}

fn secret_namespace(secret: &DockerSecret) -> Option<&str> {
    secret
        .spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_NAMESPACE)
        .map(String::as_str)
}

impl Error {
    fn from_ref_status(err: &bollard::errors::Error) -> Option<u16> {
        match err {
            bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
                Some(*status_code)
            }
            _ => None,
        }
    }
}

/// A Docker secret name for a new revision of `name` (at most 64 characters, Docker's limit).
fn revision_name(name: &str) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let keep = name.len().min(64 - suffix.len() - 1);
    format!("{}.{suffix}", &name[..keep])
}

/// The log messages of a followed service log stream that `keep` accepts.
fn follow_stream<S, B>(
    raw: S,
    keep: impl Fn(&LogLine) -> bool + Send + 'static,
    name: String,
    namespace: String,
) -> BoxStream<'static, faas_core::Result<LogMessage>>
where
    S: futures::Stream<Item = std::result::Result<B, bollard::errors::Error>> + Send + 'static,
    B: AsRef<[u8]>,
{
    raw.scan(String::new(), move |pending, chunk| {
        let out: Vec<faas_core::Result<LogMessage>> = match chunk {
            Ok(chunk) => split_lines(pending, chunk.as_ref())
                .iter()
                .filter_map(|t| LogLine::parse(t))
                .filter(&keep)
                .map(|l| Ok(l.into_message(&name, &namespace)))
                .collect(),
            Err(e) => vec![Err(to_core(e.into()))],
        };
        futures::future::ready(Some(stream::iter(out)))
    })
    .flatten()
    .boxed()
}

fn to_core(err: Error) -> faas_core::Error {
    err.into()
}

#[async_trait]
impl Provider for SwarmProvider {
    fn info(&self) -> ProviderInfo {
        let engine = &self.inner.engine;
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
        let namespace = self
            .namespace(deployment.namespace.as_deref().unwrap_or_default())
            .map_err(to_core)?;
        // reject what Swarm cannot express before touching anything
        service_spec(&deployment, namespace, 1, &[], &self.inner.config).map_err(to_core)?;
        let secrets = self
            .resolve_secrets(&deployment, namespace)
            .await
            .map_err(to_core)?;
        let replicas = u64::from(deployment.initial_replicas());
        let spec = service_spec(
            &deployment,
            namespace,
            replicas,
            &secrets,
            &self.inner.config,
        )
        .map_err(to_core)?;
        match self.inner.docker.create_service(spec, None).await {
            Ok(response) => {
                debug!(function = %deployment.service, id = ?response.id, "deployed");
                Ok(())
            }
            Err(e) => {
                let err = Error::from(e);
                if err.kind() == faas_core::ErrorKind::AlreadyExists {
                    return Err(Error::FunctionExists(deployment.service.clone()).into());
                }
                Err(err.into())
            }
        }
    }

    async fn update(&self, deployment: FunctionDeployment) -> faas_core::Result<()> {
        validate_deployment(&deployment)?;
        let namespace = self
            .namespace(deployment.namespace.as_deref().unwrap_or_default())
            .map_err(to_core)?;
        service_spec(&deployment, namespace, 1, &[], &self.inner.config).map_err(to_core)?;
        // not found before bad secrets, as for every other call on an unknown function
        self.service(&deployment.service, namespace)
            .await
            .map_err(to_core)?;
        let secrets = self
            .resolve_secrets(&deployment, namespace)
            .await
            .map_err(to_core)?;
        let config = &self.inner.config;
        self.update_service(&deployment.service, namespace, |service, spec| {
            let force = spec.task_template.as_ref().and_then(|t| t.force_update);
            let mut new = service_spec(
                &deployment,
                namespace,
                desired_replicas(service),
                &secrets,
                config,
            )?;
            if let Some(task) = new.task_template.as_mut() {
                task.force_update = force;
            }
            *spec = new;
            Ok(())
        })
        .await
        .map_err(to_core)
    }

    async fn delete(&self, name: &str, namespace: &str) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        let service = self.service(name, namespace).await.map_err(to_core)?;
        let id = service.id.unwrap_or_else(|| name.to_owned());
        match self.inner.docker.delete_service(&id).await {
            Ok(()) => Ok(()),
            Err(e) if Error::from_ref_status(&e) == Some(404) => Err(Error::FunctionNotFound {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
            }
            .into()),
            Err(e) => Err(Error::from(e).into()),
        }
    }

    async fn list(&self, namespace: &str) -> faas_core::Result<Vec<FunctionStatus>> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        let services = self.function_services(namespace).await.map_err(to_core)?;
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = self.running_tasks(None).await.map_err(to_core)?;
        let ready = ready_by_service(&tasks);
        let mut list: Vec<FunctionStatus> = services
            .iter()
            .map(|s| {
                let available = ready
                    .get(s.id.as_deref().unwrap_or_default())
                    .copied()
                    .unwrap_or(0);
                function_status(s, namespace, available)
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn get(&self, name: &str, namespace: &str) -> faas_core::Result<FunctionStatus> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        let service = self.service(name, namespace).await.map_err(to_core)?;
        self.status(&service, namespace).await.map_err(to_core)
    }

    async fn scale(&self, name: &str, namespace: &str, replicas: u32) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        self.update_service(name, namespace, |_, spec| {
            let mode = spec.mode.get_or_insert_with(Default::default);
            let replicated = mode.replicated.get_or_insert_with(Default::default);
            replicated.replicas = Some(i64::from(replicas));
            Ok(())
        })
        .await
        .map_err(to_core)
    }

    async fn endpoints(&self, name: &str, namespace: &str) -> faas_core::Result<Vec<Endpoint>> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        let service = self.service(name, namespace).await.map_err(to_core)?;
        let id = service.id.as_deref().unwrap_or_default();
        let tasks = self.running_tasks(Some(id)).await.map_err(to_core)?;
        let config = &self.inner.config;
        if config.resolution == Resolution::ServiceName {
            let ready = tasks.iter().any(Task::is_ready);
            return Ok(if ready {
                vec![Endpoint::new(
                    name,
                    format!("{name}:{}", config.function_port),
                )]
            } else {
                Vec::new()
            });
        }
        let mut nodes = HashMap::new();
        if config.resolution == Resolution::PublishedPorts {
            for task in tasks.iter().filter(|t| t.is_ready()) {
                if !nodes.contains_key(&task.node_id) {
                    let addr = self.node_address(&task.node_id).await.map_err(to_core)?;
                    nodes.insert(task.node_id.clone(), addr);
                }
            }
        }
        let mut endpoints: Vec<Endpoint> = tasks
            .iter()
            .filter_map(|task| {
                task_endpoint(
                    task,
                    &config.resolution,
                    &config.network,
                    config.function_port,
                    |node| nodes.get(node).cloned().flatten(),
                )
            })
            .collect();
        if let Some(timeout) = config.probe_starting {
            let starting: Vec<&Task> = tasks.iter().filter(|t| t.is_starting()).collect();
            let probes = starting
                .iter()
                .map(|task| self.probe_starting_task(task, timeout));
            endpoints.extend(
                futures::future::join_all(probes)
                    .await
                    .into_iter()
                    .flatten(),
            );
        }
        endpoints.sort();
        Ok(endpoints)
    }

    async fn logs(
        &self,
        request: LogRequest,
    ) -> faas_core::Result<BoxStream<'static, faas_core::Result<LogMessage>>> {
        let namespace = self
            .namespace(&request.namespace)
            .map_err(to_core)?
            .to_owned();
        let service = self
            .service(&request.name, &namespace)
            .await
            .map_err(to_core)?;
        let id = service.id.unwrap_or_else(|| request.name.clone());
        let options = |since: Option<DateTime<Utc>>, follow: bool, tail: Option<i64>| LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: since.map_or(0, |t| i32::try_from(t.timestamp()).unwrap_or(0).max(0)),
            until: 0,
            timestamps: true,
            tail: match tail {
                Some(n) if n >= 0 => n.to_string(),
                _ => "all".to_owned(),
            },
        };
        let name = request.name.clone();
        let instance = request.instance.clone();
        let since: Option<DateTime<Utc>> = request.since;
        let keep = move |line: &LogLine| {
            since.is_none_or(|s| line.timestamp >= s)
                && instance
                    .as_deref()
                    .is_none_or(|i| line.task_id.as_deref() == Some(i))
        };
        let docker = &self.inner.docker;
        let tail = request.tail.filter(|n| *n >= 0);
        if !request.follow || tail.is_some() {
            // Docker applies `tail` to every task: read the history whole, then keep the newest
            // `tail` lines over all replicas
            let cut = Utc::now();
            let mut lines = Vec::new();
            let mut pending = String::new();
            let mut raw = Box::pin(docker.service_logs(&id, Some(options(since, false, tail))));
            while let Some(chunk) = raw.next().await {
                let chunk = chunk.map_err(|e| to_core(e.into()))?;
                for text in split_lines(&mut pending, chunk.as_ref()) {
                    lines.extend(LogLine::parse(&text).filter(&keep));
                }
            }
            lines.extend(LogLine::parse(&pending).filter(&keep));
            if request.follow {
                // the followed part starts where the history ends
                lines.retain(|l| l.timestamp < cut);
            }
            let history: Vec<faas_core::Result<LogMessage>> = sort_and_tail(lines, tail)
                .into_iter()
                .map(|l| Ok(l.into_message(&name, &namespace)))
                .collect();
            if !request.follow {
                return Ok(stream::iter(history).boxed());
            }
            let from = since.map_or(cut, |s| s.max(cut));
            let live = follow_stream(
                docker.service_logs(&id, Some(options(Some(from), true, None))),
                move |l: &LogLine| l.timestamp >= from && keep(l),
                name,
                namespace,
            );
            return Ok(stream::iter(history).chain(live).boxed());
        }
        let raw = docker.service_logs(&id, Some(options(since, true, None)));
        Ok(follow_stream(raw, keep, name, namespace))
    }

    async fn secrets(&self, namespace: &str) -> faas_core::Result<Vec<SecretInfo>> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        let filters = HashMap::from([("label".to_owned(), vec![LABEL_SECRET.to_owned()])]);
        let secrets = self
            .inner
            .docker
            .list_secrets(Some(ListSecretsOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| to_core(e.into()))?;
        let mut names: Vec<String> = secrets
            .iter()
            .filter(|s| secret_namespace(s) == Some(namespace))
            .filter_map(|s| s.spec.as_ref()?.labels.as_ref()?.get(LABEL_SECRET).cloned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| SecretInfo {
                name,
                namespace: namespace.to_owned(),
            })
            .collect())
    }

    async fn create_secret(&self, secret: Secret) -> faas_core::Result<()> {
        validate_secret(&secret)?;
        let namespace = self.namespace(&secret.namespace).map_err(to_core)?;
        if !self
            .managed_secrets(&secret.name, namespace)
            .await
            .map_err(to_core)?
            .is_empty()
        {
            return Err(Error::SecretExists(secret.name.clone()).into());
        }
        let spec = self.secret_spec(secret.name.clone(), &secret, namespace);
        match self.inner.docker.create_secret(spec).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = Error::from(e);
                if err.kind() == faas_core::ErrorKind::AlreadyExists {
                    return Err(Error::SecretExists(secret.name.clone()).into());
                }
                Err(err.into())
            }
        }
    }

    async fn update_secret(&self, secret: Secret) -> faas_core::Result<()> {
        validate_secret(&secret)?;
        let namespace = self.namespace(&secret.namespace).map_err(to_core)?;
        let old = self
            .managed_secrets(&secret.name, namespace)
            .await
            .map_err(to_core)?;
        if old.is_empty() {
            return Err(Error::SecretNotFound(secret.name.clone()).into());
        }
        // Docker secrets are immutable: create a new revision, point the functions at it, then
        // remove the old revisions (a rolling update of each function mounting it)
        let docker_name = revision_name(&secret.name);
        let spec = self.secret_spec(docker_name.clone(), &secret, namespace);
        let created = self
            .inner
            .docker
            .create_secret(spec)
            .await
            .map_err(|e| to_core(e.into()))?;
        let new_id = created.id;
        let old_ids: Vec<String> = old.iter().filter_map(|s| s.id.clone()).collect();
        let services = self.function_services(namespace).await.map_err(to_core)?;
        for service in services {
            let uses_old = service
                .spec
                .as_ref()
                .and_then(|s| s.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.secrets.as_ref())
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.secret_id.as_ref().is_some_and(|id| old_ids.contains(id)))
                });
            if !uses_old {
                continue;
            }
            let name = service.spec.and_then(|s| s.name).unwrap_or_default();
            self.update_service(&name, namespace, |_, spec| {
                let refs = spec
                    .task_template
                    .as_mut()
                    .and_then(|t| t.container_spec.as_mut())
                    .and_then(|c| c.secrets.as_mut());
                for r in refs.into_iter().flatten() {
                    if r.secret_id.as_ref().is_some_and(|id| old_ids.contains(id)) {
                        r.secret_id = Some(new_id.clone());
                        r.secret_name = Some(docker_name.clone());
                    }
                }
                Ok(())
            })
            .await
            .map_err(to_core)?;
        }
        for id in &old_ids {
            match self.inner.docker.delete_secret(id).await {
                Ok(()) => {}
                Err(e) if Error::from_ref_status(&e) == Some(404) => {}
                Err(e) => {
                    warn!(secret = %secret.name, id, error = %e, "could not remove an old secret revision")
                }
            }
        }
        Ok(())
    }

    async fn delete_secret(&self, name: &str, namespace: &str) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace).map_err(to_core)?;
        let secrets = self
            .managed_secrets(name, namespace)
            .await
            .map_err(to_core)?;
        if secrets.is_empty() {
            return Err(Error::SecretNotFound(name.to_owned()).into());
        }
        for secret in secrets {
            let id = secret.id.unwrap_or_default();
            match self.inner.docker.delete_secret(&id).await {
                Ok(()) => {}
                Err(e) if Error::from_ref_status(&e) == Some(404) => {}
                Err(e) => {
                    let err = Error::from(e);
                    if let Error::Docker { message, .. } = &err
                        && message.contains("in use")
                    {
                        let services = message
                            .rsplit(':')
                            .next()
                            .unwrap_or_default()
                            .trim()
                            .to_owned();
                        return Err(Error::SecretInUse {
                            name: name.to_owned(),
                            services,
                        }
                        .into());
                    }
                    return Err(err.into());
                }
            }
        }
        Ok(())
    }

    async fn namespaces(&self) -> faas_core::Result<Vec<String>> {
        Ok(vec![self.inner.config.namespace.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_names_fit_docker() {
        let name = revision_name("api-key");
        assert!(name.starts_with("api-key."));
        assert_eq!(name.len(), "api-key.".len() + 10);
        assert!(revision_name(&"a".repeat(80)).len() <= 64);
        assert_ne!(revision_name("x"), revision_name("x"));
    }

    #[test]
    fn log_requests_ask_for_details() {
        let request = http::Request::get(
            "unix://2f7661722f72756e2f646f636b65722e736f636b/v1.41/services/x/logs?stdout=true",
        )
        .body(bollard::body_full(bytes::Bytes::new()))
        .unwrap();
        let request = with_log_details(request);
        assert!(
            request.uri().query().unwrap().ends_with("&details=1"),
            "{}",
            request.uri()
        );
        let other = http::Request::get("unix://2f/v1.41/services/x")
            .body(bollard::body_full(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(with_log_details(other).uri().query(), None);
    }
}
