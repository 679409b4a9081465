//! `lifespan_state`: a resource opened at startup, shared by every request, closed at shutdown.
//!
//! Run: `cargo run --release -p rgi-examples --bin lifespan_state -- --bind 127.0.0.1:8000`
//! (set `LIFESPAN_STATE_FAIL=1` to see a failing startup: exit code 3).

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::lifespan_state::Startup)
}
