//! Helpers shared by the test files: closure apps and hand-made bodies.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Frame, SizeHint};
use rgi::{App, BoxError, Request};

/// An application made of a closure.
pub struct FnApp<F>(pub F);

impl<F, Fut, B> App for FnApp<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, BoxError>> + Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = B;
    type Error = BoxError;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response<B>, BoxError>> + Send {
        (self.0)(req)
    }
}

/// A body that yields the given frames, with a chosen size hint.
pub struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    hint: SizeHint,
}

impl Frames {
    pub fn new(frames: Vec<Frame<Bytes>>) -> Self {
        Self {
            frames: frames.into(),
            hint: SizeHint::default(),
        }
    }

    pub fn exact(mut self, len: u64) -> Self {
        self.hint = SizeHint::with_exact(len);
        self
    }
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.frames.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

pub fn data(text: &'static str) -> Frame<Bytes> {
    Frame::data(Bytes::from_static(text.as_bytes()))
}

pub fn trailers(pairs: &[(&'static str, &'static str)]) -> Frame<Bytes> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, http::HeaderValue::from_static(value));
    }
    Frame::trailers(map)
}

pub fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, http::HeaderValue::from_static(value));
    }
    map
}

/// An upper bound for awaits that could hang on a bug (never a timing assertion).
pub async fn bounded<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(std::time::Duration::from_secs(20), future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after 20 s"),
    }
}
