// WS-CLOSE: close codes are built through a checked constructor, never from a raw number.
use rgi::ws::CloseCode;

fn main() {
    let code = CloseCode(999);
    drop(code);
}
