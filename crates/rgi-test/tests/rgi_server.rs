//! Lint in a real server: in front of an application served by `rgi-server` on 127.0.0.1,
//! with a raw HTTP/1.1 client, a conforming exchange of every kind passes with zero
//! violations on both sides.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{FnApp, Frames, data, trailers};
use futures_util::{SinkExt as _, StreamExt as _};
use http::{HeaderValue, Response, header};
use rgi::ws::{AcceptOptions, Message, WebSocketUpgrade};
use rgi::{Body, BoxError, Request};
use rgi_server::{Config, Server};
use rgi_test::Lint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let io = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(20), io)
        .await
        .expect("no response within 20 s")
}

/// HTTP-CONN-1, HTTP-DISC-1, HTTP-DISC-2, HTTP-BODY-6, HTTP-BODY-7, HTTP-TRAIL-10,
/// HTTP-RESP-12, WS-HS-6, WS-HS-7: the reference server and a conforming app, linted on both
/// sides, over real sockets: plain, content-length and chunked request bodies, request
/// trailers, streamed response trailers, HEAD, HTTP/1.0, and a WebSocket session.
#[tokio::test]
async fn lint_in_front_of_an_app_on_rgi_server() {
    let lifespan = Lint::lifespan(FnApp(|req: Request| async move {
        if let Some(offer) = req.extensions().get::<WebSocketUpgrade>().cloned() {
            let options = AcceptOptions::new().subprotocol("echo");
            return Ok(offer.accept_with(options, |mut socket| async move {
                while let Some(message) = socket.recv().await {
                    match message? {
                        Message::Close(_) => break,
                        other => socket.send(other).await?,
                    }
                }
                Ok(())
            })?);
        }
        match req.uri().path() {
            "/trailers" => {
                let mut response = Response::new(Body::new(Frames::new(vec![
                    data("streamed"),
                    trailers(&[("x-checksum", "7")]),
                ])));
                response
                    .headers_mut()
                    .insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
                Ok::<_, BoxError>(response)
            }
            _ if req.method() == http::Method::HEAD => Ok(Response::new(Body::empty())),
            _ => {
                let collected = req.into_body().collect().await?;
                let trailer = collected
                    .trailers()
                    .and_then(|t| t.get("x-sum"))
                    .map(|v| v.to_str().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                let text = format!(
                    "{}|{trailer}",
                    String::from_utf8_lossy(&collected.to_bytes())
                );
                let mut response = Response::new(Body::from(text.clone()));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
                Ok(response)
            }
        }
    }));
    let report = lifespan.report();
    let config = Config::default()
        .bind("127.0.0.1:0".parse().unwrap())
        .access_log(false);
    let server = Server::new(config).start(lifespan).await.unwrap();
    let addr = server.local_addrs()[0];

    let plain = exchange(
        addr,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert!(plain.ends_with("\r\n\r\n|"), "{plain}");
    let sized = exchange(
        addr,
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    )
    .await;
    assert!(sized.ends_with("hello|"), "{sized}");
    let chunked = exchange(
        addr,
        "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n",
    )
    .await;
    assert!(chunked.ends_with("abcde|5"), "{chunked}");
    let streamed = exchange(
        addr,
        "GET /trailers HTTP/1.1\r\nhost: x\r\nte: trailers\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(streamed.contains("streamed"), "{streamed}");
    assert!(
        streamed.to_ascii_lowercase().contains("x-checksum: 7"),
        "{streamed}"
    );
    let head = exchange(
        addr,
        "HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let old = exchange(addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        old.starts_with("HTTP/1.0 200") || old.starts_with("HTTP/1.1 200"),
        "{old}"
    );

    let session = async {
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/ws"))
                .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("echo"));
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut socket, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "echo");
        socket
            .send(tungstenite::Message::text("over the wire"))
            .await
            .unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed, tungstenite::Message::text("over the wire"));
        socket.close(None).await.unwrap();
        while socket.next().await.is_some() {}
    };
    tokio::time::timeout(Duration::from_secs(20), session)
        .await
        .expect("the WebSocket session did not end within 20 s");

    server.shutdown();
    tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server did not stop within 30 s")
        .unwrap();
    report.assert_clean();
}

/// HTTP-REQ-3, HTTP-REQ-4, SRV-LIMIT-1, HTTP-BODY-6, HTTP-DISC-2: over HTTP/2 (prior
/// knowledge), the reference server's requests pass the Lint's server-side checks, and the
/// app's responses its app-side checks.
#[tokio::test]
async fn lint_over_http2_on_rgi_server() {
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let lifespan = Lint::lifespan(FnApp(|req: Request| async move {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let body = req.into_body().collect().await?.into_bytes();
        let text = format!("{authority} {}", String::from_utf8_lossy(&body));
        Ok::<_, BoxError>(Response::new(Body::from(text)))
    }));
    let report = lifespan.report();
    let config = Config::default()
        .bind("127.0.0.1:0".parse().unwrap())
        .access_log(false);
    let server = Server::new(config).start(lifespan).await.unwrap();
    let addr = server.local_addrs()[0];

    let client = async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        for (method, body) in [("GET", ""), ("POST", "over h2")] {
            let request = http::Request::builder()
                .method(method)
                .uri(format!("http://{addr}/h2"))
                .body(Full::new(bytes::Bytes::from(body)))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let text = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(text, format!("{addr} {body}"));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), client)
        .await
        .expect("no HTTP/2 responses within 20 s");

    server.shutdown();
    tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server did not stop within 30 s")
        .unwrap();
    report.assert_clean();
}
