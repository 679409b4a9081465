//! What a request knows about its connection: [`ConnectionInfo`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

/// The address of one end of a connection (`HTTP-CONN-2`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketAddress {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// An IP address whose port is unknown, such as a client address taken from a trusted
    /// `X-Forwarded-For` header (`HTTP-CONN-5`).
    Ip(IpAddr),
    /// A Unix domain socket, with its path when it has one (unnamed and abstract sockets do not).
    Unix(Option<PathBuf>),
    /// The transport has no address to report (an in-memory transport, for example).
    Unknown,
}

impl SocketAddress {
    /// The IP address, for TCP and IP addresses.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            SocketAddress::Tcp(addr) => Some(addr.ip()),
            SocketAddress::Ip(ip) => Some(*ip),
            SocketAddress::Unix(_) | SocketAddress::Unknown => None,
        }
    }

    /// The TCP socket address, for TCP addresses.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            SocketAddress::Tcp(addr) => Some(*addr),
            _ => None,
        }
    }
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Tcp(addr) => write!(f, "{addr}"),
            SocketAddress::Ip(ip) => write!(f, "{ip}"),
            SocketAddress::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            SocketAddress::Unix(None) => f.write_str("unix:"),
            SocketAddress::Unknown => f.write_str("-"),
        }
    }
}

impl From<SocketAddr> for SocketAddress {
    fn from(addr: SocketAddr) -> Self {
        SocketAddress::Tcp(addr)
    }
}

/// The scheme of the hop between the client (or the trusted proxy) and the server
/// (`HTTP-CONN-3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// Plain HTTP (WebSocket: `ws`).
    Http,
    /// HTTP over TLS (WebSocket: `wss`).
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Whether the hop is encrypted.
    pub fn is_secure(&self) -> bool {
        matches!(self, Scheme::Https)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
    /// Another version, by its wire code.
    Other(u16),
}

/// What a TLS connection negotiated (`HTTP-CONN-4`). Present only on TLS connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    version: TlsVersion,
    cipher_suite: Option<String>,
    alpn: Option<Bytes>,
    server_name: Option<String>,
    peer_certificates: Vec<Bytes>,
}

impl TlsInfo {
    /// TLS information for a connection of protocol `version`.
    pub fn new(version: TlsVersion) -> Self {
        Self {
            version,
            cipher_suite: None,
            alpn: None,
            server_name: None,
            peer_certificates: Vec::new(),
        }
    }

    /// Sets the cipher suite's IANA name (for example `TLS13_AES_128_GCM_SHA256`).
    pub fn with_cipher_suite(mut self, name: impl Into<String>) -> Self {
        self.cipher_suite = Some(name.into());
        self
    }

    /// Sets the ALPN protocol the handshake selected (for example `h2`).
    pub fn with_alpn(mut self, protocol: impl Into<Bytes>) -> Self {
        self.alpn = Some(protocol.into());
        self
    }

    /// Sets the server name the client asked for (SNI).
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Sets the client's certificate chain, DER-encoded, end-entity first.
    pub fn with_peer_certificates(mut self, chain: Vec<Bytes>) -> Self {
        self.peer_certificates = chain;
        self
    }

    /// The protocol version.
    pub fn version(&self) -> TlsVersion {
        self.version
    }

    /// The cipher suite's IANA name, if known.
    pub fn cipher_suite(&self) -> Option<&str> {
        self.cipher_suite.as_deref()
    }

    /// The ALPN protocol selected by the handshake, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The server name the client sent (SNI), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The client's certificate chain (DER, end-entity first); empty without client auth.
    pub fn peer_certificates(&self) -> &[Bytes] {
        &self.peer_certificates
    }
}

/// The connection a request arrived on: addresses, scheme, TLS (`HTTP-CONN-*`).
///
/// A server inserts one into the extensions of every request (`HTTP-CONN-1`). It is shared by
/// every request of a connection, so cloning it is cheap.
///
/// ```
/// use rgi::{ConnectionInfo, Scheme, SocketAddress};
///
/// let info = ConnectionInfo::new(
///     SocketAddress::Tcp("127.0.0.1:8000".parse().unwrap()),
///     SocketAddress::Tcp("127.0.0.1:50000".parse().unwrap()),
///     Scheme::Http,
/// );
/// assert_eq!(info.peer().to_string(), "127.0.0.1:50000");
/// assert!(info.tls().is_none());
/// ```
#[derive(Clone)]
pub struct ConnectionInfo {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    local: SocketAddress,
    peer: SocketAddress,
    scheme: Scheme,
    // Boxed: most connections are plain, and this is part of every connection's state.
    tls: Option<Box<TlsInfo>>,
    // Boxed: only requests forwarded by a trusted proxy have it, and inline it would make
    // every connection's state larger by a whole address.
    transport: Option<Box<(SocketAddress, Scheme)>>,
}

impl ConnectionInfo {
    /// Connection information for a plain connection from `peer` to `local`.
    pub fn new(local: SocketAddress, peer: SocketAddress, scheme: Scheme) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: 0,
                local,
                peer,
                scheme,
                tls: None,
                transport: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        if Arc::get_mut(&mut self.inner).is_none() {
            let inner = &*self.inner;
            self.inner = Arc::new(Inner {
                id: inner.id,
                local: inner.local.clone(),
                peer: inner.peer.clone(),
                scheme: inner.scheme,
                tls: inner.tls.clone(),
                transport: inner.transport.clone(),
            });
        }
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner,
            None => unreachable!("the Arc was just made unique"),
        }
    }

    /// Sets the server-assigned connection identifier (`HTTP-CONN-6`).
    pub fn with_id(mut self, id: u64) -> Self {
        self.inner_mut().id = id;
        self
    }

    /// Sets the TLS information; the scheme becomes [`Scheme::Https`] (`HTTP-CONN-4`).
    pub fn with_tls(mut self, tls: TlsInfo) -> Self {
        let inner = self.inner_mut();
        inner.tls = Some(Box::new(tls));
        inner.scheme = Scheme::Https;
        self
    }

    /// Replaces the client address and scheme with values a **trusted** proxy forwarded
    /// (`HTTP-CONN-5`). The transport's own values stay available through
    /// [`ConnectionInfo::transport_peer`] and [`ConnectionInfo::transport_scheme`].
    pub fn with_forwarded(mut self, peer: Option<SocketAddress>, scheme: Option<Scheme>) -> Self {
        let inner = self.inner_mut();
        if inner.transport.is_none() {
            inner.transport = Some(Box::new((inner.peer.clone(), inner.scheme)));
        }
        if let Some(peer) = peer {
            inner.peer = peer;
        }
        if let Some(scheme) = scheme {
            inner.scheme = scheme;
        }
        self
    }

    /// The server-assigned identifier of the connection, equal for all requests of a connection.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The server's end of the connection.
    pub fn local(&self) -> &SocketAddress {
        &self.inner.local
    }

    /// The client's address: the socket peer, or the address a trusted proxy forwarded.
    pub fn peer(&self) -> &SocketAddress {
        &self.inner.peer
    }

    /// The scheme of the request: this hop's, or the one a trusted proxy forwarded.
    pub fn scheme(&self) -> Scheme {
        self.inner.scheme
    }

    /// The socket peer, whatever a proxy forwarded.
    pub fn transport_peer(&self) -> &SocketAddress {
        self.inner
            .transport
            .as_ref()
            .map_or(&self.inner.peer, |transport| &transport.0)
    }

    /// This hop's scheme, whatever a proxy forwarded.
    pub fn transport_scheme(&self) -> Scheme {
        self.inner
            .transport
            .as_ref()
            .map_or(self.inner.scheme, |transport| transport.1)
    }

    /// Whether the client address or scheme came from a trusted proxy's headers.
    pub fn is_forwarded(&self) -> bool {
        self.inner.transport.is_some()
    }

    /// The TLS details; `None` on a plain connection (`HTTP-CONN-4`).
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.inner.tls.as_deref()
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}
