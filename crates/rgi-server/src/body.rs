//! The two bodies at the hyper boundary: [`RequestBody`] (hyper's incoming body as an RGI body)
//! and [`ResponseBody`] (the application's body, with the spec's framing rules enforced).

use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use rgi::{BodyError, BoxError, DisconnectNotifier, Outcome};
use tokio::time::Instant;

use crate::config::MinBodyRate;
use crate::stall::StallTimer;

use crate::service::ExchangeLog;

/// hyper's incoming body, with hyper's errors mapped to [`BodyError`] variants, and failing
/// with [`BodyError::TimedOut`] when the application waits longer than the body read timeout
/// for bytes that do not come (`HTTP-BODY-15`), or when a body of declared length comes slower
/// than the minimum rate (`SRV-LIMIT-20`).
#[derive(Debug)]
pub(crate) struct RequestBody {
    inner: Incoming,
    /// How long the application has been waiting for body bytes.
    wait: StallTimer,
    /// The minimum rate, for a body of declared length.
    floor: Option<RateFloor>,
    timed_out: bool,
}

impl RequestBody {
    pub(crate) fn new(
        inner: Incoming,
        timeout: Option<Duration>,
        min_rate: Option<MinBodyRate>,
    ) -> Self {
        // Only an upload of declared length is held to a rate: a body of unknown length may be
        // a stream whose client pauses between messages (gRPC, duplex streams).
        let floor = min_rate
            .filter(|_| http_body::Body::size_hint(&inner).exact().is_some())
            .map(RateFloor::new);
        Self {
            inner,
            wait: StallTimer::new(timeout),
            floor,
            timed_out: false,
        }
    }
}

/// `SRV-LIMIT-20`: the bytes a body has delivered against the time the application has waited
/// for them. The client owes `grace + received / rate` of waiting; once the application has
/// waited longer, the body is too slow.
#[derive(Debug)]
struct RateFloor {
    rate: MinBodyRate,
    received: u64,
    /// Time the application spent waiting in the stalls that ended.
    waited: Duration,
    /// When the current stall began.
    since: Option<Instant>,
}

impl RateFloor {
    fn new(rate: MinBodyRate) -> Self {
        Self {
            rate,
            received: 0,
            waited: Duration::ZERO,
            since: None,
        }
    }

    /// The application is waiting: how much longer it may wait, counted from the start of
    /// this stall.
    fn stalled(&mut self) -> Duration {
        self.since.get_or_insert_with(Instant::now);
        let earned_nanos = u128::from(self.received) * 1_000_000_000
            / u128::from(self.rate.bytes_per_second.get());
        let earned = Duration::from_nanos(u64::try_from(earned_nanos).unwrap_or(u64::MAX));
        self.rate
            .grace
            .saturating_add(earned)
            .saturating_sub(self.waited)
    }

    /// The stall (if any) ended, with `bytes` more delivered.
    fn progressed(&mut self, bytes: usize) {
        if let Some(since) = self.since.take() {
            self.waited += since.elapsed();
        }
        self.received = self.received.saturating_add(bytes as u64);
    }
}

/// Maps a hyper error met while reading a request body to the RGI error that says why.
pub(crate) fn body_error(error: hyper::Error) -> BodyError {
    if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        return BodyError::Disconnected;
    }
    if error.is_timeout() {
        return BodyError::TimedOut;
    }
    if error.is_parse() {
        return BodyError::Protocol(error.into());
    }
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            if h2.is_reset() || h2.is_io() || h2.is_go_away() {
                return BodyError::Disconnected;
            }
            return BodyError::Protocol(error.into());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return BodyError::Disconnected;
            }
            if matches!(io.kind(), InvalidData | InvalidInput) {
                // hyper's chunked decoder reports bad framing as invalid data or input.
                return BodyError::Protocol(error.into());
            }
        }
        source = cause.source();
    }
    BodyError::Other(error.into())
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.timed_out {
            return Poll::Ready(Some(Err(BodyError::TimedOut)));
        }
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending() {
            // Only a pending poll counts: time in which the application does not poll does not.
            let cap = this.floor.as_mut().map(|floor| floor.stalled());
            if this.wait.expired_within(cx, cap) {
                this.timed_out = true;
                tracing::debug!(
                    received = this.floor.as_ref().map(|floor| floor.received),
                    "the request body stalled past the body read timeout or came slower than the minimum rate"
                );
                return Poll::Ready(Some(Err(BodyError::TimedOut)));
            }
            return Poll::Pending;
        }
        this.wait.progressed();
        if let Some(floor) = &mut this.floor {
            let bytes = match &polled {
                Poll::Ready(Some(Ok(frame))) => frame.data_ref().map_or(0, Bytes::len),
                _ => 0,
            };
            floor.progressed(bytes);
        }
        match polled {
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(body_error(error)))),
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    // HTTP-TRAIL-9: fields that have no place in trailers are not delivered.
                    if strip_forbidden_trailers(&mut trailers) {
                        tracing::debug!("removed forbidden fields from request trailers");
                    }
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Removes the fields that must not appear in trailers (`HTTP-TRAIL-7`,
/// [`rgi::fields::FORBIDDEN_IN_TRAILERS`]); returns whether any was removed.
pub(crate) fn strip_forbidden_trailers(trailers: &mut http::HeaderMap) -> bool {
    let mut removed = false;
    for name in &rgi::fields::FORBIDDEN_IN_TRAILERS {
        removed |= trailers.remove(name).is_some();
    }
    removed
}

/// Why the server cut a response body short (logged; the client sees an abort).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AbortReason {
    /// The application's body failed.
    #[error("the response body failed: {0}")]
    Body(#[source] BoxError),
    /// The application's body panicked.
    #[error("the response body panicked: {0}")]
    Panic(String),
    /// More bytes than the declared `Content-Length`.
    #[error("the response body is longer than its Content-Length of {declared} bytes")]
    TooLong {
        /// The declared length.
        declared: u64,
    },
    /// Fewer bytes than the declared `Content-Length`.
    #[error("the response body ended after {sent} of its {declared} declared bytes")]
    TooShort {
        /// The declared length.
        declared: u64,
        /// What was sent.
        sent: u64,
    },
    /// A frame after the trailers.
    #[error("the response body sent a frame after its trailers")]
    DataAfterTrailers,
}

impl AbortReason {
    /// The request body's error behind the application's body failing, when the client caused
    /// it: the application streamed the request body into its response (as an echo does) and
    /// the client left (`Disconnected`), was too slow (`TimedOut`), sent too much
    /// (`LengthLimitExceeded`) or broke the framing (`Protocol`).
    fn client_cause(&self) -> Option<&BodyError> {
        let AbortReason::Body(error) = self else {
            return None;
        };
        BodyError::find(error.as_ref()).filter(|cause| {
            matches!(cause, BodyError::Disconnected) || cause.status_code().is_some()
        })
    }
}

/// Logs an aborted response by who caused it: an application failure at error level
/// (`SRV-LOG-1`); a client that left (`SRV-LOG-2`), or a request body that failed by the
/// client's doing (`SRV-LOG-4`: below error level, and off by default so that clients cannot
/// flood the log), at debug level.
#[cold]
fn log_abort(log: Option<&ExchangeLog>, reason: &AbortReason) {
    let error = crate::service::error_chain(reason);
    macro_rules! emit {
        ($level:ident, $message:literal) => {
            match log.map(ExchangeLog::context) {
                Some((method, path, connection)) => {
                    tracing::$level!(%method, %path, connection, %error, $message)
                }
                None => tracing::$level!(%error, $message),
            }
        };
    }
    match reason.client_cause() {
        Some(BodyError::Disconnected) => {
            emit!(
                debug,
                "the client went away during the response; aborting it"
            );
        }
        Some(_) => emit!(
            debug,
            "the request body failed during the response; aborting the response"
        ),
        None => emit!(error, "aborting the response"),
    }
}

/// The parts of a response body that few responses need, boxed together.
#[derive(Debug, Default)]
struct Rare {
    /// A body the server made (error pages).
    server_made: Option<Bytes>,
    /// The application's trailers, held back until its body ends.
    held_trailers: Option<http::HeaderMap>,
    /// An abort held back for one poll, so that hyper flushes what it buffered (the head,
    /// earlier chunks) before it sees the error and closes (`HTTP-RESP-1`).
    deferred: Option<AbortReason>,
    /// What is left of an application's data frame handed to hyper in pieces.
    rest: Bytes,
}

/// The largest piece of response data handed to hyper at once on HTTP/2: the default (and
/// smallest) frame size. hyper polls the body again only once the stream's flow-control window
/// has room beyond what it holds; in pieces, the time between polls is the time the client
/// takes for one piece, which the write timeout bounds (`SRV-LIMIT-16`, [`crate::flow`]).
const H2_PIECE: usize = 16 * 1024;

/// [`ResponseBody`]'s stored length when no `Content-Length` was declared. A declared
/// length this large cannot be sent (hyper refuses it), so it never stands for one.
const UNDECLARED: u64 = u64::MAX;

/// The declared length a stored value stands for.
fn declared(stored: u64) -> Option<u64> {
    (stored != UNDECLARED).then_some(stored)
}

pin_project_lite::pin_project! {
    /// The response body handed to hyper: the application's body (or a body the server made),
    /// with the framing rules of the spec enforced and the exchange's end reported.
    ///
    /// - no bytes at all for `HEAD`, `1xx`, `204` and `304` (`HTTP-FRAME`);
    /// - never more bytes than a declared `Content-Length`, and an abort when fewer arrive;
    /// - an error or a panic of the application's body, or data after trailers, aborts the
    ///   response (HTTP/1.1: the connection closes without the final chunk; HTTP/2: the stream
    ///   is reset) — never a clean end;
    /// - the request's [`rgi::Disconnect`] settles as completed when the body was fully handed
    ///   to hyper, aborted after an abort, and client-gone when hyper drops it before the end.
    pub(crate) struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
        // Boxed, and only when needed: the body lives in hyper's state for the whole response
        // (and in a slot of its size for each connection).
        rare: Option<Box<Rare>>,
        no_body: bool,
        // Hand data to hyper in pieces of at most `H2_PIECE` bytes (HTTP/2).
        in_pieces: bool,
        // The declared length; `UNDECLARED` when there is none (see `declared`).
        declared: u64,
        sent: u64,
        done: bool,
        // How the exchange ended when the body was cut short: `Aborted`, or `ClientGone` when
        // the request body reported the client gone (see `AbortReason::client_cause`).
        aborted: Option<Outcome>,
        ended: AtomicBool,
        notifier: Option<DisconnectNotifier>,
        log: Option<ExchangeLog>,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let complete = this.aborted.is_none()
                && (*this.done
                    || this.ended.load(Ordering::Acquire)
                    || declared(*this.declared).is_some_and(|declared| declared == *this.sent));
            let forced = this.log.as_ref().is_some_and(|log| log.is_forced());
            let outcome = if let Some(outcome) = *this.aborted {
                outcome
            } else if !complete && forced {
                Outcome::Aborted
            } else if complete {
                Outcome::Completed
            } else {
                Outcome::ClientGone
            };
            if let Some(notifier) = this.notifier.take() {
                match this.log.as_ref() {
                    // The connection keeps the signal for its next request (no allocation
                    // when the application kept no handle to this one).
                    Some(log) => log.disconnects().settle(notifier, outcome),
                    None => notifier.settle(outcome),
                }
            }
            if let Some(log) = this.log.take() {
                log.finish(*this.sent, outcome);
            }
        }
    }
}

impl<B> ResponseBody<B> {
    /// The application's body; `in_pieces` on HTTP/2.
    pub(crate) fn app(
        body: B,
        no_body: bool,
        in_pieces: bool,
        declared: Option<u64>,
        notifier: DisconnectNotifier,
        log: Option<ExchangeLog>,
    ) -> Self {
        // The head goes to hyper now: waiting for it to be sent is the client's.
        crate::flow::client_turn();
        Self {
            inner: Some(body),
            rare: None,
            no_body,
            in_pieces,
            // The service never declares `UNDECLARED` (no body can be that long).
            declared: declared.unwrap_or(UNDECLARED),
            sent: 0,
            done: false,
            aborted: None,
            ended: AtomicBool::new(false),
            notifier: Some(notifier),
            log,
        }
    }

    /// A body the server made itself (error pages, upgrades).
    pub(crate) fn server(
        bytes: Bytes,
        no_body: bool,
        notifier: Option<DisconnectNotifier>,
        log: Option<ExchangeLog>,
    ) -> Self {
        crate::flow::client_turn();
        Self {
            inner: None,
            declared: if no_body { 0 } else { bytes.len() as u64 },
            rare: (!no_body && !bytes.is_empty()).then(|| {
                Box::new(Rare {
                    server_made: Some(bytes),
                    ..Rare::default()
                })
            }),
            no_body,
            in_pieces: false,
            sent: 0,
            done: false,
            aborted: None,
            ended: AtomicBool::new(false),
            notifier,
            log,
        }
    }
}

impl<B> http_body::Body for ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = AbortReason;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AbortReason>>> {
        let mut this = self.project();
        // hyper polls: what it gave the client was sent (`SRV-LIMIT-16`, HTTP/2 flow control).
        crate::flow::app_turn();
        if let Some(reason) = this.rare.as_mut().and_then(|rare| rare.deferred.take()) {
            return Poll::Ready(Some(Err(reason)));
        }
        if *this.done || *this.no_body {
            *this.done = true;
            this.inner.set(None);
            return Poll::Ready(None);
        }
        if let Some(rare) = this.rare.as_mut().filter(|rare| !rare.rest.is_empty()) {
            let piece = take_piece(&mut rare.rest);
            *this.sent += piece.len() as u64;
            crate::flow::client_turn();
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            *this.done = true;
            let server_made = this.rare.as_mut().and_then(|rare| rare.server_made.take());
            return Poll::Ready(server_made.map(|bytes| {
                *this.sent += bytes.len() as u64;
                crate::flow::client_turn();
                Ok(Frame::data(bytes))
            }));
        };
        let mut inner = inner;

        let result = loop {
            let polled =
                std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_frame(cx)));
            match polled {
                Err(panic) => {
                    break Err(AbortReason::Panic(crate::service::panic_message(&*panic)));
                }
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(None)) => match declared(*this.declared) {
                    Some(declared) if *this.sent < declared => {
                        break Err(AbortReason::TooShort {
                            declared,
                            sent: *this.sent,
                        });
                    }
                    _ => {
                        // The end: the trailers held back (if any) are the last frame.
                        *this.done = true;
                        let mut trailers = this
                            .rare
                            .as_mut()
                            .and_then(|rare| rare.held_trailers.take());
                        if let Some(trailers) = trailers.as_mut() {
                            if strip_forbidden_trailers(trailers) {
                                tracing::warn!(
                                    "the application put forbidden fields in its response \
                                     trailers; the server removed them (HTTP-TRAIL-8)"
                                );
                            }
                        }
                        this.inner.set(None);
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                },
                Ok(Poll::Ready(Some(Err(error)))) => break Err(AbortReason::Body(error.into())),
                Ok(Poll::Ready(Some(Ok(frame)))) => {
                    if this
                        .rare
                        .as_ref()
                        .is_some_and(|rare| rare.held_trailers.is_some())
                    {
                        break Err(AbortReason::DataAfterTrailers);
                    }
                    match frame.into_data() {
                        Ok(data) => {
                            let len = data.len() as u64;
                            if let Some(declared) = declared(*this.declared)
                                .filter(|declared| *this.sent + len > *declared)
                            {
                                break Err(AbortReason::TooLong { declared });
                            }
                            let data = if *this.in_pieces && data.len() > H2_PIECE {
                                let mut rest = data;
                                let piece = take_piece(&mut rest);
                                this.rare.get_or_insert_default().rest = rest;
                                piece
                            } else {
                                data
                            };
                            *this.sent += data.len() as u64;
                            break Ok(Frame::data(data));
                        }
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                // Held back until the body ends: a frame after the trailers
                                // must abort the response, not follow them.
                                this.rare.get_or_insert_default().held_trailers = Some(trailers);
                            }
                        }
                    }
                }
            }
        };
        match result {
            Ok(frame) => {
                crate::flow::client_turn();
                Poll::Ready(Some(Ok(frame)))
            }
            Err(reason) => {
                log_abort(this.log.as_ref(), &reason);
                // A body that failed because the client left mid-request (`HTTP-DISC-4`).
                let client_left = matches!(reason.client_cause(), Some(BodyError::Disconnected));
                *this.aborted = Some(if client_left {
                    Outcome::ClientGone
                } else {
                    Outcome::Aborted
                });
                *this.done = true;
                this.inner.set(None);
                // hyper may hold the head and earlier chunks in its write buffer, and it closes
                // the connection without flushing when the body fails: one `Pending` first
                // lets it flush them, so the client sees the one head it is owed and the data
                // sent so far before the abort.
                this.rare.get_or_insert_default().deferred = Some(reason);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let rare = self.rare.as_deref();
        if rare.is_some_and(|rare| rare.deferred.is_some()) {
            return false;
        }
        if rare.is_some_and(|rare| !rare.rest.is_empty()) {
            return false;
        }
        let end = self.done
            || self.no_body
            || match &self.inner {
                Some(inner) => {
                    rare.is_none_or(|rare| rare.held_trailers.is_none())
                        && inner.is_end_stream()
                        && declared(self.declared).is_none_or(|d| d == self.sent)
                }
                None => rare.is_none_or(|rare| rare.server_made.is_none()),
            };

        if end && self.aborted.is_none() {
            self.ended.store(true, Ordering::Release);
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        let rare = self.rare.as_deref();
        if rare.is_some_and(|rare| rare.deferred.is_some()) {
            return SizeHint::new();
        }
        if self.no_body || self.done {
            return SizeHint::with_exact(0);
        }
        if let Some(declared) = declared(self.declared) {
            return SizeHint::with_exact(declared.saturating_sub(self.sent));
        }
        let rest = rare.map_or(0, |rare| rare.rest.len() as u64);
        if rest > 0 {
            let inner = self.inner.as_ref().map(|inner| inner.size_hint());
            let mut hint = SizeHint::new();
            hint.set_lower(rest + inner.as_ref().map_or(0, SizeHint::lower));
            if let Some(upper) = inner.as_ref().map_or(Some(0), SizeHint::upper) {
                hint.set_upper(rest.saturating_add(upper));
            }
            return hint;
        }
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(
                rare.and_then(|rare| rare.server_made.as_ref())
                    .map_or(0, |bytes| bytes.len() as u64),
            ),
        }
    }
}

/// The first piece of `rest`, at most [`H2_PIECE`] bytes (no copy).
fn take_piece(rest: &mut Bytes) -> Bytes {
    rest.split_to(rest.len().min(H2_PIECE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::num::NonZeroU32;

    fn floor(bytes_per_second: u32, grace_secs: u64) -> RateFloor {
        RateFloor::new(MinBodyRate::new(
            NonZeroU32::new(bytes_per_second).unwrap(),
            Duration::from_secs(grace_secs),
        ))
    }

    /// SRV-LIMIT-20: the application may wait the grace plus what the bytes so far earn, less
    /// what it already waited.
    #[test]
    fn allowance_is_grace_plus_earned_less_waited() {
        let mut floor = floor(100, 5);
        assert_eq!(floor.stalled(), Duration::from_secs(5));
        // (The stall's real duration is left out, to keep the figures exact.)
        floor.since = None;
        floor.progressed(250);
        assert_eq!(floor.stalled(), Duration::from_millis(7_500));
        floor.since = None;
        floor.waited = Duration::from_secs(7);
        assert_eq!(floor.stalled(), Duration::from_millis(500));
        floor.since = None;
        floor.waited = Duration::from_secs(60);
        assert_eq!(floor.stalled(), Duration::ZERO, "a slow body owes time");
    }

    /// Polls `body` to its end: the data frames' lengths and bytes, and whether the body then
    /// says it ended.
    fn drain<B>(body: ResponseBody<B>) -> (Vec<usize>, Vec<u8>)
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let mut body = std::pin::pin!(body);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let (mut lengths, mut bytes) = (Vec::new(), Vec::new());
        let mut hints = Vec::new();
        loop {
            hints.push(body.size_hint().lower());
            match body.as_mut().poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let data = frame.into_data().expect("data only");
                    lengths.push(data.len());
                    bytes.extend_from_slice(&data);
                }
                Poll::Ready(None) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(body.is_end_stream());
        let total = bytes.len() as u64;
        assert_eq!(hints[0], total, "the first hint covers the whole body");
        (lengths, bytes)
    }

    /// SRV-LIMIT-16: on HTTP/2 the application's data goes to hyper in pieces of at most
    /// 16 KiB, without a byte lost or reordered, with or without a declared length.
    #[test]
    fn h2_data_goes_out_in_pieces() {
        let payload: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        for declared in [Some(40_000), None] {
            let (_disconnect, notifier) = rgi::Disconnect::pair();
            let inner = http_body_util::Full::new(Bytes::from(payload.clone()));
            let body = ResponseBody::app(inner, false, true, declared, notifier, None);
            let (lengths, bytes) = drain(body);
            assert_eq!(lengths, [16_384, 16_384, 7_232], "declared {declared:?}");
            assert_eq!(bytes, payload);
        }
        // HTTP/1: as the application made it.
        let (_disconnect, notifier) = rgi::Disconnect::pair();
        let inner = http_body_util::Full::new(Bytes::from(payload.clone()));
        let body = ResponseBody::app(inner, false, false, Some(40_000), notifier, None);
        let (lengths, bytes) = drain(body);
        assert_eq!(lengths, [40_000]);
        assert_eq!(bytes, payload);
    }

    /// A stall's time is added when it ends, not before; huge counts saturate.
    #[test]
    fn stalls_are_counted_when_they_end_and_saturate() {
        let mut floor = floor(1, 0);
        floor.stalled();
        assert!(floor.since.is_some());
        assert_eq!(floor.waited, Duration::ZERO);
        floor.progressed(0);
        assert!(floor.since.is_none());
        floor.progressed(usize::MAX);
        floor.progressed(usize::MAX);
        assert_eq!(floor.received, u64::MAX);
        assert!(floor.stalled() > Duration::from_secs(u64::from(u32::MAX)));
    }
}
