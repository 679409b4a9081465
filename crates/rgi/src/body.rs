//! Bodies: [`Body`], [`BodyError`] and [`Collected`].

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::{HeaderMap, StatusCode};
use http_body::{Frame, SizeHint};
use sync_wrapper::SyncWrapper;

use crate::BoxError;

type DynBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BodyError> + Send + 'static>>;

/// A streaming HTTP body: the body of every RGI request, and a convenient response body.
///
/// `Body` is a pull-based stream of [`Frame`]s (`HTTP-BODY-1`): zero or more data frames, then
/// at most one trailers frame (`HTTP-TRAIL-1`), then the end. The end of the body (`None`) is
/// distinct from a client that went away ([`BodyError::Disconnected`], `HTTP-BODY-3`).
///
/// It implements [`http_body::Body`], so everything built on that trait (http-body-util, hyper,
/// axum, tonic) reads it directly; [`Body::frame`] and [`Body::collect`] cover the common cases.
///
/// The first error a body yields ends it: do not treat a later `None` as a complete body
/// (`HTTP-BODY-9`). A body read whole into memory should have a finite limit.
///
/// # The request body limit
///
/// A body may carry a size limit (`HTTP-BODY-7`). Servers set their configured default on every
/// request body; the application may lower or raise it with [`Body::set_limit`] before or while
/// reading. Past the limit the body yields [`BodyError::LengthLimitExceeded`] — at the first
/// poll, before any byte is read, when the declared length already exceeds it. A server maps
/// that error, returned from [`crate::App::call`], to `413 Content Too Large`.
///
/// ```
/// use rgi::Body;
///
/// let mut body = Body::from("hello");
/// assert_eq!(body.limit(), None);
/// body.set_limit(Some(1024));
/// assert_eq!(body.limit(), Some(1024));
/// ```
pub struct Body {
    kind: Kind,
    limit: Option<u64>,
    /// Data bytes yielded so far.
    received: u64,
    /// Whether the declared length has been checked against the limit.
    checked: bool,
    /// Whether the trailers frame was yielded: only the end may follow (`HTTP-TRAIL-1`).
    after_trailers: bool,
    done: bool,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    /// The body, and the size hint taken when it was built (it is behind a `SyncWrapper`).
    Boxed(SyncWrapper<DynBody>, SizeHint),
}

impl Body {
    /// A body with no bytes: ends at the first poll (`HTTP-BODY-4`).
    pub fn empty() -> Self {
        Self {
            kind: Kind::Empty,
            limit: None,
            received: 0,
            checked: false,
            after_trailers: false,
            done: true,
        }
    }

    /// Wraps any [`http_body::Body`] with [`Bytes`] data.
    ///
    /// An error of the wrapped body that is a [`BodyError`] is passed through as it is; any other
    /// becomes [`BodyError::Other`]. Wrapping a `Body` returns it unchanged (no extra box).
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(already) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
            if let Some(body) = already.take() {
                return body;
            }
        }
        let Some(body) = slot else {
            return Self::empty();
        };
        let hint = body.size_hint();
        let done = body.is_end_stream();
        Self {
            kind: Kind::Boxed(SyncWrapper::new(Box::pin(MapError { inner: body })), hint),
            limit: None,
            received: 0,
            checked: false,
            after_trailers: false,
            done,
        }
    }

    /// A body made of a stream of data chunks.
    ///
    /// ```
    /// use rgi::Body;
    /// use rgi::bytes::Bytes;
    /// # struct Iter<I>(I);
    /// # impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
    /// #     type Item = I::Item;
    /// #     fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>)
    /// #         -> std::task::Poll<Option<I::Item>> { std::task::Poll::Ready(self.0.next()) }
    /// # }
    /// # fn iter<I: IntoIterator>(i: I) -> Iter<I::IntoIter> { Iter(i.into_iter()) }
    /// let chunks = iter(vec![Ok::<_, std::io::Error>(Bytes::from("a")), Ok(Bytes::from("b"))]);
    /// let body = Body::from_stream(chunks);
    /// # drop(body);
    /// ```
    pub fn from_stream<S, D, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<D, E>> + Send + 'static,
        D: Into<Bytes>,
        E: Into<BoxError>,
    {
        Self::new(StreamBody { stream })
    }

    /// The body's size limit in bytes, if any (`HTTP-BODY-7`).
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Sets (`Some`) or removes (`None`) the body's size limit. Bytes already read count against
    /// the new limit (`HTTP-BODY-8`).
    pub fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
        self.checked = false;
    }

    /// Returns the body with its size limit set to `limit`.
    pub fn with_limit(mut self, limit: Option<u64>) -> Self {
        self.set_limit(limit);
        self
    }

    /// The check the next poll makes first (`HTTP-BODY-7`), made now without polling: fails
    /// with [`BodyError::LengthLimitExceeded`] when the bytes read so far plus the declared
    /// length still to come (the size hint's lower bound) exceed the limit.
    ///
    /// An application that streams the body into its response can call this before it
    /// returns the head, so that a body declared too long is answered `413` (`CORE-ERR-4`)
    /// instead of starting a response that would be cut short.
    ///
    /// ```
    /// use rgi::{Body, BodyError};
    ///
    /// let body = Body::from("four").with_limit(Some(3));
    /// assert!(matches!(
    ///     body.check_limit(),
    ///     Err(BodyError::LengthLimitExceeded { limit: 3 })
    /// ));
    /// assert!(Body::from("four").with_limit(Some(4)).check_limit().is_ok());
    /// ```
    pub fn check_limit(&self) -> Result<(), BodyError> {
        match self.limit {
            Some(limit) if self.received + self.remaining_lower_bound() > limit => {
                Err(BodyError::LengthLimitExceeded { limit })
            }
            _ => Ok(()),
        }
    }

    /// Waits for the next frame: `None` at the end of the body.
    pub async fn frame(&mut self) -> Option<Result<Frame<Bytes>, BodyError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame_inner(cx)).await
    }

    /// Reads the whole body into memory, with its trailers.
    ///
    /// Mind the limit: without one this reads whatever the peer sends.
    pub async fn collect(mut self) -> Result<Collected, BodyError> {
        let mut collected = Collected::default();
        let mut buffer: Option<BytesMut> = None;
        while let Some(frame) = self.frame().await {
            let frame = match frame?.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        continue;
                    }
                    if collected.data.is_empty() && buffer.is_none() {
                        collected.data = data;
                    } else {
                        let buffer = buffer.get_or_insert_with(|| {
                            BytesMut::from(std::mem::take(&mut collected.data).as_ref())
                        });
                        buffer.extend_from_slice(&data);
                    }
                    continue;
                }
                Err(frame) => frame,
            };
            if let Ok(trailers) = frame.into_trailers() {
                match &mut collected.trailers {
                    Some(existing) => existing.extend(trailers),
                    None => collected.trailers = Some(trailers),
                }
            }
        }
        if let Some(buffer) = buffer {
            collected.data = buffer.freeze();
        }
        Ok(collected)
    }

    fn poll_frame_inner(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.limit.is_some() && !this.checked {
            this.checked = true;
            if let Err(error) = this.check_limit() {
                this.done = true;
                this.kind = Kind::Empty;
                return Poll::Ready(Some(Err(error)));
            }
        }
        let polled = match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Boxed(inner, _) => inner.get_mut().as_mut().poll_frame(cx),
        };
        match polled {
            Poll::Ready(Some(Ok(_))) if this.after_trailers => {
                // HTTP-TRAIL-1, HTTP-TRAIL-3: a frame after the trailers is the wrapped body's
                // bug; it is reported, never sent and never silently dropped.
                this.done = true;
                this.kind = Kind::Empty;
                Poll::Ready(Some(Err(BodyError::FrameAfterTrailers)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if let Some(limit) = this.limit {
                        if this.received > limit {
                            this.done = true;
                            this.kind = Kind::Empty;
                            return Poll::Ready(Some(Err(BodyError::LengthLimitExceeded {
                                limit,
                            })));
                        }
                    }
                } else {
                    // Trailers are the last frame (HTTP-TRAIL-1): the next poll must see the
                    // wrapped body's end, or it yields `BodyError::FrameAfterTrailers`.
                    this.after_trailers = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.done = true;
                this.kind = Kind::Empty;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                this.done = true;
                this.kind = Kind::Empty;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn remaining_lower_bound(&self) -> u64 {
        match &self.kind {
            Kind::Empty => 0,
            Kind::Full(bytes) => bytes.as_ref().map_or(0, |b| b.len() as u64),
            Kind::Boxed(_, hint) => hint.lower().saturating_sub(self.received),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Boxed(..) => "streaming",
        };
        f.debug_struct("Body")
            .field("kind", &kind)
            .field("limit", &self.limit)
            .field("received", &self.received)
            .finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.poll_frame_inner(cx)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Boxed(..) => self.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Boxed(_, built) => {
                let mut hint = SizeHint::new();
                hint.set_lower(built.lower().saturating_sub(self.received));
                if let Some(upper) = built.upper() {
                    hint.set_upper(upper.saturating_sub(self.received));
                }
                hint
            }
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            return Self::empty();
        }
        Self {
            kind: Kind::Full(Some(bytes)),
            limit: None,
            received: 0,
            checked: false,
            after_trailers: false,
            done: false,
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(s))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::from(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self::from(Bytes::from(v))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Self::empty()
    }
}

/// A body read to its end by [`Body::collect`].
#[derive(Debug, Default, Clone)]
pub struct Collected {
    data: Bytes,
    trailers: Option<HeaderMap>,
}

impl Collected {
    /// The body's bytes.
    pub fn to_bytes(&self) -> Bytes {
        self.data.clone()
    }

    /// The body's bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.data
    }

    /// The body's trailers, if it had any.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}

/// Why a body could not be read to its end.
///
/// Servers produce these for request bodies; [`BodyError::status_code`] says how a server
/// answers when an application's `call` fails with one of them (`CORE-ERR-4`). An application
/// that gets one while reading should return it (or an error whose source chain holds it) from
/// `call`, so that the client gets the right status (`CORE-ERR-9`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The client went away before the end of the body (`HTTP-BODY-3`).
    #[error("the client disconnected before the end of the body")]
    Disconnected,
    /// The body is longer than its limit (`HTTP-BODY-7`).
    #[error("the body is longer than the limit of {limit} bytes")]
    LengthLimitExceeded {
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// The peer was too slow to send the body (`SRV-LIMIT-*`).
    #[error("timed out waiting for the body")]
    TimedOut,
    /// The body's framing on the wire was malformed (for example a bad chunk size).
    #[error("malformed body framing: {0}")]
    Protocol(#[source] BoxError),
    /// The wrapped body yielded a frame after its trailers frame (`HTTP-TRAIL-1`); a server
    /// aborts a response body that does this (`HTTP-TRAIL-3`).
    #[error("the body yielded a frame after its trailers")]
    FrameAfterTrailers,
    /// Any other failure of the underlying body.
    #[error(transparent)]
    Other(BoxError),
}

impl BodyError {
    /// The status a server answers with when an application's `call` fails with this error
    /// before the response head (`CORE-ERR-4`): `413` for [`LengthLimitExceeded`], `408` for
    /// [`TimedOut`], `400` for [`Protocol`]; `None` for [`Disconnected`] (nobody is left to answer)
    /// and for [`Other`] (a plain application error: `500`).
    ///
    /// [`LengthLimitExceeded`]: BodyError::LengthLimitExceeded
    /// [`TimedOut`]: BodyError::TimedOut
    /// [`Protocol`]: BodyError::Protocol
    /// [`Disconnected`]: BodyError::Disconnected
    /// [`Other`]: BodyError::Other
    pub fn status_code(&self) -> Option<StatusCode> {
        match self {
            BodyError::LengthLimitExceeded { .. } => Some(StatusCode::PAYLOAD_TOO_LARGE),
            BodyError::TimedOut => Some(StatusCode::REQUEST_TIMEOUT),
            BodyError::Protocol(_) => Some(StatusCode::BAD_REQUEST),
            BodyError::Disconnected | BodyError::FrameAfterTrailers | BodyError::Other(_) => None,
        }
    }

    /// Finds a `BodyError` in `error` or its chain of sources.
    ///
    /// ```
    /// use rgi::{BodyError, BoxError};
    ///
    /// let error: BoxError = Box::new(BodyError::LengthLimitExceeded { limit: 10 });
    /// assert!(matches!(
    ///     BodyError::find(error.as_ref()),
    ///     Some(BodyError::LengthLimitExceeded { limit: 10 })
    /// ));
    /// ```
    pub fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a BodyError> {
        let mut current: Option<&'a (dyn StdError + 'static)> = Some(error);
        while let Some(error) = current {
            if let Some(found) = error.downcast_ref::<BodyError>() {
                return Some(found);
            }
            current = error.source();
        }
        None
    }

    fn from_boxed(error: BoxError) -> Self {
        match error.downcast::<BodyError>() {
            Ok(body_error) => *body_error,
            Err(other) => BodyError::Other(other),
        }
    }
}

pin_project_lite::pin_project! {
    struct MapError<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for MapError<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.project()
            .inner
            .poll_frame(cx)
            .map(|frame| frame.map(|result| result.map_err(|e| BodyError::from_boxed(e.into()))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    struct StreamBody<S> {
        #[pin]
        stream: S,
    }
}

impl<S, D, E> http_body::Body for StreamBody<S>
where
    S: Stream<Item = Result<D, E>>,
    D: Into<Bytes>,
    E: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().stream.poll_next(cx) {
            Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data.into())))),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
