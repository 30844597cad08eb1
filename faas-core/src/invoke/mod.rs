//! The invoker: sends one HTTP request to one of a function's ready replicas and streams the answer
//! back. The gateway's `/function/` route and the queue worker both use it.
//!
//! What it does for every call:
//! - resolves the function's ready [`Endpoint`](crate::model::Endpoint)s through
//!   [`Provider::endpoints`], cached briefly (1 s by default) and refreshed as soon as a replica cannot
//!   be reached;
//! - scales a function that has no replica from zero (to its `com.openfaas.scale.min` label, at least 1)
//!   and waits, bounded, for a ready replica; concurrent calls share one scale-up;
//! - picks the replica with the fewest requests in flight (ties round-robin);
//! - calls a replica that runs in this process through its [in-process
//!   handle](crate::model::Endpoint::in_process) (no socket), any other over pooled keep-alive
//!   connections, streaming both bodies, retrying on another replica only when the replica was not
//!   reached (connection failed, handle refused) before any byte of the request was sent;
//! - applies the function's timeout (its `exec_timeout` env var, else the default) and adds `X-Call-Id`
//!   (the caller's is kept), `X-Start-Time` and `X-Duration-Seconds`.
//!
//! ```no_run
//! # async fn run(provider: std::sync::Arc<dyn faas_core::Provider>) -> Result<(), Box<dyn std::error::Error>> {
//! use faas_core::invoke::{Body, Invoker};
//!
//! let invoker = Invoker::new(provider);
//! let request = http::Request::post("/?verbose=1").body(Body::from("hello"))?;
//! let response = invoker.invoke("echo", "", request).await?;
//! assert!(response.headers().contains_key("x-call-id"));
//! # Ok(()) }
//! ```

mod balance;
mod body;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::model::LABEL_SCALE_MIN;
use crate::validate::{FunctionName, Namespace};
use crate::{BoxError, Error, ErrorKind, Provider, Result};
use balance::{FunctionState, Functions, InflightGuard, Snapshot};

/// The body type of invocations, both ways: a boxed, streaming body of [`bytes::Bytes`].
///
/// It is axum's body type (so the gateway nests in an axum `Router` without conversion); build one
/// with `Body::from(bytes)`, `Body::empty()` or `Body::new(any_http_body)`.
pub type Body = axum::body::Body;

/// Header carrying the call's id (kept when the caller sets it).
pub const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
/// Header carrying when the gateway received the call, in Unix nanoseconds (as OpenFaaS).
pub const X_START_TIME: HeaderName = HeaderName::from_static("x-start-time");
/// Header carrying how long the function took to answer, in seconds.
pub const X_DURATION_SECONDS: HeaderName = HeaderName::from_static("x-duration-seconds");

/// The default function timeout when a function sets no `exec_timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Calls functions on their replicas. Cheap to clone (an `Arc` inside); clones share the connection
/// pool, the endpoint cache and the in-flight counts.
#[derive(Clone, Debug)]
pub struct Invoker {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Arc<dyn Provider>,
    client: Client<HttpConnector, body::Reclaimable>,
    functions: Functions,
    config: InvokerBuilder,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invoker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Configures an [`Invoker`]; see [`Invoker::builder`].
#[derive(Clone)]
#[must_use]
pub struct InvokerBuilder {
    provider: Arc<dyn Provider>,
    default_timeout: Duration,
    endpoint_ttl: Duration,
    cold_start_timeout: Duration,
    connect_timeout: Duration,
    max_attempts: usize,
    scale_from_zero: bool,
    pool_idle_timeout: Duration,
}

impl std::fmt::Debug for InvokerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokerBuilder")
            .field("provider", &self.provider.info().name)
            .field("default_timeout", &self.default_timeout)
            .field("endpoint_ttl", &self.endpoint_ttl)
            .field("cold_start_timeout", &self.cold_start_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("scale_from_zero", &self.scale_from_zero)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .finish()
    }
}

impl InvokerBuilder {
    /// The timeout of functions that set no `exec_timeout` env var (default 60 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// How long a function's endpoints are cached before being asked again (default 1 s).
    pub fn endpoint_ttl(mut self, ttl: Duration) -> Self {
        self.endpoint_ttl = ttl;
        self
    }

    /// How long a call waits for a ready replica when the function has none, for example while it
    /// scales from zero (default 30 s).
    pub fn cold_start_timeout(mut self, timeout: Duration) -> Self {
        self.cold_start_timeout = timeout;
        self
    }

    /// How long connecting to a replica may take before trying another (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many replicas a call tries when connections fail before the request was sent (default 3,
    /// at least 1).
    pub fn max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Whether a call to a function scaled to zero scales it up (default true).
    pub fn scale_from_zero(mut self, enabled: bool) -> Self {
        self.scale_from_zero = enabled;
        self
    }

    /// How long an idle keep-alive connection to a replica stays in the pool (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Builds the invoker.
    pub fn build(self) -> Invoker {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        Invoker {
            inner: Arc::new(Inner {
                provider: self.provider.clone(),
                client,
                functions: Functions::default(),
                config: self,
            }),
        }
    }
}

impl Invoker {
    /// An invoker with the default settings.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Invoker::builder(provider).build()
    }

    /// A builder to configure timeouts, caching and retries.
    pub fn builder(provider: Arc<dyn Provider>) -> InvokerBuilder {
        InvokerBuilder {
            provider,
            default_timeout: DEFAULT_TIMEOUT,
            endpoint_ttl: Duration::from_secs(1),
            cold_start_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 3,
            scale_from_zero: true,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }

    /// The provider the invoker resolves functions with.
    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.inner.provider
    }

    /// The timeout of functions that set no `exec_timeout`.
    pub fn default_timeout(&self) -> Duration {
        self.inner.config.default_timeout
    }

    /// Drops what the invoker cached of function `name` in `namespace` (empty: the provider's
    /// default namespace): its endpoints and timeout are asked of the provider again at its next
    /// call. The gateway calls it after deploying, updating, scaling or deleting a function, so
    /// that a deleted function is 404 at once and an updated `exec_timeout` applies to the next
    /// call, rather than after the endpoint cache's TTL.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # fn demo(provider: Arc<dyn faas_core::Provider>) {
    /// let invoker = faas_core::invoke::Invoker::new(provider);
    /// invoker.forget("echo", "openfaas-fn");
    /// # }
    /// ```
    pub fn forget(&self, name: &str, namespace: &str) {
        let namespace = if namespace.is_empty() {
            self.inner.provider.default_namespace()
        } else {
            namespace
        };
        self.inner.functions.remove(&format!("{name}.{namespace}"));
    }

    /// Calls function `name` in `namespace` (empty: the provider's default namespace).
    ///
    /// `request`'s method, headers and body are sent as they are (hop-by-hop headers removed); its
    /// URI's path and query are the path suffix and query the function sees (`/` when empty). The
    /// response streams the function's body and carries `X-Call-Id`, `X-Start-Time` and
    /// `X-Duration-Seconds` (time to the response headers).
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`] for an invalid name or namespace,
    /// - [`ErrorKind::NotFound`] for an unknown function,
    /// - [`ErrorKind::BadGateway`] when no replica can be reached or becomes ready in time,
    /// - [`ErrorKind::Timeout`] when the function does not answer within its timeout,
    /// - [`ErrorKind::PayloadTooLarge`] when the request body went over a limit while being sent,
    /// - the provider's errors.
    pub async fn invoke(
        &self,
        name: &str,
        namespace: &str,
        request: Request<Body>,
    ) -> Result<Response<Body>> {
        let inner = &*self.inner;
        let namespace = if namespace.is_empty() {
            inner.provider.default_namespace()
        } else {
            namespace
        };
        let key = format!("{name}.{namespace}");
        let state = match inner.functions.cached(&key) {
            Some(state) => state,
            None => {
                // Only names that were valid once are cached: validate on a miss.
                FunctionName::new(name)?;
                Namespace::new(namespace)?;
                inner.functions.get(&key)
            }
        };
        let started = Instant::now();
        let start_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);

        let (mut parts, body) = request.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let call_id = match parts.headers.get(X_CALL_ID) {
            Some(id) if !id.is_empty() => id.clone(),
            // A v4 UUID from the thread-local generator: no system call per request.
            _ => HeaderValue::try_from(
                uuid::Builder::from_random_bytes(rand::random())
                    .into_uuid()
                    .to_string(),
            )
            .expect("uuid is a header value"),
        };
        parts.headers.insert(X_CALL_ID, call_id.clone());
        let start_value = HeaderValue::from(start_nanos as u64);
        parts.headers.insert(X_START_TIME, start_value.clone());
        if let Some(host) = parts.headers.remove(header::HOST) {
            parts.headers.entry("x-forwarded-host").or_insert(host);
        }
        let path_and_query = match parts.uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => pq.clone(),
            Some(pq) => format!("/{pq}").parse().map_err(|e| {
                Error::new(ErrorKind::InvalidInput, "invalid function path").with_source(e)
            })?,
            None => http::uri::PathAndQuery::from_static("/"),
        };

        let (first, slot) = body::Reclaimable::new(body);
        let mut request_body = Some(first);
        let mut tried: Vec<String> = Vec::new();
        let mut force_refresh = false;
        let mut last_error: Option<BoxError> = None;
        let mut deadline: Option<Instant> = None;

        for _ in 0..inner.config.max_attempts {
            let snapshot = match self
                .resolve(name, namespace, &key, &state, force_refresh)
                .await
            {
                Ok(snapshot) => snapshot,
                Err(err) => {
                    if err.kind() == ErrorKind::NotFound {
                        inner.functions.remove(&key);
                    }
                    return Err(err);
                }
            };
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + snapshot.timeout);
            let Some(replica) = state.pick(&snapshot, &tried) else {
                break;
            };
            let Some(body) = request_body
                .take()
                .or_else(|| body::Reclaimable::from_slot(&slot))
            else {
                break;
            };
            let guard = InflightGuard::new(replica.clone());
            let outcome = match replica.endpoint.in_process() {
                Some(local) => {
                    // The replica runs in this process: call its watchdog directly, as the hyper
                    // server of its listener would (origin-form URI, `Host` its address).
                    let mut upstream = Request::new(Body::new(body));
                    *upstream.method_mut() = parts.method.clone();
                    *upstream.uri_mut() = Uri::from(path_and_query.clone());
                    *upstream.headers_mut() = parts.headers.clone();
                    upstream
                        .headers_mut()
                        .insert(header::HOST, replica.host.clone());
                    let sent = local.service().oneshot(upstream);
                    match tokio::time::timeout_at(deadline, sent).await {
                        Ok(Ok(response)) if slot.over_limit() => {
                            drop(response);
                            Outcome::OverLimit
                        }
                        Ok(Ok(response)) => Outcome::Answered(response.map(Body::new)),
                        Ok(Err(err)) if slot.unsent() => Outcome::Unreached(err),
                        Ok(Err(err)) => Outcome::Failed(err),
                        Err(_) => Outcome::TimedOut,
                    }
                }
                None => {
                    let uri = Uri::builder()
                        .scheme("http")
                        .authority(replica.authority.clone())
                        .path_and_query(path_and_query.clone())
                        .build()
                        .map_err(|e| {
                            Error::internal("cannot build the replica's URI").with_source(e)
                        })?;
                    let mut upstream = Request::new(body);
                    *upstream.method_mut() = parts.method.clone();
                    *upstream.uri_mut() = uri;
                    *upstream.headers_mut() = parts.headers.clone();
                    let sent = inner.client.request(upstream);
                    match tokio::time::timeout_at(deadline, sent).await {
                        Ok(Ok(response)) => Outcome::AnsweredHttp(response),
                        Ok(Err(err)) if is_length_limit(&err) => Outcome::OverLimit,
                        Ok(Err(err)) if err.is_connect() && slot.unsent() => {
                            Outcome::Unreached(err.into())
                        }
                        Ok(Err(err)) => Outcome::Failed(err.into()),
                        Err(_) => Outcome::TimedOut,
                    }
                }
            };
            match outcome {
                Outcome::Answered(response) => {
                    return Ok(finish(
                        response,
                        guard,
                        deadline,
                        &key,
                        call_id,
                        start_value,
                        started,
                    ));
                }
                Outcome::AnsweredHttp(response) => {
                    return Ok(finish(
                        response,
                        guard,
                        deadline,
                        &key,
                        call_id,
                        start_value,
                        started,
                    ));
                }
                Outcome::OverLimit => {
                    return Err(Error::new(
                        ErrorKind::PayloadTooLarge,
                        "request body is over the limit",
                    ));
                }
                Outcome::Unreached(err) => {
                    tracing::debug!(function = %key, replica = %replica.endpoint.id, error = %err, "replica unreachable, trying another");
                    replica.mark_down(inner.config.endpoint_ttl.max(Duration::from_secs(1)));
                    tried.push(replica.endpoint.id.clone());
                    force_refresh = true;
                    last_error = Some(err);
                    continue;
                }
                Outcome::Failed(err) => {
                    return Err(Error::new(
                        ErrorKind::BadGateway,
                        format!("function {key} failed on replica {}", replica.endpoint.id),
                    )
                    .with_source(err));
                }
                Outcome::TimedOut => {
                    let timeout = snapshot.timeout;
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "function {key} did not answer within its timeout of {}",
                            fmt_secs(timeout)
                        ),
                    ));
                }
            }
        }
        let message = match tried.len() {
            0 => format!("function {key} cannot be reached: no ready replica"),
            n => format!("function {key} cannot be reached: {n} replica(s) refused the call"),
        };
        let err = Error::new(ErrorKind::BadGateway, message);
        Err(match last_error {
            Some(source) => err.with_source(source),
            None => err,
        })
    }

    /// The function's ready replicas and timeout, from the cache when fresh; otherwise asks the
    /// provider, scaling the function from zero and waiting for a replica when it has none.
    async fn resolve(
        &self,
        name: &str,
        namespace: &str,
        key: &str,
        state: &FunctionState,
        force: bool,
    ) -> Result<Arc<Snapshot>> {
        let ttl = self.inner.config.endpoint_ttl;
        let cached = state.snapshot();
        if let Some(snapshot) = &cached {
            let usable = !snapshot.replicas.is_empty();
            if usable && !force && snapshot.fetched.elapsed() < ttl {
                return Ok(snapshot.clone());
            }
            if usable && !force {
                // Stale: one caller refreshes, the others keep using what we have.
                return match state.refresh.try_lock() {
                    Ok(_guard) => match self.fetch(name, namespace, state).await {
                        Ok(fresh) if !fresh.replicas.is_empty() => Ok(fresh),
                        Ok(_) => {
                            drop(_guard);
                            self.wait_ready(name, namespace, key, state).await
                        }
                        Err(err) if err.kind() == ErrorKind::NotFound => Err(err),
                        Err(err) => {
                            tracing::warn!(function = %key, error = %err, "refreshing endpoints failed, using cached ones");
                            Ok(snapshot.clone())
                        }
                    },
                    Err(_) => Ok(snapshot.clone()),
                };
            }
        }
        if force {
            let fetched_before = cached.as_ref().map(|s| s.fetched);
            let _guard = state.refresh.lock().await;
            // Another caller may have refreshed while we waited for the lock.
            if let Some(snapshot) = state.snapshot()
                && Some(snapshot.fetched) != fetched_before
                && !snapshot.replicas.is_empty()
            {
                return Ok(snapshot);
            }
            let fresh = self.fetch(name, namespace, state).await?;
            if !fresh.replicas.is_empty() {
                return Ok(fresh);
            }
        }
        self.wait_ready(name, namespace, key, state).await
    }

    /// Asks the provider for the function's status and endpoints and stores them.
    async fn fetch(
        &self,
        name: &str,
        namespace: &str,
        state: &FunctionState,
    ) -> Result<Arc<Snapshot>> {
        let provider = &self.inner.provider;
        let status = provider.get(name, namespace).await?;
        let endpoints = provider.endpoints(name, namespace).await?;
        let timeout = status
            .timeout()
            .unwrap_or(self.inner.config.default_timeout);
        state.store(endpoints, timeout)
    }

    /// Under the function's refresh lock: scales it from zero when it has no replica and waits,
    /// bounded by the cold-start timeout, until one is ready. Callers queued on the lock find the
    /// fresh snapshot and return at once: they share one scale-up.
    async fn wait_ready(
        &self,
        name: &str,
        namespace: &str,
        key: &str,
        state: &FunctionState,
    ) -> Result<Arc<Snapshot>> {
        let _guard = state.refresh.lock().await;
        if let Some(snapshot) = state.snapshot()
            && !snapshot.replicas.is_empty()
            && snapshot.fetched.elapsed() < self.inner.config.endpoint_ttl
        {
            return Ok(snapshot);
        }
        let provider = &self.inner.provider;
        let status = provider.get(name, namespace).await?;
        let timeout = status
            .timeout()
            .unwrap_or(self.inner.config.default_timeout);
        let endpoints = provider.endpoints(name, namespace).await?;
        if !endpoints.is_empty() {
            return state.store(endpoints, timeout);
        }
        if status.replicas == 0 {
            if !self.inner.config.scale_from_zero {
                return Err(Error::new(
                    ErrorKind::BadGateway,
                    format!("function {key} is scaled to zero"),
                ));
            }
            let target = status
                .label(LABEL_SCALE_MIN)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(1)
                .max(1);
            tracing::info!(function = %key, replicas = target, "scaling from zero");
            provider.scale(name, namespace, target).await?;
        }
        let deadline = Instant::now() + self.inner.config.cold_start_timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            let endpoints = provider.endpoints(name, namespace).await?;
            if !endpoints.is_empty() {
                return state.store(endpoints, timeout);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::BadGateway,
                    format!(
                        "function {key} cannot be reached: no replica became ready within {}",
                        fmt_secs(self.inner.config.cold_start_timeout)
                    ),
                ));
            }
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

/// How one attempt on one replica ended.
enum Outcome {
    /// The in-process replica answered (any status).
    Answered(Response<Body>),
    /// The replica answered over HTTP (any status).
    AnsweredHttp(Response<hyper::body::Incoming>),
    /// The request body went over a limit while it was sent.
    OverLimit,
    /// The replica was not reached and the body was not sent: another replica may take it.
    Unreached(BoxError),
    /// The replica failed after the request was (partly) sent.
    Failed(BoxError),
    /// No answer within the function's timeout.
    TimedOut,
}

/// Turns the replica's response into the caller's: hop-by-hop headers removed, call headers added,
/// the body streaming under the function's deadline while holding the replica's in-flight slot.
fn finish<B>(
    response: Response<B>,
    guard: InflightGuard,
    deadline: Instant,
    key: &str,
    call_id: HeaderValue,
    start: HeaderValue,
    started: Instant,
) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, incoming) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(X_CALL_ID, call_id);
    parts.headers.insert(X_START_TIME, start);
    let seconds = format!("{:.6}", started.elapsed().as_secs_f64());
    parts.headers.insert(
        X_DURATION_SECONDS,
        HeaderValue::try_from(seconds).expect("digits are a header value"),
    );
    let body = body::Upstream::new(incoming, guard, deadline, Arc::from(key));
    Response::from_parts(parts, Body::new(body))
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Whether a body length limit ([`http_body_util::Limited`]) caused `err`.
pub(crate) fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn fmt_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-kept"], "yes");
    }

    #[test]
    fn seconds_format() {
        assert_eq!(fmt_secs(Duration::from_secs(10)), "10s");
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.500s");
    }
}
