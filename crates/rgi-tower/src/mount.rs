//! Mount prefixes across the boundary (`HTTP-PATH-4`, `HTTP-PATH-10`).
//!
//! RGI keeps the request target whole and names the mounted part in [`MountPrefix`]; tower
//! frameworks strip the mounted part from the URI (axum's `nest_service`) and keep the whole
//! target in axum's `OriginalUri`. These helpers translate between the two conventions.

use http::Uri;
use http::request::Parts;
use rgi::MountPrefix;

/// tower → RGI: strips the request's [`MountPrefix`] from its URI, the way tower services
/// expect a mounted service to see it, and removes the extension (whose invariant no longer
/// holds). With the feature `axum`, the whole URI is kept in axum's `OriginalUri`.
pub(crate) fn strip_mount_prefix(parts: &mut Parts) {
    let Some(prefix) = parts.extensions.remove::<MountPrefix>() else {
        return;
    };
    let path = parts.uri.path();
    let Some(raw_len) = raw_prefix_len(path, prefix.as_str().as_bytes()) else {
        return;
    };
    let rest = &path[raw_len..];
    let rest = if rest.is_empty() { "/" } else { rest };
    let Some(stripped) = with_path(&parts.uri, rest) else {
        return;
    };
    let original = std::mem::replace(&mut parts.uri, stripped);
    #[cfg(feature = "axum")]
    if parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .is_none()
    {
        parts
            .extensions
            .insert(axum::extract::OriginalUri(original));
    }
    #[cfg(not(feature = "axum"))]
    drop(original);
}

/// RGI → tower: undoes the URI rewriting of a framework that mounted the service under a
/// prefix (axum's `nest_service`, seen through axum's `OriginalUri` with the feature `axum`):
/// the app gets the whole target back and the mounted part as its [`MountPrefix`]. A
/// [`MountPrefix`] whose invariant does not hold for the URI is removed.
pub(crate) fn restore_mount_prefix(parts: &mut Parts) {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(original)) =
        parts.extensions.get::<axum::extract::OriginalUri>()
    {
        if original.path() != parts.uri.path() {
            if let Some(prefix) = nested_prefix(original.path(), parts.uri.path()) {
                parts.uri = original.clone();
                parts.extensions.insert(prefix);
                return;
            }
        }
    }
    if let Some(prefix) = parts.extensions.get::<MountPrefix>() {
        if prefix.strip(&rgi::path::decode(parts.uri.path())).is_none() {
            parts.extensions.remove::<MountPrefix>();
        }
    }
}

/// The mount prefix under which `original` was seen as `nested`.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
fn nested_prefix(original: &str, nested: &str) -> Option<MountPrefix> {
    let raw_prefix = if nested == "/" && !original.ends_with('/') {
        original
    } else {
        original.strip_suffix(nested)?
    };
    let decoded = rgi::path::decode(raw_prefix);
    let prefix = std::str::from_utf8(&decoded).ok()?;
    MountPrefix::new(prefix).ok()
}

/// How many bytes of the raw `path` decode (`HTTP-PATH-2`) to `prefix`, ending at a `/` or at
/// the end of the path.
fn raw_prefix_len(path: &str, prefix: &[u8]) -> Option<usize> {
    let bytes = path.as_bytes();
    let mut i = 0;
    for &expected in prefix {
        let (byte, width) = decode_at(bytes, i)?;
        if byte != expected {
            return None;
        }
        i += width;
    }
    match bytes.get(i) {
        None | Some(b'/') => Some(i),
        Some(_) => None,
    }
}

/// The decoded byte at `i` of a raw path, and how many raw bytes it takes.
fn decode_at(bytes: &[u8], i: usize) -> Option<(u8, usize)> {
    let byte = *bytes.get(i)?;
    if byte == b'%' {
        if let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            return Some((hi << 4 | lo, 3));
        }
    }
    Some((byte, 1))
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// `uri` with its path replaced by `path` (query, scheme and authority kept).
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_prefix_len_follows_the_decoding_rule() {
        assert_eq!(raw_prefix_len("/api/users", b"/api"), Some(4));
        assert_eq!(raw_prefix_len("/api", b"/api"), Some(4));
        assert_eq!(raw_prefix_len("/apiary", b"/api"), None);
        assert_eq!(raw_prefix_len("/caf%C3%A9/x", "/café".as_bytes()), Some(10));
        assert_eq!(raw_prefix_len("/other", b"/api"), None);
    }

    #[test]
    fn nested_prefix_is_the_stripped_part() {
        assert_eq!(nested_prefix("/rgi/x", "/x").unwrap().as_str(), "/rgi");
        assert_eq!(nested_prefix("/rgi", "/").unwrap().as_str(), "/rgi");
        assert_eq!(nested_prefix("/rgi/", "/").unwrap().as_str(), "/rgi");
        assert_eq!(nested_prefix("/a%20b/x", "/x").unwrap().as_str(), "/a b");
        assert!(nested_prefix("/x", "/y").is_none());
    }

    #[test]
    fn stripping_keeps_the_query() {
        let (mut parts, ()) = http::Request::get("/api/users?id=1")
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(MountPrefix::new("/api").unwrap());
        strip_mount_prefix(&mut parts);
        assert_eq!(parts.uri, "/users?id=1");
        assert!(parts.extensions.get::<MountPrefix>().is_none());
    }
}
