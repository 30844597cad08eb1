//! The provider API under `/system/*`, plus `/healthz` and `/metrics`, with OpenFaaS's JSON shapes
//! and statuses. Every request is validated before the provider is called.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::metrics::Metrics;
use crate::invoke::Body;
use crate::model::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, GatewayInfo, LogRequest,
    ScaleServiceRequest, Secret, SecretInfo, VersionInfo,
};
use crate::validate::{self, FunctionName, Namespace};
use crate::{Error, ErrorKind, Provider};

type ApiResult<T = Response> = std::result::Result<T, ApiError>;

/// What the API handlers share.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) provider: Arc<dyn Provider>,
    /// The invoker of `/function/*`, told to forget a function's cached endpoints when it changes.
    pub(crate) invoker: crate::invoke::Invoker,
    pub(crate) metrics: Metrics,
    pub(crate) version: VersionInfo,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("provider", &self.provider.info().name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The namespace a request names (query first, then body), validated; the provider's default
    /// when it names none.
    fn namespace(&self, candidates: &[Option<&str>]) -> Result<String, Error> {
        match candidates.iter().flatten().find(|ns| !ns.is_empty()) {
            Some(ns) => Ok(Namespace::new(*ns)?.as_str().to_owned()),
            None => Ok(self.provider.default_namespace().to_owned()),
        }
    }

    fn fill_counts(&self, status: &mut FunctionStatus) {
        let key = format!("{}.{}", status.name, status.namespace);
        status.invocation_count = self.metrics.invocations(&key) as f64;
        self.metrics.set_replicas(&key, status.replicas);
    }
}

fn query(uri: &Uri) -> Result<HashMap<String, String>, Error> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, "invalid query string").with_source(e))
}

async fn read_body(body: Body) -> Result<Bytes, Error> {
    axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
        if crate::invoke::is_length_limit(&e) {
            Error::new(ErrorKind::PayloadTooLarge, "request body is over the limit")
        } else {
            Error::new(ErrorKind::InvalidInput, "cannot read the request body").with_source(e)
        }
    })
}

async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, Error> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a JSON request body is required",
        ));
    }
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)?;
    // Go clients (older faas-cli, faas-provider types without `omitempty`) send `null` for empty
    // lists and maps: read a top-level `null` as an absent field.
    if let serde_json::Value::Object(fields) = &mut value {
        fields.retain(|_, v| !v.is_null());
    }
    Ok(T::deserialize(value)?)
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> ApiResult {
    let mut body = serde_json::to_vec(value)
        .map_err(|e| Error::internal("cannot serialize the response").with_source(e))?;
    body.push(b'\n');
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `GET /system/functions?namespace=`
pub(crate) async fn list_functions(State(api): State<Api>, uri: Uri) -> ApiResult {
    let q = query(&uri)?;
    let namespace = api.namespace(&[q.get("namespace").map(String::as_str)])?;
    let mut functions = api.provider.list(&namespace).await?;
    for f in &mut functions {
        if f.namespace.is_empty() {
            f.namespace.clone_from(&namespace);
        }
        api.fill_counts(f);
    }
    json(StatusCode::OK, &functions)
}

/// The deployment of a POST/PUT body, validated, its namespace resolved.
async fn deployment(api: &Api, uri: &Uri, body: Body) -> Result<FunctionDeployment, Error> {
    let q = query(uri)?;
    let mut deployment: FunctionDeployment = read_json(body).await?;
    validate::validate_deployment(&deployment)?;
    let namespace = api.namespace(&[
        deployment.namespace.as_deref(),
        q.get("namespace").map(String::as_str),
    ])?;
    deployment.namespace = Some(namespace);
    Ok(deployment)
}

/// `POST /system/functions`: 202.
pub(crate) async fn deploy(State(api): State<Api>, uri: Uri, body: Body) -> ApiResult {
    let deployment = deployment(&api, &uri, body).await?;
    let (name, namespace) = (
        deployment.service.clone(),
        deployment.namespace.clone().unwrap_or_default(),
    );
    api.provider.deploy(deployment).await?;
    api.invoker.forget(&name, &namespace);
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /system/functions`: 202, 404 when the function does not exist (faas-cli then POSTs).
pub(crate) async fn update(State(api): State<Api>, uri: Uri, body: Body) -> ApiResult {
    let deployment = deployment(&api, &uri, body).await?;
    let (name, namespace) = (
        deployment.service.clone(),
        deployment.namespace.clone().unwrap_or_default(),
    );
    api.provider.update(deployment).await?;
    api.invoker.forget(&name, &namespace);
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `DELETE /system/functions` with `{"functionName": ..}`: 202.
pub(crate) async fn delete(State(api): State<Api>, uri: Uri, body: Body) -> ApiResult {
    let q = query(&uri)?;
    let request: DeleteFunctionRequest = read_json(body).await?;
    let name = FunctionName::new(request.function_name.as_str())
        .map_err(|e| e.with_field("functionName"))?;
    let namespace = api.namespace(&[
        q.get("namespace").map(String::as_str),
        Some(&request.namespace),
    ])?;
    api.provider.delete(name.as_str(), &namespace).await?;
    api.invoker.forget(name.as_str(), &namespace);
    api.metrics.remove_function(&format!("{name}.{namespace}"));
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /system/function/{name}?namespace=`
pub(crate) async fn get_function(
    State(api): State<Api>,
    Path(name): Path<String>,
    uri: Uri,
) -> ApiResult {
    let q = query(&uri)?;
    let name = FunctionName::new(name)?;
    let namespace = api.namespace(&[q.get("namespace").map(String::as_str)])?;
    let mut status = api.provider.get(name.as_str(), &namespace).await?;
    if status.namespace.is_empty() {
        status.namespace = namespace;
    }
    api.fill_counts(&mut status);
    json(StatusCode::OK, &status)
}

/// `POST /system/scale-function/{name}` with `{"replicas": n}`: 202.
pub(crate) async fn scale(
    State(api): State<Api>,
    Path(name): Path<String>,
    uri: Uri,
    body: Body,
) -> ApiResult {
    let q = query(&uri)?;
    let name = FunctionName::new(name)?;
    let request: ScaleServiceRequest = read_json(body).await?;
    if !request.service_name.is_empty() && request.service_name != name.as_str() {
        return Err(Error::invalid(
            "serviceName",
            format!(
                "serviceName {:?} does not match the path's {:?}",
                request.service_name,
                name.as_str()
            ),
        )
        .into());
    }
    let replicas = validate::validate_scale(&request)?;
    let namespace = api.namespace(&[
        q.get("namespace").map(String::as_str),
        Some(&request.namespace),
    ])?;
    api.provider
        .scale(name.as_str(), &namespace, replicas)
        .await?;
    api.invoker.forget(name.as_str(), &namespace);
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /system/info`
pub(crate) async fn info(State(api): State<Api>) -> ApiResult {
    let info = GatewayInfo {
        provider: api.provider.info(),
        version: api.version.clone(),
        arch: std::env::consts::ARCH.to_owned(),
    };
    json(StatusCode::OK, &info)
}

/// `GET /system/namespaces`
pub(crate) async fn namespaces(State(api): State<Api>) -> ApiResult {
    let namespaces = api.provider.namespaces().await?;
    json(StatusCode::OK, &namespaces)
}

/// `GET /system/secrets?namespace=`
pub(crate) async fn list_secrets(State(api): State<Api>, uri: Uri) -> ApiResult {
    let q = query(&uri)?;
    let namespace = api.namespace(&[q.get("namespace").map(String::as_str)])?;
    let mut secrets: Vec<SecretInfo> = api.provider.secrets(&namespace).await?;
    for s in &mut secrets {
        if s.namespace.is_empty() {
            s.namespace.clone_from(&namespace);
        }
    }
    json(StatusCode::OK, &secrets)
}

async fn secret(api: &Api, uri: &Uri, body: Body) -> Result<Secret, Error> {
    let q = query(uri)?;
    let mut secret: Secret = read_json(body).await?;
    secret.namespace = api.namespace(&[
        Some(&secret.namespace),
        q.get("namespace").map(String::as_str),
    ])?;
    validate::validate_secret(&secret)?;
    Ok(secret)
}

/// `POST /system/secrets`: 201.
pub(crate) async fn create_secret(State(api): State<Api>, uri: Uri, body: Body) -> ApiResult {
    let secret = secret(&api, &uri, body).await?;
    api.provider.create_secret(secret).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `PUT /system/secrets`: 200.
pub(crate) async fn update_secret(State(api): State<Api>, uri: Uri, body: Body) -> ApiResult {
    let secret = secret(&api, &uri, body).await?;
    api.provider.update_secret(secret).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /system/secrets` with `{"name": ..}`: 204.
pub(crate) async fn delete_secret(State(api): State<Api>, uri: Uri, body: Body) -> ApiResult {
    let q = query(&uri)?;
    let bytes = read_body(body).await?;
    let info: SecretInfo = if bytes.iter().all(u8::is_ascii_whitespace) {
        // Also accept `?name=` for clients that send no body with DELETE.
        match q.get("name") {
            Some(name) => SecretInfo {
                name: name.clone(),
                namespace: String::new(),
            },
            None => return Err(Error::invalid("name", "secret name is required").into()),
        }
    } else {
        serde_json::from_slice(&bytes).map_err(Error::from)?
    };
    validate::check_secret_name("name", &info.name)?;
    let namespace = api.namespace(&[
        q.get("namespace").map(String::as_str),
        Some(&info.namespace),
    ])?;
    api.provider.delete_secret(&info.name, &namespace).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /system/logs?name=&namespace=&instance=&tail=&since=&follow=`: NDJSON, one
/// [`LogMessage`](crate::model::LogMessage) per line.
pub(crate) async fn logs(State(api): State<Api>, uri: Uri) -> ApiResult {
    let q = query(&uri)?;
    let name = FunctionName::new(q.get("name").cloned().unwrap_or_default())
        .map_err(|e| e.with_field("name"))?;
    let namespace = api.namespace(&[q.get("namespace").map(String::as_str)])?;
    let mut request = LogRequest::new(name.as_str(), namespace);
    request.instance = q.get("instance").filter(|i| !i.is_empty()).cloned();
    if let Some(tail) = q.get("tail").filter(|t| !t.is_empty()) {
        let tail: i64 = tail.trim().parse().map_err(|_| {
            Error::invalid("tail", format!("tail must be a whole number, got {tail:?}"))
        })?;
        request.tail = (tail > 0).then_some(tail);
    }
    if let Some(since) = q.get("since").filter(|s| !s.is_empty()) {
        let since = DateTime::parse_from_rfc3339(since).map_err(|e| {
            Error::invalid(
                "since",
                format!("since must be an RFC 3339 time, got {since:?}"),
            )
            .with_source(e)
        })?;
        request.since = Some(since.with_timezone(&Utc));
    }
    if let Some(follow) = q.get("follow") {
        request.follow = match follow.as_str() {
            "" | "1" | "true" | "True" | "TRUE" => true,
            "0" | "false" | "False" | "FALSE" => false,
            other => {
                return Err(Error::invalid(
                    "follow",
                    format!("follow must be true or false, got {other:?}"),
                )
                .into());
            }
        };
    }
    let function = format!("{}.{}", request.name, request.namespace);
    let stream = api.provider.logs(request).await?;
    let lines = stream
        .take_while(move |item| {
            if let Err(err) = item {
                tracing::warn!(function = %function, error = %err, "log stream failed");
            }
            futures::future::ready(item.is_ok())
        })
        .filter_map(|item| {
            futures::future::ready(item.ok().and_then(|message| {
                let mut line = serde_json::to_vec(&message).ok()?;
                line.push(b'\n');
                Some(Ok::<_, std::convert::Infallible>(Bytes::from(line)))
            }))
        });
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /healthz`
pub(crate) async fn healthz() -> Response {
    (StatusCode::OK, "OK").into_response()
}

/// `GET /metrics`: refreshes `gateway_service_count` from the provider (bounded), then renders.
pub(crate) async fn metrics(State(api): State<Api>) -> Response {
    let refresh = async {
        let mut replicas = Vec::new();
        for namespace in api.provider.namespaces().await? {
            for f in api.provider.list(&namespace).await? {
                let ns = if f.namespace.is_empty() {
                    namespace.as_str()
                } else {
                    f.namespace.as_str()
                };
                replicas.push((format!("{}.{ns}", f.name), f.replicas));
            }
        }
        Ok::<_, Error>(replicas)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), refresh).await {
        Ok(Ok(replicas)) => api.metrics.replace_replicas(replicas),
        Ok(Err(err)) => tracing::warn!(error = %err, "cannot refresh gateway_service_count"),
        Err(_) => tracing::warn!("refreshing gateway_service_count timed out"),
    }
    let mut response = api.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
