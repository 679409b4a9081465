//! In-process raw upgrades: [`UpgradeBuilder`] and [`TestUpgraded`].

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{StatusCode, Version, header};
use rgi::App;
use rgi::upgrade::{UpgradeAccepted, Upgraded};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use crate::catch::{CatchUnwind, panic_message};
use crate::client::{Offer, RequestBuilder, finish};
use crate::response::TestResponse;
use crate::ws::HandlerError;

/// The size of the in-memory pipe of an upgraded connection, each way.
pub const UPGRADE_BUFFER: usize = 64 * 1024;

/// A raw upgrade request being built; [`connect`](UpgradeBuilder::connect) runs it.
#[must_use = "an upgrade does nothing until it is connected"]
pub struct UpgradeBuilder<A> {
    request: RequestBuilder<A>,
    protocols: Vec<String>,
    early_bytes: Bytes,
}

impl<A> fmt::Debug for UpgradeBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeBuilder")
            .field("request", &self.request)
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

/// Why [`UpgradeBuilder::connect`] gave no upgraded stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeConnectError {
    /// The application answered with an ordinary response (`UPGRADE-RAW-6`).
    #[error("the application declined the upgrade with {}", .0.status())]
    Declined(Box<TestResponse>),
    /// The server would send no response at all.
    #[error(transparent)]
    NoResponse(#[from] crate::NoResponse),
}

impl<A: App> UpgradeBuilder<A> {
    pub(crate) fn new(request: RequestBuilder<A>, protocol: &str) -> Self {
        Self {
            request,
            protocols: vec![protocol.to_owned()],
            early_bytes: Bytes::new(),
        }
    }

    /// Offers more protocols, after the first, in order of preference.
    pub fn also(mut self, protocol: &str) -> Self {
        self.protocols.push(protocol.to_owned());
        self
    }

    /// Bytes the client sent right after the request head, which the server read already;
    /// `Upgraded` replays them first (`UPGRADE-RAW-5`).
    pub fn early_bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        self.early_bytes = bytes.into();
        self
    }

    /// Changes the request before it is sent.
    pub fn request(mut self, f: impl FnOnce(RequestBuilder<A>) -> RequestBuilder<A>) -> Self {
        self.request = f(self.request);
        self
    }

    /// Sends the request; on acceptance runs the handler on an in-memory pipe and returns the
    /// client's end of it.
    pub async fn connect(self) -> Result<TestUpgraded, UpgradeConnectError> {
        let h2 = self.request.version_ref() >= Version::HTTP_2;
        let mut request = if h2 {
            self.request.method(http::Method::CONNECT)
        } else {
            self.request
                .header(header::UPGRADE, self.protocols.join(", "))
                .header(header::CONNECTION, "upgrade")
        };
        request.offer = Offer::Raw(self.protocols);
        let (client, req, exchange) = request.build();
        let version = req.version();
        let disconnect = exchange.disconnect().clone();
        let dispatched = client.dispatch(req, &exchange).await?;
        let response = finish(dispatched, version, false, disconnect, exchange.clone());
        let expected = if h2 {
            StatusCode::OK
        } else {
            StatusCode::SWITCHING_PROTOCOLS
        };
        let handler = response
            .extensions()
            .get::<UpgradeAccepted>()
            .filter(|_| response.status() == expected)
            .and_then(UpgradeAccepted::take_handler);
        let Some(handler) = handler else {
            return Err(UpgradeConnectError::Declined(Box::new(response)));
        };
        let protocol = response
            .extensions()
            .get::<UpgradeAccepted>()
            .map(|accepted| accepted.protocol().to_owned())
            .unwrap_or_default();
        // HTTP-DISC-7
        exchange.settle(rgi::Outcome::Completed);
        let (client_end, server_end) = tokio::io::duplex(UPGRADE_BUFFER);
        let upgraded = Upgraded::new(server_end, self.early_bytes);
        let task = tokio::spawn(async move {
            match CatchUnwind::new(handler.run(upgraded)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(HandlerError::new(error.to_string())),
                Err(payload) => Err(HandlerError::new(format!(
                    "the handler panicked: {}",
                    panic_message(payload.as_ref())
                ))),
            }
        });
        Ok(TestUpgraded {
            io: client_end,
            head: response,
            protocol,
            task: Some(task),
        })
    }
}

/// The client's end of an upgraded connection: read and write it with tokio's I/O traits.
pub struct TestUpgraded {
    io: DuplexStream,
    head: TestResponse,
    protocol: String,
    task: Option<tokio::task::JoinHandle<Result<(), HandlerError>>>,
}

impl fmt::Debug for TestUpgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestUpgraded")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl TestUpgraded {
    /// The `101` (or HTTP/2 `200`) response.
    pub fn response(&self) -> &TestResponse {
        &self.head
    }

    /// The protocol the application accepted.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Waits for the application's handler to return.
    pub async fn finished(&mut self) -> Result<(), HandlerError> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(error) => Err(HandlerError::new(error.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl AsyncRead for TestUpgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TestUpgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
