//! The opening handshake: RFC 6455 §4.2 over HTTP/1.1, RFC 8441 over HTTP/2.

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use rgi::ws::WebSocketUpgrade;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The only WebSocket version there is (RFC 6455).
const VERSION: &str = "13";

/// The offer for a valid opening handshake; `None` for anything else.
pub(super) fn offer(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Option<WebSocketUpgrade> {
    if !asks_for_websocket(method, version, headers, protocol) || !has_version_13(headers) {
        return None;
    }
    if version == Version::HTTP_11 && request_key(headers).is_none() {
        return None;
    }
    Some(WebSocketUpgrade::new(version, offered_protocols(headers)))
}

/// The answer to a request that asks for WebSocket with a version other than 13: `426
/// Upgrade Required` with `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2, `WS-HS-6`). `None`
/// for every other request.
pub(crate) fn reject_unsupported_version(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> Option<Response<()>> {
    if !asks_for_websocket(method, version, headers, protocol) || has_version_13(headers) {
        return None;
    }
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static(VERSION),
    );
    if version == Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    Some(response)
}

/// Whether the request asks to open a WebSocket, whatever its version.
fn asks_for_websocket(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    protocol: Option<&str>,
) -> bool {
    match version {
        // RFC 6455 §4.2.1: GET, HTTP/1.1 or higher, `Upgrade: websocket`, `Connection: upgrade`.
        Version::HTTP_11 => {
            *method == Method::GET
                && has_token(headers, &header::UPGRADE, "websocket")
                && has_token(headers, &header::CONNECTION, "upgrade")
        }
        // RFC 8441 §4: CONNECT with `:protocol = websocket`.
        Version::HTTP_2 => {
            *method == Method::CONNECT
                && protocol.is_some_and(|protocol| protocol.eq_ignore_ascii_case("websocket"))
        }
        _ => false,
    }
}

fn has_version_13(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value.as_bytes().trim_ascii() == VERSION.as_bytes(),
        _ => false,
    }
}

/// Whether a comma-separated header contains `token`, case-insensitively, on any line.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|byte| *byte == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The request's `Sec-WebSocket-Key`, if there is exactly one and it is the base64 encoding
/// of 16 bytes (RFC 6455 §4.2.1, item 5).
fn request_key(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let key = value.as_bytes().trim_ascii();
    is_base64_of_16_bytes(key).then_some(key)
}

/// 16 bytes encode as 22 base64 characters and `==`; the last character carries 2 bits, so
/// its 4 low bits must be zero (canonical encoding).
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    let Some((data, padding)) = key.split_at_checked(22) else {
        return false;
    };
    let Some((&last, _)) = data.split_last() else {
        return false;
    };
    padding == b"=="
        && data
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'+' || *byte == b'/')
        && matches!(last, b'A' | b'Q' | b'g' | b'w')
}

/// The subprotocols in `Sec-WebSocket-Protocol`, in the client's order, over all its lines.
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|protocol| !protocol.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Makes an accepting response's headers right, whatever the application put there
/// (`WS-HS-3`): the server's handshake headers on HTTP/1.1, no connection-specific headers
/// on HTTP/2, no extensions (none is negotiated), and a subprotocol only if it is one the
/// client offered.
pub(super) fn complete(request: &HeaderMap, version: Version, response: &mut HeaderMap) {
    let subprotocol = chosen_subprotocol(request, response);
    let owned: Vec<HeaderName> = response
        .keys()
        .filter(|name| {
            name.as_str().starts_with("sec-websocket-")
                || rgi::fields::is_connection_specific(name)
                || **name == header::CONTENT_LENGTH
        })
        .cloned()
        .collect();
    for name in owned {
        response.remove(name);
    }
    if let Some(subprotocol) = subprotocol {
        response.insert(header::SEC_WEBSOCKET_PROTOCOL, subprotocol);
    }
    if version == Version::HTTP_11 {
        response.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        response.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept = request_key(request)
            .and_then(|key| HeaderValue::from_str(&derive_accept_key(key)).ok());
        if let Some(accept) = accept {
            response.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
    }
}

/// The response's single `Sec-WebSocket-Protocol`, if the client offered it.
fn chosen_subprotocol(request: &HeaderMap, response: &HeaderMap) -> Option<HeaderValue> {
    let mut values = response.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let chosen = value.to_str().ok()?.trim();
    offered_protocols(request)
        .iter()
        .any(|offered| offered == chosen)
        .then(|| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h1_request() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers
    }

    fn h2_request() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers
    }

    /// WS-HS-1: a valid HTTP/1.1 handshake is recognised, with its subprotocols.
    #[test]
    fn recognises_http11_handshake_with_subprotocols() {
        let mut headers = h1_request();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, UPGRADE"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, superchat"),
        );
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(" v2.json ,"),
        );
        let offer = offer(&Method::GET, Version::HTTP_11, &headers, None).expect("valid");
        assert_eq!(offer.version(), Version::HTTP_11);
        assert_eq!(offer.protocols(), ["chat", "superchat", "v2.json"]);
    }

    /// WS-HS-1: requests that are not valid handshakes are ordinary requests.
    #[test]
    fn rejects_invalid_http11_handshakes() {
        let valid = h1_request();
        assert!(offer(&Method::GET, Version::HTTP_11, &valid, None).is_some());
        assert!(offer(&Method::POST, Version::HTTP_11, &valid, None).is_none());
        assert!(offer(&Method::GET, Version::HTTP_10, &valid, None).is_none());

        let without = |name: HeaderName| {
            let mut headers = h1_request();
            headers.remove(name);
            headers
        };
        for name in [
            header::UPGRADE,
            header::CONNECTION,
            header::SEC_WEBSOCKET_KEY,
            header::SEC_WEBSOCKET_VERSION,
        ] {
            let headers = without(name.clone());
            assert!(
                offer(&Method::GET, Version::HTTP_11, &headers, None).is_none(),
                "{name} missing"
            );
        }

        let with = |name: HeaderName, value: &'static str| {
            let mut headers = h1_request();
            headers.insert(name, HeaderValue::from_static(value));
            headers
        };
        for (name, value) in [
            (header::UPGRADE, "h2c"),
            (header::CONNECTION, "keep-alive"),
            (header::SEC_WEBSOCKET_VERSION, "8"),
            // 15 bytes, 17 bytes, not base64, non-canonical last character.
            (header::SEC_WEBSOCKET_KEY, "AAAAAAAAAAAAAAAAAAAA"),
            (header::SEC_WEBSOCKET_KEY, "AAAAAAAAAAAAAAAAAAAAAAA="),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZ!=="),
            (header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZR=="),
        ] {
            let headers = with(name.clone(), value);
            assert!(
                offer(&Method::GET, Version::HTTP_11, &headers, None).is_none(),
                "{name}: {value}"
            );
        }

        let mut twice = h1_request();
        twice.append(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA=="),
        );
        assert!(offer(&Method::GET, Version::HTTP_11, &twice, None).is_none());
    }

    /// WS-H2-1: an HTTP/2 extended CONNECT with `:protocol = websocket` is a handshake.
    #[test]
    fn recognises_http2_extended_connect() {
        let mut headers = h2_request();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        let offer = offer(
            &Method::CONNECT,
            Version::HTTP_2,
            &headers,
            Some("websocket"),
        )
        .expect("valid");
        assert_eq!(offer.version(), Version::HTTP_2);
        assert_eq!(offer.protocols(), ["chat"]);

        assert!(super::offer(&Method::CONNECT, Version::HTTP_2, &headers, None).is_none());
        assert!(
            super::offer(
                &Method::CONNECT,
                Version::HTTP_2,
                &headers,
                Some("webtransport")
            )
            .is_none()
        );
        assert!(super::offer(&Method::GET, Version::HTTP_2, &headers, Some("websocket")).is_none());
        assert!(
            super::offer(
                &Method::CONNECT,
                Version::HTTP_2,
                &HeaderMap::new(),
                Some("websocket")
            )
            .is_none()
        );
    }

    /// WS-HS-6: a handshake with another version is answered 426 with the supported version.
    #[test]
    fn unsupported_version_gets_426() {
        let mut headers = h1_request();
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let response = reject_unsupported_version(&Method::GET, Version::HTTP_11, &headers, None)
            .expect("426");
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(response.headers()[header::SEC_WEBSOCKET_VERSION], "13");

        let response = reject_unsupported_version(
            &Method::CONNECT,
            Version::HTTP_2,
            &HeaderMap::new(),
            Some("websocket"),
        )
        .expect("426");
        assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
        assert!(!response.headers().contains_key(header::UPGRADE));

        assert!(
            reject_unsupported_version(&Method::GET, Version::HTTP_11, &h1_request(), None)
                .is_none()
        );
        assert!(
            reject_unsupported_version(&Method::GET, Version::HTTP_11, &HeaderMap::new(), None)
                .is_none()
        );
    }

    /// WS-HS-3: the server sets the handshake headers and overrides the application's.
    #[test]
    fn completes_http11_response_with_the_servers_headers() {
        let mut request = h1_request();
        request.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, superchat"),
        );
        let mut response = HeaderMap::new();
        response.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        response.insert(header::CONNECTION, HeaderValue::from_static("close"));
        response.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("forged"),
        );
        response.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("permessage-deflate"),
        );
        response.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("superchat"),
        );
        response.insert(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        complete(&request, Version::HTTP_11, &mut response);

        // The example of RFC 6455 §1.3.
        assert_eq!(
            response[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(response[header::UPGRADE], "websocket");
        assert_eq!(response[header::CONNECTION], "Upgrade");
        assert_eq!(response[header::SEC_WEBSOCKET_PROTOCOL], "superchat");
        assert_eq!(response[header::SET_COOKIE], "a=b");
        assert!(!response.contains_key(header::SEC_WEBSOCKET_EXTENSIONS));
        assert_eq!(response.len(), 5);
    }

    /// WS-HS-2: a subprotocol the client did not offer never reaches the wire.
    #[test]
    fn drops_a_subprotocol_that_was_not_offered() {
        let mut request = h1_request();
        request.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        let mut response = HeaderMap::new();
        response.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("mqtt"),
        );
        complete(&request, Version::HTTP_11, &mut response);
        assert!(!response.contains_key(header::SEC_WEBSOCKET_PROTOCOL));
    }

    /// WS-H2-1: an HTTP/2 response carries no connection-specific headers.
    #[test]
    fn completes_http2_response_without_connection_headers() {
        let mut request = h2_request();
        request.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        let mut response = HeaderMap::new();
        response.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        response.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        response.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat"),
        );
        complete(&request, Version::HTTP_2, &mut response);
        assert_eq!(response.len(), 1);
        assert_eq!(response[header::SEC_WEBSOCKET_PROTOCOL], "chat");
    }
}
