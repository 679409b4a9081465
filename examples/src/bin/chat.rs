//! `chat`: a broadcast chat room at `/` (page) and `/ws` (WebSocket); see
//! [`rgi_examples::chat`].

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::chat::Chat::new())
}
