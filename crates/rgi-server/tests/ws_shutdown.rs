//! WebSocket sessions at server shutdown, end to end: a real rgi-server on 127.0.0.1 and a
//! tokio-tungstenite client. A session runs on during the drain and is closed with `1001` when
//! the graceful deadline expires.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{Response, StatusCode};
use rgi::ws::{Message, WebSocket, WebSocketUpgrade};
use rgi::{App, Body, BoxError};
use rgi_server::{Config, Server};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WireCode;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// Upper bound against hangs; never a timing assertion.
const LIMIT: Duration = Duration::from_secs(30);

/// The drain: long enough for a round trip on a busy machine, short enough for a test.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(5);

/// Echoes every message; reports through `dropped` when its handler is dropped.
struct EchoApp {
    dropped: mpsc::UnboundedSender<()>,
}

/// Sends one `()` when dropped: tells the test the handler is gone.
struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl App for EchoApp {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, mut req: rgi::Request) -> Result<Response<Body>, Infallible> {
        let Some(handshake) = req.extensions_mut().remove::<WebSocketUpgrade>() else {
            let mut response = Response::new(Body::from("not a WebSocket handshake"));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(response);
        };
        let signal = DropSignal(self.dropped.clone());
        Ok(handshake.accept(move |mut socket: WebSocket| async move {
            let _signal = signal;
            while let Some(message) = socket.recv().await {
                match message? {
                    Message::Close(_) => break,
                    other => socket.send(other).await?,
                }
            }
            Ok::<(), BoxError>(())
        }))
    }
}

/// Sends `text` and expects it back.
async fn round_trip<S>(client: &mut tokio_tungstenite::WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client
        .send(tungstenite::Message::text(text))
        .await
        .expect("the message goes out");
    let echoed = tokio::time::timeout(LIMIT, client.next())
        .await
        .expect("the echo arrives")
        .expect("the session is open")
        .expect("a valid message");
    assert_eq!(echoed, tungstenite::Message::text(text));
}

fn config() -> Config {
    let mut config = Config::default()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .graceful_timeout(GRACEFUL_TIMEOUT);
    config.access_log = false;
    config
}

/// SRV-SHUT-2, WS-CLOSE-7, SRV-SHUT-3: a session open when the shutdown begins keeps working
/// during the drain; when the graceful deadline expires the server closes it with `1001`,
/// drops its handler, and `wait()` returns (HTTP/1.1 Upgrade).
#[tokio::test]
async fn session_runs_during_the_drain_and_gets_1001_at_the_deadline() {
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let server = Server::new(config())
        .start(EchoApp {
            dropped: dropped_tx,
        })
        .await
        .expect("the server starts");
    let addr = server.local_addrs()[0];

    let request = format!("ws://{addr}/echo")
        .into_client_request()
        .expect("a valid request");
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let (client, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::client_async(request, tcp))
        .await
        .expect("the handshake completes in time")
        .expect("the handshake succeeds");
    drain_then_going_away(server, client, dropped).await;
}

/// SRV-SHUT-2, WS-CLOSE-7, SRV-SHUT-3, WS-H2-1: the same over HTTP/2 extended CONNECT — the
/// stream keeps working after `GOAWAY` during the drain, and gets `1001` at the deadline.
#[tokio::test]
async fn http2_session_runs_during_the_drain_and_gets_1001_at_the_deadline() {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let server = Server::new(config())
        .start(EchoApp {
            dropped: dropped_tx,
        })
        .await
        .expect("the server starts");
    let addr = server.local_addrs()[0];

    let tcp = TcpStream::connect(addr).await.expect("connects");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    // One ordinary exchange first, so that the server's SETTINGS (with
    // SETTINGS_ENABLE_CONNECT_PROTOCOL) have arrived before the extended CONNECT.
    let probe = http::Request::get(format!("http://{addr}/"))
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    sender.send_request(probe).await.expect("probe");
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(format!("http://{addr}/echo"))
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = tokio::time::timeout(LIMIT, sender.send_request(request))
        .await
        .expect("the server answers")
        .expect("extended CONNECT");
    assert_eq!(response.status(), StatusCode::OK);
    let upgraded = tokio::time::timeout(LIMIT, hyper::upgrade::on(&mut response))
        .await
        .expect("the stream opens")
        .expect("upgraded stream");
    let client = tokio_tungstenite::WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    drain_then_going_away(server, client, dropped).await;
}

/// Shuts the server down with `client`'s session open and checks the drain and the deadline.
async fn drain_then_going_away<S>(
    server: rgi_server::RunningServer,
    mut client: tokio_tungstenite::WebSocketStream<S>,
    mut dropped: mpsc::UnboundedReceiver<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let addr = server.local_addrs()[0];
    round_trip(&mut client, "before the shutdown").await;

    server.shutdown();
    // The drain has begun once the listener refuses new connections (bounded loop).
    let mut refused = false;
    for _ in 0..400 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        refused,
        "the listener still accepts after the shutdown began"
    );

    // SRV-SHUT-2: the session is an exchange in progress; it runs on during the drain.
    round_trip(&mut client, "during the drain").await;
    round_trip(&mut client, "still during the drain").await;

    // WS-CLOSE-7: at the deadline the server closes the session with 1001 (going away).
    let message = tokio::time::timeout(LIMIT, client.next())
        .await
        .expect("the server closes the session before the upper bound");
    let close = match message {
        Some(Ok(tungstenite::Message::Close(frame))) => frame,
        Some(Ok(other)) => panic!("unexpected message {other:?}"),
        Some(Err(error)) => panic!("the session failed instead of closing: {error}"),
        None => panic!("the connection ended without a close frame"),
    };
    let close = close.expect("the close frame carries a code");
    assert_eq!(close.code, WireCode::Away);

    // SRV-SHUT-3: the handler is dropped and the server stops.
    tokio::time::timeout(LIMIT, dropped.recv())
        .await
        .expect("the handler is dropped")
        .expect("the handler reports its drop");
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .expect("the server stops before the upper bound")
        .expect("the server stops cleanly");
}
