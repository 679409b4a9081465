//! WebSocket support: handshake detection and sessions over tokio-tungstenite.
//!
//! The HTTP service calls, in order:
//!
//! 1. [`websocket_offer`] on every request: on a valid opening handshake (HTTP/1.1 `Upgrade`,
//!    RFC 6455 §4.2.1, or HTTP/2 extended CONNECT, RFC 8441) it returns the
//!    [`rgi::ws::WebSocketUpgrade`] to put into the request's extensions (`WS-HS-1`,
//!    `WS-H2-1`). [`reject_unsupported_version`] gives the `426` answer to a handshake that is
//!    valid except for its `Sec-WebSocket-Version`.
//! 2. [`complete_handshake`] on the application's response when it carries
//!    [`rgi::ws::WebSocketAccepted`]: it sets the headers the server owns (`WS-HS-3`).
//! 3. [`run_session`] (or [`run_session_until`], which also ends the session on server
//!    shutdown with close code 1001) on the upgraded stream, with the application's handler.
//!
//! Framing, fragmentation, masking and UTF-8 validation are tokio-tungstenite's; this module
//! adds the session rules of the RGI spec (`WS-*`): see `session.rs` for the close codes.

mod handshake;
mod session;
mod transport;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, Version};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) use handshake::reject_unsupported_version;
pub(crate) use transport::is_disconnect;

/// WebSocket limits.
///
/// ```
/// let mut config = rgi_server::WsConfig::default();
/// config.max_message_size = 1 << 20;
/// # drop(config);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// The largest message the server accepts, in bytes (larger: close 1009, `WS-FLOW-2`).
    pub max_message_size: usize,
    /// The largest frame the server accepts, in bytes (larger: close 1009).
    pub max_frame_size: usize,
    /// How many received messages wait for the application before the server stops reading
    /// (`WS-FLOW-1`). At least 1.
    pub inbound_queue: usize,
    /// How many bytes of received messages wait for the application before the server stops
    /// reading (`WS-FLOW-1`). One message is always let through, so the server holds at most
    /// about `inbound_queue_bytes + 2 × max_message_size` per session.
    pub inbound_queue_bytes: usize,
    /// How long the server waits for the peer to answer its close frame, and, on shutdown,
    /// for the handler to finish, before it drops the connection (and aborts the handler).
    pub close_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            inbound_queue: 16,
            inbound_queue_bytes: 1 << 20,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl WsConfig {
    /// The framing library's configuration.
    fn wire_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size.min(self.max_message_size)))
            // Allocated eagerly for every connection: small, so that many idle sessions
            // stay cheap; it grows while a large message arrives.
            .read_buffer_size(READ_BUFFER_SIZE)
            // Every send is flushed (WS-FLOW-3), so buffering writes gains nothing.
            .write_buffer_size(0)
    }
}

/// The initial read buffer of a session.
const READ_BUFFER_SIZE: usize = 8 << 10;

/// Recognises a valid opening handshake (HTTP/1.1 Upgrade, or HTTP/2 extended CONNECT with
/// `:protocol` = `websocket`, given as `protocol`) and returns the offer for the application.
pub(crate) fn websocket_offer(
    method: &http::Method,
    version: Version,
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Option<rgi::ws::WebSocketUpgrade> {
    handshake::offer(method, version, headers, protocol)
}

/// Adds the handshake headers the server owns (`Upgrade`, `Connection`,
/// `Sec-WebSocket-Accept` on HTTP/1.1) to an accepting response.
pub(crate) fn complete_handshake(
    request_headers: &HeaderMap,
    version: Version,
    response_headers: &mut HeaderMap,
) {
    handshake::complete(request_headers, version, response_headers);
}

/// Runs an accepted session on the upgraded stream until it ends.
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the module's contract; the server uses run_session_until"
    )
)]
pub(crate) async fn run_session<Io>(io: Io, handler: rgi::ws::WebSocketHandler, config: WsConfig)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    session::run(io, handler, config, std::future::pending()).await;
}

/// Runs an accepted session like [`run_session`] until it ends or `shutdown` resolves.
///
/// `shutdown` means that the server's graceful-shutdown deadline has passed (`WS-CLOSE-7`,
/// `SRV-SHUT-3`): the session then sends close 1001 if the transport takes it, aborts the
/// handler and ends, within `min(config.close_timeout, 1 s)`, without waiting for the peer's
/// answer. (During the drain itself, sessions run on like any other exchange, `SRV-SHUT-2`.)
pub(crate) async fn run_session_until<Io, S>(
    io: Io,
    handler: rgi::ws::WebSocketHandler,
    config: WsConfig,
    shutdown: S,
) where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Future<Output = ()> + Send,
{
    session::run(io, handler, config, shutdown).await;
}
