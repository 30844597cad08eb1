//! The HTTP contract of a faas-rs replica, reusable by anything that serves a function.
//!
//! [`Server`] serves any `tower::Service<http::Request<RequestBody>>` over HTTP/1.1 with keep-alive
//! and adds, around it, what OpenFaaS's watchdogs promise to the platform:
//!
//! - `GET /_/health`: 200 `OK` once ready (and the lock file present, when one is configured), 503
//!   before that and while shutting down.
//! - `GET /_/ready`: 503 before ready, 429 while `max_inflight` requests are in flight, otherwise the
//!   answer of the service at [`ServeConfig::ready_path`] (2xx gives 200, anything else 503), or 200.
//! - `max_inflight`: a request over the limit gets 429 at once; requests are never queued.
//! - `X-Duration-Seconds` on every response (seconds until the response head, `%f` as OpenFaaS),
//!   and the request's `X-Call-Id` copied to the response when the service did not set one. The
//!   watchdog does not invent call ids: the gateway assigns them, as with OpenFaaS.
//! - Limits: headers over `max_header_bytes` get 431 (written by hyper), a body over
//!   `max_body_bytes` gets 413 at once when `Content-Length` says so, or fails the body read with
//!   [`RequestBodyError::TooLarge`] while it streams.
//! - Timeouts: request head and body must arrive within `read_timeout`; a response must be written
//!   within `write_timeout` and a client that stops reading for `write_timeout` is disconnected.
//! - Errors the server itself raises carry `X-OpenFaaS-Internal: fwatchdog` and a one-line
//!   plain-text reason ([`internal_response`]).
//! - Graceful shutdown: when the shutdown future resolves, the server marks itself unhealthy
//!   (removing the lock file), keeps serving for [`ServeConfig::shutdown_delay`], stops accepting,
//!   and drains in-flight requests for up to `write_timeout`.
//! - Metrics on an optional second listener ([`Server::with_metrics_listener`]): `GET /metrics`
//!   with `http_requests_total`, `http_requests_in_flight` and `http_request_duration_seconds`.
//!
//! - In-process calls ([`Server::in_process`]): a program that runs the server in its own process
//!   (the local provider of faas-rs) can call it without a socket, with every rule above except
//!   those of the connection itself (header size, head read timeout, stalled writes): health
//!   paths, 413, 429, `read_timeout` on the body, `write_timeout` on the response, metrics,
//!   `X-Duration-Seconds`, `X-Call-Id`, and draining on shutdown.
//!
//! There is no global state: many servers can run in one process, each on its own port.
//!
//! # Examples
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use faas_watchdog::server::{RequestBody, ServeConfig, Server, shutdown_signal};
//! use http_body_util::Full;
//!
//! # async fn run() -> std::io::Result<()> {
//! let hello = tower::service_fn(|_req: http::Request<RequestBody>| async {
//!     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
//! });
//! let config = ServeConfig::default().with_max_inflight(100);
//! let server = Server::bind("127.0.0.1:8080".parse().unwrap(), config).await?;
//! println!("listening on {}", server.local_addr());
//! server.serve(hello, shutdown_signal()).await
//! # }
//! ```

mod body;
mod io;
mod metrics;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use faas_core::invoke::Body as CoreBody;
use faas_core::model::InProcess;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

pub use body::{RequestBody, RequestBodyError};
pub use metrics::Metrics;

use body::{RequestGuard, ResponseBody};

/// A boxed error, as services and bodies may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `X-OpenFaaS-Internal`: marks a response the watchdog wrote itself, not the function.
pub const X_OPENFAAS_INTERNAL: HeaderName = HeaderName::from_static("x-openfaas-internal");
/// `X-Duration-Seconds`: how long the request took, on every response.
pub const X_DURATION_SECONDS: HeaderName = HeaderName::from_static("x-duration-seconds");
/// `X-Call-Id`: the gateway's id of a call, passed through.
pub const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");

/// The settings of a [`Server`].
///
/// Built from [`ServeConfig::default`] and the `with_*` setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The time a client has to send a request's head and body (10s).
    pub read_timeout: Duration,
    /// The time a response may take, the longest a write may stall on a client that does not read,
    /// and the drain limit on shutdown (10s).
    pub write_timeout: Duration,
    /// Requests served at once; more get 429 (0 = no limit).
    pub max_inflight: usize,
    /// The largest request head in bytes; larger gets 431 (1 MiB, at least 8 KiB).
    pub max_header_bytes: usize,
    /// The largest request body; larger gets 413 (`None` = no limit).
    pub max_body_bytes: Option<u64>,
    /// When set, `/_/ready` asks the service at this path (e.g. `/ready`).
    pub ready_path: Option<String>,
    /// A file written once ready and removed on shutdown, as OpenFaaS's `/tmp/.lock` (none by default).
    pub lock_file: Option<PathBuf>,
    /// When true, the server is not ready until [`Health::set_ready`] is called; otherwise it is
    /// ready as soon as it serves.
    pub wait_for_ready: bool,
    /// How long to keep serving, unhealthy, after shutdown is asked for and before draining (0).
    pub shutdown_delay: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_inflight: 0,
            max_header_bytes: 1 << 20,
            max_body_bytes: None,
            ready_path: None,
            lock_file: None,
            wait_for_ready: false,
            shutdown_delay: Duration::ZERO,
        }
    }
}

impl ServeConfig {
    /// Sets the read timeout.
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets the write timeout.
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets `max_inflight` (0 = no limit).
    #[must_use]
    pub fn with_max_inflight(mut self, max: usize) -> Self {
        self.max_inflight = max;
        self
    }

    /// Sets the header size limit.
    #[must_use]
    pub fn with_max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = max;
        self
    }

    /// Sets the body size limit.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: Option<u64>) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Sets the readiness path of the service.
    #[must_use]
    pub fn with_ready_path(mut self, path: Option<String>) -> Self {
        self.ready_path = path;
        self
    }

    /// Sets the lock file.
    #[must_use]
    pub fn with_lock_file(mut self, path: Option<PathBuf>) -> Self {
        self.lock_file = path;
        self
    }

    /// Waits for [`Health::set_ready`] before reporting healthy.
    #[must_use]
    pub fn with_wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = wait;
        self
    }

    /// Sets the delay between the shutdown request and draining.
    #[must_use]
    pub fn with_shutdown_delay(mut self, delay: Duration) -> Self {
        self.shutdown_delay = delay;
        self
    }
}

pub(crate) struct Shared {
    config: ServeConfig,
    metrics: Metrics,
    ready: AtomicBool,
    shutting_down: AtomicBool,
    local: Local,
}

/// The service as in-process calls reach it: the served service with its body boxed.
type LocalService =
    tower::util::BoxCloneService<Request<RequestBody>, Response<CoreBody>, BoxError>;

/// The in-process entry point of a server: the service while it serves, and the in-process calls
/// not finished yet (drained on shutdown as connections are).
#[derive(Default)]
struct Local {
    service: Mutex<Option<LocalService>>,
    active: AtomicUsize,
    idle: Notify,
}

impl Local {
    fn install(&self, service: Option<LocalService>) {
        *self.service.lock().unwrap_or_else(|e| e.into_inner()) = service;
    }

    /// Waits until no in-process call is in flight.
    async fn drained(&self) {
        while self.active.load(Ordering::Acquire) > 0 {
            self.idle.notified().await;
        }
    }
}

/// A handle on a server's health: readiness, lock file, requests in flight and metrics.
///
/// Cheap to clone; valid before, while and after the server runs.
#[derive(Clone)]
pub struct Health(Arc<Shared>);

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("ready", &self.is_ready())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Health {
    /// Marks the server ready (writing the lock file, when configured) or not ready (removing it).
    ///
    /// # Errors
    ///
    /// The lock file could not be written.
    pub fn set_ready(&self, ready: bool) -> std::io::Result<()> {
        if ready {
            if self.0.shutting_down.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Some(path) = &self.0.config.lock_file {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path, b"")?;
            }
            self.0.ready.store(true, Ordering::Release);
        } else {
            self.0.ready.store(false, Ordering::Release);
            if let Some(path) = &self.0.config.lock_file {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// Whether the server answers 200 on `/_/health`.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
            && !self.0.shutting_down.load(Ordering::Acquire)
            && self.0.config.lock_file.as_ref().is_none_or(|p| p.exists())
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> usize {
        self.0.metrics.in_flight()
    }

    /// The request metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

/// An HTTP server bound to its listener(s), ready to [serve](Server::serve) a service.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    health: Health,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn bind(addr: SocketAddr, config: ServeConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_listener(listener, config)
    }

    /// Serves on an already bound listener.
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn from_listener(listener: TcpListener, config: ServeConfig) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let shared = Shared {
            config,
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            local: Local::default(),
        };
        Ok(Server {
            listener,
            local_addr,
            metrics_listener: None,
            health: Health(Arc::new(shared)),
        })
    }

    /// Also serves Prometheus metrics on `listener` (`GET /metrics`).
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        self.metrics_listener = Some((listener, addr));
        Ok(self)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the metrics listener, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, a)| *a)
    }

    /// The server's health handle.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// A handle to call the served service in this process, without a socket.
    ///
    /// Calls go through the same rules as requests on the listener (see the [module docs](self)).
    /// The handle takes requests while [`serve`](Server::serve) accepts connections; before and
    /// after that a call fails with an error without reading the request's body (the contract of
    /// [`InProcessService`](faas_core::model::InProcessService)). Calls in flight when the
    /// server shuts down are drained like connections.
    pub fn in_process(&self) -> InProcess {
        InProcess::new(tower::util::BoxCloneSyncService::new(LocalCall {
            shared: self.health.0.clone(),
        }))
    }

    /// Serves `service` until `shutdown` resolves, then drains (see the [module docs](self)).
    ///
    /// The service is cloned per request; errors it returns become 500 responses marked
    /// `X-OpenFaaS-Internal`.
    ///
    /// # Errors
    ///
    /// The lock file could not be written when the server became ready.
    pub async fn serve<S, B, F>(self, service: S, shutdown: F) -> std::io::Result<()>
    where
        S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
        F: Future<Output = ()>,
    {
        let Server {
            listener,
            metrics_listener,
            health,
            ..
        } = self;
        let shared = health.0.clone();
        let metrics_task =
            metrics_listener.map(|(l, _)| tokio::spawn(serve_metrics(l, shared.clone())));
        let result = serve_inner(listener, &health, service, shutdown).await;
        if let Some(task) = metrics_task {
            task.abort();
        }
        result
    }
}

async fn serve_inner<S, B, F>(
    listener: TcpListener,
    health: &Health,
    service: S,
    shutdown: F,
) -> std::io::Result<()>
where
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    F: Future<Output = ()>,
{
    let shared = health.0.clone();
    let config = &shared.config;
    shared.local.install(Some(LocalService::new(
        service
            .clone()
            .map_response(|resp: Response<B>| resp.map(CoreBody::new))
            .map_err(Into::into),
    )));
    // However serving ends, in-process calls stop being taken.
    let _uninstall = Uninstall(&shared.local);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();

    if !config.wait_for_ready {
        health.set_ready(true)?;
    }

    let accept = |stream: tokio::net::TcpStream| {
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(io::StallTimeoutIo::new(stream, config.write_timeout));
        let shared = shared.clone();
        let service = service.clone();
        let conn = builder.serve_connection(
            io,
            service_fn(move |req| handle(shared.clone(), service.clone(), req)),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    };

    accept_until(&listener, &accept, shutdown).await;
    shared.shutting_down.store(true, Ordering::Release);
    let _ = health.set_ready(false);
    if !config.shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.shutdown_delay, "shutting down: unhealthy, still serving");
        accept_until(
            &listener,
            &accept,
            tokio::time::sleep(config.shutdown_delay),
        )
        .await;
    }
    // Stop accepting: new connections are refused instead of waiting in the backlog, and new
    // in-process calls fail (their callers try another replica).
    drop(listener);
    shared.local.install(None);
    tracing::info!(
        in_flight = shared.metrics.in_flight(),
        "shutting down: draining"
    );
    let drained = async { tokio::join!(graceful.shutdown(), shared.local.drained()) };
    if tokio::time::timeout(config.write_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = shared.metrics.in_flight(),
            "drain timed out after write_timeout"
        );
    }
    Ok(())
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Removes the in-process service when serving ends.
struct Uninstall<'a>(&'a Local);

impl Drop for Uninstall<'_> {
    fn drop(&mut self) {
        self.0.install(None);
    }
}

/// The service behind [`Server::in_process`].
#[derive(Clone)]
struct LocalCall {
    shared: Arc<Shared>,
}

impl tower::Service<Request<CoreBody>> for LocalCall {
    type Response = Response<CoreBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<CoreBody>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<CoreBody>) -> Self::Future {
        let local = &self.shared.local;
        // Counted under the lock, so that a shutdown that removes the service after this point
        // waits for this call.
        let (service, guard) = {
            let installed = local.service.lock().unwrap_or_else(|e| e.into_inner());
            match &*installed {
                Some(service) => (service.clone(), LocalGuard::enter(self.shared.clone())),
                None => return Box::pin(std::future::ready(Err("replica is not serving".into()))),
            }
        };
        let shared = self.shared.clone();
        Box::pin(async move {
            let Ok(resp) = handle(shared, service, req).await;
            Ok(resp.map(|body| {
                CoreBody::new(Tracked {
                    inner: body,
                    guard: Some(guard),
                })
            }))
        })
    }
}

/// One in-process call in flight.
struct LocalGuard(Arc<Shared>);

impl LocalGuard {
    fn enter(shared: Arc<Shared>) -> Self {
        shared.local.active.fetch_add(1, Ordering::AcqRel);
        LocalGuard(shared)
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        if self.0.local.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.local.idle.notify_one();
        }
    }
}

pin_project_lite::pin_project! {
    /// The response body of an in-process call: ends the call when it ends.
    struct Tracked<B> {
        #[pin]
        inner: B,
        guard: Option<LocalGuard>,
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) | Poll::Ready(Some(Err(_))) = polled {
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request body the server can read: a connection's, or an in-process call's.
trait IntoRequestBody: Send + 'static {
    fn into_request_body(self, limit: Option<u64>, deadline: tokio::time::Instant) -> RequestBody;
}

impl IntoRequestBody for Incoming {
    fn into_request_body(self, limit: Option<u64>, deadline: tokio::time::Instant) -> RequestBody {
        RequestBody::incoming(self, limit, Some(deadline))
    }
}

impl IntoRequestBody for CoreBody {
    fn into_request_body(self, limit: Option<u64>, deadline: tokio::time::Instant) -> RequestBody {
        RequestBody::boxed(self, limit, Some(deadline))
    }
}

async fn accept_until<F: Future>(
    listener: &TcpListener,
    accept: &impl Fn(tokio::net::TcpStream),
    until: F,
) {
    let mut until = pin!(until);
    loop {
        tokio::select! {
            biased;
            _ = &mut until => return,
            res = listener.accept() => match res {
                Ok((stream, _)) => accept(stream),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// A response the server (or the watchdog) writes itself: `status`, a one-line plain-text
/// `reason` and `X-OpenFaaS-Internal: fwatchdog`.
pub fn internal_response<B: From<Bytes>>(status: StatusCode, reason: &str) -> Response<B> {
    let mut text = String::with_capacity(reason.len() + 1);
    text.push_str(reason.lines().next().unwrap_or(""));
    text.push('\n');
    let mut resp = Response::new(B::from(Bytes::from(text)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(X_OPENFAAS_INTERNAL, HeaderValue::from_static("fwatchdog"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn duration_header(start: StdInstant) -> HeaderValue {
    let text = format!("{:.6}", start.elapsed().as_secs_f64());
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("0.000000"))
}

fn simple<B>(
    status: StatusCode,
    text: &'static str,
    start: StdInstant,
) -> Response<ResponseBody<B>> {
    let mut resp = Response::new(ResponseBody::full(
        Bytes::from_static(text.as_bytes()),
        None,
    ));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(X_DURATION_SECONDS, duration_header(start));
    resp
}

fn internal<B>(
    status: StatusCode,
    reason: &str,
    guard: Option<RequestGuard>,
    start: StdInstant,
) -> Response<ResponseBody<B>> {
    let resp: Response<Bytes> = internal_response(status, reason);
    let (mut parts, bytes) = resp.into_parts();
    parts
        .headers
        .insert(X_DURATION_SECONDS, duration_header(start));
    let guard = guard.map(|mut g| {
        g.code = status.as_u16();
        g
    });
    Response::from_parts(parts, ResponseBody::full(bytes, guard))
}

async fn handle<S, B, I>(
    shared: Arc<Shared>,
    service: S,
    req: Request<I>,
) -> Result<Response<ResponseBody<B>>, Infallible>
where
    I: IntoRequestBody,
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let start = StdInstant::now();
    let config = &shared.config;
    match req.uri().path() {
        "/_/health" => return Ok(health_response(&shared, req.method(), start)),
        "/_/ready" => {
            let method = req.method().clone();
            drop(req);
            return Ok(ready_response(&shared, service, &method, start).await);
        }
        _ => {}
    }

    let method = req.method().clone();
    let mut guard = RequestGuard {
        shared: shared.clone(),
        method,
        code: 200,
        start,
        in_flight: false,
    };

    if let Some(limit) = config.max_body_bytes
        && let Some(len) = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limit
    {
        let reason = format!("request body of {len} bytes over the limit of {limit} bytes");
        return Ok(internal(
            StatusCode::PAYLOAD_TOO_LARGE,
            &reason,
            Some(guard),
            start,
        ));
    }

    let before = shared.metrics.enter();
    guard.in_flight = true;
    if config.max_inflight > 0 && before >= config.max_inflight {
        let reason = format!(
            "concurrent request limit exceeded: max_inflight={}",
            config.max_inflight
        );
        return Ok(internal(
            StatusCode::TOO_MANY_REQUESTS,
            &reason,
            Some(guard),
            start,
        ));
    }

    let call_id = req.headers().get(X_CALL_ID).cloned();
    let deadline = tokio::time::Instant::from_std(start) + config.read_timeout;
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(
        parts,
        body.into_request_body(config.max_body_bytes, deadline),
    );

    let mut resp = match service.oneshot(req).await {
        Ok(resp) => {
            let write_deadline = start + config.write_timeout;
            let (parts, body) = resp.into_parts();
            guard.code = parts.status.as_u16();
            Response::from_parts(
                parts,
                ResponseBody::service(body, Some(guard), Some(write_deadline)),
            )
        }
        Err(e) => {
            let e: BoxError = e.into();
            tracing::warn!(error = %e, "service failed");
            internal(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("function error: {e}"),
                Some(guard),
                start,
            )
        }
    };
    let headers = resp.headers_mut();
    headers.insert(X_DURATION_SECONDS, duration_header(start));
    if let Some(id) = call_id
        && !headers.contains_key(X_CALL_ID)
    {
        headers.insert(X_CALL_ID, id);
    }
    Ok(resp)
}

fn health_response<B>(
    shared: &Arc<Shared>,
    method: &Method,
    start: StdInstant,
) -> Response<ResponseBody<B>> {
    if method != Method::GET && method != Method::HEAD {
        return simple(StatusCode::METHOD_NOT_ALLOWED, "", start);
    }
    if Health(shared.clone()).is_ready() {
        simple(StatusCode::OK, "OK", start)
    } else {
        simple(StatusCode::SERVICE_UNAVAILABLE, "", start)
    }
}

async fn ready_response<S, B>(
    shared: &Arc<Shared>,
    service: S,
    method: &Method,
    start: StdInstant,
) -> Response<ResponseBody<B>>
where
    S: tower::Service<Request<RequestBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    if method != Method::GET && method != Method::HEAD {
        return simple(StatusCode::METHOD_NOT_ALLOWED, "", start);
    }
    if !Health(shared.clone()).is_ready() {
        return simple(StatusCode::SERVICE_UNAVAILABLE, "", start);
    }
    let max = shared.config.max_inflight;
    if max > 0 && shared.metrics.in_flight() >= max {
        return simple(StatusCode::TOO_MANY_REQUESTS, "", start);
    }
    let Some(path) = &shared.config.ready_path else {
        return simple(StatusCode::OK, "OK", start);
    };
    let mut probe = Request::new(RequestBody::empty());
    *probe.uri_mut() = match path.parse() {
        Ok(uri) => uri,
        Err(_) => return simple(StatusCode::SERVICE_UNAVAILABLE, "", start),
    };
    match service.oneshot(probe).await {
        Ok(resp) if resp.status().is_success() => simple(StatusCode::OK, "OK", start),
        _ => simple(StatusCode::SERVICE_UNAVAILABLE, "", start),
    }
}

async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let resp = if req.uri().path() == "/metrics" && req.method() == Method::GET {
                        let mut resp = Response::new(http_body_util::Full::new(Bytes::from(
                            shared.metrics.render(),
                        )));
                        resp.headers_mut().insert(
                            CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                        );
                        resp
                    } else {
                        internal_response(
                            StatusCode::NOT_FOUND,
                            "not found: metrics are at /metrics",
                        )
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C): the shutdown future of a replica binary.
///
/// Installs process-wide signal handlers, so it belongs in binaries, not in embedded servers.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// Answers after `/slow` is released through the channel, echoes the body otherwise.
    fn service(
        release: Arc<tokio::sync::Semaphore>,
    ) -> impl tower::Service<
        Request<RequestBody>,
        Response = Response<http_body_util::Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |req: Request<RequestBody>| {
            let release = release.clone();
            async move {
                if req.uri().path() == "/slow" {
                    let _permit = release.acquire().await;
                }
                let body = match req.into_body().collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(e) => Bytes::from(format!("{} {e}", e.status().as_u16())),
                };
                Ok(Response::new(http_body_util::Full::new(body)))
            }
        })
    }

    async fn text(resp: Response<CoreBody>) -> (StatusCode, String) {
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn post(path: &str, body: &'static str) -> Request<CoreBody> {
        Request::post(path).body(CoreBody::from(body)).unwrap()
    }

    #[tokio::test]
    async fn in_process_calls_follow_the_server_lifecycle_and_rules() {
        let config = ServeConfig::default()
            .with_max_inflight(1)
            .with_max_body_bytes(Some(8))
            .with_write_timeout(Duration::from_secs(30));
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let health = server.health();
        let handle = server.in_process();
        // Not serving yet: refused, and the body is left alone.
        assert!(handle.service().oneshot(post("/", "x")).await.is_err());

        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(service(release.clone()), async move {
            let _ = stopped.await;
        }));
        tokio::time::timeout(Duration::from_secs(10), async {
            while handle.service().oneshot(post("/", "")).await.is_err() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("calls taken once serving");
        let resp = handle.service().oneshot(post("/", "hello")).await.unwrap();
        assert!(resp.headers().contains_key(X_DURATION_SECONDS));
        assert_eq!(text(resp).await, (StatusCode::OK, "hello".to_owned()));

        // Limits: a declared length over max_body_bytes at once, a streamed one while read.
        let mut over = post("/", "123456789");
        over.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("9"));
        let resp = handle.service().oneshot(over).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(resp.headers()[X_OPENFAAS_INTERNAL], "fwatchdog");
        // (An unread response is a call in flight, as one being written to a connection.)
        drop(resp);
        let resp = handle
            .service()
            .oneshot(post("/", "123456789"))
            .await
            .unwrap();
        assert!(text(resp).await.1.starts_with("413 "));

        // max_inflight=1: a second call while one runs is 429.
        let slow = tokio::spawn(handle.service().oneshot(post("/slow", "slow")));
        tokio::time::timeout(Duration::from_secs(10), async {
            while health.in_flight() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the slow call in flight");
        let resp = handle.service().oneshot(post("/", "x")).await.unwrap();
        assert_eq!(text(resp).await.0, StatusCode::TOO_MANY_REQUESTS);
        let call_id = Request::get("/_/health")
            .header(X_CALL_ID, "c1")
            .body(CoreBody::empty())
            .unwrap();
        assert_eq!(
            text(handle.service().oneshot(call_id).await.unwrap()).await,
            (StatusCode::OK, "OK".to_owned())
        );

        // Shutdown with the slow call in flight: new calls are refused, the server waits for it.
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while handle.service().oneshot(post("/", "x")).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("calls refused once shutting down");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!serving.is_finished(), "the server waits for the call");
        release.add_permits(1);
        let resp = slow.await.unwrap().unwrap();
        assert_eq!(text(resp).await, (StatusCode::OK, "slow".to_owned()));
        tokio::time::timeout(Duration::from_secs(10), serving)
            .await
            .expect("the server stops once drained")
            .unwrap()
            .unwrap();
        assert_eq!(health.in_flight(), 0);
    }
}
