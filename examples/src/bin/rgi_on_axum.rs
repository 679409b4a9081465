//! `rgi_on_axum`: the `hello` RGI app served by `axum::serve` through `rgi_tower::RgiService`.
//!
//! Run: `cargo run --release -p rgi-examples --bin rgi_on_axum -- --bind 127.0.0.1:8000`

fn main() -> std::process::ExitCode {
    rgi_examples::rgi_on_axum::main()
}
