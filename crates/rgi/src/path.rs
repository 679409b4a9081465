//! Paths: the raw request target, its decoded form, and the mount prefix (`HTTP-PATH-*`).
//!
//! The request's [`http::Uri`] is the request target exactly as the client sent it
//! (`HTTP-PATH-1`): never decoded, normalised or rewritten by the server. This module defines
//! the one decoding rule of the specification (`HTTP-PATH-2`) and the mount prefix invariant
//! `prefix + app_path == decode(uri.path())` (`HTTP-PATH-4`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::Request;

/// Percent-decodes a path once (`HTTP-PATH-2`).
///
/// Every `%XX` with two hexadecimal digits becomes the byte `XX` (so `%2F` becomes `/` in the
/// decoded view only); a `%` not followed by two hexadecimal digits stays as it is; `+` stays a
/// `+`. The result is bytes: a path may decode to invalid UTF-8, which a server must not reject
/// (`HTTP-PATH-7`). The decoded view loses the difference between `%2F` and `/`: an application
/// that needs it reads the raw path (`HTTP-PATH-9`).
///
/// ```
/// use rgi::path::decode;
///
/// assert_eq!(&*decode("/a%20b/c%2Fd"), b"/a b/c/d");
/// assert_eq!(&*decode("/100%"), b"/100%");
/// assert_eq!(&*decode("/%2541"), b"/%41"); // decoded once, never twice
/// ```
pub fn decode(path: &str) -> Cow<'_, [u8]> {
    let bytes = path.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The query of a request target without the `?`; empty when there is none (`HTTP-PATH-3`).
///
/// ```
/// let req = rgi::http::Request::get("/search?q=rgi").body(rgi::Body::empty()).unwrap();
/// assert_eq!(rgi::path::query(&req), "q=rgi");
/// let req = rgi::http::Request::get("/").body(rgi::Body::empty()).unwrap();
/// assert_eq!(rgi::path::query(&req), "");
/// ```
pub fn query(req: &Request) -> &str {
    req.uri().query().unwrap_or("")
}

/// The part of the application's URL space that the server mounts it under (`HTTP-PATH-4`).
///
/// Present in a request's extensions only when the server is configured with a mount prefix
/// (often called a root path). It is decoded, starts with `/` and does not end with `/`.
/// The server answers requests outside the prefix itself (`404`) and never passes them to the
/// application (`HTTP-PATH-5`).
///
/// ```
/// use rgi::MountPrefix;
///
/// let prefix = MountPrefix::new("/api").unwrap();
/// assert_eq!(prefix.strip(b"/api/users"), Some(&b"/users"[..]));
/// assert_eq!(prefix.strip(b"/api"), Some(&b""[..]));
/// assert_eq!(prefix.strip(b"/apiary"), None);
/// assert!(MountPrefix::new("/api/").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MountPrefix {
    prefix: Arc<str>,
}

impl MountPrefix {
    /// A mount prefix: `/` followed by one or more segments, no trailing `/`.
    pub fn new(prefix: &str) -> Result<Self, InvalidMountPrefix> {
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
            return Err(InvalidMountPrefix {
                prefix: prefix.to_owned(),
            });
        }
        Ok(Self {
            prefix: Arc::from(prefix),
        })
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// The application path for a decoded request path: what follows the prefix. `None` when
    /// the path is outside the prefix (the prefix must end at a segment boundary).
    pub fn strip<'a>(&self, decoded_path: &'a [u8]) -> Option<&'a [u8]> {
        let rest = decoded_path.strip_prefix(self.prefix.as_bytes())?;
        if rest.is_empty() || rest.starts_with(b"/") {
            Some(rest)
        } else {
            None
        }
    }
}

impl fmt::Debug for MountPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.prefix, f)
    }
}

impl fmt::Display for MountPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)
    }
}

/// A mount prefix that breaks the rules of [`MountPrefix::new`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "invalid mount prefix {prefix:?}: it must start with `/`, not end with `/`, and have no empty segment"
)]
pub struct InvalidMountPrefix {
    prefix: String,
}

/// The decoded path the application serves: the decoded request path without the mount prefix
/// (`HTTP-PATH-4`). Without a [`MountPrefix`] it is the whole decoded path.
///
/// Returns `None` when a prefix is present and the path lies outside it, which a conforming
/// server never lets happen.
///
/// ```
/// use rgi::{Body, MountPrefix};
///
/// let mut req = rgi::http::Request::get("/api/caf%C3%A9").body(Body::empty()).unwrap();
/// req.extensions_mut().insert(MountPrefix::new("/api").unwrap());
/// assert_eq!(rgi::path::app_path(&req).as_deref(), Some("/café".as_bytes()));
/// ```
pub fn app_path(req: &Request) -> Option<Cow<'_, [u8]>> {
    let decoded = decode(req.uri().path());
    let Some(prefix) = req.extensions().get::<MountPrefix>() else {
        return Some(decoded);
    };
    match decoded {
        Cow::Borrowed(path) => prefix.strip(path).map(Cow::Borrowed),
        Cow::Owned(path) => prefix.strip(&path).map(|rest| Cow::Owned(rest.to_vec())),
    }
}
