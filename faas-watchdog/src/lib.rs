//! An OpenFaaS-compatible function watchdog: the process that turns any program into a function.
//!
//! It listens on HTTP and runs the function process in one of OpenFaaS's modes (the classic
//! watchdog's fork-per-request, or of-watchdog's `serializing`, `streaming`, `http` and `static`),
//! configured by the same environment variables, so OpenFaaS templates can swap their watchdog for
//! `fwatchdog` unchanged. It is a library first: the local provider runs many watchdogs in one
//! process ([`Watchdog::bind`] + [`BoundWatchdog::run`]), the SDK serves handlers through the same
//! HTTP contract ([`server`]), and the `fwatchdog` binary is a thin `main` over [`serve`].
//!
//! ```no_run
//! use faas_watchdog::{Config, Watchdog};
//!
//! # async fn run() -> faas_watchdog::Result<()> {
//! let config = Config::from_vars([
//!     ("fprocess".to_owned(), "wc -c".to_owned()),
//!     ("mode".to_owned(), "streaming".to_owned()),
//! ])?
//! .with_bind_address("127.0.0.1".parse().unwrap())
//! .with_port(0)
//! .with_metrics_port(None)
//! .with_lock_file(None);
//! let bound = Watchdog::bind(config).await?;
//! let addr = bound.local_addr();
//! tokio::spawn(bound.run(std::future::pending()));
//! println!("curl -d hello http://{addr}/");
//! # Ok(())
//! # }
//! ```

mod body;
mod cgi;
mod config;
mod error;
mod fork;
mod logs;
mod process;
mod proxy;
pub mod server;
mod static_files;
mod watchdog;

pub use config::{Config, DEFAULT_LOCK_FILE, Mode, split_command_line};
pub use error::{Error, Result};
pub use logs::{LogSink, LogStream, StderrLogger, StderrSink};
pub use process::resolve_program;
pub use watchdog::{BoundWatchdog, Watchdog, serve};
