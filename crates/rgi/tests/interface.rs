//! Runtime checks of the interface's types: connection info, paths, disconnect, capabilities,
//! versions, lifespan and type erasure.

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use http::{Response, StatusCode};
use rgi::{
    App, Body, BoxApp, Capabilities, Capability, ConnectionInfo, Disconnect, Lifespan, MountPrefix,
    Outcome, Request, SPEC_VERSION, Scheme, ServerInfo, SocketAddress, SpecVersion, StartupError,
    TlsInfo, TlsVersion, ext,
};
use support::{ThreadWaker, block_on, poll_once};

fn request(uri: &str) -> Request {
    http::Request::get(uri).body(Body::empty()).unwrap()
}

/// HTTP-CONN: TLS information is present only on TLS connections, and makes the scheme https.
#[test]
fn tls_info_sets_https() {
    let local = SocketAddress::Tcp("127.0.0.1:443".parse().unwrap());
    let peer = SocketAddress::Tcp("127.0.0.1:5000".parse().unwrap());
    let plain = ConnectionInfo::new(local.clone(), peer.clone(), Scheme::Http);
    assert!(plain.tls().is_none());
    assert_eq!(plain.scheme(), Scheme::Http);

    let tls = TlsInfo::new(TlsVersion::Tls13)
        .with_alpn(&b"h2"[..])
        .with_server_name("example.test")
        .with_cipher_suite("TLS13_AES_128_GCM_SHA256");
    let secure = ConnectionInfo::new(local, peer, Scheme::Http)
        .with_tls(tls)
        .with_id(7);
    assert_eq!(secure.scheme(), Scheme::Https);
    assert_eq!(secure.id(), 7);
    let tls = secure.tls().unwrap();
    assert_eq!(tls.alpn(), Some(&b"h2"[..]));
    assert_eq!(tls.server_name(), Some("example.test"));
    assert_eq!(tls.version(), TlsVersion::Tls13);
    assert!(tls.peer_certificates().is_empty());
}

/// HTTP-CONN: forwarded values replace the client address and scheme, and the transport's
/// own values stay visible.
#[test]
fn forwarded_values_keep_the_transport_values() {
    let info = ConnectionInfo::new(
        SocketAddress::Unix(Some("/run/app.sock".into())),
        SocketAddress::Unix(None),
        Scheme::Http,
    );
    let shared = info.clone();
    let forwarded = info.with_forwarded(
        Some(SocketAddress::Ip("203.0.113.9".parse().unwrap())),
        Some(Scheme::Https),
    );
    assert!(forwarded.is_forwarded());
    assert_eq!(forwarded.peer().to_string(), "203.0.113.9");
    assert_eq!(forwarded.scheme(), Scheme::Https);
    assert_eq!(forwarded.transport_peer(), &SocketAddress::Unix(None));
    assert_eq!(forwarded.transport_scheme(), Scheme::Http);
    // The clone shared with other requests of the connection is untouched.
    assert!(!shared.is_forwarded());
    assert_eq!(shared.local().to_string(), "unix:/run/app.sock");
}

/// HTTP-PATH: decoding happens once, `%2F` decodes only in the decoded view, bad escapes stay.
#[test]
fn path_decoding_rule() {
    use rgi::path::decode;
    assert_eq!(&*decode("/plain"), b"/plain");
    assert_eq!(&*decode("/a%2Fb"), b"/a/b");
    assert_eq!(&*decode("/%25252F"), b"/%252F");
    assert_eq!(&*decode("/%zz%4"), b"/%zz%4");
    assert_eq!(&*decode("/a+b"), b"/a+b");
    assert_eq!(&*decode("/%C3%28"), &[b'/', 0xC3, 0x28][..]);
}

/// HTTP-PATH: prefix + app path == decoded path, at segment boundaries only.
#[test]
fn mount_prefix_invariant() {
    let prefix = MountPrefix::new("/api/v1").unwrap();
    for (path, app) in [
        ("/api/v1", Some("")),
        ("/api/v1/", Some("/")),
        ("/api/v1/users%2F7", Some("/users/7")),
        ("/api/v10", None),
        ("/api", None),
    ] {
        let mut req = request(path);
        req.extensions_mut().insert(prefix.clone());
        let got = rgi::path::app_path(&req);
        assert_eq!(got.as_deref(), app.map(str::as_bytes), "{path}");
        if let Some(app) = got {
            let mut whole = prefix.as_str().as_bytes().to_vec();
            whole.extend_from_slice(&app);
            assert_eq!(whole, rgi::path::decode(req.uri().path()).into_owned());
        }
    }
    for bad in ["", "/", "api", "/api/", "/a//b"] {
        assert!(MountPrefix::new(bad).is_err(), "{bad:?}");
    }
}

/// HTTP-PATH: without a prefix the app path is the decoded path; the query is raw, "" if none.
#[test]
fn app_path_without_prefix_and_query() {
    let req = request("/caf%C3%A9?q=a%20b&x");
    assert_eq!(
        rgi::path::app_path(&req).as_deref(),
        Some("/café".as_bytes())
    );
    assert_eq!(rgi::path::query(&req), "q=a%20b&x");
    assert_eq!(rgi::path::query(&request("/")), "");
}

/// HTTP-DISC: the signal settles once; a completed request never reports "client gone".
#[test]
fn disconnect_settles_once() {
    let (signal, notifier) = Disconnect::pair();
    assert_eq!(signal.outcome(), None);
    notifier.completed();
    assert_eq!(signal.outcome(), Some(Outcome::Completed));
    assert!(!signal.is_client_gone());
    assert_eq!(block_on(signal.finished()), Outcome::Completed);
}

/// HTTP-DISC: a notifier dropped without a verdict reports the client as gone, and wakes waiters.
#[test]
fn dropped_notifier_means_client_gone_and_wakes() {
    let (signal, notifier) = Disconnect::pair();
    let mut finished = signal.finished();
    let (poll, waker) = poll_once(&mut finished);
    assert!(poll.is_pending());
    drop(notifier);
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 1);
    let (poll, _) = poll_once(&mut finished);
    assert_eq!(poll, Poll::Ready(Outcome::ClientGone));
    assert!(signal.clone().is_client_gone());
}

/// HTTP-DISC: a verdict given on another thread while a `Finished` future starts waiting always
/// wakes it (the settle skips the waker lock when nobody waits; this races the two).
#[test]
fn a_verdict_racing_a_waiter_is_never_lost() {
    for _ in 0..2000 {
        let (signal, notifier) = Disconnect::pair();
        let settler = std::thread::spawn(move || notifier.completed());
        let mut finished = signal.finished();
        let waker = ThreadWaker::current();
        let task_waker = std::task::Waker::from(waker.clone());
        let mut cx = std::task::Context::from_waker(&task_waker);
        loop {
            let wakes_before = waker.wakes.load(Ordering::SeqCst);
            match std::pin::Pin::new(&mut finished).poll(&mut cx) {
                Poll::Ready(outcome) => {
                    assert_eq!(outcome, Outcome::Completed);
                    break;
                }
                Poll::Pending => {
                    // Pending means the verdict came after the waiter registered: it must wake
                    // it. A generous bound turns a lost wake-up into a failure, not a hang.
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                    while waker.wakes.load(Ordering::SeqCst) == wakes_before {
                        let now = std::time::Instant::now();
                        assert!(
                            now < deadline,
                            "the verdict was given but the waiter never woke"
                        );
                        std::thread::park_timeout(deadline - now);
                    }
                }
            }
        }
        settler.join().unwrap();
    }
}

/// HTTP-DISC: a server abort is reported as such.
#[test]
fn aborted_is_distinct() {
    let (signal, notifier) = Disconnect::pair();
    notifier.aborted();
    assert_eq!(signal.outcome(), Some(Outcome::Aborted));
}

/// EXT-CAP: a missing extension is a typed error naming it, never a silent no-op.
#[test]
fn require_names_the_missing_extension() {
    let mut req = request("/");
    let error = ext::require::<ext::EarlyHints>(req.extensions()).unwrap_err();
    assert!(error.type_name().ends_with("EarlyHints"));
    let (signal, _notifier) = Disconnect::pair();
    req.extensions_mut().insert(signal);
    assert!(ext::require::<Disconnect>(req.extensions()).is_ok());
}

/// EXT-CAP: capability sets and their stable names.
#[test]
fn capabilities_round_trip_by_name() {
    let all: Capabilities = Capability::ALL.into_iter().collect();
    for capability in Capability::ALL {
        assert!(all.contains(capability));
        assert_eq!(Capability::from_name(capability.name()), Some(capability));
    }
    let mut caps = all;
    caps.remove(Capability::EarlyHints);
    assert!(!caps.contains(Capability::EarlyHints));
    assert_eq!(caps.iter().count(), Capability::ALL.len() - 1);
    assert!(Capabilities::empty().iter().next().is_none());
}

/// CORE-VER: compatibility of spec versions.
#[test]
fn spec_versions() {
    let v = |major, minor| SpecVersion { major, minor };
    assert_eq!(SPEC_VERSION, v(0, 1));
    assert!(v(0, 1).is_compatible_with(&v(0, 1)));
    assert!(!v(0, 1).is_compatible_with(&v(0, 2)));
    assert!(v(1, 0).is_compatible_with(&v(1, 3)));
    assert!(!v(1, 0).is_compatible_with(&v(2, 0)));
    let info = ServerInfo::new("s", "1");
    assert_eq!(info.spec_version(), SPEC_VERSION);
}

struct Counter {
    calls: AtomicUsize,
    shutdowns: Arc<AtomicUsize>,
}

impl App for Counter {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Response::new(Body::from(n.to_string())))
    }

    async fn shutdown(&self) {
        self.shutdowns.fetch_add(1, Ordering::SeqCst);
    }
}

struct Failing;

impl App for Failing {
    type Body = Body;
    type Error = std::io::Error;

    async fn call(&self, _req: Request) -> Result<Response<Body>, std::io::Error> {
        Err(std::io::Error::other("database down"))
    }
}

/// LIFE-START: every app is a lifespan that starts as itself; LIFE-SHUT: shutdown is the app's.
#[test]
fn apps_start_as_themselves() {
    let shutdowns = Arc::new(AtomicUsize::new(0));
    let app = Counter {
        calls: AtomicUsize::new(0),
        shutdowns: shutdowns.clone(),
    };
    let app = block_on(app.startup(ServerInfo::new("test", "0"))).unwrap();
    let body = block_on(app.call(request("/"))).unwrap().into_body();
    assert_eq!(block_on(body.collect()).unwrap().to_bytes(), "1");
    block_on(app.shutdown());
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
}

/// LIFE-START: a failing startup carries the application's message and source.
#[test]
fn startup_errors_carry_the_message() {
    let error =
        StartupError::with_source("cannot open the database", std::io::Error::other("EACCES"));
    assert_eq!(error.to_string(), "cannot open the database");
    assert_eq!(error.message(), "cannot open the database");
    assert_eq!(
        std::error::Error::source(&error).unwrap().to_string(),
        "EACCES"
    );
}

/// CORE-APP: a boxed app behaves like the app; errors become `BoxError`s; shutdown reaches it.
#[test]
fn boxed_apps_delegate() {
    let shutdowns = Arc::new(AtomicUsize::new(0));
    let app = Counter {
        calls: AtomicUsize::new(0),
        shutdowns: shutdowns.clone(),
    }
    .boxed();
    let copy: BoxApp = app.clone();
    block_on(app.call(request("/"))).unwrap();
    let response = block_on(copy.call(request("/"))).unwrap();
    assert_eq!(
        block_on(response.into_body().collect()).unwrap().to_bytes(),
        "2"
    );
    block_on(copy.boxed().shutdown());
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);

    let failing = BoxApp::new(Failing);
    let error = block_on(failing.call(request("/"))).unwrap_err();
    assert_eq!(error.to_string(), "database down");
}

/// CORE-APP: apps of different types live side by side behind `BoxApp`.
#[test]
fn heterogeneous_apps() {
    let apps = [
        BoxApp::new(Failing),
        BoxApp::new(Counter {
            calls: AtomicUsize::new(0),
            shutdowns: Arc::default(),
        }),
    ];
    let statuses: Vec<bool> = apps
        .iter()
        .map(|app| block_on(app.call(request("/"))).is_ok())
        .collect();
    assert_eq!(statuses, [false, true]);
    let _ = StatusCode::OK;
}
