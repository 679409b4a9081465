//! Spawned cases about configured limits and timeouts: each starts an instance with small
//! values, so that the limit is reached quickly, and checks only the outcome (the status, the
//! closed connection), never how long it took.

use std::time::Duration;

use rgi::Capability;

use super::http1::{expect_status, get};
use super::{Target, check};
use crate::spawn::{Lab, SpawnedCase, spawned_case, start};
use crate::wire::{WireConn, WireError, request};

/// The upper bound for a connection to be closed by a timeout (never a requirement).
const BOUND: Duration = Duration::from_secs(20);

pub(crate) fn cases() -> Vec<SpawnedCase> {
    vec![
        spawned_case!(
            "spawned: configured head, field-count, target and body limits enforced",
            ["SRV-LIMIT-5"],
            None,
            configured_limits
        ),
        spawned_case!(
            "spawned: header read timeout closes slow heads, not slow applications",
            ["SRV-LIMIT-7"],
            None,
            header_read_timeout
        ),
        spawned_case!(
            "spawned: idle timeout closes idle connections, not busy ones",
            ["SRV-LIMIT-8"],
            None,
            idle_timeout
        ),
        spawned_case!(
            "spawned: HTTP/2 connection without streams closed after the idle timeout",
            ["SRV-LIMIT-8"],
            Some(Capability::Http2),
            idle_timeout_h2
        ),
        spawned_case!(
            "spawned: at the connection limit new connections wait, then are served",
            ["SRV-LIMIT-9"],
            None,
            connection_limit
        ),
        spawned_case!(
            "spawned: time the app spends not reading the body does not time it out",
            ["HTTP-BODY-15"],
            None,
            body_timeout_paused
        ),
        spawned_case!(
            "spawned: write timeout closes a connection whose client reads nothing",
            ["SRV-LIMIT-16"],
            None,
            write_timeout_h1
        ),
        spawned_case!(
            "spawned: write timeout resets an HTTP/2 stream left without flow-control window",
            ["SRV-LIMIT-16"],
            Some(Capability::Http2),
            write_timeout_h2
        ),
        spawned_case!(
            "spawned: an upload slower than the minimum body rate times out, a stream does not",
            ["SRV-LIMIT-20"],
            None,
            min_body_rate
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `checks` against an instance started with `env`, then stops it.
async fn with_instance<F, Fut>(lab: &Lab, env: &[(&str, &str)], checks: F) -> Result<(), String>
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (mut spawned, target) = start(lab, env).await?;
    let result = checks(target).await;
    if spawned.terminate().await.is_ok() {
        let _ = spawned.wait_exit(BOUND).await;
    }
    result
}

async fn status_of(target: &Target, raw: &[u8], method: &str) -> Result<u16, String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    // The server may stop reading once the limit is hit; what it answers is what counts.
    let _ = conn.send_within(raw, Duration::from_secs(5)).await;
    match conn.read_response(method).await {
        Ok(response) => Ok(response.status),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

async fn configured_limits(lab: Lab) -> Result<(), String> {
    let env = [
        ("RGI_MAX_HEADER_BYTES", "8192"),
        ("RGI_MAX_HEADERS", "20"),
        ("RGI_MAX_URI_LENGTH", "512"),
        ("RGI_MAX_BODY_BYTES", "1000"),
    ];
    with_instance(&lab, &env, |target| async move {
        let big = "b".repeat(10_000);
        let status = status_of(
            &target,
            &request("GET", "/meta", "HTTP/1.1", &[("x-big", &big)], None),
            "GET",
        )
        .await?;
        check!(
            status == 431,
            "a 10 kB head over an 8 kB limit got {status}"
        );
        let names: Vec<String> = (0..30).map(|i| format!("x-field-{i}")).collect();
        let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let status = status_of(
            &target,
            &request("GET", "/meta", "HTTP/1.1", &fields, None),
            "GET",
        )
        .await?;
        check!(status == 431, "30 fields over a limit of 20 got {status}");
        let long = format!("/meta?{}", "q".repeat(1000));
        let status = status_of(
            &target,
            &request("GET", &long, "HTTP/1.1", &[], None),
            "GET",
        )
        .await?;
        check!(
            status == 414,
            "a 1 kB target over a 512 B limit got {status}"
        );
        // Within the limits, all is served.
        expect_status(&get(&target, "/meta").await?, 200)?;
        let small = vec![b's'; 900];
        let (_, response) = super::http1::exchange(
            &target,
            "POST",
            &request("POST", "/sleep?ms=0&read", "HTTP/1.1", &[], Some(&small)),
        )
        .await?;
        check!(
            response.field("bytes").as_deref() == Some("900"),
            "a body within the limit: {:?}",
            response.text()
        );
        let large = vec![b'l'; 5000];
        let (_, response) = super::http1::exchange(
            &target,
            "POST",
            &request("POST", "/sleep?ms=0&read", "HTTP/1.1", &[], Some(&large)),
        )
        .await?;
        check!(
            response.status == 413 || response.field("error").as_deref() == Some("length-limit"),
            "a 5000-byte body over a 1000-byte limit: {} {:?}",
            response.status,
            response.text()
        );
        Ok(())
    })
    .await
}

/// Reads whatever the server sends (a `408` is allowed) and reports whether it closed.
async fn closed_by_server(conn: &mut WireConn) -> bool {
    conn.closes_within(BOUND).await
}

async fn header_read_timeout(lab: Lab) -> Result<(), String> {
    let env = [
        ("RGI_HEADER_READ_TIMEOUT", "1"),
        ("RGI_KEEP_ALIVE_TIMEOUT", "60"),
    ];
    with_instance(&lab, &env, |target| async move {
        let mut partial = WireConn::connect(target.addr).await.map_err(err)?;
        partial
            .send(b"GET /meta HTTP/1.1\r\nhost: a\r\nx-slow: ")
            .await
            .map_err(err)?;
        let mut silent = WireConn::connect(target.addr).await.map_err(err)?;
        check!(
            closed_by_server(&mut partial).await,
            "a partial head was kept past the header read timeout"
        );
        check!(
            closed_by_server(&mut silent).await,
            "a connection that sent nothing was kept past the header read timeout"
        );
        // An application slower than the timeout is not cut off, and the connection lives on.
        let mut slow = WireConn::connect(target.addr).await.map_err(err)?;
        slow.send(&request("GET", "/sleep?ms=2500", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        let response = slow
            .read_response("GET")
            .await
            .map_err(|e| format!("the header read timeout ran while the app worked: {e}"))?;
        expect_status(&response, 200)?;
        slow.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        let next = slow
            .read_response("GET")
            .await
            .map_err(|e| format!("the connection did not survive a slow app: {e}"))?;
        expect_status(&next, 200)?;
        // After that response, a head that never completes is timed out again.
        slow.send(b"GET /meta HTTP/1.1\r\n").await.map_err(err)?;
        check!(
            closed_by_server(&mut slow).await,
            "a partial second head was kept past the header read timeout"
        );
        Ok(())
    })
    .await
}

async fn idle_timeout(lab: Lab) -> Result<(), String> {
    let env = [
        ("RGI_KEEP_ALIVE_TIMEOUT", "1"),
        ("RGI_HEADER_READ_TIMEOUT", "60"),
    ];
    with_instance(&lab, &env, |target| async move {
        let mut idle = WireConn::connect(target.addr).await.map_err(err)?;
        idle.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        expect_status(&idle.read_response("GET").await.map_err(err)?, 200)?;
        check!(
            idle.closes_within(BOUND).await,
            "an idle keep-alive connection outlived the idle timeout"
        );
        // A 2.5 s exchange is not idle time: the connection is reused right after it.
        let mut busy = WireConn::connect(target.addr).await.map_err(err)?;
        busy.send(&request("GET", "/sleep?ms=2500", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        let response = busy
            .read_response("GET")
            .await
            .map_err(|e| format!("an exchange in progress was cut as idle: {e}"))?;
        expect_status(&response, 200)?;
        busy.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        match busy.read_response("GET").await {
            Ok(next) => expect_status(&next, 200),
            Err(WireError::ClosedBeforeHead(_)) => Err(
                "the connection was closed right after a long exchange: its time counted as idle"
                    .into(),
            ),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

async fn idle_timeout_h2(lab: Lab) -> Result<(), String> {
    let env = [
        ("RGI_KEEP_ALIVE_TIMEOUT", "1"),
        ("RGI_HEADER_READ_TIMEOUT", "60"),
    ];
    with_instance(&lab, &env, |target| async move {
        let mut conn = super::h2frames::H2Conn::connect(target.addr).await?;
        conn.send(&super::h2frames::get(1, "/meta", &[])).await?;
        let answered = conn
            .read_until(|f| f.stream == 1 && f.kind == super::h2frames::HEADERS)
            .await?;
        check!(answered.is_some(), "the HTTP/2 request was not answered");
        let closed = tokio::time::timeout(BOUND, async {
            loop {
                match conn.read_frame().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return true,
                    // Our own read timeout: still open.
                    Err(_) => return false,
                }
            }
        })
        .await;
        check!(
            matches!(closed, Ok(true)),
            "an HTTP/2 connection with no open stream outlived the idle timeout"
        );
        Ok(())
    })
    .await
}

async fn connection_limit(lab: Lab) -> Result<(), String> {
    let env = [("RGI_MAX_CONNECTIONS", "2")];
    with_instance(&lab, &env, |target| async move {
        // Two slow exchanges take both slots; their connections close after the response.
        let mut busy = Vec::new();
        for _ in 0..2 {
            let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
            conn.send(&request(
                "GET",
                "/sleep?ms=2500",
                "HTTP/1.1",
                &[("connection", "close")],
                None,
            ))
            .await
            .map_err(err)?;
            busy.push(conn);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut third = WireConn::connect(target.addr)
            .await
            .map_err(|e| format!("a connection beyond the limit was refused, not queued: {e}"))?;
        third
            .send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        // While both slots are busy (2.5 s), the third must not be served.
        let early =
            tokio::time::timeout(Duration::from_millis(1000), third.read_response("GET")).await;
        check!(
            early.is_err(),
            "a connection beyond the limit of 2 was served (or dropped) at once: {early:?}"
        );
        for conn in &mut busy {
            expect_status(&conn.read_response("GET").await.map_err(err)?, 200)?;
        }
        let response = third
            .read_response("GET")
            .await
            .map_err(|e| format!("the queued connection was not served once a slot freed: {e}"))?;
        expect_status(&response, 200)
    })
    .await
}

async fn body_timeout_paused(lab: Lab) -> Result<(), String> {
    // The body read timeout is short; so are the header and idle timeouts, which must not cut
    // the exchange either.
    let env = [
        ("RGI_BODY_READ_TIMEOUT", "1"),
        ("RGI_HEADER_READ_TIMEOUT", "1"),
        ("RGI_KEEP_ALIVE_TIMEOUT", "1"),
    ];
    with_instance(&lab, &env, |target| async move {
        let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
        // The app sleeps 3 s before it reads; the rest of the body comes 3.3 s after the head,
        // so the app waits about 0.3 s for it while polling.
        conn.send(
            b"POST /sleep?ms=3000&read HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\nhello",
        )
        .await
        .map_err(err)?;
        tokio::time::sleep(Duration::from_millis(3300)).await;
        conn.send(b"world").await.map_err(err)?;
        let response = conn
            .read_response("POST")
            .await
            .map_err(|e| format!("the exchange was cut while the app was not reading: {e}"))?;
        expect_status(&response, 200)?;
        check!(
            response.field("bytes").as_deref() == Some("10"),
            "the body timed out while the app was not polling it: {:?}",
            response.text()
        );
        Ok(())
    })
    .await
}

/// Sends `head`, then one piece every 250 ms until the server answers (at most `pieces`), and
/// reads the response.
async fn trickle(
    target: &Target,
    head: &[u8],
    piece: &[u8],
    pieces: usize,
    last: &[u8],
) -> Result<crate::wire::WireResponse, String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(head).await.map_err(err)?;
    for _ in 0..pieces {
        if conn
            .answered_within(Duration::from_millis(250))
            .await
            .map_err(err)?
        {
            break;
        }
        // The server may stop reading once it gave up on the body.
        let _ = conn.send_within(piece, Duration::from_secs(1)).await;
    }
    if !conn.answered_within(Duration::ZERO).await.map_err(err)? {
        let _ = conn.send_within(last, Duration::from_secs(1)).await;
    }
    conn.read_response("POST").await.map_err(err)
}

async fn min_body_rate(lab: Lab) -> Result<(), String> {
    // 100 bytes per second after 1 s of waiting; the body read timeout (no bytes at all) is
    // long, so only the rate can end the upload below.
    let env = [
        ("RGI_MIN_BODY_RATE", "100"),
        ("RGI_MIN_BODY_RATE_GRACE", "1"),
        ("RGI_BODY_READ_TIMEOUT", "60"),
    ];
    with_instance(&lab, &env, |target| async move {
        // An upload of declared length at 4 bytes per second: it would take 250 s whole.
        let response = trickle(
            &target,
            b"POST /sleep?ms=0&read HTTP/1.1\r\nhost: a\r\ncontent-length: 1000\r\n\r\n",
            b"x",
            60,
            b"",
        )
        .await?;
        check!(
            response.field("error").as_deref() == Some("timed-out"),
            "an upload at 4 bytes per second, with 100 the minimum, was not timed out after 15 s: {} {:?}",
            response.status,
            response.text()
        );
        // A chunked stream at the same pace, for 3 s: not held to the rate.
        let response = trickle(
            &target,
            b"POST /sleep?ms=0&read HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
            b"1\r\nx\r\n",
            12,
            b"0\r\n\r\n",
        )
        .await?;
        expect_status(&response, 200)?;
        check!(
            response.field("bytes").as_deref() == Some("12"),
            "a chunked stream at 4 bytes per second was cut by the minimum rate: {:?}",
            response.text()
        );
        Ok(())
    })
    .await
}

/// A response far longer than any test runs for: 64 KiB chunks, ten million of them.
const ENDLESS: &str = "/stream?chunks=10000000&size=65536";

async fn write_timeout_h1(lab: Lab) -> Result<(), String> {
    let env = [("RGI_WRITE_TIMEOUT", "1")];
    with_instance(&lab, &env, |target| async move {
        let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
        conn.send(&request("GET", ENDLESS, "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        // Read nothing while the socket buffers fill and the server's writes stall for longer
        // than the timeout; then what the server wrote before it closed is read to its end.
        tokio::time::sleep(Duration::from_secs(4)).await;
        check!(
            conn.closes_within(BOUND).await,
            "a connection whose client read nothing for 4 s, with a write timeout of 1 s, \
             was still streaming (the response is 655 GB long)"
        );
        Ok(())
    })
    .await
}

async fn write_timeout_h2(lab: Lab) -> Result<(), String> {
    use http_body_util::BodyExt;
    let env = [("RGI_WRITE_TIMEOUT", "1")];
    with_instance(&lab, &env, |target| async move {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .map_err(err)?;
        // The client keeps reading the connection, but grants its streams no window at all.
        let (mut sender, connection) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .initial_stream_window_size(0)
                .handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(connection);
        let response = tokio::time::timeout(BOUND, sender.send_request(super::http2::get(ENDLESS)))
            .await
            .map_err(|_| "no response head (headers need no window)".to_owned())?
            .map_err(err)?;
        check!(
            response.status() == 200,
            "the stream got {} instead of 200",
            response.status()
        );
        let body = tokio::time::timeout(BOUND, response.into_body().collect()).await;
        check!(
            matches!(body, Ok(Err(_))),
            "a stream without window was still open {} s after its head, with a write timeout \
             of 1 s",
            BOUND.as_secs()
        );
        Ok(())
    })
    .await
}
