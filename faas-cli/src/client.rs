//! A client of the OpenFaaS REST API, for any OpenFaaS-compatible gateway (faas-rs's or OpenFaaS's).
//!
//! ```no_run
//! # async fn example() -> faas_cli::Result<()> {
//! use faas_cli::client::GatewayClient;
//! use faas_core::model::FunctionDeployment;
//!
//! let client = GatewayClient::new("http://127.0.0.1:8080", None)?;
//! client.deploy(&FunctionDeployment::new("echo", "examples/functions/echo").with_env_process("cat")).await?;
//! for function in client.list(None).await? {
//!     println!("{} {}", function.name, function.replicas);
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use faas_core::model::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, GatewayInfo, LogMessage, LogRequest,
    ScaleServiceRequest, Secret, SecretInfo,
};
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::{Error, Result};

/// The gateway used when neither `--gateway`, `OPENFAAS_URL` nor a stack file names one.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";

/// The header OpenFaaS gateways set on answers they make themselves (not the function's).
pub const HEADER_INTERNAL: &str = "x-openfaas-internal";

/// Basic-auth credentials, written `user:password`.
///
/// ```
/// use faas_cli::client::Credentials;
/// let creds: Credentials = "admin:s3cret:with:colons".parse().unwrap();
/// assert_eq!(creds.user, "admin");
/// assert_eq!(creds.password, "s3cret:with:colons");
/// assert!("no-colon".parse::<Credentials>().is_err());
/// assert!(!format!("{creds:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl FromStr for Credentials {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err("credentials must be written user:password".to_owned()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Whether a deployment updated an existing function, created a new one or replaced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeployOutcome {
    /// `PUT` succeeded: the function existed and was updated.
    Updated,
    /// `POST` created the function (after `PUT` answered 404, or without trying `PUT`).
    Created,
    /// `DELETE` removed the function (or it did not exist), then `POST` created it.
    Replaced,
}

/// What a request is about, to word a 404 or 409.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Gateway,
    Function(&'a str),
    Secret(&'a str),
}

impl Subject<'_> {
    fn noun(self) -> Option<String> {
        match self {
            Subject::Gateway => None,
            Subject::Function(name) => Some(format!("function {name:?}")),
            Subject::Secret(name) => Some(format!("secret {name:?}")),
        }
    }
}

/// One function invocation (`/function/{name}[.{namespace}][/{path}]`).
#[derive(Debug)]
#[non_exhaustive]
pub struct Invocation {
    /// The function.
    pub name: String,
    /// Its namespace (`None`: the gateway's default).
    pub namespace: Option<String>,
    /// The HTTP method.
    pub method: Method,
    /// A path after the function's name (`"a/b"`), passed through to the function.
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: reqwest::Body,
}

impl Invocation {
    /// A `POST` to `name` with `body`.
    pub fn new(name: impl Into<String>, body: impl Into<reqwest::Body>) -> Self {
        Invocation {
            name: name.into(),
            namespace: None,
            method: Method::POST,
            path: String::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// A client of one OpenFaaS-compatible gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    base: String,
    http: reqwest::Client,
    auth: Option<Credentials>,
}

impl GatewayClient {
    /// A client of the gateway at `gateway` (`http://127.0.0.1:8080`; a missing scheme means `http://`),
    /// sending `auth` as basic auth on `/system/*`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the URL is invalid.
    pub fn new(gateway: &str, auth: Option<Credentials>) -> Result<Self> {
        let gateway = gateway.trim().trim_end_matches('/');
        let base = if gateway.contains("://") {
            gateway.to_owned()
        } else {
            format!("http://{gateway}")
        };
        let url = reqwest::Url::parse(&base)
            .map_err(|e| Error::InvalidArgument(format!("invalid gateway URL {gateway:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::InvalidArgument(format!(
                "invalid gateway URL {gateway:?}: expected http://host:port"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot build an HTTP client: {e}")))?;
        Ok(GatewayClient { base, http, auth })
    }

    /// The gateway's base URL, without a trailing `/`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The URL that invokes `name` (in `namespace` when set).
    pub fn function_url(&self, name: &str, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if !ns.is_empty() => format!("{}/function/{name}.{ns}", self.base),
            _ => format!("{}/function/{name}", self.base),
        }
    }

    fn system(&self, method: Method, path: &str, namespace: Option<&str>) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
            request = request.query(&[("namespace", ns)]);
        }
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.user, Some(&auth.password));
        }
        request
    }

    /// Sends a request, turning transport failures and error statuses into one-line errors.
    async fn send(&self, request: RequestBuilder, subject: Subject<'_>) -> Result<Response> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.status_error(response, subject).await)
    }

    fn transport_error(&self, err: &reqwest::Error) -> Error {
        if err.is_builder() {
            return Error::InvalidArgument(format!("invalid request: {}", root_cause(err)));
        }
        Error::Unreachable {
            gateway: self.base.clone(),
            reason: root_cause(err),
        }
    }

    async fn status_error(&self, response: Response, subject: Subject<'_>) -> Error {
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Error::Unauthorized {
                gateway: self.base.clone(),
            };
        }
        let body = response.text().await.unwrap_or_default();
        let detail = error_detail(&body);
        let message = match (status, subject.noun()) {
            (StatusCode::NOT_FOUND, Some(noun)) => format!("{noun} not found"),
            (StatusCode::CONFLICT, Some(noun)) => format!("{noun} already exists"),
            _ if !detail.is_empty() => format!("the gateway refused the request: {detail}"),
            _ => format!(
                "the gateway answered {}",
                status
                    .canonical_reason()
                    .unwrap_or("an error")
                    .to_lowercase()
            ),
        };
        Error::Status {
            status: status.as_u16(),
            message,
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, response: Response) -> Result<T> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::BadAnswer {
            gateway: self.base.clone(),
            reason: e.to_string(),
        })
    }

    /// `GET /healthz`.
    ///
    /// # Errors
    /// [`Error::Unreachable`] or [`Error::Status`].
    pub async fn healthz(&self) -> Result<()> {
        let request = self.http.get(format!("{}/healthz", self.base));
        self.send(request, Subject::Gateway).await.map(drop)
    }

    /// `GET /system/info`.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Unauthorized`], [`Error::Status`] or [`Error::BadAnswer`].
    pub async fn info(&self) -> Result<GatewayInfo> {
        let response = self
            .send(
                self.system(Method::GET, "/system/info", None),
                Subject::Gateway,
            )
            .await?;
        self.json(response).await
    }

    /// `GET /system/functions`.
    ///
    /// # Errors
    /// As [`GatewayClient::info`].
    pub async fn list(&self, namespace: Option<&str>) -> Result<Vec<FunctionStatus>> {
        let request = self.system(Method::GET, "/system/functions", namespace);
        let response = self.send(request, Subject::Gateway).await?;
        self.json(response).await
    }

    /// `GET /system/function/{name}`.
    ///
    /// # Errors
    /// As [`GatewayClient::info`]; [`Error::Status`] 404 naming the function when it does not exist.
    pub async fn get(&self, name: &str, namespace: Option<&str>) -> Result<FunctionStatus> {
        let request = self.system(Method::GET, &format!("/system/function/{name}"), namespace);
        let response = self.send(request, Subject::Function(name)).await?;
        self.json(response).await
    }

    /// Deploys as faas-cli does: `PUT /system/functions`, and `POST` when that answers 404.
    ///
    /// # Errors
    /// As [`GatewayClient::info`]; [`Error::Status`] 400 with the gateway's message for a bad deployment.
    pub async fn deploy(&self, deployment: &FunctionDeployment) -> Result<DeployOutcome> {
        match self.update(deployment).await {
            Ok(()) => Ok(DeployOutcome::Updated),
            Err(Error::Status { status: 404, .. }) => self
                .create(deployment)
                .await
                .map(|()| DeployOutcome::Created),
            Err(e) => Err(e),
        }
    }

    /// `POST /system/functions`: creates a function.
    ///
    /// # Errors
    /// As [`GatewayClient::deploy`]; 409 when it exists.
    pub async fn create(&self, deployment: &FunctionDeployment) -> Result<()> {
        let request = self
            .system(Method::POST, "/system/functions", None)
            .json(deployment);
        self.send(request, Subject::Function(&deployment.service))
            .await
            .map(drop)
    }

    /// `PUT /system/functions`: updates a function.
    ///
    /// # Errors
    /// As [`GatewayClient::deploy`]; 404 when it does not exist.
    pub async fn update(&self, deployment: &FunctionDeployment) -> Result<()> {
        let request = self
            .system(Method::PUT, "/system/functions", None)
            .json(deployment);
        self.send(request, Subject::Function(&deployment.service))
            .await
            .map(drop)
    }

    /// `DELETE /system/functions` with `{"functionName": name}`.
    ///
    /// # Errors
    /// As [`GatewayClient::get`].
    pub async fn remove(&self, name: &str, namespace: Option<&str>) -> Result<()> {
        let body = DeleteFunctionRequest {
            function_name: name.to_owned(),
            namespace: namespace.unwrap_or_default().to_owned(),
        };
        let request = self
            .system(Method::DELETE, "/system/functions", namespace)
            .json(&body);
        self.send(request, Subject::Function(name)).await.map(drop)
    }

    /// `POST /system/scale-function/{name}`.
    ///
    /// # Errors
    /// As [`GatewayClient::get`].
    pub async fn scale(&self, name: &str, namespace: Option<&str>, replicas: u64) -> Result<()> {
        let body = ScaleServiceRequest {
            service_name: name.to_owned(),
            replicas,
            namespace: namespace.unwrap_or_default().to_owned(),
        };
        let request = self
            .system(
                Method::POST,
                &format!("/system/scale-function/{name}"),
                namespace,
            )
            .json(&body);
        self.send(request, Subject::Function(name)).await.map(drop)
    }

    /// Invokes a function and returns its answer, whatever its status, with the body unread
    /// (streamed).
    ///
    /// # Errors
    /// [`Error::Unreachable`] when the gateway cannot be reached.
    pub async fn invoke(&self, invocation: Invocation) -> Result<Response> {
        let mut url = self.function_url(&invocation.name, invocation.namespace.as_deref());
        let path = invocation.path.trim_start_matches('/');
        if !path.is_empty() {
            url.push('/');
            url.push_str(path);
        }
        let mut request = self
            .http
            .request(invocation.method, url)
            .body(invocation.body);
        if !invocation.query.is_empty() {
            request = request.query(&invocation.query);
        }
        for (name, value) in &invocation.headers {
            request = request.header(name, value);
        }
        request.send().await.map_err(|e| self.transport_error(&e))
    }

    /// The error for a function's non-2xx answer: 404 from the gateway itself names the function as
    /// unknown; anything else quotes the answer's first line.
    pub async fn invocation_error(&self, name: &str, response: Response) -> Error {
        let status = response.status();
        let internal = response.headers().contains_key(HEADER_INTERNAL);
        if internal && status == StatusCode::NOT_FOUND {
            return Error::Status {
                status: 404,
                message: format!("function {name:?} not found"),
            };
        }
        let body = response.text().await.unwrap_or_default();
        let detail = error_detail(&body);
        let who = if internal {
            "the gateway"
        } else {
            "the function"
        };
        let message = if detail.is_empty() {
            format!(
                "function {name:?} failed: {who} answered {}",
                status
                    .canonical_reason()
                    .unwrap_or("an error")
                    .to_lowercase()
            )
        } else {
            format!("function {name:?} failed: {detail}")
        };
        Error::Status {
            status: status.as_u16(),
            message,
        }
    }

    /// `GET /system/logs`: the function's log lines, as a stream that ends when the gateway closes
    /// it (never, with `follow`, until the function is removed or the connection drops).
    ///
    /// # Errors
    /// As [`GatewayClient::get`]; items fail with [`Error::Unreachable`] when the connection breaks or
    /// [`Error::BadAnswer`] for a line that is not a log message.
    pub async fn logs(
        &self,
        request: &LogRequest,
    ) -> Result<BoxStream<'static, Result<LogMessage>>> {
        let mut query: Vec<(&str, String)> = vec![("name", request.name.clone())];
        if !request.namespace.is_empty() {
            query.push(("namespace", request.namespace.clone()));
        }
        if let Some(tail) = request.tail {
            query.push(("tail", tail.to_string()));
        }
        if let Some(since) = request.since {
            query.push((
                "since",
                since.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ));
        }
        if let Some(instance) = &request.instance {
            query.push(("instance", instance.clone()));
        }
        query.push(("follow", request.follow.to_string()));
        let http = self.system(Method::GET, "/system/logs", None).query(&query);
        let response = self.send(http, Subject::Function(&request.name)).await?;
        let client = self.clone();
        let chunks = response.bytes_stream().boxed();
        let state = (chunks, BytesMut::new(), false);
        let lines = stream::unfold(state, move |(mut chunks, mut buffer, mut done)| {
            let client = client.clone();
            async move {
                loop {
                    if let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                        let line = buffer.split_to(pos + 1);
                        let line = line.trim_ascii();
                        if line.is_empty() {
                            continue;
                        }
                        return Some((client.parse_log_line(line), (chunks, buffer, done)));
                    }
                    if done {
                        if buffer.is_empty() {
                            return None;
                        }
                        let line = buffer.split();
                        let line = line.trim_ascii();
                        if line.is_empty() {
                            return None;
                        }
                        return Some((client.parse_log_line(line), (chunks, buffer, done)));
                    }
                    match chunks.next().await {
                        Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                        Some(Err(e)) => {
                            done = true;
                            buffer.clear();
                            return Some((Err(client.transport_error(&e)), (chunks, buffer, done)));
                        }
                        None => done = true,
                    }
                }
            }
        });
        Ok(lines.boxed())
    }

    fn parse_log_line(&self, line: &[u8]) -> Result<LogMessage> {
        serde_json::from_slice(line).map_err(|e| Error::BadAnswer {
            gateway: self.base.clone(),
            reason: format!("log line is not a log message: {e}"),
        })
    }

    /// `GET /system/secrets`.
    ///
    /// # Errors
    /// As [`GatewayClient::info`].
    pub async fn secrets(&self, namespace: Option<&str>) -> Result<Vec<SecretInfo>> {
        let request = self.system(Method::GET, "/system/secrets", namespace);
        let response = self.send(request, Subject::Gateway).await?;
        self.json(response).await
    }

    /// `POST /system/secrets`: creates a secret.
    ///
    /// # Errors
    /// As [`GatewayClient::info`]; 409 when it exists.
    pub async fn create_secret(&self, secret: &Secret) -> Result<()> {
        let request = self
            .system(Method::POST, "/system/secrets", ns(&secret.namespace))
            .json(secret);
        self.send(request, Subject::Secret(&secret.name))
            .await
            .map(drop)
    }

    /// `PUT /system/secrets`: replaces a secret's value.
    ///
    /// # Errors
    /// As [`GatewayClient::info`]; 404 when it does not exist.
    pub async fn update_secret(&self, secret: &Secret) -> Result<()> {
        let request = self
            .system(Method::PUT, "/system/secrets", ns(&secret.namespace))
            .json(secret);
        self.send(request, Subject::Secret(&secret.name))
            .await
            .map(drop)
    }

    /// `DELETE /system/secrets` with `{"name": name}`.
    ///
    /// # Errors
    /// As [`GatewayClient::info`]; 404 when it does not exist.
    pub async fn remove_secret(&self, name: &str, namespace: Option<&str>) -> Result<()> {
        let body = SecretInfo {
            name: name.to_owned(),
            namespace: namespace.unwrap_or_default().to_owned(),
        };
        let request = self
            .system(Method::DELETE, "/system/secrets", namespace)
            .json(&body);
        self.send(request, Subject::Secret(name)).await.map(drop)
    }
}

fn ns(namespace: &str) -> Option<&str> {
    Some(namespace).filter(|ns| !ns.is_empty())
}

/// The message of an error body: the `error` field of `{"error": .., "field": ..}` (with the field),
/// else the body's first line, shortened.
fn error_detail(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        let message = map
            .get("error")
            .or_else(|| map.get("message"))
            .and_then(|v| v.as_str());
        if let Some(message) = message {
            return match map.get("field").and_then(|v| v.as_str()) {
                Some(field) if !field.is_empty() && !message.contains(field) => {
                    format!("{field}: {message}")
                }
                _ => message.to_owned(),
            };
        }
    }
    let line = body.trim().lines().next().unwrap_or_default().trim();
    let mut short: String = line.chars().take(300).collect();
    if short.len() < line.len() {
        short.push_str("...");
    }
    short
}

/// The innermost cause of a transport error, in a few lowercase words (`connection refused`).
fn root_cause(err: &reqwest::Error) -> String {
    let mut last = err.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return match io.kind() {
                kind @ (K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::AddrNotAvailable
                | K::BrokenPipe
                | K::TimedOut
                | K::UnexpectedEof) => kind.to_string(),
                _ => io.to_string(),
            };
        }
        last = s.to_string();
        source = s.source();
    }
    if err.is_timeout() {
        "timed out".to_owned()
    } else {
        last
    }
}

/// An invocation body of `bytes`.
pub fn body_from_bytes(bytes: impl Into<Bytes>) -> reqwest::Body {
    reqwest::Body::from(bytes.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_are_normalised() {
        let c = GatewayClient::new("127.0.0.1:8080/", None).unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:8080");
        assert_eq!(
            c.function_url("echo", None),
            "http://127.0.0.1:8080/function/echo"
        );
        assert_eq!(
            c.function_url("echo", Some("dev")),
            "http://127.0.0.1:8080/function/echo.dev"
        );
        assert!(GatewayClient::new("ftp://x", None).is_err());
        assert!(GatewayClient::new("http://[::1", None).is_err());
    }

    #[test]
    fn error_details() {
        assert_eq!(
            error_detail(r#"{"error":"bad name","field":"service"}"#),
            "service: bad name"
        );
        assert_eq!(
            error_detail(r#"{"error":"service is invalid","field":"service"}"#),
            "service is invalid"
        );
        assert_eq!(error_detail("plain text\nsecond line"), "plain text");
        assert_eq!(error_detail(""), "");
        assert!(error_detail(&"x".repeat(400)).ends_with("..."));
    }

    #[tokio::test]
    async fn unreachable_gateway_is_one_clear_error() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = GatewayClient::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
        let err = client.list(None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot reach the gateway at http://127.0.0.1:{port}: connection refused")
        );
    }
}
