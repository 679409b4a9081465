//! In-process WebSocket sessions: [`WebSocketBuilder`] and [`TestWebSocket`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::{HeaderMap, StatusCode, Version};
use rgi::App;
use rgi::ws::{CloseCode, CloseFrame, Message, Transport, WebSocket, WebSocketAccepted, WsError};
use tokio::sync::mpsc;

use crate::catch::{CatchUnwind, panic_message};
use crate::client::{Offer, RequestBuilder, finish};
use crate::response::TestResponse;

/// How many messages each direction of an in-memory session buffers (`WS-FLOW-1`, `WS-FLOW-3`).
pub const WS_QUEUE: usize = 16;

/// A WebSocket opening handshake being built; [`connect`](WebSocketBuilder::connect) runs it.
#[must_use = "a handshake does nothing until it is connected"]
pub struct WebSocketBuilder<A> {
    request: RequestBuilder<A>,
    protocols: Vec<String>,
}

impl<A> fmt::Debug for WebSocketBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketBuilder")
            .field("request", &self.request)
            .field("protocols", &self.protocols)
            .finish()
    }
}

/// Why [`WebSocketBuilder::connect`] did not give a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The application denied the handshake with this response (`WS-HS-4`).
    #[error("the application denied the handshake with {}", .0.status())]
    Denied(Box<TestResponse>),
    /// The application accepted with a raw upgrade instead of a WebSocket.
    #[error("the application accepted a raw upgrade, not a WebSocket")]
    NotWebSocket(Box<TestResponse>),
    /// The server would send no response at all.
    #[error(transparent)]
    NoResponse(#[from] crate::NoResponse),
}

impl ConnectError {
    /// The response the application returned, if there was one.
    pub fn into_response(self) -> Option<TestResponse> {
        match self {
            ConnectError::Denied(response) | ConnectError::NotWebSocket(response) => {
                Some(*response)
            }
            ConnectError::NoResponse(_) => None,
        }
    }
}

impl<A: App> WebSocketBuilder<A> {
    pub(crate) fn new(request: RequestBuilder<A>) -> Self {
        Self {
            request,
            protocols: Vec::new(),
        }
    }

    /// The subprotocols to offer, in order of preference (`sec-websocket-protocol`).
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Changes the request before it is sent (headers, peer, TLS, mount prefix...).
    pub fn request(mut self, f: impl FnOnce(RequestBuilder<A>) -> RequestBuilder<A>) -> Self {
        self.request = f(self.request);
        self
    }

    /// Uses HTTP/2 extended CONNECT (RFC 8441) instead of an HTTP/1.1 `Upgrade` (`WS-H2-1`).
    pub fn http2(mut self) -> Self {
        self.request = self.request.version(Version::HTTP_2);
        self
    }

    /// Sends the handshake; on acceptance, runs the application's handler on an in-memory
    /// transport and returns the test's end of the session.
    pub async fn connect(self) -> Result<TestWebSocket, ConnectError> {
        let mut request = self.request;
        let h2 = request.version_ref() >= Version::HTTP_2;
        request = if h2 {
            request
                .method(http::Method::CONNECT)
                .header("sec-websocket-version", "13")
        } else {
            request
                .header(http::header::UPGRADE, "websocket")
                .header(http::header::CONNECTION, "upgrade")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-version", "13")
        };
        if !self.protocols.is_empty() {
            request = request.header("sec-websocket-protocol", self.protocols.join(", "));
        }
        request.offer = Offer::WebSocket(self.protocols);
        let (client, req, exchange) = request.build();
        let version = req.version();
        let disconnect = exchange.disconnect().clone();
        let dispatched = client.dispatch(req, &exchange).await?;
        let response = finish(dispatched, version, false, disconnect, exchange.clone());
        let accepted = response.extensions().get::<WebSocketAccepted>().cloned();
        let Some(accepted) = accepted else {
            if response
                .extensions()
                .get::<rgi::upgrade::UpgradeAccepted>()
                .is_some()
            {
                return Err(ConnectError::NotWebSocket(Box::new(response)));
            }
            return Err(ConnectError::Denied(Box::new(response)));
        };
        let expected = if h2 {
            StatusCode::OK
        } else {
            StatusCode::SWITCHING_PROTOCOLS
        };
        let Some(handler) = accepted
            .take_handler()
            .filter(|_| response.status() == expected)
        else {
            return Err(ConnectError::Denied(Box::new(response)));
        };
        // HTTP-DISC-7: the handshake head was handed over.
        exchange.settle(rgi::Outcome::Completed);
        let (to_app, from_test) = mpsc::channel(WS_QUEUE);
        let (to_test, from_app) = mpsc::channel(WS_QUEUE);
        let closed = Arc::new(Closing::default());
        let transport = ChannelTransport {
            rx: from_test,
            tx: to_test.clone(),
            reserve: None,
            permit: None,
            closing: closed.clone(),
        };
        let task = tokio::spawn(async move {
            let result = CatchUnwind::new(handler.run(WebSocket::new(transport))).await;
            let (outcome, code) = match result {
                Ok(Ok(())) => (Ok(()), CloseCode::NORMAL),
                Ok(Err(error)) => (
                    Err(HandlerError(error.to_string())),
                    CloseCode::INTERNAL_ERROR,
                ),
                Err(payload) => (
                    Err(HandlerError(format!(
                        "the handler panicked: {}",
                        panic_message(payload.as_ref())
                    ))),
                    CloseCode::INTERNAL_ERROR,
                ),
            };
            // WS-CLOSE-5 (or the echo of WS-CLOSE-3 that could not be queued at once).
            if !closed.server_sent.swap(true, Ordering::SeqCst) {
                let frame = if closed.peer_closed.load(Ordering::SeqCst) {
                    closed
                        .peer_frame
                        .lock()
                        .ok()
                        .and_then(|f| f.clone())
                        .flatten()
                } else {
                    CloseFrame::new(code, "").ok()
                };
                let _ = to_test.send(Message::Close(frame)).await;
            }
            outcome
        });
        Ok(TestWebSocket {
            tx: Some(to_app),
            rx: from_app,
            head: response,
            subprotocol: accepted.subprotocol().map(str::to_owned),
            app_close: None,
            sent_close: false,
            task: Some(task),
        })
    }
}

#[derive(Default)]
struct Closing {
    /// A close frame went from the server side (the app, or the server for it) to the test.
    server_sent: AtomicBool,
    /// The test's close reached the application.
    peer_closed: AtomicBool,
    peer_frame: std::sync::Mutex<Option<Option<CloseFrame>>>,
}

type Reserve = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Message>, mpsc::error::SendError<()>>> + Send>,
>;

/// The server's end of an in-memory session: two bounded channels.
struct ChannelTransport {
    rx: mpsc::Receiver<Message>,
    tx: mpsc::Sender<Message>,
    reserve: Option<Reserve>,
    permit: Option<mpsc::OwnedPermit<Message>>,
    closing: Arc<Closing>,
}

impl Transport for ChannelTransport {
    fn poll_recv(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        let this = &mut *self;
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Message::Close(frame))) => {
                this.closing.peer_closed.store(true, Ordering::SeqCst);
                if let Ok(mut slot) = this.closing.peer_frame.lock() {
                    *slot = Some(frame.clone());
                }
                // WS-CLOSE-3: answer the peer's close unless the app already closed.
                if !this.closing.server_sent.load(Ordering::SeqCst)
                    && this.tx.try_send(Message::Close(frame.clone())).is_ok()
                {
                    this.closing.server_sent.store(true, Ordering::SeqCst);
                }
                Poll::Ready(Some(Ok(Message::Close(frame))))
            }
            other => other.map(|message| message.map(Ok)),
        }
    }

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = &mut *self;
        if this.permit.is_some() {
            return Poll::Ready(Ok(()));
        }
        let tx = this.tx.clone();
        let reserve = this
            .reserve
            .get_or_insert_with(|| Box::pin(tx.reserve_owned()));
        match reserve.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                this.reserve = None;
                match result {
                    Ok(permit) => {
                        this.permit = Some(permit);
                        Poll::Ready(Ok(()))
                    }
                    Err(_) => Poll::Ready(Err(WsError::Closed)),
                }
            }
        }
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        let Some(permit) = self.permit.take() else {
            return Err(WsError::Transport("start_send without poll_ready".into()));
        };
        if matches!(message, Message::Close(_)) {
            self.closing.server_sent.store(true, Ordering::SeqCst);
        }
        permit.send(message);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// The application's WebSocket handler failed or panicked (the server closed with `1011`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(String);

impl HandlerError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// The test's end of an in-process WebSocket session.
///
/// ```
/// use rgi::{App, Body, Request};
/// use rgi::http::Response;
/// use rgi::ws::{Message, WebSocketUpgrade};
/// use rgi_test::TestClient;
/// use std::convert::Infallible;
///
/// struct Echo;
///
/// impl App for Echo {
///     type Body = Body;
///     type Error = Infallible;
///     async fn call(&self, req: Request) -> Result<Response<Body>, Infallible> {
///         let Some(upgrade) = req.extensions().get::<WebSocketUpgrade>().cloned() else {
///             return Ok(Response::builder().status(400).body(Body::empty()).unwrap());
///         };
///         Ok(upgrade.accept(|mut socket| async move {
///             while let Some(message) = socket.recv().await {
///                 match message? {
///                     Message::Close(_) => break,
///                     other => socket.send(other).await?,
///                 }
///             }
///             Ok(())
///         }))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = TestClient::new(Echo);
/// let mut socket = client.websocket("/ws").connect().await.unwrap();
/// socket.send(Message::text("hi")).await.unwrap();
/// assert_eq!(socket.recv().await, Some(Message::text("hi")));
/// socket.close(None).await.unwrap();
/// assert_eq!(socket.recv().await, Some(Message::Close(None)));
/// socket.finished().await.unwrap();
/// # }
/// ```
pub struct TestWebSocket {
    tx: Option<mpsc::Sender<Message>>,
    rx: mpsc::Receiver<Message>,
    head: TestResponse,
    subprotocol: Option<String>,
    app_close: Option<Option<CloseFrame>>,
    sent_close: bool,
    task: Option<tokio::task::JoinHandle<Result<(), HandlerError>>>,
}

impl fmt::Debug for TestWebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestWebSocket")
            .field("status", &self.head.status())
            .field("subprotocol", &self.subprotocol)
            .field("app_close", &self.app_close)
            .finish_non_exhaustive()
    }
}

impl TestWebSocket {
    /// The handshake response (`101`, or `200` over HTTP/2).
    pub fn response(&self) -> &TestResponse {
        &self.head
    }

    /// The handshake response's header fields.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The subprotocol the application selected.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Sends a message to the application; waits while its inbound queue is full.
    /// Fails with [`WsError::Closed`] after the test's close or once the application is gone.
    pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
        if self.sent_close {
            return Err(WsError::Closed);
        }
        let Some(tx) = &self.tx else {
            return Err(WsError::Closed);
        };
        if matches!(message, Message::Close(_)) {
            self.sent_close = true;
        }
        tx.send(message).await.map_err(|_| WsError::Closed)
    }

    /// Sends a close frame (`None`: no status code).
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        self.send(Message::Close(frame)).await
    }

    /// The next message from the application; `None` once the session is over. A
    /// [`Message::Close`] is the application's close (or the server's for it, `WS-CLOSE-5`).
    pub async fn recv(&mut self) -> Option<Message> {
        let message = self.rx.recv().await;
        if let Some(Message::Close(frame)) = &message {
            if self.app_close.is_none() {
                self.app_close = Some(frame.clone());
            }
        }
        message
    }

    /// The close frame received from the server side, once [`recv`](TestWebSocket::recv)
    /// returned it: `Some(None)` for a close without a status code.
    pub fn close_frame(&self) -> Option<&Option<CloseFrame>> {
        self.app_close.as_ref()
    }

    /// Simulates the client going away without a closing handshake: the application's
    /// `recv` reports `1006` and its sends fail (`WS-CLOSE-2`, `WS-FLOW-4`).
    pub fn drop_connection(&mut self) {
        self.tx = None;
        self.rx.close();
    }

    /// Waits for the application's handler to return, and says how it ended.
    pub async fn finished(&mut self) -> Result<(), HandlerError> {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(error) => Err(HandlerError(error.to_string())),
            },
            None => Ok(()),
        }
    }
}
