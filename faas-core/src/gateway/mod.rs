//! The OpenFaaS-compatible gateway: a composable tower stack.
//!
//! ```text
//! Gateway = Auth (/system/*, /ui/)  →  BodyLimit  →  GatewayRouter
//!             /function/{name}[.{ns}][/…]  → InvocationMetrics → Proxy → Invoker → replica
//!             /system/*, /healthz, /metrics → axum Router → Provider
//!             /ui/                          → the portal (static page over the same API)
//! ```
//!
//! [`Gateway`] is a `Clone` tower [`Service`] with `Error = Infallible`: every error becomes a
//! response in one place ([`error_response`]). Serve it with hyper ([`Gateway::serve`]), nest it in an
//! axum app (`Router::new().nest_service("/faas", gateway)`), or call it with
//! `tower::ServiceExt::oneshot` in tests. The layers ([`AuthLayer`], [`BodyLimitLayer`],
//! [`InvocationMetricsLayer`]) are generic over the inner service and compose with tower-http's.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use faas_core::gateway::{BasicAuth, Gateway};
//!
//! # async fn run(provider: Arc<dyn faas_core::Provider>) -> std::io::Result<()> {
//! let gateway = Gateway::builder(provider)
//!     .basic_auth(BasicAuth::new("admin", "secret"))
//!     .default_timeout(Duration::from_secs(30))
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod async_invoke;
mod auth;
mod error;
mod limits;
mod metrics;
mod proxy;
mod router;
mod system;
mod ui;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, Service};

pub use async_invoke::DEFAULT_ASYNC_BODY_LIMIT;
pub use auth::{
    Auth, AuthLayer, BASIC_AUTH_PASSWORD_FILE, BASIC_AUTH_USER_FILE, BasicAuth, is_protected,
};
pub use error::{X_OPENFAAS_INTERNAL, error_response};
pub use limits::{
    BodyLimit, BodyLimitLayer, BodyLimits, DEFAULT_FUNCTION_BODY_LIMIT, DEFAULT_SYSTEM_BODY_LIMIT,
};
pub use metrics::{
    BUCKETS, InvocationMetrics, InvocationMetricsLayer, Metrics, ResponseFuture, function_of_path,
};
pub use proxy::{FunctionTarget, Proxy, parse_function_path};
pub use ui::UI_CONTENT_SECURITY_POLICY;

use crate::invoke::{Body, Invoker};
use crate::model::VersionInfo;
use crate::{BoxError, Provider};

type Inner = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// The assembled gateway. Cheap to clone; see the [module docs](self).
#[derive(Clone)]
pub struct Gateway {
    inner: Inner,
    invoker: Invoker,
    metrics: Metrics,
    shutdown_grace: Duration,
}

/// How long [`Gateway::serve`] drains in-flight requests by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("invoker", &self.invoker)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Gateway`]; see [`Gateway::builder`].
#[must_use]
pub struct GatewayBuilder {
    provider: Arc<dyn Provider>,
    auth: Option<BasicAuth>,
    default_timeout: Option<Duration>,
    limits: BodyLimits,
    metrics: Option<Metrics>,
    version: VersionInfo,
    invoker: Option<Invoker>,
    shutdown_grace: Duration,
    // Async invocation (`async_invoke.rs`): routes exist only when a queue is set.
    queue: Option<Arc<dyn crate::queue::Queue>>,
    invocations: Option<Arc<dyn crate::queue::records::InvocationStore>>,
    async_body_limit: usize,
    ui: bool,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("provider", &self.provider.info().name)
            .field("auth", &self.auth)
            .field("default_timeout", &self.default_timeout)
            .field("limits", &self.limits)
            .field("version", &self.version)
            .field("ui", &self.ui)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Requires these credentials on `/system/*` and `/ui/` (none by default).
    pub fn basic_auth(mut self, credentials: BasicAuth) -> Self {
        self.auth = Some(credentials);
        self
    }

    /// Requires credentials when `Some` (convenient with an optional flag).
    pub fn basic_auth_opt(mut self, credentials: Option<BasicAuth>) -> Self {
        self.auth = credentials;
        self
    }

    /// The timeout of functions that set no `exec_timeout` env var (default
    /// [`DEFAULT_TIMEOUT`](crate::invoke::DEFAULT_TIMEOUT)). Ignored when an invoker is given with
    /// [`invoker`](Self::invoker): configure that one instead.
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// The most bytes an invocation's request body may hold (default 64 MiB); more gets 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.limits.function = bytes;
        self
    }

    /// The most bytes an API (`/system/*`) request body may hold (default 4 MiB); more gets 413.
    pub fn system_body_limit(mut self, bytes: usize) -> Self {
        self.limits.system = bytes;
        self
    }

    /// Records into this registry (for example one an autoscaler also reads); a new one by default.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The gateway's version shown by `/system/info` (default: this crate's version).
    pub fn version(mut self, version: VersionInfo) -> Self {
        self.version = version;
        self
    }

    /// Calls functions through this invoker (for example one shared with a queue worker); by default
    /// the gateway builds its own over the provider.
    pub fn invoker(mut self, invoker: Invoker) -> Self {
        self.invoker = Some(invoker);
        self
    }

    /// Serves `/async-function/*` by publishing to `queue` (without a queue those paths are 404).
    pub fn queue(mut self, queue: Arc<dyn crate::queue::Queue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Keeps invocation records in `store` (`/system/invocations/*`); with a queue and no store,
    /// an in-memory store is used. Give the queue worker the same store.
    pub fn invocations(mut self, store: Arc<dyn crate::queue::records::InvocationStore>) -> Self {
        self.invocations = Some(store);
        self
    }

    /// The most bytes an asynchronous call's body may hold (default
    /// [`DEFAULT_ASYNC_BODY_LIMIT`]; the invocation body limit applies too); more gets 413.
    pub fn async_body_limit(mut self, bytes: usize) -> Self {
        self.async_body_limit = bytes;
        self
    }

    /// How long [`Gateway::serve`] lets in-flight requests finish after shutdown starts before it
    /// closes their connections (default 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serves the portal at `/ui/` (default `true`; `false` leaves `/ui/` to the 404 fallback, for
    /// an application that embeds the gateway and has a UI of its own).
    pub fn ui(mut self, enabled: bool) -> Self {
        self.ui = enabled;
        self
    }

    /// Assembles the gateway.
    pub fn build(self) -> Gateway {
        let invoker = self.invoker.unwrap_or_else(|| {
            let mut builder = Invoker::builder(self.provider.clone());
            if let Some(timeout) = self.default_timeout {
                builder = builder.default_timeout(timeout);
            }
            builder.build()
        });
        let metrics = self.metrics.unwrap_or_default();
        let api = system::Api {
            provider: self.provider,
            invoker: invoker.clone(),
            metrics: metrics.clone(),
            version: self.version,
        };
        let async_api = self.queue.map(|queue| {
            let store = self
                .invocations
                .unwrap_or_else(|| Arc::new(crate::queue::records::MemoryInvocationStore::new()));
            async_invoke::AsyncApi::new(queue, store, api.provider.clone(), self.async_body_limit)
        });
        let router = router::GatewayRouter::new(api, invoker.clone(), async_api, self.ui);
        let stack = AuthLayer::new(self.auth).layer(BodyLimitLayer::new(self.limits).layer(router));
        Gateway {
            inner: BoxCloneSyncService::new(stack),
            invoker,
            metrics,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

impl Gateway {
    /// A builder over `provider`.
    pub fn builder(provider: Arc<dyn Provider>) -> GatewayBuilder {
        GatewayBuilder {
            provider,
            auth: None,
            default_timeout: None,
            limits: BodyLimits::default(),
            metrics: None,
            version: VersionInfo {
                commit_message: String::new(),
                sha: option_env!("FAAS_GIT_SHA").unwrap_or_default().to_owned(),
                release: env!("CARGO_PKG_VERSION").to_owned(),
            },
            invoker: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            queue: None,
            invocations: None,
            async_body_limit: DEFAULT_ASYNC_BODY_LIMIT,
            ui: true,
        }
    }

    /// The invoker behind `/function/` (share it with a queue worker).
    pub fn invoker(&self) -> &Invoker {
        &self.invoker
    }

    /// The metrics registry the gateway records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves the gateway on `listener` over HTTP/1.1 (keep-alive) until `shutdown` completes, then
    /// stops accepting, lets in-flight requests finish (for at most the
    /// [shutdown grace](GatewayBuilder::shutdown_grace)), closes the remaining connections and returns.
    ///
    /// # Errors
    /// None today (accept errors are logged and retried); the `Result` leaves room for setup errors.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            while connections.try_join_next().is_some() {}
            let _ = stream.set_nodelay(true);
            // Handlers see the caller's address as axum's `ConnectInfo` (the proxy adds it to
            // `X-Forwarded-For`).
            let service = TowerToHyperService::new(tower::util::MapRequest::new(
                self.clone(),
                move |mut request: Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request
                },
            ));
            let mut stop = stop_rx.clone();
            connections.spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                let mut conn = std::pin::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection closed with an error");
                }
            });
        }
        drop(listener);
        let _ = stop_tx.send(());
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "shutdown grace elapsed, closing the remaining connections"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

impl<B> Service<Request<B>> for Gateway
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <Inner as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.inner.call(request.map(Body::new))
    }
}
