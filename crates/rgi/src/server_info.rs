//! What a server tells the application at startup: [`ServerInfo`] and [`Capabilities`].

use std::borrow::Cow;
use std::fmt;

use crate::{SPEC_VERSION, SpecVersion};

/// An optional feature a server may support (`EXT-CAP-1`).
///
/// A capability means what the server honours in this run, with its configuration
/// (`EXT-CAP-2`): `Tls` only when it serves TLS, `MountPrefix` only with a configured prefix.
///
/// Per request, a capability shows as the presence of its extension type; at startup, as a
/// member of [`ServerInfo::capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// HTTP/1.0 and HTTP/1.1.
    Http1,
    /// HTTP/2 (cleartext with prior knowledge, or over TLS with ALPN).
    Http2,
    /// TLS connections, with [`crate::TlsInfo`].
    Tls,
    /// Listening on Unix domain sockets.
    UnixSockets,
    /// Request trailers reach the application (`HTTP-TRAIL-*`).
    RequestTrailers,
    /// Response trailers reach the client, where the protocol allows (`HTTP-TRAIL-*`).
    ResponseTrailers,
    /// `103 Early Hints` through [`crate::ext::EarlyHints`] (`HTTP-INTERIM-*`).
    EarlyHints,
    /// Raw upgrades through [`crate::upgrade::OnUpgrade`] (`UPGRADE-RAW-*`).
    Upgrade,
    /// WebSocket over HTTP/1.1 through [`crate::ws::WebSocketUpgrade`] (`WS-*`).
    WebSocket,
    /// WebSocket over HTTP/2 extended CONNECT, RFC 8441 (`WS-H2-*`).
    WebSocketHttp2,
    /// This run serves under a mount prefix ([`crate::MountPrefix`], `HTTP-PATH-4`).
    MountPrefix,
    /// This run takes the client address and scheme from trusted proxies (`HTTP-CONN-5`).
    ProxyHeaders,
}

impl Capability {
    /// Every capability this version of the crate knows, in a stable order.
    pub const ALL: [Capability; 12] = [
        Capability::Http1,
        Capability::Http2,
        Capability::Tls,
        Capability::UnixSockets,
        Capability::RequestTrailers,
        Capability::ResponseTrailers,
        Capability::EarlyHints,
        Capability::Upgrade,
        Capability::WebSocket,
        Capability::WebSocketHttp2,
        Capability::MountPrefix,
        Capability::ProxyHeaders,
    ];

    /// The capability's stable name, as used in capability manifests.
    pub fn name(&self) -> &'static str {
        match self {
            Capability::Http1 => "http1",
            Capability::Http2 => "http2",
            Capability::Tls => "tls",
            Capability::UnixSockets => "unix-sockets",
            Capability::RequestTrailers => "request-trailers",
            Capability::ResponseTrailers => "response-trailers",
            Capability::EarlyHints => "early-hints",
            Capability::Upgrade => "upgrade",
            Capability::WebSocket => "websocket",
            Capability::WebSocketHttp2 => "websocket-http2",
            Capability::MountPrefix => "mount-prefix",
            Capability::ProxyHeaders => "proxy-headers",
        }
    }

    /// The capability with the stable name `name`.
    ///
    /// ```
    /// use rgi::Capability;
    /// assert_eq!(Capability::from_name("websocket"), Some(Capability::WebSocket));
    /// assert_eq!(Capability::from_name("telepathy"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u32 {
        let index = Capability::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or_default();
        1 << index
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Capability`] values.
///
/// ```
/// use rgi::{Capabilities, Capability};
///
/// let caps = Capabilities::empty().with(Capability::Http1).with(Capability::WebSocket);
/// assert!(caps.contains(Capability::WebSocket));
/// assert!(!caps.contains(Capability::EarlyHints));
/// assert_eq!(caps.iter().count(), 2);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities {
    bits: u32,
}

impl Capabilities {
    /// No capabilities.
    pub const fn empty() -> Self {
        Self { bits: 0 }
    }

    /// This set plus `capability`.
    #[must_use]
    pub fn with(mut self, capability: Capability) -> Self {
        self.insert(capability);
        self
    }

    /// Adds `capability`.
    pub fn insert(&mut self, capability: Capability) {
        self.bits |= capability.bit();
    }

    /// Removes `capability` (middleware that cannot honour it withdraws it, `EXT-CAP-5`).
    pub fn remove(&mut self, capability: Capability) {
        self.bits &= !capability.bit();
    }

    /// Whether `capability` is in the set.
    pub fn contains(&self, capability: Capability) -> bool {
        self.bits & capability.bit() != 0
    }

    /// The capabilities in the set, in the order of [`Capability::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        Capability::ALL.into_iter().filter(|c| self.contains(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut caps = Capabilities::empty();
        for capability in iter {
            caps.insert(capability);
        }
        caps
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What the hosting server tells the application at startup (`EXT-CAP-2`, `CORE-VER-3`).
///
/// ```
/// use rgi::{Capability, ServerInfo};
///
/// let info = ServerInfo::new("my-server", "1.0.0")
///     .with_capability(Capability::Http1);
/// assert_eq!(info.spec_version(), rgi::SPEC_VERSION);
/// assert!(info.capabilities().contains(Capability::Http1));
/// ```
#[derive(Debug, Clone)]
pub struct ServerInfo {
    name: Cow<'static, str>,
    version: Cow<'static, str>,
    spec_version: SpecVersion,
    capabilities: Capabilities,
}

impl ServerInfo {
    /// Describes server `name` at `version`, implementing [`SPEC_VERSION`], with no capabilities.
    pub fn new(name: impl Into<Cow<'static, str>>, version: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            spec_version: SPEC_VERSION,
            capabilities: Capabilities::empty(),
        }
    }

    /// Adds one capability.
    #[must_use]
    pub fn with_capability(mut self, capability: Capability) -> Self {
        self.capabilities.insert(capability);
        self
    }

    /// Replaces the capability set.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version of the specification the server implements.
    pub fn spec_version(&self) -> SpecVersion {
        self.spec_version
    }

    /// The optional features the server offers.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
}
