//! Limits and hostile input: 400, 414, 431, timeouts, the connection limit.

mod common;

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// SRV-LIMIT-1, SRV-LIMIT-13, SRV-LIMIT-14, SRV-LIMIT-15, SRV-LIMIT-3, SRV-LIMIT-4, SRV-LIMIT-11: malformed heads get a 4xx
/// (or a close), never reach the app, and the connection is not reused.
#[tokio::test]
async fn malformed_requests_get_400_and_close() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let corpus: &[&[u8]] = &[
        b"GET /meta HTTP/1.1\r\n\r\n",                                 // no Host
        b"GET /meta HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",           // two Hosts
        b"GET /meta HTTP/9.9\r\nHost: a\r\n\r\n",                      // bad version
        b"GET /meta\r\n\r\n",                                          // HTTP/0.9
        b"G@T /meta HTTP/1.1\r\nHost: a\r\n\r\n",                      // bad method token
        b"GET /me ta HTTP/1.1\r\nHost: a\r\n\r\n",                     // space in target
        b"GET /meta HTTP/1.1\r\nHost : a\r\n\r\n",                     // space before colon
        b"GET /meta HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n",   // obs-fold
        b"GET /meta HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n",       // NUL in value
        b"GET /meta HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n",        // bare CR in value
        b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello",
        b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello",
        b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",                          // asterisk, not OPTIONS
        b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",             // authority-form, not CONNECT
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",               // TLS on a plain port
        // Smuggling: Content-Length with Transfer-Encoding, both orders.
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        // Bad chunk sizes and chunk framing, to an app that does not read the body.
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        // SRV-LIMIT-15: CRLF ends every line of a chunked body; sizes, extensions and
        // trailers follow RFC 9112 §7.1.
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\n\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n folded\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Name: v\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno-colon\r\n\r\n",
        b"POST /no-read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\r\n",
    ];
    for (index, request) in corpus.iter().enumerate() {
        // A second, valid request follows: it must not be answered.
        let mut bytes = request.to_vec();
        bytes.extend_from_slice(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n");
        let reply = raw(addr, &bytes).await;
        let text = String::from_utf8_lossy(&reply);
        if let Some(status) = status_of(&reply) {
            assert!((400..500).contains(&status), "case {index}: {text}");
        }
        assert!(
            text.matches("HTTP/1.").count() <= 1,
            "case {index} was reused: {text}"
        );
        assert!(
            !text.contains("method: GET"),
            "case {index} reached the app: {text}"
        );
    }
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 0);
    // The server still serves.
    let reply = send_h1(addr, request("GET", "/meta", b"")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    stop(server).await;
}

/// SRV-LIMIT-5: a target longer than the limit gets 414; too many or too large header
/// fields get 431; neither reaches the app.
#[tokio::test]
async fn uri_and_header_limits() {
    let config = config()
        .max_uri_length(100)
        .max_headers(10)
        .max_header_bytes(8192);
    let (server, probe) = start_probe(config).await;
    let addr = server.local_addrs()[0];

    let long = format!("GET /meta?{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(200));
    let reply = raw(addr, long.as_bytes()).await;
    assert_eq!(
        status_of(&reply),
        Some(414),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    let mut many = String::from("GET /meta HTTP/1.1\r\nHost: a\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let reply = raw(addr, many.as_bytes()).await;
    assert_eq!(
        status_of(&reply),
        Some(431),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    let big = format!(
        "GET /meta HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let reply = raw(addr, big.as_bytes()).await;
    assert_eq!(
        status_of(&reply),
        Some(431),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 0);

    let reply = send_h2(
        addr,
        request("GET", &format!("/meta?{}", "a".repeat(200)), b""),
    )
    .await;
    assert_eq!(reply.status, http::StatusCode::URI_TOO_LONG);
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 0);
    stop(server).await;
}

/// SRV-LIMIT-7: a client that trickles its head (slowloris) is disconnected after the header
/// read timeout; hyper's timer is installed so the timeout is live.
#[tokio::test]
async fn slow_head_is_cut_off() {
    let config = config().header_read_timeout(Duration::from_millis(300));
    let (server, probe) = start_probe(config).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /meta HTTP/1.1\r\n").await.unwrap();
    let mut closed = false;
    // Trickle one header byte at a time; bounded loop.
    for _ in 0..400 {
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                // A 408 before the close is allowed; then the close must follow.
                let _ = read_to_close(&mut stream).await;
                let mut rest = [0u8; 16];
                closed = matches!(
                    tokio::time::timeout(LIMIT, stream.read(&mut rest)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                );
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the server never closed a trickling connection");
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 0);
    stop(server).await;
}

/// SRV-LIMIT-8: an idle keep-alive connection is closed after the idle timeout.
#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    let config = config()
        .keep_alive_timeout(Duration::from_millis(300))
        .header_read_timeout(Duration::from_secs(60));
    let (server, _probe) = start_probe(config).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let reply = read_to_close(&mut stream).await;
    assert_eq!(status_of(&reply), Some(200));
    // read_to_close returned before LIMIT only if the server closed the idle connection.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(LIMIT, stream.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection is still open"
    );
    stop(server).await;
}

/// SRV-LIMIT-9: at the connection limit further connections wait in the backlog (not
/// refused, not dropped) and are served once a slot frees up.
#[tokio::test]
async fn connection_limit_queues_in_the_backlog() {
    let (server, _probe) = start_probe(config().max_connections(1)).await;
    let addr = server.local_addrs()[0];
    let mut first = TcpStream::connect(addr).await.unwrap();
    first
        .write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until(&mut first, b"body-limit").await;
    assert_eq!(status_of(&reply), Some(200));

    // The second connection completes the TCP handshake (backlog) but is not served while
    // the first one holds the only slot.
    let mut second = TcpStream::connect(addr).await.unwrap();
    second
        .write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond the connection limit");

    drop(first);
    let reply = read_to_close(&mut second).await;
    assert_eq!(
        status_of(&reply),
        Some(200),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    stop(server).await;
}

/// SRV-LIMIT-11: many concurrent keep-alive connections are all served.
#[tokio::test]
async fn many_concurrent_keep_alive_connections() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let mut tasks = Vec::new();
    for _ in 0..200 {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            for _ in 0..3 {
                stream
                    .write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
                    .await
                    .unwrap();
                let reply = read_until(&mut stream, b"body-limit").await;
                assert_eq!(status_of(&reply), Some(200));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    stop(server).await;
}

/// SRV-LIMIT-7, SRV-SHUT-4: a connection that sends nothing at all is closed after the header
/// read timeout (hyper-util's protocol detection has no timeout of its own).
#[tokio::test]
async fn silent_connection_is_closed() {
    let config = config().header_read_timeout(Duration::from_millis(300));
    let (server, probe) = start_probe(config).await;
    let mut stream = TcpStream::connect(server.local_addrs()[0]).await.unwrap();
    let mut buf = [0u8; 16];
    let result = tokio::time::timeout(LIMIT, stream.read(&mut buf)).await;
    assert!(
        matches!(result, Ok(Ok(0)) | Ok(Err(_))),
        "the silent connection was not closed: {result:?}"
    );
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 0);
    stop(server).await;
}

/// SRV-LIMIT-15: a chunked body that turns malformed after the application has the request
/// (here a trailer line ended by a bare LF, behind which a request hides) ends the
/// connection: nothing behind the malformed byte is served.
#[tokio::test]
async fn body_malformed_after_the_call_ends_the_connection() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .await
        .unwrap();
    assert!(eventually(|| probe.observed.calls.load(Ordering::SeqCst) == 1).await);
    stream
        .write_all(
            b"0\r\nX-T: a\n\nGET /meta?hidden HTTP/1.1\r\nHost: a\r\n\r\nGET /meta?after HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .await
        .unwrap();
    let reply = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(
        !text.contains("method: GET"),
        "served after the malformed body: {text}"
    );
    assert!(
        !text.contains("bytes: 5"),
        "the malformed body completed: {text}"
    );
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 1);
    // The server still serves.
    let reply = send_h1(addr, request("GET", "/meta", b"")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    stop(server).await;
}

/// SRV-LIMIT-15: a request that offers a protocol switch the application does not take leaves
/// the checks of the requests after it in force (`content-length` with `transfer-encoding`,
/// SRV-LIMIT-14; the head limit, SRV-LIMIT-5).
#[tokio::test]
async fn switch_offer_not_taken_keeps_the_checks() {
    let (server, probe) = start_probe(config().max_header_bytes(8192)).await;
    let addr = server.local_addrs()[0];
    let big = format!(
        "GET /meta HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let smuggle: &[u8] = b"POST /no-read HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let upgrade: &[u8] =
        b"GET /meta HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n";
    let connect: &[u8] = b"CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\n";
    let cases: [(&[u8], &[u8], &str); 4] = [
        (upgrade, smuggle, "400"),
        (upgrade, big.as_bytes(), "431"),
        (connect, smuggle, "400"),
        (connect, big.as_bytes(), "431"),
    ];
    for (offer, second, expected) in cases {
        let calls = probe.observed.calls.load(Ordering::SeqCst);
        let reply = raw(addr, &[offer, second].concat()).await;
        let text = String::from_utf8_lossy(&reply);
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(at, _)| &text[at + 9..at + 12])
            .collect();
        // The offer is answered without a switch (the probe takes none), then the second
        // request is refused.
        assert_eq!(statuses.len(), 2, "{text}");
        assert_ne!(statuses[0], "101", "{text}");
        assert_eq!(statuses[1], expected, "{text}");
        assert_eq!(
            probe.observed.calls.load(Ordering::SeqCst),
            calls + 1,
            "{text}"
        );
    }
    stop(server).await;
}

/// SRV-LIMIT-13: `chunked` applied twice is refused with `400`, an unknown coding before the
/// final `chunked` with `501` (RFC 9112 §6.1); both close the connection without calling the
/// application, which would otherwise get a body still encoded.
#[tokio::test]
async fn transfer_codings_other_than_one_chunked_are_refused() {
    let (server, probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];
    let cases: [(&[u8], u16); 5] = [
        (b"Transfer-Encoding: chunked, chunked\r\n", 400),
        (
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            400,
        ),
        (b"Transfer-Encoding: gzip, chunked\r\n", 501),
        (b"Transfer-Encoding: identity, chunked\r\n", 501),
        (
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            501,
        ),
    ];
    for (field, expected) in cases {
        let request = [
            &b"POST /collect HTTP/1.1\r\nHost: a\r\n"[..],
            field,
            b"\r\n5\r\nhello\r\n0\r\n\r\nGET /meta HTTP/1.1\r\nHost: a\r\n\r\n",
        ]
        .concat();
        let reply = raw(addr, &request).await;
        let text = String::from_utf8_lossy(&reply);
        assert_eq!(status_of(&reply), Some(expected), "{text}");
        assert_eq!(text.matches("HTTP/1.1").count(), 1, "reused: {text}");
    }
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 0);
    // One `chunked`, in any case and with whitespace, is served.
    let reply = raw(
        addr,
        b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(
        contains(&reply, b"bytes: 5"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    stop(server).await;
}

/// Asserts that `reply` is a `408` from the one call whose request body timed out.
fn assert_timed_out_in_the_call(reply: &[u8], probe: &Probe) {
    let text = String::from_utf8_lossy(reply);
    assert_eq!(status_of(reply), Some(408), "{text}");
    assert_eq!(probe.observed.calls.load(Ordering::SeqCst), 1);
}

/// HTTP-BODY-15, CORE-ERR-4: a body whose bytes stop coming while the application waits for them
/// fails with `TimedOut` after the body read timeout; before the response head that is a `408`,
/// and the connection closes.
#[tokio::test]
async fn stalled_body_times_out() {
    let (server, probe) = start_probe(config().body_read_timeout(Duration::from_secs(1))).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    let reply = read_to_close(&mut stream).await;
    assert_timed_out_in_the_call(&reply, &probe);
    stop(server).await;
}

/// HTTP-BODY-15: time in which the application does not poll the body does not count — here it
/// reads a frame, stops for longer than the timeout while the rest arrives, then reads it.
#[tokio::test]
async fn body_read_timeout_counts_only_waiting() {
    let (server, _probe) = start_probe(config().body_read_timeout(Duration::from_secs(1))).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /stall-collect HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(b"world").await.unwrap();
    let reply = read_to_close(&mut stream).await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(status_of(&reply), Some(200), "{text}");
    assert!(text.contains("bytes: 10"), "{text}");
    stop(server).await;
}

/// The minimum body rate of the tests below: 100 bytes per second after 1 s of waiting.
fn min_rate_config() -> rgi_server::Config {
    let rate = rgi_server::MinBodyRate::new(NonZeroU32::new(100).unwrap(), Duration::from_secs(1));
    config().min_body_rate(Some(rate))
}

/// Sends `head`, then `pieces` of the body one every `every` until the server stops taking
/// them, and reads the reply until the server closes the connection.
async fn trickle(
    addr: std::net::SocketAddr,
    head: &[u8],
    pieces: Vec<Vec<u8>>,
    every: Duration,
) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        for piece in pieces {
            tokio::time::sleep(every).await;
            if writer.write_all(&piece).await.is_err() {
                break;
            }
        }
        writer
    });
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(LIMIT, reader.read_to_end(&mut reply)).await;
    writing.abort();
    reply
}

/// SRV-LIMIT-20: a body of declared length that comes slower than the minimum rate fails with
/// `TimedOut` once the grace is spent — long before the body read timeout (60 s here), since
/// bytes keep coming. Before the response head that is a `408`, and the connection closes.
#[tokio::test]
async fn body_slower_than_min_rate_times_out() {
    let (server, probe) = start_probe(min_rate_config()).await;
    let addr = server.local_addrs()[0];
    // 4 bytes per second, where 100 are the minimum: 1,000 bytes would take 250 s.
    let pieces = vec![b"x".to_vec(); 1000];
    let reply = trickle(
        addr,
        b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n",
        pieces,
        Duration::from_millis(250),
    )
    .await;
    assert_timed_out_in_the_call(&reply, &probe);
    stop(server).await;
}

/// Sends `head` and `pieces` at the given pace to a server with the test's minimum rate, and
/// asserts that the probe collected the whole body of `bytes` bytes.
async fn assert_served_at_pace(head: &[u8], pieces: Vec<Vec<u8>>, every: Duration, bytes: usize) {
    let (server, _probe) = start_probe(min_rate_config()).await;
    let reply = trickle(server.local_addrs()[0], head, pieces, every).await;
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(status_of(&reply), Some(200), "{text}");
    assert!(text.contains(&format!("bytes: {bytes}\n")), "{text}");
    stop(server).await;
}

/// SRV-LIMIT-20: a body of declared length that comes faster than the minimum rate is read
/// whole, however long it takes.
#[tokio::test]
async fn body_faster_than_min_rate_is_served() {
    // 1,000 bytes per second, ten times the minimum, for 2 s.
    assert_served_at_pace(
        b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n",
        vec![vec![b'x'; 100]; 20],
        Duration::from_millis(100),
        2000,
    )
    .await;
}

/// SRV-LIMIT-20: a body of unknown length (a chunked stream) is not held to the minimum rate,
/// only to the body read timeout: a stream that pauses between small messages is served.
#[tokio::test]
async fn streamed_body_is_not_held_to_min_rate() {
    // 12 one-byte chunks over 3 s: 4 bytes per second, the rate refused above.
    let mut pieces = vec![b"1\r\nx\r\n".to_vec(); 12];
    pieces.push(b"0\r\n\r\n".to_vec());
    assert_served_at_pace(
        b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        pieces,
        Duration::from_millis(250),
        12,
    )
    .await;
}

/// SRV-LIMIT-20 on HTTP/2: a stream whose body of declared length comes slower than the
/// minimum rate is answered `408`; the connection's other streams are not affected.
#[tokio::test]
async fn h2_body_slower_than_min_rate_times_out() {
    let (server, _probe) = start_probe(min_rate_config()).await;
    let addr = server.local_addrs()[0];
    let mut sender = h2_with_window(addr, 65_535).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    let slow = http::Request::post(format!("http://{addr}/collect"))
        .header(http::header::CONTENT_LENGTH, "1000")
        .body(ChannelBody(rx))
        .unwrap();
    let feeding = tokio::spawn(async move {
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if tx.send(bytes::Bytes::from_static(b"x")).await.is_err() {
                break;
            }
        }
    });
    let response = tokio::time::timeout(LIMIT, sender.send_request(slow))
        .await
        .expect("the slow stream is answered")
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::REQUEST_TIMEOUT);
    feeding.abort();
    // The connection still serves other streams.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    tx.send(bytes::Bytes::from_static(b"hello")).await.unwrap();
    drop(tx);
    let fast = http::Request::post(format!("http://{addr}/collect"))
        .header(http::header::CONTENT_LENGTH, "5")
        .body(ChannelBody(rx))
        .unwrap();
    let reply = read_reply(sender.send_request(fast).await.unwrap()).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert!(reply.text().contains("bytes: 5"), "{}", reply.text());
    stop(server).await;
}

/// Opens an HTTP/2 connection whose streams start with a flow-control window of `window` bytes.
async fn h2_with_window<B>(
    addr: std::net::SocketAddr,
    window: u32,
) -> hyper::client::conn::http2::SendRequest<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(window)
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// SRV-LIMIT-16, HTTP-DISC-4 on HTTP/2: a client that keeps reading the connection but grants a
/// stream no flow-control window cannot hold the stream and the application's body: once the
/// stream has made no progress for the write timeout it is reset, and the exchange settles as
/// not completed.
#[tokio::test]
async fn h2_stream_without_window_is_reset() {
    let (server, probe) = start_probe(config().write_timeout(Duration::from_secs(1))).await;
    let addr = server.local_addrs()[0];
    let mut sender = h2_with_window(addr, 0).await;
    let request = http::Request::get(format!("http://{addr}/endless"))
        .header("x-track", "no-window")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(LIMIT, sender.send_request(request))
        .await
        .expect("the head is sent: headers need no window")
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let body = tokio::time::timeout(LIMIT, response.into_body().collect())
        .await
        .expect("the stream was held past the write timeout");
    assert!(body.is_err(), "the stream ended cleanly without window");
    let outcomes = &probe.observed.outcomes;
    assert!(
        eventually(|| outcomes.lock().unwrap().contains_key("no-window")).await,
        "the stalled exchange never ended"
    );
    assert_ne!(
        outcomes.lock().unwrap()["no-window"],
        rgi::Outcome::Completed
    );
    stop(server).await;
}

/// SRV-LIMIT-16 on HTTP/2: a client that reads slowly, a window of 16 KiB at a time, is not cut
/// off, however long the response takes: each window it grants is progress (the application's
/// 64 KiB chunks go to hyper in pieces of 16 KiB, so each piece needs one window).
#[tokio::test]
async fn h2_slow_reader_with_window_is_served() {
    let (server, _probe) = start_probe(config().write_timeout(Duration::from_secs(1))).await;
    let addr = server.local_addrs()[0];
    let mut sender = h2_with_window(addr, 16 * 1024).await;
    let request = http::Request::get(format!("http://{addr}/endless"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut body = response.into_body();
    // A frame per 250 ms for 4 s: four write timeouts, through four of the 64 KiB chunks.
    let mut received = 0;
    for _ in 0..16 {
        let frame = tokio::time::timeout(LIMIT, body.frame())
            .await
            .expect("the response kept coming")
            .expect("the body did not end")
            .expect("the stream was not reset");
        received += frame.data_ref().map_or(0, bytes::Bytes::len);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        received <= 16 * 16 * 1024,
        "the window did not bound the frames"
    );
    stop(server).await;
}

/// A request body fed through a channel, one frame per message.
struct ChannelBody(tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|piece| piece.map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}

/// SRV-LIMIT-16, HTTP-DISC-4: a client that stops reading a response cannot hold the
/// connection and the application's body: once a write makes no progress for the write timeout,
/// the connection closes and the exchange settles as not completed.
#[tokio::test]
async fn client_that_stops_reading_is_cut_off() {
    let (server, probe) = start_probe(config().write_timeout(Duration::from_secs(1))).await;
    let addr = server.local_addrs()[0];
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: a\r\nX-Track: stalled\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing: the socket buffers fill, the server's writes stall.
    let outcomes = &probe.observed.outcomes;
    assert!(
        eventually(|| outcomes.lock().unwrap().contains_key("stalled")).await,
        "the stalled exchange never ended"
    );
    assert_ne!(outcomes.lock().unwrap()["stalled"], rgi::Outcome::Completed);
    drop(stream);
    // The server still serves.
    let reply = send_h1(addr, request("GET", "/meta", b"")).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    stop(server).await;
}
