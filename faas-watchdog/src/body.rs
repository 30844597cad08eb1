//! The response bodies of the watchdog's modes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::AsyncRead;
use tokio::time::{Instant, Sleep};
use tokio_util::io::poll_read_buf;

use crate::fork::Feeder;
use crate::process::ProcessGuard;
use crate::server::BoxError;

/// The largest read of a [`ReaderBody`].
const READ_CHUNK: usize = 64 * 1024;
/// The first read of a [`ReaderBody`]: most function answers are small, and a 64 KiB buffer per
/// request costs an allocation that glibc consolidates on free. Reads grow to [`READ_CHUNK`] as
/// long as they fill the buffer.
const FIRST_READ: usize = 8 * 1024;

/// A response body of the watchdog: bytes, a proxied upstream body, a process's stdout or a file.
pub(crate) enum WatchdogBody {
    Full(Option<Bytes>),
    Upstream(Incoming),
    Process(Box<ProcessBody>),
    File(ReaderBody<tokio::fs::File>),
}

impl std::fmt::Debug for WatchdogBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            WatchdogBody::Full(_) => "Full",
            WatchdogBody::Upstream(_) => "Upstream",
            WatchdogBody::Process(_) => "Process",
            WatchdogBody::File(_) => "File",
        };
        f.debug_tuple("WatchdogBody").field(&kind).finish()
    }
}

impl From<Bytes> for WatchdogBody {
    fn from(b: Bytes) -> Self {
        WatchdogBody::Full(if b.is_empty() { None } else { Some(b) })
    }
}

impl http_body::Body for WatchdogBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut *self {
            WatchdogBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            WatchdogBody::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            WatchdogBody::Process(body) => body.poll_chunk(cx),
            WatchdogBody::File(body) => body.poll_chunk(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            WatchdogBody::Full(data) => data.is_none(),
            WatchdogBody::Upstream(body) => body.is_end_stream(),
            WatchdogBody::Process(_) | WatchdogBody::File(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            WatchdogBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            WatchdogBody::Upstream(body) => body.size_hint(),
            WatchdogBody::File(body) => body.size_hint,
            WatchdogBody::Process(_) => SizeHint::default(),
        }
    }
}

/// Streams an `AsyncRead` in chunks of up to 64 KiB.
pub(crate) struct ReaderBody<R> {
    reader: R,
    buf: BytesMut,
    /// The size of the next read: doubled from [`FIRST_READ`] while reads fill it.
    chunk: usize,
    size_hint: SizeHint,
    done: bool,
}

impl<R: AsyncRead + Unpin> ReaderBody<R> {
    pub(crate) fn new(reader: R, len: Option<u64>) -> Self {
        let size_hint = len.map_or_else(SizeHint::default, SizeHint::with_exact);
        ReaderBody {
            reader,
            buf: BytesMut::new(),
            chunk: FIRST_READ,
            size_hint,
            done: false,
        }
    }

    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(self.chunk);
        }
        let room = self.buf.capacity() - self.buf.len();
        match poll_read_buf(Pin::new(&mut self.reader), cx, &mut self.buf) {
            Poll::Ready(Ok(0)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(n)) => {
                if n == room {
                    self.chunk = (self.chunk * 2).min(READ_CHUNK);
                }
                Poll::Ready(Some(Ok(Frame::data(self.buf.split().freeze()))))
            }
            Poll::Ready(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A streaming-mode response: the process's stdout as it is written, bounded by `exec_timeout`.
///
/// Dropped before the end (client gone, write timeout), it kills the process group (the guard) and
/// stops feeding stdin (the feeder). At the end of stdout the process is reaped in the background,
/// still bounded by `exec_timeout`.
pub(crate) struct ProcessBody {
    pub(crate) first: Option<Bytes>,
    pub(crate) stdout: ReaderBody<tokio::process::ChildStdout>,
    pub(crate) guard: Option<ProcessGuard>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) sleep: Option<Pin<Box<Sleep>>>,
    pub(crate) writer: Option<Feeder>,
}

impl ProcessBody {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.guard.is_none() {
            return Poll::Ready(None);
        }
        if let Some(writer) = &mut self.writer
            && let Poll::Ready(e) = writer.poll_failed(cx)
        {
            // The request body failed (too large, too slow): the input was cut, so is the output.
            if let Some(mut guard) = self.guard.take() {
                guard.kill_group();
            }
            self.writer = None;
            return Poll::Ready(Some(Err(e.into())));
        }
        if let Some(deadline) = self.deadline {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.as_mut().poll(cx).is_ready() {
                if let Some(mut guard) = self.guard.take() {
                    guard.kill_group();
                }
                tracing::warn!("function killed by exec_timeout while streaming");
                return Poll::Ready(Some(Err(BoxError::from("function exceeded exec_timeout"))));
            }
        }
        match self.stdout.poll_chunk(cx) {
            Poll::Ready(None) => {
                if let Some(guard) = self.guard.take() {
                    tokio::spawn(reap(guard, self.deadline));
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

async fn reap(mut guard: ProcessGuard, deadline: Option<Instant>) {
    let status = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, guard.wait()).await.ok(),
        None => Some(guard.wait().await),
    };
    match status {
        Some(Ok(status)) if !status.success() => {
            tracing::info!(%status, "function process exited with an error")
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => tracing::warn!(error = %e, "cannot wait for function process"),
        None => tracing::warn!(
            "function process still running at exec_timeout after closing stdout: killed"
        ),
    }
}
