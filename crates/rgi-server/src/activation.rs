//! Listening sockets handed over by a service manager: systemd socket activation
//! (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), read with the `listenfd` crate.

use std::io;
use std::sync::{Arc, Mutex};

/// One inherited listening socket.
#[derive(Debug)]
pub(crate) enum InheritedSocket {
    /// A TCP listener (IPv4 or IPv6).
    Tcp(std::net::TcpListener),
    /// A Unix stream listener.
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener),
}

/// Listening sockets the server serves besides the ones it binds itself: those passed by a
/// service manager ([`InheritedListeners::from_env`]), or any already bound listener.
///
/// The server takes them over in [`crate::Server::start`]; they are closed like the server's
/// own listeners when the shutdown begins (the service manager keeps its copy, so clients
/// wait in the backlog until the next process takes over), but a Unix socket's file is left
/// in place: it belongs to whoever created it.
///
/// ```
/// use rgi_server::{Config, InheritedListeners, Server};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut inherited = InheritedListeners::default();
/// inherited.push_tcp(listener);
/// let server = Server::new(Config::default()).inherit(inherited);
/// ```
#[derive(Debug, Default)]
pub struct InheritedListeners {
    pub(crate) sockets: Vec<(InheritedSocket, Option<String>)>,
}

impl InheritedListeners {
    /// The sockets of systemd socket activation: when `LISTEN_PID` is this process's id,
    /// `LISTEN_FDS` descriptors from fd 3 on, each a listening TCP or Unix stream socket,
    /// named by `LISTEN_FDNAMES` (colon-separated) when it is set. Empty when the variables
    /// are absent or meant for another process. `LISTEN_PID` and `LISTEN_FDS` are removed from
    /// the environment, so that children do not inherit them.
    ///
    /// Call it before any other thread starts ([`crate::run`] does): it changes the process
    /// environment.
    ///
    /// # Errors
    ///
    /// A passed descriptor that is neither a TCP nor a Unix stream socket, or that cannot be
    /// switched to non-blocking mode.
    pub fn from_env() -> io::Result<Self> {
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .map(|names| names.split(':').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut fds = listenfd::ListenFd::from_env();
        let mut inherited = Self::default();
        for index in 0..fds.len() {
            let name = names.get(index).filter(|name| !name.is_empty()).cloned();
            let socket = match fds.take_tcp_listener(index) {
                Ok(Some(listener)) => InheritedSocket::Tcp(listener),
                Ok(None) => continue,
                Err(tcp_error) => {
                    #[cfg(unix)]
                    match fds.take_unix_listener(index) {
                        Ok(Some(listener)) => InheritedSocket::Unix(listener),
                        Ok(None) => continue,
                        Err(_) => return Err(tcp_error),
                    }
                    #[cfg(not(unix))]
                    return Err(tcp_error);
                }
            };
            inherited.sockets.push((socket, name));
        }
        Ok(inherited)
    }

    /// Adds a bound TCP listener.
    pub fn push_tcp(&mut self, listener: std::net::TcpListener) {
        self.sockets.push((InheritedSocket::Tcp(listener), None));
    }

    /// Adds a bound Unix stream listener.
    #[cfg(unix)]
    pub fn push_unix(&mut self, listener: std::os::unix::net::UnixListener) {
        self.sockets.push((InheritedSocket::Unix(listener), None));
    }

    /// How many sockets there are.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}

/// Inherited listeners shared by clones of a [`crate::Server`]; the first start takes them.
pub(crate) type SharedInherited = Arc<Mutex<Option<InheritedListeners>>>;
