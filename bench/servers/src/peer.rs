//! The peer servers, one per [`Kind`], each on a single thread.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi_examples::hello::{RepeatBody, stream_length};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The peer servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tokio server that answers every request head with a canned response: the ceiling.
    Raw,
    /// hyper's HTTP/1 connection with `service_fn`, default settings.
    Hyper,
    /// hyper's HTTP/1 connection with `pipeline_flush(true)`.
    HyperPipelineFlush,
    /// hyper-util's auto (HTTP/1 + HTTP/2 prior knowledge) connection builder.
    HyperAuto,
    /// `axum::serve` with the router of the `axum_app` example.
    Axum,
    /// tokio-tungstenite WebSocket echo (any path).
    WebSocket,
}

/// An unknown peer name.
#[derive(Debug, thiserror::Error)]
#[error("unknown peer {0:?} (raw, hyper, hyper-pf, hyper-auto, axum, ws; actix is `peer-actix`)")]
pub struct UnknownKind(String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(name: &str) -> Result<Self, UnknownKind> {
        Ok(match name {
            "raw" => Self::Raw,
            "hyper" => Self::Hyper,
            "hyper-pf" => Self::HyperPipelineFlush,
            "hyper-auto" => Self::HyperAuto,
            "axum" => Self::Axum,
            "ws" => Self::WebSocket,
            other => return Err(UnknownKind(other.to_owned())),
        })
    }
}

/// The command line: `peer <kind> <addr>`; runs until killed.
pub fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let kind = args.next();
    if kind.as_deref() == Some("sizes") {
        connection_future_sizes();
        return std::process::ExitCode::SUCCESS;
    }
    let (Some(kind), Some(addr)) = (kind, args.next()) else {
        eprintln!("usage: peer <raw|hyper|hyper-pf|hyper-auto|axum|ws> <addr> | peer sizes");
        return std::process::ExitCode::from(2);
    };
    let kind = match kind.parse::<Kind>() {
        Ok(kind) => kind,
        Err(error) => {
            eprintln!("{error}");
            return std::process::ExitCode::from(2);
        }
    };
    let addr = match addr.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("bad address {addr:?}: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve(kind, addr) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer {kind:?}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints the size of hyper's and hyper-util's connection futures (what every connection task
/// holds before any buffer is allocated): the static share of idle memory per connection.
pub fn connection_future_sizes() {
    let service = hyper::service::service_fn(hello_routes);
    let io = || TokioIo::new(tokio::io::duplex(64).0);
    let http1 = hyper::server::conn::http1::Builder::new().serve_connection(io(), service);
    let http1_upgrades = hyper::server::conn::http1::Builder::new()
        .serve_connection(io(), service)
        .with_upgrades();
    let auto = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let auto_conn = auto.serve_connection(io(), service);
    let auto_upgrades = auto.serve_connection_with_upgrades(io(), service);
    println!(
        "hyper http1 Connection: {} bytes",
        std::mem::size_of_val(&http1)
    );
    println!(
        "hyper http1 Connection with upgrades: {} bytes",
        std::mem::size_of_val(&http1_upgrades)
    );
    println!(
        "hyper-util auto Connection: {} bytes",
        std::mem::size_of_val(&auto_conn)
    );
    println!(
        "hyper-util auto UpgradeableConnection: {} bytes",
        std::mem::size_of_val(&auto_upgrades)
    );
}

/// Serves `kind` on `addr` until the process is killed.
pub fn serve(kind: Kind, addr: SocketAddr) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("peer {kind:?} listening on http://{addr}");
        if kind == Kind::Axum {
            return axum::serve(listener, rgi_examples::axum_app::router()).await;
        }
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(kind, stream));
        }
    })
}

async fn connection(kind: Kind, stream: TcpStream) {
    let service = hyper::service::service_fn(hello_routes);
    let _ = match kind {
        Kind::Raw => raw(stream).await.map_err(drop),
        Kind::Hyper => hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await
            .map_err(drop),
        Kind::HyperPipelineFlush => hyper::server::conn::http1::Builder::new()
            .pipeline_flush(true)
            .serve_connection(TokioIo::new(stream), service)
            .await
            .map_err(drop),
        Kind::HyperAuto => hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await
            .map_err(drop),
        Kind::WebSocket => websocket(stream).await.map_err(drop),
        Kind::Axum => Ok(()),
    };
}

/// The response body of the hyper peers: no boxing, so that allocations compare fairly.
type PeerBody = Either<Full<Bytes>, Either<Incoming, RepeatBody>>;

const HELLO: &str = "Hello, World!";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The routes of the `hello` example, on hyper's types.
async fn hello_routes(req: Request<Incoming>) -> Result<Response<PeerBody>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/") => text(StatusCode::OK, HELLO),
        (&Method::POST, "/echo") => {
            let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
            let mut response = Response::new(Either::Right(Either::Left(req.into_body())));
            if let Some(value) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        (&Method::GET | &Method::HEAD, "/stream") => {
            match stream_length(req.uri().query().unwrap_or("")) {
                Some(length) => {
                    let mut response =
                        Response::new(Either::Right(Either::Right(RepeatBody::new(length))));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    );
                    response
                }
                None => text(StatusCode::BAD_REQUEST, "expected /stream?bytes=N\n"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    };
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<PeerBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

/// The canned response of the raw server.
const CANNED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 13\r\n\r\nHello, World!";

/// Answers every request head (`\r\n\r\n`) with [`CANNED`]; request bodies are not supported.
async fn raw(mut stream: TcpStream) -> std::io::Result<()> {
    let mut input = vec![0u8; 64 * 1024];
    let mut output = Vec::with_capacity(64 * 1024);
    // How many bytes of "\r\n\r\n" the previous read ended with.
    let mut matched = 0usize;
    loop {
        let n = stream.read(&mut input).await?;
        if n == 0 {
            return Ok(());
        }
        for &byte in &input[..n] {
            matched = match (matched, byte) {
                (0 | 2, b'\r') => matched + 1,
                (1 | 3, b'\n') => matched + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if matched == 4 {
                output.extend_from_slice(CANNED);
                matched = 0;
            }
        }
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
    }
}

/// Echoes every text and binary message.
async fn websocket(stream: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut socket = tokio_tungstenite::accept_async(stream).await?;
    while let Some(message) = socket.next().await {
        match message? {
            message @ (Message::Text(_) | Message::Binary(_)) => socket.send(message).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}
