//! `peer-actix-counted <addr>`: the actix-web peer with the counting allocator; each line on
//! standard input is answered with `allocs <n> <bytes>` on standard error.

#[global_allocator]
static ALLOCATOR: rgi_bench_actix::alloc::Counting = rgi_bench_actix::alloc::Counting;

fn main() -> std::process::ExitCode {
    rgi_bench_actix::alloc::report_on_stdin();
    rgi_bench_actix::main()
}
