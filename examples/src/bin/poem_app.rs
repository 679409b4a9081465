//! `poem_app`: a poem `Route` (`GET /`, `POST /echo`, `GET /users/:id`, `POST /greet`,
//! `GET /client`) on rgi-server through `rgi_poem::PoemApp`.
//!
//! Run: `cargo run --release -p rgi-examples --bin poem_app -- --bind 127.0.0.1:8000`
//! (every standard rgi-server flag works; see `--help`), then `curl http://127.0.0.1:8000/`.

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::poem_app::app())
}
