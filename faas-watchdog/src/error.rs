//! The error type of the watchdog.

use std::io;
use std::process::ExitStatus;

/// Everything that can stop a watchdog from starting or make it stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration variable is missing or has a value the watchdog cannot use.
    ///
    /// The message is one line that names the variable.
    #[error("{message}")]
    Config {
        /// The environment variable at fault (`fprocess`, `mode`, ...).
        variable: &'static str,
        /// A one-line explanation that names the variable.
        message: String,
    },
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The function process could not be started.
    #[error("cannot start function process {process:?}")]
    Spawn {
        /// The command line (`fprocess`).
        process: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// In `http` mode the long-running function process exited; the replica must be restarted.
    #[error("function process exited: {status}")]
    UpstreamExited {
        /// How the process ended.
        status: ExitStatus,
    },
    /// The lock file could not be written.
    #[error("cannot write lock file {path} (set suppress_lock=true to disable it)")]
    LockFile {
        /// The lock file's path.
        path: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Any other I/O failure of the server.
    #[error("watchdog i/o error")]
    Io(#[from] io::Error),
}

impl Error {
    pub(crate) fn config(variable: &'static str, message: impl Into<String>) -> Self {
        Error::Config {
            variable,
            message: message.into(),
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
