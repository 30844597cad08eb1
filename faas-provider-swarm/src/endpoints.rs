//! Where the gateway reaches a function's replicas, following the [`Resolution`].

use std::collections::HashMap;
use std::time::Duration;

use faas_core::model::Endpoint;

use crate::config::Resolution;
use crate::error::Result;
use crate::provider::SwarmProvider;
use crate::tasks::{Task, bracket, probe_health, task_endpoint};

impl SwarmProvider {
    /// The ready replicas of a function (and, with `probe_starting`, those that already answer
    /// their health check before Docker's healthcheck ran).
    pub(crate) async fn function_endpoints(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<Vec<Endpoint>> {
        let service = self.service(name, namespace).await?;
        let id = service.id.as_deref().unwrap_or_default();
        let tasks = self.running_tasks(Some(id)).await?;
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
                    let addr = self.node_address(&task.node_id).await?;
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

    /// The address of a node (cached; the node list is read again for an unknown node).
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
        let nodes = self.inner.engine.docker.list_nodes(None).await?;
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
    async fn probe_starting_task(&self, task: &Task, timeout: Duration) -> Option<Endpoint> {
        let config = &self.inner.config;
        let host = match &config.resolution {
            Resolution::TaskAddresses => {
                let addr = task.address_on(&config.network)?;
                let authority = format!("{}:{}", bracket(addr), config.function_port);
                return probe(task, authority, timeout).await;
            }
            Resolution::PublishedPorts => self.node_address(&task.node_id).await.ok()??,
            Resolution::PublishedPortsAt(host) => host.clone(),
            Resolution::ServiceName => return None,
        };
        if task.node_id != self.inner.engine.info.node_id {
            return None;
        }
        let container = self
            .inner
            .engine
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
        probe(task, format!("{}:{port}", bracket(&host)), timeout).await
    }
}

async fn probe(task: &Task, authority: String, timeout: Duration) -> Option<Endpoint> {
    probe_health(&authority, timeout)
        .await
        .then(|| Endpoint::new(task.id.clone(), authority))
}
