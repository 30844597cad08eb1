//! Shared by the asynchronous end-to-end tests: a callback receiver that counts every call id it
//! is sent, and a load generator for `/async-function/`.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A real HTTP server on 127.0.0.1 counting callbacks per `X-Call-Id`.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

/// What the receiver saw for one call.
#[derive(Debug, Clone)]
pub struct Seen {
    pub count: u32,
    pub status: String,
    pub function: String,
    pub body: Bytes,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
        let map = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let map = map.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let map = map.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let header = |name: &str| {
                                parts
                                    .headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let id = header("x-call-id");
                            let mut map = map.lock().unwrap();
                            let entry = map.entry(id).or_insert_with(|| Seen {
                                count: 0,
                                status: header("x-function-status"),
                                function: header("x-function-name"),
                                body: body.clone(),
                            });
                            entry.count += 1;
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    /// Distinct call ids received.
    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn snapshot(&self) -> HashMap<String, Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until every id in `ids` has been received, or `within` passes; returns the missing.
    pub async fn wait_all(&self, ids: &[String], within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let missing: Vec<String> = {
                let seen = self.seen.lock().unwrap();
                ids.iter()
                    .filter(|id| !seen.contains_key(*id))
                    .cloned()
                    .collect()
            };
            if missing.is_empty() || Instant::now() >= deadline {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until at least `n` distinct calls called back, or `within` passes.
    pub async fn wait_at_least(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let have = self.distinct();
            if have >= n || Instant::now() >= deadline {
                return have;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends `count` calls to `{url}/async-function/{function}` from `clients` concurrent clients,
/// each with the callback URL; returns the accepted call ids (202) and the number refused.
pub async fn enqueue(
    url: &str,
    function: &str,
    callback: &str,
    count: usize,
    clients: usize,
) -> (Vec<String>, usize) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let target = format!("{url}/async-function/{function}");
    let results: Vec<Option<String>> = futures_util::stream::iter(0..count)
        .map(|i| {
            let http = http.clone();
            let target = target.clone();
            let callback = callback.to_owned();
            async move {
                let response = http
                    .post(&target)
                    .header("X-Callback-Url", callback)
                    .body(format!("call {i}"))
                    .send()
                    .await
                    .ok()?;
                if response.status() != reqwest::StatusCode::ACCEPTED {
                    return None;
                }
                response
                    .headers()
                    .get("x-call-id")?
                    .to_str()
                    .ok()
                    .map(str::to_owned)
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    let refused = results.iter().filter(|r| r.is_none()).count();
    (results.into_iter().flatten().collect(), refused)
}

/// Prints and returns how many calls called back more than once.
pub fn report_duplicates(label: &str, receiver: &Receiver, accepted: usize) -> usize {
    let seen = receiver.snapshot();
    let duplicates = seen.values().filter(|s| s.count > 1).count();
    let extra: u32 = seen.values().map(|s| s.count.saturating_sub(1)).sum();
    eprintln!(
        "{label}: {accepted} accepted, {} called back, {duplicates} called back more than once ({extra} extra callbacks)",
        seen.len()
    );
    duplicates
}
