//! Helpers shared by the integration tests: in-process and binary watchdogs, a real HTTP client,
//! a real HTTP upstream, and /proc inspection.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use faas_watchdog::server::Health;
use faas_watchdog::{Config, LogSink, LogStream, Watchdog};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const BIN: &str = env!("CARGO_BIN_EXE_fwatchdog");
pub const LONG: Duration = Duration::from_secs(20);

/// A watchdog running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub health: Health,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<faas_watchdog::Result<()>>,
}

impl Running {
    pub fn url(&self, path: &str) -> Uri {
        format!("http://{}{}", self.addr, path).parse().unwrap()
    }

    /// Asks for shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> faas_watchdog::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(LONG, &mut self.task)
            .await
            .expect("watchdog did not stop")
            .expect("watchdog panicked")
    }
}

pub fn vars(pairs: &[(&str, &str)]) -> Config {
    Config::from_vars(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .unwrap()
    .with_bind_address("127.0.0.1".parse().unwrap())
    .with_port(0)
    .with_metrics_port(None)
    .with_lock_file(None)
}

pub async fn start(pairs: &[(&str, &str)]) -> Running {
    start_config(vars(pairs)).await
}

pub async fn start_config(config: Config) -> Running {
    let bound = Watchdog::bind(config).await.unwrap();
    let addr = bound.local_addr();
    let health = bound.health();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        health,
        stop: Some(tx),
        task,
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_internal(&self) -> bool {
        self.header("x-openfaas-internal") == Some("fwatchdog")
    }
}

pub async fn send(req: Request<Full<Bytes>>) -> Answer {
    let fut = async {
        let resp = client().request(req).await.expect("request failed");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body failed").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(LONG, fut)
        .await
        .expect("request timed out")
}

pub async fn get(uri: Uri) -> Answer {
    send(Request::get(uri).body(Full::default()).unwrap()).await
}

pub async fn post(uri: Uri, body: &'static str) -> Answer {
    send(
        Request::post(uri)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap(),
    )
    .await
}

/// Writes `request` on a fresh connection and returns everything read until the server closes it
/// (or 20 s pass).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LONG, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a shell script into `dir` and returns its path.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    path
}

/// Copies `/bin/<tool>` to `dir/<name>` so that its processes can be found by name (`comm`).
pub fn tool_copy(dir: &Path, tool: &str, name: &str) -> PathBuf {
    assert!(name.len() <= 15, "comm is truncated to 15 bytes");
    let src = ["/bin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap();
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap();
    dst
}

/// Processes whose `comm` is `name`: (running or sleeping, zombies).
pub fn processes_named(name: &str) -> (usize, usize) {
    let mut alive = 0;
    let mut zombies = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        match stat[close + 2..].chars().next() {
            Some('Z') => zombies += 1,
            _ => alive += 1,
        }
    }
    (alive, zombies)
}

/// Zombie processes whose parent is this process (each nextest test runs in its own process).
pub fn zombie_children() -> usize {
    let me = std::process::id().to_string();
    let mut zombies = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 2..].split(' ');
        let state = fields.next();
        let ppid = fields.next();
        if state == Some("Z") && ppid == Some(me.as_str()) {
            zombies += 1;
        }
    }
    zombies
}

/// Polls until `cond` holds, for at most 20 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A log sink that keeps lines.
#[derive(Debug, Default)]
pub struct Collect(pub Mutex<Vec<(LogStream, String)>>);

impl LogSink for Collect {
    fn line(&self, stream: LogStream, line: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push((stream, String::from_utf8_lossy(line).into_owned()));
    }
}

impl Collect {
    pub fn lines(&self) -> Vec<(LogStream, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// A real HTTP upstream served by hyper in this process.
pub struct Upstream {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Handler = Arc<dyn Fn(Request<Incoming>) -> futures_handler::BoxResp + Send + Sync>;

pub mod futures_handler {
    use super::*;
    pub type BoxResp = std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Response<http_body_util::combinators::BoxBody<Bytes, hyper::Error>>,
                > + Send,
        >,
    >;
}

/// The default upstream: `/slow` sleeps 5 s, `/ready` answers 200, `/fail` 500, anything else
/// echoes the request body back streaming, with the method, path and query and `X-Call-Id` in
/// `x-echo-*` headers.
pub async fn upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    upstream_on(listener, Arc::new(AtomicReady::default())).await
}

#[derive(Debug, Default)]
pub struct AtomicReady(pub std::sync::atomic::AtomicBool);

pub async fn upstream_on(listener: TcpListener, not_ready: Arc<AtomicReady>) -> Upstream {
    let addr = listener.local_addr().unwrap();
    let handler: Handler = Arc::new(move |req: Request<Incoming>| {
        let not_ready = not_ready.clone();
        Box::pin(async move {
            use http_body_util::BodyExt as _;
            let path = req.uri().path().to_owned();
            let mut builder = Response::builder()
                .header("x-echo-method", req.method().as_str())
                .header("x-echo-path", path.as_str())
                .header("x-echo-query", req.uri().query().unwrap_or(""))
                .header(
                    "x-echo-call-id",
                    req.headers()
                        .get("x-call-id")
                        .cloned()
                        .unwrap_or_else(|| "none".parse().unwrap()),
                )
                .header(
                    "x-echo-host",
                    req.headers()
                        .get("host")
                        .cloned()
                        .unwrap_or_else(|| "none".parse().unwrap()),
                );
            match path.as_str() {
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    builder
                        .body(
                            Full::new(Bytes::from_static(b"slow"))
                                .map_err(|e| match e {})
                                .boxed(),
                        )
                        .unwrap()
                }
                "/ready" => {
                    if not_ready.0.load(std::sync::atomic::Ordering::SeqCst) {
                        builder = builder.status(500);
                    }
                    builder
                        .body(
                            Full::new(Bytes::from_static(b"ready?"))
                                .map_err(|e| match e {})
                                .boxed(),
                        )
                        .unwrap()
                }
                "/fail" => builder
                    .status(500)
                    .body(
                        Full::new(Bytes::from_static(b"fail"))
                            .map_err(|e| match e {})
                            .boxed(),
                    )
                    .unwrap(),
                _ => builder.body(req.into_body().boxed()).unwrap(),
            }
        })
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Upstream { addr, task }
}

/// The `fwatchdog` binary running as a child of the test.
pub struct Binary {
    pub child: std::process::Child,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `fwatchdog` with `env` (plus port=0, metrics_port=0, suppress_lock=true unless set)
    /// and waits for its "listening" line.
    pub fn start(env: &[(&str, &str)]) -> Binary {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_remove("mode")
            .env_remove("fprocess")
            .env("port", "0")
            .env("metrics_port", "0")
            .env("suppress_lock", "true");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("fwatchdog listening") {
                        let _ = tx.send(line.clone());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let line = rx.recv_timeout(LONG).expect("fwatchdog did not start");
        let port = field_port(&line, "addr=").expect("no addr in listening line");
        let metrics_port = field_port(&line, "metrics=Some(");
        Binary {
            child,
            port,
            metrics_port,
            stderr: lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> Uri {
        format!("http://127.0.0.1:{}{}", self.port, path)
            .parse()
            .unwrap()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits (20 s at most) for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("fwatchdog did not exit");
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field_port(line: &str, key: &str) -> Option<u16> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest.find([' ', ')']).unwrap_or(rest.len());
    rest[..end].rsplit(':').next()?.parse().ok()
}
