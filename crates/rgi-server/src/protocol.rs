//! One connection served by hyper as HTTP/1.x or HTTP/2, chosen from its first bytes.
//!
//! hyper-util's `auto` builder does the same, but its connection future is one type for both
//! protocols — every HTTP/1 connection then carries HTTP/2's state — and it re-reads the sniffed
//! bytes through an extra buffer that grows hyper's read buffer. Here the first bytes go into
//! a 24-byte array that the framing guard replays, and each protocol's connection lives in its
//! own allocation, sized for that protocol.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::{Config, HttpVersions};
use crate::flow::StreamExecutor;
use crate::framing::PREFACE;

/// hyper's HTTP/1 header count limit when none is set.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// hyper's HTTP/1 buffer bound when none is set (8 KiB + 100 × 4 KiB).
const HYPER_DEFAULT_MAX_BUF_SIZE: usize = 8192 + 4096 * 100;

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// The first bytes of a connection, read to tell HTTP/2's preface from HTTP/1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix {
    bytes: [u8; PREFACE.len()],
    // A byte: the prefix lives in every HTTP/1 connection's framing guard.
    len: u8,
}

impl Prefix {
    /// No bytes.
    pub(crate) fn empty() -> Self {
        Self {
            bytes: [0; PREFACE.len()],
            len: 0,
        }
    }

    /// How many bytes were read.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The bytes read.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// Reads until the bytes are the whole preface, differ from it, or the peer closes.
    pub(crate) async fn read<Io: AsyncRead + Unpin>(io: &mut Io) -> io::Result<Self> {
        let mut bytes = [0; PREFACE.len()];
        let mut len = 0;
        while len < PREFACE.len() {
            let n = io.read(&mut bytes[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if bytes[..len] != PREFACE[..len] {
                break;
            }
        }
        Ok(Self {
            bytes,
            // At most the preface's 24 bytes.
            len: u8::try_from(len).unwrap_or(u8::MAX),
        })
    }

    /// The protocol these bytes start.
    pub(crate) fn protocol(&self) -> Protocol {
        if self.as_bytes() == PREFACE {
            Protocol::Http2
        } else {
            Protocol::Http1
        }
    }
}

/// hyper's connection builders, configured once per server.
#[derive(Debug, Clone)]
pub(crate) struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<StreamExecutor>,
    versions: HttpVersions,
}

impl Builders {
    pub(crate) fn new(config: &Config) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            // The connection's drive loop enforces the header read timeout (`SRV-LIMIT-7`):
            // hyper's would box a new timer for every request head.
            .header_read_timeout(None)
            // hyper's one buffer bound limits both the request head and how much response
            // data it gathers into one write: bounded by the head limit, a stream of 64 KiB
            // chunks went out one `writev` each. The framing guard enforces the head limit
            // (`431`, `SRV-LIMIT-5`); hyper's bound stays at its own default.
            .max_buf_size(config.max_header_bytes.max(HYPER_DEFAULT_MAX_BUF_SIZE))
            // Not `pipeline_flush(true)`: hyper then skips the flush while request bytes are
            // buffered, and on an upgrade whose client sent protocol bytes with the request
            // the `101` head is never written (UPGRADE-RAW-3/-5). The framing guard batches
            // pipelined responses instead.
            .keep_alive(true);
        if config.max_headers != HYPER_DEFAULT_MAX_HEADERS {
            // Only when it differs: with an explicit limit hyper initializes a header array
            // of that size for every request head; its default uses an uninitialized one.
            http1.max_headers(config.max_headers.max(1));
        }
        // Each stream's task runs watched for the write timeout (`SRV-LIMIT-16`): a client
        // that grants a stream no flow-control window cannot hold it.
        let mut http2 = http2::Builder::new(StreamExecutor {
            write_timeout: config.write_timeout_limit(),
        });
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(config.h2_max_concurrent_streams)
            .max_header_list_size(config.h2_max_header_list_size)
            .max_pending_accept_reset_streams(config.h2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(config.h2_max_local_error_reset_streams)
            .enable_connect_protocol();
        Self {
            http1,
            http2,
            versions: config.http,
        }
    }

    /// Whether the first bytes must be read to choose the protocol.
    pub(crate) fn needs_sniffing(&self) -> bool {
        self.versions == HttpVersions::Auto
    }

    /// The protocol to serve a connection with: the configured one, or the one its first
    /// bytes start (the framing guard refuses a connection that breaks a `*-only` setting).
    pub(crate) fn protocol(&self, prefix: &Prefix) -> Protocol {
        match self.versions {
            HttpVersions::Http1Only => Protocol::Http1,
            HttpVersions::Http2Only => Protocol::Http2,
            HttpVersions::Auto => prefix.protocol(),
        }
    }

    /// Serves `io` with `service` as `protocol`.
    pub(crate) fn serve<Io, S, B>(&self, protocol: Protocol, io: Io, service: S) -> Served<Io, S>
    where
        Io: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match protocol {
            Protocol::Http1 => Served::Http1(Box::pin(
                self.http1
                    .serve_connection(TokioIo::new(io), service)
                    .with_upgrades(),
            )),
            Protocol::Http2 => Served::Http2(Box::pin(
                self.http2.serve_connection(TokioIo::new(io), service),
            )),
        }
    }
}

/// A connection being served.
pub(crate) enum Served<Io, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
{
    Http1(Pin<Box<http1::UpgradeableConnection<TokioIo<Io>, S>>>),
    Http2(Pin<Box<http2::Connection<TokioIo<Io>, S, StreamExecutor>>>),
}

impl<Io, S, B> Served<Io, S>
where
    Io: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Drives the connection; `Ready` when it ended.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        match self {
            Served::Http1(conn) => conn.as_mut().poll(cx),
            Served::Http2(conn) => conn.as_mut().poll(cx),
        }
    }

    /// Starts a graceful shutdown: HTTP/1 closes after the response in progress (with
    /// `Connection: close`), HTTP/2 sends GOAWAY and finishes its open streams.
    pub(crate) fn graceful_shutdown(&mut self) {
        match self {
            Served::Http1(conn) => conn.as_mut().graceful_shutdown(),
            Served::Http2(conn) => conn.as_mut().graceful_shutdown(),
        }
    }
}
