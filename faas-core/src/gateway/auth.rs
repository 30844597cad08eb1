//! Basic auth on `/system/*` and `/ui/`, as OpenFaaS's gateway: `/function/*`, `/healthz` and
//! `/metrics` stay open.

use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::future::{Either, Ready, ready};
use http::{Request, Response, header};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use super::error::error_response;
use crate::{Error, ErrorKind, Result};

/// The file under a secrets dir holding the user name, as OpenFaaS.
pub const BASIC_AUTH_USER_FILE: &str = "basic-auth-user";
/// The file under a secrets dir holding the password, as OpenFaaS.
pub const BASIC_AUTH_PASSWORD_FILE: &str = "basic-auth-password";

/// Basic-auth credentials the gateway requires on `/system/*` and `/ui/`.
#[derive(Clone)]
pub struct BasicAuth {
    user: Arc<[u8]>,
    password: Arc<[u8]>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"<redacted>")
            .finish()
    }
}

impl BasicAuth {
    /// Credentials `user` / `password`.
    pub fn new(user: impl AsRef<str>, password: impl AsRef<str>) -> Self {
        BasicAuth {
            user: Arc::from(user.as_ref().as_bytes()),
            password: Arc::from(password.as_ref().as_bytes()),
        }
    }

    /// Reads OpenFaaS's `basic-auth-user` and `basic-auth-password` files under `dir` (surrounding
    /// whitespace trimmed, as OpenFaaS).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when a file cannot be read or is empty.
    pub fn from_secrets_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |file: &str| -> Result<String> {
            let path = dir.join(file);
            let value = std::fs::read_to_string(&path).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("cannot read {}", path.display()),
                )
                .with_source(e)
            })?;
            let value = value.trim().to_owned();
            if value.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} is empty", path.display()),
                ));
            }
            Ok(value)
        };
        Ok(BasicAuth::new(
            read(BASIC_AUTH_USER_FILE)?,
            read(BASIC_AUTH_PASSWORD_FILE)?,
        ))
    }

    /// Whether an `Authorization` header value carries these credentials (constant-time compare).
    pub fn verify(&self, authorization: &[u8]) -> bool {
        let Some(encoded) = authorization
            .strip_prefix(b"Basic ")
            .or_else(|| authorization.strip_prefix(b"basic "))
        else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim_ascii()) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let user_ok = user.ct_eq(&self.user);
        let password_ok = password.ct_eq(&self.password);
        bool::from(user_ok & password_ok)
    }
}

/// Whether `path` needs credentials: `/system/*` and `/ui/*`.
pub fn is_protected(path: &str) -> bool {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under("/system") || under("/ui")
}

/// A [`Layer`] applying [`Auth`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    credentials: Option<BasicAuth>,
}

impl AuthLayer {
    /// Requires `credentials` on protected paths; `None` lets every request through.
    pub fn new(credentials: Option<BasicAuth>) -> Self {
        AuthLayer { credentials }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            credentials: self.credentials.clone(),
        }
    }
}

/// Answers 401 with `WWW-Authenticate: Basic realm="Restricted"` to a request for a protected path
/// ([`is_protected`]) without the right credentials.
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    credentials: Option<BasicAuth>,
}

impl<S> Auth<S> {
    /// Wraps `inner`; `None` lets every request through.
    pub fn new(inner: S, credentials: Option<BasicAuth>) -> Self {
        Auth { inner, credentials }
    }
}

impl<S, B, ResBody> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ResBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Some(credentials) = &self.credentials
            && is_protected(request.uri().path())
        {
            let ok = request
                .headers()
                .get(header::AUTHORIZATION)
                .is_some_and(|value| credentials.verify(value.as_bytes()));
            if !ok {
                let err = Error::new(
                    ErrorKind::Unauthorized,
                    "unauthorized: valid basic auth credentials are required",
                );
                return Either::Left(ready(Ok(error_response(&err))));
            }
        }
        Either::Right(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_for(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn verifies_credentials() {
        let auth = BasicAuth::new("admin", "s3cr:et");
        assert!(auth.verify(header_for("admin", "s3cr:et").as_bytes()));
        assert!(!auth.verify(header_for("admin", "wrong").as_bytes()));
        assert!(!auth.verify(header_for("admi", "s3cr:et").as_bytes()));
        assert!(!auth.verify(b"Bearer abc"));
        assert!(!auth.verify(b"Basic !!!"));
        assert!(!format!("{auth:?}").contains("s3cr"));
    }

    #[test]
    fn protected_paths() {
        for p in [
            "/system",
            "/system/functions",
            "/ui",
            "/ui/",
            "/system/invocations/x",
        ] {
            assert!(is_protected(p), "{p}");
        }
        for p in [
            "/function/echo",
            "/healthz",
            "/metrics",
            "/systems",
            "/uix",
            "/async-function/x",
        ] {
            assert!(!is_protected(p), "{p}");
        }
    }

    #[test]
    fn reads_openfaas_secret_files() {
        let dir = std::env::temp_dir().join(format!("faas-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            BasicAuth::from_secrets_dir(&dir).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        std::fs::write(dir.join(BASIC_AUTH_USER_FILE), "admin\n").unwrap();
        std::fs::write(dir.join(BASIC_AUTH_PASSWORD_FILE), "pw\n").unwrap();
        let auth = BasicAuth::from_secrets_dir(&dir).unwrap();
        assert!(auth.verify(header_for("admin", "pw").as_bytes()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
