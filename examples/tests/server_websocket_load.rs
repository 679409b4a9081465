//! 1,000 concurrent WebSocket sessions through the `websocket_echo` binary, all open at once,
//! each exchanging messages; the server's memory per session is measured and bounded.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::ServerOptions;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Concurrent sessions.
const SESSIONS: usize = 1000;
/// Messages each session exchanges.
const MESSAGES: usize = 5;
/// A generous bound of the server's memory per open session (measured: about 17 KiB).
const MAX_RSS_PER_SESSION_KIB: u64 = 256;
/// Upper bound against hangs, never a timing assertion.
const BOUND: Duration = Duration::from_secs(180);

/// WS-FLOW-1, WS-FLOW-3, SRV-LIMIT-11: 1,000 sessions open at the same time each echo
/// messages with no error, and the server's memory stays bounded per session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_websocket_sessions() {
    let limit = support::raise_own_nofile(4 * SESSIONS as u64);
    assert!(
        limit >= 2 * SESSIONS as u64 + 64,
        "this test needs an open-file limit of at least {} (have {limit})",
        2 * SESSIONS + 64
    );
    let server = ServerOptions::new(env!("CARGO_BIN_EXE_websocket_echo"))
        .args(["--no-access-log"])
        .nofile(4 * SESSIONS as u64)
        .start();
    let addr = server.addr();
    let idle_kib = server.rss_kib().expect("the server's VmRSS is readable");

    // Every session waits at the barrier once open, so all are open at once when the server's
    // memory is measured; then each exchanges its messages and closes.
    let opened = Arc::new(Barrier::new(SESSIONS + 1));
    let measured = Arc::new(Barrier::new(SESSIONS + 1));
    let connecting = Arc::new(Semaphore::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..SESSIONS {
        let (opened, measured, connecting) = (opened.clone(), measured.clone(), connecting.clone());
        tasks.spawn(async move {
            let permit = connecting
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("{id}: {e}"))?;
            let url = format!("ws://{addr}/ws");
            let handshake = tokio_tungstenite::client_async(url, stream).await;
            drop(permit);
            let (mut socket, _) = match handshake {
                Ok(ok) => ok,
                Err(e) => {
                    // Keep the barriers' counts right before reporting.
                    opened.wait().await;
                    measured.wait().await;
                    return Err(format!("{id}: handshake: {e}"));
                }
            };
            opened.wait().await;
            measured.wait().await;
            for n in 0..MESSAGES {
                let text = format!("session {id} message {n}");
                socket
                    .send(Message::text(text.clone()))
                    .await
                    .map_err(|e| format!("{id}: send: {e}"))?;
                match socket.next().await {
                    Some(Ok(Message::Text(echo))) if echo.as_str() == text => {}
                    other => {
                        return Err(format!(
                            "{id}: expected the echo of {text:?}, got {other:?}"
                        ));
                    }
                }
            }
            socket
                .close(None)
                .await
                .map_err(|e| format!("{id}: close: {e}"))?;
            Ok::<(), String>(())
        });
    }
    tokio::time::timeout(BOUND, opened.wait())
        .await
        .expect("all sessions opened");
    let open_kib = server.rss_kib().expect("the server's VmRSS is readable");
    tokio::time::timeout(BOUND, measured.wait())
        .await
        .expect("measurement released");
    let mut errors = Vec::new();
    let all = tokio::time::timeout(BOUND, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("task: {e}")),
            }
        }
    })
    .await;
    assert!(all.is_ok(), "the sessions did not finish within {BOUND:?}");
    assert!(
        errors.is_empty(),
        "{} sessions failed, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    let per_session = open_kib.saturating_sub(idle_kib) / SESSIONS as u64;
    println!(
        "websocket_echo RSS: {idle_kib} KiB idle, {open_kib} KiB with {SESSIONS} sessions open: \
         {per_session} KiB per session"
    );
    assert!(
        per_session <= MAX_RSS_PER_SESSION_KIB,
        "{per_session} KiB of server memory per session (idle {idle_kib} KiB, open {open_kib} KiB)"
    );
    server.assert_no_panic();
}
