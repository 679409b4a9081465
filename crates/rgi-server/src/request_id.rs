//! Request IDs (`x-request-id`): taken from a trusted proxy, generated otherwise.
//!
//! A generated ID is a per-process random prefix and a counter, `4f1c2a9e07d3b6a5-1f`: unique
//! within the process, very likely unique across processes, and cheap (one atomic increment
//! and one small string per request). Only used with [`crate::Config::request_id`].

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

/// The field that carries the ID, on the request and on the response.
pub(crate) const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest ID taken from a request; longer ones are replaced by a generated one.
pub(crate) const MAX_LEN: usize = 200;

/// Makes request IDs for one server.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix (from the standard library's randomly keyed
    /// hasher, mixed with the process id and the time).
    pub(crate) fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(now.as_nanos());
        }
        Self {
            prefix: hasher.finish(),
            counter: AtomicU64::new(0),
        }
    }

    /// The next generated ID.
    pub(crate) fn generate(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let text = format!("{:016x}-{n:x}", self.prefix);
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// The request's ID: the one in `headers` when `trusted` and it is valid (one value, 1 to
    /// [`MAX_LEN`] visible ASCII characters), a generated one otherwise.
    pub(crate) fn for_request(&self, headers: &http::HeaderMap, trusted: bool) -> HeaderValue {
        if trusted {
            let mut values = headers.get_all(&HEADER).iter();
            if let (Some(value), None) = (values.next(), values.next()) {
                if is_valid(value) {
                    return value.clone();
                }
            }
        }
        self.generate()
    }
}

/// Whether a received ID may be passed on: 1 to [`MAX_LEN`] visible ASCII characters.
fn is_valid(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(u8::is_ascii_graphic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_share_the_prefix() {
        let ids = RequestIds::new();
        let a = ids.generate();
        let b = ids.generate();
        assert_ne!(a, b);
        let (pa, _) = a.to_str().unwrap().split_once('-').unwrap();
        let (pb, _) = b.to_str().unwrap().split_once('-').unwrap();
        assert_eq!(pa, pb);
        assert_eq!(pa.len(), 16);
    }

    #[test]
    fn received_ids_are_taken_only_when_trusted_and_valid() {
        let ids = RequestIds::new();
        let mut headers = http::HeaderMap::new();
        headers.insert(&HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(ids.for_request(&headers, true), "abc-123");
        assert_ne!(ids.for_request(&headers, false), "abc-123");
        headers.insert(&HEADER, HeaderValue::from_static("has space"));
        assert_ne!(ids.for_request(&headers, true), "has space");
        headers.insert(
            &HEADER,
            HeaderValue::from_str(&"x".repeat(MAX_LEN + 1)).unwrap(),
        );
        assert_eq!(ids.for_request(&headers, true).len(), 16 + 1 + 1);
        headers.insert(&HEADER, HeaderValue::from_static("one"));
        headers.append(&HEADER, HeaderValue::from_static("two"));
        let id = ids.for_request(&headers, true);
        assert!(id != "one" && id != "two");
    }
}
