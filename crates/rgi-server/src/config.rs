//! The server's options: [`Config`] and the types of its fields.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rgi::MountPrefix;

use crate::ws::WsConfig;

/// Every option of the server, with the defaults of the command line.
///
/// Build one with [`Config::default`] and set the public fields, or with the chained setters:
///
/// ```
/// use std::time::Duration;
/// use rgi_server::Config;
///
/// let config = Config::default()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .graceful_timeout(Duration::from_secs(5))
///     .max_body_bytes(Some(1 << 20));
/// assert_eq!(config.bind, vec!["127.0.0.1:0".parse().unwrap()]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// TCP addresses to listen on (IPv4 or IPv6). Default: `127.0.0.1:8000`. When it is empty
    /// and [`Config::uds`] is empty too, the server listens on the default address.
    pub bind: Vec<SocketAddr>,
    /// Unix domain socket paths to listen on. A stale socket file at the path is replaced.
    pub uds: Vec<PathBuf>,
    /// TLS certificate chain and private key (PEM files). `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Which HTTP versions the server speaks. Default: HTTP/1.x and HTTP/2 on one port.
    pub http: HttpVersions,
    /// Honour `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto` from trusted peers.
    pub proxy_headers: bool,
    /// The peers whose proxy headers are trusted (with [`Config::proxy_headers`]).
    /// Default: `127.0.0.1`.
    pub forwarded_allow_ips: TrustedProxies,
    /// The mount prefix (root path) the application is served under, if any.
    pub root_path: Option<MountPrefix>,
    /// How long in-flight requests may run after shutdown begins. Default: 30 s.
    pub graceful_timeout: Duration,
    /// How long a client may take to send a request head (HTTP/1.x, slowloris guard). Default: 30 s.
    pub header_read_timeout: Duration,
    /// How long an idle connection (no request in flight) is kept open. Default: 60 s.
    pub keep_alive_timeout: Duration,
    /// How long the application may wait for request body bytes that do not come: past it the
    /// body fails with [`rgi::BodyError::TimedOut`] (`408` before the response head,
    /// `HTTP-BODY-15`). Only time in which the application waits for the body counts.
    /// `Duration::ZERO` turns it off. Default: 60 s.
    pub body_read_timeout: Duration,
    /// The slowest a request body of declared length (`content-length`) may come while the
    /// application waits for it, on average after a grace period: slower, it fails with
    /// [`rgi::BodyError::TimedOut`] (`408` before the response head, `SRV-LIMIT-20`). Guards
    /// against slow-body attacks that keep a connection busy by trickling an upload. Bodies of
    /// unknown length (streams) are held only to [`Config::body_read_timeout`]. `None` turns it
    /// off. Default: 240 bytes per second after 5 s.
    pub min_body_rate: Option<MinBodyRate>,
    /// How long a write to a client may make no progress (the client does not read): past it
    /// the connection is closed. Covers HTTP/1.x, HTTP/2 and upgraded connections, and each
    /// HTTP/2 stream whose client grants it no flow-control window (the stream is reset).
    /// `Duration::ZERO` turns it off. Default: 60 s.
    pub write_timeout: Duration,
    /// The largest request head, in bytes (HTTP/1.x; at least 8192). Larger: `431`. Default: 64 KiB.
    pub max_header_bytes: usize,
    /// The most header fields in a request head (HTTP/1.x). More: `431`. Default: 100.
    pub max_headers: usize,
    /// The longest request target, in bytes. Longer: `414`. Default: 8192.
    pub max_uri_length: usize,
    /// The request body limit set on every request body (the app may change it); `None`: no
    /// limit. Past it: `413`. Default: 16 MiB.
    pub max_body_bytes: Option<u64>,
    /// The most connections served at once; more wait in the listen backlog. Default: 10000.
    pub max_connections: usize,
    /// HTTP/2: the most concurrent streams per connection. Default: 100.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: the largest header list, in bytes. Default: 64 KiB.
    pub h2_max_header_list_size: u32,
    /// HTTP/2: the most streams reset by the client before the server accepted them
    /// (rapid-reset guard). Default: 20.
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2: the most streams the server may reset for protocol errors before it closes the
    /// connection. Default: 1024.
    pub h2_max_local_error_reset_streams: usize,
    /// WebSocket limits. Default: messages up to 16 MiB.
    pub ws: WsConfig,
    /// Log one line per request (target `rgi_server::access`). Default: on.
    pub access_log: bool,
    /// Set `SO_REUSEPORT` on the TCP listeners, so that several processes can listen on one
    /// port and the kernel spreads connections among them. Default: off.
    pub reuse_port: bool,
    /// Answer requests for this exact path (any method; `HEAD` without a body) in the server,
    /// never calling the application: `200 ok` while serving, `503 draining` once the server
    /// is draining or was marked unready ([`crate::ShutdownHandle::mark_unready`]).
    /// Default: none.
    pub health_path: Option<String>,
    /// Give every request an `x-request-id`: the one the request carries when the peer is a
    /// trusted proxy ([`Config::proxy_headers`] and [`Config::forwarded_allow_ips`]) and the
    /// value is valid, a generated one otherwise. The application sees it as the request's
    /// `x-request-id` field, the response carries it and the access log line records it.
    /// Default: off.
    pub request_id: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: Vec::new(),
            uds: Vec::new(),
            tls: None,
            http: HttpVersions::Auto,
            proxy_headers: false,
            forwarded_allow_ips: TrustedProxies::localhost(),
            root_path: None,
            graceful_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            min_body_rate: Some(MinBodyRate::DEFAULT),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_uri_length: 8192,
            max_body_bytes: Some(16 * 1024 * 1024),
            max_connections: 10_000,
            h2_max_concurrent_streams: 100,
            h2_max_header_list_size: 64 * 1024,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 1024,
            ws: WsConfig {
                max_message_size: 16 << 20,
                ..WsConfig::default()
            },
            access_log: true,
            reuse_port: false,
            health_path: None,
            request_id: false,
        }
    }
}

/// The default TCP address: `127.0.0.1:8000`.
pub(crate) const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8000);

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $ty:ty),* $(,)?) => {
        $(
            #[$doc]
            #[must_use]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}

impl Config {
    /// Adds a TCP address to listen on.
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind.push(addr);
        self
    }

    /// Adds a Unix domain socket to listen on.
    #[must_use]
    pub fn uds(mut self, path: impl Into<PathBuf>) -> Self {
        self.uds.push(path.into());
        self
    }

    setter! {
        /// Sets [`Config::tls`].
        tls: Option<TlsFiles>,
        /// Sets [`Config::http`].
        http: HttpVersions,
        /// Sets [`Config::proxy_headers`].
        proxy_headers: bool,
        /// Sets [`Config::forwarded_allow_ips`].
        forwarded_allow_ips: TrustedProxies,
        /// Sets [`Config::root_path`].
        root_path: Option<MountPrefix>,
        /// Sets [`Config::graceful_timeout`].
        graceful_timeout: Duration,
        /// Sets [`Config::header_read_timeout`].
        header_read_timeout: Duration,
        /// Sets [`Config::keep_alive_timeout`].
        keep_alive_timeout: Duration,
        /// Sets [`Config::body_read_timeout`].
        body_read_timeout: Duration,
        /// Sets [`Config::write_timeout`].
        write_timeout: Duration,
        /// Sets [`Config::min_body_rate`].
        min_body_rate: Option<MinBodyRate>,
        /// Sets [`Config::max_header_bytes`].
        max_header_bytes: usize,
        /// Sets [`Config::max_headers`].
        max_headers: usize,
        /// Sets [`Config::max_uri_length`].
        max_uri_length: usize,
        /// Sets [`Config::max_body_bytes`].
        max_body_bytes: Option<u64>,
        /// Sets [`Config::max_connections`].
        max_connections: usize,
        /// Sets [`Config::h2_max_concurrent_streams`].
        h2_max_concurrent_streams: u32,
        /// Sets [`Config::h2_max_header_list_size`].
        h2_max_header_list_size: u32,
        /// Sets [`Config::h2_max_pending_accept_reset_streams`].
        h2_max_pending_accept_reset_streams: usize,
        /// Sets [`Config::h2_max_local_error_reset_streams`].
        h2_max_local_error_reset_streams: usize,
        /// Sets [`Config::ws`].
        ws: WsConfig,
        /// Sets [`Config::access_log`].
        access_log: bool,
        /// Sets [`Config::reuse_port`].
        reuse_port: bool,
        /// Sets [`Config::health_path`].
        health_path: Option<String>,
        /// Sets [`Config::request_id`].
        request_id: bool,
    }

    /// [`Config::write_timeout`] as a limit: `None` when it is off (zero).
    pub(crate) fn write_timeout_limit(&self) -> Option<Duration> {
        (!self.write_timeout.is_zero()).then_some(self.write_timeout)
    }

    /// The TCP addresses the server binds: [`Config::bind`], or the default when neither a
    /// TCP address nor a Unix socket is configured (and no socket is inherited).
    pub(crate) fn tcp_addresses(&self) -> Vec<SocketAddr> {
        if self.bind.is_empty() && self.uds.is_empty() {
            vec![DEFAULT_BIND]
        } else {
            self.bind.clone()
        }
    }
}

/// The HTTP versions a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpVersions {
    /// HTTP/1.0, HTTP/1.1 and HTTP/2 on one port (h2c with prior knowledge; ALPN with TLS).
    #[default]
    Auto,
    /// HTTP/1.0 and HTTP/1.1 only.
    Http1Only,
    /// HTTP/2 only.
    Http2Only,
}

/// The minimum rate of a request body ([`Config::min_body_rate`], `SRV-LIMIT-20`): after
/// `grace` of waiting, the application may wait no longer than the body's bytes so far earn at
/// `bytes_per_second`.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use rgi_server::{Config, MinBodyRate};
///
/// let rate = MinBodyRate::new(NonZeroU32::new(1024).unwrap(), Duration::from_secs(10));
/// let config = Config::default().min_body_rate(Some(rate));
/// assert_eq!(config.min_body_rate.unwrap().bytes_per_second.get(), 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MinBodyRate {
    /// The average rate the body must keep, in bytes per second of waiting.
    pub bytes_per_second: NonZeroU32,
    /// The waiting allowed before the rate applies.
    pub grace: Duration,
}

impl MinBodyRate {
    /// The default: 240 bytes per second after 5 s (Kestrel's `MinRequestBodyDataRate`).
    pub const DEFAULT: Self = Self {
        bytes_per_second: NonZeroU32::new(240).expect("240 is not zero"),
        grace: Duration::from_secs(5),
    };

    /// A rate of `bytes_per_second` after `grace`.
    pub fn new(bytes_per_second: NonZeroU32, grace: Duration) -> Self {
        Self {
            bytes_per_second,
            grace,
        }
    }
}

/// The PEM files of a TLS server identity, and optionally of the CAs for client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The certificate chain, end-entity first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates to verify client certificates against. With it the server asks for a
    /// client certificate (clients without one are still served); the verified chain reaches
    /// the application as [`rgi::TlsInfo::peer_certificates`].
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The identity in `cert` and `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// Asks clients for certificates issued by the CAs in `path` (PEM).
    #[must_use]
    pub fn with_client_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(path.into());
        self
    }
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` lies in the network. IPv4-mapped IPv6 addresses match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

impl FromStr for IpNetwork {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::InvalidNetwork(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = canonical(addr.trim().parse::<IpAddr>().map_err(|_| invalid())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| invalid())?,
            None => max,
        };
        if prefix > max {
            return Err(invalid());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The peers whose proxy headers the server trusts: a list of networks, or everyone (`*`).
///
/// ```
/// use rgi_server::TrustedProxies;
///
/// let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
/// assert!(trusted.contains("10.1.2.3".parse().unwrap()));
/// assert!(!trusted.contains("192.168.0.1".parse().unwrap()));
/// assert!("*".parse::<TrustedProxies>().unwrap().contains("192.168.0.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    any: bool,
    networks: Vec<IpNetwork>,
}

impl TrustedProxies {
    /// Only `127.0.0.1` (the default).
    pub fn localhost() -> Self {
        Self {
            any: false,
            networks: vec![IpNetwork {
                addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                prefix: 32,
            }],
        }
    }

    /// Every peer (`*`).
    pub fn any() -> Self {
        Self {
            any: true,
            networks: Vec::new(),
        }
    }

    /// Exactly these networks.
    pub fn networks(networks: Vec<IpNetwork>) -> Self {
        Self {
            any: false,
            networks,
        }
    }

    /// Whether a peer at `ip` is trusted.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.any || self.networks.iter().any(|net| net.contains(ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = ConfigError;

    /// A comma-separated list of IP addresses and CIDR networks, or `*`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let mut trusted = Self::networks(Vec::new());
        for item in s.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            if item == "*" {
                trusted.any = true;
            } else {
                trusted.networks.push(item.parse()?);
            }
        }
        Ok(trusted)
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not an IP address or CIDR network.
    #[error("invalid IP address or network {0:?}")]
    InvalidNetwork(String),
    /// Not a duration in seconds.
    #[error("invalid duration {0:?}: expected a non-negative number of seconds")]
    InvalidDuration(String),
    /// Not a valid root path.
    #[error(transparent)]
    InvalidRootPath(#[from] rgi::path::InvalidMountPrefix),
    /// `--tls-cert` without `--tls-key` or the other way round.
    #[error("--tls-cert and --tls-key must be given together")]
    IncompleteTls,
    /// `--http1-only` together with `--http2-only`.
    #[error("--http1-only and --http2-only exclude each other")]
    ConflictingVersions,
    /// A limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The health path is not an absolute path without query (`/healthz`).
    #[error("invalid health path {0:?}: expected an absolute path such as /healthz")]
    InvalidHealthPath(String),
}

/// Checks a health path: absolute, no query or fragment, no whitespace or control bytes.
pub(crate) fn validate_health_path(path: &str) -> Result<(), ConfigError> {
    let valid = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::InvalidHealthPath(path.to_owned()))
    }
}

/// Parses a duration given in seconds (`30`, `0.5`).
pub(crate) fn parse_seconds(s: &str) -> Result<Duration, ConfigError> {
    let seconds: f64 = s
        .trim()
        .parse()
        .map_err(|_| ConfigError::InvalidDuration(s.to_owned()))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| ConfigError::InvalidDuration(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let net: IpNetwork = "192.168.1.0/23".parse().unwrap();
        assert!(net.contains("192.168.0.7".parse().unwrap()));
        assert!(!net.contains("192.168.2.7".parse().unwrap()));
        let net: IpNetwork = "::1".parse().unwrap();
        assert!(net.contains("::1".parse().unwrap()));
        assert!(!net.contains("::2".parse().unwrap()));
        let net: IpNetwork = "127.0.0.1".parse().unwrap();
        assert!(net.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNetwork>().is_err());
        assert!("nonsense".parse::<IpNetwork>().is_err());
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(parse_seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("x").is_err());
    }
}
