//! Helpers shared by the integration tests: a provider in a temporary data directory, a raw HTTP
//! client and bounded waits.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_core::Provider;
use faas_core::model::Endpoint;
use faas_provider_local::{LocalConfig, LocalProvider};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Generous: the machine is shared by everyone's builds.
pub const READY: Duration = Duration::from_secs(30);

pub const NS: &str = "openfaas-fn";

/// Settings for tests: short drain grace, quick backoff.
pub fn config(dir: &Path) -> LocalConfig {
    LocalConfig::new(dir)
        .drain(Duration::from_secs(1), Duration::from_secs(30))
        .backoff(Duration::from_millis(100), Duration::from_secs(2))
}

pub async fn open(dir: &Path) -> LocalProvider {
    LocalProvider::open(config(dir))
        .await
        .expect("open the local provider")
}

/// Polls `check` every 20 ms until it returns `Some`, panicking with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `name` has exactly `n` ready endpoints and returns them.
pub async fn ready(provider: &LocalProvider, name: &str, n: usize) -> Vec<Endpoint> {
    wait_for(&format!("{n} ready replicas of {name}"), READY, || async {
        let endpoints = provider.endpoints(name, NS).await.expect("endpoints");
        let status = provider.get(name, NS).await.expect("get");
        (endpoints.len() == n && status.available_replicas == n as u64).then_some(endpoints)
    })
    .await
}

/// One request over a fresh connection: status and body.
pub async fn request(
    authority: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response =
        tokio::time::timeout(Duration::from_secs(30), sender.send_request(request)).await??;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    conn.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub async fn post(endpoint: &Endpoint, body: &str) -> (u16, String) {
    request(&endpoint.authority, "POST", "/", body)
        .await
        .unwrap_or_else(|e| panic!("POST to {endpoint:?} failed: {e}"))
}

/// Writes an executable shell script and returns the command that runs it.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    format!("sh {}", path.display())
}
