//! The `faas` binary: parses the command line and runs it (see the `faas_cli` library).

use std::process::ExitCode;

use clap::Parser;
use faas_cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    faas_cli::init_tracing(cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
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
