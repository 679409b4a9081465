//! The `poem_app` example: in-process through rgi-test (Lint strict), and as the spawned
//! binary on rgi-server.

mod support;

use std::time::Duration;

use http::{StatusCode, header};
use rgi_examples::poem_app::{Greeting, User, app};
use rgi_test::{Lint, LintMode, TestClient};
use support::ServerOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POEM_APP: &str = env!("CARGO_BIN_EXE_poem_app");
/// Upper bound for one network step: only stops a broken server from hanging the suite.
const BOUND: Duration = Duration::from_secs(20);

/// HTTP-RESP-1, HTTP-RESP-2, HTTP-PATH-8: every route of the example answers through
/// `PoemApp`, and Lint (strict) finds no violation on either side.
#[tokio::test]
async fn routes_answer_in_process() {
    let lint = Lint::new(app()).mode(LintMode::Strict);
    let report = lint.report();
    let client = TestClient::new(lint);

    let mut response = client.get("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "Hello, World!");

    let mut response = client
        .post("/echo")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .chunks(["ping ", "pong"])
        .send()
        .await;
    assert_eq!(
        response.header(header::CONTENT_TYPE),
        Some("application/octet-stream")
    );
    assert_eq!(response.text().await.unwrap(), "ping pong");

    let mut response = client.get("/users/7").send().await;
    let user: User = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        user,
        User {
            id: 7,
            name: "user 7".into()
        }
    );
    assert_eq!(
        client.get("/users/seven").send().await.status(),
        StatusCode::BAD_REQUEST
    );

    let mut response = client
        .post("/greet")
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"name": "RGI"}"#)
        .send()
        .await;
    let greeting: Greeting = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(greeting.message, "Hello RGI");

    let mut response = client
        .get("/client")
        .peer("203.0.113.5:4242".parse::<std::net::SocketAddr>().unwrap())
        .send()
        .await;
    assert_eq!(response.text().await.unwrap(), "203.0.113.5:4242");
    assert_eq!(
        client.get("/missing").send().await.status(),
        StatusCode::NOT_FOUND
    );

    let violations = report.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// HTTP-CONN-2, HTTP-FRAME-1: the spawned binary answers over TCP: `GET /` with its fixed
/// length, and `GET /client` with the client's real socket address as poem sees it.
#[tokio::test]
async fn binary_serves_over_tcp() {
    let server = ServerOptions::new(POEM_APP).start();
    for (path, expected) in [("/", None), ("/client", Some(()))] {
        let mut stream = tokio::time::timeout(BOUND, TcpStream::connect(server.addr()))
            .await
            .unwrap()
            .unwrap();
        let local = stream.local_addr().unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(BOUND, stream.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        let response = String::from_utf8(response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        match expected {
            None => {
                assert!(response.contains("content-length: 13\r\n"), "{response}");
                assert!(response.ends_with("\r\n\r\nHello, World!"), "{response}");
            }
            Some(()) => assert!(response.ends_with(&local.to_string()), "{response}"),
        }
    }
    server.assert_no_panic();
}
