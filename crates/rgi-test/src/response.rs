//! What the test sees of a response: [`TestResponse`] and its streaming body, [`TestBody`].

use rgi::fields::FORBIDDEN_IN_TRAILERS as FORBIDDEN_TRAILERS;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version, header};
use http_body::{Frame, SizeHint};
use rgi::{BoxError, Disconnect, Outcome};

use crate::exchange::Exchange;

pub(crate) type DynBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send>>;

/// Why a response body could not be read to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The server aborted the response (`CORE-ERR-3`, `HTTP-FRAME-3`, `HTTP-FRAME-4`,
    /// `HTTP-TRAIL-3`): a real client would see a truncated message or a reset stream.
    #[error("the response was aborted: {0}")]
    Aborted(String),
    /// [`TestResponse::text`] found bytes that are not UTF-8.
    #[error("the response body is not UTF-8: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

/// A response body as a client receives it: framed by the server's rules.
///
/// It settles the request's [`Disconnect`] like a server would: `Completed` when read to its
/// end, `Aborted` when the application's body failed or broke a framing rule, and `ClientGone`
/// when the test drops it early.
pub struct TestBody {
    inner: Option<DynBody>,
    declared: Option<u64>,
    received: u64,
    trailers_seen: bool,
    keep_trailers: bool,
    finished: bool,
    exchange: Arc<Exchange>,
}

impl TestBody {
    pub(crate) fn new(
        inner: Option<DynBody>,
        declared: Option<u64>,
        keep_trailers: bool,
        exchange: Arc<Exchange>,
    ) -> Self {
        // A response without a body is complete once its head is handed over.
        let finished = inner.is_none();
        if finished {
            exchange.settle(Outcome::Completed);
        }
        Self {
            inner,
            declared,
            received: 0,
            trailers_seen: false,
            keep_trailers,
            finished,
            exchange,
        }
    }

    fn abort(&mut self, reason: String) -> Poll<Option<Result<Frame<Bytes>, ResponseError>>> {
        self.finished = true;
        self.inner = None;
        self.exchange.settle(Outcome::Aborted);
        Poll::Ready(Some(Err(ResponseError::Aborted(reason))))
    }

    fn complete(&mut self) -> Poll<Option<Result<Frame<Bytes>, ResponseError>>> {
        self.finished = true;
        self.inner = None;
        self.exchange.settle(Outcome::Completed);
        Poll::Ready(None)
    }

    /// Waits for the next frame: `None` at the end.
    pub async fn frame(&mut self) -> Option<Result<Frame<Bytes>, ResponseError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame_inner(cx)).await
    }

    fn poll_frame_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseError>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            let Some(inner) = self.inner.as_mut() else {
                return self.complete();
            };
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.as_mut().poll_frame(cx)
            }));
            let frame = match polled {
                Err(payload) => {
                    let message = crate::catch::panic_message(payload.as_ref());
                    return self.abort(format!("the response body panicked: {message}"));
                }
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(None)) => {
                    if let Some(declared) = self.declared {
                        if self.received < declared {
                            return self.abort(format!(
                                "HTTP-FRAME-4: the body ended after {} of {declared} declared bytes",
                                self.received
                            ));
                        }
                    }
                    return self.complete();
                }
                Ok(Poll::Ready(Some(Err(error)))) => {
                    return self.abort(format!("the response body failed: {error}"));
                }
                Ok(Poll::Ready(Some(Ok(frame)))) => frame,
            };
            if self.trailers_seen {
                return self.abort("HTTP-TRAIL-3: a frame after the trailers".to_owned());
            }
            match frame.into_data() {
                Ok(data) => {
                    self.received += data.len() as u64;
                    if let Some(declared) = self.declared {
                        if self.received > declared {
                            return self.abort(format!(
                                "HTTP-FRAME-3: the body yielded more than the {declared} declared bytes"
                            ));
                        }
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Err(frame) => {
                    let Ok(mut trailers) = frame.into_trailers() else {
                        continue;
                    };
                    self.trailers_seen = true;
                    if let Some(declared) = self.declared {
                        if self.received < declared {
                            return self.abort(format!(
                                "HTTP-FRAME-4: trailers after {} of {declared} declared bytes",
                                self.received
                            ));
                        }
                    }
                    if !self.keep_trailers {
                        // HTTP-TRAIL-5: the protocol cannot carry them; dropped.
                        continue;
                    }
                    for name in &FORBIDDEN_TRAILERS {
                        trailers.remove(name);
                    }
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
            }
        }
    }
}

impl http_body::Body for TestBody {
    type Data = Bytes;
    type Error = ResponseError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseError>>> {
        self.get_mut().poll_frame_inner(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.inner, self.finished) {
            (_, true) | (None, _) => SizeHint::with_exact(0),
            (Some(inner), false) => inner.size_hint(),
        }
    }
}

impl Drop for TestBody {
    fn drop(&mut self) {
        if !self.finished {
            // The test walked away before the end: the client is gone (HTTP-DISC-4).
            self.exchange.settle(Outcome::ClientGone);
        }
    }
}

impl fmt::Debug for TestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestBody")
            .field("declared", &self.declared)
            .field("received", &self.received)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A response, as a client of a conforming server would receive it.
///
/// The head is available at once; read the body with [`bytes`](TestResponse::bytes),
/// [`text`](TestResponse::text) or frame by frame with [`frame`](TestResponse::frame). Reading
/// the body to its end settles the request's [`Disconnect`] as `Completed`; dropping the
/// response before that settles it as `ClientGone`.
///
/// ```
/// use rgi::{App, Body, Outcome, Request};
/// use rgi::http::{HeaderMap, Response};
/// use rgi_test::TestClient;
/// use std::convert::Infallible;
///
/// /// Echoes the request body, with the request's trailers.
/// struct Echo;
///
/// impl App for Echo {
///     type Body = Body;
///     type Error = Infallible;
///     async fn call(&self, req: Request) -> Result<Response<Body>, Infallible> {
///         Ok(Response::new(req.into_body()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = TestClient::new(Echo);
/// let mut trailers = HeaderMap::new();
/// trailers.insert("x-checksum", "42".parse().unwrap());
/// let mut response = client
///     .post("/")
///     .chunks(["he", "llo"])
///     .trailers(trailers)
///     .send()
///     .await;
/// let first = response.frame().await.unwrap().unwrap();
/// assert_eq!(first.into_data().unwrap(), "he");
/// assert_eq!(response.bytes().await.unwrap(), "llo");
/// assert_eq!(response.trailers().unwrap()["x-checksum"], "42");
/// assert_eq!(response.disconnect().outcome(), Some(Outcome::Completed));
/// # }
/// ```
pub struct TestResponse {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) extensions: http::Extensions,
    pub(crate) body: TestBody,
    pub(crate) trailers: Option<HeaderMap>,
    pub(crate) disconnect: Disconnect,
    pub(crate) app_error: Option<String>,
    pub(crate) exchange: Arc<Exchange>,
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version of the exchange.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields, after the server's own changes (`HTTP-RESP-6`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name` as text, if present and visible ASCII.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The extensions of the application's response.
    pub fn extensions(&self) -> &http::Extensions {
        &self.extensions
    }

    /// The request's completion signal, to assert how the exchange ended (`HTTP-DISC-*`).
    pub fn disconnect(&self) -> &Disconnect {
        &self.disconnect
    }

    /// When the server generated this response because the application failed
    /// (`CORE-ERR-1`, `CORE-ERR-4`, `CORE-ERR-6`), what went wrong. A real server logs this and
    /// never sends it (`CORE-ERR-2`); the body the test reads does not contain it either.
    pub fn app_error(&self) -> Option<&str> {
        self.app_error.as_deref()
    }

    /// The `103 Early Hints` the application sent before this response (`HTTP-INTERIM-4`).
    pub fn early_hints(&self) -> Vec<HeaderMap> {
        self.exchange.early_hints()
    }

    /// The next frame of the body: `None` at the end. Trailers are also kept for
    /// [`trailers`](TestResponse::trailers).
    pub async fn frame(&mut self) -> Option<Result<Frame<Bytes>, ResponseError>> {
        let frame = self.body.frame().await;
        if let Some(Ok(frame)) = &frame {
            if let Some(trailers) = frame.trailers_ref() {
                self.trailers = Some(trailers.clone());
            }
        }
        frame
    }

    /// Reads the rest of the body.
    pub async fn bytes(&mut self) -> Result<Bytes, ResponseError> {
        let mut buffer = BytesMut::new();
        while let Some(frame) = self.frame().await {
            if let Ok(data) = frame?.into_data() {
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer.freeze())
    }

    /// Reads the rest of the body as UTF-8 text.
    pub async fn text(&mut self) -> Result<String, ResponseError> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8(bytes.to_vec())?)
    }

    /// The trailers, once the body was read up to them.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }

    /// The body, for streaming use (it implements [`http_body::Body`]).
    pub fn into_body(self) -> TestBody {
        self.body
    }
}

impl fmt::Debug for TestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestResponse")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .field("app_error", &self.app_error)
            .finish_non_exhaustive()
    }
}
