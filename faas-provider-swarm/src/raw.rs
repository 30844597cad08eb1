//! A minimal client for the few Engine API calls bollard's models cannot carry.
//!
//! bollard's models are generated from Docker's swagger spec, which differs from what the engine
//! answers in places that matter here:
//! - `Task` has no `NetworksAttachments`, the task addresses the gateway needs;
//! - a service's `ContainerSpec` names its healthcheck `HealthCheck` where the engine writes
//!   `Healthcheck`, so a spec read through bollard has lost its healthcheck, and writing it back
//!   is a different spec: Swarm rolls every replica (the first scale after a deploy used to).
//!
//! So tasks are read, and service specs are read and written back, as the engine's own JSON over
//! the same socket: a read-modify-write changes only what the change touches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::tasks::Task;

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

/// The engine's JSON of one service (`GET /services/{id}`), as it answered it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawService {
    /// The whole answer: `ID`, `Version`, `Spec`, `Endpoint`, `UpdateStatus`...
    pub(crate) json: Value,
}

impl RawService {
    /// The service id.
    pub(crate) fn id(&self) -> Option<&str> {
        self.json.get("ID").and_then(Value::as_str)
    }

    /// The version index an update must name.
    pub(crate) fn version(&self) -> u64 {
        self.json
            .pointer("/Version/Index")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// The service's spec, as the engine wrote it.
    pub(crate) fn spec(&self) -> Value {
        self.json.get("Spec").cloned().unwrap_or(Value::Null)
    }

    /// bollard's typed view of the service, for reading (it is lossy: never write it back).
    pub(crate) fn typed(&self) -> Result<bollard::models::Service> {
        serde_json::from_value(self.json.clone()).map_err(Error::Decode)
    }
}

/// A minimal HTTP/1 client of the Engine API.
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
        self.json(
            Method::GET,
            &format!("/tasks?filters={}", percent_encode(&filters)),
            None,
        )
        .await
    }

    /// `GET /services/{name}`: the service as the engine answers it (the name or an id prefix).
    pub(crate) async fn service(&self, name: &str) -> Result<RawService> {
        let json = self
            .json(
                Method::GET,
                &format!("/services/{}", percent_encode(name)),
                None,
            )
            .await?;
        Ok(RawService { json })
    }

    /// `POST /services/{id}/update?version=N` with `spec` as the body; returns the engine's
    /// warnings.
    pub(crate) async fn update_service(
        &self,
        id: &str,
        version: u64,
        spec: &Value,
    ) -> Result<Vec<String>> {
        let body = serde_json::to_vec(spec).map_err(Error::Decode)?;
        let answer: Value = self
            .json(
                Method::POST,
                &format!("/services/{}/update?version={version}", percent_encode(id)),
                Some(Bytes::from(body)),
            )
            .await?;
        Ok(answer
            .get("Warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_owned))
            .collect())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<T> {
        let uri = format!("/v{}{path}", self.api_version);
        let (status, body) = tokio::time::timeout(self.timeout, self.request(method, &uri, body))
            .await
            .map_err(|_| self.transport_error("request timed out".into()))??;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(Error::Docker {
                status: status.as_u16(),
                message: message.trim().to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(Error::Decode)
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        body: Option<Bytes>,
    ) -> Result<(http::StatusCode, Bytes)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, "docker");
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| self.transport_error(e.into()))?;
        match &self.transport {
            Transport::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| self.transport_error(e.into()))?;
                self.send(TokioIo::new(stream), request).await
            }
            Transport::Tcp(authority) => {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| self.transport_error(e.into()))?;
                self.send(TokioIo::new(stream), request).await
            }
        }
    }

    async fn send<I>(
        &self,
        io: I,
        request: http::Request<Full<Bytes>>,
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
    }

    #[test]
    fn recorded_service_reads() {
        let service = RawService {
            json: serde_json::from_str(include_str!("../tests/data/service.json")).unwrap(),
        };
        assert_eq!(service.id(), Some("iuf85ghwi4t4ndv9utey4ipqi"));
        assert_eq!(service.version(), 610);
        assert_eq!(service.spec()["Name"], "rec");
        let typed = service.typed().unwrap();
        assert_eq!(typed.spec.unwrap().name.as_deref(), Some("rec"));
    }
}
