//! Shared harness of the black-box acceptance tests: runs an example binary as a child process
//! on `127.0.0.1:0`, learns its address from the line it prints once ready, and talks to it over
//! raw TCP (with a small HTTP/1.x response reader) or through `curl`.
//!
//! Every child is killed when its [`TestServer`] is dropped, and every wait is bounded: the
//! bounds below are generous upper limits that only stop a broken server from hanging the
//! suite; no test asserts how fast anything happens.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `hello` example binary.
pub(crate) const HELLO: &str = env!("CARGO_BIN_EXE_hello");

/// Upper bound for a server to print its address.
pub(crate) const STARTUP_BOUND: Duration = Duration::from_secs(30);
/// Upper bound for one network step (connect, a response, a close) in the tests.
pub(crate) const IO_BOUND: Duration = Duration::from_secs(15);
/// Upper bound for a process to exit after a signal.
pub(crate) const EXIT_BOUND: Duration = Duration::from_secs(30);

/// How many bytes of a child's output are kept for failure messages.
const LOG_TAIL_BYTES: usize = 64 * 1024;
/// Longer log lines are cut (a hostile request target can be 20 KiB long).
const MAX_LINE: usize = 400;

/// The last [`LOG_TAIL_BYTES`] of a child's stderr (and the stdout lines after the first).
#[derive(Default)]
struct LogTail {
    lines: VecDeque<String>,
    bytes: usize,
    total_lines: u64,
}

impl LogTail {
    fn push(&mut self, mut line: String) {
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [...]");
        }
        self.bytes += line.len() + 1;
        self.total_lines += 1;
        self.lines.push_back(line);
        while self.bytes > LOG_TAIL_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }
}

/// How to start a server.
#[derive(Clone, Debug)]
pub(crate) struct ServerOptions {
    bin: PathBuf,
    args: Vec<String>,
    nofile: Option<u64>,
    default_bind: bool,
    env: Vec<(String, String)>,
}

impl ServerOptions {
    /// The `hello` example with `--bind 127.0.0.1:0` and the given extra flags.
    pub(crate) fn hello() -> Self {
        Self::new(HELLO)
    }

    /// Any example binary.
    pub(crate) fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            args: Vec::new(),
            nofile: None,
            default_bind: true,
            env: Vec::new(),
        }
    }

    /// Adds command-line arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Raises the child's open-file limit to `n` (or to its hard limit when that is lower) by
    /// starting it through `sh -c 'ulimit -n ...; exec BIN ...'` (the pid stays the server's).
    pub(crate) fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }

    /// Sets an environment variable of the child (after the `RGI_*` variables of the test's
    /// own environment were removed).
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Do not add `--bind 127.0.0.1:0` (the caller passes its own listeners).
    pub(crate) fn no_default_bind(mut self) -> Self {
        self.default_bind = false;
        self
    }

    /// Starts the server and waits until it printed its first listening line.
    pub(crate) fn start(self) -> TestServer {
        TestServer::start(self)
    }
}

/// A running example binary; killed on drop.
pub(crate) struct TestServer {
    child: Child,
    urls: Vec<String>,
    addr: Option<SocketAddr>,
    logs: Arc<Mutex<LogTail>>,
    exited: Option<ExitStatus>,
    command: String,
    ready: mpsc::Receiver<String>,
}

impl TestServer {
    /// `hello` on `127.0.0.1:0` with extra flags.
    pub(crate) fn hello(args: &[&str]) -> Self {
        ServerOptions::hello().args(args).start()
    }

    fn start(options: ServerOptions) -> Self {
        let mut args = options.args.clone();
        if options.default_bind {
            args.splice(0..0, ["--bind".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        let mut command = match options.nofile {
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!(
                        "ulimit -n {n} 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec \"$0\" \"$@\""
                    ))
                    .arg(&options.bin)
                    .args(&args);
                sh
            }
            None => {
                let mut direct = Command::new(&options.bin);
                direct.args(&args);
                direct
            }
        };
        // The flags' environment twins of the developer's shell must not change the tests.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RGI_") {
                command.env_remove(&key);
            }
        }
        command.env_remove("RUST_LOG");
        for (key, value) in &options.env {
            command.env(key, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let description = format!("{} {}", options.bin.display(), args.join(" "));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{description}`: {e}"));

        let logs = Arc::new(Mutex::new(LogTail::default()));
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_logs = Arc::clone(&logs);
        std::thread::spawn(move || drain_lines(stderr, &stderr_logs, None));

        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_logs = Arc::clone(&logs);
        std::thread::spawn(move || drain_lines(stdout, &stdout_logs, Some(ready_tx)));

        let mut server = TestServer {
            child,
            urls: Vec::new(),
            addr: None,
            logs,
            exited: None,
            command: description,
            ready: ready_rx,
        };
        match server.ready.recv_timeout(STARTUP_BOUND) {
            Ok(url) => server.push_url(url),
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "`{}` printed no `rgi-server listening on` line within {STARTUP_BOUND:?} \
                     (exit status: {status:?})\n{}",
                    server.command,
                    server.logs()
                );
            }
        }
        // Later listeners print their lines right after the first one.
        while let Ok(url) = server.ready.recv_timeout(Duration::from_millis(200)) {
            server.push_url(url);
        }
        server
    }

    /// Waits (bounded) until the server printed `n` listening lines, and returns them.
    pub(crate) fn wait_for_listeners(&mut self, n: usize, bound: Duration) -> &[String] {
        let start = Instant::now();
        while self.urls.len() < n {
            let left = bound.saturating_sub(start.elapsed());
            match self.ready.recv_timeout(left) {
                Ok(url) => self.push_url(url),
                Err(_) => break,
            }
        }
        &self.urls
    }

    fn push_url(&mut self, url: String) {
        if self.addr.is_none() {
            if let Some(rest) = url.split("://").nth(1) {
                self.addr = rest.trim_end_matches('/').parse().ok();
            }
        }
        self.urls.push(url);
    }

    /// The first TCP address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| panic!("no TCP listener among {:?}", self.urls))
    }

    /// Every URL the server printed (`http://...`, `https://...`, `unix:...`).
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// `http://ADDR{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The tail of the server's output, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let tail = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = format!("--- server `{}` output (last lines) ---\n", self.command);
        for line in &tail.lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("--- end of server output ---");
        out
    }

    /// Whether the server's output so far contains `needle`.
    pub(crate) fn logs_contain(&self, needle: &str) -> bool {
        let tail = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        tail.lines.iter().any(|line| line.contains(needle))
    }

    /// Whether the server's output contains `needle` within `bound` (polled; output is read by
    /// a thread, so a line the server just wrote may take a moment to show).
    pub(crate) async fn logs_contain_within(&self, needle: &str, bound: Duration) -> bool {
        let start = Instant::now();
        while !self.logs_contain(needle) && start.elapsed() < bound {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.logs_contain(needle)
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) with the shell's built-in `kill` (no
    /// procps needed).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -s {name} {}", self.pid()))
            .status()
            .expect("run sh -c kill");
        assert!(
            status.success(),
            "kill -s {name} {} failed: {status}",
            self.pid()
        );
    }

    /// The exit status if the process has exited.
    pub(crate) fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    /// Waits (blocking, polling) up to `bound` for the process to exit.
    pub(crate) fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if start.elapsed() > bound {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like [`Self::wait_exit`], without blocking the async runtime.
    pub(crate) async fn wait_exit_async(&mut self, bound: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if start.elapsed() > bound {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Panics with the server's output if it printed a Rust panic message.
    pub(crate) fn assert_no_panic(&self) {
        assert!(
            !self.logs_contain("panicked at"),
            "the server panicked (SRV-LIMIT-11)\n{}",
            self.logs()
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn drain_lines(pipe: impl Read, logs: &Mutex<LogTail>, ready: Option<mpsc::Sender<String>>) {
    let mut reader = BufReader::new(pipe);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
        if let (Some(ready), Some(url)) = (
            ready.as_ref(),
            line.strip_prefix("rgi-server listening on "),
        ) {
            let _ = ready.send(url.trim().to_owned());
        }
        logs.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

/// Raises this test process's soft open-file limit to at least `want` (bounded by the hard
/// limit) with the `prlimit` utility, and returns the resulting soft limit.
pub(crate) fn raise_own_nofile(want: u64) -> u64 {
    let current = own_nofile();
    if current.0 >= want {
        return current.0;
    }
    let target = want.min(current.1);
    let _ = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={target}:{}", current.1))
        .status();
    own_nofile().0
}

/// This process's (soft, hard) open-file limits from `/proc/self/limits`.
pub(crate) fn own_nofile() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let parse = |s: &str| {
        if s == "unlimited" {
            u64::MAX
        } else {
            s.parse().unwrap_or(0)
        }
    };
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (parse(fields[3]), parse(fields[4]))
        })
        .unwrap_or((0, 0))
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, made with the `openssl` CLI.
pub(crate) fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the `openssl` CLI must be installed to make the test certificate");
    assert!(
        status.success(),
        "openssl failed to make a certificate: {status}"
    );
    (cert, key)
}

/// A fresh scratch directory under Cargo's per-target temporary directory, removed on drop.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        ScratchDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.x over TCP
// ---------------------------------------------------------------------------------------------

/// Connects within [`IO_BOUND`].
pub(crate) async fn connect(addr: SocketAddr) -> TcpStream {
    match tokio::time::timeout(IO_BOUND, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => panic!("connect to {addr}: {e}"),
        Err(_) => panic!("connect to {addr}: no answer within {IO_BOUND:?}"),
    }
}

/// How a connection's input ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Termination {
    /// The server closed the connection (FIN).
    Eof,
    /// The connection was reset (RST) or another read error occurred.
    Reset,
    /// The connection was still open when the bound expired.
    StillOpen,
}

impl Termination {
    /// Whether the server closed the connection (cleanly or with a reset).
    pub(crate) fn closed(self) -> bool {
        matches!(self, Termination::Eof | Termination::Reset)
    }
}

/// Reads into `buf` until EOF, a reset, or `bound`.
pub(crate) async fn read_to_close<R>(
    stream: &mut R,
    buf: &mut Vec<u8>,
    bound: Duration,
) -> Termination
where
    R: tokio::io::AsyncRead + Unpin,
{
    let deadline = tokio::time::Instant::now() + bound;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Termination::StillOpen,
            Ok(Ok(0)) => return Termination::Eof,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => return Termination::Reset,
        }
    }
}

/// How a response body was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body by the rules (HEAD, 1xx, 204, 304).
    None,
    /// `content-length`.
    Length,
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Delimited by the connection's close.
    Close,
}

/// One HTTP/1.x response as received on the wire.
#[derive(Clone, Debug)]
pub(crate) struct RawResponse {
    /// `HTTP/1.1`, `HTTP/1.0`.
    pub(crate) version: String,
    pub(crate) status: u16,
    /// Header fields in wire order, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    /// The body with any chunked coding removed.
    pub(crate) body: Vec<u8>,
    /// Trailer fields (chunked responses only), names lower-cased.
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) framing: Framing,
    /// Whether the body ended as its framing says (the terminating chunk, the declared length,
    /// or the close for close-delimited bodies). `false` = the response was cut short.
    pub(crate) complete: bool,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of trailer `name` (case-insensitive).
    pub(crate) fn trailer(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.trailers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response says the connection closes after it.
    pub(crate) fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// A complete 2xx response.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status) && self.complete
    }

    /// A one-line summary: `200 (13 B, length)`.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{}{} ({} B, {:?})",
            self.status,
            if self.complete { "" } else { " CUT SHORT" },
            self.body.len(),
            self.framing
        )
    }
}

/// Result of trying to parse one response from the front of a buffer.
pub(crate) enum Parsed {
    /// A full response (or one cut short by `eof`), and how many bytes it used.
    Response(RawResponse, usize),
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not an HTTP/1.x response.
    Invalid(String),
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn parse_fields(block: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields = Vec::new();
    for line in block.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("field line without colon: {line:?}"))?;
        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(fields)
}

/// Parses one response from the front of `buf`. `no_body`: the request was `HEAD`. `eof`: no
/// more bytes will come (a close-delimited body ends here; anything else unfinished is
/// returned as a response cut short).
pub(crate) fn parse_response(buf: &[u8], no_body: bool, eof: bool) -> Parsed {
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() >= 5 && !buf.starts_with(b"HTTP/") {
            return Parsed::Invalid(format!("not an HTTP response: {:?}", preview(buf)));
        }
        return Parsed::Incomplete;
    };
    let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
    let (status_line, field_block) = head.split_once("\r\n").unwrap_or((head.as_str(), ""));
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    if !version.starts_with("HTTP/") {
        return Parsed::Invalid(format!("bad status line {status_line:?}"));
    }
    let Some(status) = parts.next().and_then(|s| s.parse::<u16>().ok()) else {
        return Parsed::Invalid(format!("bad status line {status_line:?}"));
    };
    let headers = match parse_fields(field_block) {
        Ok(h) => h,
        Err(e) => return Parsed::Invalid(e),
    };
    let mut response = RawResponse {
        version,
        status,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
        framing: Framing::None,
        complete: true,
    };
    let rest = &buf[head_end..];
    if no_body || (100..200).contains(&status) || status == 204 || status == 304 {
        return Parsed::Response(response, head_end);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().trim_end().ends_with("chunked"));
    if chunked {
        response.framing = Framing::Chunked;
        return parse_chunked(response, rest, head_end, eof);
    }
    if let Some(length) = response.header("content-length") {
        let Ok(length) = length.parse::<usize>() else {
            return Parsed::Invalid(format!("bad content-length {length:?}"));
        };
        response.framing = Framing::Length;
        if rest.len() >= length {
            response.body = rest[..length].to_vec();
            return Parsed::Response(response, head_end + length);
        }
        if eof {
            response.body = rest.to_vec();
            response.complete = false;
            return Parsed::Response(response, buf.len());
        }
        return Parsed::Incomplete;
    }
    response.framing = Framing::Close;
    if eof {
        response.body = rest.to_vec();
        return Parsed::Response(response, buf.len());
    }
    Parsed::Incomplete
}

fn parse_chunked(mut response: RawResponse, rest: &[u8], head_len: usize, eof: bool) -> Parsed {
    let mut pos = 0;
    let cut_short = |mut response: RawResponse, total: usize| {
        response.complete = false;
        Parsed::Response(response, total)
    };
    loop {
        let Some(line_end) = rest[pos..].windows(2).position(|w| w == b"\r\n") else {
            return if eof {
                cut_short(response, head_len + rest.len())
            } else {
                Parsed::Incomplete
            };
        };
        let line = String::from_utf8_lossy(&rest[pos..pos + line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return Parsed::Invalid(format!("bad chunk size line {line:?}"));
        };
        let data_start = pos + line_end + 2;
        if size == 0 {
            // Trailer section: field lines up to an empty line.
            let Some(end) = find_empty_line(&rest[data_start..]) else {
                return if eof {
                    cut_short(response, head_len + rest.len())
                } else {
                    Parsed::Incomplete
                };
            };
            let block = String::from_utf8_lossy(&rest[data_start..data_start + end]).into_owned();
            match parse_fields(&block) {
                Ok(trailers) => response.trailers = trailers,
                Err(e) => return Parsed::Invalid(e),
            }
            let total = data_start + end + 2;
            return Parsed::Response(response, head_len + total);
        }
        if rest.len() < data_start + size + 2 {
            if eof {
                let available = rest.len().min(data_start + size);
                response
                    .body
                    .extend_from_slice(&rest[data_start.min(available)..available]);
                return cut_short(response, head_len + rest.len());
            }
            return Parsed::Incomplete;
        }
        response
            .body
            .extend_from_slice(&rest[data_start..data_start + size]);
        if &rest[data_start + size..data_start + size + 2] != b"\r\n" {
            return Parsed::Invalid("chunk data not followed by CRLF".to_owned());
        }
        pos = data_start + size + 2;
    }
}

/// Offset of the CRLF that ends a (possibly empty) block of field lines.
fn find_empty_line(buf: &[u8]) -> Option<usize> {
    if buf.starts_with(b"\r\n") {
        return Some(0);
    }
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 2)
}

fn preview(buf: &[u8]) -> String {
    String::from_utf8_lossy(&buf[..buf.len().min(60)]).into_owned()
}

/// Everything received on a connection until it closed, as responses.
#[derive(Debug)]
pub(crate) struct Transcript {
    /// Final and interim responses, in order.
    pub(crate) responses: Vec<RawResponse>,
    /// Bytes that were not an HTTP/1.x response, if any.
    pub(crate) junk: Option<String>,
    pub(crate) termination: Termination,
}

/// Splits a finished byte stream into responses (none of them to a `HEAD` request).
pub(crate) fn parse_transcript(buf: &[u8], termination: Termination) -> Transcript {
    let eof = termination.closed();
    let mut responses = Vec::new();
    let mut pos = 0;
    let mut junk = None;
    while pos < buf.len() {
        match parse_response(&buf[pos..], false, eof) {
            Parsed::Response(response, used) => {
                responses.push(response);
                pos += used.max(1);
            }
            Parsed::Incomplete => {
                junk = Some(format!("unfinished: {:?}", preview(&buf[pos..])));
                break;
            }
            Parsed::Invalid(why) => {
                junk = Some(why);
                break;
            }
        }
    }
    Transcript {
        responses,
        junk,
        termination,
    }
}

/// A client connection that reads responses one at a time.
pub(crate) struct HttpConn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
    /// Statuses of the interim (1xx) responses skipped so far.
    pub(crate) interim: Vec<u16>,
}

/// Why reading a response failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection closed before a full response head.
    Closed(Termination, String),
    /// Not an HTTP/1.x response.
    Invalid(String),
    /// Nothing within the bound.
    TimedOut,
}

impl HttpConn {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: connect(addr).await,
            buf: Vec::new(),
            interim: Vec::new(),
        }
    }

    /// Connects within [`IO_BOUND`], reporting failure instead of panicking.
    pub(crate) async fn try_connect(addr: SocketAddr) -> std::io::Result<Self> {
        match tokio::time::timeout(IO_BOUND, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => Ok(Self::from_stream(stream)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            )),
        }
    }

    pub(crate) fn from_stream(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            interim: Vec::new(),
        }
    }

    /// Puts bytes read directly from `stream` back in front of the response reader.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        self.buf.splice(0..0, bytes.iter().copied());
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads the head of the next final response (skipping 1xx), leaving its body unread.
    pub(crate) async fn read_head(&mut self, bound: Duration) -> Result<RawResponse, ReadError> {
        self.read_response_to(true, bound).await
    }

    /// Reads the next final response (skipping 1xx), within `bound`.
    pub(crate) async fn read_response(
        &mut self,
        bound: Duration,
    ) -> Result<RawResponse, ReadError> {
        self.read_response_to(false, bound).await
    }

    /// Reads the next final response to a request that was (`head = true`) or was not `HEAD`.
    pub(crate) async fn read_response_to(
        &mut self,
        head: bool,
        bound: Duration,
    ) -> Result<RawResponse, ReadError> {
        let deadline = tokio::time::Instant::now() + bound;
        let mut eof = None;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match parse_response(&self.buf, head, eof.is_some()) {
                Parsed::Response(response, used) => {
                    self.buf.drain(..used);
                    if (100..200).contains(&response.status) {
                        self.interim.push(response.status);
                        continue;
                    }
                    return Ok(response);
                }
                Parsed::Invalid(why) => return Err(ReadError::Invalid(why)),
                Parsed::Incomplete => {
                    if let Some(termination) = eof {
                        return Err(ReadError::Closed(termination, preview(&self.buf)));
                    }
                }
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(ReadError::TimedOut),
                Ok(Ok(0)) => eof = Some(Termination::Eof),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(_)) => eof = Some(Termination::Reset),
            }
        }
    }

    /// Reads until the server closes the connection (or `bound`), returning what came.
    pub(crate) async fn read_to_close(&mut self, bound: Duration) -> Transcript {
        let mut buf = std::mem::take(&mut self.buf);
        let termination = read_to_close(&mut self.stream, &mut buf, bound).await;
        parse_transcript(&buf, termination)
    }
}

/// `GET {path}` with a `Host` header, keep-alive.
pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// Encodes one chunk of the chunked transfer coding.
pub(crate) fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A deterministic, non-repeating-looking payload of `len` bytes.
pub(crate) fn payload(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9E37_79B9_u32 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// The output of one `curl` run.
#[derive(Debug)]
pub(crate) struct CurlOutput {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl CurlOutput {
    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `curl -sS --max-time 60 ARGS...` and returns its output; panics if curl is missing.
pub(crate) fn curl<I, S>(args: I) -> CurlOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("`curl` must be installed (scripts/install-test-deps.sh installs it)");
    CurlOutput {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
