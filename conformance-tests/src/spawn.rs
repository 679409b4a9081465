//! `--spawn`: start the server under test, run the suite, check its graceful shutdown, then run
//! the *spawned cases*: each starts its own instance of the server with case-specific settings
//! (small limits, short timeouts, a failing startup, a mount prefix) to check duties that need
//! configuration or process control.
//!
//! # The command template
//!
//! `--spawn 'CMD'` is run by `sh -c`; `{addr}` is replaced by a free loopback address
//! (`127.0.0.1:PORT`) the server must listen on. The server must host the probe application
//! with its lifespan, [`ProbeLifespan::from_env`](crate::probe::ProbeLifespan::from_env)
//! (rgi-examples' `conformance_probe` binary does), and write its logs to stderr.
//!
//! # Settings passed as environment variables
//!
//! Each spawned case sets some of these variables for its instance; a launcher for another
//! server maps them to that server's own settings (rgi-server reads them as they are):
//!
//! | Variable | Meaning |
//! |---|---|
//! | `RGI_MAX_BODY_BYTES` | default request body limit in bytes (`413` beyond) |
//! | `RGI_MAX_HEADER_BYTES` | largest request head in bytes (`431` beyond) |
//! | `RGI_MAX_HEADERS` | most request header fields (`431` beyond) |
//! | `RGI_MAX_URI_LENGTH` | longest request target in bytes (`414` beyond) |
//! | `RGI_MAX_CONNECTIONS` | most connections served at once |
//! | `RGI_HEADER_READ_TIMEOUT` | seconds a client may take to send a request head |
//! | `RGI_KEEP_ALIVE_TIMEOUT` | seconds an idle connection is kept open |
//! | `RGI_BODY_READ_TIMEOUT` | seconds the application may wait for request body bytes that do not come |
//! | `RGI_WRITE_TIMEOUT` | seconds a write to a client may make no progress (HTTP/2: a stream may wait for window) |
//! | `RGI_MIN_BODY_RATE` | slowest average rate of a request body of declared length, bytes per second |
//! | `RGI_MIN_BODY_RATE_GRACE` | seconds of waiting for a request body before the minimum rate applies |
//! | `RGI_ACCESS_LOG` | `true`: one access-log line per exchange, on stderr |
//! | `RGI_NO_ACCESS_LOG` | `true`: no access-log lines |
//! | `RGI_GRACEFUL_TIMEOUT` | seconds in-flight exchanges may run after `SIGTERM` |
//! | `RGI_ROOT_PATH` | the mount prefix (capability `mount-prefix`) |
//! | `RGI_PROXY_HEADERS` | `true`: honour forwarded headers from trusted peers (capability `proxy-headers`) |
//! | `RGI_FORWARDED_ALLOW_IPS` | the trusted peers (comma-separated IPs) |
//! | `RGI_WORKERS` | runtime worker threads |
//! | `RGI_HEALTH_PATH` | a path the server answers itself, `200` serving / `503` draining (feature `health-path`) |
//! | `RGI_SHUTDOWN_DELAY` | seconds between the first `SIGTERM` and the drain, unready but serving (feature `shutdown-delay`) |
//! | `RGI_REQUEST_ID` | `true`: request IDs on (feature `request-id`) |
//! | `RGI_REUSE_PORT` | `true`: `SO_REUSEPORT` on the listener (feature `reuse-port`) |
//! | `RGI_PROBE_*` | read by the probe's lifespan itself ([`ProbeLifespan`](crate::probe::ProbeLifespan)) |
//!
//! A server that has no such setting cannot pass the case that needs it; the report says which.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rgi::Capability;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::report::{CaseResult, Outcome, Report};
use crate::server::{Manifest, Target};

/// How long the spawned server may take to start listening, and to exit after `SIGTERM`.
const STARTUP: Duration = Duration::from_secs(60);
const EXIT: Duration = Duration::from_secs(60);

/// How much of a spawned server's stderr is kept (the first bytes).
const STDERR_KEPT: usize = 4 << 20;

/// A failure to run the server under test.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The command has no `{addr}` placeholder.
    #[error(
        "the command must contain `{{addr}}`, which the suite replaces with the address to bind"
    )]
    NoPlaceholder,
    /// No free port could be found.
    #[error("no free port on 127.0.0.1: {0}")]
    NoPort(std::io::Error),
    /// The command could not be started.
    #[error("cannot start `{command}`: {source}")]
    Start {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server did not accept connections in time.
    #[error("the server did not accept connections on {0} within {STARTUP:?}")]
    NotReady(SocketAddr),
    /// The server exited before it accepted connections.
    #[error("the server exited with {status} before accepting connections; stderr: {stderr}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its stderr.
        stderr: String,
    },
}

/// The case `--spawn` adds after the others: its name and the requirements it checks.
pub const SHUTDOWN_CASE: (&str, &[&str]) = (
    "spawned: SIGTERM drains in-flight work, refuses new connections, exits 0",
    &["SRV-SHUT-1", "SRV-SHUT-2", "SRV-SHUT-6"],
);

/// Starts instances of the server under test from a command template.
#[derive(Debug, Clone)]
pub struct Launcher {
    template: String,
}

impl Launcher {
    /// A launcher for `template`, which must contain `{addr}`.
    pub fn new(template: impl Into<String>) -> Result<Self, SpawnError> {
        let template = template.into();
        if !template.contains("{addr}") {
            return Err(SpawnError::NoPlaceholder);
        }
        Ok(Self { template })
    }

    /// Starts an instance with the extra environment `env` and waits until it accepts
    /// connections.
    pub async fn start(&self, env: &[(&str, &str)]) -> Result<Spawned, SpawnError> {
        let mut spawned = self.launch(env)?;
        spawned.wait_ready().await?;
        Ok(spawned)
    }

    /// Starts an instance with the extra environment `env`, without waiting for it.
    pub fn launch(&self, env: &[(&str, &str)]) -> Result<Spawned, SpawnError> {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(SpawnError::NoPort)?;
        self.launch_at(addr, env)
    }

    /// Starts an instance on `addr` with the extra environment `env`, without waiting for it
    /// (several instances on one address: port sharing, `SRV-OPS-7`).
    pub fn launch_at(&self, addr: SocketAddr, env: &[(&str, &str)]) -> Result<Spawned, SpawnError> {
        self.launch_line(
            addr,
            &self.template.replace("{addr}", &addr.to_string()),
            env,
        )
    }

    /// Starts `prefix` followed by the instance's command line on `addr` (a wrapper such as
    /// `systemd-socket-activate -l ADDR`), without waiting for it.
    pub fn launch_wrapped(
        &self,
        prefix: &str,
        addr: SocketAddr,
        env: &[(&str, &str)],
    ) -> Result<Spawned, SpawnError> {
        let line = format!(
            "{prefix} sh -c {}",
            shell_quote(&format!(
                "exec {}",
                self.template.replace("{addr}", &addr.to_string())
            ))
        );
        self.launch_line(addr, &line, env)
    }

    fn launch_line(
        &self,
        addr: SocketAddr,
        line: &str,
        env: &[(&str, &str)],
    ) -> Result<Spawned, SpawnError> {
        let line = line.to_owned();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("exec {line}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().map_err(|source| SpawnError::Start {
            command: line.clone(),
            source,
        })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut kept = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    let room = STDERR_KEPT.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&chunk[..room]);
                }
            });
        }
        Ok(Spawned {
            child,
            addr,
            stderr,
        })
    }
}

/// `text` as one single-quoted `sh` word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A spawned server process; killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Starts `command` (run by `sh -c`, with `{addr}` replaced by a free loopback address) and
/// waits until it accepts connections.
pub async fn spawn(command: &str) -> Result<Spawned, SpawnError> {
    Launcher::new(command)?.start(&[]).await
}

impl Spawned {
    /// Waits until the server accepts connections; fails if it exits first.
    pub async fn wait_ready(&mut self) -> Result<(), SpawnError> {
        let deadline = tokio::time::Instant::now() + STARTUP;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the stderr reader a moment to collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(SpawnError::Exited {
                    status,
                    stderr: tail(&self.stderr()),
                });
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(SpawnError::NotReady(self.addr))
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&kept).into_owned()
    }

    /// The target to run server-mode cases against this instance.
    pub fn target(&self, manifest: Arc<Manifest>) -> Target {
        Target {
            addr: self.addr,
            manifest,
        }
    }

    /// Sends `SIGTERM`.
    pub async fn terminate(&mut self) -> Result<(), String> {
        let Some(pid) = self.child.id() else {
            return Err("the server exited before SIGTERM".into());
        };
        let signalled = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        match signalled {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("kill -TERM failed: {status}")),
            Err(e) => Err(format!("cannot run kill: {e}")),
        }
    }

    /// Waits up to `limit` for the process to exit; `None` if it did not (it is then killed
    /// when dropped).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()?
            .ok()?;
        // Let the stderr reader drain what the process wrote last.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some(status)
    }

    /// Sends `SIGTERM` while an exchange is in flight, and records the shutdown cases:
    /// the in-flight exchange completes, new connections are refused, the exit status is 0.
    pub async fn check_shutdown(mut self, report: &mut Report) {
        let outcome = self.shutdown_outcome().await;
        report.push(CaseResult {
            name: SHUTDOWN_CASE.0,
            ids: SHUTDOWN_CASE.1,
            outcome,
        });
    }

    async fn shutdown_outcome(&mut self) -> Outcome {
        use tokio::io::AsyncWriteExt;
        // An exchange in flight: a request whose body the client has not finished sending.
        let mut inflight = match tokio::net::TcpStream::connect(self.addr).await {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(format!("cannot connect: {e}")),
        };
        let head = b"POST /body-report HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\nhello";
        if let Err(e) = inflight.write_all(head).await {
            return Outcome::Failed(format!("cannot send: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if self.child.id().is_none() {
            return Outcome::Failed("the server exited before SIGTERM".into());
        }
        if let Err(why) = self.terminate().await {
            return Outcome::Skipped(format!("cannot send SIGTERM on this platform: {why}"));
        }
        // New connections must be refused once the listener is closed.
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Err(e) = inflight.write_all(b"world").await {
            return Outcome::Failed(format!("the in-flight request was cut off: {e}"));
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(EXIT, inflight.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        if read.is_err() || !text.starts_with("HTTP/1.1 200") || !text.contains("bytes: 10") {
            return Outcome::Failed(format!("the in-flight request did not complete: {text:?}"));
        }
        if !refused {
            return Outcome::Failed("new connections were still accepted after SIGTERM".into());
        }
        match tokio::time::timeout(EXIT, self.child.wait()).await {
            Err(_) => Outcome::Failed(format!("the server did not exit within {EXIT:?}")),
            Ok(Err(e)) => Outcome::Failed(format!("cannot wait for the server: {e}")),
            Ok(Ok(status)) if status.success() => Outcome::Passed,
            Ok(Ok(status)) => Outcome::Failed(format!("the server exited with {status}")),
        }
    }
}

/// The last lines of a log, for failure messages.
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

type SpawnedFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What a spawned case receives: a launcher for the server under test and its manifest.
#[derive(Debug, Clone)]
pub struct Lab {
    /// Starts instances of the server under test.
    pub launcher: Arc<Launcher>,
    /// What the server claims.
    pub manifest: Arc<Manifest>,
}

/// Starts an instance of the server under test with the extra environment `env`, and the
/// target to run server-mode cases against it.
pub(crate) async fn start(
    lab: &Lab,
    env: &[(&str, &str)],
) -> Result<(Spawned, crate::server::Target), String> {
    let spawned = lab.launcher.start(env).await.map_err(|e| e.to_string())?;
    let target = spawned.target(lab.manifest.clone());
    Ok((spawned, target))
}

/// One spawned case: it starts its own instances of the server with the settings it needs.
#[derive(Clone, Copy)]
pub struct SpawnedCase {
    /// The case's name.
    pub name: &'static str,
    /// The requirement IDs it checks.
    pub ids: &'static [&'static str],
    /// The capability it needs, if any.
    pub needs: Option<Capability>,
    /// The operational features it needs (all of them), claimed in the manifest.
    pub needs_ops: &'static [crate::ops::Ops],
    run: fn(Lab) -> SpawnedFuture,
}

impl std::fmt::Debug for SpawnedCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnedCase")
            .field("name", &self.name)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl SpawnedCase {
    pub(crate) const fn new(
        name: &'static str,
        ids: &'static [&'static str],
        needs: Option<Capability>,
        run: fn(Lab) -> SpawnedFuture,
    ) -> Self {
        Self {
            name,
            ids,
            needs,
            needs_ops: &[],
            run,
        }
    }

    /// The same case, run only when the manifest claims every one of `ops`.
    pub(crate) const fn with_ops(mut self, ops: &'static [crate::ops::Ops]) -> Self {
        self.needs_ops = ops;
        self
    }
}

/// Defines a [`SpawnedCase`] from an `async fn(Lab) -> Result<(), String>`.
macro_rules! spawned_case {
    ($name:literal, [$($id:literal),+ $(,)?], $needs:expr, $run:path) => {
        $crate::spawn::SpawnedCase::new($name, &[$($id),+], $needs, |lab| Box::pin($run(lab)))
    };
}
pub(crate) use spawned_case;

/// Every spawned case, in the order they run.
pub fn cases() -> Vec<SpawnedCase> {
    let mut cases = crate::server::lifecycle::cases();
    cases.extend(crate::server::limits::cases());
    cases.extend(crate::server::ops::cases());
    cases
}

/// The names and requirement IDs of every `--spawn` case (the shutdown case included), for
/// `rgi-conformance requirements`.
pub fn case_ids() -> Vec<(&'static str, &'static [&'static str])> {
    let mut ids = vec![SHUTDOWN_CASE];
    ids.extend(cases().iter().map(|c| (c.name, c.ids)));
    ids
}

/// Runs every spawned case with instances started by `launcher`, adding the results to
/// `report`.
pub async fn run_cases(launcher: Arc<Launcher>, manifest: Arc<Manifest>, report: &mut Report) {
    for case in cases() {
        let missing_ops = case
            .needs_ops
            .iter()
            .find(|ops| !manifest.ops.contains(ops));
        let outcome = match (case.needs, missing_ops) {
            (Some(capability), _) if !manifest.capabilities.contains(capability) => {
                Outcome::Skipped(format!("capability `{capability}` not claimed"))
            }
            (_, Some(ops)) => Outcome::Skipped(format!("feature `{}` not claimed", ops.name())),
            _ => {
                let lab = Lab {
                    launcher: launcher.clone(),
                    manifest: manifest.clone(),
                };
                match tokio::spawn((case.run)(lab)).await {
                    Ok(Ok(())) => Outcome::Passed,
                    Ok(Err(why)) => Outcome::Failed(why),
                    Err(join) => Outcome::Failed(format!("the case itself failed: {join}")),
                }
            }
        };
        report.push(CaseResult {
            name: case.name,
            ids: case.ids,
            outcome,
        });
    }
}
