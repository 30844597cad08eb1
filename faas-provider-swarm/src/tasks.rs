//! Swarm tasks as the Engine API returns them, and the replica addresses derived from them.
//!
//! bollard's `Task` model leaves out `NetworksAttachments` (it is missing from Docker's swagger
//! spec), and the task addresses on the function network are exactly what the gateway needs, so
//! tasks are read with the [raw client](crate::raw) over the same socket.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use faas_core::model::Endpoint;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::config::Resolution;

/// A task (one replica of a service), with the fields faas-rs reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Task {
    /// Task id.
    #[serde(rename = "ID")]
    pub(crate) id: String,
    /// The service it belongs to.
    #[serde(rename = "ServiceID", default)]
    pub(crate) service_id: String,
    /// The node it is scheduled on.
    #[serde(rename = "NodeID", default)]
    pub(crate) node_id: String,
    /// Replica slot.
    #[serde(default)]
    pub(crate) slot: u64,
    /// Observed state.
    #[serde(default)]
    pub(crate) status: TaskStatus,
    /// The state the orchestrator wants (`running`, `shutdown`...).
    #[serde(default)]
    pub(crate) desired_state: String,
    /// Addresses of the task on each network it joined.
    #[serde(default)]
    pub(crate) networks_attachments: Vec<NetworkAttachment>,
}

/// The observed state of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TaskStatus {
    /// `running` once the container runs and, when it has a healthcheck, is healthy.
    #[serde(default)]
    pub(crate) state: String,
    /// What happened last.
    #[serde(default)]
    pub(crate) message: String,
    /// Why it failed.
    #[serde(default)]
    pub(crate) err: String,
    /// Ports published in `mode=host` by this task (filled once it is `running`).
    #[serde(default)]
    pub(crate) port_status: PortStatus,
    /// The container, once created.
    #[serde(default)]
    pub(crate) container_status: Option<ContainerStatus>,
}

/// The container of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerStatus {
    /// Container id (on the task's node).
    #[serde(rename = "ContainerID", default)]
    pub(crate) container_id: String,
}

/// Published ports of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PortStatus {
    /// The ports (Docker lists one per address family).
    #[serde(default)]
    pub(crate) ports: Vec<PublishedPort>,
}

/// One published port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PublishedPort {
    /// Port in the container.
    #[serde(default)]
    pub(crate) target_port: u16,
    /// Port on the node.
    #[serde(default)]
    pub(crate) published_port: u16,
}

/// A task's attachment to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkAttachment {
    /// The network.
    #[serde(default)]
    pub(crate) network: AttachedNetwork,
    /// CIDR addresses (`10.0.1.5/24`).
    #[serde(default)]
    pub(crate) addresses: Vec<String>,
}

/// The network of an attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AttachedNetwork {
    /// Network id.
    #[serde(rename = "ID", default)]
    pub(crate) id: String,
    /// Its spec.
    #[serde(default)]
    pub(crate) spec: NetworkSpec,
}

/// The spec of an attached network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkSpec {
    /// Network name.
    #[serde(default)]
    pub(crate) name: String,
}

impl Task {
    /// Running and meant to run: the container started and passed its healthcheck (Swarm keeps a
    /// task `starting` until a container with a HEALTHCHECK is healthy, and replaces it when it
    /// turns unhealthy).
    pub(crate) fn is_ready(&self) -> bool {
        self.desired_state == "running" && self.status.state == "running"
    }

    /// Started and meant to run, its HEALTHCHECK not passed yet: it may already serve (the provider
    /// probes it).
    pub(crate) fn is_starting(&self) -> bool {
        self.desired_state == "running" && self.status.state == "starting"
    }

    /// The container id, once the container exists.
    pub(crate) fn container_id(&self) -> Option<&str> {
        self.status
            .container_status
            .as_ref()
            .map(|c| c.container_id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The task's address on `network` (without the prefix length).
    pub(crate) fn address_on(&self, network: &str) -> Option<&str> {
        self.networks_attachments
            .iter()
            .find(|a| a.network.spec.name == network || a.network.id == network)
            .and_then(|a| a.addresses.first())
            .map(|cidr| cidr.split_once('/').map_or(cidr.as_str(), |(ip, _)| ip))
    }

    /// The node port the task published for container port `target`.
    pub(crate) fn published_port(&self, target: u16) -> Option<u16> {
        self.status
            .port_status
            .ports
            .iter()
            .find(|p| p.target_port == target && p.published_port != 0)
            .map(|p| p.published_port)
    }
}

/// Where a ready task can be reached under `resolution`; `node_address` gives a node's address.
pub(crate) fn task_endpoint(
    task: &Task,
    resolution: &Resolution,
    network: &str,
    port: u16,
    node_address: impl Fn(&str) -> Option<String>,
) -> Option<Endpoint> {
    if !task.is_ready() {
        return None;
    }
    let authority = match resolution {
        Resolution::TaskAddresses => format!("{}:{port}", bracket(task.address_on(network)?)),
        Resolution::PublishedPorts => {
            let host = node_address(&task.node_id)?;
            format!("{}:{}", bracket(&host), task.published_port(port)?)
        }
        Resolution::PublishedPortsAt(host) => {
            format!("{}:{}", bracket(host), task.published_port(port)?)
        }
        Resolution::ServiceName => return None,
    };
    Some(Endpoint::new(task.id.clone(), authority))
}

/// Whether `GET /_/health` on `authority` answers 200 within `timeout` (the watchdog's and the
/// SDK's health endpoint, the same check as the images' HEALTHCHECK).
pub(crate) async fn probe_health(authority: &str, timeout: Duration) -> bool {
    let check = async {
        let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        let conn = tokio::spawn(conn);
        let request = http::Request::get("/_/health")
            .header(http::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .ok()?;
        let response = sender.send_request(request).await;
        conn.abort();
        Some(response.ok()?.status() == http::StatusCode::OK)
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
}

pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Counts ready tasks per service id.
pub(crate) fn ready_by_service(tasks: &[Task]) -> HashMap<&str, u64> {
    let mut counts = HashMap::new();
    for task in tasks.iter().filter(|t| t.is_ready()) {
        *counts.entry(task.service_id.as_str()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Vec<Task> {
        let json = include_str!("../tests/data/tasks.json");
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn recorded_tasks_parse() {
        let tasks = recorded();
        assert!(!tasks.is_empty());
        let ready: Vec<&Task> = tasks.iter().filter(|t| t.is_ready()).collect();
        assert!(!ready.is_empty());
        for task in &ready {
            assert!(task.address_on("exp_net").is_some(), "{task:?}");
            assert!(task.published_port(8080).is_some(), "{task:?}");
        }
    }

    #[test]
    fn bollards_task_model_and_ours_agree_on_published_ports() {
        let recorded: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../tests/data/tasks.json")).unwrap();
        for json in recorded {
            let theirs: bollard::models::Task = serde_json::from_value(json.clone()).unwrap();
            let expected = theirs
                .status
                .as_ref()
                .and_then(|s| s.port_status.as_ref())
                .and_then(|p| p.ports.as_ref())
                .into_iter()
                .flatten()
                .find(|p| p.target_port == Some(8080))
                .and_then(|p| p.published_port)
                .filter(|p| *p != 0);
            let ours: Task = serde_json::from_value(json).unwrap();
            assert_eq!(ours.published_port(8080).map(i64::from), expected);
        }
    }

    #[test]
    fn endpoints_follow_the_resolution() {
        let tasks = recorded();
        let task = tasks.iter().find(|t| t.is_ready()).unwrap();
        let ip = task.address_on("exp_net").unwrap().to_owned();
        let port = task.published_port(8080).unwrap();
        let nodes = |id: &str| (id == task.node_id).then(|| "192.0.2.10".to_owned());

        let e = task_endpoint(task, &Resolution::TaskAddresses, "exp_net", 8080, nodes).unwrap();
        assert_eq!(e.authority, format!("{ip}:8080"));
        assert_eq!(e.id, task.id);
        let e = task_endpoint(task, &Resolution::PublishedPorts, "exp_net", 8080, nodes).unwrap();
        assert_eq!(e.authority, format!("192.0.2.10:{port}"));
        let at = Resolution::PublishedPortsAt("127.0.0.1".into());
        let e = task_endpoint(task, &at, "exp_net", 8080, nodes).unwrap();
        assert_eq!(e.authority, format!("127.0.0.1:{port}"));
        assert!(task_endpoint(task, &Resolution::TaskAddresses, "other", 8080, nodes).is_none());
        assert!(
            task_endpoint(task, &Resolution::PublishedPorts, "exp_net", 8080, |_| None).is_none()
        );
    }

    #[test]
    fn only_running_tasks_count() {
        let mut tasks = recorded();
        let total_ready = tasks.iter().filter(|t| t.is_ready()).count() as u64;
        let service = tasks[0].service_id.clone();
        assert_eq!(
            ready_by_service(&tasks)
                .get(service.as_str())
                .copied()
                .unwrap_or(0),
            total_ready
        );
        for task in &mut tasks {
            task.desired_state = "shutdown".into();
        }
        assert!(ready_by_service(&tasks).is_empty());
        let mut starting = recorded()[0].clone();
        starting.status.state = "starting".into();
        assert!(
            task_endpoint(
                &starting,
                &Resolution::TaskAddresses,
                "exp_net",
                8080,
                |_| None
            )
            .is_none()
        );
    }

    #[tokio::test]
    async fn health_probe_needs_a_200() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            for answer in ["200 OK", "503 Service Unavailable"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = vec![0u8; 1024];
                let n = socket.read(&mut request).await.unwrap();
                assert!(request[..n].starts_with(b"GET /_/health HTTP/1.1"));
                let response = format!("HTTP/1.1 {answer}\r\ncontent-length: 0\r\n\r\n");
                socket.write_all(response.as_bytes()).await.unwrap();
            }
            listener
        });
        assert!(probe_health(&addr, Duration::from_secs(5)).await);
        assert!(!probe_health(&addr, Duration::from_secs(5)).await);
        drop(server.await.unwrap());
        // nothing listens there any more
        assert!(!probe_health(&addr, Duration::from_secs(5)).await);
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(bracket("fd00::2"), "[fd00::2]");
        assert_eq!(bracket("[fd00::2]"), "[fd00::2]");
        assert_eq!(bracket("10.0.0.1"), "10.0.0.1");
    }
}
