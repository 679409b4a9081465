//! Graceful shutdown of the `hello` binary on `SIGTERM` / `SIGINT` (issue 3, "Done when":
//! SIGTERM during a load of long requests: every request that was accepted completes, new
//! connections are refused, exit code 0; and no state in which shutdown waits forever).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{
    HttpConn, IO_BOUND, Termination, TestServer, Transcript, chunk, parse_transcript, payload,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{oneshot, watch};

const UPLOADS: usize = 20;
const SLOW_STREAMS: usize = 4;
const STREAM_BYTES: usize = 4 << 20;
const UPLOAD_CHUNK: usize = 1024;
/// At most this many chunks are sent while waiting for the test's go-ahead (bound: 30 s).
const MAX_WAITING_CHUNKS: usize = 300;
/// Chunks sent after the go-ahead, i.e. after new connections were seen refused.
const CHUNKS_AFTER_GO: usize = 10;
const CHUNK_INTERVAL: Duration = Duration::from_millis(100);
/// Bound for an exchange to finish.
const EXCHANGE_BOUND: Duration = Duration::from_secs(60);

/// Reads a connection to its close, reporting once when a response head has arrived.
async fn read_all(
    mut reader: OwnedReadHalf,
    head_seen: oneshot::Sender<()>,
    bound: Duration,
) -> Transcript {
    let mut head_seen = Some(head_seen);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + bound;
    let termination = loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut chunk)).await {
            Err(_) => break Termination::StillOpen,
            Ok(Ok(0)) => break Termination::Eof,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => break Termination::Reset,
        }
        if head_seen.is_some() && buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if let Some(tx) = head_seen.take() {
                let _ = tx.send(());
            }
        }
    };
    parse_transcript(&buf, termination)
}

/// One slow chunked upload to `/echo`; returns `Err` describing what went wrong.
async fn slow_upload(
    addr: SocketAddr,
    seed: u8,
    accepted: oneshot::Sender<()>,
    go: watch::Receiver<bool>,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (reader, mut writer) = stream.into_split();
    let (head_tx, head_rx) = oneshot::channel();
    let reading = tokio::spawn(read_all(reader, head_tx, EXCHANGE_BOUND));

    let mut sent = Vec::new();
    let head = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-upload\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    writer
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("send head: {e}"))?;
    let next_chunk = |sent: &mut Vec<u8>| {
        let data = payload(
            UPLOAD_CHUNK,
            seed.wrapping_add((sent.len() / UPLOAD_CHUNK) as u8),
        );
        sent.extend_from_slice(&data);
        chunk(&data)
    };
    let first = next_chunk(&mut sent);
    writer
        .write_all(&first)
        .await
        .map_err(|e| format!("send: {e}"))?;
    // The echo's response head proves the request reached the application.
    tokio::time::timeout(IO_BOUND, head_rx)
        .await
        .map_err(|_| "no response head".to_owned())?
        .map_err(|_| "connection ended before the response head".to_owned())?;
    let _ = accepted.send(());

    let mut waiting_chunks = 0;
    while !*go.borrow() && waiting_chunks < MAX_WAITING_CHUNKS {
        tokio::time::sleep(CHUNK_INTERVAL).await;
        let data = next_chunk(&mut sent);
        writer
            .write_all(&data)
            .await
            .map_err(|e| format!("send while draining: {e}"))?;
        waiting_chunks += 1;
    }
    for _ in 0..CHUNKS_AFTER_GO {
        tokio::time::sleep(CHUNK_INTERVAL).await;
        let data = next_chunk(&mut sent);
        writer
            .write_all(&data)
            .await
            .map_err(|e| format!("send after go: {e}"))?;
    }
    writer
        .write_all(b"0\r\n\r\n")
        .await
        .map_err(|e| format!("send last chunk: {e}"))?;

    let transcript = reading.await.map_err(|e| format!("reader: {e}"))?;
    let Some(response) = transcript.responses.first() else {
        return Err(format!("no response: {transcript:?}"));
    };
    if response.status != 200 || !response.complete {
        return Err(format!("response {}", response.summary()));
    }
    if response.body != sent {
        return Err(format!(
            "echoed {} bytes, sent {} (or different bytes)",
            response.body.len(),
            sent.len()
        ));
    }
    if response.header("content-type") != Some("application/x-upload") {
        return Err(format!(
            "content-type not echoed: {:?}",
            response.header("content-type")
        ));
    }
    // SRV-SHUT-2: the connection is closed after its current response during the drain.
    if !transcript.termination.closed() {
        return Err("connection still open after the response during the drain".to_owned());
    }
    Ok(())
}

/// One `/stream` read slowly until the go-ahead, then to the end.
async fn slow_stream(
    addr: SocketAddr,
    accepted: oneshot::Sender<()>,
    go: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut conn = HttpConn::try_connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    conn.send(format!("GET /stream?bytes={STREAM_BYTES} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut accepted = Some(accepted);
    let mut slow_reads = 0;
    while !*go.borrow() && slow_reads < MAX_WAITING_CHUNKS {
        let n = tokio::time::timeout(IO_BOUND, conn.stream.read(&mut chunk))
            .await
            .map_err(|_| "stalled".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed after {} bytes before the go-ahead",
                buf.len()
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if let Some(tx) = accepted.take() {
                let _ = tx.send(());
            }
        }
        slow_reads += 1;
        tokio::time::sleep(CHUNK_INTERVAL).await;
    }
    let termination = support::read_to_close(&mut conn.stream, &mut buf, EXCHANGE_BOUND).await;
    let transcript = parse_transcript(&buf, termination);
    match transcript.responses.first() {
        Some(r) if r.status == 200 && r.complete && r.body.len() == STREAM_BYTES => {
            if r.body.iter().all(|b| *b == b'x') {
                Ok(())
            } else {
                Err("stream body corrupted".to_owned())
            }
        }
        Some(r) => Err(format!("response {}", r.summary())),
        None => Err(format!("no response: {:?}", transcript.termination)),
    }
}

/// How a connection attempt to a shutting-down server ended.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Refused,
    /// Accepted, then closed without a final response.
    ClosedWithoutResponse,
    /// Accepted and served.
    Served(u16),
}

async fn attempt(addr: SocketAddr) -> Attempt {
    let stream = match tokio::time::timeout(IO_BOUND, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) | Err(_) => return Attempt::Refused,
    };
    let mut conn = HttpConn::from_stream(stream);
    if conn
        .send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return Attempt::ClosedWithoutResponse;
    }
    let transcript = conn.read_to_close(IO_BOUND).await;
    match transcript.responses.iter().find(|r| r.status >= 200) {
        Some(r) => Attempt::Served(r.status),
        None => Attempt::ClosedWithoutResponse,
    }
}

/// SRV-SHUT-1, SRV-SHUT-2, SRV-SHUT-6: `SIGTERM` while 20 slow uploads to `/echo` and 4 slowly
/// read 4 MiB `/stream`s are in flight: every accepted exchange completes with its full, correct
/// body (and its connection is closed after it), new connection attempts are refused while the
/// drain runs, and the process exits with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_completes_accepted_requests_refuses_new_ones_and_exits_zero() {
    let mut server = TestServer::hello(&["--graceful-timeout", "120"]);
    let addr = server.addr();
    let (go_tx, go_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut accepted = Vec::new();
    for i in 0..UPLOADS {
        let (tx, rx) = oneshot::channel();
        accepted.push(rx);
        let go = go_rx.clone();
        tasks.spawn(async move {
            (
                format!("upload {i}"),
                slow_upload(addr, i as u8, tx, go).await,
            )
        });
    }
    for i in 0..SLOW_STREAMS {
        let (tx, rx) = oneshot::channel();
        accepted.push(rx);
        let go = go_rx.clone();
        tasks.spawn(async move { (format!("stream {i}"), slow_stream(addr, tx, go).await) });
    }
    for (i, rx) in accepted.into_iter().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(30), rx).await;
        assert!(
            matches!(got, Ok(Ok(()))),
            "exchange {i} was not accepted before the signal\n{}",
            server.logs()
        );
    }

    server.signal("TERM");

    // SRV-SHUT-1: new connections are refused while the accepted exchanges still run.
    let mut refused = false;
    let mut served_before_refusal = Vec::new();
    for _ in 0..200 {
        match attempt(addr).await {
            Attempt::Refused => {
                refused = true;
                break;
            }
            // Accepted before the signal was handled: allowed, try again.
            other => served_before_refusal.push(other),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "new connections were still accepted after SIGTERM: {served_before_refusal:?}\n{}",
        server.logs()
    );
    assert!(
        server.try_exit_status().is_none(),
        "the server exited before its in-flight exchanges finished\n{}",
        server.logs()
    );
    for _ in 0..5 {
        let later = attempt(addr).await;
        assert!(
            !matches!(later, Attempt::Served(_)),
            "a connection made after the listener closed was served: {later:?}"
        );
    }

    // Let the exchanges finish.
    go_tx.send(true).expect("tasks are listening");
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (name, result) = joined.expect("exchange task");
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "accepted exchanges did not complete during the drain:\n{}\n{}",
        failures.join("\n"),
        server.logs()
    );

    let status = server.wait_exit_async(support::EXIT_BOUND).await;
    assert!(
        matches!(status, Some(s) if s.code() == Some(0)),
        "expected exit status 0 after the drain, got {status:?}\n{}",
        server.logs()
    );
    server.assert_no_panic();
}

/// SRV-SHUT-2, SRV-SHUT-4, SRV-SHUT-6: an idle keep-alive connection does not hold the
/// shutdown: the server closes it and exits with status 0 (graceful timeout 2 s, bound 30 s).
#[tokio::test]
async fn idle_keep_alive_connection_does_not_block_exit() {
    let mut server = TestServer::hello(&["--graceful-timeout", "2"]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(&support::get("/")).await.expect("send");
    let response = conn.read_response(IO_BOUND).await.expect("response");
    assert_eq!(response.status, 200);
    assert!(
        !response.closes(),
        "the connection must stay open (keep-alive)"
    );

    server.signal("TERM");
    let transcript = conn.read_to_close(support::EXIT_BOUND).await;
    assert!(
        transcript.termination.closed(),
        "the idle connection was not closed during the drain\n{}",
        server.logs()
    );
    assert!(
        transcript.responses.is_empty(),
        "unexpected bytes on the idle connection"
    );
    let status = server.wait_exit_async(support::EXIT_BOUND).await;
    assert!(
        matches!(status, Some(s) if s.code() == Some(0)),
        "expected exit status 0, got {status:?}\n{}",
        server.logs()
    );
}

/// SRV-SHUT-4, SRV-SHUT-6: a half-sent request head does not hold the shutdown (`SIGINT`,
/// graceful timeout 2 s, bound 30 s); the connection is closed and the exit status is 0.
#[tokio::test]
async fn half_sent_request_does_not_block_exit() {
    let mut server = TestServer::hello(&["--graceful-timeout", "2"]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Partial: ")
        .await
        .expect("send");

    server.signal("INT");
    let status = server.wait_exit_async(support::EXIT_BOUND).await;
    assert!(
        matches!(status, Some(s) if s.code() == Some(0)),
        "expected exit within {:?} with status 0, got {status:?}\n{}",
        support::EXIT_BOUND,
        server.logs()
    );
    let transcript = conn.read_to_close(IO_BOUND).await;
    assert!(
        transcript.termination.closed(),
        "the half-sent request's connection is still open"
    );
    assert!(
        !transcript
            .responses
            .iter()
            .any(|r| (200..300).contains(&r.status)),
        "the unfinished request was answered 2xx"
    );
}

/// Starts a 1 GiB `/stream` and stops reading it after the head.
async fn stalled_stream(server: &TestServer) -> HttpConn {
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(b"GET /stream?bytes=1073741824 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .expect("send");
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(IO_BOUND, conn.stream.read(&mut buf))
        .await
        .expect("stream data")
        .expect("read");
    assert!(n > 0, "the stream ended at once");
    conn
}

/// Reads what is left of a stalled 1 GiB stream; returns (bytes, termination).
async fn drain_stalled(conn: &mut HttpConn) -> (u64, Termination) {
    let mut total = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, conn.stream.read(&mut buf)).await {
            Err(_) => return (total, Termination::StillOpen),
            Ok(Ok(0)) => return (total, Termination::Eof),
            Ok(Ok(n)) => total += n as u64,
            Ok(Err(_)) => return (total, Termination::Reset),
        }
    }
}

/// SRV-SHUT-3, SRV-SHUT-4, SRV-SHUT-6, HTTP-FRAME-9: an exchange that outlives the graceful
/// timeout (a 1 GiB `/stream` whose client stopped reading) is aborted at the deadline — the
/// client never sees it complete — and the process still exits with status 0.
#[tokio::test]
async fn exchange_past_the_deadline_is_aborted_and_exit_is_zero() {
    let mut server = TestServer::hello(&["--graceful-timeout", "2"]);
    let mut conn = stalled_stream(&server).await;
    server.signal("TERM");
    let status = server.wait_exit_async(support::EXIT_BOUND).await;
    assert!(
        matches!(status, Some(s) if s.code() == Some(0)),
        "expected exit within {:?} with status 0, got {status:?}\n{}",
        support::EXIT_BOUND,
        server.logs()
    );
    let (received, termination) = drain_stalled(&mut conn).await;
    assert!(
        termination.closed(),
        "the stalled exchange's connection is still open"
    );
    assert!(
        received < 1 << 30,
        "the 1 GiB stream cannot have completed; got {received} bytes"
    );
}

/// SRV-SHUT-5: a second signal ends the drain at once, long before the 120 s graceful timeout
/// (bound 30 s), even with a stalled exchange in flight.
#[tokio::test]
async fn second_signal_forces_exit() {
    let mut server = TestServer::hello(&["--graceful-timeout", "120"]);
    let mut conn = stalled_stream(&server).await;
    server.signal("TERM");
    // The first signal must be handled (listener closed) before the second one is sent.
    let mut refused = false;
    for _ in 0..200 {
        if attempt(server.addr()).await == Attempt::Refused {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "the listener was not closed after SIGTERM\n{}",
        server.logs()
    );
    server.signal("TERM");
    let status = server.wait_exit_async(support::EXIT_BOUND).await;
    assert!(
        status.is_some(),
        "a second signal did not end the drain within {:?}\n{}",
        support::EXIT_BOUND,
        server.logs()
    );
    println!("exit status after a forced shutdown: {status:?}");
    let (_, termination) = drain_stalled(&mut conn).await;
    assert!(
        termination.closed(),
        "the stalled exchange's connection is still open"
    );
}
