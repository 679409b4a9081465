//! WebSocket and raw upgrades over HTTP/2 extended CONNECT (RFC 8441): `WS-H2-*`,
//! `UPGRADE-RAW-9`. The client is hyper's HTTP/2 client; frames on the upgraded stream are
//! written by hand so that the end of the stream (`END_STREAM` or reset) is visible.

use bytes::Bytes;
use http::{Method, Request, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::Capability;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::websocket::{frame, read_close_frame, read_frame};
use super::{ServerCase, Target, check, server_case};
use crate::wire::IO_TIMEOUT;

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "http2 websocket: the server enables extended CONNECT",
            ["WS-H2-2"],
            Some(Capability::WebSocketHttp2),
            settings_enable_connect
        ),
        server_case!(
            "http2 websocket: session over extended CONNECT, ended with END_STREAM",
            ["WS-H2-1", "WS-H2-4", "WS-HS-5"],
            Some(Capability::WebSocketHttp2),
            session
        ),
        server_case!(
            "http2: no WebSocketUpgrade for a request that is no extended CONNECT handshake",
            ["WS-H2-3", "WS-HS-6"],
            Some(Capability::Http2),
            no_h2_upgrade_without_handshake
        ),
        server_case!(
            "http2 upgrade: raw stream over extended CONNECT in DATA frames",
            ["UPGRADE-RAW-9", "UPGRADE-RAW-1"],
            Some(Capability::WebSocketHttp2),
            raw_stream
        ),
    ]
}

type Outgoing = BoxBody<Bytes, std::convert::Infallible>;

/// The value of `SETTINGS_ENABLE_CONNECT_PROTOCOL` in the server's first SETTINGS frame
/// (`None` when absent).
async fn enable_connect_setting(target: &Target) -> Result<Option<u32>, String> {
    let mut stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // empty SETTINGS
    stream.write_all(&hello).await.map_err(|e| e.to_string())?;
    let mut head = [0u8; 9];
    tokio::time::timeout(IO_TIMEOUT, stream.read_exact(&mut head))
        .await
        .map_err(|_| "no SETTINGS frame within the timeout".to_owned())?
        .map_err(|e| format!("no SETTINGS frame: {e}"))?;
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    check!(
        head[3] == 0x4,
        "the server's first frame has type {:#x}, not SETTINGS",
        head[3]
    );
    check!(length <= 1 << 14, "a SETTINGS frame of {length} bytes");
    let mut payload = vec![0u8; length];
    tokio::time::timeout(IO_TIMEOUT, stream.read_exact(&mut payload))
        .await
        .map_err(|_| "the SETTINGS frame did not arrive whole".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(payload.chunks_exact(6).find_map(|entry| {
        (u16::from_be_bytes([entry[0], entry[1]]) == 0x8)
            .then(|| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
    }))
}

/// WS-H2-2: the server's SETTINGS carry `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`.
async fn settings_enable_connect(target: Target) -> Result<(), String> {
    let value = enable_connect_setting(&target).await?;
    check!(
        value == Some(1),
        "SETTINGS_ENABLE_CONNECT_PROTOCOL is {value:?}, not 1"
    );
    Ok(())
}

/// An HTTP/2 connection whose SETTINGS exchange is complete (one request answered).
async fn connect(target: &Target) -> Result<SendRequest<Outgoing>, String> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(connection);
    let (status, _) = send(&mut sender, plain(Method::GET, "/meta")).await?;
    check!(status == 200, "GET /meta over HTTP/2 answered {status}");
    Ok(sender)
}

fn plain(method: Method, path: &str) -> Request<Outgoing> {
    let mut req = Request::new(Full::new(Bytes::new()).boxed());
    *req.method_mut() = method;
    *req.uri_mut() = format!("http://conformance.test{path}")
        .parse()
        .unwrap_or_default();
    *req.version_mut() = Version::HTTP_2;
    req
}

fn extended_connect(path: &str, protocol: &'static str) -> Request<Outgoing> {
    let mut req = plain(Method::CONNECT, path);
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static(protocol));
    if protocol == "websocket" {
        req.headers_mut().insert(
            "sec-websocket-version",
            http::HeaderValue::from_static("13"),
        );
    }
    req
}

async fn send(
    sender: &mut SendRequest<Outgoing>,
    req: Request<Outgoing>,
) -> Result<(u16, Bytes), String> {
    let response = tokio::time::timeout(IO_TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| "no response within the timeout".to_owned())?
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(IO_TIMEOUT, response.into_body().collect())
        .await
        .map_err(|_| "the body did not end within the timeout".to_owned())?
        .map_err(|e| format!("body failed: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// Sends an extended CONNECT and returns the upgraded stream of a `200` answer.
async fn open_stream(
    target: &Target,
    path: &str,
    protocol: &'static str,
) -> Result<Result<TokioIo<hyper::upgrade::Upgraded>, u16>, String> {
    let mut sender = connect(target).await?;
    let response = tokio::time::timeout(
        IO_TIMEOUT,
        sender.send_request(extended_connect(path, protocol)),
    )
    .await
    .map_err(|_| "no answer to the extended CONNECT".to_owned())?
    .map_err(|e| format!("extended CONNECT failed: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Ok(Err(status));
    }
    // The connection must outlive the stream: keep the sender alive with it.
    let upgraded = tokio::time::timeout(IO_TIMEOUT, hyper::upgrade::on(response))
        .await
        .map_err(|_| "the upgraded stream did not open".to_owned())?
        .map_err(|e| format!("the upgraded stream failed: {e}"))?;
    tokio::spawn(async move {
        tokio::time::sleep(IO_TIMEOUT * 3).await;
        drop(sender);
    });
    Ok(Ok(TokioIo::new(upgraded)))
}

/// Reads until the end of the stream: `Ok` for `END_STREAM`, `Err` for a reset or a timeout.
async fn await_end_stream<S: tokio::io::AsyncRead + Unpin>(io: &mut S) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(IO_TIMEOUT, io.read(&mut chunk)).await {
            Err(_) => return Err(format!("the stream stayed open past {IO_TIMEOUT:?}")),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("the stream ended abnormally: {e}")),
        }
    }
}

/// WS-H2-1, WS-H2-4, WS-HS-5: the probe's WebSocket echo works over extended CONNECT; after a
/// closing handshake the server ends the stream with `END_STREAM`, not a reset.
async fn session(target: Target) -> Result<(), String> {
    let mut io = match open_stream(&target, "/ws", "websocket").await? {
        Ok(io) => io,
        Err(status) => return Err(format!("the extended CONNECT got {status}, not 200")),
    };
    let mut buffer = Vec::new();
    for (opcode, payload) in [(0x1, &b"over h2"[..]), (0x2, &[9u8; 70_000][..])] {
        io.write_all(&frame(true, opcode, payload, true))
            .await
            .map_err(|e| e.to_string())?;
        io.flush().await.map_err(|e| e.to_string())?;
        let (first, echoed) = read_frame(&mut io, &mut buffer).await?;
        check!(
            first & 0x0F == opcode && echoed == payload,
            "the echo over HTTP/2 differs: opcode {:#x}, {} bytes",
            first & 0x0F,
            echoed.len()
        );
    }
    io.write_all(&frame(true, 0x8, &1000u16.to_be_bytes(), true))
        .await
        .map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;
    let (code, _) = read_close_frame(&mut io).await?;
    check!(
        code == Some(1000),
        "the close was answered with {code:?} instead of echoing 1000"
    );
    await_end_stream(&mut io).await
}

/// WS-H2-3, WS-HS-6: an HTTP/2 `GET` with WebSocket fields is no handshake: the request reaches
/// the app without `WebSocketUpgrade`.
async fn no_h2_upgrade_without_handshake(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let mut req = plain(Method::GET, "/ws");
    for (name, value) in [
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ] {
        req.headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
    }
    let (status, body) = send(&mut sender, req).await?;
    check!(
        status != 200 && !(100..200).contains(&status),
        "an HTTP/2 GET with WebSocket fields reached the app as a handshake ({status} {:?})",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

/// UPGRADE-RAW-9, UPGRADE-RAW-1: a raw upgrade over extended CONNECT relays bytes in DATA
/// frames, and shutting down our side (END_STREAM) ends the echo handler, which ends the
/// stream the same way. Without the `upgrade` capability, no switch may happen.
async fn raw_stream(target: Target) -> Result<(), String> {
    let claimed = target.manifest.capabilities.contains(Capability::Upgrade);
    let mut io = match open_stream(&target, "/upgrade", "probe-echo").await? {
        Ok(io) if claimed => io,
        Ok(_) => {
            return Err(
                "a raw upgrade over HTTP/2 happened though `upgrade` is not claimed".into(),
            );
        }
        Err(_) if !claimed => return Ok(()),
        Err(status) => {
            return Err(format!(
                "the extended CONNECT for probe-echo got {status}, not 200"
            ));
        }
    };
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 239) as u8).collect();
    io.write_all(&data).await.map_err(|e| e.to_string())?;
    io.flush().await.map_err(|e| e.to_string())?;
    let mut echoed = vec![0u8; data.len()];
    tokio::time::timeout(IO_TIMEOUT, io.read_exact(&mut echoed))
        .await
        .map_err(|_| "the echo over HTTP/2 did not arrive whole".to_owned())?
        .map_err(|e| format!("the echo over HTTP/2 failed: {e}"))?;
    check!(
        echoed == data,
        "the echo over HTTP/2 differs from what was sent"
    );
    io.shutdown().await.map_err(|e| e.to_string())?;
    await_end_stream(&mut io).await
}
