//! The request bodies the test client sends: bytes, chunks with pauses, streams, trailers and
//! simulated disconnects.

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use rgi::{BodyError, BoxError, Outcome};

use crate::exchange::Exchange;

pub(crate) type BoxStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Where the bytes of a request body come from.
pub(crate) enum Source {
    Chunks(std::collections::VecDeque<Bytes>),
    Stream(BoxStream),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Chunks(chunks) => f.debug_tuple("Chunks").field(&chunks.len()).finish(),
            Source::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// The client side of a request body, as a server would deliver it.
pub(crate) struct RequestBody {
    pub(crate) source: Source,
    pub(crate) trailers: Option<HeaderMap>,
    pub(crate) delay: Option<Duration>,
    pub(crate) sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Yield `Disconnected` once this many bytes were delivered.
    pub(crate) disconnect_after: Option<u64>,
    pub(crate) exact_len: Option<u64>,
    pub(crate) delivered: u64,
    pub(crate) first: bool,
    pub(crate) done: bool,
    pub(crate) exchange: Arc<Exchange>,
}

impl RequestBody {
    fn disconnect(&mut self) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.done = true;
        self.exchange.settle(Outcome::ClientGone);
        Poll::Ready(Some(Err(BodyError::Disconnected)))
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.disconnect_after == Some(this.delivered) {
            return this.disconnect();
        }
        // Pause between chunks (never before the first).
        if let (Some(delay), false) = (this.delay, this.first) {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        let next = match &mut this.source {
            Source::Chunks(chunks) => Poll::Ready(chunks.pop_front().map(Ok)),
            Source::Stream(stream) => stream.as_mut().poll_next(cx),
        };
        match next {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(mut data))) => {
                this.first = false;
                if let Some(limit) = this.disconnect_after {
                    let room = limit.saturating_sub(this.delivered);
                    if data.len() as u64 > room {
                        data.truncate(usize::try_from(room).unwrap_or(usize::MAX));
                    }
                }
                this.delivered += data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(error))) => {
                this.done = true;
                Poll::Ready(Some(Err(BodyError::Other(error))))
            }
            Poll::Ready(None) => {
                if this.disconnect_after.is_some() {
                    return this.disconnect();
                }
                this.done = true;
                Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(len) => SizeHint::with_exact(len.saturating_sub(self.delivered)),
            None => SizeHint::default(),
        }
    }
}
