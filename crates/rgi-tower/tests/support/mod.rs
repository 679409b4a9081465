//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use rgi::{ConnectionInfo, Disconnect, DisconnectNotifier, Scheme, SocketAddress};
use tokio::sync::mpsc;

/// Upper bound for anything a test awaits: only there to turn a hang into a failure.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {LIMIT:?}"),
    }
}

/// A request as an RGI server would build it: `ConnectionInfo` and `Disconnect` inserted.
pub fn rgi_request(
    method: &str,
    uri: &str,
    body: impl Into<rgi::Body>,
) -> (rgi::Request, DisconnectNotifier) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap();
    let (signal, notifier) = Disconnect::pair();
    req.extensions_mut().insert(signal);
    req.extensions_mut().insert(ConnectionInfo::new(
        SocketAddress::Tcp("127.0.0.1:8080".parse().unwrap()),
        SocketAddress::Tcp("192.0.2.7:50123".parse().unwrap()),
        Scheme::Http,
    ));
    (req, notifier)
}

/// A body fed frame by frame through a channel: ends when the sender is dropped.
pub struct ChannelBody {
    frames: mpsc::Receiver<Frame<Bytes>>,
}

/// A [`ChannelBody`] and its sender.
pub fn channel_body() -> (mpsc::Sender<Frame<Bytes>>, ChannelBody) {
    let (tx, rx) = mpsc::channel(4);
    (tx, ChannelBody { frames: rx })
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.frames.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// A body made of given frames (data and trailers).
pub struct FramesBody {
    frames: VecDeque<Frame<Bytes>>,
}

impl FramesBody {
    /// Data `chunks` followed by `trailers`.
    pub fn new(chunks: &[&'static str], trailers: Option<HeaderMap>) -> Self {
        let mut frames: VecDeque<Frame<Bytes>> = chunks
            .iter()
            .map(|chunk| Frame::data(Bytes::from_static(chunk.as_bytes())))
            .collect();
        if let Some(trailers) = trailers {
            frames.push_back(Frame::trailers(trailers));
        }
        Self { frames }
    }
}

impl http_body::Body for FramesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Reads a body to its end: its bytes and trailers.
pub async fn collect<B>(body: B) -> (Bytes, Option<HeaderMap>)
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let collected = http_body_util::BodyExt::collect(body).await.unwrap();
    let trailers = collected.trailers().cloned();
    (collected.to_bytes(), trailers)
}

/// Reads the next frame of a body.
pub async fn next_frame<B>(body: &mut B) -> Option<Frame<Bytes>>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    http_body_util::BodyExt::frame(body)
        .await
        .map(|frame| frame.unwrap())
}
