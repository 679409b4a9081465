//! `PoemApp` on the reference server: real sockets, HTTP/1.1 over TCP.

use std::net::SocketAddr;
use std::time::Duration;

use poem::web::{Json, Path, RemoteAddr};
use poem::{Body, Route, get, handler, post};
use rgi_poem::PoemApp;
use rgi_server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for one network step: only stops a broken server from hanging the suite.
const BOUND: Duration = Duration::from_secs(20);

#[handler]
fn client(remote: &RemoteAddr) -> String {
    remote
        .as_socket_addr()
        .map_or("-".into(), SocketAddr::to_string)
}

#[handler]
fn echo(body: Body) -> Body {
    body
}

#[handler]
fn user(Path(id): Path<u32>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id }))
}

/// Sends one HTTP/1.1 request with `connection: close` and returns the whole response.
async fn exchange(addr: SocketAddr, request: &str) -> (String, SocketAddr) {
    let mut stream = tokio::time::timeout(BOUND, TcpStream::connect(addr))
        .await
        .expect("connects in time")
        .expect("connects");
    let local = stream.local_addr().unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut response))
        .await
        .expect("the response ends in time")
        .expect("reads the response");
    (String::from_utf8(response).unwrap(), local)
}

/// HTTP-CONN-2, HTTP-RESP-1, HTTP-BODY-5: on rgi-server, poem sees the real client socket
/// address as its `RemoteAddr`, a chunked request body is echoed whole, and path parameters
/// and JSON work over the wire.
#[tokio::test]
async fn poem_route_on_rgi_server() {
    let route = Route::new()
        .at("/client", get(client))
        .at("/echo", post(echo))
        .at("/users/:id", get(user));
    let config = Config::default()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(false);
    let server = tokio::time::timeout(BOUND, Server::new(config).start(PoemApp::new(route)))
        .await
        .expect("starts in time")
        .expect("the server starts");
    let addr = server.local_addrs()[0];

    let (response, local) = exchange(
        addr,
        "GET /client HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(&format!("\r\n\r\n{local}")),
        "{response}"
    );

    let (response, _) = exchange(
        addr,
        "POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The echo streams (no length known in advance): chunked, as it arrived.
    assert!(
        response.ends_with("\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{response}"
    );

    let (response, _) = exchange(
        addr,
        "GET /users/17 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(r#"{"id":17}"#), "{response}");

    server.shutdown();
    tokio::time::timeout(BOUND, server.wait())
        .await
        .expect("stops in time")
        .expect("stops cleanly");
}
