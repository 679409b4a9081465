//! tower → RGI upgrades: an axum WebSocket route through `TowerApp`, on a minimal RGI host
//! built on hyper that leaves hyper's `OnUpgrade` in the request (as rgi-server does) and
//! passes a `101` through to hyper.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::any;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use hyper_util::rt::TokioIo;
use rgi::{App, ConnectionInfo, Disconnect, Scheme, SocketAddress};
use rgi_tower::TowerApp;
use support::within;
use tokio::net::{TcpListener, TcpStream};

fn echo_router() -> Router {
    Router::new().route(
        "/ws",
        any(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if matches!(message, Message::Close(_)) || socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        }),
    )
}

/// A one-connection RGI host on hyper: builds RGI requests (keeping hyper's extensions, as
/// rgi-server does), calls the app, and hands its response to hyper unchanged. Reports whether
/// a response carried the adapter's hyper-upgrade marker.
async fn host(app: TowerApp<Router>, marked: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Arc::new(app);
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let app = app.clone();
            let marked = marked.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectionInfo::new(
                    SocketAddress::Tcp(addr),
                    SocketAddress::Tcp(peer),
                    Scheme::Http,
                ));
                let (signal, notifier) = Disconnect::pair();
                parts.extensions.insert(signal);
                let req = Request::from_parts(parts, rgi::Body::new(body));
                let response = app.call(req).await.unwrap();
                if response
                    .extensions()
                    .get::<hyper::upgrade::OnUpgrade>()
                    .is_some()
                {
                    marked.store(true, Ordering::SeqCst);
                }
                notifier.completed();
                Ok::<_, Infallible>(response.map(axum::body::Body::new))
            }
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await
    });
    addr
}

/// EXT-NS-2, CORE-ERR-6: an axum WebSocket route works through the adapter on a server that
/// provides hyper's `OnUpgrade` as a compatibility extension — a real WebSocket client
/// exchanges messages with it — and, with the feature `hyper`, the adapter marks the `101`
/// response with hyper's `OnUpgrade` so that the server can tell it from a stray `101`.
#[tokio::test]
async fn axum_websocket_works_on_a_server_with_hyper_upgrades() {
    let marked = Arc::new(AtomicBool::new(false));
    let addr = host(TowerApp::new(echo_router()), marked.clone()).await;
    let stream = within(TcpStream::connect(addr)).await.unwrap();
    let (mut ws, response) = within(tokio_tungstenite::client_async(
        format!("ws://{addr}/ws"),
        stream,
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);

    for text in ["hello", "RGI"] {
        within(ws.send(tokio_tungstenite::tungstenite::Message::text(text)))
            .await
            .unwrap();
        let echoed = within(ws.next()).await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    within(ws.close(None)).await.unwrap();
    assert_eq!(marked.load(Ordering::SeqCst), cfg!(feature = "hyper"));
}

/// CORE-ERR-6: an ordinary response is never marked as a hyper upgrade.
#[tokio::test]
async fn ordinary_responses_are_not_marked() {
    let router = echo_router().route("/plain", axum::routing::get(|| async { "plain" }));
    let marked = Arc::new(AtomicBool::new(false));
    let addr = host(TowerApp::new(router), marked.clone()).await;
    let stream = within(TcpStream::connect(addr)).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/plain")
        .header("host", "localhost")
        .body(rgi::Body::empty())
        .unwrap();
    let response: Response<hyper::body::Incoming> = within(sender.send_request(req)).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(!marked.load(Ordering::SeqCst));
}
