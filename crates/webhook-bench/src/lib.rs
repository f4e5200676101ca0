//! The benchmark runner: fair matrix runs of the receivers under the load generator, published
//! results with charts, and a regression gate for CI.
//!
//! [`runner`] orchestrates (verify, calibrate, measure interleaved), [`results`] is the data model
//! of `results.json`, [`charts`] and [`publish`] turn it into SVG and Markdown, [`compare`] gates
//! regressions, [`soak`] runs one receiver for minutes and judges drift, [`verify`] makes the
//! conformance report card of any receiver, [`capacity`] measures the generator's own ceiling
//! against wrk's, [`cost`] takes a request's cost apart layer by layer, [`harness`] starts and
//! stops everything under test, [`cli`] is the `webhook-bench` command line.

pub mod bmf;
pub mod capacity;
pub mod charts;
pub mod cli;
pub mod compare;
pub mod cost;
pub mod harness;
pub mod matrix;
pub mod publish;
pub mod results;
pub mod runner;
pub mod scaling;
pub mod soak;
pub mod thresholds;
pub mod verify;

pub use cli::{Cli, run};
