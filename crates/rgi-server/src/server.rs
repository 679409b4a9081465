//! The server: [`Server`], [`RunningServer`], listeners, connections and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use rgi::{App, Capability, ConnectionInfo, Lifespan, Scheme, ServerInfo, SocketAddress};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::activation::{InheritedListeners, InheritedSocket, SharedInherited};
use crate::config::{Config, ConfigError, HttpVersions};
use crate::framing::{Allowed, FramingGuard};
use crate::gate::{Gate, WakerSet};
use crate::protocol::{Builders, Prefix, Protocol};
use crate::service::{AppContext, CatchUnwind, ConnState, serve_request};
use crate::tls::TlsError;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration cannot be used.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The TLS identity could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address or socket path.
        address: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The application's startup failed (`LIFE-START-2`).
    #[error("the application failed to start: {0}")]
    Startup(#[source] rgi::StartupError),
    /// The application's startup panicked.
    #[error("the application panicked during startup: {0}")]
    StartupPanic(String),
    /// `App::shutdown` panicked (`LIFE-SHUT-4`); the server stopped all the same.
    #[error("the application panicked in shutdown: {0}")]
    ShutdownPanic(String),
    /// The server's supervising task failed.
    #[error("the server task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Counts running tasks (connections, upgraded sessions) so shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    count: AtomicUsize,
    idle: Notify,
}

/// One tracked task; dropping it ends the task's share.
#[derive(Debug)]
pub(crate) struct TrackToken(Arc<Tracker>);

impl Tracker {
    fn token(self: &Arc<Self>) -> TrackToken {
        self.count.fetch_add(1, Ordering::AcqRel);
        TrackToken(self.clone())
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TrackToken {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Spawns tracked tasks (upgraded connections, WebSocket sessions) that shutdown waits for.
#[derive(Debug, Clone)]
pub(crate) struct Tasks {
    tracker: Arc<Tracker>,
    force: watch::Receiver<bool>,
    /// Fired at the graceful deadline, before `force`: sessions say goodbye (close 1001) while
    /// their connections still carry it.
    closing: Arc<watch::Sender<bool>>,
    /// The tasks of [`Tasks::spawn_closing_at_deadline`], counted apart so that the deadline
    /// can wait for them (briefly) before connections are cut.
    sessions: Arc<Tracker>,
}

impl Tasks {
    /// The signal that turns true at the graceful deadline, just before connections are cut:
    /// what the tasks of [`Tasks::spawn_closing_at_deadline`] watch.
    pub(crate) fn closing_signal(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// At the deadline: tells the closing tasks to end and waits for them, up to `bound`, so
    /// that their goodbyes (close 1001) go out before the connections are cut (`WS-CLOSE-7`).
    async fn close_sessions(&self, bound: Duration) {
        self.closing.send_replace(true);
        let _ = tokio::time::timeout(bound, self.sessions.wait()).await;
    }

    /// Spawns `task`, tracked like [`Tasks::spawn`] but not dropped at the force signal:
    /// `task` watches [`Tasks::closing_signal`] itself and must end within a bounded time once
    /// it fires (a WebSocket session sends close 1001 first, `WS-CLOSE-7`). The server waits
    /// for it at the deadline, up to a bound of its own, before it cuts the connections.
    pub(crate) fn spawn_closing_at_deadline<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let tokens = (self.tracker.token(), self.sessions.token());
        tokio::spawn(async move {
            let _tokens = tokens;
            task.await;
        });
    }

    /// Spawns `task`; it is dropped when the server forces its shutdown.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.tracker.token();
        let mut force = self.force.clone();
        tokio::spawn(async move {
            let _token = token;
            tokio::select! {
                () = task => {}
                _ = force.wait_for(|forced| *forced) => {}
            }
        });
    }
}

/// Starts and stops a server: `LIFE-START` → bind → serve → drain → `LIFE-SHUT`.
///
/// ```no_run
/// use rgi_server::{Config, Server};
/// # use rgi::{App, Body, Request};
/// # use rgi::http::Response;
/// # struct Hello;
/// # impl App for Hello {
/// #     type Body = Body;
/// #     type Error = std::convert::Infallible;
/// #     async fn call(&self, _: Request) -> Result<Response<Body>, Self::Error> {
/// #         Ok(Response::new(Body::from("hi")))
/// #     }
/// # }
/// # async fn example() -> Result<(), rgi_server::ServerError> {
/// let config = Config::default().bind("127.0.0.1:0".parse().unwrap());
/// let server = Server::new(config).start(Hello).await?;
/// println!("listening on {:?}", server.local_addrs());
/// server.shutdown();
/// server.wait().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Server {
    config: Config,
    inherited: SharedInherited,
}

/// A server that is serving: its addresses, and the handles to stop it.
#[derive(Debug)]
pub struct RunningServer {
    addrs: Vec<SocketAddr>,
    unix: Vec<PathBuf>,
    scheme: Scheme,
    handle: ShutdownHandle,
    supervisor: JoinHandle<Result<(), ServerError>>,
}

/// Begins the shutdown of a [`RunningServer`] from anywhere (cheap to clone).
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    graceful: Arc<watch::Sender<bool>>,
    force: Arc<watch::Sender<bool>>,
    unready: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Begins a graceful shutdown: stop accepting, finish in-flight requests within the
    /// graceful timeout, then close the rest. The health path answers `503` from now on.
    pub fn shutdown(&self) {
        self.unready.store(true, Ordering::Release);
        self.graceful.send_replace(true);
    }

    /// Marks the server as not ready: the health path ([`Config::health_path`]) answers
    /// `503` from now on while everything else is served as before. [`crate::run`] calls it
    /// at the first shutdown signal, before the shutdown delay, so that load balancers stop
    /// routing here before the listeners close.
    pub fn mark_unready(&self) {
        self.unready.store(true, Ordering::Release);
    }

    /// Whether the health path answers `200` (neither marked unready nor shutting down).
    pub fn is_ready(&self) -> bool {
        !self.unready.load(Ordering::Acquire)
    }

    /// Closes every connection now (in-flight requests are cut short), then shuts down.
    pub fn force(&self) {
        self.graceful.send_replace(true);
        self.force.send_replace(true);
    }

    /// Whether a shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.graceful.borrow()
    }
}

impl RunningServer {
    /// The TCP addresses the server listens on (with the real ports when port 0 was asked).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The Unix domain sockets the server listens on.
    pub fn unix_paths(&self) -> &[PathBuf] {
        &self.unix
    }

    /// The URLs of the listeners: `http://127.0.0.1:8000`, `https://[::1]:8443`, `unix:/path`.
    pub fn urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = self
            .addrs
            .iter()
            .map(|addr| format!("{}://{addr}", self.scheme))
            .collect();
        urls.extend(
            self.unix
                .iter()
                .map(|path| format!("unix:{}", path.display())),
        );
        urls
    }

    /// A handle that can stop the server while another task waits for it.
    pub fn handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Begins a graceful shutdown (see [`ShutdownHandle::shutdown`]).
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }

    /// Waits until the server has shut down: listeners closed, connections drained (or cut at
    /// the graceful timeout) and [`App::shutdown`] returned. It does not begin a shutdown.
    pub async fn wait(self) -> Result<(), ServerError> {
        self.supervisor.await.map_err(ServerError::Task)?
    }
}

/// The listeners, before they serve.
enum Listener {
    Tcp(TcpListener, SocketAddr),
    /// A Unix listener, its path, and whether the server created the socket file (and so
    /// removes it at the end).
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf, bool),
}

fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    if reuse_port {
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        socket.set_reuse_port(true)?;
        #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SO_REUSEPORT is not available here",
        ));
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

#[cfg(unix)]
fn bind_unix(path: &std::path::Path) -> io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    tokio::net::UnixListener::bind(path)
}

/// Takes over inherited listening sockets (non-blocking, registered with tokio).
fn adopt(inherited: InheritedListeners) -> Result<Vec<Listener>, ServerError> {
    let mut listeners = Vec::new();
    for (socket, name) in inherited.sockets {
        let label = name.unwrap_or_else(|| "inherited socket".to_owned());
        let error = |source| ServerError::Bind {
            address: label.clone(),
            source,
        };
        match socket {
            InheritedSocket::Tcp(listener) => {
                listener.set_nonblocking(true).map_err(error)?;
                let local = listener.local_addr().map_err(error)?;
                let listener = TcpListener::from_std(listener).map_err(error)?;
                tracing::info!(name = %label, address = %local, "serving an inherited socket");
                listeners.push(Listener::Tcp(listener, local));
            }
            #[cfg(unix)]
            InheritedSocket::Unix(listener) => {
                listener.set_nonblocking(true).map_err(error)?;
                let path = listener
                    .local_addr()
                    .map_err(error)?
                    .as_pathname()
                    .map(PathBuf::from)
                    .unwrap_or_default();
                let listener = tokio::net::UnixListener::from_std(listener).map_err(error)?;
                tracing::info!(name = %label, path = %path.display(), "serving an inherited socket");
                listeners.push(Listener::Unix(listener, path, false));
            }
        }
    }
    Ok(listeners)
}

fn bind_all(config: &Config, inherited: InheritedListeners) -> Result<Vec<Listener>, ServerError> {
    let only_inherited = !inherited.is_empty() && config.bind.is_empty() && config.uds.is_empty();
    let mut listeners = adopt(inherited)?;
    let tcp = if only_inherited {
        Vec::new()
    } else {
        config.tcp_addresses()
    };
    for addr in tcp {
        let listener = bind_tcp(addr, config.reuse_port).map_err(|source| ServerError::Bind {
            address: addr.to_string(),
            source,
        })?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind {
            address: addr.to_string(),
            source,
        })?;
        listeners.push(Listener::Tcp(listener, local));
    }
    for path in &config.uds {
        #[cfg(unix)]
        {
            let listener = bind_unix(path).map_err(|source| ServerError::Bind {
                address: format!("unix:{}", path.display()),
                source,
            })?;
            listeners.push(Listener::Unix(listener, path.clone(), true));
        }
        #[cfg(not(unix))]
        return Err(ServerError::Bind {
            address: format!("unix:{}", path.display()),
            source: io::Error::new(io::ErrorKind::Unsupported, "no Unix sockets here"),
        });
    }
    Ok(listeners)
}

/// What every connection of a server shares.
struct ConnShared {
    builders: Builders,
    tls: Option<TlsAcceptor>,
    semaphore: Arc<Semaphore>,
    next_id: AtomicU64,
    handshake_timeout: Duration,
    /// The header read timeout of HTTP/1 connections (`SRV-LIMIT-7`), `None` when off.
    header_read_timeout: Option<Duration>,
    keep_alive_timeout: Option<Duration>,
    /// How long a write may make no progress before the connection is closed.
    write_timeout: Option<Duration>,
    max_head: usize,
    allowed: Allowed,
    tracker: Arc<Tracker>,
    graceful: watch::Receiver<bool>,
    force: watch::Receiver<bool>,
    /// The gate wakers of the open connections, opened when `graceful` or `force` changes.
    wakers: WakerSet,
}

/// The startup description the application receives (`EXT-CAP-2`).
fn server_info(config: &Config) -> ServerInfo {
    let mut info = ServerInfo::new("rgi-server", env!("CARGO_PKG_VERSION"))
        .with_capability(Capability::RequestTrailers)
        .with_capability(Capability::ResponseTrailers)
        .with_capability(Capability::Upgrade)
        .with_capability(Capability::WebSocket)
        .with_capability(Capability::MountPrefix)
        .with_capability(Capability::ProxyHeaders)
        .with_capability(Capability::UnixSockets);
    if config.http != HttpVersions::Http2Only {
        info = info.with_capability(Capability::Http1);
    }
    if config.http != HttpVersions::Http1Only {
        info = info
            .with_capability(Capability::Http2)
            .with_capability(Capability::WebSocketHttp2);
    }
    if config.tls.is_some() {
        info = info.with_capability(Capability::Tls);
    }
    info
}

impl Server {
    /// A server with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            inherited: SharedInherited::default(),
        }
    }

    /// Serves `listeners` too (systemd socket activation: [`InheritedListeners::from_env`]).
    /// When there are some and neither [`Config::bind`] nor [`Config::uds`] is set, the
    /// server listens on them only (not on the default address).
    #[must_use]
    pub fn inherit(self, listeners: InheritedListeners) -> Self {
        if let Ok(mut slot) = self.inherited.lock() {
            *slot = Some(listeners);
        }
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the application's startup (`LIFE-START-1`: before anything is bound or accepted),
    /// binds the listeners and begins serving.
    ///
    /// Fails with [`ServerError::Startup`] when the startup fails, and with
    /// [`ServerError::Bind`] when a listener cannot be bound (after calling
    /// [`App::shutdown`] on the started application). Must be called inside a tokio runtime.
    pub async fn start<L: Lifespan>(self, lifespan: L) -> Result<RunningServer, ServerError> {
        let config = self.config;
        let inherited = self
            .inherited
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .unwrap_or_default();
        if config.max_connections == 0 {
            return Err(ConfigError::Zero("max_connections").into());
        }
        let tls = match &config.tls {
            Some(files) => Some(TlsAcceptor::from(crate::tls::server_config(
                files,
                config.http,
            )?)),
            None => None,
        };

        let startup = CatchUnwind::new(lifespan.startup(server_info(&config)));
        let app = match startup.await {
            Ok(Ok(app)) => app,
            Ok(Err(error)) => return Err(ServerError::Startup(error)),
            Err(panic) => {
                return Err(ServerError::StartupPanic(crate::service::panic_message(
                    &*panic,
                )));
            }
        };

        if let Some(path) = &config.health_path {
            crate::config::validate_health_path(path)?;
        }
        let listeners = match bind_all(&config, inherited) {
            Ok(listeners) => listeners,
            Err(error) => {
                app.shutdown().await;
                return Err(error);
            }
        };

        let (graceful_tx, graceful_rx) = watch::channel(false);
        let (force_tx, force_rx) = watch::channel(false);
        let tracker = Arc::new(Tracker::default());
        let unready = Arc::new(AtomicBool::new(false));
        let scheme = if tls.is_some() {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let shared = Arc::new(AppContext {
            app,
            max_uri_length: config.max_uri_length,
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: (!config.body_read_timeout.is_zero())
                .then_some(config.body_read_timeout),
            min_body_rate: config.min_body_rate,
            write_timeout: config.write_timeout_limit(),
            root_path: config.root_path.clone(),
            trusted_proxies: config
                .proxy_headers
                .then(|| config.forwarded_allow_ips.clone()),
            access_log: config.access_log,
            health_path: config.health_path.clone(),
            request_ids: config.request_id.then(crate::request_id::RequestIds::new),
            unready: unready.clone(),
            ws: config.ws.clone(),
            tasks: Tasks {
                tracker: tracker.clone(),
                force: force_rx.clone(),
                closing: Arc::new(watch::channel(false).0),
                sessions: Arc::new(Tracker::default()),
            },
        });
        let conns = Arc::new(ConnShared {
            builders: Builders::new(&config),
            tls,
            semaphore: Arc::new(Semaphore::new(
                config.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            next_id: AtomicU64::new(1),
            handshake_timeout: if config.header_read_timeout.is_zero() {
                Duration::from_secs(30)
            } else {
                config.header_read_timeout
            },
            header_read_timeout: (!config.header_read_timeout.is_zero())
                .then_some(config.header_read_timeout),
            keep_alive_timeout: (!config.keep_alive_timeout.is_zero())
                .then_some(config.keep_alive_timeout),
            write_timeout: config.write_timeout_limit(),
            max_head: config.max_header_bytes.max(8192),
            allowed: match config.http {
                HttpVersions::Http1Only => Allowed::Http1,
                HttpVersions::Http2Only => Allowed::Http2,
                HttpVersions::Auto => Allowed::Both,
            },
            tracker: tracker.clone(),
            graceful: graceful_rx.clone(),
            force: force_rx,
            wakers: WakerSet::default(),
        });
        tokio::spawn(relay_shutdown(conns.clone()));

        let mut addrs = Vec::new();
        let mut unix = Vec::new();
        let mut acceptors = Vec::new();
        for listener in listeners {
            match &listener {
                Listener::Tcp(_, addr) => addrs.push(*addr),
                #[cfg(unix)]
                Listener::Unix(_, path, _) => unix.push(path.clone()),
            }
            acceptors.push(tokio::spawn(accept_loop(
                listener,
                shared.clone(),
                conns.clone(),
            )));
        }

        let handle = ShutdownHandle {
            graceful: Arc::new(graceful_tx),
            force: Arc::new(force_tx),
            unready,
        };
        let running = RunningServer {
            addrs,
            unix,
            scheme,
            handle: handle.clone(),
            supervisor: tokio::spawn(supervise(
                shared,
                acceptors,
                tracker,
                handle,
                graceful_rx,
                config.graceful_timeout,
            )),
        };
        tracing::info!(
            addresses = ?running.urls(),
            version = env!("CARGO_PKG_VERSION"),
            spec = %rgi::SPEC_VERSION,
            "rgi-server listening"
        );
        Ok(running)
    }
}

/// Waits for the shutdown signal, drains, and calls `App::shutdown` exactly once.
async fn supervise<A: App>(
    shared: Arc<AppContext<A>>,
    acceptors: Vec<JoinHandle<Option<PathBuf>>>,
    tracker: Arc<Tracker>,
    handle: ShutdownHandle,
    mut graceful: watch::Receiver<bool>,
    graceful_timeout: Duration,
) -> Result<(), ServerError> {
    let _ = graceful.wait_for(|shutting_down| *shutting_down).await;
    let mut unix_paths = Vec::new();
    for acceptor in acceptors {
        if let Ok(Some(path)) = acceptor.await {
            unix_paths.push(path);
        }
    }
    tracing::info!(
        connections = tracker.len(),
        timeout_s = graceful_timeout.as_secs_f64(),
        "shutting down: no longer accepting, draining connections"
    );
    let mut force = handle.force.subscribe();
    let drained = tokio::select! {
        result = tokio::time::timeout(graceful_timeout, tracker.wait()) => result.is_ok(),
        _ = force.wait_for(|forced| *forced) => false,
    };
    if !drained {
        tracing::warn!(
            connections = tracker.len(),
            "closing the connections that did not finish in time"
        );
        // Sessions close first (1001 goes out on live connections), then everything is cut.
        shared.tasks.close_sessions(Duration::from_secs(2)).await;
        handle.force.send_replace(true);
        // Every task ends at the force signal; this bound only guards against a stuck drop.
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    }
    let result = match CatchUnwind::new(shared.app.shutdown()).await {
        Ok(()) => Ok(()),
        Err(panic) => {
            let message = crate::service::panic_message(&*panic);
            tracing::error!(panic = %message, "the application panicked in shutdown");
            Err(ServerError::ShutdownPanic(message))
        }
    };
    for path in unix_paths {
        let _ = std::fs::remove_file(&path);
    }
    tracing::info!("rgi-server stopped");
    result
}

/// Whether an accept error concerns only the one connection (the listener is fine).
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Accepts connections until shutdown; at most `max_connections` are served at once (the
/// rest wait in the listen backlog). Returns the Unix socket path to remove, if any.
async fn accept_loop<A: App>(
    listener: Listener,
    shared: Arc<AppContext<A>>,
    conns: Arc<ConnShared>,
) -> Option<PathBuf> {
    let mut graceful = conns.graceful.clone();
    loop {
        let permit = tokio::select! {
            biased;
            _ = graceful.wait_for(|shutting_down| *shutting_down) => break,
            permit = conns.semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            _ = graceful.wait_for(|shutting_down| *shutting_down) => break,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, local, peer)) => {
                let _ = stream.set_nodelay(true);
                spawn_connection(
                    &shared,
                    &conns,
                    stream,
                    SocketAddress::Tcp(local),
                    SocketAddress::Tcp(peer),
                    permit,
                );
            }
            #[cfg(unix)]
            Ok(Accepted::Unix(stream, local, peer)) => {
                spawn_connection(
                    &shared,
                    &conns,
                    stream,
                    SocketAddress::Unix(Some(local)),
                    SocketAddress::Unix(peer),
                    permit,
                );
            }
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "a connection failed before it was accepted");
            }
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::error!(%error, "accept failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Dropping the listener closes it: new connections are refused from here on.
    match listener {
        Listener::Tcp(..) => None,
        #[cfg(unix)]
        Listener::Unix(_, path, owned) => owned.then_some(path),
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, SocketAddr, SocketAddr),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream, PathBuf, Option<PathBuf>),
}

async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Tcp(listener, local) => {
            let (stream, peer) = listener.accept().await?;
            Ok(Accepted::Tcp(stream, *local, peer))
        }
        #[cfg(unix)]
        Listener::Unix(listener, path, _) => {
            let (stream, peer) = listener.accept().await?;
            Ok(Accepted::Unix(
                stream,
                path.clone(),
                peer.as_pathname().map(PathBuf::from),
            ))
        }
    }
}

fn spawn_connection<A, Io>(
    shared: &Arc<AppContext<A>>,
    conns: &Arc<ConnShared>,
    io: Io,
    local: SocketAddress,
    peer: SocketAddress,
    permit: OwnedSemaphorePermit,
) where
    A: App,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Everything but the transport is made here, before the task: the connection task keeps
    // what it captures for its whole life (the addresses live on in the connection info).
    let token = conns.tracker.token();
    let id = conns.next_id.fetch_add(1, Ordering::Relaxed);
    let trust_proxy = shared
        .trusted_proxies
        .as_ref()
        .is_some_and(|trusted| peer.ip().is_none_or(|ip| trusted.contains(ip)));
    let info = ConnectionInfo::new(local, peer, Scheme::Http).with_id(id);
    let shared = shared.clone();
    let conns = conns.clone();
    let held = Held {
        _token: token,
        _permit: permit,
    };
    let Some(acceptor) = conns.tls.clone() else {
        // The task is the connection's drive itself (nothing around it to keep).
        let ctx = ConnState::new(info, trust_proxy, conns.force.clone());
        tokio::spawn(drive(shared, ctx, conns, io, None, held));
        return;
    };
    tokio::spawn(async move {
        let mut force = conns.force.clone();
        let handshake = tokio::time::timeout(conns.handshake_timeout, acceptor.accept(io));
        let stream = tokio::select! {
            result = handshake => result,
            _ = force.wait_for(|forced| *forced) => return,
        };
        match stream {
            Ok(Ok(stream)) => {
                let tls = stream.get_ref().1;
                let info = info.with_tls(crate::tls::info(tls));
                let alpn = crate::tls::negotiated_protocol(tls);
                let ctx = ConnState::new(info, trust_proxy, conns.force.clone());
                // Boxed: the TLS handshake's state is large, and must not stay reserved in
                // the task for the connection's life.
                Box::pin(drive(shared, ctx, conns, stream, alpn, held)).await;
            }
            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    });
}

/// What a connection holds for its whole life: the drain waits for the token, and the permit
/// counts the connection against `--max-connections`. Only ever dropped.
struct Held {
    _token: TrackToken,
    _permit: OwnedSemaphorePermit,
}

/// Serves one connection until it ends, shutdown drains it, or shutdown is forced. `alpn` is
/// the protocol TLS negotiated, if any: it is then served without looking at the first bytes
/// (RFC 9113 §3.3), and a client that speaks the other one is refused.
// Not an `async fn`: its arguments would be kept twice in the connection's task (an `async
// fn` moves them into locals, and their first places stay reserved).
#[allow(clippy::manual_async_fn)]
fn drive<A, Io>(
    shared: Arc<AppContext<A>>,
    ctx: Arc<ConnState>,
    conns: Arc<ConnShared>,
    mut io: Io,
    alpn: Option<Protocol>,
    held: Held,
) -> impl Future<Output = ()> + Send + 'static
where
    A: App,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async move {
        // Moved in, so the connection holds them until it ends.
        let _ = &held;
        let service = {
            let (shared, ctx) = (shared.clone(), ctx.clone());
            hyper::service::service_fn(move |req| serve_request(&shared, &ctx, req))
        };
        // The timers and shutdown signals are polled only when one of them fired (not on every
        // read and write of the connection). The shutdown signals open the gate through the
        // server's waker set; the connection then reads them (no subscription of its own).
        let gate = Gate::new(&ctx);
        let _registration = conns.wakers.register(gate.waker());
        // A client that connects and sends nothing is dropped after the header read timeout; once
        // bytes arrive, the loop below enforces that timeout for every HTTP/1 request head.
        // One timer, reset to the earliest of the connection's deadlines (a timer per deadline
        // would make every idle connection larger).
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(conns.first_byte_deadline(&ctx)));
        let prefix = if alpn.is_none() && conns.builders.needs_sniffing() {
            let mut read = std::pin::pin!(Prefix::read(&mut io));
            gate.open();
            let read = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = read.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                gate.poll(cx, |cx| conns.poll_signal(cx, sleep.as_mut(), false))
                    .map(|_| None)
            })
            .await;
            match read {
                Some(Ok(prefix)) if prefix.len() > 0 => prefix,
                Some(Ok(_)) => return,
                Some(Err(error)) => {
                    tracing::debug!(connection = ctx.info.id(), %error, "reading the first bytes failed");
                    return;
                }
                // Shutdown, or the first-byte deadline.
                None => {
                    if !conns.shutdown_began() {
                        tracing::debug!(
                            connection = ctx.info.id(),
                            "no request within the header read timeout"
                        );
                    }
                    return;
                }
            }
        } else {
            Prefix::empty()
        };
        let (protocol, allowed) = match alpn {
            Some(Protocol::Http1) => (Protocol::Http1, Allowed::Http1),
            Some(Protocol::Http2) => (Protocol::Http2, Allowed::Http2),
            None => (conns.builders.protocol(&prefix), conns.allowed),
        };
        let io = FramingGuard::new(io, prefix, conns.max_head, ctx.clone(), allowed)
            .with_write_timeout(conns.write_timeout);
        let mut conn = conns.builders.serve(protocol, io, service);
        let http1 = protocol == Protocol::Http1;
        let mut closing = false;
        // When an idle connection was asked to close: the peer gets one more idle timeout to let
        // it (an HTTP/2 peer must acknowledge the GOAWAY's PING), then it is dropped (`SRV-LIMIT-8`).
        let mut idle_close_deadline = None;
        loop {
            let (timer, at) = conns.next_deadline(&ctx, http1, closing, idle_close_deadline);
            if sleep.deadline() != at {
                sleep.as_mut().reset(at);
            }
            let draining = closing;
            gate.open();
            let event = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = conn.poll(cx) {
                    return Poll::Ready(Event::Ended(result.err()));
                }
                gate.poll(cx, |cx| conns.poll_signal(cx, sleep.as_mut(), draining))
                    .map(|signal| match signal {
                        Signal::Drain => Event::Drain,
                        Signal::Force => Event::Force,
                        Signal::Timer => match timer {
                            Some(Timer::FirstByte) => Event::FirstByteDeadline,
                            Some(Timer::IdleClose) => Event::IdleCloseDeadline,
                            Some(Timer::HeadRead) => Event::HeadReadDeadline,
                            Some(Timer::Idle) => Event::IdleDeadline,
                            // No deadline: the far-away one passed; look again.
                            None => Event::Spurious,
                        },
                    })
            })
            .await;
            match event {
                Event::Ended(error) => {
                    if let Some(error) = error {
                        tracing::debug!(connection = ctx.info.id(), %error, "connection ended with an error");
                    }
                    break;
                }
                Event::Drain => {
                    conn.graceful_shutdown();
                    closing = true;
                }
                Event::Force => break,
                Event::Spurious => {}
                Event::FirstByteDeadline => {
                    // The flag was read when the timer was set: check again.
                    if !ctx.saw_bytes.load(Ordering::Acquire) {
                        tracing::debug!(
                            connection = ctx.info.id(),
                            "no request within the header read timeout"
                        );
                        break;
                    }
                }
                Event::HeadReadDeadline => {
                    if ctx.activity.is_idle()
                        && conns
                            .header_read_timeout
                            .is_some_and(|timeout| ctx.activity.last().elapsed() >= timeout)
                    {
                        tracing::debug!(
                            connection = ctx.info.id(),
                            "no complete request head within the header read timeout"
                        );
                        break;
                    }
                }
                Event::IdleCloseDeadline => {
                    if ctx.activity.is_idle() {
                        tracing::debug!(
                            connection = ctx.info.id(),
                            "dropping an idle connection that did not close when asked"
                        );
                        break;
                    }
                    // A stream the peer opened before the GOAWAY is still running: let it finish.
                    idle_close_deadline = conns
                        .keep_alive_timeout
                        .map(|timeout| deadline(std::time::Instant::now(), timeout));
                }
                Event::IdleDeadline => {
                    let idle_for = ctx.activity.last().elapsed();
                    if ctx.activity.is_idle()
                        && conns
                            .keep_alive_timeout
                            .is_some_and(|timeout| idle_for >= timeout)
                    {
                        tracing::debug!(connection = ctx.info.id(), "closing an idle connection");
                        conn.graceful_shutdown();
                        closing = true;
                        idle_close_deadline = conns
                            .keep_alive_timeout
                            .map(|timeout| deadline(std::time::Instant::now(), timeout));
                    }
                }
            }
        }
    }
}

impl ConnShared {
    /// When a connection that sent no byte yet is dropped (the header read timeout).
    fn first_byte_deadline(&self, conn: &ConnState) -> tokio::time::Instant {
        deadline(conn.activity.origin(), self.handshake_timeout)
    }

    /// The earliest of a connection's deadlines, and which it is (`None`: there is none, and
    /// the instant is decades away). Idle and head deadlines are measured from the end of the
    /// last request while idle; while a request is in flight the timer is set a whole timeout
    /// ahead and checked again when it fires. `idle_close` is set once an idle connection was
    /// asked to close.
    fn next_deadline(
        &self,
        conn: &ConnState,
        http1: bool,
        closing: bool,
        idle_close: Option<tokio::time::Instant>,
    ) -> (Option<Timer>, tokio::time::Instant) {
        let base = if conn.activity.is_idle() {
            conn.activity.last()
        } else {
            std::time::Instant::now()
        };
        let idle = self
            .keep_alive_timeout
            .filter(|_| !closing)
            .map(|timeout| deadline(base, timeout));
        // SRV-LIMIT-7 for HTTP/1: hyper's own header read timeout arms a boxed timer for every
        // request head; the connection's one timer does it instead, from the end of the
        // previous response (or the connection's start) while no request is in flight.
        let head = self
            .header_read_timeout
            .filter(|_| http1)
            .map(|timeout| deadline(base, timeout));
        let saw_bytes = conn.saw_bytes.load(Ordering::Acquire);
        let timers = [
            (!saw_bytes).then(|| (self.first_byte_deadline(conn), Timer::FirstByte)),
            idle_close.map(|at| (at, Timer::IdleClose)),
            idle.map(|at| (at, Timer::Idle)),
            head.map(|at| (at, Timer::HeadRead)),
        ];
        match timers.into_iter().flatten().min_by_key(|(at, _)| *at) {
            Some((at, timer)) => (Some(timer), at),
            None => (None, deadline(std::time::Instant::now(), Duration::MAX)),
        }
    }

    /// Whether the server began its shutdown.
    fn shutdown_began(&self) -> bool {
        *self.graceful.borrow() || *self.force.borrow()
    }

    /// A connection's rare events: shutdown forced, shutdown begun (unless the connection is
    /// `draining` already), or its timer fired.
    fn poll_signal(
        &self,
        cx: &mut Context<'_>,
        sleep: Pin<&mut tokio::time::Sleep>,
        draining: bool,
    ) -> Poll<Signal> {
        if *self.force.borrow() {
            return Poll::Ready(Signal::Force);
        }
        if !draining && *self.graceful.borrow() {
            return Poll::Ready(Signal::Drain);
        }
        sleep.poll(cx).map(|()| Signal::Timer)
    }
}

/// Opens the gate of every connection when shutdown begins and when it is forced: the
/// connections read the signals themselves ([`ConnShared::poll_signal`]).
async fn relay_shutdown(conns: Arc<ConnShared>) {
    let mut graceful = conns.graceful.clone();
    let mut force = conns.force.clone();
    if graceful.wait_for(|began| *began).await.is_ok() {
        conns.wakers.wake_all();
    }
    if force.wait_for(|forced| *forced).await.is_ok() {
        conns.wakers.wake_all();
    }
}

/// What a connection's rare events say ([`ConnShared::poll_signal`]).
#[derive(Debug, Clone, Copy)]
enum Signal {
    Drain,
    Force,
    Timer,
}

/// Which deadline a connection's timer is set for.
#[derive(Debug, Clone, Copy)]
enum Timer {
    FirstByte,
    IdleClose,
    Idle,
    HeadRead,
}

/// What ended one turn of a connection's [`drive`] loop.
enum Event {
    /// hyper finished the connection (with the error, if any).
    Ended(Option<hyper::Error>),
    /// Graceful shutdown began.
    Drain,
    /// The graceful deadline passed.
    Force,
    /// No byte arrived within the header read timeout.
    FirstByteDeadline,
    /// An idle connection asked to close did not.
    IdleCloseDeadline,
    /// The idle timeout may have passed.
    IdleDeadline,
    /// The header read timeout of an HTTP/1 connection may have passed.
    HeadReadDeadline,
    /// The timer fired with no deadline set (decades away).
    Spurious,
}

/// `base + timeout`, or a deadline decades away when a huge timeout would overflow.
fn deadline(base: std::time::Instant, timeout: Duration) -> tokio::time::Instant {
    let far = Duration::from_secs(86_400 * 365 * 30);
    let at = base
        .checked_add(timeout)
        .or_else(|| base.checked_add(far))
        .unwrap_or(base);
    tokio::time::Instant::from_std(at)
}
