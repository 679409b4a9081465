//! The `websocket_echo` example, tested in-process with rgi-test's TestClient.

use std::time::Duration;

use http::StatusCode;
use rgi::ws::{CloseCode, CloseFrame, Message};
use rgi_examples::websocket_echo::WebSocketEcho;
use rgi_test::{ConnectError, Lint, TestClient};

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("timed out after 20 s")
}

/// WS-HS-5, WS-MSG-1, WS-CLOSE-3, WS-H2-1: text and binary messages come back unchanged, over
/// HTTP/1.1 and HTTP/2, and the close is answered.
#[tokio::test]
async fn echoes_text_and_binary() {
    let lint = Lint::new(WebSocketEcho);
    let report = lint.report();
    let client = TestClient::new(lint);
    for http2 in [false, true] {
        let mut builder = client.websocket("/ws");
        if http2 {
            builder = builder.http2();
        }
        let mut socket = builder.connect().await.unwrap();
        socket.send(Message::text("héllo")).await.unwrap();
        socket.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
        assert_eq!(bounded(socket.recv()).await, Some(Message::text("héllo")));
        assert_eq!(
            bounded(socket.recv()).await,
            Some(Message::binary(vec![0u8, 1, 2]))
        );
        let frame = CloseFrame::new(CloseCode::NORMAL, "bye").unwrap();
        socket.close(Some(frame.clone())).await.unwrap();
        assert_eq!(
            bounded(socket.recv()).await,
            Some(Message::Close(Some(frame)))
        );
        bounded(socket.finished()).await.unwrap();
    }
    report.assert_clean();
}

/// WS-HS-4, HTTP-PATH-8: other paths are 404; `/ws` without a handshake is 426.
#[tokio::test]
async fn other_requests() {
    let client = TestClient::new(WebSocketEcho);
    let denied = client.websocket("/elsewhere").connect().await.unwrap_err();
    let Some(response) = denied.into_response() else {
        panic!("expected a response");
    };
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let plain = client.get("/ws").send().await;
    assert_eq!(plain.status(), StatusCode::UPGRADE_REQUIRED);
    assert!(matches!(
        client.websocket("/").connect().await,
        Err(ConnectError::Denied(_))
    ));
}
