//! The probe application: an RGI app that shows what it receives and produces what the cases
//! ask for. Server authors host it in their server; the suite drives it over real sockets.
//!
//! Every route answers under any mount prefix. Metadata comes back as `name: value` lines of
//! `text/plain`, which any client can read.
//!
//! The probe's own duties as an application: it never depends on the relative order of fields
//! with different names (`HTTP-REQ-8`: `/meta` lists them as the map yields them, and no route
//! reads one field relative to another), and every extension it uses is one of this
//! specification whose absence it answers with a `400` or `500` response, never a panic
//! (`EXT-NS-4`; the only panic is `/panic`, on purpose).
//!
//! | Route | What it does |
//! |---|---|
//! | `/meta` | reports method, target, version, query, headers (in order), connection info, the `Disconnect` signal and its outcome when called, mount prefix, app path |
//! | `/echo` | streams the request body back; request trailers come back as response trailers |
//! | `/body-report` | reads the whole body and reports its length, trailers or error |
//! | `/stream?chunks=N&size=M` | streams `N` chunks of `M` bytes |
//! | `/trailers` | a streamed body followed by the trailer `x-probe-trailer: done` |
//! | `/status?code=N&body=B` | answers status `N`, with body `B` when given (to check the server's HEAD/204/304 rules) |
//! | `/content-length?declared=D&actual=A` | declares `D` bytes and sends `A` |
//! | `/no-read` | answers without reading the body (no `100 Continue` is due) |
//! | `/panic`, `/error` | fail before the head |
//! | `/fail-after-head` | fails after the first body chunk |
//! | `/limit?max=N` | sets the body limit to `N` and collects the body with `?` |
//! | `/watch?id=X` | streams until the client leaves; `/outcome?id=X` then reports the `Disconnect` outcome |
//! | `/watch-quiet?id=X` | keeps the `Disconnect` for `/outcome?id=X`, then reads no body and sends nothing until the exchange ends |
//! | `/hop-by-hop` | sets `Connection`/`Transfer-Encoding`/`Keep-Alive` headers the server must not forward |
//! | `/ws` | WebSocket echo (subprotocol `probe` accepted when offered) |
//! | `/upgrade` | raw upgrade to `probe-echo`, echoing bytes until the peer closes |
//! | `/ws-*`, `/upgrade-*` | WebSocket and upgrade handlers the cases steer (closing, failing, holding, flooding): see `probe/sessions.rs` |
//! | `/meta/ANY` | same as `/meta` (any path below it, e.g. one that is not UTF-8) |
//! | `/calls` | how many calls the probe received so far (this one included) |
//! | `/hold?id=X` | a call that stays pending until `/release?id=X`; `/held?id=X` says `pending`, `completed` or `dropped` |
//! | `/sleep?ms=N[&read]` | waits `N` ms without polling the body, then (with `read`) reads it |
//! | `/body-info` | reports `is_end_stream`, `size_hint` before and after the first frame, and the frames |
//! | `/gated?id=X` | sends `first`, then waits for `/release?id=X` before `second` |
//! | `/zero-frames` | a body with empty data frames between non-empty ones |
//! | `/bad-response?kind=K` | status 600, a bare 101, an invalid content-length, a reason phrase, an unknown extension |
//! | `/set-cookie` | repeated `set-cookie` and `x-multi` fields |
//! | `/trailers-then-data`, `/forbidden-trailers` | a data frame after the trailers; trailers with forbidden fields |
//! | `/flood?id=X` | a large body that counts the chunks polled; `/flooded?id=X` reports the count |
//! | `/watch-fail?id=X`, `/watch-short?id=X`, `/watch-upgrade?id=X` | like `/fail-after-head`, `/content-length?declared=10&actual=5`, `/upgrade`, with the `Disconnect` kept for `/outcome?id=X` |
//! | `/early-hints` | two `103`s before the head, one attempt after it (reported in the body) |
//! | `/exts` | which optional extensions the request carries; forwarded and transport peer/scheme |
//! | `/lifespan` | the app's identity, the startup count, and the `ServerInfo` a [`ProbeLifespan`] received |

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Frame, SizeHint};
use rgi::upgrade::OnUpgrade;
use rgi::ws::{AcceptOptions, Message, WebSocket, WebSocketUpgrade};
use rgi::{App, Body, BodyError, BoxError, ConnectionInfo, Disconnect, MountPrefix, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod lifespan;
mod routes;
mod sessions;

pub use lifespan::{ProbeLifespan, STARTUP_FAILURE_MESSAGE, StartupFailure};

/// How many `Disconnect` signals `/watch` keeps (oldest forgotten first).
const WATCH_CAPACITY: usize = 1024;

/// The probe application.
#[derive(Debug, Default)]
pub struct Probe {
    watched: Mutex<(HashMap<String, Disconnect>, VecDeque<String>)>,
    shutdowns: AtomicUsize,
    lab: routes::Lab,
    sessions: sessions::Sessions,
}

/// What went wrong in a probe route (the server answers it per the spec).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// `/error` asked for it.
    #[error("the probe failed on purpose")]
    OnPurpose,
    /// Reading the request body failed.
    #[error("reading the request body failed")]
    Body(#[from] BodyError),
}

impl Probe {
    /// A fresh probe.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times the server called `shutdown`.
    pub fn shutdowns(&self) -> usize {
        self.shutdowns.load(Ordering::SeqCst)
    }

    fn watch(&self, id: String, signal: Disconnect) {
        let mut guard = self
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (map, order) = &mut *guard;
        if map.insert(id.clone(), signal).is_none() {
            order.push_back(id);
        }
        while order.len() > WATCH_CAPACITY {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    fn outcome(&self, id: &str) -> String {
        let guard = self
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match guard.0.get(id).map(Disconnect::outcome) {
            None => "unknown".to_owned(),
            Some(None) => "active".to_owned(),
            Some(Some(rgi::Outcome::Completed)) => "completed".to_owned(),
            Some(Some(rgi::Outcome::ClientGone)) => "client-gone".to_owned(),
            Some(Some(rgi::Outcome::Aborted)) => "aborted".to_owned(),
            Some(Some(_)) => "other".to_owned(),
        }
    }
}

fn param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    rgi::path::query(req).split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

fn number(req: &Request, name: &str, default: u64) -> u64 {
    param(req, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn meta(req: &Request) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "method: {}", req.method());
    let _ = writeln!(out, "target: {}", req.uri());
    let _ = writeln!(out, "version: {:?}", req.version());
    let _ = writeln!(out, "query: {}", rgi::path::query(req));
    for (name, value) in req.headers() {
        let _ = writeln!(
            out,
            "header: {}: {}",
            name,
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    match req.extensions().get::<ConnectionInfo>() {
        Some(info) => {
            let _ = writeln!(out, "scheme: {}", info.scheme());
            let _ = writeln!(out, "peer: {}", info.peer());
            let _ = writeln!(out, "local: {}", info.local());
            let _ = writeln!(out, "connection-id: {}", info.id());
            match info.tls() {
                Some(tls) => {
                    let _ = writeln!(
                        out,
                        "tls: {:?} alpn={} sni={}",
                        tls.version(),
                        tls.alpn().map(String::from_utf8_lossy).unwrap_or_default(),
                        tls.server_name().unwrap_or("")
                    );
                }
                None => {
                    let _ = writeln!(out, "tls: none");
                }
            }
        }
        None => {
            let _ = writeln!(out, "connection-info: missing");
        }
    }
    let disconnect = req.extensions().get::<Disconnect>();
    let _ = writeln!(
        out,
        "disconnect: {}",
        if disconnect.is_some() {
            "present"
        } else {
            "missing"
        }
    );
    if let Some(signal) = disconnect {
        let _ = writeln!(
            out,
            "disconnect-outcome: {}",
            match signal.outcome() {
                None => "active",
                Some(rgi::Outcome::Completed) => "completed",
                Some(rgi::Outcome::ClientGone) => "client-gone",
                Some(rgi::Outcome::Aborted) => "aborted",
                Some(_) => "other",
            }
        );
    }
    match req.extensions().get::<MountPrefix>() {
        Some(prefix) => {
            let _ = writeln!(out, "mount: {prefix}");
        }
        None => {
            let _ = writeln!(out, "mount: none");
        }
    }
    match rgi::path::app_path(req) {
        Some(path) => {
            let _ = writeln!(out, "app-path: {}", String::from_utf8_lossy(&path));
        }
        None => {
            let _ = writeln!(out, "app-path: outside-mount");
        }
    }
    out
}

impl App for Probe {
    type Body = Body;
    type Error = ProbeError;

    async fn call(&self, mut req: Request) -> Result<Response<Body>, ProbeError> {
        self.lab.called();
        let path = rgi::path::app_path(&req)
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .unwrap_or_default();
        let response = match path.as_str() {
            "/meta" => text(StatusCode::OK, meta(&req)),
            "/echo" => echo(req),
            "/body-report" => {
                let body = req.into_body();
                let report = match body.collect().await {
                    Ok(collected) => {
                        let mut out = format!("bytes: {}\n", collected.to_bytes().len());
                        if let Some(trailers) = collected.trailers() {
                            for (name, value) in trailers {
                                let _ = writeln!(
                                    out,
                                    "trailer: {}: {}",
                                    name,
                                    String::from_utf8_lossy(value.as_bytes())
                                );
                            }
                        }
                        out
                    }
                    Err(error) => format!("error: {error}\n"),
                };
                text(StatusCode::OK, report)
            }
            "/stream" => {
                let chunks = number(&req, "chunks", 4);
                let size = number(&req, "size", 1024).min(1 << 20);
                Response::new(Body::new(Chunks::new(chunks, size as usize)))
            }
            "/trailers" => {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-probe-trailer", HeaderValue::from_static("done"));
                let mut response =
                    Response::new(Body::new(Chunks::new(3, 5).with_trailers(trailers)));
                response
                    .headers_mut()
                    .insert(header::TRAILER, HeaderValue::from_static("x-probe-trailer"));
                response
            }
            "/status" => {
                let code = number(&req, "code", 200);
                let status = u16::try_from(code)
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .filter(|s| !s.is_informational())
                    .unwrap_or(StatusCode::BAD_REQUEST);
                let body = param(&req, "body").unwrap_or("").to_owned();
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status;
                response
            }
            "/content-length" => {
                let declared = number(&req, "declared", 10);
                let actual = number(&req, "actual", 5).min(1 << 20);
                let mut response = Response::new(Body::new(Chunks::new(1, actual as usize)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
                response
            }
            "/no-read" => text(StatusCode::OK, "not read\n".to_owned()),
            "/panic" => panic!("the probe panics on purpose"),
            "/error" => return Err(ProbeError::OnPurpose),
            "/fail-after-head" => Response::new(Body::new(Chunks::new(2, 16).failing_after(1))),
            "/limit" => {
                let max = number(&req, "max", 16);
                let mut body = req.into_body();
                body.set_limit(Some(max));
                let collected = body.collect().await?;
                text(
                    StatusCode::OK,
                    format!("bytes: {}\n", collected.to_bytes().len()),
                )
            }
            "/watch" => {
                let id = param(&req, "id").unwrap_or("default").to_owned();
                match req.extensions().get::<Disconnect>() {
                    Some(signal) => {
                        self.watch(id, signal.clone());
                        let chunks = number(&req, "chunks", u64::MAX);
                        Response::new(Body::new(Chunks::new(chunks, 16 * 1024)))
                    }
                    None => text(StatusCode::INTERNAL_SERVER_ERROR, "no Disconnect\n".into()),
                }
            }
            "/outcome" => {
                let id = param(&req, "id").unwrap_or("default");
                text(StatusCode::OK, format!("outcome: {}\n", self.outcome(id)))
            }
            "/hop-by-hop" => {
                let mut response = text(StatusCode::OK, "hop-by-hop\n".to_owned());
                let headers = response.headers_mut();
                headers.insert(header::CONNECTION, HeaderValue::from_static("x-probe"));
                headers.insert(
                    HeaderName::from_static("keep-alive"),
                    HeaderValue::from_static("timeout=999"),
                );
                headers.insert(
                    HeaderName::from_static("x-probe"),
                    HeaderValue::from_static("kept"),
                );
                response
            }
            "/ws" => match req.extensions_mut().remove::<WebSocketUpgrade>() {
                Some(handshake) => {
                    let options = if handshake.protocols().iter().any(|p| p == "probe") {
                        AcceptOptions::new().subprotocol("probe")
                    } else {
                        AcceptOptions::new()
                    };
                    match handshake.accept_with(options, ws_echo) {
                        Ok(response) => response,
                        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
                    }
                }
                None => text(
                    StatusCode::BAD_REQUEST,
                    "not a WebSocket handshake\n".into(),
                ),
            },
            "/upgrade" => match req.extensions_mut().remove::<OnUpgrade>() {
                Some(offer) => match offer.accept("probe-echo", raw_echo) {
                    Ok(response) => response,
                    Err(error) => text(StatusCode::BAD_REQUEST, format!("{error}\n")),
                },
                None => text(StatusCode::BAD_REQUEST, "no upgrade offered\n".into()),
            },
            p if p.starts_with("/ws-") || p.starts_with("/upgrade-") => {
                match self.sessions.route(p, req) {
                    Some(response) => response,
                    None => text(StatusCode::NOT_FOUND, "no such probe route\n".into()),
                }
            }
            _ => self.more_routes(&path, req).await?,
        };
        Ok(response)
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
        self.lab.shutdown().await;
    }
}

fn echo(req: Request) -> Response<Body> {
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let mut response = Response::new(req.into_body());
    if let Some(value) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

async fn ws_echo(mut socket: WebSocket) -> Result<(), BoxError> {
    while let Some(message) = socket.recv().await {
        match message? {
            Message::Close(_) => break,
            other => socket.send(other).await?,
        }
    }
    Ok(())
}

async fn raw_echo(mut io: rgi::upgrade::Upgraded) -> Result<(), BoxError> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = io.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        io.write_all(&buf[..n]).await?;
        io.flush().await?;
    }
    io.shutdown().await?;
    Ok(())
}

/// A generated body: `remaining` chunks of `chunk`, optional trailers, optional failure.
#[derive(Debug)]
struct Chunks {
    remaining: u64,
    chunk: Bytes,
    trailers: Option<HeaderMap>,
    fail_after: Option<u64>,
    sent: u64,
}

impl Chunks {
    fn new(chunks: u64, size: usize) -> Self {
        Self {
            remaining: chunks,
            chunk: Bytes::from(vec![b'x'; size]),
            trailers: None,
            fail_after: None,
            sent: 0,
        }
    }

    fn with_trailers(mut self, trailers: HeaderMap) -> Self {
        self.trailers = Some(trailers);
        self
    }

    fn failing_after(mut self, chunks: u64) -> Self {
        self.fail_after = Some(chunks);
        self
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = ProbeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProbeError>>> {
        if self.fail_after == Some(self.sent) {
            self.fail_after = None;
            self.remaining = 0;
            return Poll::Ready(Some(Err(ProbeError::OnPurpose)));
        }
        if self.remaining > 0 {
            self.remaining -= 1;
            self.sent += 1;
            return Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn size_hint(&self) -> SizeHint {
        if self.fail_after.is_some() || self.trailers.is_some() {
            return SizeHint::new();
        }
        match self.remaining.checked_mul(self.chunk.len() as u64) {
            Some(total) => SizeHint::with_exact(total),
            None => SizeHint::new(),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.trailers.is_none() && self.fail_after.is_none()
    }
}
