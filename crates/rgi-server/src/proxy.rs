//! Trusted proxy headers: RFC 7239 `Forwarded`, and `X-Forwarded-For` / `X-Forwarded-Proto`.
//!
//! Only called for peers in `--forwarded-allow-ips`. The client is the rightmost address that is
//! not itself a trusted proxy (every address added by a trusted hop is skipped); the scheme is
//! the one the nearest proxy reported. `Forwarded` wins over the `X-Forwarded-*` pair.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use rgi::{Scheme, SocketAddress};

use crate::config::TrustedProxies;

/// The client address and scheme the proxy headers report, if any.
pub(crate) fn forwarded(
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> (Option<SocketAddress>, Option<Scheme>) {
    let forwarded: Vec<&str> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        let mut clients = Vec::new();
        let mut scheme = None;
        for element in forwarded.iter().flat_map(|value| split_list(value)) {
            let mut client = None;
            let mut proto = None;
            for pair in element.split(';') {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = unquote(value.trim());
                match name.trim().to_ascii_lowercase().as_str() {
                    "for" => client = Some(parse_node(value)),
                    "proto" => proto = parse_scheme(value),
                    _ => {}
                }
            }
            clients.push(client.flatten());
            if proto.is_some() {
                scheme = proto;
            }
        }
        return (pick_client(&clients, trusted), scheme);
    }

    let clients: Vec<Option<SocketAddress>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| parse_node(unquote(item.trim())))
        .collect();
    let scheme = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()
        .and_then(|proto| parse_scheme(proto.trim()));
    (pick_client(&clients, trusted), scheme)
}

/// The rightmost address that is not a trusted proxy; the leftmost when all are trusted.
fn pick_client(
    clients: &[Option<SocketAddress>],
    trusted: &TrustedProxies,
) -> Option<SocketAddress> {
    let mut leftmost = None;
    for client in clients.iter().rev() {
        let Some(client) = client else {
            // `unknown` or obfuscated: the chain cannot be followed further.
            return None;
        };
        match client.ip() {
            Some(ip) if trusted.contains(ip) => leftmost = Some(client.clone()),
            _ => return Some(client.clone()),
        }
    }
    leftmost
}

/// Splits a comma-separated list, respecting quoted strings.
fn split_list(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(value[start..].trim());
    items.retain(|item| !item.is_empty());
    items
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// A node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(value: &str) -> Option<SocketAddress> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Some(SocketAddress::Tcp(addr));
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(SocketAddress::Ip(ip));
    }
    let bracketed = value.strip_prefix('[').and_then(|v| v.split_once(']'));
    if let Some((ip, rest)) = bracketed {
        let ip = ip.parse::<IpAddr>().ok()?;
        return match rest.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(port)) => Some(SocketAddress::Tcp(SocketAddr::new(ip, port))),
            _ => Some(SocketAddress::Ip(ip)),
        };
    }
    if let Some((ip, _obfuscated_port)) = value.rsplit_once(':') {
        if let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() {
            return Some(SocketAddress::Ip(IpAddr::V4(ip)));
        }
    }
    None
}

fn parse_scheme(value: &str) -> Option<Scheme> {
    match value.to_ascii_lowercase().as_str() {
        "https" | "wss" => Some(Scheme::Https),
        "http" | "ws" => Some(Scheme::Http),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted() {
        let trusted = TrustedProxies::localhost();
        let (peer, scheme) = forwarded(
            &headers(&[
                ("x-forwarded-for", "203.0.113.9, 198.51.100.7, 127.0.0.1"),
                ("x-forwarded-proto", "https"),
            ]),
            &trusted,
        );
        assert_eq!(
            peer,
            Some(SocketAddress::Ip("198.51.100.7".parse().unwrap()))
        );
        assert_eq!(scheme, Some(Scheme::Https));
    }

    #[test]
    fn forwarded_header_wins_and_parses_ipv6() {
        let trusted = TrustedProxies::localhost();
        let (peer, scheme) = forwarded(
            &headers(&[
                ("forwarded", "for=\"[2001:db8::1]:4711\";proto=https"),
                ("x-forwarded-for", "203.0.113.9"),
            ]),
            &trusted,
        );
        assert_eq!(
            peer,
            Some(SocketAddress::Tcp("[2001:db8::1]:4711".parse().unwrap()))
        );
        assert_eq!(scheme, Some(Scheme::Https));
    }

    #[test]
    fn unknown_nodes_give_no_client() {
        let trusted = TrustedProxies::localhost();
        let (peer, scheme) = forwarded(&headers(&[("forwarded", "for=unknown")]), &trusted);
        assert_eq!(peer, None);
        assert_eq!(scheme, None);
    }
}
