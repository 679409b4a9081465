//! WebSocket cases: a real client (tokio-tungstenite) for the happy paths and hand-made frames
//! for protocol violations.

use futures_util::{SinkExt, StreamExt};
use rgi::Capability;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{ServerCase, Target, check, server_case};
use crate::wire::IO_TIMEOUT;

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
    let mut stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let handshake = "GET /ws HTTP/1.1\r\nhost: conformance.test\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
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
    Ok(stream)
}

fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
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
