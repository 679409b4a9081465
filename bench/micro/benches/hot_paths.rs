//! Micro-benchmarks of the interface's and the adapters' hot paths.
//!
//! Run: `cd bench && cargo bench -p rgi-bench-micro` (divan; add a filter such as `body` to
//! run some). Futures here complete without waiting, so they are polled once with a no-op
//! waker: no runtime is measured.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use divan::Bencher;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::Full;
use rgi::{App, Body, ConnectionInfo, Disconnect, Scheme, SocketAddress};
use tower_service::Service;

fn main() {
    divan::main();
}

/// Polls a future that is ready without waiting (panics otherwise: a benchmark bug).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..16 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("the benchmarked future was not ready");
}

/// Reads every frame of a body (all ready), returning the data length.
fn drain<B: http_body::Body<Data = Bytes> + Unpin>(mut body: B) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut length = 0;
    for _ in 0..64 {
        match std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                length += frame.data_ref().map_or(0, Bytes::len);
            }
            Poll::Ready(None) => return length,
            Poll::Ready(Some(Err(_))) => panic!("body error"),
            Poll::Pending => panic!("body not ready"),
        }
    }
    length
}

fn connection_info() -> ConnectionInfo {
    let local: SocketAddr = ([127, 0, 0, 1], 8000).into();
    let peer: SocketAddr = ([127, 0, 0, 1], 50000).into();
    ConnectionInfo::new(
        SocketAddress::Tcp(local),
        SocketAddress::Tcp(peer),
        Scheme::Http,
    )
}

/// A request as rgi-server hands it to an app: the usual wrk headers and the server's
/// extensions.
fn server_request() -> rgi::Request {
    let mut req = Request::get("/")
        .header("host", "127.0.0.1:8000")
        .header("user-agent", "wrk")
        .body(Body::empty())
        .expect("a valid request");
    req.extensions_mut().insert(connection_info());
    req.extensions_mut().insert(Disconnect::pair().0);
    req
}

mod body {
    use super::*;

    /// `rgi::Body::from(&'static str)`: the unboxed full body apps return most.
    #[divan::bench]
    fn full_static_poll() -> usize {
        drain(Body::from(divan::black_box("Hello, World!")))
    }

    /// `rgi::Body::new(Full<Bytes>)`: wrapping a foreign body (one box).
    #[divan::bench]
    fn wrap_foreign_and_poll() -> usize {
        drain(Body::new(Full::new(Bytes::from_static(divan::black_box(
            b"Hello, World!",
        )))))
    }

    /// `rgi::Body::new(rgi::Body)`: rewrapping returns the same body (no box).
    #[divan::bench]
    fn rewrap_rgi_body() -> usize {
        drain(Body::new(Body::from(divan::black_box("Hello, World!"))))
    }

    /// A 1 MiB body of 64 KiB chunks through `rgi::Body` (the `/stream` path).
    #[divan::bench]
    fn stream_1mib_through_rgi_body() -> usize {
        drain(Body::new(rgi_examples::hello::RepeatBody::new(1 << 20)))
    }

    /// `size_hint` and `is_end_stream` (asked by servers before every response).
    #[divan::bench]
    fn hints(bencher: Bencher<'_, '_>) {
        let body = Body::from("Hello, World!");
        bencher.bench_local(|| {
            let body = divan::black_box(&body);
            (body.size_hint().exact(), body.is_end_stream())
        });
    }
}

mod extensions {
    use super::*;

    /// `ConnectionInfo` lookup among the server's request extensions.
    #[divan::bench]
    fn connection_info_lookup(bencher: Bencher<'_, '_>) {
        let req = server_request();
        bencher.bench_local(|| {
            divan::black_box(&req)
                .extensions()
                .get::<ConnectionInfo>()
                .map(ConnectionInfo::scheme)
        });
    }

    /// A missing extension (e.g. no WebSocket upgrade on a plain request).
    #[divan::bench]
    fn missing_lookup(bencher: Bencher<'_, '_>) {
        let req = server_request();
        bencher.bench_local(|| {
            divan::black_box(&req)
                .extensions()
                .get::<rgi::ws::WebSocketUpgrade>()
                .is_some()
        });
    }

    /// Building the per-request extensions the server inserts (`ConnectionInfo` clone and a
    /// `Disconnect` pair).
    #[divan::bench]
    fn insert_server_extensions(bencher: Bencher<'_, '_>) {
        let info = connection_info();
        bencher.bench_local(|| {
            let mut extensions = http::Extensions::new();
            extensions.insert(info.clone());
            let (signal, notifier) = Disconnect::pair();
            extensions.insert(signal);
            divan::black_box((extensions, notifier))
        });
    }

    /// `rgi::path::app_path` (every hello request).
    #[divan::bench]
    fn app_path(bencher: Bencher<'_, '_>) {
        let req = server_request();
        bencher.bench_local(|| rgi::path::app_path(divan::black_box(&req)).map(|p| p.len()));
    }
}

mod apps {
    use super::*;

    /// `hello`'s `GET /` called directly (the app's own cost).
    #[divan::bench]
    fn hello_get(bencher: Bencher<'_, '_>) {
        bencher
            .with_inputs(server_request)
            .bench_local_values(|req| {
                ready(rgi_examples::hello::Hello.call(req)).map(|r| r.status())
            });
    }
}

mod tower_adapters {
    use super::*;

    /// tower → RGI: `TowerApp` around a trivial `service_fn`, `GET /` (request conversion,
    /// service clone, readiness, call).
    #[divan::bench]
    fn tower_app_call(bencher: Bencher<'_, '_>) {
        let app = rgi_tower::TowerApp::new(tower::service_fn(|_req: rgi::Request| async {
            Ok::<_, Infallible>(Response::new(Body::from("Hello, World!")))
        }));
        bencher
            .with_inputs(server_request)
            .bench_local_values(|req| ready(app.call(req)).map(|r| r.status()));
    }

    /// tower → RGI with axum_app's router (routing and tower-http layers included).
    #[divan::bench]
    fn tower_app_axum_router(bencher: Bencher<'_, '_>) {
        // The router's timeout layer arms a tokio timer: give it a runtime context.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        let _context = runtime.enter();
        let app = rgi_examples::axum_app::app();
        bencher
            .with_inputs(server_request)
            .bench_local_values(|req| ready(app.call(req)).map(|r| r.status()));
    }

    /// RGI → tower: `RgiService<Hello>` called as a tower service with a hyper-like body
    /// (request conversion, extensions the host lacks, response wrapping).
    #[divan::bench]
    fn rgi_service_call(bencher: Bencher<'_, '_>) {
        let mut service = rgi_tower::RgiService::new(rgi_examples::hello::Hello);
        bencher
            .with_inputs(|| {
                Request::get("/")
                    .header("host", "127.0.0.1:8000")
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request")
            })
            .bench_local_values(|req| ready(service.call(req)).map(|r| r.status()));
    }
}
