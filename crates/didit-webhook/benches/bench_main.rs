//! Criterion benchmarks of the core's hot paths, per backend and payload size.
//!
//! `cargo bench -p didit-webhook --bench core` runs them; `scripts/core-bench-report.py` turns the
//! results into the table and target ratios recorded in the crate README.

mod benchmarks;

criterion::criterion_main! {
    benchmarks::hmac::benches,
    benchmarks::parse::benches,
    benchmarks::canon::benches,
    benchmarks::verify::benches,
}
