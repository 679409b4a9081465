//! Interface cases: in-process checks of the `rgi` crate that every implementation shares.
//!
//! Some requirements bind the shared types of the `rgi` crate rather than a server or an
//! application (`checked-by: unit` or `type` in Appendix A of SPEC.md): the decoding rule of
//! paths, the checks `accept_with` and `OnUpgrade::accept` make, close codes, the version
//! rule. A server or application that uses the `rgi` crate it was built with inherits them; these
//! cases check that crate, as linked into the suite, so that a report of `rgi-conformance
//! server`, `rgi-conformance app` or `rgi-conformance interface` says which of them hold.
//!
//! Each case fails if the `rgi` crate broke its rule. Requirements that the compiler enforces
//! are checked when the suite is built (see [`compile_time`]): a crate that broke them would not
//! compile with the suite, so the case reports what the build proved.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Response, StatusCode, Version};
use rgi::upgrade::{OnUpgrade, UpgradeAccepted, UpgradeError};
use rgi::ws::{
    AcceptOptions, CloseCode, CloseFrame, Message, Transport, WebSocket, WebSocketAccepted,
    WebSocketUpgrade, WsError,
};
use rgi::{App, Body, BoxApp, BoxError, Request, SPEC_VERSION, SpecVersion};

use crate::report::{CaseResult, Outcome, Report};

type CaseFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One interface case: name, cited requirements, and the check.
#[derive(Clone, Copy)]
struct InterfaceCase {
    name: &'static str,
    ids: &'static [&'static str],
    run: fn() -> CaseFuture,
}

/// Fails the case with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

macro_rules! case {
    ($name:literal, [$($id:literal),+ $(,)?], $run:path) => {
        InterfaceCase { name: $name, ids: &[$($id),+], run: || Box::pin($run()) }
    };
}

const INTERFACE_CASES: [InterfaceCase; 12] = [
    case!(
        "interface: SPEC_VERSION is the version SPEC.md states",
        ["CORE-VER-1"],
        spec_version
    ),
    case!(
        "interface: compatibility follows the major/minor rule",
        ["CORE-VER-2"],
        compatibility
    ),
    case!(
        "interface: BoxApp forwards call and shutdown and keeps error sources",
        ["CORE-APP-3"],
        box_app
    ),
    case!(
        "interface: paths are decoded once by the one rule",
        ["HTTP-PATH-2"],
        decoding
    ),
    case!(
        "interface: accept_with refuses a subprotocol the client did not offer",
        ["WS-HS-2"],
        subprotocol_not_offered
    ),
    case!(
        "interface: accept_with refuses server-owned headers",
        ["WS-HS-3"],
        forbidden_headers
    ),
    case!(
        "interface: only sendable close codes and short reasons reach the transport",
        ["WS-CLOSE-6"],
        close_codes
    ),
    case!(
        "interface: split halves keep message order and closing rules",
        ["WS-FLOW-5"],
        split_halves
    ),
    case!(
        "interface: upgrades accept only requested protocols",
        ["UPGRADE-RAW-2"],
        upgrade_not_offered
    ),
    case!(
        "interface: unavailable features fail with typed errors",
        ["EXT-CAP-3"],
        typed_errors
    ),
    case!(
        "interface: exactly one final head per call (compile-time)",
        ["HTTP-RESP-1"],
        one_final_head
    ),
    case!(
        "interface: non_exhaustive types handled with wildcard arms (compile-time)",
        ["CORE-VER-6"],
        tolerate_additions
    ),
];

/// The interface cases: name and the requirements each checks.
pub fn cases() -> Vec<(&'static str, &'static [&'static str])> {
    INTERFACE_CASES.iter().map(|c| (c.name, c.ids)).collect()
}

/// Runs every interface case and appends the results to `report`.
pub async fn run_into(report: &mut Report) {
    for case in INTERFACE_CASES {
        let outcome = match tokio::spawn((case.run)()).await {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(why)) => Outcome::Failed(why),
            Err(join) => Outcome::Failed(format!("the case itself failed: {join}")),
        };
        report.push(CaseResult {
            name: case.name,
            ids: case.ids,
            outcome,
        });
    }
}

/// Runs every interface case.
pub async fn run() -> Report {
    let mut report = Report::new();
    run_into(&mut report).await;
    report
}

/// CORE-VER-1: `SPEC_VERSION` equals the version in the title of SPEC.md.
async fn spec_version() -> Result<(), String> {
    let title = crate::spec::SPEC_TEXT.lines().next().unwrap_or("");
    let stated = title
        .rsplit_once("version ")
        .map(|(_, v)| v.trim())
        .ok_or_else(|| format!("SPEC.md states no version in its title: {title:?}"))?;
    ensure!(
        SPEC_VERSION.to_string() == stated,
        "rgi::SPEC_VERSION is {SPEC_VERSION}, SPEC.md is version {stated}"
    );
    Ok(())
}

/// CORE-VER-2: same major, and while the major is 0 the same minor.
async fn compatibility() -> Result<(), String> {
    let v = |major, minor| SpecVersion { major, minor };
    let table = [
        (v(0, 1), v(0, 1), true),
        (v(0, 1), v(0, 2), false),
        (v(0, 1), v(1, 1), false),
        (v(1, 0), v(1, 3), true),
        (v(1, 2), v(2, 2), false),
        (v(2, 5), v(2, 0), true),
    ];
    for (a, b, expected) in table {
        for (x, y) in [(a, b), (b, a)] {
            ensure!(
                x.is_compatible_with(&y) == expected,
                "{x}.is_compatible_with({y}) is {}, the rule says {expected}",
                !expected
            );
        }
    }
    Ok(())
}

/// An application for [`box_app`]: answers `/ok` with a marked response, fails elsewhere.
#[derive(Debug, Default)]
struct Recorder {
    shutdowns: Arc<Mutex<usize>>,
}

/// The root cause [`Recorder`] wraps in its error.
#[derive(Debug, thiserror::Error)]
#[error("the root cause")]
struct RootCause;

/// The error [`Recorder`] returns.
#[derive(Debug, thiserror::Error)]
#[error("the recorder failed")]
struct RecorderError(#[source] RootCause);

impl App for Recorder {
    type Body = Body;
    type Error = RecorderError;

    async fn call(&self, req: Request) -> Result<Response<Body>, RecorderError> {
        if req.uri().path() != "/ok" {
            return Err(RecorderError(RootCause));
        }
        let mut response = Response::new(Body::from("recorded"));
        *response.status_mut() = StatusCode::ACCEPTED;
        response
            .headers_mut()
            .insert("x-recorder", HeaderValue::from_static("yes"));
        Ok(response)
    }

    async fn shutdown(&self) {
        *self.shutdowns.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
}

fn request(path: &str) -> Request {
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = path.parse().unwrap_or_default();
    req
}

/// CORE-APP-3: `BoxApp` (also boxed twice) answers, fails and shuts down as the app it wraps.
async fn box_app() -> Result<(), String> {
    let recorder = Recorder::default();
    let shutdowns = recorder.shutdowns.clone();
    let boxed = BoxApp::new(BoxApp::new(recorder));
    let response = boxed
        .call(request("/ok"))
        .await
        .map_err(|e| format!("BoxApp failed where the app answered: {e}"))?;
    ensure!(
        response.status() == StatusCode::ACCEPTED,
        "status {} instead of the app's 202",
        response.status()
    );
    ensure!(
        response.headers().get("x-recorder").is_some(),
        "the app's header was lost"
    );
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    ensure!(body == "recorded", "body {body:?} instead of the app's");
    let error = match boxed.call(request("/fail")).await {
        Ok(response) => {
            return Err(format!(
                "BoxApp answered {} where the app failed",
                response.status()
            ));
        }
        Err(error) => error,
    };
    ensure!(
        error.to_string() == "the recorder failed",
        "error {error} is not the app's"
    );
    let source = std::error::Error::source(&*error);
    ensure!(
        source.is_some_and(|s| s.is::<RootCause>()),
        "the error lost its source chain: {source:?}"
    );
    boxed.shutdown().await;
    let count = *shutdowns.lock().unwrap_or_else(|p| p.into_inner());
    ensure!(count == 1, "the app's shutdown ran {count} times for one");
    Ok(())
}

/// HTTP-PATH-2: `%XX` becomes the byte, once; other `%` and `+` stay.
async fn decoding() -> Result<(), String> {
    let table: [(&str, &[u8]); 8] = [
        ("/a%2Fb", b"/a/b"),
        ("/%252F", b"/%2F"),
        ("/a+b", b"/a+b"),
        ("/100%", b"/100%"),
        ("/%zz%4", b"/%zz%4"),
        ("/%e9t%C3%A9", b"/\xe9t\xc3\xa9"),
        ("/plain", b"/plain"),
        ("/%%41", b"/%A"),
    ];
    for (raw, decoded) in table {
        let got = rgi::path::decode(raw);
        ensure!(
            &*got == decoded,
            "decode({raw:?}) = {:?}, the rule gives {:?}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(decoded)
        );
    }
    let req = request("/x%2Fy?q=%41");
    let app_path = rgi::path::app_path(&req);
    ensure!(
        app_path.as_deref() == Some(&b"/x/y"[..]),
        "app_path without a mount prefix is {app_path:?}, not the decoded path"
    );
    Ok(())
}

fn ws_offer(protocols: &[&str]) -> WebSocketUpgrade {
    WebSocketUpgrade::new(
        Version::HTTP_11,
        protocols.iter().map(|p| (*p).to_owned()).collect(),
    )
}

async fn noop_handler(_socket: WebSocket) -> Result<(), BoxError> {
    Ok(())
}

/// WS-HS-2: only an offered subprotocol can be selected.
async fn subprotocol_not_offered() -> Result<(), String> {
    let refused = ws_offer(&["chat"])
        .accept_with::<Body, _, _>(AcceptOptions::new().subprotocol("other"), noop_handler);
    ensure!(
        matches!(refused, Err(WsError::SubprotocolNotOffered(ref p)) if p == "other"),
        "selecting a subprotocol nobody offered gave {refused:?}"
    );
    let refused = ws_offer(&[])
        .accept_with::<Body, _, _>(AcceptOptions::new().subprotocol("chat"), noop_handler);
    ensure!(
        matches!(refused, Err(WsError::SubprotocolNotOffered(_))),
        "selecting a subprotocol when none was offered gave {refused:?}"
    );
    let accepted = ws_offer(&["x", "chat"])
        .accept_with::<Body, _, _>(AcceptOptions::new().subprotocol("chat"), noop_handler)
        .map_err(|e| format!("an offered subprotocol was refused: {e}"))?;
    let marker = accepted.extensions().get::<WebSocketAccepted>();
    ensure!(
        marker.and_then(|m| m.subprotocol()) == Some("chat"),
        "the accepted response does not record the chosen subprotocol"
    );
    Ok(())
}

/// WS-HS-3: `sec-websocket-*`, hop-by-hop and framing fields are refused.
async fn forbidden_headers() -> Result<(), String> {
    let forbidden = [
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "connection",
        "upgrade",
        "transfer-encoding",
        "keep-alive",
        "content-length",
    ];
    for name in forbidden {
        let header = HeaderName::from_static(name);
        let result = ws_offer(&[]).accept_with::<Body, _, _>(
            AcceptOptions::new().header(header.clone(), HeaderValue::from_static("1")),
            noop_handler,
        );
        ensure!(
            matches!(result, Err(WsError::ForbiddenHeader(ref n)) if *n == header),
            "accept_with with `{name}` gave {result:?} instead of ForbiddenHeader"
        );
    }
    let allowed = ws_offer(&[])
        .accept_with::<Body, _, _>(
            AcceptOptions::new().header(header::SET_COOKIE, HeaderValue::from_static("a=1")),
            noop_handler,
        )
        .map_err(|e| format!("an ordinary header was refused: {e}"))?;
    ensure!(
        allowed.headers().get(header::SET_COOKIE).is_some(),
        "an ordinary extra header was dropped"
    );
    Ok(())
}

/// A scripted WebSocket transport: yields queued messages, records what is sent.
#[derive(Debug, Default, Clone)]
struct Scripted {
    inbound: Arc<Mutex<VecDeque<Message>>>,
    sent: Arc<Mutex<Vec<Message>>>,
}

impl Scripted {
    fn with_inbound(messages: impl IntoIterator<Item = Message>) -> Self {
        let scripted = Self::default();
        scripted
            .inbound
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(messages);
        scripted
    }

    fn sent(&self) -> Vec<Message> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Transport for Scripted {
    fn poll_recv(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, WsError>>> {
        Poll::Ready(
            self.inbound
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
                .map(Ok),
        )
    }

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// WS-CLOSE-6: codes 1005/1006/1015 and out-of-range codes never reach the wire; reasons
/// longer than 123 bytes are refused.
async fn close_codes() -> Result<(), String> {
    for code in [0u16, 999, 5000, u16::MAX] {
        ensure!(
            CloseCode::new(code).is_err(),
            "CloseCode::new({code}) succeeded"
        );
    }
    let sendable = |n: u16| CloseCode::new(n).map(|c| c.is_sendable()).unwrap_or(false);
    for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        ensure!(
            sendable(code),
            "close code {code} is reported as not sendable"
        );
    }
    for code in [1004, 1005, 1006, 1015, 1016, 2999] {
        ensure!(!sendable(code), "close code {code} is reported as sendable");
    }
    let long = "é".repeat(62); // 124 bytes
    ensure!(
        matches!(
            CloseFrame::new(CloseCode::NORMAL, rgi::ws::Utf8Bytes::from(long.clone())),
            Err(WsError::CloseReasonTooLong(124))
        ),
        "a 124-byte close reason was accepted"
    );
    let max = "a".repeat(CloseFrame::MAX_REASON_LEN);
    ensure!(
        CloseFrame::new(CloseCode::NORMAL, rgi::ws::Utf8Bytes::from(max)).is_ok(),
        "a 123-byte close reason was refused"
    );
    for code in [CloseCode::NO_STATUS, CloseCode::ABNORMAL] {
        let transport = Scripted::default();
        let mut socket = WebSocket::new(transport.clone());
        let frame = CloseFrame::new(code, "x").map_err(|e| e.to_string())?;
        let result = socket.close(Some(frame)).await;
        ensure!(result.is_err(), "closing with {} succeeded", code.as_u16());
        ensure!(
            transport.sent().is_empty(),
            "a close with code {} reached the transport",
            code.as_u16()
        );
    }
    Ok(())
}

/// WS-FLOW-5: the halves of a split session receive in order, send in order, deliver the close
/// once followed by `None`, and refuse sends after a close either way.
async fn split_halves() -> Result<(), String> {
    let peer_close = CloseFrame::new(CloseCode::NORMAL, "bye").map_err(|e| e.to_string())?;
    let transport = Scripted::with_inbound([
        Message::text("one"),
        Message::binary(Bytes::from_static(b"two")),
        Message::Close(Some(peer_close.clone())),
        Message::text("after the close"),
    ]);
    let (mut receiver, mut sender) = WebSocket::new(transport.clone()).split();
    sender
        .send(Message::text("a"))
        .await
        .map_err(|e| format!("send on the sender half: {e}"))?;
    sender
        .send(Message::text("b"))
        .await
        .map_err(|e| format!("send on the sender half: {e}"))?;
    let mut received = Vec::new();
    while let Some(item) = receiver.recv().await {
        received.push(item.map_err(|e| format!("recv on the receiver half: {e}"))?);
        ensure!(received.len() <= 4, "recv kept yielding: {received:?}");
    }
    let expected = [
        Message::text("one"),
        Message::binary(Bytes::from_static(b"two")),
        Message::Close(Some(peer_close)),
    ];
    ensure!(
        received == expected,
        "the receiver half yielded {received:?}; expected the messages, then the close once"
    );
    ensure!(
        receiver.recv().await.is_none(),
        "recv yielded again after None"
    );
    let after = sender.send(Message::text("late")).await;
    ensure!(
        matches!(after, Err(WsError::Closed)),
        "send after the peer's close gave {after:?}"
    );
    ensure!(
        transport.sent() == [Message::text("a"), Message::text("b")],
        "the transport got {:?}",
        transport.sent()
    );

    // Closing from the sender half: later sends fail, the close went out once.
    let transport = Scripted::default();
    let (_receiver, mut sender) = WebSocket::new(transport.clone()).split();
    sender
        .close(None)
        .await
        .map_err(|e| format!("close on the sender half: {e}"))?;
    let after = sender.send(Message::text("late")).await;
    ensure!(
        matches!(after, Err(WsError::Closed)),
        "send after our own close gave {after:?}"
    );
    let again = sender.close(None).await;
    ensure!(again.is_err(), "a second close succeeded");
    ensure!(
        transport.sent() == [Message::Close(None)],
        "the transport got {:?}",
        transport.sent()
    );
    Ok(())
}

async fn noop_upgrade(_io: rgi::upgrade::Upgraded) -> Result<(), BoxError> {
    Ok(())
}

/// UPGRADE-RAW-2: `accept` refuses protocols the client did not ask for, compares names
/// case-insensitively, and leaves the marker only on success.
async fn upgrade_not_offered() -> Result<(), String> {
    let offer = || OnUpgrade::new(Version::HTTP_11, vec!["Probe-Echo".to_owned()]);
    let refused = offer().accept::<Body, _, _>("other", noop_upgrade);
    ensure!(
        matches!(refused, Err(UpgradeError::NotOffered(ref p)) if p == "other"),
        "accepting a protocol nobody asked for gave {:?}",
        refused.map(|r| r.status())
    );
    let accepted = offer()
        .accept::<Body, _, _>("probe-echo", noop_upgrade)
        .map_err(|e| format!("a requested protocol (other case) was refused: {e}"))?;
    ensure!(
        accepted.status() == StatusCode::SWITCHING_PROTOCOLS,
        "HTTP/1.1 accept gave status {}",
        accepted.status()
    );
    ensure!(
        accepted
            .extensions()
            .get::<UpgradeAccepted>()
            .is_some_and(|m| m.protocol().eq_ignore_ascii_case("probe-echo")),
        "the accepted response carries no marker for the protocol"
    );
    let h2 = OnUpgrade::new(Version::HTTP_2, vec!["probe-echo".to_owned()])
        .accept::<Body, _, _>("probe-echo", noop_upgrade)
        .map_err(|e| e.to_string())?;
    ensure!(
        h2.status() == StatusCode::OK,
        "HTTP/2 accept gave status {}",
        h2.status()
    );
    Ok(())
}

/// EXT-CAP-3: a missing extension is a typed error naming the type; the feature APIs report
/// refusal as typed errors, never as success without effect.
async fn typed_errors() -> Result<(), String> {
    let extensions = http::Extensions::new();
    match rgi::ext::require::<rgi::ext::EarlyHints>(&extensions) {
        Ok(_) => return Err("require found EarlyHints in empty extensions".into()),
        Err(missing) => ensure!(
            missing.type_name().contains("EarlyHints"),
            "MissingExtension names {:?}",
            missing.type_name()
        ),
    }
    let mut present = http::Extensions::new();
    present.insert(ws_offer(&["p"]));
    ensure!(
        rgi::ext::require::<WebSocketUpgrade>(&present).is_ok(),
        "require missed a present extension"
    );
    // A closed session: sending fails with a WsError instead of succeeding silently.
    let transport = Scripted::with_inbound([Message::Close(None)]);
    let mut socket = WebSocket::new(transport.clone());
    let _ = socket.recv().await;
    let send = socket.send(Message::text("x")).await;
    ensure!(
        send.is_err(),
        "send on a closed session succeeded without effect"
    );
    ensure!(
        transport.sent().is_empty(),
        "the closed session sent anyway"
    );
    Ok(())
}

/// Requirements the compiler enforces, checked when the suite is built: a `rgi` crate that broke
/// them would not compile with these items.
pub mod compile_time {
    use std::future::Future;

    use http::Response;
    use rgi::{App, Request};

    /// HTTP-RESP-1: `App::call` yields exactly one `http::Response` (the final head), whose body
    /// follows it: the signature admits neither a second head nor body data before the head.
    pub fn one_final_head<A: App>(
        app: &A,
        req: Request,
    ) -> impl Future<Output = Result<Response<A::Body>, A::Error>> + Send + '_ {
        app.call(req)
    }

    /// CORE-VER-6: a `match` on a `#[non_exhaustive]` enum of `rgi` needs its wildcard arm
    /// here (outside the `rgi` crate), so a variant added by a later minor version lands in it.
    pub fn outcome_name(outcome: rgi::Outcome) -> &'static str {
        match outcome {
            rgi::Outcome::Completed => "completed",
            rgi::Outcome::ClientGone => "client-gone",
            rgi::Outcome::Aborted => "aborted",
            _ => "unknown",
        }
    }
}

/// CORE-VER-6: the suite handles the `#[non_exhaustive]` types of the `rgi` crate it is built
/// with the way the compiler demands of every crate outside `rgi` (wildcard arms, see
/// [`compile_time::outcome_name`]; `rgi`'s own `compile_fail` doc tests show that a match
/// without one does not build). At run time every known value gets its name, and the names
/// the manifest format relies on round-trip.
async fn tolerate_additions() -> Result<(), String> {
    for (outcome, name) in [
        (rgi::Outcome::Completed, "completed"),
        (rgi::Outcome::ClientGone, "client-gone"),
        (rgi::Outcome::Aborted, "aborted"),
    ] {
        ensure!(
            compile_time::outcome_name(outcome) == name,
            "{outcome:?} named {}",
            compile_time::outcome_name(outcome)
        );
    }
    for capability in rgi::Capability::ALL {
        ensure!(
            rgi::Capability::from_name(capability.name()) == Some(capability),
            "{capability:?} does not round-trip through its name"
        );
    }
    Ok(())
}

/// HTTP-RESP-1: the call's output is one `Response` (see [`compile_time::one_final_head`]);
/// at run time, one call of an app through it yields one head.
async fn one_final_head() -> Result<(), String> {
    let response = compile_time::one_final_head(&Recorder::default(), request("/ok"))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        response.status() == StatusCode::ACCEPTED,
        "status {}",
        response.status()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_interface_case_passes_against_the_rgi_crate() {
        let report = run().await;
        assert!(report.is_success(), "{}", report.to_text());
        assert_eq!(report.results().len(), INTERFACE_CASES.len());
    }

    #[test]
    fn every_interface_case_cites_requirements_of_the_spec() {
        let defined: std::collections::HashSet<String> =
            crate::spec::requirements(crate::spec::SPEC_TEXT)
                .into_iter()
                .map(|r| r.id)
                .collect();
        for (name, ids) in cases() {
            for id in ids {
                assert!(defined.contains(*id), "{name} cites undefined {id}");
            }
        }
    }
}
