//! The servers under test, the scenarios each one takes part in, and running one pinned to
//! core 0.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::Options;
use crate::load::Wrk;

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `GET /`, wrk, 64 connections, with latency percentiles.
    Plaintext,
    /// `GET /`, 16 requests per write.
    Pipelined,
    /// `POST /echo` with 1 KiB, keep-alive.
    Echo,
    /// h2c `GET /`, 16 connections × 4 streams.
    H2c,
    /// `GET /stream?bytes=104857600`, one connection.
    Stream,
    /// RSS per idle keep-alive connection.
    Memory,
    /// WebSocket echo, 16 connections.
    WebSocket,
    /// Heap allocations per request (counting-allocator builds).
    Allocs,
}

impl Scenario {
    /// Its name in options, results and the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Pipelined => "pipelined",
            Self::Echo => "echo",
            Self::H2c => "h2c",
            Self::Stream => "stream",
            Self::Memory => "memory",
            Self::WebSocket => "websocket",
            Self::Allocs => "allocs",
        }
    }

    /// Measured in the interleaved rounds (allocations are measured once, separately).
    pub fn is_round_scenario(self) -> bool {
        self != Self::Allocs
    }

    /// Load connections.
    pub fn connections(self) -> u32 {
        match self {
            Self::Stream => 1,
            Self::H2c | Self::WebSocket => 16,
            _ => 64,
        }
    }

    /// The wrk invocation of a wrk scenario.
    pub fn wrk(self, repo: &Path) -> Wrk {
        let script = |name: &str| {
            repo.join("bench/scripts")
                .join(name)
                .to_string_lossy()
                .into_owned()
        };
        match self {
            Self::Pipelined => Wrk {
                connections: self.connections(),
                script: Some((script("pipeline.lua"), vec!["16".to_owned()])),
                target: "/".to_owned(),
                latency: false,
            },
            Self::Echo => Wrk {
                connections: self.connections(),
                script: Some((script("echo.lua"), Vec::new())),
                target: "/echo".to_owned(),
                latency: false,
            },
            Self::Stream => Wrk {
                connections: self.connections(),
                script: None,
                target: "/stream?bytes=104857600".to_owned(),
                latency: false,
            },
            _ => Wrk {
                connections: self.connections(),
                script: None,
                target: "/".to_owned(),
                latency: true,
            },
        }
    }
}

/// A counting-allocator build of a server: program, arguments, environment.
pub type Counted = (PathBuf, Vec<String>, Vec<(String, String)>);

/// A server under test.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Short name (results, options).
    pub name: &'static str,
    /// What it is, for the report.
    pub label: &'static str,
    /// Contender (an RGI server) rather than a peer.
    pub contender: bool,
    /// The program.
    pub program: PathBuf,
    /// Its arguments; `{addr}` is replaced by the listening address.
    pub args: Vec<String>,
    /// The counting-allocator build.
    pub counted: Option<Counted>,
    /// The scenarios it takes part in.
    pub scenarios: Vec<Scenario>,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Every server, in round order.
pub fn all(options: &Options) -> Vec<ServerSpec> {
    use Scenario::*;
    let peer = options.bench_bin.join("peer");
    let peer_counted = options.bench_bin.join("peer-counted");
    let rgi_counted = options.bench_bin.join("rgi-counted");
    let rgi_args = strings(&[
        "--bind",
        "{addr}",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warn",
    ]);
    let peer_spec =
        |name: &'static str, label: &'static str, kind: &str, scenarios: Vec<Scenario>| {
            ServerSpec {
                name,
                label,
                contender: false,
                program: peer.clone(),
                args: strings(&[kind, "{addr}"]),
                counted: Some((peer_counted.clone(), strings(&[kind, "{addr}"]), Vec::new())),
                scenarios,
            }
        };
    let http = vec![Plaintext, Pipelined, Echo, Stream, Memory, Allocs];
    let with_h2c = vec![Plaintext, Pipelined, Echo, H2c, Stream, Memory, Allocs];
    vec![
        peer_spec(
            "raw",
            "raw tokio, canned response (ceiling)",
            "raw",
            vec![Plaintext, Pipelined, Memory, Allocs],
        ),
        peer_spec(
            "hyper",
            "hyper http1 `service_fn` (baseline)",
            "hyper",
            http.clone(),
        ),
        peer_spec(
            "hyper-pf",
            "hyper http1 + `pipeline_flush(true)`",
            "hyper-pf",
            http.clone(),
        ),
        peer_spec(
            "hyper-auto",
            "hyper-util auto builder (h1 + h2c)",
            "hyper-auto",
            with_h2c.clone(),
        ),
        peer_spec(
            "axum",
            "`axum::serve`, axum_app's router",
            "axum",
            with_h2c.clone(),
        ),
        ServerSpec {
            name: "actix",
            label: "actix-web, 1 worker",
            contender: false,
            program: options.bench_bin.join("peer-actix"),
            args: strings(&["{addr}"]),
            counted: Some((
                options.bench_bin.join("peer-actix-counted"),
                strings(&["{addr}"]),
                Vec::new(),
            )),
            scenarios: http,
        },
        ServerSpec {
            name: "rgi-hello",
            label: "rgi-server + `hello`",
            contender: true,
            program: options.root_bin.join("hello"),
            args: rgi_args.clone(),
            counted: Some((rgi_counted.clone(), rgi_args.clone(), Vec::new())),
            scenarios: with_h2c.clone(),
        },
        ServerSpec {
            name: "rgi-axum",
            label: "rgi-server + `axum_app` (rgi-tower)",
            contender: true,
            program: options.root_bin.join("axum_app"),
            args: rgi_args.clone(),
            counted: Some((
                rgi_counted,
                rgi_args.clone(),
                vec![("RGI_BENCH_APP".to_owned(), "axum".to_owned())],
            )),
            scenarios: with_h2c,
        },
        ServerSpec {
            name: "rgi-hello-h1",
            label: "rgi-server + `hello`, `--http1-only` (memory only)",
            contender: true,
            program: options.root_bin.join("hello"),
            args: [rgi_args.clone(), strings(&["--http1-only"])].concat(),
            counted: None,
            scenarios: vec![Memory],
        },
        ServerSpec {
            name: "ws-tungstenite",
            label: "tokio-tungstenite echo (baseline)",
            contender: false,
            program: peer,
            args: strings(&["ws", "{addr}"]),
            counted: None,
            scenarios: vec![WebSocket],
        },
        ServerSpec {
            name: "rgi-ws",
            label: "rgi-server + `websocket_echo`",
            contender: true,
            program: options.root_bin.join("websocket_echo"),
            args: rgi_args,
            counted: None,
            scenarios: vec![WebSocket],
        },
    ]
}

/// A server process pinned to core 0, killed on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
    addr: SocketAddr,
    stdin: Option<ChildStdin>,
    reports: Option<Receiver<String>>,
}

impl Running {
    /// Starts `spec` (its counting build if `counted`) on `addr` and waits until it accepts
    /// connections (at most 15 s).
    pub fn start(
        spec: &ServerSpec,
        addr: SocketAddr,
        counted: bool,
        log_dir: &Path,
    ) -> Result<Self, String> {
        let (program, args, env) = match (&spec.counted, counted) {
            (Some((program, args, env)), true) => (program, args, env.clone()),
            _ => (&spec.program, &spec.args, Vec::new()),
        };
        let addr_text = addr.to_string();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{addr}", &addr_text))
            .collect();
        let log_path = log_dir.join(format!(
            "{}{}.log",
            spec.name,
            if counted { "-counted" } else { "" }
        ));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut command = Command::new("taskset");
        command
            .arg("-c")
            .arg("0")
            .arg(program)
            .args(&args)
            .envs(env)
            .stdout(Stdio::null());
        if counted {
            command.stdin(Stdio::piped()).stderr(Stdio::piped());
        } else {
            command.stdin(Stdio::null()).stderr(log);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdin = child.stdin.take();
        let reports = child.stderr.take().map(|stderr| {
            let (sender, receiver) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    if line.starts_with("allocs ") && sender.send(line).is_err() {
                        return;
                    }
                }
            });
            receiver
        });
        let mut running = Self {
            child,
            addr,
            stdin,
            reports,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // One throwaway connection is fine; give the server a moment to settle.
                std::thread::sleep(Duration::from_millis(200));
                return Ok(running);
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                return Err(format!(
                    "{} exited with {status} (log: {})",
                    spec.name,
                    log_path.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {addr} within 15 s",
                    spec.name
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id (the server's: taskset execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counting allocator's totals (allocations, bytes) so far.
    pub fn allocations(&self) -> Result<(u64, u64), String> {
        let (Some(mut stdin), Some(reports)) = (self.stdin.as_ref(), self.reports.as_ref()) else {
            return Err("not a counting build".to_owned());
        };
        stdin
            .write_all(b"?\n")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("allocation query: {e}"))?;
        let line = reports
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "no allocation report within 5 s".to_owned())?;
        let mut fields = line.split_whitespace().skip(1).map(str::parse::<u64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(allocations)), Some(Ok(bytes))) => Ok((allocations, bytes)),
            _ => Err(format!("bad allocation report {line:?}")),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
