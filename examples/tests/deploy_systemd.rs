//! Socket activation, several processes on one port, and operability (issue 9, parts 3 and
//! 4): rgi-server started the way systemd starts it — by `systemd-socket-activate` with the
//! listeners of `docs/deploy/rgi.socket` and the command line and environment of
//! `docs/deploy/rgi.service` — `--reuse-port`, structured (JSON) logs, the health path with a
//! shutdown delay, the flags' environment twins and the exit codes.

mod deploy;
mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use deploy::{PROBE, free_port, read_repo_file};
use support::{EXIT_BOUND, IO_BOUND, ScratchDir, ServerOptions, TestServer};

/// A blocking `GET` on a new connection (`Connection: close`): the whole response as text.
fn get_text(stream: impl Read + Write, path: &str) -> String {
    let mut stream = stream;
    let request = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn get_tcp(addr: SocketAddr, path: &str) -> String {
    match std::net::TcpStream::connect(addr) {
        Ok(stream) => {
            let _ = stream.set_read_timeout(Some(IO_BOUND));
            get_text(stream, path)
        }
        Err(_) => String::new(),
    }
}

fn get_unix(path: &Path, target: &str) -> String {
    let stream = std::os::unix::net::UnixStream::connect(path).expect("connect to the socket");
    let _ = stream.set_read_timeout(Some(IO_BOUND));
    get_text(stream, target)
}

/// `ListenStream=` values of `docs/deploy/rgi.socket`.
fn socket_unit_listeners() -> Vec<String> {
    unit_values(&read_repo_file("docs/deploy/rgi.socket"), "ListenStream")
}

fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// The arguments of `ExecStart=` in `docs/deploy/rgi.service` (after the binary) and its
/// `Environment=` assignments.
fn service_unit_command() -> (Vec<String>, Vec<(String, String)>) {
    let unit = read_repo_file("docs/deploy/rgi.service");
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart in rgi.service");
    let args = exec[0]
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let env = unit_values(&unit, "Environment")
        .iter()
        .flat_map(|assignments| {
            assignments
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    (args, env)
}

fn systemd_socket_activate() -> PathBuf {
    for candidate in [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("systemd-socket-activate is missing: run scripts/install-test-deps.sh (package systemd)")
}

/// The JSON objects among `logs`' lines.
fn json_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// SRV-OPS-6, SRV-OPS-1, SRV-OPS-5, SRV-LOG-3, SRV-LOG-5, SRV-SHUT-6: started by
/// `systemd-socket-activate` with the listeners of `rgi.socket` (a TCP address and a Unix
/// socket, named `rgi.socket`) and the command line and environment of `rgi.service`, the
/// server serves both inherited sockets and binds nothing else; its JSON log lines parse and
/// carry their fields (the listener names, the access log with the request ID, the graceful
/// timeout from `Environment=`); `SIGTERM` ends it with status 0 and leaves the socket file,
/// which it did not create, in place.
#[test]
fn socket_activation_with_the_guides_units() {
    let dir = ScratchDir::new("socket-activation");
    let port = free_port();
    let socket_path = dir.path().join("rgi.sock");
    let mut listen_args = Vec::new();
    let mut names = Vec::new();
    for listen in socket_unit_listeners() {
        let actual = if listen.starts_with('/') {
            socket_path.display().to_string()
        } else {
            assert!(listen.parse::<SocketAddr>().is_ok(), "{listen}");
            format!("127.0.0.1:{port}")
        };
        listen_args.push(format!("--listen={actual}"));
        names.push("rgi.socket");
    }
    assert_eq!(
        listen_args.len(),
        2,
        "rgi.socket has a TCP and a Unix listener"
    );
    let (service_args, service_env) = service_unit_command();
    let mut args = listen_args;
    args.push(format!("--fdname={}", names.join(":")));
    for (key, value) in &service_env {
        args.push(format!("--setenv={key}={value}"));
    }
    args.push(PROBE.to_owned());
    args.extend(service_args);

    // systemd-socket-activate starts the server at the first connection: make one.
    let tcp: SocketAddr = ([127, 0, 0, 1], port).into();
    let first = std::thread::spawn(move || {
        let start = Instant::now();
        loop {
            let reply = get_tcp(tcp, "/healthz");
            if !reply.is_empty() || start.elapsed() > Duration::from_secs(30) {
                return reply;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut server = ServerOptions::new(systemd_socket_activate())
        .no_default_bind()
        .args(&args)
        .start();
    let health = first.join().expect("the first client");
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "{health}\n{}",
        server.logs()
    );
    let urls = server.wait_for_listeners(2, IO_BOUND).to_vec();
    assert_eq!(
        urls,
        vec![
            format!("http://127.0.0.1:{port}"),
            format!("unix:{}", socket_path.display())
        ]
    );
    let meta = get_unix(&socket_path, "/meta");
    assert!(meta.starts_with("HTTP/1.1 200"), "{meta}");
    assert!(
        meta.to_ascii_lowercase().contains("x-request-id: "),
        "{meta}"
    );

    server.signal("TERM");
    let status = server.wait_exit(EXIT_BOUND);
    assert!(
        status.is_some_and(|s| s.code() == Some(0)),
        "{status:?}\n{}",
        server.logs()
    );
    assert!(
        socket_path.exists(),
        "the server removed systemd's socket file"
    );

    let logs = json_lines(&server.logs());
    let inherited: Vec<_> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "serving an inherited socket")
        .collect();
    assert_eq!(inherited.len(), 2, "{logs:#?}");
    assert!(
        inherited
            .iter()
            .all(|l| l["fields"]["name"] == "rgi.socket")
    );
    let access: Vec<_> = logs
        .iter()
        .filter(|l| l["target"] == "rgi_server::access")
        .collect();
    assert!(access.len() >= 2, "{logs:#?}");
    for line in &access {
        assert!(line["fields"]["request_id"].is_string(), "{line}");
        assert_eq!(line["fields"]["status"], 200, "{line}");
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].is_string());
    }
    assert!(access.iter().any(|l| l["fields"]["path"] == "/meta"));
    let draining = logs
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        })
        .expect("a shutting-down line");
    assert_eq!(
        draining["fields"]["timeout_s"], 30.0,
        "Environment=RGI_GRACEFUL_TIMEOUT=30"
    );
    server.assert_no_panic();
}

/// SRV-OPS-6: `LISTEN_FDS` meant for another process (`LISTEN_PID`) is ignored: the server
/// binds its own listener as usual.
#[test]
fn socket_activation_for_another_process_is_ignored() {
    let server = ServerOptions::new(PROBE)
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .start();
    assert_eq!(server.urls().len(), 1);
    let reply = get_tcp(server.addr(), "/meta");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

/// SRV-OPS-7, SRV-SHUT-6: two processes share one port with `--reuse-port` (the second
/// configured through `RGI_BIND` and `RGI_REUSE_PORT`); both serve; when one stops, the other
/// serves every new connection; a third process without the option cannot bind and exits
/// with status 2.
#[test]
fn reuse_port_shares_a_port_between_processes() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let addr: SocketAddr = bind.parse().unwrap();
    let mut first = ServerOptions::new(PROBE)
        .no_default_bind()
        .args(["--bind", &bind, "--reuse-port"])
        .start();
    let second = ServerOptions::new(PROBE)
        .no_default_bind()
        .env("RGI_BIND", &bind)
        .env("RGI_REUSE_PORT", "true")
        .start();
    let served = |server: &TestServer| server.logs().matches("\"GET /meta").count();
    for _ in 0..400 {
        if served(&first) > 0 && served(&second) > 0 {
            break;
        }
        let reply = get_tcp(addr, "/meta");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    // Access log lines are written as requests end; give the last one a moment.
    deploy::eventually(|| served(&first) > 0 && served(&second) > 0);
    assert!(
        served(&first) > 0 && served(&second) > 0,
        "first served {}, second {}",
        served(&first),
        served(&second)
    );

    let without = Command::new(PROBE)
        .args(["--bind", &bind])
        .env_remove("RGI_REUSE_PORT")
        .output()
        .expect("run the probe");
    assert_eq!(without.status.code(), Some(2), "{without:?}");

    first.signal("TERM");
    let status = first.wait_exit(EXIT_BOUND);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let before = served(&second);
    for _ in 0..20 {
        let reply = get_tcp(addr, "/meta");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    assert!(deploy::eventually(|| served(&second) >= before + 20));
}

/// SRV-OPS-3, SRV-OPS-1, SRV-OPS-5, SRV-SHUT-6: with a shutdown delay (`RGI_SHUTDOWN_DELAY`)
/// the first `SIGTERM` turns the health path (`RGI_HEALTH_PATH`) to 503 while new connections
/// are still accepted and served; the second signal ends the delay, the server drains and
/// exits 0. Request IDs come from `RGI_REQUEST_ID`.
#[test]
fn shutdown_delay_fails_health_before_closing() {
    let mut server = ServerOptions::new(PROBE)
        .env("RGI_HEALTH_PATH", "/healthz")
        .env("RGI_SHUTDOWN_DELAY", "60")
        .env("RGI_REQUEST_ID", "true")
        .start();
    let addr = server.addr();
    let health = get_tcp(addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health.to_ascii_lowercase().contains("x-request-id: "),
        "{health}"
    );
    server.signal("TERM");
    let unready = deploy::eventually(|| get_tcp(addr, "/healthz").starts_with("HTTP/1.1 503"));
    assert!(unready, "{}", server.logs());
    let meta = get_tcp(addr, "/meta");
    assert!(
        meta.starts_with("HTTP/1.1 200"),
        "still serving during the delay: {meta}"
    );
    assert!(server.try_exit_status().is_none());
    server.signal("TERM");
    let status = server.wait_exit(EXIT_BOUND);
    assert!(
        status.is_some_and(|s| s.code() == Some(0)),
        "{status:?}\n{}",
        server.logs()
    );
}

/// SRV-SHUT-6, SRV-OPS-1: an invalid health path from the environment is a configuration
/// error: exit status 2 before anything is bound.
#[test]
fn invalid_configuration_exits_with_status_2() {
    let output = Command::new(PROBE)
        .args(["--bind", "127.0.0.1:0"])
        .env("RGI_HEALTH_PATH", "healthz")
        .output()
        .expect("run the probe");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("invalid health path"),
        "{output:?}"
    );
}
