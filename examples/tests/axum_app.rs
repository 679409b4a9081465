//! The `axum_app` example end to end: the binary (an axum `Router` on rgi-server through
//! `rgi_tower::TowerApp`) is spawned and driven over TCP — routes, JSON, shared state,
//! compression, the catch-panic layer, WebSocket echo, graceful exit.

mod support;

use std::io::Read as _;

use futures_util::{SinkExt as _, StreamExt as _};
use support::{EXIT_BOUND, HttpConn, IO_BOUND, RawResponse, ServerOptions, TestServer, chunk};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const AXUM_APP: &str = env!("CARGO_BIN_EXE_axum_app");

fn start() -> TestServer {
    ServerOptions::new(AXUM_APP).start()
}

/// Sends `request` on a fresh connection and reads the response.
async fn send(server: &TestServer, request: &[u8]) -> RawResponse {
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(request).await.expect("request sent");
    conn.read_response(IO_BOUND)
        .await
        .unwrap_or_else(|e| panic!("no response: {e:?}\n{}", server.logs()))
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n").into_bytes()
}

fn post(path: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn json(response: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {:?}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

/// HTTP-RESP-1, HTTP-FRAME-1: `GET /` answers the same bytes and content type as the `hello`
/// example, so the two can be benchmarked against each other; `HEAD /` the same head without
/// a body.
#[tokio::test]
async fn root_answers_like_hello() {
    let axum_app = start();
    let hello = TestServer::hello(&[]);
    let ours = send(&axum_app, &get("/", "")).await;
    let theirs = send(&hello, &get("/", "")).await;
    assert_eq!(ours.status, 200);
    assert_eq!(ours.body, b"Hello, World!");
    assert_eq!(ours.body, theirs.body);
    assert_eq!(ours.header("content-type"), theirs.header("content-type"));
    assert_eq!(
        ours.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let mut conn = HttpConn::connect(axum_app.addr()).await;
    conn.send(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("sent");
    let head = conn.read_response_to(true, IO_BOUND).await.expect("head");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
}

/// HTTP-BODY-1, HTTP-BODY-5, HTTP-TRAIL-2: `POST /echo` streams a chunked body back with its
/// content type, and `GET /stream?bytes=N` streams `N` bytes, as in `hello`.
#[tokio::test]
async fn echo_and_stream_work_like_hello() {
    let server = start();
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/x-test\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for piece in ["stream", "ing ", "echo"] {
        request.extend(chunk(piece.as_bytes()));
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let echoed = send(&server, &request).await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body, b"streaming echo");
    assert_eq!(echoed.header("content-type"), Some("text/x-test"));

    let streamed = send(&server, &get("/stream?bytes=200000", "")).await;
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.body.len(), 200_000);
    assert!(streamed.body.iter().all(|b| *b == b'x'));
    assert_eq!(
        streamed.header("content-type"),
        Some("application/octet-stream")
    );
    let bad = send(&server, &get("/stream?bytes=x", "")).await;
    assert_eq!(bad.status, 400);
}

/// HTTP-BODY-7, CORE-ERR-4: an echo whose declared length is over the server's body limit is
/// answered `413` (the handler maps the server's `BodyError` to its status).
#[tokio::test]
async fn echo_over_the_server_limit_is_413() {
    let server = ServerOptions::new(AXUM_APP)
        .args(["--max-body-bytes", "1000"])
        .start();
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n{}",
        "y".repeat(5000)
    );
    let response = send(&server, request.as_bytes()).await;
    assert_eq!(response.status, 413, "{}", server.logs());
}

/// CORE-APP-2, CORE-ERR-8, HTTP-RESP-1: JSON in and out, path parameters and the shared
/// store work across connections; extractor rejections are ordinary 4xx responses.
#[tokio::test]
async fn users_json_and_shared_state() {
    let server = start();
    let created = send(
        &server,
        &post("/users", "application/json", r#"{"name":"Ada"}"#),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("location"), Some("/users/1"));
    assert_eq!(json(&created), serde_json::json!({"id": 1, "name": "Ada"}));
    assert_eq!(created.header("content-type"), Some("application/json"));

    let fetched = send(&server, &get("/users/1", "")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(json(&fetched), serde_json::json!({"id": 1, "name": "Ada"}));
    let listed = send(&server, &get("/users", "")).await;
    assert_eq!(json(&listed), serde_json::json!([{"id": 1, "name": "Ada"}]));

    let missing = send(&server, &get("/users/7", "")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(json(&missing), serde_json::json!({"error": "no user 7"}));
    assert_eq!(send(&server, &get("/users/seven", "")).await.status, 400);
    assert_eq!(
        send(&server, &post("/users", "application/json", "{"))
            .await
            .status,
        400
    );
    assert_eq!(
        send(&server, &post("/users", "text/plain", r#"{"name":"x"}"#))
            .await
            .status,
        415
    );

    for expected in 1..=3 {
        let hits = send(&server, &get("/hits", "")).await;
        assert_eq!(json(&hits), serde_json::json!({ "hits": expected }));
    }
}

/// HTTP-RESP-9: the compression layer negotiates gzip with `Accept-Encoding`: a large body is
/// compressed for a client that accepts gzip (and decodes to the same bytes), and sent as it
/// is otherwise.
#[tokio::test]
async fn compression_is_negotiated() {
    let server = start();
    let plain = send(&server, &get("/stream?bytes=100000", "")).await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body.len(), 100_000);

    let gzipped = send(
        &server,
        &get("/stream?bytes=100000", "Accept-Encoding: gzip\r\n"),
    )
    .await;
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(gzipped.body.len() < 100_000);
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_end(&mut decoded)
        .expect("valid gzip");
    assert_eq!(decoded, plain.body);
}

/// CORE-ERR-5, SRV-LIMIT-11: a panicking handler is answered `500` by the catch-panic layer
/// and the same connection keeps serving.
#[tokio::test]
async fn a_handler_panic_is_a_500_and_the_connection_lives_on() {
    let server = start();
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(&get("/panic", "")).await.expect("sent");
    let panicked = conn.read_response(IO_BOUND).await.expect("a response");
    assert_eq!(panicked.status, 500);
    conn.send(&get("/", "")).await.expect("sent");
    let next = conn.read_response(IO_BOUND).await.expect("a response");
    assert_eq!(next.status, 200);
    assert_eq!(next.body, b"Hello, World!");
}

/// EXT-NS-2, WS-HS-1: the axum WebSocket echo at `/ws` works on rgi-server (through hyper's
/// upgrade handle, the server's compatibility extension).
#[tokio::test]
async fn websocket_echo() {
    let server = start();
    let stream = TcpStream::connect(server.addr()).await.expect("connects");
    let (mut ws, response) = tokio::time::timeout(
        IO_BOUND,
        tokio_tungstenite::client_async(format!("ws://{}/ws", server.addr()), stream),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert_eq!(response.status(), 101);
    let big = support::payload(300_000, 5);
    for message in [
        Message::text("hello"),
        Message::binary(big),
        Message::text("RGI"),
    ] {
        ws.send(message.clone()).await.expect("sent");
        let echoed = tokio::time::timeout(IO_BOUND, ws.next())
            .await
            .expect("echo in time")
            .expect("open")
            .expect("valid");
        assert_eq!(echoed, message);
    }
    ws.close(None).await.expect("closed");
}

/// SRV-SHUT-1, LIFE-SHUT-1: on `SIGTERM` the server drains and exits successfully.
#[tokio::test]
async fn exits_cleanly_on_sigterm() {
    let mut server = start();
    assert_eq!(send(&server, &get("/", "")).await.status, 200);
    server.signal("TERM");
    let status = server
        .wait_exit_async(EXIT_BOUND)
        .await
        .unwrap_or_else(|| panic!("no exit after SIGTERM\n{}", server.logs()));
    assert!(status.success(), "{status}\n{}", server.logs());
}

/// WS-CLOSE-7, LIFE-SHUT-1: an axum WebSocket is not one of the server's own sessions, so the
/// application closes it itself: on `SIGTERM` its shutdown hook makes the handler send a
/// close frame with `1001 Going Away`, and the server exits successfully.
#[tokio::test]
async fn open_websocket_is_closed_with_1001_at_shutdown() {
    let mut server = start();
    let stream = TcpStream::connect(server.addr()).await.expect("connects");
    let (mut ws, _) = tokio::time::timeout(
        IO_BOUND,
        tokio_tungstenite::client_async(format!("ws://{}/ws", server.addr()), stream),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    ws.send(Message::text("before")).await.expect("sent");
    let echoed = tokio::time::timeout(IO_BOUND, ws.next())
        .await
        .expect("in time");
    assert_eq!(
        echoed.expect("open").expect("valid"),
        Message::text("before")
    );

    server.signal("TERM");
    let closing = tokio::time::timeout(EXIT_BOUND, ws.next())
        .await
        .expect("a close frame in time");
    match closing {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1001, "{frame:?}");
        }
        other => panic!(
            "expected a close frame with 1001, got {other:?}\n{}",
            server.logs()
        ),
    }
    let status = server
        .wait_exit_async(EXIT_BOUND)
        .await
        .unwrap_or_else(|| panic!("no exit after SIGTERM\n{}", server.logs()));
    assert!(status.success(), "{status}\n{}", server.logs());
}
