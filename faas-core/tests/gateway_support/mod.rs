//! Shared by the gateway tests: an in-memory [`Provider`] whose replicas are real HTTP servers on
//! 127.0.0.1:0, and helpers to call the gateway.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use faas_core::gateway::Gateway;
use faas_core::invoke::Body;
use faas_core::model::{
    Endpoint, FunctionDeployment, FunctionStatus, LogMessage, LogRequest, ProviderInfo, Secret,
    SecretInfo,
};
use faas_core::{Error, Provider, Result};
use futures::stream::BoxStream;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::ServiceExt;

/// One function of the test provider.
#[derive(Debug, Clone)]
struct Record {
    deployment: FunctionDeployment,
    namespace: String,
    replicas: u32,
    pool: Vec<Endpoint>,
    ready_at: Instant,
    created_at: chrono::DateTime<Utc>,
}

/// An in-memory provider; what `endpoints()` returns is a pool of real upstream servers the test
/// sets with [`TestProvider::set_pool`], limited to the replica count and delayed by
/// [`TestProvider::set_scale_delay`] after a scale.
#[derive(Debug, Default)]
pub struct TestProvider {
    functions: Mutex<HashMap<(String, String), Record>>,
    secrets: Mutex<HashMap<(String, String), Secret>>,
    scale_calls: AtomicUsize,
    endpoint_calls: AtomicUsize,
    scale_delay: Mutex<Duration>,
}

pub const NS: &str = "openfaas-fn";

impl TestProvider {
    pub fn new() -> Arc<Self> {
        Arc::new(TestProvider::default())
    }

    /// Deploys `name` in the default namespace with `pool` as its replicas (all ready).
    pub fn add(&self, name: &str, pool: Vec<Endpoint>) {
        self.add_in(name, NS, pool, FunctionDeployment::new(name, "img"));
    }

    pub fn add_in(
        &self,
        name: &str,
        namespace: &str,
        pool: Vec<Endpoint>,
        deployment: FunctionDeployment,
    ) {
        let replicas = pool.len() as u32;
        self.functions.lock().unwrap().insert(
            (name.to_owned(), namespace.to_owned()),
            Record {
                deployment,
                namespace: namespace.to_owned(),
                replicas,
                pool,
                ready_at: Instant::now(),
                created_at: Utc::now(),
            },
        );
    }

    pub fn set_pool(&self, name: &str, pool: Vec<Endpoint>) {
        let mut functions = self.functions.lock().unwrap();
        let record = functions
            .get_mut(&(name.to_owned(), NS.to_owned()))
            .expect("function exists");
        record.pool = pool;
    }

    pub fn set_replicas(&self, name: &str, replicas: u32) {
        let mut functions = self.functions.lock().unwrap();
        functions
            .get_mut(&(name.to_owned(), NS.to_owned()))
            .expect("function exists")
            .replicas = replicas;
    }

    pub fn set_scale_delay(&self, delay: Duration) {
        *self.scale_delay.lock().unwrap() = delay;
    }

    pub fn scale_calls(&self) -> usize {
        self.scale_calls.load(Ordering::SeqCst)
    }

    pub fn endpoint_calls(&self) -> usize {
        self.endpoint_calls.load(Ordering::SeqCst)
    }

    pub fn count(&self) -> usize {
        self.functions.lock().unwrap().len()
    }

    pub fn replicas(&self, name: &str, namespace: &str) -> Option<u32> {
        self.functions
            .lock()
            .unwrap()
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(|r| r.replicas)
    }

    pub fn deployment(&self, name: &str, namespace: &str) -> Option<FunctionDeployment> {
        self.functions
            .lock()
            .unwrap()
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(|r| r.deployment.clone())
    }

    pub fn secret_value(&self, name: &str, namespace: &str) -> Option<Vec<u8>> {
        self.secrets
            .lock()
            .unwrap()
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(|s| s.bytes().to_vec())
    }

    fn status(record: &Record) -> FunctionStatus {
        let mut status = FunctionStatus::from_deployment(
            &record.deployment,
            &record.namespace,
            u64::from(record.replicas),
            record.created_at,
        );
        status.available_replicas = Self::ready(record).len() as u64;
        status
    }

    fn ready(record: &Record) -> Vec<Endpoint> {
        if Instant::now() < record.ready_at {
            return Vec::new();
        }
        record
            .pool
            .iter()
            .take(record.replicas as usize)
            .cloned()
            .collect()
    }

    fn not_found(name: &str, namespace: &str) -> Error {
        Error::not_found(format!(
            "function {name} not found in namespace {namespace}"
        ))
    }
}

#[async_trait]
impl Provider for TestProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "test-provider".into(),
            orchestration: "memory".into(),
            ..Default::default()
        }
    }

    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()> {
        let namespace = deployment.namespace_or(NS).to_owned();
        let mut functions = self.functions.lock().unwrap();
        let key = (deployment.service.clone(), namespace.clone());
        if functions.contains_key(&key) {
            return Err(Error::already_exists(format!(
                "function {} already exists",
                deployment.service
            )));
        }
        let replicas = deployment.initial_replicas();
        functions.insert(
            key,
            Record {
                deployment,
                namespace,
                replicas,
                pool: Vec::new(),
                ready_at: Instant::now(),
                created_at: Utc::now(),
            },
        );
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> Result<()> {
        let namespace = deployment.namespace_or(NS).to_owned();
        let mut functions = self.functions.lock().unwrap();
        match functions.get_mut(&(deployment.service.clone(), namespace.clone())) {
            Some(record) => {
                record.deployment = deployment;
                Ok(())
            }
            None => Err(Self::not_found(&deployment.service, &namespace)),
        }
    }

    async fn delete(&self, name: &str, namespace: &str) -> Result<()> {
        match self
            .functions
            .lock()
            .unwrap()
            .remove(&(name.to_owned(), namespace.to_owned()))
        {
            Some(_) => Ok(()),
            None => Err(Self::not_found(name, namespace)),
        }
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        let functions = self.functions.lock().unwrap();
        let mut list: Vec<FunctionStatus> = functions
            .values()
            .filter(|r| r.namespace == namespace)
            .map(Self::status)
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn get(&self, name: &str, namespace: &str) -> Result<FunctionStatus> {
        let functions = self.functions.lock().unwrap();
        functions
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(Self::status)
            .ok_or_else(|| Self::not_found(name, namespace))
    }

    async fn scale(&self, name: &str, namespace: &str, replicas: u32) -> Result<()> {
        self.scale_calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.scale_delay.lock().unwrap();
        let mut functions = self.functions.lock().unwrap();
        let record = functions
            .get_mut(&(name.to_owned(), namespace.to_owned()))
            .ok_or_else(|| Self::not_found(name, namespace))?;
        record.replicas = replicas;
        record.ready_at = Instant::now() + delay;
        Ok(())
    }

    async fn endpoints(&self, name: &str, namespace: &str) -> Result<Vec<Endpoint>> {
        self.endpoint_calls.fetch_add(1, Ordering::SeqCst);
        let functions = self.functions.lock().unwrap();
        functions
            .get(&(name.to_owned(), namespace.to_owned()))
            .map(Self::ready)
            .ok_or_else(|| Self::not_found(name, namespace))
    }

    async fn logs(&self, request: LogRequest) -> Result<BoxStream<'static, Result<LogMessage>>> {
        if !self
            .functions
            .lock()
            .unwrap()
            .contains_key(&(request.name.clone(), request.namespace.clone()))
        {
            return Err(Self::not_found(&request.name, &request.namespace));
        }
        let base = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut lines: Vec<LogMessage> = (0..5)
            .map(|i| LogMessage {
                name: request.name.clone(),
                namespace: request.namespace.clone(),
                instance: "r0".into(),
                timestamp: base + chrono::Duration::seconds(i),
                text: format!("line {i}"),
            })
            .filter(|m| request.since.is_none_or(|since| m.timestamp >= since))
            .collect();
        if let Some(tail) = request.tail {
            let skip = lines.len().saturating_sub(tail as usize);
            lines.drain(..skip);
        }
        Ok(Box::pin(futures::stream::iter(lines.into_iter().map(Ok))))
    }

    async fn secrets(&self, namespace: &str) -> Result<Vec<SecretInfo>> {
        let secrets = self.secrets.lock().unwrap();
        let mut list: Vec<SecretInfo> = secrets
            .values()
            .filter(|s| s.namespace == namespace)
            .map(|s| SecretInfo {
                name: s.name.clone(),
                namespace: s.namespace.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn create_secret(&self, secret: Secret) -> Result<()> {
        let mut secrets = self.secrets.lock().unwrap();
        let key = (secret.name.clone(), secret.namespace.clone());
        if secrets.contains_key(&key) {
            return Err(Error::already_exists(format!(
                "secret {} already exists",
                secret.name
            )));
        }
        secrets.insert(key, secret);
        Ok(())
    }

    async fn update_secret(&self, secret: Secret) -> Result<()> {
        let mut secrets = self.secrets.lock().unwrap();
        let key = (secret.name.clone(), secret.namespace.clone());
        match secrets.get_mut(&key) {
            Some(existing) => {
                *existing = secret;
                Ok(())
            }
            None => Err(Error::not_found(format!(
                "secret {} not found",
                secret.name
            ))),
        }
    }

    async fn delete_secret(&self, name: &str, namespace: &str) -> Result<()> {
        match self
            .secrets
            .lock()
            .unwrap()
            .remove(&(name.to_owned(), namespace.to_owned()))
        {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("secret {name} not found"))),
        }
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        Ok(vec![NS.to_owned(), "prod".to_owned()])
    }
}

/// A real HTTP server on 127.0.0.1:0 standing for one replica.
///
/// - any path: echoes the request body back, streaming, with `x-upstream-id`, `x-seen-method`,
///   `x-seen-path` (path and query), `x-seen-call-id`, `x-seen-start-time` headers;
/// - `/sleep?ms=N`: waits N ms first;
/// - `/generate?chunks=N&size=M`: streams N chunks of M bytes;
/// - `/drip?chunks=N&ms=M`: streams N small chunks, one every M ms;
/// - `/status?code=N`: answers status N.
#[derive(Debug)]
pub struct Upstream {
    pub id: String,
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(id: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let id_owned = id.to_owned();
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let id = id_owned.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        handle(id.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            id: id.to_owned(),
            addr,
            requests,
            stopped,
            task,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.id.clone(), self.addr.to_string())
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting connections (existing keep-alive connections keep running).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type UpstreamBody =
    http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

async fn handle(
    id: String,
    request: Request<Incoming>,
) -> std::result::Result<Response<UpstreamBody>, Infallible> {
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    let seen_path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header("x-upstream-id", id)
        .header("x-seen-method", request.method().as_str())
        .header("x-seen-path", seen_path);
    for (name, seen) in [
        ("x-call-id", "x-seen-call-id"),
        ("x-start-time", "x-seen-start-time"),
        ("x-custom", "x-seen-custom"),
        ("x-forwarded-for", "x-seen-forwarded-for"),
    ] {
        if let Some(value) = request.headers().get(name) {
            builder = builder.header(seen, value.clone());
        }
    }
    if path == "/sleep" {
        let ms: u64 = query.get("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if path == "/generate" {
        let chunks: usize = query
            .get("chunks")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let size: usize = query.get("size").and_then(|v| v.parse().ok()).unwrap_or(1);
        let stream = futures::stream::iter((0..chunks).map(move |i| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(Bytes::from(
                vec![b'a' + (i % 26) as u8; size],
            )))
        }));
        return Ok(builder
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap());
    }
    if path == "/drip" {
        let chunks: usize = query
            .get("chunks")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let ms: u64 = query.get("ms").and_then(|v| v.parse().ok()).unwrap_or(100);
        let stream = futures::stream::unfold(0usize, move |i| async move {
            if i == chunks {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let frame = Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(
                Bytes::from_static(b"drop "),
            ));
            Some((frame, i + 1))
        });
        return Ok(builder
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap());
    }
    if path == "/status" {
        let code: u16 = query
            .get("code")
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        builder = builder.status(code);
        return Ok(builder
            .body(
                Full::new(Bytes::from("status"))
                    .map_err(|e| match e {})
                    .boxed(),
            )
            .unwrap());
    }
    let body = request
        .into_body()
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        .boxed();
    Ok(builder.body(body).unwrap())
}

/// An address nothing listens on (bound then closed).
pub async fn dead_endpoint(id: &str) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Endpoint::new(id, addr.to_string())
}

/// Calls the gateway with `oneshot` and collects the response.
pub async fn call(
    gateway: &Gateway,
    request: Request<Body>,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let response = gateway.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("response body within 30s")
        .expect("response body")
        .to_bytes();
    (parts.status, parts.headers, bytes)
}

pub fn req(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap()
}

pub fn json(bytes: &Bytes) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}
