//! `webhook-bench run --scaling`: each variant on 1, 2, 4, … receiver cores, as far as the
//! machine goes, each point with as many generator cores as receiver cores (so the generator
//! is never the reason a point stops scaling) and the brokers on what is left.
//!
//! [`topology`] decides the points from the core count alone, so `--plan --cores 16` shows what
//! a 16-core machine would run, on any machine.

use crate::harness::CpuSet;
use crate::results::{Results, ScalingCell, ScalingPoint, Spread};

/// One point of a scaling run: the core sets it runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    pub receiver: CpuSet,
    pub generator: CpuSet,
    /// `None`: the brokers share the receiver's cores.
    pub broker: Option<CpuSet>,
}

/// The points a machine of `cores` cores can run, and why there are no more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub cores: usize,
    pub points: Vec<Point>,
    pub stopped: String,
}

/// Receiver cores 1, 2, 4, … on cores `0..n`, the generator on the next `n`, brokers on the
/// rest, while both fit.
pub fn topology(cores: usize) -> Topology {
    let mut points = Vec::new();
    let mut n = 1;
    let stopped = loop {
        if 2 * n > cores {
            break format!(
                "{n} receiver core{} and the generator's {n} need {} cores; this machine has {cores}",
                if n == 1 { "" } else { "s" },
                2 * n
            );
        }
        let receiver = CpuSet::range(0, n);
        let generator = CpuSet::range(n, n);
        let broker = CpuSet::spare(cores, &[&receiver, &generator]);
        points.push(Point {
            receiver,
            generator,
            broker,
        });
        n *= 2;
    };
    Topology {
        cores,
        points,
        stopped,
    }
}

/// What `--plan` prints: every point, with what it runs.
pub fn describe(t: &Topology, variants: &[String], scenarios: &[String], repeat: usize) -> String {
    let mut s = format!(
        "scaling plan for {} cores: {} point{}\n",
        t.cores,
        t.points.len(),
        if t.points.len() == 1 { "" } else { "s" }
    );
    for p in &t.points {
        s.push_str(&format!(
            "  {} receiver core{}: receiver on {}, generator on {} ({} engine thread{}), brokers on {}\n",
            p.receiver.len(),
            if p.receiver.len() == 1 { "" } else { "s" },
            p.receiver,
            p.generator,
            p.generator.len(),
            if p.generator.len() == 1 { "" } else { "s" },
            p.broker
                .as_ref()
                .map_or("the receiver's cores".to_owned(), |b| b.to_string())
        ));
    }
    s.push_str(&format!("  stops there: {}\n", t.stopped));
    s.push_str(&format!(
        "each point: {} variant{} ({}) x {} scenario{} ({}) x {repeat} interleaved round{}\n",
        variants.len(),
        if variants.len() == 1 { "" } else { "s" },
        variants.join(", "),
        scenarios.len(),
        if scenarios.len() == 1 { "" } else { "s" },
        scenarios.join(", "),
        if repeat == 1 { "" } else { "s" }
    ));
    s
}

/// The scaling table of one point's results: each variant's req/s on the first scenario.
pub fn point_of(p: &Point, r: &Results) -> ScalingPoint {
    let cells = r
        .scenarios
        .first()
        .map(|sc| {
            sc.cells
                .iter()
                .map(|c| ScalingCell {
                    variant: c.variant.clone(),
                    rps: c.rps,
                    efficiency: None,
                })
                .collect()
        })
        .unwrap_or_default();
    ScalingPoint {
        receiver_cores: p.receiver.len(),
        receiver_cpus: p.receiver.to_string(),
        generator_cpus: p.generator.to_string(),
        broker_cpus: p.broker.as_ref().map(ToString::to_string),
        cells,
    }
}

/// Efficiency per core relative to one core: req/s on n cores ÷ (n × req/s on 1 core).
pub fn fill_efficiency(points: &mut [ScalingPoint]) {
    let base: Vec<(String, f64)> = points
        .first()
        .map(|p| {
            p.cells
                .iter()
                .filter_map(|c| c.rps.map(|s| (c.variant.clone(), s.median)))
                .collect()
        })
        .unwrap_or_default();
    for p in points.iter_mut() {
        let n = p.receiver_cores as f64;
        for c in &mut p.cells {
            let one = base.iter().find(|(v, _)| *v == c.variant).map(|(_, r)| *r);
            c.efficiency = match (c.rps, one) {
                (Some(Spread { median, .. }), Some(one)) if one > 0.0 => {
                    Some((median / (n * one) * 100.0).round() / 100.0)
                }
                _ => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_core_machine_runs_the_one_core_point_and_says_why_it_stopped() {
        let t = topology(2);
        assert_eq!(t.points.len(), 1);
        assert_eq!(t.points[0].receiver.to_string(), "0");
        assert_eq!(t.points[0].generator.to_string(), "1");
        assert_eq!(t.points[0].broker, None);
        assert!(
            t.stopped.contains("need 4 cores; this machine has 2"),
            "{}",
            t.stopped
        );
        assert!(topology(1).points.is_empty());
    }

    #[test]
    fn sixteen_cores_run_1_2_4_and_8_receiver_cores() {
        let t = topology(16);
        let sets: Vec<(String, String, Option<String>)> = t
            .points
            .iter()
            .map(|p| {
                (
                    p.receiver.to_string(),
                    p.generator.to_string(),
                    p.broker.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            sets,
            [
                ("0", "1", Some("2-15")),
                ("0-1", "2-3", Some("4-15")),
                ("0-3", "4-7", Some("8-15")),
                ("0-7", "8-15", None),
            ]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.map(str::to_owned)))
        );
        assert!(t.stopped.contains("16 receiver cores"), "{}", t.stopped);
    }

    #[test]
    fn efficiency_is_relative_to_the_one_core_point() {
        let cell = |rps: f64| ScalingCell {
            variant: "v".into(),
            rps: Spread::of(&[rps]),
            efficiency: None,
        };
        let point = |n: usize, rps: f64| ScalingPoint {
            receiver_cores: n,
            receiver_cpus: String::new(),
            generator_cpus: String::new(),
            broker_cpus: None,
            cells: vec![cell(rps)],
        };
        let mut points = vec![point(1, 1000.0), point(2, 1800.0), point(4, 2000.0)];
        fill_efficiency(&mut points);
        let eff: Vec<Option<f64>> = points.iter().map(|p| p.cells[0].efficiency).collect();
        assert_eq!(eff, [Some(1.0), Some(0.9), Some(0.5)]);
    }
}
