//! Where a run's figures came from, read from the binaries it ran rather than from the machine:
//! each binary's own build (`--version --json`, recorded by `didit-build-info` when it was
//! built), and the time from the clock through a library, not a spawned `date`.

use std::path::Path;
use std::time::SystemTime;

pub use didit_build_info::BuildInfo;

use super::command;

/// The crates whose versions a published run names: the servers, backends, stores and the
/// generator's engine being compared.
const COMPARED: [&str; 18] = [
    "hyper",
    "axum",
    "may_minihttp",
    "actix-web",
    "tokio",
    "ring",
    "aws-lc-rs",
    "hmac",
    "sha2",
    "serde_json",
    "simd-json",
    "sonic-rs",
    "goose",
    "rusqlite",
    "async-nats",
    "lapin",
    "rdkafka",
    "rdkafka-sys",
];

/// The build of the binary at `bin`, from its `--version --json`; `None` when it does not answer
/// one (a receiver written elsewhere, or a binary older than the flag).
pub fn build_of(bin: &Path) -> Option<BuildInfo> {
    let out = command(bin).args(["--version", "--json"]).output().ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// What a run records of the receiver binary it measured: its commit, its compiler and the
/// versions of the compared crates it was built with (`unknown` and none without a build).
#[derive(Clone, Debug)]
pub struct Provenance {
    pub commit: String,
    pub rustc: String,
    pub crates: Vec<String>,
    /// `name version (commit, rustc, profile)` of the receiver and the generator.
    pub receiver: Option<String>,
    pub generator: Option<String>,
}

impl Provenance {
    /// The provenance of the `didit-receiver` and `didit-loadgen` in `bin_dir`.
    pub fn of(bin_dir: &Path) -> Provenance {
        let receiver = build_of(&bin_dir.join("didit-receiver"));
        let generator = build_of(&bin_dir.join("didit-loadgen"));
        let crates = receiver.as_ref().map_or_else(Vec::new, |b| {
            COMPARED
                .iter()
                .filter_map(|c| b.dependency(c).map(|v| format!("{c} {v}")))
                .collect::<Vec<_>>()
        });
        let mut crates = crates;
        crates.sort();
        Provenance {
            commit: receiver
                .as_ref()
                .map_or_else(|| "unknown".into(), |b| b.commit.clone()),
            rustc: receiver
                .as_ref()
                .map_or_else(|| "unknown".into(), |b| b.rustc.clone()),
            crates,
            receiver: receiver.map(|b| b.line()),
            generator: generator.map(|b| b.line()),
        }
    }
}

/// Now, as `2026-12-05T01:02:03Z`.
pub fn now_utc() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Today's date, as `2026-12-05`: the first part of a run's folder name.
pub fn today_utc() -> String {
    now_utc().chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_reads_as_rfc3339_and_a_date() {
        let now = now_utc();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert_eq!(today_utc(), now[..10]);
    }

    #[test]
    fn a_binary_without_a_build_is_unknown() {
        let p = Provenance::of(Path::new("/nonexistent"));
        assert_eq!((p.commit.as_str(), p.crates.len()), ("unknown", 0));
        assert!(p.receiver.is_none() && p.generator.is_none());
    }
}
