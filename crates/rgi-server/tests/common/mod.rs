//! Shared helpers for rgi-server's integration tests: a probe application, server startup,
//! and real clients (hyper's client connections, raw TCP, curl).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::{App, Body, BoxError, ConnectionInfo, Disconnect, MountPrefix, Outcome};
use rgi_server::{Config, RunningServer, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The upper bound for anything a test waits for (never a timing assertion).
pub const LIMIT: Duration = Duration::from_secs(20);

/// What the probe application observed.
#[derive(Default)]
pub struct Observed {
    pub calls: AtomicUsize,
    pub shutdowns: AtomicUsize,
    pub outcomes: Mutex<HashMap<String, Outcome>>,
}

/// A test application whose behaviour is chosen by the request path.
#[derive(Clone, Default)]
pub struct Probe {
    pub observed: Arc<Observed>,
}

/// A response body that yields `chunks` and then fails or panics.
pub struct Failing {
    chunks: Vec<Bytes>,
    panic: bool,
}

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.chunks.is_empty() {
            let chunk = self.chunks.remove(0);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if self.panic {
            panic!("the probe's body panics on purpose");
        }
        Poll::Ready(Some(Err("the probe's body fails on purpose".into())))
    }
}

/// A body of frames given in advance (data and trailers in any order).
pub struct Frames(pub Vec<Frame<Bytes>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(self.0.remove(0))))
        }
    }
}

/// A body that never ends: 64 KiB of zeros at every poll.
pub struct Endless;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS)))))
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

/// Describes the request: one `name: value` line per fact.
pub fn describe(req: &rgi::Request) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "method: {}", req.method());
    let _ = writeln!(out, "uri: {}", req.uri());
    let _ = writeln!(out, "version: {:?}", req.version());
    for (name, value) in req.headers() {
        let _ = writeln!(out, "header: {}={}", name, value.to_str().unwrap_or("?"));
    }
    if let Some(info) = req.extensions().get::<ConnectionInfo>() {
        let _ = writeln!(out, "peer: {}", info.peer());
        let _ = writeln!(out, "transport-peer: {}", info.transport_peer());
        let _ = writeln!(out, "local: {}", info.local());
        let _ = writeln!(out, "scheme: {}", info.scheme());
        let _ = writeln!(out, "connection-id: {}", info.id());
        if let Some(tls) = info.tls() {
            let _ = writeln!(out, "tls-version: {:?}", tls.version());
            let _ = writeln!(out, "tls-cipher: {}", tls.cipher_suite().unwrap_or("-"));
            let _ = writeln!(
                out,
                "tls-alpn: {}",
                tls.alpn().map(String::from_utf8_lossy).unwrap_or_default()
            );
            let _ = writeln!(out, "tls-sni: {}", tls.server_name().unwrap_or("-"));
            let _ = writeln!(out, "tls-peer-certs: {}", tls.peer_certificates().len());
        }
    }
    if let Some(prefix) = req.extensions().get::<MountPrefix>() {
        let _ = writeln!(out, "mount-prefix: {prefix}");
    }
    if let Some(path) = rgi::path::app_path(req) {
        let _ = writeln!(out, "app-path: {}", String::from_utf8_lossy(&path));
    }
    let _ = writeln!(
        out,
        "disconnect: {}",
        req.extensions().get::<Disconnect>().is_some()
    );
    let _ = writeln!(
        out,
        "on-upgrade: {}",
        req.extensions().get::<rgi::upgrade::OnUpgrade>().is_some()
    );
    let _ = writeln!(
        out,
        "hyper-on-upgrade: {}",
        req.extensions()
            .get::<hyper::upgrade::OnUpgrade>()
            .is_some()
    );
    let _ = writeln!(out, "body-limit: {:?}", req.body().limit());
    out
}

impl App for Probe {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, req: rgi::Request) -> Result<Response<Body>, BoxError> {
        self.observed.calls.fetch_add(1, Ordering::SeqCst);
        let path = rgi::path::app_path(&req)
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        if let Some(key) = req.headers().get("x-track").and_then(|v| v.to_str().ok()) {
            let key = key.to_owned();
            let observed = self.observed.clone();
            if let Some(disconnect) = req.extensions().get::<Disconnect>().cloned() {
                tokio::spawn(async move {
                    let outcome = disconnect.finished().await;
                    observed.outcomes.lock().unwrap().insert(key, outcome);
                });
            }
        }
        match path.as_str() {
            "/meta" => Ok(text(StatusCode::OK, describe(&req))),
            "/echo" => {
                let mut body = req.into_body();
                body.set_limit(None);
                Ok(Response::new(body))
            }
            "/collect" => {
                let collected = req.into_body().collect().await?;
                let mut out = format!("bytes: {}\n", collected.to_bytes().len());
                if let Some(trailers) = collected.trailers() {
                    for (name, value) in trailers {
                        let _ =
                            writeln!(out, "trailer: {}={}", name, value.to_str().unwrap_or("?"));
                    }
                }
                Ok(text(StatusCode::OK, out))
            }
            "/no-read" => Ok(text(StatusCode::OK, "did not read\n".into())),
            "/endless" => Ok(Response::new(Body::new(Endless))),
            "/stall-collect" => {
                // Reads one frame, stops polling for 3 s, then reads the rest.
                let mut body = req.into_body();
                let first = body
                    .frame()
                    .await
                    .transpose()?
                    .map_or(0, |frame| frame.data_ref().map_or(0, |data| data.len()));
                tokio::time::sleep(Duration::from_secs(3)).await;
                let rest = body.collect().await?.to_bytes().len();
                Ok(text(StatusCode::OK, format!("bytes: {}\n", first + rest)))
            }
            "/panic" => panic!("the probe panics on purpose"),
            "/error" => Err("secret internal detail".into()),
            "/fail-after-head" => Ok(Response::new(Body::new(Failing {
                chunks: vec![Bytes::from_static(b"partial")],
                panic: false,
            }))),
            "/panic-after-head" => Ok(Response::new(Body::new(Failing {
                chunks: vec![Bytes::from_static(b"partial")],
                panic: true,
            }))),
            "/cl-short" | "/cl-long" => {
                let body = if path == "/cl-short" {
                    "12345"
                } else {
                    "1234567890"
                };
                let chunks = vec![Frame::data(Bytes::from_static(body.as_bytes()))];
                let mut response = Response::new(Body::new(Frames(chunks)));
                let declared = if path == "/cl-short" { "10" } else { "3" };
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static(declared));
                Ok(response)
            }
            "/status" => {
                let code: u16 = rgi::path::query(&req).parse().unwrap_or(200);
                let mut response = Response::new(Body::from("body that must not be sent"));
                *response.status_mut() = StatusCode::from_u16(code).unwrap();
                Ok(response)
            }
            "/reason" => {
                let mut response = Response::new(Body::from("x"));
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(b"Totally Fine"));
                Ok(response)
            }
            "/hop" => {
                let mut response = Response::new(Body::from("hop"));
                let headers = response.headers_mut();
                headers.insert(header::CONNECTION, HeaderValue::from_static("x-custom"));
                headers.insert("keep-alive", HeaderValue::from_static("timeout=1"));
                headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
                headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
                headers.insert("x-kept", HeaderValue::from_static("yes"));
                Ok(response)
            }
            "/trailers" => {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-checksum", HeaderValue::from_static("abc"));
                let frames = vec![
                    Frame::data(Bytes::from_static(b"chunk one,")),
                    Frame::data(Bytes::from_static(b"chunk two")),
                    Frame::trailers(trailers),
                ];
                let mut response = Response::new(Body::new(Frames(frames)));
                response
                    .headers_mut()
                    .insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
                Ok(response)
            }
            "/bad-trailers" => {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-ok", HeaderValue::from_static("1"));
                trailers.insert("content-type", HeaderValue::from_static("a/b"));
                trailers.insert("set-cookie", HeaderValue::from_static("a=b"));
                let frames = vec![
                    Frame::data(Bytes::from_static(b"body")),
                    Frame::trailers(trailers),
                ];
                Ok(Response::new(Body::new(Frames(frames))))
            }
            "/data-after-trailers" => {
                let frames = vec![
                    Frame::data(Bytes::from_static(b"before")),
                    Frame::trailers(HeaderMap::new()),
                    Frame::data(Bytes::from_static(b"after")),
                ];
                Ok(Response::new(Body::new(Frames(frames))))
            }
            "/sleep" => {
                let ms: u64 = rgi::path::query(&req).parse().unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(text(StatusCode::OK, "slept\n".into()))
            }
            "/hang" => {
                std::future::pending::<()>().await;
                Ok(text(StatusCode::OK, "unreachable\n".into()))
            }
            "/upgrade" => {
                let Some(offer) = req.extensions().get::<rgi::upgrade::OnUpgrade>().cloned() else {
                    return Ok(text(StatusCode::BAD_REQUEST, "no upgrade offered\n".into()));
                };
                Ok(
                    offer.accept("echo", |mut io: rgi::upgrade::Upgraded| async move {
                        let mut buf = vec![0u8; 1024];
                        loop {
                            let n = io.read(&mut buf).await?;
                            if n == 0 {
                                break;
                            }
                            io.write_all(&buf[..n]).await?;
                            io.flush().await?;
                        }
                        Ok(())
                    })?,
                )
            }
            _ => Ok(text(StatusCode::NOT_FOUND, "not found\n".into())),
        }
    }

    async fn shutdown(&self) {
        self.observed.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

/// A configuration for tests: an ephemeral port on 127.0.0.1, no access log.
pub fn config() -> Config {
    Config::default()
        .bind("127.0.0.1:0".parse().unwrap())
        .graceful_timeout(Duration::from_secs(10))
        .access_log(false)
}

/// Starts `app` with `config`.
pub async fn start<L: rgi::Lifespan>(config: Config, app: L) -> RunningServer {
    tokio::time::timeout(LIMIT, Server::new(config).start(app))
        .await
        .expect("startup timed out")
        .expect("the server starts")
}

/// Starts the probe with `config`.
pub async fn start_probe(config: Config) -> (RunningServer, Probe) {
    let probe = Probe::default();
    let server = start(config, probe.clone()).await;
    (server, probe)
}

/// Shuts the server down and waits for it.
pub async fn stop(server: RunningServer) {
    server.shutdown();
    tokio::time::timeout(LIMIT, server.wait())
        .await
        .expect("shutdown timed out")
        .expect("the server stops cleanly");
}

/// A response read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The values of a `name: value` line in a probe description.
    pub fn lines(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}: ");
        self.text()
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    pub fn line(&self, name: &str) -> String {
        self.lines(name).into_iter().next().unwrap_or_default()
    }
}

type ClientBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A request with a full body.
pub fn request(method: &str, uri: &str, body: &'static [u8]) -> Request<ClientBody> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "test.invalid")
        .body(http_body_util::Full::new(Bytes::from_static(body)).boxed())
        .unwrap()
}

/// Sends `req` on a new HTTP/1.1 connection and reads the response to its end.
pub async fn send_h1(addr: SocketAddr, req: Request<ClientBody>) -> Reply {
    tokio::time::timeout(LIMIT, async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let response = sender.send_request(req).await.unwrap();
        read_reply(response).await
    })
    .await
    .expect("HTTP/1.1 exchange timed out")
}

/// Sends `req` on a new HTTP/2 (prior knowledge) connection and reads the response.
pub async fn send_h2(addr: SocketAddr, mut req: Request<ClientBody>) -> Reply {
    tokio::time::timeout(LIMIT, async {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        req.headers_mut().remove(header::HOST);
        let uri = format!("http://{addr}{}", req.uri());
        *req.uri_mut() = uri.parse().unwrap();
        let response = sender.send_request(req).await.unwrap();
        read_reply(response).await
    })
    .await
    .expect("HTTP/2 exchange timed out")
}

pub async fn read_reply(response: Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("the response body is complete");
    let trailers = collected.trailers().cloned();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// Writes `bytes` on a new connection and reads until the server closes it (or `LIMIT`).
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_to_close(&mut stream).await
}

/// Reads until the peer closes (a reset counts as a close), within `LIMIT`.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LIMIT, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}

/// Reads from `stream` until `needle` appears (or `LIMIT`).
pub async fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LIMIT, async {
        let mut buf = [0u8; 8192];
        while !contains(&out, needle) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The status code of the first response in `bytes`, if any.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// Runs curl with `args` and returns (exit status success, stdout, stderr).
pub async fn curl(args: &[&str]) -> (bool, String, String) {
    let output = tokio::time::timeout(
        LIMIT,
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "15"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl timed out")
    .expect("curl runs (scripts/install-test-deps.sh installs it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits until `check` holds (polling), within `LIMIT`.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}
