//! `didit-receiver`: a thin entry point over `didit_receiver::run`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(v) = didit_build_info::version_flag(&args, || didit_build_info::build_info!()) {
        print!("{v}");
        return Ok(());
    }
    didit_receiver::init_tracing();
    didit_receiver::run(didit_receiver::Options::parse())
}
