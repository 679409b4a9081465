//! Application mode against real applications: the suite's own probe, and an axum router
//! through the tower → RGI adapter (issue: "axum through the tower→RGI adapter in application
//! mode").

use axum::Router;
use axum::routing::{get, post};
use rgi_conformance::app::{AppTarget, CASES, check};
use rgi_conformance::probe::Probe;
use rgi_conformance::report::Outcome;
use rgi_tower::TowerApp;

/// The probe with every optional route named: `GET /status?code=200` (an empty body, so that
/// its `HEAD` carries none either; the probe's other routes send body data for `HEAD` on
/// purpose, for the server to drop).
fn probe_target() -> AppTarget {
    AppTarget::new("/status?code=200", "/echo")
        .no_content("/status?code=204")
        .early_hints("/early-hints")
        .abandoned_producer("/fail-after-head")
        .websocket("/ws")
        .upgrade("/upgrade", "probe-echo")
}

/// LIFE-START-3, LIFE-SHUT-1, HTTP-RESP-2, HTTP-RESP-4, HTTP-RESP-5, HTTP-RESP-12, HTTP-TRAIL-7,
/// HTTP-FRAME-6, HTTP-FRAME-8, HTTP-FRAME-10, HTTP-BODY-9, HTTP-TRAIL-1, HTTP-INTERIM-6,
/// WS-HS-2, WS-HS-7, WS-HS-10, UPGRADE-RAW-7, EXT-NS-1: every application-mode case passes
/// against the probe application, and none is skipped.
#[tokio::test]
async fn the_probe_passes_application_mode() {
    let report = check(Probe::new, &probe_target()).await;
    println!("{}", report.to_text());
    assert!(
        report.is_success(),
        "failed requirements: {:?}",
        report.failed_ids()
    );
    assert_eq!(report.counts(), (CASES.len(), 0, 0), "{}", report.to_text());
}

/// Cases whose route the target does not name are skipped, never passed.
#[tokio::test]
async fn cases_without_a_route_are_skipped() {
    let report = check(Probe::new, &AppTarget::new("/status?code=200", "/echo")).await;
    let skipped: Vec<&str> = report
        .results()
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
        .map(|r| r.name)
        .collect();
    assert_eq!(skipped.len(), 6, "{}", report.to_text());
    assert!(report.is_success(), "{}", report.to_text());
}

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
}

/// CORE-APP-1, HTTP-RESP-5: axum served through `TowerApp` passes application mode.
#[tokio::test]
async fn axum_through_the_adapter_passes_application_mode() {
    let report = check(|| TowerApp::new(router()), &AppTarget::new("/", "/echo")).await;
    println!("{}", report.to_text());
    assert!(
        report.is_success(),
        "failed requirements: {:?}",
        report.failed_ids()
    );
}

/// An application that sets a connection-specific field and a wrong `content-length`.
struct Faulty;

impl rgi::App for Faulty {
    type Body = rgi::Body;
    type Error = std::convert::Infallible;

    async fn call(
        &self,
        _req: rgi::Request,
    ) -> Result<http::Response<rgi::Body>, std::convert::Infallible> {
        let mut response = http::Response::new(rgi::Body::from("four"));
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("9"),
        );
        Ok(response)
    }
}

/// HTTP-RESP-5, HTTP-RESP-12: application mode catches an application that breaks them, and
/// names the requirements.
#[tokio::test]
async fn a_faulty_application_is_caught_with_its_ids() {
    let report = check(|| Faulty, &AppTarget::new("/", "/")).await;
    assert!(!report.is_success(), "{}", report.to_text());
    let failed = report.failed_ids();
    assert!(failed.contains(&"HTTP-RESP-5"), "{failed:?}");
    assert!(failed.contains(&"HTTP-RESP-12"), "{failed:?}");
    let text = report.to_text();
    assert!(
        text.contains("FAIL app: GET answered within the rules"),
        "{text}"
    );
}
