//! The TestClient behaves as a conforming server would, in process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{FnApp, Frames, bounded, data, header_map, trailers};
use http::{HeaderValue, Method, Response, StatusCode, Version, header};
use rgi::ext::{EarlyHints, EarlyHintsError};
use rgi::{
    App, Body, BodyError, BoxError, Capability, ConnectionInfo, Disconnect, Lifespan, Outcome,
    Request, Scheme, ServerInfo, SocketAddress, StartupError, TlsInfo, TlsVersion,
};
use rgi_test::{ResponseError, TestClient};

fn text(body: impl Into<Body>) -> Result<Response<Body>, BoxError> {
    Ok(Response::new(body.into()))
}

/// HTTP-RESP-1: the response the app returns is the one the client receives.
#[tokio::test]
async fn get_returns_the_apps_response() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri().path(), "/hello");
        assert_eq!(rgi::path::query(&req), "x=1");
        let mut response = Response::new(Body::from("hi"));
        response
            .headers_mut()
            .insert("x-test", HeaderValue::from_static("yes"));
        Ok::<_, BoxError>(response)
    }));
    let mut response = client.get("/hello?x=1").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.header("x-test"), Some("yes"));
    assert_eq!(response.text().await.unwrap(), "hi");
}

struct Config {
    fail: bool,
}

struct Started {
    info: ServerInfo,
    shutdowns: Arc<AtomicUsize>,
}

static SHUTDOWNS: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();

impl Lifespan for Config {
    type App = Started;

    async fn startup(self, info: ServerInfo) -> Result<Started, StartupError> {
        if self.fail {
            return Err(StartupError::new("no database"));
        }
        Ok(Started {
            info,
            shutdowns: SHUTDOWNS.get_or_init(Default::default).clone(),
        })
    }
}

impl App for Started {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, _req: Request) -> Result<Response<Body>, BoxError> {
        text(self.info.name().to_owned())
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

/// LIFE-START-1, LIFE-START-4, EXT-CAP-2, LIFE-SHUT-1: startup gets a truthful ServerInfo;
/// shutdown runs exactly once however often it is asked for.
#[tokio::test]
async fn lifespan_startup_and_shutdown_once() {
    let client = TestClient::start(Config { fail: false }).await.unwrap();
    let info = &client.app().info;
    assert_eq!(info.name(), "rgi-test");
    assert_eq!(info.spec_version(), rgi::SPEC_VERSION);
    assert!(info.capabilities().contains(Capability::WebSocket));
    assert!(info.capabilities().contains(Capability::ResponseTrailers));
    assert!(!info.capabilities().contains(Capability::ProxyHeaders));
    assert_eq!(
        client.get("/").send().await.text().await.unwrap(),
        "rgi-test"
    );
    let counter = client.app().shutdowns.clone();
    let before = counter.load(Ordering::SeqCst);
    client.shutdown().await;
    client.clone().shutdown().await;
    assert_eq!(counter.load(Ordering::SeqCst), before + 1);
    assert!(client.is_shut_down());
}

/// LIFE-START-2: a failed startup gives the application's error and no client.
#[tokio::test]
async fn failed_startup_is_an_error() {
    let error = TestClient::start(Config { fail: true }).await.unwrap_err();
    assert_eq!(error.message(), "no database");
}

/// LIFE-SHUT-2: dropping a client without shutdown does not panic.
#[tokio::test]
async fn drop_without_shutdown_is_fine() {
    let client = TestClient::new(FnApp(|_req: Request| async { text("x") }));
    let response = client.get("/").send().await;
    drop(client);
    assert_eq!(response.status(), StatusCode::OK);
}

/// HTTP-CONN-1, HTTP-CONN-3, HTTP-CONN-4: connection info with the peer and TLS the test chose.
#[tokio::test]
async fn connection_info_peer_and_tls() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let info = req.extensions().get::<ConnectionInfo>().unwrap();
        let alpn = info
            .tls()
            .and_then(|t| t.alpn())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default();
        text(format!("{} {} {alpn}", info.peer(), info.scheme()))
    }));
    let peer: std::net::SocketAddr = "192.0.2.7:4444".parse().unwrap();
    let mut plain = client.get("/").peer(peer).send().await;
    assert_eq!(plain.text().await.unwrap(), "192.0.2.7:4444 http ");
    let mut secure = client
        .get("/")
        .tls(TlsInfo::new(TlsVersion::Tls13).with_alpn("h2"))
        .send()
        .await;
    assert_eq!(secure.text().await.unwrap(), "- https h2");
    let info = ConnectionInfo::new(SocketAddress::Unknown, SocketAddress::Unknown, Scheme::Http);
    assert!(info.tls().is_none());
}

/// HTTP-DISC-1, HTTP-DISC-2: every request has a Disconnect; it settles Completed once the
/// body was read to its end.
#[tokio::test]
async fn disconnect_completes_when_body_read() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        assert!(req.extensions().get::<Disconnect>().is_some());
        text(Body::from_stream(tokio_stream(vec!["a", "b"])))
    }));
    let mut response = client.get("/").send().await;
    assert_eq!(response.disconnect().outcome(), None);
    assert_eq!(response.bytes().await.unwrap(), "ab");
    assert_eq!(response.disconnect().outcome(), Some(Outcome::Completed));
}

/// HTTP-DISC-4: a client that drops the response mid-stream is reported as gone, and the app's
/// spawned work can see it.
#[tokio::test]
async fn dropping_response_mid_stream_is_client_gone() {
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let seen_tx = std::sync::Mutex::new(Some(seen_tx));
    let client = TestClient::new(FnApp(move |req: Request| {
        let disconnect = req.extensions().get::<Disconnect>().cloned().unwrap();
        if let Some(tx) = seen_tx.lock().unwrap().take() {
            tokio::spawn(async move {
                let _ = tx.send(disconnect.finished().await);
            });
        }
        async move { text(Body::from_stream(tokio_stream(vec!["a", "b", "c"]))) }
    }));
    let mut response = client.get("/").send().await;
    let first = response.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "a");
    let disconnect = response.disconnect().clone();
    drop(response);
    assert_eq!(disconnect.outcome(), Some(Outcome::ClientGone));
    assert_eq!(bounded(seen_rx).await.unwrap(), Outcome::ClientGone);
}

/// CORE-ERR-1, CORE-ERR-2: Err and panics before the head become a 500 without details.
#[tokio::test]
async fn errors_and_panics_become_500() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        if req.uri().path() == "/panic" {
            panic!("secret panic");
        }
        Err::<Response<Body>, BoxError>("secret failure".into())
    }));
    let mut failed = client.get("/err").send().await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.app_error(), Some("secret failure"));
    assert!(!failed.text().await.unwrap().contains("secret"));
    let mut panicked = client.get("/panic").send().await;
    assert_eq!(panicked.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(panicked.app_error().unwrap().contains("secret panic"));
    assert_eq!(panicked.text().await.unwrap(), "");
}

/// HTTP-BODY-7, CORE-ERR-4: the body limit applies, and the app's LengthLimitExceeded is 413.
#[tokio::test]
async fn body_limit_maps_to_413() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let limit = req.body().limit();
        let collected = req.into_body().collect().await?;
        text(format!("{limit:?} {}", collected.to_bytes().len()))
    }))
    .body_limit(Some(4));
    let mut small = client.post("/").body("abcd").send().await;
    assert_eq!(small.text().await.unwrap(), "Some(4) 4");
    let big = client.post("/").body("abcde").send().await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let streamed = client.post("/").chunks(["abc", "de"]).send().await;
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let raised = client.post("/").body("abcde").body_limit(None).send().await;
    assert_eq!(raised.status(), StatusCode::OK);
}

/// HTTP-BODY-1, HTTP-TRAIL-2, HTTP-BODY-5: chunks (with pauses) arrive in order, then the
/// trailers as the last frame.
#[tokio::test]
async fn chunks_with_pauses_and_trailers() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let chunked = req
            .headers()
            .get(header::TRANSFER_ENCODING)
            .map(|v| v.to_str().unwrap().to_owned());
        let mut body = req.into_body();
        let mut parts = Vec::new();
        let mut trailer = String::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(data) = frame.data_ref() {
                parts.push(String::from_utf8_lossy(data).into_owned());
            } else if let Some(t) = frame.trailers_ref() {
                trailer = t["x-sum"].to_str()?.to_owned();
            }
        }
        text(format!("{chunked:?} {} {trailer}", parts.join("|")))
    }));
    let mut response = client
        .post("/")
        .chunks(["one", "two", "three"])
        .chunk_delay(Duration::from_millis(5))
        .trailers(header_map(&[("x-sum", "abc")]))
        .send()
        .await;
    assert_eq!(
        response.text().await.unwrap(),
        "Some(\"chunked\") one|two|three abc"
    );
}

/// HTTP-BODY-1: a body read from a stream.
#[tokio::test]
async fn body_from_a_stream() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let bytes = req.into_body().collect().await?.into_bytes();
        text(bytes)
    }));
    let mut response = client
        .post("/")
        .body_stream(tokio_stream(vec!["x", "y", "z"]))
        .send()
        .await;
    assert_eq!(response.text().await.unwrap(), "xyz");
}

/// HTTP-BODY-3, CORE-ERR-4: a client that leaves mid-body: the body fails with Disconnected,
/// nothing is sent, and the Disconnect says ClientGone.
#[tokio::test]
async fn client_disconnects_mid_request() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let disconnect = req.extensions().get::<Disconnect>().cloned().unwrap();
        match req.into_body().collect().await {
            Ok(_) => text("complete"),
            Err(error) => {
                assert!(matches!(error, BodyError::Disconnected));
                assert_eq!(disconnect.outcome(), Some(Outcome::ClientGone));
                Err(error.into())
            }
        }
    }));
    let result = client
        .post("/")
        .body("0123456789")
        .disconnect_after_request_bytes(4)
        .try_send()
        .await;
    assert!(result.is_err());
}

/// HTTP-PATH-4, HTTP-PATH-5: the mount prefix is in the extensions; outside it the server
/// answers 404 without calling the app.
#[tokio::test]
async fn mount_prefix_and_outside_paths() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let client = TestClient::new(FnApp(move |req: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        let path = rgi::path::app_path(&req).map(|p| String::from_utf8_lossy(&p).into_owned());
        async move { text(format!("{path:?}")) }
    }))
    .mount_prefix("/api");
    let mut inside = client.get("/api/users%20x").send().await;
    assert_eq!(inside.text().await.unwrap(), "Some(\"/users x\")");
    let outside = client.get("/apiary").send().await;
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let mut per_request = client.get("/v2/x").mount_prefix("/v2").send().await;
    assert_eq!(per_request.text().await.unwrap(), "Some(\"/x\")");
}

/// HTTP-FRAME-5, HTTP-FRAME-7: HEAD and 204 responses carry no body; HEAD keeps the app's
/// content-length, 204 loses it.
#[tokio::test]
async fn head_and_204_have_no_body() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let mut response = Response::new(Body::from("hello"));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(5u64));
        if req.uri().path() == "/204" {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        Ok::<_, BoxError>(response)
    }));
    let mut head = client.head("/").send().await;
    assert_eq!(head.header(header::CONTENT_LENGTH), Some("5"));
    assert_eq!(head.bytes().await.unwrap(), "");
    assert_eq!(head.disconnect().outcome(), Some(Outcome::Completed));
    let mut no_content = client.get("/204").send().await;
    assert_eq!(no_content.header(header::CONTENT_LENGTH), None);
    assert_eq!(no_content.bytes().await.unwrap(), "");
}

/// HTTP-TRAIL-4, HTTP-TRAIL-5, HTTP-TRAIL-8: response trailers reach an HTTP/1.1 or HTTP/2
/// client without their forbidden fields, and are dropped for HTTP/1.0.
#[tokio::test]
async fn response_trailers() {
    let client = TestClient::new(FnApp(|_req: Request| async {
        let body = Frames::new(vec![
            data("body"),
            trailers(&[("x-checksum", "42"), ("content-type", "nope")]),
        ]);
        Ok::<_, BoxError>(Response::new(body))
    }));
    let mut response = client.get("/").send().await;
    assert_eq!(response.bytes().await.unwrap(), "body");
    let received = response.trailers().unwrap();
    assert_eq!(received["x-checksum"], "42");
    assert!(received.get(header::CONTENT_TYPE).is_none());
    let mut h2 = client.get("/").version(Version::HTTP_2).send().await;
    h2.bytes().await.unwrap();
    assert!(h2.trailers().is_some());
    let mut old = client.get("/").version(Version::HTTP_10).send().await;
    assert_eq!(old.bytes().await.unwrap(), "body");
    assert!(old.trailers().is_none());
}

/// HTTP-FRAME-3, HTTP-FRAME-4, HTTP-DISC-6: a body longer or shorter than its content-length
/// is aborted, and the Disconnect says Aborted.
#[tokio::test]
async fn content_length_mismatch_aborts() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let declared: u64 = if req.uri().path() == "/long" { 2 } else { 10 };
        let mut response = Response::new(Frames::new(vec![data("abcd")]));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(declared));
        Ok::<_, BoxError>(response)
    }));
    for path in ["/long", "/short"] {
        let mut response = client.get(path).send().await;
        let error = response.bytes().await.unwrap_err();
        assert!(matches!(error, ResponseError::Aborted(_)), "{path}");
        assert_eq!(response.disconnect().outcome(), Some(Outcome::Aborted));
    }
}

/// CORE-ERR-3, HTTP-TRAIL-3: a body error after the head, or data after trailers, aborts.
#[tokio::test]
async fn body_errors_after_head_abort() {
    let client = TestClient::new(FnApp(|_req: Request| async move {
        let stream = tokio_stream_results(vec![Ok("ok"), Err("broken pipe to the database")]);
        text(Body::from_stream(stream))
    }));
    let mut failing = client.get("/").send().await;
    assert_eq!(failing.status(), StatusCode::OK);
    assert!(failing.bytes().await.is_err());
    assert_eq!(failing.disconnect().outcome(), Some(Outcome::Aborted));
    let client = TestClient::new(FnApp(|_req: Request| async move {
        let body = Frames::new(vec![trailers(&[("x-a", "1")]), data("late")]);
        Ok::<_, BoxError>(Response::new(body))
    }));
    let mut late = client.get("/").send().await;
    assert!(late.bytes().await.is_err());
    assert_eq!(late.disconnect().outcome(), Some(Outcome::Aborted));
}

/// CORE-ERR-6, HTTP-RESP-6: a 101 without the upgrade API is an app error; hop-by-hop fields
/// never reach the client.
#[tokio::test]
async fn invalid_responses_and_hop_by_hop_fields() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        let mut response = Response::new(Body::empty());
        if req.uri().path() == "/101" {
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        } else {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok::<_, BoxError>(response)
    }));
    let switching = client.get("/101").send().await;
    assert_eq!(switching.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let plain = client.get("/").send().await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get(header::CONNECTION).is_none());
}

/// HTTP-INTERIM-4, HTTP-INTERIM-5, HTTP-INTERIM-3: early hints are recorded before the head,
/// refused after it, and not offered to HTTP/1.0.
#[tokio::test]
async fn early_hints() {
    let (late_tx, late_rx) = tokio::sync::oneshot::channel();
    let late_tx = std::sync::Mutex::new(Some(late_tx));
    let client = TestClient::new(FnApp(move |req: Request| {
        let hints = req.extensions().get::<EarlyHints>().cloned();
        let late_tx = late_tx.lock().unwrap().take();
        async move {
            let Some(hints) = hints else {
                return text("no hints");
            };
            hints
                .send(header_map(&[("link", "</style.css>; rel=preload")]))
                .await?;
            if let Some(tx) = late_tx {
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    let _ = tx.send(hints.send(header_map(&[("link", "</x>")])).await);
                });
            }
            text("hinted")
        }
    }));
    let mut response = client.get("/").send().await;
    assert_eq!(response.text().await.unwrap(), "hinted");
    let hints = response.early_hints();
    assert_eq!(hints.len(), 1);
    assert_eq!(hints[0]["link"], "</style.css>; rel=preload");
    let late = bounded(late_rx).await.unwrap();
    assert!(matches!(late, Err(EarlyHintsError::HeadSent)));
    let mut old = client.get("/").version(Version::HTTP_10).send().await;
    assert_eq!(old.text().await.unwrap(), "no hints");
}

/// HTTP-REQ-2, HTTP-REQ-3: HTTP/2 requests carry scheme and authority in the URI and no host.
#[tokio::test]
async fn http2_requests() {
    let client = TestClient::new(FnApp(|req: Request| async move {
        text(format!(
            "{:?} {} {}",
            req.version(),
            req.uri(),
            req.headers().contains_key(header::HOST)
        ))
    }));
    let mut response = client.get("/a?b").version(Version::HTTP_2).send().await;
    assert_eq!(
        response.text().await.unwrap(),
        "HTTP/2.0 http://localhost/a?b false"
    );
    let mut h1 = client.get("/a").send().await;
    assert_eq!(h1.text().await.unwrap(), "HTTP/1.1 /a true");
}

/// HTTP-FRAME-12: TestBody is an http_body::Body the test can stream, frame by frame.
#[tokio::test]
async fn into_body_streams() {
    use http_body_util::BodyExt as _;
    let client = TestClient::new(FnApp(|_req: Request| async {
        text(Body::from_stream(tokio_stream(vec!["1", "2"])))
    }));
    let body = client.get("/").send().await.into_body();
    let collected = body.collect().await.unwrap().to_bytes();
    assert_eq!(collected, Bytes::from_static(b"12"));
}

fn tokio_stream(
    items: Vec<&'static str>,
) -> impl futures_core::Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
    tokio_stream_results(items.into_iter().map(Ok).collect())
}

fn tokio_stream_results(
    items: Vec<Result<&'static str, &'static str>>,
) -> impl futures_core::Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
    Iter(items.into_iter())
}

struct Iter<I>(I);

impl<I> futures_core::Stream for Iter<I>
where
    I: Iterator<Item = Result<&'static str, &'static str>> + Unpin,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next().map(|item| {
            item.map(|s| Bytes::from_static(s.as_bytes()))
                .map_err(BoxError::from)
        }))
    }
}

/// HTTP-DISC-2: a response without a body is complete once its head is handed over, even if
/// the test never reads the (empty) body.
#[tokio::test]
async fn bodyless_responses_complete_at_once() {
    let client = TestClient::new(FnApp(|_req: Request| async {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok::<_, BoxError>(response)
    }));
    let response = client.get("/").send().await;
    assert_eq!(response.disconnect().outcome(), Some(Outcome::Completed));
}

/// HTTP-FRAME-4, HTTP-DISC-6: an empty body that declares a length is cut short, not complete.
#[tokio::test]
async fn empty_body_with_a_length_aborts() {
    let client = TestClient::new(FnApp(|_req: Request| async {
        let mut response = Response::new(Body::empty());
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(5u64));
        Ok::<_, BoxError>(response)
    }));
    let mut response = client.get("/").send().await;
    assert!(response.bytes().await.is_err());
    assert_eq!(response.disconnect().outcome(), Some(Outcome::Aborted));
}
