//! A minimal one-shot HTTP/1.1 client for control requests (health checks, deployments), not for load.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Timeout of one control request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Whole body.
    pub body: Bytes,
}

impl Answer {
    /// Whether the status is 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text, lossy, for error messages.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// Sends one request on a fresh connection and reads the whole response (JSON content type when the body
/// starts with `{`).
///
/// # Errors
/// When the connection or the exchange fails or takes over 10 seconds.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> anyhow::Result<Answer> {
    tokio::time::timeout(TIMEOUT, exchange(addr, method.clone(), path, body))
        .await
        .with_context(|| format!("{method} http://{addr}{path}: no answer within {TIMEOUT:?}"))?
        .with_context(|| format!("{method} http://{addr}{path}"))
}

async fn exchange(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let content_type = if body.starts_with(b"{") {
        "application/json"
    } else {
        "text/plain"
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, HeaderValue::from_str(&addr.to_string())?)
        .header(CONNECTION, "close")
        .header(CONTENT_TYPE, content_type)
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok(Answer { status, body })
}

/// Polls `GET path` every 10 ms until it answers 2xx, for at most `patience`; `alive` is called between
/// attempts and its error ends the wait (a process that died will never answer).
///
/// # Errors
/// The last failure when `patience` runs out, or `alive`'s error.
pub async fn wait_ready(
    addr: SocketAddr,
    path: &str,
    patience: Duration,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        alive()?;
        let last = match request(addr, Method::GET, path, Bytes::new()).await {
            Ok(answer) if answer.is_success() => return Ok(()),
            Ok(answer) => format!("status {} {}", answer.status, answer.text()),
            Err(e) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("http://{addr}{path} not ready after {patience:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
