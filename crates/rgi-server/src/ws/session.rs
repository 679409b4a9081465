//! One WebSocket session: the driver that reads the socket, and the application's handler.
//!
//! The session runs in the task that calls [`run`]; it spawns the application's handler as
//! its own task, so that a panic is caught (`WS-CLOSE-5`) and a slow handler never stops
//! the server from answering pings (`WS-CTRL-1`). The driver reads frames only while the
//! inbound queue has room (`WS-FLOW-1`), and decides every close the server sends:
//!
//! | event                                   | close sent          |
//! |-----------------------------------------|---------------------|
//! | text with invalid UTF-8                 | 1007                |
//! | message or frame over the limits        | 1009                |
//! | any other protocol violation            | 1002                |
//! | handler returned `Ok` without closing   | 1000                |
//! | handler failed or panicked              | 1011                |
//! | server shutdown                         | 1001                |
//!
//! Nothing outlives the session: when [`run`] returns (or is dropped), the socket is closed
//! and the handler's task, if still running, is aborted.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_sink::Sink;
use rgi::ws::{CloseCode, CloseFrame, Message, WebSocket, WebSocketHandler, WsError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Sleep;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;
use tungstenite::protocol::{CloseFrame as WireCloseFrame, Role};

use super::WsConfig;
use super::transport::{ServerTransport, Shared, Writer, from_wire, is_disconnect};

/// How many frames the driver handles before it yields to other tasks.
const READ_BUDGET: usize = 64;

/// Runs an accepted session until the connection and the handler are done; or, once
/// `shutdown` resolves, until the server's close frame went out (at most
/// `min(config.close_timeout, 1 s)`).
pub(super) async fn run<Io, S>(io: Io, handler: WebSocketHandler, config: WsConfig, shutdown: S)
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Future<Output = ()> + Send,
{
    let stream =
        WebSocketStream::from_raw_socket(io, Role::Server, Some(config.wire_config())).await;
    let shared = Arc::new(Shared::new(
        stream,
        config.inbound_queue,
        config.inbound_queue_bytes,
    ));
    let socket = WebSocket::new(ServerTransport::new(shared.clone()));
    let mut app = AbortOnDrop(tokio::spawn(handler.run(socket)));
    let mut driver = Driver::new(shared, config.close_timeout);

    let mut shutdown = pin!(shutdown);
    let mut shutdown_seen = false;
    let mut app_done = false;
    // Armed when the server stops waiting for the peer's close frame.
    let deadline = tokio::time::sleep(config.close_timeout);
    let mut deadline = pin!(deadline);
    let mut deadline_armed = false;

    // After a shutdown, the handler is not waited for (WS-CLOSE-7).
    while !(driver.is_finished() && (app_done || shutdown_seen)) {
        let event = tokio::select! {
            () = poll_fn(|cx| driver.poll(cx)), if !driver.is_finished() => Event::ConnectionDone,
            joined = &mut app.0, if !app_done => Event::AppDone(joined),
            () = &mut shutdown, if !shutdown_seen => Event::Shutdown,
            () = &mut deadline, if deadline_armed => Event::Deadline,
        };
        match event {
            Event::ConnectionDone => driver.release(config.close_timeout).await,
            Event::AppDone(joined) => {
                app_done = true;
                driver.shared.inbound().detach();
                driver.close_with(app_outcome(joined, driver.failed));
                if !deadline_armed {
                    deadline_armed = true;
                    deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + config.close_timeout);
                }
            }
            Event::Shutdown => {
                shutdown_seen = true;
                // The server's deadline has passed: send 1001 if the transport takes it, but
                // wait neither for the peer's answer nor for the handler.
                driver.close_with(close_frame(
                    WireCloseCode::Away,
                    "the server is shutting down",
                ));
                driver.reading = false;
                deadline_armed = true;
                deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + config.close_timeout.min(SHUTDOWN_GRACE));
            }
            Event::Deadline => {
                tracing::debug!("WebSocket session: the close handshake timed out");
                break;
            }
        }
    }
    driver
        .release(config.close_timeout.min(SHUTDOWN_GRACE))
        .await;
    // `app` aborts the handler if it is still running (after a shutdown).
}

/// How long the server reads and drops a misbehaving peer's input after its close frame
/// (`WS-CLOSE-8`).
const LINGER_TIME: Duration = Duration::from_secs(2);

/// How many bytes of a misbehaving peer's input the server reads and drops after its close
/// frame (`WS-CLOSE-8`).
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Reads and drops input until the peer closes, an error, or [`LINGER_BYTES`].
async fn discard_input<Io: AsyncRead + Unpin>(io: &mut Io) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    while total < LINGER_BYTES {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// How long a session may take to end once the server's shutdown deadline has passed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

enum Event {
    ConnectionDone,
    AppDone(Result<Result<(), rgi::BoxError>, JoinError>),
    Shutdown,
    Deadline,
}

/// The close the server sends when the handler has finished (`WS-CLOSE-5`).
fn app_outcome(
    joined: Result<Result<(), rgi::BoxError>, JoinError>,
    peer_failed: bool,
) -> WireCloseFrame {
    match joined {
        Ok(Ok(())) => close_frame(WireCloseCode::Normal, ""),
        Ok(Err(error)) => {
            if peer_failed || is_session_error(&*error) {
                // The handler only passed on what the session reported (`message?`).
                tracing::debug!(error = %error, "WebSocket handler ended with a session error");
            } else {
                // SRV-LOG-1: the session's span gives the method, path and connection.
                tracing::error!(
                    error = %crate::service::error_chain(&*error),
                    "the WebSocket handler failed; closing the session with 1011"
                );
            }
            close_frame(WireCloseCode::Error, "")
        }
        Err(join) if join.is_panic() => {
            tracing::error!(
                error = %join,
                "the WebSocket handler panicked; closing the session with 1011"
            );
            close_frame(WireCloseCode::Error, "")
        }
        Err(_) => close_frame(WireCloseCode::Error, ""),
    }
}

/// Whether an error (chain) is a [`WsError`] the session handed to the application.
fn is_session_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<WsError>() {
            return true;
        }
        next = error.source();
    }
    false
}

fn close_frame(code: WireCloseCode, reason: &'static str) -> WireCloseFrame {
    WireCloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Aborts a task when dropped: a cancelled session leaves no handler behind.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The server's close frame, on its way out.
enum Closing {
    /// The server has not decided to close.
    No,
    /// The server decided to close: the frame waits for room in the write buffer.
    Queued(WireCloseFrame),
    /// The frame is queued; it is being flushed.
    Flushing,
    /// Sent, or not needed (a close was already sent or received).
    Done,
}

/// Reads the socket and sends the server's close frames.
struct Driver<Io> {
    shared: Arc<Shared<Io>>,
    /// The peer may still send frames.
    reading: bool,
    /// The peer sent a close frame: what follows needs no room in the queue.
    peer_closed: bool,
    /// A pong waits to be written.
    pong_pending: bool,
    /// The peer broke the protocol (the session failed with 1002, 1007 or 1009).
    failed: bool,
    /// The close for a protocol violation, held back until the application has received
    /// the messages before it (and the error), so that its answers to them go out first;
    /// bounded by `close_timeout`.
    failure: Option<(WireCloseFrame, Pin<Box<Sleep>>)>,
    /// Started when the application sent its close frame: how long the peer has to answer
    /// (`WS-CLOSE-1`).
    answer_deadline: Option<Pin<Box<Sleep>>>,
    close_timeout: Duration,
    closing: Closing,
    /// The session ended in order: the close handshake completed, or the server's close
    /// frame went out. Otherwise the transport is dropped without a shutdown (on HTTP/2,
    /// the stream is reset, `WS-H2-4`).
    clean: bool,
    /// The connection is over and released.
    released: bool,
}

impl<Io> Driver<Io>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn new(shared: Arc<Shared<Io>>, close_timeout: Duration) -> Self {
        Self {
            shared,
            reading: true,
            peer_closed: false,
            pong_pending: false,
            failed: false,
            failure: None,
            answer_deadline: None,
            close_timeout,
            closing: Closing::No,
            clean: false,
            released: false,
        }
    }

    /// Nothing more will be read or written on the connection.
    fn is_finished(&self) -> bool {
        self.released
            || (!self.reading
                && self.failure.is_none()
                && matches!(self.closing, Closing::No | Closing::Done))
    }

    /// Decides to close with `frame` (or with the code of a held-back protocol violation),
    /// unless the session is already closing.
    fn close_with(&mut self, frame: WireCloseFrame) {
        let frame = match self.failure.take() {
            Some((failure, _)) => failure,
            None => frame,
        };
        if matches!(self.closing, Closing::No) && !self.released {
            self.closing = Closing::Queued(frame);
        }
    }

    /// Sends the close for a protocol violation once the application has seen the error,
    /// or stopped receiving, or the time is up.
    fn poll_failure(&mut self, cx: &mut Context<'_>) {
        let Some((_, timer)) = self.failure.as_mut() else {
            return;
        };
        let seen = self.shared.inbound().poll_error_seen(cx).is_ready();
        if seen || timer.as_mut().poll(cx).is_ready() {
            if let Some((frame, _)) = self.failure.take() {
                self.close_with(frame);
            }
        }
    }

    /// Stops reading when the peer has not answered the application's close in time.
    fn poll_answer_deadline(&mut self, cx: &mut Context<'_>) {
        if !self.reading {
            return;
        }
        if self.answer_deadline.is_none() && self.shared.inbound().poll_app_closed(cx) {
            self.answer_deadline = Some(Box::pin(tokio::time::sleep(self.close_timeout)));
        }
        if let Some(deadline) = self.answer_deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!("WebSocket peer did not answer the close frame in time");
                self.reading = false;
            }
        }
    }

    /// Makes progress; ready once the connection is finished.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_answer_deadline(cx);
        for _ in 0..READ_BUDGET {
            self.poll_failure(cx);
            let closing = self.poll_close(cx);
            if !self.reading {
                return if self.failure.is_some() {
                    Poll::Pending
                } else {
                    closing
                };
            }
            if !self.peer_closed && self.shared.inbound().poll_room(cx).is_pending() {
                // WS-FLOW-1: the queue is full; stop reading until the application catches up.
                return Poll::Pending;
            }
            if self.pong_pending && self.poll_pong(cx).is_pending() {
                // A peer that sends pings but does not read the pongs is read no further:
                // unanswered pongs would pile up in the write buffer.
                return Poll::Pending;
            }
            match self.shared.poll_read(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(message))) => {
                    // tungstenite queued the pong for a ping (WS-CTRL-1); it is written before
                    // the next frame is read.
                    self.pong_pending |= matches!(message, tungstenite::Message::Ping(_));
                    if let Some(message) = from_wire(message) {
                        if matches!(message, Message::Close(_)) {
                            self.peer_closed = true;
                        }
                        self.shared.inbound().push(Ok(message));
                    }
                }
                Poll::Ready(Some(Err(error))) => self.read_failed(error),
                // The close handshake is complete (or the stream was already over).
                Poll::Ready(None) => {
                    self.reading = false;
                    self.clean = true;
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes the pong tungstenite queued; ready when it is written (or cannot be).
    fn poll_pong(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self
            .shared
            .poll_write(Writer::Driver, cx, |stream, cx| stream.poll_flush(cx))
        {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(()))) => {}
            Poll::Ready(Some(Err(error))) => {
                tracing::debug!(error = %error, "WebSocket pong could not be sent");
                self.reading = false;
            }
            Poll::Ready(None) => self.reading = false,
        }
        self.pong_pending = false;
        Poll::Ready(())
    }

    /// Handles a read error: the peer broke the protocol, or is gone.
    fn read_failed(&mut self, error: tungstenite::Error) {
        use tungstenite::Error;
        self.reading = false;
        let code = match &error {
            Error::Utf8(_) => WireCloseCode::Invalid,
            Error::Capacity(_) => WireCloseCode::Size,
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                tracing::debug!("WebSocket peer left without a close handshake");
                return;
            }
            Error::Protocol(_) | Error::AttackAttempt => WireCloseCode::Protocol,
            Error::Io(io) if is_disconnect(io) => {
                tracing::debug!(error = %io, "WebSocket peer is gone");
                return;
            }
            _ => {
                tracing::debug!(error = %error, "WebSocket transport failed");
                self.shared
                    .inbound()
                    .push(Err(WsError::Transport(error.into())));
                return;
            }
        };
        tracing::debug!(error = %error, code = u16::from(code), "WebSocket peer broke the protocol");
        self.failed = true;
        self.failure = Some((
            close_frame(code, ""),
            Box::pin(tokio::time::sleep(self.close_timeout)),
        ));
        let mut inbound = self.shared.inbound();
        inbound.push(Err(WsError::Protocol(error.into())));
        // WS-CLOSE-2: the session's one close, with the code the server sent.
        let closed = CloseCode::new(u16::from(code))
            .ok()
            .and_then(|code| CloseFrame::new(code, "").ok());
        inbound.push(Ok(Message::Close(closed)));
    }

    /// Sends the server's close frame, if it decided to close; ready when there is nothing
    /// (more) to send.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match std::mem::replace(&mut self.closing, Closing::Done) {
                Closing::No => {
                    self.closing = Closing::No;
                    return Poll::Ready(());
                }
                Closing::Done => return Poll::Ready(()),
                Closing::Queued(frame) => {
                    match self
                        .shared
                        .poll_write(Writer::Driver, cx, |stream, cx| stream.poll_ready(cx))
                    {
                        Poll::Pending => {
                            self.closing = Closing::Queued(frame);
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(()))) => {}
                        Poll::Ready(None) => return Poll::Ready(()),
                        Poll::Ready(Some(Err(error))) => return self.write_failed(error),
                    }
                    match self
                        .shared
                        .start_send(tungstenite::Message::Close(Some(frame)))
                    {
                        Some(Ok(())) => self.closing = Closing::Flushing,
                        // A close was already sent or received: nothing to add.
                        Some(Err(
                            tungstenite::Error::Protocol(ProtocolError::SendAfterClosing)
                            | tungstenite::Error::AlreadyClosed
                            | tungstenite::Error::ConnectionClosed,
                        )) => return Poll::Ready(()),
                        Some(Err(error)) => return self.write_failed(error),
                        None => return Poll::Ready(()),
                    }
                }
                Closing::Flushing => {
                    match self
                        .shared
                        .poll_write(Writer::Driver, cx, |stream, cx| stream.poll_flush(cx))
                    {
                        Poll::Pending => {
                            self.closing = Closing::Flushing;
                            return Poll::Pending;
                        }
                        Poll::Ready(Some(Ok(()))) => {
                            self.clean = true;
                            return Poll::Ready(());
                        }
                        Poll::Ready(None) => return Poll::Ready(()),
                        Poll::Ready(Some(Err(error))) => return self.write_failed(error),
                    }
                }
            }
        }
    }

    fn write_failed(&mut self, error: tungstenite::Error) -> Poll<()> {
        tracing::debug!(error = %error, "WebSocket close frame could not be sent");
        self.closing = Closing::Done;
        self.reading = false;
        Poll::Ready(())
    }

    /// Releases the connection: sends are refused from now on (`WS-CLOSE-4`), the transport
    /// is shut down if the session ended in order (bounded by `timeout`) and dropped, and the
    /// application gets the end of the message stream.
    async fn release(&mut self, timeout: Duration) {
        if self.released {
            return;
        }
        self.released = true;
        self.reading = false;
        self.shared.inbound().finish();
        let stream = self.shared.take_stream();
        if let Some(mut stream) = stream.filter(|_| self.clean) {
            // Best effort: the peer may already be gone.
            let io = stream.get_mut();
            let _ = tokio::time::timeout(timeout, io.shutdown()).await;
            if self.failed {
                // WS-CLOSE-8: the peer broke the protocol and may still be sending (the rest
                // of an oversized message). Closing with its bytes unread would make the
                // kernel answer with a reset, which can destroy the close frame (and its
                // code) before the peer reads it: its input is read and dropped first, until
                // it closes, for a bounded time and amount.
                let _ = tokio::time::timeout(timeout.min(LINGER_TIME), discard_input(io)).await;
            }
        }
    }
}
