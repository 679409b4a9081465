//! Lint: every server-side rule is triggered by a misbehaving "server" (these tests build the
//! requests by hand), and a conforming server — the TestClient — passes with zero violations.

mod common;

use std::pin::Pin;

use bytes::Bytes;
use common::{FnApp, Frames, data, header_map, trailers};
use http::{HeaderValue, Method, Request as HttpRequest, Response, StatusCode, Version, header};
use http_body::Frame;
use rgi::ext::{EarlyHints, EarlyHintsError, SendEarlyHints};
use rgi::upgrade::OnUpgrade;
use rgi::ws::WebSocketUpgrade;
use rgi::{
    App, Body, BoxError, Capability, ConnectionInfo, Disconnect, DisconnectNotifier, Lifespan,
    MountPrefix, Request, Scheme, ServerInfo, SocketAddress, TlsInfo, TlsVersion,
};
use rgi_test::{Lint, LintMode, LintReport, Side, TestClient};

/// An app that reads the whole request body and answers with it.
fn echo() -> Lint<impl App> {
    Lint::new(FnApp(|req: Request| async move {
        let bytes = req.into_body().collect().await?.into_bytes();
        Ok::<_, BoxError>(Response::new(Body::from(bytes)))
    }))
}

/// What a conforming HTTP/1.1 server hands over for `GET /`.
fn request() -> (HttpRequest<Body>, DisconnectNotifier) {
    let (disconnect, notifier) = Disconnect::pair();
    let mut req = HttpRequest::get("/")
        .header(header::HOST, "localhost")
        .body(Body::empty().with_limit(Some(1024)))
        .unwrap();
    req.extensions_mut().insert(ConnectionInfo::new(
        SocketAddress::Unknown,
        SocketAddress::Unknown,
        Scheme::Http,
    ));
    req.extensions_mut().insert(disconnect);
    (req, notifier)
}

/// Calls the lint like a server would and reads the response body to its end.
async fn run<A: App>(lint: &Lint<A>, req: Request) -> LintReport {
    let report = lint.report();
    if let Ok(response) = lint.call(req).await {
        let mut body = Box::pin(response.into_body());
        while let Some(frame) =
            std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await
        {
            if frame.is_err() {
                break;
            }
        }
    }
    report
}

fn assert_server(report: &LintReport, id: &str) {
    let violations = report.violations();
    let Some(found) = violations.iter().find(|v| v.id == id) else {
        panic!("expected a violation of {id}, got {violations:#?}");
    };
    assert_eq!(found.side, Side::Server, "{found:?}");
    assert!(found.message.starts_with(id), "{found:?}");
}

/// HTTP-CONN-1: no ConnectionInfo.
#[tokio::test]
async fn missing_connection_info() {
    let (mut req, _n) = request();
    req.extensions_mut().remove::<ConnectionInfo>();
    assert_server(&run(&echo(), req).await, "HTTP-CONN-1");
}

/// HTTP-DISC-1: no Disconnect.
#[tokio::test]
async fn missing_disconnect() {
    let (mut req, _n) = request();
    req.extensions_mut().remove::<Disconnect>();
    assert_server(&run(&echo(), req).await, "HTTP-DISC-1");
}

/// HTTP-CONN-3: https on a hop without TLS information.
#[tokio::test]
async fn https_without_tls() {
    let (mut req, _n) = request();
    req.extensions_mut().insert(ConnectionInfo::new(
        SocketAddress::Unknown,
        SocketAddress::Unknown,
        Scheme::Https,
    ));
    assert_server(&run(&echo(), req).await, "HTTP-CONN-3");
}

/// HTTP-CONN-4: TLS information on a plain-http hop.
#[tokio::test]
async fn tls_on_plain_hop() {
    let (mut req, _n) = request();
    let info = ConnectionInfo::new(SocketAddress::Unknown, SocketAddress::Unknown, Scheme::Http)
        .with_forwarded(None, None)
        .with_tls(TlsInfo::new(TlsVersion::Tls13));
    req.extensions_mut().insert(info);
    assert_server(&run(&echo(), req).await, "HTTP-CONN-4");
}

/// HTTP-PATH-4: a decoded path outside the mount prefix.
#[tokio::test]
async fn path_outside_mount_prefix() {
    let (mut req, _n) = request();
    req.extensions_mut()
        .insert(MountPrefix::new("/api").unwrap());
    assert_server(&run(&echo(), req).await, "HTTP-PATH-4");
}

/// HTTP-BODY-7: a request body without the server's limit.
#[tokio::test]
async fn body_without_limit() {
    let (mut req, _n) = request();
    *req.body_mut() = Body::empty();
    assert_server(&run(&echo(), req).await, "HTTP-BODY-7");
}

/// HTTP-BODY-6: a declared content-length without an exact size hint.
#[tokio::test]
async fn content_length_without_exact_hint() {
    let (mut req, _n) = request();
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
    *req.body_mut() = Body::new(Frames::new(vec![data("hello")])).with_limit(Some(1024));
    assert_server(&run(&echo(), req).await, "HTTP-BODY-6");
}

/// HTTP-BODY-4: a request without a body whose body is not at its end and yields data.
#[tokio::test]
async fn bodyless_request_with_a_body() {
    let (mut req, _n) = request();
    *req.body_mut() = Body::new(Frames::new(vec![data("sneaky")])).with_limit(Some(1024));
    assert_server(&run(&echo(), req).await, "HTTP-BODY-4");
}

/// HTTP-BODY-4: trailers on a request without a body.
#[tokio::test]
async fn trailers_on_a_bodyless_request() {
    let (mut req, _n) = request();
    *req.body_mut() =
        Body::new(Frames::new(vec![trailers(&[("x-a", "1")])])).with_limit(Some(1024));
    assert_server(&run(&echo(), req).await, "HTTP-BODY-4");
}

fn with_length(req: &mut Request, declared: u64, frames: Vec<Frame<Bytes>>) {
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
    *req.body_mut() = Body::new(Frames::new(frames).exact(declared)).with_limit(Some(1024));
}

/// HTTP-BODY-3: a body that ends before its declared length instead of failing.
#[tokio::test]
async fn body_ends_early() {
    let (mut req, _n) = request();
    with_length(&mut req, 10, vec![data("abc")]);
    assert_server(&run(&echo(), req).await, "HTTP-BODY-3");
}

/// HTTP-BODY-10: a body that yields more than its declared length.
#[tokio::test]
async fn body_reads_past_its_length() {
    let (mut req, _n) = request();
    with_length(&mut req, 2, vec![data("ab"), data("GET / HTTP/1.1")]);
    assert_server(&run(&echo(), req).await, "HTTP-BODY-10");
}

/// HTTP-TRAIL-9: forbidden fields in request trailers (a SHOULD).
#[tokio::test]
async fn forbidden_request_trailers() {
    let (mut req, _n) = request();
    req.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    *req.body_mut() = Body::new(Frames::new(vec![
        data("a"),
        trailers(&[("content-length", "1")]),
    ]))
    .with_limit(Some(1024));
    assert_server(&run(&echo(), req).await, "HTTP-TRAIL-9");
}

/// SRV-LIMIT-1: an HTTP/1.1 request without host, and an asterisk-form target with GET.
#[tokio::test]
async fn malformed_heads_reach_the_app() {
    let (mut req, _n) = request();
    req.headers_mut().remove(header::HOST);
    assert_server(&run(&echo(), req).await, "SRV-LIMIT-1");
    let (mut req, _n) = request();
    *req.uri_mut() = "*".parse().unwrap();
    assert_server(&run(&echo(), req).await, "SRV-LIMIT-1");
}

/// SRV-LIMIT-1: an HTTP/2 request with a connection-specific field (RFC 9113 §8.2.2).
#[tokio::test]
async fn h2_connection_specific_fields() {
    let (mut req, _n) = request();
    *req.version_mut() = Version::HTTP_2;
    *req.uri_mut() = "http://localhost/".parse().unwrap();
    req.headers_mut().remove(header::HOST);
    req.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    assert_server(&run(&echo(), req).await, "SRV-LIMIT-1");
}

/// SRV-LIMIT-14: content-length with transfer-encoding; SRV-LIMIT-13: a final coding that is not
/// chunked.
#[tokio::test]
async fn smuggling_vectors_reach_the_app() {
    let (mut req, _n) = request();
    req.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    assert_server(&run(&echo(), req).await, "SRV-LIMIT-14");
    let (mut req, _n) = request();
    req.headers_mut().insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked, gzip"),
    );
    assert_server(&run(&echo(), req).await, "SRV-LIMIT-13");
}

/// SRV-LIMIT-3: an HTTP/0.9 request.
#[tokio::test]
async fn http09_reaches_the_app() {
    let (mut req, _n) = request();
    *req.version_mut() = Version::HTTP_09;
    assert_server(&run(&echo(), req).await, "SRV-LIMIT-3");
}

/// HTTP-REQ-3: an HTTP/2 request whose URI lacks the authority.
#[tokio::test]
async fn h2_uri_without_authority() {
    let (mut req, _n) = request();
    *req.version_mut() = Version::HTTP_2;
    req.headers_mut().remove(header::HOST);
    assert_server(&run(&echo(), req).await, "HTTP-REQ-3");
}

/// WS-HS-6: a WebSocketUpgrade in a request that is no opening handshake.
#[tokio::test]
async fn websocket_offer_on_a_plain_request() {
    let (mut req, _n) = request();
    req.extensions_mut()
        .insert(WebSocketUpgrade::new(Version::HTTP_11, Vec::new()));
    assert_server(&run(&echo(), req).await, "WS-HS-6");
}

/// UPGRADE-RAW-1: an OnUpgrade in an HTTP/1.0 request.
#[tokio::test]
async fn upgrade_offer_on_http10() {
    let (mut req, _n) = request();
    *req.version_mut() = Version::HTTP_10;
    req.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("x"));
    req.extensions_mut()
        .insert(OnUpgrade::new(Version::HTTP_10, vec!["x".to_owned()]));
    assert_server(&run(&echo(), req).await, "UPGRADE-RAW-1");
}

struct NoHints;

impl SendEarlyHints for NoHints {
    fn send_early_hints(
        &self,
        _headers: http::HeaderMap,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<(), EarlyHintsError>> + Send>> {
        Box::pin(async { Ok(()) })
    }
}

/// HTTP-INTERIM-3: EarlyHints offered to an HTTP/1.0 request.
#[tokio::test]
async fn early_hints_on_http10() {
    let (mut req, _n) = request();
    *req.version_mut() = Version::HTTP_10;
    req.extensions_mut().insert(EarlyHints::new(NoHints));
    assert_server(&run(&echo(), req).await, "HTTP-INTERIM-3");
}

/// EXT-CAP-7, WS-H2-3: extensions whose capability the server did not advertise.
#[tokio::test]
async fn extensions_without_capabilities() {
    let lifespan = Lint::lifespan(FnApp(|_req: Request| async {
        Ok::<_, BoxError>(Response::new(Body::empty()))
    }));
    let info = ServerInfo::new("partial", "0").with_capability(Capability::Http1);
    let lint = lifespan.startup(info).await.unwrap();
    let (mut req, _n) = request();
    req.extensions_mut().insert(
        ConnectionInfo::new(SocketAddress::Unknown, SocketAddress::Unknown, Scheme::Http)
            .with_tls(TlsInfo::new(TlsVersion::Tls12)),
    );
    assert_server(&run(&lint, req).await, "EXT-CAP-7");
    let (mut req, _n) = request();
    *req.version_mut() = Version::HTTP_2;
    *req.method_mut() = Method::CONNECT;
    *req.uri_mut() = "http://localhost/ws".parse().unwrap();
    req.headers_mut().remove(header::HOST);
    req.headers_mut()
        .insert("sec-websocket-version", HeaderValue::from_static("13"));
    req.extensions_mut()
        .insert(WebSocketUpgrade::new(Version::HTTP_2, Vec::new()));
    assert_server(&run(&lint, req).await, "WS-H2-3");
}

/// HTTP-DISC-2: Completed before the response body ended; ClientGone after it ended; and
/// Completed before the application even answered.
#[tokio::test]
async fn disconnect_misreported() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        Ok::<_, BoxError>(Response::new(Frames::new(vec![data("a"), data("b")])))
    }));
    // Completed while the body is still unread.
    let (req, notifier) = request();
    let response = lint.call(req).await.unwrap();
    notifier.completed();
    drop(response);
    assert_server(&lint.report(), "HTTP-DISC-2");
    // ClientGone after the server read the whole body.
    lint.report().clear();
    let (req, notifier) = request();
    let mut body = lint.call(req).await.unwrap().into_body();
    while let Some(frame) =
        std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx)).await
    {
        frame.unwrap();
    }
    notifier.client_gone();
    assert_server(&lint.report(), "HTTP-DISC-2");
    // Completed before the call.
    lint.report().clear();
    let (req, notifier) = request();
    notifier.completed();
    assert_server(&run(&lint, req).await, "HTTP-DISC-2");
}

/// HTTP-DISC-2: a server that stops polling once the body reports `is_end_stream()` (as
/// hyper does) and then settles `Completed` is not reported.
#[tokio::test]
async fn completion_after_is_end_stream_is_fine() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        Ok::<_, BoxError>(Response::new(Body::from("whole")))
    }));
    let (req, notifier) = request();
    let mut body = Box::pin(lint.call(req).await.unwrap().into_body());
    let frame = std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap(), "whole");
    assert!(http_body::Body::is_end_stream(&*body));
    notifier.completed();
    lint.report().assert_clean();
}

/// HTTP-CONN-1, strict mode: a server-side violation before the head answers 500 without
/// calling the application.
#[tokio::test]
async fn strict_mode_fails_server_violations() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        panic!("the app must not be called");
        #[allow(unreachable_code)]
        Ok::<_, BoxError>(Response::new(Body::empty()))
    }))
    .mode(LintMode::Strict);
    let (mut req, _n) = request();
    req.extensions_mut().remove::<ConnectionInfo>();
    let response = lint.call(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(lint.report().ids(), ["HTTP-CONN-1"]);
}

/// HTTP-CONN-1, HTTP-DISC-1, HTTP-BODY-6, HTTP-BODY-7, HTTP-PATH-4, WS-HS-1, UPGRADE-RAW-1,
/// EXT-CAP-7: the TestClient is a conforming server — every kind of request it makes passes a
/// Lint (started through its lifespan, so capabilities are checked too) with zero violations.
#[tokio::test]
async fn test_client_is_a_conforming_server() {
    let lifespan = Lint::lifespan(FnApp(|req: Request| async move {
        if let Some(offer) = req.extensions().get::<WebSocketUpgrade>().cloned() {
            return Ok(offer.accept(|_socket| async { Ok(()) }));
        }
        if let Some(offer) = req.extensions().get::<OnUpgrade>().cloned() {
            return Ok(offer.accept("echo", |_io| async { Ok(()) })?);
        }
        let bytes = req.into_body().collect().await?.into_bytes();
        Ok::<_, BoxError>(Response::new(Body::from(bytes)))
    }));
    let report = lifespan.report();
    let client = TestClient::start(lifespan).await.unwrap();
    client.get("/").send().await.bytes().await.unwrap();
    client
        .post("/")
        .body("hello")
        .send()
        .await
        .bytes()
        .await
        .unwrap();
    client
        .post("/")
        .chunks(["a", "b"])
        .trailers(header_map(&[("x-sum", "2")]))
        .send()
        .await
        .bytes()
        .await
        .unwrap();
    client
        .get("/")
        .version(Version::HTTP_2)
        .send()
        .await
        .bytes()
        .await
        .unwrap();
    client
        .post("/")
        .chunks(["old", "client"])
        .version(Version::HTTP_10)
        .send()
        .await
        .bytes()
        .await
        .unwrap();
    client
        .get("/")
        .tls(TlsInfo::new(TlsVersion::Tls13))
        .send()
        .await
        .bytes()
        .await
        .unwrap();
    client
        .get("/api/x")
        .mount_prefix("/api")
        .send()
        .await
        .bytes()
        .await
        .unwrap();
    client.head("/").send().await.bytes().await.unwrap();
    let mut socket = client.websocket("/ws").connect().await.unwrap();
    socket.finished().await.unwrap();
    let mut socket = client.websocket("/ws").http2().connect().await.unwrap();
    socket.finished().await.unwrap();
    let mut raw = client.upgrade("/raw", "echo").connect().await.unwrap();
    raw.finished().await.unwrap();
    client.shutdown().await;
    report.assert_clean();
}
