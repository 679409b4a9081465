//! The application's side: the response head and body.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, Version, header};
use http_body::{Frame, SizeHint};
use http_body_util::{Either, Full};
use rgi::BoxError;
use rgi::upgrade::UpgradeAccepted;
use rgi::ws::WebSocketAccepted;

use super::watch::ExchangeState;
use super::{Ctx, Level, LintError, RequestFacts, Side};
use crate::client::parse_length;
use rgi::fields::CONNECTION_SPECIFIC;
use rgi::fields::FORBIDDEN_IN_TRAILERS as FORBIDDEN_TRAILERS;

/// What the head checks decided for the body checks.
pub(crate) struct Checked {
    /// The declared length the body must match (`HTTP-RESP-12`), when it applies.
    declared: Option<u64>,
    /// Body data is not allowed: `(id, level)`.
    no_data: Option<(&'static str, Level)>,
    announced: Vec<String>,
    has_content_length: bool,
    /// The server need not poll this body, so `Completed` says nothing about it.
    pub(crate) exempt_from_completion: bool,
}

fn success_status(version: Version) -> StatusCode {
    if version >= Version::HTTP_2 {
        StatusCode::OK
    } else {
        StatusCode::SWITCHING_PROTOCOLS
    }
}

/// Checks the response head the application returned.
pub(crate) fn check_head<B: http_body::Body>(
    response: &Response<B>,
    facts: &RequestFacts,
    ctx: &Ctx,
) -> Checked {
    let app = |id, level, what: String| {
        ctx.record(id, Side::App, level, what);
    };
    let status = response.status();
    let headers = response.headers();
    let ws = response.extensions().get::<WebSocketAccepted>();
    let raw = response.extensions().get::<UpgradeAccepted>();
    let expected = success_status(facts.version);

    // Upgrade markers and the statuses reserved to them.
    if ws.is_some() && facts.websocket.is_none() {
        app(
            "EXT-NS-1",
            Level::Must,
            "a WebSocketAccepted marker in the response to a request without WebSocketUpgrade"
                .to_owned(),
        );
    }
    if raw.is_some() && facts.raw.is_none() {
        app(
            "EXT-NS-1",
            Level::Must,
            "an UpgradeAccepted marker in the response to a request without OnUpgrade".to_owned(),
        );
    }
    if ws.is_some() && facts.websocket.is_some() && status != expected {
        app(
            "WS-HS-7",
            Level::Must,
            format!("the accepted WebSocket response has status {status}, not {expected}"),
        );
    }
    if raw.is_some() && facts.raw.is_some() && status != expected {
        app(
            "UPGRADE-RAW-7",
            Level::Must,
            format!("the accepted upgrade response has status {status}, not {expected}"),
        );
    }
    let marked = ws.is_some() || raw.is_some();
    if !marked {
        let code = status.as_u16();
        if status.is_informational() || code > 599 {
            app(
                "HTTP-RESP-2",
                Level::Must,
                format!(
                    "final status {status} returned without the upgrade API (allowed: 200..=599)"
                ),
            );
        } else if facts.version >= Version::HTTP_2
            && facts.method == http::Method::CONNECT
            && (facts.websocket.is_some() || facts.raw.is_some())
            && status.is_success()
        {
            app(
                "HTTP-RESP-2",
                Level::Must,
                format!("{status} to an extended CONNECT without the upgrade API"),
            );
        }
    }

    // Header fields.
    for name in &CONNECTION_SPECIFIC {
        // RFC 9110 §15.5.22: a 426 lists the protocols it would switch to in `upgrade`.
        let allowed = *name == "upgrade" && status == StatusCode::UPGRADE_REQUIRED;
        if headers.contains_key(name) && !allowed {
            app(
                "HTTP-RESP-5",
                Level::Must,
                format!("the response sets the connection-specific field `{name}`"),
            );
        }
    }
    for (name, value) in headers {
        if HeaderValue::from_bytes(value.as_bytes()).is_err() {
            app(
                "HTTP-RESP-4",
                Level::Must,
                format!("the value of `{name}` is not a valid field value (CR, LF or NUL)"),
            );
        }
    }
    let websocket_context = facts.websocket.is_some() || ws.is_some() || status.as_u16() == 101;
    if websocket_context {
        let offered = facts
            .websocket
            .as_ref()
            .map(|w| w.protocols().to_vec())
            .unwrap_or_default();
        let selected = ws.and_then(WebSocketAccepted::subprotocol);
        for (name, value) in headers {
            if !name.as_str().starts_with("sec-websocket-") {
                continue;
            }
            let denial_version =
                status.is_client_error() && name.as_str() == "sec-websocket-version";
            if denial_version {
                continue;
            }
            let text = value.to_str().unwrap_or_default();
            if name == header::SEC_WEBSOCKET_PROTOCOL {
                if selected == Some(text) {
                    continue;
                }
                if !offered.iter().any(|p| p == text) {
                    app(
                        "WS-HS-2",
                        Level::Must,
                        format!(
                            "the response selects subprotocol {text:?}, which the client did not offer"
                        ),
                    );
                    continue;
                }
            }
            app(
                "WS-HS-10",
                Level::Must,
                format!("the application set the handshake field `{name}`, which the server owns"),
            );
        }
    }

    // Framing.
    let lengths: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    let declared = match lengths.as_slice() {
        [] => None,
        [one] => match parse_length(one) {
            Some(length) => Some(length),
            None => {
                app(
                    "HTTP-RESP-12",
                    Level::Must,
                    format!("content-length {one:?} is not a decimal length"),
                );
                None
            }
        },
        _ => {
            app(
                "HTTP-RESP-12",
                Level::Must,
                "the response has several content-length fields".to_owned(),
            );
            None
        }
    };
    let head = facts.method == http::Method::HEAD;
    let no_content = status == StatusCode::NO_CONTENT;
    let empty_by_status = matches!(status, StatusCode::NOT_MODIFIED | StatusCode::RESET_CONTENT);
    if no_content && declared.is_some() {
        app(
            "HTTP-FRAME-8",
            Level::Should,
            "a 204 response sets content-length".to_owned(),
        );
    }
    let no_data = if no_content || empty_by_status {
        Some(("HTTP-FRAME-8", Level::Must))
    } else if head {
        Some(("HTTP-FRAME-6", Level::Should))
    } else {
        None
    };
    let hint = response.body().size_hint();
    if let Some((id, level)) = no_data {
        if hint.lower() > 0 {
            app(
                id,
                level,
                format!(
                    "a body of at least {} bytes for a {} response",
                    hint.lower(),
                    describe(head, status)
                ),
            );
        }
    }
    let length_applies = !head && !empty_by_status && no_data.is_none() && !marked;
    if let (true, Some(declared), Some(exact)) = (length_applies, declared, hint.exact()) {
        if exact != declared {
            app(
                "HTTP-RESP-12",
                Level::Must,
                format!("content-length is {declared} but the body has exactly {exact} bytes"),
            );
        }
    }
    let announced = headers
        .get_all(header::TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    Checked {
        declared: if length_applies { declared } else { None },
        no_data,
        announced,
        has_content_length: declared.is_some(),
        exempt_from_completion: no_data.is_some()
            || marked
            || status.is_informational()
            || response.body().is_end_stream(),
    }
}

fn describe(head: bool, status: StatusCode) -> String {
    if head {
        "HEAD".to_owned()
    } else {
        status.to_string()
    }
}

pin_project_lite::pin_project! {
    /// The response body of a [`crate::Lint`]: the application's body, checked frame by frame
    /// (or, in strict mode, the text of the violations that failed the exchange).
    pub struct LintBody<B> {
        #[pin]
        inner: Either<B, Full<Bytes>>,
        checks: Option<BodyChecks>,
    }
}

struct BodyChecks {
    checked: Checked,
    state: Arc<ExchangeState>,
    ctx: Arc<Ctx>,
    received: u64,
    trailers_seen: bool,
    length_reported: bool,
    data_reported: bool,
    failed: bool,
    ended: bool,
}

impl<B> fmt::Debug for LintBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LintBody").finish_non_exhaustive()
    }
}

impl<B> LintBody<B> {
    pub(crate) fn new(body: B, checked: Checked, state: Arc<ExchangeState>, ctx: Arc<Ctx>) -> Self {
        Self {
            inner: Either::Left(body),
            checks: Some(BodyChecks {
                checked,
                state,
                ctx,
                received: 0,
                trailers_seen: false,
                length_reported: false,
                data_reported: false,
                failed: false,
                ended: false,
            }),
        }
    }

    pub(crate) fn error(text: Bytes) -> Self {
        Self {
            inner: Either::Right(Full::new(text)),
            checks: None,
        }
    }
}

type FramePoll = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

impl BodyChecks {
    fn violation(&mut self, id: &'static str, level: Level, what: String) -> Option<FramePoll> {
        let failure = self.ctx.record(id, Side::App, level, what)?;
        self.failed = true;
        Some(Poll::Ready(Some(Err(Box::new(LintError(failure))))))
    }

    fn on_frame(&mut self, frame: &Frame<Bytes>) -> Option<FramePoll> {
        if self.trailers_seen {
            let what = "the response body yielded a frame after its trailers".to_owned();
            return self.violation("HTTP-TRAIL-1", Level::Must, what);
        }
        if let Some(data) = frame.data_ref() {
            self.received += data.len() as u64;
            if let (Some((id, level)), false) = (self.checked.no_data, data.is_empty()) {
                if !self.data_reported {
                    self.data_reported = true;
                    let what = "body data in a response that must have none".to_owned();
                    if let Some(fail) = self.violation(id, level, what) {
                        return Some(fail);
                    }
                }
            }
            if let Some(declared) = self.checked.declared {
                if self.received > declared && !self.length_reported {
                    self.length_reported = true;
                    let what = format!(
                        "the body yielded {} bytes, more than its content-length {declared}",
                        self.received
                    );
                    return self.violation("HTTP-RESP-12", Level::Must, what);
                }
            }
            return None;
        }
        let trailers = frame.trailers_ref()?;
        self.trailers_seen = true;
        for name in &FORBIDDEN_TRAILERS {
            if trailers.contains_key(name) {
                let what = format!("the response trailers carry the forbidden field `{name}`");
                if let Some(fail) = self.violation("HTTP-TRAIL-7", Level::Must, what) {
                    return Some(fail);
                }
            }
        }
        for name in trailers.keys() {
            if !self.checked.announced.iter().any(|a| a == name.as_str()) {
                self.ctx.record(
                    "HTTP-TRAIL-10",
                    Side::App,
                    Level::Should,
                    format!("the trailer `{name}` is not announced in a `trailer` field"),
                );
            }
        }
        if self.checked.has_content_length {
            self.ctx.record(
                "HTTP-TRAIL-6",
                Side::App,
                Level::Should,
                "a response with trailers sets content-length (HTTP/1.1 cannot carry them then)",
            );
        }
        None
    }

    fn on_end(&mut self) -> Option<FramePoll> {
        self.ended = true;
        self.state.body_ended.store(true, Ordering::SeqCst);
        let declared = self.checked.declared?;
        if self.received < declared && !self.length_reported {
            self.length_reported = true;
            let what = format!(
                "the body ended after {} bytes, short of its content-length {declared}",
                self.received
            );
            return self.violation("HTTP-RESP-12", Level::Must, what);
        }
        None
    }
}

impl<B> http_body::Body for LintBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let mut this = self.project();
        if let Some(checks) = this.checks.as_ref() {
            if checks.failed {
                return Poll::Ready(None);
            }
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        let Some(checks) = this.checks.as_mut() else {
            return polled;
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(fail) = checks.on_frame(&frame) {
                    return fail;
                }
                // A server may stop polling once the body says it is at its end
                // (`http_body::Body::is_end_stream`): that is the end, too.
                if this.inner.is_end_stream() && !checks.ended {
                    if let Some(fail) = checks.on_end() {
                        return fail;
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) if checks.ended => Poll::Ready(None),
            Poll::Ready(None) => checks.on_end().unwrap_or(Poll::Ready(None)),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
