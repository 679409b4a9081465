//! The `--spawn` cases against rgi-server: the suite starts rgi-examples' `conformance_probe`
//! binary (the probe with `ProbeLifespan::from_env` on rgi-server's standard CLI) once per case,
//! with the case's settings in its environment.
//!
//! The binary belongs to another package, so `env!("CARGO_BIN_EXE_…")` cannot name it: the test
//! builds it with the same cargo, profile and target directory as this test
//! (`cargo build -p rgi-examples --bin conformance_probe`) and runs it from
//! `target/<profile>/`, found next to this test's own executable (`target/<profile>/deps/`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use rgi::{Capabilities, Capability};
use rgi_conformance::report::{Outcome, Report};
use rgi_conformance::server::Manifest;
use rgi_conformance::spawn::{self, Launcher};

/// Builds `conformance_probe` and returns its path.
fn probe_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/spawned-HASH -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .expect("target/<profile> has a parent")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "rgi-examples", "--bin", "conformance_probe"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building conformance_probe failed");
    let binary = profile_dir.join(format!("conformance_probe{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}

/// What rgi-server claims when it runs the probe: the reference manifest plus the settings the
/// spawned cases exercise (mount prefix, proxy headers) and every operational feature of
/// SPEC §13.4 (`SRV-OPS-*`).
fn manifest() -> Manifest {
    let capabilities: Capabilities = [
        Capability::Http1,
        Capability::Http2,
        Capability::RequestTrailers,
        Capability::ResponseTrailers,
        Capability::Upgrade,
        Capability::WebSocket,
        Capability::MountPrefix,
        Capability::ProxyHeaders,
    ]
    .into_iter()
    .collect();
    Manifest::new(capabilities).with_ops(rgi_conformance::ops::Ops::ALL)
}

/// Requirements rgi-server still fails when spawned, each a bug described in
/// conformance-tests/KNOWN-FAILURES.md; any other failure fails this test. The list may only shrink.
const KNOWN_FAILURES: &[&str] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rgi_server_passes_every_spawned_case() {
    let binary = probe_binary();
    let template = format!("{} --bind {{addr}}", binary.display());
    let launcher = Arc::new(Launcher::new(template).unwrap());
    let mut report = Report::new();
    spawn::run_cases(launcher, Arc::new(manifest()), &mut report).await;
    println!("{}", report.to_text());
    let unexpected: Vec<&str> = report
        .failed_ids()
        .into_iter()
        .filter(|id| !KNOWN_FAILURES.contains(id))
        .collect();
    assert!(unexpected.is_empty(), "failed requirements: {unexpected:?}");
    for result in report.results() {
        assert!(
            !matches!(result.outcome, Outcome::Skipped(_)),
            "{} was skipped against rgi-server",
            result.name
        );
    }
}
