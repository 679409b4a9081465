//! The TLS cases against rgi-server hosting the probe with a self-signed certificate made in
//! the test: every TLS case passes, none is skipped (capability `tls`).

use std::sync::Arc;

use rgi::{Capabilities, Capability};
use rgi_conformance::probe::Probe;
use rgi_conformance::server::Manifest;
use rgi_conformance::server::tls::{self, TlsTarget, Trust};
use rgi_server::{Config, Server, TlsFiles};

/// HTTP-CONN-3, HTTP-CONN-4, HTTP-REQ-2: rgi-server over TLS passes every TLS case, verified
/// against the certificate's own CA file, with SNI `localhost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgi_server_passes_the_tls_cases() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("rgi-conformance-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();

    let config = Config::default()
        .bind("127.0.0.1:0".parse().unwrap())
        .tls(Some(TlsFiles::new(cert.clone(), key)));
    let running = Server::new(config).start(Probe::new()).await.unwrap();
    let addr = running.local_addrs()[0];
    let capabilities: Capabilities = [
        Capability::Tls,
        Capability::Http1,
        Capability::Http2,
        Capability::WebSocket,
    ]
    .into_iter()
    .collect();
    let target = TlsTarget::new(
        addr,
        "localhost",
        &Trust::Ca(cert),
        Arc::new(Manifest::new(capabilities)),
    )
    .unwrap();
    let report = tls::run(&target).await;
    println!("{}", report.to_text());
    running.shutdown();
    running.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        report.is_success(),
        "failed requirements: {:?}",
        report.failed_ids()
    );
    assert_eq!(report.counts().2, 0, "no TLS case may be skipped here");
    assert_eq!(report.results().len(), tls::cases().len());
}

/// HTTP-CONN-4: a client that does not trust the server's certificate fails every case instead
/// of passing one (the suite never talks to an unverified server unless told `--insecure`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_the_cases() {
    let served = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "rgi-conformance-tls-untrusted-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, wrong_ca) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("other.pem"),
    );
    std::fs::write(&cert, served.cert.pem()).unwrap();
    std::fs::write(&key, served.key_pair.serialize_pem()).unwrap();
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let config = Config::default()
        .bind("127.0.0.1:0".parse().unwrap())
        .tls(Some(TlsFiles::new(cert, key)));
    let running = Server::new(config).start(Probe::new()).await.unwrap();
    let capabilities: Capabilities = [Capability::Tls, Capability::Http1].into_iter().collect();
    let manifest = Arc::new(Manifest::new(capabilities));
    let addr = running.local_addrs()[0];
    let untrusted =
        TlsTarget::new(addr, "localhost", &Trust::Ca(wrong_ca), manifest.clone()).unwrap();
    let report = tls::run(&untrusted).await;
    assert!(!report.is_success(), "{}", report.to_text());
    // --insecure accepts the certificate.
    let insecure = TlsTarget::new(addr, "localhost", &Trust::Any, manifest).unwrap();
    let report = tls::run(&insecure).await;
    running.shutdown();
    running.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.is_success(), "{}", report.to_text());
}
