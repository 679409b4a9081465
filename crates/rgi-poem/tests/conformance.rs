//! The conformance suite's application mode on `PoemApp`: every case runs through rgi-test's
//! `TestClient` with `Lint` in strict mode.

use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use poem::{Body, Response, Route, get, handler, post};
use rgi_conformance::app::{AppTarget, CASES, check};
use rgi_poem::PoemApp;

#[handler]
fn hello() -> &'static str {
    "Hello, World!"
}

#[handler]
async fn echo(body: Body) -> poem::Result<Vec<u8>> {
    // Reads the body whole, so that body failures reach the adapter's error mapping.
    Ok(body.into_vec().await?)
}

#[handler]
fn stream_echo(body: Body) -> Body {
    body
}

#[handler]
fn no_content() -> Response {
    // The stray body is the adapter's to drop (HTTP-FRAME-8).
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body("stray")
}

#[handler]
fn abandoned() -> Body {
    Body::from_bytes_stream(stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("the producer went away")),
    ]))
}

fn route() -> Route {
    Route::new()
        .at("/", get(hello))
        .at("/echo", post(echo))
        .at("/stream-echo", post(stream_echo))
        .at("/no-content", get(no_content))
        .at("/abandoned", get(abandoned))
}

/// The cases that need what poem cannot do through this adapter (early hints, WebSocket and
/// raw upgrades through the RGI accept APIs, and the accept-marker check that needs one of
/// them): they are skipped.
const UNSUPPORTED: usize = 4;

fn target(post: &str) -> AppTarget {
    AppTarget::new("/", post)
        .no_content("/no-content")
        .abandoned_producer("/abandoned")
}

/// LIFE-START-3, LIFE-SHUT-1, HTTP-FRAME-8, HTTP-FRAME-10, HTTP-RESP-2, HTTP-RESP-5, HTTP-RESP-12, HTTP-TRAIL-7,
/// HTTP-FRAME-6, HTTP-BODY-9, CORE-APP-2, HTTP-TRAIL-1, CORE-ERR-9, CORE-CANCEL-5: a poem
/// route that reads the request body whole passes every application-mode case.
#[tokio::test]
async fn poem_app_passes_application_mode() {
    let report = check(|| PoemApp::new(route()), &target("/echo")).await;
    assert!(report.is_success(), "{}", report.to_text());
    assert_eq!(
        report.counts(),
        (CASES.len() - UNSUPPORTED, 0, UNSUPPORTED),
        "{}",
        report.to_text()
    );
}

/// The same cases with a route that streams the request body straight back (poem never reads
/// it; the adapter and the server move the bytes): HTTP-FRAME-8, HTTP-FRAME-10, HTTP-BODY-9, CORE-CANCEL-5, HTTP-TRAIL-1.
#[tokio::test]
async fn streaming_poem_app_passes_application_mode() {
    let report = check(|| PoemApp::new(route()), &target("/stream-echo")).await;
    assert_eq!(
        report.counts(),
        (CASES.len() - UNSUPPORTED, 0, UNSUPPORTED),
        "{}",
        report.to_text()
    );
}
