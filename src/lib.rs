//! The package of the end-to-end suite (`tests/it/`): it has no code of its own. The binaries it
//! drives live in their own packages (`crates/didit-receiver`, `crates/didit-loadgen`,
//! `crates/webhook-bench`), built by `cargo build --workspace --bins` (`scripts/test.sh`), and
//! the suite finds them in the target folder (`tests/it/support.rs`).
