//! The `hello` binary driven by a real client, `curl`: HTTP/1.0, HTTP/1.1, HTTP/2 with prior
//! knowledge (h2c), and HTTPS with ALPN `h2` (issue 3, items 1, 2, 9 and 10).

mod support;

use std::path::{Path, PathBuf};

use support::{ScratchDir, ServerOptions, TestServer, curl, payload, self_signed};

/// What one `curl` exchange produced.
struct Exchange {
    /// `%{http_code}`.
    status: u16,
    /// `%{http_version}`: `1.0`, `1.1`, `2`.
    version: String,
    /// The header dump (`-D`): the head and, after the body, any trailers.
    headers: String,
    body: Vec<u8>,
}

impl Exchange {
    /// Whether the header dump has a line `name: value` (name case-insensitive).
    fn has_field(&self, name: &str, value: &str) -> bool {
        self.headers.lines().any(|line| {
            line.split_once(':')
                .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case(name) && v.trim() == value)
        })
    }

    fn has_field_name(&self, name: &str) -> bool {
        self.headers.lines().any(|line| {
            line.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
    }
}

/// Runs curl with `args` plus the output options, in `dir`.
fn exchange(dir: &Path, args: &[&str]) -> Exchange {
    let headers = dir.join("headers.txt");
    let body = dir.join("body.bin");
    let mut all: Vec<String> = vec![
        "-D".into(),
        headers.display().to_string(),
        "-o".into(),
        body.display().to_string(),
        "-w".into(),
        "%{http_code} %{http_version}".into(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let out = curl(&all);
    assert!(out.status.success(), "curl {all:?} failed: {}", out.stderr);
    let written = out.stdout_text();
    let (status, version) = written.split_once(' ').unwrap_or((written.as_str(), ""));
    Exchange {
        status: status.trim().parse().unwrap_or(0),
        version: version.trim().to_owned(),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn write_payload(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let data = payload(len, len as u8);
    let path = dir.join(name);
    std::fs::write(&path, &data).expect("write payload");
    (path, data)
}

/// The body of `/trailers`: its three chunks, and its `x-checksum` trailer.
const TRAILERS_BODY: &str = "first chunk\nsecond chunk\nthird chunk\n";

fn trailers_checksum() -> String {
    rgi_examples::hello::checksum(TRAILERS_BODY.as_bytes()).to_string()
}

/// HTTP-FRAME-1, HTTP-REQ-2: `GET /` over HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on the
/// same port answers `200 text/plain Hello, World!` in the client's protocol version.
#[test]
fn get_root_over_http1_1_and_h2c() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-get");
    let url = server.url("/");
    for (flag, version) in [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")] {
        let got = exchange(dir.path(), &[flag, &url]);
        assert_eq!(
            (got.status, got.version.as_str()),
            (200, version),
            "{flag}: {}",
            got.headers
        );
        assert_eq!(got.body, b"Hello, World!", "{flag}");
        assert!(
            got.has_field("content-type", "text/plain; charset=utf-8"),
            "{flag}: {}",
            got.headers
        );
    }
}

/// HTTP-FRAME-1, HTTP-FRAME-2, HTTP-TRAIL-5: HTTP/1.0 clients get `Hello, World!`, a 300 kB
/// `/stream` and the `/trailers` body without chunked transfer coding (delimited by
/// `content-length` or by the close), and an echo of a 1 MiB upload.
#[test]
fn http1_0_bodies_are_never_chunked() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-http10");

    let got = exchange(dir.path(), &["--http1.0", &server.url("/")]);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"Hello, World!");

    let got = exchange(
        dir.path(),
        &["--http1.0", &server.url("/stream?bytes=300000")],
    );
    assert_eq!(got.status, 200);
    assert!(
        !got.has_field_name("transfer-encoding"),
        "chunked on HTTP/1.0: {}",
        got.headers
    );
    assert_eq!(got.body.len(), 300_000);
    assert!(got.body.iter().all(|b| *b == b'x'));

    let got = exchange(dir.path(), &["--http1.0", &server.url("/trailers")]);
    assert_eq!(got.status, 200);
    assert!(
        !got.has_field_name("transfer-encoding"),
        "chunked on HTTP/1.0: {}",
        got.headers
    );
    assert_eq!(
        got.body,
        TRAILERS_BODY.as_bytes(),
        "HTTP-TRAIL-5: trailers dropped, body intact"
    );

    let (file, data) = write_payload(dir.path(), "upload.bin", 1 << 20);
    let upload = format!("@{}", file.display());
    let got = exchange(
        dir.path(),
        &[
            "--http1.0",
            "-H",
            "Content-Type: application/x-test",
            "--data-binary",
            &upload,
            &server.url("/echo"),
        ],
    );
    assert_eq!(got.status, 200);
    assert!(
        got.body == data,
        "echo over HTTP/1.0 differs ({} of {} bytes)",
        got.body.len(),
        data.len()
    );
    assert!(
        got.has_field("content-type", "application/x-test"),
        "{}",
        got.headers
    );
}

/// HTTP-BODY-3, HTTP-BODY-5, HTTP-FRAME-1: `POST /echo` streams an 8 MiB body back unchanged —
/// uploaded with `content-length` and with chunked coding over HTTP/1.1, and over h2c — with
/// the `content-type` echoed.
#[test]
fn echo_large_bodies_over_http1_1_and_h2c() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-echo");
    let (file, data) = write_payload(dir.path(), "upload.bin", 8 << 20);
    let upload = format!("@{}", file.display());
    let url = server.url("/echo");
    let variants: [(&str, &[&str], &str); 3] = [
        ("HTTP/1.1 content-length", &["--http1.1"], "1.1"),
        (
            "HTTP/1.1 chunked",
            &["--http1.1", "-H", "Transfer-Encoding: chunked"],
            "1.1",
        ),
        ("h2c", &["--http2-prior-knowledge"], "2"),
    ];
    for (name, flags, version) in variants {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend([
            "-H",
            "Content-Type: application/x-test",
            "--data-binary",
            &upload,
            &url,
        ]);
        let got = exchange(dir.path(), &args);
        assert_eq!(
            (got.status, got.version.as_str()),
            (200, version),
            "{name}: {}",
            got.headers
        );
        assert!(
            got.body == data,
            "{name}: echo differs ({} of {} bytes)\n{}",
            got.body.len(),
            data.len(),
            server.logs()
        );
        assert!(
            got.has_field("content-type", "application/x-test"),
            "{name}: {}",
            got.headers
        );
    }
}

/// HTTP-FRAME-1, HTTP-FRAME-12: `/stream?bytes=N` delivers exactly N bytes over HTTP/1.1 and
/// h2c (5 MiB, and 0 bytes).
#[test]
fn stream_over_http1_1_and_h2c() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-stream");
    for flag in ["--http1.1", "--http2-prior-knowledge"] {
        for n in [5usize << 20, 0] {
            let got = exchange(
                dir.path(),
                &[flag, &server.url(&format!("/stream?bytes={n}"))],
            );
            assert_eq!(got.status, 200, "{flag} {n}");
            assert_eq!(got.body.len(), n, "{flag} {n}");
            assert!(got.body.iter().all(|b| *b == b'x'), "{flag} {n}");
        }
    }
}

/// HTTP-TRAIL-4: on HTTP/2 (h2c) the response trailers of `/trailers` reach the client after
/// the body.
#[test]
fn trailers_over_h2c() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-trailers-h2");
    let got = exchange(
        dir.path(),
        &["--http2-prior-knowledge", &server.url("/trailers")],
    );
    assert_eq!((got.status, got.version.as_str()), (200, "2"));
    assert_eq!(got.body, TRAILERS_BODY.as_bytes());
    assert!(
        got.has_field("x-checksum", &trailers_checksum()),
        "no trailers: {}",
        got.headers
    );
    assert!(
        got.has_field("x-chunks", "3"),
        "no trailers: {}",
        got.headers
    );
}

/// HTTP-TRAIL-4: on HTTP/1.1 the response trailers of `/trailers` follow the last chunk when
/// the request carries `TE: trailers`.
#[test]
fn trailers_over_http1_1_with_te_trailers() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-trailers-te");
    let got = exchange(
        dir.path(),
        &["--http1.1", "-H", "TE: trailers", &server.url("/trailers")],
    );
    assert_eq!((got.status, got.version.as_str()), (200, "1.1"));
    assert!(
        got.has_field("transfer-encoding", "chunked"),
        "{}",
        got.headers
    );
    assert_eq!(got.body, TRAILERS_BODY.as_bytes());
    assert!(
        got.has_field("x-checksum", &trailers_checksum()),
        "no trailers: {}",
        got.headers
    );
    assert!(
        got.has_field("x-chunks", "3"),
        "no trailers: {}",
        got.headers
    );
}

/// HTTP-TRAIL-5: on HTTP/1.1 a request without `te: trailers` cannot receive trailers; the
/// server drops them and still completes the chunked response (never an abort).
#[test]
fn trailers_over_http1_1_without_te_trailers_are_dropped_cleanly() {
    let server = TestServer::hello(&[]);
    let dir = ScratchDir::new("curl-trailers-no-te");
    let got = exchange(dir.path(), &["--http1.1", &server.url("/trailers")]);
    assert_eq!((got.status, got.version.as_str()), (200, "1.1"));
    assert!(
        got.has_field("transfer-encoding", "chunked"),
        "{}",
        got.headers
    );
    assert_eq!(got.body, TRAILERS_BODY.as_bytes());
    assert!(
        !got.has_field("x-chunks", "3"),
        "HTTP-TRAIL-4: trailers sent to a request without `te: trailers`:\n{}",
        got.headers
    );
}

/// HTTP-FRAME-1, HTTP-TRAIL-4, HTTP-BODY-5 over TLS (issue 3 items 1-2): with `--tls-cert/--tls-key` the server speaks
/// HTTPS; curl verifies the certificate (`--cacert`), gets HTTP/1.1 when it offers only
/// `http/1.1`, HTTP/2 when ALPN selects `h2`, and echoes a 1 MiB upload over h2.
#[test]
fn https_with_alpn_h2_and_http1_1() {
    let dir = ScratchDir::new("curl-tls");
    let (cert, key) = self_signed(dir.path());
    let server = ServerOptions::hello()
        .args([
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ])
        .start();
    assert!(
        server.urls().iter().any(|u| u.starts_with("https://")),
        "the listening line must name an https URL: {:?}",
        server.urls()
    );
    let base = format!("https://{}", server.addr());
    let cacert = cert.display().to_string();

    let got = exchange(
        dir.path(),
        &["--cacert", &cacert, "--http1.1", &format!("{base}/")],
    );
    assert_eq!(
        (got.status, got.version.as_str()),
        (200, "1.1"),
        "{}",
        got.headers
    );
    assert_eq!(got.body, b"Hello, World!");

    let got = exchange(
        dir.path(),
        &["--cacert", &cacert, "--http2", &format!("{base}/")],
    );
    assert_eq!(
        (got.status, got.version.as_str()),
        (200, "2"),
        "ALPN must select h2: {}",
        got.headers
    );
    assert_eq!(got.body, b"Hello, World!");

    let got = exchange(
        dir.path(),
        &["--cacert", &cacert, "--http2", &format!("{base}/trailers")],
    );
    assert_eq!((got.status, got.version.as_str()), (200, "2"));
    assert!(
        got.has_field("x-checksum", &trailers_checksum()),
        "no trailers over h2: {}",
        got.headers
    );

    let (file, data) = write_payload(dir.path(), "upload.bin", 1 << 20);
    let upload = format!("@{}", file.display());
    let got = exchange(
        dir.path(),
        &[
            "--cacert",
            &cacert,
            "--http2",
            "--data-binary",
            &upload,
            &format!("{base}/echo"),
        ],
    );
    assert_eq!((got.status, got.version.as_str()), (200, "2"));
    assert!(
        got.body == data,
        "echo over h2/TLS differs ({} of {} bytes)",
        got.body.len(),
        data.len()
    );

    // Plain HTTP on the TLS port is not served.
    let out = curl([
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{}/", server.addr()),
    ]);
    assert_ne!(
        out.stdout_text().trim(),
        "200",
        "plain HTTP was served on the TLS listener"
    );
}

/// HTTP-REQ-2 (the versions served; the switches themselves are issue 3 item 7): `--http1-only` refuses h2c prior knowledge and `--http2-only` refuses
/// HTTP/1.1, while each still serves its own protocol.
#[test]
fn http1_only_and_http2_only() {
    let dir = ScratchDir::new("curl-only");
    let h1 = TestServer::hello(&["--http1-only"]);
    let got = exchange(dir.path(), &["--http1.1", &h1.url("/")]);
    assert_eq!((got.status, got.version.as_str()), (200, "1.1"));
    let out = curl([
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &h1.url("/"),
    ]);
    assert_ne!(
        out.stdout_text().trim(),
        "200",
        "--http1-only served HTTP/2"
    );

    let h2 = TestServer::hello(&["--http2-only"]);
    let got = exchange(dir.path(), &["--http2-prior-knowledge", &h2.url("/")]);
    assert_eq!((got.status, got.version.as_str()), (200, "2"));
    let out = curl([
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &h2.url("/"),
    ]);
    assert_ne!(
        out.stdout_text().trim(),
        "200",
        "--http2-only served HTTP/1.1"
    );
}
