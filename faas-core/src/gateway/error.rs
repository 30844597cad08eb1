//! The one place where a [`faas_core::Error`](crate::Error) becomes an HTTP response.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::Error;

/// Header marking a response produced by the gateway itself, not by a function (as OpenFaaS).
pub const X_OPENFAAS_INTERNAL: HeaderName = HeaderName::from_static("x-openfaas-internal");

/// The response for `err`: status from [`ErrorKind::status`](crate::ErrorKind::status), JSON body
/// `{"error": "...", "field": "..."}`, and `X-OpenFaaS-Internal: gateway`.
///
/// ```
/// use faas_core::Error;
/// use faas_core::gateway::error_response;
///
/// let response: http::Response<faas_core::invoke::Body> =
///     error_response(&Error::invalid("service", "function name is required"));
/// assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
/// assert_eq!(response.headers()["x-openfaas-internal"], "gateway");
/// ```
pub fn error_response<B: From<Bytes>>(err: &Error) -> Response<B> {
    let status = err.status();
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), error = %err.to_json()["error"], "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), error = %err.to_json()["error"], "request rejected");
    }
    let mut body = serde_json::to_vec(&err.to_json()).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    json_response(status, Bytes::from(body), err)
}

/// 405 for a known path with a method it does not serve, in the same JSON shape.
pub(crate) fn method_not_allowed<B: From<Bytes>>(message: &str) -> Response<B> {
    let mut body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
    body.push(b'\n');
    let err = Error::new(crate::ErrorKind::InvalidInput, message);
    json_response(StatusCode::METHOD_NOT_ALLOWED, Bytes::from(body), &err)
}

fn json_response<B: From<Bytes>>(status: StatusCode, body: Bytes, err: &Error) -> Response<B> {
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(X_OPENFAAS_INTERNAL, HeaderValue::from_static("gateway"));
    if err.kind() == crate::ErrorKind::Unauthorized {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Restricted\""),
        );
    }
    response
}

/// A [`faas_core::Error`](crate::Error) as the error type of the gateway's axum handlers.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError(err)
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        error_response(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn unauthorized_asks_for_basic_auth() {
        let response: Response<axum::body::Body> =
            error_response(&Error::new(ErrorKind::Unauthorized, "credentials required"));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"Restricted\""
        );
        assert_eq!(response.headers()[X_OPENFAAS_INTERNAL], "gateway");
    }
}
