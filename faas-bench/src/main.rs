//! `faas-bench`: run a benchmark scenario of faas-rs (see the crate docs).

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    match faas_bench::main_with(faas_bench::cli::Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faas-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
