//! The deployment tests' harness: nginx started from the guide's configuration files
//! (`docs/deploy/`), rendered into a scratch directory, on loopback ports, with rgi-server
//! binaries as its upstreams.
//!
//! nginx runs in the foreground (`daemon off`) as a child of the test, with its pid file, logs
//! and temporary files in the scratch directory; as root (CI) its workers run as root too
//! (`user root`), so that they can reach the test's Unix sockets. Every wait is bounded.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};

/// The conformance probe binary: `/meta` reports peer, scheme and headers, `/echo` streams
/// the body back, `/body-report` counts the body's bytes, `/ws` is a WebSocket echo.
pub(crate) const PROBE: &str = env!("CARGO_BIN_EXE_conformance_probe");

/// Upper bound for nginx to come up, reload or stop.
pub(crate) const NGINX_BOUND: Duration = Duration::from_secs(30);

/// A file of the repository (`docs/deploy/nginx.conf`, ...).
pub(crate) fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The text of a repository file.
pub(crate) fn read_repo_file(relative: &str) -> String {
    let path = repo_file(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A free TCP port on 127.0.0.1 (bound and released; the caller binds it right away).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`.
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The nginx binary (`scripts/install-test-deps.sh` installs it).
fn nginx_binary() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("nginx is not installed: run scripts/install-test-deps.sh (Debian: nginx-light)")
}

/// One upstream server of the `rgi` upstream block.
#[derive(Clone, Debug)]
pub(crate) enum Upstream {
    /// `server 127.0.0.1:PORT;`
    Tcp(SocketAddr),
    /// `server unix:PATH;`
    Unix(PathBuf),
}

impl Upstream {
    fn line(&self, down: bool) -> String {
        let target = match self {
            Upstream::Tcp(addr) => addr.to_string(),
            Upstream::Unix(path) => format!("unix:{}", path.display()),
        };
        if down {
            format!("server {target} down;")
        } else {
            format!("server {target};")
        }
    }
}

/// Which proxy-header snippet of `docs/deploy/` the site includes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyHeaders {
    /// `rgi-x-forwarded.conf`: X-Forwarded-For / X-Forwarded-Proto.
    XForwarded,
    /// `rgi-forwarded.conf`: RFC 7239 Forwarded.
    Forwarded,
}

impl ProxyHeaders {
    fn snippet(self) -> PathBuf {
        repo_file(match self {
            ProxyHeaders::XForwarded => "docs/deploy/rgi-x-forwarded.conf",
            ProxyHeaders::Forwarded => "docs/deploy/rgi-forwarded.conf",
        })
    }
}

/// Renders `docs/deploy/nginx.conf` the way the guide's `envsubst` line does.
pub(crate) fn render_site(
    listen: SocketAddr,
    servers: &[(Upstream, bool)],
    headers: ProxyHeaders,
) -> String {
    let template = read_repo_file("docs/deploy/nginx.conf");
    let servers: Vec<String> = servers.iter().map(|(s, down)| s.line(*down)).collect();
    let site = template
        .replace("${RGI_LISTEN}", &listen.to_string())
        .replace("${RGI_UPSTREAM_SERVERS}", &servers.join(" "))
        .replace(
            "${RGI_PROXY_HEADERS}",
            &headers.snippet().display().to_string(),
        );
    assert!(
        !site.contains("${"),
        "a placeholder of docs/deploy/nginx.conf was not filled in:\n{site}"
    );
    site
}

/// nginx running in the foreground with the guide's site configuration; stopped on drop.
pub(crate) struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
    headers: ProxyHeaders,
}

impl Nginx {
    /// Renders the configuration into `dir` and starts nginx on a free loopback port.
    pub(crate) fn start(dir: &Path, servers: &[(Upstream, bool)], headers: ProxyHeaders) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create nginx temp dirs");
        }
        let main = read_repo_file("examples/tests/deploy/nginx-main.conf")
            .replace("@DIR@", &dir.display().to_string())
            .replace("@USER@", if is_root() { "user root;" } else { "" });
        std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
        std::fs::write(dir.join("rgi.conf"), render_site(addr, servers, headers))
            .expect("write rgi.conf");
        let check = Command::new(nginx_binary())
            .args(nginx_args(dir))
            .arg("-t")
            .output()
            .expect("run nginx -t");
        assert!(
            check.status.success(),
            "nginx -t rejects the configuration:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(nginx_binary())
            .args(nginx_args(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Self {
            child,
            dir: dir.to_owned(),
            addr,
            headers,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", nginx.error_log());
            }
            assert!(
                start.elapsed() < NGINX_BOUND,
                "nginx did not listen on {addr}:\n{}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            nginx.workers().len() == 1,
            "no nginx worker:\n{}",
            nginx.error_log()
        );
        nginx
    }

    /// The address clients connect to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// nginx's error log so far.
    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// nginx's access log so far.
    pub(crate) fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// The master's worker processes that are not shutting down.
    fn workers(&self) -> Vec<u32> {
        let children = format!("/proc/{0}/task/{0}/children", self.child.id());
        std::fs::read_to_string(children)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .filter(|pid| !worker_is_shutting_down(*pid))
            .collect()
    }

    /// Rewrites the upstream servers and reloads nginx (`SIGHUP`), then waits until the old
    /// worker has stopped taking connections (its title says "shutting down", or it is gone)
    /// and a new one serves: from then on only the new upstream list receives new requests.
    pub(crate) fn reload(&mut self, servers: &[(Upstream, bool)]) {
        let old = self.workers();
        std::fs::write(
            self.dir.join("rgi.conf"),
            render_site(self.addr, servers, self.headers),
        )
        .expect("write rgi.conf");
        signal(self.child.id(), "HUP");
        let start = Instant::now();
        loop {
            let current = self.workers();
            let old_gone = old.iter().all(|pid| !current.contains(pid));
            if old_gone && !current.is_empty() {
                break;
            }
            assert!(
                start.elapsed() < NGINX_BOUND,
                "nginx did not reload:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The old worker sets its title just before it closes its listening sockets: let it
        // get there. (Ordering slack only; nothing asserts on time.)
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn nginx_args(dir: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        dir.display().to_string(),
        "-e".into(),
        dir.join("error.log").display().to_string(),
        "-c".into(),
        dir.join("nginx.conf").display().to_string(),
    ]
}

fn worker_is_shutting_down(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("shutting down"),
        Err(_) => true,
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers and exits; SIGKILL if it does not.
        signal(self.child.id(), "TERM");
        let start = Instant::now();
        while start.elapsed() < NGINX_BOUND {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal by name with the shell's `kill`.
pub(crate) fn signal(pid: u32, name: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {name} {pid}"))
        .status();
}

/// A TCP connection to `addr` from the local address `from` (e.g. `127.0.0.2`, another
/// loopback address than nginx's own, so that the client and the proxy can be told apart).
pub(crate) async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind a loopback source address");
    tokio::time::timeout(Duration::from_secs(15), socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// The client address the tests use: a loopback address that is not nginx's `127.0.0.1`.
pub(crate) fn client_ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

/// Polls `check` until it holds, for at most [`NGINX_BOUND`] (log files are written
/// asynchronously).
pub(crate) fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < NGINX_BOUND {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
