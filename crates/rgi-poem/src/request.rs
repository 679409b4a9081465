//! RGI → poem: the request.

use std::net::SocketAddr;

use http::Uri;
use http::request::Parts;
use http_body_util::BodyExt as _;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, RequestParts};
use rgi::{ConnectionInfo, MountPrefix, SocketAddress};

use crate::error::into_io;

/// Builds poem's request from the RGI request, through poem's public constructors.
pub(crate) fn into_poem(req: rgi::Request) -> poem::Request {
    let (parts, body) = req.into_parts();
    let (local, remote, scheme) = match parts.extensions.get::<ConnectionInfo>() {
        Some(info) => (
            addr(info.local()),
            addr(info.peer()),
            match info.scheme() {
                rgi::Scheme::Https => http::uri::Scheme::HTTPS,
                _ => http::uri::Scheme::HTTP,
            },
        ),
        None => (Addr::default(), Addr::default(), http::uri::Scheme::HTTP),
    };
    let stripped = stripped_uri(&parts);
    let mut parts = RequestParts::from((parts, LocalAddr(local), RemoteAddr(remote), scheme));
    if let Some(uri) = stripped {
        // poem's `original_uri()` keeps the whole target, as its own `Route::nest` does.
        parts.uri = uri;
        parts.extensions.remove::<MountPrefix>();
    }
    let body = body.map_err(into_io).boxed();
    poem::Request::from_parts(parts, poem::Body::from(body))
}

/// An RGI address as poem's [`Addr`].
fn addr(address: &SocketAddress) -> Addr {
    match address {
        SocketAddress::Tcp(addr) => Addr::SocketAddr(*addr),
        SocketAddress::Ip(ip) => Addr::SocketAddr(SocketAddr::new(*ip, 0)),
        #[cfg(unix)]
        SocketAddress::Unix(Some(path)) => {
            match std::os::unix::net::SocketAddr::from_pathname(path) {
                Ok(addr) => Addr::Unix(std::sync::Arc::new(addr.into())),
                Err(_) => Addr::custom("unix", path.display().to_string()),
            }
        }
        SocketAddress::Unix(_) => Addr::custom("unix", "unnamed"),
        _ => Addr::default(),
    }
}

/// The URI without the request's [`MountPrefix`] (`HTTP-PATH-4`): what poem's routes match,
/// the way a poem `Route::nest` shows a nested endpoint its path. `None` without a prefix (or
/// when the path is not under it, which a conforming server never lets happen).
fn stripped_uri(parts: &Parts) -> Option<Uri> {
    let prefix = parts.extensions.get::<MountPrefix>()?;
    let path = parts.uri.path();
    let rest = &path[raw_prefix_len(path, prefix.as_str().as_bytes())?..];
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut uri = parts.uri.clone().into_parts();
    uri.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(uri).ok()
}

/// The length of the raw path's part that percent-decodes (`HTTP-PATH-2`) to `prefix` and ends
/// at a segment boundary.
fn raw_prefix_len(path: &str, prefix: &[u8]) -> Option<usize> {
    let raw = path.as_bytes();
    let mut at = 0;
    for &wanted in prefix {
        let (byte, width) = match raw.get(at..at + 3) {
            Some([b'%', hi, lo]) => match (hex(*hi), hex(*lo)) {
                (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
                _ => (b'%', 1),
            },
            _ => (*raw.get(at)?, 1),
        };
        if byte != wanted {
            return None;
        }
        at += width;
    }
    matches!(raw.get(at), None | Some(b'/')).then_some(at)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lengths_follow_percent_decoding() {
        assert_eq!(raw_prefix_len("/api/users", b"/api"), Some(4));
        assert_eq!(raw_prefix_len("/api", b"/api"), Some(4));
        assert_eq!(raw_prefix_len("/apiary", b"/api"), None);
        assert_eq!(raw_prefix_len("/a%20b/x", b"/a b"), Some(6));
        assert_eq!(raw_prefix_len("/x", b"/api"), None);
    }

    #[test]
    fn the_mount_prefix_is_stripped_and_the_query_kept() {
        let (mut parts, ()) = http::Request::get("/api/users?id=1")
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(MountPrefix::new("/api").unwrap());
        assert_eq!(stripped_uri(&parts).unwrap(), "/users?id=1");
    }
}
