//! Request and response bodies of the serving layer.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant as StdInstant;

use bytes::Bytes;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::{BoxError, Shared};

/// Why reading a request body failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestBodyError {
    /// The body is longer than the configured `max_body_bytes` (answer 413).
    #[error("request body over the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The client did not send the whole body within `read_timeout` (answer 408).
    #[error("request body not received within read_timeout")]
    TimedOut,
    /// The connection failed while the body was read.
    #[error("error reading request body")]
    Transport(#[source] hyper::Error),
    /// The body of an in-process call (see [`Server::in_process`](super::Server::in_process))
    /// failed while it was read, for example because it went over the gateway's limit.
    #[error("error reading request body")]
    Stream(#[source] BoxError),
}

impl RequestBodyError {
    /// The status a server answers with when it gives up on the body because of this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            RequestBodyError::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            RequestBodyError::TimedOut => http::StatusCode::REQUEST_TIMEOUT,
            RequestBodyError::Transport(_) => http::StatusCode::BAD_REQUEST,
            RequestBodyError::Stream(e) if is_length_limit(&**e) => {
                http::StatusCode::PAYLOAD_TOO_LARGE
            }
            RequestBodyError::Stream(_) => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether a body length limit ([`http_body_util::Limited`]) caused `err`.
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

enum Source {
    Incoming(Incoming),
    Boxed(faas_core::invoke::Body),
    Full(Option<Bytes>),
}

/// The body of a request handed to a served service.
///
/// It streams the client's body and enforces the server's limits while it is read: more than
/// `max_body_bytes` fails with [`RequestBodyError::TooLarge`], a body not complete within
/// `read_timeout` of the request's start fails with [`RequestBodyError::TimedOut`]. It can also be
/// built from bytes to call a service without a socket (tests, `tower::ServiceExt::oneshot`).
pub struct RequestBody {
    source: Source,
    limit: Option<u64>,
    received: u64,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("streaming", &!matches!(self.source, Source::Full(_)))
            .field("limit", &self.limit)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    pub(crate) fn incoming(body: Incoming, limit: Option<u64>, deadline: Option<Instant>) -> Self {
        RequestBody {
            source: Source::Incoming(body),
            limit,
            received: 0,
            deadline,
            sleep: None,
        }
    }

    pub(crate) fn boxed(
        body: faas_core::invoke::Body,
        limit: Option<u64>,
        deadline: Option<Instant>,
    ) -> Self {
        RequestBody {
            source: Source::Boxed(body),
            limit,
            received: 0,
            deadline,
            sleep: None,
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        RequestBody {
            source: Source::Full(None),
            limit: None,
            received: 0,
            deadline: None,
            sleep: None,
        }
    }

    /// The number of body bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.received
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        RequestBody::empty()
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> Self {
        let data = if bytes.is_empty() { None } else { Some(bytes) };
        RequestBody {
            source: Source::Full(data),
            limit: None,
            received: 0,
            deadline: None,
            sleep: None,
        }
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> Self {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Full(data) => return Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Source::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(RequestBodyError::Transport),
            Source::Boxed(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| RequestBodyError::Stream(e.into())),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if let Some(limit) = this.limit
                        && this.received > limit
                    {
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some(deadline) = this.deadline else {
                    return Poll::Pending;
                };
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(RequestBodyError::TimedOut))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Incoming(body) => body.is_end_stream(),
            Source::Boxed(body) => body.is_end_stream(),
            Source::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Incoming(body) => body.size_hint(),
            Source::Boxed(body) => body.size_hint(),
            Source::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}

/// Accounts one request: leaves `in_flight` and records metrics when the response is done.
pub(crate) struct RequestGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) method: Method,
    pub(crate) code: u16,
    pub(crate) start: StdInstant,
    pub(crate) in_flight: bool,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.in_flight {
            self.shared.metrics.leave();
        }
        self.shared
            .metrics
            .observe(&self.method, self.code, self.start.elapsed());
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        Service { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

pin_project! {
    /// The body the server writes: the service's body, or one of the server's own answers.
    pub(crate) struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
        guard: Option<RequestGuard>,
        deadline: Option<StdInstant>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn full(data: Bytes, guard: Option<RequestGuard>) -> Self {
        let data = if data.is_empty() { None } else { Some(data) };
        ResponseBody {
            inner: Inner::Full { data },
            guard,
            deadline: None,
        }
    }

    pub(crate) fn service(
        body: B,
        guard: Option<RequestGuard>,
        deadline: Option<StdInstant>,
    ) -> Self {
        ResponseBody {
            inner: Inner::Service { body },
            guard,
            deadline,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = match this.inner.project() {
            InnerProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            InnerProj::Service { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(deadline) = this.deadline
                        && StdInstant::now() > *deadline
                    {
                        Poll::Ready(Some(Err(BoxError::from(
                            "response not written within write_timeout",
                        ))))
                    } else {
                        Poll::Ready(Some(Ok(frame)))
                    }
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        };
        if let Poll::Ready(None) | Poll::Ready(Some(Err(_))) = polled {
            // Done: account the request now rather than when hyper drops the body.
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Service { body } => body.is_end_stream(),
            Inner::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Service { body } => body.size_hint(),
            Inner::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
