//! Proof of strength, application side: application mode (and middleware mode) run against
//! applications with one seeded fault each, and must fail with the requirement ID the fault
//! breaks. The control tests run the same application and middleware without a fault: every
//! case passes, none is skipped.

#[path = "faulty/apps.rs"]
mod faulty;

use faulty::{AppFault, FaultyApp, FaultyMiddleware, MiddlewareFault, target};
use rgi_conformance::app::{
    CASES, Inner, MIDDLEWARE_CASES, MiddlewareTarget, check, check_middleware,
};
use rgi_conformance::report::{Outcome, Report};

fn assert_caught(report: &Report, id: &str) {
    assert!(
        !report.is_success(),
        "application mode passed a faulty application:\n{}",
        report.to_text()
    );
    let caught = report
        .results()
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed(_)) && r.ids.contains(&id));
    assert!(
        caught,
        "no failed case cites {id}; failed: {:?}\n{}",
        report.failed_ids(),
        report.to_text()
    );
}

async fn app(fault: AppFault, id: &str) {
    let report = check(move || FaultyApp(fault), &target()).await;
    assert_caught(&report, id);
}

async fn middleware(fault: MiddlewareFault, id: &str) {
    let report = check_middleware(
        move |inner: Inner| FaultyMiddleware { inner, fault },
        &MiddlewareTarget::new("/api/x"),
    )
    .await;
    assert_caught(&report, id);
}

/// Control: the application without a fault passes every case, none skipped (so every case the
/// faults below target really ran).
#[tokio::test]
async fn control_the_application_without_a_fault_passes_every_case() {
    let report = check(|| FaultyApp(AppFault::None), &target()).await;
    assert!(report.is_success(), "{}", report.to_text());
    assert_eq!(report.counts(), (CASES.len(), 0, 0), "{}", report.to_text());
}

/// Control: the middleware without a fault passes every middleware case, with the inner
/// application started (Lifespan) or built (App).
#[tokio::test]
async fn control_the_middleware_without_a_fault_passes_every_case() {
    let target = MiddlewareTarget::new("/api/x");
    let started = check_middleware(
        |inner: Inner| FaultyMiddleware {
            inner,
            fault: MiddlewareFault::None,
        },
        &target,
    )
    .await;
    assert_eq!(
        started.counts(),
        (MIDDLEWARE_CASES.len(), 0, 0),
        "{}",
        started.to_text()
    );
    let built = check_middleware(
        |inner: Inner| FaultyMiddleware {
            inner: inner.into_app(),
            fault: MiddlewareFault::None,
        },
        &target,
    )
    .await;
    assert_eq!(
        built.counts(),
        (MIDDLEWARE_CASES.len(), 0, 0),
        "{}",
        built.to_text()
    );
}

/// HTTP-FRAME-6: an application that sends a body on `HEAD`.
#[tokio::test]
async fn sends_a_body_on_head() {
    app(AppFault::BodyOnHead, "HTTP-FRAME-6").await;
}

/// HTTP-FRAME-8: an application that sends body data in a `204`.
#[tokio::test]
async fn sends_a_body_in_a_204() {
    app(AppFault::BodyOn204, "HTTP-FRAME-8").await;
}

/// HTTP-RESP-12: an application whose `content-length` does not match its body.
#[tokio::test]
async fn declares_a_wrong_content_length() {
    app(AppFault::WrongContentLength, "HTTP-RESP-12").await;
}

/// HTTP-RESP-5: an application that sets `transfer-encoding` itself.
#[tokio::test]
async fn sets_a_connection_specific_field() {
    app(AppFault::ConnectionSpecificField, "HTTP-RESP-5").await;
}

/// HTTP-TRAIL-7: an application that puts `content-length` in its trailers.
#[tokio::test]
async fn puts_a_forbidden_field_in_trailers() {
    app(AppFault::ForbiddenTrailer, "HTTP-TRAIL-7").await;
}

/// HTTP-INTERIM-6: an application that sends `connection` in early hints.
#[tokio::test]
async fn sends_connection_in_early_hints() {
    app(AppFault::ConnectionFieldInEarlyHints, "HTTP-INTERIM-6").await;
}

/// HTTP-FRAME-10: an application whose abandoned producer ends the body cleanly.
#[tokio::test]
async fn ends_an_abandoned_body_cleanly() {
    app(AppFault::AbandonedProducerEndsCleanly, "HTTP-FRAME-10").await;
}

/// WS-HS-10: an application that sets `sec-websocket-accept` by hand.
#[tokio::test]
async fn sets_sec_websocket_accept_by_hand() {
    app(AppFault::HandSetWebSocketAccept, "WS-HS-10").await;
}

/// WS-HS-7: an application that changes the status of an accepted handshake.
#[tokio::test]
async fn changes_the_status_of_an_accepted_handshake() {
    app(AppFault::WebSocketStatusChanged, "WS-HS-7").await;
}

/// WS-HS-2: an application that accepts a WebSocket subprotocol nobody offered.
#[tokio::test]
async fn accepts_a_subprotocol_nobody_offered() {
    app(AppFault::SubprotocolNobodyOffered, "WS-HS-2").await;
}

/// UPGRADE-RAW-7: an application that changes the status of an accepted upgrade.
#[tokio::test]
async fn changes_the_status_of_an_accepted_upgrade() {
    app(AppFault::UpgradeStatusChanged, "UPGRADE-RAW-7").await;
}

/// EXT-NS-1: an application that returns an accept marker to a plain `GET`.
#[tokio::test]
async fn returns_an_accept_marker_without_an_offer() {
    app(AppFault::MarkerWithoutOffer, "EXT-NS-1").await;
}

/// HTTP-BODY-9: an application that answers `200` though the request body failed.
#[tokio::test]
async fn answers_success_after_the_body_failed() {
    app(AppFault::SuccessAfterBodyFailure, "HTTP-BODY-9").await;
}

/// EXT-CAP-4: a middleware that drops the extensions it does not know.
#[tokio::test]
async fn middleware_drops_unknown_extensions() {
    middleware(MiddlewareFault::DropsUnknownExtensions, "EXT-CAP-4").await;
}

/// EXT-CAP-5: a middleware that swallows early hints without withdrawing them.
#[tokio::test]
async fn middleware_swallows_early_hints() {
    middleware(MiddlewareFault::SwallowsEarlyHints, "EXT-CAP-5").await;
}

/// EXT-CAP-5: a middleware that drops response trailers without withdrawing the capability.
#[tokio::test]
async fn middleware_drops_response_trailers() {
    middleware(MiddlewareFault::DropsResponseTrailers, "EXT-CAP-5").await;
}

/// HTTP-PATH-10: a middleware that mounts by rewriting the URI, breaking the mount invariant.
#[tokio::test]
async fn middleware_breaks_the_mount_invariant() {
    middleware(MiddlewareFault::MountsByRewritingTheUri, "HTTP-PATH-10").await;
}
