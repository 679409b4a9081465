//! `peer <kind> <addr>`: one of the peer servers (see the crate documentation).

fn main() -> std::process::ExitCode {
    rgi_bench_servers::peer::main()
}
