// HTTP-CONN: connection information is read-only for the application; it cannot be changed
// through the request (there is no mutable accessor).
use rgi::{ConnectionInfo, Scheme, SocketAddress};

fn main() {
    let info = ConnectionInfo::new(SocketAddress::Unknown, SocketAddress::Unknown, Scheme::Http);
    info.scheme = Scheme::Https;
}
