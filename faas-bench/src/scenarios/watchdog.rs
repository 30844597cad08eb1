//! `watchdog` (issue 2): the cost of `fwatchdog` in each mode.
//!
//! - (a) `bench-upstream` directly, the baseline;
//! - (b) the same upstream process through `fwatchdog` in http mode (the watchdog starts it as `fprocess`);
//! - (c) fork mode (the classic watchdog's, `mode` unset) with `cat`;
//! - (d) streaming mode with `cat`.
//!
//! (a) and (b) run interleaved at 1, 16 and 64 connections, (c) and (d) also at 8. Figures: (b)/(a)
//! throughput, the p50 (b) adds over (a) at one connection, fork throughput at 8 connections, idle and peak
//! RSS of `fwatchdog`, and its binary size; each with the target of issue 2 and of-watchdog's figure.
//!
//! Two floors of the machine are measured in the same run (see [`crate::machine`]): how fast `cat` can be
//! started, fed and reaped with no watchdog (the ceiling of (c) and (d), and their share of it), and what
//! waking a sleeping thread costs on one CPU and across two (which the p50 of (b) pays twice more than
//! (a)).

use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;

use crate::bench::{Bench, Series, Watch, container_env};
use crate::machine::{self, SpawnRate};
use crate::process::{self, Proc};
use crate::report::{Bound, Figure, MIB, Unit};

use super::Scenario;

const DIRECT: Series = Series::new("a", "upstream direct");
const HTTP: Series = Series::new("b", "fwatchdog http").vs("a");
const FORK: Series = Series::new("c", "fwatchdog fork (cat)");
const STREAMING: Series = Series::new("d", "fwatchdog streaming (cat)");

/// Time given to a watchdog to settle before its idle memory is read.
const SETTLE: Duration = Duration::from_millis(300);

/// Time a watchdog gets to drain and exit on SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// The `watchdog` scenario.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog;

/// A running `fwatchdog` and where it listens.
#[derive(Debug)]
pub(crate) struct RunningWatchdog {
    pub(crate) proc: Proc,
    pub(crate) addr: std::net::SocketAddr,
}

/// Starts `fwatchdog` with `env` (plus `port`, `metrics_port` and `suppress_lock`) and waits for
/// `/_/health`.
pub(crate) async fn start_watchdog(
    bench: &Bench,
    name: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<RunningWatchdog> {
    let port = process::free_port()?;
    let metrics_port = process::free_port()?;
    let mut command = Command::new(bench.binary("fwatchdog")?);
    command
        .env("port", port.to_string())
        .env("metrics_port", metrics_port.to_string())
        .env("suppress_lock", "true")
        .envs(env.iter().copied());
    let mut proc = bench.spawn(name, command)?;
    let addr = process::loopback(port);
    bench.wait_ready(&mut proc, addr, "/_/health").await?;
    Ok(RunningWatchdog { proc, addr })
}

impl Watchdog {
    /// (a) and (b): one http-mode watchdog whose upstream is also driven directly.
    async fn http_mode(&self, bench: &mut Bench) -> anyhow::Result<()> {
        let upstream_port = process::free_port()?;
        let fprocess = bench.upstream_command_line(upstream_port)?;
        let upstream_url = format!("http://127.0.0.1:{upstream_port}");
        let mut wd = start_watchdog(
            bench,
            "fwatchdog",
            &[
                ("fprocess", &fprocess),
                ("mode", "http"),
                ("upstream_url", &upstream_url),
            ],
        )
        .await?;
        let upstream_addr = process::loopback(upstream_port);
        // health may turn green before the upstream accepts: wait for it as well
        bench.wait_ready(&mut wd.proc, upstream_addr, "/").await?;
        let upstream_pid = process::descendants(wd.proc.pid())
            .first()
            .map(|&(pid, _)| pid)
            .context("the upstream started by fwatchdog is not among its children")?;

        tokio::time::sleep(SETTLE).await;
        let idle = wd.proc.memory()?;
        bench.figure(
            Figure::new(
                "fwatchdog idle RSS (http mode)",
                idle.rss_kib as f64 * 1024.0,
                Unit::Bytes,
            )
            .target(Bound::AtMost(4.0 * MIB))
            .reference(8.5 * MIB),
        );

        let watch = [
            Watch::of(&wd.proc),
            Watch {
                role: "upstream".to_owned(),
                pid: upstream_pid,
            },
        ];
        let direct = bench.target(upstream_addr, "/");
        let proxied = bench.target(wd.addr, "/");
        for conns in bench.connections(&[1, 16, 64]) {
            bench
                .measure(&DIRECT, &direct, conns, &watch, Some(upstream_pid))
                .await?;
            bench
                .measure(&HTTP, &proxied, conns, &watch, Some(wd.proc.pid()))
                .await?;
        }
        wd.proc.check_alive()?;
        let peak = wd.proc.memory()?;
        let most = bench.connections(&[64]).into_iter().max().unwrap_or(64);
        bench.figure(
            Figure::new(
                format!("fwatchdog peak RSS (http mode, up to {most} connections)"),
                peak.hwm_kib as f64 * 1024.0,
                Unit::Bytes,
            )
            .target(Bound::AtMost(10.0 * MIB))
            .reference(17.0 * MIB),
        );
        wd.proc.stop(GRACE).await;

        let report = bench.report();
        let ratio16 = report.throughput_ratio("b", "a", 16);
        let added = report.added_p50_us("b", "a", 1);
        let capacity16 = report.capacity_ratio("b", "a", 16);
        let ratios: Vec<(usize, f64)> = [1, 64]
            .into_iter()
            .filter_map(|c| Some((c, report.throughput_ratio("b", "a", c)?)))
            .collect();
        if let Some(ratio) = ratio16 {
            bench.figure(
                Figure::new(
                    "http mode throughput vs direct, 16 connections",
                    ratio,
                    Unit::Ratio,
                )
                .target(Bound::AtLeast(0.35))
                .reference(0.18),
            );
        }
        for (conns, ratio) in ratios {
            bench.figure(Figure::new(
                format!("http mode throughput vs direct, {conns} connections"),
                ratio,
                Unit::Ratio,
            ));
        }
        if let Some(ratio) = capacity16 {
            bench.figure(Figure::new(
                "http mode CPU capacity vs direct, 16 connections (estimate)",
                ratio,
                Unit::Ratio,
            ));
        }
        if let Some(added) = added {
            bench.figure(
                Figure::new("p50 added by http mode, 1 connection", added, Unit::Micros)
                    .target(Bound::AtMost(60.0))
                    .reference(150.0),
            );
            wake_round_trips(bench).await;
        }
        Ok(())
    }

    /// (c) or (d): a forking watchdog running `cat`.
    async fn fork_mode(
        &self,
        bench: &mut Bench,
        series: &Series,
        mode: Option<&str>,
        ceiling: Option<SpawnRate>,
    ) -> anyhow::Result<()> {
        let mut env = vec![("fprocess", "cat")];
        if let Some(mode) = mode {
            env.push(("mode", mode));
        }
        let name = format!("fwatchdog-{}", mode.unwrap_or("fork"));
        let mut wd = start_watchdog(bench, &name, &env).await?;
        tokio::time::sleep(SETTLE).await;
        let idle = wd.proc.memory()?;
        bench.figure(Figure::new(
            format!("fwatchdog idle RSS ({})", mode.unwrap_or("fork mode")),
            idle.rss_kib as f64 * 1024.0,
            Unit::Bytes,
        ));
        let target = bench.target(wd.addr, "/");
        let watch = [Watch::of(&wd.proc)];
        for conns in bench.connections(&[1, 8, 16, 64]) {
            bench
                .measure(series, &target, conns, &watch, Some(wd.proc.pid()))
                .await?;
        }
        wd.proc.check_alive()?;
        let peak = wd.proc.memory()?;
        bench.figure(Figure::new(
            format!("fwatchdog peak RSS ({})", mode.unwrap_or("fork mode")),
            peak.hwm_kib as f64 * 1024.0,
            Unit::Bytes,
        ));
        wd.proc.stop(GRACE).await;
        if let Some(case) = bench.report().case(series.id, 8) {
            let rps = case.rps;
            let capacity = case.capacity_rps;
            bench.figure(
                Figure::new(
                    format!("{} throughput, 8 connections", series.label),
                    rps,
                    Unit::PerSecond,
                )
                .target(Bound::AtLeast(2000.0))
                .reference(1400.0),
            );
            if let Some(capacity) = capacity {
                bench.figure(Figure::new(
                    format!("{} CPU capacity, 8 connections (estimate)", series.label),
                    capacity,
                    Unit::PerSecond,
                ));
            }
            if let Some(ceiling) = ceiling {
                bench.figure(Figure::new(
                    format!(
                        "{} throughput vs starting cat directly, 8 connections",
                        series.label
                    ),
                    rps / ceiling.per_second,
                    Unit::Ratio,
                ));
            }
        }
        Ok(())
    }
}

/// The ceiling of the fork modes on this machine: `cat` started, fed a body and reaped by 8 threads at
/// once, with no watchdog and no HTTP (`None`, with a note, when it cannot run).
async fn spawn_ceiling(bench: &mut Bench) -> Option<SpawnRate> {
    bench.wait_quiet().await;
    let duration = bench.args().duration;
    let max_runs = bench.args().max_requests;
    let inherit = bench.args().inherit_env;
    let measured = tokio::task::spawn_blocking(move || {
        // an absolute path, as `fwatchdog` looks its program up once (given a bare name and a new
        // `PATH`, std would fork instead of posix_spawn)
        let cat = machine::find_in_path("cat").context("no cat in PATH")?;
        machine::spawn_rate(&cat, 8, duration, max_runs, |command| {
            if !inherit {
                container_env(command);
            }
        })
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|measured| measured);
    match measured {
        Ok(rate) => {
            println!(
                "watchdog: starting cat directly, 8 at a time: {:.0}/s, {:.0} µs of CPU in cat per start",
                rate.per_second, rate.child_cpu_us
            );
            bench.figure(Figure::new(
                "starting cat directly, 8 at a time (no watchdog: the fork modes' ceiling)",
                rate.per_second,
                Unit::PerSecond,
            ));
            bench.figure(Figure::new(
                "CPU of one cat run (start, 12 bytes through, exit)",
                rate.child_cpu_us,
                Unit::Micros,
            ));
            Some(rate)
        }
        Err(e) => {
            bench.note(format!("starting cat directly failed: {e:#}"));
            None
        }
    }
}

/// The cost of waking a sleeping thread here: a one-byte round trip over pipes, on one CPU and across
/// two (p50 of 2,000 rounds each).
async fn wake_round_trips(bench: &mut Bench) {
    bench.wait_quiet().await;
    let trips = tokio::task::spawn_blocking(|| {
        [false, true].map(|cross_cpu| machine::wake_round_trip(cross_cpu, 2_000))
    })
    .await
    .unwrap_or([None, None]);
    for (trip, place) in trips.into_iter().zip(["one CPU", "across two CPUs"]) {
        if let Some(trip) = trip {
            bench.figure(Figure::new(
                format!("wake-up round trip over pipes, {place} (p50)"),
                trip.p50_us,
                Unit::Micros,
            ));
        }
    }
}

#[async_trait(?Send)]
impl Scenario for Watchdog {
    fn name(&self) -> &'static str {
        "watchdog"
    }

    fn about(&self) -> &'static str {
        "upstream direct vs fwatchdog http mode, fork and streaming modes with cat (issue 2)"
    }

    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
        let binary = bench.binary("fwatchdog")?;
        bench.binary("bench-upstream")?;
        let size = std::fs::metadata(&binary)
            .with_context(|| format!("reading {}", binary.display()))?
            .len();
        bench.figure(
            Figure::new(
                "fwatchdog binary size (release profile, stripped)",
                size as f64,
                Unit::Bytes,
            )
            .target(Bound::AtMost(4.0 * MIB))
            .reference(8.4 * MIB),
        );
        // a mode that fails does not hide the others
        if (bench.wants("a") || bench.wants("b"))
            && let Err(e) = self.http_mode(bench).await
        {
            bench.note(format!("http mode (a, b) failed: {e:#}"));
        }
        let ceiling =
            if (bench.wants("c") || bench.wants("d")) && bench.connections(&[8]).contains(&8) {
                spawn_ceiling(bench).await
            } else {
                None
            };
        if bench.wants("c")
            && let Err(e) = self.fork_mode(bench, &FORK, None, ceiling).await
        {
            bench.note(format!("fork mode (c) failed: {e:#}"));
        }
        if bench.wants("d")
            && let Err(e) = self
                .fork_mode(bench, &STREAMING, Some("streaming"), ceiling)
                .await
        {
            bench.note(format!("streaming mode (d) failed: {e:#}"));
        }
        Ok(())
    }
}
