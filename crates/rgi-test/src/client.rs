//! The in-process test client: [`TestClient`] and [`RequestBuilder`].

use rgi::fields::CONNECTION_SPECIFIC;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use rgi::ext::EarlyHints;
use rgi::upgrade::{OnUpgrade, UpgradeAccepted};
use rgi::ws::{WebSocketAccepted, WebSocketUpgrade};
use rgi::{
    App, Body, BodyError, BoxError, Capabilities, Capability, ConnectionInfo, Lifespan,
    MountPrefix, Outcome, Scheme, ServerInfo, SocketAddress, StartupError, TlsInfo,
};

use crate::catch::{CatchUnwind, panic_message};
use crate::exchange::{Exchange, HintsRecorder};
use crate::request_body::{BoxStream, RequestBody, Source};
use crate::response::{TestBody, TestResponse};

/// The default request body limit: 16 MiB, as `SRV-LIMIT-6` recommends.
pub const DEFAULT_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// The capabilities the test client honours (`EXT-CAP-2`).
pub fn capabilities() -> Capabilities {
    [
        Capability::Http1,
        Capability::Http2,
        Capability::Tls,
        Capability::RequestTrailers,
        Capability::ResponseTrailers,
        Capability::EarlyHints,
        Capability::Upgrade,
        Capability::WebSocket,
        Capability::WebSocketHttp2,
        Capability::MountPrefix,
    ]
    .into_iter()
    .collect()
}

/// The [`ServerInfo`] the test client passes to [`Lifespan::startup`] (`LIFE-START-4`).
pub fn server_info() -> ServerInfo {
    ServerInfo::new("rgi-test", env!("CARGO_PKG_VERSION")).with_capabilities(capabilities())
}

struct Shared<A> {
    app: A,
    shut_down: AtomicBool,
    next_connection: AtomicU64,
}

/// Drives an RGI application in-process, as a conforming server would, without sockets.
///
/// Every request gets the extensions a server inserts (`ConnectionInfo`, `Disconnect`, and
/// `MountPrefix`, `EarlyHints`, `WebSocketUpgrade`, `OnUpgrade` where they apply), its body
/// carries the body limit, and the application's errors and panics become the responses a
/// server would send (`CORE-ERR-*`).
///
/// ```
/// use rgi::{App, Body, Request};
/// use rgi::http::{Response, StatusCode};
/// use rgi_test::TestClient;
/// use std::convert::Infallible;
///
/// struct Hello;
///
/// impl App for Hello {
///     type Body = Body;
///     type Error = Infallible;
///     async fn call(&self, _req: Request) -> Result<Response<Body>, Infallible> {
///         Ok(Response::new(Body::from("Hello, World!")))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = TestClient::new(Hello);
/// let mut response = client.get("/").send().await;
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(response.text().await.unwrap(), "Hello, World!");
/// client.shutdown().await;
/// # }
/// ```
pub struct TestClient<A> {
    shared: Arc<Shared<A>>,
    body_limit: Option<u64>,
    peer: SocketAddress,
    mount_prefix: Option<MountPrefix>,
}

impl<A> Clone for TestClient<A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            body_limit: self.body_limit,
            peer: self.peer.clone(),
            mount_prefix: self.mount_prefix.clone(),
        }
    }
}

impl<A> fmt::Debug for TestClient<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("body_limit", &self.body_limit)
            .field("mount_prefix", &self.mount_prefix)
            .finish_non_exhaustive()
    }
}

impl<A: App> TestClient<A> {
    /// A client for an application that is already built (its lifespan is itself,
    /// `LIFE-START-3`).
    pub fn new(app: A) -> Self {
        Self {
            shared: Arc::new(Shared {
                app,
                shut_down: AtomicBool::new(false),
                next_connection: AtomicU64::new(1),
            }),
            body_limit: Some(DEFAULT_BODY_LIMIT),
            peer: SocketAddress::Unknown,
            mount_prefix: None,
        }
    }

    /// Runs `lifespan`'s startup with the test client's [`server_info`], and returns a client
    /// for the application it built (`LIFE-START-1`).
    pub async fn start<L>(lifespan: L) -> Result<Self, StartupError>
    where
        L: Lifespan<App = A>,
    {
        Self::start_with(lifespan, server_info()).await
    }

    /// Like [`start`](TestClient::start), with a [`ServerInfo`] of the test's choice (for
    /// example one that lacks a capability the application needs, `EXT-CAP-6`).
    pub async fn start_with<L>(lifespan: L, info: ServerInfo) -> Result<Self, StartupError>
    where
        L: Lifespan<App = A>,
    {
        match CatchUnwind::new(lifespan.startup(info)).await {
            Ok(result) => result.map(Self::new),
            Err(payload) => Err(StartupError::new(format!(
                "startup panicked: {}",
                panic_message(payload.as_ref())
            ))),
        }
    }

    /// Sets the request body limit of every request (`HTTP-BODY-7`); `None` for no limit.
    /// The default is [`DEFAULT_BODY_LIMIT`].
    #[must_use]
    pub fn body_limit(mut self, limit: Option<u64>) -> Self {
        self.body_limit = limit;
        self
    }

    /// Sets the client address of every request (default: [`SocketAddress::Unknown`]).
    #[must_use]
    pub fn peer(mut self, peer: SocketAddress) -> Self {
        self.peer = peer;
        self
    }

    /// Mounts the application under `prefix` for every request (`HTTP-PATH-4`, `HTTP-PATH-5`).
    ///
    /// # Panics
    ///
    /// When `prefix` is not a valid mount prefix (see [`MountPrefix::new`]).
    #[must_use]
    pub fn mount_prefix(mut self, prefix: &str) -> Self {
        self.mount_prefix = Some(valid_prefix(prefix));
        self
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.shared.app
    }

    /// Runs [`App::shutdown`]; only the first call runs it (`LIFE-SHUT-1`).
    pub async fn shutdown(&self) {
        if !self.shared.shut_down.swap(true, Ordering::SeqCst) {
            self.shared.app.shutdown().await;
        }
    }

    /// Whether [`shutdown`](TestClient::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shut_down.load(Ordering::SeqCst)
    }

    /// A request with `method` to `uri` (a path and query such as `/items?page=2`).
    pub fn request(&self, method: Method, uri: &str) -> RequestBuilder<A> {
        RequestBuilder::new(self.clone(), method, uri)
    }

    /// A `GET` request.
    pub fn get(&self, uri: &str) -> RequestBuilder<A> {
        self.request(Method::GET, uri)
    }

    /// A `HEAD` request.
    pub fn head(&self, uri: &str) -> RequestBuilder<A> {
        self.request(Method::HEAD, uri)
    }

    /// A `POST` request.
    pub fn post(&self, uri: &str) -> RequestBuilder<A> {
        self.request(Method::POST, uri)
    }

    /// A `PUT` request.
    pub fn put(&self, uri: &str) -> RequestBuilder<A> {
        self.request(Method::PUT, uri)
    }

    /// A `DELETE` request.
    pub fn delete(&self, uri: &str) -> RequestBuilder<A> {
        self.request(Method::DELETE, uri)
    }

    /// A WebSocket opening handshake to `uri` (see [`crate::WebSocketBuilder`]).
    pub fn websocket(&self, uri: &str) -> crate::ws::WebSocketBuilder<A> {
        crate::ws::WebSocketBuilder::new(self.get(uri))
    }

    /// A raw protocol upgrade to `protocol` at `uri` (see [`crate::UpgradeBuilder`]).
    pub fn upgrade(&self, uri: &str, protocol: &str) -> crate::upgrade::UpgradeBuilder<A> {
        crate::upgrade::UpgradeBuilder::new(self.get(uri), protocol)
    }
}

fn valid_prefix(prefix: &str) -> MountPrefix {
    match MountPrefix::new(prefix) {
        Ok(prefix) => prefix,
        Err(error) => panic!("rgi-test: {error}"),
    }
}

/// How the test wants its request body.
enum BodySpec {
    Empty,
    Full(Bytes),
    Chunks(Vec<Bytes>),
    Stream(BoxStream),
}

/// What kind of upgrade offer to attach.
#[derive(Debug, Clone)]
pub(crate) enum Offer {
    None,
    WebSocket(Vec<String>),
    Raw(Vec<String>),
}

/// A request being built; [`send`](RequestBuilder::send) runs it.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<A> {
    client: TestClient<A>,
    method: Method,
    uri: String,
    version: Version,
    headers: HeaderMap,
    body: BodySpec,
    trailers: Option<HeaderMap>,
    chunk_delay: Option<Duration>,
    peer: SocketAddress,
    local: SocketAddress,
    tls: Option<TlsInfo>,
    mount_prefix: Option<MountPrefix>,
    disconnect_after: Option<u64>,
    body_limit: Option<u64>,
    extensions: http::Extensions,
    pub(crate) offer: Offer,
}

impl<A> fmt::Debug for RequestBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// The server sent no response at all: the application failed with
/// `BodyError::Disconnected` (`CORE-ERR-4`).
#[derive(Debug, thiserror::Error)]
#[error("no response: {reason}")]
pub struct NoResponse {
    /// Why.
    pub reason: String,
}

impl<A: App> RequestBuilder<A> {
    fn new(client: TestClient<A>, method: Method, uri: &str) -> Self {
        Self {
            peer: client.peer.clone(),
            mount_prefix: client.mount_prefix.clone(),
            body_limit: client.body_limit,
            client,
            method,
            uri: uri.to_owned(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: BodySpec::Empty,
            trailers: None,
            chunk_delay: None,
            local: SocketAddress::Unknown,
            tls: None,
            disconnect_after: None,
            extensions: http::Extensions::new(),
            offer: Offer::None,
        }
    }

    /// Changes the method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    pub(crate) fn version_ref(&self) -> Version {
        self.version
    }

    /// Appends a header field.
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header name or value.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: fmt::Debug,
    {
        let name = match name.try_into() {
            Ok(name) => name,
            Err(error) => panic!("rgi-test: invalid header name: {error:?}"),
        };
        let value = match value.try_into() {
            Ok(value) => value,
            Err(error) => panic!("rgi-test: invalid header value: {error:?}"),
        };
        self.headers.append(name, value);
        self
    }

    /// A body of these bytes, with its `content-length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = BodySpec::Full(body.into());
        self
    }

    /// A body of these chunks, sent with chunked framing (no `content-length`); over HTTP/1.0,
    /// which has no chunked framing, with their total `content-length`.
    pub fn chunks<I, B>(mut self, chunks: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.body = BodySpec::Chunks(chunks.into_iter().map(Into::into).collect());
        self
    }

    /// Waits `pause` before each chunk after the first (a slow client).
    pub fn chunk_delay(mut self, pause: Duration) -> Self {
        self.chunk_delay = Some(pause);
        self
    }

    /// A body read from `stream`, sent with chunked framing.
    pub fn body_stream<S, E>(mut self, stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.body = BodySpec::Stream(Box::pin(MapErrStream { inner: stream }));
        self
    }

    /// Request trailers, delivered as the body's last frame (`HTTP-TRAIL-2`); the body is sent
    /// chunked.
    pub fn trailers(mut self, trailers: HeaderMap) -> Self {
        self.trailers = Some(trailers);
        self
    }

    /// The HTTP version (default `HTTP/1.1`). `HTTP/2` requests carry the authority in the URI
    /// and no `host` field (`HTTP-REQ-3`).
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// The client address in [`ConnectionInfo`].
    pub fn peer(mut self, peer: impl Into<SocketAddress>) -> Self {
        self.peer = peer.into();
        self
    }

    /// The server address in [`ConnectionInfo`].
    pub fn local(mut self, local: impl Into<SocketAddress>) -> Self {
        self.local = local.into();
        self
    }

    /// Makes the connection TLS: the scheme becomes `https` (`HTTP-CONN-3`, `HTTP-CONN-4`).
    pub fn tls(mut self, tls: TlsInfo) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Mounts the application under `prefix` for this request.
    ///
    /// # Panics
    ///
    /// When `prefix` is not a valid mount prefix (see [`MountPrefix::new`]).
    pub fn mount_prefix(mut self, prefix: &str) -> Self {
        self.mount_prefix = Some(valid_prefix(prefix));
        self
    }

    /// The body limit of this request (`None`: no limit).
    pub fn body_limit(mut self, limit: Option<u64>) -> Self {
        self.body_limit = limit;
        self
    }

    /// Simulates a client that goes away after sending `bytes` body bytes: the body then
    /// yields `BodyError::Disconnected` and the request's `Disconnect` settles `ClientGone`.
    pub fn disconnect_after_request_bytes(mut self, bytes: u64) -> Self {
        self.disconnect_after = Some(bytes);
        self
    }

    /// Inserts an extension of the test's own into the request.
    pub fn extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Builds the request as a server would hand it to the application.
    pub(crate) fn build(self) -> (TestClient<A>, Request<Body>, Arc<Exchange>) {
        let exchange = Exchange::new();
        let has_trailers = self.trailers.is_some();
        let mut headers = self.headers;
        let (source, exact_len) = match self.body {
            BodySpec::Empty if has_trailers => (Source::Chunks(VecDeque::new()), None),
            BodySpec::Empty => (Source::Chunks(VecDeque::new()), Some(0)),
            BodySpec::Full(bytes) if has_trailers => {
                (Source::Chunks(VecDeque::from([bytes])), None)
            }
            BodySpec::Full(bytes) => {
                let len = bytes.len() as u64;
                (Source::Chunks(VecDeque::from([bytes])), Some(len))
            }
            // HTTP/1.0 has no chunked framing: its client declares the length.
            BodySpec::Chunks(chunks) if self.version == Version::HTTP_10 && !has_trailers => {
                let len = chunks.iter().map(|c| c.len() as u64).sum();
                (Source::Chunks(chunks.into()), Some(len))
            }
            BodySpec::Chunks(chunks) => (Source::Chunks(chunks.into()), None),
            BodySpec::Stream(stream) => (Source::Stream(stream), None),
        };
        let explicit_framing = headers.contains_key(header::CONTENT_LENGTH)
            || headers.contains_key(header::TRANSFER_ENCODING);
        if !explicit_framing {
            match exact_len {
                Some(0) => {}
                Some(len) => {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                }
                None if self.version == Version::HTTP_11 => {
                    headers.insert(
                        header::TRANSFER_ENCODING,
                        HeaderValue::from_static("chunked"),
                    );
                }
                None => {}
            }
        }
        let scheme = if self.tls.is_some() {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let uri = if self.version >= Version::HTTP_2 && self.uri.starts_with('/') {
            let authority = headers
                .remove(header::HOST)
                .and_then(|h| h.to_str().ok().map(str::to_owned))
                .unwrap_or_else(|| "localhost".to_owned());
            format!("{scheme}://{authority}{}", self.uri)
        } else {
            if self.version == Version::HTTP_11 && !headers.contains_key(header::HOST) {
                headers.insert(header::HOST, HeaderValue::from_static("localhost"));
            }
            self.uri
        };
        let uri: Uri = match uri.parse() {
            Ok(uri) => uri,
            Err(error) => panic!("rgi-test: invalid request target {uri:?}: {error}"),
        };
        let body = RequestBody {
            source,
            trailers: self.trailers,
            delay: self.chunk_delay,
            sleep: None,
            disconnect_after: self.disconnect_after,
            exact_len,
            delivered: 0,
            first: true,
            done: exact_len == Some(0) && !has_trailers && self.disconnect_after.is_none(),
            exchange: exchange.clone(),
        };
        let body = Body::new(body).with_limit(self.body_limit);
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = headers;
        *request.extensions_mut() = self.extensions;
        let id = self
            .client
            .shared
            .next_connection
            .fetch_add(1, Ordering::Relaxed);
        let mut info = ConnectionInfo::new(self.local, self.peer, Scheme::Http).with_id(id);
        if let Some(tls) = self.tls {
            info = info.with_tls(tls);
        }
        let extensions = request.extensions_mut();
        extensions.insert(info);
        extensions.insert(exchange.disconnect().clone());
        if let Some(prefix) = self.mount_prefix {
            extensions.insert(prefix);
        }
        if self.version == Version::HTTP_11 || self.version == Version::HTTP_2 {
            extensions.insert(EarlyHints::new(HintsRecorder(exchange.clone())));
        }
        match self.offer {
            Offer::None => {}
            Offer::WebSocket(protocols) => {
                extensions.insert(WebSocketUpgrade::new(self.version, protocols));
                // A handshake is also a request for a protocol switch (UPGRADE-RAW-1).
                extensions.insert(OnUpgrade::new(self.version, vec!["websocket".to_owned()]));
            }
            Offer::Raw(protocols) => {
                extensions.insert(OnUpgrade::new(self.version, protocols));
            }
        }
        (self.client, request, exchange)
    }

    /// Sends the request and waits for the response head.
    ///
    /// # Panics
    ///
    /// When the server would send no response at all (the application failed with
    /// `BodyError::Disconnected`; use [`try_send`](RequestBuilder::try_send) to test that),
    /// when the client was shut down (`LIFE-SHUT-3`), and when the request target is not a
    /// valid URI.
    pub async fn send(self) -> TestResponse {
        match self.try_send().await {
            Ok(response) => response,
            Err(error) => panic!("rgi-test: {error}"),
        }
    }

    /// Sends the request; `Err` when the server would send nothing.
    ///
    /// # Panics
    ///
    /// When the client was shut down (`LIFE-SHUT-3`), and when the request target is not a
    /// valid URI.
    pub async fn try_send(self) -> Result<TestResponse, NoResponse> {
        let head = self.method == Method::HEAD;
        let (client, request, exchange) = self.build();
        let version = request.version();
        let disconnect = exchange.disconnect().clone();
        let dispatched = client.dispatch(request, &exchange).await?;
        Ok(finish(dispatched, version, head, disconnect, exchange))
    }
}

/// The application's response, or the server's answer instead of it.
pub(crate) enum Dispatched<B> {
    App(Response<B>),
    Server {
        status: StatusCode,
        app_error: Option<String>,
    },
}

impl<A: App> TestClient<A> {
    /// Runs the application for `request`, mapping failures as a server does.
    pub(crate) async fn dispatch(
        &self,
        request: Request<Body>,
        exchange: &Arc<Exchange>,
    ) -> Result<Dispatched<A::Body>, NoResponse> {
        assert!(
            !self.is_shut_down(),
            "rgi-test: request after TestClient::shutdown (LIFE-SHUT-3)"
        );
        // HTTP-PATH-5: outside the mount prefix, the server answers 404 itself.
        if request.extensions().get::<MountPrefix>().is_some()
            && rgi::path::app_path(&request).is_none()
        {
            exchange.mark_head_sent();
            return Ok(Dispatched::Server {
                status: StatusCode::NOT_FOUND,
                app_error: None,
            });
        }
        let offered_ws = request.extensions().get::<WebSocketUpgrade>().is_some();
        let offered_raw = request.extensions().get::<OnUpgrade>().is_some();
        let h2 = request.version() >= Version::HTTP_2;
        let result = CatchUnwind::new(self.shared.app.call(request)).await;
        exchange.mark_head_sent();
        let response = match result {
            Err(payload) => {
                return Ok(Dispatched::Server {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    app_error: Some(format!(
                        "the application panicked: {}",
                        panic_message(payload.as_ref())
                    )),
                });
            }
            Ok(Err(error)) => {
                let error: BoxError = error.into();
                let found = BodyError::find(error.as_ref());
                if let Some(BodyError::Disconnected) = found {
                    exchange.settle(Outcome::ClientGone);
                    return Err(NoResponse {
                        reason: format!("the application failed with `{error}` (CORE-ERR-4)"),
                    });
                }
                let status = found
                    .and_then(BodyError::status_code)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Ok(Dispatched::Server {
                    status,
                    app_error: Some(error.to_string()),
                });
            }
            Ok(Ok(response)) => response,
        };
        if let Some(problem) = invalid_response(&response, offered_ws, offered_raw, h2) {
            return Ok(Dispatched::Server {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                app_error: Some(problem),
            });
        }
        Ok(Dispatched::App(response))
    }
}

/// `CORE-ERR-6`: a response the server cannot send as given.
fn invalid_response<B>(
    response: &Response<B>,
    offered_ws: bool,
    offered_raw: bool,
    h2: bool,
) -> Option<String> {
    let status = response.status();
    let ws = response.extensions().get::<WebSocketAccepted>().is_some();
    let raw = response.extensions().get::<UpgradeAccepted>().is_some();
    if (ws && !offered_ws) || (raw && !offered_raw) {
        return Some(
            "CORE-ERR-6: an accept marker in the response to a request that offered no upgrade"
                .to_owned(),
        );
    }
    let accepted = ws || raw;
    if status == StatusCode::SWITCHING_PROTOCOLS && !accepted {
        return Some("CORE-ERR-6: a 101 response without an accept marker".to_owned());
    }
    if !accepted && !(200..=599).contains(&status.as_u16()) {
        return Some(format!("CORE-ERR-6: status {status} outside 200..=599"));
    }
    if !accepted && (offered_ws || offered_raw) && h2 && status.is_success() {
        return Some(
            "CORE-ERR-6: a 2xx answer to an extended CONNECT without an accept marker".to_owned(),
        );
    }
    for (name, value) in response.headers() {
        if HeaderValue::from_bytes(value.as_bytes()).is_err() {
            return Some(format!(
                "CORE-ERR-6: the value of `{name}` is not a valid field value"
            ));
        }
    }
    let lengths: Vec<_> = response
        .headers()
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .collect();
    if lengths.len() > 1 || lengths.first().is_some_and(|v| parse_length(v).is_none()) {
        return Some("CORE-ERR-6: the content-length is not a single decimal value".to_owned());
    }
    None
}

pub(crate) fn parse_length(value: &HeaderValue) -> Option<u64> {
    let text = value.to_str().ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Turns what `dispatch` produced into what a client receives.
pub(crate) fn finish<B>(
    dispatched: Dispatched<B>,
    version: Version,
    head: bool,
    disconnect: rgi::Disconnect,
    exchange: Arc<Exchange>,
) -> TestResponse
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match dispatched {
        Dispatched::Server { status, app_error } => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
            exchange.settle(Outcome::Completed);
            TestResponse {
                status,
                version,
                headers,
                extensions: http::Extensions::new(),
                body: TestBody::new(None, None, false, exchange.clone()),
                trailers: None,
                disconnect,
                app_error,
                exchange,
            }
        }
        Dispatched::App(response) => {
            let (mut parts, body) = response.into_parts();
            for name in &CONNECTION_SPECIFIC {
                // A 426 keeps its `upgrade` field (RFC 9110 §15.5.22, HTTP-RESP-6).
                if *name == "upgrade" && parts.status == StatusCode::UPGRADE_REQUIRED {
                    continue;
                }
                parts.headers.remove(name);
            }
            let status = parts.status;
            let bodiless = head
                || status == StatusCode::NO_CONTENT
                || status == StatusCode::RESET_CONTENT
                || status == StatusCode::NOT_MODIFIED
                || status.is_informational();
            if status == StatusCode::NO_CONTENT || status.is_informational() {
                // HTTP-FRAME-7
                parts.headers.remove(header::CONTENT_LENGTH);
            } else if status == StatusCode::RESET_CONTENT {
                // HTTP-FRAME-7: a 205 is empty, and says so (RFC 9110 §15.3.6).
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(parse_length);
            let inner = if bodiless || body.is_end_stream() {
                None
            } else {
                let boxed: crate::response::DynBody = Box::pin(body.map_err(Into::into));
                Some(boxed)
            };
            let keep_trailers =
                version >= Version::HTTP_2 || (version == Version::HTTP_11 && declared.is_none());
            let short_empty = inner.is_none() && !bodiless && declared.is_some_and(|d| d > 0);
            let body = if short_empty {
                // An empty body with a positive content-length is cut short (HTTP-FRAME-4).
                let ended: crate::response::DynBody = Box::pin(ShortBody);
                TestBody::new(Some(ended), declared, keep_trailers, exchange.clone())
            } else {
                let declared = if inner.is_some() { declared } else { None };
                TestBody::new(inner, declared, keep_trailers, exchange.clone())
            };
            TestResponse {
                status,
                version,
                headers: parts.headers,
                extensions: parts.extensions,
                body,
                trailers: None,
                disconnect,
                app_error: None,
                exchange,
            }
        }
    }
}

/// An already-ended body (used to let [`TestBody`] apply its length check).
struct ShortBody;

impl http_body::Body for ShortBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        std::task::Poll::Ready(None)
    }
}

pin_project_lite::pin_project! {
    struct MapErrStream<S> {
        #[pin]
        inner: S,
    }
}

impl<S, E> Stream for MapErrStream<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|item| item.map(|result| result.map_err(Into::into)))
    }
}
