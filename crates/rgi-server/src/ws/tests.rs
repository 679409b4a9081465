//! Session tests over in-memory streams, with a tokio-tungstenite client as the peer.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{Response, Version};
use rgi::BoxError;
use rgi::ws::{
    CloseCode, CloseFrame, Message, WebSocket, WebSocketAccepted, WebSocketUpgrade, WsError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode as WireCode, Data as OpData, OpCode};
use tungstenite::protocol::{CloseFrame as WireCloseFrame, Role};

use super::{WsConfig, run_session, run_session_until};

/// Upper bound against hangs; never a timing assertion.
const LIMIT: Duration = Duration::from_secs(20);

type Client = WebSocketStream<DuplexStream>;

/// The application's handler, as the server gets it from an accepting response.
fn handler_of<F, Fut>(handler: F) -> rgi::ws::WebSocketHandler
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let response: Response<()> =
        WebSocketUpgrade::new(Version::HTTP_11, Vec::new()).accept(handler);
    response
        .extensions()
        .get::<WebSocketAccepted>()
        .and_then(WebSocketAccepted::take_handler)
        .expect("an accepting response carries the handler")
}

/// Starts a session with `handler`; returns the peer's raw stream and the session task.
fn start_raw<F, Fut>(config: WsConfig, buffer: usize, handler: F) -> (DuplexStream, JoinHandle<()>)
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let (server, client) = tokio::io::duplex(buffer);
    let session = tokio::spawn(run_session(server, handler_of(handler), config));
    (client, session)
}

async fn start<F, Fut>(config: WsConfig, handler: F) -> (Client, JoinHandle<()>)
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let (io, session) = start_raw(config, 64 << 10, handler);
    (client(io).await, session)
}

async fn client(io: DuplexStream) -> Client {
    WebSocketStream::from_raw_socket(io, Role::Client, None).await
}

async fn echo(mut socket: WebSocket) -> Result<(), BoxError> {
    while let Some(message) = socket.recv().await {
        match message? {
            Message::Close(_) => break,
            other => socket.send(other).await?,
        }
    }
    Ok(())
}

/// The next message from the server, with a bound against hangs.
async fn next(client: &mut Client) -> Option<tungstenite::Message> {
    tokio::time::timeout(LIMIT, client.next())
        .await
        .expect("the server answers")
        .map(|message| message.expect("a valid message"))
}

/// Reads until the server's close frame and returns its code, then completes the close
/// handshake (the client answers on its next read) until the connection ends.
async fn close_code(client: &mut Client) -> u16 {
    let code = loop {
        match next(client).await {
            Some(tungstenite::Message::Close(Some(frame))) => break u16::from(frame.code),
            Some(tungstenite::Message::Close(None)) => panic!("a close frame without a code"),
            Some(_) => continue,
            None => panic!("the connection ended without a close frame"),
        }
    };
    // After failing a session the server does not wait for the answer: errors are fine.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(LIMIT, client.next()).await {}
    code
}

async fn finished(session: JoinHandle<()>) {
    tokio::time::timeout(LIMIT, session)
        .await
        .expect("the session ends")
        .expect("the session does not panic");
}

fn frame(opcode: OpData, payload: &'static [u8], fin: bool) -> tungstenite::Message {
    tungstenite::Message::Frame(Frame::message(payload, OpCode::Data(opcode), fin))
}

/// WS-MSG-1, WS-CLOSE-1, WS-CLOSE-2: text and binary messages are echoed; the peer's close
/// (code and reason) reaches the application exactly once, then `None`.
#[tokio::test]
async fn echoes_and_delivers_the_peers_close_once() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let (mut client, session) = start(
        WsConfig::default(),
        move |mut socket: WebSocket| async move {
            while let Some(message) = socket.recv().await {
                let message = message?;
                record.lock().expect("lock").push(message.clone());
                if !matches!(message, Message::Close(_)) {
                    socket.send(message).await?;
                }
            }
            // After the close, nothing more: `None` again, and sends fail (WS-CLOSE-4).
            assert!(socket.recv().await.is_none());
            assert!(matches!(
                socket.send(Message::text("late")).await,
                Err(WsError::Closed)
            ));
            Ok(())
        },
    )
    .await;

    client.send("hello".into()).await.expect("send");
    assert_eq!(next(&mut client).await, Some("hello".into()));
    client
        .send(tungstenite::Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send");
    assert_eq!(
        next(&mut client).await,
        Some(tungstenite::Message::binary(vec![0u8, 1, 2, 255]))
    );
    client
        .close(Some(WireCloseFrame {
            code: WireCode::Library(4001),
            reason: "done here".into(),
        }))
        .await
        .expect("close");
    // The server answers the close handshake with the same code.
    assert_eq!(close_code(&mut client).await, 4001);
    finished(session).await;

    let seen = seen.lock().expect("lock");
    let closes: Vec<_> = seen
        .iter()
        .filter(|message| matches!(message, Message::Close(_)))
        .collect();
    assert_eq!(closes.len(), 1, "{seen:?}");
    let expected =
        CloseFrame::new(CloseCode::new(4001).expect("code"), "done here").expect("frame");
    assert_eq!(closes[0], &Message::Close(Some(expected)));
    assert_eq!(seen.len(), 3);
}

/// WS-MSG-1, WS-CTRL-1: fragments are reassembled into one message; a ping between them is
/// answered.
#[tokio::test]
async fn reassembles_fragments_and_answers_interleaved_pings() {
    let (mut client, session) = start(WsConfig::default(), echo).await;
    client
        .send(frame(OpData::Text, b"Hel", false))
        .await
        .expect("send");
    client
        .send(tungstenite::Message::Ping("in between".into()))
        .await
        .expect("send");
    client
        .send(frame(OpData::Continue, b"lo, ", false))
        .await
        .expect("send");
    client
        .send(frame(OpData::Continue, b"world", true))
        .await
        .expect("send");
    assert_eq!(
        next(&mut client).await,
        Some(tungstenite::Message::Pong("in between".into()))
    );
    assert_eq!(next(&mut client).await, Some("Hello, world".into()));

    client
        .send(frame(OpData::Binary, b"\x01", false))
        .await
        .expect("send");
    client
        .send(frame(OpData::Continue, b"\x02\x03", true))
        .await
        .expect("send");
    assert_eq!(
        next(&mut client).await,
        Some(tungstenite::Message::binary(vec![1u8, 2, 3]))
    );
    client.close(None).await.expect("close");
    finished(session).await;
}

/// WS-CTRL-1: pings are answered while the application neither receives nor sends.
#[tokio::test]
async fn answers_pings_while_the_application_is_busy() {
    let (release, released) = oneshot::channel::<()>();
    let (mut client, session) = start(WsConfig::default(), move |socket: WebSocket| async move {
        let _ = released.await;
        drop(socket);
        Ok(())
    })
    .await;
    for round in 0..3u8 {
        client
            .send(tungstenite::Message::Ping(vec![round].into()))
            .await
            .expect("send");
        assert_eq!(
            next(&mut client).await,
            Some(tungstenite::Message::Pong(vec![round].into()))
        );
    }
    drop(release);
    assert_eq!(close_code(&mut client).await, 1000);
    finished(session).await;
}

/// WS-CTRL-1, WS-FLOW-1: a peer that sends pings but does not read the pongs is read no
/// further: the pongs cannot pile up in the server's memory.
#[tokio::test]
async fn stops_reading_a_peer_that_does_not_read_its_pongs() {
    const BUFFER: usize = 64 << 10;
    const PINGS: usize = 10_000;
    let (io, session) = start_raw(WsConfig::default(), BUFFER, echo);
    let client = client(io).await;
    let (mut sink, mut stream) = client.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let sender = tokio::spawn(async move {
        for _ in 0..PINGS {
            sink.send(tungstenite::Message::Ping(vec![7u8; 125].into()))
                .await
                .expect("send");
            counter.fetch_add(1, Ordering::SeqCst);
        }
        sink.close().await.expect("close");
    });
    settle().await;
    let before_reading = sent.load(Ordering::SeqCst);
    // Each direction of the pipe holds BUFFER bytes; a ping is 131 bytes, a pong 127, and
    // the server's read buffer holds 8 KiB more.
    let bound = 2 * BUFFER / 127 + (8 << 10) / 131 + 8;
    assert!(
        before_reading <= bound,
        "{before_reading} pings were taken while the peer did not read its pongs"
    );
    assert!(!sender.is_finished());
    let mut pongs = 0;
    while let Some(message) = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("the server answers")
    {
        match message {
            Ok(tungstenite::Message::Pong(_)) => pongs += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(pongs, PINGS);
    tokio::time::timeout(LIMIT, sender)
        .await
        .expect("the sender finishes")
        .expect("the sender does not panic");
    finished(session).await;
}

/// WS-MSG-2, WS-CLOSE-2: text that is not UTF-8 fails the session with 1007; the application
/// learns why, then gets the close with that code, once.
#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let (report, reported) = oneshot::channel();
    let (mut client, session) = start(
        WsConfig::default(),
        move |mut socket: WebSocket| async move {
            let first = socket.recv().await;
            // The session failed: the application cannot close it with a code of its own.
            let late = socket.close(None).await;
            let second = socket.recv().await;
            let third = socket.recv().await;
            let _ = report.send((first, late, second, third));
            Ok(())
        },
    )
    .await;
    client
        .send(frame(OpData::Text, b"caf\xc3\x28", true))
        .await
        .expect("send");
    assert_eq!(close_code(&mut client).await, 1007);
    finished(session).await;
    let (first, late, second, third) = reported.await.expect("the handler reports");
    assert!(
        matches!(first, Some(Err(WsError::Protocol(_)))),
        "{first:?}"
    );
    assert!(matches!(late, Err(WsError::Closed)), "{late:?}");
    // WS-CLOSE-2: then the session's one close, with the code the server sent; then `None`.
    match second {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code(), CloseCode::INVALID_PAYLOAD);
        }
        other => panic!("expected the session's close, got {other:?}"),
    }
    assert!(third.is_none(), "{third:?}");
}

/// WS-MSG-2, WS-MSG-3: messages received before a violation are handled first: their echo
/// goes out before the close.
#[tokio::test]
async fn messages_before_a_violation_are_answered_before_the_close() {
    let (mut client, session) = start(WsConfig::default(), echo).await;
    client.feed("one".into()).await.expect("send");
    client.feed("two".into()).await.expect("send");
    client
        .feed(frame(OpData::Text, b"\xc0\xaf", true))
        .await
        .expect("send");
    client.flush().await.expect("flush");
    assert_eq!(next(&mut client).await, Some("one".into()));
    assert_eq!(next(&mut client).await, Some("two".into()));
    assert_eq!(close_code(&mut client).await, 1007);
    finished(session).await;
}

/// WS-MSG-2: the close for a violation does not wait forever for an application that does
/// not receive (it waits at most `close_timeout`).
#[tokio::test]
async fn violation_closes_even_if_the_application_does_not_receive() {
    let config = WsConfig {
        close_timeout: Duration::from_millis(100),
        ..WsConfig::default()
    };
    let (release, released) = oneshot::channel::<()>();
    let (mut client, session) = start(config, move |socket: WebSocket| async move {
        let _ = released.await;
        drop(socket);
        Ok(())
    })
    .await;
    client
        .send(frame(OpData::Text, b"\xff", true))
        .await
        .expect("send");
    assert_eq!(close_code(&mut client).await, 1007);
    drop(release);
    finished(session).await;
}

/// WS-MSG-2: invalid UTF-8 split across fragments also fails with 1007.
#[tokio::test]
async fn invalid_utf8_across_fragments_closes_with_1007() {
    let (mut client, session) = start(WsConfig::default(), echo).await;
    client
        .send(frame(OpData::Text, b"ok \xe2\x82", false))
        .await
        .expect("send");
    client
        .send(frame(OpData::Continue, b"\xff", true))
        .await
        .expect("send");
    assert_eq!(close_code(&mut client).await, 1007);
    finished(session).await;
}

/// WS-FLOW-2: a message over the limit closes with 1009, whether in one frame or in
/// fragments.
#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let config = WsConfig {
        max_message_size: 1024,
        ..WsConfig::default()
    };
    let (mut client, session) = start(config.clone(), echo).await;
    client
        .send(tungstenite::Message::binary(vec![7u8; 1024]))
        .await
        .expect("send");
    assert_eq!(
        next(&mut client).await,
        Some(tungstenite::Message::binary(vec![7u8; 1024]))
    );
    client
        .send(tungstenite::Message::binary(vec![7u8; 1025]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut client).await, 1009);
    finished(session).await;

    let (mut client, session) = start(config, echo).await;
    for opcode in [OpData::Text, OpData::Continue] {
        client
            .send(tungstenite::Message::Frame(Frame::message(
                vec![b'a'; 600],
                OpCode::Data(opcode),
                false,
            )))
            .await
            .expect("send");
    }
    assert_eq!(close_code(&mut client).await, 1009);
    finished(session).await;
}

/// WS-CTRL-3: a reserved opcode is a protocol error: close 1002.
#[tokio::test]
async fn reserved_opcode_closes_with_1002() {
    let (mut client, session) = start(WsConfig::default(), echo).await;
    client
        .send(frame(OpData::Reserved(3), b"?", true))
        .await
        .expect("send");
    assert_eq!(close_code(&mut client).await, 1002);
    finished(session).await;
}

/// WS-CTRL-3: an unmasked frame from a client is a protocol error: close 1002.
#[tokio::test]
async fn unmasked_client_frame_closes_with_1002() {
    let (mut io, session) = start_raw(WsConfig::default(), 64 << 10, echo);
    // FIN + text, no mask bit, 2 bytes: "hi".
    io.write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .expect("write");
    let mut client = client(io).await;
    assert_eq!(close_code(&mut client).await, 1002);
    finished(session).await;
}

/// WS-CLOSE-5: a handler that returns `Ok` without closing ends the session with 1000.
#[tokio::test]
async fn handler_returning_closes_with_1000() {
    let (mut client, session) =
        start(WsConfig::default(), |_socket: WebSocket| async { Ok(()) }).await;
    assert_eq!(close_code(&mut client).await, 1000);
    // The client completes the close handshake; the server then closes the connection.
    assert!(next(&mut client).await.is_none());
    finished(session).await;
}

/// WS-CLOSE-5: a handler that fails ends the session with 1011.
#[tokio::test]
async fn handler_failing_closes_with_1011() {
    let (mut client, session) = start(WsConfig::default(), |_socket: WebSocket| async {
        Err::<(), BoxError>("the application failed".into())
    })
    .await;
    assert_eq!(close_code(&mut client).await, 1011);
    finished(session).await;
}

/// WS-CLOSE-5: a handler that panics ends the session with 1011; the server survives.
#[tokio::test]
async fn handler_panicking_closes_with_1011() {
    let (mut client, session) = start(WsConfig::default(), |_socket: WebSocket| async {
        panic!("the application panicked");
    })
    .await;
    assert_eq!(close_code(&mut client).await, 1011);
    finished(session).await;
}

/// WS-CLOSE-1, WS-CLOSE-4: the application closes with its code; sending after that fails
/// with `Closed`, and the peer's reply is delivered.
#[tokio::test]
async fn application_close_then_send_is_closed() {
    let (report, reported) = oneshot::channel();
    let (mut client, session) = start(
        WsConfig::default(),
        move |mut socket: WebSocket| async move {
            let frame = CloseFrame::new(CloseCode::new(4000).expect("code"), "bye").expect("frame");
            socket.close(Some(frame)).await?;
            let late = socket.send(Message::text("after close")).await;
            let reply = socket.recv().await;
            let _ = report.send((late, reply));
            Ok(())
        },
    )
    .await;
    match next(&mut client).await {
        Some(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected the application's close, got {other:?}"),
    }
    // tungstenite's client answers the close automatically on the next read.
    assert!(next(&mut client).await.is_none());
    finished(session).await;
    let (late, reply) = reported.await.expect("the handler reports");
    assert!(matches!(late, Err(WsError::Closed)), "{late:?}");
    match reply {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code().as_u16(), 4000),
        other => panic!("expected the peer's close reply, got {other:?}"),
    }
}

/// WS-CLOSE-1: after the application's close, the server waits a bounded time
/// (`close_timeout`) for the peer's answer, then closes the transport, even while the
/// handler keeps running.
#[tokio::test]
async fn application_close_waits_a_bounded_time_for_the_answer() {
    let config = WsConfig {
        close_timeout: Duration::from_millis(100),
        ..WsConfig::default()
    };
    let (release, released) = oneshot::channel::<()>();
    let (mut io, session) = start_raw(config, 64 << 10, move |mut socket: WebSocket| async move {
        let frame = CloseFrame::new(CloseCode::new(4000).expect("code"), "").expect("frame");
        socket.close(Some(frame)).await?;
        let _ = released.await;
        Ok(())
    });
    // The peer never answers; the server's close frame, then the end of the connection.
    let mut bytes = Vec::new();
    tokio::time::timeout(LIMIT, io.read_to_end(&mut bytes))
        .await
        .expect("the connection ends")
        .expect("read");
    assert_eq!(bytes, [0x88, 0x02, 0x0f, 0xa0]);
    assert!(!session.is_finished(), "the handler still runs");
    drop(release);
    finished(session).await;
}

/// WS-CLOSE-4: once the peer is gone, a sender that waits for room fails with `Closed`.
#[tokio::test]
async fn send_fails_with_closed_after_the_peer_is_gone() {
    let (report, reported) = oneshot::channel();
    let (client, session) = start(
        WsConfig::default(),
        move |mut socket: WebSocket| async move {
            // The peer never reads: sends fill the buffer, then wait, then fail.
            let mut result = Ok(());
            for _ in 0..10_000 {
                result = socket.send(Message::binary(vec![0u8; 4096])).await;
                if result.is_err() {
                    break;
                }
            }
            let _ = report.send(result);
            Ok(())
        },
    )
    .await;
    // Let the handler fill the buffer, then leave without a close handshake.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    drop(client);
    let result = tokio::time::timeout(LIMIT, reported)
        .await
        .expect("the send fails promptly")
        .expect("the handler reports");
    assert!(matches!(result, Err(WsError::Closed)), "{result:?}");
    finished(session).await;
}

/// Lets every runnable task run until all wait (the runtime is single-threaded and the
/// streams are in memory, so this is deterministic).
async fn settle() {
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
}

/// WS-FLOW-3: a peer that does not read makes `send` wait: what the server holds is bounded
/// by the transport buffer, not by what the application sends.
#[tokio::test]
async fn send_waits_for_a_peer_that_does_not_read() {
    const BUFFER: usize = 64 << 10;
    const COUNT: usize = 100;
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let (io, session) = start_raw(
        WsConfig::default(),
        BUFFER,
        move |mut socket: WebSocket| async move {
            for index in 0..COUNT {
                let index = u8::try_from(index % 256).expect("small");
                socket.send(Message::binary(vec![index; MESSAGE])).await?;
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        },
    );
    let mut client = client(io).await;
    settle().await;
    let before_reading = sent.load(Ordering::SeqCst);
    // A completed send was written into the in-memory pipe of BUFFER bytes.
    assert!(before_reading >= 1, "the first sends complete");
    assert!(
        before_reading <= BUFFER / MESSAGE + 1,
        "{before_reading} sends completed while the peer did not read"
    );
    // Reading lets everything through, in order.
    for index in 0..COUNT {
        let expected = u8::try_from(index % 256).expect("small");
        assert_eq!(
            next(&mut client).await,
            Some(tungstenite::Message::binary(vec![expected; MESSAGE]))
        );
    }
    assert_eq!(close_code(&mut client).await, 1000);
    assert_eq!(sent.load(Ordering::SeqCst), COUNT);
    finished(session).await;
}

/// WS-FLOW-1: while the application does not receive, the server reads at most
/// `inbound_queue` messages, then stops reading: the peer's sends wait.
#[tokio::test]
async fn stops_reading_when_the_inbound_queue_is_full() {
    let config = WsConfig {
        inbound_queue: 4,
        ..WsConfig::default()
    };
    // Without the bound, the 1 MiB byte limit would let 64 messages in.
    reading_stops_after(config, 4).await;
}

/// WS-FLOW-1: the queue is also bounded in bytes (`inbound_queue_bytes`).
#[tokio::test]
async fn stops_reading_when_the_inbound_queue_holds_enough_bytes() {
    let config = WsConfig {
        inbound_queue: 1000,
        inbound_queue_bytes: 3 * MESSAGE,
        ..WsConfig::default()
    };
    reading_stops_after(config, 3).await;
}

const MESSAGE: usize = 16 << 10;

/// Checks that a session whose application does not receive takes at most `queued`
/// messages of `MESSAGE` bytes (plus what the transport buffers), then stops reading; and
/// that everything arrives once the application receives.
async fn reading_stops_after(config: WsConfig, queued: usize) {
    const BUFFER: usize = 64 << 10;
    const COUNT: usize = 100;
    let (start_reading, reading) = oneshot::channel::<()>();
    let (report, reported) = oneshot::channel();
    let (io, session) = start_raw(config, BUFFER, move |mut socket: WebSocket| async move {
        let _ = reading.await;
        let mut received = 0;
        while let Some(message) = socket.recv().await {
            match message? {
                Message::Binary(data) if data.len() == MESSAGE => received += 1,
                Message::Close(_) => break,
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        let _ = report.send(received);
        Ok(())
    });
    let client = client(io).await;
    let (mut sink, mut stream) = client.split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let sender = tokio::spawn(async move {
        for _ in 0..COUNT {
            sink.send(tungstenite::Message::binary(vec![1u8; MESSAGE]))
                .await
                .expect("send");
            counter.fetch_add(1, Ordering::SeqCst);
        }
        sink.close().await.expect("close");
    });
    settle().await;
    let before_reading = sent.load(Ordering::SeqCst);
    // Queued messages, plus what the pipe and the server's read buffer hold.
    let bound = queued + BUFFER / MESSAGE + 2;
    assert!(
        before_reading <= bound,
        "{before_reading} messages were taken while the application did not receive"
    );
    assert!(!sender.is_finished());
    let _ = start_reading.send(());
    // Keep the client's read side polled so that the close handshake completes.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let received = tokio::time::timeout(LIMIT, reported)
        .await
        .expect("the handler finishes")
        .expect("the handler reports");
    assert_eq!(received, COUNT);
    tokio::time::timeout(LIMIT, sender)
        .await
        .expect("the sender finishes")
        .expect("the sender does not panic");
    finished(session).await;
    reader.abort();
}

/// WS-CLOSE-7, SRV-SHUT-3: at the shutdown deadline the session closes with 1001 and ends,
/// aborting a handler that does not finish.
#[tokio::test]
async fn shutdown_closes_with_1001_and_ends() {
    let (server, io) = tokio::io::duplex(64 << 10);
    let (stop, stopped) = oneshot::channel::<()>();
    let config = WsConfig {
        close_timeout: Duration::from_millis(200),
        ..WsConfig::default()
    };
    let handler = handler_of(|socket: WebSocket| async move {
        // Holds the socket and never finishes.
        std::future::pending::<()>().await;
        drop(socket);
        Ok(())
    });
    let session = tokio::spawn(run_session_until(server, handler, config, async move {
        let _ = stopped.await;
    }));
    let mut client = client(io).await;
    client.send("hello".into()).await.expect("send");
    let _ = stop.send(());
    assert_eq!(close_code(&mut client).await, 1001);
    finished(session).await;
}

/// WS-CLOSE-5: when the peer never answers the server's close, the session still ends
/// (after `close_timeout`), and nothing is left running.
#[tokio::test]
async fn session_ends_when_the_peer_never_answers_the_close() {
    let config = WsConfig {
        close_timeout: Duration::from_millis(200),
        ..WsConfig::default()
    };
    let (mut io, session) = start_raw(config, 64 << 10, |_socket: WebSocket| async { Ok(()) });
    finished(session).await;
    // The server sent its close frame (1000) and then closed the connection.
    let mut bytes = Vec::new();
    tokio::time::timeout(LIMIT, io.read_to_end(&mut bytes))
        .await
        .expect("the connection ends")
        .expect("read");
    assert_eq!(bytes, [0x88, 0x02, 0x03, 0xe8]);
}

/// WS-CLOSE-4, WS-CLOSE-5: a sending half kept by a task the handler spawned does not keep
/// the connection alive: the session closes with 1000 and later sends fail with `Closed`.
#[tokio::test]
async fn a_leftover_sender_gets_closed() {
    let (report, reported) = oneshot::channel();
    let (go, gone) = oneshot::channel::<()>();
    let (mut client, session) = start(WsConfig::default(), move |socket: WebSocket| async move {
        let (_receiver, mut sender) = socket.split();
        tokio::spawn(async move {
            let _ = gone.await;
            let _ = report.send(sender.send(Message::text("too late")).await);
        });
        Ok(())
    })
    .await;
    assert_eq!(close_code(&mut client).await, 1000);
    assert!(next(&mut client).await.is_none());
    finished(session).await;
    let _ = go.send(());
    let result = tokio::time::timeout(LIMIT, reported)
        .await
        .expect("the task reports")
        .expect("the task reports");
    assert!(matches!(result, Err(WsError::Closed)), "{result:?}");
}
