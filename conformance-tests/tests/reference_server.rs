//! The suite against the reference server: rgi-server hosting the probe application must pass
//! every case it claims (EXT-CAP-9: the manifest below is what rgi-server claims).

use std::sync::Arc;

use rgi::{Capabilities, Capability};
use rgi_conformance::probe::Probe;
use rgi_conformance::report::Outcome;
use rgi_conformance::server::{self, Manifest, Target};
use rgi_server::{Config, Server};

/// Requirements rgi-server still fails, each a bug described in
/// conformance-tests/KNOWN-FAILURES.md; any other failure fails this test. The list may only shrink.
const KNOWN_FAILURES: &[&str] = &[];

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
        Capability::WebSocketHttp2,
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
    let unexpected: Vec<&str> = report
        .failed_ids()
        .into_iter()
        .filter(|id| !KNOWN_FAILURES.contains(id))
        .collect();
    assert!(unexpected.is_empty(), "failed requirements: {unexpected:?}");
    // Only cases for capabilities rgi-server does not implement may be skipped.
    let not_implemented = [Capability::EarlyHints];
    let cases = server::cases();
    for result in report.results() {
        if let Outcome::Skipped(why) = &result.outcome {
            let needs = cases
                .iter()
                .find(|c| c.name == result.name)
                .and_then(|c| c.needs);
            assert!(
                needs.is_some_and(|c| not_implemented.contains(&c)),
                "{} was skipped against the reference server: {why}",
                result.name
            );
        }
    }
}
