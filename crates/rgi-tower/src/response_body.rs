//! The response body of [`RgiService`](crate::RgiService): [`ResponseBody`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use rgi::{BoxError, DisconnectNotifier};

use crate::catch_panic::poll_catching;

pin_project_lite::pin_project! {
    /// The response body of an RGI application served by [`RgiService`](crate::RgiService).
    ///
    /// It passes the application's frames through as they are (data, then trailers), and
    /// settles the request's [`rgi::Disconnect`] signal (`HTTP-DISC`): `Completed` when the
    /// body ended, `Aborted` when it failed, panicked or yielded a frame after its trailers, and
    /// `ClientGone` when the host dropped it before its end.
    ///
    /// A panic while polling the application's body is caught and becomes an error, so the
    /// host aborts the response instead of ending it cleanly (`CORE-ERR-3`).
    pub struct ResponseBody<B> {
        notifier: Option<DisconnectNotifier>,
        ended: bool,
        trailers_sent: bool,
        // The response's content-length, and the data bytes passed on so far.
        declared: Option<u64>,
        sent: u64,
        // A failure held back for one poll, so the host flushes what it buffered first.
        deferred: Option<BoxError>,
        #[pin]
        inner: Option<B>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(notifier) = this.notifier.take() {
                let all_sent = this.declared.is_some_and(|declared| declared == *this.sent);
                if *this.ended || all_sent {
                    notifier.completed();
                } else {
                    notifier.client_gone();
                }
            }
        }
    }
}

impl<B> ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    /// The application's body. `body_expected` is false for responses that carry no body on
    /// the wire (to `HEAD`, `1xx`, `204`, `304`): those are complete once the head is out.
    pub(crate) fn new(body: B, notifier: Option<DisconnectNotifier>, body_expected: bool) -> Self {
        let ended = !body_expected || body.is_end_stream();
        Self {
            notifier,
            ended,
            trailers_sent: false,
            declared: None,
            sent: 0,
            deferred: None,
            inner: Some(body),
        }
    }

    /// The response's `content-length`: the body must carry exactly that many bytes
    /// (`HTTP-FRAME-*`), and it is complete once it did, even if the host stops polling then.
    pub(crate) fn with_declared(mut self, declared: Option<u64>) -> Self {
        self.declared = declared;
        self
    }
}

impl<B> ResponseBody<B> {
    /// An empty body for a response the host makes itself without calling the service (for
    /// example a `400` for a request head it refuses); it settles nothing.
    pub fn without_app() -> Self {
        Self::empty(None)
    }

    /// An empty body (the body of the error responses the service makes itself).
    pub(crate) fn empty(notifier: Option<DisconnectNotifier>) -> Self {
        Self {
            notifier,
            ended: true,
            trailers_sent: false,
            declared: None,
            sent: 0,
            deferred: None,
            inner: None,
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("ended", &self.ended)
            .field("empty", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

/// The application's response body did not carry the bytes its `content-length` declared.
#[derive(Debug, thiserror::Error)]
#[error("the response body does not match its content-length of {declared} bytes")]
pub struct LengthMismatch {
    /// The declared length.
    pub declared: u64,
}

/// The application's response body yielded a frame after its trailers (`HTTP-TRAIL-1`,
/// `HTTP-TRAIL-3`): the response is aborted.
#[derive(Debug, thiserror::Error)]
#[error("the response body yielded a frame after its trailers")]
pub struct FrameAfterTrailers;

impl<B> http_body::Body for ResponseBody<B>
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
        let mut this = self.project();
        if let Some(failure) = this.deferred.take() {
            return Poll::Ready(Some(Err(failure)));
        }
        let Some(mut inner) = this.inner.as_mut().as_pin_mut() else {
            settle_completed(this.notifier);
            return Poll::Ready(None);
        };
        let failure: BoxError = match poll_catching(|| inner.as_mut().poll_frame(cx)) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Some(Ok(frame)))) => {
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                if *this.trailers_sent {
                    Box::new(FrameAfterTrailers)
                } else if let Some(declared) = this
                    .declared
                    .filter(|declared| *this.sent + len > *declared)
                {
                    Box::new(LengthMismatch { declared })
                } else {
                    *this.sent += len;
                    let frame = match frame.into_trailers() {
                        Ok(mut trailers) => {
                            *this.trailers_sent = true;
                            // HTTP-TRAIL-7, HTTP-TRAIL-8: fields that have no place in
                            // trailers are not sent.
                            for name in &rgi::fields::FORBIDDEN_IN_TRAILERS {
                                while trailers.remove(name).is_some() {}
                            }
                            Frame::trailers(trailers)
                        }
                        Err(frame) => frame,
                    };
                    if inner.is_end_stream() {
                        *this.ended = true;
                        settle_completed(this.notifier);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
            }
            Poll::Ready(Ok(None)) => match this.declared {
                Some(declared) if *this.sent < *declared => Box::new(LengthMismatch {
                    declared: *declared,
                }),
                _ => {
                    *this.ended = true;
                    settle_completed(this.notifier);
                    this.inner.set(None);
                    return Poll::Ready(None);
                }
            },
            Poll::Ready(Ok(Some(Err(error)))) => error.into(),
            Poll::Ready(Err(panicked)) => Box::new(panicked),
        };
        // SRV-LOG-1, SRV-LOG-2, SRV-LOG-4: a body that failed because the request body did (an
        // echo whose client left, stalled or broke the framing) is the client's doing.
        let cause = rgi::BodyError::find(failure.as_ref()).filter(|cause| {
            cause.status_code().is_some() || matches!(cause, rgi::BodyError::Disconnected)
        });
        match cause {
            Some(cause) => tracing::debug!(
                error = %failure,
                "the request body failed during the response ({cause}): aborting the response"
            ),
            None => tracing::error!(
                error = %failure,
                "RGI application failed after the response head: aborting the response"
            ),
        }
        this.inner.set(None);
        if let Some(notifier) = this.notifier.take() {
            if matches!(cause, Some(rgi::BodyError::Disconnected)) {
                notifier.client_gone();
            } else {
                notifier.aborted();
            }
        }
        // hyper may hold the head and earlier chunks in its write buffer, and closes without
        // flushing them when the body fails: one `Pending` first lets it flush (`HTTP-RESP-1`).
        *this.deferred = Some(failure);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.deferred.is_none()
            && self
                .inner
                .as_ref()
                .is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(declared) = self.declared.filter(|_| self.inner.is_some()) {
            // The head's content-length is what the host frames by.
            return SizeHint::with_exact(declared.saturating_sub(self.sent));
        }
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |inner| inner.size_hint())
    }
}

fn settle_completed(notifier: &mut Option<DisconnectNotifier>) {
    if let Some(notifier) = notifier.take() {
        notifier.completed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::{BodyError, Disconnect, Outcome};

    /// A body that fails at once with `error`.
    struct Failing(Option<BoxError>);

    impl http_body::Body for Failing {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.take().map(Err))
        }
    }

    /// The outcome of an exchange whose response body fails with `error`.
    async fn outcome_of(error: BoxError) -> Option<Outcome> {
        let (signal, notifier) = Disconnect::pair();
        let body = ResponseBody::new(Failing(Some(error)), Some(notifier), true);
        let result = http_body_util::BodyExt::collect(body).await;
        assert!(result.is_err(), "a failing body never ends cleanly");
        signal.outcome()
    }

    /// HTTP-DISC-4, SRV-LOG-2: a response body that fails because the request body reported
    /// the client gone (an echo) settles `ClientGone`; any other failure, `Aborted`.
    #[tokio::test]
    async fn a_departed_client_is_not_an_application_failure() {
        assert_eq!(
            outcome_of(Box::new(BodyError::Disconnected)).await,
            Some(Outcome::ClientGone)
        );
        assert_eq!(
            outcome_of(Box::new(BodyError::TimedOut)).await,
            Some(Outcome::Aborted)
        );
        assert_eq!(
            outcome_of("the application failed".into()).await,
            Some(Outcome::Aborted)
        );
    }
}
