//! Proof of strength, server side: the server-mode suite runs against rgi-server with one
//! seeded fault at a time, and must fail with the requirement ID the fault breaks. Each fault
//! runs the cases that cite that ID (all of them would take minutes per fault); the two control
//! tests run the whole suite.
//!
//! The faults live in `tests/faulty/servers.rs`: a wrapper around the probe that changes what
//! crosses the interface as a faulty server would, a TCP proxy that corrupts the wire, or a
//! configuration that makes rgi-server misbehave. The two control tests run the wrapper and the
//! proxy without a fault and show that none of the targeted cases fails because of the harness.

#[path = "faulty/servers.rs"]
mod faulty;

use faulty::{FaultyProbe, WireFault, WrapperFault, assert_caught, failed_cases_citing, run_suite};
use rgi::MountPrefix;
use rgi_conformance::probe::Probe;
use rgi_server::Config;

async fn wrapper(fault: WrapperFault, id: &str) {
    let report = run_suite(
        Config::default(),
        FaultyProbe::new(fault),
        WireFault::None,
        Some(id),
    )
    .await;
    assert_caught(&report, id);
}

async fn wire(fault: WireFault, id: &str) {
    let report = run_suite(Config::default(), Probe::new(), fault, Some(id)).await;
    assert_caught(&report, id);
}

/// The IDs the wrapper faults below are caught by.
const WRAPPER_TARGETS: &[&str] = &[
    "HTTP-TRAIL-2",
    "HTTP-CONN-2",
    "HTTP-BODY-3",
    "HTTP-DISC-2",
    "HTTP-PATH-6",
    "HTTP-REQ-1",
    "HTTP-PATH-1",
    "HTTP-REQ-5",
    "HTTP-REQ-2",
    "HTTP-CONN-6",
    "HTTP-TRAIL-4",
    "CORE-ERR-3",
    "CORE-ERR-2",
    "CORE-ERR-4",
    "WS-HS-5",
];

/// The IDs the wire faults below are caught by.
const WIRE_TARGETS: &[&str] = &[
    "HTTP-INTERIM-1",
    "HTTP-FRAME-5",
    "HTTP-RESP-8",
    "HTTP-TRAIL-4",
    "WS-HS-5",
    "HTTP-INTERIM-3",
    "HTTP-RESP-6",
];

/// Control: the wrapper without a fault fails none of the cases the wrapper faults target
/// (HTTP-TRAIL-2, HTTP-CONN-2, HTTP-BODY-3, HTTP-DISC-2, HTTP-PATH-6, HTTP-REQ-1, HTTP-PATH-1,
/// HTTP-REQ-5, HTTP-REQ-2, HTTP-CONN-6, HTTP-TRAIL-4, CORE-ERR-3, CORE-ERR-2, CORE-ERR-4, WS-HS-5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_the_wrapper_without_a_fault_fails_no_targeted_case() {
    let report = run_suite(
        Config::default(),
        FaultyProbe::new(WrapperFault::None),
        WireFault::None,
        None,
    )
    .await;
    for id in WRAPPER_TARGETS {
        let failed = failed_cases_citing(&report, id);
        assert!(failed.is_empty(), "{id}: {failed:?}\n{}", report.to_text());
    }
}

/// Control: a proxy that changes nothing fails none of the cases the wire faults target
/// (HTTP-INTERIM-1, HTTP-FRAME-5, HTTP-RESP-8, HTTP-TRAIL-4, WS-HS-5, HTTP-INTERIM-3,
/// HTTP-RESP-6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_a_transparent_proxy_fails_no_targeted_case() {
    let report = run_suite(
        Config::default(),
        Probe::new(),
        WireFault::Transparent,
        None,
    )
    .await;
    for id in WIRE_TARGETS {
        let failed = failed_cases_citing(&report, id);
        assert!(failed.is_empty(), "{id}: {failed:?}\n{}", report.to_text());
    }
}

/// HTTP-TRAIL-2: a server that drops request trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_request_trailers() {
    wrapper(WrapperFault::DropRequestTrailers, "HTTP-TRAIL-2").await;
}

/// HTTP-CONN-2: a server that lies about the client address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_about_the_client_address() {
    wrapper(WrapperFault::LieAboutClientAddress, "HTTP-CONN-2").await;
}

/// HTTP-BODY-3: a server that loses the last chunk of a request body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loses_the_last_request_chunk() {
    wrapper(WrapperFault::LoseLastRequestChunk, "HTTP-BODY-3").await;
}

/// HTTP-DISC-2: a server that reports a disconnect for a completed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_disconnect_for_a_completed_request() {
    wrapper(WrapperFault::ReportCompletedAsGone, "HTTP-DISC-2").await;
}

/// HTTP-PATH-6: a server that inserts a `MountPrefix` nobody configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invents_a_mount_prefix() {
    wrapper(WrapperFault::InventMountPrefix, "HTTP-PATH-6").await;
}

/// HTTP-REQ-1: a server that upper-cases the method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalises_the_method() {
    wrapper(WrapperFault::NormaliseMethod, "HTTP-REQ-1").await;
}

/// HTTP-PATH-1: a server that percent-decodes the request target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decodes_the_request_target() {
    wrapper(WrapperFault::DecodeTarget, "HTTP-PATH-1").await;
}

/// HTTP-REQ-5: a server that merges repeated header fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_repeated_header_fields() {
    wrapper(WrapperFault::MergeRepeatedFields, "HTTP-REQ-5").await;
}

/// HTTP-REQ-2: a server that reports HTTP/1.0 requests as HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_http10_as_http11() {
    wrapper(WrapperFault::ReportHttp10AsHttp11, "HTTP-REQ-2").await;
}

/// HTTP-CONN-6: a server that gives every request a new connection id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connection_id_per_request() {
    wrapper(WrapperFault::NewConnectionIdPerRequest, "HTTP-CONN-6").await;
}

/// HTTP-TRAIL-4: a server that drops the app's response trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_response_trailers() {
    wrapper(WrapperFault::DropResponseTrailers, "HTTP-TRAIL-4").await;
}

/// CORE-ERR-3: a server that ends a response cleanly when its body fails after the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ends_a_failed_response_cleanly() {
    wrapper(WrapperFault::EndResponseOnError, "CORE-ERR-3").await;
}

/// CORE-ERR-2: a server whose `500` leaks the application's error message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaks_error_details() {
    wrapper(WrapperFault::LeakErrorDetails, "CORE-ERR-2").await;
}

/// CORE-ERR-4: a server that answers `500` to a body over the limit instead of `413`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignores_the_status_of_a_body_error() {
    wrapper(WrapperFault::IgnoreBodyErrorStatus, "CORE-ERR-4").await;
}

/// WS-HS-5: a server that accepts a WebSocket subprotocol nobody offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_a_subprotocol_nobody_offered() {
    wrapper(WrapperFault::OfferSubprotocolNobodyOffered, "WS-HS-5").await;
}

/// HTTP-INTERIM-1: a server that forgets `100 Continue`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgets_100_continue() {
    wire(WireFault::DropContinue, "HTTP-INTERIM-1").await;
}

/// HTTP-FRAME-5: a server that sends a body on `HEAD`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_body_on_head() {
    wire(WireFault::BodyOnHead, "HTTP-FRAME-5").await;
}

/// HTTP-RESP-8: a server that sends no `date`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_no_date() {
    wire(WireFault::DropDate, "HTTP-RESP-8").await;
}

/// HTTP-TRAIL-4: a server that strips response trailers on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strips_response_trailers_on_the_wire() {
    wire(WireFault::StripTrailers, "HTTP-TRAIL-4").await;
}

/// WS-HS-5: a server whose `101` selects a subprotocol nobody offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selects_a_subprotocol_in_the_101() {
    wire(WireFault::SubprotocolIn101, "WS-HS-5").await;
}

/// HTTP-INTERIM-3: a server that sends a `1xx` to an HTTP/1.0 client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_interim_responses_to_http10() {
    wire(WireFault::InterimToHttp10, "HTTP-INTERIM-3").await;
}

/// HTTP-RESP-6: a server that forwards a connection-specific field (`keep-alive`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_keep_alive() {
    wire(WireFault::ForwardKeepAlive, "HTTP-RESP-6").await;
}

/// HTTP-PATH-6: rgi-server configured with a root path the deployment did not ask for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_with_a_stray_root_path() {
    let mut config = Config::default();
    config.root_path = Some(MountPrefix::new("/stray").expect("a valid prefix"));
    let report = run_suite(config, Probe::new(), WireFault::None, Some("HTTP-PATH-6")).await;
    assert_caught(&report, "HTTP-PATH-6");
}

/// HTTP-CONN-2: rgi-server trusting `X-Forwarded-For` from any peer, so a client can lie about
/// its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusts_forwarded_headers_from_anyone() {
    let mut config = Config::default();
    config.proxy_headers = true;
    let report = run_suite(config, Probe::new(), WireFault::None, Some("HTTP-CONN-2")).await;
    assert_caught(&report, "HTTP-CONN-2");
}
