//! Faulty servers, each with one seeded fault, for the proof of strength (issue #7).
//!
//! Two kinds, both built on the real rgi-server hosting the real probe:
//!
//! - [`WrapperFault`]: a wrapper around [`Probe`] that changes what crosses the interface the way
//!   a faulty server would (drops request trailers, lies about the client address, reports a
//!   completed request as a disconnect, ...). The probe cannot tell the wrapper from the server.
//! - [`WireFault`]: a TCP proxy in front of the server that corrupts the bytes the client sees
//!   (drops `100 Continue`, adds a body to a `HEAD` response, strips trailers, ...).
//!
//! Each fault runs the whole suite; a control run with the fault switched off shows that the
//! harness itself (wrapper or proxy) does not make the expected case fail.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, Uri, Version};
use http_body::Frame;
use rgi::ws::WebSocketUpgrade;
use rgi::{
    App, Body, BodyError, Capabilities, Capability, ConnectionInfo, Disconnect, MountPrefix,
    Request, SocketAddress,
};
use rgi_conformance::probe::{Probe, ProbeError};
use rgi_conformance::report::{Outcome, Report};
use rgi_conformance::server::{self, Manifest, Target};
use rgi_server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A server fault simulated at the interface, by a wrapper around the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WrapperFault {
    /// No fault: the control run.
    None,
    /// Request trailers never reach the app.
    DropRequestTrailers,
    /// `ConnectionInfo` names a client address that is not the client's.
    LieAboutClientAddress,
    /// The last data frame of every request body is lost.
    LoseLastRequestChunk,
    /// Every exchange is reported as `ClientGone`, completed ones included.
    ReportCompletedAsGone,
    /// A `MountPrefix` nobody configured.
    InventMountPrefix,
    /// The method is upper-cased (`patch` becomes `PATCH`).
    NormaliseMethod,
    /// The request target is percent-decoded (`%2F` becomes `/`).
    DecodeTarget,
    /// Repeated header fields are merged into one comma-separated field.
    MergeRepeatedFields,
    /// HTTP/1.0 requests are reported as HTTP/1.1.
    ReportHttp10AsHttp11,
    /// A new connection id for every request.
    NewConnectionIdPerRequest,
    /// Response trailers are dropped.
    DropResponseTrailers,
    /// A response body that fails after the head ends cleanly instead.
    EndResponseOnError,
    /// An application error before the head is answered with its message.
    LeakErrorDetails,
    /// A `BodyError` from the app is answered `500` instead of its status.
    IgnoreBodyErrorStatus,
    /// A WebSocket handshake is passed on as if the client offered the subprotocol `probe`.
    OfferSubprotocolNobodyOffered,
    /// `App::shutdown` of the probe is never called.
    SkipShutdown,
}

/// The probe behind a [`WrapperFault`].
#[derive(Debug)]
pub(crate) struct FaultyProbe {
    probe: Probe,
    fault: WrapperFault,
    next_id: AtomicU64,
}

impl FaultyProbe {
    /// The probe with `fault`.
    pub(crate) fn new(fault: WrapperFault) -> Self {
        Self {
            probe: Probe::new(),
            fault,
            next_id: AtomicU64::new(1_000_000),
        }
    }

    fn corrupt_request(&self, req: &mut Request) {
        match self.fault {
            WrapperFault::DropRequestTrailers => map_request_body(req, FrameFault::DropTrailers),
            WrapperFault::LoseLastRequestChunk => map_request_body(req, FrameFault::LoseLastData),
            WrapperFault::LieAboutClientAddress => {
                if let Some(info) = req.extensions().get::<ConnectionInfo>() {
                    let liar = SocketAddress::Tcp(SocketAddr::from(([192, 0, 2, 7], 4242)));
                    let forged = ConnectionInfo::new(info.local().clone(), liar, info.scheme())
                        .with_id(info.id());
                    req.extensions_mut().insert(forged);
                }
            }
            WrapperFault::NewConnectionIdPerRequest => {
                if let Some(info) = req.extensions().get::<ConnectionInfo>() {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let forged = info.clone().with_id(id);
                    req.extensions_mut().insert(forged);
                }
            }
            WrapperFault::ReportCompletedAsGone => {
                if let Some(real) = req.extensions_mut().remove::<Disconnect>() {
                    let (fake, notifier) = Disconnect::pair();
                    req.extensions_mut().insert(fake);
                    tokio::spawn(async move {
                        real.finished().await;
                        notifier.client_gone();
                    });
                }
            }
            WrapperFault::InventMountPrefix => {
                if let Ok(prefix) = MountPrefix::new("/mounted") {
                    req.extensions_mut().insert(prefix);
                }
            }
            WrapperFault::NormaliseMethod => {
                let upper = req.method().as_str().to_ascii_uppercase();
                if let Ok(method) = Method::from_bytes(upper.as_bytes()) {
                    *req.method_mut() = method;
                }
            }
            WrapperFault::DecodeTarget => {
                let decoded = req.uri().to_string().replace("%2F", "/");
                if let Ok(uri) = decoded.parse::<Uri>() {
                    *req.uri_mut() = uri;
                }
            }
            WrapperFault::MergeRepeatedFields => {
                let headers = req.headers_mut();
                let names: Vec<_> = headers.keys().cloned().collect();
                for name in names {
                    let values: Vec<String> = headers
                        .get_all(&name)
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect();
                    if values.len() > 1 {
                        if let Ok(merged) = values.join(", ").parse() {
                            headers.insert(name, merged);
                        }
                    }
                }
            }
            WrapperFault::ReportHttp10AsHttp11 => {
                if req.version() == Version::HTTP_10 {
                    *req.version_mut() = Version::HTTP_11;
                }
            }
            WrapperFault::OfferSubprotocolNobodyOffered => {
                if let Some(offer) = req.extensions_mut().remove::<WebSocketUpgrade>() {
                    let protocols = if offer.protocols().is_empty() {
                        vec!["probe".to_owned()]
                    } else {
                        offer.protocols().to_vec()
                    };
                    req.extensions_mut()
                        .insert(WebSocketUpgrade::new(offer.version(), protocols));
                }
            }
            WrapperFault::None
            | WrapperFault::DropResponseTrailers
            | WrapperFault::EndResponseOnError
            | WrapperFault::LeakErrorDetails
            | WrapperFault::IgnoreBodyErrorStatus
            | WrapperFault::SkipShutdown => {}
        }
    }
}

impl App for FaultyProbe {
    type Body = Body;
    type Error = ProbeError;

    async fn call(&self, mut req: Request) -> Result<Response<Body>, ProbeError> {
        self.corrupt_request(&mut req);
        let result = self.probe.call(req).await;
        match (self.fault, result) {
            (WrapperFault::DropResponseTrailers, Ok(response)) => {
                Ok(response.map(|body| Body::new(Faulted::new(body, FrameFault::DropTrailers))))
            }
            (WrapperFault::EndResponseOnError, Ok(response)) => {
                Ok(response.map(|body| Body::new(Faulted::new(body, FrameFault::EndOnError))))
            }
            (WrapperFault::LeakErrorDetails, Err(error)) => {
                let mut response = Response::new(Body::from(format!("internal error: {error}")));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                Ok(response)
            }
            (WrapperFault::IgnoreBodyErrorStatus, Err(ProbeError::Body(_))) => {
                Err(ProbeError::OnPurpose)
            }
            (_, result) => result,
        }
    }

    async fn shutdown(&self) {
        if self.fault != WrapperFault::SkipShutdown {
            self.probe.shutdown().await;
        }
    }
}

/// What [`Faulted`] does to the frames of a body.
#[derive(Debug, Clone, Copy)]
enum FrameFault {
    DropTrailers,
    LoseLastData,
    EndOnError,
}

/// A body with one [`FrameFault`].
struct Faulted {
    inner: Body,
    fault: FrameFault,
    held: Option<Bytes>,
    done: bool,
}

impl Faulted {
    fn new(inner: Body, fault: FrameFault) -> Self {
        Self {
            inner,
            fault,
            held: None,
            done: false,
        }
    }
}

impl http_body::Body for Faulted {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.done = true;
                    // LoseLastData: whatever is held is the last chunk, and is lost.
                    this.held = None;
                    return Poll::Ready(None);
                }
                Some(Err(error)) => {
                    this.done = true;
                    return match this.fault {
                        FrameFault::EndOnError => Poll::Ready(None),
                        _ => Poll::Ready(Some(Err(error))),
                    };
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => match this.fault {
                        FrameFault::LoseLastData => {
                            if let Some(previous) = this.held.replace(data) {
                                return Poll::Ready(Some(Ok(Frame::data(previous))));
                            }
                        }
                        _ => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    },
                    Err(frame) => match this.fault {
                        FrameFault::DropTrailers => {}
                        FrameFault::LoseLastData => {
                            this.held = None;
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        FrameFault::EndOnError => return Poll::Ready(Some(Ok(frame))),
                    },
                },
            }
        }
    }
}

fn map_request_body(req: &mut Request, fault: FrameFault) {
    let body = std::mem::replace(req.body_mut(), Body::empty());
    let limit = body.limit();
    *req.body_mut() = Body::new(Faulted::new(body, fault)).with_limit(limit);
}

/// What rgi-server claims (the manifest of `tests/reference_server.rs`).
pub(crate) fn reference_manifest() -> Arc<Manifest> {
    let capabilities: Capabilities = [
        Capability::Http1,
        Capability::Http2,
        Capability::RequestTrailers,
        Capability::ResponseTrailers,
        Capability::Upgrade,
        Capability::WebSocket,
    ]
    .into_iter()
    .collect();
    Arc::new(Manifest::new(capabilities))
}

/// Runs the server-mode cases that cite `id` (all of them for `None`) against rgi-server
/// hosting `app`, with `config` (its bind address and drain deadline are set here), behind
/// `wire` when it is not [`WireFault::None`].
pub(crate) async fn run_suite<A: App>(
    config: Config,
    app: A,
    wire: WireFault,
    id: Option<&str>,
) -> Report {
    let config = config
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .graceful_timeout(Duration::from_secs(2));
    let running = Server::new(config)
        .start(app)
        .await
        .expect("rgi-server starts");
    let server_addr = running.local_addrs()[0];
    let proxy = match wire {
        WireFault::None => None,
        fault => Some(Proxy::start(server_addr, fault).await),
    };
    let target = Target {
        addr: proxy.as_ref().map_or(server_addr, |p| p.addr),
        manifest: reference_manifest(),
    };
    let report = match id {
        Some(id) => server::run_selected(&target, |case| case.ids.contains(&id)).await,
        None => server::run(&target).await,
    };
    drop(proxy);
    running.shutdown();
    running.wait().await.expect("rgi-server stops");
    report
}

/// The names of the failed cases that cite `id`.
pub(crate) fn failed_cases_citing(report: &Report, id: &str) -> Vec<&'static str> {
    report
        .results()
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)) && r.ids.contains(&id))
        .map(|r| r.name)
        .collect()
}

/// Asserts that `report` failed and that a failed case cites `id`.
pub(crate) fn assert_caught(report: &Report, id: &str) {
    assert!(
        !report.is_success(),
        "the suite passed a faulty server:\n{}",
        report.to_text()
    );
    assert!(
        !failed_cases_citing(report, id).is_empty(),
        "no failed case cites {id}; failed: {:?}\n{}",
        report.failed_ids(),
        report.to_text()
    );
}

/// A wire fault, applied by a TCP proxy to what the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireFault {
    /// No proxy at all.
    None,
    /// A proxy that changes nothing: the control run.
    Transparent,
    /// `100 Continue` responses are dropped.
    DropContinue,
    /// The response to a `HEAD` request gets body bytes.
    BodyOnHead,
    /// The `date` field is removed from every response head.
    DropDate,
    /// The trailer section of chunked responses is emptied.
    StripTrailers,
    /// A `101` without a subprotocol gets `sec-websocket-protocol: probe`.
    SubprotocolIn101,
    /// An HTTP/1.0 client gets a `100 Continue` before its response.
    InterimToHttp10,
    /// Every response head gets a `keep-alive` field.
    ForwardKeepAlive,
}

/// A TCP proxy in front of a server, with one [`WireFault`]; stops when dropped.
pub(crate) struct Proxy {
    /// Where the proxy listens.
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr, fault: WireFault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let addr = listener.local_addr().expect("the proxy has an address");
        let task = tokio::spawn(async move {
            let mut relays = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                relays.spawn(relay(client, upstream, fault));
            }
        });
        Self { addr, task }
    }
}

/// What the proxy saw the client send on one connection.
#[derive(Debug, Default)]
struct Seen {
    first_request_is_head: bool,
    http10: bool,
    any: bool,
}

async fn relay(client: TcpStream, upstream: SocketAddr, fault: WireFault) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen_up = seen.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut seen = seen_up.lock().unwrap_or_else(PoisonError::into_inner);
                if !seen.any {
                    seen.any = true;
                    seen.first_request_is_head = buf[..n].starts_with(b"HEAD ");
                }
                if find(&buf[..n], b" HTTP/1.0\r\n").is_some() {
                    seen.http10 = true;
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut rewriter = Rewriter {
            fault,
            seen,
            injected: false,
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let out = rewriter.rewrite(&buf[..n]);
            if client_write.write_all(&out).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

struct Rewriter {
    fault: WireFault,
    seen: Arc<Mutex<Seen>>,
    injected: bool,
}

impl Rewriter {
    /// Rewrites one read of the server's bytes. Heads arrive in one read on loopback, which is
    /// all this test-only proxy relies on.
    fn rewrite(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = chunk.to_vec();
        match self.fault {
            WireFault::None | WireFault::Transparent => {}
            WireFault::DropContinue => {
                while let Some(at) = find(&out, b"HTTP/1.1 100 Continue\r\n\r\n") {
                    out.drain(at..at + 25);
                }
            }
            WireFault::BodyOnHead => {
                let head = self
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .first_request_is_head;
                if head && !self.injected {
                    if let Some(end) = find(&out, b"\r\n\r\n") {
                        out.splice(end + 4..end + 4, b"hello".iter().copied());
                        self.injected = true;
                    }
                }
            }
            WireFault::DropDate => {
                while let Some(at) = find_ignore_case(&out, b"\r\ndate: ") {
                    let Some(len) = find(&out[at + 2..], b"\r\n") else {
                        break;
                    };
                    out.drain(at..at + 2 + len);
                }
            }
            WireFault::StripTrailers => {
                let mut from = 0;
                while let Some(at) = find(&out[from..], b"\r\n0\r\n").map(|p| p + from) {
                    let start = at + 5;
                    from = start;
                    if out[start..].starts_with(b"\r\n") {
                        continue;
                    }
                    if let Some(len) = find(&out[start..], b"\r\n\r\n") {
                        out.drain(start..start + len + 2);
                    }
                }
            }
            WireFault::SubprotocolIn101 => {
                if out.starts_with(b"HTTP/1.1 101")
                    && find_ignore_case(&out, b"sec-websocket-protocol").is_none()
                {
                    if let Some(line_end) = find(&out, b"\r\n") {
                        out.splice(
                            line_end + 2..line_end + 2,
                            b"sec-websocket-protocol: probe\r\n".iter().copied(),
                        );
                    }
                }
            }
            WireFault::InterimToHttp10 => {
                let http10 = self
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .http10;
                if http10 && !self.injected && out.starts_with(b"HTTP/1.") {
                    out.splice(0..0, b"HTTP/1.1 100 Continue\r\n\r\n".iter().copied());
                    self.injected = true;
                }
            }
            WireFault::ForwardKeepAlive => {
                if out.starts_with(b"HTTP/1.") {
                    if let Some(line_end) = find(&out, b"\r\n") {
                        out.splice(
                            line_end + 2..line_end + 2,
                            b"keep-alive: timeout=5\r\n".iter().copied(),
                        );
                    }
                }
            }
        }
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}
