//! `--spawn`: start the server under test, run the suite, then check its graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::report::{CaseResult, Outcome, Report};

/// How long the spawned server may take to start listening, and to exit after `SIGTERM`.
const STARTUP: Duration = Duration::from_secs(60);
const EXIT: Duration = Duration::from_secs(60);

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
}

/// The case `--spawn` adds after the others: its name and the requirements it checks.
pub const SHUTDOWN_CASE: (&str, &[&str]) = (
    "spawned: SIGTERM drains in-flight work, refuses new connections, exits 0",
    &["SRV-SHUT-1", "SRV-SHUT-2", "SRV-SHUT-6"],
);

/// A spawned server process; killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Starts `command` (run by `sh -c`, with `{addr}` replaced by a free loopback address) and
/// waits until it accepts connections.
pub async fn spawn(command: &str) -> Result<Spawned, SpawnError> {
    if !command.contains("{addr}") {
        return Err(SpawnError::NoPlaceholder);
    }
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(SpawnError::NoPort)?;
    let line = command.replace("{addr}", &addr.to_string());
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {line}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SpawnError::Start {
            command: line.clone(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + STARTUP;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(Spawned { child, addr });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(SpawnError::NotReady(addr))
}

impl Spawned {
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
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        let Some(pid) = self.child.id() else {
            return Outcome::Failed("the server exited before SIGTERM".into());
        };
        let signalled = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if !signalled.is_ok_and(|s| s.success()) {
            return Outcome::Skipped("cannot send SIGTERM on this platform".into());
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
