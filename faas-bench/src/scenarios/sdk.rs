//! `sdk` (issue 4): a function built with faas-sdk (`examples/hello`) against a plain hyper server.
//!
//! - (a) `bench-upstream` directly, the plain hyper hello-world baseline;
//! - (b) the `hello` example binary, served by `faas::run` (the watchdog's serving code, health,
//!   limits, timeouts, context and `IntoResponse` included), with as many Tokio workers as the
//!   upstream (`TOKIO_WORKER_THREADS` = `--upstream-threads`).
//!
//! (a) and (b) run interleaved at 1, 16 and 64 connections. Figures: (b)/(a) throughput at 16
//! connections (target at least 90%) and the same as CPU-bound capacity (robust to other load), the size of the `hello` release binary (stripped by the
//! release profile; target at most 4 MiB), its startup time — process start to the first
//! successful `GET /_/health`, median of 10 starts (target at most 20 ms) — and its idle RSS.
//!
//! ```text
//! cargo build --release -p faas-bench -p hello
//! target/release/faas-bench sdk
//! ```

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Scenario;
use crate::bench::{Bench, Series, Watch};
use crate::process;
use crate::report::{Bound, Figure, MIB, Unit};

const DIRECT: Series = Series::new("a", "plain hyper (bench-upstream)");
const SDK: Series = Series::new("b", "faas::run (examples/hello)").vs("a");

/// Starts measured for the startup figure.
const STARTS: usize = 10;

/// How long one start may take before the measurement gives up.
const START_PATIENCE: Duration = Duration::from_secs(10);

/// Time given to `hello` to settle before its idle memory is read.
const SETTLE: Duration = Duration::from_millis(300);

/// The `sdk` scenario.
#[derive(Debug, Clone, Copy)]
pub struct Sdk;

/// The `hello` command listening on `port` on loopback.
fn hello_command(path: &std::path::Path, port: u16, threads: u16) -> Command {
    let mut command = Command::new(path);
    command
        .env("PORT", port.to_string())
        .env("bind_address", "127.0.0.1")
        .env("TOKIO_WORKER_THREADS", threads.to_string());
    command
}

/// Whether `GET /_/health` on `addr` answers 200, over a fresh connection.
async fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// One start of `hello`: the time from spawning it to its first healthy answer.
async fn time_one_start(path: &std::path::Path, threads: u16) -> anyhow::Result<Duration> {
    let port = process::free_port()?;
    let addr = process::loopback(port);
    let mut command = hello_command(path, port, threads);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let outcome = loop {
        if healthy(addr).await {
            break Ok(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("hello exited during startup: {status}"));
        }
        if started.elapsed() > START_PATIENCE {
            break Err(anyhow::anyhow!(
                "hello not healthy after {START_PATIENCE:?}"
            ));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// The median of `STARTS` startup times, in milliseconds.
async fn startup_median_ms(path: &std::path::Path, threads: u16) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        times.push(time_one_start(path, threads).await?.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    Ok(if times.len() % 2 == 0 {
        (times[mid - 1] + times[mid]) / 2.0
    } else {
        times[mid]
    })
}

impl Sdk {
    /// (a) and (b), interleaved, and the throughput figures.
    async fn throughput(&self, bench: &mut Bench, hello: &std::path::Path) -> anyhow::Result<()> {
        let threads = bench.args().upstream_threads;
        let (mut upstream, upstream_addr) = bench.start_upstream().await?;
        let port = process::free_port()?;
        let mut function = bench.spawn("hello", hello_command(hello, port, threads))?;
        let function_addr = process::loopback(port);
        bench
            .wait_ready(&mut function, function_addr, "/_/health")
            .await?;

        tokio::time::sleep(SETTLE).await;
        let idle = function.memory()?;
        bench.figure(Figure::new(
            "hello (faas::run) idle RSS",
            idle.rss_kib as f64 * 1024.0,
            Unit::Bytes,
        ));

        let watch = [Watch::of(&upstream), Watch::of(&function)];
        let direct = bench.target(upstream_addr, "/");
        let served = bench.target(function_addr, "/");
        for conns in bench.connections(&[1, 16, 64]) {
            bench
                .measure(&DIRECT, &direct, conns, &watch, Some(upstream.pid()))
                .await?;
            bench
                .measure(&SDK, &served, conns, &watch, Some(function.pid()))
                .await?;
        }
        upstream.check_alive()?;
        function.check_alive()?;
        upstream.stop(Duration::from_secs(2)).await;
        function.stop(Duration::from_secs(5)).await;

        let report = bench.report();
        let ratio16 = report.throughput_ratio("b", "a", 16);
        let others: Vec<(usize, f64)> = [1, 64]
            .into_iter()
            .filter_map(|c| Some((c, report.throughput_ratio("b", "a", c)?)))
            .collect();
        let capacity16 = report.capacity_ratio("b", "a", 16);
        let added = report.added_p50_us("b", "a", 1);
        if let Some(ratio) = ratio16 {
            bench.figure(
                Figure::new(
                    "faas::run throughput vs plain hyper, 16 connections",
                    ratio,
                    Unit::Ratio,
                )
                .target(Bound::AtLeast(0.9)),
            );
        }
        for (conns, ratio) in others {
            bench.figure(Figure::new(
                format!("faas::run throughput vs plain hyper, {conns} connections"),
                ratio,
                Unit::Ratio,
            ));
        }
        if let Some(capacity) = capacity16 {
            // CPU per request of each server, robust to other load on the machine.
            bench.figure(Figure::new(
                "faas::run CPU-bound capacity vs plain hyper, 16 connections",
                capacity,
                Unit::Ratio,
            ));
        }
        if let Some(added) = added {
            bench.figure(Figure::new(
                "p50 added by faas::run, 1 connection",
                added,
                Unit::Micros,
            ));
        }
        Ok(())
    }
}

#[async_trait(?Send)]
impl Scenario for Sdk {
    fn name(&self) -> &'static str {
        "sdk"
    }

    fn about(&self) -> &'static str {
        "examples/hello served by faas::run vs a plain hyper hello-world; size and startup (issue 4)"
    }

    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
        let hello = bench
            .binary("hello")
            .context("build it with `cargo build --release -p hello`")?;
        bench.binary("bench-upstream")?;
        let size = std::fs::metadata(&hello)
            .with_context(|| format!("reading {}", hello.display()))?
            .len();
        bench.figure(
            Figure::new(
                "hello binary size (release profile, stripped)",
                size as f64,
                Unit::Bytes,
            )
            .target(Bound::AtMost(4.0 * MIB)),
        );

        let threads = bench.args().upstream_threads;
        match startup_median_ms(&hello, threads).await {
            Ok(ms) => bench.figure(
                Figure::new(
                    format!("hello startup to first /_/health 200, median of {STARTS}"),
                    ms,
                    Unit::Millis,
                )
                .target(Bound::AtMost(20.0)),
            ),
            Err(e) => bench.note(format!("startup measurement failed: {e:#}")),
        }

        if (bench.wants("a") || bench.wants("b"))
            && let Err(e) = self.throughput(bench, &hello).await
        {
            bench.note(format!("throughput (a, b) failed: {e:#}"));
        }
        if bench.report().figures.is_empty() {
            bail!("no figure was measured");
        }
        Ok(())
    }
}
