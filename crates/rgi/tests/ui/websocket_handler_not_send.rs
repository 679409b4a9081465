// WS-HS: a WebSocket handler runs on a server task, so its future must be Send.
use std::rc::Rc;

use rgi::http::{Response, Version};
use rgi::ws::{WebSocket, WebSocketUpgrade};
use rgi::Body;

async fn tick() {}

fn main() {
    let handshake = WebSocketUpgrade::new(Version::HTTP_11, Vec::new());
    let response: Response<Body> = handshake.accept(|_ws: WebSocket| async {
        let local = Rc::new(0);
        tick().await;
        drop(local);
        Ok(())
    });
    drop(response);
}
