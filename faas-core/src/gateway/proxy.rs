//! The `/function/{name}[.{namespace}][/{rest..}]` route: hands the call to the [`Invoker`].

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, Uri};

use super::error::error_response;
use crate::invoke::{Body, Invoker};
use crate::{BoxError, Error, ErrorKind, Result};

/// A function call parsed from a `/function/` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionTarget {
    /// The function's name.
    pub name: String,
    /// Its namespace; empty when the path names none.
    pub namespace: String,
    /// The path and query the function sees (`/` at least).
    pub path_and_query: String,
}

/// Parses `/{prefix}/{name}[.{namespace}][/{rest..}][?query]`, as OpenFaaS (`prefix` is `function`
/// or `async-function`).
///
/// # Errors
/// [`ErrorKind::NotFound`] when the path does not name a function.
pub fn parse_function_path(prefix: &str, uri: &Uri) -> Result<FunctionTarget> {
    let path = uri.path();
    let rest = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(prefix))
        .and_then(|p| p.strip_prefix('/'))
        .ok_or_else(|| Error::not_found(format!("no route for {path}")))?;
    let (target, suffix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if target.is_empty() {
        return Err(Error::not_found("no function named in the path"));
    }
    let (name, namespace) = target.split_once('.').unwrap_or((target, ""));
    let path_and_query = match uri.query() {
        Some(query) => format!("{suffix}?{query}"),
        None => suffix.to_owned(),
    };
    Ok(FunctionTarget {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        path_and_query,
    })
}

/// Appends the caller's address to `X-Forwarded-For`, as a reverse proxy does.
fn append_forwarded_for(headers: &mut http::HeaderMap, ip: IpAddr) {
    let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(previous) if !previous.trim().is_empty() => format!("{previous}, {ip}"),
        _ => ip.to_string(),
    };
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The service behind `/function/`: parses the target and calls the [`Invoker`]; errors become
/// responses ([`error_response`]).
#[derive(Clone, Debug)]
pub struct Proxy {
    invoker: Invoker,
}

impl Proxy {
    /// Proxies through `invoker`.
    pub fn new(invoker: Invoker) -> Self {
        Proxy { invoker }
    }
}

impl<B> tower::Service<Request<B>> for Proxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let invoker = self.invoker.clone();
        Box::pin(async move {
            let result = async {
                let target = parse_function_path("function", request.uri())?;
                let (mut parts, body) = request.into_parts();
                parts.uri = target.path_and_query.parse().map_err(|e| {
                    Error::new(ErrorKind::InvalidInput, "invalid function path").with_source(e)
                })?;
                if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
                    append_forwarded_for(&mut parts.headers, peer.ip());
                }
                let request = Request::from_parts(parts, Body::new(body));
                invoker
                    .invoke(&target.name, &target.namespace, request)
                    .await
            }
            .await;
            Ok(result.unwrap_or_else(|err| error_response(&err)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Result<FunctionTarget> {
        parse_function_path("function", &uri.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut headers = http::HeaderMap::new();
        append_forwarded_for(&mut headers, "10.0.0.1".parse().unwrap());
        assert_eq!(headers[X_FORWARDED_FOR], "10.0.0.1");
        append_forwarded_for(&mut headers, "127.0.0.1".parse().unwrap());
        assert_eq!(headers[X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
    }

    #[test]
    fn function_paths() {
        let t = parse("/function/echo").unwrap();
        assert_eq!(
            (
                t.name.as_str(),
                t.namespace.as_str(),
                t.path_and_query.as_str()
            ),
            ("echo", "", "/")
        );
        let t = parse("/function/echo.prod/a/b?x=1&y=2").unwrap();
        assert_eq!(
            (
                t.name.as_str(),
                t.namespace.as_str(),
                t.path_and_query.as_str()
            ),
            ("echo", "prod", "/a/b?x=1&y=2")
        );
        let t = parse("/function/echo/?q").unwrap();
        assert_eq!(t.path_and_query, "/?q");
        assert_eq!(parse("/function/").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            parse("/functions/x").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
