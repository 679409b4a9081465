//! WebSocket load: many concurrent sessions through an echo server, with the server's memory
//! per connection.
//!
//! Ignored by default (it opens 1,000 connections). Run it against the `websocket_echo`
//! example so that the server's memory is measured alone:
//!
//! ```text
//! websocket_echo --bind 127.0.0.1:9301 --no-access-log &
//! RGI_WS_LOAD_ADDR=127.0.0.1:9301 RGI_WS_LOAD_PID=$! \
//!     cargo test -p rgi-server --release --test websocket_load -- --ignored --nocapture
//! ```
//!
//! Without `RGI_WS_LOAD_ADDR` it starts an echo server in the test process (and then cannot
//! tell the server's memory from the clients').

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{Response, StatusCode};
use rgi::ws::{Message, WebSocket, WebSocketUpgrade};
use rgi::{App, Body, BoxError};
use rgi_server::{Config, Server};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite;

/// Concurrent sessions.
const CONNECTIONS: usize = 1000;
/// Messages each session exchanges.
const MESSAGES: usize = 10;
/// Upper bound against hangs; never a timing assertion.
const LIMIT: Duration = Duration::from_secs(120);
/// A generous bound on the server's memory per open session.
const MAX_RSS_PER_CONNECTION: u64 = 256 << 10;

struct Echo;

impl App for Echo {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, mut req: rgi::Request) -> Result<Response<Body>, Infallible> {
        Ok(match req.extensions_mut().remove::<WebSocketUpgrade>() {
            Some(handshake) => handshake.accept(echo),
            None => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        })
    }
}

async fn echo(mut socket: WebSocket) -> Result<(), BoxError> {
    while let Some(message) = socket.recv().await {
        match message? {
            Message::Close(_) => break,
            other => socket.send(other).await?,
        }
    }
    Ok(())
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

type Client = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Connects and exchanges `MESSAGES` messages.
async fn open_session(addr: SocketAddr, index: usize) -> Result<Client, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp).await?;
    for round in 0..MESSAGES {
        let text = format!("session {index} message {round}");
        client
            .send(tungstenite::Message::text(text.clone()))
            .await?;
        match client.next().await {
            Some(Ok(tungstenite::Message::Text(echoed))) if echoed.as_str() == text => {}
            other => return Err(format!("session {index}: unexpected {other:?}").into()),
        }
    }
    Ok(client)
}

/// One session: open it, wait until every session is open (so that they are all alive at
/// once, for the memory measurement), then close it.
async fn session(
    addr: SocketAddr,
    index: usize,
    open: Arc<Barrier>,
    done: Arc<Barrier>,
) -> Result<(), BoxError> {
    let opened = open_session(addr, index).await;
    open.wait().await;
    done.wait().await;
    let mut client = opened?;
    client.close(None).await?;
    while let Some(message) = client.next().await {
        message?;
    }
    Ok(())
}

/// 1,000 concurrent sessions each exchange messages through an echo server with no error,
/// and the server's memory stays bounded per connection.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "load test: opens 1,000 connections; run with --ignored"]
async fn thousand_concurrent_sessions() {
    let (addr, pid, _server) = match std::env::var("RGI_WS_LOAD_ADDR") {
        Ok(addr) => (
            addr.parse::<SocketAddr>()
                .expect("RGI_WS_LOAD_ADDR is HOST:PORT"),
            std::env::var("RGI_WS_LOAD_PID").ok(),
            None,
        ),
        Err(_) => {
            let mut config = Config::default().bind(SocketAddr::from(([127, 0, 0, 1], 0)));
            config.access_log = false;
            let server = Server::new(config).start(Echo).await.expect("start");
            (server.local_addrs()[0], None, Some(server))
        }
    };
    let before = pid.as_deref().and_then(rss);

    let open = Arc::new(Barrier::new(CONNECTIONS + 1));
    let done = Arc::new(Barrier::new(CONNECTIONS + 1));
    let sessions: Vec<_> = (0..CONNECTIONS)
        .map(|index| tokio::spawn(session(addr, index, open.clone(), done.clone())))
        .collect();
    tokio::time::timeout(LIMIT, open.wait())
        .await
        .expect("every session opens and exchanges its messages");
    let peak = pid.as_deref().and_then(rss);
    done.wait().await;

    let mut errors = Vec::new();
    for session in sessions {
        match tokio::time::timeout(LIMIT, session).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => errors.push(error.to_string()),
            Ok(Err(join)) => errors.push(join.to_string()),
            Err(_) => errors.push("timed out".to_owned()),
        }
    }
    assert!(
        errors.is_empty(),
        "{} sessions failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );

    if let (Some(before), Some(peak)) = (before, peak) {
        let per_connection = peak.saturating_sub(before) / CONNECTIONS as u64;
        println!(
            "server RSS: {} KiB before, {} KiB with {CONNECTIONS} open sessions: {} KiB per session",
            before / 1024,
            peak / 1024,
            per_connection / 1024,
        );
        assert!(
            per_connection <= MAX_RSS_PER_CONNECTION,
            "{per_connection} bytes per session"
        );
    }
}
