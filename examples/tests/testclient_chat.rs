//! The `chat` example, tested in-process with rgi-test's TestClient.

use std::time::Duration;

use http::{StatusCode, header};
use rgi::ws::Message;
use rgi_examples::chat::Chat;
use rgi_test::{Lint, TestClient, TestWebSocket};

/// Receives until a text message equal to `expected` arrives (bounded).
async fn expect_text(socket: &mut TestWebSocket, expected: &str) {
    let wait = async {
        loop {
            match socket.recv().await {
                Some(Message::Text(text)) if text.as_str() == expected => return,
                Some(_) => continue,
                None => panic!("the session ended before {expected:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no {expected:?} within 20 s"));
}

/// HTTP-RESP-1: `GET /` is the chat page.
#[tokio::test]
async fn serves_the_page() {
    let lint = Lint::new(Chat::new());
    let report = lint.report();
    let client = TestClient::new(lint);
    let mut response = client.get("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.header(header::CONTENT_TYPE),
        Some("text/html; charset=utf-8")
    );
    assert!(response.text().await.unwrap().contains("new WebSocket"));
    assert_eq!(
        client.get("/nope").send().await.status(),
        StatusCode::NOT_FOUND
    );
    report.assert_clean();
}

/// WS-HS-5, WS-FLOW-5, WS-MSG-3: two participants see each other join and talk.
#[tokio::test]
async fn two_participants_broadcast() {
    let lint = Lint::new(Chat::new());
    let report = lint.report();
    let client = TestClient::new(lint);
    let mut alice = client.websocket("/ws").connect().await.unwrap();
    expect_text(&mut alice, "* you are guest-1").await;
    expect_text(&mut alice, "* guest-1 joined").await;
    let mut bob = client.websocket("/ws").connect().await.unwrap();
    expect_text(&mut bob, "* you are guest-2").await;
    expect_text(&mut alice, "* guest-2 joined").await;
    alice.send(Message::text("hello bob")).await.unwrap();
    expect_text(&mut bob, "guest-1: hello bob").await;
    expect_text(&mut alice, "guest-1: hello bob").await;
    bob.send(Message::text("hi alice")).await.unwrap();
    expect_text(&mut alice, "guest-2: hi alice").await;
    bob.close(None).await.unwrap();
    expect_text(&mut alice, "* guest-2 left").await;
    report.assert_clean();
}
