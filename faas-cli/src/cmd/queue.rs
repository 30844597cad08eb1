//! Asynchronous invocation for `faas up` (`--queue embedded|nats://...` and the worker flags) and
//! `faas queue-worker` (a worker alone, consuming a NATS queue and calling functions through a
//! gateway, to scale workers separately).
//!
//! With the embedded queue (the default) the calls and their invocation records live in the data
//! dir (`<data>/queue`, `<data>/invocations`) and survive a crash of the process. With NATS both
//! live in JetStream (the records in `<stream>_RECORDS`), shared by every gateway and worker.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clap::Args;
use faas_core::ErrorKind;
use faas_core::invoke::Body;
use faas_core::model::{FunctionStatus, parse_duration};
use faas_core::queue::records::{EmbeddedInvocationStore, InvocationStore, RecordsConfig};
use faas_core::queue::worker::{
    CallTarget, CallbackPolicy, QueueWorker, RetryPolicy, WorkerConfig,
};
use faas_core::queue::{EmbeddedQueue, EmbeddedQueueConfig, Queue};
use faas_queue_nats::{NatsInvocationStore, NatsQueue, NatsQueueConfig};
use futures_util::TryStreamExt;
use tokio::task::JoinHandle;

use crate::cli::GatewayArgs;
use crate::client::{GatewayClient, Invocation};
use crate::{Error, Result};

/// Which queue backend: the embedded durable queue, or NATS JetStream at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueSpec {
    /// The durable queue in the data dir.
    Embedded,
    /// NATS JetStream (`nats://127.0.0.1:4222`).
    Nats(String),
}

impl std::str::FromStr for QueueSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s == "embedded" {
            Ok(QueueSpec::Embedded)
        } else if s.starts_with("nats://") || s.starts_with("tls://") {
            Ok(QueueSpec::Nats(s.to_owned()))
        } else {
            Err(format!(
                "invalid queue {s:?}: expected embedded or nats://host:port"
            ))
        }
    }
}

fn duration_arg(s: &str) -> std::result::Result<Duration, String> {
    parse_duration(s)
}

/// A comma-separated list of HTTP status codes (`429,503`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCodes(pub Vec<u16>);

impl std::str::FromStr for StatusCodes {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        codes_arg(s).map(StatusCodes)
    }
}

fn codes_arg(s: &str) -> std::result::Result<Vec<u16>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| match c.parse::<u16>() {
            Ok(n) if (100..600).contains(&n) => Ok(n),
            _ => Err(format!("invalid status code {c:?} in {s:?}")),
        })
        .collect()
}

/// The queue and worker flags shared by `faas up` and `faas queue-worker`.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// Where asynchronous calls are queued: `embedded` (durable, in the data dir) or a NATS
    /// JetStream URL (`nats://127.0.0.1:4222`).
    #[arg(long, env = "FAAS_QUEUE", default_value = "embedded")]
    pub queue: QueueSpec,
    /// Calls the queue worker runs at once.
    #[arg(long, env = "FAAS_QUEUE_CONCURRENCY", default_value_t = 64)]
    pub queue_concurrency: usize,
    /// Attempts of a failing asynchronous call in all (the annotation
    /// com.openfaas.retry.attempts overrides it per function).
    #[arg(long, default_value_t = 10)]
    pub max_retry_attempts: u32,
    /// The first wait before a retry; each next one doubles (jittered).
    #[arg(long, default_value = "1s", value_parser = duration_arg)]
    pub initial_retry_wait: Duration,
    /// The longest wait before a retry.
    #[arg(long, default_value = "2m", value_parser = duration_arg)]
    pub max_retry_wait: Duration,
    /// No retry of an asynchronous call starts later than this after the call was queued.
    #[arg(long, default_value = "1h", value_parser = duration_arg)]
    pub max_retry_total: Duration,
    /// The function status codes that are retried.
    #[arg(long, default_value = "408,429,500,502,503,504")]
    pub retry_http_codes: StatusCodes,
    /// How long the records of finished asynchronous calls are kept.
    #[arg(long, default_value = "24h", value_parser = duration_arg)]
    pub records_retention: Duration,
    /// How long a call may run without reporting progress before the queue delivers it again.
    #[arg(long, default_value = "60s", value_parser = duration_arg)]
    pub queue_ack_wait: Duration,
    /// With the embedded queue: the most calls pending at once; beyond it `/async-function/*`
    /// answers 429 (each pending call keeps a few hundred bytes, plus a body up to 64 KiB, in memory).
    #[arg(long, default_value_t = faas_core::queue::DEFAULT_MAX_PENDING as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_max_pending: u64,
    /// With a NATS queue: the JetStream stream (several platforms can share one server).
    #[arg(long, env = "FAAS_NATS_STREAM", default_value = "FAAS_ASYNC")]
    pub nats_stream: String,
    /// A PEM file of root certificates trusted for https callbacks beside the system's (an
    /// internal CA). The system's store honours SSL_CERT_FILE and SSL_CERT_DIR.
    #[arg(long, env = "FAAS_CALLBACK_CA_FILE", value_parser = ca_file_arg)]
    pub callback_ca_file: Option<PathBuf>,
}

/// A CA file is checked when the flags are parsed, so that a typo fails at startup.
fn ca_file_arg(s: &str) -> std::result::Result<PathBuf, String> {
    let path = PathBuf::from(s);
    CallbackPolicy::default()
        .with_ca_file(&path)
        .check()
        .map_err(|e| e.to_string())?;
    Ok(path)
}

impl QueueArgs {
    /// The worker settings of these flags.
    pub fn worker_config(&self) -> WorkerConfig {
        let retry = RetryPolicy::default()
            .with_max_attempts(self.max_retry_attempts)
            .with_initial_wait(self.initial_retry_wait)
            .with_max_wait(self.max_retry_wait)
            .with_max_total(self.max_retry_total)
            .with_codes(self.retry_http_codes.0.iter().copied());
        let progress =
            (self.queue_ack_wait / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut callback = CallbackPolicy::default();
        if let Some(path) = &self.callback_ca_file {
            callback = callback.with_ca_file(path);
        }
        WorkerConfig::default()
            .with_callback(callback)
            .with_concurrency(self.queue_concurrency)
            .with_retry(retry)
            .with_progress_interval(progress)
    }
}

/// The queue and the invocation records of a running platform.
#[derive(Clone)]
pub struct AsyncParts {
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// The invocation records.
    pub store: Arc<dyn InvocationStore>,
}

impl std::fmt::Debug for AsyncParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncParts").finish_non_exhaustive()
    }
}

fn platform_error(message: String, err: impl Into<faas_core::BoxError>) -> Error {
    Error::Platform(faas_core::Error::new(ErrorKind::Backend, message).with_source(err))
}

/// Opens the queue `args` names and its invocation records: in `data_dir` for the embedded
/// queue, in JetStream for NATS.
///
/// # Errors
/// [`Error::Platform`] when the data dir cannot be used or NATS cannot be reached.
pub async fn open(args: &QueueArgs, data_dir: &Path) -> Result<AsyncParts> {
    let url = match &args.queue {
        QueueSpec::Nats(url) => return open_nats(url, args).await,
        QueueSpec::Embedded => data_dir.join("queue"),
    };
    let config = EmbeddedQueueConfig::new(&url)
        .with_ack_wait(args.queue_ack_wait)
        .with_max_pending(usize::try_from(args.queue_max_pending).unwrap_or(usize::MAX));
    let queue = tokio::task::spawn_blocking(move || EmbeddedQueue::open(config))
        .await
        .map_err(|e| platform_error("opening the queue panicked".to_owned(), e))??;
    tracing::info!(pending = queue.len(), dir = %url.display(), "embedded queue ready");
    let records_dir = data_dir.join("invocations");
    let records = RecordsConfig::default().with_retention(args.records_retention);
    let store =
        tokio::task::spawn_blocking(move || EmbeddedInvocationStore::open(records_dir, records))
            .await
            .map_err(|e| {
                platform_error("opening the invocation records panicked".to_owned(), e)
            })??;
    Ok(AsyncParts {
        queue: Arc::new(queue),
        store: Arc::new(store),
    })
}

/// Connects to the NATS queue at `url` and its records stream.
///
/// # Errors
/// [`Error::Platform`] when NATS cannot be reached or refuses the streams.
pub async fn open_nats(url: &str, args: &QueueArgs) -> Result<AsyncParts> {
    let mut config = NatsQueueConfig::new(url).with_ack_wait(args.queue_ack_wait);
    if args.nats_stream != config.stream {
        config = config.with_stream(args.nats_stream.clone());
    }
    let queue = NatsQueue::connect(config)
        .await
        .map_err(|e| Error::Platform(faas_core::Error::from(e)))?;
    let store = NatsInvocationStore::open(&queue, args.records_retention)
        .await
        .map_err(|e| Error::Platform(faas_core::Error::from(e)))?;
    tracing::info!(url, stream = queue.config().stream, "nats queue ready");
    let queue: Arc<dyn Queue> = Arc::new(queue);
    Ok(AsyncParts {
        queue,
        store: Arc::new(store),
    })
}

/// A queue worker running in the background.
#[derive(Debug)]
pub struct WorkerHandle {
    worker: QueueWorker,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<faas_core::Result<()>>,
}

impl WorkerHandle {
    /// Starts a worker over `parts`, calling functions through `target`.
    pub fn spawn(parts: &AsyncParts, target: Arc<dyn CallTarget>, config: WorkerConfig) -> Self {
        let worker = QueueWorker::new(parts.queue.clone(), target, parts.store.clone(), config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = worker.clone();
        let task = tokio::spawn(async move {
            running
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        WorkerHandle {
            worker,
            stop: Some(stop),
            task,
        }
    }

    /// The worker.
    pub fn worker(&self) -> &QueueWorker {
        &self.worker
    }

    /// Stops taking calls and waits for the running ones (bounded by the worker's drain timeout).
    ///
    /// # Errors
    /// [`Error::Platform`] when the worker failed.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.await {
            Ok(result) => Ok(result?),
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(platform_error("the queue worker panicked".to_owned(), e)),
        }
    }
}

/// A [`CallTarget`] that calls functions through a gateway's HTTP API (`/function/...`), for a
/// worker running apart from the gateway.
#[derive(Debug, Clone)]
pub struct RemoteGateway {
    client: GatewayClient,
}

impl RemoteGateway {
    /// Calls through `client`'s gateway.
    pub fn new(client: GatewayClient) -> Self {
        RemoteGateway { client }
    }
}

fn to_core(err: Error) -> faas_core::Error {
    match err {
        Error::Status {
            status: 404,
            message,
        } => faas_core::Error::not_found(message),
        Error::Unreachable { gateway, reason } => faas_core::Error::new(
            ErrorKind::BadGateway,
            format!("cannot reach the gateway at {gateway}: {reason}"),
        ),
        Error::Platform(err) => err,
        other => faas_core::Error::new(ErrorKind::Backend, other.to_string()),
    }
}

#[async_trait]
impl CallTarget for RemoteGateway {
    async fn call(
        &self,
        function: &str,
        namespace: &str,
        request: http::Request<Body>,
    ) -> faas_core::Result<http::Response<Body>> {
        let (parts, body) = request.into_parts();
        let body = axum_body_bytes(body).await?;
        let mut invocation = Invocation::new(function, crate::client::body_from_bytes(body));
        invocation.namespace = (!namespace.is_empty()).then(|| namespace.to_owned());
        invocation.method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .map_err(|e| faas_core::Error::invalid("method", "invalid method").with_source(e))?;
        // The query goes as it was queued: split into pairs and encoded again it would change
        // (`a%20b` to `a+b`, `flag` to `flag=`).
        let path = parts.uri.path().trim_start_matches('/');
        invocation.path = match parts.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        invocation.headers = parts
            .headers
            .iter()
            .filter(|(name, _)| {
                *name != http::header::HOST && *name != http::header::CONTENT_LENGTH
            })
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let response = self.client.invoke(invocation).await.map_err(to_core)?;
        let mut builder = http::Response::builder().status(response.status().as_u16());
        for (name, value) in response.headers() {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        builder
            .body(Body::from_stream(stream))
            .map_err(|e| faas_core::Error::internal("cannot build the response").with_source(e))
    }

    async fn function(&self, function: &str, namespace: &str) -> faas_core::Result<FunctionStatus> {
        let namespace = (!namespace.is_empty()).then_some(namespace);
        self.client.get(function, namespace).await.map_err(to_core)
    }
}

async fn axum_body_bytes(body: Body) -> faas_core::Result<bytes::Bytes> {
    use http_body_util::BodyExt;
    body.collect().await.map(|b| b.to_bytes()).map_err(|e| {
        faas_core::Error::invalid("body", "cannot read the request body").with_source(e)
    })
}

/// Arguments of `faas queue-worker`.
#[derive(Debug, Clone, Args)]
pub struct QueueWorkerArgs {
    /// The gateway functions are called through.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Queue and worker settings (`--queue nats://...` is required: the embedded queue belongs to
    /// its `faas up`).
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// Runs `faas queue-worker` until SIGINT or SIGTERM.
///
/// # Errors
/// When the queue is not NATS or NATS cannot be reached.
pub async fn run(args: QueueWorkerArgs) -> Result<()> {
    let QueueSpec::Nats(url) = &args.queue.queue else {
        return Err(Error::InvalidArgument(
            "faas queue-worker needs --queue nats://host:port: the embedded queue is served by its faas up"
                .to_owned(),
        ));
    };
    let parts = open_nats(url, &args.queue).await?;
    let target = Arc::new(RemoteGateway::new(args.gateway.client(None)?));
    let handle = WorkerHandle::spawn(&parts, target, args.queue.worker_config());
    tracing::info!(
        gateway = args.gateway.client(None)?.url(),
        "queue worker running"
    );
    super::print("faas-rs queue worker running\n")?;
    wait_signal().await;
    tracing::info!("stopping the queue worker");
    handle.shutdown().await
}

async fn wait_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_specs() {
        assert_eq!("embedded".parse::<QueueSpec>(), Ok(QueueSpec::Embedded));
        assert_eq!(
            "nats://127.0.0.1:4222".parse::<QueueSpec>(),
            Ok(QueueSpec::Nats("nats://127.0.0.1:4222".to_owned()))
        );
        assert!("redis://x".parse::<QueueSpec>().is_err());
        assert_eq!(codes_arg("429, 503"), Ok(vec![429, 503]));
        assert!(codes_arg("42").is_err());
    }

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        queue: QueueArgs,
    }

    #[test]
    fn retry_flags_make_the_worker_policy() {
        use clap::Parser as _;
        let defaults = Flags::try_parse_from(["faas"])
            .unwrap()
            .queue
            .worker_config();
        assert_eq!(defaults.retry, RetryPolicy::default());
        let flags = Flags::try_parse_from([
            "faas",
            "--max-retry-attempts",
            "4",
            "--initial-retry-wait",
            "250ms",
            "--max-retry-wait",
            "5s",
            "--max-retry-total",
            "10m",
            "--retry-http-codes",
            "429,503",
        ])
        .unwrap();
        let retry = flags.queue.worker_config().retry;
        assert_eq!(retry.max_attempts, 4);
        assert_eq!(retry.initial_wait, Duration::from_millis(250));
        assert_eq!(retry.max_wait, Duration::from_secs(5));
        assert_eq!(retry.max_total, Duration::from_secs(600));
        assert_eq!(retry.codes, [429, 503]);
        assert!(Flags::try_parse_from(["faas", "--max-retry-total", "soon"]).is_err());
    }

    /// A gateway on 127.0.0.1 answering every request with its method and URI.
    async fn uri_echo() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |request: http::Request<hyper::body::Incoming>| async move {
                            let seen = format!("{} {}", request.method(), request.uri());
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(seen)),
                            ))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_separate_worker_sends_the_queued_path_and_query_as_they_were() {
        let addr = uri_echo().await;
        let target = RemoteGateway::new(GatewayClient::new(&addr.to_string(), None).unwrap());
        for (uri, expected) in [
            (
                "/a/b?q=a%20b&flag&x=1+2&x=3",
                "PUT /function/echo/a/b?q=a%20b&flag&x=1+2&x=3",
            ),
            ("/?only=query", "PUT /function/echo/?only=query"),
            ("/", "PUT /function/echo"),
        ] {
            let request = http::Request::put(uri).body(Body::from("x")).unwrap();
            let response = target.call("echo", "", request).await.unwrap();
            let body = axum_body_bytes(response.into_body()).await.unwrap();
            assert_eq!(std::str::from_utf8(&body).unwrap(), expected, "{uri}");
        }
    }
}
