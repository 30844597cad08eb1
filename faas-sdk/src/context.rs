//! [`Context`]: who is being called, until when, with which environment and secrets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::header::HeaderName;
use tokio::time::Instant;

use crate::error::Error;

/// The directory OpenFaaS mounts a function's secrets in.
pub const DEFAULT_SECRETS_DIR: &str = "/var/openfaas/secrets";
/// The variable overriding the secrets directory.
pub const ENV_SECRET_MOUNT_PATH: &str = "secret_mount_path";
pub use faas_core::model::{ENV_FUNCTION_NAME, ENV_NAMESPACE};
/// `X-Call-Id`: the gateway's id of a call.
pub const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
/// `X-Timeout`: a caller's time budget for this call (`5s`, `500ms` or plain seconds), shortening
/// the deadline set by `exec_timeout`.
pub const X_TIMEOUT: HeaderName = HeaderName::from_static("x-timeout");

/// What a call runs in: its call id, the function's name and namespace, its deadline, its
/// environment and its secrets.
///
/// Cheap to clone. A served request carries it as an extension ([`RequestExt::context`]);
/// [`Context::builder`] makes one for tests.
///
/// ```
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("api-key"), "s3cret\n").unwrap();
/// let ctx = faas::Context::builder()
///     .function_name("hello")
///     .env("GREETING", "hi")
///     .secrets_dir(dir.path())
///     .timeout(Duration::from_secs(5))
///     .build();
/// assert_eq!(ctx.function_name(), Some("hello"));
/// assert_eq!(ctx.env("GREETING"), Some("hi"));
/// assert_eq!(ctx.secret("api-key").unwrap(), "s3cret");
/// assert!(ctx.secret("missing").is_err());
/// assert!(ctx.remaining().unwrap() <= Duration::from_secs(5));
/// ```
///
/// [`RequestExt::context`]: crate::RequestExt::context
#[derive(Debug, Clone)]
pub struct Context {
    call_id: Option<Arc<str>>,
    deadline: Option<Instant>,
    function: Arc<Function>,
}

/// What all calls of one function share: read once at startup.
#[derive(Debug)]
pub(crate) struct Function {
    name: Option<String>,
    namespace: String,
    env: HashMap<String, String>,
    secrets_dir: PathBuf,
    exec_timeout: Option<Duration>,
}

impl Function {
    /// Reads the function's settings from the process environment.
    pub(crate) fn from_env(exec_timeout: Option<Duration>) -> Self {
        let env: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_map(env, exec_timeout)
    }

    fn from_map(env: HashMap<String, String>, exec_timeout: Option<Duration>) -> Self {
        let non_empty = |name: &str| env.get(name).filter(|v| !v.trim().is_empty()).cloned();
        Function {
            name: non_empty(ENV_FUNCTION_NAME),
            namespace: non_empty(ENV_NAMESPACE)
                .unwrap_or_else(|| faas_core::model::DEFAULT_NAMESPACE.to_owned()),
            secrets_dir: non_empty(ENV_SECRET_MOUNT_PATH)
                .map_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR), PathBuf::from),
            exec_timeout,
            env,
        }
    }
}

impl Context {
    /// A builder of a context, for tests and for callers that serve requests themselves.
    pub fn builder() -> ContextBuilder {
        ContextBuilder::default()
    }

    /// The context of a request: call id from `X-Call-Id`, deadline from the function's
    /// `exec_timeout` and the request's `X-Timeout`, whichever is sooner.
    pub(crate) fn for_request(
        function: &Arc<Function>,
        headers: &HeaderMap,
        start: Instant,
    ) -> Self {
        let call_id = headers
            .get(X_CALL_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(Arc::from);
        let requested = headers
            .get(X_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| faas_core::model::parse_duration(v).ok())
            .filter(|d| !d.is_zero());
        let timeout = match (function.exec_timeout, requested) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Context {
            call_id,
            deadline: timeout.map(|t| start + t),
            function: function.clone(),
        }
    }

    /// The gateway's id of this call (`X-Call-Id`), if the caller sent one.
    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_deref()
    }

    /// The function's name, from `OPENFAAS_NAME` (`None` when unset: OpenFaaS sets no such
    /// variable by default; a provider or the deployment's `envVars` can).
    pub fn function_name(&self) -> Option<&str> {
        self.function.name.as_deref()
    }

    /// The function's namespace, from `OPENFAAS_NAMESPACE`, else `openfaas-fn`.
    pub fn namespace(&self) -> &str {
        &self.function.namespace
    }

    /// When this call must have answered: start + the sooner of `exec_timeout` and `X-Timeout`.
    /// `None` when neither is set. The server answers 504 when a handler runs past it.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The time left until the [deadline](Context::deadline) (zero once it has passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// A variable of the function's environment, as it was when the function started.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.function.env.get(name).map(String::as_str)
    }

    /// The directory secrets are read from: `$secret_mount_path`, else `/var/openfaas/secrets`.
    pub fn secrets_dir(&self) -> &Path {
        &self.function.secrets_dir
    }

    /// The secret `name` as UTF-8 text, without a trailing newline.
    ///
    /// # Errors
    ///
    /// A 500 [`Error`] naming the secret and the file when it is missing, unreadable or not UTF-8,
    /// or when `name` is not a plain file name.
    pub fn secret(&self, name: &str) -> Result<String, Error> {
        let bytes = self.secret_bytes(name)?;
        let mut text = String::from_utf8(bytes).map_err(|err| {
            Error::msg(format!("secret {name:?} is not UTF-8 text")).with_source(err)
        })?;
        let trimmed = text.trim_end_matches(['\n', '\r']).len();
        text.truncate(trimmed);
        Ok(text)
    }

    /// The secret `name` as raw bytes.
    ///
    /// # Errors
    ///
    /// As [`Context::secret`], except for UTF-8.
    pub fn secret_bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        let valid =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !valid {
            return Err(Error::msg(format!(
                "invalid secret name {name:?}: expected a file name without '/'"
            )));
        }
        let path = self.function.secrets_dir.join(name);
        std::fs::read(&path).map_err(|err| {
            let message = if err.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "secret {name:?} not found at {}: list it under the function's secrets \
                     (or set {ENV_SECRET_MOUNT_PATH})",
                    path.display()
                )
            } else {
                format!("cannot read secret {name:?} at {}", path.display())
            };
            Error::msg(message).with_source(err)
        })
    }
}

/// Builds a [`Context`]; see [`Context::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct ContextBuilder {
    call_id: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    env: HashMap<String, String>,
    secrets_dir: Option<PathBuf>,
    timeout: Option<Duration>,
}

impl ContextBuilder {
    /// Sets the call id.
    pub fn call_id(mut self, id: impl Into<String>) -> Self {
        self.call_id = Some(id.into());
        self
    }

    /// Sets the function name.
    pub fn function_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the namespace (default `openfaas-fn`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets the secrets directory (default `/var/openfaas/secrets`).
    pub fn secrets_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.secrets_dir = Some(dir.into());
        self
    }

    /// Sets the deadline to `timeout` from [`build`](ContextBuilder::build).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Builds the context.
    pub fn build(self) -> Context {
        let function = Function {
            name: self.name,
            namespace: self
                .namespace
                .unwrap_or_else(|| faas_core::model::DEFAULT_NAMESPACE.to_owned()),
            env: self.env,
            secrets_dir: self
                .secrets_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR)),
            exec_timeout: self.timeout,
        };
        Context {
            call_id: self.call_id.map(Arc::from),
            deadline: self.timeout.map(|t| Instant::now() + t),
            function: Arc::new(function),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn function(vars: &[(&str, &str)], exec: Option<Duration>) -> Arc<Function> {
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Arc::new(Function::from_map(env, exec))
    }

    #[test]
    fn reads_name_namespace_and_secrets_dir_from_env() {
        let f = function(
            &[
                ("OPENFAAS_NAME", "hello"),
                ("OPENFAAS_NAMESPACE", "dev"),
                ("secret_mount_path", "/s"),
            ],
            None,
        );
        let ctx = Context::for_request(&f, &HeaderMap::new(), Instant::now());
        assert_eq!(ctx.function_name(), Some("hello"));
        assert_eq!(ctx.namespace(), "dev");
        assert_eq!(ctx.secrets_dir(), Path::new("/s"));
        assert_eq!(ctx.env("OPENFAAS_NAME"), Some("hello"));
        assert_eq!(ctx.call_id(), None);
        assert_eq!(ctx.deadline(), None);

        let defaults =
            Context::for_request(&function(&[], None), &HeaderMap::new(), Instant::now());
        assert_eq!(defaults.function_name(), None);
        assert_eq!(defaults.namespace(), "openfaas-fn");
        assert_eq!(defaults.secrets_dir(), Path::new(DEFAULT_SECRETS_DIR));
    }

    #[test]
    fn deadline_is_the_sooner_of_exec_timeout_and_x_timeout() {
        let start = Instant::now();
        let f = function(&[], Some(Duration::from_secs(10)));
        let mut headers = HeaderMap::new();
        headers.insert(X_CALL_ID, HeaderValue::from_static("abc"));
        let ctx = Context::for_request(&f, &headers, start);
        assert_eq!(ctx.call_id(), Some("abc"));
        assert_eq!(ctx.deadline(), Some(start + Duration::from_secs(10)));

        headers.insert(X_TIMEOUT, HeaderValue::from_static("2s"));
        let ctx = Context::for_request(&f, &headers, start);
        assert_eq!(ctx.deadline(), Some(start + Duration::from_secs(2)));

        headers.insert(X_TIMEOUT, HeaderValue::from_static("1m"));
        let ctx = Context::for_request(&f, &headers, start);
        assert_eq!(ctx.deadline(), Some(start + Duration::from_secs(10)));

        let unbounded = function(&[], None);
        headers.insert(X_TIMEOUT, HeaderValue::from_static("3"));
        let ctx = Context::for_request(&unbounded, &headers, start);
        assert_eq!(ctx.deadline(), Some(start + Duration::from_secs(3)));
    }

    #[test]
    fn secrets_are_read_trimmed_and_missing_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), b"abc\r\n").unwrap();
        std::fs::write(dir.path().join("binary"), [0xff, 0x00]).unwrap();
        let ctx = Context::builder().secrets_dir(dir.path()).build();
        assert_eq!(ctx.secret("token").unwrap(), "abc");
        assert_eq!(ctx.secret_bytes("binary").unwrap(), vec![0xff, 0x00]);
        assert!(
            ctx.secret("binary")
                .unwrap_err()
                .message()
                .contains("not UTF-8")
        );

        let err = ctx.secret("nope").unwrap_err();
        assert_eq!(err.status_code(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            err.message().contains("secret \"nope\" not found at"),
            "{}",
            err.message()
        );
        assert!(err.message().contains(&dir.path().display().to_string()));

        for bad in ["", ".", "..", "../token", "a/b"] {
            let err = ctx.secret(bad).unwrap_err();
            assert!(
                err.message().starts_with("invalid secret name"),
                "{bad}: {err}"
            );
        }
    }
}
