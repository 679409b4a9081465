// WS-HS: a handshake is accepted (or denied) once: accepting consumes it.
use rgi::http::{Response, Version};
use rgi::ws::WebSocketUpgrade;
use rgi::Body;

fn main() {
    let handshake = WebSocketUpgrade::new(Version::HTTP_11, Vec::new());
    let first: Response<Body> = handshake.accept(|_ws| async { Ok(()) });
    let second: Response<Body> = handshake.accept(|_ws| async { Ok(()) });
    drop((first, second));
}
