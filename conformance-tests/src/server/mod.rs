//! Server mode: drive a server that hosts the [`Probe`](crate::probe::Probe) over real sockets.

mod exchange;
mod flow;
mod h2frames;
mod http1;
mod http2;
pub(crate) mod lifecycle;
pub(crate) mod limits;
pub(crate) mod ops;
mod robustness;
pub mod tls;
mod upgrade;
mod websocket;
mod ws_h2;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use rgi::{Capabilities, Capability};

use crate::report::{CaseResult, Outcome, Report};

/// What a case needs to know about the server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where the server listens (plain HTTP).
    pub addr: SocketAddr,
    /// What the server claims.
    pub manifest: Arc<Manifest>,
}

/// The capability manifest: the optional features an implementation claims (`EXT-CAP-9`).
///
/// Cases for features the manifest does not claim are reported as skipped, never as passed.
/// A line `doc ID LOCATION` declares where the implementation documents a `checked-by: doc`
/// duty (see [`crate::declare`]).
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The claimed capabilities.
    pub capabilities: Capabilities,
    /// The `doc ID LOCATION` declarations, in file order.
    pub declarations: Vec<crate::declare::Declaration>,
    /// The claimed operational features (SPEC §13.4), for `--spawn` runs.
    pub ops: Vec<crate::ops::Ops>,
}

impl Manifest {
    /// A manifest claiming `capabilities`, with no declarations.
    pub fn new(capabilities: Capabilities) -> Self {
        Self {
            capabilities,
            declarations: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// The same manifest, also claiming the operational features `ops`.
    pub fn with_ops(mut self, ops: impl IntoIterator<Item = crate::ops::Ops>) -> Self {
        self.ops.extend(ops);
        self
    }

    /// Parses a manifest: capability names separated by commas, whitespace or new lines, and
    /// lines `doc ID LOCATION`; `#` starts a comment.
    pub fn parse(text: &str) -> Result<Self, UnknownCapability> {
        let mut capabilities = Capabilities::empty();
        let mut declarations = Vec::new();
        let mut ops = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            if let Some(declaration) = crate::declare::Declaration::parse_line(line) {
                declarations.push(declaration.map_err(UnknownCapability)?);
                continue;
            }
            for name in line.split([',', ' ', '\t']).filter(|n| !n.is_empty()) {
                if let Some(feature) = crate::ops::Ops::from_name(name) {
                    ops.push(feature);
                    continue;
                }
                let capability = Capability::from_name(name)
                    .ok_or_else(|| UnknownCapability(name.to_owned()))?;
                capabilities.insert(capability);
            }
        }
        Ok(Self {
            capabilities,
            declarations,
            ops,
        })
    }
}

/// A capability name that RGI does not define.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown capability {0:?} (known: http1, http2, tls, unix-sockets, request-trailers, response-trailers, early-hints, upgrade, websocket, websocket-http2, mount-prefix, proxy-headers; features for --spawn: health-path, shutdown-delay, request-id, socket-activation, reuse-port, proxy-chain)"
)]
pub struct UnknownCapability(pub String);

type CaseFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One server-mode case.
#[derive(Clone, Copy)]
pub struct ServerCase {
    /// The case's name.
    pub name: &'static str,
    /// The requirement IDs it checks.
    pub ids: &'static [&'static str],
    /// The capability it needs, if any.
    pub needs: Option<Capability>,
    run: fn(Target) -> CaseFuture,
}

impl std::fmt::Debug for ServerCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCase")
            .field("name", &self.name)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// Defines a [`ServerCase`] from an `async fn(Target) -> Result<(), String>`.
macro_rules! server_case {
    ($name:literal, [$($id:literal),+ $(,)?], $needs:expr, $run:path) => {
        $crate::server::ServerCase::new($name, &[$($id),+], $needs, |target| Box::pin($run(target)))
    };
}
pub(crate) use server_case;

/// Fails the case with a message unless `cond` holds.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use check;

impl ServerCase {
    pub(crate) const fn new(
        name: &'static str,
        ids: &'static [&'static str],
        needs: Option<Capability>,
        run: fn(Target) -> CaseFuture,
    ) -> Self {
        Self {
            name,
            ids,
            needs,
            run,
        }
    }
}

/// Every server-mode case, in the order they run.
pub fn cases() -> Vec<ServerCase> {
    let mut cases = http1::cases();
    cases.extend(http2::cases());
    cases.extend(exchange::cases());
    cases.extend(flow::cases());
    cases.extend(robustness::cases());
    cases.extend(websocket::cases());
    cases.extend(ws_h2::cases());
    cases.extend(upgrade::cases());
    cases
}

/// Runs every case against `target`.
pub async fn run(target: &Target) -> Report {
    run_selected(target, |_| true).await
}

/// Runs the cases `select` accepts, in order, against `target` (the others are left out of the
/// report): for example only those that cite one requirement ID.
pub async fn run_selected(target: &Target, select: impl Fn(&ServerCase) -> bool) -> Report {
    let mut report = Report::new();
    for case in cases().into_iter().filter(|case| select(case)) {
        let outcome = match case.needs {
            Some(capability) if !target.manifest.capabilities.contains(capability) => {
                Outcome::Skipped(format!("capability `{capability}` not claimed"))
            }
            _ => match tokio::spawn((case.run)(target.clone())).await {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(why)) => Outcome::Failed(why),
                Err(join) => Outcome::Failed(format!("the case itself failed: {join}")),
            },
        };
        report.push(CaseResult {
            name: case.name,
            ids: case.ids,
            outcome,
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_names_and_reject_unknown_ones() {
        let manifest = Manifest::parse("http1, http2 # comment\nwebsocket\n").unwrap();
        assert!(manifest.capabilities.contains(Capability::Http2));
        assert!(manifest.capabilities.contains(Capability::WebSocket));
        assert!(!manifest.capabilities.contains(Capability::Tls));
        assert!(Manifest::parse("http3").is_err());
    }

    #[test]
    fn every_case_cites_requirements_of_the_spec() {
        let defined: std::collections::HashSet<String> =
            crate::spec::requirements(crate::spec::SPEC_TEXT)
                .into_iter()
                .map(|r| r.id)
                .collect();
        for case in cases() {
            assert!(!case.ids.is_empty(), "{} cites no requirement", case.name);
            for id in case.ids {
                assert!(
                    defined.contains(*id),
                    "{} cites {id}, which SPEC.md does not define",
                    case.name
                );
            }
        }
    }
}
