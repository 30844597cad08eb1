//! Swarm tasks as the Engine API returns them, and the replica addresses derived from them.
//!
//! bollard's `Task` model leaves out `NetworksAttachments` (it is missing from Docker's swagger
//! spec), and the task addresses on the function network are exactly what the gateway needs, so
//! tasks are read with a small raw HTTP client over the same socket.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use faas_core::model::Endpoint;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::Resolution;
use crate::error::{Error, Result};

/// A task (one replica of a service), with the fields faas-rs reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    /// Task id.
    #[serde(rename = "ID")]
    pub id: String,
    /// The service it belongs to.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// The node it is scheduled on.
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    /// Replica slot.
    #[serde(default)]
    pub slot: u64,
    /// Observed state.
    #[serde(default)]
    pub status: TaskStatus,
    /// The state the orchestrator wants (`running`, `shutdown`...).
    #[serde(default)]
    pub desired_state: String,
    /// Addresses of the task on each network it joined.
    #[serde(default)]
    pub networks_attachments: Vec<NetworkAttachment>,
}

/// The observed state of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    /// `running` once the container runs and, when it has a healthcheck, is healthy.
    #[serde(default)]
    pub state: String,
    /// What happened last.
    #[serde(default)]
    pub message: String,
    /// Why it failed.
    #[serde(default)]
    pub err: String,
    /// Ports published in `mode=host` by this task (filled once it is `running`).
    #[serde(default)]
    pub port_status: PortStatus,
    /// The container, once created.
    #[serde(default)]
    pub container_status: Option<ContainerStatus>,
}

/// The container of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    /// Container id (on the task's node).
    #[serde(rename = "ContainerID", default)]
    pub container_id: String,
}

/// Published ports of a task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortStatus {
    /// The ports (Docker lists one per address family).
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

/// One published port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishedPort {
    /// Port in the container.
    #[serde(default)]
    pub target_port: u16,
    /// Port on the node.
    #[serde(default)]
    pub published_port: u16,
}

/// A task's attachment to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAttachment {
    /// The network.
    #[serde(default)]
    pub network: AttachedNetwork,
    /// CIDR addresses (`10.0.1.5/24`).
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// The network of an attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedNetwork {
    /// Network id.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Its spec.
    #[serde(default)]
    pub spec: NetworkSpec,
}

/// The spec of an attached network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSpec {
    /// Network name.
    #[serde(default)]
    pub name: String,
}

impl Task {
    /// Running and meant to run: the container started and passed its healthcheck (Swarm keeps a
    /// task `starting` until a container with a HEALTHCHECK is healthy, and replaces it when it
    /// turns unhealthy).
    pub fn is_ready(&self) -> bool {
        self.desired_state == "running" && self.status.state == "running"
    }

    /// Started and meant to run, its HEALTHCHECK not passed yet: it may already serve (the provider
    /// probes it).
    pub fn is_starting(&self) -> bool {
        self.desired_state == "running" && self.status.state == "starting"
    }

    /// The container id, once the container exists.
    pub fn container_id(&self) -> Option<&str> {
        self.status
            .container_status
            .as_ref()
            .map(|c| c.container_id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The task's address on `network` (without the prefix length).
    pub fn address_on(&self, network: &str) -> Option<&str> {
        self.networks_attachments
            .iter()
            .find(|a| a.network.spec.name == network || a.network.id == network)
            .and_then(|a| a.addresses.first())
            .map(|cidr| cidr.split_once('/').map_or(cidr.as_str(), |(ip, _)| ip))
    }

    /// The node port the task published for container port `target`.
    pub fn published_port(&self, target: u16) -> Option<u16> {
        self.status
            .port_status
            .ports
            .iter()
            .find(|p| p.target_port == target && p.published_port != 0)
            .map(|p| p.published_port)
    }
}

/// Where a ready task can be reached under `resolution`; `node_address` gives a node's address.
pub fn task_endpoint(
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
pub async fn probe_health(authority: &str, timeout: Duration) -> bool {
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
pub fn ready_by_service(tasks: &[Task]) -> HashMap<&str, u64> {
    let mut counts = HashMap::new();
    for task in tasks.iter().filter(|t| t.is_ready()) {
        *counts.entry(task.service_id.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    Unix(PathBuf),
    Tcp(String),
}

impl Transport {
    /// Parses `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub(crate) fn parse(host: &str) -> Result<Self> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Transport::Unix(PathBuf::from(path)));
        }
        let rest = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"));
        match rest.map(|r| r.trim_end_matches('/')) {
            Some(authority) if !authority.is_empty() => Ok(Transport::Tcp(authority.to_owned())),
            _ => Err(Error::UnsupportedHost(host.to_owned())),
        }
    }
}

/// A minimal client for the few Engine API calls bollard's models cannot carry.
#[derive(Debug, Clone)]
pub(crate) struct RawClient {
    transport: Transport,
    host: String,
    api_version: String,
    timeout: Duration,
}

impl RawClient {
    pub(crate) fn new(host: &str, api_version: String, timeout: Duration) -> Result<Self> {
        Ok(RawClient {
            transport: Transport::parse(host)?,
            host: host.to_owned(),
            api_version,
            timeout,
        })
    }

    /// The tasks matching `filters` (Docker's filter map).
    pub(crate) async fn tasks(&self, filters: &[(&str, &str)]) -> Result<Vec<Task>> {
        let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
        for (key, value) in filters {
            map.entry(key).or_default().push(value);
        }
        let filters = serde_json::to_string(&map).map_err(Error::Decode)?;
        self.get_json(&format!("/tasks?filters={}", percent_encode(&filters)))
            .await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let uri = format!("/v{}{path}", self.api_version);
        let (status, body) = tokio::time::timeout(self.timeout, self.get(&uri))
            .await
            .map_err(|_| self.transport_error("request timed out".into()))??;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(Error::Docker {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(Error::Decode)
    }

    async fn get(&self, uri: &str) -> Result<(http::StatusCode, Bytes)> {
        let request = http::Request::get(uri)
            .header(http::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.transport_error(e.into()))?;
        let response = match &self.transport {
            Transport::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| self.transport_error(e.into()))?;
                self.send(TokioIo::new(stream), request).await?
            }
            Transport::Tcp(authority) => {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| self.transport_error(e.into()))?;
                self.send(TokioIo::new(stream), request).await?
            }
        };
        Ok(response)
    }

    async fn send<I>(
        &self,
        io: I,
        request: http::Request<Empty<Bytes>>,
    ) -> Result<(http::StatusCode, Bytes)>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.transport_error(e.into()))?;
        let conn = tokio::spawn(conn);
        let result = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        conn.abort();
        result.map_err(|e| self.transport_error(e.into()))
    }

    fn transport_error(&self, source: Box<dyn std::error::Error + Send + Sync>) -> Error {
        Error::Transport {
            host: self.host.clone(),
            source,
        }
    }
}

fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
    fn hosts_and_encoding() {
        assert_eq!(
            Transport::parse("unix:///var/run/docker.sock").unwrap(),
            Transport::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Transport::parse("tcp://10.0.0.1:2375").unwrap(),
            Transport::Tcp("10.0.0.1:2375".into())
        );
        assert!(Transport::parse("ssh://pi@host").is_err());
        assert_eq!(
            percent_encode(r#"{"a":["b c"]}"#),
            "%7B%22a%22%3A%5B%22b%20c%22%5D%7D"
        );
        assert_eq!(bracket("fd00::2"), "[fd00::2]");
    }
}
