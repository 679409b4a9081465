//! tower → RGI: [`TowerApp`] runs any tower service as an RGI application.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use rgi::{App, BoxError, Request};
use tower_service::Service;

use crate::{compat, mount};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
pub(crate) type ShutdownHook = Box<dyn FnOnce() -> BoxFuture + Send + 'static>;

/// A tower [`Service`] running as an RGI [`App`].
///
/// Any service that takes `http::Request<rgi::Body>` and answers `http::Response<B>` with a
/// body of [`Bytes`] qualifies: an axum [`Router`](https://docs.rs/axum/0.8/axum/struct.Router.html)
/// (which accepts any request body with `Bytes` data and converts it), a tonic service, a
/// tower-http stack, or a hand-written `tower::service_fn`.
///
/// For every request the adapter clones the service, waits until it is ready
/// ([`Service::poll_ready`], so backpressure and load shedding work as the service intends),
/// and calls it with the request as the server delivered it: the body streams frame by frame in
/// both directions, trailers included (`HTTP-BODY-1`, `HTTP-TRAIL-1`), and the response is
/// handed back untouched. An error of the service (from `poll_ready` or from the call) becomes
/// the app's `Err`, which the server answers with `500` (`CORE-ERR`).
///
/// The service must be `Sync`, because an RGI app is shared by all concurrent calls
/// (`CORE-APP-2`). axum's `Router` and most services are; wrap a `BoxCloneService` into tower's
/// `BoxCloneSyncService` instead.
///
/// # Example
///
/// ```
/// use axum::{Router, routing::get};
/// use rgi_tower::TowerApp;
///
/// let router = Router::new().route("/", get(|| async { "Hello, World!" }));
/// let app = TowerApp::new(router);
/// # fn assert_app<A: rgi::App>(_: &A) {}
/// # assert_app(&app);
/// // rgi_server::run(app) serves it, like any RGI app.
/// ```
///
/// # Connection information
///
/// With the crate feature `axum`, the adapter inserts axum's `ConnectInfo<SocketAddr>` built
/// from [`rgi::ConnectionInfo::peer`] (see the [crate docs](crate#features-and-connection-information)), so
/// the `ConnectInfo` extractor works without `into_make_service_with_connect_info`. With the
/// feature `tonic`, it inserts tonic's `TcpConnectInfo`, so `tonic::Request::remote_addr` works.
///
/// # Mount prefix
///
/// tower services expect a mounted service to see the URI without the mount part (that is what
/// axum's `nest_service` does). When the server mounts the app under a prefix
/// ([`rgi::MountPrefix`], `HTTP-PATH-4`), the adapter therefore strips the prefix from the URI
/// before calling the service and removes the `MountPrefix` extension, whose invariant no
/// longer holds; with the feature `axum` it keeps the whole URI in axum's `OriginalUri`, as
/// `nest_service` does. Routes then match the application path (`HTTP-PATH-8`).
///
/// # Body limits
///
/// The request body is the server's [`rgi::Body`], with the server's limit (`HTTP-BODY-7`).
/// A framework that reads past that limit sees the body fail with
/// [`rgi::BodyError::LengthLimitExceeded`] and answers as it answers any body error: axum's
/// extractors reply `400 Bad Request` ("Failed to buffer the request body"), where its own
/// `DefaultBodyLimit` replies `413` — axum recognises only its own limit error, which cannot be
/// built outside `http-body-util`. Set axum's limit no higher than the server's to keep `413`.
///
/// # Upgrades and WebSockets
///
/// axum's `WebSocketUpgrade` (and hyper's `hyper::upgrade::on`) read hyper's own upgrade handle,
/// `hyper::upgrade::OnUpgrade`, from the request extensions. The adapter passes the extensions
/// through as they are, so they work on a server that puts that handle there as a
/// server-specific compatibility extension (`EXT-NS-2`; rgi-server does). On a server that
/// does not, nothing hangs: axum rejects the extractor at once with
/// `426 Upgrade Required` ("WebSocket request couldn't be upgraded since no upgrade state was
/// present"), and `hyper::upgrade::on` resolves at once with an error.
///
/// A switch performed through hyper's handle shows in the service's response as a `101`
/// (HTTP/1.1) or a `2xx` to an extended CONNECT (HTTP/2) without an RGI accept marker, which
/// the spec lets a server send only with the marker of a server-specific upgrade extension it
/// honours (`CORE-ERR-6`). With the crate feature `hyper`, the adapter marks such a response
/// by putting a clone of the request's `hyper::upgrade::OnUpgrade` into the response
/// extensions: "this response hands the connection to hyper's upgrade". The clone is a marker
/// only; the service that took the request's handle performs the upgrade.
pub struct TowerApp<S> {
    service: S,
    on_shutdown: Mutex<Option<ShutdownHook>>,
}

impl<S> TowerApp<S> {
    /// Wraps `service`.
    pub fn new(service: S) -> Self {
        Self {
            service,
            on_shutdown: Mutex::new(None),
        }
    }

    /// Runs `hook` when the server shuts the application down, after the last request
    /// (`LIFE-SHUT`). Replaces any earlier hook.
    ///
    /// ```
    /// use axum::Router;
    /// use rgi_tower::TowerApp;
    ///
    /// let app = TowerApp::new(Router::<()>::new()).on_shutdown(|| async {
    ///     // flush metrics, close pools ...
    /// });
    /// # drop(app);
    /// ```
    pub fn on_shutdown<F, Fut>(self, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.with_hook(Some(Box::new(move || Box::pin(hook()))))
    }

    pub(crate) fn with_hook(self, hook: Option<ShutdownHook>) -> Self {
        Self {
            service: self.service,
            on_shutdown: Mutex::new(hook),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }

    /// Returns the wrapped service.
    pub fn into_inner(self) -> S {
        self.service
    }
}

impl<S: fmt::Debug> fmt::Debug for TowerApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has_hook = self
            .on_shutdown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("TowerApp")
            .field("service", &self.service)
            .field("on_shutdown", &has_hook)
            .finish()
    }
}

impl<S, B> App for TowerApp<S>
where
    S: Service<Request, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Body = B;
    type Error = S::Error;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response<B>, S::Error>> + Send {
        // The clone gets its own readiness: the shared service is never driven from `&self`.
        let service = self.service.clone();
        let (mut parts, body) = req.into_parts();
        mount::strip_mount_prefix(&mut parts);
        compat::insert_framework_extensions(&mut parts.extensions);
        #[cfg(feature = "hyper")]
        let marker = crate::upgrade::HyperUpgradeMarker::for_request(&parts);
        #[cfg(not(feature = "hyper"))]
        let marker = NoMarker;
        let req = Request::from_parts(parts, body);
        TowerCall::Ready {
            service,
            req,
            marker,
        }
    }

    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        let hook = self
            .on_shutdown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        async move {
            if let Some(hook) = hook {
                hook().await;
            }
        }
    }
}

/// Turns a tower service into an RGI application: `service.into_rgi()`.
///
/// ```
/// use axum::{Router, routing::get};
/// use rgi_tower::ServiceExt as _;
///
/// let app = Router::new().route("/", get(|| async { "hi" })).into_rgi();
/// # fn assert_app<A: rgi::App>(_: &A) {}
/// # assert_app(&app);
/// ```
pub trait ServiceExt: Sized {
    /// Wraps the service in a [`TowerApp`].
    fn into_rgi(self) -> TowerApp<Self> {
        TowerApp::new(self)
    }
}

impl<S> ServiceExt for S where S: Service<Request> {}

#[cfg(feature = "hyper")]
type Marker = Option<crate::upgrade::HyperUpgradeMarker>;
#[cfg(not(feature = "hyper"))]
type Marker = NoMarker;

/// Without the `hyper` feature there is no hyper upgrade to mark.
#[cfg(not(feature = "hyper"))]
#[derive(Debug)]
pub(crate) struct NoMarker;

pin_project_lite::pin_project! {
    /// The future of [`TowerApp`]'s `call`: waits until the service is ready, then calls it.
    ///
    /// A state machine, not an `async` block: the block would keep its captured request (moved
    /// into the service's future, about 300 bytes) and the service clone for the whole exchange;
    /// here the request lives in one place at a time and the clone goes once it was called.
    #[project = TowerCallProj]
    #[project_replace = TowerCallOwned]
    pub(crate) enum TowerCall<S, F> {
        Ready { service: S, req: Request, marker: Marker },
        Calling { #[pin] future: F, marker: Marker },
        Done,
    }
}

impl<S, B> Future for TowerCall<S, S::Future>
where
    S: Service<Request, Response = Response<B>>,
{
    type Output = Result<Response<B>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                TowerCallProj::Ready { service, .. } => {
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        self.set(TowerCall::Done);
                        return Poll::Ready(Err(error));
                    }
                    if let TowerCallOwned::Ready {
                        mut service,
                        req,
                        marker,
                    } = self.as_mut().project_replace(TowerCall::Done)
                    {
                        let future = service.call(req);
                        self.set(TowerCall::Calling { future, marker });
                    }
                }
                TowerCallProj::Calling { future, .. } => {
                    let result = ready!(future.poll(cx));
                    #[cfg_attr(not(feature = "hyper"), allow(unused_variables))]
                    let owned = self.as_mut().project_replace(TowerCall::Done);
                    #[allow(unused_mut)]
                    let mut response = result?;
                    #[cfg(feature = "hyper")]
                    if let TowerCallOwned::Calling {
                        marker: Some(marker),
                        ..
                    } = owned
                    {
                        marker.mark(&mut response);
                    }
                    return Poll::Ready(Ok(response));
                }
                TowerCallProj::Done => panic!("TowerApp's call future polled after completion"),
            }
        }
    }
}
