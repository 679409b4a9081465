//! Many concurrent keep-alive connections (issue 3, "Done when": 1,000 concurrent keep-alive
//! connections are served with no errors).

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{HttpConn, ServerOptions};
use tokio::sync::{Barrier, Semaphore};

const CONNECTIONS: usize = 1_000;
const REQUESTS_PER_CONNECTION: usize = 3;
/// Upper bound for the whole exercise.
const TOTAL_BOUND: Duration = Duration::from_secs(180);

/// One `GET /` on a keep-alive connection: must be `200 Hello, World!` without a close.
async fn exchange(conn: &mut HttpConn, id: usize, n: usize) -> Result<(), String> {
    if let Err(e) = conn.send(&support::get("/")).await {
        return Err(format!("connection {id}, request {n}: send: {e}"));
    }
    match conn.read_response(support::IO_BOUND).await {
        Ok(r) if r.status == 200 && r.body == b"Hello, World!" && !r.closes() => Ok(()),
        Ok(r) => Err(format!(
            "connection {id}, request {n}: {} {:?}",
            r.summary(),
            r.headers
        )),
        Err(e) => Err(format!("connection {id}, request {n}: {e:?}")),
    }
}

/// SRV-LIMIT-9, SRV-LIMIT-11: 1,000 keep-alive connections are open at the same
/// time and each is served several requests (all `200 Hello, World!`, none closed).
///
/// Every connection sends its first request, then waits at a barrier until all 1,000 have
/// their first response — so all 1,000 are open at once — and then sends the rest on the
/// same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_keep_alive_connections() {
    // Client and server each hold one descriptor per connection.
    let limit = support::raise_own_nofile(4 * CONNECTIONS as u64);
    assert!(
        limit >= 2 * CONNECTIONS as u64 + 64,
        "this test needs an open-file limit of at least {} (have {limit}; raise the hard limit)",
        2 * CONNECTIONS + 64
    );
    let server = ServerOptions::hello()
        .args(["--no-access-log"])
        .nofile(4 * CONNECTIONS as u64)
        .start();
    let addr = server.addr();

    let barrier = Arc::new(Barrier::new(CONNECTIONS));
    // Connect at most 100 at a time so that the listen backlog never overflows (an overflow
    // only delays a connection by a SYN retransmission, but there is no reason to provoke it).
    let connecting = Arc::new(Semaphore::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..CONNECTIONS {
        let barrier = Arc::clone(&barrier);
        let connecting = Arc::clone(&connecting);
        tasks.spawn(async move {
            let permit = connecting
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let mut errors = Vec::new();
            let mut conn = match HttpConn::try_connect(addr).await {
                Ok(conn) => Some(conn),
                Err(e) => {
                    errors.push(format!("connection {id}: connect: {e}"));
                    None
                }
            };
            if let Some(c) = conn.as_mut() {
                if let Err(e) = exchange(c, id, 1).await {
                    errors.push(e);
                }
            }
            drop(permit);
            // Every task reaches the barrier, failed or not, so that none waits forever.
            barrier.wait().await;
            if let (Some(c), true) = (conn.as_mut(), errors.is_empty()) {
                for n in 2..=REQUESTS_PER_CONNECTION {
                    if let Err(e) = exchange(c, id, n).await {
                        errors.push(e);
                        break;
                    }
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        });
    }

    let collect = async {
        let mut failures = Vec::new();
        let mut served = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("connection task") {
                Ok(()) => served += 1,
                Err(e) => failures.push(e),
            }
        }
        (served, failures)
    };
    let (served, failures) = tokio::time::timeout(TOTAL_BOUND, collect)
        .await
        .unwrap_or_else(|_| panic!("not done within {TOTAL_BOUND:?}\n{}", server.logs()));
    println!(
        "{served} of {CONNECTIONS} connections served {REQUESTS_PER_CONNECTION} requests each"
    );
    assert!(
        failures.is_empty(),
        "{} of {CONNECTIONS} connections failed; first ones:\n{}\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        server.logs()
    );
    assert_eq!(served, CONNECTIONS);
    server.assert_no_panic();
}
