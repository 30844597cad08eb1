//! `gateway` (issue 3): the cost of the gateway in front of the watchdog.
//!
//! - (a) `bench-upstream` directly, the baseline;
//! - (b) through `fwatchdog` in http mode (which starts that upstream);
//! - (c) through `faas up` (gateway + local provider, whose replicas are in-process watchdogs) to a function
//!   `bench` in http mode whose `envProcess` is another `bench-upstream`.
//!
//! The three run interleaved at 1, 16 and 64 connections; `--only idle` runs just the memory figure. Figures: (c)/(a) throughput, the p50 the gateway
//! adds over (b) at one connection, and the idle RSS of a fresh `faas up` with 10 fork-mode `cat` functions
//! deployed (function processes not counted; the local provider's watchdogs run inside `faas up`, so they
//! are).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use bytes::Bytes;
use http::Method;

use super::Scenario;
use super::watchdog::start_watchdog;
use crate::bench::{Bench, Series, Watch};
use crate::process::{self, Proc};
use crate::report::{Bound, Figure, MIB, Unit};

const DIRECT: Series = Series::new("a", "upstream direct");
const WATCHDOG: Series = Series::new("b", "fwatchdog http").vs("a");
const GATEWAY: Series = Series::new("c", "faas up gateway + watchdog").vs("a");

/// Functions deployed for the idle-memory figure.
const IDLE_FUNCTIONS: usize = 10;

/// How long a deployed function may take to answer its first invocation.
const DEPLOY_PATIENCE: Duration = Duration::from_secs(30);

/// Time `faas up` gets to stop its replicas and exit on SIGTERM.
const GRACE: Duration = Duration::from_secs(10);

/// The `gateway` scenario.
#[derive(Debug, Clone, Copy)]
pub struct Gateway;

/// A running `faas up` and where it listens.
#[derive(Debug)]
struct RunningGateway {
    proc: Proc,
    addr: SocketAddr,
}

/// Starts `faas up` on a free port with a fresh data directory under the scratch directory.
async fn start_gateway(bench: &Bench, name: &str) -> anyhow::Result<RunningGateway> {
    let port = process::free_port()?;
    let data_dir = bench.scratch_dir().join(format!("{name}-data"));
    let mut command = Command::new(bench.binary("faas")?);
    command
        .arg("up")
        .arg("--port")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(&data_dir);
    let mut proc = bench.spawn(name, command)?;
    let addr = process::loopback(port);
    bench.wait_ready(&mut proc, addr, "/healthz").await?;
    Ok(RunningGateway { proc, addr })
}

/// The JSON of a deployment as OpenFaaS clients send it.
fn deployment(service: &str, env_process: &str, env_vars: &[(&str, &str)]) -> serde_json::Value {
    let vars: serde_json::Map<String, serde_json::Value> = env_vars
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.into()))
        .collect();
    serde_json::json!({
        "service": service,
        "image": service,
        "envProcess": env_process,
        "envVars": vars,
    })
}

/// Deploys `body` and waits until `/function/NAME` answers 2xx.
async fn deploy(gateway: &mut RunningGateway, body: &serde_json::Value) -> anyhow::Result<()> {
    let name = body["service"].as_str().unwrap_or_default().to_owned();
    let answer = crate::http::request(
        gateway.addr,
        Method::POST,
        "/system/functions",
        Bytes::from(serde_json::to_vec(body)?),
    )
    .await?;
    if !answer.is_success() {
        bail!(
            "deploying {name}: status {} {}",
            answer.status,
            answer.text()
        );
    }
    let proc = &mut gateway.proc;
    let path = format!("/function/{name}");
    crate::http::wait_ready(gateway.addr, &path, DEPLOY_PATIENCE, || proc.check_alive())
        .await
        .with_context(|| format!("function {name} did not answer after its deployment"))
}

impl Gateway {
    async fn throughput(&self, bench: &mut Bench) -> anyhow::Result<()> {
        // (a) and (b): an http-mode watchdog and its upstream
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
        bench.wait_ready(&mut wd.proc, upstream_addr, "/").await?;
        let upstream_pid = first_child(&wd.proc)?;

        // (c): faas up with one http-mode function running its own upstream
        let mut gw = start_gateway(bench, "faas").await?;
        let function_port = process::free_port()?;
        let function = deployment(
            "bench",
            &bench.upstream_command_line(function_port)?,
            &[
                ("mode", "http"),
                ("upstream_url", &format!("http://127.0.0.1:{function_port}")),
            ],
        );
        deploy(&mut gw, &function).await?;
        let function_pid = first_child(&gw.proc)?;

        let watch_a = [Watch {
            role: "upstream".to_owned(),
            pid: upstream_pid,
        }];
        let watch_b = [Watch::of(&wd.proc), watch_a[0].clone()];
        let watch_c = [
            Watch::of(&gw.proc),
            Watch {
                role: "function".to_owned(),
                pid: function_pid,
            },
        ];
        let direct = bench.target(upstream_addr, "/");
        let proxied = bench.target(wd.addr, "/");
        let gateway = bench.target(gw.addr, "/function/bench");
        for conns in bench.connections(&[1, 16, 64]) {
            bench
                .measure(&DIRECT, &direct, conns, &watch_a, Some(upstream_pid))
                .await?;
            bench
                .measure(&WATCHDOG, &proxied, conns, &watch_b, Some(wd.proc.pid()))
                .await?;
            bench
                .measure(&GATEWAY, &gateway, conns, &watch_c, Some(gw.proc.pid()))
                .await?;
        }
        wd.proc.check_alive()?;
        gw.proc.check_alive()?;
        wd.proc.stop(GRACE).await;
        gw.proc.stop(GRACE).await;

        let report = bench.report();
        let ratios: Vec<(usize, f64)> = [1, 16, 64]
            .into_iter()
            .filter_map(|c| Some((c, report.throughput_ratio("c", "a", c)?)))
            .collect();
        let added = report.added_p50_us("c", "b", 1);
        let capacity64 = report.capacity_ratio("c", "a", 64);
        for (conns, ratio) in ratios {
            let figure = Figure::new(
                format!("gateway throughput vs direct, {conns} connections"),
                ratio,
                Unit::Ratio,
            );
            bench.figure(if conns == 64 {
                figure.target(Bound::AtLeast(0.20)).reference(0.11)
            } else {
                figure
            });
        }
        if let Some(ratio) = capacity64 {
            bench.figure(Figure::new(
                "gateway CPU capacity vs direct, 64 connections (estimate)",
                ratio,
                Unit::Ratio,
            ));
        }
        if let Some(added) = added {
            bench.figure(
                Figure::new(
                    "p50 added by the gateway over (b), 1 connection",
                    added,
                    Unit::Micros,
                )
                .target(Bound::AtMost(60.0))
                .reference(190.0),
            );
        }
        Ok(())
    }

    async fn idle_memory(&self, bench: &mut Bench) -> anyhow::Result<()> {
        let mut gw = start_gateway(bench, "faas-idle").await?;
        for i in 0..IDLE_FUNCTIONS {
            deploy(&mut gw, &deployment(&format!("cat-{i}"), "cat", &[])).await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let memory = gw.proc.memory()?;
        gw.proc.stop(GRACE).await;
        bench.figure(
            Figure::new(
                format!("faas up idle RSS, {IDLE_FUNCTIONS} fork-mode functions"),
                memory.rss_kib as f64 * 1024.0,
                Unit::Bytes,
            )
            .target(Bound::AtMost(20.0 * MIB)),
        );
        Ok(())
    }
}

/// The first child process of `proc` (the upstream a watchdog or the local provider started).
fn first_child(proc: &Proc) -> anyhow::Result<u32> {
    process::descendants(proc.pid())
        .first()
        .map(|&(pid, _)| pid)
        .with_context(|| format!("{} has no child process", proc.name()))
}

#[async_trait(?Send)]
impl Scenario for Gateway {
    fn name(&self) -> &'static str {
        "gateway"
    }

    fn about(&self) -> &'static str {
        "upstream direct vs fwatchdog vs faas up gateway + watchdog, idle RSS of faas up (issue 3)"
    }

    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
        bench.binary("faas")?;
        bench.binary("fwatchdog")?;
        bench.binary("bench-upstream")?;
        if (bench.wants("a") || bench.wants("b") || bench.wants("c"))
            && let Err(e) = self.throughput(bench).await
        {
            bench.note(format!("throughput cases failed: {e:#}"));
        }
        if bench.wants("idle")
            && let Err(e) = self.idle_memory(bench).await
        {
            bench.note(format!("idle memory of faas up failed: {e:#}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_json_is_openfaas_shaped() {
        let json = deployment("bench", "/bin/up --port 1", &[("mode", "http")]);
        assert_eq!(json["service"], "bench");
        assert_eq!(json["image"], "bench");
        assert_eq!(json["envProcess"], "/bin/up --port 1");
        assert_eq!(json["envVars"]["mode"], "http");
        assert_eq!(
            deployment("x", "cat", &[])["envVars"],
            serde_json::json!({})
        );
    }
}
