//! HTTP/1.x cases, written as raw bytes so that framing is checked exactly.

use std::time::Duration;

use rgi::Capability;

use super::{ServerCase, Target, check, server_case};
use crate::wire::{Framing, WireConn, WireError, WireResponse, request};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "http1: method passed verbatim, extension methods included",
            ["HTTP-REQ-1", "CORE-APP-1"],
            None,
            method_verbatim
        ),
        server_case!(
            "http1: target and query exactly as sent",
            ["HTTP-PATH-1", "HTTP-PATH-3", "HTTP-REQ-3"],
            None,
            raw_target
        ),
        server_case!(
            "http1: repeated header fields kept, in order",
            ["HTTP-REQ-5"],
            None,
            repeated_headers
        ),
        server_case!(
            "http1: header fields reach the app in the order received",
            ["HTTP-REQ-7"],
            None,
            header_order
        ),
        server_case!(
            "http1: version reported as on the wire",
            ["HTTP-REQ-2"],
            None,
            versions
        ),
        server_case!(
            "http1: connection info and disconnect signal present",
            [
                "HTTP-CONN-1",
                "HTTP-CONN-2",
                "HTTP-CONN-3",
                "HTTP-CONN-4",
                "HTTP-DISC-1"
            ],
            None,
            connection_info
        ),
        server_case!(
            "http1: connection id stable per connection, distinct across connections",
            ["HTTP-CONN-6", "HTTP-CONN-7"],
            None,
            connection_ids
        ),
        server_case!(
            "http1: no mount prefix unless configured",
            ["HTTP-PATH-6"],
            None,
            no_mount_prefix
        ),
        server_case!(
            "http1: content-length body streamed back whole",
            ["HTTP-BODY-1", "HTTP-BODY-3", "HTTP-BODY-10"],
            None,
            echo_content_length
        ),
        server_case!(
            "http1: chunked body de-chunked for the app",
            ["HTTP-BODY-3", "HTTP-REQ-11"],
            None,
            echo_chunked
        ),
        server_case!(
            "http1: request trailers delivered after the data",
            ["HTTP-TRAIL-2"],
            Some(Capability::RequestTrailers),
            request_trailers
        ),
        server_case!(
            "http1: forbidden fields removed from request trailers",
            ["HTTP-TRAIL-9"],
            Some(Capability::RequestTrailers),
            forbidden_request_trailers
        ),
        server_case!(
            "http1: response trailers sent on a chunked response",
            ["HTTP-TRAIL-4", "HTTP-TRAIL-1"],
            Some(Capability::ResponseTrailers),
            response_trailers
        ),
        server_case!(
            "http1: HEAD gets headers and no body",
            ["HTTP-FRAME-5"],
            None,
            head_has_no_body
        ),
        server_case!(
            "http1: 204, 205 and 304 get no body (HEAD included)",
            ["HTTP-FRAME-7"],
            None,
            no_body_statuses
        ),
        server_case!(
            "http1: body shorter than content-length aborts",
            ["HTTP-FRAME-4", "HTTP-FRAME-9"],
            None,
            short_body_aborts
        ),
        server_case!(
            "http1: body longer than content-length is cut and aborted",
            ["HTTP-FRAME-3"],
            None,
            long_body_aborts
        ),
        server_case!(
            "http1: panic before the head gives a bare 500",
            ["CORE-ERR-1", "CORE-ERR-2", "CORE-ERR-5"],
            None,
            panic_gives_500
        ),
        server_case!(
            "http1: error before the head gives a bare 500",
            ["CORE-ERR-1", "CORE-ERR-2"],
            None,
            error_gives_500
        ),
        server_case!(
            "http1: failure after the head aborts the response",
            ["CORE-ERR-3", "HTTP-FRAME-9"],
            None,
            failure_after_head_aborts
        ),
        server_case!(
            "http1: body over the limit maps to 413",
            ["CORE-ERR-4", "HTTP-BODY-7", "HTTP-BODY-8"],
            None,
            body_limit_413
        ),
        server_case!(
            "http1: 100 Continue when the app reads the body",
            ["HTTP-INTERIM-1"],
            None,
            continue_on_read
        ),
        server_case!(
            "http1: no 100 Continue when the app does not read",
            ["HTTP-INTERIM-2", "HTTP-BODY-11"],
            None,
            no_continue_without_read
        ),
        server_case!(
            "http1.0: no chunked coding, no 1xx",
            ["HTTP-FRAME-2", "HTTP-INTERIM-3", "HTTP-TRAIL-5"],
            None,
            http10_framing
        ),
        server_case!(
            "http1: hop-by-hop fields from the app removed",
            ["HTTP-RESP-6", "HTTP-RESP-9"],
            None,
            hop_by_hop_removed
        ),
        server_case!("http1: date added", ["HTTP-RESP-8"], None, date_added),
        server_case!(
            "http1: pipelined requests answered in order",
            ["HTTP-RESP-10"],
            None,
            pipelining
        ),
        server_case!(
            "http1: completed exchange reported as completed",
            ["HTTP-DISC-2", "HTTP-DISC-3"],
            None,
            disconnect_completed
        ),
        server_case!(
            "http1: every request of a keep-alive connection gets its own unsettled Disconnect",
            ["HTTP-DISC-1", "HTTP-DISC-3"],
            None,
            disconnect_per_request
        ),
        server_case!(
            "http1: departed client reported as gone",
            ["HTTP-DISC-4", "CORE-CANCEL-2"],
            None,
            disconnect_client_gone
        ),
        server_case!(
            "http1: departure noticed while the app reads nothing and sends nothing",
            ["HTTP-DISC-5"],
            None,
            disconnect_quiet_call
        ),
        server_case!(
            "http1: conflicting content-length rejected",
            ["SRV-LIMIT-13", "SRV-LIMIT-4"],
            None,
            conflicting_content_length
        ),
        server_case!(
            "http1: transfer-encoding not ending in one chunked rejected",
            ["SRV-LIMIT-13", "SRV-LIMIT-4"],
            None,
            unchunked_transfer_encoding
        ),
        server_case!(
            "http1: content-length with transfer-encoding refused or framed by chunks and closed",
            ["SRV-LIMIT-14"],
            None,
            cl_and_te
        ),
        server_case!(
            "http1: malformed chunked body refused, nothing read behind it",
            ["SRV-LIMIT-15"],
            None,
            malformed_chunked_body
        ),
        server_case!(
            "http1: an upgrade offer not taken keeps the next request's checks",
            ["SRV-LIMIT-15", "SRV-LIMIT-14"],
            None,
            switch_offer_keeps_checks
        ),
        server_case!(
            "http1: malformed head rejected",
            ["SRV-LIMIT-1", "SRV-LIMIT-4"],
            None,
            malformed_head
        ),
        server_case!(
            "http1: missing host rejected",
            ["SRV-LIMIT-1"],
            None,
            missing_host
        ),
        server_case!(
            "http1: raw upgrade echoes bytes",
            ["UPGRADE-RAW-1", "UPGRADE-RAW-3", "UPGRADE-RAW-4"],
            Some(Capability::Upgrade),
            raw_upgrade
        ),
    ]
}

pub(super) async fn exchange(
    target: &Target,
    method: &str,
    bytes: &[u8],
) -> Result<(WireConn, WireResponse), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(bytes).await.map_err(|e| e.to_string())?;
    let response = conn
        .read_response(method)
        .await
        .map_err(|e| e.to_string())?;
    Ok((conn, response))
}

pub(super) async fn get(target: &Target, path: &str) -> Result<WireResponse, String> {
    let (_, response) =
        exchange(target, "GET", &request("GET", path, "HTTP/1.1", &[], None)).await?;
    Ok(response)
}

pub(super) fn expect_status(response: &WireResponse, status: u16) -> Result<(), String> {
    check!(
        response.status == status,
        "expected status {status}, got {} with body {:?}",
        response.status,
        response.text()
    );
    Ok(())
}

async fn method_verbatim(target: Target) -> Result<(), String> {
    for method in ["GET", "PURGE", "MKCALENDAR", "patch"] {
        let (_, response) = exchange(
            &target,
            method,
            &request(method, "/meta", "HTTP/1.1", &[], Some(b"")),
        )
        .await?;
        expect_status(&response, 200)?;
        check!(
            response.field("method").as_deref() == Some(method),
            "sent method {method}, the app saw {:?}",
            response.field("method")
        );
    }
    Ok(())
}

async fn raw_target(target: Target) -> Result<(), String> {
    let sent = "/meta?a=%2F&b=c+d&e=%zz&&f";
    let response = get(&target, sent).await?;
    expect_status(&response, 200)?;
    check!(
        response.field("target").as_deref() == Some(sent),
        "target {:?}",
        response.field("target")
    );
    check!(
        response.field("query").as_deref() == Some("a=%2F&b=c+d&e=%zz&&f"),
        "query {:?}",
        response.field("query")
    );
    let response = get(&target, "/meta").await?;
    check!(
        response.field("query").as_deref() == Some(""),
        "empty query reported as {:?}",
        response.field("query")
    );
    Ok(())
}

async fn repeated_headers(target: Target) -> Result<(), String> {
    let bytes = request(
        "GET",
        "/meta",
        "HTTP/1.1",
        &[
            ("x-dup", "one"),
            ("x-other", "z"),
            ("x-dup", "two, three"),
            ("x-dup", "four"),
        ],
        None,
    );
    let (_, response) = exchange(&target, "GET", &bytes).await?;
    expect_status(&response, 200)?;
    let seen: Vec<String> = response
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("header: x-dup: ").map(str::to_owned))
        .collect();
    check!(
        seen == ["one", "two, three", "four"],
        "x-dup values seen by the app: {seen:?}"
    );
    Ok(())
}

async fn header_order(target: Target) -> Result<(), String> {
    // Names in no sorted or hashed order, one of them repeated after another name.
    let sent = ["x-order-c", "x-order-a", "x-order-d", "x-order-b"];
    let bytes = request(
        "GET",
        "/meta",
        "HTTP/1.1",
        &[
            (sent[0], "1"),
            (sent[1], "2"),
            (sent[2], "3"),
            (sent[1], "4"),
            (sent[3], "5"),
        ],
        None,
    );
    let (_, response) = exchange(&target, "GET", &bytes).await?;
    expect_status(&response, 200)?;
    let mut seen: Vec<String> = Vec::new();
    for line in response.text().lines() {
        let Some(name) = line
            .strip_prefix("header: ")
            .and_then(|field| field.split_once(':'))
            .map(|(name, _)| name.to_owned())
        else {
            continue;
        };
        if name.starts_with("x-order-") && !seen.contains(&name) {
            seen.push(name);
        }
    }
    check!(
        seen == sent,
        "the app saw the field names in the order {seen:?}, they were sent as {sent:?}"
    );
    Ok(())
}

async fn versions(target: Target) -> Result<(), String> {
    for (version, expected) in [("HTTP/1.1", "HTTP/1.1"), ("HTTP/1.0", "HTTP/1.0")] {
        let (_, response) =
            exchange(&target, "GET", &request("GET", "/meta", version, &[], None)).await?;
        expect_status(&response, 200)?;
        check!(
            response.field("version").as_deref() == Some(expected),
            "sent {version}, the app saw {:?}",
            response.field("version")
        );
    }
    Ok(())
}

async fn connection_info(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let client = conn.local_addr().map_err(|e| e.to_string())?;
    conn.send(&request(
        "GET",
        "/meta",
        "HTTP/1.1",
        &[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-proto", "https"),
        ],
        None,
    ))
    .await
    .map_err(|e| e.to_string())?;
    let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    expect_status(&response, 200)?;
    check!(
        response.field("connection-info").is_none(),
        "the request carried no ConnectionInfo"
    );
    check!(
        response.field("disconnect").as_deref() == Some("present"),
        "the request carried no Disconnect"
    );
    check!(
        response.field("peer") == Some(client.to_string()),
        "peer {:?}, but the client is {client}",
        response.field("peer")
    );
    check!(
        response.field("local") == Some(target.addr.to_string()),
        "local {:?}, but the server was reached at {}",
        response.field("local"),
        target.addr
    );
    check!(
        response.field("scheme").as_deref() == Some("http"),
        "scheme {:?} on a plain connection",
        response.field("scheme")
    );
    check!(
        response.field("tls").as_deref() == Some("none"),
        "tls {:?} on a plain connection",
        response.field("tls")
    );
    Ok(())
}

async fn connection_ids(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut ids = Vec::new();
    for _ in 0..2 {
        conn.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(|e| e.to_string())?;
        let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
        ids.push(response.field("connection-id"));
    }
    let other = get(&target, "/meta").await?.field("connection-id");
    check!(
        ids[0].is_some() && ids[0] == ids[1],
        "ids on one connection: {ids:?}"
    );
    check!(other != ids[0], "two connections share id {other:?}");
    Ok(())
}

async fn no_mount_prefix(target: Target) -> Result<(), String> {
    if target
        .manifest
        .capabilities
        .contains(Capability::MountPrefix)
    {
        // The server may be running with a prefix; this case is about unconfigured servers.
        let response = get(&target, "/meta").await?;
        check!(
            response.status == 200 || response.status == 404,
            "status {}",
            response.status
        );
        return Ok(());
    }
    let response = get(&target, "/meta").await?;
    expect_status(&response, 200)?;
    check!(
        response.field("mount").as_deref() == Some("none"),
        "mount {:?}",
        response.field("mount")
    );
    check!(
        response.field("app-path").as_deref() == Some("/meta"),
        "app path {:?}",
        response.field("app-path")
    );
    Ok(())
}

async fn echo_content_length(target: Target) -> Result<(), String> {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = request(
        "POST",
        "/echo",
        "HTTP/1.1",
        &[("content-type", "application/x-probe")],
        Some(&body),
    );
    // A second request right behind the body: it must not leak into the first body.
    bytes.extend_from_slice(&request("GET", "/meta", "HTTP/1.1", &[], None));
    let (mut conn, response) = exchange(&target, "POST", &bytes).await?;
    expect_status(&response, 200)?;
    check!(
        response.body == body,
        "echoed {} bytes, sent {}",
        response.body.len(),
        body.len()
    );
    check!(
        response.header("content-type").as_deref() == Some("application/x-probe"),
        "content-type {:?}",
        response.header("content-type")
    );
    let next = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    expect_status(&next, 200)?;
    check!(
        next.field("method").as_deref() == Some("GET"),
        "the pipelined request after the body was not seen intact"
    );
    Ok(())
}

async fn echo_chunked(target: Target) -> Result<(), String> {
    let raw = b"POST /echo HTTP/1.1\r\nhost: conformance.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n";
    let (_, response) = exchange(&target, "POST", raw).await?;
    expect_status(&response, 200)?;
    check!(
        response.text() == "hello world!",
        "echoed {:?}",
        response.text()
    );
    Ok(())
}

async fn request_trailers(target: Target) -> Result<(), String> {
    let raw = b"POST /body-report HTTP/1.1\r\nhost: conformance.test\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n";
    let (_, response) = exchange(&target, "POST", raw).await?;
    expect_status(&response, 200)?;
    check!(
        response.field("bytes").as_deref() == Some("3"),
        "report {:?}",
        response.text()
    );
    check!(
        response.text().contains("trailer: x-checksum: 42"),
        "the app did not receive the trailer: {:?}",
        response.text()
    );
    Ok(())
}

async fn forbidden_request_trailers(target: Target) -> Result<(), String> {
    let raw = b"POST /body-report HTTP/1.1\r\nhost: conformance.test\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n3\r\nabc\r\n0\r\nx-checksum: 42\r\ncontent-length: 99\r\nhost: elsewhere.test\r\nauthorization: Basic YTpi\r\ncontent-type: text/evil\r\n\r\n";
    let (_, response) = exchange(&target, "POST", raw).await?;
    expect_status(&response, 200)?;
    let text = response.text();
    check!(
        text.contains("trailer: x-checksum: 42"),
        "the app did not receive the allowed trailer: {text:?}"
    );
    for name in ["content-length", "host", "authorization", "content-type"] {
        check!(
            !text.contains(&format!("trailer: {name}:")),
            "the app received the forbidden trailer field {name}: {text:?}"
        );
    }
    Ok(())
}

async fn response_trailers(target: Target) -> Result<(), String> {
    let (_, response) = exchange(
        &target,
        "GET",
        &request("GET", "/trailers", "HTTP/1.1", &[("te", "trailers")], None),
    )
    .await?;
    expect_status(&response, 200)?;
    check!(
        matches!(response.framing, Framing::Chunked { terminated: true }),
        "framing {:?}",
        response.framing
    );
    check!(
        response.body.len() == 15,
        "body of {} bytes",
        response.body.len()
    );
    check!(
        response.trailer("x-probe-trailer").as_deref() == Some("done"),
        "trailers received: {:?}",
        response.trailers
    );
    Ok(())
}

async fn head_has_no_body(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(&request(
        "HEAD",
        "/status?code=200&body=hello",
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(|e| e.to_string())?;
    conn.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
        .await
        .map_err(|e| e.to_string())?;
    let head = conn
        .read_response("HEAD")
        .await
        .map_err(|e| e.to_string())?;
    expect_status(&head, 200)?;
    check!(
        head.header("content-length").as_deref() == Some("5"),
        "HEAD content-length {:?}",
        head.header("content-length")
    );
    // Had the server sent body bytes, they would now be read as the next response's head.
    let next = conn
        .read_response("GET")
        .await
        .map_err(|e| format!("the response after HEAD is garbled: {e}"))?;
    expect_status(&next, 200)?;
    check!(
        next.field("method").as_deref() == Some("GET"),
        "unexpected response after HEAD: {:?}",
        next.text()
    );
    Ok(())
}

async fn no_body_statuses(target: Target) -> Result<(), String> {
    for (method, code) in [
        ("GET", 204u16),
        ("HEAD", 204),
        ("GET", 304),
        ("GET", 205),
        ("HEAD", 205),
    ] {
        let mut conn = WireConn::connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let path = format!("/status?code={code}&body=unwanted");
        conn.send(&request(method, &path, "HTTP/1.1", &[], None))
            .await
            .map_err(|e| e.to_string())?;
        conn.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(|e| e.to_string())?;
        let first = conn
            .read_response(method)
            .await
            .map_err(|e| e.to_string())?;
        expect_status(&first, code)?;
        check!(
            first.header("transfer-encoding").is_none(),
            "{method} {code} with transfer-encoding"
        );
        match code {
            // RFC 9110 §8.6: never a content-length on a 204, not even for HEAD.
            204 => check!(
                first.header("content-length").is_none(),
                "{method} 204 with content-length {:?}",
                first.header("content-length")
            ),
            // RFC 9110 §15.3.6: a 205 has no content; a length, if any, says so.
            205 => check!(
                first
                    .header("content-length")
                    .is_none_or(|length| length == "0"),
                "{method} 205 with content-length {:?}",
                first.header("content-length")
            ),
            _ => {}
        }
        let next = conn
            .read_response("GET")
            .await
            .map_err(|e| format!("the response after {method} {code} is garbled: {e}"))?;
        check!(
            next.field("method").as_deref() == Some("GET"),
            "body bytes followed the {method} {code}: {:?}",
            next.text()
        );
    }
    Ok(())
}

/// Sends `GET path` and checks that the response was aborted: no head at all, or a body that is
/// not complete by its framing — except that with `truncated_to: Some(n)` a body cut to at most
/// `n` bytes at its declared length is accepted (the most HTTP/1.1 can show of an over-long
/// body). Either way the server must then close the connection instead of reusing it.
pub(super) async fn expect_abort(
    target: &Target,
    path: &str,
    truncated_to: Option<usize>,
) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(&request("GET", path, "HTTP/1.1", &[], None))
        .await
        .map_err(|e| e.to_string())?;
    match conn.read_response("GET").await {
        // Closing before the head is an abort too: the client cannot take it for a response.
        Err(WireError::ClosedBeforeHead(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
        Ok(response) if response.is_complete() => {
            let cut = matches!(response.framing, Framing::ContentLength { .. })
                && truncated_to.is_some_and(|max| response.body.len() <= max);
            check!(
                cut,
                "the aborted response was delivered as complete ({:?}, {} bytes)",
                response.framing,
                response.body.len()
            );
        }
        Ok(_) => {}
    }
    let rest = conn
        .read_to_close()
        .await
        .map_err(|e| format!("the connection stayed open after an aborted response: {e}"))?;
    check!(rest == 0, "{rest} more bytes followed the aborted response");
    Ok(())
}

async fn short_body_aborts(target: Target) -> Result<(), String> {
    // Declares 10 bytes, sends 5: never a complete response.
    expect_abort(&target, "/content-length?declared=10&actual=5", None).await
}

async fn long_body_aborts(target: Target) -> Result<(), String> {
    // Declares 5 bytes, yields 10: at most 5 reach the client, and the connection is not reused.
    expect_abort(&target, "/content-length?declared=5&actual=10", Some(5)).await
}

async fn panic_gives_500(target: Target) -> Result<(), String> {
    let response = get(&target, "/panic").await?;
    expect_status(&response, 500)?;
    check!(
        !response.text().contains("on purpose"),
        "the 500 leaks the panic message: {:?}",
        response.text()
    );
    let after = get(&target, "/meta").await?;
    expect_status(&after, 200)?;
    Ok(())
}

async fn error_gives_500(target: Target) -> Result<(), String> {
    let response = get(&target, "/error").await?;
    expect_status(&response, 500)?;
    check!(
        !response.text().contains("on purpose"),
        "the 500 leaks the error: {:?}",
        response.text()
    );
    Ok(())
}

async fn failure_after_head_aborts(target: Target) -> Result<(), String> {
    expect_abort(&target, "/fail-after-head", None).await
}

async fn body_limit_413(target: Target) -> Result<(), String> {
    let body = vec![b'x'; 64];
    let (_, response) = exchange(
        &target,
        "POST",
        &request("POST", "/limit?max=8", "HTTP/1.1", &[], Some(&body)),
    )
    .await?;
    expect_status(&response, 413)?;
    let (_, response) = exchange(
        &target,
        "POST",
        &request("POST", "/limit?max=100", "HTTP/1.1", &[], Some(&body)),
    )
    .await?;
    expect_status(&response, 200)?;
    check!(
        response.field("bytes").as_deref() == Some("64"),
        "raised limit: {:?}",
        response.text()
    );
    Ok(())
}

async fn continue_on_read(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let head = b"POST /body-report HTTP/1.1\r\nhost: conformance.test\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n";
    conn.send(head).await.map_err(|e| e.to_string())?;
    // The server must send 100 before any body byte arrives: wait for it before sending.
    let interim = conn
        .read_head_status()
        .await
        .map_err(|e| format!("no 100 Continue before the body: {e}"))?;
    check!(
        interim == 100,
        "expected 100 Continue before the body, got {interim}"
    );
    conn.send(b"hello").await.map_err(|e| e.to_string())?;
    let response = conn
        .read_response("POST")
        .await
        .map_err(|e| e.to_string())?;
    check!(
        response.interim.is_empty(),
        "more interim responses: {:?}",
        response.interim
    );
    expect_status(&response, 200)?;
    check!(
        response.field("bytes").as_deref() == Some("5"),
        "report {:?}",
        response.text()
    );
    Ok(())
}

async fn no_continue_without_read(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let head = b"POST /no-read HTTP/1.1\r\nhost: conformance.test\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n";
    conn.send(head).await.map_err(|e| e.to_string())?;
    let response = conn
        .read_response("POST")
        .await
        .map_err(|e| e.to_string())?;
    check!(
        response.interim.is_empty(),
        "sent {:?} although the app never read the body",
        response.interim
    );
    expect_status(&response, 200)?;
    Ok(())
}

async fn http10_framing(target: Target) -> Result<(), String> {
    let bytes = request(
        "POST",
        "/trailers",
        "HTTP/1.0",
        &[("expect", "100-continue")],
        Some(b""),
    );
    let (_, response) = exchange(&target, "POST", &bytes).await?;
    expect_status(&response, 200)?;
    check!(
        response.interim.is_empty(),
        "1xx sent to an HTTP/1.0 client: {:?}",
        response.interim
    );
    check!(
        response.header("transfer-encoding").is_none(),
        "transfer-encoding sent to an HTTP/1.0 client"
    );
    check!(
        response.body.len() == 15,
        "HTTP/1.0 body of {} bytes ({:?})",
        response.body.len(),
        response.framing
    );
    Ok(())
}

async fn hop_by_hop_removed(target: Target) -> Result<(), String> {
    let response = get(&target, "/hop-by-hop").await?;
    expect_status(&response, 200)?;
    check!(
        response.header("keep-alive").is_none(),
        "keep-alive from the app was forwarded"
    );
    check!(
        !response
            .header_values("connection")
            .iter()
            .any(|v| v.contains("x-probe")),
        "connection: x-probe from the app was forwarded"
    );
    check!(
        response.header("x-probe").as_deref() == Some("kept"),
        "an ordinary header was dropped"
    );
    Ok(())
}

async fn date_added(target: Target) -> Result<(), String> {
    let response = get(&target, "/meta").await?;
    check!(response.header("date").is_some(), "no date field");
    Ok(())
}

async fn pipelining(target: Target) -> Result<(), String> {
    let mut bytes = Vec::new();
    for n in 0..5 {
        bytes.extend(request(
            "GET",
            &format!("/meta?n={n}"),
            "HTTP/1.1",
            &[],
            None,
        ));
    }
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(&bytes).await.map_err(|e| e.to_string())?;
    for n in 0..5 {
        let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
        check!(
            response.field("query") == Some(format!("n={n}")),
            "response {n} answered {:?}",
            response.field("query")
        );
    }
    Ok(())
}

pub(super) async fn outcome(target: &Target, id: &str) -> Result<String, String> {
    Ok(get(target, &format!("/outcome?id={id}"))
        .await?
        .field("outcome")
        .unwrap_or_default())
}

pub(super) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `/outcome?id=ID` until it reads `want`; `pending` outcomes mean "not yet", any other
/// is a failure. Settling follows the exchange asynchronously, hence the bounded polling.
pub(super) async fn wait_for_outcome(
    target: &Target,
    id: &str,
    want: &str,
    pending: &[&str],
) -> Result<(), String> {
    for _ in 0..200 {
        let seen = outcome(target, id).await?;
        if seen == want {
            return Ok(());
        }
        if !pending.contains(&seen.as_str()) {
            return Err(format!(
                "the exchange was reported as {seen}, expected {want}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the exchange never settled as {want}"))
}

async fn disconnect_completed(target: Target) -> Result<(), String> {
    let id = unique("done");
    let response = get(&target, &format!("/watch?id={id}&chunks=3")).await?;
    check!(
        response.is_complete() && response.body.len() == 3 * 16 * 1024,
        "watch body incomplete"
    );
    wait_for_outcome(&target, &id, "completed", &["active"]).await
}

/// A server may reuse one exchange's signal for the next (rgi-server does, when the
/// application kept no handle to it): each request must still see a fresh, unsettled signal,
/// and a signal the application kept must keep its outcome.
async fn disconnect_per_request(target: Target) -> Result<(), String> {
    let id = unique("kept");
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let paths = [
        "/meta".to_owned(),
        format!("/watch?id={id}&chunks=1"),
        "/meta".to_owned(),
        "/meta".to_owned(),
        "/meta".to_owned(),
    ];
    for (index, path) in paths.iter().enumerate() {
        conn.send(&request("GET", path, "HTTP/1.1", &[], None))
            .await
            .map_err(|e| e.to_string())?;
        let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
        expect_status(&response, 200)?;
        check!(
            response.is_complete(),
            "request {index} ({path}): body incomplete"
        );
        if path == "/meta" {
            check!(
                response.field("disconnect-outcome").as_deref() == Some("active"),
                "request {index} on the connection saw its Disconnect as {:?} when called",
                response.field("disconnect-outcome")
            );
        }
    }
    // The kept signal settled as completed, and later exchanges did not change it.
    wait_for_outcome(&target, &id, "completed", &["active"]).await
}

async fn disconnect_client_gone(target: Target) -> Result<(), String> {
    let id = unique("gone");
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(&request(
        "GET",
        &format!("/watch?id={id}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(|e| e.to_string())?;
    // Leave only once the response has begun: a client that closes before the server has read
    // its request may legitimately never reach the application at all.
    let status = conn.read_head_status().await.map_err(|e| e.to_string())?;
    check!(status == 200, "/watch answered {status}");
    drop(conn);
    wait_for_outcome(&target, &id, "client-gone", &["active"]).await
}

async fn disconnect_quiet_call(target: Target) -> Result<(), String> {
    let id = unique("quiet");
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(&request(
        "GET",
        &format!("/watch-quiet?id={id}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(|e| e.to_string())?;
    // Leave only once the application has the request (a client that leaves before may
    // legitimately never reach it): its signal is then known to `/outcome`.
    let mut called = false;
    for _ in 0..200 {
        if outcome(&target, &id).await? != "unknown" {
            called = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check!(called, "the application was never called for /watch-quiet");
    drop(conn);
    wait_for_outcome(&target, &id, "client-gone", &["active"]).await
}

pub(super) async fn rejected_and_closed(
    target: &Target,
    raw: &[u8],
    what: &str,
) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(raw).await.map_err(|e| e.to_string())?;
    match conn.read_response("GET").await {
        Ok(response) => {
            check!(
                response.status == 400,
                "{what}: answered {} instead of 400",
                response.status
            );
            check!(
                conn.is_closed_by_server().await,
                "{what}: the connection stayed open after the 400"
            );
        }
        // Closing without a response is also a rejection.
        Err(WireError::ClosedBeforeHead(_)) => {}
        Err(e) => return Err(format!("{what}: {e}")),
    }
    Ok(())
}

async fn conflicting_content_length(target: Target) -> Result<(), String> {
    rejected_and_closed(
        &target,
        b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
        "two content-length values",
    )
    .await
}

async fn unchunked_transfer_encoding(target: Target) -> Result<(), String> {
    rejected_and_closed(
        &target,
        b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\nabcd",
        "transfer-encoding: gzip",
    )
    .await?;
    rejected_and_closed(
        &target,
        b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
        "transfer-encoding: chunked, identity",
    )
    .await?;
    // RFC 9112 §6.1: no sender applies `chunked` twice; a server decoding it once would hand
    // the application a body still chunk-encoded.
    rejected_and_closed(
        &target,
        b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, chunked\r\n\r\n9\r\n4\r\nabcd\r\n\r\n0\r\n\r\n",
        "transfer-encoding: chunked, chunked",
    )
    .await
}

/// RFC 9112 §6.3: refused with `400` and a close, or framed by the chunks alone (the application
/// sees no `content-length`) with the connection closed after the response, so that the bytes
/// after the last chunk are never read as a second request.
async fn cl_and_te(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(CL_AND_TE).await.map_err(|e| e.to_string())?;
    cl_and_te_answered(&mut conn).await
}

/// A request with `content-length` and `transfer-encoding`, and one behind its last chunk.
const CL_AND_TE: &[u8] = b"POST /meta HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /meta?smuggled HTTP/1.1\r\nhost: a\r\n\r\n";

/// Checks the answer to [`CL_AND_TE`] (`SRV-LIMIT-14`): refused, or framed by the chunks and
/// closed.
async fn cl_and_te_answered(conn: &mut WireConn) -> Result<(), String> {
    let response = match conn.read_response("POST").await {
        Ok(response) => response,
        // Closing without a response is also a refusal.
        Err(WireError::ClosedBeforeHead(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    match response.status {
        400 => {}
        200 => {
            let seen = response.text();
            check!(
                !seen.contains("header: content-length:"),
                "the application saw content-length next to transfer-encoding:\n{seen}"
            );
            check!(
                seen.contains("target: /meta\n"),
                "the first request reached the application as {seen:?}"
            );
        }
        other => {
            return Err(format!(
                "answered {other} instead of 400 or the chunk-framed request"
            ));
        }
    }
    let rest = conn.read_to_close().await.map_err(|e| {
        format!("the connection stayed open after the response ({e}): the bytes after the last chunk may be read as a request")
    })?;
    check!(
        rest == 0,
        "the server sent {rest} more bytes after the response (a second, smuggled request answered)"
    );
    Ok(())
}

/// SRV-LIMIT-15: a chunked body that breaks RFC 9112 §7.1 (lines ended by a bare LF, chunk
/// extensions off their §7.1.1 grammar) is refused or fails, and no request after it is read:
/// nothing hides behind it.
async fn malformed_chunked_body(target: Target) -> Result<(), String> {
    let cases: [(&[u8], &str); 7] = [
        (
            b"5\r\nhello\r\n0\r\nx-t: a\n\n",
            "a trailer line ended by a bare LF",
        ),
        (b"5\r\nhello\n0\r\n\r\n", "chunk data ended by a bare LF"),
        (
            b"5\nhello\r\n0\r\n\r\n",
            "a chunk-size line ended by a bare LF",
        ),
        (
            b"5;\r\nhello\r\n0\r\n\r\n",
            "a chunk extension without a name",
        ),
        (
            b"5;bad[=x\r\nhello\r\n0\r\n\r\n",
            "a chunk extension name that is no token",
        ),
        (
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
            "an unterminated quoted chunk extension",
        ),
        (
            b"5 \r\nhello\r\n0\r\n\r\n",
            "whitespace after a chunk size, without an extension",
        ),
    ];
    for (body, what) in cases {
        let mut conn = WireConn::connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes =
            b"POST /meta HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(
            b"GET /meta?hidden HTTP/1.1\r\nhost: a\r\n\r\nGET /meta?after HTTP/1.1\r\nhost: a\r\n\r\n",
        );
        conn.send(&bytes).await.map_err(|e| e.to_string())?;
        match conn.read_response("POST").await {
            // Refused (400), or answered before the body was read: either way the connection
            // must end there.
            Ok(_) => {}
            Err(WireError::ClosedBeforeHead(_)) => continue,
            Err(e) => return Err(format!("{what}: {e}")),
        }
        let rest = conn.read_to_close().await.map_err(|e| {
            format!("{what}: the connection stayed open after a malformed chunked body ({e})")
        })?;
        check!(
            rest == 0,
            "{what}: {rest} more bytes were sent: a request behind the malformed body was answered"
        );
    }
    Ok(())
}

/// SRV-LIMIT-15: a request that offers a protocol switch nobody takes leaves the checks of the
/// next request in force (`content-length` with `transfer-encoding`, `SRV-LIMIT-14`).
async fn switch_offer_keeps_checks(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes =
        b"GET /meta HTTP/1.1\r\nhost: a\r\nupgrade: x-unknown\r\nconnection: upgrade\r\n\r\n"
            .to_vec();
    bytes.extend_from_slice(CL_AND_TE);
    conn.send(&bytes).await.map_err(|e| e.to_string())?;
    let first = conn
        .read_response("GET")
        .await
        .map_err(|e| format!("the upgrade offer: {e}"))?;
    check!(
        first.status != 101,
        "switched to a protocol nobody implements"
    );
    cl_and_te_answered(&mut conn).await
}

async fn malformed_head(target: Target) -> Result<(), String> {
    rejected_and_closed(
        &target,
        b"GET /meta HTTP/1.1\r\nhost: a\r\nbad header: x\r\n\r\n",
        "space in a field name",
    )
    .await?;
    rejected_and_closed(
        &target,
        "GET /meta/caf\u{e9} HTTP/1.1\r\nhost: a\r\n\r\n".as_bytes(),
        "raw UTF-8 in the target (RFC 9112 §3.2: it must be percent-encoded)",
    )
    .await?;
    rejected_and_closed(
        &target,
        b"GET /meta HTTP/1.1\r\nhost: a\r\nx-a: 1\r\n folded\r\n\r\n",
        "obsolete line folding",
    )
    .await
}

async fn missing_host(target: Target) -> Result<(), String> {
    rejected_and_closed(
        &target,
        b"GET /meta HTTP/1.1\r\nx-a: 1\r\n\r\n",
        "HTTP/1.1 without host",
    )
    .await
}

async fn raw_upgrade(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(b"GET /upgrade HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: probe-echo\r\n\r\nearly")
        .await
        .map_err(|e| e.to_string())?;
    let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    expect_status(&response, 101)?;
    check!(
        response
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("probe-echo")),
        "upgrade field {:?}",
        response.header("upgrade")
    );
    conn.send(b" bytes").await.map_err(|e| e.to_string())?;
    let echoed = conn.read_exact_raw(11).await.map_err(|e| e.to_string())?;
    check!(
        echoed == b"early bytes",
        "echoed {:?}",
        String::from_utf8_lossy(&echoed)
    );
    Ok(())
}
