//! A connection wrapper that bounds how long a write may stall on a client that does not read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pin_project! {
    /// Fails a write with `TimedOut` when the peer has not accepted a byte for `timeout`.
    ///
    /// The timer is armed only when a write would block, so the fast path costs nothing; it is
    /// allocated once per connection (boxed so the connection stays `Unpin`, as hyper needs).
    #[derive(Debug)]
    pub(crate) struct StallTimeoutIo<T> {
        #[pin]
        inner: T,
        timeout: Duration,
        armed: bool,
        sleep: Pin<Box<Sleep>>,
    }
}

impl<T> StallTimeoutIo<T> {
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        StallTimeoutIo {
            inner,
            timeout,
            armed: false,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
        }
    }
}

impl<T: AsyncWrite> StallTimeoutIo<T> {
    fn on_pending(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Error> {
        let this = self.project();
        if !*this.armed {
            *this.armed = true;
            this.sleep.as_mut().reset(Instant::now() + *this.timeout);
        }
        ready!(this.sleep.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading (write_timeout)",
        ))
    }

    fn wrap<R>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        f: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match f(self.as_mut().project().inner, cx) {
            Poll::Ready(r) => {
                *self.project().armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.on_pending(cx).map(Err),
        }
    }
}

impl<T: AsyncRead> AsyncRead for StallTimeoutIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for StallTimeoutIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.wrap(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.wrap(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wrap(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wrap(cx, |io, cx| io.poll_shutdown(cx))
    }
}
