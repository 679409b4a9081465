//! `rgi-counted [rgi-server flags]`: rgi-server hosting `hello` (or, with `RGI_BENCH_APP=axum`,
//! the `axum_app` router through rgi-tower) with the counting allocator; each line on standard
//! input is answered with `allocs <n> <bytes>` on standard error.

#[global_allocator]
static ALLOCATOR: rgi_bench_servers::alloc::Counting = rgi_bench_servers::alloc::Counting;

fn main() -> std::process::ExitCode {
    rgi_bench_servers::alloc::report_on_stdin();
    match std::env::var("RGI_BENCH_APP").as_deref() {
        Ok("axum") => rgi_server::run(rgi_examples::axum_app::app()),
        _ => rgi_server::run(rgi_examples::hello::Hello),
    }
}
