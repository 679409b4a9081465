//! [`StallTimer`]: the clock behind the "no progress for this long" limits — the request body
//! read timeout (`HTTP-BODY-15`), the minimum request body rate (`SRV-LIMIT-20`) and the write
//! timeout (`SRV-LIMIT-16`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Measures how long an operation has been pending without progress. Only time spent pending
/// counts: each stall starts a fresh wait. The timer is allocated at the first stall, so an
/// operation that never waits costs no allocation and no clock read.
#[derive(Debug)]
pub(crate) struct StallTimer {
    timeout: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` runs for the current stall.
    stalled: bool,
}

impl StallTimer {
    /// A timer that fires after `timeout` of one stall (`None`: never).
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            sleep: None,
            stalled: false,
        }
    }

    /// The operation made progress: the next stall starts a fresh wait.
    pub(crate) fn progressed(&mut self) {
        self.stalled = false;
    }

    /// The operation is pending: whether this stall has lasted the whole timeout. When it has
    /// not, `cx` is woken once it has.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.expired_within(cx, None)
    }

    /// As [`StallTimer::expired`], with this stall also limited to `cap` when one is given. The
    /// cap is read when a stall begins; later calls of the same stall do not change it.
    pub(crate) fn expired_within(&mut self, cx: &mut Context<'_>, cap: Option<Duration>) -> bool {
        let timeout = match (self.timeout, cap) {
            (Some(timeout), Some(cap)) => Some(timeout.min(cap)),
            (timeout, cap) => timeout.or(cap),
        };
        let Some(timeout) = timeout else {
            return false;
        };
        let sleep = match &mut self.sleep {
            Some(sleep) if self.stalled => sleep,
            Some(sleep) => {
                sleep.as_mut().reset(Instant::now() + timeout);
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        self.stalled = true;
        sleep.as_mut().poll(cx).is_ready()
    }

    /// Follows a write's outcome: progress restarts the timer, and a pending write fails with
    /// `TimedOut` (saying `why`) once its stall has lasted the timeout.
    pub(crate) fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<std::io::Result<T>>,
        why: &'static str,
    ) -> Poll<std::io::Result<T>> {
        if result.is_ready() {
            self.progressed();
            return result;
        }
        if self.expired(cx) {
            return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)));
        }
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// A transport whose writes fail with `TimedOut` once one has made no progress for the
    /// timeout (`SRV-LIMIT-16`): an upgraded HTTP/2 stream (a WebSocket or a raw protocol over
    /// extended CONNECT) waits for flow-control window in its writes, where the connection's
    /// framing guard cannot see it. Reads pass through.
    pub(crate) struct WriteTimeout<Io> {
        #[pin]
        io: Io,
        stall: StallTimer,
    }
}

impl<Io> WriteTimeout<Io> {
    /// `io`, with writes bounded by `timeout` (`None`: unbounded).
    pub(crate) fn new(io: Io, timeout: Option<Duration>) -> Self {
        Self {
            io,
            stall: StallTimer::new(timeout),
        }
    }
}

/// Why a write through [`WriteTimeout`] failed.
const NO_WINDOW: &str = "the client granted no flow-control window within the write timeout";

impl<Io: AsyncRead> AsyncRead for WriteTimeout<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite> AsyncWrite for WriteTimeout<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        this.stall.watch_write(cx, result, NO_WINDOW)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write_vectored(cx, bufs);
        this.stall.watch_write(cx, result, NO_WINDOW)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let result = this.io.poll_flush(cx);
        this.stall.watch_write(cx, result, NO_WINDOW)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let result = this.io.poll_shutdown(cx);
        this.stall.watch_write(cx, result, NO_WINDOW)
    }
}
