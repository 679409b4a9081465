//! The server's [`rgi::ws::Transport`]: the application's view of a session.
//!
//! Two parties share one [`WebSocketStream`]: the session driver (see `session.rs`), which
//! reads frames from the peer, and the application, which writes messages through this
//! transport. The stream sits behind a `std` mutex that is only ever held for one poll, never
//! across an `.await`; tokio-tungstenite keeps separate read and write wakers, so the two
//! parties can wait on the socket at the same time.
//!
//! Received messages reach the application through [`Inbound`], a queue bounded by
//! `WsConfig::inbound_queue` messages and `WsConfig::inbound_queue_bytes` (`WS-FLOW-1`):
//! while it is full, the driver does not read the socket, and TCP flow control slows the
//! peer down.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_core::Stream;
use futures_sink::Sink;
use rgi::ws::{CloseCode, CloseFrame, Message, Utf8Bytes, WsError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;

/// What a session's parties share.
pub(super) struct Shared<Io> {
    /// The connection; `None` once the session is over (sends then fail with `Closed`).
    stream: Mutex<Option<WebSocketStream<Io>>>,
    /// Who waits to write.
    writers: Arc<Writers>,
    /// Messages for the application.
    inbound: Mutex<Inbound>,
}

/// Which party polls the stream for writing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Writer {
    /// The session driver (close frames).
    Driver,
    /// The application (its messages).
    App,
}

/// The tasks waiting to write. tokio-tungstenite remembers one waker for writing, so both
/// parties poll with a waker that wakes them both: neither can displace the other's.
#[derive(Default)]
struct Writers {
    driver: Mutex<Option<Waker>>,
    app: Mutex<Option<Waker>>,
}

impl Writers {
    fn slot(&self, writer: Writer) -> &Mutex<Option<Waker>> {
        match writer {
            Writer::Driver => &self.driver,
            Writer::App => &self.app,
        }
    }

    fn register(&self, writer: Writer, waker: &Waker) {
        let mut slot = lock(self.slot(writer));
        match slot.as_ref() {
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

impl Wake for Writers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for slot in [&self.driver, &self.app] {
            if let Some(waker) = lock(slot).take() {
                waker.wake();
            }
        }
    }
}

impl<Io> Shared<Io>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    pub(super) fn new(
        stream: WebSocketStream<Io>,
        inbound_capacity: usize,
        inbound_bytes: usize,
    ) -> Self {
        Self {
            stream: Mutex::new(Some(stream)),
            writers: Arc::default(),
            inbound: Mutex::new(Inbound::new(inbound_capacity, inbound_bytes)),
        }
    }

    /// Reads the next frame (only the driver reads); `None` once the session is over.
    pub(super) fn poll_read(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<tungstenite::Message, tungstenite::Error>>> {
        let mut stream = lock(&self.stream);
        match stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_next(cx),
            None => Poll::Ready(None),
        }
    }

    /// Runs one write operation for `writer`; `None` when the session is over.
    pub(super) fn poll_write<T>(
        &self,
        writer: Writer,
        cx: &Context<'_>,
        operation: impl FnOnce(
            Pin<&mut WebSocketStream<Io>>,
            &mut Context<'_>,
        ) -> Poll<Result<T, tungstenite::Error>>,
    ) -> Poll<Option<Result<T, tungstenite::Error>>> {
        let mut stream = lock(&self.stream);
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(None);
        };
        // Register before polling, so that a wake-up in between is not lost.
        self.writers.register(writer, cx.waker());
        let waker = Waker::from(self.writers.clone());
        let mut shared_cx = Context::from_waker(&waker);
        operation(Pin::new(stream), &mut shared_cx).map(Some)
    }

    /// Queues a message; `None` when the session is over.
    pub(super) fn start_send(
        &self,
        message: tungstenite::Message,
    ) -> Option<Result<(), tungstenite::Error>> {
        let mut stream = lock(&self.stream);
        stream
            .as_mut()
            .map(|stream| Pin::new(stream).start_send(message))
    }

    /// Ends the session for the application: takes the stream out (later sends fail with
    /// `Closed`) and wakes whoever waits to write, so that a pending `send` fails promptly
    /// instead of hanging (`WS-CLOSE-4`).
    pub(super) fn take_stream(&self) -> Option<WebSocketStream<Io>> {
        let stream = lock(&self.stream).take();
        self.writers.wake_by_ref();
        stream
    }
}

impl<Io> Shared<Io> {
    pub(super) fn inbound(&self) -> MutexGuard<'_, Inbound> {
        lock(&self.inbound)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Item = Result<Message, WsError>;

/// The bounded queue of received messages (`WS-FLOW-1`): at most `capacity` messages, and
/// no new one once `bytes` reaches `byte_capacity` (a single message may exceed it).
pub(super) struct Inbound {
    items: VecDeque<Item>,
    capacity: usize,
    bytes: usize,
    byte_capacity: usize,
    /// Nothing more will be delivered: the application gets `None` after the queued items.
    finished: bool,
    /// The application's handler returned: received messages are dropped.
    detached: bool,
    /// The application received an error: the session failed, and it may not send anymore
    /// (the server's close carries the reason).
    error_seen: bool,
    /// The application sent its close frame.
    app_closed: bool,
    /// The application, waiting for a message.
    receiver: Option<Waker>,
    /// The driver, waiting for room.
    driver: Option<Waker>,
}

impl Inbound {
    fn new(capacity: usize, byte_capacity: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(capacity.min(64)),
            capacity: capacity.max(1),
            bytes: 0,
            byte_capacity,
            finished: false,
            detached: false,
            error_seen: false,
            app_closed: false,
            receiver: None,
            driver: None,
        }
    }

    /// Ready when the driver may read the next message from the socket.
    pub(super) fn poll_room(&mut self, cx: &Context<'_>) -> Poll<()> {
        let has_room = self.items.is_empty()
            || (self.items.len() < self.capacity && self.bytes < self.byte_capacity);
        if self.detached || has_room {
            Poll::Ready(())
        } else {
            self.driver = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Hands a message (or the reason the session failed) to the application.
    ///
    /// The driver calls it only after [`Inbound::poll_room`]; the one exception, an error
    /// after which nothing else is read, may exceed the bound by one.
    pub(super) fn push(&mut self, item: Item) {
        if self.detached || self.finished {
            return;
        }
        self.bytes += payload_len(&item);
        self.items.push_back(item);
        if let Some(waker) = self.receiver.take() {
            waker.wake();
        }
    }

    /// Ready once the application has received an error item, or stopped receiving.
    pub(super) fn poll_error_seen(&mut self, cx: &Context<'_>) -> Poll<()> {
        if self.error_seen || self.detached {
            Poll::Ready(())
        } else {
            self.driver = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Whether the application sent its close frame; if not, the driver is woken when it does.
    pub(super) fn poll_app_closed(&mut self, cx: &Context<'_>) -> bool {
        if !self.app_closed {
            match self.driver.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => self.driver = Some(cx.waker().clone()),
            }
        }
        self.app_closed
    }

    fn mark_app_closed(&mut self) {
        self.app_closed = true;
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }

    /// Nothing more will be delivered.
    pub(super) fn finish(&mut self) {
        self.finished = true;
        if let Some(waker) = self.receiver.take() {
            waker.wake();
        }
    }

    /// The handler returned: drop what is queued and whatever arrives later.
    pub(super) fn detach(&mut self) {
        self.detached = true;
        self.items.clear();
        self.bytes = 0;
        if let Some(waker) = self.driver.take() {
            waker.wake();
        }
    }

    fn poll_recv(&mut self, cx: &Context<'_>) -> Poll<Option<Item>> {
        if let Some(item) = self.items.pop_front() {
            self.bytes = self.bytes.saturating_sub(payload_len(&item));
            self.error_seen |= item.is_err();
            if let Some(waker) = self.driver.take() {
                waker.wake();
            }
            return Poll::Ready(Some(item));
        }
        if self.finished || self.detached {
            return Poll::Ready(None);
        }
        self.receiver = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The size of a queued message's payload.
fn payload_len(item: &Item) -> usize {
    match item {
        Ok(Message::Text(text)) => text.len(),
        Ok(Message::Binary(data)) => data.len(),
        _ => 0,
    }
}

/// The application's side of a session: [`rgi::ws::WebSocket`] wraps it.
pub(super) struct ServerTransport<Io> {
    shared: Arc<Shared<Io>>,
}

impl<Io> ServerTransport<Io> {
    pub(super) fn new(shared: Arc<Shared<Io>>) -> Self {
        Self { shared }
    }
}

impl<Io> rgi::ws::Transport for ServerTransport<Io>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_recv(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.shared.inbound().poll_recv(cx)
    }

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.shared.inbound().error_seen {
            // The session failed (the server closes it with 1002, 1007 or 1009).
            return Poll::Ready(Err(WsError::Closed));
        }
        self.shared
            .poll_write(Writer::App, cx, |stream, cx| stream.poll_ready(cx))
            .map(send_result)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        if self.shared.inbound().error_seen {
            return Err(WsError::Closed);
        }
        let closing = matches!(message, Message::Close(_));
        let result = send_result(self.shared.start_send(to_wire(message)?));
        if closing && result.is_ok() {
            // WS-CLOSE-1: the server now waits a bounded time for the peer's answer.
            self.shared.inbound().mark_app_closed();
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.shared
            .poll_write(Writer::App, cx, |stream, cx| stream.poll_flush(cx))
            .map(send_result)
    }
}

/// The outcome of a write in the application's terms.
fn send_result(result: Option<Result<(), tungstenite::Error>>) -> Result<(), WsError> {
    match result {
        Some(result) => result.map_err(send_error),
        None => Err(WsError::Closed),
    }
}

/// An application message in tungstenite's terms.
fn to_wire(message: Message) -> Result<tungstenite::Message, WsError> {
    Ok(match message {
        Message::Text(text) => {
            // `rgi::ws::Utf8Bytes` is valid UTF-8 by construction; this check cannot fail.
            let text = tungstenite::Utf8Bytes::try_from(text.into_bytes())
                .map_err(|error| WsError::Transport(error.into()))?;
            tungstenite::Message::Text(text)
        }
        Message::Binary(data) => tungstenite::Message::Binary(data),
        Message::Close(frame) => {
            tungstenite::Message::Close(frame.map(|frame| tungstenite::protocol::CloseFrame {
                code: WireCloseCode::from(frame.code().as_u16()),
                reason: frame.reason().into(),
            }))
        }
        // `Message` is non-exhaustive: a kind this server does not know cannot be sent.
        #[allow(unreachable_patterns)]
        _ => return Err(WsError::Transport("unsupported message kind".into())),
    })
}

/// A received data or close message in the application's terms; `None` for pings and pongs,
/// which the server handles itself (`WS-CTRL-1`).
pub(super) fn from_wire(message: tungstenite::Message) -> Option<Message> {
    match message {
        tungstenite::Message::Text(text) => {
            // tungstenite validated the UTF-8 (WS-MSG-2); an impossible failure is reported
            // as binary rather than dropped.
            let bytes = bytes::Bytes::from(text);
            Some(match Utf8Bytes::try_from(bytes.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(bytes),
            })
        }
        tungstenite::Message::Binary(data) => Some(Message::Binary(data)),
        tungstenite::Message::Close(frame) => Some(Message::Close(frame.and_then(close_frame))),
        tungstenite::Message::Ping(_)
        | tungstenite::Message::Pong(_)
        | tungstenite::Message::Frame(_) => None,
    }
}

/// A received close frame in the application's terms.
fn close_frame(frame: tungstenite::protocol::CloseFrame) -> Option<CloseFrame> {
    let code = CloseCode::new(u16::from(frame.code)).unwrap_or(CloseCode::PROTOCOL_ERROR);
    let reason = Utf8Bytes::try_from(bytes::Bytes::from(frame.reason)).unwrap_or_default();
    CloseFrame::new(code, reason).ok()
}

/// A failed send in the application's terms: `Closed` when the session is over or the peer
/// is gone (`WS-CLOSE-4`).
fn send_error(error: tungstenite::Error) -> WsError {
    use tungstenite::Error;
    match error {
        Error::ConnectionClosed
        | Error::AlreadyClosed
        | Error::Protocol(tungstenite::error::ProtocolError::SendAfterClosing) => WsError::Closed,
        Error::Io(error) if is_disconnect(&error) => WsError::Closed,
        Error::Capacity(error) => WsError::Transport(error.into()),
        other => WsError::Transport(other.into()),
    }
}

/// Whether an I/O error means the peer is gone.
pub(crate) fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::WriteZero
    )
}
