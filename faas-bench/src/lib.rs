//! The benchmark runner of faas-rs.
//!
//! `faas-bench` drives closed-loop keep-alive HTTP/1.1 load against the components of faas-rs (the watchdog,
//! the gateway...) and against a baseline measured in the same run (`bench-upstream`, a minimal hyper
//! server), and prints requests/s, p50 and p99 latency, errors, throughput ratios against the baseline, the
//! memory (VmRSS, VmHWM) and CPU use of the processes under test, and derived figures checked against the
//! targets of the issues. Every process under test is a separate release binary, started and stopped by the
//! runner.
//!
//! ```text
//! cargo build --release -p faas-watchdog -p faas-cli -p faas-bench
//! cargo run --release -p faas-bench -- watchdog --duration 5s --connections 1,16,64
//! cargo run --release -p faas-bench -- gateway --json
//! ```
//!
//! The library exposes the pieces for scenarios and tests: the [`load`] generator, [`stats`] (histograms),
//! [`report`] (table and JSON), [`process`] (spawning, `/proc` readings), [`machine`] (the floors of the machine
//! itself: starting a program, waking a thread on another CPU) and the [`scenarios`] registry.
//!
//! ```no_run
//! use faas_bench::load::{self, LoadSpec, Target};
//! use std::time::Duration;
//!
//! # async fn demo() {
//! let target = Target::post("127.0.0.1:8080".parse().unwrap(), "/function/echo", 12);
//! let spec = LoadSpec {
//!     connections: 16,
//!     warmup: Duration::from_secs(1),
//!     duration: Duration::from_secs(5),
//!     max_requests: 1_000_000,
//!     timeout: Duration::from_secs(10),
//! };
//! let result = load::run(&target, &spec).await;
//! println!("{:.0} req/s, p50 {:.1} µs", result.rps(), result.latency.summary().p50_us);
//! # }
//! ```

pub mod bench;
pub mod cli;
pub mod http;
pub mod load;
pub mod machine;
pub mod process;
pub mod report;
pub mod scenarios;
pub mod stats;
pub mod upstream;

use std::io::Write as _;

use anyhow::bail;

/// Runs the scenario the arguments name (or lists them) and prints its report on stdout.
///
/// # Errors
/// When the scenario is unknown, cannot run, or the output cannot be written.
pub fn main_with(args: cli::Args) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if args.scenario == "list" {
        for scenario in scenarios::all() {
            writeln!(stdout, "{:<12} {}", scenario.name(), scenario.about())?;
        }
        return Ok(());
    }
    let Some(scenario) = scenarios::find(&args.scenario) else {
        let names: Vec<_> = scenarios::all().iter().map(|s| s.name()).collect();
        bail!(
            "unknown scenario {:?}: expected one of {}",
            args.scenario,
            names.join(", ")
        );
    };
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.client_threads))
            .enable_all()
            .build()?
    };
    let json = args.json;
    let mut bench = bench::Bench::new(args, scenario.name())?;
    runtime.block_on(scenario.run(&mut bench))?;
    let report = bench.into_report();
    if json {
        writeln!(stdout, "{}", report.to_json()?)?;
    } else {
        write!(stdout, "{report}")?;
    }
    Ok(())
}
