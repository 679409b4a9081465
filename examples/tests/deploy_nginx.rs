//! rgi-server behind nginx (issue 9, part 1), with the guide's configuration files
//! (`docs/deploy/nginx.conf` and its proxy-header snippets): upstreams over TCP and over a Unix
//! socket, trusted and untrusted proxy headers with spoofing attempts, request IDs, a
//! full-duplex streamed body and a WebSocket session through nginx.

mod deploy;
mod support;

use std::net::SocketAddr;

use deploy::{Nginx, PROBE, ProxyHeaders, Upstream, client_ip, connect_from};
use futures_util::{SinkExt, StreamExt};
use support::{HttpConn, IO_BOUND, RawResponse, ScratchDir, ServerOptions, TestServer};
use tokio_tungstenite::tungstenite::Message;

/// The probe on TCP with extra flags.
fn probe(args: &[&str]) -> TestServer {
    ServerOptions::new(PROBE).args(args).start()
}

fn tcp(server: &TestServer) -> Vec<(Upstream, bool)> {
    vec![(Upstream::Tcp(server.addr()), false)]
}

/// Sends a request with `extra` header lines from the client address (127.0.0.2) to `addr`
/// and reads the response.
async fn get_from_client(addr: SocketAddr, path: &str, extra: &str) -> RawResponse {
    let stream = connect_from(client_ip(), addr).await;
    let mut conn = HttpConn::from_stream(stream);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n{extra}Connection: close\r\n\r\n");
    conn.send(request.as_bytes()).await.expect("send");
    conn.read_response(IO_BOUND)
        .await
        .unwrap_or_else(|e| panic!("no response from {addr}{path}: {e:?}"))
}

/// The values of the probe's `/meta` lines named `name`.
fn meta(response: &RawResponse, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    String::from_utf8_lossy(&response.body)
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

fn header_lines(response: &RawResponse, header: &str) -> Vec<String> {
    let prefix = format!("{header}: ");
    meta(response, "header")
        .into_iter()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

const SPOOF: &str = "X-Forwarded-For: 203.0.113.66\r\nX-Forwarded-Proto: https\r\n\
                     Forwarded: for=198.51.100.1;proto=https\r\n";

/// SRV-OPS-8, HTTP-CONN-5: behind nginx with the X-Forwarded-* snippet, a trusted proxy
/// (`--proxy-headers`, nginx at 127.0.0.1) gives the application the real client address and
/// scheme; what the client put into X-Forwarded-For, X-Forwarded-Proto or Forwarded itself
/// never becomes the peer or the scheme.
#[tokio::test]
async fn tcp_upstream_trusted_x_forwarded_for_resists_spoofing() {
    let dir = ScratchDir::new("nginx-xff");
    let server = probe(&["--proxy-headers"]);
    let nginx = Nginx::start(dir.path(), &tcp(&server), ProxyHeaders::XForwarded);

    let plain = get_from_client(nginx.addr(), "/meta", "").await;
    assert_eq!(plain.status, 200, "{}", nginx.error_log());
    assert_eq!(meta(&plain, "peer"), vec!["127.0.0.2"]);
    assert_eq!(meta(&plain, "scheme"), vec!["http"]);

    let spoofed = get_from_client(nginx.addr(), "/meta", SPOOF).await;
    assert_eq!(spoofed.status, 200);
    assert_eq!(meta(&spoofed, "peer"), vec!["127.0.0.2"], "{spoofed:?}");
    assert_eq!(meta(&spoofed, "scheme"), vec!["http"]);
    // nginx appended the real client to the client's list, and removed its Forwarded.
    assert_eq!(
        header_lines(&spoofed, "x-forwarded-for"),
        vec!["203.0.113.66, 127.0.0.2"]
    );
    assert!(header_lines(&spoofed, "forwarded").is_empty());
}

/// SRV-OPS-8, HTTP-CONN-5: over a Unix socket upstream (`--uds`, `server unix:...`) with the
/// Forwarded snippet: the client's own Forwarded and X-Forwarded-* do not become the peer;
/// the proxy's appended element does.
#[tokio::test]
async fn unix_socket_upstream_with_forwarded_resists_spoofing() {
    let dir = ScratchDir::new("nginx-uds");
    let socket = dir.path().join("rgi.sock");
    let server = ServerOptions::new(PROBE)
        .no_default_bind()
        .args(["--uds", &socket.display().to_string(), "--proxy-headers"])
        .start();
    assert_eq!(server.urls(), [format!("unix:{}", socket.display())]);
    let nginx = Nginx::start(
        dir.path(),
        &[(Upstream::Unix(socket.clone()), false)],
        ProxyHeaders::Forwarded,
    );
    let spoofed = get_from_client(nginx.addr(), "/meta", SPOOF).await;
    assert_eq!(spoofed.status, 200, "{}", nginx.error_log());
    assert_eq!(meta(&spoofed, "peer"), vec!["127.0.0.2"], "{spoofed:?}");
    assert_eq!(meta(&spoofed, "scheme"), vec!["http"]);
    assert_eq!(
        header_lines(&spoofed, "forwarded"),
        vec!["for=198.51.100.1;proto=https, for=127.0.0.2;proto=http"]
    );
    assert!(header_lines(&spoofed, "x-forwarded-for").is_empty());
    // A malformed element cannot swallow the proxy's own: the peer is never the spoof.
    let broken = get_from_client(nginx.addr(), "/meta", "Forwarded: for=\"6.6.6.6\r\n").await;
    assert_eq!(broken.status, 200);
    let peer = meta(&broken, "peer");
    assert!(!peer.iter().any(|p| p.contains("6.6.6.6")), "{peer:?}");
}

/// HTTP-CONN-5, SRV-OPS-8: proxy headers from peers outside `--forwarded-allow-ips` are
/// ignored: behind nginx when nginx is not trusted (the peer is nginx itself), and from a
/// direct client when only nginx's address is trusted.
#[tokio::test]
async fn untrusted_peers_proxy_headers_are_ignored() {
    let dir = ScratchDir::new("nginx-untrusted");
    let server = probe(&["--proxy-headers", "--forwarded-allow-ips", "10.1.2.3"]);
    let nginx = Nginx::start(dir.path(), &tcp(&server), ProxyHeaders::XForwarded);
    let response = get_from_client(nginx.addr(), "/meta", SPOOF).await;
    assert_eq!(response.status, 200, "{}", nginx.error_log());
    let peer = meta(&response, "peer");
    assert!(peer[0].starts_with("127.0.0.1:"), "{peer:?}");

    // Trusting nginx's 127.0.0.1 does not trust a client that connects directly.
    let trusting = probe(&["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]);
    let direct = get_from_client(trusting.addr(), "/meta", SPOOF).await;
    let peer = meta(&direct, "peer");
    assert!(peer[0].starts_with("127.0.0.2:"), "{peer:?}");
    assert_eq!(meta(&direct, "scheme"), vec!["http"]);
}

/// SRV-OPS-4, SRV-OPS-5: nginx's `$request_id` (set by the guide's configuration, replacing
/// one a client sent) reaches the application and comes back in the response, because nginx
/// is a trusted proxy; nginx's access log records the same ID.
#[tokio::test]
async fn request_ids_flow_from_nginx_to_the_app() {
    let dir = ScratchDir::new("nginx-request-id");
    let server = probe(&["--proxy-headers", "--request-id"]);
    let nginx = Nginx::start(dir.path(), &tcp(&server), ProxyHeaders::XForwarded);
    let response = get_from_client(nginx.addr(), "/meta", "X-Request-Id: from-client\r\n").await;
    assert_eq!(response.status, 200, "{}", nginx.error_log());
    let id = response
        .header("x-request-id")
        .expect("the response carries the request id")
        .to_owned();
    assert_eq!(id.len(), 32, "nginx's $request_id is 32 hex digits: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(header_lines(&response, "x-request-id"), vec![id.clone()]);
    let logged = deploy::eventually(|| nginx.access_log().contains(&id));
    assert!(logged, "nginx's access log:\n{}", nginx.access_log());
    let logged = deploy::eventually(|| server.logs_contain(&id));
    assert!(
        logged,
        "rgi-server's access log lacks {id}:\n{}",
        server.logs()
    );
}

/// HTTP-FRAME-1, HTTP-FRAME-11: with the guide's `proxy_buffering off`, a streaming response
/// reaches the client through nginx as the application produces it: the first part arrives
/// while the application still holds back the rest (until `/release`), then the rest follows.
#[tokio::test]
async fn streaming_responses_pass_through_nginx() {
    let dir = ScratchDir::new("nginx-stream");
    let server = probe(&[]);
    let nginx = Nginx::start(dir.path(), &tcp(&server), ProxyHeaders::XForwarded);
    let stream = connect_from(client_ip(), nginx.addr()).await;
    let mut conn = HttpConn::from_stream(stream);
    conn.send(b"GET /gated?id=nginx-stream HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    // The head and the first part, while the application is still waiting for the release
    // (read raw: the bytes must arrive before the response ends).
    let mut seen = Vec::new();
    read_until_seen(&mut conn.stream, &mut seen, "first").await;
    assert!(
        String::from_utf8_lossy(&seen).contains("first"),
        "the first part did not come through nginx before the response ended: {:?}",
        String::from_utf8_lossy(&seen)
    );
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"),
        "{:?}\n{}",
        String::from_utf8_lossy(&seen),
        nginx.error_log()
    );
    assert!(
        !String::from_utf8_lossy(&seen).contains("second"),
        "the second part came before its release: {:?}",
        String::from_utf8_lossy(&seen)
    );
    // Release the rest (through nginx, on another connection) and read it.
    let released = get_from_client(nginx.addr(), "/release?id=nginx-stream", "").await;
    assert_eq!(released.status, 200);
    read_until_seen(&mut conn.stream, &mut seen, "second").await;
    assert!(
        String::from_utf8_lossy(&seen).contains("second"),
        "the rest did not follow: {:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// Reads from `stream` into `seen` until `needle` shows up, the peer closes, or `IO_BOUND`.
async fn read_until_seen(stream: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, needle: &str) {
    let _ = tokio::time::timeout(IO_BOUND, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(seen).contains(needle) {
            let n = tokio::io::AsyncReadExt::read(stream, &mut buf)
                .await
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
}

/// WS-HS-1, WS-MSG-1: a WebSocket session through nginx (the guide's `Upgrade` /
/// `Connection` mapping): text and binary messages are echoed and the close completes.
#[tokio::test]
async fn websocket_passes_through_nginx() {
    let dir = ScratchDir::new("nginx-ws");
    let server = probe(&[]);
    let nginx = Nginx::start(dir.path(), &tcp(&server), ProxyHeaders::XForwarded);
    let url = format!("ws://{}/ws", nginx.addr());
    let stream = connect_from(client_ip(), nginx.addr()).await;
    let (mut ws, response) =
        tokio::time::timeout(IO_BOUND, tokio_tungstenite::client_async(url, stream))
            .await
            .expect("handshake timed out")
            .unwrap_or_else(|e| {
                panic!("handshake through nginx failed: {e}\n{}", nginx.error_log())
            });
    assert_eq!(response.status(), 101);
    for i in 0..5 {
        let text = format!("message {i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        let echoed = tokio::time::timeout(IO_BOUND, ws.next()).await.unwrap();
        assert_eq!(echoed.unwrap().unwrap(), Message::text(text));
    }
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let echoed = tokio::time::timeout(IO_BOUND, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::binary(vec![1u8, 2, 3]));
    ws.close(None).await.unwrap();
    let end = tokio::time::timeout(IO_BOUND, async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                return true;
            }
        }
        true
    })
    .await;
    assert!(end.is_ok(), "the close handshake did not complete");
}
