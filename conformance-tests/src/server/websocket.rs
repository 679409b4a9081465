//! WebSocket cases: a real client (tokio-tungstenite) for the happy paths and hand-made frames
//! for protocol violations.

use futures_util::{SinkExt, StreamExt};
use rgi::Capability;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use std::time::Duration;

use super::{ServerCase, Target, check, server_case};
use crate::wire::{IO_TIMEOUT, WireConn, request};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "websocket: echo of text and binary messages",
            ["WS-HS-1", "WS-HS-5", "WS-MSG-1", "WS-MSG-3"],
            Some(Capability::WebSocket),
            echo
        ),
        server_case!(
            "websocket: offered subprotocol selected",
            ["WS-HS-5"],
            Some(Capability::WebSocket),
            subprotocol
        ),
        server_case!(
            "websocket: one upgrade handler per request, the returned marker's",
            ["UPGRADE-RAW-10"],
            Some(Capability::WebSocket),
            one_handler_per_request
        ),
        server_case!(
            "websocket: ping answered by the server",
            ["WS-CTRL-1"],
            Some(Capability::WebSocket),
            ping
        ),
        server_case!(
            "websocket: peer close answered",
            ["WS-CLOSE-3", "WS-CLOSE-2"],
            Some(Capability::WebSocket),
            close_answered
        ),
        server_case!(
            "websocket: fragmented message delivered whole",
            ["WS-MSG-1", "WS-MSG-4"],
            Some(Capability::WebSocket),
            fragments
        ),
        server_case!(
            "websocket: invalid UTF-8 closes with 1007",
            ["WS-MSG-2"],
            Some(Capability::WebSocket),
            invalid_utf8
        ),
        server_case!(
            "websocket: unmasked frame closes with 1002",
            ["WS-CTRL-3"],
            Some(Capability::WebSocket),
            unmasked
        ),
        server_case!(
            "websocket: invalid handshake is no WebSocket",
            ["WS-HS-6"],
            Some(Capability::WebSocket),
            not_a_handshake
        ),
        server_case!(
            "websocket: denied handshake is an ordinary response, HTTP goes on",
            ["WS-HS-4", "WS-HS-8"],
            Some(Capability::WebSocket),
            denied
        ),
        server_case!(
            "websocket: no extension that changes messages is negotiated",
            ["WS-HS-9"],
            Some(Capability::WebSocket),
            no_opaque_extensions
        ),
        server_case!(
            "websocket: app close sends its code and reason, later sends fail",
            ["WS-CLOSE-1", "WS-CLOSE-4"],
            Some(Capability::WebSocket),
            app_close
        ),
        server_case!(
            "websocket: handler end closes with 1000, failure and panic with 1011",
            ["WS-CLOSE-5"],
            Some(Capability::WebSocket),
            handler_end_codes
        ),
        server_case!(
            "websocket: oversized message closes with 1009 unread",
            ["WS-FLOW-2"],
            Some(Capability::WebSocket),
            too_big
        ),
        server_case!(
            "websocket: the 1009 close reaches a client still sending",
            ["WS-CLOSE-8"],
            Some(Capability::WebSocket),
            close_survives_a_sending_peer
        ),
        server_case!(
            "websocket: server stops reading while the app does not receive",
            ["WS-FLOW-1", "WS-MSG-3"],
            Some(Capability::WebSocket),
            inbound_bounded
        ),
        server_case!(
            "websocket: send waits for a slow peer and fails once it is gone",
            ["WS-FLOW-3", "WS-FLOW-4", "WS-CLOSE-4"],
            Some(Capability::WebSocket),
            send_backpressure
        ),
    ]
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn open(
    target: &Target,
    protocols: Option<&str>,
) -> Result<(Socket, Option<String>), String> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = format!("ws://{}/ws", target.addr)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(protocols) = protocols {
        let value = HeaderValue::from_str(protocols).map_err(|e| e.to_string())?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    let (socket, response) =
        tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::client_async(request, stream))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|e| format!("handshake failed: {e}"))?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((socket, protocol))
}

async fn next(socket: &mut Socket) -> Result<Message, String> {
    match tokio::time::timeout(IO_TIMEOUT, socket.next()).await {
        Err(_) => Err("no message within the timeout".into()),
        Ok(None) => Err("the connection ended".into()),
        Ok(Some(Err(e))) => Err(format!("receive failed: {e}")),
        Ok(Some(Ok(message))) => Ok(message),
    }
}

async fn echo(target: Target) -> Result<(), String> {
    let (mut socket, _) = open(&target, None).await?;
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    for message in [
        Message::text("héllo"),
        Message::binary(big.clone()),
        Message::text(""),
    ] {
        socket
            .send(message.clone())
            .await
            .map_err(|e| e.to_string())?;
        let got = next(&mut socket).await?;
        check!(
            got == message,
            "sent {:?}…, got {:?}…",
            format!("{message:?}").chars().take(40).collect::<String>(),
            format!("{got:?}").chars().take(40).collect::<String>()
        );
    }
    socket.close(None).await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn subprotocol(target: Target) -> Result<(), String> {
    let (mut socket, protocol) = open(&target, Some("other, probe")).await?;
    check!(
        protocol.as_deref() == Some("probe"),
        "selected subprotocol {protocol:?}"
    );
    drop(socket.close(None).await);
    let (mut socket, protocol) = open(&target, None).await?;
    check!(
        protocol.is_none(),
        "a subprotocol {protocol:?} was selected though none was offered"
    );
    drop(socket.close(None).await);
    // The application sees exactly the subprotocols the client offered, none when none.
    for (id, offered, expected) in [
        ("offer-none", "", ""),
        (
            "offer-two",
            "sec-websocket-protocol: other, probe\r\n",
            "other,probe",
        ),
    ] {
        let (stream, _) = raw_session_at(&target, &format!("/ws-offer?id={id}"), offered).await?;
        drop(stream);
        let seen = await_report_field(&target, id, "offered").await?;
        check!(
            seen == expected,
            "the application saw the subprotocols {seen:?}; the client offered {expected:?}"
        );
    }
    Ok(())
}

async fn ping(target: Target) -> Result<(), String> {
    let (mut socket, _) = open(&target, None).await?;
    socket
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .map_err(|e| e.to_string())?;
    let got = next(&mut socket).await?;
    check!(
        got == Message::Pong(b"are you there".to_vec().into()),
        "answer to a ping: {got:?}"
    );
    drop(socket.close(None).await);
    Ok(())
}

async fn close_answered(target: Target) -> Result<(), String> {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let (mut socket, _) = open(&target, None).await?;
    socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "bye".into(),
        })))
        .await
        .map_err(|e| e.to_string())?;
    match next(&mut socket).await? {
        Message::Close(Some(frame)) => check!(
            frame.code == CloseCode::Away || frame.code == CloseCode::Normal,
            "close answered with {:?}",
            frame.code
        ),
        Message::Close(None) => {}
        other => return Err(format!("expected the close answer, got {other:?}")),
    }
    Ok(())
}

/// A raw connection after a successful handshake, for hand-made frames.
async fn raw_session(target: &Target) -> Result<TcpStream, String> {
    Ok(raw_session_at(target, "/ws", "").await?.0)
}

/// A raw connection after a successful handshake on `path` with `extra` header lines (each
/// ending in CRLF); returns the stream and the response head.
pub(super) async fn raw_session_at(
    target: &Target,
    path: &str,
    extra: &str,
) -> Result<(TcpStream, String), String> {
    let mut stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let handshake = format!(
        "GET {path} HTTP/1.1\r\nhost: conformance.test\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n{extra}\r\n"
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut byte))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        check!(n == 1, "the connection closed during the handshake");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    check!(
        text.starts_with("HTTP/1.1 101"),
        "handshake answered {text:?}"
    );
    check!(
        text.to_ascii_lowercase()
            .contains("s3pplmbitxaq9kygzzhzrbk+xoo="),
        "wrong or missing sec-websocket-accept: {text:?}"
    );
    Ok((stream, text.into_owned()))
}

pub(super) fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads server frames until a close frame; returns its code (`None` when it had none).
async fn read_close_code(stream: &mut TcpStream) -> Result<Option<u16>, String> {
    let mut buffer = Vec::new();
    loop {
        // Parse one complete unmasked server frame if the buffer holds it.
        if buffer.len() >= 2 {
            let opcode = buffer[0] & 0x0F;
            let (len, offset) = match buffer[1] & 0x7F {
                126 if buffer.len() >= 4 => {
                    (u16::from_be_bytes([buffer[2], buffer[3]]) as usize, 4)
                }
                127 if buffer.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buffer[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                n @ 0..=125 => (n as usize, 2),
                _ => (usize::MAX, 0),
            };
            if len != usize::MAX && buffer.len() >= offset + len {
                let payload: Vec<u8> = buffer[offset..offset + len].to_vec();
                buffer.drain(..offset + len);
                if opcode == 0x8 {
                    return Ok(
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
                    );
                }
                continue;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| "no close frame within the timeout".to_owned())?
            .map_err(|e| e.to_string())?;
        check!(n > 0, "the connection closed without a close frame");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn fragments(target: Target) -> Result<(), String> {
    let mut stream = raw_session(&target).await?;
    let mut bytes = frame(false, 0x1, b"frag", true);
    bytes.extend(frame(true, 0x9, b"ping", true)); // control frames may interleave
    bytes.extend(frame(false, 0x0, b"men", true));
    bytes.extend(frame(true, 0x0, b"ted", true));
    stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
    // Expect a pong and the whole echoed text, in some order of frames.
    let mut buffer = Vec::new();
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    let want = b"fragmented";
    while !buffer.windows(want.len()).any(|w| w == want) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| format!("the reassembled message did not come back (got {buffer:?})"))?
            .map_err(|e| e.to_string())?;
        check!(
            n > 0,
            "the connection closed instead of echoing the message"
        );
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

async fn invalid_utf8(target: Target) -> Result<(), String> {
    let mut stream = raw_session(&target).await?;
    stream
        .write_all(&frame(true, 0x1, &[0x68, 0xFF, 0x69], true))
        .await
        .map_err(|e| e.to_string())?;
    let code = read_close_code(&mut stream).await?;
    check!(code == Some(1007), "closed with {code:?} instead of 1007");
    Ok(())
}

async fn unmasked(target: Target) -> Result<(), String> {
    let mut stream = raw_session(&target).await?;
    stream
        .write_all(&frame(true, 0x1, b"unmasked", false))
        .await
        .map_err(|e| e.to_string())?;
    let code = read_close_code(&mut stream).await?;
    check!(code == Some(1002), "closed with {code:?} instead of 1002");
    Ok(())
}

async fn not_a_handshake(target: Target) -> Result<(), String> {
    // Version 8 is not 13: no WebSocketUpgrade, so the probe answers 400 "not a WebSocket
    // handshake" — or the server answers 400/426 itself.
    let mut conn = crate::wire::WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(b"GET /ws HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 8\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    check!(
        response.status == 400 || response.status == 426,
        "an invalid handshake got {}",
        response.status
    );
    Ok(())
}

/// A session id for the probe's `/ws-report`, unique within the run.
fn session_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// One plain HTTP/1.1 `GET` on a fresh connection; returns status and body text.
async fn http_get(target: &Target, path: &str) -> Result<(u16, String), String> {
    let mut conn = WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    conn.send(&request(
        "GET",
        path,
        "HTTP/1.1",
        &[("connection", "close")],
        None,
    ))
    .await
    .map_err(|e| e.to_string())?;
    let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    Ok((response.status, response.text()))
}

/// What the probe's session `id` reported.
/// UPGRADE-RAW-10: the probe prepares every handler the request allows and returns only the
/// WebSocket response: the WebSocket handler runs, no other.
async fn one_handler_per_request(target: Target) -> Result<(), String> {
    let id = "one-handler";
    let (mut stream, _) = raw_session_at(&target, &format!("/upgrade-both?id={id}"), "").await?;
    // The handler returns at once: the server closes the session.
    read_close_frame(&mut stream).await?;
    drop(stream);
    await_report_field(&target, id, "ws-handler").await?;
    // A handler the server wrongly started would report shortly after: give it that time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = session_report(&target, id).await?;
    check!(
        report_field(&report, "raw-handler").is_none(),
        "a second upgrade handler ran for the request (report: {report:?})"
    );
    Ok(())
}

async fn session_report(target: &Target, id: &str) -> Result<String, String> {
    let (status, text) = http_get(target, &format!("/ws-report?id={id}")).await?;
    check!(status == 200, "/ws-report answered {status}");
    Ok(text)
}

fn report_field(report: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}: ");
    report
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

/// Polls the probe's report of `id` until `name` is present (at most `IO_TIMEOUT`).
async fn await_report_field(target: &Target, id: &str, name: &str) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let report = session_report(target, id).await?;
        if let Some(value) = report_field(&report, name) {
            return Ok(value);
        }
        check!(
            tokio::time::Instant::now() < deadline,
            "the session never reported `{name}` (report: {report:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one whole server frame: (first byte, payload). `buffer` keeps bytes read past it.
pub(super) async fn read_frame<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> Result<(u8, Vec<u8>), String> {
    loop {
        if buffer.len() >= 2 {
            let (len, offset) = match buffer[1] & 0x7F {
                126 if buffer.len() >= 4 => {
                    (u16::from_be_bytes([buffer[2], buffer[3]]) as usize, 4)
                }
                127 if buffer.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buffer[2..10]);
                    (
                        usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                        10,
                    )
                }
                n @ 0..=125 => (n as usize, 2),
                _ => (usize::MAX, 0),
            };
            check!(buffer[1] & 0x80 == 0, "the server sent a masked frame");
            if len != usize::MAX && buffer.len() >= offset + len {
                let first = buffer[0];
                let payload = buffer[offset..offset + len].to_vec();
                buffer.drain(..offset + len);
                return Ok((first, payload));
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| "no frame within the timeout".to_owned())?
            .map_err(|e| e.to_string())?;
        check!(n > 0, "the connection closed before a whole frame");
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Reads frames until a close frame; returns its code and reason.
pub(super) async fn read_close_frame<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Option<u16>, String), String> {
    let mut buffer = Vec::new();
    loop {
        let (first, payload) = read_frame(stream, &mut buffer).await?;
        if first & 0x0F == 0x8 {
            let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned();
            return Ok((code, reason));
        }
    }
}

/// Waits until the server closes the connection (reads and discards until end of input).
async fn await_transport_close<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk)).await {
            Err(_) => {
                return Err(format!(
                    "the server kept the connection open past {IO_TIMEOUT:?}"
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    }
}

fn ws_handshake(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: conformance.test\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// WS-HS-4, WS-HS-8: a valid handshake the app denies (or ignores) gets the app's response,
/// no switch, and the connection goes on with HTTP.
async fn denied(target: Target) -> Result<(), String> {
    for (path, status, body) in [("/ws-deny", 403, Some("denied\n")), ("/meta", 200, None)] {
        let mut conn = WireConn::connect(target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = ws_handshake(path);
        bytes.extend(request("GET", "/meta", "HTTP/1.1", &[], None));
        conn.send(&bytes).await.map_err(|e| e.to_string())?;
        let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
        check!(
            response.status == status,
            "a handshake to {path} that the app answered {status} got {}",
            response.status
        );
        check!(
            response.header("sec-websocket-accept").is_none(),
            "the handshake to {path} was completed though the app did not accept"
        );
        if let Some(body) = body {
            check!(
                response.text() == body && response.header("x-probe").as_deref() == Some("denied"),
                "the app's denial was not sent as given: {:?} {:?}",
                response.header("x-probe"),
                response.text()
            );
        }
        let next = conn
            .read_response("GET")
            .await
            .map_err(|e| format!("after the answer to {path}, the next request failed: {e}"))?;
        check!(
            next.status == 200 && next.field("method").as_deref() == Some("GET"),
            "after the answer to {path}, the next request got {} {:?}",
            next.status,
            next.text()
        );
    }
    Ok(())
}

/// WS-HS-9: offered an unknown, message-changing extension, the server negotiates nothing but
/// transparent ones, and messages arrive as sent.
async fn no_opaque_extensions(target: Target) -> Result<(), String> {
    let (mut stream, head) = raw_session_at(
        &target,
        "/ws",
        "sec-websocket-extensions: x-rgi-conformance-uppercase, permessage-deflate\r\n",
    )
    .await?;
    let mut negotiated = Vec::new();
    for line in head.lines() {
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("sec-websocket-extensions:") {
            for extension in value.split(',') {
                let name = extension.split(';').next().unwrap_or("").trim().to_owned();
                negotiated.push(name);
            }
        }
    }
    check!(
        negotiated.iter().all(|n| n == "permessage-deflate"),
        "the server negotiated {negotiated:?}; only transparent extensions are allowed"
    );
    let deflate = !negotiated.is_empty();
    stream
        .write_all(&frame(true, 0x1, b"Plain Text", true))
        .await
        .map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let (first, payload) = read_frame(&mut stream, &mut buffer).await?;
    check!(
        first & 0x0F == 0x1,
        "the echo is not a text frame: {first:#04x}"
    );
    if deflate {
        check!(
            first & 0x30 == 0,
            "reserved bits RSV2/RSV3 set: {first:#04x}"
        );
    } else {
        check!(
            first & 0x70 == 0 && payload == b"Plain Text",
            "without extensions the echo was {first:#04x} {:?}",
            String::from_utf8_lossy(&payload)
        );
    }
    Ok(())
}

/// WS-CLOSE-1, WS-CLOSE-4: the app's close goes out with its code and reason; a send after it
/// fails with a `WsError`; the server closes the transport after the closing handshake.
async fn app_close(target: Target) -> Result<(), String> {
    let id = session_id("close");
    let path = format!("/ws-app?mode=close&code=4001&reason=probe-bye&id={id}");
    let (mut stream, _) = raw_session_at(&target, &path, "").await?;
    let (code, reason) = read_close_frame(&mut stream).await?;
    check!(
        code == Some(4001) && reason == "probe-bye",
        "the app closed with 4001 \"probe-bye\"; the peer got {code:?} {reason:?}"
    );
    let mut answer = 4001u16.to_be_bytes().to_vec();
    answer.extend_from_slice(b"probe-bye");
    stream
        .write_all(&frame(true, 0x8, &answer, true))
        .await
        .map_err(|e| e.to_string())?;
    await_transport_close(&mut stream).await?;
    let after = await_report_field(&target, &id, "after-close-send").await?;
    check!(
        after.starts_with("error"),
        "send after the app's close gave {after:?} instead of a WsError"
    );
    Ok(())
}

/// WS-CLOSE-5: the handler returning `Ok` closes with 1000; returning `Err` or panicking, with
/// 1011.
async fn handler_end_codes(target: Target) -> Result<(), String> {
    for (mode, expected) in [("ok", 1000), ("err", 1011), ("panic", 1011)] {
        let path = format!("/ws-app?mode={mode}");
        let (mut stream, _) = raw_session_at(&target, &path, "").await?;
        let (code, _) = read_close_frame(&mut stream).await?;
        check!(
            code == Some(expected),
            "a handler that {} closed with {code:?} instead of {expected}",
            match mode {
                "ok" => "returned Ok",
                "err" => "returned Err",
                _ => "panicked",
            }
        );
    }
    Ok(())
}

/// WS-FLOW-2: a frame declaring a 1 TiB payload is refused with 1009 without being read.
async fn too_big(target: Target) -> Result<(), String> {
    let mut stream = raw_session(&target).await?;
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(1u64 << 40).to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    bytes.extend_from_slice(&[0u8; 1024]);
    stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let code = read_close_code(&mut stream).await?;
    check!(
        code == Some(1009),
        "a 1 TiB message was answered with close {code:?} instead of 1009"
    );
    Ok(())
}

/// WS-CLOSE-8: a client that writes 8 MiB of an oversized message before it reads still finds
/// the 1009 close frame: the server did not close with its input unread (which resets the
/// connection).
async fn close_survives_a_sending_peer(target: Target) -> Result<(), String> {
    let mut stream = raw_session(&target).await?;
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&(1u64 << 40).to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let chunk = vec![0u8; 64 * 1024];
    for _ in 0..128 {
        stream.write_all(&chunk).await.map_err(|e| {
            format!("the connection failed while the client was still sending ({e}): the server closed with its input unread")
        })?;
    }
    let code = read_close_code(&mut stream).await?;
    check!(
        code == Some(1009),
        "the client that kept sending read close {code:?} instead of 1009"
    );
    Ok(())
}

/// How much a case writes into a session whose application does not read before deciding
/// that the server reads without bound.
const UNREAD_BOUND: usize = 64 << 20;
/// How long no progress counts as "the peer stopped reading".
const STALL: Duration = Duration::from_secs(2);

/// WS-FLOW-1, WS-MSG-3: while the app does not receive, the server stops reading (the client's
/// writes stall well before 64 MiB); once it receives, every message arrives.
async fn inbound_bounded(target: Target) -> Result<(), String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let id = session_id("hold");
    let (stream, _) = raw_session_at(&target, &format!("/ws-app?mode=hold&id={id}"), "").await?;
    await_report_field(&target, &id, "held").await?;
    let (_read, mut write) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop) = (written.clone(), stop.clone());
        tokio::spawn(async move {
            let message = frame(true, 0x2, &vec![b'm'; 64 * 1024], true);
            let mut frames = 0usize;
            while !stop.load(Ordering::SeqCst) && frames * message.len() < UNREAD_BOUND {
                if write.write_all(&message).await.is_err() {
                    break;
                }
                frames += 1;
                written.store(frames, Ordering::SeqCst);
            }
            (frames, write)
        })
    };
    // Watch the progress until it stalls or the writer finishes.
    let mut last = usize::MAX;
    let mut since = tokio::time::Instant::now();
    while !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = written.load(Ordering::SeqCst);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= STALL {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let stalled = !writer.is_finished();
    let (status, _) = http_get(&target, &format!("/ws-release?id={id}")).await?;
    check!(status == 200, "/ws-release answered {status}");
    let (frames, mut write) = tokio::time::timeout(IO_TIMEOUT, writer)
        .await
        .map_err(|_| "the writes did not resume after the app started receiving".to_owned())?
        .map_err(|e| format!("the writer failed: {e}"))?;
    check!(
        stalled,
        "the server read {frames} messages of 64 KiB ({} MiB) for an app that received none",
        frames / 16
    );
    write
        .write_all(&frame(true, 0x8, &1000u16.to_be_bytes(), true))
        .await
        .map_err(|e| e.to_string())?;
    let done = await_report_field(&target, &id, "done").await;
    let report = session_report(&target, &id).await?;
    done.map_err(|e| format!("{e}; report {report:?}"))?;
    let received = report_field(&report, "received");
    check!(
        received == Some(frames.to_string()),
        "{frames} messages were sent, the app received {received:?}"
    );
    Ok(())
}

/// WS-FLOW-3, WS-FLOW-4, WS-CLOSE-4: an app sending to a peer that does not read is held back
/// (`send` waits) instead of buffered; once the peer is gone, its send fails with a `WsError`.
async fn send_backpressure(target: Target) -> Result<(), String> {
    const SIZE: usize = 64 * 1024;
    const COUNT: usize = 1024; // 64 MiB in all
    let id = session_id("flood");
    let path = format!("/ws-app?mode=flood&size={SIZE}&count={COUNT}&id={id}");
    let (stream, _) = raw_session_at(&target, &path, "").await?;
    // Do not read; wait until the app's progress stops.
    let mut last = String::new();
    let mut since = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT * 3;
    loop {
        let report = session_report(&target, &id).await?;
        check!(
            report_field(&report, "flood").is_none(),
            "every send of 64 MiB resolved though the peer read nothing ({report:?})"
        );
        let sent = report_field(&report, "sent").unwrap_or_default();
        if sent != last {
            last = sent;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= STALL {
            break;
        }
        check!(
            tokio::time::Instant::now() < deadline,
            "the app's sends never stalled (sent {last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent: usize = last.parse().unwrap_or(0);
    check!(
        sent * SIZE <= UNREAD_BOUND / 2,
        "{sent} sends of 64 KiB resolved for a peer that read nothing"
    );
    // The peer goes away: the pending send must fail.
    drop(stream);
    let outcome = await_report_field(&target, &id, "flood").await?;
    check!(
        outcome.starts_with("error"),
        "after the peer left, the app's sends ended with {outcome:?} instead of a WsError"
    );
    Ok(())
}
