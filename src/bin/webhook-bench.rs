//! `webhook-bench`: a thin entry point over `webhook_bench::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match webhook_bench::run(webhook_bench::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("webhook-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
