//! The errors of the Swarm provider and how they map onto [`faas_core::ErrorKind`].

use faas_core::ErrorKind;

/// What can go wrong talking to Docker Swarm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Docker Engine cannot be reached (daemon down, socket missing, connection refused).
    #[error("docker engine unavailable")]
    Unavailable(#[source] bollard::errors::Error),
    /// The engine answers but is not a swarm manager.
    #[error(
        "this docker engine is not a swarm manager (run `docker swarm init`): node state {state}"
    )]
    NotManager {
        /// The node's swarm state (`inactive`, `pending`, `active`...).
        state: String,
    },
    /// The Docker Engine API answered with an error status.
    #[error("docker engine: {message}")]
    Docker {
        /// The HTTP status of the answer.
        status: u16,
        /// Docker's message.
        message: String,
    },
    /// A request to the engine took too long.
    #[error("docker engine request timed out")]
    Timeout(#[source] bollard::errors::Error),
    /// Any other bollard error (bad answer, I/O while streaming...).
    #[error("docker client error")]
    Client(#[source] bollard::errors::Error),
    /// A raw Docker API call (the task list) failed on the transport.
    #[error("docker engine unavailable at {host}")]
    Transport {
        /// The engine address.
        host: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine answered something that is not the JSON we expect.
    #[error("unexpected answer from the docker engine")]
    Decode(#[source] serde_json::Error),
    /// The configured Docker host is not understood.
    #[error(
        "unsupported docker host {0:?}: expected unix://PATH, tcp://HOST:PORT or http://HOST:PORT"
    )]
    UnsupportedHost(String),
    /// The function (service) does not exist or is not a function of this namespace.
    #[error("function {name} not found in namespace {namespace}")]
    FunctionNotFound {
        /// The function.
        name: String,
        /// The namespace asked for.
        namespace: String,
    },
    /// A function (or another service) with this name exists already.
    #[error("function {0} already exists")]
    FunctionExists(String),
    /// The namespace is not served by this provider.
    #[error("namespace {0} not found: this swarm provider serves only {1}")]
    NamespaceNotFound(String, String),
    /// The secret does not exist.
    #[error("secret {0} not found")]
    SecretNotFound(String),
    /// The secret exists already.
    #[error("secret {0} already exists")]
    SecretExists(String),
    /// The secret cannot be removed while functions use it.
    #[error("secret {name} is in use by {services}")]
    SecretInUse {
        /// The secret.
        name: String,
        /// The functions that mount it.
        services: String,
    },
    /// A field of the request is not valid on Swarm.
    #[error("{message}")]
    Invalid {
        /// The request field to blame (`limits.memory`, `constraints[0]`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A service changed under us too many times in a row.
    #[error("service {0} kept changing while being updated")]
    Conflict(String),
    /// The configuration is not valid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A configuration value that is not valid: an environment variable of
/// [`SwarmConfig::from_env`](crate::SwarmConfig::from_env) or a value parsed with `FromStr`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{value:?} is not a valid {what}: expected {expected}", variable.map(|v| format!("{v}: ")).unwrap_or_default())]
#[non_exhaustive]
pub struct ConfigError {
    /// The environment variable that held the value, when it came from one.
    pub variable: Option<&'static str>,
    /// What the value should have been (`endpoint mode`).
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// The values accepted.
    pub expected: &'static str,
}

impl ConfigError {
    pub(crate) fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        ConfigError {
            variable: None,
            what,
            value: value.to_owned(),
            expected,
        }
    }

    /// The same error, naming the environment variable the value came from.
    #[must_use]
    pub(crate) fn in_variable(mut self, variable: &'static str) -> Self {
        self.variable = Some(variable);
        self
    }
}

impl Error {
    /// An [`Error::Invalid`] blaming `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The kind of [`faas_core::Error`] this becomes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unavailable(_) | Error::NotManager { .. } | Error::Transport { .. } => {
                ErrorKind::Unavailable
            }
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Docker { status, message } => match status {
                404 => ErrorKind::NotFound,
                409 => ErrorKind::AlreadyExists,
                400 => ErrorKind::InvalidInput,
                503 => ErrorKind::Unavailable,
                // swarmkit reports a name clash as a plain 500 on some paths
                _ if message.contains("already exists") => ErrorKind::AlreadyExists,
                _ => ErrorKind::Backend,
            },
            Error::Client(_) | Error::Decode(_) | Error::Conflict(_) => ErrorKind::Backend,
            Error::UnsupportedHost(_) | Error::Config(_) => ErrorKind::InvalidInput,
            Error::FunctionNotFound { .. }
            | Error::NamespaceNotFound(..)
            | Error::SecretNotFound(_) => ErrorKind::NotFound,
            Error::FunctionExists(_) | Error::SecretExists(_) => ErrorKind::AlreadyExists,
            Error::SecretInUse { .. } | Error::Invalid { .. } => ErrorKind::InvalidInput,
        }
    }

    /// The HTTP status of a bollard error the engine answered.
    pub(crate) fn status_of(err: &bollard::errors::Error) -> Option<u16> {
        match err {
            bollard::errors::Error::DockerResponseServerError { status_code, .. } => {
                Some(*status_code)
            }
            _ => None,
        }
    }

    /// The HTTP status Docker answered with, for [`Error::Docker`].
    pub fn docker_status(&self) -> Option<u16> {
        match self {
            Error::Docker { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<bollard::errors::Error> for Error {
    fn from(err: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match err {
            B::DockerResponseServerError {
                status_code,
                message,
            } => Error::Docker {
                status: status_code,
                message: message.trim().to_owned(),
            },
            B::RequestTimeoutError => Error::Timeout(err),
            B::HyperLegacyError { .. } | B::SocketNotFoundError(_) | B::IOError { .. } => {
                Error::Unavailable(err)
            }
            other => Error::Client(other),
        }
    }
}

impl From<Error> for faas_core::Error {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let message = err.to_string();
        let mut out = faas_core::Error::new(kind, message);
        if let Error::Invalid { field, .. } = &err {
            out = out.with_field(field.clone());
        }
        if let Error::SecretInUse { .. } = &err {
            out = out.with_field("name");
        }
        out.with_source(err)
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_statuses_map_to_kinds() {
        let docker = |status, message: &str| Error::Docker {
            status,
            message: message.into(),
        };
        assert_eq!(
            docker(404, "service x not found").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            docker(409, "name conflicts").kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            docker(503, "this node is not a swarm manager").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            docker(400, "invalid constraint").kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            docker(500, "rpc error: secret x already exists").kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(docker(500, "boom").kind(), ErrorKind::Backend);
    }

    #[test]
    fn bollard_errors_convert() {
        let err: Error = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "no such service: x\n".into(),
        }
        .into();
        assert_eq!(err.docker_status(), Some(404));
        assert_eq!(err.to_string(), "docker engine: no such service: x");
        let err: Error = bollard::errors::Error::SocketNotFoundError("/nope.sock".into()).into();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let err: Error = bollard::errors::Error::RequestTimeoutError.into();
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn config_errors_name_their_variable() {
        let err = ConfigError::new("endpoint mode", "ipvs", "dnsrr or vip");
        assert_eq!(
            err.to_string(),
            "\"ipvs\" is not a valid endpoint mode: expected dnsrr or vip"
        );
        let err = err.in_variable("FAAS_SWARM_ENDPOINT_MODE");
        assert_eq!(
            err.to_string(),
            "FAAS_SWARM_ENDPOINT_MODE: \"ipvs\" is not a valid endpoint mode: expected dnsrr or vip"
        );
        let err: faas_core::Error = Error::from(err).into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn invalid_fields_survive_conversion() {
        let err: faas_core::Error = Error::invalid("limits.memory", "bad memory").into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.field(), Some("limits.memory"));
        assert_eq!(err.message(), "bad memory");
        let err: faas_core::Error = Error::FunctionNotFound {
            name: "x".into(),
            namespace: "openfaas-fn".into(),
        }
        .into();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
