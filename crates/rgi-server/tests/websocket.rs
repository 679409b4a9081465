//! WebSocket end to end: a real rgi-server on 127.0.0.1 and tokio-tungstenite clients, over
//! HTTP/1.1 `Upgrade` and over HTTP/2 extended CONNECT (RFC 8441), with the same application.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::ws::{AcceptOptions, Message, WebSocket, WebSocketUpgrade, WsError};
use rgi::{App, Body, BoxError};
use rgi_server::{Config, RunningServer, Server, WsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode as WireCode, Data as OpData, OpCode,
};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as WireCloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// Upper bound against hangs; never a timing assertion.
const LIMIT: Duration = Duration::from_secs(20);

/// What the test application's `/record` handler received, message by message.
type Record = Vec<Message>;

/// The application under test. Paths:
/// - `/echo`: accepts (with subprotocol `chat` when offered, and an extra header), echoes;
/// - `/deny`: answers `403` with a body;
/// - `/return`, `/fail`, `/panic`: handlers that return `Ok`, return `Err`, panic;
/// - `/record`: receives until `None` and reports everything it got;
/// - `/flood`: sends until a send fails, and reports `closed` when it failed with
///   `WsError::Closed`.
///
/// A request without a `WebSocketUpgrade` gets `400` with `x-websocket: none`.
struct TestApp {
    records: mpsc::UnboundedSender<Record>,
}

impl App for TestApp {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, mut req: rgi::Request) -> Result<Response<Body>, Infallible> {
        let path = req.uri().path().to_owned();
        let Some(handshake) = req.extensions_mut().remove::<WebSocketUpgrade>() else {
            let mut response = Response::new(Body::from("not a WebSocket handshake"));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
                .headers_mut()
                .insert("x-websocket", HeaderValue::from_static("none"));
            return Ok(response);
        };
        let response = match path.as_str() {
            "/echo" => {
                let mut options = AcceptOptions::new()
                    .header(header::SET_COOKIE, HeaderValue::from_static("a=b"));
                if handshake.protocols().iter().any(|p| p == "chat") {
                    options = options.subprotocol("chat");
                }
                handshake
                    .accept_with(options, echo)
                    .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR))
            }
            "/deny" => {
                let mut response = Response::new(Body::from("go away"));
                *response.status_mut() = StatusCode::FORBIDDEN;
                response
            }
            "/return" => handshake.accept(|_socket: WebSocket| async { Ok(()) }),
            "/fail" => handshake.accept(|_socket: WebSocket| async {
                Err::<(), BoxError>("the handler failed".into())
            }),
            "/panic" => handshake.accept(|_socket: WebSocket| async {
                panic!("the handler panicked");
            }),
            "/record" => {
                let records = self.records.clone();
                handshake.accept(move |mut socket: WebSocket| async move {
                    let mut record = Vec::new();
                    while let Some(message) = socket.recv().await {
                        if let Ok(message) = message {
                            record.push(message);
                        }
                    }
                    let _ = records.send(record);
                    Ok(())
                })
            }
            "/flood" => {
                let records = self.records.clone();
                handshake.accept(move |mut socket: WebSocket| async move {
                    let failure = loop {
                        if let Err(error) = socket.send(Message::binary(vec![0u8; 4096])).await {
                            break error;
                        }
                    };
                    let outcome = match failure {
                        WsError::Closed => "closed".to_owned(),
                        other => format!("failed: {other}"),
                    };
                    let _ = records.send(vec![Message::text(outcome)]);
                    Ok(())
                })
            }
            _ => status(StatusCode::NOT_FOUND),
        };
        Ok(response)
    }
}

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
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

struct TestServer {
    server: Option<RunningServer>,
    addr: SocketAddr,
    records: mpsc::UnboundedReceiver<Record>,
}

impl TestServer {
    async fn start(ws: WsConfig) -> Self {
        let mut config = Config::default();
        config.ws = ws;
        Self::start_with(config).await
    }

    /// Starts the test application with `config`, on an ephemeral port, without access log.
    async fn start_with(config: Config) -> Self {
        let (records_tx, records) = mpsc::unbounded_channel();
        let mut config = config.bind(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.access_log = false;
        let server = Server::new(config)
            .start(TestApp {
                records: records_tx,
            })
            .await
            .expect("the server starts");
        let addr = server.local_addrs()[0];
        Self {
            server: Some(server),
            addr,
            records,
        }
    }

    async fn record(&mut self) -> Record {
        tokio::time::timeout(LIMIT, self.records.recv())
            .await
            .expect("the handler reports")
            .expect("the handler reports")
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            tokio::time::timeout(LIMIT, server.wait())
                .await
                .expect("the server stops")
                .expect("the server stops cleanly");
        }
    }
}

type Client<S> = WebSocketStream<S>;

/// Opens a WebSocket over HTTP/1.1.
async fn connect_h1(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> Result<(Client<TcpStream>, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocols).expect("header value"),
        );
    }
    let tcp = TcpStream::connect(addr).await?;
    tokio::time::timeout(LIMIT, tokio_tungstenite::client_async(request, tcp))
        .await
        .expect("the handshake completes")
}

type H2Io = TokioIo<hyper::upgrade::Upgraded>;

/// Opens a WebSocket over HTTP/2 extended CONNECT; returns the response head too.
async fn connect_h2(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> (http::response::Parts, Option<Client<H2Io>>) {
    connect_h2_version(addr, path, protocols, "13").await
}

/// Like [`connect_h2`], with the `sec-websocket-version` of the caller's choice.
async fn connect_h2_version(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
    version: &str,
) -> (http::response::Parts, Option<Client<H2Io>>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    // One ordinary exchange first, so that the server's SETTINGS (with
    // SETTINGS_ENABLE_CONNECT_PROTOCOL) have arrived before the extended CONNECT.
    let probe = Request::get(format!("http://{addr}/"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let probe = sender.send_request(probe).await.expect("probe");
    assert_eq!(probe.headers()["x-websocket"], "none");

    let mut request = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(format!("http://{addr}{path}"))
        .header(header::SEC_WEBSOCKET_VERSION, version);
    if let Some(protocols) = protocols {
        request = request.header(header::SEC_WEBSOCKET_PROTOCOL, protocols);
    }
    let mut request = request.body(Empty::<Bytes>::new()).expect("request");
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = tokio::time::timeout(LIMIT, sender.send_request(request))
        .await
        .expect("the server answers")
        .expect("extended CONNECT");
    if response.status() != StatusCode::OK {
        return (response.into_parts().0, None);
    }
    let upgraded = tokio::time::timeout(LIMIT, hyper::upgrade::on(&mut response))
        .await
        .expect("the stream opens")
        .expect("upgraded stream");
    let client = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    (response.into_parts().0, Some(client))
}

async fn next<S>(client: &mut Client<S>) -> Option<tungstenite::Message>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::time::timeout(LIMIT, client.next())
        .await
        .expect("the server answers")
        .map(|message| message.expect("a valid message"))
}

/// Reads until the server's close frame, returns its code, then lets the close handshake
/// finish.
async fn close_code<S>(client: &mut Client<S>) -> u16
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let code = loop {
        match next(client).await {
            Some(tungstenite::Message::Close(Some(frame))) => break u16::from(frame.code),
            Some(tungstenite::Message::Close(None)) => panic!("a close frame without a code"),
            Some(_) => continue,
            None => panic!("the connection ended without a close frame"),
        }
    };
    while let Ok(Some(Ok(_))) = tokio::time::timeout(LIMIT, client.next()).await {}
    code
}

/// Echoes a text and a binary message, then closes from the client: the server answers the
/// close and then ends the connection (HTTP/1.1) or stream (HTTP/2, `END_STREAM`) in order,
/// so the client sees the end of the stream, not an error.
async fn exchange<S>(client: &mut Client<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client.send("hello".into()).await.expect("send");
    assert_eq!(next(client).await, Some("hello".into()));
    let data = tungstenite::Message::binary(vec![0u8, 159, 146, 150]);
    client.send(data.clone()).await.expect("send");
    assert_eq!(next(client).await, Some(data));
    client.close(None).await.expect("close");
    assert_eq!(next(client).await, Some(tungstenite::Message::Close(None)));
    assert_eq!(next(client).await, None);
}

/// WS-HS-1, WS-HS-5, WS-MSG-1: an HTTP/1.1 handshake is completed with the server's headers
/// (the client checks `Sec-WebSocket-Accept`), with the subprotocol and extra header the
/// application chose, and messages are echoed.
#[tokio::test]
async fn http11_handshake_and_echo() {
    let server = TestServer::start(WsConfig::default()).await;
    let (mut client, response) = connect_h1(server.addr, "/echo", Some("superchat, chat"))
        .await
        .expect("handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()[header::SEC_WEBSOCKET_PROTOCOL], "chat");
    assert_eq!(response.headers()[header::SET_COOKIE], "a=b");
    assert!(
        !response
            .headers()
            .contains_key(header::SEC_WEBSOCKET_EXTENSIONS)
    );
    exchange(&mut client).await;

    // Without a subprotocol offered, none is selected.
    let (mut client, response) = connect_h1(server.addr, "/echo", None)
        .await
        .expect("handshake");
    assert!(
        !response
            .headers()
            .contains_key(header::SEC_WEBSOCKET_PROTOCOL)
    );
    exchange(&mut client).await;
    server.stop().await;
}

/// WS-H2-1, WS-H2-2, WS-HS-5: the same application serves an HTTP/2 extended CONNECT
/// (the server enabled the protocol in its SETTINGS): `200`, subprotocol, echo.
#[tokio::test]
async fn http2_extended_connect_and_echo() {
    let server = TestServer::start(WsConfig::default()).await;
    let (head, client) = connect_h2(server.addr, "/echo", Some("chat")).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers[header::SEC_WEBSOCKET_PROTOCOL], "chat");
    assert_eq!(head.headers[header::SET_COOKIE], "a=b");
    assert!(!head.headers.contains_key(header::SEC_WEBSOCKET_ACCEPT));
    assert!(!head.headers.contains_key(header::UPGRADE));
    let mut client = client.expect("accepted");
    exchange(&mut client).await;
    server.stop().await;
}

/// WS-HS-4: a denial is an ordinary response, sent as the application wrote it; no upgrade.
#[tokio::test]
async fn denial_is_an_ordinary_response() {
    let server = TestServer::start(WsConfig::default()).await;
    match connect_h1(server.addr, "/deny", None).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert_eq!(response.body().as_deref(), Some(&b"go away"[..]));
        }
        other => panic!("expected a 403, got {:?}", other.map(|(_, r)| r.status())),
    }

    let (head, client) = connect_h2(server.addr, "/deny", None).await;
    assert_eq!(head.status, StatusCode::FORBIDDEN);
    assert!(client.is_none());
    server.stop().await;
}

/// Sends `request` on a new connection and returns what the server answered, up to the end
/// of the head.
async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(LIMIT, tcp.read(&mut buffer))
            .await
            .expect("the server answers")
            .expect("read");
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// WS-HS-6, WS-H2-1: an unsupported `Sec-WebSocket-Version` gets `426` with `sec-websocket-version: 13`;
/// an invalid handshake (no key) reaches the application without a `WebSocketUpgrade`.
#[tokio::test]
async fn invalid_handshakes_are_not_upgraded() {
    let server = TestServer::start(WsConfig::default()).await;
    let answer = raw_exchange(
        server.addr,
        "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await
    .to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 426"), "{answer}");
    assert!(answer.contains("sec-websocket-version: 13\r\n"), "{answer}");

    let answer = raw_exchange(
        server.addr,
        "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 400"), "{answer}");
    assert!(answer.contains("x-websocket: none\r\n"), "{answer}");

    // HTTP/2 (WS-H2-1): an extended CONNECT with another version is not upgraded either.
    let (head, client) = connect_h2_version(server.addr, "/echo", None, "8").await;
    assert!(client.is_none(), "upgraded with version 8");
    assert_ne!(head.status, StatusCode::OK);
    server.stop().await;
}

/// WS-CLOSE-5: the handler returning `Ok` closes with 1000; failing or panicking, with 1011
/// (the server keeps serving) — over both HTTP versions.
#[tokio::test]
async fn handler_outcome_decides_the_close_code() {
    let server = TestServer::start(WsConfig::default()).await;
    for (path, code) in [("/return", 1000), ("/fail", 1011), ("/panic", 1011)] {
        let (mut client, _) = connect_h1(server.addr, path, None)
            .await
            .expect("handshake");
        assert_eq!(close_code(&mut client).await, code, "HTTP/1.1 {path}");
        let (_, client) = connect_h2(server.addr, path, None).await;
        let mut client = client.expect("accepted");
        assert_eq!(close_code(&mut client).await, code, "HTTP/2 {path}");
    }
    server.stop().await;
}

/// WS-CLOSE-1, WS-CLOSE-2, WS-CLOSE-3: the peer's close code and reason reach the
/// application exactly once, as its last message; the server answers with the same code.
#[tokio::test]
async fn peer_close_is_delivered_once() {
    let mut server = TestServer::start(WsConfig::default()).await;
    let (mut client, _) = connect_h1(server.addr, "/record", None)
        .await
        .expect("handshake");
    client.send("one".into()).await.expect("send");
    client
        .close(Some(WireCloseFrame {
            code: WireCode::Library(4001),
            reason: "bye".into(),
        }))
        .await
        .expect("close");
    assert_eq!(close_code(&mut client).await, 4001);
    let record = server.record().await;
    assert_eq!(record.len(), 2, "{record:?}");
    assert_eq!(record[0], Message::text("one"));
    match &record[1] {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code().as_u16(), 4001);
            assert_eq!(frame.reason(), "bye");
        }
        other => panic!("expected the peer's close, got {other:?}"),
    }

    // HTTP/2, and a peer that leaves without a close frame: 1006, once.
    let (_, client) = connect_h2(server.addr, "/record", None).await;
    let mut client = client.expect("accepted");
    client.send("two".into()).await.expect("send");
    drop(client);
    let record = server.record().await;
    let closes: Vec<_> = record
        .iter()
        .filter(|m| matches!(m, Message::Close(_)))
        .collect();
    assert_eq!(closes.len(), 1, "{record:?}");
    assert!(
        matches!(record.last(), Some(Message::Close(Some(frame))) if frame.code().as_u16() == 1006)
    );
    server.stop().await;
}

/// WS-CTRL-1, WS-MSG-1: pings are answered by the server; fragments arrive whole — over
/// HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn pings_and_fragments() {
    let server = TestServer::start(WsConfig::default()).await;
    let (mut client, _) = connect_h1(server.addr, "/echo", None)
        .await
        .expect("handshake");
    ping_and_fragments_on(&mut client).await;
    let (_, client) = connect_h2(server.addr, "/echo", None).await;
    let mut client = client.expect("accepted");
    ping_and_fragments_on(&mut client).await;
    server.stop().await;
}

async fn ping_and_fragments_on<S>(client: &mut Client<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client
        .send(tungstenite::Message::Ping("are you there".into()))
        .await
        .expect("ping");
    assert_eq!(
        next(client).await,
        Some(tungstenite::Message::Pong("are you there".into()))
    );
    for (opcode, payload, fin) in [
        (OpData::Text, &b"frag"[..], false),
        (OpData::Continue, &b"men"[..], false),
        (OpData::Continue, &b"ted"[..], true),
    ] {
        client
            .send(tungstenite::Message::Frame(Frame::message(
                Bytes::from_static(payload),
                OpCode::Data(opcode),
                fin,
            )))
            .await
            .expect("send");
    }
    assert_eq!(next(client).await, Some("fragmented".into()));
    client.close(None).await.expect("close");
}

/// WS-MSG-2, WS-CTRL-3, WS-FLOW-2: invalid UTF-8 closes with 1007, a reserved opcode with
/// 1002, a message over the configured limit (`--ws-max-message`) with 1009.
#[tokio::test]
async fn protocol_violations_close_with_their_codes() {
    let mut ws = WsConfig::default();
    ws.max_message_size = 1000;
    let server = TestServer::start(ws).await;
    let violations = [
        (
            Frame::message(&b"\xff\xfe"[..], OpCode::Data(OpData::Text), true),
            1007,
        ),
        (
            Frame::message(&b"x"[..], OpCode::Data(OpData::Reserved(5)), true),
            1002,
        ),
        (
            Frame::message(vec![0u8; 1001], OpCode::Data(OpData::Binary), true),
            1009,
        ),
    ];
    for (frame, code) in violations {
        let (mut client, _) = connect_h1(server.addr, "/echo", None)
            .await
            .expect("handshake");
        client
            .send(tungstenite::Message::Frame(frame.clone()))
            .await
            .expect("send");
        assert_eq!(close_code(&mut client).await, code, "HTTP/1.1");

        let (_, client) = connect_h2(server.addr, "/echo", None).await;
        let mut client = client.expect("accepted");
        client
            .send(tungstenite::Message::Frame(frame))
            .await
            .expect("send");
        assert_eq!(close_code(&mut client).await, code, "HTTP/2");
    }
    server.stop().await;
}

/// WS-CLOSE-8, WS-FLOW-2: a client that writes a whole oversized message before it reads
/// (as npm's `ws` does) still gets the close frame with 1009: the server drops the rest of the
/// message instead of closing with it unread, which would reset the connection and destroy the
/// frame in the client's receive buffer.
#[tokio::test]
async fn oversized_message_close_survives_a_client_still_sending() {
    let mut ws = WsConfig::default();
    ws.max_message_size = 1000;
    let server = TestServer::start(ws).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "the handshake ends early"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A binary frame of 8 MiB, masked with a zero key, written whole before any read.
    let size: u64 = 8 << 20;
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&size.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    tcp.write_all(&frame).await.unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    while written < size {
        tcp.write_all(&chunk)
            .await
            .expect("the server drops the rest of the message instead of resetting");
        written += chunk.len() as u64;
    }
    // The close frame: opcode 8, two bytes of payload, code 1009.
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(LIMIT, tcp.read_to_end(&mut reply)).await;
    assert!(
        reply.windows(4).any(|w| w == [0x88, 0x02, 0x03, 0xf1]),
        "no close frame with 1009 in {reply:?}"
    );
    server.stop().await;
}

/// WS-CLOSE-4, WS-FLOW-4: when the client goes away (connection closed on HTTP/1.1, stream
/// gone on HTTP/2), a handler that keeps sending gets `WsError::Closed`.
#[tokio::test]
async fn sends_fail_with_closed_once_the_client_is_gone() {
    let mut server = TestServer::start(WsConfig::default()).await;
    let (mut client, _) = connect_h1(server.addr, "/flood", None)
        .await
        .expect("handshake");
    assert!(next(&mut client).await.is_some());
    drop(client);
    assert_eq!(server.record().await, [Message::text("closed")]);

    let (_, client) = connect_h2(server.addr, "/flood", None).await;
    let mut client = client.expect("accepted");
    assert!(next(&mut client).await.is_some());
    drop(client);
    assert_eq!(server.record().await, [Message::text("closed")]);
    server.stop().await;
}

/// SRV-LIMIT-16 over HTTP/2: a client that keeps its connection open but stops granting its
/// WebSocket stream flow-control window (it reads nothing, so its window stays spent) cannot
/// hold the session: once a write has made no progress for the write timeout, the session ends
/// and the handler's `send` fails.
#[tokio::test]
async fn h2_session_without_window_ends_at_the_write_timeout() {
    let mut server =
        TestServer::start_with(Config::default().write_timeout(Duration::from_secs(1))).await;
    let (_, client) = connect_h2(server.addr, "/flood", None).await;
    let client = client.expect("accepted");
    // The handler sends until a send fails; the client reads nothing.
    let record = server.record().await;
    assert_eq!(record.len(), 1);
    let Message::Text(outcome) = &record[0] else {
        panic!("{record:?}");
    };
    assert!(
        outcome.as_str() == "closed" || outcome.starts_with("failed"),
        "{outcome}"
    );
    drop(client);
    server.stop().await;
}

/// WS-FLOW-3: a client that does not read makes the server's `send` wait; the echo resumes,
/// complete and in order, once the client reads — over HTTP/1.1 and over HTTP/2, where the
/// session's flow control is the stream's (WS-H2-4).
#[tokio::test]
async fn echo_survives_a_client_that_reads_late() {
    let server = TestServer::start(WsConfig::default()).await;
    let (client, _) = connect_h1(server.addr, "/echo", None)
        .await
        .expect("handshake");
    late_reader_on(client).await;
    let (_, client) = connect_h2(server.addr, "/echo", None).await;
    late_reader_on(client.expect("accepted")).await;
    server.stop().await;
}

async fn late_reader_on<S>(client: Client<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = client.split();
    const COUNT: usize = 64;
    const SIZE: usize = 64 << 10;
    let writer = tokio::spawn(async move {
        for index in 0..COUNT {
            let fill = u8::try_from(index).expect("small");
            sink.send(tungstenite::Message::binary(vec![fill; SIZE]))
                .await
                .expect("send");
        }
        sink
    });
    for index in 0..COUNT {
        let fill = u8::try_from(index).expect("small");
        let message = tokio::time::timeout(LIMIT, stream.next())
            .await
            .expect("the echo arrives")
            .expect("a message")
            .expect("a valid message");
        assert_eq!(message, tungstenite::Message::binary(vec![fill; SIZE]));
    }
    let mut sink = tokio::time::timeout(LIMIT, writer)
        .await
        .expect("the writer ends")
        .expect("the writer does not panic");
    sink.close().await.expect("close");
}

/// WS-HS-6: a plain request to a WebSocket path is an ordinary request, without the extension.
#[tokio::test]
async fn non_websocket_requests_still_work_on_the_same_server() {
    let server = TestServer::start(WsConfig::default()).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender
        .send_request(
            Request::get("/echo")
                .header(header::HOST, "x")
                .body(Empty::<Bytes>::new())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, "not a WebSocket handshake");
    server.stop().await;
}
