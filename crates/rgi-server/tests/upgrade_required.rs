//! `426 Upgrade Required` keeps the application's `upgrade` field (RFC 9110 §15.5.22), while
//! every other response still loses it.

mod common;

use std::convert::Infallible;

use http::{HeaderValue, Response, StatusCode, header};
use rgi::{App, Body};

use common::{config, request, send_h1, send_h2, start, stop};

/// Answers `/426` with `426` and `/400` with `400`, both with `upgrade: HTTP/3.0` and
/// `connection: upgrade`.
struct UpgradeRequired;

impl App for UpgradeRequired {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, req: rgi::Request) -> Result<Response<Body>, Infallible> {
        let status = if req.uri().path() == "/426" {
            StatusCode::UPGRADE_REQUIRED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut response = Response::new(Body::from("switch protocols"));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("HTTP/3.0"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        Ok(response)
    }
}

/// HTTP-RESP-5, HTTP-RESP-6: on a `426` the server keeps the application's `upgrade` (with
/// the `upgrade` connection option); on any other status it removes it; on HTTP/2, where
/// connection-specific fields do not exist, neither is sent.
#[tokio::test]
async fn upgrade_is_kept_only_on_426() {
    let server = start(config(), UpgradeRequired).await;
    let addr = server.local_addrs()[0];

    let reply = send_h1(addr, request("GET", "/426", b"")).await;
    assert_eq!(reply.status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(reply.text(), "switch protocols");
    let upgrades: Vec<_> = reply.headers.get_all(header::UPGRADE).iter().collect();
    assert_eq!(upgrades, [HeaderValue::from_static("HTTP/3.0")]);
    let connection = reply
        .headers
        .get(header::CONNECTION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(connection.contains("upgrade"), "connection: {connection}");

    let reply = send_h1(addr, request("GET", "/400", b"")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.headers.get(header::UPGRADE).is_none());
    let connection = reply
        .headers
        .get(header::CONNECTION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(!connection.contains("upgrade"), "connection: {connection}");

    let reply = send_h2(addr, request("GET", "/426", b"")).await;
    assert_eq!(reply.status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(reply.text(), "switch protocols");
    assert!(reply.headers.get(header::UPGRADE).is_none());
    assert!(reply.headers.get(header::CONNECTION).is_none());

    stop(server).await;
}
