//! The error type of the local provider.

use std::io;
use std::path::PathBuf;

use faas_core::ErrorKind;

/// What can go wrong in the local provider.
///
/// Converts into [`faas_core::Error`], choosing the kind the gateway answers with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory or a file in it could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Store {
        /// What was being done (`"write"`, `"read"`, `"create directory"`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A stored record could not be decoded.
    #[error("corrupt record {}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it could not be decoded.
        #[source]
        source: serde_json::Error,
    },
    /// Another process (or another provider in this process) uses the data directory.
    #[error("data directory {} is in use by another faas process", path.display())]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// No home directory to put the default data directory in.
    #[error("no data directory: set one (--data-dir) or set HOME or XDG_DATA_HOME")]
    NoDataDir,
    /// The provider is shutting down and accepts no more changes.
    #[error("the local provider is shutting down")]
    ShuttingDown,
    /// A blocking store task could not complete.
    #[error("store task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    pub(crate) fn store(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Store {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<Error> for faas_core::Error {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        // The message already says what failed; the source carries why, once.
        let (kind, source): (ErrorKind, Option<faas_core::BoxError>) = match err {
            Error::ShuttingDown | Error::Locked { .. } => (ErrorKind::Unavailable, None),
            Error::NoDataDir => (ErrorKind::Backend, None),
            Error::Store { source, .. } => (ErrorKind::Backend, Some(source.into())),
            Error::Corrupt { source, .. } => (ErrorKind::Backend, Some(source.into())),
            Error::Task(source) => (ErrorKind::Internal, Some(source.into())),
        };
        let core = faas_core::Error::new(kind, message);
        match source {
            Some(source) => core.with_source(source),
            None => core,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
