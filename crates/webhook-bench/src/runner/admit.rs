//! Before a variant is measured: its report card (`webhook-bench verify`), the generator's
//! conformance probe for ours, and its null endpoint's rate with the same generator
//! (calibration, the "÷ own null" reference).

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{Harness, Receiver, SECRET, first_mismatch};
use crate::matrix::Variant;
use crate::results::{Status, VariantOutcome};

use super::{Plan, Progress};

/// A variant that passed its card and probe, measured in every round, with its null endpoint's
/// rate (none for a receiver without one).
pub(super) struct Admitted {
    pub variant: Variant,
    pub null_rps: Option<f64>,
}

/// Starts `v`, verifies and calibrates it, stops it: its outcome, and the variant to measure
/// when it was admitted.
pub(super) fn admit(
    plan: &Plan,
    harness: &Harness,
    v: &Variant,
    progress: &Progress,
) -> (VariantOutcome, Option<Admitted>) {
    progress.note(format!("{}: report card and conformance probe", v.name));
    let mut outcome = VariantOutcome {
        variant: v.name.clone(),
        status: Status::Measured,
        slowed_us: v.slow_us,
        external: v.external.as_ref().map(|e| e.cmd.clone()),
        runtime: v.external.as_ref().and_then(|e| e.runtime.clone()),
        ..VariantOutcome::default()
    };
    let checked = match harness.start(v) {
        Err(e) => Err((Status::Failed, e)),
        Ok(mut rx) => {
            let r = check_and_calibrate(plan, v, &mut rx, &mut outcome, progress);
            rx.stop();
            r
        }
    };
    match checked {
        Ok(null_rps) => (
            outcome,
            Some(Admitted {
                variant: v.clone(),
                null_rps,
            }),
        ),
        Err((status, reason)) => {
            outcome.status = status;
            outcome.reason = Some(reason);
            (outcome, None)
        }
    }
}

/// The card and probe (refused when either fails), then the calibration; the receiver must
/// still be running after both.
fn check_and_calibrate(
    plan: &Plan,
    v: &Variant,
    rx: &mut Receiver,
    outcome: &mut VariantOutcome,
    progress: &Progress,
) -> Result<Option<f64>, (Status, String)> {
    probe(plan, v, rx, outcome).map_err(|e| (Status::Refused, e))?;
    // No null endpoint: no "÷ own null"; the generator's ceiling is still judged by its own
    // report on every run.
    let null_rps = match null_path(v) {
        None => None,
        Some(path) => {
            progress.note(format!("{}: calibrating on {path}", v.name));
            let r = calibrate(plan, rx, path)
                .map_err(|e| (Status::Failed, format!("calibration: {e}")))?;
            outcome.null_rps = Some(r.load.achieved_rate);
            outcome.null_generator_limited = Some(r.generator_limited);
            Some(r.load.achieved_rate)
        }
    };
    rx.alive().map_err(|e| (Status::Failed, e))?;
    Ok(null_rps)
}

/// The null endpoint's ceiling under the max-throughput scenario's traffic.
fn calibrate(plan: &Plan, rx: &Receiver, path: String) -> Result<didit_loadgen::Report, String> {
    let max = scenario_path(&plan.scenarios, "max-throughput");
    let secs = if plan.quick { "1500ms" } else { "4s" };
    plan.generator().run(
        rx,
        &[
            "--scenario".into(),
            max.display().to_string(),
            "--path".into(),
            path,
            "--calibrate".into(),
            "--max".into(),
            "--duration".into(),
            secs.into(),
            "--warmup".into(),
            "500ms".into(),
            // The null endpoint does not de-duplicate, so a pool signed before the run serves:
            // signing each request made the generator the limit (may's calibration was
            // generator-limited at ~77k of its ~130k).
            "--pool".into(),
            "1000".into(),
        ],
        plan.threads(32),
        "calibrate",
    )
}

/// A variant's null endpoint: ours always have one, an external one when declared.
pub(super) fn null_path(v: &Variant) -> Option<String> {
    match &v.external {
        None => Some("/webhooks/null".to_owned()),
        Some(ext) => ext.null_path.clone(),
    }
}

/// Verifies a started receiver before it is measured. Every variant gets the report card of
/// `webhook-bench verify` (recorded in the results); a receiver written elsewhere is refused when
/// the card fails a required case (unless `--allow-failing`), ours when the generator's smoke
/// probe gets a wrong answer, as before the card existed.
fn probe(
    plan: &Plan,
    v: &Variant,
    rx: &Receiver,
    outcome: &mut VariantOutcome,
) -> Result<(), String> {
    let card = crate::verify::Target::parse(&format!("http://{}/webhooks/didit", rx.addr))
        .map_err(|e| e.to_string())
        .and_then(|target| {
            crate::verify::verify(
                &crate::verify::Options {
                    target,
                    secret: SECRET.into(),
                    max_body: 1 << 20,
                    tolerance: Duration::from_secs(300),
                    accept_simple: false,
                    strict_http: false,
                    strict: plan.strict,
                    framing: true,
                    server: None,
                },
                |_| {},
            )
            .map_err(|e| e.to_string())
        });
    let card = match card {
        Ok(c) => c,
        Err(e) => return Err(format!("report card: {e}")),
    };
    outcome.card = Some(card.summary());
    outcome.card_failed = card.failed_required();
    if v.external.is_some() {
        return match (card.passed, plan.allow_failing.allows(&v.name)) {
            (true, _) => Ok(()),
            (false, true) => {
                outcome.failing_card = true;
                Ok(())
            }
            (false, false) => Err(format!(
                "its report card failed {} (measure it anyway with --allow-failing)",
                card.failed_required().join(", ")
            )),
        };
    }
    let smoke = scenario_path(&plan.scenarios, "smoke");
    let probe = plan.generator().run(
        rx,
        &[
            "--scenario".into(),
            smoke.display().to_string(),
            "--duration".into(),
            "1s".into(),
            "--warmup".into(),
            "0s".into(),
            "--rate".into(),
            "300".into(),
            "--connections".into(),
            "4".into(),
        ],
        plan.threads(4),
        "probe",
    );
    match &probe {
        Ok(r) if r.requests.mismatches == 0 && r.requests.transport_errors == 0 => Ok(()),
        Ok(r) => Err(format!(
            "answered {} of {} conformance probes wrongly ({} transport errors); e.g. {}",
            r.requests.mismatches,
            r.requests.total,
            r.requests.transport_errors,
            first_mismatch(r)
        )),
        Err(e) => Err(e.clone()),
    }
}

/// A scenario by name from the plan's list, else from `scenarios/`.
fn scenario_path(list: &[PathBuf], name: &str) -> PathBuf {
    list.iter()
        .find(|p| p.file_stem().is_some_and(|s| s == name))
        .cloned()
        .unwrap_or_else(|| PathBuf::from(format!("scenarios/{name}.toml")))
}
