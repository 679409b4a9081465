//! The extensions through which frameworks read connection information, mapped to and from
//! [`rgi::ConnectionInfo`] (crate features `axum` and `tonic`).

#[cfg(any(feature = "axum", feature = "tonic"))]
use std::net::SocketAddr;

use http::Extensions;
#[cfg(any(feature = "axum", feature = "tonic"))]
use rgi::ConnectionInfo;
use rgi::SocketAddress;

/// The client's socket address as the frameworks want it: the peer when it is a TCP address,
/// and, for an IP address a trusted proxy forwarded (`HTTP-CONN-5`), that IP with port `0`
/// (forwarding headers carry no port).
#[cfg(any(feature = "axum", feature = "tonic"))]
fn peer_socket_addr(info: &ConnectionInfo) -> Option<SocketAddr> {
    match info.peer() {
        SocketAddress::Tcp(addr) => Some(*addr),
        SocketAddress::Ip(ip) => Some(SocketAddr::new(*ip, 0)),
        _ => None,
    }
}

/// tower → RGI: adds the frameworks' connection-info extensions, built from the RGI
/// [`ConnectionInfo`], unless the request already has them.
pub(crate) fn insert_framework_extensions(extensions: &mut Extensions) {
    #[cfg(any(feature = "axum", feature = "tonic"))]
    {
        let Some(info) = extensions.get::<ConnectionInfo>() else {
            return;
        };
        let peer = peer_socket_addr(info);
        #[cfg(feature = "tonic")]
        let local = info.local().socket_addr();

        #[cfg(feature = "axum")]
        if let Some(peer) = peer {
            if extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .is_none()
            {
                extensions.insert(axum::extract::ConnectInfo(peer));
            }
        }

        #[cfg(feature = "tonic")]
        if (peer.is_some() || local.is_some())
            && extensions
                .get::<tonic::transport::server::TcpConnectInfo>()
                .is_none()
        {
            extensions.insert(tonic::transport::server::TcpConnectInfo {
                local_addr: local,
                remote_addr: peer,
            });
        }
    }
    #[cfg(not(any(feature = "axum", feature = "tonic")))]
    let _ = extensions;
}

/// RGI → tower: the client address the host provided through a framework's extension.
pub(crate) fn peer_from_host(extensions: &Extensions) -> Option<SocketAddress> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(SocketAddress::Tcp(*addr));
    }
    let _ = extensions;
    None
}
