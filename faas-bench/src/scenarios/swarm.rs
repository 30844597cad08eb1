//! `swarm` (issue 5): how fast functions come up on this machine's Docker Swarm.
//!
//! Rounds of five cases, interleaved so that a noisy neighbour hits them alike, each timed from the
//! command to the first successful `POST` answered by the function:
//! - (a) `faas up --provider swarm`: `POST /system/functions`, then `/function/NAME` through the gateway;
//! - (b) the same gateway: scale 0 → 1 (`POST /system/scale-function/NAME`);
//! - (c) the engine's floor: `docker service create -d` with the same spec (network, `dnsrr`, `mode=host`
//!   port, healthcheck timing), polled on its published port;
//! - (d) the floor of (b): `docker service scale -d NAME=1` from 0;
//! - (e) `docker run -d` of the same image, polled on its port.
//!
//! Figures: the median of each (5 rounds by default; `--max-requests` does not apply) and the ratios
//! (a)/(c) and (b)/(d), target at most 1.2. Needs `scripts/docker.sh` and `scripts/build-images.sh`, and the
//! `faas` binary (`--bin-dir target/debug` works: the figures are dominated by the engine).

use std::net::SocketAddr;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use tokio::process::Command;

use super::Scenario;
use crate::bench::Bench;
use crate::process::{self, Proc};
use crate::report::{Bound, Figure, Unit};

/// The image every case runs: fwatchdog + busybox, `fprocess=cat`, HEALTHCHECK `fwatchdog healthcheck`.
const IMAGE: &str = "faas-rs/fwatchdog:dev";
/// Rounds (the median of this many samples per case).
const ROUNDS: usize = 5;
/// How long one case may take to answer.
const PATIENCE: Duration = Duration::from_secs(120);
/// How long one direct poll of a replica's port may take.
const DIRECT_ATTEMPT: Duration = Duration::from_millis(200);
/// Pause between polls of the function.
const POLL: Duration = Duration::from_millis(10);
/// Healthcheck timing given to the CLI floor, as the provider sets it (`SwarmConfig::health_interval`).
const HEALTH_FLAGS: [&str; 6] = [
    "--health-interval",
    "1s",
    "--health-timeout",
    "2s",
    "--health-retries",
    "3",
];

/// The `swarm` scenario.
#[derive(Debug, Clone, Copy)]
pub struct Swarm;

#[async_trait(?Send)]
impl Scenario for Swarm {
    fn name(&self) -> &'static str {
        "swarm"
    }

    fn about(&self) -> &'static str {
        "deploy and scale 0->1 to first success on Docker Swarm, vs the docker CLI and docker run"
    }

    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
        preflight().await?;
        let run_id = std::process::id();
        let network = format!("faas-bench-{run_id}");
        let (mut gateway, addr) = start_gateway(bench, &network).await?;
        let mut samples = Samples::default();
        let result = rounds(&mut gateway, addr, &network, run_id, &mut samples).await;
        gateway.stop(Duration::from_secs(10)).await;
        cleanup(&network, run_id).await;
        result?;

        let faas_deploy = median(&samples.faas_deploy);
        let faas_scale = median(&samples.faas_scale);
        let cli_deploy = median(&samples.cli_deploy);
        let cli_scale = median(&samples.cli_scale);
        let run = median(&samples.docker_run);
        bench.figure(Figure::new(
            "deploy -> first success, faas up --provider swarm (median)",
            faas_deploy,
            Unit::Millis,
        ));
        bench.figure(Figure::new(
            "deploy -> first success, docker service create -d (median)",
            cli_deploy,
            Unit::Millis,
        ));
        bench.figure(Figure::new(
            "scale 0->1 -> first success, faas (median)",
            faas_scale,
            Unit::Millis,
        ));
        bench.figure(Figure::new(
            "scale 0->1 -> first success, docker service scale -d (median)",
            cli_scale,
            Unit::Millis,
        ));
        bench.figure(Figure::new(
            "docker run -d -> first success (median)",
            run,
            Unit::Millis,
        ));
        bench.figure(
            Figure::new(
                "deploy: faas vs docker CLI floor",
                faas_deploy / cli_deploy,
                Unit::Ratio,
            )
            .target(Bound::AtMost(1.2)),
        );
        bench.figure(
            Figure::new(
                "scale 0->1: faas vs docker CLI floor",
                faas_scale / cli_scale,
                Unit::Ratio,
            )
            .target(Bound::AtMost(1.2)),
        );
        for (what, values) in [
            ("faas deploy", &samples.faas_deploy),
            ("cli deploy", &samples.cli_deploy),
            ("faas scale", &samples.faas_scale),
            ("cli scale", &samples.cli_scale),
            ("docker run", &samples.docker_run),
        ] {
            let list: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
            bench.note(format!("{what} samples (ms): {}", list.join(", ")));
        }
        Ok(())
    }
}

/// Samples in milliseconds.
#[derive(Debug, Default)]
struct Samples {
    faas_deploy: Vec<f64>,
    faas_scale: Vec<f64>,
    cli_deploy: Vec<f64>,
    cli_scale: Vec<f64>,
    docker_run: Vec<f64>,
}

async fn rounds(
    gateway: &mut Proc,
    addr: SocketAddr,
    network: &str,
    run_id: u32,
    samples: &mut Samples,
) -> anyhow::Result<()> {
    for round in 0..ROUNDS {
        // (a) and (b): through the gateway
        let name = format!("fb{run_id}-faas{round}");
        let body = serde_json::json!({"service": name, "image": IMAGE, "envProcess": "cat"});
        let start = Instant::now();
        system(addr, Method::POST, "/system/functions", &body).await?;
        let path = format!("/function/{name}");
        first_success(addr, &path, Some(gateway))
            .await
            .with_context(|| format!("deploying {name}"))?;
        samples.faas_deploy.push(ms(start));
        let scale = |n: u32| serde_json::json!({"serviceName": name, "replicas": n});
        system(
            addr,
            Method::POST,
            &format!("/system/scale-function/{name}"),
            &scale(0),
        )
        .await?;
        containers_gone(&name).await?;
        let start = Instant::now();
        system(
            addr,
            Method::POST,
            &format!("/system/scale-function/{name}"),
            &scale(1),
        )
        .await?;
        first_success(addr, &path, Some(gateway))
            .await
            .with_context(|| format!("scaling {name} from 0"))?;
        samples.faas_scale.push(ms(start));
        system(
            addr,
            Method::DELETE,
            "/system/functions",
            &serde_json::json!({"functionName": name}),
        )
        .await?;

        // (c) and (d): the docker CLI with the same spec
        let name = format!("fb{run_id}-cli{round}");
        let port = process::free_port()?;
        let publish = format!("mode=host,target=8080,published={port}");
        let start = Instant::now();
        let mut create = vec![
            "service",
            "create",
            "-d",
            "--quiet",
            "--no-resolve-image",
            "--name",
            &name,
            "--network",
            network,
        ];
        create.extend([
            "--endpoint-mode",
            "dnsrr",
            "--publish",
            &publish,
            "--env",
            "fprocess=cat",
        ]);
        create.extend(HEALTH_FLAGS);
        create.push(IMAGE);
        docker(&create).await?;
        let direct = process::loopback(port);
        first_success(direct, "/", None)
            .await
            .with_context(|| format!("docker service create {name}"))?;
        samples.cli_deploy.push(ms(start));
        docker(&["service", "scale", "-d", &format!("{name}=0")]).await?;
        containers_gone(&name).await?;
        let start = Instant::now();
        docker(&["service", "scale", "-d", &format!("{name}=1")]).await?;
        first_success(direct, "/", None)
            .await
            .with_context(|| format!("docker service scale {name}"))?;
        samples.cli_scale.push(ms(start));
        docker(&["service", "rm", &name]).await?;

        // (e) docker run
        let name = format!("fb{run_id}-run{round}");
        let port = process::free_port()?;
        let start = Instant::now();
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            IMAGE,
        ])
        .await?;
        first_success(process::loopback(port), "/", None)
            .await
            .with_context(|| format!("docker run {name}"))?;
        samples.docker_run.push(ms(start));
        docker(&["rm", "-f", &name]).await?;
        eprintln!(
            "swarm round {}/{ROUNDS}: faas deploy {:.0} ms, scale {:.0} ms; cli deploy {:.0} ms, scale {:.0} ms; docker run {:.0} ms",
            round + 1,
            samples.faas_deploy[round],
            samples.faas_scale[round],
            samples.cli_deploy[round],
            samples.cli_scale[round],
            samples.docker_run[round],
        );
    }
    Ok(())
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Fails early, with the command that fixes it, when Docker, the swarm or the image is missing.
async fn preflight() -> anyhow::Result<()> {
    let manager = docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"])
        .await
        .context("docker is not running: run scripts/docker.sh")?;
    if manager.trim() != "true" {
        bail!("this docker engine is not a swarm manager: run scripts/docker.sh");
    }
    docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .await
        .with_context(|| {
            format!("image {IMAGE} is missing: run scripts/build-images.sh fwatchdog")
        })?;
    Ok(())
}

async fn start_gateway(bench: &Bench, network: &str) -> anyhow::Result<(Proc, SocketAddr)> {
    let port = process::free_port()?;
    let mut command = StdCommand::new(bench.binary("faas")?);
    command
        .args(["up", "--provider", "swarm", "--port", &port.to_string()])
        .env("FAAS_SWARM_NETWORK", network)
        .env("FAAS_SWARM_RESOLUTION", "published");
    let mut proc = bench.spawn("faas-swarm", command)?;
    let addr = process::loopback(port);
    bench.wait_ready(&mut proc, addr, "/healthz").await?;
    Ok((proc, addr))
}

async fn system(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let answer = crate::http::request(
        addr,
        method.clone(),
        path,
        Bytes::from(serde_json::to_vec(body)?),
    )
    .await?;
    if !answer.is_success() {
        bail!(
            "{method} {path}: status {} {}",
            answer.status,
            answer.text()
        );
    }
    Ok(())
}

/// Polls `POST path` every [`POLL`] until it answers 2xx (bounded by [`PATIENCE`]).
///
/// Through the gateway (`alive` is the gateway) a request may be held while the function starts, as
/// clients see it. Polled directly, an attempt is abandoned after [`DIRECT_ATTEMPT`]: a connection to
/// a port Docker publishes before the container's network is up loses its SYN, and the kernel's 1 s
/// retransmission would otherwise be counted as the engine's time.
async fn first_success(
    addr: SocketAddr,
    path: &str,
    mut alive: Option<&mut Proc>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    let attempt = if alive.is_some() {
        PATIENCE
    } else {
        DIRECT_ATTEMPT
    };
    loop {
        if let Some(proc) = alive.as_deref_mut() {
            proc.check_alive()?;
        }
        let request = crate::http::request(addr, Method::POST, path, Bytes::from_static(b"ping"));
        let last = match tokio::time::timeout(attempt, request).await {
            Ok(Ok(answer)) if answer.is_success() => return Ok(()),
            Ok(Ok(answer)) => format!("status {} {}", answer.status, answer.text()),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no answer within {attempt:?}"),
        };
        if Instant::now() >= deadline {
            bail!("http://{addr}{path} did not answer within {PATIENCE:?}: {last}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until no container of service `name` exists any more (a scale to 0 completed).
async fn containers_gone(name: &str) -> anyhow::Result<()> {
    let filter = format!("label=com.docker.swarm.service.name={name}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ids = docker(&["ps", "-aq", "--filter", &filter]).await?;
        if ids.trim().is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the containers of {name} were not removed within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the docker CLI; its stdout on success.
async fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::time::timeout(PATIENCE, Command::new("docker").args(args).output())
        .await
        .with_context(|| format!("docker {} took over {PATIENCE:?}", args.join(" ")))?
        .with_context(|| "cannot run docker".to_owned())?;
    if !output.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Removes whatever a failed run left: its services, containers and network.
async fn cleanup(network: &str, run_id: u32) {
    let prefix = format!("fb{run_id}-");
    if let Ok(services) =
        docker(&["service", "ls", "-q", "--filter", &format!("name={prefix}")]).await
    {
        for id in services.split_whitespace() {
            let _ = docker(&["service", "rm", id]).await;
        }
    }
    if let Ok(containers) = docker(&["ps", "-aq", "--filter", &format!("name={prefix}run")]).await {
        for id in containers.split_whitespace() {
            let _ = docker(&["rm", "-f", id]).await;
        }
    }
    for _ in 0..60 {
        if docker(&["network", "rm", network]).await.is_ok()
            || docker(&["network", "inspect", network]).await.is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
