//! The queue worker: consumes a [`Queue`], runs each call through the same
//! [`Invoker`] as synchronous calls, retries, calls back and records the outcome.
//!
//! For every delivery the worker
//! 1. skips a call whose record is already final (a redelivery after a crash between recording the
//!    outcome and the ack) or cancelled;
//! 2. takes a slot of the global bound ([`WorkerConfig::concurrency`]) and of the function's bound
//!    (its `max_inflight` env var, else [`WorkerConfig::function_concurrency`]); a call whose function
//!    is at its bound goes back to the queue for a moment;
//! 3. records `running`, invokes, and while it runs tells the queue it is still in progress (so a
//!    slow function is not delivered to a second worker);
//! 4. on a retryable outcome (a status in [`RetryPolicy::codes`], a connection error or a timeout)
//!    with attempts and time left, records `queued` and nacks the delivery with an exponential,
//!    jittered backoff (at least the function's `Retry-After`);
//! 5. otherwise POSTs the response to the call's `X-Callback-Url` (retried), records the final
//!    status durably, and only then acks.
//!
//! Retry settings per function come from the annotations `com.openfaas.retry.attempts`,
//! `com.openfaas.retry.codes` (`"429,503"`), `com.openfaas.retry.min_wait` and
//! `com.openfaas.retry.max_wait` (durations like `"2s"`).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::tls::HttpsClient;

use super::records::{
    Durability, InvocationRecord, InvocationResult, InvocationStatus, InvocationStore,
};
use super::{
    Delivery, HEADER_CALL_ID, HEADER_DURATION_SECONDS, HEADER_FUNCTION_NAME,
    HEADER_FUNCTION_STATUS, Queue, QueuedRequest,
};
use crate::invoke::{Body, Invoker};
use crate::model::{FunctionStatus, parse_duration};
use crate::{Error, ErrorKind, Result};

/// Annotation: how many attempts a call of this function gets in all.
pub const ANNOTATION_RETRY_ATTEMPTS: &str = "com.openfaas.retry.attempts";
/// Annotation: the status codes retried, comma-separated (`"429,502,503"`).
pub const ANNOTATION_RETRY_CODES: &str = "com.openfaas.retry.codes";
/// Annotation: the first backoff (a duration, `"1s"`).
pub const ANNOTATION_RETRY_MIN_WAIT: &str = "com.openfaas.retry.min_wait";
/// Annotation: the longest backoff (a duration, `"2m"`).
pub const ANNOTATION_RETRY_MAX_WAIT: &str = "com.openfaas.retry.max_wait";
/// The function env var (the watchdog's) bounding its concurrent calls; the worker honours it.
pub const ENV_MAX_INFLIGHT: &str = "max_inflight";

/// When and how often a failed call is tried again (OpenFaaS Pro's `max_retry_attempts`,
/// `initial_retry_wait`, `max_retry_wait`, `retry_http_codes`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1). Default 10.
    pub max_attempts: u32,
    /// The first backoff; each next one doubles. Default 1 s.
    pub initial_wait: Duration,
    /// The longest backoff. Default 2 minutes.
    pub max_wait: Duration,
    /// No retry starts later than this after the call was queued. Default 1 hour.
    pub max_total: Duration,
    /// The function status codes that are retried. Default 408, 429, 500, 502, 503, 504.
    pub codes: Vec<u16>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            initial_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(120),
            max_total: Duration::from_secs(3600),
            codes: vec![408, 429, 500, 502, 503, 504],
        }
    }
}

impl RetryPolicy {
    /// Sets the attempts in all.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first backoff.
    #[must_use]
    pub fn with_initial_wait(mut self, wait: Duration) -> Self {
        self.initial_wait = wait;
        self
    }

    /// Sets the longest backoff.
    #[must_use]
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Sets the total time bound.
    #[must_use]
    pub fn with_max_total(mut self, total: Duration) -> Self {
        self.max_total = total;
        self
    }

    /// Sets the retried status codes.
    #[must_use]
    pub fn with_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.codes = codes.into_iter().collect();
        self
    }

    /// This policy with a function's `com.openfaas.retry.*` annotations applied; invalid values
    /// are logged and ignored.
    pub fn for_function(&self, function: &FunctionStatus) -> Self {
        let mut policy = self.clone();
        let warn = |key: &str, value: &str| {
            tracing::warn!(function = %function.name, annotation = key, value, "ignoring an invalid retry annotation");
        };
        if let Some(v) = function.annotation(ANNOTATION_RETRY_ATTEMPTS) {
            match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => policy.max_attempts = n,
                _ => warn(ANNOTATION_RETRY_ATTEMPTS, v),
            }
        }
        if let Some(v) = function.annotation(ANNOTATION_RETRY_CODES) {
            let codes: std::result::Result<Vec<u16>, _> = v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    c.parse::<u16>().map_err(|_| ()).and_then(|n| {
                        if (100..600).contains(&n) {
                            Ok(n)
                        } else {
                            Err(())
                        }
                    })
                })
                .collect();
            match codes {
                Ok(codes) => policy.codes = codes,
                Err(()) => warn(ANNOTATION_RETRY_CODES, v),
            }
        }
        if let Some(v) = function.annotation(ANNOTATION_RETRY_MIN_WAIT) {
            match parse_duration(v) {
                Ok(d) => policy.initial_wait = d,
                Err(_) => warn(ANNOTATION_RETRY_MIN_WAIT, v),
            }
        }
        if let Some(v) = function.annotation(ANNOTATION_RETRY_MAX_WAIT) {
            match parse_duration(v) {
                Ok(d) => policy.max_wait = d,
                Err(_) => warn(ANNOTATION_RETRY_MAX_WAIT, v),
            }
        }
        policy
    }

    /// Whether a function status is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.codes.contains(&status)
    }

    /// The wait after failed attempt `attempt` (1-based): `initial_wait * 2^(attempt-1)` capped at
    /// `max_wait`, then jittered to between half and all of it.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let base = self
            .initial_wait
            .saturating_mul(1u32 << exp)
            .min(self.max_wait);
        let half = base / 2;
        let jitter = rand::rng().random_range(0.0..=1.0f64);
        half + half.mul_f64(jitter)
    }
}

/// How results are delivered to `X-Callback-Url`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallbackPolicy {
    /// Attempts in all (at least 1). Default 5.
    pub max_attempts: u32,
    /// The timeout of one attempt. Default 10 s.
    pub timeout: Duration,
    /// The first backoff; doubles up to 10 s. Default 200 ms.
    pub initial_wait: Duration,
    /// A PEM file of extra root certificates trusted for `https` callbacks, beyond the system's
    /// (an internal CA). Default none.
    pub ca_file: Option<PathBuf>,
}

impl Default for CallbackPolicy {
    fn default() -> Self {
        CallbackPolicy {
            max_attempts: 5,
            timeout: Duration::from_secs(10),
            initial_wait: Duration::from_millis(200),
            ca_file: None,
        }
    }
}

impl CallbackPolicy {
    /// Sets the attempts in all.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the timeout of one attempt.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the first backoff.
    #[must_use]
    pub fn with_initial_wait(mut self, wait: Duration) -> Self {
        self.initial_wait = wait;
        self
    }

    /// Trusts the root certificates of the PEM file `path` for `https` callbacks, beside the
    /// system's.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Checks the policy's files: the CA file must be readable PEM holding a certificate. Call it
    /// at startup so that a typo fails there rather than at the first https callback.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the file and what is wrong with it.
    pub fn check(&self) -> Result<()> {
        if let Some(path) = &self.ca_file {
            super::tls::pem_certificates(path)?;
        }
        Ok(())
    }
}

/// Settings of a [`QueueWorker`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Calls running at once in this worker (at least 1). Default 64.
    pub concurrency: usize,
    /// Calls of one function running at once when the function sets no `max_inflight` env var;
    /// 0 means only the global bound applies. Default 0.
    pub function_concurrency: usize,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
    /// Callbacks.
    pub callback: CallbackPolicy,
    /// The most bytes of a response kept in the invocation record. Default 64 KiB.
    pub max_result_bytes: usize,
    /// The most bytes of a response read (and sent to the callback). Default 64 MiB.
    pub max_response_bytes: usize,
    /// How often a running call is reported in progress to the queue (keep it well under the
    /// queue's ack deadline). Default 5 s.
    pub progress_interval: Duration,
    /// How long a stopping worker lets running calls finish; the rest are delivered again later.
    /// Default 30 s.
    pub drain_timeout: Duration,
    /// How long a function's settings (annotations, `max_inflight`) are cached. Default 5 s.
    pub function_ttl: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 64,
            function_concurrency: 0,
            retry: RetryPolicy::default(),
            callback: CallbackPolicy::default(),
            max_result_bytes: 64 << 10,
            max_response_bytes: 64 << 20,
            progress_interval: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            function_ttl: Duration::from_secs(5),
        }
    }
}

impl WorkerConfig {
    /// Sets the global concurrency bound.
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the default per-function bound (0: none).
    #[must_use]
    pub fn with_function_concurrency(mut self, n: usize) -> Self {
        self.function_concurrency = n;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the callback policy.
    #[must_use]
    pub fn with_callback(mut self, callback: CallbackPolicy) -> Self {
        self.callback = callback;
        self
    }

    /// Sets the bound of a result kept in a record.
    #[must_use]
    pub fn with_max_result_bytes(mut self, n: usize) -> Self {
        self.max_result_bytes = n;
        self
    }

    /// Sets how often running calls are reported in progress.
    #[must_use]
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets how long a stopping worker waits for running calls.
    #[must_use]
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}

/// What the worker calls functions through: the [`Invoker`] in-process, or a remote gateway.
#[async_trait]
pub trait CallTarget: Send + Sync + 'static {
    /// Invokes `function`; the request's URI holds the path and query the function sees.
    async fn call(
        &self,
        function: &str,
        namespace: &str,
        request: Request<Body>,
    ) -> Result<Response<Body>>;

    /// The function's status (its annotations and env vars configure retries and concurrency).
    async fn function(&self, function: &str, namespace: &str) -> Result<FunctionStatus>;
}

#[async_trait]
impl CallTarget for Invoker {
    async fn call(
        &self,
        function: &str,
        namespace: &str,
        request: Request<Body>,
    ) -> Result<Response<Body>> {
        self.invoke(function, namespace, request).await
    }

    async fn function(&self, function: &str, namespace: &str) -> Result<FunctionStatus> {
        let namespace = if namespace.is_empty() {
            self.provider().default_namespace()
        } else {
            namespace
        };
        self.provider().get(function, namespace).await
    }
}

/// Counters of a worker since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Attempts made (invocations started).
    pub attempts: u64,
    /// Calls that ended `succeeded`.
    pub succeeded: u64,
    /// Calls that ended `failed`.
    pub failed: u64,
    /// Attempts scheduled again after a retryable outcome.
    pub retried: u64,
    /// Callbacks delivered (a 2xx from the receiver).
    pub callbacks: u64,
    /// Callbacks given up on.
    pub callback_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    attempts: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    callbacks: AtomicU64,
    callback_failures: AtomicU64,
}

#[derive(Debug)]
struct FunctionMeta {
    retry: RetryPolicy,
    max_inflight: Option<usize>,
}

type FunctionKey = (String, String);

struct Inner {
    queue: Arc<dyn Queue>,
    target: Arc<dyn CallTarget>,
    store: Arc<dyn InvocationStore>,
    config: WorkerConfig,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The https callback client, built on the first https callback (or why it cannot be).
    https: tokio::sync::OnceCell<std::result::Result<HttpsClient, String>>,
    functions: Mutex<HashMap<FunctionKey, (Instant, Arc<FunctionMeta>)>>,
    limits: Mutex<HashMap<FunctionKey, (usize, Arc<Semaphore>)>>,
    counters: Counters,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWorker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Runs queued calls. Cheap to clone; see the [module docs](self).
///
/// ```no_run
/// # async fn run(provider: std::sync::Arc<dyn faas_core::Provider>) -> faas_core::Result<()> {
/// use std::sync::Arc;
/// use faas_core::invoke::Invoker;
/// use faas_core::queue::MemoryQueue;
/// use faas_core::queue::records::MemoryInvocationStore;
/// use faas_core::queue::worker::{QueueWorker, WorkerConfig};
///
/// let worker = QueueWorker::new(
///     Arc::new(MemoryQueue::new()),
///     Arc::new(Invoker::new(provider)),
///     Arc::new(MemoryInvocationStore::new()),
///     WorkerConfig::default().with_concurrency(32),
/// );
/// worker.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct QueueWorker {
    inner: Arc<Inner>,
}

/// What one attempt gave.
enum Attempt {
    Response {
        status: StatusCode,
        headers: http::HeaderMap,
        body: Bytes,
    },
    Failed(Error),
}

impl QueueWorker {
    /// A worker consuming `queue`, calling through `target`, recording into `store`.
    pub fn new(
        queue: Arc<dyn Queue>,
        target: Arc<dyn CallTarget>,
        store: Arc<dyn InvocationStore>,
        config: WorkerConfig,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        QueueWorker {
            inner: Arc::new(Inner {
                queue,
                target,
                store,
                config,
                client,
                https: tokio::sync::OnceCell::new(),
                functions: Mutex::default(),
                limits: Mutex::default(),
                counters: Counters::default(),
            }),
        }
    }

    /// Counters since the worker was created.
    pub fn stats(&self) -> WorkerStats {
        let c = &self.inner.counters;
        WorkerStats {
            attempts: c.attempts.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            callbacks: c.callbacks.load(Ordering::Relaxed),
            callback_failures: c.callback_failures.load(Ordering::Relaxed),
        }
    }

    /// Consumes the queue until `shutdown` completes, then lets running calls finish (up to the
    /// drain timeout; calls still running then are delivered again later) and returns.
    ///
    /// # Errors
    /// The queue could not be consumed.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let inner = &self.inner;
        let mut deliveries = inner.queue.consume().await?;
        let global = Arc::new(Semaphore::new(inner.config.concurrency.max(1)));
        let mut running = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = global.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let next = tokio::select! {
                () = &mut shutdown => break,
                next = deliveries.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    let inner = inner.clone();
                    running.spawn(async move {
                        inner.handle(delivery).await;
                        drop(permit);
                    });
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "cannot receive from the queue");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => {
                    tracing::info!("the queue closed its delivery stream");
                    break;
                }
            }
            // Reap finished tasks so the set does not grow.
            while running.try_join_next().is_some() {}
        }
        drop(deliveries);
        let drained = tokio::time::timeout(inner.config.drain_timeout, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                running = running.len(),
                "calls still running at shutdown are delivered again later"
            );
            running.shutdown().await;
        }
        Ok(())
    }
}

fn duration_header(d: Duration) -> HeaderValue {
    HeaderValue::try_from(format!("{:.6}", d.as_secs_f64())).expect("digits are a header value")
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

impl Inner {
    async fn meta(&self, function: &str, namespace: &str) -> Result<Arc<FunctionMeta>> {
        let key = (function.to_owned(), namespace.to_owned());
        if let Some((at, meta)) = self
            .functions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            && at.elapsed() < self.config.function_ttl
        {
            return Ok(meta.clone());
        }
        let status = self.target.function(function, namespace).await?;
        let max_inflight = status
            .env_vars
            .get(ENV_MAX_INFLIGHT)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .or((self.config.function_concurrency > 0).then_some(self.config.function_concurrency));
        let meta = Arc::new(FunctionMeta {
            retry: self.config.retry.for_function(&status),
            max_inflight,
        });
        self.functions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (Instant::now(), meta.clone()));
        Ok(meta)
    }

    /// A slot of the function's bound; `Ok(None)` when it has no bound, `Err(())` when it is full.
    fn function_slot(
        &self,
        function: &str,
        namespace: &str,
        limit: Option<usize>,
    ) -> std::result::Result<Option<OwnedSemaphorePermit>, ()> {
        let Some(limit) = limit else { return Ok(None) };
        let semaphore = {
            let mut limits = self
                .limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = limits
                .entry((function.to_owned(), namespace.to_owned()))
                .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit))));
            if entry.0 != limit {
                *entry = (limit, Arc::new(Semaphore::new(limit)));
            }
            entry.1.clone()
        };
        semaphore.try_acquire_owned().map(Some).map_err(|_| ())
    }

    async fn handle(self: Arc<Self>, delivery: Delivery) {
        let request = &delivery.request;
        let previous = match self.store.get(&request.call_id).await {
            Ok(record) => record,
            Err(err) => {
                tracing::warn!(call_id = request.call_id, error = %err, "cannot read the invocation record");
                None
            }
        };
        if let Some(previous) = &previous
            && previous.status.is_terminal()
        {
            tracing::debug!(
                call_id = request.call_id,
                status = previous.status.as_str(),
                "call already ended, acking its redelivery"
            );
            self.ack(&delivery).await;
            return;
        }
        let meta = match self.meta(&request.function, &request.namespace).await {
            Ok(meta) => meta,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                let attempt = previous.as_ref().map_or(1, |p| p.attempts + 1);
                let record = previous.unwrap_or_else(|| InvocationRecord::queued(request));
                self.finish(
                    &delivery,
                    record,
                    attempt,
                    Attempt::Failed(err),
                    Duration::ZERO,
                )
                .await;
                return;
            }
            Err(err) => {
                tracing::warn!(function = request.function, error = %err, "cannot read the function's settings, retrying later");
                let _ = delivery.nack(self.config.retry.backoff(1)).await;
                return;
            }
        };
        let Ok(_slot) =
            self.function_slot(&request.function, &request.namespace, meta.max_inflight)
        else {
            let pause = Duration::from_millis(rand::rng().random_range(100..300));
            let _ = delivery.nack(pause).await;
            return;
        };
        let attempt = match &previous {
            Some(p) => p.attempts + 1,
            None => delivery.attempt.max(1),
        };
        let mut record = previous.unwrap_or_else(|| InvocationRecord::queued(request));
        let now = Utc::now();
        record.status = InvocationStatus::Running;
        record.attempts = attempt;
        record.started_at.get_or_insert(now);
        record.updated_at = now;
        if let Err(err) = self.store.put(record.clone(), Durability::Lazy).await {
            tracing::warn!(call_id = request.call_id, error = %err, "cannot record a running call");
        }

        let work = async {
            self.counters.attempts.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let outcome = self.attempt(request).await;
            let took = started.elapsed();
            let retryable = match &outcome {
                Attempt::Response { status, .. } => meta.retry.retries_status(status.as_u16()),
                Attempt::Failed(err) => matches!(
                    err.kind(),
                    ErrorKind::BadGateway
                        | ErrorKind::Unavailable
                        | ErrorKind::Timeout
                        | ErrorKind::TooManyRequests
                ),
            };
            if retryable && attempt < meta.retry.max_attempts {
                // The function's Retry-After is a floor: never sooner than it asks, nor sooner
                // than the backoff (a `Retry-After: 0` does not turn off the backoff).
                let backoff = meta.retry.backoff(attempt);
                let wait = match &outcome {
                    Attempt::Response { headers, .. } => retry_after(headers),
                    Attempt::Failed(_) => None,
                }
                .map_or(backoff, |asked| asked.max(backoff));
                let deadline = request.queued_at
                    + chrono::Duration::from_std(meta.retry.max_total)
                        .unwrap_or(chrono::Duration::MAX);
                let next =
                    Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                if next <= deadline {
                    self.retry(&delivery, record.clone(), attempt, outcome, took, wait)
                        .await;
                    return;
                }
            }
            self.finish(&delivery, record.clone(), attempt, outcome, took)
                .await;
        };
        let progress = async {
            loop {
                tokio::time::sleep(self.config.progress_interval).await;
                if let Err(err) = delivery.in_progress().await {
                    tracing::warn!(call_id = delivery.request.call_id, error = %err, "cannot extend the ack deadline");
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = progress => {}
        }
    }

    async fn ack(&self, delivery: &Delivery) {
        if let Err(err) = delivery.ack().await {
            tracing::warn!(call_id = delivery.request.call_id, error = %err, "cannot ack, the call may run again");
        }
    }

    fn build_request(request: &QueuedRequest) -> Result<Request<Body>> {
        let path = if request.path.is_empty() {
            "/"
        } else {
            request.path.as_str()
        };
        let uri = match &request.query {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path.to_owned(),
        };
        let uri: Uri = uri
            .parse()
            .map_err(|e| Error::invalid("path", "invalid queued path").with_source(e))?;
        let method = http::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| Error::invalid("method", "invalid queued method").with_source(e))?;
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(headers) = builder.headers_mut() {
            for (name, value) in &request.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    headers.append(name, value);
                }
            }
            headers.insert(
                HeaderName::from_static("x-call-id"),
                HeaderValue::try_from(request.call_id.as_str())
                    .map_err(|e| Error::invalid("call_id", "invalid call id").with_source(e))?,
            );
        }
        builder
            .body(Body::from(request.body.clone()))
            .map_err(|e| Error::internal("cannot build the function request").with_source(e))
    }

    async fn attempt(&self, request: &QueuedRequest) -> Attempt {
        let http_request = match Self::build_request(request) {
            Ok(r) => r,
            Err(err) => return Attempt::Failed(err),
        };
        let response = match self
            .target
            .call(&request.function, &request.namespace, http_request)
            .await
        {
            Ok(response) => response,
            Err(err) => return Attempt::Failed(err),
        };
        let (parts, body) = response.into_parts();
        match Limited::new(body, self.config.max_response_bytes)
            .collect()
            .await
        {
            Ok(body) => Attempt::Response {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            },
            Err(err) => {
                let kind = if crate::invoke::is_length_limit(&*err) {
                    ErrorKind::PayloadTooLarge
                } else {
                    ErrorKind::BadGateway
                };
                Attempt::Failed(
                    Error::new(kind, "cannot read the function's response").with_source(err),
                )
            }
        }
    }

    fn apply(&self, record: &mut InvocationRecord, outcome: &Attempt, took: Duration) {
        record.duration_seconds = Some(took.as_secs_f64());
        record.updated_at = Utc::now();
        match outcome {
            Attempt::Response {
                status,
                headers,
                body,
            } => {
                record.status_code = Some(status.as_u16());
                record.error = None;
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                record.result = Some(InvocationResult::new(
                    content_type,
                    body.clone(),
                    self.config.max_result_bytes,
                ));
            }
            Attempt::Failed(err) => {
                record.status_code = Some(err.status().as_u16());
                record.error = Some(
                    err.to_json()["error"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                record.result = None;
            }
        }
    }

    async fn retry(
        &self,
        delivery: &Delivery,
        mut record: InvocationRecord,
        attempt: u32,
        outcome: Attempt,
        took: Duration,
        wait: Duration,
    ) {
        self.apply(&mut record, &outcome, took);
        record.status = InvocationStatus::Queued;
        record.attempts = attempt;
        tracing::debug!(call_id = record.call_id, attempt, status = ?record.status_code, wait = ?wait, "retrying");
        if let Err(err) = self.store.put(record, Durability::Lazy).await {
            tracing::warn!(error = %err, "cannot record a retry");
        }
        self.counters.retried.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = delivery.nack(wait).await {
            tracing::warn!(call_id = delivery.request.call_id, error = %err, "cannot schedule a retry, the queue redelivers it");
        }
    }

    async fn finish(
        &self,
        delivery: &Delivery,
        mut record: InvocationRecord,
        attempt: u32,
        outcome: Attempt,
        took: Duration,
    ) {
        self.apply(&mut record, &outcome, took);
        record.attempts = attempt;
        let succeeded =
            matches!(&outcome, Attempt::Response { status, .. } if status.as_u16() < 400);
        record.status = if succeeded {
            InvocationStatus::Succeeded
        } else {
            InvocationStatus::Failed
        };
        record.finished_at = Some(Utc::now());
        let request = &delivery.request;
        if let Some(url) = &request.callback_url {
            record.callback_status = self.callback(url, request, &outcome, took).await;
            record.updated_at = Utc::now();
        }
        let status = record.status;
        if let Err(err) = self.store.put(record, Durability::Durable).await {
            // Not recorded: do not ack, the call runs again later.
            tracing::error!(call_id = request.call_id, error = %err, "cannot record the outcome, the call will run again");
            let _ = delivery.nack(self.config.retry.backoff(1)).await;
            return;
        }
        match status {
            InvocationStatus::Succeeded => self.counters.succeeded.fetch_add(1, Ordering::Relaxed),
            _ => self.counters.failed.fetch_add(1, Ordering::Relaxed),
        };
        self.ack(delivery).await;
    }

    /// The https callback client, built once (reading the certificate store) on first use.
    async fn https_client(&self) -> std::result::Result<&HttpsClient, &str> {
        let built = self
            .https
            .get_or_init(|| async {
                let ca_file = self.config.callback.ca_file.clone();
                tokio::task::spawn_blocking(move || super::tls::https_client(ca_file.as_deref()))
                    .await
                    .map_err(|e| format!("building the https client panicked: {e}"))
                    .and_then(|built| built.map_err(|e| e.to_string()))
            })
            .await;
        built.as_ref().map_err(String::as_str)
    }

    /// POSTs the outcome to the callback URL, retrying; the receiver's last status, if any.
    async fn callback(
        &self,
        url: &str,
        request: &QueuedRequest,
        outcome: &Attempt,
        took: Duration,
    ) -> Option<u16> {
        let policy = &self.config.callback;
        let uri: Uri = match url.parse() {
            Ok(uri) => uri,
            Err(err) => {
                tracing::warn!(call_id = request.call_id, url, error = %err, "invalid callback url");
                self.counters
                    .callback_failures
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let https = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => match self.https_client().await {
                Ok(client) => Some(client),
                Err(err) => {
                    tracing::warn!(call_id = request.call_id, url, error = %err, "cannot call back over https");
                    self.counters
                        .callback_failures
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            _ => {
                tracing::warn!(
                    call_id = request.call_id,
                    url,
                    "callback urls are http or https"
                );
                self.counters
                    .callback_failures
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let (status, content_type, body) = match outcome {
            Attempt::Response {
                status,
                headers,
                body,
            } => (
                *status,
                headers.get(header::CONTENT_TYPE).cloned(),
                body.clone(),
            ),
            Attempt::Failed(err) => {
                let mut body = serde_json::to_vec(&err.to_json()).unwrap_or_default();
                body.push(b'\n');
                (
                    err.status(),
                    Some(HeaderValue::from_static("application/json")),
                    Bytes::from(body),
                )
            }
        };
        let mut last = None;
        let mut wait = policy.initial_wait;
        for attempt in 1..=policy.max_attempts.max(1) {
            let mut builder = Request::post(uri.clone())
                .header(HEADER_CALL_ID, request.call_id.as_str())
                .header(HEADER_FUNCTION_STATUS, status.as_u16())
                .header(HEADER_FUNCTION_NAME, request.function.as_str())
                .header(HEADER_DURATION_SECONDS, duration_header(took));
            if let Some(ct) = &content_type {
                builder = builder.header(header::CONTENT_TYPE, ct.clone());
            }
            let Ok(cb_request) = builder.body(Full::new(body.clone())) else {
                self.counters
                    .callback_failures
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            };
            let sent = match https {
                Some(client) => client.request(cb_request),
                None => self.client.request(cb_request),
            };
            match tokio::time::timeout(policy.timeout, sent).await {
                Ok(Ok(response)) => {
                    let code = response.status();
                    // Drain the body so the connection can be reused.
                    let _ =
                        tokio::time::timeout(policy.timeout, response.into_body().collect()).await;
                    last = Some(code.as_u16());
                    if code.is_success() || code.is_redirection() {
                        self.counters.callbacks.fetch_add(1, Ordering::Relaxed);
                        return last;
                    }
                    let retry = code.is_server_error()
                        || code == StatusCode::TOO_MANY_REQUESTS
                        || code == StatusCode::REQUEST_TIMEOUT;
                    if !retry {
                        break;
                    }
                    tracing::debug!(
                        call_id = request.call_id,
                        attempt,
                        status = code.as_u16(),
                        "callback failed"
                    );
                }
                Ok(Err(err)) => {
                    tracing::debug!(call_id = request.call_id, attempt, error = %err, "callback failed")
                }
                Err(_) => tracing::debug!(call_id = request.call_id, attempt, "callback timed out"),
            }
            if attempt < policy.max_attempts {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
        tracing::warn!(call_id = request.call_id, url, status = ?last, "giving up on the callback");
        self.counters
            .callback_failures
            .fetch_add(1, Ordering::Relaxed);
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy::default()
            .with_initial_wait(Duration::from_secs(1))
            .with_max_wait(Duration::from_secs(8));
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(
                first >= Duration::from_millis(500) && first <= Duration::from_secs(1),
                "{first:?}"
            );
            let third = policy.backoff(3);
            assert!(
                third >= Duration::from_secs(2) && third <= Duration::from_secs(4),
                "{third:?}"
            );
            let capped = policy.backoff(30);
            assert!(
                capped >= Duration::from_secs(4) && capped <= Duration::from_secs(8),
                "{capped:?}"
            );
        }
    }

    #[test]
    fn annotations_override_the_policy() {
        let deployment = crate::model::FunctionDeployment::new("f", "img")
            .with_annotation(ANNOTATION_RETRY_ATTEMPTS, "3")
            .with_annotation(ANNOTATION_RETRY_CODES, "429, 503")
            .with_annotation(ANNOTATION_RETRY_MIN_WAIT, "50ms")
            .with_annotation(ANNOTATION_RETRY_MAX_WAIT, "bogus");
        let status = FunctionStatus::from_deployment(&deployment, "ns", 1, Utc::now());
        let policy = RetryPolicy::default().for_function(&status);
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.codes, [429, 503]);
        assert_eq!(policy.initial_wait, Duration::from_millis(50));
        assert_eq!(
            policy.max_wait,
            RetryPolicy::default().max_wait,
            "invalid values are ignored"
        );
        let bad = FunctionStatus::from_deployment(
            &crate::model::FunctionDeployment::new("f", "img")
                .with_annotation(ANNOTATION_RETRY_CODES, "abc"),
            "ns",
            1,
            Utc::now(),
        );
        assert_eq!(
            RetryPolicy::default().for_function(&bad).codes,
            RetryPolicy::default().codes
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = (Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert(header::RETRY_AFTER, HeaderValue::try_from(later).unwrap());
        let d = retry_after(&headers).unwrap();
        assert!(
            d > Duration::from_secs(20) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }
}
