// LIFE-START: startup runs once: it consumes the lifespan.
use rgi::{Body, Lifespan, ServerInfo};

async fn start_twice<L: Lifespan>(lifespan: L) {
    let _first = lifespan.startup(ServerInfo::new("s", "1")).await;
    let _second = lifespan.startup(ServerInfo::new("s", "1")).await;
}

fn main() {
    drop(start_twice(Body::empty()));
}
