//! Extensions: optional, typed features that a server offers per request (`EXT-*`).
//!
//! An extension is a value of a known type in the request's [`http::Extensions`]. Its presence
//! is the server's promise that the feature works for this request; its absence means the
//! feature is not available (`EXT-CAP-1`). Use [`require`] to turn absence into a typed error
//! instead of a silent no-op (`EXT-CAP-3`).
//!
//! Types defined by this crate are reserved to the specification (`EXT-NS-1`). A server's own
//! extensions are types of the server's crate (`EXT-NS-2`), so two servers' extensions cannot
//! collide and an application that uses one names its server in its dependencies. Applications
//! and middleware that store their own data in extensions should use types of their own crates,
//! not general types such as `String` (`EXT-NS-3`).
//!
//! A server inserts an optional extension only with its capability advertised (`EXT-CAP-7`),
//! and acts on the accept markers of [`crate::upgrade`] and [`crate::ws`] only in the response
//! to the request whose offer built them (`EXT-CAP-8`).

use std::any::type_name;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Extensions, HeaderMap};

/// Looks up the extension `T`, or says which one is missing (`EXT-CAP-3`).
///
/// ```
/// use rgi::{ConnectionInfo, Request, ext};
///
/// fn client(req: &Request) -> Result<String, ext::MissingExtension> {
///     let info = ext::require::<ConnectionInfo>(req.extensions())?;
///     Ok(info.peer().to_string())
/// }
///
/// let req = Request::new(rgi::Body::empty());
/// let error = client(&req).unwrap_err();
/// assert!(error.to_string().contains("ConnectionInfo"));
/// ```
pub fn require<T: Send + Sync + 'static>(extensions: &Extensions) -> Result<&T, MissingExtension> {
    extensions.get::<T>().ok_or(MissingExtension {
        type_name: type_name::<T>(),
    })
}

/// A required extension is absent: the server does not offer the feature for this request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the server offers no `{type_name}` for this request")]
pub struct MissingExtension {
    type_name: &'static str,
}

impl MissingExtension {
    /// The type name of the missing extension.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

type HintsFuture = Pin<Box<dyn Future<Output = Result<(), EarlyHintsError>> + Send>>;

/// The server side of [`EarlyHints`].
pub trait SendEarlyHints: Send + Sync + 'static {
    /// Sends one `103 Early Hints` response carrying `headers`.
    fn send_early_hints(&self, headers: HeaderMap) -> HintsFuture;
}

/// Sends `103 Early Hints` before the final response (`HTTP-INTERIM-4`).
///
/// Present in a request's extensions only when the server can send them for this request
/// (an HTTP/1.1 or HTTP/2 client): absence means "not supported" (`EXT-CAP-1`).
#[derive(Clone)]
pub struct EarlyHints {
    sender: Arc<dyn SendEarlyHints>,
}

impl EarlyHints {
    /// Wraps the server's sender.
    pub fn new(sender: impl SendEarlyHints) -> Self {
        Self {
            sender: Arc::new(sender),
        }
    }

    /// Sends a `103` response with `headers` (typically `link` headers; never the fields of
    /// `HTTP-RESP-5`, `HTTP-INTERIM-6`).
    ///
    /// Fails with [`EarlyHintsError::HeadSent`] once the final head was sent
    /// (`HTTP-INTERIM-5`).
    pub async fn send(&self, headers: HeaderMap) -> Result<(), EarlyHintsError> {
        self.sender.send_early_hints(headers).await
    }
}

impl fmt::Debug for EarlyHints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EarlyHints").finish_non_exhaustive()
    }
}

/// Why early hints could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EarlyHintsError {
    /// The final response head was already sent.
    #[error("the final response head was already sent")]
    HeadSent,
    /// The client is gone.
    #[error("the client is gone")]
    ClientGone,
}
