//! `webhook-bench publish`: results/README.md, and a run's charts and README, from its
//! results.json.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::results::load;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// A run folder holding results.json.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// The results folder to write README.md into.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

pub(super) fn publish_cmd(a: PublishArgs) -> anyhow::Result<ExitCode> {
    let dir = match a.run {
        Some(d) => d,
        None => newest_run(&a.results.join("runs"))?,
    };
    publish(&dir, &a.results)?;
    println!("wrote {}", a.results.join("README.md").display());
    Ok(ExitCode::SUCCESS)
}

pub(super) fn newest_run(runs: &Path) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| {
            format!(
                "no runs in {}: run `webhook-bench run` first",
                runs.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("results.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .with_context(|| format!("no run with a results.json under {}", runs.display()))
}

/// Writes `results/README.md` from the run in `dir`.
pub fn publish(dir: &Path, results_dir: &Path) -> anyhow::Result<()> {
    let mut r = load(&dir.join("results.json"))?;
    // A run is named by its folder (older runs recorded the date and host only, which repeat).
    if let Some(name) = dir.file_name().and_then(|n| n.to_str()) {
        r.run.id = name.to_owned();
    }
    // Charts and the run's README are re-rendered from results.json, so a newer renderer
    // refreshes an old run without re-measuring it.
    let charts = crate::charts::write_all(&r, dir)?;
    std::fs::write(
        dir.join("README.md"),
        crate::publish::run_readme(&r, &charts),
    )?;
    let rel = dir
        .strip_prefix(results_dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| dir.display().to_string());
    let mut charts: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    charts.sort();
    let mut readme = crate::publish::results_readme(&r, &rel, &charts);
    if let Some((soak_dir, soak)) = crate::soak::newest(results_dir) {
        let rel = soak_dir
            .strip_prefix(results_dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| soak_dir.display().to_string());
        readme.push('\n');
        readme.push_str(&crate::soak::markdown(&soak, "##"));
        readme.push_str(&format!(
            "\nFull data: [`{rel}/soak.json`]({rel}/soak.json).\n"
        ));
    }
    if let Some(fuzz) = crate::publish::fuzz_section(results_dir) {
        readme.push('\n');
        readme.push_str(&fuzz);
    }
    std::fs::write(results_dir.join("README.md"), readme)?;
    Ok(())
}
