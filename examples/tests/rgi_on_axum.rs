//! The `rgi_on_axum` example end to end: the binary (the `hello` RGI app on `axum::serve`
//! through `rgi_tower::RgiService`) is spawned with `--bind 127.0.0.1:0` and driven over TCP.

mod support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{EXIT_BOUND, HttpConn, IO_BOUND, RawResponse, STARTUP_BOUND, chunk, payload};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const RGI_ON_AXUM: &str = env!("CARGO_BIN_EXE_rgi_on_axum");

/// The running binary; killed on drop.
struct Example {
    child: Child,
    addr: SocketAddr,
    stdout: mpsc::Receiver<String>,
}

impl Example {
    fn start() -> Self {
        let mut child = Command::new(RGI_ON_AXUM)
            .args(["--bind", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut example = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout: lines,
        };
        let line = example
            .stdout
            .recv_timeout(STARTUP_BOUND)
            .expect("a `listening on` line");
        let url = line
            .strip_prefix("rgi_on_axum listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        example.addr = url.parse().expect("an address");
        example
    }

    async fn send(&self, request: &[u8]) -> RawResponse {
        let mut conn = HttpConn::connect(self.addr).await;
        conn.send(request).await.expect("request sent");
        conn.read_response(IO_BOUND).await.expect("a response")
    }

    /// Sends `SIGTERM` with the shell's `kill`.
    fn terminate(&self) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -s TERM {}", self.child.id()))
            .status()
            .expect("sh runs");
        assert!(status.success());
    }

    /// Waits (bounded) for the exit; returns its status and the stdout lines after the first.
    fn wait_exit(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                start.elapsed() < EXIT_BOUND,
                "no exit within {EXIT_BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut lines = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        (status, lines)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// CORE-APP-1, HTTP-RESP-1, HTTP-BODY-1, HTTP-FRAME-12: the `hello` app answers through
/// `axum::serve`: `GET /`, a streamed chunked echo, `/stream`, and `404`.
#[tokio::test]
async fn hello_routes_answer_through_axum_serve() {
    let example = Example::start();
    let root = example.send(&get("/")).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body, b"Hello, World!");
    assert_eq!(
        root.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let body = payload(300_000, 7);
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-test\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for piece in body.chunks(50_000) {
        request.extend(chunk(piece));
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let echoed = example.send(&request).await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("content-type"), Some("application/x-test"));
    assert!(echoed.body == body, "the echo differs");

    let streamed = example.send(&get("/stream?bytes=150000")).await;
    assert_eq!(streamed.body.len(), 150_000);
    assert_eq!(example.send(&get("/nope")).await.status, 404);
}

/// HTTP-TRAIL-4, HTTP-TRAIL-10: `/trailers` announces its trailers, so hyper sends them on
/// HTTP/1.1 to a client that accepts them.
#[tokio::test]
async fn announced_trailers_reach_the_client() {
    let example = Example::start();
    let response = example
        .send(b"GET /trailers HTTP/1.1\r\nHost: localhost\r\nTE: trailers\r\n\r\n")
        .await;
    assert_eq!(response.status, 200);
    let expected = rgi_examples::hello::checksum(&response.body).to_string();
    assert_eq!(response.trailer("x-checksum"), Some(expected.as_str()));
    assert_eq!(response.trailer("x-chunks"), Some("3"));
}

/// HTTP-BODY-7, CORE-ERR-4: the body limit applies: a declared length over it is answered
/// `413`.
#[tokio::test]
async fn declared_body_over_the_limit_is_413() {
    let example = Example::start();
    let over = rgi_examples::rgi_on_axum::BODY_LIMIT + 1;
    let mut conn = HttpConn::connect(example.addr).await;
    let head = format!("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {over}\r\n\r\n");
    conn.send(head.as_bytes()).await.expect("sent");
    let response = conn.read_response(IO_BOUND).await.expect("a response");
    assert_eq!(response.status, 413);
}

/// LIFE-START-1, LIFE-SHUT-1, SRV-SHUT-1: after `SIGTERM` the example stops accepting, lets
/// the open response finish (all of its body arrives), runs the app's shutdown and exits
/// successfully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully() {
    const LENGTH: usize = 50_000_000;
    let mut example = Example::start();
    let mut stream = support::connect(example.addr).await;
    stream
        .write_all(&get(&format!("/stream?bytes={LENGTH}")))
        .await
        .expect("sent");
    // Read the head (and whatever body came with it) before the signal.
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = tokio::time::timeout(IO_BOUND, stream.read(&mut buf))
            .await
            .expect("the head in time")
            .expect("read");
        assert!(n > 0, "closed before the head");
        received.extend_from_slice(&buf[..n]);
    };
    assert!(received.starts_with(b"HTTP/1.1 200"));
    example.terminate();
    let termination =
        support::read_to_close(&mut stream, &mut received, Duration::from_secs(120)).await;
    assert_eq!(termination, support::Termination::Eof);
    assert_eq!(received.len() - head_end, LENGTH, "the whole body arrived");
    let (status, lines) = tokio::task::block_in_place(|| example.wait_exit());
    assert!(status.success(), "exit status {status}");
    assert!(
        lines
            .iter()
            .any(|l| l == "rgi_on_axum: the application shut down"),
        "stdout after startup: {lines:?}"
    );
}
