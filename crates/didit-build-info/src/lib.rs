//! What a binary was built from, captured when it was built rather than read from the machine it
//! runs on: its version, the commit of the tree it was built from, the compiler, the profile,
//! the target and the versions of every crate in the lock file it was built with.
//!
//! A binary's build script calls [`write`] (feature `build`); the binary reads the result with
//! [`build_info!`] and answers `--version` (one line), `--version --verbose` (every field) and
//! `--version --json` through [`version_flag`]. The benchmark runner records the receiver's and the
//! generator's builds from their `--version --json`, so a published run names the binaries it
//! measured, not the shell it ran in.

use serde::{Deserialize, Serialize};

/// One binary's build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub name: String,
    pub version: String,
    /// The commit the binary was built from, with `-dirty` when the tree had uncommitted
    /// changes; `unknown` outside a git checkout.
    pub commit: String,
    /// `rustc --version` of the compiler that built it.
    pub rustc: String,
    /// `debug` or `release`.
    pub profile: String,
    pub target: String,
    /// `name version` of every crate in the lock file it was built with, sorted.
    pub dependencies: Vec<String>,
}

impl BuildInfo {
    /// The version of `krate` this binary was built with, if it was.
    pub fn dependency(&self, krate: &str) -> Option<&str> {
        self.dependencies.iter().find_map(|d| {
            d.strip_prefix(krate)
                .and_then(|rest| rest.strip_prefix(' '))
        })
    }

    /// `name version (commit, rustc, profile)`.
    pub fn line(&self) -> String {
        format!(
            "{} {} ({}, {}, {})",
            self.name, self.version, self.commit, self.rustc, self.profile
        )
    }

    /// Every field, a line each.
    pub fn verbose(&self) -> String {
        let mut out = format!(
            "{} {}\ncommit: {}\nrustc: {}\nprofile: {}\ntarget: {}\ncrates in the Cargo.lock it was built with ({}):\n",
            self.name,
            self.version,
            self.commit,
            self.rustc,
            self.profile,
            self.target,
            self.dependencies.len()
        );
        for d in &self.dependencies {
            out.push_str("  ");
            out.push_str(d);
            out.push('\n');
        }
        out
    }
}

/// The answer to `--version` / `-V` among `args` (the program's own arguments, without its
/// name): `Some(text)` to print and exit with, `None` when the flag is absent. `--verbose` (or
/// `-v`) adds every field, `--json` prints [`BuildInfo`] as JSON. Checked before the command line
/// is parsed, so it works whatever else the command requires.
pub fn version_flag(args: &[String], info: impl FnOnce() -> BuildInfo) -> Option<String> {
    let has = |names: &[&str]| args.iter().any(|a| names.contains(&a.as_str()));
    if !has(&["--version", "-V"]) {
        return None;
    }
    let info = info();
    Some(if has(&["--json"]) {
        serde_json::to_string_pretty(&info).unwrap_or_default() + "\n"
    } else if has(&["--verbose", "-v"]) {
        info.verbose()
    } else {
        info.line() + "\n"
    })
}

/// This binary's [`BuildInfo`], from what its build script recorded with [`write`].
#[macro_export]
macro_rules! build_info {
    () => {{
        #[allow(dead_code, clippy::all, clippy::pedantic, missing_docs)]
        mod recorded {
            include!(concat!(env!("OUT_DIR"), "/built.rs"));
        }
        let mut dependencies: Vec<String> = recorded::DEPENDENCIES
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        dependencies.sort();
        $crate::BuildInfo {
            name: recorded::PKG_NAME.to_owned(),
            version: recorded::PKG_VERSION.to_owned(),
            commit: env!("DIDIT_BUILD_COMMIT").to_owned(),
            rustc: recorded::RUSTC_VERSION.to_owned(),
            profile: recorded::PROFILE.to_owned(),
            target: recorded::TARGET.to_owned(),
            dependencies,
        }
    }};
}

/// Records the build for [`build_info!`]: call it from the binary's `build.rs`.
#[cfg(feature = "build")]
pub fn write() {
    if let Err(e) = built::write_built_file() {
        // A build script's panic is how Cargo is told the build failed.
        panic!("recording the build: {e}");
    }
    println!("cargo:rustc-env=DIDIT_BUILD_COMMIT={}", commit());
}

/// `git rev-parse HEAD` of the tree being built (`-dirty` with uncommitted changes to tracked
/// files), and a rerun when HEAD moves.
#[cfg(feature = "build")]
#[allow(
    clippy::disallowed_methods,
    reason = "a build script asks git for the commit it builds; the harness is not a build dependency"
)]
fn commit() -> String {
    use std::process::Command;
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
        if let Some(head) = std::fs::read_to_string(format!("{dir}/HEAD"))
            .ok()
            .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_owned()))
        {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> BuildInfo {
        BuildInfo {
            name: "didit-receiver".into(),
            version: "0.1.0".into(),
            commit: "abc123".into(),
            rustc: "rustc 1.95.0".into(),
            profile: "release".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            dependencies: vec!["hyper 1.8.1".into(), "hyper-util 0.1.19".into()],
        }
    }

    #[test]
    fn the_version_flag_answers_in_three_forms() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(version_flag(&args(&["--target", "x"]), info), None);
        let line = version_flag(&args(&["-V"]), info).expect("answered");
        assert_eq!(
            line,
            "didit-receiver 0.1.0 (abc123, rustc 1.95.0, release)\n"
        );
        let verbose = version_flag(&args(&["--version", "--verbose"]), info).expect("answered");
        assert!(verbose.contains("commit: abc123\n") && verbose.contains("  hyper 1.8.1\n"));
        let json = version_flag(&args(&["--version", "--json"]), info).expect("answered");
        let back: BuildInfo = serde_json::from_str(&json).expect("JSON");
        assert_eq!(back, info());
    }

    #[test]
    fn a_dependency_is_found_by_its_whole_name() {
        assert_eq!(info().dependency("hyper"), Some("1.8.1"));
        assert_eq!(info().dependency("hyper-util"), Some("0.1.19"));
        assert_eq!(info().dependency("hyp"), None);
    }
}
