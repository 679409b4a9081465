//! `peer-actix <addr>`: the actix-web peer.

fn main() -> std::process::ExitCode {
    rgi_bench_actix::main()
}
