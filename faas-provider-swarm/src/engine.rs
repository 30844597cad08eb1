//! Connecting to the engine: the host, API version negotiation, the swarm manager check and the
//! function network.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::InspectNetworkOptions;
use tracing::{debug, warn};

use crate::config::SwarmConfig;
use crate::error::{Error, Result};
use crate::raw::RawClient;
use crate::spec::LABEL_MANAGED;

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

/// A connection to a swarm manager: bollard for what its models carry, the raw client for the
/// rest.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) docker: Docker,
    pub(crate) raw: RawClient,
    pub(crate) info: EngineInfo,
}

/// The host bollard and the raw client connect to.
fn docker_host(config: &SwarmConfig) -> String {
    config
        .docker_host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

impl Engine {
    /// Connects to the engine, negotiates the API version and checks that it is a swarm manager.
    pub(crate) async fn connect(config: &SwarmConfig) -> Result<Engine> {
        let host = docker_host(config);
        let docker = Docker::connect_with_host(&host)
            .map_err(|e| match e {
                bollard::errors::Error::UnsupportedURISchemeError { .. } => {
                    Error::UnsupportedHost(host.clone())
                }
                other => Error::from(other),
            })?
            .with_timeout(config.request_timeout)
            .with_request_modifier(crate::logs::with_log_details);
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
        let info = EngineInfo {
            version: version.version.unwrap_or_default(),
            api_version,
            node_id: swarm.node_id.unwrap_or_default(),
            nodes: swarm.nodes.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
            managers: swarm.managers.map_or(0, |n| u64::try_from(n).unwrap_or(0)),
        };
        debug!(host = %host, engine = %info.version, api = %info.api_version, "connected to docker swarm");
        Ok(Engine { docker, raw, info })
    }

    /// Creates the function network `name` (an attachable overlay) when it is missing.
    pub(crate) async fn ensure_network(&self, name: &str) -> Result<()> {
        let docker = &self.docker;
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
            Err(e) if Error::status_of(&e) == Some(404) => {
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
                    Err(e) if Error::status_of(&e) == Some(409) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
