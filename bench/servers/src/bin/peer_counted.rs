//! `peer-counted <kind> <addr>`: a peer server with the counting allocator; each line on
//! standard input is answered with `allocs <n> <bytes>` on standard error.

#[global_allocator]
static ALLOCATOR: rgi_bench_servers::alloc::Counting = rgi_bench_servers::alloc::Counting;

fn main() -> std::process::ExitCode {
    rgi_bench_servers::alloc::report_on_stdin();
    rgi_bench_servers::peer::main()
}
