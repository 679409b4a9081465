//! Faulty applications and middleware, each with one seeded fault, for the proof of strength
//! of application mode (issue #7).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Version, header};
use http_body::Frame;
use rgi::ext::{EarlyHints, EarlyHintsError, SendEarlyHints};
use rgi::upgrade::OnUpgrade;
use rgi::ws::{AcceptOptions, WebSocket, WebSocketUpgrade};
use rgi::{App, Body, BoxError, Lifespan, MountPrefix, Request, ServerInfo, StartupError};
use rgi_conformance::app::AppTarget;
use tokio::sync::mpsc;

/// An application fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppFault {
    /// No fault: the control run.
    None,
    /// `HEAD` answered with the `GET` body.
    BodyOnHead,
    /// The `204` route sends body data.
    BodyOn204,
    /// `content-length` that does not match the body.
    WrongContentLength,
    /// A connection-specific field (`transfer-encoding`) set by the app.
    ConnectionSpecificField,
    /// `content-length` in the response trailers.
    ForbiddenTrailer,
    /// `connection: close` in early hints.
    ConnectionFieldInEarlyHints,
    /// A channel-fed body whose producer went away ends cleanly.
    AbandonedProducerEndsCleanly,
    /// `sec-websocket-accept` set by hand on an accepted handshake.
    HandSetWebSocketAccept,
    /// The status of an accepted WebSocket handshake changed to `200`.
    WebSocketStatusChanged,
    /// A WebSocket subprotocol selected that the client did not offer.
    SubprotocolNobodyOffered,
    /// The status of an accepted raw upgrade changed to `200`.
    UpgradeStatusChanged,
    /// A WebSocket accept marker in the response to a plain `GET`.
    MarkerWithoutOffer,
    /// `200` although reading the request body failed.
    SuccessAfterBodyFailure,
}

/// The target for [`FaultyApp`]: every optional route named.
pub(crate) fn target() -> AppTarget {
    AppTarget::new("/", "/echo")
        .no_content("/none")
        .early_hints("/hints")
        .abandoned_producer("/abandoned")
        .websocket("/ws")
        .upgrade("/upgrade", "faulty-echo")
}

/// A small application with every route application mode uses, and one [`AppFault`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultyApp(pub(crate) AppFault);

impl App for FaultyApp {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, mut req: Request) -> Result<Response<Body>, BoxError> {
        let fault = self.0;
        let path = req.uri().path().to_owned();
        let response = match path.as_str() {
            "/" => {
                let head = req.method() == Method::HEAD;
                let mut response = if head && fault != AppFault::BodyOnHead {
                    Response::new(Body::empty())
                } else {
                    Response::new(Body::from("hello"))
                };
                let declared = if fault == AppFault::WrongContentLength {
                    "9"
                } else {
                    "5"
                };
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static(declared));
                if fault == AppFault::ConnectionSpecificField {
                    response.headers_mut().insert(
                        header::TRANSFER_ENCODING,
                        HeaderValue::from_static("chunked"),
                    );
                }
                response
            }
            "/echo" => {
                let wants_trailers = req.headers().contains_key(header::TE);
                match req.into_body().collect().await {
                    Ok(collected) => {
                        let data = collected.to_bytes();
                        if wants_trailers || fault == AppFault::ForbiddenTrailer {
                            let mut trailers = HeaderMap::new();
                            trailers.insert("x-echo", HeaderValue::from_static("done"));
                            if fault == AppFault::ForbiddenTrailer {
                                trailers
                                    .insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
                            }
                            Response::new(Body::new(DataThenTrailers {
                                data: Some(data),
                                trailers: Some(trailers),
                            }))
                        } else {
                            Response::new(Body::from(data))
                        }
                    }
                    Err(error) if fault == AppFault::SuccessAfterBodyFailure => {
                        Response::new(Body::from(format!("fine: {error}")))
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            "/none" => {
                let mut response = if fault == AppFault::BodyOn204 {
                    Response::new(Body::from("nothing"))
                } else {
                    Response::new(Body::empty())
                };
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            }
            "/hints" => {
                if let Some(hints) = req.extensions().get::<EarlyHints>() {
                    let mut fields = HeaderMap::new();
                    fields.insert(
                        header::LINK,
                        HeaderValue::from_static("</a.css>; rel=preload"),
                    );
                    if fault == AppFault::ConnectionFieldInEarlyHints {
                        fields.insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    hints.send(fields).await?;
                }
                Response::new(Body::from("hinted"))
            }
            "/abandoned" => {
                let (sender, receiver) = mpsc::channel::<Result<Bytes, BoxError>>(1);
                tokio::spawn(async move {
                    let _ = sender.send(Ok(Bytes::from_static(b"part one"))).await;
                    // The producer goes away here without finishing: it drops its sender.
                });
                Response::new(Body::new(ChannelBody {
                    receiver,
                    end_cleanly_when_abandoned: fault == AppFault::AbandonedProducerEndsCleanly,
                }))
            }
            "/ws" => match req.extensions_mut().remove::<WebSocketUpgrade>() {
                Some(offer) => {
                    let mut response: Response<Body> = if fault
                        == AppFault::SubprotocolNobodyOffered
                    {
                        let widened = WebSocketUpgrade::new(offer.version(), vec!["chat".into()]);
                        widened
                            .accept_with(AcceptOptions::new().subprotocol("chat"), close_at_once)?
                    } else {
                        offer.accept(close_at_once)
                    };
                    if fault == AppFault::HandSetWebSocketAccept {
                        response.headers_mut().insert(
                            "sec-websocket-accept",
                            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                        );
                    }
                    if fault == AppFault::WebSocketStatusChanged {
                        *response.status_mut() = StatusCode::OK;
                    }
                    response
                }
                None if fault == AppFault::MarkerWithoutOffer => {
                    // Accepts a handshake the client never offered.
                    let made_up = WebSocketUpgrade::new(Version::HTTP_11, Vec::new());
                    let accepted: Response<Body> = made_up.accept(close_at_once);
                    let (parts, _) = accepted.into_parts();
                    let mut response = Response::new(Body::from("a WebSocket route\n"));
                    response.extensions_mut().extend(parts.extensions);
                    response
                }
                None => Response::new(Body::from("a WebSocket route\n")),
            },
            "/upgrade" => match req.extensions_mut().remove::<OnUpgrade>() {
                Some(offer) => {
                    let mut response: Response<Body> =
                        offer.accept("faulty-echo", |_io| async { Ok(()) })?;
                    if fault == AppFault::UpgradeStatusChanged {
                        *response.status_mut() = StatusCode::OK;
                    }
                    response
                }
                None => Response::new(Body::from("an upgrade route\n")),
            },
            _ => {
                let mut response = Response::new(Body::from("not found\n"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        };
        Ok(response)
    }
}

async fn close_at_once(mut socket: WebSocket) -> Result<(), BoxError> {
    while let Some(message) = socket.recv().await {
        if message.is_err() {
            break;
        }
    }
    Ok(())
}

/// A body of one data frame and one trailers frame.
struct DataThenTrailers {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for DataThenTrailers {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.data.take() {
            Some(data) => Some(Frame::data(data)),
            None => self.trailers.take().map(Frame::trailers),
        };
        Poll::Ready(frame.map(Ok))
    }
}

/// The producer went away before it finished.
#[derive(Debug, thiserror::Error)]
#[error("the producer went away before finishing the body")]
struct Abandoned;

/// A body fed by a channel; the producer never sends an end marker, so a closed channel means
/// it went away (`HTTP-FRAME-10`), unless the fault makes that a clean end.
struct ChannelBody {
    receiver: mpsc::Receiver<Result<Bytes, BoxError>>,
    end_cleanly_when_abandoned: bool,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.receiver.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(item)) => Poll::Ready(Some(item.map(Frame::data))),
            Poll::Ready(None) if self.end_cleanly_when_abandoned => Poll::Ready(None),
            Poll::Ready(None) => Poll::Ready(Some(Err(Box::new(Abandoned)))),
        }
    }
}

/// A middleware fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MiddlewareFault {
    /// No fault: the control run.
    None,
    /// Rebuilds the request with only the extensions it knows.
    DropsUnknownExtensions,
    /// Replaces `EarlyHints` with a sink, without withdrawing the feature.
    SwallowsEarlyHints,
    /// Drops response trailers without withdrawing `ResponseTrailers`.
    DropsResponseTrailers,
    /// Mounts the inner app under `/api` by rewriting the URI and adding `/api` to the
    /// `MountPrefix`, which breaks the mount invariant.
    MountsByRewritingTheUri,
}

/// A middleware with one [`MiddlewareFault`] around an inner lifespan.
pub(crate) struct FaultyMiddleware<L> {
    /// The inner lifespan.
    pub(crate) inner: L,
    /// The fault.
    pub(crate) fault: MiddlewareFault,
}

impl<L: Lifespan> Lifespan for FaultyMiddleware<L> {
    type App = FaultyMiddlewareApp<L::App>;

    async fn startup(self, server: ServerInfo) -> Result<Self::App, StartupError> {
        Ok(FaultyMiddlewareApp {
            inner: self.inner.startup(server).await?,
            fault: self.fault,
        })
    }
}

/// The built [`FaultyMiddleware`].
pub(crate) struct FaultyMiddlewareApp<A> {
    inner: A,
    fault: MiddlewareFault,
}

struct Sink;

impl SendEarlyHints for Sink {
    fn send_early_hints(
        &self,
        _headers: HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<(), EarlyHintsError>> + Send>> {
        Box::pin(async { Ok(()) })
    }
}

impl<A: App> App for FaultyMiddlewareApp<A> {
    type Body = Body;
    type Error = BoxError;

    async fn call(&self, mut req: Request) -> Result<Response<Body>, BoxError> {
        match self.fault {
            MiddlewareFault::DropsUnknownExtensions => {
                let (mut parts, body) = req.into_parts();
                let mut known = http::Extensions::new();
                if let Some(info) = parts.extensions.remove::<rgi::ConnectionInfo>() {
                    known.insert(info);
                }
                if let Some(signal) = parts.extensions.remove::<rgi::Disconnect>() {
                    known.insert(signal);
                }
                if let Some(hints) = parts.extensions.remove::<EarlyHints>() {
                    known.insert(hints);
                }
                if let Some(prefix) = parts.extensions.remove::<MountPrefix>() {
                    known.insert(prefix);
                }
                parts.extensions = known;
                req = Request::from_parts(parts, body);
            }
            MiddlewareFault::SwallowsEarlyHints => {
                if req.extensions_mut().remove::<EarlyHints>().is_some() {
                    req.extensions_mut().insert(EarlyHints::new(Sink));
                }
            }
            MiddlewareFault::MountsByRewritingTheUri => {
                let path_and_query = req
                    .uri()
                    .path_and_query()
                    .map(|pq| pq.as_str().to_owned())
                    .unwrap_or_default();
                let outer = req
                    .extensions()
                    .get::<MountPrefix>()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                if let Some(rest) = path_and_query.strip_prefix(&format!("{outer}/api")) {
                    if let Ok(uri) = rest.parse() {
                        *req.uri_mut() = uri;
                    }
                    if let Ok(prefix) = MountPrefix::new(&format!("{outer}/api")) {
                        req.extensions_mut().insert(prefix);
                    }
                }
            }
            MiddlewareFault::None | MiddlewareFault::DropsResponseTrailers => {}
        }
        let response = self.inner.call(req).await.map_err(Into::into)?;
        let (parts, body) = response.into_parts();
        let body = if self.fault == MiddlewareFault::DropsResponseTrailers {
            Body::new(http_body_util::BodyExt::map_frame(
                body,
                |frame: Frame<Bytes>| match frame.into_data() {
                    Ok(data) => Frame::data(data),
                    Err(_) => Frame::data(Bytes::new()),
                },
            ))
        } else {
            Body::new(body)
        };
        Ok(Response::from_parts(parts, body))
    }

    async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}
