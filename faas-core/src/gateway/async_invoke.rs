//! Asynchronous invocation routes:
//!
//! - `POST /async-function/{name}[.{namespace}][/{rest..}]` (any method but `DELETE` of a call id):
//!   stores the call durably in the [`Queue`], answers 202 with `X-Call-Id`; 404 at once for an
//!   unknown function, 400 for an invalid `X-Callback-Url`, 413 for a body over the async limit;
//! - `DELETE /async-function/{call-id}`: cancels a call that has not started (204; 409 when it has
//!   started, 404 when unknown);
//! - `GET /system/invocations/{call-id}`: the call's [`InvocationRecord`];
//! - `GET /system/invocations?function=&namespace=&status=&limit=`: records, newest first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::time::Instant;

use super::error::ApiError;
use super::proxy::parse_function_path;
use crate::invoke::Body;
use crate::queue::records::{
    Durability, InvocationRecord, InvocationStatus, InvocationStore, ListQuery,
};
use crate::queue::{HEADER_CALLBACK_URL, Queue, QueuedRequest};
use crate::validate::{FunctionName, Namespace};
use crate::{Error, ErrorKind, Provider};

/// Default limit of an asynchronous call's body: 64 MiB (the invocation body limit applies too).
pub const DEFAULT_ASYNC_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The most records one listing returns.
const MAX_LIST_LIMIT: usize = 1000;

/// How long a function found by the provider is trusted to exist without asking again.
const KNOWN_TTL: Duration = Duration::from_secs(2);

type ApiResult<T = Response> = std::result::Result<T, ApiError>;

/// What the async handlers share.
#[derive(Clone)]
pub(crate) struct AsyncApi {
    pub(crate) queue: Arc<dyn Queue>,
    pub(crate) store: Arc<dyn InvocationStore>,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) body_limit: usize,
    known: Arc<Mutex<HashMap<(String, String), Instant>>>,
}

impl std::fmt::Debug for AsyncApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncApi")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl AsyncApi {
    pub(crate) fn new(
        queue: Arc<dyn Queue>,
        store: Arc<dyn InvocationStore>,
        provider: Arc<dyn Provider>,
        body_limit: usize,
    ) -> Self {
        let body_limit = queue
            .max_body_bytes()
            .map_or(body_limit, |max| max.min(body_limit));
        AsyncApi {
            queue,
            store,
            provider,
            body_limit,
            known: Arc::default(),
        }
    }

    /// 404 unless the provider knows the function (answers cached briefly).
    async fn check_exists(&self, name: &str, namespace: &str) -> Result<(), Error> {
        let key = (name.to_owned(), namespace.to_owned());
        let fresh = {
            let known = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            known.get(&key).is_some_and(|at| at.elapsed() < KNOWN_TTL)
        };
        if fresh {
            return Ok(());
        }
        self.provider.get(name, namespace).await?;
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() > 10_000 {
            known.retain(|_, at| at.elapsed() < KNOWN_TTL);
        }
        known.insert(key, Instant::now());
        Ok(())
    }
}

/// The async routes, for any outer state.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(api: AsyncApi) -> Router<S> {
    Router::new()
        .route("/async-function/{target}", any(enqueue_or_cancel))
        .route("/async-function/{target}/", any(enqueue))
        .route("/async-function/{target}/{*rest}", any(enqueue))
        .route("/system/invocations", get(list))
        .route("/system/invocations/{call_id}", get(get_record))
        .with_state(api)
}

/// Validates an `X-Callback-Url`: an absolute `http` or `https` URL.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] naming the header.
pub(crate) fn validate_callback_url(value: &str) -> Result<(), Error> {
    let invalid = |why: &str| {
        Error::invalid(
            HEADER_CALLBACK_URL,
            format!("invalid {HEADER_CALLBACK_URL} {value:?}: {why}"),
        )
    };
    let uri: Uri = value.parse().map_err(|_| invalid("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("must be an absolute http or https URL")),
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() => Ok(()),
        _ => Err(invalid("must name a host")),
    }
}

fn is_call_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok()
}

async fn enqueue_or_cancel(
    State(api): State<AsyncApi>,
    Path(target): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    if method == Method::DELETE && is_call_id(&target) {
        return cancel(api, &target).await;
    }
    enqueue_call(api, method, uri, headers, body).await
}

async fn enqueue(
    State(api): State<AsyncApi>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    enqueue_call(api, method, uri, headers, body).await
}

/// Headers not stored with a call: they describe this request's transport, not the call.
fn stored_header(name: &header::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "host"
            | "te"
            | "upgrade"
            | "proxy-authorization"
            | "x-callback-url"
    )
}

async fn enqueue_call(
    api: AsyncApi,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let target = parse_function_path("async-function", &uri)?;
    let name = FunctionName::new(target.name)?;
    let namespace = if target.namespace.is_empty() {
        api.provider.default_namespace().to_owned()
    } else {
        Namespace::new(target.namespace)?.as_str().to_owned()
    };
    let callback_url = match headers.get(HEADER_CALLBACK_URL) {
        Some(value) => {
            let value = value.to_str().map_err(|_| {
                Error::invalid(
                    HEADER_CALLBACK_URL,
                    format!("invalid {HEADER_CALLBACK_URL}: not text"),
                )
            })?;
            validate_callback_url(value)?;
            Some(value.to_owned())
        }
        None => None,
    };
    api.check_exists(name.as_str(), &namespace).await?;
    let body = axum::body::to_bytes(body, api.body_limit)
        .await
        .map_err(|e| {
            if crate::invoke::is_length_limit(&e) {
                Error::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "request body is over the async limit of {} bytes",
                        api.body_limit
                    ),
                )
            } else {
                Error::new(ErrorKind::InvalidInput, "cannot read the request body").with_source(e)
            }
        })?;
    let (path, query) = match target.path_and_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.path_and_query, None),
    };
    let mut request = QueuedRequest::new(name.as_str(), namespace)
        .with_method(method.as_str())
        .with_path(path);
    request.query = query;
    request.callback_url = callback_url;
    request.body = body;
    request.headers = headers
        .iter()
        .filter(|(name, _)| stored_header(name))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    // A caller's own UUID call id is kept, as OpenFaaS's gateway keeps it, unless a call with that
    // id is already recorded (a chain of functions passing the same id on): that call gets a new one.
    if let Some(id) = headers
        .get("x-call-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_call_id(id))
        && api.store.get(id).await?.is_none()
    {
        request.call_id = id.to_owned();
    }
    let call_id = request.call_id.clone();
    // Recorded before publishing: a worker may pick the call up before publish returns here.
    if let Err(err) = api
        .store
        .put(InvocationRecord::queued(&request), Durability::Lazy)
        .await
    {
        tracing::warn!(call_id, error = %err, "cannot record a queued call");
    }
    if let Err(err) = api.queue.publish(request.clone()).await {
        let mut record = InvocationRecord::queued(&request);
        record.status = InvocationStatus::Failed;
        record.attempts = 1;
        record.error = Some(format!("not queued: {err}"));
        let _ = api.store.put(record, Durability::Lazy).await;
        return Err(err.into());
    }
    let mut response = StatusCode::ACCEPTED.into_response();
    let value = HeaderValue::try_from(call_id)
        .map_err(|e| Error::internal("invalid call id").with_source(e))?;
    response.headers_mut().insert("x-call-id", value);
    Ok(response)
}

async fn cancel(api: AsyncApi, call_id: &str) -> ApiResult {
    if api.queue.cancel(call_id).await? {
        let record = match api.store.get(call_id).await {
            Ok(Some(record)) => Some(record),
            _ => None,
        };
        if let Some(mut record) = record {
            let now = chrono::Utc::now();
            record.status = InvocationStatus::Cancelled;
            record.finished_at = Some(now);
            record.updated_at = now;
            if let Err(err) = api.store.put(record, Durability::Durable).await {
                tracing::warn!(call_id, error = %err, "cannot record a cancellation");
            }
        }
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    match api.store.get(call_id).await? {
        Some(record) if record.status == InvocationStatus::Cancelled => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Some(record) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "call {call_id} cannot be cancelled: it is {}",
                record.status.as_str()
            ),
        )
        .into()),
        None => Err(Error::not_found(format!("no queued call {call_id}")).into()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> ApiResult {
    let mut body = serde_json::to_vec(value)
        .map_err(|e| Error::internal("cannot serialize the response").with_source(e))?;
    body.push(b'\n');
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn get_record(State(api): State<AsyncApi>, Path(call_id): Path<String>) -> ApiResult {
    match api.store.get(&call_id).await? {
        Some(record) => json(&record),
        None => Err(Error::not_found(format!("no invocation record for call {call_id}")).into()),
    }
}

async fn list(State(api): State<AsyncApi>, uri: Uri) -> ApiResult {
    let q = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, "invalid query string").with_source(e))?;
    let mut query = ListQuery::default();
    if let Some(function) = q.get("function").filter(|f| !f.is_empty()) {
        query.function = Some(FunctionName::new(function.as_str())?.as_str().to_owned());
        let namespace = match q.get("namespace").filter(|ns| !ns.is_empty()) {
            Some(ns) => Namespace::new(ns.as_str())?.as_str().to_owned(),
            None => api.provider.default_namespace().to_owned(),
        };
        query.namespace = Some(namespace);
    } else if let Some(ns) = q.get("namespace").filter(|ns| !ns.is_empty()) {
        query.namespace = Some(Namespace::new(ns.as_str())?.as_str().to_owned());
    }
    if let Some(status) = q.get("status").filter(|s| !s.is_empty()) {
        query.status = Some(status.parse()?);
    }
    query.limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(limit) => limit
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
            .ok_or_else(|| {
                Error::invalid(
                    "limit",
                    format!("limit must be between 1 and {MAX_LIST_LIMIT}"),
                )
            })?,
        None => 100,
    };
    let records = api.store.list(query).await?;
    json(&records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls() {
        assert!(validate_callback_url("http://127.0.0.1:8080/cb").is_ok());
        assert!(validate_callback_url("https://example.com/hook?x=1").is_ok());
        for bad in [
            "",
            "/relative",
            "ftp://host/x",
            "http://",
            "not a url",
            "127.0.0.1:80",
        ] {
            let err = validate_callback_url(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
            assert_eq!(err.field(), Some(HEADER_CALLBACK_URL));
        }
    }

    #[test]
    fn call_ids_are_uuids() {
        assert!(is_call_id(&crate::queue::new_call_id()));
        assert!(!is_call_id("echo"));
    }
}
