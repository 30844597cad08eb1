//! The watchdog: a [`Server`] serving one of the modes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, Uri};
use nix::sys::signal::Signal;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use crate::body::WatchdogBody;
use crate::config::{Config, Mode};
use crate::error::{Error, Result};
use crate::logs::{LogStream, forward_lines};
use crate::process::{self, ProcessGuard};
use crate::proxy::{UpState, Upstream};
use crate::server::{Health, RequestBody, Server};
use crate::{fork, static_files};

/// Entry point of the embedding API: binds a watchdog's listeners.
///
/// ```no_run
/// use faas_watchdog::{Config, Watchdog};
///
/// # async fn run() -> faas_watchdog::Result<()> {
/// let config = Config::from_vars([("fprocess".to_owned(), "cat".to_owned())])?
///     .with_bind_address("127.0.0.1".parse().unwrap())
///     .with_port(0)
///     .with_metrics_port(None)
///     .with_lock_file(None);
/// let bound = Watchdog::bind(config).await?;
/// println!("replica at {}", bound.local_addr());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// # drop(stop);
/// bound.run(async { let _ = stopped.await; }).await
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Watchdog;

impl Watchdog {
    /// Binds the HTTP port (and the metrics port, when set) of `config`; port 0 picks a free port.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when a port cannot be bound.
    pub async fn bind(config: Config) -> Result<BoundWatchdog> {
        let addr = SocketAddr::new(config.bind_address, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let serve_config = config.serve_config().with_wait_for_ready(true);
        let mut server = Server::from_listener(listener, serve_config)?;
        if let Some(port) = config.metrics_port {
            let addr = SocketAddr::new(config.bind_address, port);
            let metrics = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            server = server.with_metrics_listener(metrics)?;
        }
        Ok(BoundWatchdog {
            config: Arc::new(config),
            server,
        })
    }
}

/// A watchdog whose ports are bound, ready to [run](BoundWatchdog::run).
#[derive(Debug)]
pub struct BoundWatchdog {
    config: Arc<Config>,
    server: Server,
}

impl BoundWatchdog {
    /// The address of the HTTP listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The address of the metrics listener, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr()
    }

    /// The health handle (readiness, requests in flight, metrics).
    pub fn health(&self) -> Health {
        self.server.health()
    }

    /// A handle to call this watchdog in this process, without a socket, once it
    /// [runs](BoundWatchdog::run): see [`Server::in_process`]. Requests get every treatment a
    /// request on the listener gets (mode, `max_inflight`, limits, timeouts, metrics, headers).
    pub fn in_process(&self) -> faas_core::model::InProcess {
        self.server.in_process()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs until `shutdown` resolves, then drains in-flight requests for up to `write_timeout`.
    ///
    /// In `http` mode the function process is started here; when it exits on its own, the
    /// watchdog stops and returns [`Error::UpstreamExited`] so that the caller can restart the
    /// replica. On shutdown it gets SIGTERM, then SIGKILL after `write_timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] when the `http` mode process cannot start, [`Error::UpstreamExited`] when
    /// it exits, [`Error::LockFile`] when the lock file cannot be written.
    pub async fn run<F>(self, shutdown: F) -> Result<()>
    where
        F: Future<Output = ()>,
    {
        let BoundWatchdog { config, server } = self;
        let health = server.health();
        tracing::info!(
            mode = %config.mode,
            fprocess = config.function_process.as_deref().unwrap_or(""),
            addr = %server.local_addr(),
            metrics = ?server.metrics_addr(),
            "fwatchdog listening"
        );
        match config.mode {
            Mode::Http => run_http(config, server, shutdown).await,
            Mode::Static => {
                let service =
                    WatchdogService(Arc::new(Handler::Static(config.static_path.clone())));
                mark_ready(&config, &health)?;
                Ok(server.serve(service, shutdown).await?)
            }
            _ => {
                let service = WatchdogService(Arc::new(Handler::Fork(config.clone())));
                mark_ready(&config, &health)?;
                Ok(server.serve(service, shutdown).await?)
            }
        }
    }
}

fn mark_ready(config: &Config, health: &Health) -> Result<()> {
    health.set_ready(true).map_err(|source| Error::LockFile {
        path: config
            .lock_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        source,
    })
}

/// Runs `config` as the binary does: binds, serves, and stops on SIGTERM or SIGINT.
///
/// # Errors
///
/// As [`Watchdog::bind`] and [`BoundWatchdog::run`].
pub async fn serve(config: Config) -> Result<()> {
    Watchdog::bind(config)
        .await?
        .run(crate::server::shutdown_signal())
        .await
}

enum Handler {
    Fork(Arc<Config>),
    Http(Box<Upstream>),
    Static(PathBuf),
}

#[derive(Clone)]
struct WatchdogService(Arc<Handler>);

impl tower::Service<Request<RequestBody>> for WatchdogService {
    type Response = Response<WatchdogBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<WatchdogBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let handler = self.0.clone();
        Box::pin(async move {
            Ok(match &*handler {
                Handler::Fork(config) => fork::handle(config.clone(), req).await,
                Handler::Http(upstream) => upstream.handle(req).await,
                Handler::Static(root) => static_files::handle(root, req).await,
            })
        })
    }
}

async fn run_http<F>(config: Arc<Config>, server: Server, shutdown: F) -> Result<()>
where
    F: Future<Output = ()>,
{
    let Some(url) = config.upstream_url.clone() else {
        return Err(Error::config(
            "upstream_url",
            "missing upstream_url: mode=http needs it",
        ));
    };
    let health = server.health();
    let mut cmd = process::command(&config).map_err(|source| spawn_error(&config, source))?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| spawn_error(&config, source))?;
    drop(cmd);
    for (pipe, stream) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            LogStream::Stdout,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            LogStream::Stderr,
        ),
    ] {
        if let Some(pipe) = pipe {
            let sink = config.log_sink.clone();
            let max = config.log_buffer_size;
            tokio::spawn(async move { forward_lines(pipe, stream, max, &*sink).await });
        }
    }
    let mut guard = ProcessGuard::new(child);

    let (state_tx, state_rx) = watch::channel(UpState::Starting);
    let state_tx = Arc::new(state_tx);
    let service = WatchdogService(Arc::new(Handler::Http(Box::new(Upstream::new(
        &config,
        &url,
        state_rx.clone(),
    )))));

    // Readiness: the function is ready once its port accepts connections.
    let (lock_err_tx, lock_err_rx) = oneshot::channel::<std::io::Error>();
    let probe = {
        let state_tx = state_tx.clone();
        let health = health.clone();
        let target = upstream_target(&url);
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(5);
            loop {
                if *state_tx.borrow() != UpState::Starting {
                    return;
                }
                if TcpStream::connect(target.as_str()).await.is_ok() {
                    state_tx.send_if_modified(|s| {
                        let starting = *s == UpState::Starting;
                        if starting {
                            *s = UpState::Ready;
                        }
                        starting
                    });
                    if let Err(e) = health.set_ready(true) {
                        let _ = lock_err_tx.send(e);
                    }
                    tracing::info!(upstream = %target, "function process accepts connections: ready");
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        })
    };

    // The process: exits on its own (a crash), or is stopped by us after shutdown.
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let grace = config.write_timeout;
    let monitor = {
        let state_tx = state_tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                status = guard.wait() => {
                    if let Ok(status) = status {
                        tracing::error!(%status, "function process exited");
                        let _ = state_tx.send(UpState::Exited(status));
                    }
                }
                _ = stop_rx => {
                    guard.signal_group(Signal::SIGTERM);
                    if tokio::time::timeout(grace, guard.wait()).await.is_err() {
                        guard.kill_group();
                    }
                }
            }
        })
    };

    let crashed = AtomicBool::new(false);
    let lock_failed = std::sync::Mutex::new(None);
    let stop = async {
        let mut exited = state_rx.clone();
        tokio::select! {
            _ = shutdown => {}
            _ = exited.wait_for(|s| matches!(s, UpState::Exited(_))) => crashed.store(true, Ordering::Release),
            Ok(e) = lock_err_rx => *lock_failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e),
        }
    };
    let served = server.serve(service, stop).await;
    probe.abort();
    let _ = stop_tx.send(());
    let _ = monitor.await;
    served?;

    if let Some(source) = lock_failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(Error::LockFile {
            path: config
                .lock_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        });
    }
    if crashed.load(Ordering::Acquire)
        && let UpState::Exited(status) = *state_rx.borrow()
    {
        return Err(Error::UpstreamExited { status });
    }
    Ok(())
}

fn upstream_target(url: &Uri) -> String {
    let host = url
        .host()
        .unwrap_or("127.0.0.1")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_u16().unwrap_or(80);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn spawn_error(config: &Config, source: std::io::Error) -> Error {
    Error::Spawn {
        process: config.function_process.clone().unwrap_or_default(),
        source,
    }
}
