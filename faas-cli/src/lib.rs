//! The `faas` command as a library: run a FaaS platform on this machine (`faas up`: the
//! OpenFaaS-compatible gateway and the local provider in one process), and drive any
//! OpenFaaS-compatible gateway (`deploy`, `list`, `describe`, `invoke`, `remove`, `scale`, `logs`,
//! `secret`, `version`).
//!
//! The binary is a thin `main` over [`Cli::run`]; every command lives in its own module under
//! [`cmd`], the gateway client in [`client`], stack files in [`stack`] and the choice of provider for
//! `faas up` in [`provider`].
//!
//! ```no_run
//! # async fn example() -> faas_cli::Result<()> {
//! use clap::Parser;
//! use faas_cli::Cli;
//!
//! let cli = Cli::parse_from(["faas", "list", "--gateway", "http://127.0.0.1:8080"]);
//! cli.run().await?;
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod client;
pub mod cmd;
mod error;
pub mod provider;
pub mod stack;

pub use cli::{Cli, Command};
pub use error::{Error, Result};

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` or else `default_level`.
pub fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
