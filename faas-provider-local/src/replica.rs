//! One replica: an in-process faas-watchdog on its own loopback port, supervised.
//!
//! The supervisor binds the watchdog on `127.0.0.1:0`, probes `/_/ready` until it answers 200 (only
//! then is the replica an endpoint), and when the watchdog stops on its own (in `http` mode: the
//! function process exited) restarts it after an exponential backoff, counting it unavailable
//! meanwhile. Draining takes the replica out of the endpoints, waits a grace period for callers
//! that resolved it just before, then shuts the watchdog down gracefully (it finishes in-flight
//! requests), bounded by a timeout.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_core::model::{Endpoint, InProcess};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::logs::{LogBook, ReplicaSink};

/// A replica that ran at least this long before stopping starts again after the initial backoff.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// How replicas are run, from [`LocalConfig`](crate::LocalConfig).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) drain_grace: Duration,
    pub(crate) drain_timeout: Duration,
    /// Endpoints carry the watchdog's in-process handle.
    pub(crate) in_process: bool,
}

/// What a replica's watchdog runs: the function's variables (the watchdog's configuration and the
/// function process's environment) and its working directory.
#[derive(Debug)]
pub(crate) struct RunSpec {
    pub(crate) vars: Vec<(String, String)>,
    pub(crate) working_dir: Option<PathBuf>,
    /// `mode=http` without `upstream_url`: every replica start gets a free loopback port, given to
    /// the function as `PORT` and `http_port` and to the watchdog as `upstream_url`, so that
    /// replicas of one function do not fight over a port.
    pub(crate) auto_upstream: bool,
}

impl RunSpec {
    /// The watchdog configuration of one replica: loopback, a free port, no metrics listener, no
    /// lock file, logs into the function's log book.
    pub(crate) fn config(
        &self,
        sink: Arc<dyn faas_watchdog::LogSink>,
    ) -> faas_watchdog::Result<faas_watchdog::Config> {
        let upstream_port = if self.auto_upstream {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            Some(listener.local_addr()?.port())
        } else {
            None
        };
        self.config_with(upstream_port, sink)
    }

    /// Checks that the watchdog accepts this configuration.
    pub(crate) fn validate(&self) -> faas_watchdog::Result<()> {
        self.config_with(Some(8080), Arc::new(faas_watchdog::StderrSink::new(false)))
            .map(drop)
    }

    fn config_with(
        &self,
        upstream_port: Option<u16>,
        sink: Arc<dyn faas_watchdog::LogSink>,
    ) -> faas_watchdog::Result<faas_watchdog::Config> {
        let mut vars = self.vars.clone();
        if let Some(port) = upstream_port.filter(|_| self.auto_upstream) {
            vars.push((
                "upstream_url".to_owned(),
                format!("http://127.0.0.1:{port}"),
            ));
            vars.push(("http_port".to_owned(), port.to_string()));
            vars.push(("PORT".to_owned(), port.to_string()));
        }
        let mut config = faas_watchdog::Config::from_vars(vars)?;
        // As in a container, whose working directory a relative path starts from: the function's
        // folder (its `image`) when it names one.
        if let Some(dir) = &self.working_dir
            && config.static_path.is_relative()
        {
            let path = dir.join(&config.static_path);
            config = config.with_static_path(path);
        }
        Ok(config
            .with_bind_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .with_port(0)
            .with_metrics_port(None)
            .with_lock_file(None)
            .with_working_dir(self.working_dir.clone())
            .with_log_sink(sink))
    }
}

/// What a replica is doing now.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// Where its watchdog listens (while it runs).
    pub(crate) addr: Option<SocketAddr>,
    /// Its watchdog's in-process handle (while it runs, when enabled).
    pub(crate) in_process: Option<InProcess>,
    /// Its watchdog answered `/_/ready` since it last started.
    pub(crate) ready: bool,
    /// It is being drained: no new requests.
    pub(crate) draining: bool,
    /// Its supervisor ended: it will not serve again.
    pub(crate) stopped: bool,
    /// How many times it was restarted.
    pub(crate) restarts: u32,
}

/// One replica of a function.
pub(crate) struct Replica {
    pub(crate) id: Arc<str>,
    pub(crate) generation: u64,
    status: watch::Sender<Status>,
    stop: CancellationToken,
    abort: Mutex<Option<AbortHandle>>,
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Starts a replica; it becomes an endpoint once its watchdog is ready.
    pub(crate) fn start(
        id: Arc<str>,
        generation: u64,
        spec: Arc<RunSpec>,
        logs: Arc<LogBook>,
        settings: Arc<Settings>,
        parent: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Replica> {
        let replica = Arc::new(Replica {
            id,
            generation,
            status: watch::Sender::new(Status::default()),
            stop: parent.child_token(),
            abort: Mutex::new(None),
        });
        let task = tracker.spawn(supervise(replica.clone(), spec, logs, settings));
        *replica.abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        replica
    }

    /// The endpoint, when the replica is ready and not draining.
    pub(crate) fn endpoint(&self) -> Option<Endpoint> {
        let status = self.status.borrow();
        match status.addr {
            Some(addr) if status.ready && !status.draining && !status.stopped => {
                let endpoint = Endpoint::new(self.id.to_string(), addr.to_string());
                Some(match &status.in_process {
                    Some(handle) => endpoint.with_in_process(handle.clone()),
                    None => endpoint,
                })
            }
            _ => None,
        }
    }

    /// Whether the replica serves requests now.
    pub(crate) fn is_ready(&self) -> bool {
        self.endpoint().is_some()
    }

    /// Waits until the replica is ready, or will never be (stopped or draining).
    pub(crate) async fn settled(&self) {
        let mut rx = self.status.subscribe();
        let _ = rx.wait_for(|s| s.ready || s.stopped || s.draining).await;
    }

    /// Takes the replica out of the endpoints, waits `grace`, then stops its watchdog gracefully
    /// (in-flight requests finish); after `timeout` the watchdog is dropped, killing what it runs.
    pub(crate) async fn drain(&self, grace: Duration, timeout: Duration) {
        let was_serving = self.is_ready();
        self.status.send_modify(|s| s.draining = true);
        if was_serving && !grace.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                () = self.stop.cancelled() => {}
            }
        }
        self.stop.cancel();
        let mut rx = self.status.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|s| s.stopped))
            .await
            .is_err()
        {
            tracing::warn!(replica = %self.id, ?timeout, "replica did not drain in time, stopping it");
            if let Some(abort) = self.abort.lock().unwrap_or_else(|e| e.into_inner()).take() {
                abort.abort();
            }
            self.status.send_modify(|s| {
                s.stopped = true;
                s.ready = false;
                s.addr = None;
                s.in_process = None;
            });
        }
    }
}

/// Marks the replica stopped when the supervisor ends, however it ends.
struct StoppedOnDrop(Arc<Replica>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.status.send_modify(|s| {
            s.stopped = true;
            s.ready = false;
            s.addr = None;
            s.in_process = None;
        });
    }
}

async fn supervise(
    replica: Arc<Replica>,
    spec: Arc<RunSpec>,
    logs: Arc<LogBook>,
    settings: Arc<Settings>,
) {
    let _stopped = StoppedOnDrop(replica.clone());
    let sink: Arc<dyn faas_watchdog::LogSink> = Arc::new(ReplicaSink {
        book: logs.clone(),
        instance: replica.id.clone(),
    });
    let mut backoff = settings.backoff_initial;
    loop {
        if replica.stop.is_cancelled() {
            return;
        }
        let started = Instant::now();
        let outcome = run_once(&replica, &spec, sink.clone(), &settings).await;
        replica.status.send_modify(|s| {
            s.ready = false;
            s.addr = None;
            s.in_process = None;
        });
        if replica.stop.is_cancelled() {
            return;
        }
        if started.elapsed() >= STABLE_RUN {
            backoff = settings.backoff_initial;
        }
        let reason = match outcome {
            Ok(()) => "watchdog stopped".to_owned(),
            Err(err) => error_chain(&err),
        };
        tracing::warn!(replica = %replica.id, %reason, ?backoff, "replica stopped, restarting");
        logs.push(
            &replica.id,
            format!("faas: replica stopped ({reason}), restarting in {backoff:?}"),
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = replica.stop.cancelled() => return,
        }
        replica.status.send_modify(|s| s.restarts += 1);
        backoff = (backoff * 2).min(settings.backoff_max);
    }
}

/// Runs the watchdog until it stops or the replica is stopped; marks the replica ready once the
/// watchdog answers `/_/ready`.
async fn run_once(
    replica: &Replica,
    spec: &RunSpec,
    sink: Arc<dyn faas_watchdog::LogSink>,
    settings: &Settings,
) -> faas_watchdog::Result<()> {
    let config = spec.config(sink)?;
    let watchdog = faas_watchdog::Watchdog::bind(config).await?;
    let addr = watchdog.local_addr();
    let handle = settings.in_process.then(|| watchdog.in_process());
    replica.status.send_modify(|s| {
        s.addr = Some(addr);
        s.in_process = handle;
    });
    let stop = replica.stop.clone();
    let run = watchdog.run(async move { stop.cancelled().await });
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => return result,
        () = probe_until_ready(addr, settings.probe_timeout) => {}
    }
    replica.status.send_modify(|s| s.ready = true);
    run.await
}

/// Asks `GET /_/ready` until it answers 200, backing off from 5 ms to 250 ms between attempts.
async fn probe_until_ready(addr: SocketAddr, timeout: Duration) {
    let mut pause = Duration::from_millis(5);
    loop {
        if let Ok(Ok(true)) = tokio::time::timeout(timeout, probe(addr)).await {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

async fn probe(addr: SocketAddr) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let request = http::Request::get("/_/ready")
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await;
    let ok = match response {
        Ok(response) => {
            let ok = response.status() == http::StatusCode::OK;
            let _ = response.into_body().collect().await;
            ok
        }
        Err(e) => {
            conn.abort();
            return Err(e.into());
        }
    };
    drop(sender);
    conn.abort();
    Ok(ok)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
