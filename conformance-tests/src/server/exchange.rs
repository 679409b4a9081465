//! Request and response semantics over HTTP/1.1 (raw bytes) and HTTP/2: what the server passes
//! to the application and what it puts on the wire from the application's response.

use bytes::Bytes;
use http_body_util::BodyExt;
use rgi::Capability;

use super::http1::{exchange, expect_abort, expect_status, get, unique, wait_for_outcome};
use super::{ServerCase, Target, check, server_case};
use crate::wire::{Framing, WireConn, request};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "http1: request header fields passed on unchanged",
            ["HTTP-REQ-9"],
            None,
            headers_unchanged
        ),
        server_case!(
            "http1: path that is not UTF-8 accepted",
            ["HTTP-PATH-7"],
            None,
            non_utf8_path
        ),
        server_case!(
            "http1: request without a body is ended before the first poll",
            ["HTTP-BODY-4"],
            None,
            empty_body_ended
        ),
        server_case!(
            "http2: request without a body is ended before the first poll",
            ["HTTP-BODY-4"],
            Some(Capability::Http2),
            empty_body_ended_h2
        ),
        server_case!(
            "http1: content-length body has an exact, shrinking size hint",
            ["HTTP-BODY-6"],
            None,
            exact_size_hint
        ),
        server_case!(
            "http1: malformed chunked body fails with a protocol error, connection closed",
            ["HTTP-BODY-14", "CORE-ERR-7"],
            None,
            malformed_chunks
        ),
        server_case!(
            "http1: unsendable responses (status 600, bare 101, bad content-length) become 500",
            ["CORE-ERR-6"],
            None,
            unsendable_responses
        ),
        server_case!(
            "http2: unsendable responses (status 600, bad content-length) become 500",
            ["CORE-ERR-6"],
            Some(Capability::Http2),
            unsendable_responses_h2
        ),
        server_case!(
            "http1: reason phrase generated from the status code",
            ["HTTP-RESP-3"],
            None,
            reason_phrase
        ),
        server_case!(
            "http1: unknown response extensions ignored",
            ["EXT-CAP-8"],
            None,
            unknown_extension
        ),
        server_case!(
            "http1: repeated response fields sent as separate lines, in order",
            ["HTTP-RESP-7"],
            None,
            repeated_response_fields
        ),
        server_case!(
            "http1: one final head, even when the app fails after it",
            ["HTTP-RESP-1"],
            None,
            one_final_head
        ),
        server_case!(
            "http1: response framed by content-length, size hint, chunks, or close on HTTP/1.0",
            ["HTTP-FRAME-1"],
            None,
            response_framing
        ),
        server_case!(
            "http1: empty data frames do not end the body",
            ["HTTP-FRAME-13"],
            None,
            zero_frames
        ),
        server_case!(
            "http2: empty data frames do not end the body",
            ["HTTP-FRAME-13"],
            Some(Capability::Http2),
            zero_frames_h2
        ),
        server_case!(
            "http1: data after the trailers aborts the response",
            ["HTTP-TRAIL-3"],
            Some(Capability::ResponseTrailers),
            data_after_trailers
        ),
        server_case!(
            "http1: forbidden fields removed from response trailers",
            ["HTTP-TRAIL-8"],
            Some(Capability::ResponseTrailers),
            forbidden_trailers
        ),
        server_case!(
            "http2: forbidden fields removed from response trailers",
            ["HTTP-TRAIL-8"],
            Some(Capability::Http2),
            forbidden_trailers_h2
        ),
        server_case!(
            "http1: responses the server cuts short settle Disconnect as aborted",
            ["HTTP-DISC-6"],
            None,
            disconnect_aborted
        ),
        server_case!(
            "http1: accepted upgrade settles Disconnect as completed",
            ["HTTP-DISC-7"],
            Some(Capability::Upgrade),
            disconnect_upgrade_completed
        ),
        server_case!(
            "http1: optional extensions present exactly when claimed and applicable",
            ["EXT-CAP-1", "EXT-CAP-7"],
            None,
            extensions_match_claims
        ),
        server_case!(
            "http1: early hints before the head, refused after it",
            ["HTTP-INTERIM-4", "HTTP-INTERIM-5"],
            Some(Capability::EarlyHints),
            early_hints
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn headers_unchanged(target: Target) -> Result<(), String> {
    let sent = [
        ("user-agent", "rgi-conformance/1"),
        ("accept", "text/plain, */*;q=0.1"),
        ("x-custom", "a  b\tc"),
        ("x-empty", ""),
        ("cookie", "a=1; b=2"),
        ("x-forwarded-proto-like", "keep"),
    ];
    let raw = request("GET", "/meta", "HTTP/1.1", &sent, None);
    let (_, response) = exchange(&target, "GET", &raw).await?;
    expect_status(&response, 200)?;
    let seen: Vec<String> = response
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("header: ").map(str::to_owned))
        .collect();
    let mut expected = vec!["host: conformance.test".to_owned()];
    expected.extend(sent.iter().map(|(n, v)| format!("{n}: {v}")));
    check!(
        seen == expected,
        "the app saw the fields {seen:?}, the client sent {expected:?}"
    );
    Ok(())
}

async fn non_utf8_path(target: Target) -> Result<(), String> {
    let response = get(&target, "/meta/%FF%FE-x").await?;
    if target
        .manifest
        .capabilities
        .contains(Capability::MountPrefix)
    {
        // The server may run with a prefix, which puts /meta outside it (404); still no 400.
        check!(
            response.status == 200 || response.status == 404,
            "a path that is not UTF-8 got {}",
            response.status
        );
        return Ok(());
    }
    expect_status(&response, 200)?;
    check!(
        response.field("target").as_deref() == Some("/meta/%FF%FE-x"),
        "target {:?}",
        response.field("target")
    );
    Ok(())
}

async fn empty_body_ended(target: Target) -> Result<(), String> {
    let requests = [
        (
            "GET without framing",
            request("GET", "/body-info", "HTTP/1.1", &[], None),
        ),
        (
            "POST with content-length: 0",
            request("POST", "/body-info", "HTTP/1.1", &[], Some(b"")),
        ),
    ];
    for (what, raw) in requests {
        let (_, response) = exchange(&target, "POST", &raw).await?;
        expect_status(&response, 200)?;
        check!(
            response.field("end-stream-before").as_deref() == Some("true")
                && response.field("first").as_deref() == Some("none"),
            "{what}: the body reported {:?}",
            response.text()
        );
    }
    Ok(())
}

async fn empty_body_ended_h2(target: Target) -> Result<(), String> {
    let mut sender = super::http2::connect(&target).await?;
    let (status, body, _) =
        super::http2::send(&mut sender, super::http2::get("/body-info")).await?;
    check!(status == 200, "status {status}");
    check!(
        super::http2::field(&body, "end-stream-before").as_deref() == Some("true")
            && super::http2::field(&body, "first").as_deref() == Some("none"),
        "a request with END_STREAM on its headers: {:?}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

async fn exact_size_hint(target: Target) -> Result<(), String> {
    let body = vec![b'h'; 100_000];
    let raw = request("POST", "/body-info", "HTTP/1.1", &[], Some(&body));
    let (_, response) = exchange(&target, "POST", &raw).await?;
    expect_status(&response, 200)?;
    check!(
        response.field("hint-before").as_deref() == Some("100000"),
        "size hint before reading: {:?}",
        response.field("hint-before")
    );
    let first: usize = response
        .field("first")
        .and_then(|f| f.strip_prefix("data ").and_then(|n| n.parse().ok()))
        .ok_or_else(|| format!("first frame {:?}", response.field("first")))?;
    let want = (100_000 - first).to_string();
    check!(
        response.field("hint-after-first").as_deref() == Some(want.as_str()),
        "after a first frame of {first} bytes the size hint was {:?}, not {want}",
        response.field("hint-after-first")
    );
    check!(
        response.field("total").as_deref() == Some("100000"),
        "total {:?}",
        response.field("total")
    );
    Ok(())
}

async fn malformed_chunks(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(b"POST /body-info HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\nGET /meta HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .map_err(err)?;
    let response = conn.read_response("POST").await.map_err(err)?;
    if response.status == 200 {
        check!(
            response.field("error").as_deref() == Some("protocol"),
            "a bad chunk size reached the app as {:?}",
            response.text()
        );
    } else {
        // The app may never get that far if the server rejects the framing itself.
        check!(
            response.status == 400,
            "a malformed chunked body was answered {}",
            response.status
        );
    }
    let rest = conn
        .read_to_close()
        .await
        .map_err(|e| format!("the connection stayed open after a protocol error: {e}"))?;
    check!(
        rest == 0,
        "the server read another request after a malformed body ({rest} more bytes)"
    );
    Ok(())
}

const UNSENDABLE_H1: [&str; 4] = [
    "status-600",
    "status-101",
    "content-length",
    "content-length-list",
];

async fn unsendable_responses(target: Target) -> Result<(), String> {
    for kind in UNSENDABLE_H1 {
        let response = get(&target, &format!("/bad-response?kind={kind}")).await?;
        check!(
            response.status == 500,
            "an unsendable response ({kind}) went out as {} {:?}",
            response.status,
            response.text()
        );
    }
    Ok(())
}

async fn unsendable_responses_h2(target: Target) -> Result<(), String> {
    let mut sender = super::http2::connect(&target).await?;
    for kind in ["status-600", "content-length", "content-length-list"] {
        let req = super::http2::get(&format!("/bad-response?kind={kind}"));
        let status = match sender.send_request(req).await {
            Ok(response) => response.status().as_u16(),
            Err(e) => return Err(format!("{kind}: the stream failed instead of a 500: {e}")),
        };
        check!(
            status == 500,
            "an unsendable response ({kind}) went out as {status}"
        );
    }
    Ok(())
}

async fn reason_phrase(target: Target) -> Result<(), String> {
    let response = get(&target, "/bad-response?kind=reason").await?;
    expect_status(&response, 200)?;
    check!(
        response.reason == "OK" || response.reason.is_empty(),
        "the reason phrase {:?} came from the application",
        response.reason
    );
    Ok(())
}

async fn unknown_extension(target: Target) -> Result<(), String> {
    let response = get(&target, "/bad-response?kind=unknown-extension").await?;
    expect_status(&response, 200)?;
    check!(
        response.text() == "bad response\n",
        "body {:?}",
        response.text()
    );
    Ok(())
}

async fn repeated_response_fields(target: Target) -> Result<(), String> {
    let response = get(&target, "/set-cookie").await?;
    expect_status(&response, 200)?;
    let cookies = response.header_values("set-cookie");
    check!(
        cookies == ["a=1", "b=2; Path=/", "c=3"],
        "set-cookie lines {cookies:?}"
    );
    let multi = response.header_values("x-multi");
    check!(multi == ["one", "two"], "x-multi lines {multi:?}");
    Ok(())
}

async fn one_final_head(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    let mut raw = request("GET", "/fail-after-head", "HTTP/1.1", &[], None);
    raw.extend(request("GET", "/meta", "HTTP/1.1", &[], None));
    conn.send(&raw).await.map_err(err)?;
    let response = conn.read_response("GET").await.map_err(err)?;
    expect_status(&response, 200)?;
    check!(
        !response.is_complete(),
        "a body that failed was delivered as complete"
    );
    let rest = conn
        .read_to_close()
        .await
        .map_err(|e| format!("the connection stayed open after the failure: {e}"))?;
    check!(
        rest == 0,
        "{rest} bytes (a second head?) followed the failed response"
    );
    Ok(())
}

async fn response_framing(target: Target) -> Result<(), String> {
    // The application's own content-length.
    let response = get(&target, "/content-length?declared=7&actual=7").await?;
    check!(
        response.framing
            == Framing::ContentLength {
                declared: 7,
                complete: true
            },
        "declared content-length: framing {:?}",
        response.framing
    );
    // An exact size hint: content-length computed, or chunks.
    let response = get(&target, "/stream?chunks=3&size=5").await?;
    let framed = match response.framing {
        Framing::ContentLength { declared, complete } => declared == 15 && complete,
        Framing::Chunked { terminated } => terminated,
        _ => false,
    };
    check!(
        framed && response.body.len() == 15,
        "exact size hint: framing {:?}, {} bytes",
        response.framing,
        response.body.len()
    );
    // No length known: chunked on HTTP/1.1 ...
    let response = get(&target, "/zero-frames").await?;
    check!(
        response.framing == Framing::Chunked { terminated: true } && response.text() == "abcdef",
        "unknown length on HTTP/1.1: framing {:?}, body {:?}",
        response.framing,
        response.text()
    );
    // ... and delimited by closing the connection on HTTP/1.0.
    let (_, response) = exchange(
        &target,
        "GET",
        &request("GET", "/zero-frames", "HTTP/1.0", &[], None),
    )
    .await?;
    check!(
        response.framing == Framing::Close && response.text() == "abcdef",
        "unknown length on HTTP/1.0: framing {:?}, body {:?}",
        response.framing,
        response.text()
    );
    Ok(())
}

async fn zero_frames(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    let mut raw = request("GET", "/zero-frames", "HTTP/1.1", &[], None);
    raw.extend(request("GET", "/meta", "HTTP/1.1", &[], None));
    conn.send(&raw).await.map_err(err)?;
    let response = conn.read_response("GET").await.map_err(err)?;
    expect_status(&response, 200)?;
    check!(
        response.text() == "abcdef" && response.is_complete(),
        "body {:?} ({:?}): an empty frame ended it early",
        response.text(),
        response.framing
    );
    let next = conn
        .read_response("GET")
        .await
        .map_err(|e| format!("the response after the empty frames is garbled: {e}"))?;
    check!(
        next.field("method").as_deref() == Some("GET"),
        "the next response is {:?}",
        next.text()
    );
    Ok(())
}

async fn zero_frames_h2(target: Target) -> Result<(), String> {
    let mut sender = super::http2::connect(&target).await?;
    let (status, body, _) =
        super::http2::send(&mut sender, super::http2::get("/zero-frames")).await?;
    check!(status == 200, "status {status}");
    check!(
        body.as_ref() == b"abcdef",
        "body {:?}: an empty frame ended the stream early",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

async fn data_after_trailers(target: Target) -> Result<(), String> {
    expect_abort(&target, "/trailers-then-data", None).await
}

fn forbidden_left(names: impl Iterator<Item = String>) -> Vec<String> {
    names
        .filter(|name| {
            rgi::fields::FORBIDDEN_IN_TRAILERS
                .iter()
                .any(|f| f.as_str() == name)
        })
        .collect()
}

async fn forbidden_trailers(target: Target) -> Result<(), String> {
    let (_, response) = exchange(
        &target,
        "GET",
        &request(
            "GET",
            "/forbidden-trailers",
            "HTTP/1.1",
            &[("te", "trailers")],
            None,
        ),
    )
    .await?;
    expect_status(&response, 200)?;
    check!(
        response.is_complete() && response.text() == "body",
        "body {:?} ({:?})",
        response.text(),
        response.framing
    );
    let left = forbidden_left(response.trailers.iter().map(|(n, _)| n.clone()));
    check!(left.is_empty(), "forbidden trailer fields sent: {left:?}");
    check!(
        response.trailer("x-probe-trailer").as_deref() == Some("done"),
        "the allowed trailer was lost: {:?}",
        response.trailers
    );
    Ok(())
}

async fn forbidden_trailers_h2(target: Target) -> Result<(), String> {
    let mut sender = super::http2::connect(&target).await?;
    let response = sender
        .send_request(super::http2::get("/forbidden-trailers"))
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    check!(response.status() == 200, "status {}", response.status());
    let collected = response.into_body().collect().await.map_err(|e| {
        format!("the body failed (forbidden trailers must be removed, not fatal): {e}")
    })?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    check!(collected.to_bytes() == Bytes::from_static(b"body"), "body");
    let left = forbidden_left(trailers.keys().map(|n| n.as_str().to_owned()));
    check!(left.is_empty(), "forbidden trailer fields sent: {left:?}");
    check!(
        trailers.get("x-probe-trailer").is_some_and(|v| v == "done"),
        "the allowed trailer was lost: {trailers:?}"
    );
    Ok(())
}

async fn disconnect_aborted(target: Target) -> Result<(), String> {
    for route in ["/watch-fail", "/watch-short"] {
        let id = unique("abort");
        expect_abort(&target, &format!("{route}?id={id}"), None).await?;
        wait_for_outcome(&target, &id, "aborted", &["active"])
            .await
            .map_err(|e| format!("{route}: {e}"))?;
    }
    Ok(())
}

async fn disconnect_upgrade_completed(target: Target) -> Result<(), String> {
    let id = unique("upgrade");
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(
        format!(
            "GET /watch-upgrade?id={id} HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: probe-echo\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .map_err(err)?;
    let response = conn.read_response("GET").await.map_err(err)?;
    expect_status(&response, 101)?;
    // The session is still open; the exchange that led to it is settled as completed.
    wait_for_outcome(&target, &id, "completed", &["active", "unknown"]).await?;
    conn.send(b"ping").await.map_err(err)?;
    let echoed = conn.read_exact_raw(4).await.map_err(err)?;
    check!(
        echoed == b"ping",
        "the upgraded session did not survive: {:?}",
        String::from_utf8_lossy(&echoed)
    );
    Ok(())
}

async fn extensions_match_claims(target: Target) -> Result<(), String> {
    let claims = target.manifest.capabilities;
    let expect = |claimed: bool| if claimed { "present" } else { "missing" };
    // A plain HTTP/1.1 request.
    let response = get(&target, "/exts").await?;
    expect_status(&response, 200)?;
    let early = response.field("early-hints");
    check!(
        early.as_deref() == Some(expect(claims.contains(Capability::EarlyHints))),
        "EarlyHints {early:?} on an HTTP/1.1 request"
    );
    check!(
        response.field("tls").as_deref() == Some("missing"),
        "tls() is Some on a plain connection"
    );
    check!(
        response.field("on-upgrade").as_deref() == Some("missing")
            && response.field("websocket-upgrade").as_deref() == Some("missing"),
        "upgrade extensions on a request that offers no upgrade: {:?}",
        response.text()
    );
    if !claims.contains(Capability::MountPrefix) {
        check!(
            response.field("mount-prefix").as_deref() == Some("missing"),
            "MountPrefix without the mount-prefix capability"
        );
    }
    if !claims.contains(Capability::ProxyHeaders) {
        check!(
            response.field("forwarded").as_deref() == Some("false"),
            "is_forwarded() without the proxy-headers capability"
        );
    }
    // An HTTP/1.0 request cannot receive 103.
    let (_, response) = exchange(
        &target,
        "GET",
        &request("GET", "/exts", "HTTP/1.0", &[], None),
    )
    .await?;
    check!(
        response.field("early-hints").as_deref() == Some("missing"),
        "EarlyHints on an HTTP/1.0 request, which cannot receive 103"
    );
    // A raw upgrade offer.
    let response = exchange(
        &target,
        "GET",
        &request(
            "GET",
            "/exts",
            "HTTP/1.1",
            &[("connection", "upgrade"), ("upgrade", "probe-echo")],
            None,
        ),
    )
    .await?
    .1;
    let upgrade = response.field("on-upgrade");
    check!(
        upgrade.as_deref() == Some(expect(claims.contains(Capability::Upgrade))),
        "OnUpgrade {upgrade:?} on an upgrade offer"
    );
    // A WebSocket handshake.
    let response = exchange(
        &target,
        "GET",
        &request(
            "GET",
            "/exts",
            "HTTP/1.1",
            &[
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            None,
        ),
    )
    .await?
    .1;
    let ws = response.field("websocket-upgrade");
    check!(
        ws.as_deref() == Some(expect(claims.contains(Capability::WebSocket))),
        "WebSocketUpgrade {ws:?} on a WebSocket handshake"
    );
    Ok(())
}

async fn early_hints(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request("GET", "/early-hints", "HTTP/1.1", &[], None))
        .await
        .map_err(err)?;
    let response = conn.read_response("GET").await.map_err(err)?;
    expect_status(&response, 200)?;
    check!(
        response.interim == [103, 103],
        "interim responses {:?}, expected two 103",
        response.interim
    );
    let links: Vec<String> = conn
        .interim_heads()
        .iter()
        .flat_map(|h| h.iter().filter(|(n, _)| n == "link"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    check!(
        links == ["</a.css>; rel=preload", "</b.js>; rel=preload"],
        "103 link fields {links:?}"
    );
    check!(
        response.field("before-head").as_deref() == Some("ok,ok"),
        "EarlyHints::send before the head: {:?}",
        response.field("before-head")
    );
    check!(
        response.field("after-head").as_deref() == Some("head-sent"),
        "EarlyHints::send after the head: {:?}",
        response.field("after-head")
    );
    Ok(())
}
