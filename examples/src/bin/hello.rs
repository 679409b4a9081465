//! `hello`: `GET /`, `POST /echo`, `GET /stream?bytes=N`, `GET /trailers` on rgi-server.
//!
//! Run: `cargo run --release -p rgi-examples --bin hello -- --bind 127.0.0.1:8000`
//! (every standard rgi-server flag works; see `--help`).

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::hello::Hello)
}
