//! TLS (rustls), trusted proxy headers, and raw protocol upgrades.

mod common;

use std::path::PathBuf;

use common::*;
use rgi_server::{TlsFiles, TrustedProxies};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed identity for `localhost` in a fresh directory.
fn identity(name: &str) -> (PathBuf, TlsFiles) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("rgi-server-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (dir, TlsFiles::new(cert, key))
}

/// HTTP-CONN-3, HTTP-CONN-4: over TLS the app sees scheme https and the negotiated version,
/// cipher suite, ALPN and SNI; HTTP/2 is chosen by ALPN and HTTP/1.1 still works.
#[tokio::test]
async fn tls_info_reaches_the_app() {
    let (dir, files) = identity("info");
    let cert = files.cert.clone();
    let (server, _probe) = start_probe(config().tls(Some(files))).await;
    let port = server.local_addrs()[0].port();
    assert!(server.urls()[0].starts_with("https://"));
    let url = format!("https://localhost:{port}/meta");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let cert = cert.to_string_lossy().into_owned();

    let (ok, out, err) = curl(&["--cacert", &cert, "--resolve", &resolve, &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("scheme: https"), "{out}");
    assert!(out.contains("tls-version: Tls13"), "{out}");
    assert!(out.contains("tls-cipher: TLS13_"), "{out}");
    assert!(out.contains("tls-sni: localhost"), "{out}");
    assert!(out.contains("tls-alpn: h2"), "{out}");
    assert!(out.contains("version: HTTP/2.0"), "{out}");

    let (ok, out, err) = curl(&["--http1.1", "--cacert", &cert, "--resolve", &resolve, &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("tls-alpn: http/1.1"), "{out}");
    assert!(out.contains("version: HTTP/1.1"), "{out}");

    // An HTTP/1.0-only client offers `http/1.0` alone, and is served.
    let (ok, out, err) = curl(&["--http1.0", "--cacert", &cert, "--resolve", &resolve, &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("tls-alpn: http/1.0"), "{out}");
    assert!(out.contains("version: HTTP/1.0"), "{out}");

    // A plain-text client on the TLS port is refused without hurting the server.
    let reply = raw(
        server.local_addrs()[0],
        b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert!(!String::from_utf8_lossy(&reply).contains("method: GET"));
    let (ok, _, err) = curl(&["--cacert", &cert, "--resolve", &resolve, &url]).await;
    assert!(ok, "{err}");
    stop(server).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// RFC 9113 §3.3: the protocol ALPN chose is the one served. A client that negotiated `h2` and
/// then speaks HTTP/1.1 is not answered as HTTP/1.1, and one that negotiated `http/1.1` and
/// sends the HTTP/2 preface is not served as HTTP/2.
#[tokio::test]
async fn alpn_decides_the_protocol() {
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let (dir, files) = identity("alpn");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&files.cert).unwrap())
        .unwrap();
    let (server, probe) = start_probe(config().tls(Some(files))).await;
    let addr = server.local_addrs()[0];
    let connect = |alpn: &'static [u8]| {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        client.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let stream = connector.connect(name, tcp).await.unwrap();
            assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
            stream
        }
    };
    let read_all = |mut stream: tokio_rustls::client::TlsStream<TcpStream>| async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut out),
        )
        .await;
        out
    };

    let mut h2 = connect(b"h2").await;
    h2.write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let reply = read_all(h2).await;
    assert!(
        !contains(&reply, b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    let mut h1 = connect(b"http/1.1").await;
    h1.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let reply = read_all(h1).await;
    // An HTTP/2 server would answer the preface with its SETTINGS frame (type 4).
    assert!(reply.get(3) != Some(&4), "served as HTTP/2: {reply:?}");
    assert_eq!(
        probe
            .observed
            .calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // The right protocol on each is served.
    let mut h1 = connect(b"http/1.1").await;
    h1.write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_all(h1).await;
    assert!(
        contains(&reply, b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    stop(server).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// HTTP-CONN-4: with client CAs configured, a client certificate reaches the app as the peer
/// chain; a client without one is still served, with an empty chain.
#[tokio::test]
async fn client_certificates_reach_the_app() {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let (dir, files) = identity("mtls");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["client.test".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params
        .signed_by(&client_key, &ca_cert, &ca_key)
        .unwrap();
    let ca_path = dir.join("ca.pem");
    let client_cert_path = dir.join("client.pem");
    let client_key_path = dir.join("client-key.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(&client_cert_path, client_cert.pem()).unwrap();
    std::fs::write(&client_key_path, client_key.serialize_pem()).unwrap();

    let cert = files.cert.to_string_lossy().into_owned();
    let files = files.with_client_ca(&ca_path);
    let (server, _probe) = start_probe(config().tls(Some(files))).await;
    let port = server.local_addrs()[0].port();
    let url = format!("https://localhost:{port}/meta");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let (ok, out, err) = curl(&[
        "--cacert",
        &cert,
        "--resolve",
        &resolve,
        "--cert",
        &client_cert_path.to_string_lossy(),
        "--key",
        &client_key_path.to_string_lossy(),
        &url,
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("tls-peer-certs: 1"), "{out}");
    let (ok, out, err) = curl(&["--cacert", &cert, "--resolve", &resolve, &url]).await;
    assert!(ok, "{err}");
    assert!(out.contains("tls-peer-certs: 0"), "{out}");
    stop(server).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// SRV-SHUT-6: a missing or invalid TLS identity is an error returned to the embedder (the
/// binary exits non-zero), not a panic.
#[tokio::test]
async fn bad_tls_files_are_an_error() {
    let files = TlsFiles::new("/nonexistent/cert.pem", "/nonexistent/key.pem");
    let result = rgi_server::Server::new(config().tls(Some(files)))
        .start(Probe::default())
        .await;
    assert!(
        matches!(result, Err(rgi_server::ServerError::Tls(_))),
        "{result:?}"
    );
}

/// HTTP-CONN-5: proxy headers are honoured only from trusted peers; the transport peer stays
/// available.
#[tokio::test]
async fn proxy_headers_trusted_versus_untrusted() {
    let trusted = config()
        .proxy_headers(true)
        .forwarded_allow_ips(TrustedProxies::localhost());
    let (server, _probe) = start_probe(trusted).await;
    let addr = server.local_addrs()[0];
    let reply = raw(
        addr,
        b"GET /meta HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("peer: 203.0.113.7\n"), "{text}");
    assert!(text.contains("scheme: https"), "{text}");
    assert!(text.contains("transport-peer: 127.0.0.1:"), "{text}");
    let reply = raw(
        addr,
        b"GET /meta HTTP/1.1\r\nHost: a\r\nForwarded: for=\"[2001:db8::1]:4711\";proto=https\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("peer: [2001:db8::1]:4711"), "{text}");
    stop(server).await;

    let untrusted = config()
        .proxy_headers(true)
        .forwarded_allow_ips("10.0.0.0/8".parse().unwrap());
    let (server, _probe) = start_probe(untrusted).await;
    let reply = raw(
        server.local_addrs()[0],
        b"GET /meta HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("peer: 127.0.0.1:"), "{text}");
    assert!(text.contains("scheme: http\n"), "{text}");
    stop(server).await;

    // Without --proxy-headers nothing is trusted, even from localhost.
    let (server, _probe) = start_probe(config()).await;
    let reply = raw(
        server.local_addrs()[0],
        b"GET /meta HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(String::from_utf8_lossy(&reply).contains("peer: 127.0.0.1:"));
    stop(server).await;
}

/// UPGRADE-RAW-1, UPGRADE-RAW-3, UPGRADE-RAW-4, UPGRADE-RAW-5: an HTTP/1.1 upgrade to a raw
/// echo protocol: 101 with the server's Connection/Upgrade headers, then bytes both ways,
/// including bytes sent right behind the request head. hyper's own OnUpgrade is present too.
#[tokio::test]
async fn raw_upgrade_echo_over_http1() {
    let (server, _probe) = start_probe(config()).await;
    let addr = server.local_addrs()[0];

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /meta HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let reply = read_until(&mut stream, b"body-limit").await;
    drop(stream);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("on-upgrade: true"), "{text}");
    assert!(text.contains("hyper-on-upgrade: true"), "{text}");

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bytes|")
        .await
        .unwrap();
    let head = read_until(&mut stream, b"\r\n\r\n").await;
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(text.contains("connection: upgrade"), "{text}");
    assert!(text.contains("upgrade: echo"), "{text}");
    let already: Vec<u8> = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| head[i + 4..].to_vec())
        .unwrap_or_default();
    stream.write_all(b"later bytes").await.unwrap();
    let mut echoed = already;
    let expected = b"early bytes|later bytes";
    let _ = tokio::time::timeout(LIMIT, async {
        let mut buf = [0u8; 256];
        while echoed.len() < expected.len() {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert_eq!(&echoed[..], expected);
    drop(stream);
    stop(server).await;
}

/// UPGRADE-RAW-6: a request without `Connection: upgrade` gets no upgrade offer.
#[tokio::test]
async fn no_offer_without_connection_upgrade() {
    let (server, _probe) = start_probe(config()).await;
    let reply = raw(
        server.local_addrs()[0],
        b"GET /upgrade HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("no upgrade offered"), "{text}");
    stop(server).await;
}

/// HTTP-CONN-2: a Unix domain socket listener serves requests; the addresses are Unix
/// addresses, and the socket file is removed at shutdown.
#[cfg(unix)]
#[tokio::test]
async fn unix_socket_listener() {
    let dir = std::env::temp_dir().join(format!("rgi-server-test-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("server.sock");
    let config = rgi_server::Config::default().uds(&path).access_log(false);
    let (server, _probe) = start_probe(config).await;
    assert!(server.local_addrs().is_empty());
    assert_eq!(server.urls(), [format!("unix:{}", path.display())]);
    let socket = path.to_string_lossy().into_owned();
    let (ok, out, err) = curl(&["--unix-socket", &socket, "http://localhost/meta"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("local: unix:{}", path.display())),
        "{out}"
    );
    assert!(out.contains("peer: unix:"), "{out}");
    stop(server).await;
    assert!(!path.exists(), "the socket file was left behind");
    let _ = std::fs::remove_dir_all(dir);
}

/// HTTP-REQ-2: an IPv6 listener serves requests (skipped when the machine has no ::1).
#[tokio::test]
async fn ipv6_listener() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return;
    }
    let config = rgi_server::Config::default()
        .bind("[::1]:0".parse().unwrap())
        .access_log(false);
    let (server, _probe) = start_probe(config).await;
    let addr = server.local_addrs()[0];
    assert!(addr.is_ipv6());
    assert!(server.urls()[0].starts_with("http://[::1]:"));
    let reply = send_h1(addr, request("GET", "/meta", b"")).await;
    assert!(reply.line("peer").starts_with("[::1]:"), "{}", reply.text());
    stop(server).await;
}

/// HTTP-REQ-2 (the versions served; issue 3 item 7): `--http1-only` refuses HTTP/2 prior knowledge, `--http2-only` refuses
/// HTTP/1.1; each serves its own protocol.
#[tokio::test]
async fn http_version_switches() {
    use rgi_server::HttpVersions;
    let (server, _probe) = start_probe(config().http(HttpVersions::Http1Only)).await;
    let url = format!("http://{}/meta", server.local_addrs()[0]);
    let (ok, _, _) = curl(&["--http2-prior-knowledge", &url]).await;
    assert!(!ok, "--http1-only served HTTP/2");
    let (ok, out, err) = curl(&["--http1.1", &url]).await;
    assert!(ok && out.contains("version: HTTP/1.1"), "{err}");
    stop(server).await;

    let (server, _probe) = start_probe(config().http(HttpVersions::Http2Only)).await;
    let url = format!("http://{}/meta", server.local_addrs()[0]);
    let (ok, _, _) = curl(&["--http1.1", &url]).await;
    assert!(!ok, "--http2-only served HTTP/1.1");
    let (ok, out, err) = curl(&["--http2-prior-knowledge", &url]).await;
    assert!(ok && out.contains("version: HTTP/2.0"), "{err}");
    stop(server).await;
}
