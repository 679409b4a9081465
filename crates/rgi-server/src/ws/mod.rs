//! WebSocket support: handshake detection and sessions over tokio-tungstenite.
//!
//! The API below is the contract between the HTTP service and this module; its bodies are
//! being written (see the WebSocket issue). Until then no handshake is recognised.

use http::{HeaderMap, Version};

/// WebSocket limits.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// The largest message the server accepts, in bytes (larger: close 1009).
    pub max_message_size: usize,
    /// The largest frame the server accepts, in bytes.
    pub max_frame_size: usize,
    /// How many received messages wait for the application before the server stops reading.
    pub inbound_queue: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            inbound_queue: 16,
        }
    }
}

/// Recognises a valid opening handshake (HTTP/1.1 Upgrade, or HTTP/2 extended CONNECT with
/// `:protocol` = `websocket`, given as `protocol`) and returns the offer for the application.
pub(crate) fn websocket_offer(
    _method: &http::Method,
    _version: Version,
    _headers: &HeaderMap,
    _protocol: Option<&str>,
) -> Option<rgi::ws::WebSocketUpgrade> {
    None
}

/// Adds the handshake headers the server owns (`Upgrade`, `Connection`,
/// `Sec-WebSocket-Accept` on HTTP/1.1) to an accepting response.
pub(crate) fn complete_handshake(
    _request_headers: &HeaderMap,
    _version: Version,
    _response_headers: &mut HeaderMap,
) {
}

/// Runs an accepted session on the upgraded stream until it ends.
pub(crate) async fn run_session<Io>(_io: Io, _handler: rgi::ws::WebSocketHandler, _config: WsConfig)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
}
