//! Backpressure, checked by memory (issue 3, "Done when": server RSS stays below 100 MiB while
//! a client that has stopped reading holds a 1 GiB `/stream` open).
//!
//! The checks sample the server's resident set size (`VmRSS` in `/proc/PID/status`) while the
//! exchange is stalled. A server that buffered instead of waiting for the socket would produce
//! the 1 GiB at memory speed and cross the threshold within the sampling window; the test never
//! asserts how fast anything happens, only how much memory the server holds.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use support::{HttpConn, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// The bound on the server's resident memory.
const RSS_LIMIT_KIB: u64 = 100 * 1024;
const SAMPLES: usize = 12;
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Samples the server's RSS [`SAMPLES`] times and returns the samples in KiB.
async fn sample_rss(server: &TestServer) -> Vec<u64> {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let rss = server
            .rss_kib()
            .unwrap_or_else(|| panic!("cannot read the server's VmRSS\n{}", server.logs()));
        samples.push(rss);
        tokio::time::sleep(SAMPLE_INTERVAL).await;
    }
    samples
}

fn assert_below_limit(what: &str, samples: &[u64], server: &TestServer) {
    let max = samples.iter().copied().max().unwrap_or(0);
    println!("{what}: server RSS samples (KiB): {samples:?}; max {max} KiB");
    assert!(
        max < RSS_LIMIT_KIB,
        "{what}: server RSS reached {max} KiB, limit {RSS_LIMIT_KIB} KiB (HTTP-FRAME-11): {samples:?}\n{}",
        server.logs()
    );
}

/// HTTP-FRAME-11: a client that stops reading a 1 GiB `/stream` does not make the server's
/// memory grow — it stays below 100 MiB — and the stream resumes when the client reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_of_one_gib_stream_keeps_server_rss_below_100_mib() {
    let server = TestServer::hello(&[]);
    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(format!("GET /stream?bytes={GIB} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .await
        .expect("send");

    // Read a little (1 MiB), then stop reading.
    let mut received = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    while received < MIB {
        match tokio::time::timeout(support::IO_BOUND, conn.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                panic!("the stream ended after {received} bytes\n{}", server.logs())
            }
            Ok(Ok(n)) => received += n as u64,
            Err(_) => panic!(
                "no stream data within {:?}\n{}",
                support::IO_BOUND,
                server.logs()
            ),
        }
    }

    let samples = sample_rss(&server).await;
    assert_below_limit("stalled 1 GiB /stream", &samples, &server);

    // The exchange is alive, not dropped: reading again makes data flow again.
    let resumed_target = received + 8 * MIB;
    while received < resumed_target {
        match tokio::time::timeout(support::IO_BOUND, conn.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                panic!("the stream ended after {received} bytes\n{}", server.logs())
            }
            Ok(Ok(n)) => received += n as u64,
            Err(_) => panic!(
                "the stream did not resume within {:?}\n{}",
                support::IO_BOUND,
                server.logs()
            ),
        }
    }
    assert!(
        received < GIB,
        "the 1 GiB cannot have been sent while the client was not reading"
    );
    server.assert_no_panic();
}

/// HTTP-BODY-2, HTTP-FRAME-11: a client that uploads a 1 GiB body to `POST /echo` as fast as
/// it can while never reading the echo makes the server apply backpressure in both directions
/// (stop reading the upload when it cannot write the echo) instead of buffering: the server's
/// RSS stays below 100 MiB and the upload stalls far below 1 GiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploader_that_never_reads_the_echo_keeps_server_rss_below_100_mib() {
    // `--max-body-bytes 0`: no default limit, so the upload is not cut short by a 413.
    let server = TestServer::hello(&["--max-body-bytes", "0"]);
    let stream = support::connect(server.addr()).await;
    let (_reader, mut writer) = stream.into_split();
    writer
        .write_all(
            format!(
                "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {GIB}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("send head");

    let sent = Arc::new(AtomicU64::new(0));
    let sent_by_writer = Arc::clone(&sent);
    let uploader = tokio::spawn(async move {
        let block = vec![b'u'; 256 * 1024];
        while sent_by_writer.load(Ordering::Relaxed) < GIB {
            if writer.write_all(&block).await.is_err() {
                return;
            }
            sent_by_writer.fetch_add(block.len() as u64, Ordering::Relaxed);
        }
    });

    // Wait until the upload flows (bounded), then sample while the buffers fill and stall.
    for _ in 0..150 {
        if sent.load(Ordering::Relaxed) >= MIB {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sent.load(Ordering::Relaxed) >= MIB,
        "the upload did not start\n{}",
        server.logs()
    );
    let samples = sample_rss(&server).await;
    let uploaded = sent.load(Ordering::Relaxed);
    uploader.abort();
    println!("uploaded {} MiB before stalling", uploaded / MIB);
    assert_below_limit("upload to /echo without reading", &samples, &server);
    assert!(
        uploaded < GIB,
        "the whole 1 GiB upload was accepted although nobody read the echo: the server buffered it"
    );
    server.assert_no_panic();
}
