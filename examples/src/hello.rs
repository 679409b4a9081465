//! The `hello` example: the smallest useful RGI application, and the server's reference load.
//!
//! | Request | Response |
//! |---|---|
//! | `GET /` | `200 text/plain` `Hello, World!` |
//! | `POST /echo` | `200` with the request body (and its trailers, announced as the request announced them) streamed back (`Content-Length` or chunked; `Content-Type` echoed); bodies over the server's `--max-body-bytes` get `413` when their length is declared, an aborted echo otherwise (`--max-body-bytes 0`: any size) |
//! | `GET /stream?bytes=N` | `200` with `N` bytes (`x`) streamed in 64 KiB chunks, generated lazily (`N` ≤ 16 GiB, else `400`) |
//! | `GET /trailers` | `200` with a streamed body followed by the trailers `x-checksum` and `x-chunks` |
//! | another method on one of these paths | `405` with `allow`, once the request body was read to its end |
//! | anything else | `404` |
//!
//! Routes match the application path ([`rgi::path::app_path`]), so the app works under
//! `--root-path` too.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rgi_server::run(rgi_examples::hello::Hello)
//! }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use rgi::{App, Body, BodyError, Request};

/// The chunk size of `/stream`.
pub const STREAM_CHUNK: usize = 64 * 1024;

/// The largest `/stream?bytes=N`.
pub const STREAM_MAX: u64 = 16 << 30;

/// The chunks of `/trailers`.
pub const TRAILER_CHUNKS: [&str; 3] = ["first chunk\n", "second chunk\n", "third chunk\n"];

/// The `hello` application.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hello;

impl App for Hello {
    type Body = Body;
    type Error = BodyError;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response<Body>, BodyError>> + Send {
        // Routed before the future is made: the future then holds the routing's outcome, not
        // the request (about 300 bytes) — and a server on hyper keeps a slot of the future's
        // size for each connection. (An `async fn` would also keep the request until its
        // first poll, and one that borrows its argument keeps a second copy of it for the
        // whole call.)
        route(req)
    }
}

/// Where a request goes: answered at once, or after waiting for the body (the echo of a client
/// that waits for `100 Continue`, a `405` that reads the body first).
enum Routed {
    Done(std::future::Ready<Result<Response<Body>, BodyError>>),
    // Boxed: only these wait. Inline, their state would make every request's future
    // larger, and a server on hyper keeps a slot of that size for each connection.
    Waiting(Pin<Box<dyn Future<Output = Result<Response<Body>, BodyError>> + Send>>),
}

impl Future for Routed {
    type Output = Result<Response<Body>, BodyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Routed::Done(outcome) => Pin::new(outcome).poll(cx),
            Routed::Waiting(future) => future.as_mut().poll(cx),
        }
    }
}

fn route(req: Request) -> Routed {
    let path = rgi::path::app_path(&req).unwrap_or_default();
    let response = match (req.method(), &*path) {
        (&Method::GET | &Method::HEAD, b"/") => text(StatusCode::OK, "Hello, World!"),
        (&Method::POST, b"/echo") => {
            drop(path);
            return echo(req);
        }
        (&Method::GET | &Method::HEAD, b"/stream") => stream(rgi::path::query(&req)),
        (&Method::GET | &Method::HEAD, b"/trailers") => trailers(),
        (_, b"/" | b"/stream" | b"/trailers") => {
            drop(path);
            return method_not_allowed(req, "GET, HEAD");
        }
        (_, b"/echo") => {
            drop(path);
            return method_not_allowed(req, "POST");
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    };
    Routed::Done(std::future::ready(Ok(response)))
}

/// `405` with the methods the path allows (RFC 9110 §15.5.6), answered once the request body
/// was read to its end and dropped: the request is then complete when the answer goes out, so
/// the connection stays usable and a body that breaks its framing is found (an HTTP/2
/// `content-length` that the `DATA` frames contradict resets the stream), not left unread.
fn method_not_allowed(req: Request, allow: &'static str) -> Routed {
    let mut body = req.into_body();
    let answer = move || {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    };
    if http_body::Body::is_end_stream(&body) {
        return Routed::Done(std::future::ready(Ok(answer())));
    }
    Routed::Waiting(Box::pin(async move {
        while body.frame().await.transpose()?.is_some() {}
        Ok(answer())
    }))
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Streams the request body back: no buffering, backpressure end to end.
///
/// A body whose declared length is over the limit fails the call, so that the server answers
/// `413` instead of starting an echo that would be cut short ([`Body::check_limit`]: the check
/// the first poll would make, before any byte is read and before `100 Continue`).
///
/// Usually the request body itself is the response body, returned at once. A client that sent
/// `expect: 100-continue` waits for `100 Continue` before it sends the body, and the server
/// sends that when the body is first polled (`HTTP-INTERIM-1`) — never after a final head
/// (`HTTP-INTERIM-2`), which would leave the client waiting (curl waits a second). For such a
/// client the echo reads the first frame before it returns the head.
fn echo(req: Request) -> Routed {
    let (head, mut body) = req.into_parts();
    if let Err(error) = body.check_limit() {
        return Routed::Done(std::future::ready(Err(error)));
    }
    let expects_continue = head
        .headers
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        // The fields are cloned: they go out in the head, which a server on hyper writes
        // before it reads on (and the body's data shares the read buffer anyway).
        let response = echo_head(&head.headers, HeaderValue::clone, body);
        return Routed::Done(std::future::ready(Ok(response)));
    }
    // Copied, not cloned: kept while the body is awaited, a slice of a server's read buffer
    // would keep that buffer from being reused.
    let mut response = echo_head(&head.headers, copied, Body::empty());
    drop(head);
    Routed::Waiting(Box::pin(async move {
        let first = body.frame().await.transpose()?;
        *response.body_mut() = Body::new(Prepend { first, rest: body });
        Ok(response)
    }))
}

/// The echo's response: `body`, with the request's `content-type` and, since request trailers
/// come back as response trailers, its `trailer` names (HTTP/1.1 sends only announced
/// trailers), each taken with `take`.
fn echo_head(
    headers: &HeaderMap,
    take: fn(&HeaderValue) -> HeaderValue,
    body: Body,
) -> Response<Body> {
    let mut response = Response::new(body);
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, take(value));
    }
    for value in headers.get_all(header::TRAILER) {
        response.headers_mut().append(header::TRAILER, take(value));
    }
    response
}

/// A copy of `value` that shares no memory with the request.
fn copied(value: &HeaderValue) -> HeaderValue {
    HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
}

/// A body whose first frame was already read (also used by the `axum_app` example).
pub(crate) struct Prepend<B> {
    pub(crate) first: Option<Frame<Bytes>>,
    pub(crate) rest: B,
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for Prepend<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| data.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

/// Parses `bytes=N` out of a query string.
pub fn stream_length(query: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "bytes")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .filter(|n| *n <= STREAM_MAX)
}

fn stream(query: &str) -> Response<Body> {
    let Some(length) = stream_length(query) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected /stream?bytes=N with N at most 17179869184\n",
        );
    };
    let mut response = Response::new(Body::new(RepeatBody::new(length)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn trailers() -> Response<Body> {
    let mut response = Response::new(Body::new(TrailersBody { next: 0 }));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // HTTP/1.1 sends trailers only when they are declared and the client accepts them.
    headers.insert(
        header::TRAILER,
        HeaderValue::from_static("x-checksum, x-chunks"),
    );
    response
}

/// `N` bytes of `x`, made one 64 KiB chunk at a time, as the transport asks for them.
#[derive(Debug)]
pub struct RepeatBody {
    remaining: u64,
    chunk: Bytes,
}

impl RepeatBody {
    /// A body of `length` bytes.
    pub fn new(length: u64) -> Self {
        Self {
            remaining: length,
            chunk: Bytes::from(vec![b'x'; STREAM_CHUNK]),
        }
    }
}

impl http_body::Body for RepeatBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(STREAM_CHUNK as u64);
        self.remaining -= n;
        // `n` is at most STREAM_CHUNK, so the cast is lossless.
        let data = self.chunk.slice(..n as usize);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The chunks of [`TRAILER_CHUNKS`], then the trailers `x-checksum` (the byte sum of the body,
/// modulo 2^32, in decimal) and `x-chunks`.
#[derive(Debug)]
struct TrailersBody {
    next: usize,
}

/// The `x-checksum` trailer of `/trailers`: the sum of the body's bytes, modulo 2^32.
pub fn checksum(body: &[u8]) -> u32 {
    body.iter()
        .fold(0u32, |sum, byte| sum.wrapping_add(u32::from(*byte)))
}

impl http_body::Body for TrailersBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let index = self.next;
        self.next += 1;
        if let Some(chunk) = TRAILER_CHUNKS.get(index) {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))));
        }
        if index == TRAILER_CHUNKS.len() {
            let body: Vec<u8> = TRAILER_CHUNKS.concat().into_bytes();
            let mut trailers = HeaderMap::new();
            trailers.insert("x-checksum", HeaderValue::from(checksum(&body)));
            trailers.insert("x-chunks", HeaderValue::from(TRAILER_CHUNKS.len()));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `call`'s future holds the routing's outcome, not the request (see `call`): a server
    /// keeps a slot of its size for every connection.
    #[test]
    fn call_future_is_smaller_than_the_request() {
        let future = Hello.call(Request::new(Body::empty()));
        let request = std::mem::size_of::<Request>();
        let response = std::mem::size_of::<Response<Body>>();
        let size = std::mem::size_of_val(&future);
        assert!(
            size < request && size <= response + 32,
            "call future {size} B, request {request} B, response {response} B"
        );
    }

    #[test]
    fn stream_length_parses_and_caps() {
        assert_eq!(stream_length("bytes=10"), Some(10));
        assert_eq!(stream_length("a=1&bytes=0"), Some(0));
        assert_eq!(stream_length("bytes=x"), None);
        assert_eq!(stream_length(""), None);
        assert_eq!(stream_length("bytes=17179869185"), None);
    }

    /// Calls `Hello` and reads the whole response body.
    async fn collect(req: http::Request<Body>) -> rgi::Collected {
        let response = Hello.call(req).await.unwrap();
        response.into_body().collect().await.unwrap()
    }

    #[tokio::test]
    async fn routes_answer() {
        let req = http::Request::get("/").body(Body::empty()).unwrap();
        let response = Hello.call(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"Hello, World!");

        let req = http::Request::get("/stream?bytes=100000")
            .body(Body::empty())
            .unwrap();
        assert_eq!(collect(req).await.to_bytes().len(), 100_000);

        let req = http::Request::get("/trailers").body(Body::empty()).unwrap();
        let body = collect(req).await;
        let expected = checksum(TRAILER_CHUNKS.concat().as_bytes()).to_string();
        assert_eq!(body.trailers().unwrap()["x-checksum"], expected.as_str());

        let req = http::Request::post("/echo")
            .body(Body::from("ping"))
            .unwrap();
        assert_eq!(&collect(req).await.to_bytes()[..], b"ping");

        let req = http::Request::get("/nope").body(Body::empty()).unwrap();
        assert_eq!(
            Hello.call(req).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
}
