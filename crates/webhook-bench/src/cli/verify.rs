//! `webhook-bench verify`: the report card of any receiver.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["target", "receiver", "variant"])))]
pub struct VerifyArgs {
    /// A running receiver: http://HOST:PORT[/path] or https://HOST[:PORT][/path] (path default:
    /// /webhooks/didit; an https certificate is checked against the system's roots).
    #[arg(long)]
    pub target: Option<String>,
    /// With an https:// target, accept any certificate, e.g. a self-signed staging one.
    /// Warning: this turns off the check that the server is the one named, so anyone in the
    /// network path can read and answer the traffic; use it only on a network you trust.
    #[arg(long, requires = "target")]
    pub insecure: bool,
    /// Start this receiver and verify it, as `run --receiver` does: run with `sh -c`, `{port}`
    /// replaced by a free loopback port, the secret in DIDIT_WEBHOOK_SECRET; stopped after.
    #[arg(long, value_name = "CMD")]
    pub receiver: Option<String>,
    /// Start one of this workspace's variants, server:hmac:json[:store] as for `run`
    /// (e.g. may:ring:serde:sqlite), and verify it.
    #[arg(long, value_name = "SPEC")]
    pub variant: Option<String>,
    /// With --receiver or --variant: the path deliveries go to.
    #[arg(long, default_value = "/webhooks/didit")]
    pub path: String,
    /// With --variant: where didit-receiver is (default: beside this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// A file holding the shared secret (default: the DIDIT_WEBHOOK_SECRET variable). A
    /// receiver started by --receiver or --variant is given the harness's own secret.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// The receiver's body limit; the oversize cases are one byte over it.
    #[arg(long, default_value = "1MiB", value_parser = didit_loadgen::scenario::parse_size)]
    pub max_body: usize,
    /// The receiver's freshness tolerance; stale and future cases are a minute outside it.
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    pub tolerance: Duration,
    /// The receiver accepts deliveries signed with X-Signature-Simple only (deprecated by Didit).
    #[arg(long)]
    pub accept_simple: bool,
    /// Framing failures (the raw-TCP malformed corpus) fail the card too.
    #[arg(long, conflicts_with = "no_framing")]
    pub strict_http: bool,
    /// Skip the raw-TCP malformed corpus (for a receiver behind a proxy that owns the framing;
    /// an https:// target skips it anyway).
    #[arg(long)]
    pub no_framing: bool,
    /// Also write the card as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the card as JUnit XML (one testsuite per group, one testcase per line), for
    /// CI systems that show which case failed.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write the card as Markdown, failures first: fit for a CI step summary
    /// (`--markdown "$GITHUB_STEP_SUMMARY"`).
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Count the strict group: stricter than security needs (uppercase hex of a correct MAC, a
    /// header/body timestamp disagreement within the window, a malformed X-Timestamp beside a
    /// fresh signed body, a numeric-string timestamp). Reported either way.
    #[arg(long)]
    pub strict: bool,
    /// Judge the framing corpus by one of this project's servers' recorded answers (hyper,
    /// axum, axum-naive, actix, may) instead of the common ones.
    #[arg(long)]
    pub server: Option<String>,
}

/// `verify`: exit 0 (every required case passed), 1 (one failed), 2 (could not run).
pub(super) fn verify_cmd(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    use crate::verify::{Options, Target, verify};
    let cannot = |msg: String| {
        eprintln!("webhook-bench verify: {msg}");
        Ok(ExitCode::from(2))
    };
    // A receiver the harness starts (and stops when `_started` drops), or the one at --target.
    // Only a --variant needs this workspace's binaries.
    let bin_dir = match (&a.variant, &a.receiver) {
        (Some(_), None) => super::bin_dir_of(&a.bin_dir)?,
        _ => a.bin_dir.clone().unwrap_or_default(),
    };
    let harness = crate::harness::Harness::new(bin_dir);
    let started = match (&a.receiver, &a.variant) {
        (Some(cmd), _) => {
            if !cmd.contains("{port}") {
                return cannot(format!(
                    "--receiver `{cmd}` must take its port from `{{port}}`, e.g. `node server.js --port {{port}}`"
                ));
            }
            eprintln!("verify: starting `{cmd}`");
            Some(harness.start_external("receiver", cmd))
        }
        (None, Some(spec)) => match harness
            .backends()
            .and_then(|have| crate::matrix::Variant::parse(spec, &have))
        {
            Err(e) => return cannot(e),
            Ok(v) => {
                eprintln!("verify: starting {}", v.name);
                Some(harness.start(&v))
            }
        },
        (None, None) => None,
    };
    let (url, secret, _started) = match started {
        Some(Err(e)) => return cannot(e),
        Some(Ok(rx)) => (
            format!("http://{}{}", rx.addr, a.path),
            crate::harness::SECRET.to_owned(),
            Some(rx),
        ),
        None => {
            let secret = match didit_webhook::Secret::load(
                a.secret_file.as_deref(),
                |p| std::fs::read_to_string(p),
                |v| std::env::var(v).ok(),
            ) {
                // The suite signs with the text (Didit keys the HMAC with its UTF-8 bytes).
                Ok(s) => String::from_utf8_lossy(s.expose()).into_owned(),
                Err(e) => return cannot(format!("{e} (or pass --secret-file FILE)")),
            };
            (a.target.clone().unwrap_or_default(), secret, None)
        }
    };
    let trust = if a.insecure {
        didit_loadgen::Trust::AnyCertificate
    } else {
        didit_loadgen::Trust::SystemRoots
    };
    let target = match Target::parse_with(&url, trust) {
        Ok(t) => t,
        Err(e) => return cannot(e.to_string()),
    };
    if a.strict_http && target.tls.is_some() {
        return cannot(
            "--strict-http judges the raw framing corpus, which runs against http:// targets only"
                .into(),
        );
    }
    let o = Options {
        target,
        secret,
        max_body: a.max_body,
        tolerance: a.tolerance,
        accept_simple: a.accept_simple,
        strict_http: a.strict_http,
        strict: a.strict,
        framing: !a.no_framing,
        server: a.server,
    };
    let card = match verify(&o, |step| eprintln!("verify: {step}")) {
        Ok(c) => c,
        Err(e) => return cannot(e.to_string()),
    };
    print!("{}", card.render());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&card)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.junit {
        std::fs::write(path, crate::verify::report::junit(&card)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.markdown {
        std::fs::write(path, crate::verify::report::markdown(&card))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if card.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
