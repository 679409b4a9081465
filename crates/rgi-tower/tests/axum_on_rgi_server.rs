//! tower → RGI on the reference server: an axum `Router` with a WebSocket route, wrapped in
//! `TowerApp` and served by rgi-server, which leaves hyper's `OnUpgrade` in the request and
//! hands the `101` that axum makes through it to hyper unchanged.
#![cfg(all(feature = "hyper", feature = "axum"))]

mod support;

use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::{any, get};
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use rgi::{Disconnect, Outcome};
use rgi_server::{Config, RunningServer, Server};
use rgi_tower::TowerApp;
use support::within;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite;

/// `GET /` answers `Hello, World!`; `/ws` echoes WebSocket messages and reports how the
/// handshake exchange's `Disconnect` settled.
fn router(outcomes: mpsc::UnboundedSender<Outcome>) -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route(
            "/ws",
            any(
                move |ws: WebSocketUpgrade, Extension(disconnect): Extension<Disconnect>| {
                    let outcomes = outcomes.clone();
                    async move {
                        tokio::spawn(async move {
                            let _ = outcomes.send(disconnect.finished().await);
                        });
                        ws.on_upgrade(|mut socket| async move {
                            while let Some(Ok(message)) = socket.recv().await {
                                if matches!(message, Message::Close(_))
                                    || socket.send(message).await.is_err()
                                {
                                    break;
                                }
                            }
                        })
                    }
                },
            ),
        )
}

async fn start(outcomes: mpsc::UnboundedSender<Outcome>) -> RunningServer {
    let config = Config::default()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(false);
    within(Server::new(config).start(TowerApp::new(router(outcomes))))
        .await
        .expect("the server starts")
}

async fn stop(server: RunningServer) {
    server.shutdown();
    within(server.wait())
        .await
        .expect("the server stops cleanly");
}

/// EXT-NS-2, CORE-ERR-6, WS-HS-1: axum's `WebSocketUpgrade` works through `TowerApp` on
/// rgi-server: the `101` axum makes through hyper's `OnUpgrade` reaches the client with its
/// `connection`, `upgrade` and `sec-websocket-accept` fields, text and binary messages echo,
/// and the handshake exchange's `Disconnect` settles as `Completed`.
#[tokio::test]
async fn axum_websocket_echoes_through_tower_app_on_rgi_server() {
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let server = start(outcomes_tx).await;
    let addr = server.local_addrs()[0];

    let stream = within(TcpStream::connect(addr)).await.expect("connects");
    let (mut ws, response) = within(tokio_tungstenite::client_async(
        format!("ws://{addr}/ws"),
        stream,
    ))
    .await
    .expect("the handshake succeeds");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let field = |name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert!(field(header::CONNECTION).contains("upgrade"));
    assert_eq!(field(header::UPGRADE), "websocket");
    assert!(!field(header::SEC_WEBSOCKET_ACCEPT).is_empty());

    for text in ["hello", "RGI"] {
        within(ws.send(tungstenite::Message::text(text)))
            .await
            .expect("sent");
        let echoed = within(ws.next()).await.expect("open").expect("valid");
        assert_eq!(echoed, tungstenite::Message::text(text));
    }
    let binary = vec![0u8, 1, 2, 254, 255];
    within(ws.send(tungstenite::Message::binary(binary.clone())))
        .await
        .expect("sent");
    let echoed = within(ws.next()).await.expect("open").expect("valid");
    assert_eq!(echoed, tungstenite::Message::binary(binary));

    let outcome = within(outcomes.recv()).await.expect("an outcome");
    assert_eq!(outcome, Outcome::Completed);

    within(ws.close(None)).await.expect("closes");
    stop(server).await;
}

/// EXT-NS-2, HTTP-RESP-6: ordinary routes of the same router still work on rgi-server, and
/// their responses carry no `upgrade` field.
#[tokio::test]
async fn plain_route_still_works_next_to_the_websocket_route() {
    let (outcomes_tx, _outcomes) = mpsc::unbounded_channel();
    let server = start(outcomes_tx).await;
    let addr = server.local_addrs()[0];

    let stream = within(TcpStream::connect(addr)).await.expect("connects");
    let (mut sender, conn) = within(hyper::client::conn::http1::handshake(TokioIo::new(stream)))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let request = Request::get("/")
        .header(header::HOST, "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("a valid request");
    let response = within(sender.send_request(request))
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::UPGRADE).is_none());
    let body = within(response.into_body().collect())
        .await
        .expect("the body")
        .to_bytes();
    assert_eq!(body, "Hello, World!");

    stop(server).await;
}
