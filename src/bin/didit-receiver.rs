//! `didit-receiver`: a thin entry point over `didit_receiver::run`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    didit_receiver::init_tracing();
    didit_receiver::run(didit_receiver::Options::parse())
}
