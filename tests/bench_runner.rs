//! `webhook-bench run` end to end on the debug binaries, in quick mode: a conformant variant is
//! verified, calibrated and measured; an unknown variant and an unreadable scenario are recorded
//! with their reasons while the rest still runs; the folder holds everything it should. Loopback
//! only, receivers on port 0, a few seconds.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn quick_run_records_what_ran_and_what_failed() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_didit-receiver"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let root = env!("CARGO_MANIFEST_DIR");
    let missing = format!("{root}/scenarios/no-such-scenario.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_webhook-bench"))
        .current_dir(root)
        .args([
            "run", "--quick", "--quiet", "--repeat", "1", "--http", "hyper",
        ])
        .args(["--receivers", "hyper:ring:serde,nginx:ring:serde"])
        .args([
            "--scenario",
            "scenarios/max-throughput.toml",
            "--scenario",
            &missing,
        ])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("webhook-bench runs");
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for f in [
        "results.json",
        "raw.csv",
        "README.md",
        "throughput-max-throughput.svg",
        "latency-max-throughput.svg",
        "cpu-max-throughput.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = webhook_bench::results::load(&out.join("results.json")).expect("valid results");
    let by = |name: &str| r.variants.iter().find(|v| v.variant == name).expect(name);
    assert_eq!(by("hyper:ring:serde").status, "measured");
    assert!(by("hyper:ring:serde").null_rps.is_some_and(|n| n > 0.0));
    let bad = by("nginx:ring:serde");
    assert_eq!(bad.status, "failed");
    assert!(
        bad.reason
            .as_deref()
            .is_some_and(|r| r.contains("unknown server"))
    );
    assert_eq!(r.skipped_scenarios.len(), 1);
    assert!(r.skipped_scenarios[0].path.contains("no-such-scenario"));
    let cell = &r.scenarios[0].cells[0];
    assert_eq!(cell.variant, "hyper:ring:serde");
    assert_eq!(cell.repeats.len(), 1);
    let rep = &cell.repeats[0];
    assert_eq!(rep.error, None);
    assert!(
        rep.rps > 0.0 && rep.requests > 0 && rep.mismatches == 0,
        "{rep:?}"
    );
    assert!(
        rep.cpu_ms_per_1k.is_some() && rep.peak_rss_kib.is_some(),
        "{rep:?}"
    );
    let csv = std::fs::read_to_string(out.join("raw.csv")).expect("raw.csv");
    assert!(csv.starts_with("scenario,variant,round,metric,value\n"));
    assert!(csv.contains("max-throughput,hyper:ring:serde,1,rps,"));
    let readme = std::fs::read_to_string(out.join("README.md")).expect("README");
    assert!(readme.contains("git commit") && readme.contains("no-such-scenario"));
}
