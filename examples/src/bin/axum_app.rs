//! `axum_app`: an axum `Router` (JSON, path parameters, shared state, tower-http layers,
//! WebSocket echo) served by rgi-server through `rgi_tower::TowerApp`.
//!
//! Run: `cargo run --release -p rgi-examples --bin axum_app -- --bind 127.0.0.1:8000`
//! (every standard rgi-server flag works; see `--help`).

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::axum_app::app())
}
