//! RGI → tower: [`RgiService`] serves an RGI application as a tower service.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use rgi::{
    App, BodyError, BoxError, Capability, ConnectionInfo, Disconnect, DisconnectNotifier, Lifespan,
    Request, Scheme, ServerInfo, SocketAddress, StartupError,
};
use tower_service::Service;

use crate::catch_panic::poll_catching;
use crate::response_body::ResponseBody;
#[cfg(feature = "hyper")]
use crate::upgrade;
use crate::{compat, mount, request_body};

/// An RGI [`App`] as a tower [`Service`]: host it with `axum::serve`, hyper-util's server, or
/// inside an axum `Router` (`nest_service`, `fallback_service`, `route_service`).
///
/// `RgiService` plays the server's part of the RGI contract for the host:
///
/// - Response trailers pass through as the body's last frame; hyper sends them on HTTP/2, and
///   on HTTP/1.1 (chunked) only those the response announces in a `trailer` header.
/// - It accepts any request body with [`Bytes`] data and hands it to the app as an
///   [`rgi::Body`], frame by frame (no buffering), request trailers included (without the
///   fields `HTTP-TRAIL-7` forbids in trailers, `HTTP-TRAIL-9`), with the limit
///   set by [`RgiService::with_body_limit`] (none by default: the host's own limits apply).
/// - Mounted by axum's `nest_service` (which strips the prefix from the URI), the app gets the
///   whole request target back and the mounted part as its [`rgi::MountPrefix`]
///   (`HTTP-PATH-1`, `HTTP-PATH-4`), when the crate feature `axum` is on: axum records the whole
///   target in its `OriginalUri`. Without the feature the app sees axum's stripped URI.
/// - It inserts [`ConnectionInfo`] (`HTTP-CONN-1`) and [`Disconnect`] (`HTTP-DISC-1`) unless the
///   request already carries them (an RGI server outside, as when an axum router runs on an RGI
///   server through [`TowerApp`](crate::TowerApp) and nests this service). Without one, the
///   connection information is the peer of axum's `ConnectInfo<SocketAddr>` when the crate
///   feature `axum` is on and the host provides it, and [`SocketAddress::Unknown`] otherwise;
///   the scheme is [`Scheme::Http`], since a tower host does not tell.
/// - The app's `Err` becomes a response without details (`CORE-ERR`): the status that
///   [`BodyError::status_code`] gives for a [`BodyError`] in the error's source chain (`413`,
///   `408`, `400`), else `500`. A panic in `call` is caught and answered with `500`. Both are
///   logged with `tracing`. An error or panic of the response body after the head makes the
///   body fail, so the host aborts the response (`CORE-ERR-3`).
/// - It is always ready (`poll_ready` returns `Ready(Ok(()))`), never fails (`Error =
///   Infallible`), and is cheap to clone (one `Arc`).
///
/// # Hosting on `axum::serve`
///
/// `axum::serve` wants a service whose response is axum's `Response`: wrap the service in a
/// router with `RgiService::into_router` (crate feature `axum`) or
/// `Router::new().fallback_service(service)`.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use rgi::{App, Body, Request};
/// use rgi::http::Response;
/// use rgi_tower::RgiService;
///
/// struct Hello;
///
/// impl App for Hello {
///     type Body = Body;
///     type Error = std::convert::Infallible;
///     async fn call(&self, _req: Request) -> Result<Response<Body>, Self::Error> {
///         Ok(Response::new(Body::from("Hello, World!")))
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = RgiService::start(Hello).await?;
/// let router = axum::Router::new().fallback_service(service.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await?;
/// service.shutdown().await;
/// Ok(())
/// }
/// ```
///
/// # Lifespan
///
/// A tower host has no lifespan protocol. [`RgiService::start`] runs a [`Lifespan`]'s startup
/// before serving (`LIFE-START-1`) and [`RgiService::shutdown`] runs the app's shutdown once,
/// after the host has stopped (`LIFE-SHUT`): call them around `axum::serve`.
///
/// # Upgrades and WebSockets
///
/// An app served this way finds no [`rgi::ws::WebSocketUpgrade`] in its requests: the
/// capability is simply absent (`EXT-CAP-1`) and not advertised, and WebSockets need an RGI
/// server in RGI 0.1. Raw upgrades ([`rgi::upgrade::OnUpgrade`]) work with the crate feature
/// `hyper` on hosts that perform hyper upgrades (`axum::serve`; hyper-util's server with
/// `serve_connection_with_upgrades`, and `enable_connect_protocol` for HTTP/2): the service
/// offers the upgrade when the request asks for one and the host left hyper's
/// `hyper::upgrade::OnUpgrade` in the request, and runs the app's handler on a tokio task.
/// A `101` response that is not an accepted offer is answered `500` (`CORE-ERR-6`). When an
/// RGI server sits outside, its upgrade and WebSocket extensions reach the app unchanged, and
/// the accept markers go back to it.
pub struct RgiService<A> {
    shared: Arc<Shared<A>>,
    body_limit: Option<u64>,
}

struct Shared<A> {
    app: A,
    shut_down: AtomicBool,
}

impl<A> Clone for RgiService<A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            body_limit: self.body_limit,
        }
    }
}

impl<A: fmt::Debug> fmt::Debug for RgiService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RgiService")
            .field("app", &self.shared.app)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl<A: App> RgiService<A> {
    /// Serves `app`, which is already built (no startup work).
    pub fn new(app: A) -> Self {
        Self {
            shared: Arc::new(Shared {
                app,
                shut_down: AtomicBool::new(false),
            }),
            body_limit: None,
        }
    }

    /// Sets the default limit of every request body (`HTTP-BODY-7`): the app may lower or
    /// raise it per request (`HTTP-BODY-8`). Without it, request bodies have no limit beyond
    /// the host's own.
    #[must_use]
    pub fn with_body_limit(mut self, limit: u64) -> Self {
        self.body_limit = Some(limit);
        self
    }

    /// Runs `lifespan`'s startup with [`RgiService::server_info`] and serves the app it builds
    /// (`LIFE-START-1`). Every [`App`] is a [`Lifespan`], so this also takes a plain app.
    pub async fn start<L>(lifespan: L) -> Result<Self, StartupError>
    where
        L: Lifespan<App = A>,
    {
        Self::start_with(lifespan, Self::server_info()).await
    }

    /// Runs `lifespan`'s startup with the given description of the host, for hosts that can
    /// promise more than [`RgiService::server_info`] says (for example `Http2`).
    pub async fn start_with<L>(lifespan: L, server: ServerInfo) -> Result<Self, StartupError>
    where
        L: Lifespan<App = A>,
    {
        Ok(Self::new(lifespan.startup(server).await?))
    }

    /// What this adapter tells an app at startup (`LIFE-START-4`, `EXT-CAP-2`): server name
    /// `rgi-tower`, this crate's version, and the one optional capability every hyper-based
    /// host honours: `RequestTrailers`.
    ///
    /// Not `ResponseTrailers`: hyper sends response trailers on HTTP/2, but on HTTP/1.1 only the
    /// fields the response announced in its `trailer` header (`HTTP-TRAIL-10`), which falls
    /// short of `HTTP-TRAIL-4`. An app that announces its trailers, or a host that speaks only
    /// HTTP/2, can say more with [`RgiService::start_with`]. No WebSockets or early hints: a
    /// tower host offers neither.
    ///
    /// With the crate feature `hyper` it adds `Upgrade`: raw upgrades work on hosts that perform
    /// hyper upgrades (see [the crate docs](crate#upgrades-and-websockets)).
    pub fn server_info() -> ServerInfo {
        let info = ServerInfo::new("rgi-tower", env!("CARGO_PKG_VERSION"))
            .with_capability(Capability::RequestTrailers);
        #[cfg(feature = "hyper")]
        let info = info.with_capability(Capability::Upgrade);
        info
    }

    /// Runs the app's shutdown (`LIFE-SHUT`), once: later calls, from any clone, do nothing.
    /// Call it after the host has stopped serving.
    pub async fn shutdown(&self) {
        if !self.shared.shut_down.swap(true, Ordering::AcqRel) {
            self.shared.app.shutdown().await;
        }
    }

    /// The app.
    pub fn app(&self) -> &A {
        &self.shared.app
    }

    /// Wraps the service in an axum `Router` (as its fallback), ready for `axum::serve`.
    #[cfg(feature = "axum")]
    pub fn into_router(self) -> axum::Router {
        axum::Router::new().fallback_service(self)
    }
}

type CallFuture<B> = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send + 'static>>;

impl<A, B> Service<http::Request<B>> for RgiService<A>
where
    A: App,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<A::Body>>;
    type Error = Infallible;
    type Future = ResponseFuture<A::Body>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        if let Some(why) = malformed_head(&parts) {
            // SRV-LIMIT-1, -13, -14, -18: answered without calling the application.
            tracing::debug!(why, "rejected a malformed request head");
            return ResponseFuture::rejected();
        }
        mount::restore_mount_prefix(&mut parts);
        if parts.extensions.get::<ConnectionInfo>().is_none() {
            let peer = compat::peer_from_host(&parts.extensions).unwrap_or(SocketAddress::Unknown);
            parts.extensions.insert(ConnectionInfo::new(
                SocketAddress::Unknown,
                peer,
                Scheme::Http,
            ));
        }
        let notifier = if parts.extensions.get::<Disconnect>().is_none() {
            let (signal, notifier) = Disconnect::pair();
            parts.extensions.insert(signal);
            Some(notifier)
        } else {
            None
        };
        let is_head = parts.method == Method::HEAD;
        let is_connect = parts.method == Method::CONNECT;
        #[cfg(feature = "hyper")]
        let offer = upgrade::offer(&mut parts);
        let mut body = request_body::into_rgi_body(body);
        if let Some(limit) = self.body_limit {
            body.set_limit(Some(limit));
        }
        let req: Request = http::Request::from_parts(parts, body);
        let shared = self.shared.clone();
        ResponseFuture {
            call: Box::pin(async move { shared.app.call(req).await.map_err(Into::into) }),
            notifier,
            is_head,
            is_connect,
            #[cfg(feature = "hyper")]
            offer,
        }
    }
}

/// The future of [`RgiService`]'s `call`: the app's response, or the error response made for
/// its `Err` or panic.
///
/// Dropping it before it resolves (the host gave up on the request: the client went away)
/// settles the request's [`Disconnect`] as `ClientGone` first, then drops the app's future
/// (`CORE-CANCEL`).
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<B> {
    call: CallFuture<B>,
    notifier: Option<DisconnectNotifier>,
    is_head: bool,
    is_connect: bool,
    #[cfg(feature = "hyper")]
    offer: Option<upgrade::Offer>,
}

impl<B> ResponseFuture<B> {
    /// A `400` for a request the application must not see; the connection is not reused.
    fn rejected() -> Self {
        Self {
            call: Box::pin(async { Err::<Response<B>, BoxError>(Box::new(Rejected)) }),
            notifier: None,
            is_head: false,
            is_connect: false,
            #[cfg(feature = "hyper")]
            offer: None,
        }
    }
}

/// A request head the service refuses (`SRV-LIMIT-1`, `SRV-LIMIT-13`, `SRV-LIMIT-14`,
/// `SRV-LIMIT-18`).
#[derive(Debug, thiserror::Error)]
#[error("malformed request head")]
struct Rejected;

/// Why a request head must be refused: a target with bytes outside US-ASCII (which hyper
/// and the `http` crate let through; `SRV-LIMIT-1`), on HTTP/2 a `host` that contradicts
/// `:authority` (`SRV-LIMIT-18`), or, on HTTP/1, framing fields that
/// contradict each other (`content-length` with `transfer-encoding`, several different
/// lengths, `chunked` twice), which an RGI server must not pass on (`SRV-LIMIT-13`,
/// `SRV-LIMIT-14`). (A missing `host` is the host server's to judge: requests made
/// in-process, by a router or a test, often have none.)
fn malformed_head(parts: &http::request::Parts) -> Option<&'static str> {
    if !parts
        .uri
        .path_and_query()
        .is_none_or(|target| target.as_str().is_ascii())
    {
        // RFC 9112 §3.2, RFC 3986: other bytes must be percent-encoded.
        return Some("bytes outside US-ASCII in the target");
    }
    if parts.version >= http::Version::HTTP_2 {
        // RFC 9113 §8.3.1: a `host` naming another authority than `:authority` (SRV-LIMIT-18).
        // A request with neither is the host server's to refuse, as a missing `host` is: those
        // made in-process often have none.
        let mut hosts = parts.headers.get_all(header::HOST).iter();
        let contradicts = match (parts.uri.authority(), hosts.next(), hosts.next()) {
            (Some(_), Some(_), Some(_)) => true,
            (Some(authority), Some(host), None) => !host
                .as_bytes()
                .eq_ignore_ascii_case(authority.as_str().as_bytes()),
            _ => false,
        };
        return contradicts.then_some("a host field that contradicts :authority");
    }
    let lengths = parts.headers.get_all(header::CONTENT_LENGTH);
    if lengths.iter().next().is_some() && parts.headers.contains_key(header::TRANSFER_ENCODING) {
        return Some("content-length with transfer-encoding");
    }
    let mut values = lengths.iter();
    if let Some(first) = values.next() {
        if values.any(|other| other != first) {
            return Some("several content-length values");
        }
    }
    let chunked = parts
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .filter(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .count();
    if chunked > 1 {
        // RFC 9112 §6.1: no sender applies `chunked` twice; hyper would decode it once.
        return Some("chunked applied more than once");
    }
    None
}

/// Whether the application's response can be sent as it is (`CORE-ERR-6`): a final status
/// below 600 and at most one valid `content-length`.
fn unsendable<B>(response: &Response<B>) -> Option<&'static str> {
    let status = response.status().as_u16();
    if status > 599 || (status < 200 && status != 101) {
        return Some("a status that is not a final status below 600");
    }
    let mut lengths = response.headers().get_all(header::CONTENT_LENGTH).iter();
    if let Some(first) = lengths.next() {
        let valid = first
            .to_str()
            .ok()
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .is_some();
        if !valid || lengths.next().is_some() {
            return Some("an invalid content-length");
        }
    }
    None
}

/// The response's own `content-length`, when it has one valid value.
fn declared_length<B>(response: &Response<B>) -> Option<u64> {
    response
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Removes the connection-specific fields the application set (`HTTP-RESP-6`,
/// `HTTP-RESP-9`); a `426` keeps its `upgrade` list (`HTTP-RESP-5`).
fn remove_hop_by_hop<B>(response: &mut Response<B>) {
    let keep_upgrade = response.status() == StatusCode::UPGRADE_REQUIRED;
    let present = response
        .headers()
        .keys()
        .any(rgi::fields::is_connection_specific);
    if !present {
        return;
    }
    for name in &rgi::fields::CONNECTION_SPECIFIC {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        while response.headers_mut().remove(name).is_some() {}
    }
    if keep_upgrade && response.headers().contains_key(header::UPGRADE) {
        response.headers_mut().insert(
            header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
    }
}

impl<B> fmt::Debug for ResponseFuture<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B> Drop for ResponseFuture<B> {
    fn drop(&mut self) {
        if let Some(notifier) = self.notifier.take() {
            notifier.client_gone();
        }
    }
}

impl<B> Future for ResponseFuture<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let error = match poll_catching(|| this.call.as_mut().poll(cx)) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Ok(response))) if is_unaccepted_switch(&response, this.is_connect) => {
                Box::new(SwitchWithoutAccept) as BoxError
            }
            Poll::Ready(Ok(Ok(response))) if unsendable(&response).is_some() => {
                Box::new(Unsendable(unsendable(&response).unwrap_or_default())) as BoxError
            }
            #[allow(unused_mut)]
            Poll::Ready(Ok(Ok(mut response))) => {
                #[cfg(feature = "hyper")]
                if let Some(offer) = this.offer.take() {
                    upgrade::complete(offer, &mut response);
                }
                let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS
                    || (this.is_connect && response.status().is_success());
                if !switching {
                    remove_hop_by_hop(&mut response);
                }
                // HTTP-FRAME-7: no length on a 204 (RFC 9110 §8.6), a zero one on a 205
                // (§15.3.6).
                match response.status() {
                    StatusCode::NO_CONTENT => {
                        response.headers_mut().remove(header::CONTENT_LENGTH);
                    }
                    StatusCode::RESET_CONTENT => {
                        response
                            .headers_mut()
                            .insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("0"));
                    }
                    _ => {}
                }
                // HTTP-RESP-3: the reason phrase comes from the status code.
                #[cfg(feature = "hyper")]
                response
                    .extensions_mut()
                    .remove::<hyper::ext::ReasonPhrase>();
                let body_expected = !this.is_head && status_allows_body(response.status());
                // hyper frames by the content-length, or by an exact size hint, and stops
                // polling the body once that many bytes went out.
                let declared = if response.status() == StatusCode::RESET_CONTENT {
                    // The `content-length: 0` set above is what hyper frames by.
                    Some(0)
                } else {
                    declared_length(&response)
                        .or_else(|| http_body::Body::size_hint(response.body()).exact())
                        .filter(|_| body_expected)
                };
                let notifier = this.notifier.take();
                return Poll::Ready(Ok(response.map(|body| {
                    ResponseBody::new(body, notifier, body_expected).with_declared(declared)
                })));
            }
            Poll::Ready(Ok(Err(error))) => error,
            Poll::Ready(Err(panicked)) => Box::new(panicked),
        };
        Poll::Ready(Ok(error_response(error, this.notifier.take())))
    }
}

/// The app's response cannot be sent as it is (`CORE-ERR-6`).
#[derive(Debug, thiserror::Error)]
#[error("the application's response has {0}")]
struct Unsendable(&'static str);

/// The app switched protocols without accepting an upgrade offer (`HTTP-RESP-2`): the response
/// cannot be sent as given (`CORE-ERR-6`).
#[derive(Debug, thiserror::Error)]
#[error("the application switched protocols without accepting an upgrade offer")]
struct SwitchWithoutAccept;

/// A `101`, or a `2xx` to a CONNECT (which hyper would turn into a tunnel), without the marker
/// of an RGI accept API. (A marker from an offer that an RGI server outside made passes
/// through to that server.)
fn is_unaccepted_switch<B>(response: &Response<B>, is_connect: bool) -> bool {
    let status = response.status();
    let switching =
        status == StatusCode::SWITCHING_PROTOCOLS || (is_connect && status.is_success());
    switching
        && response
            .extensions()
            .get::<rgi::upgrade::UpgradeAccepted>()
            .is_none()
        && response
            .extensions()
            .get::<rgi::ws::WebSocketAccepted>()
            .is_none()
}

fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::RESET_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// The response for an app's `Err` or panic before the head (`CORE-ERR`).
fn error_response<B>(
    error: BoxError,
    notifier: Option<DisconnectNotifier>,
) -> Response<ResponseBody<B>> {
    if error.is::<Rejected>() {
        let mut response = Response::new(ResponseBody::empty(notifier));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("0"));
        headers.insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        return response;
    }
    let body_error = BodyError::find(error.as_ref());
    let status = body_error
        .and_then(BodyError::status_code)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let notifier = match body_error {
        Some(BodyError::Disconnected) => {
            tracing::debug!(error = %error, "client disconnected during the request");
            if let Some(notifier) = notifier {
                notifier.client_gone();
            }
            None
        }
        Some(_) => {
            // The client's doing: below error level and off by default (SRV-LOG-4).
            tracing::debug!(error = %error, status = status.as_u16(), "RGI application gave up on the request body");
            notifier
        }
        None => {
            tracing::error!(error = %error, "RGI application failed");
            notifier
        }
    };
    let mut response = Response::new(ResponseBody::empty(notifier));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, http::HeaderValue::from_static("0"));
    response
}

/// Turns an RGI application into a tower service: `app.into_service()`.
///
/// ```
/// use rgi::{App, Body, Request};
/// use rgi::http::Response;
/// use rgi_tower::AppExt as _;
///
/// struct Hello;
/// impl App for Hello {
///     type Body = Body;
///     type Error = std::convert::Infallible;
///     async fn call(&self, _req: Request) -> Result<Response<Body>, Self::Error> {
///         Ok(Response::new(Body::from("hi")))
///     }
/// }
///
/// let router: axum::Router = axum::Router::new().nest_service("/hello", Hello.into_service());
/// # drop(router);
/// ```
pub trait AppExt: App + Sized {
    /// Wraps the app in an [`RgiService`].
    fn into_service(self) -> RgiService<Self> {
        RgiService::new(self)
    }
}

impl<A: App> AppExt for A {}
