//! Nothing here: the micro-benchmarks are in `benches/hot_paths.rs` (`cargo bench -p rgi-bench-micro`).
