//! An existing axum application — its own route, its own middleware — that mounts the faas-rs
//! gateway under `/faas` with `Router::nest_service`, plus a small read-only [`StaticProvider`] so
//! the example runs without any backend.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use faas_core::gateway::Gateway;
//! use faas_core::model::Endpoint;
//! use embedded_gateway::{StaticProvider, app};
//!
//! let provider = StaticProvider::new().with_function("shout", vec![Endpoint::new("shout-0", "127.0.0.1:9000")]);
//! let gateway = Gateway::builder(Arc::new(provider)).build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app(gateway)).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use faas_core::gateway::Gateway;
use faas_core::model::{
    Endpoint, FunctionDeployment, FunctionStatus, LogMessage, LogRequest, ProviderInfo, Secret,
    SecretInfo,
};
use faas_core::{Error, ErrorKind, Provider, Result};
use futures::stream::BoxStream;

/// The application: its own `/` route and a middleware tagging every response with
/// `x-served-by: embedded-gateway` — the gateway's responses included — with the gateway under
/// `/faas` (`/faas/function/{name}`, `/faas/system/functions`, ...).
pub fn app(gateway: Gateway) -> Router {
    Router::new()
        .route("/", get(|| async { "hello from the host application\n" }))
        .nest_service("/faas", gateway)
        .layer(middleware::from_fn(served_by))
}

async fn served_by(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert("x-served-by", HeaderValue::from_static("embedded-gateway"));
    response
}

/// A read-only [`Provider`] over a fixed set of functions whose replicas already run somewhere:
/// the smallest backend an application can embed the gateway with.
#[derive(Debug, Default, Clone)]
pub struct StaticProvider {
    functions: BTreeMap<String, Vec<Endpoint>>,
}

impl StaticProvider {
    /// A provider with no function.
    pub fn new() -> Self {
        StaticProvider::default()
    }

    /// Adds function `name` (in the default namespace) served by `endpoints`.
    #[must_use]
    pub fn with_function(mut self, name: impl Into<String>, endpoints: Vec<Endpoint>) -> Self {
        self.functions.insert(name.into(), endpoints);
        self
    }

    fn lookup(&self, name: &str, namespace: &str) -> Result<&Vec<Endpoint>> {
        if namespace != self.default_namespace() {
            return Err(Error::not_found(format!("namespace {namespace} not found")));
        }
        self.functions
            .get(name)
            .ok_or_else(|| Error::not_found(format!("function {name} not found")))
    }

    fn status(&self, name: &str, endpoints: &[Endpoint]) -> FunctionStatus {
        let deployment = FunctionDeployment::new(name, "static");
        let mut status = FunctionStatus::from_deployment(
            &deployment,
            self.default_namespace(),
            endpoints.len() as u64,
            chrono::DateTime::UNIX_EPOCH,
        );
        status.available_replicas = endpoints.len() as u64;
        status
    }
}

fn read_only() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "this provider is read-only: its functions are fixed at startup",
    )
}

#[async_trait]
impl Provider for StaticProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "static".into(),
            orchestration: "static".into(),
            ..Default::default()
        }
    }

    async fn deploy(&self, _deployment: FunctionDeployment) -> Result<()> {
        Err(read_only())
    }

    async fn update(&self, _deployment: FunctionDeployment) -> Result<()> {
        Err(read_only())
    }

    async fn delete(&self, _name: &str, _namespace: &str) -> Result<()> {
        Err(read_only())
    }

    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        if namespace != self.default_namespace() {
            return Ok(Vec::new());
        }
        Ok(self
            .functions
            .iter()
            .map(|(name, endpoints)| self.status(name, endpoints))
            .collect())
    }

    async fn get(&self, name: &str, namespace: &str) -> Result<FunctionStatus> {
        let endpoints = self.lookup(name, namespace)?;
        Ok(self.status(name, endpoints))
    }

    async fn scale(&self, _name: &str, _namespace: &str, _replicas: u32) -> Result<()> {
        Err(read_only())
    }

    async fn endpoints(&self, name: &str, namespace: &str) -> Result<Vec<Endpoint>> {
        self.lookup(name, namespace).cloned()
    }

    async fn logs(&self, request: LogRequest) -> Result<BoxStream<'static, Result<LogMessage>>> {
        self.lookup(&request.name, &request.namespace)?;
        Ok(Box::pin(futures::stream::empty()))
    }

    async fn secrets(&self, _namespace: &str) -> Result<Vec<SecretInfo>> {
        Ok(Vec::new())
    }

    async fn create_secret(&self, _secret: Secret) -> Result<()> {
        Err(read_only())
    }

    async fn update_secret(&self, _secret: Secret) -> Result<()> {
        Err(read_only())
    }

    async fn delete_secret(&self, _name: &str, _namespace: &str) -> Result<()> {
        Err(read_only())
    }

    async fn namespaces(&self) -> Result<Vec<String>> {
        Ok(vec![self.default_namespace().to_owned()])
    }
}
