//! `webhook-bench`: a thin entry point over `webhook_bench::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(v) = didit_build_info::version_flag(&args, || didit_build_info::build_info!()) {
        print!("{v}");
        return ExitCode::SUCCESS;
    }
    match webhook_bench::run(webhook_bench::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("webhook-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
