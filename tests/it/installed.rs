//! The tools as a user installs them: `webhook-bench` and `didit-loadgen` copied into a folder of
//! their own (as `cargo install` puts them) and run from an empty working folder, with no
//! `shared/` fixtures and no scenario files anywhere they could find. What they ship (vectors,
//! the Didit sample, the conformance corpus, the scenarios) is compiled in, and each names the
//! build it came from.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::{Receiver, SECRET};
use webhook_bench::harness::command;

use support::empty_dir;

/// `name` copied into `bin_dir`, as an install would place it.
fn installed(name: &str, bin_dir: &Path) -> PathBuf {
    let to = bin_dir.join(name);
    std::fs::copy(support::bin(name), &to).expect("copy the binary");
    to
}

fn run_in(cwd: &Path, program: &Path, args: &[&str]) -> Output {
    command(program)
        .args(args)
        .current_dir(cwd)
        .env("DIDIT_WEBHOOK_SECRET", SECRET)
        .env_remove("DIDIT_SHARED_DIR")
        .output()
        .expect("the installed binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn installed_tools_grade_and_load_a_receiver_from_an_empty_folder() {
    let bin_dir = empty_dir("bin");
    let cwd = empty_dir("cwd");
    let bench = installed("webhook-bench", &bin_dir);
    let loadgen = installed("didit-loadgen", &bin_dir);
    // The card's default limit, as `verify` assumes it (the test receivers default to 64 KiB).
    let rx = Receiver::start("hyper", "ring", "serde", &["--max-body", "1MiB"]);
    let target = format!("http://{}", rx.addr);

    let card = run_in(
        &cwd,
        &bench,
        &[
            "verify",
            "--no-framing",
            "--target",
            &format!("{target}/webhooks/didit"),
        ],
    );
    assert_eq!(card.status.code(), Some(0), "{}", text(&card));
    assert!(
        String::from_utf8_lossy(&card.stdout).contains("verdict: PASS"),
        "{}",
        text(&card)
    );

    let report = cwd.join("report.json");
    let load = run_in(
        &cwd,
        &loadgen,
        &[
            "--scenario",
            "typical-mix",
            "--target",
            &target,
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--rate",
            "100",
            "--quiet",
            "--report",
            report.to_str().expect("utf-8 path"),
        ],
    );
    rx.stop();
    assert_eq!(load.status.code(), Some(0), "{}", text(&load));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("the report")).expect("JSON");
    assert_eq!(json["scenario"], "typical-mix", "{json}");

    // A scenario that is neither a file nor shipped says what ships, once.
    let missing = run_in(
        &cwd,
        &loadgen,
        &["--scenario", "typical-mixx", "--target", &target],
    );
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(err.contains("it ships smoke, typical-mix"), "{err}");
    assert_eq!(err.matches("no such file").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&bin_dir);
    let _ = std::fs::remove_dir_all(&cwd);
}

#[test]
fn each_binary_names_the_build_it_came_from() {
    let cwd = empty_dir("version");
    for name in ["webhook-bench", "didit-loadgen", "didit-receiver"] {
        let out = run_in(&cwd, &support::bin(name), &["--version", "--verbose"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let commit = stdout
            .lines()
            .find_map(|l| l.strip_prefix("commit: "))
            .unwrap_or_default();
        let hex = commit.strip_suffix("-dirty").unwrap_or(commit);
        assert!(
            hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: {stdout}"
        );
        assert!(stdout.contains("rustc: rustc 1."), "{name}: {stdout}");
        let json = run_in(&cwd, &support::bin(name), &["--version", "--json"]);
        let build: webhook_bench::harness::BuildInfo =
            serde_json::from_slice(&json.stdout).expect("--version --json");
        assert_eq!((build.name.as_str(), build.commit.as_str()), (name, commit));
        assert!(build.dependency("didit-webhook").is_some(), "{build:?}");
    }
    let _ = std::fs::remove_dir_all(&cwd);
}
