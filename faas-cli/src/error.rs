//! The error type of the faas-cli library.

/// What went wrong in a `faas` command. Every variant reads as one line after `error: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The gateway could not be reached (down, wrong address, connection reset).
    #[error("cannot reach the gateway at {gateway}: {reason}")]
    Unreachable {
        /// The gateway's URL.
        gateway: String,
        /// Why, in a few words (`connection refused`).
        reason: String,
    },
    /// The gateway refused the credentials (or none were given and it requires some).
    #[error(
        "the gateway at {gateway} refused the credentials (401): pass --auth user:password or set FAAS_AUTH"
    )]
    Unauthorized {
        /// The gateway's URL.
        gateway: String,
    },
    /// The gateway (or a function) answered with an error status.
    #[error("{message} ({status})")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// What the answer says, or what was not found.
        message: String,
    },
    /// A stack file cannot be read or is invalid.
    #[error("stack file {path}")]
    Stack {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: crate::stack::StackError,
    },
    /// A command-line argument is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// Reading or writing a local file, stdin or stdout failed.
    #[error("{context}")]
    Io {
        /// What was being done (`reading stdin`).
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gateway's answer could not be read or decoded.
    #[error("bad answer from the gateway at {gateway}: {reason}")]
    BadAnswer {
        /// The gateway's URL.
        gateway: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The provider of `faas up` could not be started.
    #[error("cannot start the {provider} provider ({detail})")]
    ProviderStart {
        /// Which provider.
        provider: &'static str,
        /// What it was starting with (its data dir...).
        detail: String,
        /// The cause.
        #[source]
        source: faas_core::BoxError,
    },
    /// `faas up` cannot listen on its address.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The provider or the gateway of `faas up` failed.
    #[error(transparent)]
    Platform(#[from] faas_core::Error),
}

impl Error {
    /// An [`Error::Io`] with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status behind this error, when the gateway answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// The error as one line: its message followed by its sources, separated by `: `.
    pub fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let text = s.to_string();
            if !text.is_empty() && !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = s.source();
        }
        line.replace('\n', " ")
    }
}

/// The result type of the faas-cli library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_includes_sources() {
        let err = Error::io("reading stdin", std::io::Error::other("broken pipe"));
        assert_eq!(err.one_line(), "reading stdin: broken pipe");
        let err = Error::Status {
            status: 404,
            message: "function \"x\" not found".into(),
        };
        assert_eq!(err.one_line(), "function \"x\" not found (404)");
        assert_eq!(err.status(), Some(404));
    }
}
