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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
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
    // Stop accepting: new connections are refused instead of waiting in the backlog.
    drop(listener);
    tracing::info!(
        in_flight = shared.metrics.in_flight(),
        "shutting down: draining"
    );
    if tokio::time::timeout(config.write_timeout, graceful.shutdown())
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

async fn handle<S, B>(
    shared: Arc<Shared>,
    service: S,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody<B>>, Infallible>
where
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let start = StdInstant::now();
    let config = &shared.config;
    match req.uri().path() {
        "/_/health" => return Ok(health_response(&shared, &req, start)),
        "/_/ready" => return Ok(ready_response(&shared, service, &req, start).await),
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
        RequestBody::incoming(body, config.max_body_bytes, Some(deadline)),
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
    req: &Request<Incoming>,
    start: StdInstant,
) -> Response<ResponseBody<B>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
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
    req: &Request<Incoming>,
    start: StdInstant,
) -> Response<ResponseBody<B>>
where
    S: tower::Service<Request<RequestBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    if req.method() != Method::GET && req.method() != Method::HEAD {
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
