//! Requests and responses over real sockets: metadata, bodies, trailers, framing, failures.

mod common;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::*;
use http::{StatusCode, Version};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// HTTP-REQ-1, HTTP-REQ-2, HTTP-REQ-5, HTTP-PATH-1, HTTP-PATH-3, HTTP-CONN-1, HTTP-DISC-1,
/// HTTP-BODY-7: method (extension methods too), raw target, version, repeated headers in
/// order, connection info, the disconnect signal and the default body limit reach the app.
#[tokio::test]
async fn request_metadata_reaches_the_app_over_http1() {
    let (server, _probe) = start_probe(config().max_body_bytes(Some(1234))).await;
    let addr = server.local_addrs()[0];
    let request = b"PURGE /meta?q=a%20b&x=%2F HTTP/1.1\r\nHost: test.invalid\r\nX-Dup: one\r\nX-Dup: two\r\nConnection: close\r\n\r\n";
    let reply = raw(addr, request).await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(status_of(&reply), Some(200), "{text}");
    assert!(text.contains("method: PURGE"), "{text}");
    assert!(text.contains("uri: /meta?q=a%20b&x=%2F"), "{text}");
    assert!(text.contains("version: HTTP/1.1"), "{text}");
    let dup = text.find("header: x-dup=one").expect("first value");
    let dup2 = text.find("header: x-dup=two").expect("second value");
    assert!(dup < dup2, "values of one name keep their order: {text}");
    assert!(text.contains(&format!("local: {addr}")), "{text}");
    assert!(text.contains("peer: 127.0.0.1:"), "{text}");
    assert!(text.contains("scheme: http\n"), "{text}");
    assert!(text.contains("disconnect: true"), "{text}");
    assert!(text.contains("body-limit: Some(1234)"), "{text}");
    assert!(!text.contains("mount-prefix"), "{text}");
    stop(server).await;
}

/// HTTP-REQ-2, HTTP-REQ-3, HTTP-REQ-4: HTTP/2 requests carry version 2, the authority in the
/// URI and no pseudo-headers.
#[tokio::test]
async fn request_metadata_over_http2() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let reply = send_h2(addr, request("GET", "/meta?x=1", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.line("version"), "HTTP/2.0");
    assert_eq!(reply.line("uri"), format!("http://{addr}/meta?x=1"));
    assert!(!reply.text().contains("header: :"), "{}", reply.text());
    stop(server).await;
}

/// HTTP-REQ-2: HTTP/1.0 requests are served as HTTP/1.0 (curl --http1.0).
#[tokio::test]
async fn http10_is_served() {
    let (server, _probe) = start_probe(config()).await;
    let url = format!("http://{}/meta", server.local_addrs()[0]);
    let (ok, out, err) = curl(&["--http1.0", "-i", &url]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    assert!(out.contains("version: HTTP/1.0"), "{out}");
    stop(server).await;
}

/// HTTP-CONN-6: all requests of one keep-alive connection share a connection id; another
/// connection gets another id.
#[tokio::test]
async fn connection_id_is_per_connection() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n";
    stream.write_all(req).await.unwrap();
    let first = read_until(&mut stream, b"body-limit").await;
    stream.write_all(req).await.unwrap();
    let second = read_until(&mut stream, b"body-limit").await;
    let id = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("connection-id: ").map(str::to_owned))
            .unwrap_or_default()
    };
    assert!(!id(&first).is_empty());
    assert_eq!(id(&first), id(&second));
    let other = send_h1(addr, request("GET", "/meta", b"")).await;
    assert_ne!(other.line("connection-id"), id(&first));
    stop(server).await;
}

/// HTTP-PATH-4, HTTP-PATH-5, HTTP-PATH-6: with a root path the app gets the MountPrefix and
/// paths outside it get 404 without reaching the app.
#[tokio::test]
async fn mount_prefix_and_404_outside_it() {
    let config = config().root_path(Some(rgi::MountPrefix::new("/api").unwrap()));
    let (server, probe) = start_probe(config).await;
    let addr = server.local_addrs()[0];
    let reply = send_h1(addr, request("GET", "/api/meta", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.line("mount-prefix"), "/api");
    assert_eq!(reply.line("app-path"), "/meta");
    let calls = probe.observed.calls.load(Ordering::SeqCst);
    for outside in ["/apiary/meta", "/meta", "/"] {
        let reply = send_h1(addr, request("GET", outside, b"")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{outside}");
    }
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), calls);
    stop(server).await;
}

/// HTTP-BODY-1, HTTP-BODY-5, HTTP-FRAME-1: a large body streams through the app both ways,
/// content-length and chunked, on HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn streaming_echo_both_ways() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let payload = Bytes::from(payload);
    for h2 in [false, true] {
        let req = http::Request::builder()
            .method("POST")
            .uri("/echo")
            .header("host", "x")
            .body(http_body_util::Full::new(payload.clone()).boxed())
            .unwrap();
        let reply = if h2 {
            send_h2(addr, req).await
        } else {
            send_h1(addr, req).await
        };
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, payload, "h2={h2}");
    }
    // Chunked request body (no content-length) through curl.
    let url = format!("http://{addr}/echo");
    let (ok, out, err) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "chunked payload",
        &url,
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "chunked payload");
    stop(server).await;
}

/// HTTP-TRAIL-2: request trailers reach the app as the last frame (chunked HTTP/1.1 and
/// HTTP/2).
#[tokio::test]
async fn request_trailers_reach_the_app() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let req = b"POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n";
    let reply = raw(addr, req).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("bytes: 5"), "{text}");
    assert!(text.contains("trailer: x-sum=42"), "{text}");

    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-sum", http::HeaderValue::from_static("7"));
    let body = http_body_util::Full::new(Bytes::from_static(b"abc"))
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let req = http::Request::post("/collect").body(body).unwrap();
    let reply = send_h2(addr, req).await;
    assert_eq!(reply.line("bytes"), "3");
    assert_eq!(reply.line("trailer"), "x-sum=7");
    stop(server).await;
}

/// HTTP-TRAIL-4, HTTP-TRAIL-5: response trailers reach HTTP/2 clients, and HTTP/1.1 clients
/// that sent `TE: trailers` for announced fields; without it the body still ends cleanly.
#[tokio::test]
async fn response_trailers_on_h2_and_chunked_h1() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let reply = send_h2(addr, request("GET", "/trailers", b"")).await;
    assert_eq!(reply.text(), "chunk one,chunk two");
    assert_eq!(reply.trailers.as_ref().unwrap()["x-checksum"], "abc");

    let with_te = raw(
        addr,
        b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&with_te);
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(text.contains("0\r\nx-checksum: abc\r\n\r\n"), "{text}");

    let without = raw(
        addr,
        b"GET /trailers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&without);
    assert!(text.ends_with("0\r\n\r\n"), "{text}");
    assert!(!text.contains("x-checksum: abc"), "{text}");
    stop(server).await;
}

/// HTTP-INTERIM-1, HTTP-INTERIM-2: `100 Continue` only when the app reads the body.
#[tokio::test]
async fn continue_only_when_the_app_reads() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /no-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until(&mut stream, b"did not read").await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let interim = read_until(&mut stream, b"\r\n\r\n").await;
    assert!(
        String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(b"hello").await.unwrap();
    let reply = read_until(&mut stream, b"bytes: 5").await;
    assert!(String::from_utf8_lossy(&reply).contains("HTTP/1.1 200"));
    stop(server).await;
}

/// HTTP-FRAME-5, HTTP-FRAME-7: `HEAD`, `204`, `205` and `304` responses carry no body bytes;
/// a `204` has no `content-length` (for `HEAD` too), a `205` says `content-length: 0`.
#[tokio::test]
async fn head_204_304_have_no_body() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    // HEAD then GET on one connection: if HEAD leaked body bytes, the GET would be garbled.
    let reply = raw(
        addr,
        b"HEAD /meta HTTP/1.1\r\nHost: x\r\n\r\nGET /status?204 HTTP/1.1\r\nHost: x\r\n\r\nGET /status?304 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /status?204 HTTP/1.1\r\nHost: x\r\n\r\nGET /status?205 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /status?205 HTTP/1.1\r\nHost: x\r\n\r\nGET /status?200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    let responses: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
    let statuses: Vec<&str> = responses.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        statuses,
        ["200", "204", "304", "204", "205", "205", "200"],
        "{text}"
    );
    for response in &responses {
        let head = response.to_ascii_lowercase();
        // RFC 9110 §8.6: no length on a 204, HEAD included; §15.3.6: a 205 is empty.
        if response.starts_with("204") {
            assert!(!head.contains("content-length"), "{text}");
        }
        if response.starts_with("205") {
            assert!(head.contains("content-length: 0\r\n"), "{text}");
        }
    }
    assert_eq!(
        text.matches("body that must not be sent").count(),
        1,
        "{text}"
    );
    assert!(
        !text.contains("method: HEAD"),
        "HEAD leaked its body: {text}"
    );
    for h2_status in ["204", "304"] {
        let reply = send_h2(addr, request("GET", &format!("/status?{h2_status}"), b"")).await;
        assert!(reply.body.is_empty());
    }
    let reply = send_h2(addr, request("HEAD", "/meta", b"")).await;
    assert!(reply.body.is_empty());
    stop(server).await;
}

/// HTTP-RESP-6: hop-by-hop fields set by the app are removed; others kept (the warning that
/// cites the ID, SRV-LOG-7, is checked by the conformance suite's spawned cases).
#[tokio::test]
async fn hop_by_hop_fields_are_removed() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let reply = send_h1(addr, request("GET", "/hop", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "hop");
    assert_eq!(reply.headers["x-kept"], "yes");
    assert!(reply.headers.get("keep-alive").is_none());
    assert!(reply.headers.get("upgrade").is_none());
    assert!(reply.headers.get("transfer-encoding").is_none());
    assert!(reply.headers.get("connection").is_none());
    stop(server).await;
}

/// HTTP-FRAME-3, HTTP-FRAME-4: a body longer or shorter than its Content-Length is aborted, never
/// completed: the client never sees a complete response.
#[tokio::test]
async fn content_length_mismatch_aborts() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    for path in ["/cl-short", "/cl-long"] {
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /meta HTTP/1.1\r\nHost: x\r\n\r\n");
        let reply = raw(addr, req.as_bytes()).await;
        let text = String::from_utf8_lossy(&reply);
        // hyper may drop the buffered head with the connection: nothing, or a partial response.
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 200"),
            "{path}: {text}"
        );
        assert!(
            !text.contains("1234567890"),
            "more than declared was sent: {text}"
        );
        assert!(
            !text.contains("method: GET"),
            "the connection was reused after an abort: {text}"
        );
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}/cl-short"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    assert!(
        h2_reset(sender.send_request(req).await).await,
        "h2 stream must be reset"
    );
    stop(server).await;
}

/// CORE-ERR-1, CORE-ERR-2, CORE-ERR-5: an error or panic before the head gives a 500 without
/// details, and the server keeps serving.
#[tokio::test]
async fn error_and_panic_before_head_give_500() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    for path in ["/error", "/panic"] {
        for h2 in [false, true] {
            let req = request("GET", path, b"");
            let reply = if h2 {
                send_h2(addr, req).await
            } else {
                send_h1(addr, req).await
            };
            assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert!(!reply.text().contains("secret"), "{}", reply.text());
            assert!(!reply.text().contains("on purpose"), "{}", reply.text());
        }
    }
    let reply = send_h1(addr, request("GET", "/meta", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    stop(server).await;
}

/// An app whose hand-written `call` panics before it returns a future, for `/panic-now`.
struct PanicsInCall;

impl rgi::App for PanicsInCall {
    type Body = rgi::Body;
    type Error = std::convert::Infallible;

    fn call(
        &self,
        req: rgi::Request,
    ) -> impl std::future::Future<Output = Result<http::Response<rgi::Body>, Self::Error>> + Send
    {
        assert_ne!(req.uri().path(), "/panic-now", "a secret panic, on purpose");
        std::future::ready(Ok(http::Response::new(rgi::Body::from("served"))))
    }
}

/// CORE-ERR-2, CORE-ERR-5: a `call` that panics before it even returns its future gives a
/// 500 too (HTTP/1.1 and HTTP/2), and the connection and the server keep serving.
#[tokio::test]
async fn panic_in_call_itself_gives_500() {
    let server = start(config(), PanicsInCall).await;
    let addr = server.local_addrs()[0];
    let reply = raw(
        addr,
        b"GET /panic-now HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(status_of(&reply), Some(500), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert!(text.ends_with("served"), "the connection goes on: {text}");
    let reply = send_h2(addr, request("GET", "/panic-now", b"")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let reply = send_h2(addr, request("GET", "/ok", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "served");
    stop(server).await;
}

/// CORE-ERR-3, CORE-ERR-5, HTTP-FRAME-9: an error or panic of the body after the head aborts:
/// HTTP/1.1 closes without the terminating chunk, HTTP/2 resets the stream; the other
/// streams of the connection keep being served.
#[tokio::test]
async fn failure_after_head_aborts() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    for path in ["/fail-after-head", "/panic-after-head"] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n");
        let reply = raw(addr, req.as_bytes()).await;
        let text = String::from_utf8_lossy(&reply);
        // hyper may drop the buffered head with the connection: nothing, or a partial response.
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 200"),
            "{path}: {text}"
        );
        assert!(!text.ends_with("0\r\n\r\n"), "{path} ended cleanly: {text}");
        assert!(!text.contains("after"), "{path}: {text}");

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(format!("http://{addr}{path}"))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        assert!(
            h2_reset(sender.send_request(req).await).await,
            "{path}: h2 not reset"
        );
        // The connection still serves other streams.
        let req = http::Request::get(format!("http://{addr}/meta"))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    stop(server).await;
}

/// CORE-ERR-4, HTTP-BODY-7: an app that collects an over-limit body with `?` gets 413, before
/// any byte was read when the length is declared.
#[tokio::test]
async fn body_limit_gives_413() {
    let (server, probe) = start_probe(config().max_body_bytes(Some(10))).await;
    let addr = server.local_addrs()[0];
    let reply = send_h1(addr, request("POST", "/collect", b"0123456789ABCDEF")).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let reply = send_h2(addr, request("POST", "/collect", b"0123456789ABCDEF")).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let url = format!("http://{addr}/collect");
    let (ok, out, err) = curl(&[
        "-i",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "0123456789ABCDEF",
        &url,
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    let reply = send_h1(addr, request("POST", "/collect", b"short")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(probe.observed.calls.load(Ordering::SeqCst) >= 4);
    stop(server).await;
}

/// Whether an HTTP/2 exchange ended in a stream reset (before or after the head).
async fn h2_reset(result: Result<http::Response<hyper::body::Incoming>, hyper::Error>) -> bool {
    match result {
        Err(error) => format!("{error:?}").contains("INTERNAL_ERROR"),
        Ok(response) => response.into_body().collect().await.is_err(),
    }
}

/// An app whose response body yields data after its trailers (`rgi::Body` would stop at the
/// trailers, so this uses its own body type).
struct AfterTrailers;

impl rgi::App for AfterTrailers {
    type Body = Frames;
    type Error = std::convert::Infallible;

    async fn call(
        &self,
        _req: rgi::Request,
    ) -> Result<http::Response<Frames>, std::convert::Infallible> {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-t", http::HeaderValue::from_static("1"));
        Ok(http::Response::new(Frames(vec![
            http_body::Frame::data(Bytes::from_static(b"before")),
            http_body::Frame::trailers(trailers),
            http_body::Frame::data(Bytes::from_static(b"after")),
        ])))
    }
}

/// HTTP-TRAIL-3, CORE-ERR-3: a frame after the trailers aborts the response (HTTP/1.1 and
/// HTTP/2): the trailers are never sent as a clean end.
#[tokio::test]
async fn frame_after_trailers_aborts() {
    let server = start(config(), AfterTrailers).await;
    let addr = server.local_addrs()[0];
    let reply = raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n").await;
    let text = String::from_utf8_lossy(&reply);
    assert!(!text.contains("x-t: 1"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");
    assert!(!text.contains("after"), "{text}");

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}/"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    assert!(h2_reset(sender.send_request(req).await).await);
    stop(server).await;
}

/// HTTP-TRAIL-8, HTTP-TRAIL-9: forbidden fields are removed from response trailers (and from
/// request trailers before the app sees them).
#[tokio::test]
async fn forbidden_trailer_fields_are_removed() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let reply = send_h2(addr, request("GET", "/bad-trailers", b"")).await;
    let trailers = reply.trailers.expect("trailers");
    assert_eq!(trailers["x-ok"], "1");
    assert!(trailers.get("content-type").is_none());
    assert!(trailers.get("set-cookie").is_none());

    let req = b"POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\nx-sum: 1\r\nauthorization: secret\r\n\r\n";
    let text = String::from_utf8_lossy(&raw(addr, req).await).into_owned();
    assert!(text.contains("trailer: x-sum=1"), "{text}");
    assert!(!text.contains("authorization"), "{text}");
    stop(server).await;
}

/// HTTP-DISC-6: a response the server aborts (body failure after the head) settles
/// `Aborted`, not `Completed`.
#[tokio::test]
async fn aborted_response_settles_aborted() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let _ = raw(
        addr,
        b"GET /fail-after-head HTTP/1.1\r\nHost: x\r\nX-Track: failed\r\n\r\n",
    )
    .await;
    let outcomes = &probe.observed.outcomes;
    assert!(eventually(|| outcomes.lock().unwrap().contains_key("failed")).await);
    assert_eq!(
        outcomes.lock().unwrap().get("failed"),
        Some(&rgi::Outcome::Aborted)
    );
    stop(server).await;
}

/// HTTP-RESP-3: the reason phrase comes from the status code, never from the application
/// (not even through hyper's `ReasonPhrase` extension).
#[tokio::test]
async fn reason_phrase_is_the_servers() {
    let (server, _probe) = start_probe(config()).await;
    let reply = raw(
        server.local_addrs()[0],
        b"GET /reason HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(!text.contains("Totally Fine"), "{text}");
    stop(server).await;
}

/// HTTP-RESP-10: pipelined requests are answered in order, all of them, when the server
/// writes several responses at once; a request hyper rejects in the middle of the batch still
/// gets every earlier response first, then its own `400`.
#[tokio::test]
async fn pipelined_batches_are_answered_in_order() {
    let server = start(config(), Probe::default()).await;
    let addr = server.local_addrs()[0];
    let mut batch = Vec::new();
    for i in 0..40 {
        batch.extend_from_slice(format!("GET /meta?n={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"GET /meta?n=last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let reply = raw(addr, &batch).await;
    let text = String::from_utf8_lossy(&reply);
    let mut at = 0;
    for i in (0..40).map(|i| i.to_string()).chain(["last".to_owned()]) {
        let needle = format!("uri: /meta?n={i}\n");
        let found = text[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("response {i} missing or out of order: {text}"));
        at += found + needle.len();
    }
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 41, "{text}");

    // A head hyper cannot parse, after two good ones: both answers, then the 400.
    let mut batch = Vec::new();
    batch.extend_from_slice(b"GET /meta?n=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    batch.extend_from_slice(b"GET /meta?n=2 HTTP/1.1\r\nHost: a\r\n\r\n");
    batch.extend_from_slice(b"GET /meta?n=3 HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n");
    let reply = raw(addr, &batch).await;
    let text = String::from_utf8_lossy(&reply);
    let first = text.find("uri: /meta?n=1\n").expect("first response");
    let second = text.find("uri: /meta?n=2\n").expect("second response");
    let rejected = text.find("HTTP/1.1 400").expect("the bad head's 400");
    assert!(first < second && second < rejected, "{text}");
    assert!(
        !text.contains("n=3"),
        "the bad request reached the app: {text}"
    );
    stop(server).await;
}
