//! The standard command line of every RGI binary that calls [`crate::run`].

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{
    Config, ConfigError, HttpVersions, MinBodyRate, TlsFiles, TrustedProxies, parse_seconds,
};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

fn seconds(s: &str) -> Result<Duration, ConfigError> {
    parse_seconds(s)
}

/// An RGI application served by rgi-server.
#[derive(Debug, Parser)]
#[command(version, about = "An RGI application served by rgi-server")]
pub(crate) struct Cli {
    /// TCP address to listen on, HOST:PORT (repeatable; IPv6 as [::1]:8000).
    /// [default: 127.0.0.1:8000 unless --uds is given]
    #[arg(
        long,
        env = "RGI_BIND",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    bind: Vec<SocketAddr>,

    /// Unix domain socket to listen on (repeatable).
    #[arg(long, env = "RGI_UDS", value_name = "PATH")]
    uds: Vec<PathBuf>,

    /// Runtime worker threads [default: the number of CPUs].
    #[arg(long, env = "RGI_WORKERS", value_name = "N")]
    workers: Option<usize>,

    /// TLS certificate chain (PEM); requires --tls-key.
    #[arg(long, env = "RGI_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); requires --tls-cert.
    #[arg(long, env = "RGI_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// CA certificates (PEM) for optional client certificates; requires --tls-cert.
    #[arg(long, env = "RGI_TLS_CLIENT_CA", value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,

    /// Speak HTTP/1.x only.
    #[arg(long, env = "RGI_HTTP1_ONLY", conflicts_with = "http2_only")]
    http1_only: bool,

    /// Speak HTTP/2 only.
    #[arg(long, env = "RGI_HTTP2_ONLY")]
    http2_only: bool,

    /// Take the client address and scheme from Forwarded / X-Forwarded-For / X-Forwarded-Proto,
    /// only when the peer is in --forwarded-allow-ips.
    #[arg(long, env = "RGI_PROXY_HEADERS")]
    proxy_headers: bool,

    /// Peers trusted to send proxy headers: comma-separated IPs and CIDR networks, or `*`.
    #[arg(
        long,
        env = "RGI_FORWARDED_ALLOW_IPS",
        value_name = "LIST",
        default_value = "127.0.0.1"
    )]
    forwarded_allow_ips: TrustedProxies,

    /// Mount prefix the application is served under (e.g. /api); requests outside it get 404.
    #[arg(long, env = "RGI_ROOT_PATH", value_name = "PATH")]
    root_path: Option<String>,

    /// Seconds in-flight requests may run after a shutdown signal.
    #[arg(long, env = "RGI_GRACEFUL_TIMEOUT", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    graceful_timeout: Duration,

    /// Seconds a client may take to send a request head.
    #[arg(long, env = "RGI_HEADER_READ_TIMEOUT", value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    header_read_timeout: Duration,

    /// Seconds an idle connection is kept open.
    #[arg(long, env = "RGI_KEEP_ALIVE_TIMEOUT", value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    keep_alive_timeout: Duration,

    /// Seconds the application may wait for request body bytes before the body fails (408); 0: no limit.
    #[arg(long, env = "RGI_BODY_READ_TIMEOUT", value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    body_read_timeout: Duration,

    /// Slowest average rate, in bytes per second, of a request body of declared length while the app waits for it (after --min-body-rate-grace); slower gets 408; 0: no minimum.
    #[arg(
        long,
        env = "RGI_MIN_BODY_RATE",
        value_name = "BYTES_PER_SECOND",
        default_value_t = 240
    )]
    min_body_rate: u32,

    /// Seconds of waiting for a request body before --min-body-rate applies.
    #[arg(long, env = "RGI_MIN_BODY_RATE_GRACE", value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    min_body_rate_grace: Duration,

    /// Seconds a write to a client may make no progress before the connection is closed (an HTTP/2 stream left without flow-control window is reset); 0: no limit.
    #[arg(long, env = "RGI_WRITE_TIMEOUT", value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    write_timeout: Duration,

    /// Largest request head in bytes (at least 8192); larger gets 431.
    #[arg(
        long,
        env = "RGI_MAX_HEADER_BYTES",
        value_name = "BYTES",
        default_value_t = 65536
    )]
    max_header_bytes: usize,

    /// Most header fields in a request; more gets 431.
    #[arg(long, env = "RGI_MAX_HEADERS", value_name = "N", default_value_t = 100)]
    max_headers: usize,

    /// Longest request target in bytes; longer gets 414.
    #[arg(
        long,
        env = "RGI_MAX_URI_LENGTH",
        value_name = "BYTES",
        default_value_t = 8192
    )]
    max_uri_length: usize,

    /// Default request body limit in bytes (0: no limit); larger gets 413.
    #[arg(long, env = "RGI_MAX_BODY_BYTES", value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: u64,

    /// Most connections served at once; more wait in the listen backlog.
    #[arg(
        long,
        env = "RGI_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    max_connections: usize,

    /// HTTP/2: most concurrent streams per connection.
    #[arg(
        long,
        env = "RGI_H2_MAX_CONCURRENT_STREAMS",
        value_name = "N",
        default_value_t = 100
    )]
    h2_max_concurrent_streams: u32,

    /// HTTP/2: largest header list in bytes.
    #[arg(
        long,
        env = "RGI_H2_MAX_HEADER_LIST_SIZE",
        value_name = "BYTES",
        default_value_t = 65536
    )]
    h2_max_header_list_size: u32,

    /// HTTP/2: most client-reset streams pending accept (rapid-reset guard).
    #[arg(
        long,
        env = "RGI_H2_MAX_PENDING_ACCEPT_RESET_STREAMS",
        value_name = "N",
        default_value_t = 20
    )]
    h2_max_pending_accept_reset_streams: usize,

    /// HTTP/2: most streams reset for errors before the connection is closed.
    #[arg(
        long,
        env = "RGI_H2_MAX_LOCAL_ERROR_RESET_STREAMS",
        value_name = "N",
        default_value_t = 1024
    )]
    h2_max_local_error_reset_streams: usize,

    /// Largest WebSocket message in bytes (larger: close 1009).
    #[arg(long, env = "RGI_WS_MAX_MESSAGE", value_name = "BYTES", default_value_t = 16 << 20)]
    ws_max_message: usize,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives. Warnings
    /// a client can cause once per frame (h2's unsolicited PING acks) stay off unless the
    /// filter names `h2`.
    #[arg(
        long,
        env = "RGI_LOG_LEVEL",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub(crate) log_level: String,

    /// Log format.
    #[arg(long, env = "RGI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// Log one line per request [default].
    #[arg(long, env = "RGI_ACCESS_LOG", overrides_with = "no_access_log")]
    access_log: bool,

    /// Do not log one line per request.
    #[arg(long, env = "RGI_NO_ACCESS_LOG", overrides_with = "access_log")]
    no_access_log: bool,

    /// Set SO_REUSEPORT on TCP listeners, so that several processes can share one port.
    #[arg(long, env = "RGI_REUSE_PORT")]
    reuse_port: bool,

    /// Path answered by the server itself, never by the app: 200 while serving, 503 while
    /// draining (e.g. /healthz). [default: none]
    #[arg(long, env = "RGI_HEALTH_PATH", value_name = "PATH")]
    health_path: Option<String>,

    /// Give every request an X-Request-Id: taken from the request when the peer is a trusted
    /// proxy (--proxy-headers, --forwarded-allow-ips), generated otherwise; the app sees it,
    /// the response echoes it and the access log records it.
    #[arg(long, env = "RGI_REQUEST_ID")]
    request_id: bool,

    /// Seconds to keep serving after the first shutdown signal while the health path answers
    /// 503, so that load balancers stop routing here before the listeners close.
    #[arg(long, env = "RGI_SHUTDOWN_DELAY", value_name = "SECONDS", default_value = "0", value_parser = seconds)]
    pub(crate) shutdown_delay: Duration,
}

impl Cli {
    /// The runtime's worker threads, if set.
    pub(crate) fn workers(&self) -> Option<usize> {
        self.workers
    }

    /// The server configuration the flags describe.
    pub(crate) fn to_config(&self) -> Result<Config, ConfigError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let files = TlsFiles::new(cert.clone(), key.clone());
                Some(match &self.tls_client_ca {
                    Some(ca) => files.with_client_ca(ca.clone()),
                    None => files,
                })
            }
            (None, None) if self.tls_client_ca.is_none() => None,
            _ => return Err(ConfigError::IncompleteTls),
        };
        let http = match (self.http1_only, self.http2_only) {
            (false, false) => HttpVersions::Auto,
            (true, false) => HttpVersions::Http1Only,
            (false, true) => HttpVersions::Http2Only,
            (true, true) => return Err(ConfigError::ConflictingVersions),
        };
        let root_path = match self.root_path.as_deref() {
            None | Some("") | Some("/") => None,
            Some(path) => Some(rgi::MountPrefix::new(path)?),
        };
        if self.workers == Some(0) {
            return Err(ConfigError::Zero("--workers"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Zero("--max-connections"));
        }
        if let Some(path) = &self.health_path {
            crate::config::validate_health_path(path)?;
        }
        let ws = crate::ws::WsConfig {
            max_message_size: self.ws_max_message,
            ..Config::default().ws
        };
        let config = Config {
            bind: self.bind.clone(),
            uds: self.uds.clone(),
            tls,
            http,
            proxy_headers: self.proxy_headers,
            forwarded_allow_ips: self.forwarded_allow_ips.clone(),
            root_path,
            graceful_timeout: self.graceful_timeout,
            header_read_timeout: self.header_read_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            body_read_timeout: self.body_read_timeout,
            write_timeout: self.write_timeout,
            min_body_rate: NonZeroU32::new(self.min_body_rate)
                .map(|rate| MinBodyRate::new(rate, self.min_body_rate_grace)),
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            max_uri_length: self.max_uri_length,
            max_body_bytes: (self.max_body_bytes != 0).then_some(self.max_body_bytes),
            max_connections: self.max_connections,
            h2_max_concurrent_streams: self.h2_max_concurrent_streams,
            h2_max_header_list_size: self.h2_max_header_list_size,
            h2_max_pending_accept_reset_streams: self.h2_max_pending_accept_reset_streams,
            h2_max_local_error_reset_streams: self.h2_max_local_error_reset_streams,
            access_log: !self.no_access_log,
            reuse_port: self.reuse_port,
            health_path: self.health_path.clone(),
            request_id: self.request_id,
            ws,
            ..Config::default()
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["app"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().to_config().unwrap()
    }

    #[test]
    fn defaults_match_config_default() {
        let config = parse(&[]);
        let default = Config::default();
        assert!(config.bind.is_empty());
        assert_eq!(config.max_body_bytes, default.max_body_bytes);
        assert_eq!(config.graceful_timeout, default.graceful_timeout);
        assert_eq!(config.body_read_timeout, default.body_read_timeout);
        assert_eq!(default.body_read_timeout, Duration::from_secs(60));
        let config = parse(&["--body-read-timeout", "5"]);
        assert_eq!(config.body_read_timeout, Duration::from_secs(5));
        assert_eq!(config.min_body_rate, default.min_body_rate);
        assert_eq!(default.min_body_rate, Some(MinBodyRate::DEFAULT));
        let config = parse(&["--min-body-rate", "1000", "--min-body-rate-grace", "2"]);
        let rate = config.min_body_rate.unwrap();
        assert_eq!(rate.bytes_per_second.get(), 1000);
        assert_eq!(rate.grace, Duration::from_secs(2));
        let config = parse(&["--min-body-rate", "0"]);
        assert_eq!(config.min_body_rate, None);
        assert_eq!(default.write_timeout, Duration::from_secs(60));
        let config = parse(&["--write-timeout", "7"]);
        assert_eq!(config.write_timeout, Duration::from_secs(7));
        assert_eq!(config.max_header_bytes, default.max_header_bytes);
        assert_eq!(config.forwarded_allow_ips, default.forwarded_allow_ips);
        assert!(config.access_log);
        assert!(!config.reuse_port);
        assert_eq!(config.health_path, None);
        assert!(!config.request_id);
    }

    /// The operations flags of the deployment guide: SO_REUSEPORT, the health path, request
    /// IDs and the shutdown delay, each with its default and its environment twin.
    #[test]
    fn operations_flags() {
        let config = parse(&["--reuse-port", "--health-path", "/healthz", "--request-id"]);
        assert!(config.reuse_port);
        assert_eq!(config.health_path.as_deref(), Some("/healthz"));
        assert!(config.request_id);
        let cli = Cli::try_parse_from(["app", "--shutdown-delay", "2.5"]).unwrap();
        assert_eq!(cli.shutdown_delay, Duration::from_millis(2500));
        assert_eq!(
            Cli::try_parse_from(["app"]).unwrap().shutdown_delay,
            Duration::ZERO
        );
        for bad in ["healthz", "/health?x", "/a b"] {
            let cli = Cli::try_parse_from(["app", "--health-path", bad]).unwrap();
            assert!(
                matches!(cli.to_config(), Err(ConfigError::InvalidHealthPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_set_options() {
        let config = parse(&[
            "--bind",
            "127.0.0.1:0",
            "--bind",
            "[::1]:9000",
            "--graceful-timeout",
            "0.5",
            "--root-path",
            "/api",
            "--no-access-log",
            "--http1-only",
            "--forwarded-allow-ips",
            "10.0.0.0/8,::1",
        ]);
        assert_eq!(config.bind.len(), 2);
        assert_eq!(config.graceful_timeout, Duration::from_millis(500));
        assert_eq!(config.root_path.unwrap().as_str(), "/api");
        assert!(!config.access_log);
        assert_eq!(config.http, HttpVersions::Http1Only);
        assert!(
            config
                .forwarded_allow_ips
                .contains("10.9.9.9".parse().unwrap())
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Cli::try_parse_from(["app", "--bind", "nowhere"]).is_err());
        assert!(Cli::try_parse_from(["app", "--graceful-timeout", "-3"]).is_err());
        let cli = Cli::try_parse_from(["app", "--tls-cert", "a.pem"]).unwrap();
        assert!(matches!(cli.to_config(), Err(ConfigError::IncompleteTls)));
        let cli = Cli::try_parse_from(["app", "--root-path", "api/"]).unwrap();
        assert!(cli.to_config().is_err());
    }
}
