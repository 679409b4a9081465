//! WebSocket sessions and raw upgrades in process.

mod common;

use common::{FnApp, bounded};
use http::{Response, StatusCode, header};
use rgi::upgrade::OnUpgrade;
use rgi::ws::{AcceptOptions, CloseCode, CloseFrame, Message, WebSocketUpgrade, WsError};
use rgi::{Body, BoxError, Request};
use rgi_test::{ConnectError, TestClient, UpgradeConnectError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Echoes messages; `/ws/fail` fails after the first message; `/ws/bye` closes with 4000.
fn ws_app() -> TestClient<impl rgi::App> {
    TestClient::new(FnApp(|req: Request| async move {
        let Some(offer) = req.extensions().get::<WebSocketUpgrade>().cloned() else {
            return Ok(Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .body(Body::empty())?);
        };
        if req.uri().path() == "/denied" {
            return Ok(Response::builder()
                .status(StatusCode::FORBIDDEN)
                .body(Body::from("go away"))?);
        }
        let path = req.uri().path().to_owned();
        let subprotocol = offer.protocols().first().cloned();
        let mut options = AcceptOptions::new();
        if let Some(subprotocol) = subprotocol {
            options = options.subprotocol(subprotocol);
        }
        Ok::<_, BoxError>(offer.accept_with(options, move |mut socket| async move {
            match path.as_str() {
                "/ws/fail" => {
                    let _ = socket.recv().await;
                    Err("the handler failed".into())
                }
                "/ws/bye" => {
                    socket
                        .close(Some(CloseFrame::new(CloseCode::new(4000)?, "bye")?))
                        .await?;
                    // The peer's reply to our close is delivered exactly once.
                    match socket.recv().await {
                        Some(Ok(Message::Close(_))) => Ok(()),
                        other => Err(format!("expected the close reply, got {other:?}").into()),
                    }
                }
                "/ws/return" => Ok(()),
                _ => {
                    while let Some(message) = socket.recv().await {
                        match message? {
                            Message::Close(Some(frame)) if frame.code() == CloseCode::ABNORMAL => {
                                return Err("gone".into());
                            }
                            Message::Close(_) => break,
                            other => socket.send(other).await?,
                        }
                    }
                    // WS-CLOSE-4: sends after the close fail.
                    match socket.send(Message::text("late")).await {
                        Err(WsError::Closed) => Ok(()),
                        other => Err(format!("send after close gave {other:?}").into()),
                    }
                }
            }
        })?)
    }))
}

/// WS-HS-5, WS-MSG-1, WS-MSG-3, WS-CLOSE-3: text and binary echo in order, the test's close
/// is answered, and the handler's send after close fails.
#[tokio::test]
async fn echo_session() {
    let client = ws_app();
    let mut socket = client.websocket("/ws").connect().await.unwrap();
    assert_eq!(socket.response().status(), StatusCode::SWITCHING_PROTOCOLS);
    socket.send(Message::text("one")).await.unwrap();
    socket.send(Message::binary(&b"two"[..])).await.unwrap();
    assert_eq!(bounded(socket.recv()).await, Some(Message::text("one")));
    assert_eq!(
        bounded(socket.recv()).await,
        Some(Message::binary(&b"two"[..]))
    );
    let frame = CloseFrame::new(CloseCode::NORMAL, "done").unwrap();
    socket.close(Some(frame.clone())).await.unwrap();
    assert_eq!(
        bounded(socket.recv()).await,
        Some(Message::Close(Some(frame)))
    );
    assert_eq!(bounded(socket.recv()).await, None);
    bounded(socket.finished()).await.unwrap();
    assert!(matches!(
        socket.send(Message::text("x")).await,
        Err(WsError::Closed)
    ));
}

/// WS-HS-2, WS-H2-1: the selected subprotocol is offered and echoed; HTTP/2 answers 200.
#[tokio::test]
async fn subprotocol_and_http2() {
    let client = ws_app();
    let socket = client
        .websocket("/ws")
        .protocols(["chat", "superchat"])
        .connect()
        .await
        .unwrap();
    assert_eq!(socket.subprotocol(), Some("chat"));
    assert_eq!(socket.headers()[header::SEC_WEBSOCKET_PROTOCOL], "chat");
    let mut h2 = client.websocket("/ws").http2().connect().await.unwrap();
    assert_eq!(h2.response().status(), StatusCode::OK);
    h2.send(Message::text("over h2")).await.unwrap();
    assert_eq!(bounded(h2.recv()).await, Some(Message::text("over h2")));
}

/// WS-HS-4: a denial is an ordinary response, returned as the error value.
#[tokio::test]
async fn denial_returns_the_response() {
    let client = ws_app();
    let error = client.websocket("/denied").connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::Denied(_)));
    let mut response = error.into_response().unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.text().await.unwrap(), "go away");
}

/// WS-CLOSE-5: a handler that returns gives 1000; one that fails gives 1011.
#[tokio::test]
async fn handler_end_closes_the_session() {
    let client = ws_app();
    let mut returned = client.websocket("/ws/return").connect().await.unwrap();
    let close = bounded(returned.recv()).await.unwrap();
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close, got {close:?}");
    };
    assert_eq!(frame.code(), CloseCode::NORMAL);
    let mut failing = client.websocket("/ws/fail").connect().await.unwrap();
    failing.send(Message::text("boom")).await.unwrap();
    let close = bounded(failing.recv()).await.unwrap();
    let Message::Close(Some(frame)) = close else {
        panic!("expected a close, got {close:?}");
    };
    assert_eq!(frame.code(), CloseCode::INTERNAL_ERROR);
    let error = bounded(failing.finished()).await.unwrap_err();
    assert_eq!(error.message(), "the handler failed");
}

/// WS-CLOSE-1, WS-CLOSE-2: the app's close frame reaches the test with its code and reason,
/// and the test's reply reaches the app exactly once.
#[tokio::test]
async fn app_close_frame_is_visible() {
    let client = ws_app();
    let mut socket = client.websocket("/ws/bye").connect().await.unwrap();
    let close = bounded(socket.recv()).await.unwrap();
    assert!(
        matches!(&close, Message::Close(Some(f)) if f.code().as_u16() == 4000 && f.reason() == "bye")
    );
    assert!(socket.close_frame().is_some());
    socket.close(None).await.unwrap();
    bounded(socket.finished()).await.unwrap();
}

/// WS-CLOSE-2, WS-FLOW-4: a client that vanishes is a 1006 close for the app.
#[tokio::test]
async fn dropped_connection_is_1006() {
    let client = ws_app();
    let mut socket = client.websocket("/ws").connect().await.unwrap();
    socket.drop_connection();
    let error = bounded(socket.finished()).await.unwrap_err();
    assert_eq!(error.message(), "gone");
}

/// UPGRADE-RAW-4, UPGRADE-RAW-5, UPGRADE-RAW-6: an accepted upgrade runs the handler on a raw
/// stream that replays early bytes first; a declined one stays an HTTP response.
#[tokio::test]
async fn raw_upgrade() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let Some(offer) = req.extensions().get::<OnUpgrade>().cloned() else {
            return Ok(Response::new(Body::from("plain")));
        };
        if !offer.protocols().iter().any(|p| p == "echo/1") {
            return Ok(Response::builder()
                .status(StatusCode::NOT_IMPLEMENTED)
                .body(Body::empty())?);
        }
        Ok::<_, BoxError>(offer.accept("echo/1", |mut io| async move {
            let mut buffer = [0u8; 64];
            loop {
                let n = io.read(&mut buffer).await?;
                if n == 0 {
                    return Ok(());
                }
                io.write_all(&buffer[..n]).await?;
            }
        })?)
    }));
    let mut io = client
        .upgrade("/tunnel", "echo/1")
        .early_bytes(&b"early "[..])
        .connect()
        .await
        .unwrap();
    assert_eq!(io.response().status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(io.protocol(), "echo/1");
    io.write_all(b"late").await.unwrap();
    let mut received = vec![0u8; 10];
    bounded(io.read_exact(&mut received)).await.unwrap();
    assert_eq!(received, b"early late");
    io.shutdown().await.unwrap();
    bounded(io.finished()).await.unwrap();
    let declined = client
        .upgrade("/tunnel", "other")
        .connect()
        .await
        .unwrap_err();
    let UpgradeConnectError::Declined(response) = declined else {
        panic!("expected a declined upgrade");
    };
    assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
}

/// UPGRADE-RAW-1, UPGRADE-RAW-10: a WebSocket handshake also offers the raw upgrade; an app
/// that accepts it raw gives no WebSocket session.
#[tokio::test]
async fn websocket_handshake_also_offers_raw_upgrade() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        assert!(req.extensions().get::<WebSocketUpgrade>().is_some());
        let Some(offer) = req.extensions().get::<OnUpgrade>().cloned() else {
            return Ok(Response::new(Body::from("no raw offer")));
        };
        assert_eq!(offer.protocols(), ["websocket"]);
        Ok::<_, BoxError>(offer.accept("websocket", |_io| async { Ok(()) })?)
    }));
    let error = client.websocket("/ws").connect().await.unwrap_err();
    assert!(matches!(error, ConnectError::NotWebSocket(_)));
}
