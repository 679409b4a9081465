//! WebSocket sessions (`WS-*`).
//!
//! A server that supports WebSocket puts a [`WebSocketUpgrade`] into the extensions of every
//! valid opening handshake — HTTP/1.1 `Upgrade: websocket` or HTTP/2 extended CONNECT with
//! `:protocol = websocket` (RFC 8441) — so the same application code serves both (`WS-H2-1`).
//! The application accepts by returning the response [`WebSocketUpgrade::accept`] builds —
//! unchanged but for added header fields (`WS-HS-7`) — or denies by returning any other
//! response (for example `403`, `WS-HS-4`). The server then runs the application's handler
//! with a [`WebSocket`]. Recognise a handshake by the presence of [`WebSocketUpgrade`], not by
//! the method or by HTTP/1.1-only fields (`WS-H2-5`). Never set `sec-websocket-*` fields
//! yourself: select the subprotocol with [`AcceptOptions::subprotocol`] (`WS-HS-10`).
//!
//! The server does the protocol work once, for every application: it reassembles fragments and
//! delivers whole messages (`WS-MSG-1`), rejects invalid UTF-8 in text with close code `1007`
//! (`WS-MSG-2`), answers pings (`WS-CTRL-1`), enforces a maximum message size with `1009`
//! (`WS-FLOW-2`), bounds its inbound queue (`WS-FLOW-1`), and delivers the peer's close to the
//! application exactly once (`WS-CLOSE-2`).
//!
//! ```
//! use rgi::ws::{Message, WebSocket, WebSocketUpgrade};
//! use rgi::http::{Response, StatusCode, Version};
//! use rgi::Body;
//!
//! async fn echo(mut socket: WebSocket) -> Result<(), rgi::BoxError> {
//!     while let Some(message) = socket.recv().await {
//!         match message? {
//!             Message::Close(_) => break,
//!             other => socket.send(other).await?,
//!         }
//!     }
//!     Ok(())
//! }
//!
//! let handshake = WebSocketUpgrade::new(Version::HTTP_11, vec!["chat".to_owned()]);
//! let response: Response<Body> = handshake.accept(echo);
//! assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
//! ```

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, Version};

use crate::BoxError;
use crate::upgrade::success_status;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type BoxHandler = Box<dyn FnOnce(WebSocket) -> BoxFuture<Result<(), BoxError>> + Send + 'static>;

/// Bytes that are valid UTF-8: the payload of a text message (`WS-MSG-2`).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Empty text.
    pub const fn new() -> Self {
        Self(Bytes::new())
    }

    /// Text from static memory.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The constructors guarantee UTF-8; fall back to "" rather than panic.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The underlying bytes, by value.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&'static str> for Utf8Bytes {
    fn from(s: &'static str) -> Self {
        Self::from_static(s)
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket close code (RFC 6455 §7.4, `WS-CLOSE-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (reported, never sent).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame (reported, never sent).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a text message was not valid UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was too big.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition (the application failed).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// A close code from its number: `1000..=4999`.
    pub fn new(code: u16) -> Result<Self, WsError> {
        if (1000..=4999).contains(&code) {
            Ok(CloseCode(code))
        } else {
            Err(WsError::InvalidCloseCode(code))
        }
    }

    /// The number.
    pub fn as_u16(&self) -> u16 {
        self.0
    }

    /// Whether the code may appear in a close frame on the wire (RFC 6455 §7.4, and the IANA
    /// registry's 1012–1014): 1000–1003, 1007–1014, and 3000–4999 (`WS-CLOSE-6`).
    pub fn is_sendable(&self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// The code and reason of a close frame (`WS-CLOSE-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: Utf8Bytes,
}

impl CloseFrame {
    /// The longest reason a close frame can carry, in bytes.
    pub const MAX_REASON_LEN: usize = 123;

    /// A close frame; the reason must fit in [`CloseFrame::MAX_REASON_LEN`] bytes.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Result<Self, WsError> {
        let reason = reason.into();
        if reason.len() > Self::MAX_REASON_LEN {
            return Err(WsError::CloseReasonTooLong(reason.len()));
        }
        Ok(Self { code, reason })
    }

    /// The close code.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        self.reason.as_str()
    }
}

/// A whole WebSocket message (`WS-MSG-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message: always valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A close frame: received, the peer's close (`None` = no status code, 1005); sent, the
    /// application's close (`None` = no status code).
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }
}

/// Errors of the WebSocket API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The session is closed: a close frame was sent or received, or the peer is gone
    /// (`WS-CLOSE-4`).
    #[error("the WebSocket is closed")]
    Closed,
    /// The application chose a subprotocol the client did not offer (`WS-HS-2`).
    #[error("the client did not offer subprotocol {0:?}")]
    SubprotocolNotOffered(String),
    /// The application tried to set a header the server owns (`WS-HS-3`).
    #[error("header `{0}` is set by the server, not the application")]
    ForbiddenHeader(HeaderName),
    /// A close code outside 1000–4999, or one that may not be sent.
    #[error("close code {0} is not allowed here")]
    InvalidCloseCode(u16),
    /// A close reason longer than 123 bytes.
    #[error("a close reason of {0} bytes is longer than 123 bytes")]
    CloseReasonTooLong(usize),
    /// The peer broke the protocol (the server closes with 1002, 1007 or 1009).
    #[error("WebSocket protocol error: {0}")]
    Protocol(#[source] BoxError),
    /// The transport failed.
    #[error("WebSocket transport error: {0}")]
    Transport(#[source] BoxError),
}

/// A valid WebSocket opening handshake, in the request's extensions (`WS-HS-1`).
#[derive(Debug, Clone)]
pub struct WebSocketUpgrade {
    version: Version,
    protocols: Vec<String>,
}

impl WebSocketUpgrade {
    /// A handshake of HTTP `version` offering subprotocols `protocols` (from
    /// `Sec-WebSocket-Protocol`, in the client's order). Servers build it.
    pub fn new(version: Version, protocols: Vec<String>) -> Self {
        Self { version, protocols }
    }

    /// The HTTP version of the handshake (`HTTP/1.1` or `HTTP/2`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The subprotocols the client offered.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Accepts with no subprotocol and no extra headers. See [`WebSocketUpgrade::accept_with`].
    pub fn accept<B, F, Fut>(self, handler: F) -> Response<B>
    where
        B: Default,
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let handler: BoxHandler = Box::new(move |socket| Box::pin(handler(socket)));
        self.respond(None, HeaderMap::new(), handler)
    }

    /// Accepts the handshake with `options` and returns the response to return from
    /// [`crate::App::call`] (`101` on HTTP/1.1, `200` on HTTP/2). The server adds the
    /// handshake headers (`Upgrade`, `Connection`, `Sec-WebSocket-Accept`) and runs `handler`
    /// once the head is sent (`WS-HS-5`).
    ///
    /// Fails, with no effect on the wire, when the subprotocol was not offered (`WS-HS-2`) or a
    /// header is one the server owns (`WS-HS-3`).
    pub fn accept_with<B, F, Fut>(
        self,
        options: AcceptOptions,
        handler: F,
    ) -> Result<Response<B>, WsError>
    where
        B: Default,
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let subprotocol = match options.subprotocol {
            Some(chosen) => match self.protocols.iter().find(|p| **p == chosen) {
                Some(offered) => Some(offered.clone()),
                None => return Err(WsError::SubprotocolNotOffered(chosen)),
            },
            None => None,
        };
        if let Some(name) = options.headers.keys().find(|name| is_server_owned(name)) {
            return Err(WsError::ForbiddenHeader(name.clone()));
        }
        let handler: BoxHandler = Box::new(move |socket| Box::pin(handler(socket)));
        Ok(self.respond(subprotocol, options.headers, handler))
    }

    fn respond<B: Default>(
        self,
        subprotocol: Option<String>,
        headers: HeaderMap,
        handler: BoxHandler,
    ) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = success_status(self.version);
        *response.headers_mut() = headers;
        if let Some(protocol) = &subprotocol {
            if let Ok(value) = HeaderValue::from_str(protocol) {
                response
                    .headers_mut()
                    .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
            }
        }
        response.extensions_mut().insert(WebSocketAccepted {
            subprotocol,
            handler: Arc::new(Mutex::new(Some(WebSocketHandler { run: handler }))),
        });
        response
    }
}

fn is_server_owned(name: &HeaderName) -> bool {
    name.as_str().starts_with("sec-websocket-")
        || crate::fields::is_connection_specific(name)
        || name == header::CONTENT_LENGTH
}

/// How to accept a handshake: the subprotocol and any extra response headers.
///
/// ```
/// use rgi::ws::AcceptOptions;
/// use rgi::http::{HeaderValue, header};
///
/// let options = AcceptOptions::new()
///     .subprotocol("chat")
///     .header(header::SET_COOKIE, HeaderValue::from_static("room=1"));
/// # drop(options);
/// ```
#[derive(Debug, Clone, Default)]
pub struct AcceptOptions {
    subprotocol: Option<String>,
    headers: HeaderMap,
}

impl AcceptOptions {
    /// No subprotocol, no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects `protocol`, which must be one the client offered.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocol = Some(protocol.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// The mark [`WebSocketUpgrade::accept`] leaves in the response's extensions; servers take the
/// handler from it.
#[derive(Clone)]
pub struct WebSocketAccepted {
    subprotocol: Option<String>,
    handler: Arc<Mutex<Option<WebSocketHandler>>>,
}

impl WebSocketAccepted {
    /// The subprotocol the application selected.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Takes the application's handler; `None` if it was already taken.
    pub fn take_handler(&self) -> Option<WebSocketHandler> {
        self.handler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl fmt::Debug for WebSocketAccepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketAccepted")
            .field("subprotocol", &self.subprotocol)
            .finish_non_exhaustive()
    }
}

/// The application's code for an accepted WebSocket session.
pub struct WebSocketHandler {
    run: BoxHandler,
}

impl WebSocketHandler {
    /// Runs the handler. When it returns `Ok` without closing, the server closes with `1000`;
    /// when it fails (or panics), with `1011` (`WS-CLOSE-5`).
    pub fn run(self, socket: WebSocket) -> impl Future<Output = Result<(), BoxError>> + Send {
        (self.run)(socket)
    }
}

impl fmt::Debug for WebSocketHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketHandler").finish_non_exhaustive()
    }
}

/// The server's side of a [`WebSocket`]: a message stream and sink with backpressure.
///
/// A server implements it over its framing library. `poll_recv` yields whole messages with
/// pings answered and fragments reassembled; `None` once the connection is finished.
/// `poll_ready`/`start_send`/`poll_flush` follow the usual sink protocol: `start_send` only
/// after `poll_ready` returned `Ready(Ok)`, and `poll_flush` resolves once the data was handed
/// to the transport (`WS-FLOW-3`).
pub trait Transport: Send + 'static {
    /// Receives the next whole message.
    fn poll_recv(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>>;
    /// Waits until a message can be queued.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>>;
    /// Queues a message.
    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError>;
    /// Writes queued messages to the transport.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>>;
}

struct State {
    transport: Pin<Box<dyn Transport>>,
    /// The application sent a close frame.
    sent_close: bool,
    /// The peer's close (or the end of the connection) was delivered to the application.
    close_delivered: bool,
}

impl State {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, WsError>>> {
        if self.close_delivered {
            return Poll::Ready(None);
        }
        match self.transport.as_mut().poll_recv(cx) {
            Poll::Ready(Some(Ok(Message::Close(frame)))) => {
                self.close_delivered = true;
                Poll::Ready(Some(Ok(Message::Close(frame))))
            }
            Poll::Ready(None) => {
                // The connection ended without a close frame: report 1006 exactly once
                // (WS-CLOSE-2).
                self.close_delivered = true;
                Poll::Ready(Some(Ok(Message::Close(Some(CloseFrame {
                    code: CloseCode::ABNORMAL,
                    reason: Utf8Bytes::new(),
                })))))
            }
            other => other,
        }
    }

    /// Sends `pending`; `handed` is set once the transport took it.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        pending: &mut Option<Message>,
        handed: &mut bool,
    ) -> Poll<Result<(), WsError>> {
        if let Some(message) = pending.as_ref() {
            if self.sent_close || self.close_delivered {
                return Poll::Ready(Err(WsError::Closed));
            }
            if let Message::Close(Some(frame)) = message {
                if !frame.code.is_sendable() {
                    return Poll::Ready(Err(WsError::InvalidCloseCode(frame.code.0)));
                }
            }
            match self.transport.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
            if let Some(message) = pending.take() {
                if matches!(message, Message::Close(_)) {
                    self.sent_close = true;
                }
                self.transport.as_mut().start_send(message)?;
                *handed = true;
            }
        }
        self.transport.as_mut().poll_flush(cx)
    }
}

/// An accepted WebSocket session, as the application sees it (`WS-*`).
///
/// [`recv`](WebSocket::recv) yields whole messages; the peer's close arrives exactly once as
/// [`Message::Close`], and `None` follows (`WS-CLOSE-2`). [`send`](WebSocket::send) resolves
/// when the message was handed to the transport, which paces a fast sender to a slow peer
/// (`WS-FLOW-3`); after a close, it fails with [`WsError::Closed`] (`WS-CLOSE-4`).
/// [`split`](WebSocket::split) gives a receiver and a sender for use in separate tasks, with the
/// same ordering and closing rules (`WS-FLOW-5`). Keep receiving while the session is open: a
/// full inbound queue stops the server from reading the connection, and so from seeing pings and
/// the peer's close (`WS-FLOW-6`).
pub struct WebSocket {
    state: Arc<Mutex<State>>,
}

impl WebSocket {
    /// Wraps a server's transport.
    pub fn new(transport: impl Transport) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                transport: Box::pin(transport),
                sent_close: false,
                close_delivered: false,
            })),
        }
    }

    /// Receives the next message; `None` after the close was delivered.
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        recv(&self.state).await
    }

    /// Sends a message, waiting until the transport accepted it.
    pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
        send(&self.state, message).await
    }

    /// Starts the close handshake with `frame` (`None`: no status code) (`WS-CLOSE-1`).
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        send(&self.state, Message::Close(frame)).await
    }

    /// Splits the session into a receiving and a sending half.
    pub fn split(self) -> (WsReceiver, WsSender) {
        (
            WsReceiver {
                state: self.state.clone(),
            },
            WsSender { state: self.state },
        )
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket").finish_non_exhaustive()
    }
}

/// The receiving half of a [`WebSocket`].
pub struct WsReceiver {
    state: Arc<Mutex<State>>,
}

impl WsReceiver {
    /// Receives the next message; `None` after the close was delivered.
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        recv(&self.state).await
    }
}

impl fmt::Debug for WsReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsReceiver").finish_non_exhaustive()
    }
}

/// The sending half of a [`WebSocket`].
pub struct WsSender {
    state: Arc<Mutex<State>>,
}

impl WsSender {
    /// Sends a message, waiting until the transport accepted it.
    pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
        send(&self.state, message).await
    }

    /// Starts the close handshake.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        send(&self.state, Message::Close(frame)).await
    }
}

impl fmt::Debug for WsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsSender").finish_non_exhaustive()
    }
}

async fn recv(state: &Mutex<State>) -> Option<Result<Message, WsError>> {
    std::future::poll_fn(|cx| {
        state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll_recv(cx)
    })
    .await
}

async fn send(state: &Mutex<State>, message: Message) -> Result<(), WsError> {
    let closing = matches!(message, Message::Close(_));
    let mut pending = Some(message);
    let mut handed = false;
    let result = std::future::poll_fn(|cx| {
        state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll_send(cx, &mut pending, &mut handed)
    })
    .await;
    match result {
        // The close frame was handed to the transport: the close handshake began, and the
        // rest is the server's (`WS-CLOSE-1`). The flush may fail only because the peer
        // answered at once and the session ended first; that is no failure of this close.
        Err(_) if closing && handed => Ok(()),
        result => result,
    }
}
