//! `didit-loadgen`: a thin entry point over `didit_loadgen::run`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(v) = didit_build_info::version_flag(&args, || didit_build_info::build_info!()) {
        print!("{v}");
        return ExitCode::SUCCESS;
    }
    match didit_loadgen::run(didit_loadgen::Options::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("didit-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
