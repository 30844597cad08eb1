//! `bench-upstream`: the baseline hello-world HTTP server of the benchmarks.
//!
//! Usage: `bench-upstream [--port PORT] [--threads N]` (port 0, the default, picks a free one; it prints
//! `listening on ADDR`).

use std::net::SocketAddr;

use clap::Parser;

/// The baseline hello-world HTTP/1.1 server of faas-bench.
#[derive(Debug, Parser)]
#[command(name = "bench-upstream", about, long_about = None)]
struct Args {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Runtime worker threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match faas_bench::upstream::main_with(
        SocketAddr::from(([127, 0, 0, 1], args.port)),
        args.threads,
    ) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-upstream: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
