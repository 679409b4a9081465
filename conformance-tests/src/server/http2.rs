//! HTTP/2 cases (cleartext, prior knowledge), through hyper's client.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rgi::Capability;

use super::{ServerCase, Target, check, server_case};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "http2: version and pseudo-headers",
            ["HTTP-REQ-2", "HTTP-REQ-4"],
            Some(Capability::Http2),
            metadata
        ),
        server_case!(
            "http2: streams of one connection share its id",
            ["HTTP-CONN-6"],
            Some(Capability::Http2),
            one_connection_id
        ),
        server_case!(
            "http2: body echoed whole",
            ["HTTP-BODY-3", "HTTP-BODY-5"],
            Some(Capability::Http2),
            echo
        ),
        server_case!(
            "http2: request trailers delivered",
            ["HTTP-TRAIL-2"],
            Some(Capability::Http2),
            request_trailers
        ),
        server_case!(
            "http2: response trailers sent",
            ["HTTP-TRAIL-4"],
            Some(Capability::Http2),
            response_trailers
        ),
        server_case!(
            "http2: failure after the head resets only its stream",
            ["CORE-ERR-3", "CORE-ERR-5", "HTTP-RESP-11"],
            Some(Capability::Http2),
            reset_isolated
        ),
        server_case!(
            "http2: panic before the head gives a bare 500",
            ["CORE-ERR-1", "CORE-ERR-2"],
            Some(Capability::Http2),
            panic_500
        ),
    ]
}

pub(super) type Sender =
    SendRequest<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>>;

pub(super) async fn connect(target: &Target) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

pub(super) fn get(
    path: &str,
) -> Request<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> {
    let mut req = Request::new(Full::new(Bytes::new()).boxed());
    *req.uri_mut() = format!("http://conformance.test{path}")
        .parse()
        .unwrap_or_default();
    *req.version_mut() = Version::HTTP_2;
    req
}

pub(super) async fn send(
    sender: &mut Sender,
    req: Request<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>>,
) -> Result<(u16, Bytes, Option<HeaderMap>), String> {
    let response = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body failed: {e}"))?;
    let trailers = collected.trailers().cloned();
    Ok((status, collected.to_bytes(), trailers))
}

pub(super) fn field(body: &[u8], name: &str) -> Option<String> {
    let prefix = format!("{name}: ");
    String::from_utf8_lossy(body)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

async fn metadata(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let (status, body, _) = send(&mut sender, get("/meta?x=1")).await?;
    check!(status == 200, "status {status}");
    check!(
        field(&body, "version").as_deref() == Some("HTTP/2.0"),
        "version {:?}",
        field(&body, "version")
    );
    check!(
        field(&body, "query").as_deref() == Some("x=1"),
        "query {:?}",
        field(&body, "query")
    );
    let text = String::from_utf8_lossy(&body);
    check!(
        !text.contains("header: :"),
        "pseudo-headers reached the app: {text}"
    );
    Ok(())
}

async fn one_connection_id(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let (_, first, _) = send(&mut sender, get("/meta")).await?;
    let (_, second, _) = send(&mut sender, get("/meta")).await?;
    let (a, b) = (
        field(&first, "connection-id"),
        field(&second, "connection-id"),
    );
    check!(
        a.is_some() && a == b,
        "connection ids of two streams: {a:?} and {b:?}"
    );
    Ok(())
}

async fn echo(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let mut req = get("/echo");
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = Full::new(Bytes::from(data.clone())).boxed();
    let (status, body, _) = send(&mut sender, req).await?;
    check!(status == 200, "status {status}");
    check!(
        body.as_ref() == data.as_slice(),
        "echoed {} bytes of {}",
        body.len(),
        data.len()
    );
    Ok(())
}

async fn request_trailers(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("42"));
    let frames = vec![
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"abc"))),
        Ok(http_body::Frame::trailers(trailers)),
    ];
    let stream = StreamBody::new(futures_util::stream::iter(frames));
    let mut req = get("/body-report");
    *req.method_mut() = http::Method::POST;
    *req.body_mut() = stream.boxed();
    let (status, body, _) = send(&mut sender, req).await?;
    check!(status == 200, "status {status}");
    let text = String::from_utf8_lossy(&body);
    check!(text.contains("bytes: 3"), "report {text}");
    check!(
        text.contains("trailer: x-checksum: 42"),
        "the trailer did not reach the app: {text}"
    );
    Ok(())
}

async fn response_trailers(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let (status, body, trailers) = send(&mut sender, get("/trailers")).await?;
    check!(status == 200, "status {status}");
    check!(body.len() == 15, "body of {} bytes", body.len());
    let value = trailers
        .as_ref()
        .and_then(|t| t.get("x-probe-trailer"))
        .cloned();
    check!(
        value.as_ref().is_some_and(|v| v == "done"),
        "trailers {trailers:?}"
    );
    Ok(())
}

async fn reset_isolated(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let failed = sender.send_request(get("/fail-after-head")).await;
    if let Ok(response) = failed {
        let body = response.into_body().collect().await;
        check!(
            body.is_err(),
            "a body that failed after the head was ended cleanly"
        );
    }
    let (status, _, _) = send(&mut sender, get("/meta"))
        .await
        .map_err(|e| format!("the connection did not survive one stream's failure: {e}"))?;
    check!(status == 200, "the next stream got {status}");
    Ok(())
}

async fn panic_500(target: Target) -> Result<(), String> {
    let mut sender = connect(&target).await?;
    let (status, body, _) = send(&mut sender, get("/panic")).await?;
    check!(status == 500, "status {status}");
    check!(
        !String::from_utf8_lossy(&body).contains("on purpose"),
        "the 500 leaks the panic message"
    );
    let (status, _, _) = send(&mut sender, get("/meta")).await?;
    check!(
        status == 200,
        "the connection did not survive a panic: {status}"
    );
    Ok(())
}
