//! Runtime checks of the WebSocket and upgrade types (WS-HS, WS-CLOSE, UPGRADE-RAW).

mod support;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, Version, header};
use rgi::Body;
use rgi::upgrade::{OnUpgrade, UpgradeAccepted, UpgradeError, Upgraded};
use rgi::ws::{
    AcceptOptions, CloseCode, CloseFrame, Message, Transport, WebSocket, WebSocketAccepted,
    WebSocketUpgrade, WsError,
};
use support::block_on;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A scripted peer: messages to deliver, and a log of what the application sent.
#[derive(Default)]
struct FakeTransport {
    inbound: VecDeque<Message>,
    sent: Arc<Mutex<Vec<Message>>>,
}

impl Transport for FakeTransport {
    fn poll_recv(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        Poll::Ready(self.inbound.pop_front().map(Ok))
    }

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        self.sent.lock().unwrap().push(message);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

fn socket(inbound: Vec<Message>) -> (WebSocket, Arc<Mutex<Vec<Message>>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let transport = FakeTransport {
        inbound: inbound.into(),
        sent: sent.clone(),
    };
    (WebSocket::new(transport), sent)
}

fn handshake(version: Version) -> WebSocketUpgrade {
    WebSocketUpgrade::new(version, vec!["chat".into(), "superchat".into()])
}

/// WS-HS: accepting answers 101 on HTTP/1.1 and 200 on HTTP/2, with the chosen subprotocol.
#[test]
fn accept_status_depends_on_the_version() {
    let response: Response<Body> = handshake(Version::HTTP_11)
        .accept_with(AcceptOptions::new().subprotocol("superchat"), |_ws| async {
            Ok(())
        })
        .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response.headers()[header::SEC_WEBSOCKET_PROTOCOL],
        "superchat"
    );
    let accepted = response.extensions().get::<WebSocketAccepted>().unwrap();
    assert_eq!(accepted.subprotocol(), Some("superchat"));
    assert!(accepted.take_handler().is_some());
    assert!(accepted.take_handler().is_none(), "the handler runs once");

    let response: Response<Body> = handshake(Version::HTTP_2).accept(|_ws| async { Ok(()) });
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .is_none()
    );
}

/// WS-HS: a subprotocol the client did not offer is a typed error, with no response built.
#[test]
fn subprotocol_must_be_offered() {
    let result: Result<Response<Body>, WsError> = handshake(Version::HTTP_11)
        .accept_with(AcceptOptions::new().subprotocol("mqtt"), |_ws| async {
            Ok(())
        });
    assert!(matches!(result, Err(WsError::SubprotocolNotOffered(p)) if p == "mqtt"));
}

/// WS-HS: the application cannot set the headers the server owns.
#[test]
fn server_owned_headers_are_refused() {
    for name in [
        header::SEC_WEBSOCKET_ACCEPT,
        header::SEC_WEBSOCKET_PROTOCOL,
        header::CONNECTION,
        header::UPGRADE,
    ] {
        let result: Result<Response<Body>, WsError> = handshake(Version::HTTP_11).accept_with(
            AcceptOptions::new().header(name.clone(), HeaderValue::from_static("x")),
            |_ws| async { Ok(()) },
        );
        assert!(matches!(result, Err(WsError::ForbiddenHeader(n)) if n == name));
    }
    let ok: Result<Response<Body>, WsError> = handshake(Version::HTTP_11).accept_with(
        AcceptOptions::new().header(header::SET_COOKIE, HeaderValue::from_static("a=b")),
        |_ws| async { Ok(()) },
    );
    assert_eq!(ok.unwrap().headers()[header::SET_COOKIE], "a=b");
}

/// WS-CLOSE: the peer's close is delivered exactly once, then the stream ends, and sends fail.
#[test]
fn peer_close_is_delivered_once() {
    let close = CloseFrame::new(CloseCode::GOING_AWAY, "bye").unwrap();
    let (mut ws, sent) = socket(vec![
        Message::text("hi"),
        Message::Close(Some(close.clone())),
    ]);
    block_on(async {
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("hi"));
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::Close(Some(close))
        );
        assert!(ws.recv().await.is_none());
        assert!(ws.recv().await.is_none());
        assert!(matches!(
            ws.send(Message::text("late")).await,
            Err(WsError::Closed)
        ));
    });
    assert!(sent.lock().unwrap().is_empty());
}

/// WS-CLOSE: a connection that ends without a close frame is reported once, as 1006.
#[test]
fn abnormal_end_is_reported_once() {
    let (mut ws, _) = socket(vec![]);
    block_on(async {
        match ws.recv().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code(), CloseCode::ABNORMAL),
            other => panic!("expected a close, got {other:?}"),
        }
        assert!(ws.recv().await.is_none());
    });
}

/// WS-CLOSE: after the application's close, sends fail with a typed error.
#[test]
fn send_after_close_fails() {
    let (mut ws, sent) = socket(vec![]);
    block_on(async {
        ws.send(Message::binary(Bytes::from_static(b"\x01")))
            .await
            .unwrap();
        ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "done").unwrap()))
            .await
            .unwrap();
        assert!(matches!(
            ws.send(Message::text("x")).await,
            Err(WsError::Closed)
        ));
        assert!(matches!(ws.close(None).await, Err(WsError::Closed)));
    });
    assert_eq!(sent.lock().unwrap().len(), 2);
}

/// WS-CLOSE: codes that may not be sent are refused at the call site.
#[test]
fn unsendable_close_codes_are_refused() {
    assert!(CloseCode::new(999).is_err());
    assert!(CloseCode::new(5000).is_err());
    assert!(!CloseCode::ABNORMAL.is_sendable());
    assert!(!CloseCode::new(1004).unwrap().is_sendable());
    assert!(CloseCode::new(4000).unwrap().is_sendable());
    assert!(CloseCode::new(1012).unwrap().is_sendable());
    assert!(!CloseCode::new(1015).unwrap().is_sendable());
    let (mut ws, sent) = socket(vec![]);
    let frame = CloseFrame::new(CloseCode::NO_STATUS, "").unwrap();
    let result = block_on(ws.close(Some(frame)));
    assert!(matches!(result, Err(WsError::InvalidCloseCode(1005))));
    assert!(sent.lock().unwrap().is_empty());
    // The session is still open: a valid close goes through.
    block_on(ws.close(None)).unwrap();
}

/// WS-CLOSE: close reasons fit in a control frame.
#[test]
fn close_reason_length_is_bounded() {
    let long = "x".repeat(124);
    assert!(matches!(
        CloseFrame::new(CloseCode::NORMAL, long),
        Err(WsError::CloseReasonTooLong(124))
    ));
    assert!(CloseFrame::new(CloseCode::NORMAL, "x".repeat(123)).is_ok());
}

/// WS-MSG: text payloads are valid UTF-8 by construction.
#[test]
fn utf8_bytes_validates() {
    assert!(rgi::ws::Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
    let text = rgi::ws::Utf8Bytes::try_from(Bytes::from_static("héllo".as_bytes())).unwrap();
    assert_eq!(&*text, "héllo");
}

/// A split session shares one state: the receiver sees the close, the sender sees "closed".
#[test]
fn split_halves_share_state() {
    let (ws, _) = socket(vec![Message::Close(None)]);
    let (mut rx, mut tx) = ws.split();
    block_on(async {
        assert_eq!(rx.recv().await.unwrap().unwrap(), Message::Close(None));
        assert!(matches!(
            tx.send(Message::text("x")).await,
            Err(WsError::Closed)
        ));
    });
}

/// UPGRADE-RAW: only an offered protocol can be accepted; the server gets the handler once.
#[test]
fn raw_upgrade_accept() {
    let offer = OnUpgrade::new(Version::HTTP_11, vec!["Echo/1".into()]);
    let refused: Result<Response<Body>, UpgradeError> =
        offer.clone().accept("other", |_io| async { Ok(()) });
    assert!(matches!(refused, Err(UpgradeError::NotOffered(p)) if p == "other"));

    let response: Response<Body> = offer.accept("echo/1", |_io| async { Ok(()) }).unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let accepted = response.extensions().get::<UpgradeAccepted>().unwrap();
    assert_eq!(accepted.protocol(), "Echo/1");
    assert!(accepted.take_handler().is_some());
    assert!(accepted.take_handler().is_none());

    let h2: Response<Body> = OnUpgrade::new(Version::HTTP_2, vec!["x".into()])
        .accept("x", |_io| async { Ok(()) })
        .unwrap();
    assert_eq!(h2.status(), StatusCode::OK);
}

struct Pipe {
    input: VecDeque<u8>,
    output: Vec<u8>,
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while buf.remaining() > 0 {
            match self.input.pop_front() {
                Some(b) => buf.put_slice(&[b]),
                None => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// UPGRADE-RAW: bytes read before the switch are replayed first, then the transport's.
#[test]
fn upgraded_replays_buffered_bytes() {
    let pipe = Pipe {
        input: b" world".iter().copied().collect(),
        output: Vec::new(),
    };
    let mut io = Upgraded::new(pipe, Bytes::from_static(b"hello"));
    let mut read = Vec::new();
    block_on(async {
        let mut buf = [0u8; 3];
        loop {
            let mut rb = ReadBuf::new(&mut buf);
            std::future::poll_fn(|cx| Pin::new(&mut io).poll_read(cx, &mut rb))
                .await
                .unwrap();
            if rb.filled().is_empty() {
                break;
            }
            read.extend_from_slice(rb.filled());
        }
        let n = std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, b"ok"))
            .await
            .unwrap();
        assert_eq!(n, 2);
    });
    assert_eq!(read, b"hello world");
}

/// A peer that answers a close at once: once a close frame was handed over, the transport is
/// finished and every flush fails.
#[derive(Default)]
struct ClosingTransport {
    closed: bool,
}

impl Transport for ClosingTransport {
    fn poll_recv(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        Poll::Ready(None)
    }

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(if self.closed {
            Err(WsError::Closed)
        } else {
            Ok(())
        })
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        if matches!(message, Message::Close(_)) {
            self.closed = true;
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(if self.closed {
            Err(WsError::Closed)
        } else {
            Ok(())
        })
    }
}

/// WS-CLOSE-1, WS-CLOSE-4: a close whose frame the transport took succeeds, even when the
/// session ended before the flush was seen (the peer answered at once); a send after it fails.
#[test]
fn close_succeeds_once_its_frame_was_handed_over() {
    let mut socket = WebSocket::new(ClosingTransport::default());
    let frame = CloseFrame::new(CloseCode::new(4001).unwrap(), "bye").unwrap();
    assert!(block_on(socket.close(Some(frame))).is_ok());
    assert!(matches!(
        block_on(socket.send(Message::text("late"))),
        Err(WsError::Closed)
    ));
    assert!(matches!(block_on(socket.close(None)), Err(WsError::Closed)));
}
