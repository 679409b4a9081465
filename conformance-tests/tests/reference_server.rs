//! The suite against the reference server: rgi-server hosting the probe application must pass
//! every case it claims (EXT-CAP-9: the manifest below is what rgi-server claims).

use std::sync::Arc;

use rgi::{Capabilities, Capability};
use rgi_conformance::probe::Probe;
use rgi_conformance::server::{self, Manifest, Target};
use rgi_server::{Config, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgi_server_passes_every_claimed_case() {
    let config = Config::default().bind("127.0.0.1:0".parse().unwrap());
    let running = Server::new(config).start(Probe::new()).await.unwrap();
    let addr = running.local_addrs()[0];
    let capabilities: Capabilities = [
        Capability::Http1,
        Capability::Http2,
        Capability::RequestTrailers,
        Capability::ResponseTrailers,
        Capability::Upgrade,
        Capability::WebSocket,
    ]
    .into_iter()
    .collect();
    let target = Target {
        addr,
        manifest: Arc::new(Manifest::new(capabilities)),
    };
    let report = server::run(&target).await;
    println!("{}", report.to_text());
    running.shutdown();
    running.wait().await.unwrap();
    assert!(
        report.is_success(),
        "failed requirements: {:?}",
        report.failed_ids()
    );
    assert_eq!(
        report.counts().2,
        0,
        "no case may be skipped against the reference server"
    );
}
