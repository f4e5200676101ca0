//! Opt-in timing test of the signature comparison, in the style of dudect: does
//! `Mac::verify` take measurably different time for a forged tag that differs from the right one
//! in its first byte than for one that differs in its last? An early-exit comparison would leak
//! how many leading bytes an attacker got right.
//!
//! Both classes are measured interleaved in random order (so drift hits both alike), from the same
//! buffer (so only the tag's content differs, never its address), on a short message (so the
//! HMAC itself, which is the same for both, does not drown the comparison), and compared with
//! Welch's t-test on the raw samples and on samples cropped at several percentiles (dudect's trick
//! against the long right tail of a shared machine). |t| under 4.5 is dudect's
//! "no evidence of a leak".
//!
//! Timing is noisy and slow, so it is not part of the default test run:
//! `bash scripts/timing.sh` runs it in release, pinned to one core, and prints every t.

use std::time::Instant;

use didit_webhook::{AwsLcMac, Mac, RingMac, RustCryptoMac, Secret, Tag};

/// dudect's threshold: beyond it the two classes differ with very high confidence.
const T_LIMIT: f64 = 4.5;

/// Welch's t statistic for two samples.
fn welch(a: &[f64], b: &[f64]) -> f64 {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let (na, ma, va) = stats(a);
    let (nb, mb, vb) = stats(b);
    (ma - mb) / (va / na + vb / nb).sqrt()
}

#[test]
fn welch_t_detects_a_shift_and_not_noise() {
    // A check of the statistic itself, so the timing tests cannot pass for a broken t.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f64
    };
    let a: Vec<f64> = (0..20_000).map(|_| noise()).collect();
    let b: Vec<f64> = (0..20_000).map(|_| noise()).collect();
    let shifted: Vec<f64> = b.iter().map(|v| v + 20.0).collect();
    assert!(welch(&a, &b).abs() < T_LIMIT, "{}", welch(&a, &b));
    assert!(welch(&a, &shifted).abs() > 5.0, "{}", welch(&a, &shifted));
}

/// Nanoseconds per `verify` call for tags wrong in the first byte (`first`) and in the last.
///
/// The two classes must differ only in the content of the tag. Each sample copies its class's
/// tag into one buffer, so both classes are compared from the same address: with one stack array
/// per class the layout alone gave aws-lc |t| up to 190 even with identical tags in both.
/// The class of every sample is drawn before measuring and the samples go to one pre-touched
/// buffer, so no allocation or page fault lands on one class more than the other.
#[allow(clippy::disallowed_methods, reason = "the test measures time")]
fn measure<M: Mac>(samples: usize) -> (Vec<f64>, Vec<f64>) {
    const WARM_UP: usize = 20_000;
    let mac = M::new(&Secret::new("timing-test-secret").expect("a non-empty secret"));
    let msg = b"1780000000:status.updated:timing";
    let good = mac.sign(msg);
    let mut first: Tag = good;
    first[0] ^= 0x01;
    let mut last: Tag = good;
    last[31] ^= 0x01;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let classes: Vec<bool> = (0..samples * 2 + WARM_UP)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng >> 63 == 0
        })
        .collect();
    let mut ns = vec![f64::NAN; classes.len()];
    let mut probe: Tag = good;
    for (&is_first, out) in classes.iter().zip(&mut ns) {
        probe.copy_from_slice(if is_first { &first } else { &last });
        let tag = std::hint::black_box(&probe);
        let t0 = Instant::now();
        let ok = std::hint::black_box(mac.verify(std::hint::black_box(msg), tag));
        *out = t0.elapsed().as_nanos() as f64;
        assert!(!ok, "a forged tag verified");
    }
    // The first calls warm caches and frequency; they are not kept.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (&is_first, &t) in classes.iter().zip(&ns).skip(WARM_UP) {
        if is_first { &mut a } else { &mut b }.push(t);
    }
    (a, b)
}

/// The t statistics: raw, then cropped below the 50th, 75th, 90th and 99th percentile of both
/// classes together.
fn t_values(a: &[f64], b: &[f64]) -> Vec<(String, f64)> {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut out = vec![("raw".to_owned(), welch(a, b))];
    for p in [50, 75, 90, 99] {
        let cut = all[all.len() * p / 100];
        let ca: Vec<f64> = a.iter().copied().filter(|v| *v <= cut).collect();
        let cb: Vec<f64> = b.iter().copied().filter(|v| *v <= cut).collect();
        out.push((format!("≤p{p}"), welch(&ca, &cb)));
    }
    out
}

#[allow(clippy::disallowed_methods, reason = "a test reads TIMING_SAMPLES")]
fn no_leak<M: Mac>() {
    let samples: usize = std::env::var("TIMING_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (a, b) = measure::<M>(samples);
    let median = |x: &[f64]| {
        let mut v = x.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ts = t_values(&a, &b);
    let worst = ts.iter().map(|(_, t)| t.abs()).fold(0.0, f64::max);
    println!(
        "timing {:<10} samples {} + {}  median ns first-byte {:.0} last-byte {:.0}  t: {}  max |t| {:.2}",
        M::NAME,
        a.len(),
        b.len(),
        median(&a),
        median(&b),
        ts.iter()
            .map(|(k, t)| format!("{k} {t:+.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        worst
    );
    assert!(
        worst < T_LIMIT,
        "{}: |t| = {worst:.2} ≥ {T_LIMIT}: verify time depends on where a forged tag differs",
        M::NAME
    );
}

/// The control: ring's HMAC with the comparison most code writes first, a byte loop that stops at
/// the first difference. The test must catch it, or it proves nothing about the real backends.
#[derive(Debug)]
struct EarlyExitMac(RingMac);

impl Mac for EarlyExitMac {
    const NAME: &'static str = "early-exit";

    fn new(secret: &Secret) -> Self {
        EarlyExitMac(RingMac::new(secret))
    }

    fn sign(&self, msg: &[u8]) -> Tag {
        self.0.sign(msg)
    }

    fn verify(&self, msg: &[u8], tag: &Tag) -> bool {
        let want = self.0.sign(msg);
        for (x, y) in want.iter().zip(tag) {
            if std::hint::black_box(x) != std::hint::black_box(y) {
                return false;
            }
        }
        true
    }
}

#[test]
#[ignore = "timing: run with scripts/timing.sh (release, pinned)"]
fn an_early_exit_compare_is_caught() {
    let (a, b) = measure::<EarlyExitMac>(1_000_000);
    let ts = t_values(&a, &b);
    let worst = ts.iter().map(|(_, t)| t.abs()).fold(0.0, f64::max);
    println!(
        "timing control (early exit): t: {}  max |t| {worst:.2}",
        ts.iter()
            .map(|(k, t)| format!("{k} {t:+.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        worst >= T_LIMIT,
        "the timing test did not see an early-exit comparison (max |t| {worst:.2})"
    );
}

#[test]
#[ignore = "timing: run with scripts/timing.sh (release, pinned)"]
fn ring_compare_is_constant_time() {
    no_leak::<RingMac>();
}

#[test]
#[ignore = "timing: run with scripts/timing.sh (release, pinned)"]
fn rustcrypto_compare_is_constant_time() {
    no_leak::<RustCryptoMac>();
}

#[test]
#[ignore = "timing: run with scripts/timing.sh (release, pinned)"]
fn aws_lc_compare_is_constant_time() {
    no_leak::<AwsLcMac>();
}
