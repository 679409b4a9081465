//! Header fields the specification names: the connection-specific fields the application must
//! not set (`HTTP-RESP-5`) and the fields that must not appear in trailers (`HTTP-TRAIL-7`).
//!
//! Servers, middleware and checkers use these lists instead of keeping their own copies.
//!
//! ```
//! use rgi::fields;
//! use rgi::http::header;
//!
//! assert!(fields::is_connection_specific(&header::TRANSFER_ENCODING));
//! assert!(fields::is_forbidden_in_trailers(&header::AUTHORIZATION));
//! assert!(!fields::is_forbidden_in_trailers(&header::ETAG));
//! ```

use http::HeaderName;
use http::header;

/// The connection-specific fields of a response, which the server produces and the
/// application must not set (`HTTP-RESP-5`; the server removes them, `HTTP-RESP-6`).
pub const CONNECTION_SPECIFIC: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TRANSFER_ENCODING,
    header::TE,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
];

/// The fields that must not appear in trailers (`HTTP-TRAIL-7`): framing, routing, request
/// modifiers, authentication, and fields that describe the content.
pub const FORBIDDEN_IN_TRAILERS: [HeaderName; 17] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::HOST,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_RANGE,
    header::AUTHORIZATION,
    header::SET_COOKIE,
    header::CACHE_CONTROL,
    header::EXPECT,
    header::RANGE,
];

/// Whether `name` is one of [`CONNECTION_SPECIFIC`].
///
/// Servers ask this of every response field. It matches the name's text instead of searching
/// the array: a `const` array is built (and dropped) again wherever it is used.
pub fn is_connection_specific(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "proxy-connection"
    )
}

/// Whether `name` is one of [`FORBIDDEN_IN_TRAILERS`].
pub fn is_forbidden_in_trailers(name: &HeaderName) -> bool {
    FORBIDDEN_IN_TRAILERS.contains(name)
}

#[cfg(test)]
mod tests {
    use super::{CONNECTION_SPECIFIC, FORBIDDEN_IN_TRAILERS, is_connection_specific};
    use http::HeaderName;
    use http::header;

    /// `is_connection_specific` matches the list, and only the list.
    #[test]
    fn connection_specific_matches_the_list() {
        for name in &CONNECTION_SPECIFIC {
            assert!(is_connection_specific(name), "{name}");
        }
        for name in FORBIDDEN_IN_TRAILERS
            .iter()
            .filter(|name| !CONNECTION_SPECIFIC.contains(name))
            .chain([
                &header::CONTENT_TYPE,
                &header::TRAILER,
                &HeaderName::from_static("keep-alive-x"),
                &HeaderName::from_static("t"),
                &HeaderName::from_static("x-upgrade"),
            ])
        {
            assert!(!is_connection_specific(name), "{name}");
        }
    }
}
