//! Lint: a run-time checker of both sides of the interface, against SPEC.md.

mod report;
mod request;
mod response;
mod watch;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use rgi::ext::EarlyHints;
use rgi::upgrade::OnUpgrade;
use rgi::ws::WebSocketUpgrade;
use rgi::{App, BoxError, Disconnect, Lifespan, ServerInfo, StartupError};

pub use report::{Level, LintError, LintReport, Side, Violation};
pub use response::LintBody;

/// What Lint does with a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LintMode {
    /// Log it (with `tracing`, at `warn`) and record it in the [`LintReport`]; change nothing.
    #[default]
    Report,
    /// Also fail the exchange on a `MUST` violation: before the response head, Lint answers
    /// `500` with the violations as text; after it, the body yields a [`LintError`] (so the
    /// server aborts).
    Strict,
}

/// A wrapper that checks the traffic between a server and an application against SPEC.md.
///
/// `Lint<A>` is itself an [`App`]: put it in front of an application in any server, or in a
/// [`crate::TestClient`]. It checks the server's side (the request and its extensions) and the
/// application's side (the response head and body, trailers, upgrades), and records every
/// [`Violation`] with its requirement ID in a [`LintReport`].
///
/// # Rules
///
/// The application's side (`Side::App`):
///
/// | ID | Checked |
/// |---|---|
/// | `HTTP-RESP-2` | a final status outside `200..=599`, a `1xx`/`101`, or a `2xx` to an extended CONNECT, without the upgrade API |
/// | `HTTP-RESP-4` | a header value the `http` crate's checked constructors reject (only reachable with `unsafe`) |
/// | `HTTP-RESP-5` | `connection`, `keep-alive`, `transfer-encoding`, `te`, `upgrade`, `proxy-connection` in the response |
/// | `HTTP-RESP-12` | `content-length` not a single number; not equal to an exact size hint (before the head); more or fewer body bytes than declared (HEAD and `304` excepted) |
/// | `HTTP-FRAME-6` | body data (or a non-zero size hint) in a `HEAD` response (SHOULD) |
/// | `HTTP-FRAME-8` | body data in a `204`, `205` or `304`; `content-length` on a `204` (SHOULD) |
/// | `HTTP-TRAIL-1` | a frame after the trailers, a second trailers frame |
/// | `HTTP-TRAIL-6` | trailers on a response with `content-length` (SHOULD) |
/// | `HTTP-TRAIL-7` | forbidden fields in the response trailers |
/// | `HTTP-TRAIL-10` | trailers not announced in a `trailer` field (SHOULD) |
/// | `HTTP-BODY-9` | a `2xx` answer after the request body failed |
/// | `HTTP-INTERIM-6` | connection-specific fields in early hints |
/// | `WS-HS-2` | a `sec-websocket-protocol` the client did not offer |
/// | `WS-HS-10` | other `sec-websocket-*` fields set by hand |
/// | `WS-HS-7`, `UPGRADE-RAW-7` | the status of an accepted handshake or upgrade changed |
/// | `EXT-NS-1` | an accept marker in the response to a request that offered no upgrade |
/// | `EXT-CAP-4` | (two Lints around a middleware) unknown extensions not passed on, either way |
/// | `HTTP-PATH-10` | (two Lints around a middleware) the mount invariant broken by the middleware |
///
/// The server's side (`Side::Server`):
///
/// | ID | Checked |
/// |---|---|
/// | `HTTP-CONN-1`, `HTTP-DISC-1` | `ConnectionInfo` or `Disconnect` missing |
/// | `HTTP-CONN-3`, `HTTP-CONN-4` | an `https` hop without TLS information, TLS information on an `http` hop |
/// | `HTTP-PATH-4` | the decoded path outside the `MountPrefix` |
/// | `HTTP-REQ-2`, `SRV-LIMIT-3` | a version other than HTTP/1.0, 1.1 or 2 |
/// | `HTTP-REQ-3` | a target in no valid form; an HTTP/2 URI without scheme or authority |
/// | `SRV-LIMIT-1` | asterisk-form without `OPTIONS`, authority-form without `CONNECT`, HTTP/1.1 without exactly one `host`, HTTP/2 with connection-specific fields |
/// | `SRV-LIMIT-13` | invalid or conflicting lengths, a final coding other than `chunked` |
/// | `SRV-LIMIT-14` | `content-length` with `transfer-encoding` |
/// | `HTTP-BODY-7` | a request body without a limit |
/// | `HTTP-BODY-6` | a declared length without an equal exact size hint |
/// | `HTTP-BODY-4` | a body-less request whose body is not at its end, or yields data or trailers |
/// | `HTTP-BODY-3` | a body that ends before its declared length |
/// | `HTTP-BODY-10` | a body that yields more than its declared length |
/// | `HTTP-TRAIL-9` | forbidden fields in request trailers (SHOULD) |
/// | `WS-HS-6` | a `WebSocketUpgrade` on a request that is not a valid opening handshake |
/// | `UPGRADE-RAW-1` | an `OnUpgrade` on a request that asks for no protocol switch (or HTTP/1.0) |
/// | `HTTP-INTERIM-3` | `EarlyHints` on an HTTP/1.0 request |
/// | `EXT-CAP-7`, `WS-H2-3` | (with [`Lint::lifespan`]) extensions whose capability was not advertised |
/// | `CORE-VER-3` | (with [`Lint::lifespan`]) a `ServerInfo` of another spec version |
/// | `HTTP-DISC-2` | `Completed` before the app answered or before the response body ended; `ClientGone` after the server read the whole body |
///
/// The requirements Lint cannot check at run time, and why, are listed in
/// `docs/lint-coverage.md` in the repository.
///
/// ```
/// use rgi::{App, Body, Request};
/// use rgi::http::{Response, header};
/// use rgi_test::{Lint, TestClient};
/// use std::convert::Infallible;
///
/// /// Sets a hop-by-hop header: the server owns those (HTTP-RESP-5).
/// struct Rude;
///
/// impl App for Rude {
///     type Body = Body;
///     type Error = Infallible;
///     async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
///         let mut response = Response::new(Body::from("bye"));
///         response.headers_mut().insert(header::CONNECTION, "close".parse().unwrap());
///         Ok(response)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let lint = Lint::new(Rude);
/// let report = lint.report();
/// let client = TestClient::new(lint);
/// let mut response = client.get("/").send().await;
/// response.bytes().await.unwrap();
/// assert_eq!(report.ids(), ["HTTP-RESP-5"]);
/// assert!(report.violations()[0].message.starts_with("HTTP-RESP-5"));
/// # }
/// ```
pub struct Lint<A> {
    app: A,
    mode: LintMode,
    report: LintReport,
    server: Arc<OnceLock<ServerInfo>>,
}

impl<A> fmt::Debug for Lint<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lint")
            .field("mode", &self.mode)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<A: App> Lint<A> {
    /// Wraps `app`, in [`LintMode::Report`].
    pub fn new(app: A) -> Self {
        Self {
            app,
            mode: LintMode::Report,
            report: LintReport::default(),
            server: Arc::new(OnceLock::new()),
        }
    }

    /// Wraps a [`Lifespan`]: the Lint also sees the [`ServerInfo`] of startup, and checks the
    /// extensions of each request against the advertised capabilities (`EXT-CAP-7`).
    pub fn lifespan<L: Lifespan<App = A>>(lifespan: L) -> LintLifespan<L> {
        LintLifespan {
            lifespan,
            mode: LintMode::Report,
            report: LintReport::default(),
        }
    }
}

impl<A> Lint<A> {
    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: LintMode) -> Self {
        self.mode = mode;
        self
    }

    /// The report this Lint records into (a shared handle: keep it before moving the Lint).
    pub fn report(&self) -> LintReport {
        self.report.clone()
    }

    /// The wrapped application.
    pub fn inner(&self) -> &A {
        &self.app
    }
}

/// A [`Lifespan`] whose application is linted; see [`Lint::lifespan`].
pub struct LintLifespan<L> {
    lifespan: L,
    mode: LintMode,
    report: LintReport,
}

impl<L> fmt::Debug for LintLifespan<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LintLifespan")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<L> LintLifespan<L> {
    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: LintMode) -> Self {
        self.mode = mode;
        self
    }

    /// The report the Lint records into.
    pub fn report(&self) -> LintReport {
        self.report.clone()
    }
}

impl<L: Lifespan> Lifespan for LintLifespan<L> {
    type App = Lint<L::App>;

    async fn startup(self, server: ServerInfo) -> Result<Lint<L::App>, StartupError> {
        let ctx = Ctx::new(self.mode, self.report.clone(), "startup".to_owned());
        if server.spec_version() != rgi::SPEC_VERSION {
            ctx.record(
                "CORE-VER-3",
                Side::Server,
                Level::Must,
                format!(
                    "ServerInfo::spec_version() is {}, not the SPEC_VERSION {} of the rgi crate",
                    server.spec_version(),
                    rgi::SPEC_VERSION
                ),
            );
        }
        let info = OnceLock::new();
        let _ = info.set(server.clone());
        let app = self.lifespan.startup(server).await?;
        Ok(Lint {
            app,
            mode: self.mode,
            report: self.report,
            server: Arc::new(info),
        })
    }
}

/// The Lint's view of one exchange: where violations go, and which ones it found.
pub(crate) struct Ctx {
    mode: LintMode,
    report: LintReport,
    request_line: String,
    found: Mutex<Vec<Violation>>,
}

impl Ctx {
    fn new(mode: LintMode, report: LintReport, request_line: String) -> Self {
        Self {
            mode,
            report,
            request_line,
            found: Mutex::new(Vec::new()),
        }
    }

    /// Records a violation; returns it when strict mode must fail the exchange for it.
    pub(crate) fn record(
        &self,
        id: &'static str,
        side: Side,
        level: Level,
        what: impl fmt::Display,
    ) -> Option<Violation> {
        let message = format!("{id}: {what} [{side}; {}]", self.request_line);
        tracing::warn!(target: "rgi_test::lint", requirement = id, side = %side, "{message}");
        let violation = Violation {
            id,
            side,
            level,
            message,
        };
        self.report.push(violation.clone());
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(violation.clone());
        (self.mode == LintMode::Strict && level == Level::Must).then_some(violation)
    }

    fn strict_failures(&self) -> Vec<Violation> {
        if self.mode != LintMode::Strict {
            return Vec::new();
        }
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|v| v.level == Level::Must)
            .cloned()
            .collect()
    }
}

/// What Lint remembers of a request while it checks the response.
pub(crate) struct RequestFacts {
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) websocket: Option<WebSocketUpgrade>,
    pub(crate) raw: Option<OnUpgrade>,
}

impl<A: App> App for Lint<A> {
    type Body = LintBody<A::Body>;
    type Error = BoxError;

    async fn call(&self, mut req: rgi::Request) -> Result<Response<LintBody<A::Body>>, BoxError> {
        // The path only: a query may carry secrets that do not belong in logs (SRV-LOG-6).
        let request_line = format!("{} {} {:?}", req.method(), req.uri().path(), req.version());
        let ctx = Arc::new(Ctx::new(self.mode, self.report.clone(), request_line));
        // Nested Lints: an outer Lint's probe says a middleware sits between the two.
        let outer = req.extensions_mut().remove::<Probe>();
        if let Some(outer) = &outer {
            outer.reached.store(true, Ordering::SeqCst);
        }
        let seen = Seen {
            outer: outer.as_ref().map(|probe| probe.id),
        };
        request::check_head(&req, &ctx, self.server.get(), outer.is_some());
        let failures = ctx.strict_failures();
        if !failures.is_empty() {
            let mut response = error_response(&failures);
            response.extensions_mut().insert(seen);
            return Ok(response);
        }
        let facts = RequestFacts {
            method: req.method().clone(),
            version: req.version(),
            websocket: req.extensions().get::<WebSocketUpgrade>().cloned(),
            raw: req.extensions().get::<OnUpgrade>().cloned(),
        };
        let (mut parts, body) = req.into_parts();
        let (body, body_failed) = request::wrap_body(body, &parts, ctx.clone());
        if let Some(hints) = parts.extensions.remove::<EarlyHints>() {
            parts
                .extensions
                .insert(EarlyHints::new(request::LintHints::new(hints, ctx.clone())));
        }
        let disconnect = parts.extensions.get::<Disconnect>().cloned();
        let probe = Probe {
            id: NEXT_PROBE.fetch_add(1, Ordering::Relaxed),
            reached: Arc::new(AtomicBool::new(false)),
        };
        parts.extensions.insert(probe.clone());
        let mut response = self
            .app
            .call(Request::from_parts(parts, body))
            .await
            .map_err(Into::into)?;
        check_nested(&mut response, &probe, &ctx);
        if body_failed.load(Ordering::SeqCst) && response.status().is_success() {
            ctx.record(
                "HTTP-BODY-9",
                Side::App,
                Level::Must,
                format!(
                    "the request body failed, yet the application answered {} as if it were complete",
                    response.status()
                ),
            );
        }
        let checked = response::check_head(&response, &facts, &ctx);
        let failures = ctx.strict_failures();
        if !failures.is_empty() {
            let mut response = error_response(&failures);
            response.extensions_mut().insert(seen);
            return Ok(response);
        }
        response.extensions_mut().insert(seen);
        let state = Arc::new(watch::ExchangeState::new(checked.exempt_from_completion));
        if let Some(disconnect) = disconnect {
            watch::watch(disconnect, state.clone(), ctx.clone());
        }
        Ok(response.map(|body| LintBody::new(body, checked, state, ctx)))
    }

    async fn shutdown(&self) {
        self.app.shutdown().await;
    }
}

static NEXT_PROBE: AtomicU64 = AtomicU64::new(1);

/// What a Lint puts into the request it passes on, for a Lint further in (`EXT-CAP-4`).
#[derive(Clone)]
struct Probe {
    id: u64,
    reached: Arc<AtomicBool>,
}

/// What a Lint puts into the response it returns: the probe it received, if any.
#[derive(Clone)]
struct Seen {
    outer: Option<u64>,
}

/// `EXT-CAP-4`: with another Lint further in, the application between the two (a middleware)
/// must pass the extensions it does not know both ways.
fn check_nested<B>(response: &mut Response<B>, probe: &Probe, ctx: &Ctx) {
    match response.extensions_mut().remove::<Seen>() {
        Some(seen) if seen.outer != Some(probe.id) => {
            ctx.record(
                "EXT-CAP-4",
                Side::App,
                Level::Must,
                "the middleware did not pass the request's unknown extensions on (an inner Lint saw none of this Lint's)",
            );
        }
        None if probe.reached.load(Ordering::SeqCst) => {
            ctx.record(
                "EXT-CAP-4",
                Side::App,
                Level::Must,
                "the middleware did not pass the inner response's unknown extensions on",
            );
        }
        _ => {}
    }
}

/// Strict mode's answer before the head: `500` with the violations as text.
fn error_response<B>(failures: &[Violation]) -> Response<LintBody<B>> {
    let mut text = String::from("rgi-test lint (strict) failed this exchange:\n");
    for violation in failures {
        text.push_str(&violation.message);
        text.push('\n');
    }
    let mut response = Response::new(LintBody::error(Bytes::from(text)));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
