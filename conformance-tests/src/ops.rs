//! Operational features of a server (SPEC.md §13.4, `SRV-OPS-*`) that a capability manifest
//! may claim for `--spawn` runs.
//!
//! They are not [`rgi::Capability`] values — an application never sees them — but duties of a
//! server *that offers* them: a health path, a shutdown delay, request IDs, socket activation,
//! port sharing, trusted forwarding chains. The spawned cases enable each through the spawn
//! contract's environment variables (`RGI_HEALTH_PATH`, `RGI_SHUTDOWN_DELAY`,
//! `RGI_REQUEST_ID`, `RGI_REUSE_PORT`, `RGI_PROXY_HEADERS` with `RGI_FORWARDED_ALLOW_IPS`;
//! socket activation through `systemd-socket-activate`) and are skipped, never passed, for a
//! feature the manifest does not claim.

use std::fmt;

/// One operational feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ops {
    /// A health path answered by the server (`SRV-OPS-1`, `SRV-OPS-2`): `health-path`.
    HealthPath,
    /// A shutdown delay during which the server is unready but serving (`SRV-OPS-3`):
    /// `shutdown-delay`.
    ShutdownDelay,
    /// Request IDs (`SRV-OPS-4`, `SRV-OPS-5`): `request-id`.
    RequestId,
    /// Listening sockets inherited from a service manager (`SRV-OPS-6`): `socket-activation`.
    SocketActivation,
    /// Port sharing with `SO_REUSEPORT` (`SRV-OPS-7`): `reuse-port`.
    ReusePort,
    /// Client addresses from the forwarding chain of trusted proxies (`SRV-OPS-8`):
    /// `proxy-chain`.
    ProxyChain,
}

impl Ops {
    /// Every feature, in a stable order.
    pub const ALL: [Ops; 6] = [
        Ops::HealthPath,
        Ops::ShutdownDelay,
        Ops::RequestId,
        Ops::SocketActivation,
        Ops::ReusePort,
        Ops::ProxyChain,
    ];

    /// The feature's name in manifests.
    pub fn name(&self) -> &'static str {
        match self {
            Ops::HealthPath => "health-path",
            Ops::ShutdownDelay => "shutdown-delay",
            Ops::RequestId => "request-id",
            Ops::SocketActivation => "socket-activation",
            Ops::ReusePort => "reuse-port",
            Ops::ProxyChain => "proxy-chain",
        }
    }

    /// The feature called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|ops| ops.name() == name)
    }
}

impl fmt::Display for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for ops in Ops::ALL {
            assert_eq!(Ops::from_name(ops.name()), Some(ops));
        }
        assert_eq!(Ops::from_name("http2"), None);
    }
}
