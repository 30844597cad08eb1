//! Body wrappers of the invoker: a request body that can be taken back when the connection failed
//! before it was sent, and a response body that keeps its replica's in-flight count and the
//! function's deadline until it ends.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::Body;
use super::balance::InflightGuard;
use crate::BoxError;

/// Where a request body waits until it is sent, shared by the attempts of one call.
#[derive(Debug)]
pub(super) struct Slot {
    body: Mutex<Option<Body>>,
    /// The body failed because it went over a length limit ([`http_body_util::Limited`]).
    over_limit: AtomicBool,
}

impl Slot {
    /// Whether the body was never polled (and can be used for a retry).
    pub(super) fn unsent(&self) -> bool {
        self.body
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Whether reading the body failed on a length limit.
    pub(super) fn over_limit(&self) -> bool {
        self.over_limit.load(Ordering::Relaxed)
    }
}

/// A request body the invoker can take back when the replica never polled it (the connection
/// failed, or an in-process replica refused the call, before a byte was sent), so that the request
/// can be retried on another replica.
pub(super) struct Reclaimable {
    slot: Arc<Slot>,
    taken: Option<Body>,
    size_hint: SizeHint,
    end_stream: bool,
}

impl Reclaimable {
    /// Wraps `body`; the returned slot holds it until the wrapper is first polled.
    pub(super) fn new(body: Body) -> (Self, Arc<Slot>) {
        let size_hint = http_body::Body::size_hint(&body);
        let end_stream = http_body::Body::is_end_stream(&body);
        let slot = Arc::new(Slot {
            body: Mutex::new(Some(body)),
            over_limit: AtomicBool::new(false),
        });
        (
            Reclaimable {
                slot: slot.clone(),
                taken: None,
                size_hint,
                end_stream,
            },
            slot,
        )
    }

    /// A new wrapper around the same (still unsent) body for a retry.
    pub(super) fn from_slot(slot: &Arc<Slot>) -> Option<Self> {
        let guard = slot.body.lock().unwrap_or_else(|e| e.into_inner());
        let body = guard.as_ref()?;
        let size_hint = http_body::Body::size_hint(body);
        let end_stream = http_body::Body::is_end_stream(body);
        drop(guard);
        Some(Reclaimable {
            slot: slot.clone(),
            taken: None,
            size_hint,
            end_stream,
        })
    }
}

impl http_body::Body for Reclaimable {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.taken.is_none() {
            match this
                .slot
                .body
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                Some(body) => this.taken = Some(body),
                None => return Poll::Ready(Some(Err("request body already consumed".into()))),
            }
        }
        let body = this.taken.as_mut().expect("body taken above");
        match ready!(Pin::new(body).poll_frame(cx)) {
            Some(Err(err)) => {
                let err: BoxError = err.into();
                if super::is_length_limit(&*err) {
                    this.slot.over_limit.store(true, Ordering::Relaxed);
                }
                Poll::Ready(Some(Err(err)))
            }
            other => Poll::Ready(other.map(|frame| frame.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.taken {
            Some(body) => body.is_end_stream(),
            None => self.end_stream,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.taken {
            Some(body) => body.size_hint(),
            None => self.size_hint,
        }
    }
}

pin_project_lite::pin_project! {
    /// A function's response body: streams the replica's body, holds the replica's in-flight slot
    /// until the body ends (or is dropped) and fails the stream when the function's deadline passes.
    pub(super) struct Upstream<B> {
        #[pin]
        inner: B,
        guard: Option<InflightGuard>,
        #[pin]
        deadline: Sleep,
        function: Arc<str>,
    }
}

impl<B> Upstream<B> {
    pub(super) fn new(
        inner: B,
        guard: InflightGuard,
        deadline: Instant,
        function: Arc<str>,
    ) -> Self {
        Upstream {
            inner,
            guard: Some(guard),
            deadline: tokio::time::sleep_until(deadline),
            function,
        }
    }
}

impl<B> http_body::Body for Upstream<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if this.guard.is_none() {
            return Poll::Ready(None);
        }
        if this.deadline.is_elapsed() {
            // Still sending at the deadline: cut the response, as when it is pending then.
            this.guard.take();
            return Poll::Ready(Some(Err(format!(
                "function {} timed out while sending its response",
                this.function
            )
            .into())));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(None) => {
                this.guard.take();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => {
                this.guard.take();
                Poll::Ready(Some(Err(err.into())))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => {
                ready!(this.deadline.poll(cx));
                this.guard.take();
                Poll::Ready(Some(Err(format!(
                    "function {} timed out while sending its response",
                    this.function
                )
                .into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.guard.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
