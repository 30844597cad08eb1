//! Request body limits: one for function invocations (`/function/`, `/async-function/`), one for
//! the API (`/system/*`). A declared `Content-Length` over the limit is refused at once with 413; a
//! streamed body fails when it goes over, and the gateway answers 413 when it still can.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{Either, Ready, ready};
use http::{Request, Response, header};
use http_body_util::Limited;
use tower::{Layer, Service};

use super::error::error_response;
use crate::{Error, ErrorKind};

/// Default limit of an invocation's request body: 64 MiB.
pub const DEFAULT_FUNCTION_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Default limit of an API request body (`/system/*`): 4 MiB.
pub const DEFAULT_SYSTEM_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The limits [`BodyLimit`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimits {
    /// Bytes an invocation's request body may hold.
    pub function: usize,
    /// Bytes an API request body may hold.
    pub system: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            function: DEFAULT_FUNCTION_BODY_LIMIT,
            system: DEFAULT_SYSTEM_BODY_LIMIT,
        }
    }
}

impl BodyLimits {
    /// The limit of a request for `path`.
    pub fn for_path(&self, path: &str) -> usize {
        if path.starts_with("/function/") || path.starts_with("/async-function/") {
            self.function
        } else {
            self.system
        }
    }
}

/// A [`Layer`] applying [`BodyLimit`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BodyLimitLayer {
    limits: BodyLimits,
}

impl BodyLimitLayer {
    /// Applies `limits`.
    pub fn new(limits: BodyLimits) -> Self {
        BodyLimitLayer { limits }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            inner,
            limits: self.limits,
        }
    }
}

/// Wraps request bodies in [`Limited`] and refuses a declared `Content-Length` over the limit.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit<S> {
    inner: S,
    limits: BodyLimits,
}

impl<S, B, ResBody> Service<Request<B>> for BodyLimit<S>
where
    S: Service<Request<Limited<B>>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ResBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let limit = self.limits.for_path(request.uri().path());
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            let err = Error::new(
                ErrorKind::PayloadTooLarge,
                format!("request body is over the limit of {limit} bytes"),
            );
            return Either::Left(ready(Ok(error_response(&err))));
        }
        Either::Right(
            self.inner
                .call(request.map(|body| Limited::new(body, limit))),
        )
    }
}
