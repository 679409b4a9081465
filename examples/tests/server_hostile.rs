//! A corpus of malformed and hostile HTTP/1.x requests, each sent to the `hello` binary on a
//! fresh TCP connection (issue 3, "Done when": at least 40 cases that get a 4xx or a close and
//! never a 2xx, with the connection not reused afterwards).
//!
//! Method, for every case:
//!
//! 1. connect, send the case's bytes (all at once, or trickled byte by byte);
//! 2. wait (bounded) until the server answered or closed, then send a *probe*,
//!    `GET /stream?bytes=5` with `Connection: close`, on the same connection; if the server
//!    kept reading requests after the hostile part, the probe gets a `200` — which the checks
//!    below reject — and the connection then closes anyway;
//! 3. read until the server closes the connection (bounded; a connection still open at the
//!    bound is a failure: SRV-LIMIT-1 and SRV-LIMIT-4 require the close);
//! 4. check the case's expectation and, for every case, that no `2xx` response carries the
//!    31-byte body of `GET /stream?bytes=31`, the request that the smuggling cases hide.
//!
//! A reset (RST) counts as a close: when a server closes a socket with unread input, the
//! kernel resets the connection and the client may lose the response that preceded it.
//!
//! The outcome table is printed (`cargo test -- --nocapture` shows it).

mod support;

use std::time::Duration;

use support::{
    ServerOptions, Termination, TestServer, Transcript, parse_transcript, read_to_close,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The body length of the request hidden in the smuggling cases (`/stream?bytes=31`).
const SMUGGLED_LEN: usize = 31;
/// Sent after each case on the same connection.
const PROBE: &[u8] = b"GET /stream?bytes=5 HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
/// Bound for the first answer (then the probe is sent anyway).
const FIRST_ANSWER_BOUND: Duration = Duration::from_secs(3);
/// Bound for the server to close the connection after the probe.
const CLOSE_BOUND: Duration = Duration::from_secs(12);
/// Bound for the trickled cases, which must be closed by the header read timeout (1 s).
const TRICKLE_CLOSE_BOUND: Duration = Duration::from_secs(20);
/// Interval between trickled bytes; 120 bytes take 30 s, more than the bound above.
const TRICKLE_INTERVAL: Duration = Duration::from_millis(250);

/// What a case's transcript must show.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A malformed head: no `2xx` at all (a 4xx, `505`, or no response), then a close.
    Reject,
    /// The first `n` requests are valid and may get `2xx`; nothing after them may.
    ValidPrefix(usize),
    /// Broken chunked framing sent to `/echo`, which streams the body back: the head may have
    /// been answered `200` before the framing error was read, but no `2xx` may *complete*
    /// (the response is aborted: HTTP-BODY-14, CORE-ERR-3), then a close.
    Aborted,
    /// A legal body whose bytes look like a request: the body is not parsed as a request
    /// (HTTP-BODY-10, HTTP-BODY-11); the probe may be served (the connection may be reused).
    BodyNotParsed,
    /// `HTTP/1.2`: processed as HTTP/1.1 (SRV-LIMIT-19, RFC 9110 §2.5): the request and the
    /// probe after it are both answered `200` in HTTP/1.1 (the connection persisted).
    HigherMinorVersion,
    /// Answered with exactly this status (and nothing else), then a close.
    Status(u16),
    /// No response at all, then a close: the client does not speak HTTP/1 (SRV-LIMIT-17).
    Silent,
}

/// How the bytes are sent.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// All at once, then the probe.
    Whole,
    /// One byte every [`TRICKLE_INTERVAL`], on the server with a 1 s header read timeout.
    Trickle,
}

struct Case {
    name: &'static str,
    /// Requirement ID or RFC section the case checks.
    reference: &'static str,
    bytes: Vec<u8>,
    delivery: Delivery,
    expect: Expect,
}

fn case(
    name: &'static str,
    reference: &'static str,
    expect: Expect,
    bytes: impl AsRef<[u8]>,
) -> Case {
    Case {
        name,
        reference,
        bytes: bytes.as_ref().to_vec(),
        delivery: Delivery::Whole,
        expect,
    }
}

fn reject(name: &'static str, reference: &'static str, bytes: impl AsRef<[u8]>) -> Case {
    case(name, reference, Expect::Reject, bytes)
}

/// `POST /echo` with a chunked body made of `body`.
fn echo_chunked(body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
        .into_bytes()
}

/// `POST /echo` with extra header lines (each ending in CRLF) and `body`.
fn echo_with(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: a\r\n{headers}\r\n{body}").into_bytes()
}

/// `GET /` with one extra header line (without CRLF).
fn get_with(line: &[u8]) -> Vec<u8> {
    let mut out = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n\r\n");
    out
}

const SMUGGLED: &str = "GET /stream?bytes=31 HTTP/1.1\r\nHost: a\r\n\r\n";

/// The corpus. Limits of the main server: `--max-header-bytes 8192 --max-headers 20
/// --max-uri-length 1024`.
fn corpus() -> Vec<Case> {
    use Expect::*;
    let big_value = "v".repeat(10 * 1024);
    let many_headers: String = (0..40).map(|i| format!("X-Many-{i}: {i}\r\n")).collect();
    let long_target = format!("/{}", "a".repeat(2000));
    let huge_target = format!("/{}", "b".repeat(20 * 1024));
    let huge_extension = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(100 * 1024));
    let tls_client_hello: &[u8] =
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\r\n\r\n";
    let smuggle_in_body = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    );

    vec![
        // ---- request line (SRV-LIMIT-1: invalid request line -> 400 and close) ----
        reject(
            "request line without version",
            "SRV-LIMIT-1",
            "GET /\r\nHost: a\r\n\r\n",
        ),
        case(
            "HTTP/0.9 simple request",
            "SRV-LIMIT-3, SRV-LIMIT-17",
            Silent,
            "GET /\r\n\r\n",
        ),
        reject(
            "NUL in method",
            "SRV-LIMIT-1",
            b"G\x00ET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "separator in method",
            "SRV-LIMIT-1",
            "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "leading space, empty method",
            "SRV-LIMIT-1",
            " / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "space inside target",
            "SRV-LIMIT-1",
            "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "two spaces after method",
            "SRV-LIMIT-1",
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "space after version",
            "SRV-LIMIT-1",
            "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        ),
        reject(
            "tabs as separators",
            "SRV-LIMIT-1",
            "GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "NUL in target",
            "SRV-LIMIT-1",
            b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "control byte in target",
            "SRV-LIMIT-1",
            b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "bare CR ends request line",
            "SRV-LIMIT-1",
            "GET / HTTP/1.1\rHost: a\r\n\r\n",
        ),
        reject(
            "TLS ClientHello on plain port",
            "SRV-LIMIT-1",
            tls_client_hello,
        ),
        reject(
            "absolute-form, unclosed IPv6 literal",
            "SRV-LIMIT-1",
            "GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "absolute-form, empty host",
            "SRV-LIMIT-1, RFC 9110 4.2.1",
            "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "asterisk-form with GET",
            "SRV-LIMIT-1",
            "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "authority-form with GET",
            "SRV-LIMIT-1",
            "GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        // ---- versions (SRV-LIMIT-3: unimplemented versions -> 505/400/close) ----
        reject(
            "HTTP/0.9 version token",
            "SRV-LIMIT-3",
            "GET / HTTP/0.9\r\nHost: a\r\n\r\n",
        ),
        reject(
            "HTTP/2.0 on HTTP/1 framing",
            "SRV-LIMIT-3",
            "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        ),
        reject(
            "HTTP/3.0",
            "SRV-LIMIT-3",
            "GET / HTTP/3.0\r\nHost: a\r\n\r\n",
        ),
        reject(
            "version with suffix HTTP/1.1x",
            "SRV-LIMIT-1",
            "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
        ),
        reject(
            "lower-case http/1.1",
            "SRV-LIMIT-1, RFC 9112 2.3",
            "GET / http/1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "version without minor",
            "SRV-LIMIT-1",
            "GET / HTTP/1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "space inside version",
            "SRV-LIMIT-1",
            "GET / HTTP/ 1.1\r\nHost: a\r\n\r\n",
        ),
        reject(
            "misspelt protocol HTTTP",
            "SRV-LIMIT-1",
            "GET / HTTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        case(
            "HTTP/1.2 (higher minor)",
            "SRV-LIMIT-19, RFC 9110 2.5",
            HigherMinorVersion,
            "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        ),
        // ---- message framing (SRV-LIMIT-13, SRV-LIMIT-14) ----
        reject(
            "CL + TE, smuggled request after last chunk",
            "SRV-LIMIT-14, RFC 9112 6.3",
            echo_with(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        reject(
            "TE + CL, smuggled request in CL body",
            "SRV-LIMIT-14, RFC 9112 6.3",
            echo_with(
                &format!(
                    "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
                    5 + SMUGGLED.len()
                ),
                &format!("0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        reject(
            "two differing Content-Length",
            "SRV-LIMIT-13",
            echo_with("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
        ),
        reject(
            "Content-Length list 5, 6",
            "SRV-LIMIT-13",
            echo_with("Content-Length: 5, 6\r\n", "hello!"),
        ),
        reject(
            "Content-Length +5",
            "SRV-LIMIT-13",
            echo_with("Content-Length: +5\r\n", "hello"),
        ),
        reject(
            "Content-Length -5",
            "SRV-LIMIT-13",
            echo_with("Content-Length: -5\r\n", "hello"),
        ),
        reject(
            "Content-Length 0x5",
            "SRV-LIMIT-13",
            echo_with("Content-Length: 0x5\r\n", "hello"),
        ),
        reject(
            "Content-Length 1 0",
            "SRV-LIMIT-13",
            echo_with("Content-Length: 1 0\r\n", "helloworld"),
        ),
        reject(
            "Content-Length overflows u64",
            "SRV-LIMIT-13",
            echo_with("Content-Length: 99999999999999999999999\r\n", "hello"),
        ),
        reject(
            "empty Content-Length",
            "SRV-LIMIT-13",
            echo_with("Content-Length: \r\n", "hello"),
        ),
        reject(
            "Content-Length 5abc",
            "SRV-LIMIT-13",
            echo_with("Content-Length: 5abc\r\n", "hello"),
        ),
        reject(
            "TE chunked, identity",
            "SRV-LIMIT-13",
            echo_with(
                "Transfer-Encoding: chunked, identity\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
        ),
        reject(
            "TE gzip only",
            "SRV-LIMIT-13",
            echo_with("Transfer-Encoding: gzip\r\n", "hello"),
        ),
        reject(
            "TE identity",
            "SRV-LIMIT-13",
            echo_with("Transfer-Encoding: identity\r\n", "hello"),
        ),
        reject(
            "TE on HTTP/1.0",
            "SRV-LIMIT-13, RFC 9112 6.1",
            "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        reject(
            "TE with space before colon",
            "SRV-LIMIT-1",
            echo_with("Transfer-Encoding : chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
        ),
        // ---- chunked body framing (HTTP-BODY-14, CORE-ERR-3/7) ----
        case(
            "chunk size overflows u64",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked("fffffffffffffffffff1\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "negative chunk size",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked("-5\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "chunk size not hex",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked("zz\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "chunk size 0x5",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked("0x5\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "empty chunk size",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked("\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "chunk data longer than size",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked("3\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "chunk extension without a name",
            "SRV-LIMIT-15, RFC 9112 7.1.1",
            Aborted,
            echo_chunked("5;\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "chunk extension name not a token",
            "SRV-LIMIT-15, RFC 9112 7.1.1",
            Aborted,
            echo_chunked("5;bad[=x\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "unterminated quoted chunk extension",
            "SRV-LIMIT-15, RFC 9112 7.1.1",
            Aborted,
            echo_chunked("5;a=\"b\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "whitespace after chunk size, no extension",
            "SRV-LIMIT-15, RFC 9112 7.1.1",
            Aborted,
            echo_chunked("5 \r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "100 KiB chunk extension",
            "HTTP-BODY-14",
            Aborted,
            echo_chunked(&huge_extension),
        ),
        case(
            "GET, chunk size overflow hides request",
            "HTTP-BODY-11",
            ValidPrefix(1),
            format!(
                "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1f\r\n\r\n{SMUGGLED}"
            ),
        ),
        // ---- header fields (SRV-LIMIT-1) ----
        reject(
            "obs-fold continuation line",
            "SRV-LIMIT-1, RFC 9112 5.2",
            "GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n",
        ),
        reject(
            "whitespace before first field",
            "SRV-LIMIT-1, RFC 9112 2.2",
            "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        ),
        reject(
            "NUL in field value",
            "SRV-LIMIT-1",
            get_with(b"X-Nul: a\x00b"),
        ),
        reject(
            "bare CR in field value",
            "SRV-LIMIT-1",
            get_with(b"X-Cr: a\rb"),
        ),
        reject(
            "LF in field value",
            "SRV-LIMIT-1",
            get_with(b"X-Lf: a\nb c"),
        ),
        reject(
            "space before colon",
            "SRV-LIMIT-1, RFC 9112 5.1",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        ),
        reject(
            "space inside field name",
            "SRV-LIMIT-1",
            get_with(b"X Space: v"),
        ),
        reject(
            "field line without colon",
            "SRV-LIMIT-1",
            get_with(b"X-No-Colon v"),
        ),
        reject("empty field name", "SRV-LIMIT-1", get_with(b": v")),
        reject(
            "control byte in field name",
            "SRV-LIMIT-1",
            get_with(b"X-C\x01trl: v"),
        ),
        // ---- Host (SRV-LIMIT-1, RFC 9112 3.2) ----
        reject(
            "HTTP/1.1 without Host",
            "SRV-LIMIT-1, RFC 9112 3.2",
            "GET / HTTP/1.1\r\n\r\n",
        ),
        reject(
            "two Host fields",
            "SRV-LIMIT-1, RFC 9112 3.2",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        case(
            "empty Host with an origin-form target",
            "SRV-LIMIT-1, RFC 9110 4.2.1",
            Status(400),
            "GET / HTTP/1.1\r\nHost: \r\n\r\n",
        ),
        case(
            "raw UTF-8 in the target",
            "SRV-LIMIT-1, RFC 9112 3.2",
            Status(400),
            "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        case(
            "first line without an HTTP version (broken HTTP/2 preface)",
            "SRV-LIMIT-17, RFC 9113 3.4",
            Silent,
            "INVALID CONNECTION PREFACE\r\n\r\n",
        ),
        reject(
            "Host value with a space",
            "RFC 9112 3.2",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        ),
        // ---- sizes (SRV-LIMIT-5: 431, 414) ----
        reject(
            "10 KiB field > --max-header-bytes",
            "SRV-LIMIT-5",
            format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big_value}\r\n\r\n"),
        ),
        reject(
            "40 fields > --max-headers",
            "SRV-LIMIT-5",
            format!("GET / HTTP/1.1\r\nHost: a\r\n{many_headers}\r\n"),
        ),
        reject(
            "2 KiB target > --max-uri-length",
            "SRV-LIMIT-5",
            format!("GET {long_target} HTTP/1.1\r\nHost: a\r\n\r\n"),
        ),
        case(
            "20 KiB target > both limits",
            "SRV-LIMIT-5, RFC 9112 3",
            Status(414),
            format!("GET {huge_target} HTTP/1.1\r\nHost: a\r\n\r\n"),
        ),
        case(
            "10 KiB method > --max-header-bytes",
            "SRV-LIMIT-5",
            Status(400),
            format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(10 * 1024)),
        ),
        // ---- pipelining and smuggling (SRV-LIMIT-4, HTTP-BODY-10) ----
        case(
            "garbage pipelined after valid request",
            "SRV-LIMIT-1, SRV-LIMIT-4",
            ValidPrefix(1),
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x16\x03garbage garbage\r\n\r\n",
        ),
        case(
            "invalid request pipelined after valid",
            "SRV-LIMIT-1, SRV-LIMIT-4",
            ValidPrefix(1),
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ),
        case(
            "request hidden in a GET body",
            "HTTP-BODY-10, HTTP-BODY-11",
            BodyNotParsed,
            smuggle_in_body,
        ),
        // ---- slow clients (SRV-LIMIT-7; server with --header-read-timeout 1) ----
        Case {
            name: "trickled header field (slowloris)",
            reference: "SRV-LIMIT-7",
            bytes: format!("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: {}", "s".repeat(120)).into_bytes(),
            delivery: Delivery::Trickle,
            expect: Reject,
        },
        Case {
            name: "trickled request line",
            reference: "SRV-LIMIT-7",
            bytes: format!("GET /{}", "r".repeat(120)).into_bytes(),
            delivery: Delivery::Trickle,
            expect: Reject,
        },
        Case {
            name: "connection that sends nothing",
            reference: "SRV-LIMIT-7",
            bytes: Vec::new(),
            delivery: Delivery::Trickle,
            expect: Reject,
        },
    ]
}

struct Outcome {
    transcript: Transcript,
    verdict: Result<(), String>,
}

async fn run_case(case: &Case, addr: std::net::SocketAddr) -> Transcript {
    let mut stream = support::connect(addr).await;
    let mut buf = Vec::new();
    match case.delivery {
        Delivery::Whole => {
            let _ = stream.write_all(&case.bytes).await;
            let first = first_answer(&mut stream, &mut buf).await;
            if first.closed() {
                return parse_transcript(&buf, first);
            }
            let _ = stream.write_all(PROBE).await;
            let termination = read_to_close(&mut stream, &mut buf, CLOSE_BOUND).await;
            parse_transcript(&buf, termination)
        }
        Delivery::Trickle => {
            let (mut reader, mut writer) = stream.into_split();
            let bytes = case.bytes.clone();
            let trickler = tokio::spawn(async move {
                for byte in bytes {
                    if writer.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(TRICKLE_INTERVAL).await;
                }
                // Keep the connection open without completing the head.
                tokio::time::sleep(TRICKLE_CLOSE_BOUND).await;
            });
            let termination = read_to_close(&mut reader, &mut buf, TRICKLE_CLOSE_BOUND).await;
            trickler.abort();
            parse_transcript(&buf, termination)
        }
    }
}

/// Reads until a complete final response arrived, the connection closed, or the bound.
async fn first_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Termination {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + FIRST_ANSWER_BOUND;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let transcript = parse_transcript(buf, Termination::StillOpen);
        if transcript.junk.is_none() && transcript.responses.iter().any(|r| r.status >= 200) {
            return Termination::StillOpen;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Termination::StillOpen,
            Ok(Ok(0)) => return Termination::Eof,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => return Termination::Reset,
        }
    }
}

fn check(expect: Expect, transcript: &Transcript) -> Result<(), String> {
    let finals: Vec<_> = transcript
        .responses
        .iter()
        .filter(|r| r.status >= 200)
        .collect();
    if !transcript.termination.closed() {
        return Err(
            "connection still open: the server neither closed it nor stopped reusing it".into(),
        );
    }
    if let Some(smuggled) = finals
        .iter()
        .find(|r| (200..300).contains(&r.status) && r.body.len() == SMUGGLED_LEN)
    {
        return Err(format!(
            "the smuggled request was served: {}",
            smuggled.summary()
        ));
    }
    let any_2xx = |rs: &[&support::RawResponse]| rs.iter().any(|r| (200..300).contains(&r.status));
    // A rejection is a 4xx, or 505 for an unsupported version (SRV-LIMIT-3).
    let not_rejection = |rs: &[&support::RawResponse]| {
        rs.iter()
            .find(|r| !(400..500).contains(&r.status) && r.status != 505)
            .map(|r| r.summary())
    };
    match expect {
        Expect::Reject => {
            if any_2xx(&finals) {
                return Err("a 2xx answered a malformed request (or the probe after it)".into());
            }
            if let Some(other) = not_rejection(&finals) {
                return Err(format!("answered {other} instead of a 4xx"));
            }
        }
        Expect::ValidPrefix(n) => {
            let rest = finals.get(n..).unwrap_or_default();
            if any_2xx(rest) {
                return Err(format!(
                    "a 2xx after the {n} valid request(s): the connection was reused"
                ));
            }
            if let Some(other) = not_rejection(rest) {
                return Err(format!("answered {other} instead of a 4xx"));
            }
        }
        Expect::Aborted => {
            if finals.iter().any(|r| r.is_success()) {
                return Err("a 2xx completed although the request body framing was broken".into());
            }
            let rejections: Vec<_> = finals
                .iter()
                .copied()
                .filter(|r| !(200..300).contains(&r.status))
                .collect();
            if let Some(other) = not_rejection(&rejections) {
                return Err(format!(
                    "answered {other} instead of a 4xx or an aborted 2xx"
                ));
            }
        }
        Expect::BodyNotParsed => {
            if finals.first().is_none_or(|r| !r.is_success()) {
                return Err("the valid GET with a body was not answered 2xx".into());
            }
        }
        Expect::Status(status) => {
            let statuses: Vec<u16> = finals.iter().map(|r| r.status).collect();
            if statuses != [status] {
                return Err(format!("answered {statuses:?} instead of [{status}]"));
            }
        }
        Expect::Silent => {
            if !transcript.responses.is_empty() || transcript.junk.is_some() {
                return Err("answered, instead of closing without a response".into());
            }
        }
        Expect::HigherMinorVersion => {
            let answers: Vec<(u16, &str)> = finals
                .iter()
                .map(|r| (r.status, r.version.as_str()))
                .collect();
            if answers != [(200, "HTTP/1.1"), (200, "HTTP/1.1")] {
                return Err(format!(
                    "answered {answers:?}, not the request and the probe with 200 in HTTP/1.1"
                ));
            }
        }
    }
    Ok(())
}

fn describe(transcript: &Transcript) -> String {
    let mut parts: Vec<String> = transcript.responses.iter().map(|r| r.summary()).collect();
    if parts.is_empty() {
        parts.push("no response".to_owned());
    }
    if let Some(junk) = &transcript.junk {
        parts.push(format!("junk: {junk}"));
    }
    let end = match transcript.termination {
        Termination::Eof => "closed",
        Termination::Reset => "reset",
        Termination::StillOpen => "STILL OPEN",
    };
    format!("{} -> {end}", parts.join(", "))
}

/// SRV-LIMIT-1, SRV-LIMIT-13, SRV-LIMIT-14, SRV-LIMIT-3, SRV-LIMIT-4, SRV-LIMIT-5, SRV-LIMIT-7, SRV-LIMIT-11,
/// HTTP-BODY-10, HTTP-BODY-11, HTTP-BODY-14: every malformed or hostile request gets a 4xx
/// (or `505`, or a close) and never a 2xx, the connection is closed and not reused, and the
/// server keeps serving without panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_or_close_and_never_2xx() {
    let main = TestServer::hello(&[
        "--max-header-bytes",
        "8192",
        "--max-headers",
        "20",
        "--max-uri-length",
        "1024",
    ]);
    let slow = ServerOptions::hello()
        .args(["--header-read-timeout", "1"])
        .start();

    let cases = corpus();
    assert!(
        cases.len() >= 40,
        "the corpus must hold at least 40 cases, has {}",
        cases.len()
    );
    let strict = cases
        .iter()
        .filter(|c| !matches!(c.expect, Expect::HigherMinorVersion))
        .count();
    assert!(
        strict >= 40,
        "at least 40 cases must forbid every 2xx, {strict} do"
    );

    let mut tasks = tokio::task::JoinSet::new();
    for (index, case) in cases.iter().enumerate() {
        let addr = match case.delivery {
            Delivery::Whole => main.addr(),
            Delivery::Trickle => slow.addr(),
        };
        let bytes = case.bytes.clone();
        let (name, reference, delivery, expect) =
            (case.name, case.reference, case.delivery, case.expect);
        tasks.spawn(async move {
            let case = Case {
                name,
                reference,
                bytes,
                delivery,
                expect,
            };
            let transcript = run_case(&case, addr).await;
            let verdict = check(case.expect, &transcript);
            (
                index,
                Outcome {
                    transcript,
                    verdict,
                },
            )
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..cases.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome) = joined.expect("case task");
        outcomes[index] = Some(outcome);
    }

    let mut table =
        String::from("\n| # | case | ref | outcome | verdict |\n|---|---|---|---|---|\n");
    let mut failures = Vec::new();
    for (index, (case, outcome)) in cases.iter().zip(&outcomes).enumerate() {
        let outcome = outcome.as_ref().expect("every case ran");
        let verdict = match &outcome.verdict {
            Ok(()) => "ok".to_owned(),
            Err(why) => {
                failures.push(format!(
                    "{} ({}): {why}; {}",
                    case.name,
                    case.reference,
                    describe(&outcome.transcript)
                ));
                format!("FAIL: {why}")
            }
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            index + 1,
            case.name,
            case.reference,
            describe(&outcome.transcript),
            verdict
        ));
    }
    println!("{table}");

    // SRV-LIMIT-11: both servers still serve after the corpus.
    for server in [&main, &slow] {
        let mut conn = support::HttpConn::connect(server.addr()).await;
        conn.send(&support::get("/")).await.expect("send");
        let response = conn.read_response(support::IO_BOUND).await;
        assert!(
            matches!(&response, Ok(r) if r.status == 200 && r.body == b"Hello, World!"),
            "the server stopped serving after the corpus: {response:?}\n{}",
            server.logs()
        );
        server.assert_no_panic();
    }

    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}\n{table}\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        main.logs()
    );
}

/// HTTP-REQ-1: a lower-case method is a valid, unknown method (methods are case-sensitive,
/// RFC 9110 §9.1): it reaches the app, which answers `404` — never the `200` of `GET /`.
#[tokio::test]
async fn lower_case_method_is_not_get() {
    let server = TestServer::hello(&[]);
    let mut conn = support::HttpConn::connect(server.addr()).await;
    conn.send(b"get / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("send");
    let response = conn
        .read_response(support::IO_BOUND)
        .await
        .expect("a response");
    assert!(
        (400..500).contains(&response.status),
        "`get /` must not be served as `GET /`: {}",
        response.summary()
    );
}
