//! The `faas` binary: parses the command line and runs it (see the `faas_cli` library).

use std::process::ExitCode;

use clap::Parser;
use faas_cli::Cli;

/// The environment variable that sets the runtime's worker threads: `1` runs everything on one
/// thread (a current-thread runtime), `N` > 1 runs N worker threads.
const WORKER_THREADS: &str = "FAAS_WORKER_THREADS";

/// The runtime: `FAAS_WORKER_THREADS` threads when set; otherwise one thread on machines with up to
/// two CPUs and one worker per CPU above that.
///
/// One thread avoids cross-thread wake-ups and the multi-thread scheduler's bookkeeping: on a
/// 2-CPU machine, where the function processes and the clients need the other CPU, `faas up`
/// measured lower latency at 1 connection and ~10% less CPU per request (so more throughput) at 64
/// connections with one thread than with two (docs/performance.md, "Gateway"). With more CPUs the
/// gateway needs more than one to keep up.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    faas_core::runtime::build(WORKER_THREADS, Some(if cpus <= 2 { 1 } else { cpus }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    faas_cli::init_tracing(cli.default_log_level());
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::FAILURE
        }
    }
}
