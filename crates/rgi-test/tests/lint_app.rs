//! Lint: every application-side rule is triggered by a misbehaving app, and a conforming
//! exchange passes with zero violations.

mod common;

use bytes::Bytes;
use common::{FnApp, Frames, data, header_map, trailers};
use http::{HeaderValue, Response, StatusCode, Version, header};
use rgi::ext::EarlyHints;
use rgi::upgrade::OnUpgrade;
use rgi::ws::{AcceptOptions, WebSocketUpgrade};
use rgi::{Body, BoxError, Request};
use rgi_test::{Level, Lint, LintMode, LintReport, Side, TestClient};

type Result<T> = std::result::Result<T, BoxError>;

/// Runs one GET through a Lint around `app` and returns what Lint found.
async fn lint_get<F, Fut, B>(app: F) -> LintReport
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<B>>> + Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    lint_request(app, |client| client.get("/")).await
}

async fn lint_request<F, Fut, B>(
    app: F,
    request: impl FnOnce(&TestClient<Lint<FnApp<F>>>) -> rgi_test::RequestBuilder<Lint<FnApp<F>>>,
) -> LintReport
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<B>>> + Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let lint = Lint::new(FnApp(app));
    let report = lint.report();
    let client = TestClient::new(lint);
    if let Ok(mut response) = request(&client).try_send().await {
        let _ = response.bytes().await;
    }
    report
}

fn assert_violation(report: &LintReport, id: &str, side: Side) {
    let violations = report.violations();
    let found = violations.iter().find(|v| v.id == id);
    let Some(found) = found else {
        panic!("expected a violation of {id}, got {violations:#?}");
    };
    assert_eq!(found.side, side, "{found:?}");
    assert!(found.message.starts_with(id), "{found:?}");
}

/// HTTP-RESP-2: a 1xx or 101 final status without the upgrade API.
#[tokio::test]
async fn informational_status_is_flagged() {
    for status in [
        StatusCode::SWITCHING_PROTOCOLS,
        StatusCode::from_u16(103).unwrap(),
    ] {
        let report = lint_get(move |_req| async move {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            Ok(response)
        })
        .await;
        assert_violation(&report, "HTTP-RESP-2", Side::App);
    }
}

/// HTTP-RESP-2: a 2xx to an HTTP/2 extended CONNECT without the upgrade API.
#[tokio::test]
async fn ok_to_extended_connect_without_accept_is_flagged() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        Ok::<_, BoxError>(Response::new(Body::empty()))
    }));
    let report = lint.report();
    let client = TestClient::new(lint);
    let denied = client.websocket("/ws").http2().connect().await;
    assert!(denied.is_err());
    assert_violation(&report, "HTTP-RESP-2", Side::App);
}

/// HTTP-RESP-5: each connection-specific field set by the app.
#[tokio::test]
async fn hop_by_hop_fields_are_flagged() {
    for name in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-connection",
    ] {
        let report = lint_get(move |_req| async move {
            let mut response = Response::new(Body::from("x"));
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static("x"));
            Ok(response)
        })
        .await;
        assert_violation(&report, "HTTP-RESP-5", Side::App);
        assert!(report.violations()[0].message.contains(name));
    }
}

fn with_length<B>(body: B, length: &'static str) -> Result<Response<B>> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static(length));
    Ok(response)
}

/// HTTP-RESP-12: a body longer than its content-length (seen while streaming).
#[tokio::test]
async fn body_longer_than_content_length() {
    let report =
        lint_get(|_req| async { with_length(Frames::new(vec![data("abc"), data("def")]), "4") })
            .await;
    assert_violation(&report, "HTTP-RESP-12", Side::App);
}

/// HTTP-RESP-12: a body shorter than its content-length (seen at its end).
#[tokio::test]
async fn body_shorter_than_content_length() {
    let report = lint_get(|_req| async { with_length(Frames::new(vec![data("ab")]), "10") }).await;
    assert_violation(&report, "HTTP-RESP-12", Side::App);
}

/// HTTP-RESP-12: an exact size hint that contradicts content-length (seen before the head),
/// and a content-length that is not a number.
#[tokio::test]
async fn content_length_contradicted_before_the_head() {
    let report = lint_get(|_req| async { with_length(Body::from("abc"), "7") }).await;
    assert_violation(&report, "HTTP-RESP-12", Side::App);
    let report = lint_get(|_req| async { with_length(Body::from("abc"), "3, 3") }).await;
    assert_violation(&report, "HTTP-RESP-12", Side::App);
}

/// HTTP-FRAME-6: a HEAD response with body data (a SHOULD).
#[tokio::test]
async fn head_with_body_is_flagged() {
    let report = lint_request(
        |_req| async { Ok(Response::new(Body::from("body for HEAD"))) },
        |client| client.head("/"),
    )
    .await;
    assert_violation(&report, "HTTP-FRAME-6", Side::App);
    assert_eq!(report.violations()[0].level, Level::Should);
}

/// HTTP-FRAME-8: body data on 204, 205 and 304, and content-length on 204.
#[tokio::test]
async fn body_on_204_and_304_is_flagged() {
    for status in [
        StatusCode::NO_CONTENT,
        StatusCode::RESET_CONTENT,
        StatusCode::NOT_MODIFIED,
    ] {
        let report = lint_get(move |_req| async move {
            let mut response = Response::new(Body::from("nope"));
            *response.status_mut() = status;
            Ok(response)
        })
        .await;
        assert_violation(&report, "HTTP-FRAME-8", Side::App);
    }
    let report = lint_get(|_req| async {
        let mut response = with_length(Body::empty(), "0")?;
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    })
    .await;
    assert_violation(&report, "HTTP-FRAME-8", Side::App);
}

/// HTTP-TRAIL-1: data after trailers, and a second trailers frame.
#[tokio::test]
async fn frames_after_trailers_are_flagged() {
    let report = lint_get(|_req| async {
        Ok(Response::new(Frames::new(vec![
            data("a"),
            trailers(&[("x-a", "1")]),
            data("late"),
        ])))
    })
    .await;
    assert_violation(&report, "HTTP-TRAIL-1", Side::App);
    let report = lint_get(|_req| async {
        Ok(Response::new(Frames::new(vec![
            trailers(&[("x-a", "1")]),
            trailers(&[("x-b", "2")]),
        ])))
    })
    .await;
    assert_violation(&report, "HTTP-TRAIL-1", Side::App);
}

/// HTTP-TRAIL-7: forbidden fields in response trailers.
#[tokio::test]
async fn forbidden_trailer_fields_are_flagged() {
    for name in [
        "content-length",
        "host",
        "authorization",
        "content-type",
        "trailer",
        "te",
    ] {
        let report = lint_get(move |_req| async move {
            let mut response =
                Response::new(Frames::new(vec![data("a"), trailers(&[(name, "1")])]));
            response
                .headers_mut()
                .insert(header::TRAILER, HeaderValue::from_static(name));
            Ok(response)
        })
        .await;
        assert_violation(&report, "HTTP-TRAIL-7", Side::App);
    }
}

/// HTTP-TRAIL-10: trailers not announced in a `trailer` field (a SHOULD).
#[tokio::test]
async fn unannounced_trailers_are_flagged() {
    let report = lint_get(|_req| async {
        Ok(Response::new(Frames::new(vec![
            data("a"),
            trailers(&[("x-checksum", "1")]),
        ])))
    })
    .await;
    assert_violation(&report, "HTTP-TRAIL-10", Side::App);
    assert_eq!(report.violations()[0].level, Level::Should);
}

/// HTTP-TRAIL-6: trailers on a response with content-length (a SHOULD NOT).
#[tokio::test]
async fn trailers_with_content_length_are_flagged() {
    let report = lint_get(|_req| async {
        let mut response = with_length(
            Frames::new(vec![data("a"), trailers(&[("x-checksum", "1")])]),
            "1",
        )?;
        response
            .headers_mut()
            .insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
        Ok(response)
    })
    .await;
    assert_eq!(report.ids(), ["HTTP-TRAIL-6"]);
}

/// EXT-NS-1: an accept marker in the response to a request that offered no upgrade.
#[tokio::test]
async fn forged_accept_marker_is_flagged() {
    let report = lint_get(|_req| async {
        let forged = WebSocketUpgrade::new(Version::HTTP_11, Vec::new());
        Ok(forged.accept::<Body, _, _>(|_socket| async { Ok(()) }))
    })
    .await;
    assert_violation(&report, "EXT-NS-1", Side::App);
    let report = lint_get(|_req| async {
        let forged = OnUpgrade::new(Version::HTTP_11, vec!["x".to_owned()]);
        Ok(forged.accept::<Body, _, _>("x", |_io| async { Ok(()) })?)
    })
    .await;
    assert_violation(&report, "EXT-NS-1", Side::App);
}

async fn accept_then<F>(change: F) -> LintReport
where
    F: Fn(&mut Response<Body>) + Send + Sync + 'static,
{
    let lint = Lint::new(FnApp(move |req: Request| {
        let offer = req.extensions().get::<WebSocketUpgrade>().cloned();
        let mut response = match offer {
            Some(offer) => offer.accept(|_socket| async { Ok(()) }),
            None => Response::new(Body::empty()),
        };
        change(&mut response);
        async move { Ok::<_, BoxError>(response) }
    }));
    let report = lint.report();
    let client = TestClient::new(lint);
    let _ = client.websocket("/ws").protocols(["chat"]).connect().await;
    report
}

/// WS-HS-7: the accepted WebSocket response's status was changed.
#[tokio::test]
async fn changed_websocket_accept_status_is_flagged() {
    let report = accept_then(|response| *response.status_mut() = StatusCode::OK).await;
    assert_violation(&report, "WS-HS-7", Side::App);
}

/// WS-HS-2: a subprotocol the client did not offer, set by hand.
#[tokio::test]
async fn unoffered_subprotocol_is_flagged() {
    let report = accept_then(|response| {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("superchat"),
        );
    })
    .await;
    assert_violation(&report, "WS-HS-2", Side::App);
}

/// WS-HS-10: a handshake field the server owns, set by hand.
#[tokio::test]
async fn hand_set_websocket_fields_are_flagged() {
    let report = accept_then(|response| {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
    })
    .await;
    assert_violation(&report, "WS-HS-10", Side::App);
    // Selecting an offered subprotocol by hand is still setting a server-owned field.
    let report = accept_then(|response| {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
    })
    .await;
    assert_violation(&report, "WS-HS-10", Side::App);
}

/// UPGRADE-RAW-7: the accepted upgrade response's status was changed.
#[tokio::test]
async fn changed_upgrade_status_is_flagged() {
    let lint = Lint::new(FnApp(|req: Request| {
        let offer = req.extensions().get::<OnUpgrade>().cloned();
        async move {
            let Some(offer) = offer else {
                return Ok(Response::new(Body::empty()));
            };
            let mut response: Response<Body> = offer.accept("echo", |_io| async { Ok(()) })?;
            *response.status_mut() = StatusCode::OK;
            Ok::<_, BoxError>(response)
        }
    }));
    let report = lint.report();
    let client = TestClient::new(lint);
    let _ = client.upgrade("/raw", "echo").connect().await;
    assert_violation(&report, "UPGRADE-RAW-7", Side::App);
}

/// HTTP-BODY-9: answering 2xx after the request body failed, as if it were complete.
#[tokio::test]
async fn success_after_a_body_error_is_flagged() {
    let report = lint_request(
        |req: Request| async move {
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    // Wrong: treats the error as skippable and keeps reading.
                    continue;
                }
            }
            Ok(Response::new(Body::from("pretend it was complete")))
        },
        |client| {
            client
                .post("/")
                .body("0123456789")
                .disconnect_after_request_bytes(3)
        },
    )
    .await;
    assert_violation(&report, "HTTP-BODY-9", Side::App);
}

/// HTTP-INTERIM-6: connection-specific fields in early hints.
#[tokio::test]
async fn bad_early_hints_are_flagged() {
    let report = lint_get(|req: Request| async move {
        if let Some(hints) = req.extensions().get::<EarlyHints>() {
            hints
                .send(header_map(&[("link", "</a.css>"), ("connection", "close")]))
                .await?;
        }
        Ok(Response::new(Body::empty()))
    })
    .await;
    assert_violation(&report, "HTTP-INTERIM-6", Side::App);
}

/// HTTP-RESP-5, strict mode: a violation before the head fails the exchange with a 500 that
/// names the requirement.
#[tokio::test]
async fn strict_mode_fails_before_the_head() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        let mut response = Response::new(Body::from("x"));
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, BoxError>(response)
    }))
    .mode(LintMode::Strict);
    let report = lint.report();
    let client = TestClient::new(lint);
    let mut response = client.get("/").send().await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = response.text().await.unwrap();
    assert!(text.contains("HTTP-RESP-5"), "{text}");
    assert_eq!(report.ids(), ["HTTP-RESP-5"]);
}

/// HTTP-RESP-12, strict mode: a violation after the head makes the body fail, so the server
/// aborts the response.
#[tokio::test]
async fn strict_mode_fails_after_the_head() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        with_length(Frames::new(vec![data("abc"), data("def")]), "4")
    }))
    .mode(LintMode::Strict);
    let client = TestClient::new(lint);
    let mut response = client.get("/").send().await;
    assert_eq!(response.status(), StatusCode::OK);
    let error = response.bytes().await.unwrap_err();
    assert!(error.to_string().contains("HTTP-RESP-12"), "{error}");
}

/// HTTP-TRAIL-10, strict mode: a SHOULD is reported but never fails the exchange.
#[tokio::test]
async fn strict_mode_does_not_fail_shoulds() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        Ok::<_, BoxError>(Response::new(Frames::new(vec![
            data("a"),
            trailers(&[("x-checksum", "1")]),
        ])))
    }))
    .mode(LintMode::Strict);
    let report = lint.report();
    let client = TestClient::new(lint);
    let mut response = client.get("/").send().await;
    assert_eq!(response.bytes().await.unwrap(), "a");
    assert_eq!(report.ids(), ["HTTP-TRAIL-10"]);
}

/// HTTP-RESP-1, HTTP-TRAIL-10, WS-HS-5, UPGRADE-RAW-4: conforming exchanges of every kind
/// (plain, streaming with announced trailers, HEAD, 204, accepted WebSocket with a subprotocol,
/// accepted raw upgrade) pass with zero violations.
#[tokio::test]
async fn conforming_app_passes() {
    let lint = Lint::new(FnApp(|req: Request| async move {
        if let Some(offer) = req.extensions().get::<WebSocketUpgrade>().cloned() {
            let options = AcceptOptions::new().subprotocol("chat");
            return Ok(offer.accept_with(options, |_socket| async { Ok(()) })?);
        }
        if let Some(offer) = req.extensions().get::<OnUpgrade>().cloned() {
            return Ok(offer.accept("echo", |_io| async { Ok(()) })?);
        }
        match req.uri().path() {
            "/trailers" => {
                let body = Body::new(Frames::new(vec![
                    data("abc"),
                    trailers(&[("x-checksum", "1")]),
                ]));
                let mut response = Response::new(body);
                response
                    .headers_mut()
                    .insert(header::TRAILER, HeaderValue::from_static("x-checksum"));
                Ok(response)
            }
            "/204" => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                Ok(response)
            }
            _ => {
                let body = req.into_body().collect().await?.into_bytes();
                let mut response = with_length(Body::from(body.clone()), "0")?;
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                Ok::<_, BoxError>(response)
            }
        }
    }));
    let report = lint.report();
    let client = TestClient::new(lint);
    assert_eq!(
        client
            .post("/")
            .body("hello")
            .send()
            .await
            .text()
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(
        client.get("/trailers").send().await.text().await.unwrap(),
        "abc"
    );
    assert_eq!(client.head("/").send().await.status(), StatusCode::OK);
    assert_eq!(
        client.get("/204").send().await.status(),
        StatusCode::NO_CONTENT
    );
    let mut socket = client
        .websocket("/ws")
        .protocols(["chat"])
        .connect()
        .await
        .unwrap();
    assert_eq!(socket.subprotocol(), Some("chat"));
    socket.finished().await.unwrap();
    let mut raw = client.upgrade("/raw", "echo").connect().await.unwrap();
    raw.finished().await.unwrap();
    report.assert_clean();
}

/// A middleware: changes what `edit_request` and `edit_response` say, then calls `inner`.
struct Middleware<A, Q, R> {
    inner: A,
    edit_request: Q,
    edit_response: R,
}

impl<A, Q, R> rgi::App for Middleware<A, Q, R>
where
    A: rgi::App,
    Q: Fn(Request) -> Request + Send + Sync + 'static,
    R: Fn(Response<A::Body>) -> Response<A::Body> + Send + Sync + 'static,
{
    type Body = A::Body;
    type Error = A::Error;

    async fn call(&self, req: Request) -> std::result::Result<Response<A::Body>, A::Error> {
        let response = self.inner.call((self.edit_request)(req)).await?;
        Ok((self.edit_response)(response))
    }
}

/// Answers with its application path.
struct PathApp;

impl rgi::App for PathApp {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, req: Request) -> Result<Response<Body>> {
        let path = rgi::path::app_path(&req)
            .map(|p| p.into_owned())
            .unwrap_or_default();
        Ok(Response::new(Body::from(path)))
    }
}

fn inner_app() -> Lint<PathApp> {
    Lint::new(PathApp)
}

async fn through_middleware<Q, R>(
    edit_request: Q,
    edit_response: R,
    path: &str,
) -> (LintReport, LintReport)
where
    Q: Fn(Request) -> Request + Send + Sync + 'static,
    R: Fn(Response<rgi_test::LintBody<Body>>) -> Response<rgi_test::LintBody<Body>>
        + Send
        + Sync
        + 'static,
{
    let inner = inner_app();
    let inner_report = inner.report();
    let outer = Lint::new(Middleware {
        inner,
        edit_request,
        edit_response,
    });
    let outer_report = outer.report();
    let client = TestClient::new(outer);
    let _ = client.get(path).send().await.bytes().await;
    (outer_report, inner_report)
}

/// EXT-CAP-4: a middleware that drops the request's extensions (it rebuilds the request).
#[tokio::test]
async fn middleware_dropping_request_extensions_is_flagged() {
    let (outer, _inner) = through_middleware(
        |req: Request| {
            let (parts, body) = req.into_parts();
            let mut fresh = Request::new(body);
            *fresh.uri_mut() = parts.uri;
            *fresh.headers_mut() = parts.headers;
            fresh
        },
        |response| response,
        "/",
    )
    .await;
    assert_violation(&outer, "EXT-CAP-4", Side::App);
}

/// EXT-CAP-4: a middleware that drops the response's extensions.
#[tokio::test]
async fn middleware_dropping_response_extensions_is_flagged() {
    let (outer, inner) = through_middleware(
        |req| req,
        |response| {
            let (parts, body) = response.into_parts();
            let mut fresh = Response::new(body);
            *fresh.status_mut() = parts.status;
            fresh
        },
        "/",
    )
    .await;
    assert_violation(&outer, "EXT-CAP-4", Side::App);
    inner.assert_clean();
}

/// HTTP-PATH-10: a mounting middleware that breaks the prefix invariant.
#[tokio::test]
async fn middleware_breaking_the_mount_invariant_is_flagged() {
    let (_outer, inner) = through_middleware(
        |mut req: Request| {
            req.extensions_mut()
                .insert(rgi::MountPrefix::new("/v1").unwrap());
            req
        },
        |response| response,
        "/v2/items",
    )
    .await;
    assert_violation(&inner, "HTTP-PATH-10", Side::App);
}

/// EXT-CAP-4, HTTP-PATH-10: a conforming mounting middleware passes both Lints clean.
#[tokio::test]
async fn conforming_middleware_passes() {
    let (outer, inner) = through_middleware(
        |mut req: Request| {
            req.extensions_mut()
                .insert(rgi::MountPrefix::new("/v1").unwrap());
            req
        },
        |mut response| {
            response
                .headers_mut()
                .insert("x-middleware", HeaderValue::from_static("1"));
            response
        },
        "/v1/items",
    )
    .await;
    outer.assert_clean();
    inner.assert_clean();
}

/// HTTP-RESP-5: a report keeps at most `LintReport::CAPACITY` violations and counts the rest,
/// so a Lint left in front of a misbehaving app in production stays bounded.
#[tokio::test]
async fn report_is_bounded() {
    let lint = Lint::new(FnApp(|_req: Request| async {
        let mut response = Response::new(Body::empty());
        for name in [
            "connection",
            "keep-alive",
            "te",
            "upgrade",
            "proxy-connection",
        ] {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static("x"));
        }
        Ok::<_, BoxError>(response)
    }));
    let report = lint.report();
    let client = TestClient::new(lint);
    let requests = LintReport::CAPACITY / 5 + 10;
    for _ in 0..requests {
        client.get("/").send().await;
    }
    assert_eq!(report.violations().len(), LintReport::CAPACITY);
    assert_eq!(
        report.dropped(),
        (requests * 5 - LintReport::CAPACITY) as u64
    );
    report.clear();
    assert!(report.is_clean());
}

/// HTTP-RESP-5: `upgrade` is allowed on a `426 Upgrade Required` (RFC 9110 §15.5.22).
#[tokio::test]
async fn upgrade_on_426_is_allowed() {
    struct Wants;
    impl rgi::App for Wants {
        type Body = rgi::Body;
        type Error = std::convert::Infallible;
        async fn call(
            &self,
            _req: rgi::Request,
        ) -> std::result::Result<http::Response<rgi::Body>, std::convert::Infallible> {
            let mut response = http::Response::new(rgi::Body::empty());
            *response.status_mut() = http::StatusCode::UPGRADE_REQUIRED;
            response.headers_mut().insert(
                http::header::UPGRADE,
                http::HeaderValue::from_static("websocket"),
            );
            Ok(response)
        }
    }
    let lint = rgi_test::Lint::new(Wants);
    let report = lint.report();
    let client = rgi_test::TestClient::new(lint);
    let response = client.get("/ws").send().await;
    assert_eq!(response.status(), http::StatusCode::UPGRADE_REQUIRED);
    assert_eq!(response.headers()[http::header::UPGRADE], "websocket");
    assert!(report.violations().is_empty(), "{:?}", report.violations());
}
