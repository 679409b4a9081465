//! # rgi-server — the reference RGI server
//!
//! `rgi-server` hosts any [`rgi::App`] (generic, with no boxing, or a [`rgi::BoxApp`]) over
//! HTTP/1.0, HTTP/1.1 and HTTP/2 on one port, with TLS, Unix sockets, limits against abusive
//! clients, graceful shutdown and logging. It is built on hyper 1.x and hyper-util, tokio, and
//! rustls (ring provider).
//!
//! ## One call for a binary
//!
//! ```no_run
//! use rgi::{App, Body, Request};
//! use rgi::http::Response;
//! use std::convert::Infallible;
//! use std::process::ExitCode;
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     type Body = Body;
//!     type Error = Infallible;
//!     async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
//!         Ok(Response::new(Body::from("Hello, World!")))
//!     }
//! }
//!
//! fn main() -> ExitCode {
//!     rgi_server::run(Hello)
//! }
//! ```
//!
//! [`run`] parses the standard command line (below), installs a `tracing` subscriber, builds
//! the tokio runtime, runs [`rgi::Lifespan::startup`] **before** binding anything, binds, prints
//! one line per listener to standard output once it is ready —
//!
//! ```text
//! rgi-server listening on http://127.0.0.1:8000
//! rgi-server listening on https://[::1]:8443
//! rgi-server listening on unix:/run/app.sock
//! ```
//!
//! — serves until SIGINT or SIGTERM, drains, calls [`rgi::App::shutdown`] exactly once and
//! returns the exit code. A second signal during the drain closes every connection at once.
//!
//! ### Exit codes
//!
//! | Code | Meaning |
//! |---|---|
//! | 0 | clean shutdown (after a signal), or `--help` / `--version` |
//! | 1 | the shutdown was forced by a second signal, `App::shutdown` panicked, or the runtime failed |
//! | 2 | bad command line or configuration, unreadable TLS files, a listener could not be bound, an unusable inherited socket |
//! | 3 | the application's startup failed (its message is logged) |
//!
//! ### Command line
//!
//! Every flag has an environment variable twin (`--max-body-bytes` ↔ `RGI_MAX_BODY_BYTES`) and
//! shows its default in `--help`. Durations are in seconds and may be fractional.
//!
//! | Flag | Default | Meaning |
//! |---|---|---|
//! | `--bind HOST:PORT` | `127.0.0.1:8000` | TCP listener, repeatable, IPv4 or IPv6 (`[::1]:8000`) |
//! | `--uds PATH` | | Unix domain socket listener, repeatable |
//! | `--workers N` | CPUs | runtime worker threads |
//! | `--tls-cert FILE`, `--tls-key FILE` | | PEM identity: serve HTTPS (h2 by ALPN) |
//! | `--tls-client-ca FILE` | | CAs for optional client certificates |
//! | `--http1-only`, `--http2-only` | both | HTTP versions |
//! | `--proxy-headers` | off | trust `Forwarded` / `X-Forwarded-*` from `--forwarded-allow-ips` |
//! | `--forwarded-allow-ips LIST` | `127.0.0.1` | IPs and CIDR networks, or `*` |
//! | `--root-path PATH` | | mount prefix ([`rgi::MountPrefix`]); other paths get `404` |
//! | `--graceful-timeout S` | 30 | drain deadline after a shutdown signal |
//! | `--header-read-timeout S` | 30 | time to send a request head (slowloris guard) |
//! | `--keep-alive-timeout S` | 60 | idle connection lifetime |
//! | `--body-read-timeout S` | 60 | wait for request body bytes (0: none); then `408` |
//! | `--min-body-rate N` | 240 | slowest average rate of an upload of declared length, bytes/s (0: none); then `408` (`SRV-LIMIT-20`) |
//! | `--min-body-rate-grace S` | 5 | waiting for a body before `--min-body-rate` applies |
//! | `--write-timeout S` | 60 | a write without progress (0: none); then the connection closes (`SRV-LIMIT-16`) |
//! | `--max-header-bytes N` | 65536 | request head size (HTTP/1.x, min 8192) → `431` |
//! | `--max-headers N` | 100 | header field count (HTTP/1.x) → `431` |
//! | `--max-uri-length N` | 8192 | request target length → `414` |
//! | `--max-body-bytes N` | 16777216 | default request body limit (0: none) → `413` |
//! | `--max-connections N` | 10000 | concurrent connections; the rest wait in the backlog |
//! | `--h2-max-concurrent-streams N` | 100 | HTTP/2 streams per connection |
//! | `--h2-max-header-list-size N` | 65536 | HTTP/2 header list bytes |
//! | `--h2-max-pending-accept-reset-streams N` | 20 | HTTP/2 rapid-reset guard |
//! | `--h2-max-local-error-reset-streams N` | 1024 | HTTP/2 error-reset guard |
//! | `--ws-max-message N` | 16777216 | WebSocket message size → close `1009` |
//! | `--log-level FILTER` | `info` | level or `tracing` directives |
//! | `--log-format text\|json` | `text` | log line format (standard error) |
//! | `--access-log`, `--no-access-log` | on | one line per request |
//! | `--reuse-port` | off | `SO_REUSEPORT` on TCP listeners: several processes share a port |
//! | `--health-path PATH` | none | answered by the server: `200` serving, `503` draining |
//! | `--request-id` | off | `x-request-id` on every request, response and access log line |
//! | `--shutdown-delay S` | 0 | after the first signal: health fails, listeners stay open for S |
//!
//! ### Deployment and operations
//!
//! The guide `docs/deployment.md` shows rgi-server behind nginx, under systemd and in rolling
//! restarts; every configuration in it is exercised by the tests.
//!
//! - **Socket activation**: when `LISTEN_PID` is the process id, [`run`] serves the
//!   `LISTEN_FDS` sockets passed from fd 3 on (TCP or Unix stream, named by `LISTEN_FDNAMES`)
//!   — see [`InheritedListeners`]; `--bind` / `--uds` add listeners of its own, and the
//!   default address is not bound. The inherited sockets are closed at shutdown like the
//!   server's own, but systemd keeps its copy: connections made while the service restarts
//!   wait in the backlog for the next process. A Unix socket file it did not create is left
//!   in place.
//! - **Several processes on one port** (`--reuse-port`): the kernel spreads new connections
//!   among the processes; one of them can be restarted while the others serve.
//! - **Health** (`--health-path`): the exact path (any method, `HEAD` without a body) is
//!   answered by the server, never by the application, `200` while serving and `503` from the
//!   first shutdown signal on. With `--shutdown-delay S` the server keeps accepting and
//!   serving for S seconds after that signal (a second signal ends the delay), so that an
//!   orchestrator polling the path stops routing before the listeners close.
//! - **Request IDs** (`--request-id`): a request from a trusted proxy (`--proxy-headers` and a
//!   peer in `--forwarded-allow-ips`) keeps its `x-request-id` when it is one value of 1 to
//!   200 visible ASCII characters; every other request gets a generated one (a random
//!   per-process prefix and a counter, `4f1c2a9e07d3b6a5-1f`), replacing what the client sent.
//!   The application reads it from the request's `x-request-id` field; the response carries
//!   it and the access log line records it (field `request_id`). Off by default: with it off,
//!   the per-request path does no extra work.
//! - **Draining**: on the shutdown signal every HTTP/1.1 keep-alive connection gets
//!   `connection: close` on the response in progress and is closed after it (idle ones at
//!   once); HTTP/2 connections get `GOAWAY` and finish their open streams (`SRV-SHUT-2`).
//!
//! ## Embedding
//!
//! [`Server`] takes a [`Config`] (the same options, as public fields with setters) and
//! [`Server::start`] returns a [`RunningServer`] with its [`RunningServer::local_addrs`];
//! [`RunningServer::shutdown`] begins a graceful shutdown and [`RunningServer::wait`] resolves
//! after the drain and [`rgi::App::shutdown`]. The embedder installs its own `tracing`
//! subscriber and handles its own signals.
//!
//! ## Architecture
//!
//! - `framing`: a request-smuggling guard. hyper accepts a request with both
//!   `Content-Length` and `Transfer-Encoding`, and reports a bad chunk size only when the body
//!   is read; the guard follows the HTTP/1 framing of the bytes hyper reads and flags such
//!   requests, which the service answers with `400` and a close without calling the
//!   application. It also enforces `--http1-only` / `--http2-only` (hyper-util ignores them
//!   when serving with upgrades) and notices the first byte of a connection, so that a client
//!   that connects and sends nothing is closed after the header read timeout.
//! - `server`: binds the listeners (socket2: `SO_REUSEADDR`, IPv6-only for IPv6 addresses,
//!   backlog 1024), one accept loop per listener. A semaphore of `max_connections` permits is
//!   acquired **before** `accept`, so excess connections wait in the kernel's backlog. Each
//!   connection runs in its own task: optional TLS handshake (bounded by the header read
//!   timeout), then `protocol`: the first bytes (up to the 24 of HTTP/2's preface) choose
//!   hyper's HTTP/1 connection (with upgrades) or its HTTP/2 connection (h2c by prior
//!   knowledge), each boxed at its own size. hyper's `TokioTimer` is installed so the
//!   header read timeout is live; every HTTP/2 limit is set explicitly and the extended CONNECT
//!   protocol (RFC 8441) is enabled.
//! - `service`: the per-request glue. It converts hyper's request into an [`rgi::Request`]
//!   (body limit from `max_body_bytes`; extensions [`rgi::ConnectionInfo`],
//!   [`rgi::Disconnect`], [`rgi::MountPrefix`], [`rgi::upgrade::OnUpgrade`] or
//!   [`rgi::ws::WebSocketUpgrade`]), answers `414` and out-of-prefix `404` itself, and calls
//!   the application inside a panic guard. `Err` or a panic before the head becomes a
//!   `500 text/plain` without details (logged with the error); a [`rgi::BodyError`] in the error
//!   chain maps with [`rgi::BodyError::status_code`] (`413`, `408`, `400`), and
//!   `Disconnected` is logged at debug level only.
//! - `body`: the response body wrapper. It enforces the framing rules: no body bytes for `HEAD`, `204`, `304`; never more than the declared
//!   `Content-Length` and an abort when fewer arrive; an error or a panic of the body, or data
//!   after trailers, aborts (HTTP/1.1: the connection closes without the final chunk; HTTP/2:
//!   `RST_STREAM`). It settles the request's [`rgi::Disconnect`] (completed / aborted /
//!   client gone) and writes the access log line. Fields forbidden in trailers
//!   (`HTTP-TRAIL-7`) are removed from response trailers (with a warning) and from request
//!   trailers. Hop-by-hop headers the application set
//!   (`Connection`, `Keep-Alive`, `Transfer-Encoding`, `TE`, `Upgrade`, `Proxy-Connection`)
//!   are removed with a warning, except `Upgrade` on a `426 Upgrade Required` over HTTP/1.x,
//!   which RFC 9110 §15.5.22 requires; the server then sends `Connection: upgrade` with it
//!   (`HTTP-RESP-5`, `HTTP-RESP-6`).
//! - `proxy`: trusted proxy headers (RFC 7239 `Forwarded`, `X-Forwarded-For`,
//!   `X-Forwarded-Proto`), honoured only from peers in `forwarded_allow_ips` (and from Unix
//!   socket peers, which are local by construction).
//! - `tls`: rustls with the ring provider; [`rgi::TlsInfo`] carries version, cipher suite,
//!   ALPN, SNI and peer certificates.
//! - `ws`: WebSocket handshakes and sessions (tokio-tungstenite).
//!
//! ### Graceful shutdown
//!
//! On shutdown the accept loops stop and drop their listeners (new connections are refused),
//! every connection gets hyper's `graceful_shutdown` (HTTP/1: close after the current response;
//! HTTP/2: `GOAWAY`), and the server waits up to `graceful_timeout` for connections and upgraded
//! sessions to finish. WebSocket sessions run on during the drain like any exchange in progress
//! (`SRV-SHUT-2`). When the deadline expires, each remaining WebSocket session sends close
//! `1001` (where the transport still takes it), its handler is aborted and the session ends
//! within `min(ws.close_timeout, 1 s)` without waiting for the peer's answer (`WS-CLOSE-7`);
//! the rest (connections, raw upgrades) are dropped, and [`rgi::App::shutdown`] runs once
//! (`SRV-SHUT-3`). An idle keep-alive connection closes at once, a half-read request head is
//! bounded by the header read timeout, and upgraded connections by the graceful timeout: no
//! state waits forever.
//!
//! ### Policies
//!
//! - **Protocol selection**: over TLS the protocol ALPN chose is served (`h2`: HTTP/2, where a
//!   client that does not send the preface is refused; `http/1.1` or `http/1.0`: HTTP/1.x);
//!   a client that offers no ALPN gets the first bytes looked at, as on a cleartext port. There
//!   a connection that starts with the HTTP/2 preface speaks HTTP/2 with prior knowledge and
//!   anything else HTTP/1.x. A first line with no HTTP version (a broken preface, HTTP/0.9,
//!   another protocol) is closed without a response (`SRV-LIMIT-17`); `HTTP/1.2` … `HTTP/1.9`
//!   are served as HTTP/1.1 (`SRV-LIMIT-19`, RFC 9110 §2.5); any other `HTTP/` version gets
//!   `400`. `--http1-only` and `--http2-only` refuse the other protocol. The `Upgrade: h2c`
//!   switch of RFC 7540 §3.2, which RFC 9113 deprecates, is not taken: such a request is
//!   answered in HTTP/1.1 (what `curl --http2 http://…` gets; `--http2-prior-knowledge` gets
//!   HTTP/2).
//! - **Chunked bodies** (`SRV-LIMIT-15`): read by RFC 9112 §7.1 without leniency (a bare LF,
//!   whitespace or junk after a chunk size, an extension off its §7.1.1 grammar or a malformed
//!   trailer line is malformed); refused with `400`
//!   before the application has the request, or ending the connection after it, so that no
//!   request can hide in a trailer section.
//! - **Cancellation** (`CORE-CANCEL-4`): the application's call future is dropped as soon as
//!   hyper notices that the client is gone (HTTP/1.x: the connection closed or was reset;
//!   HTTP/2: the stream was reset or the connection lost); the request's
//!   [`rgi::Disconnect`] settles as `ClientGone` first. There is no grace period.
//! - **Half-close** (`HTTP-DISC-8`): an HTTP/1.x client that shuts down its sending side is
//!   treated as gone (hyper's `half_close` is off).
//! - **Read-ahead** (`HTTP-BODY-2`): request body bytes are read only as the application polls
//!   the body. What is buffered ahead is bounded by hyper's HTTP/1 read buffer (at most
//!   `max(max_header_bytes, 408 KiB)` bytes, hyper's default) and, on HTTP/2, by the stream's
//!   flow-control window (hyper's default, 1 MiB per stream).
//! - **Response trailers on HTTP/1.1** are sent (by hyper) only with chunked encoding, when the
//!   request carried `TE: trailers` and the response declares the field names in a `Trailer`
//!   header; otherwise they are dropped and the body ends cleanly. On HTTP/2 they are always
//!   sent. Request trailers reach the application as the last frame of the body on both.
//! - **`100 Continue`** is sent (by hyper) on HTTP/1.1 only, when the application first polls
//!   the body of a request that carried `Expect: 100-continue`. hyper's HTTP/2 server sends no
//!   interim responses, so on HTTP/2 the SHOULD of `HTTP-INTERIM-1` is not met: such a client
//!   sends the body after its own wait (curl: 1 s).
//! - **Malformed requests** are answered by hyper (`400`, or `431` for too many fields) or
//!   by the server (`400` for an HTTP/1.1 request without exactly one valid `Host`, an
//!   asterisk-form target without `OPTIONS`, an authority-form target without `CONNECT`, and
//!   the ambiguous framing the `framing` guard flags; `431` for a head over
//!   `max_header_bytes`, which the guard measures), and the connection is closed; they never
//!   reach the application.
//! - **Early hints** (`103`) are not offered: requests carry no [`rgi::ext::EarlyHints`] and
//!   the capability is not advertised.
//! - **Client certificates** are requested only with `--tls-client-ca`; they are optional
//!   (clients without one are served) and, when sent, must chain to those CAs. The verified
//!   chain is [`rgi::TlsInfo::peer_certificates`]; without the option it is empty.
//! - **Idle timeout**: a connection with no request in flight for `keep_alive_timeout` is
//!   closed gracefully (HTTP/1.x also bounds the wait for the next request head by the header
//!   read timeout).
//!
//! ### How the remaining requirements are met
//!
//! Some requirements of SPEC.md hold by the way the server is built rather than by a code path
//! of their own; they are listed here so that each can be checked against the code.
//!
//! - **Runtime** (`CORE-APP-6`): application futures, bodies and handlers are polled inside the
//!   server's tokio runtime (multi-threaded; `current_thread` with `--workers 1`), so
//!   `tokio::spawn`, tokio timers and tokio I/O work in application code.
//! - **Independence** (`CORE-APP-4`, `CORE-APP-5`): hyper calls the service as soon as a request
//!   head is parsed, before any body byte; every connection is its own task and every HTTP/2
//!   stream its own future, so a pending call holds up nothing else.
//! - **Dropping futures** (`CORE-CANCEL-1`, `CORE-CANCEL-3`): a call future or body is dropped
//!   only when hyper sees the client leave, at the shutdown deadline, or when the server aborts
//!   a response; it is dropped at once, never leaked.
//! - **Protocol errors in bodies** (`CORE-ERR-7`): a malformed chunked body is answered with
//!   `400` and the HTTP/1.x connection is closed; on HTTP/2 hyper resets the stream.
//! - **HTTP/2 request bodies** (`HTTP-BODY-12`): a request stream still open when the response
//!   is complete is left to hyper and the `h2` crate, which may reset it with `NO_ERROR`, as the
//!   requirement allows.
//! - **Body timeouts** (`HTTP-BODY-15`): a request body fails with
//!   [`rgi::BodyError::TimedOut`] when the application has waited `--body-read-timeout`
//!   (60 s) for bytes that do not come — a `408` if the application lets the error out before
//!   its response head. Only waiting counts: the timer runs while a poll of the body is pending,
//!   and starts afresh at the next wait. A client that sends a body slowly cannot hold a
//!   connection and the application's task for longer.
//! - **Minimum body rate** (`SRV-LIMIT-20`): an upload of declared length (`content-length`)
//!   must keep `--min-body-rate` (240 bytes per second) on average once the application has
//!   waited `--min-body-rate-grace` (5 s) for it, counting only waiting as above; slower, it
//!   fails with [`rgi::BodyError::TimedOut`] too. A trickled upload (a slow-body attack) then
//!   holds a connection for seconds, not until its `content-length` is spent. Bodies of
//!   unknown length (chunked, HTTP/2 without `content-length`) are streams that may pause, and
//!   only the body read timeout applies to them.
//! - **Write timeout** (`SRV-LIMIT-16`): a connection whose writes make no progress for
//!   `--write-timeout` (60 s) — the client stopped reading — is closed, on HTTP/1.x, HTTP/2 and
//!   upgraded connections alike; the exchange settles as not completed. Slow readers that make
//!   progress are never cut off: the timer restarts at each stalled write. On HTTP/2 a client
//!   can read the connection and still grant a stream no flow-control window: such a stream
//!   (its response, or its WebSocket or other upgraded protocol) is reset once it has waited
//!   for window that long. The application's data goes to hyper in pieces of 16 KiB on HTTP/2,
//!   so the bound is per piece: a client that keeps granting window keeps the stream.
//! - **Watching for departure** (`HTTP-DISC-5`): hyper keeps reading an HTTP/1.x connection
//!   while a call is pending, so a client that closes is noticed even when the application
//!   reads no body; HTTP/2 resets arrive as stream events.
//! - **Empty data frames** (`HTTP-FRAME-13`): hyper skips zero-length data frames; they never
//!   end a chunked body or an HTTP/2 stream early.
//! - **`Expect`** (`HTTP-INTERIM-7`): values other than `100-continue` are passed to the
//!   application; the server does not answer `417` itself.
//! - **Request fields** (`HTTP-REQ-6`, `HTTP-REQ-7`, `HTTP-REQ-9`): header lines are inserted in
//!   the order received; on HTTP/2 the crumbs of a split `cookie` field arrive as separate
//!   values; the server adds, removes and rewrites no request field.
//! - **Response fields** (`HTTP-RESP-7`): every value of a repeated field, such as
//!   `set-cookie`, is written as its own field line, in order.
//! - **Lifespan** (`LIFE-START-5`, `LIFE-START-6`, `LIFE-STATE-2`): the `listening on` lines are
//!   printed only after startup succeeded; startup runs once per run whatever `--workers` is,
//!   and every worker shares the one application value, held in an `Arc` until the last call,
//!   body and handler are dropped and [`rgi::App::shutdown`] has returned.
//! - **HTTP/2 field rules** (`SRV-LIMIT-12`, `SRV-LIMIT-18`): requests carrying
//!   connection-specific fields are malformed for the `h2` crate, which resets the stream
//!   before the service is called; a `host` that contradicts `:authority`, or a request with
//!   neither, gets `400`.
//! - **Logging** (`SRV-LOG-1`, `SRV-LOG-2`, `SRV-LOG-4`, `SRV-LOG-7`): application failures
//!   (WebSocket and upgrade handler errors and panics included) are logged at error level with
//!   the error and its sources, the method, path and connection id, and what the server did.
//!   A departed client is logged at debug level only. Malformed requests and exceeded limits
//!   (a body too slow, too large or malformed, also when it fails a response that streams it)
//!   are answered by hyper or logged at debug level, off by default, so that clients cannot
//!   flood the log. What the server corrects in a response is logged as a warning citing the
//!   requirement: hop-by-hop fields removed (`HTTP-RESP-6`), forbidden trailers removed
//!   (`HTTP-TRAIL-8`), body data for a `204`, `205` or `304` discarded (`HTTP-FRAME-8`, seen
//!   from the body's size hint; body data for `HEAD` at debug level, `HTTP-FRAME-6`).
//! - **Raw upgrades** (`UPGRADE-RAW-8`, `UPGRADE-RAW-9`, `UPGRADE-RAW-11`): when the handler
//!   returns, the upgraded stream is dropped, which closes the connection (or ends the HTTP/2
//!   stream); a handler error is logged. On HTTP/2 the upgraded stream reads and writes `DATA`
//!   frames under the stream's flow control. Bytes are relayed only after an accepted upgrade.
//! - **WebSocket** (`WS-HS-8`, `WS-HS-9`, `WS-CTRL-2`): a handshake completes only when the
//!   response carries the accept marker; no WebSocket extension is negotiated
//!   (`permessage-deflate` included); the server sends no pings of its own.
//!
//! ## Compatibility extension: hyper's `OnUpgrade`
//!
//! Besides the spec's extensions, a request that asks for an upgrade (HTTP/1.1 `Upgrade`, or
//! HTTP/2 extended CONNECT) also carries hyper's own [`hyper::upgrade::OnUpgrade`] in its
//! extensions, exactly where hyper puts it. This is an rgi-server extension (`EXT-NS-2`), there
//! so that frameworks that take it from the request — axum's `WebSocketUpgrade`, through the
//! `rgi-tower` adapter — work unchanged on this server. hyper's `OnUpgrade` is `Clone` and all
//! clones share one upgrade: the server keeps a clone and awaits it only when the application
//! accepted through [`rgi::upgrade::OnUpgrade`] or [`rgi::ws::WebSocketUpgrade`]; an
//! application that uses hyper's value directly must not also accept through RGI.
//!
//! An application that switches protocols through hyper's value answers with a `101`
//! (HTTP/1.1) or a `2xx` to an extended CONNECT (HTTP/2) without an RGI accept marker, which
//! the server would otherwise replace with a `500` (`CORE-ERR-6`). It marks such a response
//! by putting a clone of the request's `hyper::upgrade::OnUpgrade` into the *response*
//! extensions, as `rgi-tower`'s `TowerApp` does with its `hyper` feature. When the request was
//! one for which the server left hyper's `OnUpgrade` in place, the server then hands the
//! response head to hyper as the application made it — on HTTP/1.1 with its `Connection`,
//! `Upgrade` and `Sec-WebSocket-Accept` fields (on HTTP/2 the connection-specific fields are
//! removed), without a body — and does not await its own clone: the application, which took
//! the request's handle, performs the upgrade and owns the upgraded stream (the server's
//! WebSocket rules and shutdown handling do not apply to it). The request's
//! [`rgi::Disconnect`] settles as `Completed` once hyper has taken the head. The marker is
//! ignored on any other response, and on a response to a request that carried no upgrade.
#![deny(missing_docs)]

mod activation;
mod body;
mod cli;
mod config;
mod flow;
mod framing;
mod gate;
mod logging;
mod protocol;
mod proxy;
mod request_id;
mod server;
mod service;
mod stall;
mod tls;
mod ws;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

pub use activation::InheritedListeners;
pub use config::{
    Config, ConfigError, HttpVersions, IpNetwork, MinBodyRate, TlsFiles, TrustedProxies,
};
pub use server::{RunningServer, Server, ServerError, ShutdownHandle};
pub use tls::TlsError;
pub use ws::WsConfig;

/// Exit code: the command line or configuration is invalid, or a listener could not be bound.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: the application's startup failed.
pub const EXIT_STARTUP: u8 = 3;
/// Exit code: the shutdown was forced or the runtime failed.
pub const EXIT_FAILURE: u8 = 1;

/// Runs `lifespan` as a server configured by the standard command line, until a shutdown
/// signal; returns the process exit code (see the crate documentation).
pub fn run<L: rgi::Lifespan>(lifespan: L) -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(error) = logging::init(&cli.log_level, cli.log_format) {
        eprintln!("rgi-server: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match cli.to_config() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Before any thread starts: this reads and clears LISTEN_PID / LISTEN_FDS.
    let inherited = match InheritedListeners::from_env() {
        Ok(inherited) => inherited,
        Err(error) => {
            tracing::error!(%error, "cannot use the sockets passed by the service manager");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // One worker runs on the current thread: the same single thread, without the
    // work-stealing scheduler's cross-thread wake-ups (measured in BENCHMARKS.md).
    let mut runtime = match cli.workers() {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime.worker_threads(workers);
            runtime
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all();
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot build the runtime");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let server = Server::new(config).inherit(inherited);
    runtime.block_on(serve_until_signal(server, lifespan, cli.shutdown_delay))
}

async fn serve_until_signal<L: rgi::Lifespan>(
    server: Server,
    lifespan: L,
    shutdown_delay: std::time::Duration,
) -> ExitCode {
    let server = match server.start(lifespan).await {
        Ok(server) => server,
        Err(error @ (ServerError::Startup(_) | ServerError::StartupPanic(_))) => {
            tracing::error!(error = %service::error_chain(&error), "startup failed");
            return ExitCode::from(EXIT_STARTUP);
        }
        Err(error) => {
            tracing::error!(error = %service::error_chain(&error), "cannot start the server");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    {
        let mut stdout = std::io::stdout().lock();
        for url in server.urls() {
            let _ = writeln!(stdout, "rgi-server listening on {url}");
        }
        let _ = stdout.flush();
    }
    let handle = server.handle();
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!(%error, "cannot install the signal handlers");
            server.shutdown();
            let _ = server.wait().await;
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let signals = tokio::spawn(async move {
        signals.recv().await;
        if !shutdown_delay.is_zero() {
            // The health path fails first; the listeners stay open for the delay, so that
            // load balancers stop routing here before connections are refused (`SRV-OPS-3`).
            handle.mark_unready();
            tracing::info!(
                delay_s = shutdown_delay.as_secs_f64(),
                "shutdown signal received; health checks fail now, draining after the delay \
                 (a second signal drains at once)"
            );
            tokio::select! {
                () = tokio::time::sleep(shutdown_delay) => {}
                () = signals.recv() => {}
            }
        }
        tracing::info!("shutdown signal received; draining (a second signal forces exit)");
        handle.shutdown();
        signals.recv().await;
        tracing::warn!("second signal: closing every connection now");
        handle.force();
        true
    });
    let result = server.wait().await;
    let forced = if signals.is_finished() {
        signals.await.unwrap_or(false)
    } else {
        signals.abort();
        false
    };
    match result {
        Ok(()) if !forced => ExitCode::SUCCESS,
        Ok(()) => ExitCode::from(EXIT_FAILURE),
        Err(error) => {
            tracing::error!(%error, "the server failed");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// SIGTERM and SIGINT, registered once so that no signal is lost between two waits.
#[cfg(unix)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// Ctrl-C where there are no Unix signals.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn recv(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
