//! Load generators: `wrk` and `h2load` (run as child processes, inheriting the harness's
//! core-1 affinity), and the harness's own WebSocket and idle-connection clients.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A load run that failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The load generator could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The program.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Its output had no result line.
    #[error("{tool} printed no result: {output}")]
    Parse {
        /// The program.
        tool: &'static str,
        /// What it printed.
        output: String,
    },
    /// A client connection failed.
    #[error("client: {0}")]
    Client(String),
}

/// What one `wrk` or `h2load` run reports.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Completed requests (or WebSocket messages echoed).
    pub requests: u64,
    /// The generator's own duration, seconds.
    pub seconds: f64,
    /// Response bytes read (headers included for wrk).
    pub bytes: f64,
    /// Median latency, milliseconds (wrk `--latency`).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
    /// Socket errors plus non-2xx/3xx responses plus failed requests.
    pub errors: u64,
}

/// The wrk invocation of a scenario.
#[derive(Debug, Clone)]
pub struct Wrk {
    /// Connections.
    pub connections: u32,
    /// Lua script and its arguments, if any.
    pub script: Option<(String, Vec<String>)>,
    /// Path and query.
    pub target: String,
    /// Ask for the latency distribution.
    pub latency: bool,
}

impl Wrk {
    /// Runs wrk for `seconds` against `addr`.
    pub fn run(&self, addr: SocketAddr, seconds: u32) -> Result<LoadResult, LoadError> {
        let mut command = Command::new("wrk");
        command
            .arg("-t1")
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{seconds}s"))
            .arg("--timeout")
            .arg("5s");
        if self.latency {
            command.arg("--latency");
        }
        if let Some((script, _)) = &self.script {
            command.arg("-s").arg(script);
        }
        command.arg(format!("http://{addr}{}", self.target));
        if let Some((_, args)) = &self.script {
            command.arg("--").args(args);
        }
        let output = command.output().map_err(|source| LoadError::Spawn {
            tool: "wrk",
            source,
        })?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        parse_wrk(&text).ok_or(LoadError::Parse {
            tool: "wrk",
            output: format!("{text}{}", String::from_utf8_lossy(&output.stderr)),
        })
    }
}

/// Parses wrk's report.
pub fn parse_wrk(text: &str) -> Option<LoadResult> {
    let mut result = LoadResult::default();
    let mut found = false;
    for line in text.lines().map(str::trim) {
        if let Some((count, rest)) = line.split_once(" requests in ") {
            // "654321 requests in 5.00s, 80.00MB read"
            result.requests = count.trim().parse().ok()?;
            let (duration, read) = rest.split_once(", ")?;
            result.seconds = parse_duration_seconds(duration)?;
            result.bytes = parse_size(read.trim_end_matches(" read"))?;
            found = true;
        } else if let Some(value) = line.strip_prefix("50%") {
            result.p50_ms = parse_duration_seconds(value.trim()).map(|s| s * 1e3);
        } else if let Some(value) = line.strip_prefix("99%") {
            result.p99_ms = parse_duration_seconds(value.trim()).map(|s| s * 1e3);
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            result.errors += errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.errors += count.trim().parse::<u64>().unwrap_or(0);
        }
    }
    found.then_some(result)
}

/// "401.00us", "1.20ms", "5.00s", "1.00m" → seconds.
fn parse_duration_seconds(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(value * scale)
}

/// "80.00MB" (binary units, as wrk prints them) → bytes.
fn parse_size(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let scale = match unit {
        "" | "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(value * scale)
}

/// h2c (prior knowledge) load: `connections` × `streams` concurrent streams of `GET /`.
pub fn h2load(
    addr: SocketAddr,
    seconds: u32,
    connections: u32,
    streams: u32,
) -> Result<LoadResult, LoadError> {
    let output = Command::new("h2load")
        .arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-m{streams}"))
        .arg(format!("-D{seconds}"))
        .arg(format!("http://{addr}/"))
        .output()
        .map_err(|source| LoadError::Spawn {
            tool: "h2load",
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    parse_h2load(&text).ok_or(LoadError::Parse {
        tool: "h2load",
        output: format!("{text}{}", String::from_utf8_lossy(&output.stderr)),
    })
}

/// Parses h2load's report.
pub fn parse_h2load(text: &str) -> Option<LoadResult> {
    let mut result = LoadResult::default();
    let mut finished = false;
    let mut counted = false;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            // "finished in 5.00s, 123456.78 req/s, 4.00MB/s"
            result.seconds = parse_duration_seconds(rest.split(',').next()?.trim())?;
            finished = true;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            for part in rest.split(',') {
                let mut words = part.split_whitespace();
                let (Some(count), Some(name)) = (words.next(), words.next()) else {
                    continue;
                };
                let count: u64 = count.parse().ok()?;
                match name {
                    "succeeded" => result.requests = count,
                    "failed" | "errored" | "timeout" => result.errors += count,
                    _ => {}
                }
            }
            counted = true;
        } else if let Some(rest) = line.strip_prefix("traffic: ") {
            // "traffic: 4.00MB (4194304) total, ..."
            result.bytes = rest
                .split_once('(')
                .and_then(|(_, tail)| tail.split_once(')'))
                .and_then(|(bytes, _)| bytes.parse().ok())
                .unwrap_or(0.0);
        }
    }
    (finished && counted).then_some(result)
}

/// WebSocket echo load: `connections` clients, each sending a 32-byte text message and waiting
/// for its echo, for `seconds`.
pub fn websocket(
    addr: SocketAddr,
    seconds: u32,
    connections: u32,
) -> Result<LoadResult, LoadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| LoadError::Client(error.to_string()))?;
    runtime.block_on(async move {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(seconds));
        let mut clients = Vec::new();
        for _ in 0..connections {
            clients.push(tokio::spawn(websocket_client(addr, deadline)));
        }
        let mut result = LoadResult::default();
        for client in clients {
            match client.await {
                Ok(Ok(messages)) => result.requests += messages,
                Ok(Err(error)) => return Err(LoadError::Client(error)),
                Err(error) => return Err(LoadError::Client(error.to_string())),
            }
        }
        result.seconds = started.elapsed().as_secs_f64();
        Ok(result)
    })
}

async fn websocket_client(addr: SocketAddr, deadline: tokio::time::Instant) -> Result<u64, String> {
    let url = format!("ws://{addr}/ws");
    let connect = tokio_tungstenite::connect_async(url.as_str());
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| "WebSocket handshake timed out".to_owned())?
        .map_err(|error| error.to_string())?;
    let payload = "0123456789abcdef0123456789abcdef";
    let mut messages = 0u64;
    while tokio::time::Instant::now() < deadline {
        socket
            .send(Message::text(payload))
            .await
            .map_err(|error| error.to_string())?;
        let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .map_err(|_| "no echo within 10 s".to_owned())?;
        match reply {
            Some(Ok(Message::Text(text))) if text.as_str() == payload => messages += 1,
            other => return Err(format!("unexpected reply {other:?}")),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    Ok(messages)
}

/// Opens `count` keep-alive connections, each after one `GET /` answered, and holds them
/// open while `measure` runs; returns how many were opened and `measure`'s result.
pub fn hold_idle_connections<T>(
    addr: SocketAddr,
    count: usize,
    measure: impl FnOnce() -> T,
) -> Result<(usize, T), LoadError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| LoadError::Client(error.to_string()))?;
    let connections = runtime.block_on(async move {
        let mut open = Vec::with_capacity(count);
        let batch = 100;
        let mut remaining = count;
        while remaining > 0 {
            let n = remaining.min(batch);
            let mut pending = Vec::with_capacity(n);
            for _ in 0..n {
                pending.push(tokio::spawn(idle_connection(addr)));
            }
            for connection in pending {
                match connection.await {
                    Ok(Ok(stream)) => open.push(stream),
                    Ok(Err(error)) => return Err(LoadError::Client(error)),
                    Err(error) => return Err(LoadError::Client(error.to_string())),
                }
            }
            remaining -= n;
        }
        Ok(open)
    })?;
    // Let the server settle (buffers of the one request released, timers armed).
    std::thread::sleep(Duration::from_millis(1000));
    let measured = measure();
    let opened = connections.len();
    drop(connections);
    Ok((opened, measured))
}

async fn idle_connection(addr: SocketAddr) -> Result<TcpStream, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut response = Vec::with_capacity(512);
        let mut buffer = [0u8; 512];
        while !response.windows(13).any(|w| w == b"Hello, World!") {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed before the response"));
            }
            response.extend_from_slice(&buffer[..n]);
        }
        Ok::<_, std::io::Error>(stream)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "idle connection setup timed out".to_owned())?
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk() {
        let text = "Running 5s test @ http://127.0.0.1:8000/\n  1 threads and 64 connections\n  Latency Distribution\n     50%  401.00us\n     75%  500.00us\n     90%  700.00us\n     99%    1.20ms\n  654321 requests in 5.00s, 80.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\nRequests/sec: 130864.20\n";
        let result = parse_wrk(text).unwrap();
        assert_eq!(result.requests, 654_321);
        assert!((result.seconds - 5.0).abs() < 1e-9);
        assert!((result.bytes - 80.0 * 1024.0 * 1024.0).abs() < 1.0);
        assert!((result.p50_ms.unwrap() - 0.401).abs() < 1e-9);
        assert!((result.p99_ms.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(result.errors, 3);
        assert!(parse_wrk("nothing").is_none());
    }

    #[test]
    fn parses_h2load() {
        let text = "finished in 5.00s, 123456.78 req/s, 4.00MB/s\nrequests: 617283 total, 617347 started, 617283 done, 617280 succeeded, 3 failed, 0 errored, 0 timeout\ntraffic: 4.00MB (4194304) total, 1.00MB (1048576) headers\n";
        let result = parse_h2load(text).unwrap();
        assert_eq!(result.requests, 617_280);
        assert_eq!(result.errors, 3);
        assert!((result.bytes - 4_194_304.0).abs() < 1.0);
        assert!(parse_h2load("finished in 5.00s").is_none());
    }
}
