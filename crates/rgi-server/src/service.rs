//! The glue between hyper and an [`App`]: one request in, one response out.
//!
//! [`serve_request`] turns hyper's `Request<Incoming>` into an [`rgi::Request`] (body limit,
//! extensions), calls the application inside a panic guard ([`CallFuture`]), and turns its
//! answer into hyper's response ([`ResponseBody`]), enforcing the spec on the way.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rgi::{App, Body, BodyError, BoxError, ConnectionInfo, DisconnectNotifier};
use tracing::Instrument;

use crate::body::{RequestBody, ResponseBody};
use crate::config::TrustedProxies;
use crate::server::Tasks;
use crate::stall::WriteTimeout;
use crate::ws::{self, WsConfig};

/// What every request of a server needs to know.
pub(crate) struct AppContext<A> {
    pub(crate) app: A,
    pub(crate) max_uri_length: usize,
    pub(crate) max_body_bytes: Option<u64>,
    /// `HTTP-BODY-15`: how long a request body may keep the application waiting.
    pub(crate) body_read_timeout: Option<std::time::Duration>,
    /// `SRV-LIMIT-20`: the slowest a request body of declared length may come.
    pub(crate) min_body_rate: Option<crate::config::MinBodyRate>,
    /// `SRV-LIMIT-16`: how long a write may make no progress (here: upgraded HTTP/2 streams).
    pub(crate) write_timeout: Option<std::time::Duration>,
    pub(crate) root_path: Option<rgi::MountPrefix>,
    pub(crate) trusted_proxies: Option<TrustedProxies>,
    pub(crate) access_log: bool,
    /// The path the server answers itself (`--health-path`).
    pub(crate) health_path: Option<String>,
    /// The request ID generator, when request IDs are on (`--request-id`).
    pub(crate) request_ids: Option<crate::request_id::RequestIds>,
    /// Set once the server is draining or marked unready: the health path answers `503`.
    pub(crate) unready: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) ws: WsConfig,
    pub(crate) tasks: Tasks,
}

/// How busy a connection is: requests in flight and the time of the last activity.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: Instant,
    /// Set once the server cuts exchanges short (the graceful deadline passed).
    force: tokio::sync::watch::Receiver<bool>,
    in_flight: AtomicUsize,
    last_millis: AtomicU64,
    /// The connection's spare `Disconnect` signal: each request's signal is made from it when
    /// the application kept no handle to the previous one (no allocation per request).
    pub(crate) disconnects: rgi::DisconnectPool,
}

impl Activity {
    pub(crate) fn new(force: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            origin: Instant::now(),
            force,
            in_flight: AtomicUsize::new(0),
            last_millis: AtomicU64::new(0),
            disconnects: rgi::DisconnectPool::new(),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Release);
    }

    /// Whether the server is cutting exchanges short (the graceful deadline passed). The
    /// signal only ever changes from `false` to `true`, and this receiver never marks a value
    /// seen: a change is the force (an atomic load, no lock).
    pub(crate) fn is_forced(&self) -> bool {
        self.force.has_changed().unwrap_or(false) && *self.force.borrow()
    }

    /// When the connection started.
    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    /// Whether no request is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection last finished (or started) a request.
    pub(crate) fn last(&self) -> Instant {
        self.origin + std::time::Duration::from_millis(self.last_millis.load(Ordering::Acquire))
    }
}

/// One request in flight; dropping it records the end of the request.
#[derive(Debug)]
struct ActiveGuard(Arc<ConnState>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let activity = &self.0.activity;
        // A pipelined request whose head the framing guard already saw is answered next: the
        // connection does not go idle, and the last request of the batch records the time
        // (one clock read per batch, not per request).
        if !self.0.verdicts.has_untaken() {
            activity.touch();
        }
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection a request arrived on: what its requests, its transport (the framing guard)
/// and its task share — one allocation per connection.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) info: ConnectionInfo,
    /// Whether the transport peer may send proxy headers.
    pub(crate) trust_proxy: bool,
    /// Whether the client sent any byte yet.
    pub(crate) saw_bytes: std::sync::atomic::AtomicBool,
    pub(crate) activity: Activity,
    /// The smuggling guard's verdicts, one per HTTP/1 request.
    pub(crate) verdicts: crate::framing::Verdicts,
    /// The flag of the connection task's gate (its timers and shutdown signals); the state is
    /// the gate's waker.
    pub(crate) gate: crate::gate::Flag,
}

impl ConnState {
    pub(crate) fn new(
        info: ConnectionInfo,
        trust_proxy: bool,
        force: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            info,
            trust_proxy,
            saw_bytes: std::sync::atomic::AtomicBool::new(false),
            activity: Activity::new(force),
            verdicts: crate::framing::Verdicts::default(),
            gate: crate::gate::Flag::default(),
        })
    }

    /// A connection of no server, for tests of the parts that share it.
    #[cfg(test)]
    pub(crate) fn detached() -> Arc<Self> {
        let local = rgi::SocketAddress::Tcp(([127, 0, 0, 1], 80).into());
        let info = ConnectionInfo::new(local.clone(), local, rgi::Scheme::Http);
        Self::new(info, false, tokio::sync::watch::channel(false).1)
    }

    fn begin(self: &Arc<Self>) -> ActiveGuard {
        // No clock read here: a connection with a request in flight is never idle, and the
        // end of the request records the time.
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        ActiveGuard(self.clone())
    }
}

impl AsRef<crate::gate::Flag> for ConnState {
    fn as_ref(&self) -> &crate::gate::Flag {
        &self.gate
    }
}

impl std::task::Wake for ConnState {
    fn wake(self: Arc<Self>) {
        self.gate.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.gate.wake();
    }
}

/// The request target as logs show it: the path and query, or the authority of an
/// authority-form target (`CONNECT`) — a copy. A clone of the request's `Uri` parts would be a
/// slice of hyper's read buffer, and while any slice of it is alive, hyper allocates a new
/// 8 KiB buffer when it reads on (the exchange's state lives until the response is done).
/// Targets of up to [`LogTarget::INLINE`] bytes are kept inline, longer ones boxed: a third of
/// the size of the whole `Uri`, in every request's state.
pub(crate) enum LogTarget {
    Inline {
        len: u8,
        bytes: [u8; LogTarget::INLINE],
    },
    Boxed(Box<str>),
}

impl LogTarget {
    /// The longest target kept without an allocation.
    pub(crate) const INLINE: usize = 38;

    fn of(uri: &http::Uri) -> Self {
        let shown = match (uri.path_and_query(), uri.authority()) {
            (Some(pq), _) => pq.as_str(),
            (None, Some(authority)) => authority.as_str(),
            (None, None) => "",
        };
        match u8::try_from(shown.len()) {
            Ok(len) if shown.len() <= Self::INLINE => {
                let mut bytes = [0; Self::INLINE];
                bytes[..shown.len()].copy_from_slice(shown.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Boxed(shown.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // A copy of a `str` cut at its end: always valid UTF-8.
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Boxed(text) => text,
        }
    }
}

impl std::fmt::Debug for LogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for LogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_str() {
            "" => f.write_str("-"),
            shown => f.write_str(shown),
        }
    }
}

/// What only the access log line needs: built only when the access log is on.
#[derive(Debug)]
struct AccessLine {
    start: Instant,
    client: rgi::SocketAddress,
}

/// The parts of an exchange's log that only some servers use: the access log line
/// (`--access-log`) and the request ID (`--request-id`).
#[derive(Debug)]
struct LogExtras {
    line: Option<AccessLine>,
    request_id: Option<HeaderValue>,
}

/// What the access log line of one exchange says; it also marks the request as in flight.
#[derive(Debug)]
pub(crate) struct ExchangeLog {
    // Boxed: only with the access log or request IDs on; inline they would make every
    // request's state (and hyper's two slots of its size in every connection) larger.
    extras: Option<Box<LogExtras>>,
    method: Method,
    target: LogTarget,
    version: Version,
    status: StatusCode,
    /// Whether the request is a `HEAD` (the exchange's framing).
    head: bool,
    /// Whether the request is an HTTP/2 extended CONNECT (the exchange's framing).
    extended_connect: bool,
    /// The connection (its id correlates failures, `HTTP-CONN-6`, `SRV-LOG-1`); holding it
    /// marks the request as in flight.
    _active: ActiveGuard,
}

impl ExchangeLog {
    /// The request's method, target and connection id, for failure logs (`SRV-LOG-1`).
    pub(crate) fn context(&self) -> (&Method, &LogTarget, u64) {
        (&self.method, &self.target, self.connection())
    }

    /// The connection's id (`HTTP-CONN-6`).
    pub(crate) fn connection(&self) -> u64 {
        self._active.0.info.id()
    }

    /// The request's ID (`--request-id`).
    fn request_id(&self) -> Option<&HeaderValue> {
        self.extras.as_ref()?.request_id.as_ref()
    }

    /// Whether the server is cutting exchanges short (the graceful deadline passed).
    pub(crate) fn is_forced(&self) -> bool {
        self._active.0.activity.is_forced()
    }

    /// The connection's spare `Disconnect` signal, where the exchange's goes when it settles.
    pub(crate) fn disconnects(&self) -> &rgi::DisconnectPool {
        &self._active.0.activity.disconnects
    }

    /// Writes the access log line.
    pub(crate) fn finish(self, bytes: u64, outcome: rgi::Outcome) {
        let Some(line) = self.extras.as_ref().and_then(|extras| extras.line.as_ref()) else {
            return;
        };
        let outcome = match outcome {
            rgi::Outcome::Completed => "completed",
            rgi::Outcome::Aborted => "aborted",
            _ => "client-gone",
        };
        let client = &line.client;
        // Milliseconds to the microsecond: `0.058`, not `0.057985999999999996`.
        let duration_ms = line.start.elapsed().as_micros() as f64 / 1000.0;
        if let Some(request_id) = self.request_id() {
            let request_id = String::from_utf8_lossy(request_id.as_bytes());
            tracing::info!(
                target: "rgi_server::access",
                client = %client,
                method = %self.method,
                path = %self.target,
                version = ?self.version,
                status = self.status.as_u16(),
                bytes,
                duration_ms,
                outcome,
                request_id = %request_id,
                "{} \"{} {} {:?}\" {} {} {}",
                client,
                self.method,
                self.target,
                self.version,
                self.status.as_u16(),
                bytes,
                request_id,
            );
        } else {
            tracing::info!(
                target: "rgi_server::access",
                client = %client,
                method = %self.method,
                path = %self.target,
                version = ?self.version,
                status = self.status.as_u16(),
                bytes,
                duration_ms,
                outcome,
                "{} \"{} {} {:?}\" {} {}",
                client,
                self.method,
                self.target,
                self.version,
                self.status.as_u16(),
                bytes,
            );
        }
    }
}

/// An error and its chain of sources, as one line: `outer: cause: root cause`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Transparent wrappers repeat their source's message: say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

pin_project_lite::pin_project! {
    /// Polls a future, turning a panic into an `Err` with the panic's payload.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// The kind of upgrade a request asked for (boxed in [`Finish`]: rare, and inline it would
/// make every request's state larger).
enum UpgradeRequest {
    /// A raw upgrade (HTTP/1.1 `Upgrade` or HTTP/2 extended CONNECT).
    Raw(hyper::upgrade::OnUpgrade),
    /// A WebSocket handshake; the request headers are kept for the handshake response.
    WebSocket(hyper::upgrade::OnUpgrade, HeaderMap),
}

/// What is needed after the application answered.
struct Finish {
    upgrade: Option<Box<UpgradeRequest>>,
    /// Also holds the request's version and kind (kept there, where they fit in padding).
    log: ExchangeLog,
}

impl Finish {
    /// Whether the request is a `HEAD`.
    fn head(&self) -> bool {
        self.log.head
    }

    /// Whether the request is an HTTP/2 extended CONNECT.
    fn extended_connect(&self) -> bool {
        self.log.extended_connect
    }

    /// The request's HTTP version.
    fn version(&self) -> Version {
        self.log.version
    }
}

pin_project_lite::pin_project! {
    /// Where a [`CallFuture`] is.
    #[project = StageProj]
    enum Stage<F, B> {
        /// Answered by the server without calling the application. Boxed: rare (rejections,
        /// the health path), and inline it would make every request's future — which hyper
        /// moves, and keeps a slot of that size for in every connection — larger by a whole
        /// response.
        Immediate { response: Option<Box<Response<ResponseBody<B>>>> },
        /// The application's call.
        Calling { #[pin] call: CatchUnwind<F> },
        /// Answered.
        Done,
    }
}

pin_project_lite::pin_project! {
    /// The future hyper polls for one request: the application's call, guarded.
    ///
    /// Field order matters: the notifier is dropped (settling the request's `Disconnect` as
    /// client-gone) before the application's future (`CORE-CANCEL-2`).
    pub(crate) struct CallFuture<F, A: App> {
        notifier: Option<DisconnectNotifier>,
        finish: Option<Finish>,
        #[pin]
        stage: Stage<F, A::Body>,
        // The application that the call in `stage` borrows (see `serve_request`). Declared
        // after `stage`, so it is dropped after it; never taken out.
        app: Option<Arc<AppContext<A>>>,
    }

    impl<F, A: App> PinnedDrop for CallFuture<F, A> {
        fn drop(this: Pin<&mut Self>) {
            // Runs before any field is dropped: the signal settles before the app's future
            // goes away (`CORE-CANCEL-2`).
            let this = this.project();
            if let Some(notifier) = this.notifier.take() {
                let forced = this.finish.as_ref().is_some_and(|f| f.log.is_forced());
                notifier.settle(if forced {
                    rgi::Outcome::Aborted
                } else {
                    rgi::Outcome::ClientGone
                });
            }
        }
    }
}

impl<F, A: App> CallFuture<F, A> {
    /// A future that answers `response` without calling the application.
    fn immediate(response: Response<ResponseBody<A::Body>>) -> Self {
        Self {
            notifier: None,
            finish: None,
            stage: Stage::Immediate {
                response: Some(Box::new(response)),
            },
            app: None,
        }
    }
}

impl<F, A> Future for CallFuture<F, A>
where
    A: App,
    F: Future<Output = Result<Response<A::Body>, A::Error>>,
{
    type Output = Result<Response<ResponseBody<A::Body>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let call = match this.stage.as_mut().project() {
            StageProj::Calling { call } => call,
            StageProj::Immediate { response } => {
                if let Some(response) = response.take() {
                    this.stage.set(Stage::Done);
                    return Poll::Ready(Ok(*response));
                }
                return Poll::Ready(Ok(polled_after_completion()));
            }
            // Polled after completion: hyper never does this. Answer, never panic.
            StageProj::Done => return Poll::Ready(Ok(polled_after_completion())),
        };
        let output = match call.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        this.stage.set(Stage::Done);
        let (Some(notifier), Some(finish), Some(shared)) = (
            this.notifier.take(),
            this.finish.take(),
            this.app.as_deref(),
        ) else {
            return Poll::Ready(Ok(plain_response::<A::Body>(
                StatusCode::INTERNAL_SERVER_ERROR,
                Version::HTTP_11,
                false,
                None,
                None,
            )));
        };
        // Echoed in the response (`--request-id`); the exchange log holds the one copy.
        let request_id = finish.log.request_id().cloned();
        let response = match output {
            Ok(Ok(response)) => finish_response(shared, finish, response, notifier),
            Ok(Err(error)) => error_response(finish, error.into(), notifier),
            Err(panic) => panic_response(finish, &*panic, notifier),
        };
        let mut response = response;
        echo_request_id(&mut response, request_id);
        Poll::Ready(Ok(response))
    }
}

/// The answer of a [`CallFuture`] polled again after it answered (hyper never does this).
fn polled_after_completion<B>() -> Response<ResponseBody<B>> {
    plain_response::<B>(
        StatusCode::INTERNAL_SERVER_ERROR,
        Version::HTTP_11,
        false,
        None,
        None,
    )
}

/// Puts the request's ID into the response (`--request-id`), replacing one the application set.
fn echo_request_id<B>(response: &mut Response<B>, request_id: Option<HeaderValue>) {
    if let Some(id) = request_id {
        response.headers_mut().insert(crate::request_id::HEADER, id);
    }
}

/// A response the server writes itself, with a short `text/plain` body.
fn plain_response<B>(
    status: StatusCode,
    version: Version,
    head: bool,
    notifier: Option<DisconnectNotifier>,
    log: Option<ExchangeLog>,
) -> Response<ResponseBody<B>> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let log = log.map(|mut log| {
        log.status = status;
        log
    });
    let mut response = Response::new(ResponseBody::server(
        Bytes::from(text.clone()),
        head,
        notifier,
        log,
    ));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    if (status.is_client_error() || status == StatusCode::NOT_IMPLEMENTED)
        && version < Version::HTTP_2
    {
        // The request may be half read: do not reuse the connection.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn failure_response<B>(
    finish: Finish,
    status: StatusCode,
    notifier: DisconnectNotifier,
) -> Response<ResponseBody<B>> {
    plain_response(
        status,
        finish.version(),
        finish.head(),
        Some(notifier),
        Some(finish.log),
    )
}

/// The answer to an application that panicked before its response head (`CORE-ERR-2`): logged
/// with the panic's message, a `500` without details.
fn panic_response<B>(
    finish: Finish,
    panic: &(dyn Any + Send),
    notifier: DisconnectNotifier,
) -> Response<ResponseBody<B>> {
    tracing::error!(
        method = %finish.log.method,
        path = %finish.log.target,
        connection = finish.log.connection(),
        panic = %panic_message(panic),
        "the application panicked before its response head"
    );
    failure_response(finish, StatusCode::INTERNAL_SERVER_ERROR, notifier)
}

/// Whether `error` comes from a client that went away rather than from the application: an
/// I/O error of a closed connection, or `BodyError::Disconnected`, anywhere in its chain. An
/// upgrade handler passes such errors on with `?`; they are not application failures
/// (`SRV-LOG-2`).
fn is_departure(error: &(dyn std::error::Error + 'static)) -> bool {
    if matches!(BodyError::find(error), Some(BodyError::Disconnected)) {
        return true;
    }
    let mut next = Some(error);
    while let Some(error) = next {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(ws::is_disconnect)
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// The answer to an application's `Err` (`CORE-ERR-*`).
fn error_response<B>(
    finish: Finish,
    error: BoxError,
    notifier: DisconnectNotifier,
) -> Response<ResponseBody<B>> {
    match BodyError::find(error.as_ref()) {
        Some(BodyError::Disconnected) => {
            tracing::debug!(
                method = %finish.log.method,
                path = %finish.log.target,
                connection = finish.log.connection(),
                "the client went away while the application read the body"
            );
            notifier.client_gone();
            let mut response = plain_response(
                StatusCode::BAD_REQUEST,
                finish.version(),
                finish.head(),
                None,
                Some(finish.log),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Some(body_error) if body_error.status_code().is_some() => {
            let status = body_error
                .status_code()
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // The client's doing (too slow, too large, malformed): below error level, and off
            // by default, so that clients cannot flood the log (SRV-LOG-4); the access log
            // records the status.
            tracing::debug!(
                method = %finish.log.method,
                path = %finish.log.target,
                connection = finish.log.connection(),
                error = %error_chain(error.as_ref()),
                status = status.as_u16(),
                "the application gave up on the request body"
            );
            failure_response(finish, status, notifier)
        }
        _ => {
            tracing::error!(
                method = %finish.log.method,
                path = %finish.log.target,
                connection = finish.log.connection(),
                error = %error_chain(error.as_ref()),
                "the application failed before its response head"
            );
            failure_response(finish, StatusCode::INTERNAL_SERVER_ERROR, notifier)
        }
    }
}

/// Turns the application's response into hyper's, enforcing the response rules.
fn finish_response<A: App>(
    shared: &AppContext<A>,
    mut finish: Finish,
    mut response: Response<A::Body>,
    notifier: DisconnectNotifier,
) -> Response<ResponseBody<A::Body>> {
    let status = response.status();
    let switching = if finish.version() >= Version::HTTP_2 {
        status.is_success()
    } else {
        status == StatusCode::SWITCHING_PROTOCOLS
    };
    if switching && hands_over_to_hyper(&finish, &mut response) {
        return hyper_upgrade_response(finish, response, notifier);
    }
    // RFC 9110 §15.5.22: a `426` lists the protocols to switch to in `upgrade` (`HTTP-RESP-5`).
    let keep_upgrade = status == StatusCode::UPGRADE_REQUIRED && finish.version() < Version::HTTP_2;
    // One pass over the (few) response fields first: the removals below hash every name.
    let hop_by_hop = response
        .headers()
        .keys()
        .any(rgi::fields::is_connection_specific);
    for name in rgi::fields::CONNECTION_SPECIFIC
        .iter()
        .filter(|_| hop_by_hop)
    {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        if response.headers_mut().remove(name).is_some() {
            tracing::warn!(
                header = name.as_str(),
                path = %finish.log.target,
                connection = finish.log.connection(),
                "the application set a hop-by-hop header; the server removed it (HTTP-RESP-6)"
            );
            while response.headers_mut().remove(name).is_some() {}
        }
    }
    if keep_upgrade && response.headers().contains_key(header::UPGRADE) {
        // RFC 9110 §7.8: `upgrade` goes with the `upgrade` connection option.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }

    let raw = response
        .extensions_mut()
        .remove::<rgi::upgrade::UpgradeAccepted>();
    let websocket = response
        .extensions_mut()
        .remove::<rgi::ws::WebSocketAccepted>();
    let upgrade = finish.upgrade.take().map(|upgrade| *upgrade);
    // An HTTP/1 upgrade writes through the connection's framing guard, which bounds its
    // writes; an HTTP/2 one waits for its stream's window, which only this bound sees.
    let h2_write_timeout = shared
        .write_timeout
        .filter(|_| finish.version() >= Version::HTTP_2);
    // SRV-LOG-1: what a WebSocket session or an upgrade handler logs names the exchange.
    let session_span = || {
        tracing::error_span!(
            "upgraded",
            method = %finish.log.method,
            path = %finish.log.target,
            connection = finish.log.connection()
        )
    };
    if switching {
        match (upgrade, raw, websocket) {
            (Some(UpgradeRequest::WebSocket(on_upgrade, request_headers)), _, Some(accepted)) => {
                if let Some(handler) = accepted.take_handler() {
                    ws::complete_handshake(
                        &request_headers,
                        finish.version(),
                        response.headers_mut(),
                    );
                    let config = shared.ws.clone();
                    // The session runs on during the drain (`SRV-SHUT-2`); at the graceful
                    // deadline it sends close 1001, aborts the handler and ends by itself
                    // within a bounded time (`WS-CLOSE-7`, `SRV-SHUT-3`), so it is not
                    // dropped at the force signal.
                    let mut force = shared.tasks.closing_signal();
                    let span = session_span();
                    shared.tasks.spawn_closing_at_deadline(
                        async move {
                        let upgraded = tokio::select! {
                            result = on_upgrade => result,
                            _ = force.wait_for(|forced| *forced) => return,
                        };
                        match upgraded {
                            Ok(upgraded) => {
                                let deadline = async move {
                                    let _ = force.wait_for(|forced| *forced).await;
                                };
                                ws::run_session_until(
                                    WriteTimeout::new(TokioIo::new(upgraded), h2_write_timeout),
                                    handler,
                                    config,
                                    deadline,
                                )
                                .await;
                            }
                            Err(error) => {
                                tracing::debug!(%error, "the WebSocket upgrade did not complete");
                            }
                        }
                    }
                        .instrument(span),
                    );
                    return upgrade_response(finish, response, notifier);
                }
            }
            (Some(UpgradeRequest::Raw(on_upgrade)), Some(accepted), _) => {
                if let Some(handler) = accepted.take_handler() {
                    if finish.version() < Version::HTTP_2 {
                        let protocol = HeaderValue::from_str(accepted.protocol()).ok();
                        let headers = response.headers_mut();
                        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                        if let Some(protocol) = protocol {
                            headers.insert(header::UPGRADE, protocol);
                        }
                    }
                    let span = session_span();
                    shared.tasks.spawn(
                        async move {
                            match on_upgrade.await {
                                Ok(upgraded) => {
                                    let io = rgi::upgrade::Upgraded::new(
                                        WriteTimeout::new(TokioIo::new(upgraded), h2_write_timeout),
                                        Bytes::new(),
                                    );
                                    match handler.run(io).await {
                                        Ok(()) => {}
                                        Err(error) if is_departure(error.as_ref()) => {
                                            tracing::debug!(
                                                error = %error_chain(error.as_ref()),
                                                "the client went away during the upgraded exchange"
                                            );
                                        }
                                        Err(error) => tracing::error!(
                                            error = %error_chain(error.as_ref()),
                                            "the upgrade handler failed; closing the connection"
                                        ),
                                    }
                                }
                                Err(error) => {
                                    tracing::debug!(%error, "the upgrade did not complete");
                                }
                            }
                        }
                        .instrument(span),
                    );
                    return upgrade_response(finish, response, notifier);
                }
            }
            _ => {}
        }
    }
    if !(200..=599).contains(&status.as_u16()) || (finish.extended_connect() && status.is_success())
    {
        tracing::error!(
            status = status.as_u16(),
            path = %finish.log.target,
            connection = finish.log.connection(),
            "the application returned a status the server cannot send as a final response \
             (an interim status, above 599, or an upgrade without an accept marker)"
        );
        return failure_response(finish, StatusCode::INTERNAL_SERVER_ERROR, notifier);
    }
    // HTTP-RESP-3: the reason phrase comes from the status code, never from the application.
    response
        .extensions_mut()
        .remove::<hyper::ext::ReasonPhrase>();
    let unsendable = response
        .headers()
        .values()
        .any(|value| has_cr_lf_or_nul(value.as_bytes()));
    if unsendable {
        tracing::error!(
            path = %finish.log.target,
            connection = finish.log.connection(),
            "the application set a header value containing CR, LF or NUL"
        );
        return failure_response(finish, StatusCode::INTERNAL_SERVER_ERROR, notifier);
    }
    let Ok(declared) = declared_length(response.headers()) else {
        tracing::error!(
            path = %finish.log.target,
            connection = finish.log.connection(),
            "the application set an invalid Content-Length"
        );
        return failure_response(finish, StatusCode::INTERNAL_SERVER_ERROR, notifier);
    };

    let no_body = finish.head()
        || matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::RESET_CONTENT | StatusCode::NOT_MODIFIED
        );
    if no_body && response.body().size_hint().lower() > 0 {
        log_discarded_body(&finish, status);
    }
    let declared = declared.or_else(|| {
        // A hint of u64::MAX bytes is no length any body has: sent as unknown.
        (response.body().size_hint().exact()).filter(|&length| length < u64::MAX)
    });
    match status {
        // HTTP-FRAME-7, RFC 9110 §8.6: never a length on a `204`, whatever the method.
        StatusCode::NO_CONTENT => {
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        // HTTP-FRAME-7, RFC 9110 §15.3.6: a `205` has no content, and says so.
        StatusCode::RESET_CONTENT => {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        // A HEAD response carries the length the GET response would have (a `304` keeps
        // only the one the application set).
        StatusCode::NOT_MODIFIED => {}
        _ if finish.head() && !response.headers().contains_key(header::CONTENT_LENGTH) => {
            if let Some(length) = declared {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
        }
        _ => {}
    }
    finish.log.status = status;
    let (parts, body) = response.into_parts();
    let body = ResponseBody::app(
        body,
        no_body,
        finish.version() >= Version::HTTP_2,
        if no_body { None } else { declared },
        notifier,
        Some(finish.log),
    );
    Response::from_parts(parts, body)
}

/// SRV-LOG-7: body data the application produced for a response that has none is discarded
/// (it is never polled), and the log says so with the requirement it broke. Body data for a
/// `204`, `205` or `304` breaks a MUST (`HTTP-FRAME-8`): a warning. Body data for `HEAD` only a
/// SHOULD NOT (`HTTP-FRAME-6`), and answering `HEAD` with the `GET` handler is common: a debug
/// line, so that health checks by `HEAD` do not fill the log. Seen from the body's size hint,
/// so a body of unknown size that would have produced data goes unnoticed.
#[cold]
fn log_discarded_body(finish: &Finish, status: StatusCode) {
    if finish.head() && !matches!(status.as_u16(), 204 | 205 | 304) {
        tracing::debug!(
            path = %finish.log.target,
            connection = finish.log.connection(),
            "the application produced body data for HEAD; the server discarded it (HTTP-FRAME-6)"
        );
    } else {
        tracing::warn!(
            status = status.as_u16(),
            path = %finish.log.target,
            connection = finish.log.connection(),
            "the application produced body data for a response that has none; the server \
             discarded it (HTTP-FRAME-8)"
        );
    }
}

/// Whether the application switched protocols through hyper's own `OnUpgrade` (the
/// compatibility extension): the response carries a clone of it as its marker (as
/// `rgi-tower`'s `TowerApp` puts it), no RGI accept marker, and the request was one for which
/// the server left hyper's `OnUpgrade` in place. The marker is removed; the server's own clone
/// is released unawaited, since whoever took the request's handle performs the upgrade.
fn hands_over_to_hyper<B>(finish: &Finish, response: &mut Response<B>) -> bool {
    let extensions = response.extensions();
    let marked = extensions.get::<hyper::upgrade::OnUpgrade>().is_some()
        && extensions.get::<rgi::upgrade::UpgradeAccepted>().is_none()
        && extensions.get::<rgi::ws::WebSocketAccepted>().is_none();
    let offered = finish.upgrade.is_some();
    if marked && offered {
        response
            .extensions_mut()
            .remove::<hyper::upgrade::OnUpgrade>();
    }
    marked && offered
}

/// The head of a protocol switch the application performed through hyper's `OnUpgrade`: sent
/// as the application made it (on HTTP/1.1 with its `connection`, `upgrade` and
/// `sec-websocket-accept` fields), without a body. The request's `Disconnect` settles as
/// completed once hyper has taken the head.
fn hyper_upgrade_response<B>(
    mut finish: Finish,
    mut response: Response<B>,
    notifier: DisconnectNotifier,
) -> Response<ResponseBody<B>> {
    // Dropping the server's clone never cancels the upgrade: all clones share it.
    finish.upgrade = None;
    if finish.version() >= Version::HTTP_2 {
        // Connection-specific fields do not exist on HTTP/2 (RFC 9113 §8.2.2).
        for name in &rgi::fields::CONNECTION_SPECIFIC {
            while response.headers_mut().remove(name).is_some() {}
        }
    }
    response
        .extensions_mut()
        .remove::<hyper::ext::ReasonPhrase>();
    upgrade_response(finish, response, notifier)
}

fn upgrade_response<B>(
    mut finish: Finish,
    response: Response<B>,
    notifier: DisconnectNotifier,
) -> Response<ResponseBody<B>> {
    finish.log.status = response.status();
    let (mut parts, _body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = ResponseBody::server(Bytes::new(), true, Some(notifier), Some(finish.log));
    Response::from_parts(parts, body)
}

/// Whether a header value holds CR, LF or NUL, which `HeaderValue`'s unchecked constructors
/// let through and no response may carry. A fold without an early exit: the compiler turns it
/// into a few vector operations for the short values of a response head.
fn has_cr_lf_or_nul(value: &[u8]) -> bool {
    value.iter().fold(false, |found, &b| {
        found | (b == b'\r') | (b == b'\n') | (b == 0)
    })
}

/// The application's `Content-Length`: `Ok(None)` without one, `Err` unless it is one valid
/// decimal value (`CORE-ERR-6`).
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let text = value.to_str().map_err(|_| ())?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    // u64::MAX bytes can never be sent (and hyper refuses the length).
    match text.parse::<u64>() {
        Ok(length) if length < u64::MAX => Ok(Some(length)),
        _ => Err(()),
    }
}

/// Whether a header value lists `token` (comma-separated, case-insensitive).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Whether the request target's path and query are all US-ASCII, as RFC 9112 §3.2 and
/// RFC 3986 require (other bytes must be percent-encoded; `SRV-LIMIT-1`). hyper and the `http`
/// crate let UTF-8 through there, on every version; an authority with such bytes the `http`
/// crate refuses itself.
fn target_is_ascii(uri: &http::Uri) -> bool {
    uri.path_and_query().is_none_or(|pq| pq.as_str().is_ascii())
}

/// Whether an HTTP/2 request's `host` field names another authority than its `:authority`
/// (compared without regard to case), or appears more than once, or the request has neither:
/// RFC 9113 §8.3.1 lets a server treat the first as malformed, and `SRV-LIMIT-18` asks it to,
/// so that no two components read two different authorities from one request.
fn host_contradicts_authority(parts: &http::request::Parts) -> bool {
    let Some(authority) = parts.uri.authority() else {
        // Neither `:authority` nor `host`: the target URI has no host (RFC 9110 §4.2.1).
        return !parts.headers.contains_key(header::HOST);
    };
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => false,
        (Some(host), None) => !host
            .as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes()),
        (Some(_), Some(_)) => true,
    }
}

/// Whether a request's one `host` value is acceptable: a valid `host[:port]`, or empty with
/// a target that carries its own authority, which wins over `host` (RFC 9112 §3.2.2).
/// Otherwise an empty value would give the target URI an empty host, which RFC 9110 §4.2.1
/// makes invalid.
fn acceptable_host(value: &[u8], uri: &http::Uri) -> bool {
    valid_host(value) || (value.is_empty() && uri.authority().is_some())
}

/// Request heads hyper accepts but the spec rejects (`SRV-LIMIT-1`): HTTP/1.1 without exactly
/// one `host`, a `host` that is no valid `host[:port]` (an empty one only with a target that
/// has its own authority), an asterisk-form target with a method other than `OPTIONS`, an
/// authority-form target with a method other than `CONNECT`; on HTTP/2, a `host` that
/// differs from `:authority`, or neither of them (`SRV-LIMIT-18`).
fn malformed_head(parts: &http::request::Parts) -> bool {
    if parts.version >= Version::HTTP_2 {
        return host_contradicts_authority(parts);
    }
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if parts.version == Version::HTTP_11 => return true,
        (Some(_), Some(_)) => return true,
        (Some(host), None) if !acceptable_host(host.as_bytes(), &parts.uri) => return true,
        _ => {}
    }
    let uri = &parts.uri;
    let asterisk = uri.scheme().is_none()
        && uri.authority().is_none()
        && uri.path_and_query().is_some_and(|pq| pq.as_str() == "*");
    if asterisk && parts.method != Method::OPTIONS {
        return true;
    }
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    authority_form != (parts.method == Method::CONNECT)
}

/// How a request whose `transfer-encoding` is more than one `chunked` is refused
/// (`SRV-LIMIT-13`): `chunked` twice is broken framing (RFC 9112 §6.1 lets no sender apply it
/// twice, and a peer that decodes it twice reads another body), `400`; a coding the server does
/// not implement before the final `chunked` (`gzip, chunked`), `501` (RFC 9112 §6.1). hyper
/// frames both by the last `chunked` and would hand the application a body still encoded.
/// (A final coding other than `chunked` never gets here: hyper and the framing guard refuse it.)
fn transfer_coding_refusal(parts: &http::request::Parts) -> Option<StatusCode> {
    if parts.version >= Version::HTTP_2 {
        return None;
    }
    let mut fields = parts.headers.get_all(header::TRANSFER_ENCODING).iter();
    let first = fields.next()?;
    if fields.next().is_none() && first.as_bytes().eq_ignore_ascii_case(b"chunked") {
        // The common case, without splitting.
        return None;
    }
    let mut chunked = 0;
    let mut unknown = false;
    for coding in parts
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
    {
        let coding = coding.trim_ascii();
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked += 1;
        } else if !coding.is_empty() {
            unknown = true;
        }
    }
    if chunked > 1 {
        Some(StatusCode::BAD_REQUEST)
    } else if unknown {
        Some(StatusCode::NOT_IMPLEMENTED)
    } else {
        None
    }
}

/// The bytes of a registered name in a `host` value: unreserved, sub-delims and `%`
/// (RFC 3986 §3.2.2), looked up in one step.
const HOST_NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=%";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether a `host` value is `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): an
/// IP literal in brackets, or a name of unreserved, sub-delim and percent characters (which
/// covers IPv4 addresses); the port is digits. Checked in place, without allocating.
fn valid_host(value: &[u8]) -> bool {
    let port = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &rest[..end];
        let literal_ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
        if !literal_ok {
            return false;
        }
        match &rest[end + 1..] {
            [] => return true,
            [b':', port @ ..] => port,
            _ => return false,
        }
    } else {
        let (name, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        };
        let name_ok = !name.is_empty() && name.iter().all(|&b| HOST_NAME_BYTE[usize::from(b)]);
        if !name_ok {
            return false;
        }
        port
    };
    port.iter().all(u8::is_ascii_digit)
}

/// Handles one request of a connection: the function hyper's service calls.
pub(crate) fn serve_request<A: App>(
    shared: &Arc<AppContext<A>>,
    conn: &Arc<ConnState>,
    req: http::Request<Incoming>,
) -> CallFuture<impl Future<Output = Result<Response<A::Body>, A::Error>> + Send + use<A>, A> {
    let active = conn.begin();
    let (mut parts, incoming) = req.into_parts();
    let version = parts.version;
    // Taken for every HTTP/1 request, in order, before anything can return early.
    let refusal = if version < Version::HTTP_2 {
        conn.verdicts.next_refusal()
    } else {
        None
    };
    let head = parts.method == Method::HEAD;
    let is_connect = parts.method == Method::CONNECT;

    // The request ID replaces whatever the client sent unless the peer is a trusted proxy; the
    // application sees it as the request's `x-request-id` field.
    let request_id = shared.request_ids.as_ref().map(|ids| {
        let id = ids.for_request(&parts.headers, conn.trust_proxy);
        parts.headers.insert(crate::request_id::HEADER, id.clone());
        id
    });

    let mut info = conn.info.clone();
    if let Some(trusted) = shared.trusted_proxies.as_ref().filter(|_| conn.trust_proxy) {
        let (peer, scheme) = crate::proxy::forwarded(&parts.headers, trusted);
        if peer.is_some() || scheme.is_some() {
            info = info.with_forwarded(peer, scheme);
        }
    }

    let line = shared.access_log.then(|| AccessLine {
        start: Instant::now(),
        client: info.peer().clone(),
    });
    let log = ExchangeLog {
        extras: (line.is_some() || request_id.is_some())
            .then(|| Box::new(LogExtras { line, request_id })),
        method: parts.method.clone(),
        target: LogTarget::of(&parts.uri),
        version,
        status: StatusCode::OK,
        head,
        extended_connect: false,
        _active: active,
    };
    let (disconnect, notifier) = conn.activity.disconnects.pair();

    // Limits and the mount prefix: answered by the server, never reaching the app.
    let target_length = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + if version < Version::HTTP_2 {
            parts.uri.authority().map_or(0, |a| a.as_str().len())
        } else {
            0
        };
    let early_status = if let Some(refusal) = refusal {
        Some(match refusal {
            crate::framing::Refusal::Framing => StatusCode::BAD_REQUEST,
            crate::framing::Refusal::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            crate::framing::Refusal::TargetTooLong => StatusCode::URI_TOO_LONG,
        })
    } else if malformed_head(&parts) || !target_is_ascii(&parts.uri) {
        Some(StatusCode::BAD_REQUEST)
    } else if let Some(status) = transfer_coding_refusal(&parts) {
        Some(status)
    } else if shared
        .health_path
        .as_deref()
        .is_some_and(|health| parts.uri.path() == health)
    {
        // The readiness signal, answered by the server (`SRV-OPS-1`, `SRV-OPS-2`).
        Some(if shared.unready.load(Ordering::Acquire) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        })
    } else if target_length > shared.max_uri_length {
        Some(StatusCode::URI_TOO_LONG)
    } else if let Some(prefix) = &shared.root_path {
        let decoded = rgi::path::decode(parts.uri.path());
        prefix
            .strip(&decoded)
            .is_none()
            .then_some(StatusCode::NOT_FOUND)
    } else {
        None
    };
    let protocol = parts
        .extensions
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    // Only a request with `upgrade` (HTTP/1.1) or a CONNECT (HTTP/2) can ask to switch
    // protocols: one lookup spares every other request the upgrade checks.
    let may_upgrade = if version >= Version::HTTP_2 {
        is_connect
    } else {
        parts.headers.contains_key(header::UPGRADE)
    };
    let rejection = if early_status.is_none() && may_upgrade {
        ws::reject_unsupported_version(&parts.method, version, &parts.headers, protocol.as_deref())
    } else {
        None
    };
    if let Some(status) = early_status.or(rejection.as_ref().map(|r| r.status())) {
        let request_id = log.request_id().cloned();
        let mut response = plain_response(status, version, head, Some(notifier), Some(log));
        if let Some(rejection) = rejection {
            for (name, value) in rejection.headers() {
                response.headers_mut().insert(name, value.clone());
            }
        }
        echo_request_id(&mut response, request_id);
        return CallFuture::immediate(response);
    }

    // Upgrades: WebSocket handshakes, and any other protocol switch.
    let asked_protocols: Option<Vec<String>> = if !may_upgrade {
        None
    } else if version >= Version::HTTP_2 {
        (parts.method == Method::CONNECT)
            .then(|| protocol.clone().map(|p| vec![p]))
            .flatten()
    } else if version == Version::HTTP_11
        && has_token(&parts.headers, header::CONNECTION, "upgrade")
        && parts.headers.contains_key(header::UPGRADE)
    {
        Some(
            parts
                .headers
                .get_all(header::UPGRADE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        )
    } else {
        None
    };
    let mut upgrade = None;
    if let Some(protocols) = asked_protocols.filter(|p| !p.is_empty()) {
        // hyper's own `OnUpgrade` stays in the extensions (compatibility extension); the
        // server keeps a clone to run the application's handler.
        if let Some(on_upgrade) = parts.extensions.get::<hyper::upgrade::OnUpgrade>().cloned() {
            match ws::websocket_offer(&parts.method, version, &parts.headers, protocol.as_deref()) {
                Some(offer) => {
                    parts.extensions.insert(offer);
                    upgrade = Some(Box::new(UpgradeRequest::WebSocket(
                        on_upgrade,
                        parts.headers.clone(),
                    )));
                }
                None => {
                    parts
                        .extensions
                        .insert(rgi::upgrade::OnUpgrade::new(version, protocols));
                    upgrade = Some(Box::new(UpgradeRequest::Raw(on_upgrade)));
                }
            }
        }
    }

    parts.extensions.insert(info);
    parts.extensions.insert(disconnect);
    if let Some(prefix) = &shared.root_path {
        parts.extensions.insert(prefix.clone());
    }
    let body = if incoming.is_end_stream() {
        Body::empty()
    } else {
        Body::new(RequestBody::new(
            incoming,
            shared.body_read_timeout,
            shared.min_body_rate,
        ))
    };
    let request = http::Request::from_parts(parts, body.with_limit(shared.max_body_bytes));

    let mut log = log;
    log.extended_connect = version >= Version::HTTP_2 && is_connect && protocol.is_some();
    let finish = Finish { upgrade, log };
    // The application is called here, not from an `async` block: such a block would keep its
    // own, moved-from copy of the request (about 300 bytes) for the whole exchange, in every
    // request's future — which hyper moves, and keeps a slot of that size for on every
    // connection. A `call` that panics before returning its future is answered `500`.
    let app = shared.clone();
    // SAFETY: the future borrows the application for `'static` but lives no longer than the
    // `Arc` that owns it. That `Arc` goes into the same `CallFuture` as the future, in the
    // `app` field, which is declared after `stage` (so dropped after it) and never taken out;
    // once the call is ready, `poll` sets `stage` to `Done` (drops the future) before it does
    // anything else. The
    // application lives in the `Arc`'s allocation, which does not move when the `CallFuture`
    // does and cannot be freed while that `Arc` lives. The reference cannot escape the future
    // either: `App::call` is generic over the lifetime of `&self`, so no implementation can
    // keep it longer than that lifetime, whatever the caller picks.
    #[allow(unsafe_code)]
    let app_ref: &'static A = unsafe { &*std::ptr::from_ref(&app.app) };
    match std::panic::catch_unwind(AssertUnwindSafe(|| app_ref.call(request))) {
        Ok(call) => CallFuture {
            notifier: Some(notifier),
            finish: Some(finish),
            stage: Stage::Calling {
                call: CatchUnwind::new(call),
            },
            app: Some(app),
        },
        Err(panic) => {
            let request_id = finish.log.request_id().cloned();
            let mut response = panic_response(finish, &*panic, notifier);
            echo_request_id(&mut response, request_id);
            CallFuture::immediate(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LogTarget, declared_length, has_cr_lf_or_nul, is_departure, valid_host};

    /// SRV-LOG-2: an upgrade handler's error that only passes on a closed connection, directly
    /// or as the source of the handler's own error, is a departure; other errors are not.
    #[test]
    fn departures_are_told_from_application_failures() {
        #[derive(Debug, thiserror::Error)]
        #[error("relaying failed")]
        struct Relay(#[source] std::io::Error);

        use std::io::{Error, ErrorKind};
        let gone = [
            ErrorKind::BrokenPipe,
            ErrorKind::ConnectionReset,
            ErrorKind::UnexpectedEof,
        ];
        for kind in gone {
            assert!(is_departure(&Error::from(kind)), "{kind:?}");
            assert!(
                is_departure(&Relay(Error::from(kind))),
                "{kind:?} as a source"
            );
        }
        assert!(is_departure(&rgi::BodyError::Disconnected));
        let failures: [Box<dyn std::error::Error>; 3] = [
            Box::new(Error::from(ErrorKind::PermissionDenied)),
            Box::new(Relay(Error::other("the backend refused"))),
            Box::new(rgi::BodyError::TimedOut),
        ];
        for failure in failures {
            assert!(!is_departure(failure.as_ref()), "{failure}");
        }
    }

    /// CORE-ERR-6: an application's `content-length` is one decimal length the server can send
    /// (u64::MAX bytes never can); anything else is a `500`.
    #[test]
    fn declared_lengths() {
        let with = |values: &[&str]| {
            let mut headers = http::HeaderMap::new();
            for value in values {
                headers.append(http::header::CONTENT_LENGTH, value.parse().unwrap());
            }
            declared_length(&headers)
        };
        assert_eq!(with(&[]), Ok(None));
        assert_eq!(with(&["0"]), Ok(Some(0)));
        assert_eq!(with(&["18446744073709551614"]), Ok(Some(u64::MAX - 1)));
        for bad in [
            &["18446744073709551615"][..],
            &["18446744073709551616"],
            &["-1"],
            &["+5"],
            &["1 2"],
            &[""],
            &["5", "5"],
        ] {
            assert_eq!(with(bad), Err(()), "{bad:?}");
        }
    }

    /// SRV-LOG-1: failure logs name the request's target.
    #[test]
    fn log_targets() {
        for (target, shown) in [
            ("/a/b?c=d", "/a/b?c=d"),
            ("*", "*"),
            ("example.com:443", "example.com:443"),
            ("http://example.com/x?y", "/x?y"),
            // Longer than what is kept inline: boxed, shown whole.
            (
                "/a/very/long/path/that/does/not/fit/inline?with=a&query=too",
                "/a/very/long/path/that/does/not/fit/inline?with=a&query=too",
            ),
            (
                "/exactly-thirty-eight-bytes-long-path!",
                "/exactly-thirty-eight-bytes-long-path!",
            ),
        ] {
            let uri: http::Uri = target.parse().unwrap();
            let logged = LogTarget::of(&uri);
            assert_eq!(logged.to_string(), shown, "{target}");
            assert_eq!(
                matches!(logged, LogTarget::Inline { .. }),
                shown.len() <= LogTarget::INLINE,
                "{target}"
            );
        }
        // No larger than the `PathAndQuery` it replaces.
        assert!(std::mem::size_of::<LogTarget>() <= 40);
    }

    /// CORE-ERR-6: header values with CR, LF or NUL are found wherever they are.
    #[test]
    fn finds_cr_lf_and_nul() {
        assert!(!has_cr_lf_or_nul(b""));
        assert!(!has_cr_lf_or_nul(b"text/plain; charset=utf-8\t\x01\x7f"));
        for bad in [b'\r', b'\n', 0] {
            for at in [0, 1, 15, 16, 17, 40] {
                let mut value = vec![b'a'; 41];
                value[at] = bad;
                assert!(has_cr_lf_or_nul(&value), "{bad} at {at}");
            }
        }
    }

    /// SRV-LIMIT-1: `host` must be one valid `host[:port]`.
    #[test]
    fn host_values() {
        for good in [
            &b"example.com"[..],
            b"example.com:8080",
            b"127.0.0.1",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:443",
            b"xn--bcher-kva.example",
            b"a%20b",
            b"a:",
        ] {
            assert!(valid_host(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"user@example.com"[..],
            b"a b",
            b"example.com:80x",
            b"[::1",
            b"[::1]x",
            b"[]",
            b"::1",
            b":80",
            b"a/b",
            b"a:1:2",
        ] {
            assert!(!valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
