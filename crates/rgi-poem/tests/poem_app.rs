//! `PoemApp` driven in-process by rgi-test's `TestClient`, with `Lint` in strict mode checking
//! both sides of every exchange.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::web::{Data, Json, LocalAddr, Path, RemoteAddr};
use poem::{Body, Request, Response, Route, get, handler, post};
use rgi::{ConnectionInfo, Lifespan, SocketAddress, TlsInfo, TlsVersion};
use rgi_poem::PoemApp;
use rgi_test::{Lint, LintMode, LintReport, TestClient};
use serde::{Deserialize, Serialize};

/// Upper bound for one step of a test: only stops a broken adapter from hanging the suite.
const BOUND: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Item {
    id: u64,
    name: String,
}

#[handler]
fn hello() -> &'static str {
    "Hello, World!"
}

/// Streams the body back, announcing the trailers the request announced (HTTP-TRAIL-10).
#[handler]
fn echo(headers: &HeaderMap, body: Body) -> Response {
    let mut response = Response::builder().body(body);
    if let Some(announced) = headers.get(header::TRAILER) {
        response
            .headers_mut()
            .insert(header::TRAILER, announced.clone());
    }
    response
}

#[handler]
fn show_item(Path((kind, id)): Path<(String, u64)>) -> Json<Item> {
    Json(Item {
        id,
        name: format!("{kind} {id}"),
    })
}

#[handler]
fn rename(Json(mut item): Json<Item>) -> Json<Item> {
    item.name = item.name.to_uppercase();
    Json(item)
}

#[handler]
fn addresses(req: &Request, remote: &RemoteAddr, local: &LocalAddr) -> String {
    format!(
        "{} {} {} {}",
        remote
            .as_socket_addr()
            .map_or("-".into(), SocketAddr::to_string),
        local
            .as_socket_addr()
            .map_or("-".into(), SocketAddr::to_string),
        req.scheme(),
        req.original_uri(),
    )
}

#[handler]
fn tls(Data(info): Data<&ConnectionInfo>) -> String {
    info.tls()
        .and_then(TlsInfo::server_name)
        .unwrap_or("none")
        .to_owned()
}

#[handler]
fn teapot() -> poem::Result<String> {
    Err(poem::Error::from_string(
        "short and stout",
        StatusCode::IM_A_TEAPOT,
    ))
}

#[handler]
fn panics() -> &'static str {
    panic!("the handler failed")
}

/// A plain handler, not behind a `RouteMethod`: poem itself does nothing special for `HEAD`.
#[handler]
fn plain() -> &'static str {
    "plain body"
}

#[handler]
fn no_content() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body("stray body")
}

fn route() -> Route {
    Route::new()
        .at("/", get(hello))
        .at("/echo", post(echo))
        .at("/items/:kind/:id", get(show_item))
        .at("/rename", post(rename))
        .at("/addresses", get(addresses))
        .at("/tls", get(tls))
        .at("/teapot", get(teapot))
        .at("/panic", get(panics))
        .at("/plain", plain)
        .at("/no-content", get(no_content))
}

fn linted() -> (TestClient<Lint<PoemApp<Route>>>, LintReport) {
    let lint = Lint::new(PoemApp::new(route())).mode(LintMode::Strict);
    let report = lint.report();
    (TestClient::new(lint), report)
}

fn assert_clean(report: &LintReport) {
    let violations = report.violations();
    assert!(violations.is_empty(), "lint violations: {violations:#?}");
}

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("the step finishes within the bound")
}

/// HTTP-RESP-1, HTTP-RESP-2, HTTP-RESP-5, HTTP-PATH-8: poem routes — a plain text route, a
/// route with path parameters and a JSON response, a JSON request — answer through the
/// adapter, and Lint (strict) finds nothing wrong on either side.
#[tokio::test]
async fn routes_path_params_and_json_answer_cleanly() {
    let (client, report) = linted();

    let mut response = client.get("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "Hello, World!");

    let mut response = client.get("/items/book/42").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.header(header::CONTENT_TYPE),
        Some("application/json; charset=utf-8")
    );
    let item: Item = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        item,
        Item {
            id: 42,
            name: "book 42".into()
        }
    );

    let mut response = client
        .post("/rename")
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"id": 1, "name": "rgi"}"#)
        .send()
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Item = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        item,
        Item {
            id: 1,
            name: "RGI".into()
        }
    );

    assert_clean(&report);
}

/// CORE-ERR-8: failures poem understands stay poem's answers — `404` for an unknown path,
/// `405` for a known path with another method, `400` for a path parameter or JSON body that
/// does not parse, and the status of a handler's `poem::Error`.
#[tokio::test]
async fn poem_errors_become_poems_responses() {
    let (client, report) = linted();
    assert_eq!(
        client.get("/nowhere").send().await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        client.post("/").body("x").send().await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        client.get("/items/book/not-a-number").send().await.status(),
        StatusCode::BAD_REQUEST
    );
    let response = client
        .post("/rename")
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let mut response = client.get("/teapot").send().await;
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(response.text().await.unwrap(), "short and stout");
    assert_clean(&report);
}

/// HTTP-BODY-1, HTTP-BODY-13, HTTP-FRAME-12: the request body reaches poem as a stream and
/// poem's response body goes back as one: the echo's first chunk comes back before the client
/// has sent the second, so nothing is buffered on either side.
#[tokio::test]
async fn bodies_stream_both_ways_without_buffering() {
    let (client, report) = linted();
    let (chunks, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let body = stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let mut response = within(client.post("/echo").body_stream(body).send()).await;
    assert_eq!(response.status(), StatusCode::OK);

    for chunk in ["first", "second", "third"] {
        chunks.send(Bytes::from(chunk)).await.unwrap();
        let frame = within(response.frame()).await.expect("a frame").unwrap();
        assert_eq!(frame.into_data().unwrap(), chunk);
    }
    drop(chunks);
    assert!(
        within(response.frame()).await.is_none(),
        "the echo ends with the request"
    );
    assert_clean(&report);
}

/// HTTP-TRAIL-1, HTTP-TRAIL-2: request trailers reach poem's body as its trailers frame, and
/// the trailers of poem's response body reach the client.
#[tokio::test]
async fn trailers_pass_both_ways() {
    let (client, report) = linted();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("1234"));
    let mut response = client
        .post("/echo")
        .header(header::TRAILER, "x-checksum")
        .chunks(["a", "b"])
        .trailers(trailers)
        .send()
        .await;
    assert_eq!(response.bytes().await.unwrap(), "ab");
    assert_eq!(
        response.trailers().and_then(|t| t.get("x-checksum")),
        Some(&HeaderValue::from_static("1234"))
    );
    assert_clean(&report);
}

/// HTTP-CONN-2, HTTP-CONN-3, HTTP-CONN-8: poem's `RemoteAddr`, `LocalAddr` and scheme come
/// from the RGI `ConnectionInfo`, and the `ConnectionInfo` itself (with its TLS details) is
/// readable through poem's `Data` extractor.
#[tokio::test]
async fn connection_info_is_exposed_the_way_poem_reads_it() {
    let (client, report) = linted();
    let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8443".parse().unwrap();
    let mut response = client
        .get("/addresses")
        .peer(peer)
        .local(local)
        .tls(TlsInfo::new(TlsVersion::Tls13).with_server_name("example.test"))
        .send()
        .await;
    assert_eq!(
        response.text().await.unwrap(),
        "192.0.2.7:40000 127.0.0.1:8443 https /addresses"
    );

    let mut response = client
        .get("/tls")
        .tls(TlsInfo::new(TlsVersion::Tls13).with_server_name("example.test"))
        .send()
        .await;
    assert_eq!(response.text().await.unwrap(), "example.test");

    // A client address forwarded by a trusted proxy has no port (HTTP-CONN-5): port 0.
    let mut response = client
        .get("/addresses")
        .peer(SocketAddress::Ip("198.51.100.1".parse().unwrap()))
        .send()
        .await;
    assert!(
        response
            .text()
            .await
            .unwrap()
            .starts_with("198.51.100.1:0 - http")
    );
    assert_clean(&report);
}

/// HTTP-PATH-4, HTTP-PATH-8: under a mount prefix poem's routes match the application path,
/// and poem's `original_uri()` keeps the whole target.
#[tokio::test]
async fn routes_match_below_the_mount_prefix() {
    let (client, report) = linted();
    let client = client.mount_prefix("/api");
    let mut response = client.get("/api/items/pen/3").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Item = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(item.name, "pen 3");

    let mut response = client.get("/api/addresses?x=1").send().await;
    assert!(
        response
            .text()
            .await
            .unwrap()
            .ends_with(" http /api/addresses?x=1")
    );
    assert_clean(&report);
}

/// CORE-ERR-4, CORE-ERR-9, HTTP-BODY-7: a request body over the server's limit fails poem's
/// JSON extractor; the adapter hands the `BodyError` to the server, which answers `413`
/// (poem alone would say `400`).
#[tokio::test]
async fn a_body_over_the_limit_is_answered_413() {
    let (client, _report) = linted();
    let big = format!(r#"{{"id": 1, "name": "{}"}}"#, "x".repeat(4096));
    let response = client
        .post("/rename")
        .body_limit(Some(64))
        .header(header::CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// CORE-ERR-4, HTTP-BODY-9: a client that goes away while poem reads its body gets no answer
/// at all (nobody is left to read it), instead of poem's `400`.
#[tokio::test]
async fn a_client_gone_mid_body_gets_no_response() {
    let (client, _report) = linted();
    let outcome = client
        .post("/rename")
        .header(header::CONTENT_TYPE, "application/json")
        .chunks([r#"{"id": 1, "#, r#""name": "x"}"#])
        .disconnect_after_request_bytes(4)
        .try_send()
        .await;
    assert!(
        outcome.is_err(),
        "no response is sent to a client that is gone"
    );
}

/// CORE-ERR-1, CORE-ERR-2: a panicking poem handler becomes the server's `500`, without the
/// panic message.
#[tokio::test]
async fn a_panicking_handler_is_answered_500() {
    let client = TestClient::new(PoemApp::new(route()));
    let mut response = client.get("/panic").send().await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !response
            .text()
            .await
            .unwrap()
            .contains("the handler failed")
    );
    // The app keeps serving (CORE-ERR-5).
    assert_eq!(client.get("/").send().await.status(), StatusCode::OK);
}

/// HTTP-FRAME-6, HTTP-RESP-12, HTTP-FRAME-8: `HEAD` to an endpoint that answers with a body
/// gets the `GET` fields — `content-length` included — and no body data; a `204` loses the
/// body its handler attached.
#[tokio::test]
async fn head_and_no_content_responses_carry_no_body() {
    let (client, report) = linted();
    let mut response = client.head("/plain").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.header(header::CONTENT_LENGTH), Some("10"));
    assert!(response.bytes().await.unwrap().is_empty());

    // Behind a `RouteMethod`, poem maps `HEAD` to the `GET` handler itself.
    let mut response = client.head("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().is_empty());

    let mut response = client.get("/no-content").send().await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    assert_clean(&report);
}

/// CORE-APP-2, LIFE-START-3: the adapter is an RGI app (and so a lifespan that starts as
/// itself) for any poem endpoint — here an endpoint with poem middleware around a route.
#[tokio::test]
async fn any_endpoint_with_middleware_is_an_app() {
    use poem::EndpointExt as _;
    let endpoint =
        route().with(poem::middleware::SetHeader::new().overriding("x-framework", "poem"));
    let app = PoemApp::new(endpoint)
        .startup(rgi_test::server_info())
        .await
        .expect("starts");
    let client = TestClient::new(app);
    let response = client.request(Method::GET, "/").send().await;
    assert_eq!(response.header("x-framework"), Some("poem"));
}
