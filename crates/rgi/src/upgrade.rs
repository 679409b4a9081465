//! Raw protocol upgrades: HTTP/1.1 `101 Switching Protocols` and HTTP/2 extended CONNECT
//! (`UPGRADE-RAW-*`).
//!
//! When a request asks for a protocol the server can switch to, the server puts an
//! [`OnUpgrade`] into its extensions. The application accepts by returning the response
//! [`OnUpgrade::accept`] builds, unchanged but for added header fields (`UPGRADE-RAW-7`); after sending that head, the server stops speaking HTTP on the
//! connection (HTTP/1.1) or stream (HTTP/2) and runs the application's handler with the raw
//! byte stream, [`Upgraded`]. WebSocket has its own, higher-level API in [`crate::ws`].
//!
//! ```
//! use rgi::upgrade::{OnUpgrade, Upgraded};
//! use rgi::http::{Response, StatusCode, Version};
//! use rgi::Body;
//!
//! let offer = OnUpgrade::new(Version::HTTP_11, vec!["echo/1".to_owned()]);
//! let response: Response<Body> = offer
//!     .accept("echo/1", |io: Upgraded| async move {
//!         // Read and write `io` with any AsyncRead/AsyncWrite utilities.
//!         drop(io);
//!         Ok(())
//!     })
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::{Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::BoxError;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type BoxHandler<T> = Box<dyn FnOnce(T) -> BoxFuture<Result<(), BoxError>> + Send + 'static>;

/// An offer to switch protocols, in the extensions of a request that asks for one
/// (`UPGRADE-RAW-1`).
#[derive(Debug, Clone)]
pub struct OnUpgrade {
    version: Version,
    protocols: Vec<String>,
}

impl OnUpgrade {
    /// An offer for a request of HTTP `version` asking for `protocols` (the tokens of the
    /// `Upgrade` header, or the `:protocol` of an HTTP/2 extended CONNECT). Servers build it.
    pub fn new(version: Version, protocols: Vec<String>) -> Self {
        Self { version, protocols }
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The protocols the client asked for, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Accepts the switch to `protocol`, which the client must have asked for
    /// (`UPGRADE-RAW-2`), and returns the response to return from [`crate::App::call`]:
    /// `101 Switching Protocols` on HTTP/1.1, `200 OK` on HTTP/2. The server adds the
    /// `Connection` and `Upgrade` headers itself (`UPGRADE-RAW-3`); the application may add its
    /// own headers to the response.
    ///
    /// The server runs `handler` with the raw stream once the head is sent (`UPGRADE-RAW-4`).
    pub fn accept<B, F, Fut>(self, protocol: &str, handler: F) -> Result<Response<B>, UpgradeError>
    where
        B: Default,
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let Some(chosen) = self
            .protocols
            .iter()
            .find(|offered| offered.eq_ignore_ascii_case(protocol))
        else {
            return Err(UpgradeError::NotOffered(protocol.to_owned()));
        };
        let handler: BoxHandler<Upgraded> = Box::new(move |io| Box::pin(handler(io)));
        let mut response = Response::new(B::default());
        *response.status_mut() = success_status(self.version);
        response.extensions_mut().insert(UpgradeAccepted {
            protocol: chosen.clone(),
            handler: Arc::new(Mutex::new(Some(UpgradeHandler { run: handler }))),
        });
        Ok(response)
    }
}

/// The status of a successful switch: `101` on HTTP/1.x, `200` on HTTP/2 and later.
pub(crate) fn success_status(version: Version) -> StatusCode {
    if version >= Version::HTTP_2 {
        StatusCode::OK
    } else {
        StatusCode::SWITCHING_PROTOCOLS
    }
}

/// Why an upgrade could not be accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The application chose a protocol the client did not ask for (`UPGRADE-RAW-2`).
    #[error("the client did not offer protocol {0:?}")]
    NotOffered(String),
}

/// The mark [`OnUpgrade::accept`] leaves in the response's extensions; servers take the handler
/// from it.
#[derive(Clone)]
pub struct UpgradeAccepted {
    protocol: String,
    handler: Arc<Mutex<Option<UpgradeHandler>>>,
}

impl UpgradeAccepted {
    /// The protocol the application accepted.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Takes the application's handler; `None` if it was already taken.
    pub fn take_handler(&self) -> Option<UpgradeHandler> {
        self.handler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for UpgradeAccepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeAccepted")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// The application's code for an upgraded connection.
pub struct UpgradeHandler {
    run: BoxHandler<Upgraded>,
}

impl UpgradeHandler {
    /// Runs the handler on the upgraded stream.
    pub fn run(self, io: Upgraded) -> impl Future<Output = Result<(), BoxError>> + Send + 'static {
        (self.run)(io)
    }
}

impl fmt::Debug for UpgradeHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeHandler").finish_non_exhaustive()
    }
}

trait Io: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

/// The raw byte stream of an upgraded connection or stream (`UPGRADE-RAW-4`).
///
/// Bytes the server had already read past the request head are replayed first
/// (`UPGRADE-RAW-5`).
pub struct Upgraded {
    io: Pin<Box<dyn Io>>,
    buffered: Bytes,
}

impl Upgraded {
    /// Wraps a transport, with the bytes already read from it that belong to the new protocol.
    pub fn new<T>(io: T, buffered: Bytes) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self {
            io: Box::pin(io),
            buffered,
        }
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.buffered.is_empty() {
            let n = self.buffered.len().min(buf.remaining());
            buf.put_slice(&self.buffered[..n]);
            self.buffered.advance(n);
            return Poll::Ready(Ok(()));
        }
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
