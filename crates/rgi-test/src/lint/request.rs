//! The server's side: the request head, its extensions and its body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, Version, header};
use http_body::{Body as _, Frame, SizeHint};
use rgi::ext::{EarlyHints, EarlyHintsError, SendEarlyHints};
use rgi::upgrade::OnUpgrade;
use rgi::ws::WebSocketUpgrade;
use rgi::{
    Body, BodyError, Capability, ConnectionInfo, Disconnect, MountPrefix, Scheme, ServerInfo,
};

use super::{Ctx, Level, LintError, Side};
use crate::client::parse_length;
use rgi::fields::CONNECTION_SPECIFIC;
use rgi::fields::FORBIDDEN_IN_TRAILERS as FORBIDDEN_TRAILERS;

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Checks the request head and extensions the server produced.
///
/// `nested`: another Lint is further out, so a middleware produced this request.
pub(crate) fn check_head(req: &rgi::Request, ctx: &Ctx, server: Option<&ServerInfo>, nested: bool) {
    let server_must = |id, what: String| {
        ctx.record(id, Side::Server, Level::Must, what);
    };
    let ext = req.extensions();
    let version = req.version();
    let h2 = version == Version::HTTP_2;
    let headers = req.headers();

    // Always-present extensions.
    let info = ext.get::<ConnectionInfo>();
    if info.is_none() {
        server_must(
            "HTTP-CONN-1",
            "the request carries no ConnectionInfo".to_owned(),
        );
    }
    match ext.get::<Disconnect>() {
        None => server_must(
            "HTTP-DISC-1",
            "the request carries no Disconnect".to_owned(),
        ),
        Some(disconnect) if disconnect.outcome() == Some(rgi::Outcome::Completed) => server_must(
            "HTTP-DISC-2",
            "the Disconnect reports Completed before the application answered".to_owned(),
        ),
        Some(_) => {}
    }

    // Scheme and TLS of this hop.
    if let Some(info) = info {
        match (info.transport_scheme(), info.tls().is_some()) {
            (Scheme::Https, false) => server_must(
                "HTTP-CONN-3",
                "the scheme of this hop is https but ConnectionInfo::tls() is None".to_owned(),
            ),
            (Scheme::Http, true) => server_must(
                "HTTP-CONN-4",
                "ConnectionInfo::tls() is Some on a hop whose scheme is http".to_owned(),
            ),
            _ => {}
        }
    }

    // Version and request target.
    if version == Version::HTTP_09 {
        server_must(
            "SRV-LIMIT-3",
            "an HTTP/0.9 request reached the application".to_owned(),
        );
    } else if ![Version::HTTP_10, Version::HTTP_11, Version::HTTP_2].contains(&version) {
        server_must(
            "HTTP-REQ-2",
            format!("unsupported request version {version:?}"),
        );
    }
    check_target(req, ctx);

    // Framing and connection-specific fields.
    if h2 {
        for name in &CONNECTION_SPECIFIC {
            let allowed_te = *name == "te"
                && headers
                    .get_all(header::TE)
                    .iter()
                    .all(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
            if headers.contains_key(name) && !allowed_te {
                server_must(
                    "SRV-LIMIT-1",
                    format!(
                        "an HTTP/2 request with the connection-specific field `{name}` (malformed, RFC 9113 §8.2.2) reached the application"
                    ),
                );
            }
        }
    } else {
        if version == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1 {
            server_must(
                "SRV-LIMIT-1",
                "an HTTP/1.1 request without exactly one `host` field reached the application"
                    .to_owned(),
            );
        }
        let lengths: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
        if headers.contains_key(header::TRANSFER_ENCODING) && !lengths.is_empty() {
            server_must(
                "SRV-LIMIT-14",
                "a request with both content-length and transfer-encoding reached the application"
                    .to_owned(),
            );
        }
        if lengths.iter().any(|v| parse_length(v).is_none())
            || lengths.windows(2).any(|pair| pair[0] != pair[1])
        {
            server_must(
                "SRV-LIMIT-13",
                "a request with an invalid or conflicting content-length reached the application"
                    .to_owned(),
            );
        }
        if let Some(last) = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
        {
            let final_coding = last
                .to_str()
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim);
            if !final_coding.is_some_and(|c| c.eq_ignore_ascii_case("chunked")) {
                server_must(
                    "SRV-LIMIT-13",
                    "a request whose transfer-encoding does not end in chunked reached the application"
                        .to_owned(),
                );
            }
        }
    }

    // The body: limit, size hint, body-less requests.
    let body = req.body();
    if body.limit().is_none() {
        server_must(
            "HTTP-BODY-7",
            "the request body carries no limit (Body::limit() is None)".to_owned(),
        );
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(parse_length);
    if let Some(declared) = declared {
        if body.size_hint().exact() != Some(declared) {
            server_must(
                "HTTP-BODY-6",
                format!(
                    "content-length is {declared} but the body's size_hint() is {:?}",
                    body.size_hint()
                ),
            );
        }
    }
    if is_bodyless(req) && !body.is_end_stream() {
        server_must(
            "HTTP-BODY-4",
            "a request without a body has a body whose is_end_stream() is false".to_owned(),
        );
    }

    // Mount prefix.
    if let Some(prefix) = ext.get::<MountPrefix>() {
        if rgi::path::app_path(req).is_none() {
            let what = format!(
                "the decoded path of {:?} is outside the mount prefix {prefix}",
                req.uri().path()
            );
            if nested {
                ctx.record(
                    "HTTP-PATH-10",
                    Side::App,
                    Level::Must,
                    format!("{what} (set by the middleware in front)"),
                );
            } else {
                server_must("HTTP-PATH-4", what);
            }
        }
    }

    check_offers(req, ctx);
    if let Some(server) = server {
        check_capabilities(req, ctx, server);
    }
}

/// A request that has no body on the wire (`HTTP-BODY-4`).
fn is_bodyless(req: &rgi::Request) -> bool {
    let headers = req.headers();
    let length = headers.get(header::CONTENT_LENGTH).and_then(parse_length);
    if req.version() == Version::HTTP_2 {
        return length == Some(0);
    }
    length == Some(0) || (length.is_none() && !headers.contains_key(header::TRANSFER_ENCODING))
}

fn check_target(req: &rgi::Request, ctx: &Ctx) {
    let uri = req.uri();
    let method = req.method();
    let fail = |id, what: String| {
        ctx.record(id, Side::Server, Level::Must, what);
    };
    let asterisk = uri.path() == "*" && uri.authority().is_none();
    let authority_only = uri.scheme().is_none() && uri.authority().is_some();
    if asterisk && method != Method::OPTIONS {
        fail(
            "SRV-LIMIT-1",
            format!("an asterisk-form target with method {method} reached the application"),
        );
    }
    if authority_only && method != Method::CONNECT {
        fail(
            "SRV-LIMIT-1",
            format!("an authority-form target with method {method} reached the application"),
        );
    }
    if req.version() == Version::HTTP_2 {
        let plain_connect = method == Method::CONNECT
            && req.extensions().get::<WebSocketUpgrade>().is_none()
            && req.extensions().get::<OnUpgrade>().is_none();
        if !plain_connect && (uri.scheme().is_none() || uri.authority().is_none()) {
            fail(
                "HTTP-REQ-3",
                format!("the URI {uri} of an HTTP/2 request lacks the scheme or authority"),
            );
        }
    } else if !asterisk && !authority_only && uri.scheme().is_none() && !uri.path().starts_with('/')
    {
        fail(
            "HTTP-REQ-3",
            format!("the request target {uri} is in no valid form"),
        );
    }
}

/// Upgrade offers and interim-response extensions that do not apply to this request.
fn check_offers(req: &rgi::Request, ctx: &Ctx) {
    let ext = req.extensions();
    let headers = req.headers();
    let version = req.version();
    let h2 = version == Version::HTTP_2;
    let fail = |id, what: String| {
        ctx.record(id, Side::Server, Level::Must, what);
    };
    if let Some(offer) = ext.get::<WebSocketUpgrade>() {
        let version_13 = headers
            .get("sec-websocket-version")
            .is_some_and(|v| v.as_bytes() == b"13");
        let valid = if h2 {
            req.method() == Method::CONNECT && version_13
        } else {
            let key_ok = headers
                .get("sec-websocket-key")
                .is_some_and(|k| k.len() == 24 && k.as_bytes().ends_with(b"=="));
            version == Version::HTTP_11
                && req.method() == Method::GET
                && has_token(headers, header::UPGRADE, "websocket")
                && has_token(headers, header::CONNECTION, "upgrade")
                && key_ok
                && version_13
        };
        if !valid || offer.version() != version {
            fail(
                "WS-HS-6",
                "a WebSocketUpgrade in a request that is not a valid opening handshake".to_owned(),
            );
        }
    }
    if let Some(offer) = ext.get::<OnUpgrade>() {
        let valid = if h2 {
            req.method() == Method::CONNECT
        } else {
            version == Version::HTTP_11
                && headers.contains_key(header::UPGRADE)
                && has_token(headers, header::CONNECTION, "upgrade")
        };
        if !valid || offer.version() != version {
            fail(
                "UPGRADE-RAW-1",
                "an OnUpgrade in a request that asks for no protocol switch".to_owned(),
            );
        }
    }
    if ext.get::<EarlyHints>().is_some() && version == Version::HTTP_10 {
        fail(
            "HTTP-INTERIM-3",
            "an EarlyHints extension in an HTTP/1.0 request (no 1xx may be sent to it)".to_owned(),
        );
    }
}

/// `EXT-CAP-7`: per-request extensions need their advertised capabilities.
fn check_capabilities(req: &rgi::Request, ctx: &Ctx, server: &ServerInfo) {
    let caps = server.capabilities();
    let ext = req.extensions();
    let need = |present: bool, capability: Capability, what: &str| {
        if present && !caps.contains(capability) {
            ctx.record(
                "EXT-CAP-7",
                Side::Server,
                Level::Must,
                format!("{what} without the advertised capability `{capability}`"),
            );
        }
    };
    let info = ext.get::<ConnectionInfo>();
    need(
        info.is_some_and(|i| i.tls().is_some()),
        Capability::Tls,
        "TLS information",
    );
    need(
        info.is_some_and(ConnectionInfo::is_forwarded),
        Capability::ProxyHeaders,
        "forwarded client information",
    );
    need(
        ext.get::<MountPrefix>().is_some(),
        Capability::MountPrefix,
        "a MountPrefix",
    );
    need(
        ext.get::<EarlyHints>().is_some(),
        Capability::EarlyHints,
        "an EarlyHints",
    );
    need(
        ext.get::<OnUpgrade>().is_some(),
        Capability::Upgrade,
        "an OnUpgrade",
    );
    let ws = ext.get::<WebSocketUpgrade>().is_some();
    if req.version() == Version::HTTP_2 {
        if ws && !caps.contains(Capability::WebSocketHttp2) {
            ctx.record(
                "WS-H2-3",
                Side::Server,
                Level::Must,
                "a WebSocketUpgrade in an HTTP/2 request without the capability `websocket-http2`",
            );
        }
    } else {
        need(ws, Capability::WebSocket, "a WebSocketUpgrade");
    }
}

/// Wraps the request body; the limit stays on the outer `Body` so that the application can
/// still move it (`HTTP-BODY-8`).
///
/// The flag tells whether the body yielded an error to the application (`HTTP-BODY-9`).
pub(crate) fn wrap_body(mut body: Body, parts: &Parts, ctx: Arc<Ctx>) -> (Body, Arc<AtomicBool>) {
    let failed = Arc::new(AtomicBool::new(false));
    let limit = body.limit();
    body.set_limit(None);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(parse_length);
    let bodyless = {
        let length = declared;
        if parts.version == Version::HTTP_2 {
            length == Some(0)
        } else {
            length == Some(0)
                || (length.is_none() && !parts.headers.contains_key(header::TRANSFER_ENCODING))
        }
    };
    let body = Body::new(LintRequestBody {
        inner: body,
        ctx,
        declared,
        bodyless,
        received: 0,
        ended: false,
        errored: false,
        failed: failed.clone(),
    })
    .with_limit(limit);
    (body, failed)
}

struct LintRequestBody {
    inner: Body,
    ctx: Arc<Ctx>,
    declared: Option<u64>,
    bodyless: bool,
    received: u64,
    ended: bool,
    errored: bool,
    failed: Arc<AtomicBool>,
}

type FramePoll = Poll<Option<Result<Frame<Bytes>, BodyError>>>;

impl LintRequestBody {
    fn server(&mut self, id: &'static str, what: String) -> Option<FramePoll> {
        let failure = self.ctx.record(id, Side::Server, Level::Must, what)?;
        self.errored = true;
        Some(Poll::Ready(Some(Err(BodyError::Other(Box::new(
            LintError(failure),
        ))))))
    }
}

impl LintRequestBody {
    /// The body is at its end: it must have delivered its declared length (`HTTP-BODY-3`).
    fn on_end(&mut self) -> Option<FramePoll> {
        if self.ended || self.errored {
            return None;
        }
        self.ended = true;
        let declared = self.declared?;
        if self.received >= declared {
            return None;
        }
        let what = format!(
            "the request body ended after {} of its {declared} declared bytes instead of failing with Disconnected",
            self.received
        );
        self.server("HTTP-BODY-3", what)
    }
}

impl http_body::Body for LintRequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let frame = match polled {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                if let Some(fail) = this.on_end() {
                    return fail;
                }
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(error))) => {
                this.errored = true;
                this.failed.store(true, Ordering::SeqCst);
                return Poll::Ready(Some(Err(error)));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            this.received += data.len() as u64;
            if this.bodyless && !data.is_empty() {
                if let Some(fail) = this.server(
                    "HTTP-BODY-4",
                    "a request without a body yielded data".into(),
                ) {
                    return fail;
                }
            }
            if let Some(declared) = this.declared {
                if this.received > declared {
                    let what = format!(
                        "the request body yielded {} bytes, more than its content-length {declared}",
                        this.received
                    );
                    if let Some(fail) = this.server("HTTP-BODY-10", what) {
                        return fail;
                    }
                }
            }
        } else if let Some(trailers) = frame.trailers_ref() {
            if this.bodyless {
                if let Some(fail) = this.server(
                    "HTTP-BODY-4",
                    "a request without a body yielded trailers".into(),
                ) {
                    return fail;
                }
            }
            for name in &FORBIDDEN_TRAILERS {
                if trailers.contains_key(name) {
                    this.ctx.record(
                        "HTTP-TRAIL-9",
                        Side::Server,
                        Level::Should,
                        format!("the request trailers carry the forbidden field `{name}`"),
                    );
                }
            }
        }
        // The application may stop polling once the body says it is at its end.
        if this.inner.is_end_stream() {
            if let Some(fail) = this.on_end() {
                return fail;
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Checks what the application sends as `103 Early Hints` (`HTTP-INTERIM-6`).
pub(crate) struct LintHints {
    inner: EarlyHints,
    ctx: Arc<Ctx>,
}

impl LintHints {
    pub(crate) fn new(inner: EarlyHints, ctx: Arc<Ctx>) -> Self {
        Self { inner, ctx }
    }
}

impl SendEarlyHints for LintHints {
    fn send_early_hints(
        &self,
        headers: HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<(), EarlyHintsError>> + Send>> {
        for name in &CONNECTION_SPECIFIC {
            if headers.contains_key(name) {
                self.ctx.record(
                    "HTTP-INTERIM-6",
                    Side::App,
                    Level::Must,
                    format!("early hints carry the connection-specific field `{name}`"),
                );
            }
        }
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(headers).await })
    }
}
