//! Hostile and unsupported input: versions the server does not implement, garbage, malformed
//! HTTP/2 requests, rapid stream resets. The server rejects them without calling the
//! application and goes on serving everyone else.

use std::time::Duration;

use rgi::Capability;

use super::h2frames::{self, GOAWAY, H2Conn, HEADERS, RST_STREAM, SETTINGS};
use super::http1::{expect_status, get};
use super::{ServerCase, Target, check, server_case};
use crate::wire::{WireConn, WireError, WireResponse, request};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "http1: unsupported HTTP versions rejected without calling the app",
            ["SRV-LIMIT-3"],
            None,
            unsupported_versions
        ),
        server_case!(
            "http1 + h2c on one port: a first line without an HTTP version is closed without a response",
            ["SRV-LIMIT-17"],
            Some(Capability::Http2),
            first_line_not_http
        ),
        server_case!(
            "http1: a higher minor version (HTTP/1.2) is served as HTTP/1.1",
            ["SRV-LIMIT-19"],
            None,
            higher_minor_version
        ),
        server_case!(
            "http1: hostile input neither crashes the server nor stops other connections",
            ["SRV-LIMIT-11"],
            None,
            hostile_input
        ),
        server_case!(
            "http2: connection-specific request fields reset with PROTOCOL_ERROR",
            ["SRV-LIMIT-12"],
            Some(Capability::Http2),
            connection_specific_fields
        ),
        server_case!(
            "http2: a host field contradicting :authority is malformed",
            ["SRV-LIMIT-18"],
            Some(Capability::Http2),
            host_contradicting_authority
        ),
        server_case!(
            "http2: explicit stream and header-list limits; rapid resets end with GOAWAY",
            ["SRV-LIMIT-10"],
            Some(Capability::Http2),
            stream_limits
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Checks that, since `calls` answered `before`, the probe served exactly `served` requests
/// besides one more `/calls`: the ones refused in between never reached the application.
async fn expect_calls_since(
    target: &Target,
    before: u64,
    served: u64,
    what: &str,
) -> Result<(), String> {
    let after = calls(target).await?;
    let expected = before + 1 + served;
    check!(
        after == expected,
        "{what}: the application was called {} times more than the {served} served request(s)",
        after.saturating_sub(expected)
    );
    Ok(())
}

/// How many calls the probe received, this `/calls` included.
async fn calls(target: &Target) -> Result<u64, String> {
    let response = get(target, "/calls").await?;
    expect_status(&response, 200)?;
    response
        .field("calls")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("/calls answered {:?}", response.text()))
}

/// Sends `raw` on a connection of its own and reads the answer, checking that the application
/// was not called for it; the answer (or why there was none) is the caller's to judge.
async fn answer_without_call(
    target: &Target,
    raw: &[u8],
    what: &str,
) -> Result<Result<WireResponse, WireError>, String> {
    let before = calls(target).await?;
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(raw).await.map_err(err)?;
    let answer = conn.read_response("GET").await;
    drop(conn);
    expect_calls_since(target, before, 0, what).await?;
    Ok(answer)
}

async fn unsupported_versions(target: Target) -> Result<(), String> {
    let attempts: [(&str, &[u8]); 4] = [
        ("HTTP/0.9", b"GET /meta\r\n\r\n"),
        (
            "HTTP/2.0 in HTTP/1 syntax",
            b"GET /meta HTTP/2.0\r\nhost: a\r\n\r\n",
        ),
        ("HTTP/3.0", b"GET /meta HTTP/3.0\r\nhost: a\r\n\r\n"),
        ("HTTP/10.1", b"GET /meta HTTP/10.1\r\nhost: a\r\n\r\n"),
    ];
    for (what, raw) in attempts {
        match answer_without_call(&target, raw, what).await? {
            Ok(response) => check!(
                response.status == 505 || response.status == 400,
                "{what}: answered {} {:?}",
                response.status,
                response.text()
            ),
            Err(WireError::ClosedBeforeHead(_)) => {}
            Err(e) => return Err(format!("{what}: neither rejected nor closed: {e}")),
        }
    }
    Ok(())
}

/// SRV-LIMIT-17: on the port that serves HTTP/1.x and HTTP/2 with prior knowledge (the suite's
/// target, when `http2` is claimed), a client whose first line carries no HTTP version speaks
/// neither: it gets no response at all (an HTTP/2 client would read an HTTP/1 `400` as frames),
/// only a close, and the application is not called.
async fn first_line_not_http(target: Target) -> Result<(), String> {
    let attempts: [(&str, &[u8]); 3] = [
        ("an HTTP/0.9 request", b"GET /meta\r\n\r\n"),
        (
            "a broken HTTP/2 preface",
            b"INVALID CONNECTION PREFACE\r\n\r\n",
        ),
        ("another protocol", b"SSH-2.0-OpenSSH_9.6\r\n"),
    ];
    for (what, raw) in attempts {
        match answer_without_call(&target, raw, what).await? {
            Err(WireError::ClosedBeforeHead(0)) => {}
            Ok(response) => {
                return Err(format!(
                    "{what}: answered {} instead of closing without a response",
                    response.status
                ));
            }
            Err(e) => return Err(format!("{what}: not closed without a response: {e}")),
        }
    }
    Ok(())
}

/// SRV-LIMIT-19: `HTTP/1.2` and `HTTP/1.9` requests are served as HTTP/1.1 — the application
/// sees HTTP/1.1, the response is HTTP/1.1 and the connection persists — whether the request
/// line arrives whole or split inside its version.
async fn higher_minor_version(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    let writes: [&[&[u8]]; 3] = [
        &[b"GET /meta HTTP/1.2\r\nhost: conformance.test\r\n\r\n"],
        &[b"GET /meta HTTP/1.", b"9\r\nhost: conformance.test\r\n\r\n"],
        &[
            b"GET /meta HT",
            b"TP/1.2\r",
            b"\nhost: conformance.test\r\n\r\n",
        ],
    ];
    for (index, parts) in writes.into_iter().enumerate() {
        for (n, part) in parts.iter().enumerate() {
            if n > 0 {
                // Separate reads, most likely: the split is what is tested, not the timing.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            conn.send(part).await.map_err(err)?;
        }
        let response = conn
            .read_response("GET")
            .await
            .map_err(|e| format!("request {index} (sent as {parts:?}): {e}"))?;
        expect_status(&response, 200)?;
        check!(
            response.minor_version == 1,
            "request {index}: answered HTTP/1.{}, not HTTP/1.1",
            response.minor_version
        );
        check!(
            response.field("version").as_deref() == Some("HTTP/1.1"),
            "request {index}: the application saw version {:?}, not HTTP/1.1",
            response.field("version")
        );
    }
    Ok(())
}

/// Inputs no server may crash on.
fn hostile_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut inputs: Vec<(&'static str, Vec<u8>)> = vec![
        ("binary garbage", (0..4096u32).map(|i| (i * 7 + 3) as u8).collect()),
        ("only line ends", b"\r\n\r\n\r\n\r\n".to_vec()),
        (
            "huge chunk size",
            b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\nab\r\n".to_vec(),
        ),
        (
            "content-length overflow",
            b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 99999999999999999999999999\r\n\r\nab".to_vec(),
        ),
        (
            "negative content-length",
            b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: -5\r\n\r\nab".to_vec(),
        ),
        (
            "NUL in a field value",
            b"GET /meta HTTP/1.1\r\nhost: a\r\nx-a: a\0b\r\n\r\n".to_vec(),
        ),
        (
            "bytes above 0x7f in the target and fields",
            b"GET /meta/\xff\xfe HTTP/1.1\r\nhost: \xc3\x28\r\nx-a: \xff\r\n\r\n".to_vec(),
        ),
        (
            "a TLS ClientHello on a plain port",
            vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03],
        ),
        (
            "an HTTP/2 preface followed by garbage",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
        (
            "upgrade to h2c with a bad settings header",
            b"GET /meta HTTP/1.1\r\nhost: a\r\nconnection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: !!!\r\n\r\n".to_vec(),
        ),
        (
            "a WebSocket handshake with a bad key",
            b"GET /ws HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: x\r\n\r\n".to_vec(),
        ),
    ];
    let mut long_line = b"GET /meta HTTP/1.1\r\nhost: a\r\nx-long: ".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 200_000));
    long_line.extend_from_slice(b"\r\n\r\n");
    inputs.push(("a 200 kB field", long_line));
    let mut many = b"GET /meta HTTP/1.1\r\nhost: a\r\n".to_vec();
    for i in 0..5000 {
        many.extend(format!("x-{i}: v\r\n").into_bytes());
    }
    many.extend_from_slice(b"\r\n");
    inputs.push(("5000 fields", many));
    inputs
}

async fn hostile_input(target: Target) -> Result<(), String> {
    // A connection that is open before the barrage must still be served after it.
    let mut bystander = WireConn::connect(target.addr).await.map_err(err)?;
    bystander
        .send(&request("GET", "/meta", "HTTP/1.1", &[], None))
        .await
        .map_err(err)?;
    expect_status(&bystander.read_response("GET").await.map_err(err)?, 200)?;
    for (what, bytes) in hostile_inputs() {
        let Ok(mut conn) = WireConn::connect(target.addr).await else {
            return Err(format!("the server stopped accepting before {what}"));
        };
        // The server may close mid-write or answer anything: only its survival matters.
        let _ = conn.send_within(&bytes, Duration::from_secs(2)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.read_to_close()).await;
        let after = get(&target, "/meta")
            .await
            .map_err(|e| format!("after {what}, the server no longer answers: {e}"))?;
        check!(
            after.status == 200,
            "after {what}, /meta answered {}",
            after.status
        );
    }
    bystander
        .send(&request("GET", "/meta", "HTTP/1.1", &[], None))
        .await
        .map_err(err)?;
    let response = bystander
        .read_response("GET")
        .await
        .map_err(|e| format!("a bystander connection was not served after the barrage: {e}"))?;
    expect_status(&response, 200)
}

async fn connection_specific_fields(target: Target) -> Result<(), String> {
    let before = calls(&target).await?;
    let mut conn = H2Conn::connect(target.addr).await?;
    let malformed: [(&str, &str); 6] = [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
    ];
    let mut stream = 1;
    for (name, value) in malformed {
        conn.send(&h2frames::get(stream, "/meta", &[(name, value)]))
            .await?;
        let answer = conn
            .read_until(|f| f.stream == stream || f.kind == GOAWAY)
            .await?
            .ok_or_else(|| format!("{name}: the connection closed without a stream reset"))?;
        check!(
            answer.kind == RST_STREAM && answer.error_code() == Some(0x1),
            "a request with `{name}: {value}` got frame type {} (error {:?}), not RST_STREAM(PROTOCOL_ERROR)",
            answer.kind,
            answer.error_code()
        );
        stream += 2;
    }
    // `te: trailers` is the one allowed value.
    conn.send(&h2frames::get(stream, "/meta", &[("te", "trailers")]))
        .await?;
    let answer = conn
        .read_until(|f| f.stream == stream || f.kind == GOAWAY)
        .await?
        .ok_or("`te: trailers`: the connection closed")?;
    check!(
        answer.kind == HEADERS,
        "a request with `te: trailers` got frame type {} instead of a response",
        answer.kind
    );
    expect_calls_since(&target, before, 1, "connection-specific fields").await
}

/// SRV-LIMIT-18: `host: other.test` against `:authority: conformance.test`, two `host`
/// fields, and neither `:authority` nor `host` are refused — a reset with `PROTOCOL_ERROR` or
/// a `400` — without calling the application; a `host` equal to `:authority` but for case,
/// and a `host` without `:authority`, are served.
async fn host_contradicting_authority(target: Target) -> Result<(), String> {
    // `:status: 400` and `:status: 200` from the HPACK static table (indexes 12 and 8).
    const STATUS_400: u8 = 0x80 | 12;
    const STATUS_200: u8 = 0x80 | 8;
    const AUTHORITY: Option<&str> = Some("conformance.test");
    let before = calls(&target).await?;
    let mut conn = H2Conn::connect(target.addr).await?;
    // `:authority` (none: left out), extra fields, whether the request is served.
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], bool);
    let cases: [Case<'_>; 5] = [
        (AUTHORITY, &[("host", "other.test")], false),
        (
            AUTHORITY,
            &[("host", "conformance.test"), ("host", "other.test")],
            false,
        ),
        (None, &[], false),
        (AUTHORITY, &[("host", "Conformance.TEST")], true),
        (None, &[("host", "conformance.test")], true),
    ];
    let mut stream = 1;
    for (authority, fields, served) in cases {
        let block = h2frames::get_block_for(authority, "/meta", fields);
        conn.send(&h2frames::frame(
            HEADERS,
            h2frames::END_HEADERS | h2frames::END_STREAM,
            stream,
            &block,
        ))
        .await?;
        let answer = conn
            .read_until(|f| f.stream == stream || f.kind == GOAWAY)
            .await?
            .ok_or_else(|| format!("{fields:?}: the connection closed without an answer"))?;
        let first = answer.payload.first().copied();
        if served {
            check!(
                answer.kind == HEADERS && first == Some(STATUS_200),
                "a request with {fields:?} and :authority {authority:?} was not served \
                 (frame type {}, first header byte {first:?})",
                answer.kind
            );
        } else {
            let reset = answer.kind == RST_STREAM && answer.error_code() == Some(0x1);
            let refused = answer.kind == HEADERS && first == Some(STATUS_400);
            check!(
                reset || refused,
                "a request with {fields:?} and :authority {authority:?} got frame type {} \
                 (error {:?}, first header byte {first:?}), not a 400 or \
                 RST_STREAM(PROTOCOL_ERROR)",
                answer.kind,
                answer.error_code()
            );
        }
        stream += 2;
    }
    expect_calls_since(&target, before, 2, "host and :authority").await
}

async fn stream_limits(target: Target) -> Result<(), String> {
    let mut conn = H2Conn::connect(target.addr).await?;
    let settings = conn
        .read_until(|f| f.kind == SETTINGS && f.flags & 0x1 == 0)
        .await?
        .ok_or("the server sent no SETTINGS")?
        .settings();
    for (id, name) in [
        (
            h2frames::MAX_CONCURRENT_STREAMS,
            "SETTINGS_MAX_CONCURRENT_STREAMS",
        ),
        (
            h2frames::MAX_HEADER_LIST_SIZE,
            "SETTINGS_MAX_HEADER_LIST_SIZE",
        ),
    ] {
        check!(
            settings.iter().any(|(i, _)| *i == id),
            "the server's SETTINGS do not set {name}: {settings:?}"
        );
    }
    // Rapid reset: open and cancel streams as fast as possible.
    let mut burst = Vec::new();
    for n in 0..5000u32 {
        let stream = 1 + 2 * n;
        burst.extend(h2frames::get(stream, "/meta", &[]));
        burst.extend(h2frames::cancel(stream));
    }
    // The server may close mid-burst: that is the expected outcome, not an error.
    let _ = conn.send(&burst).await;
    let goaway = conn.read_until(|f| f.kind == GOAWAY).await;
    check!(
        matches!(goaway, Ok(Some(_))),
        "5000 rapidly reset streams got no GOAWAY: {goaway:?}"
    );
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match conn.read_frame().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    check!(closed.is_ok(), "the connection stayed open after GOAWAY");
    // Everyone else is still served.
    expect_status(&get(&target, "/meta").await?, 200)
}
