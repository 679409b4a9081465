//! The probe's routes for server duties that need state across exchanges: held calls, gated
//! bodies, call counters, lifespan facts, malformed responses (see the route table of
//! [`probe`](super)).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body::{Body as _, Frame, SizeHint};
use rgi::ext::{EarlyHints, EarlyHintsError};
use rgi::upgrade::OnUpgrade;
use rgi::ws::WebSocketUpgrade;
use rgi::{Body, BodyError, ConnectionInfo, Disconnect, MountPrefix, Request, ServerInfo};
use tokio::sync::Notify;

use super::{Chunks, Probe, ProbeError, number, param, text};

/// The most ids a keyed table remembers (older ones are forgotten).
const TABLE_CAPACITY: usize = 1024;

/// The longest a held call or gated body waits for its release.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// The most chunks `/flood` produces (a bound on what a faulty server can make it buffer).
const FLOOD_CHUNKS: u64 = 2048;

/// How many times a lifespan started the probe in this process (`LIFE-START-1`, `LIFE-START-6`).
pub(super) static STARTUPS: AtomicU64 = AtomicU64::new(0);

/// The probe's state for these routes.
#[derive(Debug)]
pub(super) struct Lab {
    calls: AtomicU64,
    gates: Mutex<HashMap<String, Arc<Notify>>>,
    holds: Arc<Mutex<HashMap<String, &'static str>>>,
    floods: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// Set when a [`ProbeLifespan`](super::ProbeLifespan) started the probe.
    lifecycle: Option<Lifecycle>,
    shut_down: AtomicBool,
}

/// What a lifespan recorded at startup, and how `shutdown` behaves.
#[derive(Debug)]
pub(super) struct Lifecycle {
    pub(super) server: ServerInfo,
    pub(super) shutdown_delay: Duration,
    pub(super) shutdown_panic: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bounded_insert<V>(map: &mut HashMap<String, V>, key: String, value: V) {
    if map.len() >= TABLE_CAPACITY && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

impl Lab {
    /// The state of a probe a lifespan started.
    pub(super) fn with_lifecycle(lifecycle: Lifecycle) -> Self {
        let mut lab = Self::default_parts();
        lab.lifecycle = Some(lifecycle);
        lab
    }

    fn default_parts() -> Self {
        Self {
            calls: AtomicU64::new(0),
            gates: Mutex::default(),
            holds: Arc::default(),
            floods: Mutex::default(),
            lifecycle: None,
            shut_down: AtomicBool::new(false),
        }
    }

    /// Counts a call; notes a call that arrives after `shutdown` (`LIFE-SHUT-3`).
    pub(super) fn called(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.shut_down.load(Ordering::SeqCst) {
            eprintln!("rgi-probe: call after shutdown");
        }
    }

    fn gate(&self, id: &str) -> Arc<Notify> {
        let mut gates = lock(&self.gates);
        if let Some(gate) = gates.get(id) {
            return gate.clone();
        }
        let gate = Arc::new(Notify::new());
        bounded_insert(&mut gates, id.to_owned(), gate.clone());
        gate
    }

    fn logs(&self) -> bool {
        self.lifecycle.is_some()
    }

    /// `App::shutdown` of a lifespan-started probe: logs, waits, panics as configured.
    pub(super) async fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        let Some(lifecycle) = &self.lifecycle else {
            return;
        };
        eprintln!("rgi-probe: shutdown started");
        tokio::time::sleep(lifecycle.shutdown_delay).await;
        if lifecycle.shutdown_panic {
            panic!("rgi-probe: shutdown panics on purpose");
        }
        eprintln!("rgi-probe: shutdown finished");
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::default_parts()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.logs() {
            eprintln!("rgi-probe: application dropped");
        }
    }
}

/// Marks a held call `dropped` unless it completed (`CORE-CANCEL-3`).
struct HoldGuard {
    id: String,
    holds: Arc<Mutex<HashMap<String, &'static str>>>,
    done: bool,
    logs: bool,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.holds).insert(self.id.clone(), "dropped");
            if self.logs {
                eprintln!("rgi-probe: held call {} dropped", self.id);
            }
        }
    }
}

impl Probe {
    /// The routes of this module, then `OPTIONS *` and the `404` for unknown paths.
    pub(super) async fn more_routes(
        &self,
        path: &str,
        mut req: Request,
    ) -> Result<Response<Body>, ProbeError> {
        let lab = &self.lab;
        let id = param(&req, "id").unwrap_or("default").to_owned();
        let response = match path {
            p if p.starts_with("/meta/") => text(StatusCode::OK, super::meta(&req)),
            "/calls" => text(
                StatusCode::OK,
                format!("calls: {}\n", lab.calls.load(Ordering::SeqCst)),
            ),
            "/hold" => {
                lock(&lab.holds).insert(id.clone(), "pending");
                let mut guard = HoldGuard {
                    id: id.clone(),
                    holds: lab.holds.clone(),
                    done: false,
                    logs: lab.logs(),
                };
                let gate = lab.gate(&id);
                let released = tokio::time::timeout(HOLD_LIMIT, gate.notified())
                    .await
                    .is_ok();
                guard.done = true;
                lock(&lab.holds).insert(id.clone(), "completed");
                text(
                    StatusCode::OK,
                    format!("held: {id}\nreleased: {released}\n"),
                )
            }
            "/watch-quiet" => match req.extensions().get::<Disconnect>().cloned() {
                // Reads no body and sends nothing until the exchange ends: only the server's
                // own watch of the connection can notice a client that leaves (HTTP-DISC-5).
                Some(signal) => {
                    self.watch(id, signal.clone());
                    let outcome = tokio::time::timeout(HOLD_LIMIT, signal.finished()).await;
                    text(StatusCode::OK, format!("settled: {}\n", outcome.is_ok()))
                }
                None => text(StatusCode::INTERNAL_SERVER_ERROR, "no Disconnect\n".into()),
            },
            "/release" => {
                lab.gate(&id).notify_one();
                text(StatusCode::OK, format!("released: {id}\n"))
            }
            "/held" => {
                let state = lock(&lab.holds).get(&id).copied().unwrap_or("unknown");
                text(StatusCode::OK, format!("state: {state}\n"))
            }
            "/sleep" => {
                let ms = number(&req, "ms", 100).min(30_000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let mut out = format!("slept: {ms}\n");
                if param(&req, "read").is_some() {
                    match Body::collect(req.into_body()).await {
                        Ok(collected) => {
                            let _ = writeln!(out, "bytes: {}", collected.to_bytes().len());
                        }
                        Err(error) => {
                            let _ = writeln!(out, "error: {}", error_kind(&error));
                        }
                    }
                }
                text(StatusCode::OK, out)
            }
            "/body-info" => text(StatusCode::OK, body_info(req.into_body()).await),
            "/gated" => {
                let gate = lab.gate(&id);
                let first = futures_util::stream::once(async {
                    Ok::<_, ProbeError>(Bytes::from_static(b"first\n"))
                });
                let second = futures_util::stream::once(async move {
                    let _ = tokio::time::timeout(HOLD_LIMIT, gate.notified()).await;
                    Ok::<_, ProbeError>(Bytes::from_static(b"second\n"))
                });
                Response::new(Body::from_stream(futures_util::StreamExt::chain(
                    first, second,
                )))
            }
            "/zero-frames" => {
                Response::new(Body::new(Frames::data(&[b"ab", b"", b"cd", b"", b"ef"])))
            }
            "/bad-response" => bad_response(param(&req, "kind").unwrap_or("")),
            "/set-cookie" => {
                let mut response = text(StatusCode::OK, "cookies\n".into());
                let headers = response.headers_mut();
                for value in ["a=1", "b=2; Path=/", "c=3"] {
                    headers.append(header::SET_COOKIE, HeaderValue::from_static(value));
                }
                for value in ["one", "two"] {
                    headers.append("x-multi", HeaderValue::from_static(value));
                }
                response
            }
            "/trailers-then-data" => {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-probe-trailer", HeaderValue::from_static("done"));
                let frames = vec![
                    Frame::data(Bytes::from_static(b"before")),
                    Frame::trailers(trailers),
                    Frame::data(Bytes::from_static(b"after")),
                ];
                Response::new(Body::new(Frames::new(frames)))
            }
            "/forbidden-trailers" => {
                let mut trailers = HeaderMap::new();
                for name in rgi::fields::FORBIDDEN_IN_TRAILERS {
                    trailers.insert(name, HeaderValue::from_static("1"));
                }
                trailers.insert("x-probe-trailer", HeaderValue::from_static("done"));
                let frames = vec![
                    Frame::data(Bytes::from_static(b"body")),
                    Frame::trailers(trailers),
                ];
                let mut response = Response::new(Body::new(Frames::new(frames)));
                response
                    .headers_mut()
                    .insert(header::TRAILER, HeaderValue::from_static("x-probe-trailer"));
                response
            }
            "/flood" => {
                let counter = Arc::new(AtomicU64::new(0));
                bounded_insert(&mut lock(&lab.floods), id, counter.clone());
                let size = number(&req, "size", 64 * 1024).min(1 << 20) as usize;
                Response::new(Body::new(Counted {
                    inner: Chunks::new(FLOOD_CHUNKS, size),
                    counter,
                }))
            }
            "/flooded" => {
                let produced = lock(&lab.floods).get(&id).map(|c| c.load(Ordering::SeqCst));
                match produced {
                    Some(n) => text(StatusCode::OK, format!("chunks: {n}\n")),
                    None => text(StatusCode::OK, "chunks: unknown\n".into()),
                }
            }
            "/watch-fail" | "/watch-short" => {
                match req.extensions().get::<Disconnect>() {
                    Some(signal) => self.watch(id, signal.clone()),
                    None => {
                        return Ok(text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "no Disconnect\n".into(),
                        ));
                    }
                }
                if path == "/watch-fail" {
                    Response::new(Body::new(Chunks::new(2, 16).failing_after(1)))
                } else {
                    let mut response = Response::new(Body::new(Chunks::new(1, 5)));
                    response
                        .headers_mut()
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(10u64));
                    response
                }
            }
            "/watch-upgrade" => {
                if let Some(signal) = req.extensions().get::<Disconnect>() {
                    self.watch(id, signal.clone());
                }
                match req.extensions_mut().remove::<OnUpgrade>() {
                    Some(offer) => match offer.accept("probe-echo", super::raw_echo) {
                        Ok(response) => response,
                        Err(error) => text(StatusCode::BAD_REQUEST, format!("{error}\n")),
                    },
                    None => text(StatusCode::BAD_REQUEST, "no upgrade offered\n".into()),
                }
            }
            "/early-hints" => early_hints(&req).await,
            "/exts" => text(StatusCode::OK, extensions(&req)),
            "/lifespan" => text(StatusCode::OK, self.lifespan_report()),
            _ if req.method() == Method::OPTIONS && req.uri() == "*" => {
                text(StatusCode::OK, "options\n".into())
            }
            _ => text(StatusCode::NOT_FOUND, "no such probe route\n".into()),
        };
        Ok(response)
    }

    fn lifespan_report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "app-id: {:p}", self as *const Probe);
        let _ = writeln!(out, "startups: {}", STARTUPS.load(Ordering::SeqCst));
        match &self.lab.lifecycle {
            None => {
                let _ = writeln!(out, "lifespan: none");
            }
            Some(lifecycle) => {
                let server = &lifecycle.server;
                let _ = writeln!(out, "lifespan: probe");
                let _ = writeln!(out, "server-name: {}", server.name());
                let _ = writeln!(out, "server-version: {}", server.version());
                let _ = writeln!(out, "spec-version: {}", server.spec_version());
                let names: Vec<&str> = server.capabilities().iter().map(|c| c.name()).collect();
                let _ = writeln!(out, "capabilities: {}", names.join(","));
            }
        }
        out
    }
}

fn error_kind(error: &BodyError) -> &'static str {
    match error {
        BodyError::Disconnected => "disconnected",
        BodyError::LengthLimitExceeded { .. } => "length-limit",
        BodyError::TimedOut => "timed-out",
        BodyError::Protocol(_) => "protocol",
        _ => "other",
    }
}

fn hint(hint: &SizeHint) -> String {
    match hint.exact() {
        Some(n) => n.to_string(),
        None => format!("{}..{:?}", hint.lower(), hint.upper()),
    }
}

/// Reports what the body says about itself before and while it is read (`HTTP-BODY-4`,
/// `HTTP-BODY-6`).
async fn body_info(mut body: Body) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "end-stream-before: {}", body.is_end_stream());
    let _ = writeln!(out, "hint-before: {}", hint(&body.size_hint()));
    let mut total = 0usize;
    let mut first = true;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let label = match &frame {
            None => "none".to_owned(),
            Some(Ok(f)) if f.is_data() => {
                let n = f.data_ref().map_or(0, Bytes::len);
                total += n;
                format!("data {n}")
            }
            Some(Ok(_)) => "trailers".to_owned(),
            Some(Err(e)) => format!("error {}", error_kind(e)),
        };
        if first {
            let _ = writeln!(out, "first: {label}");
            let _ = writeln!(out, "hint-after-first: {}", hint(&body.size_hint()));
            first = false;
        }
        match frame {
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let _ = writeln!(out, "error: {}", error_kind(&e));
                break;
            }
            None => break,
        }
    }
    let _ = writeln!(out, "total: {total}");
    out
}

/// A response the server must not send as given (`CORE-ERR-6`), or one carrying application
/// data the server must ignore (`HTTP-RESP-3`, `EXT-CAP-8`).
fn bad_response(kind: &str) -> Response<Body> {
    let mut response = text(StatusCode::OK, "bad response\n".into());
    match kind {
        "status-600" => {
            *response.status_mut() = StatusCode::from_u16(600).unwrap_or(StatusCode::OK);
        }
        "status-101" => {
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("probe-echo"));
        }
        "content-length" => {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("12abc"));
        }
        "content-length-list" => {
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("13"));
            headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("14"));
        }
        "reason" => {
            response
                .extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(b"Probe Reason"));
        }
        "unknown-extension" => {
            #[derive(Clone, Debug)]
            struct ProbeMarker;
            response.extensions_mut().insert(ProbeMarker);
        }
        _ => *response.status_mut() = StatusCode::BAD_REQUEST,
    }
    response
}

/// Which optional extensions the request carries (`EXT-CAP-1`, `EXT-CAP-7`), and the
/// forwarded and transport views of the connection (`HTTP-CONN-5`).
fn extensions(req: &Request) -> String {
    let extensions = req.extensions();
    let presence = |present: bool| if present { "present" } else { "missing" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "on-upgrade: {}",
        presence(extensions.get::<OnUpgrade>().is_some())
    );
    let _ = writeln!(
        out,
        "websocket-upgrade: {}",
        presence(extensions.get::<WebSocketUpgrade>().is_some())
    );
    let _ = writeln!(
        out,
        "early-hints: {}",
        presence(extensions.get::<EarlyHints>().is_some())
    );
    let _ = writeln!(
        out,
        "mount-prefix: {}",
        presence(extensions.get::<MountPrefix>().is_some())
    );
    if let Some(info) = extensions.get::<ConnectionInfo>() {
        let _ = writeln!(out, "tls: {}", presence(info.tls().is_some()));
        let _ = writeln!(out, "forwarded: {}", info.is_forwarded());
        let _ = writeln!(out, "peer: {}", info.peer());
        let _ = writeln!(out, "scheme: {}", info.scheme());
        let _ = writeln!(out, "transport-peer: {}", info.transport_peer());
        let _ = writeln!(out, "transport-scheme: {}", info.transport_scheme());
    }
    out
}

/// Sends two `103` responses before the head, then tries once more after it (`HTTP-INTERIM-4`,
/// `HTTP-INTERIM-5`).
async fn early_hints(req: &Request) -> Response<Body> {
    let Some(hints) = req.extensions().get::<EarlyHints>().cloned() else {
        return text(StatusCode::OK, "early-hints: missing\n".into());
    };
    let mut before = Vec::new();
    for link in ["</a.css>; rel=preload", "</b.js>; rel=preload"] {
        let mut fields = HeaderMap::new();
        fields.insert(header::LINK, HeaderValue::from_static(link));
        before.push(match hints.send(fields).await {
            Ok(()) => "ok",
            Err(_) => "failed",
        });
    }
    let head = format!("before-head: {}\n", before.join(","));
    let first = futures_util::stream::once(async move { Ok::<_, ProbeError>(Bytes::from(head)) });
    let after = futures_util::stream::once(async move {
        let mut fields = HeaderMap::new();
        fields.insert(
            header::LINK,
            HeaderValue::from_static("</c.css>; rel=preload"),
        );
        let outcome = match hints.send(fields).await {
            Ok(()) => "ok",
            Err(EarlyHintsError::HeadSent) => "head-sent",
            Err(EarlyHintsError::ClientGone) => "client-gone",
            Err(_) => "other",
        };
        Ok::<_, ProbeError>(Bytes::from(format!("after-head: {outcome}\n")))
    });
    Response::new(Body::from_stream(futures_util::StreamExt::chain(
        first, after,
    )))
}

/// A body of given frames, with no size hint.
#[derive(Debug)]
struct Frames {
    frames: std::collections::VecDeque<Frame<Bytes>>,
}

impl Frames {
    fn new(frames: Vec<Frame<Bytes>>) -> Self {
        Self {
            frames: frames.into(),
        }
    }

    fn data(chunks: &[&'static [u8]]) -> Self {
        Self::new(
            chunks
                .iter()
                .map(|c| Frame::data(Bytes::from_static(c)))
                .collect(),
        )
    }
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = ProbeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProbeError>>> {
        Poll::Ready(self.frames.pop_front().map(Ok))
    }
}

/// Counts the chunks the server polled out of the inner body (`HTTP-FRAME-11`).
#[derive(Debug)]
struct Counted {
    inner: Chunks,
    counter: Arc<AtomicU64>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = ProbeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProbeError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            self.counter.fetch_add(1, Ordering::SeqCst);
        }
        polled
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}
