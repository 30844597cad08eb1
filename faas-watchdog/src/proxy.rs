//! `http` mode: a pooled keep-alive reverse proxy to the long-running function process.

use std::process::ExitStatus;
use std::time::Duration;

use faas_core::model::parse_duration;
use http::header::{CONNECTION, HeaderMap, HeaderName, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::body::WatchdogBody;
use crate::config::Config;
use crate::server::{RequestBody, internal_response};

/// The state of the upstream process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpState {
    /// Started, not yet accepting connections.
    Starting,
    /// Accepting connections.
    Ready,
    /// Exited.
    Exited(ExitStatus),
}

/// `X-Timeout`: a caller's limit on one request, honoured below `exec_timeout`.
const X_TIMEOUT: HeaderName = HeaderName::from_static("x-timeout");

const HOP_BY_HOP: [HeaderName; 6] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// The proxy to the function process.
pub(crate) struct Upstream {
    client: Client<HttpConnector, RequestBody>,
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    state: watch::Receiver<UpState>,
    exec_timeout: Option<Duration>,
    hold_limit: Duration,
    buffer: bool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub(crate) fn new(config: &Config, url: &Uri, state: watch::Receiver<UpState>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let base_path = url.path().trim_end_matches('/').to_owned();
        Upstream {
            client,
            scheme: url.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: url
                .authority()
                .cloned()
                .unwrap_or_else(|| Authority::from_static("127.0.0.1")),
            base_path,
            state,
            exec_timeout: config.exec_timeout,
            hold_limit: config
                .exec_timeout
                .unwrap_or(config.write_timeout)
                .min(config.write_timeout),
            buffer: config.buffer_http,
        }
    }

    /// Proxies one request.
    pub(crate) async fn handle(&self, req: Request<RequestBody>) -> Response<WatchdogBody> {
        let start = Instant::now();
        if *self.state.borrow() != UpState::Ready
            && let Some(resp) = self.hold(start).await
        {
            return resp;
        }

        let (mut parts, body) = req.into_parts();
        let mut limit = self.exec_timeout;
        if let Some(t) = parts
            .headers
            .get(&X_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_duration(v).ok())
            && !t.is_zero()
        {
            limit = Some(limit.map_or(t, |l| l.min(t)));
        }

        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = if self.base_path.is_empty() {
            Uri::builder()
                .scheme(self.scheme.clone())
                .authority(self.authority.clone())
                .path_and_query(pq)
                .build()
        } else {
            Uri::builder()
                .scheme(self.scheme.clone())
                .authority(self.authority.clone())
                .path_and_query(format!("{}{}", self.base_path, pq))
                .build()
        };
        parts.uri = match uri {
            Ok(uri) => uri,
            Err(e) => {
                return internal_response(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid request uri: {e}"),
                );
            }
        };
        strip_hop_by_hop(&mut parts.headers);

        let body = if self.buffer {
            match body.collect().await {
                Ok(collected) => RequestBody::from(collected.to_bytes()),
                Err(e) => return internal_response(e.status(), &e.to_string()),
            }
        } else {
            body
        };
        let req = Request::from_parts(parts, body);

        let sent = self.client.request(req);
        let result = match limit {
            Some(limit) => match tokio::time::timeout_at(start + limit, sent).await {
                Ok(r) => r,
                Err(_) => {
                    return internal_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        &format!("function did not answer within {}s", limit.as_secs_f64()),
                    );
                }
            },
            None => sent.await,
        };
        match result {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, WatchdogBody::Upstream(body))
            }
            Err(e) => {
                let reason = match std::error::Error::source(&e) {
                    Some(source) if e.is_connect() => format!("function unreachable: {source}"),
                    Some(source) => format!("function request failed: {source}"),
                    None => format!("function request failed: {e}"),
                };
                tracing::warn!("{reason}");
                internal_response(StatusCode::BAD_GATEWAY, &reason)
            }
        }
    }

    /// Holds a request while the function boots; `Some` is the answer when it cannot be served.
    async fn hold(&self, start: Instant) -> Option<Response<WatchdogBody>> {
        let mut state = self.state.clone();
        let waited = tokio::time::timeout_at(
            start + self.hold_limit,
            state.wait_for(|s| *s != UpState::Starting),
        )
        .await;
        match waited {
            Ok(Ok(s)) if *s == UpState::Ready => None,
            Ok(_) => Some(internal_response(
                StatusCode::BAD_GATEWAY,
                "function process exited",
            )),
            Err(_) => Some(internal_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "function process did not start accepting connections in time",
            )),
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(listed) = headers
        .get(CONNECTION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        for name in listed.split(',') {
            if let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) {
                headers.remove(name);
            }
        }
    }
    for name in &HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert(TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-call-id", "id".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-call-id"));
    }
}
