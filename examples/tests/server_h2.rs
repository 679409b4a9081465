//! HTTP/2 abuse over raw TCP (h2c prior knowledge) against the `hello` binary: the rapid-reset
//! attack (CVE-2023-44487), an unsolicited garbage preface, and frames that would flood the log.
//!
//! Frames are written by hand (RFC 9113 §4.1) with a fixed HPACK header block made only of
//! static-table references and a literal without indexing (RFC 7541 §6.1, §6.2.2), so the
//! test needs no HTTP/2 client library and can send what no well-behaved client would.

mod support;

use std::time::Duration;

use support::{HttpConn, IO_BOUND, TestServer};
use tokio::io::AsyncWriteExt;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const TYPE_HEADERS: u8 = 0x1;
const TYPE_RST_STREAM: u8 = 0x3;
const TYPE_SETTINGS: u8 = 0x4;
const TYPE_GOAWAY: u8 = 0x7;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;

/// `GET http://a/`: `:method GET` (static 2), `:scheme http` (static 6), `:path /` (static 4),
/// `:authority a` (literal without indexing, name from static 1).
const GET_ROOT_BLOCK: &[u8] = &[0x82, 0x86, 0x84, 0x01, 0x01, b'a'];

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Frames received until the connection closed: (type, flags, stream, payload).
type Frames = Vec<(u8, u8, u32, Vec<u8>)>;

fn parse_frames(buf: &[u8]) -> Frames {
    let mut frames = Vec::new();
    let mut pos = 0;
    while buf.len() >= pos + 9 {
        let len = (usize::from(buf[pos]) << 16)
            | (usize::from(buf[pos + 1]) << 8)
            | usize::from(buf[pos + 2]);
        if buf.len() < pos + 9 + len {
            break;
        }
        let stream = u32::from_be_bytes([buf[pos + 5], buf[pos + 6], buf[pos + 7], buf[pos + 8]])
            & 0x7fff_ffff;
        frames.push((
            buf[pos + 3],
            buf[pos + 4],
            stream,
            buf[pos + 9..pos + 9 + len].to_vec(),
        ));
        pos += 9 + len;
    }
    frames
}

/// SRV-LIMIT-10, SRV-LIMIT-11: a client that opens and immediately resets 10,000 streams
/// (HEADERS + RST_STREAM CANCEL, CVE-2023-44487) is answered with `GOAWAY` and its connection
/// is closed, and the server keeps serving other clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_gets_goaway_and_close() {
    let server = TestServer::hello(&[]);
    let stream = support::connect(server.addr()).await;
    let (mut reader, mut writer) = stream.into_split();

    // Read concurrently so that the server never blocks on writing to us.
    let reading = tokio::spawn(async move {
        let mut buf = Vec::new();
        let termination =
            support::read_to_close(&mut reader, &mut buf, Duration::from_secs(30)).await;
        (buf, termination)
    });

    let mut attack = PREFACE.to_vec();
    attack.extend(frame(TYPE_SETTINGS, 0, 0, &[]));
    let mut sent_streams = 0;
    'send: for batch in 0..100u32 {
        let mut bytes = Vec::new();
        if batch == 0 {
            bytes.append(&mut attack);
        }
        for i in 0..100u32 {
            let id = 2 * (batch * 100 + i) + 1;
            bytes.extend(frame(
                TYPE_HEADERS,
                FLAG_END_HEADERS | FLAG_END_STREAM,
                id,
                GET_ROOT_BLOCK,
            ));
            bytes.extend(frame(TYPE_RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
        }
        if writer.write_all(&bytes).await.is_err() {
            break 'send;
        }
        sent_streams += 100;
    }
    let (buf, termination) = reading.await.expect("reader");
    let frames = parse_frames(&buf);
    let goaway = frames.iter().find(|(kind, ..)| *kind == TYPE_GOAWAY);
    println!(
        "sent {sent_streams} reset streams; received {} frames, GOAWAY: {:?}, then {termination:?}",
        frames.len(),
        goaway.map(|(_, _, _, payload)| payload
            .get(4..8)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    );
    assert!(
        goaway.is_some(),
        "no GOAWAY after {sent_streams} rapidly reset streams (SRV-LIMIT-10)\n{}",
        server.logs()
    );
    assert!(
        termination.closed(),
        "the abusive connection was not closed"
    );

    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(&support::get("/")).await.expect("send");
    let response = conn.read_response(IO_BOUND).await;
    assert!(
        matches!(&response, Ok(r) if r.status == 200),
        "the server stopped serving after the attack: {response:?}\n{}",
        server.logs()
    );
    server.assert_no_panic();
}

/// SRV-LIMIT-11: an HTTP/2 preface followed by garbage instead of frames gets a `GOAWAY` or a
/// close, never a response.
#[tokio::test]
async fn garbage_after_h2_preface_is_closed() {
    let server = TestServer::hello(&[]);
    let mut stream = support::connect(server.addr()).await;
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(&[0xff; 64]);
    let _ = stream.write_all(&bytes).await;
    let mut buf = Vec::new();
    let termination = support::read_to_close(&mut stream, &mut buf, Duration::from_secs(20)).await;
    assert!(
        termination.closed(),
        "the connection stayed open\n{}",
        server.logs()
    );
    let frames = parse_frames(&buf);
    assert!(
        !frames.iter().any(|(kind, ..)| *kind == TYPE_HEADERS),
        "a response was sent for garbage frames: {frames:?}"
    );
    server.assert_no_panic();
}

const TYPE_CONTINUATION: u8 = 0x9;

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the high bits.
fn hpack_int(first: u8, n: u32, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Sends `GET /` with an extra `x-big` field of `value_len` bytes on a fresh h2c connection
/// (HEADERS + CONTINUATION frames) and returns the first answer for stream 1: the type and
/// payload of its HEADERS or RST_STREAM frame, or of a GOAWAY; `None` if the connection closed.
async fn send_big_headers(server: &TestServer, value_len: usize) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut stream = support::connect(server.addr()).await;
    let mut block = GET_ROOT_BLOCK.to_vec();
    // Literal header field without indexing, new name (RFC 7541 §6.2.2).
    block.push(0x00);
    hpack_int(0, 7, 5, &mut block);
    block.extend_from_slice(b"x-big");
    hpack_int(0, 7, value_len, &mut block);
    block.extend(std::iter::repeat_n(b'v', value_len));

    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(TYPE_SETTINGS, 0, 0, &[]));
    let pieces: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let flags = if i + 1 == pieces.len() {
            FLAG_END_HEADERS
        } else {
            0
        };
        if i == 0 {
            bytes.extend(frame(TYPE_HEADERS, flags | FLAG_END_STREAM, 1, piece));
        } else {
            bytes.extend(frame(TYPE_CONTINUATION, flags, 1, piece));
        }
    }
    let _ = stream.write_all(&bytes).await;

    let mut buf = Vec::new();
    let mut piece = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + IO_BOUND;
    loop {
        let frames = parse_frames(&buf);
        let answer = frames.iter().find(|(kind, _, id, _)| {
            *kind == TYPE_GOAWAY
                || (*id == 1 && (*kind == TYPE_HEADERS || *kind == TYPE_RST_STREAM))
        });
        if let Some((kind, _, _, payload)) = answer {
            return Some((*kind, payload.clone()));
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut piece)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&piece[..n]),
            Ok(_) => return None,
            Err(_) => panic!("no answer within {IO_BOUND:?}\n{}", server.logs()),
        }
    }
}

/// `:status 200` is the static-table entry 8, encoded 0x88 (RFC 7541 Appendix A).
fn is_200(answer: &Option<(u8, Vec<u8>)>) -> bool {
    matches!(answer, Some((kind, payload)) if *kind == TYPE_HEADERS && payload.first() == Some(&0x88))
}

/// SRV-LIMIT-10: with `--h2-max-header-list-size 16384`, a request with a 4 KiB field is served
/// (`200`; this also checks the hand-made frames), and one whose header list is 100 KiB (in
/// HEADERS + CONTINUATION frames) is refused — a stream reset, a non-200 response or a GOAWAY —
/// and never answered `200`; the server keeps serving.
#[tokio::test]
async fn oversized_h2_header_list_is_refused() {
    let server = TestServer::hello(&["--h2-max-header-list-size", "16384"]);
    let small = send_big_headers(&server, 4 * 1024).await;
    assert!(
        is_200(&small),
        "a 4 KiB field was not served over h2c: {small:?}\n{}",
        server.logs()
    );

    let big = send_big_headers(&server, 100 * 1024).await;
    println!(
        "answer to a 100 KiB header list: {:?}",
        big.as_ref().map(|(k, p)| (k, p.get(..8)))
    );
    assert!(
        !is_200(&big),
        "an oversized header list was answered 200\n{}",
        server.logs()
    );

    let mut conn = HttpConn::connect(server.addr()).await;
    conn.send(&support::get("/")).await.expect("send");
    assert_eq!(
        conn.read_response(IO_BOUND).await.expect("response").status,
        200
    );
    server.assert_no_panic();
}

/// SRV-SHUT-2, SRV-SHUT-4, SRV-SHUT-6: on `SIGTERM` an open, idle HTTP/2 connection (one
/// completed request) receives `GOAWAY` and is closed, and the process exits with status 0.
/// This client never acknowledges the server's PING (hyper's graceful GOAWAY sequence waits for
/// it), so the close may come only at the graceful deadline (5 s), which SRV-SHUT-4 bounds.
#[tokio::test]
async fn sigterm_sends_goaway_on_h2_connection() {
    use tokio::io::AsyncReadExt;
    let mut server = TestServer::hello(&["--graceful-timeout", "5"]);
    let mut stream = support::connect(server.addr()).await;
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(TYPE_SETTINGS, 0, 0, &[]));
    bytes.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        1,
        GET_ROOT_BLOCK,
    ));
    stream.write_all(&bytes).await.expect("send");

    // Wait for the response to stream 1: `200` and a DATA frame that ends the stream.
    let mut buf = Vec::new();
    let mut piece = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + IO_BOUND;
    loop {
        let frames = parse_frames(&buf);
        let ended = frames.iter().any(|(kind, flags, id, _)| {
            *id == 1 && (*kind == 0x0 || *kind == TYPE_HEADERS) && flags & FLAG_END_STREAM != 0
        });
        if ended {
            assert!(
                frames.iter().any(|(kind, _, id, p)| *id == 1
                    && *kind == TYPE_HEADERS
                    && p.first() == Some(&0x88)),
                "stream 1 was not answered 200: {frames:?}"
            );
            break;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut piece)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&piece[..n]),
            other => panic!("no complete h2 response: {other:?}\n{}", server.logs()),
        }
    }
    let before = parse_frames(&buf).len();

    server.signal("TERM");
    let termination = support::read_to_close(&mut stream, &mut buf, support::EXIT_BOUND).await;
    let frames = parse_frames(&buf);
    assert!(
        frames[before..]
            .iter()
            .any(|(kind, ..)| *kind == TYPE_GOAWAY),
        "no GOAWAY after SIGTERM: {:?}\n{}",
        &frames[before..],
        server.logs()
    );
    assert!(
        termination.closed(),
        "the h2 connection was not closed during the drain"
    );
    let status = server.wait_exit_async(support::EXIT_BOUND).await;
    assert!(
        matches!(status, Some(s) if s.code() == Some(0)),
        "expected exit status 0, got {status:?}\n{}",
        server.logs()
    );
}

/// The `SETTINGS_MAX_CONCURRENT_STREAMS` the server announces in its first `SETTINGS` frame.
async fn announced_max_streams(server: &TestServer) -> Option<u32> {
    use tokio::io::AsyncReadExt;
    let mut stream = support::connect(server.addr()).await;
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(TYPE_SETTINGS, 0, 0, &[]));
    stream.write_all(&bytes).await.ok()?;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + IO_BOUND;
    loop {
        let settings = parse_frames(&buf)
            .into_iter()
            .find(|(kind, flags, ..)| *kind == TYPE_SETTINGS && flags & 0x1 == 0);
        if let Some((.., payload)) = settings {
            return payload.chunks_exact(6).find_map(|s| {
                (u16::from_be_bytes([s[0], s[1]]) == 0x3)
                    .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
            });
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// SRV-LIMIT-5, SRV-LIMIT-6, SRV-LIMIT-10: the HTTP/2 concurrent-stream limit is explicit —
/// 100 by default, and what `--h2-max-concurrent-streams` says otherwise.
#[tokio::test]
async fn max_concurrent_streams_is_announced() {
    let default = TestServer::hello(&[]);
    assert_eq!(announced_max_streams(&default).await, Some(100));
    let configured = TestServer::hello(&["--h2-max-concurrent-streams", "7"]);
    assert_eq!(announced_max_streams(&configured).await, Some(7));
    configured.assert_no_panic();
}

/// SRV-LOG-4: a client cannot write log lines at will. `h2` warns of every unsolicited `PING`
/// ack; with the default filter none of them reaches the log, while a filter that names `h2`
/// (the control) shows them — so the check can fail.
#[tokio::test]
async fn unsolicited_ping_acks_do_not_reach_the_log() {
    use tokio::io::AsyncReadExt;
    const TYPE_PING: u8 = 0x6;
    const FLAG_ACK: u8 = 0x1;
    for (args, logged) in [
        (&[][..], false),
        (&["--log-level", "info,h2=warn"][..], true),
    ] {
        let mut server = TestServer::hello(args);
        let mut stream = support::connect(server.addr()).await;
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(TYPE_SETTINGS, 0, 0, &[]));
        for i in 0..20u64 {
            bytes.extend(frame(TYPE_PING, FLAG_ACK, 0, &i.to_be_bytes()));
        }
        bytes.extend(frame(
            TYPE_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            GET_ROOT_BLOCK,
        ));
        stream.write_all(&bytes).await.expect("send");
        // The response to stream 1 comes after the acks were read.
        let deadline = tokio::time::Instant::now() + IO_BOUND;
        let mut buf = Vec::new();
        let answered = loop {
            if parse_frames(&buf)
                .iter()
                .any(|(kind, _, id, _)| *kind == TYPE_HEADERS && *id == 1)
            {
                break true;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break false,
            }
        };
        assert!(
            answered,
            "{args:?}: no response to stream 1\n{}",
            server.logs()
        );
        drop(stream);
        // Stopping the server flushes its log up to its last line.
        server.signal("TERM");
        server.wait_exit_async(Duration::from_secs(30)).await;
        assert!(
            server.logs_contain("rgi-server stopped"),
            "{args:?}: the server did not stop\n{}",
            server.logs()
        );
        assert_eq!(
            server.logs_contain("PING ack"),
            logged,
            "{args:?}: unsolicited PING acks logged: expected {logged}\n{}",
            server.logs()
        );
    }
}
