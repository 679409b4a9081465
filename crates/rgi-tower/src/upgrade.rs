//! hyper upgrades across the boundary (crate feature `hyper`, `UPGRADE-RAW-*`).
//!
//! tower → RGI: a tower service that switches protocols through hyper's `OnUpgrade` gets its
//! response marked for the server ([`HyperUpgradeMarker`]).
//!
//! RGI → tower:
//! A hyper host (`axum::serve`, hyper-util's server with upgrades enabled) leaves hyper's
//! `hyper::upgrade::OnUpgrade` in the extensions of a request that asks for an upgrade. For
//! such a request [`RgiService`](crate::RgiService) offers the app an
//! [`rgi::upgrade::OnUpgrade`]; when the app accepts, the service completes the switch on
//! hyper's side and runs the app's handler on a tokio task with the raw stream.

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, Version, header};
use hyper_util::rt::TokioIo;
use rgi::upgrade::{OnUpgrade, UpgradeAccepted, Upgraded};

/// tower → RGI: the marker of a protocol switch a tower service performs through hyper's
/// `OnUpgrade` (see [`TowerApp`](crate::TowerApp), "Upgrades and WebSockets").
pub(crate) struct HyperUpgradeMarker {
    on_upgrade: hyper::upgrade::OnUpgrade,
    extended_connect: bool,
}

impl HyperUpgradeMarker {
    /// The marker for a request that carries hyper's `OnUpgrade` (a server's compatibility
    /// extension, `EXT-NS-2`).
    pub(crate) fn for_request(parts: &Parts) -> Option<Self> {
        let on_upgrade = parts.extensions.get::<hyper::upgrade::OnUpgrade>()?.clone();
        Some(Self {
            on_upgrade,
            extended_connect: parts.version >= Version::HTTP_2 && parts.method == Method::CONNECT,
        })
    }

    /// Marks `response` when it switches protocols without an RGI accept marker.
    pub(crate) fn mark<B>(self, response: &mut Response<B>) {
        let switching = if self.extended_connect {
            response.status().is_success()
        } else {
            response.status() == http::StatusCode::SWITCHING_PROTOCOLS
        };
        let extensions = response.extensions();
        if switching
            && extensions.get::<UpgradeAccepted>().is_none()
            && extensions.get::<rgi::ws::WebSocketAccepted>().is_none()
        {
            response.extensions_mut().insert(self.on_upgrade);
        }
    }
}

/// hyper's half of an upgrade that was offered to the app.
pub(crate) struct Offer {
    on_upgrade: hyper::upgrade::OnUpgrade,
    version: Version,
}

/// Offers the app an upgrade when the request asks for one and the host can perform it
/// (hyper's `OnUpgrade` is present). Nothing happens when an RGI server outside already made
/// the offer.
pub(crate) fn offer(parts: &mut Parts) -> Option<Offer> {
    if parts.extensions.get::<OnUpgrade>().is_some() {
        return None;
    }
    let protocols = requested_protocols(parts)?;
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>()?;
    parts
        .extensions
        .insert(OnUpgrade::new(parts.version, protocols));
    Some(Offer {
        on_upgrade,
        version: parts.version,
    })
}

/// The protocols an upgrade request asks for: the tokens of the `Upgrade` header of an
/// HTTP/1.1 request with `Connection: upgrade`, or the `:protocol` of an HTTP/2 extended
/// CONNECT.
fn requested_protocols(parts: &Parts) -> Option<Vec<String>> {
    if parts.version >= Version::HTTP_2 {
        if parts.method != Method::CONNECT {
            return None;
        }
        let protocol = parts.extensions.get::<hyper::ext::Protocol>()?;
        return Some(vec![protocol.as_str().to_owned()]);
    }
    if parts.version != Version::HTTP_11 || !has_token(parts, header::CONNECTION, "upgrade") {
        return None;
    }
    let protocols: Vec<String> = parts
        .headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect();
    (!protocols.is_empty()).then_some(protocols)
}

fn has_token(parts: &Parts, name: header::HeaderName, token: &str) -> bool {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Completes an accepted upgrade: adds the `Connection` and `Upgrade` fields on HTTP/1.1
/// (`UPGRADE-RAW-3`) and runs the app's handler on the upgraded stream once hyper has sent the
/// head (`UPGRADE-RAW-4`). A response without the accept marker leaves the offer unused.
pub(crate) fn complete<B>(offer: Offer, response: &mut Response<B>) {
    let Some(accepted) = response.extensions_mut().remove::<UpgradeAccepted>() else {
        return;
    };
    let Some(handler) = accepted.take_handler() else {
        return;
    };
    if offer.version == Version::HTTP_11 {
        let Ok(protocol) = HeaderValue::from_str(accepted.protocol()) else {
            return;
        };
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    let protocol = accepted.protocol().to_owned();
    tokio::spawn(async move {
        match offer.on_upgrade.await {
            Ok(upgraded) => {
                let io = Upgraded::new(TokioIo::new(upgraded), Bytes::new());
                match handler.run(io).await {
                    Ok(()) => {}
                    // SRV-LOG-2: a handler that passes on a closed connection failed because
                    // the client left.
                    Err(error) if client_left(error.as_ref()) => {
                        tracing::debug!(%protocol, error = %error, "the client went away during the upgraded exchange");
                    }
                    Err(error) => {
                        tracing::error!(%protocol, error = %error, "upgrade handler failed");
                    }
                }
            }
            Err(error) => {
                tracing::debug!(%protocol, error = %error, "the upgrade did not happen");
            }
        }
    });
}

/// Whether an I/O error of a closed connection is anywhere in `error`'s chain.
fn client_left(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        let closed = error.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::NotConnected
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::WriteZero
            )
        });
        if closed {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::client_left;
    use std::io::{Error, ErrorKind};

    /// SRV-LOG-2: a closed connection, directly or as a source, is the client leaving.
    #[test]
    fn closed_connections_are_departures() {
        #[derive(Debug, thiserror::Error)]
        #[error("relaying failed")]
        struct Relay(#[source] Error);

        assert!(client_left(&Error::from(ErrorKind::BrokenPipe)));
        assert!(client_left(&Relay(Error::from(ErrorKind::ConnectionReset))));
        assert!(!client_left(&Relay(Error::other("the backend refused"))));
        assert!(!client_left(&Error::from(ErrorKind::PermissionDenied)));
    }
}
