//! `didit-loadgen`: a thin entry point over `didit_loadgen::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match didit_loadgen::run(didit_loadgen::Options::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("didit-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
