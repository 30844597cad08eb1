//! The [`Provider`] trait: where functions run (local processes, Docker Swarm, Kubernetes).

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::Result;
use crate::model::{
    Endpoint, FunctionDeployment, FunctionStatus, LogMessage, LogRequest, ProviderInfo, Secret,
    SecretInfo,
};

/// A backend that runs functions. The gateway holds it as `Arc<dyn Provider>`.
///
/// Names and namespaces reaching a provider through the gateway are already validated
/// ([`validate`](crate::validate)), and an empty namespace has been replaced by
/// [`Provider::default_namespace`]. Implementations return:
/// - [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) for an unknown function, secret or namespace,
/// - [`ErrorKind::AlreadyExists`](crate::ErrorKind::AlreadyExists) when deploying a function (or creating a
///   secret) that exists,
/// - [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) with the field to blame for what only this
///   provider rejects (the local provider requires `envProcess`), before creating anything,
/// - [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when the backend cannot be reached.
///
/// Every implementation runs the conformance suite in [`testing`](crate::testing) against itself.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What the provider is (`/system/info`).
    fn info(&self) -> ProviderInfo;

    /// The namespace used when a request names none.
    fn default_namespace(&self) -> &str {
        crate::model::DEFAULT_NAMESPACE
    }

    /// Deploys a new function with [`FunctionDeployment::initial_replicas`] replicas.
    async fn deploy(&self, deployment: FunctionDeployment) -> Result<()>;

    /// Replaces an existing function's spec, rolling its replicas over without dropping requests.
    /// Keeps the current replica count.
    async fn update(&self, deployment: FunctionDeployment) -> Result<()>;

    /// Removes a function and its replicas.
    async fn delete(&self, name: &str, namespace: &str) -> Result<()>;

    /// Lists the functions of a namespace (invocation counts left at 0: the gateway fills them in).
    async fn list(&self, namespace: &str) -> Result<Vec<FunctionStatus>>;

    /// One function's status.
    async fn get(&self, name: &str, namespace: &str) -> Result<FunctionStatus>;

    /// Sets the desired replica count (0 allowed).
    async fn scale(&self, name: &str, namespace: &str, replicas: u32) -> Result<()>;

    /// The addresses of the replicas that are ready to serve now. Empty when none is.
    ///
    /// This is on the invocation path: the gateway caches the answer briefly and asks again when a
    /// replica cannot be reached, so it should be cheap but need not be instant.
    async fn endpoints(&self, name: &str, namespace: &str) -> Result<Vec<Endpoint>>;

    /// A function's logs, oldest first; with `follow`, the stream stays open for new lines.
    async fn logs(&self, request: LogRequest) -> Result<BoxStream<'static, Result<LogMessage>>>;

    /// The secrets of a namespace (names only).
    async fn secrets(&self, namespace: &str) -> Result<Vec<SecretInfo>>;

    /// Creates a secret (`secret.namespace` set by the gateway).
    async fn create_secret(&self, secret: Secret) -> Result<()>;

    /// Replaces a secret's value; functions using it see the new value (on their next start at the
    /// latest).
    async fn update_secret(&self, secret: Secret) -> Result<()>;

    /// Deletes a secret.
    async fn delete_secret(&self, name: &str, namespace: &str) -> Result<()>;

    /// The namespaces functions can be deployed to.
    async fn namespaces(&self) -> Result<Vec<String>>;
}
