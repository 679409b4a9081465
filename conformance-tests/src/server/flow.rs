//! Progress and flow control: calls made before the body, pending calls that do not hold up
//! others, futures kept or dropped as the rules say, bodies streamed both ways and bounded.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use rgi::Capability;

use super::http1::{expect_status, get, unique};
use super::{ServerCase, Target, check, server_case};
use crate::wire::{WireConn, request};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "http1: app called before the request body arrives",
            ["CORE-APP-4"],
            None,
            called_before_body
        ),
        server_case!(
            "http1: a pending call does not hold up other connections",
            ["CORE-APP-5"],
            None,
            pending_call_isolated
        ),
        server_case!(
            "http2: a pending call does not hold up other streams",
            ["CORE-APP-5"],
            Some(Capability::Http2),
            pending_call_isolated_h2
        ),
        server_case!(
            "http1: call future and response body kept while the client waits",
            ["CORE-CANCEL-1"],
            None,
            futures_kept
        ),
        server_case!(
            "http1: call future dropped promptly when the client leaves",
            ["CORE-CANCEL-3"],
            None,
            future_dropped_on_departure
        ),
        server_case!(
            "http2: call future dropped promptly when the stream is reset",
            ["CORE-CANCEL-3"],
            Some(Capability::Http2),
            future_dropped_on_reset_h2
        ),
        server_case!(
            "http1: app reads the request body while its response streams",
            ["HTTP-BODY-13"],
            None,
            body_read_during_response
        ),
        server_case!(
            "http2: app reads the request body while its response streams",
            ["HTTP-BODY-13"],
            Some(Capability::Http2),
            body_read_during_response_h2
        ),
        server_case!(
            "http1: unread request body data is bounded",
            ["HTTP-BODY-2"],
            None,
            unread_body_bounded
        ),
        server_case!(
            "http1: head and each data frame sent without waiting for later ones",
            ["HTTP-FRAME-12"],
            None,
            frames_not_held
        ),
        server_case!(
            "http2: head and each data frame sent without waiting for later ones",
            ["HTTP-FRAME-12"],
            Some(Capability::Http2),
            frames_not_held_h2
        ),
        server_case!(
            "http1: a client that stops reading does not make the server buffer the body",
            ["HTTP-FRAME-11"],
            None,
            response_bounded
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Opens a connection with a call to `/hold?id=ID` in flight, once the application has it.
pub(super) async fn hold_call(target: &Target, id: &str) -> Result<WireConn, String> {
    let mut held = WireConn::connect(target.addr).await.map_err(err)?;
    held.send(&request(
        "GET",
        &format!("/hold?id={id}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(err)?;
    wait_held(target, id, "pending").await?;
    Ok(held)
}

/// Polls `/held?id=ID` until it reads `want` (bounded).
pub(super) async fn wait_held(target: &Target, id: &str, want: &str) -> Result<(), String> {
    let mut seen = String::new();
    for _ in 0..200 {
        seen = get(target, &format!("/held?id={id}"))
            .await?
            .field("state")
            .unwrap_or_default();
        if seen == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the held call is {seen:?}, never {want:?}"))
}

async fn release(target: &Target, id: &str) -> Result<(), String> {
    expect_status(&get(target, &format!("/release?id={id}")).await?, 200)
}

async fn called_before_body(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    // Ten bytes declared, none sent: only an app called on the head alone can answer.
    conn.send(b"POST /no-read HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n")
        .await
        .map_err(err)?;
    let response = conn
        .read_response("POST")
        .await
        .map_err(|e| format!("no answer before the body was sent: {e}"))?;
    expect_status(&response, 200)
}

async fn pending_call_isolated(target: Target) -> Result<(), String> {
    let id = unique("isolated");
    let mut held = hold_call(&target, &id).await?;
    let other = get(&target, "/meta").await?;
    expect_status(&other, 200)?;
    release(&target, &id).await?;
    let response = held.read_response("GET").await.map_err(err)?;
    expect_status(&response, 200)
}

async fn pending_call_isolated_h2(target: Target) -> Result<(), String> {
    use super::http2::{connect, get as h2get, send};
    let mut sender = connect(&target).await?;
    let id = unique("isolated-h2");
    let mut held_sender = sender.clone();
    let path = format!("/hold?id={id}");
    let held = tokio::spawn(async move { send(&mut held_sender, h2get(&path)).await });
    wait_held(&target, &id, "pending").await?;
    // Another stream on the same connection while the first call waits.
    let (status, _, _) =
        tokio::time::timeout(Duration::from_secs(10), send(&mut sender, h2get("/meta")))
            .await
            .map_err(|_| {
                "a second stream was not answered while the first call waited".to_owned()
            })??;
    check!(status == 200, "second stream: {status}");
    release(&target, &id).await?;
    let (status, _, _) = held
        .await
        .map_err(|e| format!("the held stream's task failed: {e}"))??;
    check!(status == 200, "held stream: {status}");
    Ok(())
}

async fn futures_kept(target: Target) -> Result<(), String> {
    let id = unique("kept");
    let mut held = hold_call(&target, &id).await?;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let state = get(&target, &format!("/held?id={id}"))
            .await?
            .field("state")
            .unwrap_or_default();
        check!(
            state == "pending",
            "the pending call became {state:?} while its client waited"
        );
    }
    release(&target, &id).await?;
    let response = held.read_response("GET").await.map_err(err)?;
    expect_status(&response, 200)?;
    check!(
        response.field("released").as_deref() == Some("true"),
        "the held call was not released: {:?}",
        response.text()
    );
    // A response body that waits is kept too.
    let gate = unique("kept-body");
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request(
        "GET",
        &format!("/gated?id={gate}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(err)?;
    let head = conn.read_final_head().await.map_err(err)?;
    expect_status(&head, 200)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    release(&target, &gate).await?;
    let mut body = Vec::new();
    while let Some(chunk) = conn.read_chunk().await.map_err(err)? {
        body.extend(chunk);
    }
    check!(
        body == b"first\nsecond\n",
        "the waiting body ended as {:?}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

async fn future_dropped_on_departure(target: Target) -> Result<(), String> {
    let id = unique("departed");
    let held = hold_call(&target, &id).await?;
    drop(held);
    wait_held(&target, &id, "dropped")
        .await
        .map_err(|e| format!("after the client left: {e}"))
}

async fn future_dropped_on_reset_h2(target: Target) -> Result<(), String> {
    use super::http2::{connect, get as h2get};
    let mut sender = connect(&target).await?;
    let id = unique("reset-h2");
    let pending = sender.send_request(h2get(&format!("/hold?id={id}")));
    // Start the stream, then drop the response future: hyper resets the stream.
    let started = tokio::time::timeout(Duration::from_millis(500), pending).await;
    check!(started.is_err(), "the held call answered before release");
    wait_held(&target, &id, "dropped")
        .await
        .map_err(|e| format!("after RST_STREAM: {e}"))
}

async fn body_read_during_response(target: Target) -> Result<(), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n")
        .await
        .map_err(err)?;
    let head = conn.read_final_head().await.map_err(err)?;
    expect_status(&head, 200)?;
    let first = conn.read_chunk().await.map_err(err)?;
    check!(
        first.as_deref() == Some(b"one".as_slice()),
        "first echoed chunk {first:?}"
    );
    conn.send(b"3\r\ntwo\r\n").await.map_err(err)?;
    let second = conn.read_chunk().await.map_err(err)?;
    check!(
        second.as_deref() == Some(b"two".as_slice()),
        "the app could not read on after its head: {second:?}"
    );
    conn.send(b"0\r\n\r\n").await.map_err(err)?;
    let end = conn.read_chunk().await.map_err(err)?;
    check!(end.is_none(), "more after the end: {end:?}");
    Ok(())
}

type Frames = tokio::sync::mpsc::Receiver<Bytes>;

fn channel_body(
    rx: Frames,
) -> http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|data| (Ok(http_body::Frame::data(data)), rx))
    });
    StreamBody::new(stream).boxed()
}

async fn next_data(body: &mut hyper::body::Incoming) -> Result<Option<Bytes>, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), body.frame()).await {
            Err(_) => return Err("timed out waiting for a data frame".into()),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

async fn body_read_during_response_h2(target: Target) -> Result<(), String> {
    use super::http2::{connect, get as h2get};
    let mut sender = connect(&target).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut req = h2get("/echo");
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = channel_body(rx);
    tx.send(Bytes::from_static(b"one")).await.map_err(err)?;
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| "no head while the request body was open".to_owned())?
        .map_err(err)?;
    check!(response.status() == 200, "status {}", response.status());
    let mut body = response.into_body();
    let first = next_data(&mut body).await?;
    check!(
        first.as_deref() == Some(b"one".as_slice()),
        "first echoed data {first:?}"
    );
    tx.send(Bytes::from_static(b"two")).await.map_err(err)?;
    let second = next_data(&mut body).await?;
    check!(
        second.as_deref() == Some(b"two".as_slice()),
        "the app could not read on after its head: {second:?}"
    );
    drop(tx);
    let end = next_data(&mut body).await?;
    check!(end.is_none(), "more after the end: {end:?}");
    Ok(())
}

async fn unread_body_bounded(target: Target) -> Result<(), String> {
    const OFFERED: usize = 64 << 20;
    let id = unique("unread");
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    let head = format!(
        "POST /hold?id={id} HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n",
        OFFERED * 2
    );
    conn.send(head.as_bytes()).await.map_err(err)?;
    let body = vec![b'u'; OFFERED];
    let written = conn
        .send_within(&body, Duration::from_secs(3))
        .await
        .map_err(err)?;
    let _ = release(&target, &id).await;
    check!(
        written < OFFERED,
        "the server took all {written} bytes of a body the app never read"
    );
    Ok(())
}

async fn frames_not_held(target: Target) -> Result<(), String> {
    let id = unique("gated");
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request(
        "GET",
        &format!("/gated?id={id}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(err)?;
    let head = conn
        .read_final_head()
        .await
        .map_err(|e| format!("no head while the body waited: {e}"))?;
    expect_status(&head, 200)?;
    check!(
        head.header_values("transfer-encoding")
            .iter()
            .any(|v| v.contains("chunked")),
        "a body of unknown length not chunked: {:?}",
        head.headers
    );
    let first = conn
        .read_chunk()
        .await
        .map_err(|e| format!("the first frame was held back: {e}"))?;
    check!(
        first.as_deref() == Some(b"first\n".as_slice()),
        "first chunk {first:?}"
    );
    release(&target, &id).await?;
    let second = conn.read_chunk().await.map_err(err)?;
    check!(
        second.as_deref() == Some(b"second\n".as_slice()),
        "second chunk {second:?}"
    );
    Ok(())
}

async fn frames_not_held_h2(target: Target) -> Result<(), String> {
    use super::http2::{connect, get as h2get};
    let mut sender = connect(&target).await?;
    let id = unique("gated-h2");
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        sender.send_request(h2get(&format!("/gated?id={id}"))),
    )
    .await
    .map_err(|_| "no head while the body waited".to_owned())?
    .map_err(err)?;
    let mut body = response.into_body();
    let first = next_data(&mut body)
        .await
        .map_err(|e| format!("the first frame was held back: {e}"))?;
    check!(
        first.as_deref() == Some(b"first\n".as_slice()),
        "first data {first:?}"
    );
    release(&target, &id).await?;
    let second = next_data(&mut body).await?;
    check!(
        second.as_deref() == Some(b"second\n".as_slice()),
        "second data {second:?}"
    );
    Ok(())
}

async fn response_bounded(target: Target) -> Result<(), String> {
    // 64 KiB chunks; a server that polls without the socket being writable takes all 2048.
    const BOUND: u64 = 512;
    let id = unique("flood");
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request(
        "GET",
        &format!("/flood?id={id}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(err)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let produced = get(&target, &format!("/flooded?id={id}"))
        .await?
        .field("chunks")
        .unwrap_or_default();
    drop(conn);
    let count: u64 = produced
        .parse()
        .map_err(|_| format!("flood count {produced:?}"))?;
    check!(
        count < BOUND,
        "the server polled {count} chunks of 64 KiB for a client that reads nothing"
    );
    Ok(())
}
