//! Differential test: one axum `Router` — the `axum_app` example's router plus a few probing
//! routes — served by `axum::serve` on one port and by rgi-server through
//! `rgi_tower::TowerApp` on another, must answer a corpus of raw HTTP/1.x requests and
//! WebSocket exchanges identically: same status line, same header fields (as a multiset, names
//! lower-cased, `date` dropped), same body bytes (gzip-decoded when compressed), same trailers,
//! same framing.
//!
//! Every request goes to both servers on a fresh connection, in the same order (each server
//! has its own router and so its own state, which evolves the same way). Each case also names
//! the status it must get, so that two servers agreeing on a wrong answer fail too.
//!
//! Differences that the spec allows are listed (with the requirement that allows them) in
//! [`ALLOWED`]; there are none so far: everything below must match exactly.

mod support;

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{AppendHeaders, Response};
use axum::routing::{any, get};
use futures_util::{SinkExt as _, StreamExt as _};
use http_body::Frame;
use rgi_examples::axum_app;
use rgi_server::{Config, RunningServer, Server};
use rgi_tower::TowerApp;
use support::{Framing, IO_BOUND, Parsed, RawResponse, chunk, parse_response, payload};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The timeout layer's limit in this test: `/slow?ms=60000` must hit it, `/slow?ms=0` not.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Upper bound for one exchange (the timeout case takes [`TIMEOUT`]).
const EXCHANGE_BOUND: Duration = Duration::from_secs(30);

/// Differences the spec allows between a plain hyper host and rgi-server, as
/// `(case-name prefix, what differs, requirement)`.
const ALLOWED: &[(&str, &str, &str)] = &[(
    // WS-HS-6: the server MUST NOT offer a `WebSocketUpgrade` for an invalid opening handshake
    // and MAY answer it itself: rgi-server answers `426` with `sec-websocket-version: 13`
    // before the app (axum answers `400`).
    "ws with a bad version",
    "rgi-server answers an invalid WebSocket handshake itself (426)",
    "WS-HS-6",
)];

// ---------------------------------------------------------------------------------------------
// The router under test
// ---------------------------------------------------------------------------------------------

/// `axum_app`'s router plus probing routes that expose what a server changes.
fn router() -> Router {
    axum_app::router_with_timeout(TIMEOUT).merge(probes())
}

fn probes() -> Router {
    Router::new()
        // The method and every request header line, in order (duplicates included).
        .route(
            "/probe/headers",
            any(|method: Method, headers: HeaderMap| async move {
                let mut text = format!("{method}\n");
                for (name, value) in &headers {
                    let _ = writeln!(
                        text,
                        "{name}: {}",
                        String::from_utf8_lossy(value.as_bytes())
                    );
                }
                text
            }),
        )
        // Repeated response fields.
        .route(
            "/probe/dup",
            get(|| async {
                (
                    AppendHeaders([
                        (header::SET_COOKIE, "a=1"),
                        (header::SET_COOKIE, "b=2; Path=/"),
                        (header::HeaderName::from_static("x-multi"), "one"),
                        (header::HeaderName::from_static("x-multi"), "two"),
                    ]),
                    "dup",
                )
            }),
        )
        // Any status, empty body.
        .route(
            "/probe/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
            }),
        )
        // An explicit content-length (HEAD keeps it).
        .route(
            "/probe/length",
            get(|| async {
                let mut response = Response::new(Body::from("hello"));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(5));
                response
            }),
        )
        // Data, then announced trailers.
        .route(
            "/probe/trailers",
            get(|| async {
                let mut response = Response::new(Body::new(Trailing { step: 0 }));
                response
                    .headers_mut()
                    .insert(header::TRAILER, HeaderValue::from_static("x-sum"));
                response
            }),
        )
}

/// Two data frames, then the trailer `x-sum: 42`.
struct Trailing {
    step: u8,
}

impl http_body::Body for Trailing {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.step += 1;
        Poll::Ready(match self.step {
            1 => Some(Ok(Frame::data(Bytes::from_static(b"first\n")))),
            2 => Some(Ok(Frame::data(Bytes::from_static(b"second\n")))),
            3 => {
                let mut trailers = HeaderMap::new();
                trailers.insert("x-sum", HeaderValue::from(42));
                Some(Ok(Frame::trailers(trailers)))
            }
            _ => None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The two servers
// ---------------------------------------------------------------------------------------------

struct Servers {
    axum: SocketAddr,
    rgi: SocketAddr,
    rgi_server: RunningServer,
    axum_task: tokio::task::JoinHandle<()>,
}

async fn start() -> Servers {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let axum = listener.local_addr().expect("local addr");
    let axum_task = tokio::spawn(async move {
        let _ = axum::serve(listener, router()).await;
    });
    let config = Config::default()
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .access_log(false);
    let rgi_server =
        tokio::time::timeout(IO_BOUND, Server::new(config).start(TowerApp::new(router())))
            .await
            .expect("rgi-server starts in time")
            .expect("rgi-server starts");
    let rgi = rgi_server.local_addrs()[0];
    Servers {
        axum,
        rgi,
        rgi_server,
        axum_task,
    }
}

impl Servers {
    async fn stop(self) {
        self.axum_task.abort();
        self.rgi_server.shutdown();
        let _ = tokio::time::timeout(IO_BOUND, self.rgi_server.wait()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------

/// One raw exchange: `request` is written as it is; `expect` are the statuses of the final
/// responses it must get, in order (more than one: pipelined requests); `head`: the request
/// (the only one) is `HEAD`.
struct Case {
    name: String,
    request: Vec<u8>,
    expect: Vec<u16>,
    head: bool,
}

fn case(name: &str, request: Vec<u8>, expect: u16) -> Case {
    Case {
        name: name.to_owned(),
        request,
        expect: vec![expect],
        head: false,
    }
}

/// A request with `Host`, the given extra header lines, and (when `body` is given) a
/// `content-length` body.
fn req(method: &str, target: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
    out
}

/// A chunked request: `body` in chunks of `size`, then the trailer lines `trailers`.
fn chunked(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    size: usize,
    trailers: &str,
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.push_str("Transfer-Encoding: chunked\r\n\r\n");
    let mut out = out.into_bytes();
    for piece in body.chunks(size.max(1)) {
        out.extend_from_slice(&chunk(piece));
    }
    out.extend_from_slice(b"0\r\n");
    out.extend_from_slice(trailers.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

fn corpus() -> Vec<Case> {
    const JSON: (&str, &str) = ("Content-Type", "application/json");
    let big = payload(2 << 20, 1);
    let mid = payload(1_500_000, 2);
    let over = payload(axum_app::UPLOAD_LIMIT + (1 << 20), 3);
    let text = ("Content-Type", "text/plain");
    let gzip = ("Accept-Encoding", "gzip");
    let te = ("TE", "trailers");
    let mut cases = vec![
        // Methods and routing.
        case("get root", req("GET", "/", &[], None), 200),
        case("get root http/1.0", b"GET / HTTP/1.0\r\n\r\n".to_vec(), 200),
        case(
            "get root connection close",
            req("GET", "/", &[("Connection", "close")], None),
            200,
        ),
        case(
            "get root absolute-form",
            b"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            200,
        ),
        case("options root", req("OPTIONS", "/", &[], None), 405),
        case("options asterisk", req("OPTIONS", "*", &[], None), 404),
        case("put root", req("PUT", "/", &[], Some(b"x")), 405),
        case("delete root", req("DELETE", "/", &[], None), 405),
        case("unknown method", req("FROB", "/", &[], None), 405),
        case(
            "extension method reaches the handler",
            req("PURGE", "/probe/headers", &[], None),
            200,
        ),
        case("not found", req("GET", "/nope", &[], None), 404),
        case(
            "not found with query",
            req("GET", "/nope/deeper?x=1&y", &[], None),
            404,
        ),
        case(
            "percent-encoded path parameter",
            req("GET", "/users/%31", &[], None),
            404,
        ),
        // Headers.
        case(
            "duplicate request headers",
            req(
                "GET",
                "/probe/headers",
                &[
                    ("X-Dup", "a"),
                    ("x-dup", "b"),
                    ("X-Other", "1"),
                    ("X-DUP", "c"),
                    ("Cookie", "a=1"),
                    ("Cookie", "b=2"),
                ],
                None,
            ),
            200,
        ),
        case(
            "long header value",
            req(
                "GET",
                "/probe/headers",
                &[("X-Long", &"v".repeat(7000))],
                None,
            ),
            200,
        ),
        case(
            "duplicate response headers",
            req("GET", "/probe/dup", &[], None),
            200,
        ),
        case(
            "explicit content-length",
            req("GET", "/probe/length", &[], None),
            200,
        ),
        case(
            "status 204",
            req("GET", "/probe/status/204", &[], None),
            204,
        ),
        case(
            "status 205",
            req("GET", "/probe/status/205", &[], None),
            205,
        ),
        case(
            "status 304",
            req("GET", "/probe/status/304", &[], None),
            304,
        ),
        case(
            "status 418",
            req("GET", "/probe/status/418", &[], None),
            418,
        ),
        case(
            "status 599",
            req("GET", "/probe/status/599", &[], None),
            599,
        ),
        case(
            "trailers with te",
            req("GET", "/probe/trailers", &[te], None),
            200,
        ),
        case(
            "trailers without te",
            req("GET", "/probe/trailers", &[], None),
            200,
        ),
        case(
            "trailers http/1.0",
            b"GET /probe/trailers HTTP/1.0\r\nTE: trailers\r\n\r\n".to_vec(),
            200,
        ),
        // Echo: small and large bodies, both framings, trailers.
        case(
            "echo small",
            req("POST", "/echo", &[text], Some(b"ping")),
            200,
        ),
        case("echo empty", req("POST", "/echo", &[text], Some(b"")), 200),
        case("echo no body", req("POST", "/echo", &[], None), 200),
        case(
            "echo chunked small",
            chunked("POST", "/echo", &[text], b"hello chunked world", 5, ""),
            200,
        ),
        case(
            "echo chunked with trailers",
            chunked(
                "POST",
                "/echo",
                &[text, te, ("Trailer", "x-sum")],
                b"with trailers",
                4,
                "x-sum: 7\r\n",
            ),
            200,
        ),
        case(
            "echo 2 MiB",
            req(
                "POST",
                "/echo",
                &[("Content-Type", "application/octet-stream")],
                Some(&big),
            ),
            200,
        ),
        case(
            "echo 1.5 MB chunked",
            chunked("POST", "/echo", &[], &mid, 64 * 1024, ""),
            200,
        ),
        case(
            "echo gzip",
            req("POST", "/echo", &[text, gzip], Some(&payload(100_000, 4))),
            200,
        ),
        // Streaming responses.
        case("stream 0", req("GET", "/stream?bytes=0", &[], None), 200),
        case("stream 1", req("GET", "/stream?bytes=1", &[], None), 200),
        case(
            "stream one chunk",
            req("GET", "/stream?bytes=65536", &[], None),
            200,
        ),
        case(
            "stream 3 MB",
            req("GET", "/stream?bytes=3000000", &[], None),
            200,
        ),
        case(
            "stream bad length",
            req("GET", "/stream?bytes=x", &[], None),
            400,
        ),
        case("stream no query", req("GET", "/stream", &[], None), 400),
        case(
            "stream too long",
            req("GET", "/stream?bytes=17179869185", &[], None),
            400,
        ),
        case(
            "stream gzip",
            req("GET", "/stream?bytes=100000", &[gzip], None),
            200,
        ),
        case(
            "stream unsupported encoding",
            req(
                "GET",
                "/stream?bytes=100000",
                &[("Accept-Encoding", "br")],
                None,
            ),
            200,
        ),
        case(
            "stream http/1.0",
            b"GET /stream?bytes=70000 HTTP/1.0\r\n\r\n".to_vec(),
            200,
        ),
        case(
            "post to stream",
            req("POST", "/stream?bytes=1", &[], Some(b"x")),
            405,
        ),
        // JSON, path parameters, shared state.
        case(
            "create user",
            req("POST", "/users", &[JSON], Some(br#"{"name":"ada"}"#)),
            201,
        ),
        case(
            "create user chunked",
            chunked(
                "POST",
                "/users",
                &[JSON],
                br#"{"name":"grace hopper"}"#,
                3,
                "",
            ),
            201,
        ),
        case(
            "create user with charset",
            req(
                "POST",
                "/users",
                &[("Content-Type", "application/json; charset=utf-8")],
                Some("{\"name\":\"\u{e9}mile\"}".as_bytes()),
            ),
            201,
        ),
        case("list users", req("GET", "/users", &[], None), 200),
        case("list users gzip", req("GET", "/users", &[gzip], None), 200),
        case("get user", req("GET", "/users/1", &[], None), 200),
        case("get missing user", req("GET", "/users/99", &[], None), 404),
        case(
            "user id not a number",
            req("GET", "/users/abc", &[], None),
            400,
        ),
        case("user id negative", req("GET", "/users/-1", &[], None), 400),
        case(
            "user id overflow",
            req("GET", "/users/18446744073709551616", &[], None),
            400,
        ),
        case("delete user", req("DELETE", "/users/2", &[], None), 204),
        case(
            "delete deleted user",
            req("DELETE", "/users/2", &[], None),
            404,
        ),
        case(
            "patch user",
            req("PATCH", "/users/1", &[JSON], Some(b"{}")),
            405,
        ),
        case(
            "bad json",
            req("POST", "/users", &[JSON], Some(br#"{"name":"#)),
            400,
        ),
        case(
            "missing content-type",
            req("POST", "/users", &[], Some(br#"{"name":"x"}"#)),
            415,
        ),
        case(
            "wrong content-type",
            req("POST", "/users", &[text], Some(br#"{"name":"x"}"#)),
            415,
        ),
        case(
            "json of the wrong shape",
            req("POST", "/users", &[JSON], Some(br#"{"nom":1}"#)),
            422,
        ),
        case(
            "empty json body",
            req("POST", "/users", &[JSON], Some(b"")),
            400,
        ),
        case("hits 1", req("GET", "/hits", &[], None), 200),
        case("hits 2", req("GET", "/hits", &[], None), 200),
        // Buffered bodies and axum's DefaultBodyLimit.
        case(
            "upload small",
            req("POST", "/upload", &[], Some(b"0123456789")),
            200,
        ),
        case("upload 2 MiB", req("POST", "/upload", &[], Some(&big)), 200),
        case(
            "upload 2 MiB chunked",
            chunked("POST", "/upload", &[], &big, 100_000, ""),
            200,
        ),
        case(
            "upload over DefaultBodyLimit",
            req("POST", "/upload", &[], Some(&over)),
            413,
        ),
        case(
            "upload over DefaultBodyLimit chunked",
            chunked("POST", "/upload", &[], &over, 256 * 1024, ""),
            413,
        ),
        // Timeouts and panics.
        case("slow but in time", req("GET", "/slow?ms=0", &[], None), 200),
        case(
            "slow past the timeout",
            req("GET", "/slow?ms=60000", &[], None),
            503,
        ),
        case("slow bad query", req("GET", "/slow?ms=abc", &[], None), 400),
        case("slow missing query", req("GET", "/slow", &[], None), 400),
        case("handler panic", req("GET", "/panic", &[], None), 500),
        // WebSocket route, without a proper handshake.
        case("ws without upgrade", req("GET", "/ws", &[], None), 400),
        case(
            "ws with a bad version",
            req(
                "GET",
                "/ws",
                &[
                    ("Connection", "Upgrade"),
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Version", "12"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ],
                None,
            ),
            400,
        ),
        case("ws by post", req("POST", "/ws", &[], Some(b"x")), 405),
    ];
    for (name, target) in [
        ("head root", "/"),
        ("head stream", "/stream?bytes=100"),
        ("head explicit content-length", "/probe/length"),
        ("head user", "/users/1"),
    ] {
        cases.push(Case {
            name: name.to_owned(),
            request: req("HEAD", target, &[], None),
            expect: vec![200],
            head: true,
        });
    }
    let mut pipelined = req("GET", "/", &[], None);
    pipelined.extend(req("POST", "/echo", &[text], Some(b"second")));
    pipelined.extend(chunked("POST", "/echo", &[], b"third", 2, ""));
    pipelined.extend(req("GET", "/users/1", &[], None));
    cases.push(Case {
        name: "pipelined keep-alive".to_owned(),
        request: pipelined,
        expect: vec![200, 200, 200, 200],
        head: false,
    });
    cases
}

// ---------------------------------------------------------------------------------------------
// Running and comparing
// ---------------------------------------------------------------------------------------------

/// What is compared of one response.
#[derive(Debug, PartialEq, Eq)]
struct Normalized {
    version: String,
    status: u16,
    /// Sorted `(name, value)` pairs without `date`.
    headers: Vec<(String, String)>,
    /// The body, gzip-decoded when `content-encoding: gzip` (the compressed bytes depend on
    /// how the input arrived in chunks), shown as length and checksum when long.
    body: BodySummary,
    trailers: Vec<(String, String)>,
    framing: Framing,
    complete: bool,
}

#[derive(PartialEq, Eq)]
struct BodySummary(Vec<u8>);

impl std::fmt::Debug for BodySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.len() <= 200 {
            write!(f, "{:?}", String::from_utf8_lossy(&self.0))
        } else {
            let sum = self
                .0
                .iter()
                .fold(0u32, |s, b| s.wrapping_mul(31).wrapping_add(u32::from(*b)));
            write!(f, "<{} bytes, hash {sum:08x}>", self.0.len())
        }
    }
}

fn normalize(response: &RawResponse) -> Normalized {
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| name != "date")
        .cloned()
        .collect();
    headers.sort();
    let mut trailers = response.trailers.clone();
    trailers.sort();
    let gzip = response
        .header("content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip && response.complete {
        let mut decoded = Vec::new();
        match flate2::read::GzDecoder::new(&response.body[..]).read_to_end(&mut decoded) {
            Ok(_) => decoded,
            Err(error) => format!("<invalid gzip: {error}>").into_bytes(),
        }
    } else {
        response.body.clone()
    };
    Normalized {
        version: response.version.clone(),
        status: response.status,
        headers,
        body: BodySummary(body),
        trailers,
        framing: response.framing,
        complete: response.complete,
    }
}

/// Sends `case` on a fresh connection and reads its responses (1xx skipped). The request is
/// written by a task of its own, so that a server answering before it read the whole body
/// (`413`) does not block the test; the connection stays open until the responses are in.
async fn exchange(addr: SocketAddr, case: &Case) -> Result<Vec<RawResponse>, String> {
    let stream = tokio::time::timeout(IO_BOUND, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let request = case.request.clone();
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        // Keep the write half (no FIN) until the test is done with the connection.
        std::future::pending::<()>().await;
        drop(writer);
    });
    let deadline = tokio::time::Instant::now() + EXCHANGE_BOUND;
    let mut buf = Vec::new();
    let mut responses = Vec::new();
    let mut eof = false;
    let mut chunk = vec![0u8; 64 * 1024];
    let result = loop {
        if responses.len() == case.expect.len() {
            break Ok(responses);
        }
        match parse_response(&buf, case.head, eof) {
            Parsed::Response(response, used) => {
                buf.drain(..used);
                if !(100..200).contains(&response.status) {
                    responses.push(response);
                }
                continue;
            }
            Parsed::Invalid(why) => break Err(format!("invalid response: {why}")),
            Parsed::Incomplete if eof => {
                break Err(format!(
                    "connection closed after {} response(s)",
                    responses.len()
                ));
            }
            Parsed::Incomplete => {}
        }
        match tokio::time::timeout_at(deadline, reader.read(&mut chunk)).await {
            Err(_) => break Err("no complete response in time".to_owned()),
            Ok(Ok(0)) | Ok(Err(_)) => eof = true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    write.abort();
    result
}

/// HTTP-RESP-1, HTTP-RESP-7, HTTP-RESP-9, HTTP-REQ-1, HTTP-REQ-5, HTTP-REQ-9, HTTP-FRAME-1,
/// HTTP-FRAME-2, HTTP-FRAME-5, HTTP-FRAME-7, HTTP-BODY-5, HTTP-TRAIL-2, HTTP-TRAIL-5,
/// HTTP-RESP-10, CORE-ERR-8, EXT-NS-2: the same axum router answers every request of the corpus
/// identically on `axum::serve` and on rgi-server through `TowerApp`, modulo `date`: methods
/// (HEAD, OPTIONS, extension and unknown ones), duplicate headers both ways, small and large
/// bodies with both framings, chunked request bodies with trailers, streaming and compressed
/// responses, 404/405/413 (axum's `DefaultBodyLimit`), the timeout layer's 503, a caught
/// panic's 500, extractor rejections (bad JSON, missing content type, bad path parameter),
/// failed WebSocket handshakes, and pipelined requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serve_and_rgi_server_answer_the_corpus_identically() {
    let servers = start().await;
    let corpus = corpus();
    assert!(corpus.len() >= 50, "the corpus has {} cases", corpus.len());
    let mut differences = Vec::new();
    for case in &corpus {
        let on_axum = exchange(servers.axum, case).await;
        let on_rgi = exchange(servers.rgi, case).await;
        let (on_axum, on_rgi) = match (on_axum, on_rgi) {
            (Ok(a), Ok(r)) => (a, r),
            (a, r) => {
                differences.push(format!(
                    "{}: exchange failed: axum::serve: {:?}, rgi-server: {:?}",
                    case.name,
                    a.as_ref()
                        .map(|v| v.iter().map(RawResponse::summary).collect::<Vec<_>>()),
                    r.as_ref()
                        .map(|v| v.iter().map(RawResponse::summary).collect::<Vec<_>>()),
                ));
                continue;
            }
        };
        let statuses: Vec<u16> = on_axum.iter().map(|r| r.status).collect();
        if statuses != case.expect {
            differences.push(format!(
                "{}: axum::serve answered {statuses:?}, the case expects {:?}",
                case.name, case.expect
            ));
        }
        for (index, (a, r)) in on_axum.iter().zip(&on_rgi).enumerate() {
            let (a, r) = (normalize(a), normalize(r));
            if a != r && !allowed(&case.name) {
                differences.push(format!(
                    "{} (response {index}):\n  axum::serve: {a:?}\n  rgi-server:  {r:?}",
                    case.name
                ));
            }
        }
    }
    servers.stop().await;
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}",
        differences.len(),
        corpus.len(),
        differences.join("\n")
    );
}

/// HTTP-BODY-14, CORE-ERR-4, SRV-LIMIT-13: a malformed chunked request body is answered `400`
/// on both servers. One cited difference: axum::serve lets the handler find the error
/// (axum's text), while rgi-server, whose framing guard saw the bad chunk before calling the
/// application, answers itself and closes the connection (SRV-LIMIT-13 allows it).
#[tokio::test]
async fn malformed_chunked_body_is_answered_400_on_both() {
    let servers = start().await;
    let bad = vec![
        case(
            "echo bad chunk size",
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for case in &bad {
        let on_axum = exchange(servers.axum, case)
            .await
            .expect("axum::serve answers");
        let on_rgi = exchange(servers.rgi, case)
            .await
            .expect("rgi-server answers");
        assert_eq!(on_axum[0].status, 400);
        assert_eq!(on_rgi[0].status, 400, "{:?}", normalize(&on_rgi[0]));
        assert_eq!(
            normalize(&on_axum[0]).version,
            normalize(&on_rgi[0]).version
        );
        let rgi = normalize(&on_rgi[0]);
        assert!(
            rgi.headers
                .iter()
                .any(|(name, value)| name == "connection" && value == "close"),
            "rgi-server keeps the connection after a malformed body: {rgi:?}"
        );
    }
    servers.stop().await;
}

fn allowed(name: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(prefix, _, _)| name.starts_with(prefix))
}

// ---------------------------------------------------------------------------------------------
// WebSockets
// ---------------------------------------------------------------------------------------------

/// A WebSocket session's observable behaviour: the handshake response (normalised) and every
/// message received, in order.
#[derive(Debug, PartialEq, Eq)]
struct Session {
    status: u16,
    headers: Vec<(String, String)>,
    received: Vec<String>,
}

/// Runs one scripted session against `addr`: sends each message of `script` and records the
/// answer to each (a close is answered by the server's close frame, then the end).
async fn ws_session(addr: SocketAddr, script: &[Message]) -> Result<Session, String> {
    let stream = tokio::time::timeout(IO_BOUND, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let request = tokio_tungstenite::tungstenite::handshake::client::Request::builder()
        .uri(format!("ws://{addr}/ws"))
        .header("Host", "localhost")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        // A fixed key, so that both accept values are the same.
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    let (mut ws, response) =
        tokio::time::timeout(IO_BOUND, tokio_tungstenite::client_async(request, stream))
            .await
            .map_err(|_| "handshake timed out".to_owned())?
            .map_err(|e| format!("handshake: {e}"))?;
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != header::DATE)
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    let mut received = Vec::new();
    for message in script {
        ws.send(message.clone())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let answer = tokio::time::timeout(IO_BOUND, ws.next())
            .await
            .map_err(|_| "no answer in time".to_owned())?;
        received.push(match answer {
            None => "<end>".to_owned(),
            Some(Err(error)) => format!("<error: {error}>"),
            Some(Ok(Message::Text(text))) => format!("text {:?}", text.as_str()),
            Some(Ok(Message::Binary(data))) => format!(
                "binary {} bytes, equal to the sent one: {}",
                data.len(),
                matches!(message, Message::Binary(sent) if *sent == data)
            ),
            Some(Ok(Message::Ping(data))) => format!("ping {data:?}"),
            Some(Ok(Message::Pong(data))) => format!("pong {data:?}"),
            Some(Ok(Message::Close(frame))) => format!("close {frame:?}"),
            Some(Ok(Message::Frame(_))) => "raw frame".to_owned(),
        });
    }
    Ok(Session {
        status: response.status().as_u16(),
        headers,
        received,
    })
}

/// EXT-NS-2, CORE-ERR-6, WS-HS-1: the router's WebSocket echo behaves identically on
/// `axum::serve` and on rgi-server through `TowerApp` (the `101` head, text, binary up to
/// 1 MiB, ping/pong, and the close handshake), and the echo is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_are_identical() {
    let servers = start().await;
    let scripts: Vec<Vec<Message>> = vec![
        vec![Message::text("hello")],
        vec![
            Message::text("a"),
            Message::text("\u{e9}t\u{e9}"),
            Message::text(""),
        ],
        vec![Message::binary(payload(1 << 20, 9))],
        vec![Message::Ping(Bytes::from_static(b"are you there"))],
        vec![
            Message::text("last words"),
            Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            })),
        ],
    ];
    for script in &scripts {
        let on_axum = ws_session(servers.axum, script).await;
        let on_rgi = ws_session(servers.rgi, script).await;
        let on_axum = on_axum.expect("the session with axum::serve works");
        assert_eq!(on_axum.status, 101);
        for (sent, got) in script.iter().zip(&on_axum.received) {
            match sent {
                Message::Text(text) => assert_eq!(*got, format!("text {:?}", text.as_str())),
                Message::Binary(data) => assert_eq!(
                    *got,
                    format!("binary {} bytes, equal to the sent one: true", data.len())
                ),
                Message::Ping(data) => assert_eq!(*got, format!("pong {data:?}")),
                _ => assert!(got.starts_with("close"), "got {got}"),
            }
        }
        assert_eq!(
            on_rgi.as_ref().ok(),
            Some(&on_axum),
            "script {script:?}: rgi-server {on_rgi:?}"
        );
    }
    servers.stop().await;
}

/// HTTP-RESP-1: sanity check of the helpers: a response is read whole, with its headers.
#[tokio::test]
async fn exchange_reads_whole_responses() {
    let servers = start().await;
    let probe = case("get root", req("GET", "/", &[], None), 200);
    let responses = exchange(servers.rgi, &probe).await.expect("a response");
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"Hello, World!");
    assert_eq!(
        responses[0].header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    servers.stop().await;
}
