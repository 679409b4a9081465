//! `tonic_greeter`: the gRPC `helloworld.Greeter` service (tonic) on rgi-server, over h2c.
//!
//! Run: `cargo run --release -p rgi-examples --bin tonic_greeter -- --bind 127.0.0.1:50051`
//! (every standard rgi-server flag works; see `--help`), then call it with grpcurl:
//! `grpcurl -plaintext -import-path examples/proto -proto helloworld.proto
//! -d '{"name": "RGI"}' 127.0.0.1:50051 helloworld.Greeter/SayHello`.

fn main() -> std::process::ExitCode {
    rgi_server::run(rgi_examples::tonic_greeter::app())
}
