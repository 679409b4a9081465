//! `websocket_echo`: echoes WebSocket messages at `/ws`; see [`rgi_examples::websocket_echo`].

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::websocket_echo::WebSocketEcho)
}
