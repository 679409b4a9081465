//! The standard command line of an RGI binary (issue 3 item 7), exercised on `hello`: listeners
//! (`--bind` repeated, IPv6, `--uds`), environment-variable twins, `--help`, `--root-path`,
//! the access-log switch, and exit codes of failed startups.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{HELLO, HttpConn, IO_BOUND, ScratchDir, ServerOptions, TestServer, curl};

/// Flags every binary must offer, with the environment twin clap shows for them.
const STANDARD_FLAGS: &[&str] = &[
    "bind",
    "uds",
    "workers",
    "tls-cert",
    "tls-key",
    "http1-only",
    "http2-only",
    "proxy-headers",
    "forwarded-allow-ips",
    "root-path",
    "graceful-timeout",
    "header-read-timeout",
    "keep-alive-timeout",
    "max-header-bytes",
    "max-headers",
    "max-uri-length",
    "max-body-bytes",
    "max-connections",
    "log-level",
    "access-log",
    "no-access-log",
];

/// Flags whose default `--help` must show.
const FLAGS_WITH_DEFAULTS: &[&str] = &[
    "graceful-timeout",
    "header-read-timeout",
    "keep-alive-timeout",
    "max-header-bytes",
    "max-headers",
    "max-uri-length",
    "max-body-bytes",
    "max-connections",
    "log-level",
];

/// The help paragraph of `--flag`: from its line to the next flag's line.
fn help_block<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    let needle = format!("--{flag}");
    let start = help.lines().position(|line| {
        let trimmed = line.trim_start();
        trimmed.starts_with('-')
            && trimmed
                .split([' ', ','])
                .any(|word| word == needle || word.starts_with(&format!("{needle}=")))
    })?;
    let lines: Vec<&str> = help.lines().collect();
    let end = lines[start + 1..]
        .iter()
        .position(|line| line.trim_start().starts_with('-'))
        .map_or(lines.len(), |p| start + 1 + p);
    let first = help.lines().nth(start)?;
    let offset = first.as_ptr() as usize - help.as_ptr() as usize;
    let last = lines[end - 1];
    let stop = last.as_ptr() as usize - help.as_ptr() as usize + last.len();
    help.get(offset..stop)
}

/// Issue 3 item 7 (SRV-LIMIT-5 "documented limits", SRV-LIMIT-6 defaults): `--help` lists
/// every standard flag with its `RGI_*` environment twin, and shows the default of each limit
/// and timeout.
#[test]
fn help_lists_standard_flags_with_env_twins_and_defaults() {
    let output = Command::new(HELLO)
        .arg("--help")
        .output()
        .expect("run hello --help");
    assert!(output.status.success(), "--help failed: {output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    let mut missing = Vec::new();
    for flag in STANDARD_FLAGS {
        let env = format!("RGI_{}", flag.to_ascii_uppercase().replace('-', "_"));
        match help_block(&help, flag) {
            None => missing.push(format!("--{flag} is not listed")),
            Some(block) if !block.contains(&env) => {
                missing.push(format!("--{flag} does not show its environment twin {env}"));
            }
            Some(_) => {}
        }
    }
    for flag in FLAGS_WITH_DEFAULTS {
        if help_block(&help, flag).is_some_and(|block| !block.contains("[default:")) {
            missing.push(format!("--{flag} does not show its default"));
        }
    }
    assert!(
        missing.is_empty(),
        "{}\n--- help ---\n{help}",
        missing.join("\n")
    );
}

/// SRV-LIMIT-5 (the limit is configurable through its environment twin): with
/// `RGI_MAX_URI_LENGTH=1024` in the environment, a 1100-byte target gets `414`.
#[tokio::test]
async fn environment_twin_sets_a_limit() {
    let server = ServerOptions::hello()
        .env("RGI_MAX_URI_LENGTH", "1024")
        .start();
    let target = format!("/{}", "u".repeat(1100));
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let response = conn.read_response(IO_BOUND).await.expect("response");
    assert_eq!(
        response.status,
        414,
        "RGI_MAX_URI_LENGTH was not applied\n{}",
        server.logs()
    );
}

/// SRV-LOG-5: `--bind` is repeatable and takes IPv4 and IPv6 addresses; the server prints one
/// `listening on` line per listener and serves on each (IPv6 only where the host has `::1`).
#[tokio::test]
async fn repeated_bind_with_ipv4_and_ipv6() {
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut args = vec!["--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0"];
    if ipv6 {
        args.extend(["--bind", "[::1]:0"]);
    } else {
        println!("no IPv6 loopback on this host: IPv6 listener not tested");
    }
    let mut server = ServerOptions::hello().no_default_bind().args(&args).start();
    let expected = args.len() / 2;
    server.wait_for_listeners(expected, IO_BOUND);
    assert_eq!(
        server.urls().len(),
        expected,
        "one listening line per --bind expected: {:?}\n{}",
        server.urls(),
        server.logs()
    );
    for url in server.urls() {
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("bad listening URL {url}"));
        let mut conn = HttpConn::connect(addr).await;
        conn.send(&support::get("/")).await.expect("send");
        let response = conn.read_response(IO_BOUND).await.expect("response");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"Hello, World!"[..]),
            "{url}"
        );
    }
}

/// HTTP-CONN-2 (the Unix-socket transport it names; its addresses are not visible from
/// outside), issue 3 item 7: `--uds PATH` serves HTTP on a Unix domain socket
/// (curl `--unix-socket`), announced as `unix:PATH`.
#[test]
fn unix_domain_socket_listener() {
    let dir = ScratchDir::new("uds");
    let path = dir.path().join("hello.sock");
    let path_text = path.display().to_string();
    let server = ServerOptions::hello()
        .no_default_bind()
        .args(["--uds", &path_text])
        .start();
    assert!(
        server
            .urls()
            .iter()
            .any(|u| u.starts_with("unix:") && u.ends_with("hello.sock")),
        "expected a unix: listening line: {:?}",
        server.urls()
    );
    let out = curl(["--unix-socket", &path_text, "http://localhost/"]);
    assert!(
        out.status.success(),
        "curl over the Unix socket failed: {}\n{}",
        out.stderr,
        server.logs()
    );
    assert_eq!(out.stdout, b"Hello, World!");
}

/// HTTP-PATH-5, HTTP-PATH-8: with `--root-path /api`, requests outside the prefix get `404`
/// from the server (including `/apix`), and `hello` routes on the application path, so
/// `/api/` is its `/` and `/api/stream?bytes=3` its `/stream`.
#[tokio::test]
async fn root_path_mounts_the_app() {
    let server = TestServer::hello(&["--root-path", "/api"]);
    let mut results = Vec::new();
    for (target, status, body) in [
        ("/api/", 200, Some(&b"Hello, World!"[..])),
        ("/api/stream?bytes=3", 200, Some(&b"xxx"[..])),
        ("/", 404, None),
        ("/apix", 404, None),
        ("/other/", 404, None),
    ] {
        let mut conn = HttpConn::connect(server.addr()).await;
        conn.send(&support::get(target)).await.expect("send");
        let response = conn.read_response(IO_BOUND).await.expect("response");
        let ok = response.status == status && body.is_none_or(|b| response.body == b);
        results.push(format!(
            "{target}: {} {}",
            response.summary(),
            if ok { "ok" } else { "WRONG" }
        ));
    }
    assert!(
        !results.iter().any(|r| r.ends_with("WRONG")),
        "{}\n{}",
        results.join("\n"),
        server.logs()
    );
}

/// SRV-LOG-3: one access-log line per request by default, none with `--no-access-log`; its
/// `duration_ms` is in milliseconds to the microsecond.
#[tokio::test]
async fn access_log_is_switchable() {
    let marker = "/access-log-marker-7f3a";
    let with_log = TestServer::hello(&[]);
    let without_log = TestServer::hello(&["--no-access-log"]);
    for server in [&with_log, &without_log] {
        let mut conn = HttpConn::connect(server.addr()).await;
        conn.send(&support::get(marker)).await.expect("send");
        assert_eq!(
            conn.read_response(IO_BOUND).await.expect("response").status,
            404
        );
    }
    assert!(
        with_log.logs_contain_within(marker, IO_BOUND).await,
        "no access-log line by default\n{}",
        with_log.logs()
    );
    // The duration is in milliseconds to the microsecond: at most three decimals.
    let logs = with_log.logs();
    let line = logs
        .lines()
        .find(|line| line.contains(marker))
        .expect("the marker's line");
    let duration = line
        .split("duration_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no duration_ms field: {line}"));
    let decimals = duration.split('.').nth(1).map_or(0, str::len);
    assert!(
        duration.parse::<f64>().is_ok() && decimals <= 3,
        "duration_ms={duration}: not milliseconds to the microsecond\n{line}"
    );
    // The logged server has written its line; give the other one a moment for a wrong line.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !without_log.logs_contain(marker),
        "--no-access-log still logged the request\n{}",
        without_log.logs()
    );
}

/// SRV-SHUT-6: a failed startup exits non-zero — a bad command line, and an address that
/// cannot be bound (already in use) — without printing a `listening on` line.
#[test]
fn failed_startup_exits_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    for args in [
        vec!["--bind", "nowhere"],
        vec!["--bind", taken_addr.as_str()],
        vec!["--tls-cert", "/nonexistent.pem"],
    ] {
        let mut child = Command::new(HELLO)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hello");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if start.elapsed() > support::EXIT_BOUND {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            matches!(status, Some(s) if !s.success()),
            "hello {args:?} should exit non-zero, got {status:?}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !stdout.contains("listening on"),
            "hello {args:?} claimed to listen: {stdout}"
        );
    }
    drop(taken);
}

/// The threads of process `pid`, from `/proc`.
fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |dir| dir.count())
}

/// `--workers N` sets the number of runtime worker threads: four workers run at least three
/// more threads than one (CORE-APP-6: the runtime the application is polled on is the server's).
#[test]
fn workers_sets_the_runtime_threads() {
    let one = TestServer::hello(&["--workers", "1"]);
    let four = TestServer::hello(&["--workers", "4"]);
    for server in [&one, &four] {
        let out = curl(["-o", "/dev/null", "-w", "%{http_code}", &server.url("/")]);
        assert_eq!(out.stdout, b"200", "{}", server.logs());
    }
    let (threads_one, threads_four) = (thread_count(one.pid()), thread_count(four.pid()));
    assert!(threads_one > 0, "cannot read /proc/{}/task", one.pid());
    assert!(
        threads_four >= threads_one + 3,
        "--workers 1 runs {threads_one} threads, --workers 4 runs {threads_four}"
    );
}
