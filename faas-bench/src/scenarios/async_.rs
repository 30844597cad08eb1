//! `async` (issue 6): asynchronous invocation through `faas up`.
//!
//! - (a) enqueue throughput with the embedded queue (durable: group-committed `fdatasync`), `faas up
//!   --no-queue-worker`, `POST /async-function/bench` answered 202;
//! - (b) the same with the NATS JetStream queue (when a server answers on `$FAAS_BENCH_NATS_URL`, by
//!   default `nats://127.0.0.1:4222`; start one with `scripts/nats.sh start`);
//! - end to end, embedded and NATS: 16 clients enqueue calls with an `X-Callback-Url` for
//!   `--duration`; the figure is the callbacks received per second, from the first request to the
//!   last callback, through a fork-free (http mode) function whose process is `bench-upstream`.
//!
//! Figures: (a) at 16 connections (target at least 5,000/s) and end to end embedded (target at least
//! 2,000/s); NATS figures have no target.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Method};

use super::Scenario;
use crate::bench::{Bench, Series, Watch};
use crate::load::{self, LoadSpec};
use crate::process::{self, Proc};
use crate::report::{Bound, Figure, Unit};

const ENQUEUE_EMBEDDED: Series = Series::new("a", "enqueue, embedded queue");
const ENQUEUE_NATS: Series = Series::new("b", "enqueue, nats jetstream");

/// Connections of the end-to-end runs (the 16 concurrent clients).
const E2E_CLIENTS: usize = 16;

/// How long the end-to-end runs wait for the last callbacks after the load stopped.
const DRAIN_PATIENCE: Duration = Duration::from_secs(120);

/// How long a deployed function may take to answer its first invocation.
const DEPLOY_PATIENCE: Duration = Duration::from_secs(30);

/// Time `faas up` gets to stop on SIGTERM.
const GRACE: Duration = Duration::from_secs(15);

/// The `async` scenario.
#[derive(Debug, Clone, Copy)]
pub struct Async;

/// A running `faas up`.
#[derive(Debug)]
struct Platform {
    proc: Proc,
    addr: SocketAddr,
}

fn nats_url() -> String {
    std::env::var("FAAS_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Whether something listens at the NATS URL's address.
async fn nats_reachable(url: &str) -> bool {
    let authority = url.trim_start_matches("nats://").trim_end_matches('/');
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(authority)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Starts `faas up` with `args` and a data dir named after `name`, deploys the http-mode function
/// `bench` (a `bench-upstream`) and waits until it answers.
async fn start(bench: &Bench, name: &str, args: &[&str]) -> anyhow::Result<Platform> {
    let port = process::free_port()?;
    let data_dir = bench.scratch_dir().join(format!("{name}-data"));
    let mut command = Command::new(bench.binary("faas")?);
    command
        .args(["up", "--port", &port.to_string(), "--data-dir"])
        .arg(&data_dir)
        .args(args)
        .env("RUST_LOG", "warn");
    let mut proc = bench.spawn(name, command)?;
    let addr = process::loopback(port);
    bench.wait_ready(&mut proc, addr, "/healthz").await?;
    let function_port = process::free_port()?;
    let function = serde_json::json!({
        "service": "bench",
        "image": "bench",
        "envProcess": bench.upstream_command_line(function_port)?,
        "envVars": {"mode": "http", "upstream_url": format!("http://127.0.0.1:{function_port}")},
    });
    let answer = crate::http::request(
        addr,
        Method::POST,
        "/system/functions",
        Bytes::from(serde_json::to_vec(&function)?),
    )
    .await?;
    if !answer.is_success() {
        bail!(
            "deploying bench: status {} {}",
            answer.status,
            answer.text()
        );
    }
    crate::http::wait_ready(addr, "/function/bench", DEPLOY_PATIENCE, || {
        proc.check_alive()
    })
    .await
    .context("function bench did not answer after its deployment")?;
    Ok(Platform { proc, addr })
}

/// Counts callbacks and remembers when the last one came.
#[derive(Debug)]
struct Receiver {
    addr: SocketAddr,
    count: Arc<AtomicU64>,
    last_nanos: Arc<AtomicU64>,
    origin: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicU64::new(0));
        let last_nanos = Arc::new(AtomicU64::new(0));
        let origin = Instant::now();
        let (c, l) = (count.clone(), last_nanos.clone());
        let task = tokio::task::spawn_local(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (c, l) = (c.clone(), l.clone());
                tokio::task::spawn_local(async move {
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let (c, l) = (c.clone(), l.clone());
                            async move {
                                use http_body_util::BodyExt as _;
                                let _ = request.into_body().collect().await;
                                c.fetch_add(1, Ordering::Relaxed);
                                let nanos =
                                    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
                                l.fetch_max(nanos, Ordering::Relaxed);
                                Ok::<_, std::convert::Infallible>(http::Response::new(
                                    http_body_util::Full::new(Bytes::new()),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver {
            addr,
            count,
            last_nanos,
            origin,
            task,
        })
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_nanos(self.last_nanos.load(Ordering::Relaxed))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Async {
    async fn enqueue(
        &self,
        bench: &mut Bench,
        series: &Series,
        name: &str,
        args: &[&str],
    ) -> anyhow::Result<()> {
        let mut platform = start(bench, name, args).await?;
        let target = bench.target(platform.addr, "/async-function/bench");
        let watch = [Watch::of(&platform.proc)];
        for conns in bench.connections(&[1, 16, 64]) {
            bench
                .measure(series, &target, conns, &watch, Some(platform.proc.pid()))
                .await?;
        }
        platform.proc.check_alive()?;
        platform.proc.stop(GRACE).await;
        Ok(())
    }

    /// Runs 16 clients for `--duration` with callbacks; returns callbacks per second.
    async fn end_to_end(
        &self,
        bench: &mut Bench,
        name: &str,
        args: &[&str],
    ) -> anyhow::Result<f64> {
        let mut platform = start(bench, name, args).await?;
        let receiver = Receiver::start().await?;
        let mut target = bench.target(platform.addr, "/async-function/bench");
        target.headers.insert(
            "x-callback-url",
            HeaderValue::try_from(format!("http://{}/done", receiver.addr))?,
        );
        let spec = LoadSpec {
            connections: E2E_CLIENTS,
            warmup: Duration::ZERO,
            duration: bench.args().duration,
            max_requests: bench.args().max_requests,
            timeout: bench.args().timeout,
        };
        let started = Instant::now();
        let result = load::run(&target, &spec).await;
        let accepted = result.requests;
        let deadline = Instant::now() + DRAIN_PATIENCE;
        let mut quiet_since = (Instant::now(), receiver.count());
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let count = receiver.count();
            if count != quiet_since.1 {
                quiet_since = (Instant::now(), count);
            }
            // Done when every accepted call called back and nothing came for a second (calls
            // in flight at the end of the load window were accepted too, uncounted).
            if count >= accepted && quiet_since.0.elapsed() > Duration::from_secs(1) {
                break;
            }
            if Instant::now() >= deadline {
                bench.note(format!(
                    "{name}: {count} of {accepted} callbacks after {DRAIN_PATIENCE:?}"
                ));
                break;
            }
            platform.proc.check_alive()?;
        }
        let callbacks = receiver.count();
        let seconds = receiver
            .last()
            .saturating_duration_since(started)
            .as_secs_f64();
        eprintln!(
            "async: {name}: {accepted} accepted ({} errors) in {:.1}s, {callbacks} callbacks by {seconds:.1}s",
            result.errors,
            spec.duration.as_secs_f64()
        );
        platform.proc.check_alive()?;
        platform.proc.stop(GRACE).await;
        if seconds <= 0.0 {
            bail!("{name}: no callback received");
        }
        Ok(callbacks as f64 / seconds)
    }
}

#[async_trait(?Send)]
impl Scenario for Async {
    fn name(&self) -> &'static str {
        "async"
    }

    fn about(&self) -> &'static str {
        "async invocation: enqueue (202) and end-to-end throughput, embedded queue and NATS (issue 6)"
    }

    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
        bench.binary("faas")?;
        bench.binary("bench-upstream")?;
        // The callback receiver runs on this thread's tasks.
        let local = tokio::task::LocalSet::new();
        local.run_until(self.run_local(bench)).await
    }
}

impl Async {
    async fn run_local(&self, bench: &mut Bench) -> anyhow::Result<()> {
        let nats = nats_url();
        let nats_up = nats_reachable(&nats).await;
        if !nats_up {
            bench.note(format!(
                "no NATS server at {nats}: NATS cases skipped (scripts/nats.sh start)"
            ));
        }
        let enqueue_stream = format!("FAAS_BENCH_{}", std::process::id());
        let e2e_stream = format!("{enqueue_stream}_E2E");

        if bench.wants("a")
            && let Err(e) = self
                .enqueue(
                    bench,
                    &ENQUEUE_EMBEDDED,
                    "faas-enqueue",
                    // no worker drains the queue here: lift the bound on pending calls so that
                    // the cases measure accepting, not the 429s of a full queue
                    &["--no-queue-worker", "--queue-max-pending", "100000000"],
                )
                .await
        {
            bench.note(format!("a: {e:#}"));
        }
        if let Some(rps) = bench.report().case("a", 16).map(|c| c.rps) {
            bench.figure(
                Figure::new(
                    "embedded queue: accepted/s (202, durable), 16 connections",
                    rps,
                    Unit::PerSecond,
                )
                .target(Bound::AtLeast(5000.0)),
            );
        }
        if nats_up && bench.wants("b") {
            let args = [
                "--queue",
                nats.as_str(),
                "--nats-stream",
                enqueue_stream.as_str(),
                "--no-queue-worker",
            ];
            if let Err(e) = self
                .enqueue(bench, &ENQUEUE_NATS, "faas-enqueue-nats", &args)
                .await
            {
                bench.note(format!("b: {e:#}"));
            }
            if let Some(rps) = bench.report().case("b", 16).map(|c| c.rps) {
                bench.figure(Figure::new(
                    "nats queue: accepted/s (202), 16 connections",
                    rps,
                    Unit::PerSecond,
                ));
            }
        }
        if bench.wants("e2e") || bench.args().only.is_empty() {
            match self.end_to_end(bench, "faas-e2e", &[]).await {
                Ok(rate) => bench.figure(
                    Figure::new(
                        "embedded queue: end to end calls/s (callback received), 16 clients",
                        rate,
                        Unit::PerSecond,
                    )
                    .target(Bound::AtLeast(2000.0)),
                ),
                Err(e) => bench.note(format!("end to end, embedded: {e:#}")),
            }
            if nats_up {
                // A fresh stream: the enqueue case left its calls in its own.
                let args = [
                    "--queue",
                    nats.as_str(),
                    "--nats-stream",
                    e2e_stream.as_str(),
                ];
                match self.end_to_end(bench, "faas-e2e-nats", &args).await {
                    Ok(rate) => bench.figure(Figure::new(
                        "nats queue: end to end calls/s (callback received), 16 clients",
                        rate,
                        Unit::PerSecond,
                    )),
                    Err(e) => bench.note(format!("end to end, nats: {e:#}")),
                }
            }
        }
        if nats_up && bench.wants("b") {
            bench.note(format!(
                "the NATS stream {enqueue_stream} keeps the calls the enqueue case queued (no worker ran them); \
                 delete it with `nats stream rm {enqueue_stream}` or use a scratch server"
            ));
        }
        Ok(())
    }
}
