//! Application mode: drive an application (or a framework's adapter) in-process, through
//! `rgi-test`'s `TestClient` with `Lint` in strict mode, with legal and edge-case sequences, and
//! check what the application does with them.
//!
//! Framework authors call [`check`] from a `#[test]`, naming the routes the cases may use in an
//! [`AppTarget`]; cases whose route the target does not name are reported as skipped, never as
//! passed:
//!
//! ```no_run
//! # use rgi_conformance::app::{AppTarget, check};
//! # async fn example() {
//! let target = AppTarget::new("/meta", "/echo")
//!     .no_content("/status?code=204")
//!     .websocket("/ws")
//!     .upgrade("/upgrade", "probe-echo");
//! let report = check(rgi_conformance::probe::Probe::new, &target).await;
//! assert!(report.is_success(), "{}", report.to_text());
//! # }
//! ```
//!
//! Middleware authors call [`check_middleware`]: the suite wraps the middleware between two
//! Lints, with an application of its own inside ([`Inner`]), and checks what the middleware
//! passes on (`EXT-CAP-4`, `EXT-CAP-5`, `HTTP-PATH-10`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use rgi::ext::EarlyHints;
use rgi::{App, Body, BoxError, Capability, Lifespan, Request, ServerInfo, StartupError};
use rgi_test::{Level, Lint, LintLifespan, LintMode, LintReport, Side, TestClient};

use crate::report::{CaseResult, Outcome, Report};

/// The longest any single application-mode case may take.
const CASE_BOUND: Duration = Duration::from_secs(30);

/// Where the cases send their requests.
///
/// `get` and `post` are required; the other routes are optional, and the cases that need one
/// the target does not name are skipped.
#[derive(Debug, Clone, Default)]
pub struct AppTarget {
    /// A path the application answers to `GET` (any status).
    pub get: String,
    /// A path the application answers to `POST` with a body (any status).
    pub post: String,
    /// A path the application answers to `GET` with `204 No Content`.
    pub no_content: Option<String>,
    /// A path where the application sends `103 Early Hints` (through `EarlyHints`) before its
    /// answer to `GET`.
    pub early_hints: Option<String>,
    /// A path whose response body is fed by a producer that goes away before finishing (the
    /// application's own failure mode: a task that fails, a channel whose sender is dropped).
    pub abandoned_producer: Option<String>,
    /// A path where the application accepts WebSocket handshakes.
    pub websocket: Option<String>,
    /// A path where the application accepts a raw upgrade, and the protocol it accepts.
    pub upgrade: Option<(String, String)>,
}

impl AppTarget {
    /// Cases send `GET get` and `POST post`; no optional route.
    pub fn new(get: impl Into<String>, post: impl Into<String>) -> Self {
        Self {
            get: get.into(),
            post: post.into(),
            ..Self::default()
        }
    }

    /// Names a path answered `204 No Content` to `GET`.
    #[must_use]
    pub fn no_content(mut self, path: impl Into<String>) -> Self {
        self.no_content = Some(path.into());
        self
    }

    /// Names a path where the application sends early hints before its answer to `GET`.
    #[must_use]
    pub fn early_hints(mut self, path: impl Into<String>) -> Self {
        self.early_hints = Some(path.into());
        self
    }

    /// Names a path whose response body's producer goes away before finishing.
    #[must_use]
    pub fn abandoned_producer(mut self, path: impl Into<String>) -> Self {
        self.abandoned_producer = Some(path.into());
        self
    }

    /// Names a path that accepts WebSocket handshakes.
    #[must_use]
    pub fn websocket(mut self, path: impl Into<String>) -> Self {
        self.websocket = Some(path.into());
        self
    }

    /// Names a path that accepts a raw upgrade to `protocol`.
    #[must_use]
    pub fn upgrade(mut self, path: impl Into<String>, protocol: impl Into<String>) -> Self {
        self.upgrade = Some((path.into(), protocol.into()));
        self
    }
}

/// The application-mode cases: name and the requirements each checks.
pub const CASES: [(&str, &[&str]); 13] = [
    (
        "app: starts and shuts down once",
        &["LIFE-START-3", "LIFE-SHUT-1"],
    ),
    (
        "app: GET answered within the rules",
        &[
            "HTTP-RESP-2",
            "HTTP-RESP-4",
            "HTTP-RESP-5",
            "HTTP-RESP-12",
            "HTTP-TRAIL-7",
        ],
    ),
    (
        "app: HEAD answered without body data",
        &["HTTP-FRAME-6", "HTTP-RESP-12"],
    ),
    (
        "app: slow chunked request body",
        &["HTTP-BODY-9", "CORE-APP-2"],
    ),
    (
        "app: request trailers, response trailers when asked",
        &["HTTP-TRAIL-1", "HTTP-TRAIL-7", "HTTP-BODY-9"],
    ),
    (
        "app: client gone mid-request",
        &["HTTP-BODY-9", "CORE-ERR-9"],
    ),
    (
        "app: client gone mid-response",
        &["CORE-CANCEL-5", "CORE-APP-2"],
    ),
    ("app: 204 and 304 carry no body data", &["HTTP-FRAME-8"]),
    (
        "app: early hints carry no connection-specific fields",
        &["HTTP-INTERIM-6"],
    ),
    (
        "app: a producer that goes away fails the body",
        &["HTTP-FRAME-10"],
    ),
    (
        "app: WebSocket accepted through the API, unchanged",
        &["WS-HS-2", "WS-HS-7", "WS-HS-10"],
    ),
    (
        "app: raw upgrade accepted through the API, unchanged",
        &["UPGRADE-RAW-7"],
    ),
    ("app: no accept marker without an offer", &["EXT-NS-1"]),
];

/// Why a case did not pass.
enum NotPassed {
    Failed(String),
    Skipped(String),
}

impl From<String> for NotPassed {
    fn from(why: String) -> Self {
        NotPassed::Failed(why)
    }
}

type CaseResultOf = Result<(), NotPassed>;

/// Runs every application-mode case; `make` builds a fresh lifespan for each.
pub async fn check<L, F>(make: F, target: &AppTarget) -> Report
where
    L: Lifespan,
    F: Fn() -> L,
{
    let mut report = Report::new();
    for (index, (name, ids)) in CASES.iter().enumerate() {
        let outcome = match skip_reason(index, target) {
            Some(why) => Outcome::Skipped(why),
            None => outcome_of(bounded(run_case(index, make(), target)).await),
        };
        report.push(CaseResult { name, ids, outcome });
    }
    report
}

fn outcome_of(result: CaseResultOf) -> Outcome {
    match result {
        Ok(()) => Outcome::Passed,
        Err(NotPassed::Failed(why)) => Outcome::Failed(why),
        Err(NotPassed::Skipped(why)) => Outcome::Skipped(why),
    }
}

/// Cases that need a route the target does not name.
fn skip_reason(index: usize, target: &AppTarget) -> Option<String> {
    let missing = |what: &str| Some(format!("the target names no {what} route"));
    match index {
        8 if target.early_hints.is_none() => missing("early-hints"),
        9 if target.abandoned_producer.is_none() => missing("abandoned-producer"),
        10 if target.websocket.is_none() => missing("WebSocket"),
        11 if target.upgrade.is_none() => missing("upgrade"),
        12 if target.websocket.is_none() && target.upgrade.is_none() => {
            missing("WebSocket or upgrade")
        }
        _ => None,
    }
}

async fn bounded(case: impl Future<Output = CaseResultOf>) -> CaseResultOf {
    tokio::time::timeout(CASE_BOUND, case)
        .await
        .unwrap_or_else(|_| {
            Err(NotPassed::Failed(format!(
                "the case did not finish within {CASE_BOUND:?}"
            )))
        })
}

/// Fails with the application's `MUST` violations, if any.
fn must_be_clean(report: &LintReport) -> Result<(), String> {
    let broken: Vec<String> = report
        .violations()
        .into_iter()
        .filter(|v| v.side == Side::App && v.level == Level::Must)
        .map(|v| v.message)
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken.join("\n       "))
    }
}

async fn run_case<L: Lifespan>(index: usize, lifespan: L, target: &AppTarget) -> CaseResultOf {
    let lint = Lint::lifespan(lifespan).mode(LintMode::Strict);
    let report = lint.report();
    let client = TestClient::start(lint)
        .await
        .map_err(|e| format!("startup failed: {e}"))?;
    let result = drive(index, &client, target).await;
    client.shutdown().await;
    // The application's own violations come first: they say why a drive failed.
    must_be_clean(&report)?;
    if index == 2 {
        // The one SHOULD a case enforces: body data for HEAD (the client never sees it, since
        // the server drops it, so only Lint can tell).
        should_be_clean(&report, "HTTP-FRAME-6")?;
    }
    result
}

/// Fails with the application's violations of the `SHOULD` requirement `id`, if any.
fn should_be_clean(report: &LintReport, id: &str) -> Result<(), String> {
    let broken: Vec<String> = report
        .violations()
        .into_iter()
        .filter(|v| v.side == Side::App && v.id == id)
        .map(|v| v.message)
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken.join("\n       "))
    }
}

async fn drive<A: App>(index: usize, client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    match index {
        0 => Ok(()),
        1 => {
            let mut response = client
                .get(&target.get)
                .header("te", "trailers")
                .send()
                .await;
            response
                .bytes()
                .await
                .map(drop)
                .map_err(|e| format!("GET {}: the body failed: {e}", target.get).into())
        }
        2 => {
            let mut response = client.head(&target.get).send().await;
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            if body.is_empty() {
                Ok(())
            } else {
                Err(format!("HEAD {} delivered {} body bytes", target.get, body.len()).into())
            }
        }
        3 => {
            let chunks: Vec<Bytes> = (0..8).map(|i| Bytes::from(format!("chunk {i};"))).collect();
            let mut response = client
                .post(&target.post)
                .chunks(chunks)
                .chunk_delay(Duration::from_millis(5))
                .send()
                .await;
            Ok(response
                .bytes()
                .await
                .map(drop)
                .map_err(|e| e.to_string())?)
        }
        4 => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-conformance", HeaderValue::from_static("1"));
            let mut response = client
                .post(&target.post)
                .chunks(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"def")])
                .trailers(trailers)
                .header("te", "trailers")
                .send()
                .await;
            Ok(response
                .bytes()
                .await
                .map(drop)
                .map_err(|e| e.to_string())?)
        }
        5 => {
            let outcome = client
                .post(&target.post)
                .body(Bytes::from_static(b"a body the client never finishes"))
                .disconnect_after_request_bytes(4)
                .try_send()
                .await;
            if let Ok(mut response) = outcome {
                drop(response.bytes().await);
            }
            Ok(())
        }
        6 => {
            let mut response = client.get(&target.get).send().await;
            drop(response.frame().await);
            drop(response);
            // The application must still serve after being dropped mid-response.
            let mut again = client.get(&target.get).send().await;
            again.bytes().await.map(drop).map_err(|e| {
                format!("the application did not serve after a dropped response: {e}").into()
            })
        }
        7 => no_body_statuses(client, target).await,
        8 => early_hints(client, target).await,
        9 => abandoned_producer(client, target).await,
        10 => websocket(client, target).await,
        11 => raw_upgrade(client, target).await,
        _ => markers_without_offer(client, target).await,
    }
}

/// `HTTP-FRAME-8`: the `no_content` route, and a conditional `GET` of `get` when the
/// application gives validators; Lint (strict) catches body data in the `204` or `304`.
async fn no_body_statuses<A: App>(client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    let mut exercised = false;
    if let Some(path) = &target.no_content {
        let mut response = client.get(path).send().await;
        let status = response.status();
        drop(response.bytes().await);
        if status != StatusCode::NO_CONTENT {
            return Err(format!("GET {path} answered {status}, not 204").into());
        }
        exercised = true;
    }
    let mut first = client.get(&target.get).send().await;
    drop(first.bytes().await);
    let validators = [
        (header::ETAG, header::IF_NONE_MATCH),
        (header::LAST_MODIFIED, header::IF_MODIFIED_SINCE),
    ];
    for (validator, condition) in validators {
        if let Some(value) = first.headers().get(&validator).cloned() {
            let mut response = client
                .get(&target.get)
                .header(condition, value)
                .send()
                .await;
            drop(response.bytes().await);
            exercised = true;
        }
    }
    if exercised {
        Ok(())
    } else {
        Err(NotPassed::Skipped(
            "no no-content route, and no validator on GET to make a 304".to_owned(),
        ))
    }
}

/// `HTTP-INTERIM-6`: the early-hints route must send hints (Lint checks their fields).
async fn early_hints<A: App>(client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    let Some(path) = &target.early_hints else {
        return Err(NotPassed::Skipped("no early-hints route".to_owned()));
    };
    let mut response = client.get(path).send().await;
    drop(response.bytes().await);
    if response.early_hints().is_empty() {
        return Err(format!("GET {path} sent no early hints").into());
    }
    Ok(())
}

/// `HTTP-FRAME-10`: a body whose producer went away must end with an error, not a clean end.
async fn abandoned_producer<A: App>(client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    let Some(path) = &target.abandoned_producer else {
        return Err(NotPassed::Skipped("no abandoned-producer route".to_owned()));
    };
    let mut response = client.get(path).send().await;
    match response.bytes().await {
        Err(_) => Ok(()),
        Ok(bytes) => Err(format!(
            "GET {path}: the body ended cleanly after {} bytes though its producer went away",
            bytes.len()
        )
        .into()),
    }
}

/// `WS-HS-2`, `WS-HS-7`, `WS-HS-10`: a handshake without subprotocols, then one offering two;
/// Lint (strict) catches a changed status, a removed marker, hand-set `sec-websocket-*`
/// fields and a subprotocol that was not offered.
async fn websocket<A: App>(client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    let Some(path) = &target.websocket else {
        return Err(NotPassed::Skipped("no WebSocket route".to_owned()));
    };
    for protocols in [Vec::new(), vec!["rgi-conformance", "rgi-conformance-2"]] {
        let mut socket = client
            .websocket(path)
            .protocols(protocols.clone())
            .connect()
            .await
            .map_err(|e| format!("WebSocket handshake on {path} (offering {protocols:?}): {e}"))?;
        if let Some(selected) = socket.subprotocol() {
            if !protocols.contains(&selected) {
                return Err(format!(
                    "the application selected {selected:?}, offered: {protocols:?}"
                )
                .into());
            }
        }
        socket
            .close(None)
            .await
            .map_err(|e| format!("closing the WebSocket: {e}"))?;
        socket
            .finished()
            .await
            .map_err(|e| format!("the WebSocket handler failed: {e}"))?;
    }
    Ok(())
}

/// `UPGRADE-RAW-7`: a raw upgrade accepted through `OnUpgrade::accept`, unchanged.
async fn raw_upgrade<A: App>(client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    let Some((path, protocol)) = &target.upgrade else {
        return Err(NotPassed::Skipped("no upgrade route".to_owned()));
    };
    let upgraded = client
        .upgrade(path, protocol)
        .connect()
        .await
        .map_err(|e| format!("upgrade to {protocol} on {path}: {e}"))?;
    if upgraded.protocol() != protocol {
        return Err(format!(
            "upgraded to {:?}, but {protocol:?} was offered",
            upgraded.protocol()
        )
        .into());
    }
    drop(upgraded);
    Ok(())
}

/// `EXT-NS-1`: plain `GET`s of the upgrade routes; Lint (strict) catches an accept marker in
/// a response to a request that offered nothing.
async fn markers_without_offer<A: App>(client: &TestClient<A>, target: &AppTarget) -> CaseResultOf {
    let paths = target
        .websocket
        .iter()
        .chain(target.upgrade.as_ref().map(|(path, _)| path));
    for path in paths {
        let mut response = client.get(path).send().await;
        drop(response.bytes().await);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Middleware mode.

/// Where [`check_middleware`] sends its requests.
#[derive(Debug, Clone)]
pub struct MiddlewareTarget {
    /// A path (with query, if wanted) that the middleware passes on to the inner application.
    pub path: String,
}

impl MiddlewareTarget {
    /// Requests go to `path`.
    pub fn new(path: impl Into<String>) -> Self {
        Self { path: path.into() }
    }
}

/// The middleware-mode cases: name and the requirements each checks.
pub const MIDDLEWARE_CASES: [(&str, &[&str]); 3] = [
    (
        "middleware: unknown extensions passed on both ways",
        &["EXT-CAP-4"],
    ),
    (
        "middleware: features passed on are honoured, or withdrawn",
        &["EXT-CAP-5"],
    ),
    (
        "middleware: the inner request keeps the mount invariant",
        &["HTTP-PATH-10"],
    ),
];

/// What the inner application saw, shared with the checks.
#[derive(Debug, Default)]
struct Seen {
    calls: AtomicUsize,
    started: AtomicBool,
    response_trailers: AtomicBool,
    hints_sent: AtomicUsize,
    /// The inner Lint's report when the inner application was built by [`Inner::into_app`].
    app_report: Mutex<Option<LintReport>>,
}

/// The suite's application inside the middleware under test: a [`Lifespan`] (for middleware
/// that starts its inner application, and may withdraw capabilities from its `ServerInfo`),
/// or an [`App`] through [`Inner::into_app`] (for middleware that wraps a built application).
///
/// It is linted (strict) on its own; for each request it sends an early hint when the request
/// carries `EarlyHints`, and response trailers when the request asks for them (`te: trailers`)
/// and it was told the `ResponseTrailers` capability (an inner application that is not
/// started is told everything the server offers).
pub struct Inner {
    lint: LintLifespan<InnerStart>,
    seen: Arc<Seen>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

impl Inner {
    /// The inner application, built without startup: it takes the server's capabilities as
    /// they are.
    pub fn into_app(self) -> InnerApp {
        self.seen.started.store(true, Ordering::SeqCst);
        self.seen.response_trailers.store(true, Ordering::SeqCst);
        let lint = Lint::new(Recorder {
            seen: self.seen.clone(),
        })
        .mode(LintMode::Strict);
        *self
            .seen
            .app_report
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(lint.report());
        InnerApp(lint)
    }
}

/// The startup half of [`Inner`].
struct InnerStart {
    seen: Arc<Seen>,
}

impl Lifespan for InnerStart {
    type App = Recorder;

    async fn startup(self, server: ServerInfo) -> Result<Recorder, StartupError> {
        self.seen.started.store(true, Ordering::SeqCst);
        self.seen.response_trailers.store(
            server.capabilities().contains(Capability::ResponseTrailers),
            Ordering::SeqCst,
        );
        Ok(Recorder { seen: self.seen })
    }
}

impl Lifespan for Inner {
    type App = InnerApp;

    async fn startup(self, server: ServerInfo) -> Result<InnerApp, StartupError> {
        self.lint.startup(server).await.map(InnerApp)
    }
}

/// The built inner application (see [`Inner`]).
pub struct InnerApp(Lint<Recorder>);

impl std::fmt::Debug for InnerApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InnerApp").finish_non_exhaustive()
    }
}

impl App for InnerApp {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, req: Request) -> Result<Response<Body>, BoxError> {
        Ok(self.0.call(req).await?.map(Body::new))
    }

    async fn shutdown(&self) {
        self.0.shutdown().await;
    }
}

/// The application inside [`Inner`].
struct Recorder {
    seen: Arc<Seen>,
}

impl App for Recorder {
    type Body = Body;
    type Error = std::convert::Infallible;

    async fn call(&self, req: Request) -> Result<Response<Body>, std::convert::Infallible> {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(hints) = req.extensions().get::<EarlyHints>() {
            let mut fields = HeaderMap::new();
            fields.insert(
                header::LINK,
                HeaderValue::from_static("</style.css>; rel=preload; as=style"),
            );
            if hints.send(fields).await.is_ok() {
                self.seen.hints_sent.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wants_trailers = req
            .headers()
            .get_all(header::TE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        let body = if wants_trailers && self.seen.response_trailers.load(Ordering::SeqCst) {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-inner-trailer", HeaderValue::from_static("sent"));
            Body::new(DataThenTrailers {
                data: Some(Bytes::from_static(b"inner\n")),
                trailers: Some(trailers),
            })
        } else {
            Body::from("inner\n")
        };
        Ok(Response::new(body))
    }
}

/// A body of one data frame and one trailers frame.
struct DataThenTrailers {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for DataThenTrailers {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = match self.data.take() {
            Some(data) => Some(Frame::data(data)),
            None => self.trailers.take().map(Frame::trailers),
        };
        std::task::Poll::Ready(frame.map(Ok))
    }
}

/// Runs the middleware-mode cases: `wrap` builds the middleware around the suite's
/// [`Inner`] application, once per case; the middleware runs between two strict Lints.
pub async fn check_middleware<M, F>(wrap: F, target: &MiddlewareTarget) -> Report
where
    M: Lifespan,
    F: Fn(Inner) -> M,
{
    let mut report = Report::new();
    for (index, (name, ids)) in MIDDLEWARE_CASES.iter().enumerate() {
        let seen = Arc::new(Seen::default());
        let inner_lint = Lint::lifespan(InnerStart { seen: seen.clone() }).mode(LintMode::Strict);
        let inner_report = inner_lint.report();
        let inner = Inner {
            lint: inner_lint,
            seen: seen.clone(),
        };
        let case = run_middleware_case(index, wrap(inner), seen, inner_report, target);
        let outcome = outcome_of(bounded(case).await);
        report.push(CaseResult { name, ids, outcome });
    }
    report
}

async fn run_middleware_case<M: Lifespan>(
    index: usize,
    middleware: M,
    seen: Arc<Seen>,
    inner_report: LintReport,
    target: &MiddlewareTarget,
) -> CaseResultOf {
    let outer = Lint::lifespan(middleware).mode(LintMode::Strict);
    let outer_report = outer.report();
    let client = TestClient::start(outer)
        .await
        .map_err(|e| format!("startup failed: {e}"))?;
    let client = if index == 2 {
        client.mount_prefix("/conformance-mount")
    } else {
        client
    };
    let path = if index == 2 {
        format!("/conformance-mount{}", target.path)
    } else {
        target.path.clone()
    };
    let mut response = client.get(&path).header("te", "trailers").send().await;
    let body = response.bytes().await;
    client.shutdown().await;
    // Violations first: the outer Lint's of the middleware (app side), and the inner Lint's of
    // the middleware (it plays the server for the inner application) or of the inner app.
    must_be_clean(&outer_report)?;
    let inner_report = seen
        .app_report
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or(inner_report);
    let inner_violations: Vec<String> = inner_report
        .violations()
        .into_iter()
        .filter(|v| v.level == Level::Must)
        .map(|v| v.message)
        .collect();
    if !inner_violations.is_empty() {
        return Err(inner_violations.join("\n       ").into());
    }
    if seen.calls.load(Ordering::SeqCst) == 0 {
        return Err(format!(
            "GET {path} never reached the inner application (answered {})",
            response.status()
        )
        .into());
    }
    body.map_err(|e| format!("GET {path}: the body failed: {e}"))?;
    if index == 1 {
        if seen.hints_sent.load(Ordering::SeqCst) > 0 && response.early_hints().is_empty() {
            return Err(
                "the inner application sent early hints through the EarlyHints it was given, and none reached the client"
                    .to_owned()
                    .into(),
            );
        }
        let trailers_told = seen.response_trailers.load(Ordering::SeqCst);
        let trailers_arrived = response
            .trailers()
            .is_some_and(|t| t.contains_key("x-inner-trailer"));
        if trailers_told && !trailers_arrived {
            return Err(
                "the inner application was told ResponseTrailers and sent trailers, and none reached the client"
                    .to_owned()
                    .into(),
            );
        }
        if !seen.started.load(Ordering::SeqCst) {
            return Err("the middleware never started the inner application"
                .to_owned()
                .into());
        }
    }
    Ok(())
}
