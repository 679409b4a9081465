//! Limits and hostile input: 400, 414, 431, timeouts, the connection limit.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// SRV-LIMIT-1, SRV-LIMIT-13, SRV-LIMIT-14, SRV-LIMIT-3, SRV-LIMIT-4, SRV-LIMIT-11: malformed heads get a 4xx
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
