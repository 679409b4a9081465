//! HTTP/1.x wire behaviour of the `hello` binary over raw TCP: pipelining, `HEAD`, interim
//! `100 Continue` responses, HTTP/1.0 connection handling, and routing (issue 3 items 1, 3, 9).

mod support;

use support::{HttpConn, IO_BOUND, TestServer, payload};

/// HTTP-BODY-10, HTTP-FRAME-1: three pipelined requests sent in one write get three responses,
/// in order, on the same connection.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    let mut batch = support::get("/");
    batch.extend(support::get("/stream?bytes=7"));
    batch.extend(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nping");
    conn.send(&batch).await.expect("send");
    let first = conn.read_response(IO_BOUND).await.expect("first");
    let second = conn.read_response(IO_BOUND).await.expect("second");
    let third = conn.read_response(IO_BOUND).await.expect("third");
    assert_eq!(
        (first.status, first.body.as_slice()),
        (200, &b"Hello, World!"[..])
    );
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"xxxxxxx"[..])
    );
    assert_eq!((third.status, third.body.as_slice()), (200, &b"ping"[..]));
}

/// HTTP-FRAME-5: `HEAD` responses carry the `GET` headers (including `content-length`) and no
/// body bytes: the next response on the connection starts right after the head.
#[tokio::test]
async fn head_responses_have_no_body() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("send");
    let head = conn.read_head(IO_BOUND).await.expect("HEAD response");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some("13"),
        "{:?}",
        head.headers
    );

    conn.send(b"HEAD /stream?bytes=100000 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("send");
    let head = conn.read_head(IO_BOUND).await.expect("HEAD response");
    assert_eq!(head.status, 200);

    conn.send(&support::get("/")).await.expect("send");
    let next = conn.read_response(IO_BOUND).await;
    assert!(
        matches!(&next, Ok(r) if r.status == 200 && r.body == b"Hello, World!"),
        "bytes after a HEAD response (a body was sent?): {next:?}"
    );
}

/// HTTP-INTERIM-1: `POST /echo` with `Expect: 100-continue` gets `100 Continue` before the
/// client sends any body byte (the echo reads the body), then the echo.
#[tokio::test]
async fn expect_continue_is_answered_when_the_app_reads() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .expect("send");
    // Read only the interim response: nothing final can come before the body is sent.
    let mut buf = Vec::new();
    let mut piece = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout(IO_BOUND, conn.stream.read(&mut piece))
            .await
            .unwrap_or_else(|_| panic!("no 100 Continue before the body\n{}", server.logs()))
            .expect("read");
        assert!(n > 0, "closed before 100 Continue");
        buf.extend_from_slice(&piece[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 100"),
        "expected 100 Continue first, got {text:?}"
    );
    conn.unread(&buf);
    conn.send(b"hello").await.expect("send body");
    let response = conn.read_response(IO_BOUND).await.expect("response");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello"[..])
    );
}

/// HTTP-INTERIM-2, HTTP-BODY-11: `GET /` with `Expect: 100-continue` and a body the app never
/// reads gets its `200` without any `100 Continue`; the unread body is never taken for a
/// request.
#[tokio::test]
async fn expect_continue_is_not_sent_when_the_app_does_not_read() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .expect("send");
    let response = conn.read_response(IO_BOUND).await.expect("response");
    assert_eq!(response.status, 200);
    assert!(
        conn.interim.is_empty(),
        "interim responses {:?} for an unread body",
        conn.interim
    );
}

/// HTTP-INTERIM-3, HTTP-FRAME-2: an HTTP/1.0 request with `Expect: 100-continue` gets no 1xx,
/// and its echo is not chunked.
#[tokio::test]
async fn http1_0_gets_no_interim_response() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    let data = payload(3000, 3);
    let mut request =
        b"POST /echo HTTP/1.0\r\nContent-Length: 3000\r\nExpect: 100-continue\r\n\r\n".to_vec();
    request.extend_from_slice(&data);
    conn.send(&request).await.expect("send");
    let transcript = conn.read_to_close(IO_BOUND).await;
    assert!(
        transcript.termination.closed(),
        "HTTP/1.0 without keep-alive must close"
    );
    let statuses: Vec<u16> = transcript.responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200], "no 1xx on HTTP/1.0");
    let response = &transcript.responses[0];
    assert!(
        response.header("transfer-encoding").is_none(),
        "chunked on HTTP/1.0"
    );
    assert!(
        response.complete && response.body == data,
        "{}",
        response.summary()
    );
}

/// HTTP-REQ-1: routes that do not exist get `404`; known paths with other methods (extension
/// methods included) get `405` with `allow` (RFC 9110 §15.5.6).
#[tokio::test]
async fn unknown_routes_get_404_and_other_methods_405() {
    let server = TestServer::hello(&[]);
    for (request, status, allow) in [
        (&b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"[..], 404, None),
        (
            b"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n",
            405,
            Some("GET, HEAD"),
        ),
        (b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", 405, Some("POST")),
        (
            b"PURGE /stream?bytes=3 HTTP/1.1\r\nHost: a\r\n\r\n",
            405,
            Some("GET, HEAD"),
        ),
    ] {
        let mut conn = HttpConn::connect(server.addr()).await;
        conn.send(request).await.expect("send");
        let response = conn.read_response(IO_BOUND).await.expect("response");
        let what = String::from_utf8_lossy(request);
        assert_eq!(response.status, status, "{what}");
        assert_eq!(response.header("allow"), allow, "{what}");
    }
}

/// A `405` answers once the request body was read to its end: a body sent in pieces after the
/// head is consumed, and the next request on the connection is served.
#[tokio::test]
async fn method_not_allowed_reads_the_body_first() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n")
        .await
        .expect("send head");
    for _ in 0..4 {
        conn.send(&[b'x'; 50_000]).await.expect("send body");
    }
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("send next");
    let first = conn.read_response(IO_BOUND).await.expect("405");
    assert_eq!(first.status, 405);
    assert_eq!(first.header("allow"), Some("GET, HEAD"));
    let second = conn.read_response(IO_BOUND).await.expect("next response");
    assert_eq!(second.status, 200);
    assert_eq!(second.body, b"Hello, World!");
}

/// HTTP-TRAIL-2, HTTP-TRAIL-4, HTTP-TRAIL-8: the trailers of a chunked request reach the
/// application as the final frame of the body; `/echo` returns that body as its response, so
/// the client gets them back as response trailers — minus the fields HTTP-TRAIL-7 forbids in
/// response trailers (`authorization`, `content-type`), which the server removes. The request
/// declares its trailers (`Trailer`, RFC 9110 §6.6.2) and accepts them (`TE: trailers`).
#[tokio::test]
async fn request_trailers_are_echoed_as_response_trailers() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\
          Trailer: x-req-trailer, authorization, content-type\r\n\r\n\
          5\r\nhello\r\n0\r\nx-req-trailer: 42\r\nauthorization: secret\r\ncontent-type: a/b\r\n\r\n",
    )
    .await
    .expect("send");
    let response = conn.read_response(IO_BOUND).await.expect("response");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert!(response.complete, "{}", response.summary());
    assert_eq!(
        response.trailer("x-req-trailer"),
        Some("42"),
        "request trailer not delivered/echoed: trailers {:?}",
        response.trailers
    );
    for forbidden in ["authorization", "content-type"] {
        assert!(
            response.trailer(forbidden).is_none(),
            "forbidden response trailer `{forbidden}` was sent: {:?}",
            response.trailers
        );
    }
}
