//! A rolling restart behind nginx with zero failed requests (issue 9, part 2).
//!
//! Two rgi-server instances are the upstreams of the guide's nginx configuration. A bounded
//! load of non-idempotent `POST`s, each body streamed slowly in chunks through nginx
//! (`proxy_request_buffering off`), runs throughout. Each instance in turn is taken out of
//! the upstream (nginx reload), sent `SIGTERM` while requests are still streaming into it,
//! drains them and exits 0, is started again on the same port, passes its health check and is
//! put back. The client counts the requests sent, completed and failed: none may fail.
//!
//! Why zero failures is correct rather than lucky (see docs/deployment.md, "Rolling
//! restarts"): nginx never retries a `POST` that reached an instance, so no request may be
//! refused or cut after it was sent. The instance is removed from nginx's upstream *before*
//! it stops, so no new request goes to it; the requests already there are finished by the
//! drain (`SRV-SHUT-2`), each keep-alive connection closing after its response
//! (`connection: close`), so nginx never reuses a connection the instance is closing.

mod deploy;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deploy::{Nginx, PROBE, ProxyHeaders, Upstream, free_port};
use support::{EXIT_BOUND, HttpConn, IO_BOUND, ScratchDir, ServerOptions, TestServer};
use tokio::net::TcpStream;

const INSTANCES: usize = 2;
const CLIENTS: usize = 6;
// Each request streams for about a second, so that when an instance is taken out of nginx's
// rotation and stopped (a few hundred milliseconds), the requests it received just before are
// still streaming into it.
const CHUNKS: usize = 10;
const CHUNK_BYTES: usize = 512;
const CHUNK_PAUSE: Duration = Duration::from_millis(100);
/// Bounds the load loop whatever happens.
const MAX_REQUESTS_PER_CLIENT: usize = 3000;
/// Upper bound for the whole restart sequence.
const RESTART_BOUND: Duration = Duration::from_secs(90);

#[derive(Default)]
struct Counts {
    sent: AtomicUsize,
    completed: AtomicUsize,
    failed: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

/// One `POST /body-report` whose chunked body is streamed slowly; the probe answers with the
/// number of bytes it read.
async fn slow_post(nginx: SocketAddr) -> Result<(), String> {
    let stream = tokio::time::timeout(IO_BOUND, TcpStream::connect(nginx))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = HttpConn::from_stream(stream);
    let head = "POST /body-report HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n";
    conn.send(head.as_bytes())
        .await
        .map_err(|e| format!("send head: {e}"))?;
    let piece = support::payload(CHUNK_BYTES, 7);
    for _ in 0..CHUNKS {
        conn.send(&support::chunk(&piece))
            .await
            .map_err(|e| format!("send chunk: {e}"))?;
        tokio::time::sleep(CHUNK_PAUSE).await;
    }
    conn.send(b"0\r\n\r\n")
        .await
        .map_err(|e| format!("send end: {e}"))?;
    let response = conn
        .read_response(IO_BOUND)
        .await
        .map_err(|e| format!("response: {e:?}"))?;
    let body = String::from_utf8_lossy(&response.body);
    let want = format!("bytes: {}\n", CHUNKS * CHUNK_BYTES);
    if response.status == 200 && response.complete && body == want {
        Ok(())
    } else {
        Err(format!("status {} body {body:?}", response.status))
    }
}

async fn client(nginx: SocketAddr, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    for _ in 0..MAX_REQUESTS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        counts.sent.fetch_add(1, Ordering::SeqCst);
        match slow_post(nginx).await {
            Ok(()) => {
                counts.completed.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => {
                counts.failed.fetch_add(1, Ordering::SeqCst);
                counts.failures.lock().unwrap().push(error);
            }
        }
    }
}

fn start_instance(port: u16) -> TestServer {
    ServerOptions::new(PROBE)
        .no_default_bind()
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--health-path",
            "/healthz",
            "--graceful-timeout",
            "20",
        ])
        .start()
}

/// `GET /healthz` directly on an instance.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(IO_BOUND));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}

/// Waits (bounded) until `counts.completed` grew by `n`.
fn wait_completed(counts: &Counts, n: usize) {
    let target = counts.completed.load(Ordering::SeqCst) + n;
    let start = Instant::now();
    while counts.completed.load(Ordering::SeqCst) < target {
        assert!(
            start.elapsed() < RESTART_BOUND,
            "the load made no progress; failures: {:?}",
            counts.failures.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many `POST`s the instance finished after it received `SIGTERM`.
fn finished_after_signal(logs: &str) -> usize {
    logs.split_once("shutdown signal received")
        .map_or(0, |(_, after)| after.matches("\"POST /body-report").count())
}

/// SRV-SHUT-1, SRV-SHUT-2, SRV-SHUT-6, SRV-OPS-1: a rolling restart of two instances behind
/// nginx under a load of slowly streamed `POST`s: every request sent completes, none fails;
/// each instance is stopped while requests stream into it, finishes them, exits 0, and
/// serves again after its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_restart_loses_no_request() {
    let dir = ScratchDir::new("rolling");
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    let mut instances: Vec<TestServer> = ports.iter().map(|&port| start_instance(port)).collect();
    let upstreams: Vec<Upstream> = ports
        .iter()
        .map(|&port| Upstream::Tcp(SocketAddr::from(([127, 0, 0, 1], port))))
        .collect();
    let listing = move |down: Option<usize>| -> Vec<(Upstream, bool)> {
        upstreams
            .iter()
            .enumerate()
            .map(|(i, upstream)| (upstream.clone(), Some(i) == down))
            .collect()
    };
    let mut nginx = Nginx::start(dir.path(), &listing(None), ProxyHeaders::XForwarded);
    let nginx_addr = nginx.addr();

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(nginx_addr, stop.clone(), counts.clone())))
        .collect();

    let orchestration = {
        let counts = counts.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            wait_completed(&counts, 2 * CLIENTS);
            let mut in_flight_at_stop = Vec::new();
            for i in 0..INSTANCES {
                // 1. Out of rotation: new requests go to the other instance only.
                nginx.reload(&listing(Some(i)));
                // 2. Stop it while the requests it has are still streaming in.
                instances[i].signal("TERM");
                let status = instances[i].wait_exit(EXIT_BOUND);
                assert!(
                    status.is_some_and(|s| s.success()),
                    "instance {i} did not exit 0 after SIGTERM: {status:?}\n{}",
                    instances[i].logs()
                );
                instances[i].assert_no_panic();
                in_flight_at_stop.push(finished_after_signal(&instances[i].logs()));
                // 3. Start it again on its port and wait for its health check.
                instances[i] = start_instance(ports[i]);
                let deadline = Instant::now() + RESTART_BOUND;
                while !healthy(ports[i]) {
                    assert!(
                        Instant::now() < deadline,
                        "instance {i} never became healthy"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                // 4. Back in rotation; let the load run on both before the next one.
                nginx.reload(&listing(None));
                wait_completed(&counts, 4 * CLIENTS);
                assert!(start.elapsed() < RESTART_BOUND, "the restart took too long");
            }
            (nginx, instances, in_flight_at_stop)
        })
    };
    let outcome = orchestration.await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        tokio::time::timeout(RESTART_BOUND, client)
            .await
            .expect("a load client hung")
            .expect("a load client panicked");
    }
    let (nginx, instances, in_flight_at_stop) = outcome.expect("the restart sequence panicked");

    let sent = counts.sent.load(Ordering::SeqCst);
    let completed = counts.completed.load(Ordering::SeqCst);
    let failed = counts.failed.load(Ordering::SeqCst);
    println!(
        "rolling restart: sent {sent}, completed {completed}, failed {failed}; \
         finished by each instance after its SIGTERM: {in_flight_at_stop:?}"
    );
    assert_eq!(
        failed,
        0,
        "failed requests: {:?}\nnginx error log:\n{}",
        counts.failures.lock().unwrap(),
        nginx.error_log()
    );
    assert_eq!(sent, completed);
    assert!(completed > 0);
    // The stops happened under load: requests were in flight at the stopping instances.
    assert!(
        in_flight_at_stop.iter().sum::<usize>() > 0,
        "no request was in flight at a stopping instance"
    );
    // Both restarted instances are back in rotation and serving.
    for (i, instance) in instances.iter().enumerate() {
        let served = deploy::eventually(|| instance.logs().contains("\"POST /body-report"));
        assert!(served, "restarted instance {i} served nothing");
    }
}
