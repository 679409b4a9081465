//! The `hello` example, tested in-process with rgi-test's TestClient, behind a Lint.

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, Version, header};
use rgi_examples::hello::{Hello, TRAILER_CHUNKS, checksum};
use rgi_test::{Lint, LintMode, LintReport, TestClient};

fn client() -> (TestClient<Lint<Hello>>, LintReport) {
    let lint = Lint::new(Hello).mode(LintMode::Strict);
    let report = lint.report();
    (TestClient::new(lint), report)
}

/// HTTP-RESP-1, HTTP-RESP-5: `GET /` is `200 text/plain` `Hello, World!`, with no violation.
#[tokio::test]
async fn get_root() {
    let (client, report) = client();
    let mut response = client.get("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.header(header::CONTENT_TYPE),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text().await.unwrap(), "Hello, World!");
    report.assert_clean();
}

/// HTTP-BODY-13, HTTP-BODY-7: `POST /echo` streams back a content-length body and, with a
/// server limit above the default 16 MiB, a 20 MiB chunked body, with the content-type echoed.
#[tokio::test]
async fn echo_streams_any_size() {
    let (client, report) = client();
    let mut fixed = client
        .post("/echo")
        .header(header::CONTENT_TYPE, "application/x-test")
        .body("ping")
        .send()
        .await;
    assert_eq!(
        fixed.header(header::CONTENT_TYPE),
        Some("application/x-test")
    );
    assert_eq!(fixed.text().await.unwrap(), "ping");
    let unlimited = client.clone().body_limit(Some(64 << 20));
    let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
    let chunks = vec![chunk; 320];
    let mut big = unlimited.post("/echo").chunks(chunks).send().await;
    assert_eq!(big.status(), StatusCode::OK);
    assert_eq!(big.bytes().await.unwrap().len(), 20 * 1024 * 1024);
    report.assert_clean();
}

/// HTTP-BODY-7, CORE-ERR-4, CORE-ERR-3: over the server's limit, a declared length gets 413
/// and a chunked body makes the echo abort.
#[tokio::test]
async fn echo_over_the_limit() {
    let (client, _report) = client();
    let client = client.body_limit(Some(8));
    let declared = client.post("/echo").body("0123456789").send().await;
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut chunked = client.post("/echo").chunks(["01234", "56789"]).send().await;
    assert_eq!(chunked.status(), StatusCode::OK);
    assert!(chunked.bytes().await.is_err());
}

/// HTTP-BODY-1: a slow client's chunks are echoed in order.
#[tokio::test]
async fn echo_with_pauses() {
    let (client, _report) = client();
    let mut response = client
        .post("/echo")
        .chunks(["a", "b", "c"])
        .chunk_delay(Duration::from_millis(2))
        .send()
        .await;
    assert_eq!(response.text().await.unwrap(), "abc");
}

/// HTTP-FRAME-12: `/stream?bytes=N` streams exactly N bytes in chunks; bad N is 400.
#[tokio::test]
async fn stream_n_bytes() {
    let (client, report) = client();
    let mut response = client.get("/stream?bytes=200000").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut total = 0;
    let mut frames = 0;
    while let Some(frame) = response.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(data.iter().all(|b| *b == b'x'));
        total += data.len();
        frames += 1;
    }
    assert_eq!(total, 200_000);
    assert!(frames > 1);
    assert_eq!(
        client.get("/stream?bytes=nope").send().await.status(),
        StatusCode::BAD_REQUEST
    );
    report.assert_clean();
}

/// HTTP-TRAIL-4, HTTP-TRAIL-10: `/trailers` sends its chunks then announced trailers, over
/// HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn trailers_after_the_body() {
    let (client, report) = client();
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let mut response = client.get("/trailers").version(version).send().await;
        let body = response.bytes().await.unwrap();
        assert_eq!(body, TRAILER_CHUNKS.concat());
        let trailers = response.trailers().unwrap();
        assert_eq!(trailers["x-checksum"], checksum(&body).to_string().as_str());
        assert_eq!(trailers["x-chunks"], "3");
    }
    report.assert_clean();
}

/// HTTP-FRAME-5: `HEAD /` has the headers of `GET /` and no body.
#[tokio::test]
async fn head_root() {
    let client = TestClient::new(Hello);
    let mut response = client.head("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), "");
}

/// HTTP-RESP-2: unknown paths are 404; a known path with another method is 405 with `allow`.
#[tokio::test]
async fn not_found_and_method_not_allowed() {
    let (client, report) = client();
    assert_eq!(
        client.get("/nope").send().await.status(),
        StatusCode::NOT_FOUND
    );
    let response = client.post("/").body("ignored").send().await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    report.assert_clean();
}
