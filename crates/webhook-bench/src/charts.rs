//! SVG charts with plotters: throughput with min–max bars, latency percentile curves (log scale,
//! HdrHistogram style), receiver CPU per 1,000 requests.

use std::path::Path;

use plotters::prelude::*;

use crate::results::{Results, ScenarioResult, Spread};

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A chart file written for the run, relative to the run folder.
#[derive(Clone, Debug)]
pub struct Chart {
    pub file: String,
    pub title: String,
}

type Err = Box<dyn std::error::Error>;

/// Writes every chart of the run into `dir`.
pub fn write_all(results: &Results, dir: &Path) -> anyhow::Result<Vec<Chart>> {
    let mut charts = Vec::new();
    for sc in &results.scenarios {
        if sc.cells.iter().all(|c| c.rps.is_none()) {
            continue;
        }
        let items: Vec<(String, Option<Spread>)> = sc
            .cells
            .iter()
            .map(|c| (c.variant.clone(), c.rps))
            .collect();
        let file = format!("throughput-{}.svg", sc.scenario);
        let title = format!("{}: throughput (req/s, median and min–max)", sc.scenario);
        bars(&dir.join(&file), &title, "req/s", &items)
            .map_err(|e| anyhow::anyhow!("chart {file}: {e}"))?;
        charts.push(Chart { file, title });

        let items: Vec<(String, Option<Spread>)> = sc
            .cells
            .iter()
            .map(|c| (c.variant.clone(), c.cpu_ms_per_1k))
            .collect();
        if items.iter().any(|(_, s)| s.is_some()) {
            let file = format!("cpu-{}.svg", sc.scenario);
            let title = format!("{}: receiver CPU ms per 1,000 requests", sc.scenario);
            bars(&dir.join(&file), &title, "CPU ms / 1k req", &items)
                .map_err(|e| anyhow::anyhow!("chart {file}: {e}"))?;
            charts.push(Chart { file, title });
        }

        if !sc.curves.is_empty() {
            let file = format!("latency-{}.svg", sc.scenario);
            let title = format!(
                "{}: latency by percentile (µs, corrected, median repeat)",
                sc.scenario
            );
            curves(&dir.join(&file), &title, sc)
                .map_err(|e| anyhow::anyhow!("chart {file}: {e}"))?;
            charts.push(Chart { file, title });
        }
    }
    Ok(charts)
}

fn short(name: &str) -> String {
    name.strip_suffix(":serde")
        .unwrap_or(name)
        .replace("axum-naive:ring", "naive")
}

fn bars(
    path: &Path,
    title: &str,
    unit: &str,
    items: &[(String, Option<Spread>)],
) -> Result<(), Err> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = items
        .iter()
        .filter_map(|(_, s)| s.map(|s| s.max))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.15;
    let n = items.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
    let names: Vec<String> = items.iter().map(|(n, _)| short(n)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if top > 100.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            }
        })
        .y_desc(unit)
        .draw()?;
    for (i, (_, s)) in items.iter().enumerate() {
        let Some(s) = s else { continue };
        let x = i as f64;
        let colour = COLOURS[i % COLOURS.len()];
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, s.median)],
            colour.mix(0.8).filled(),
        )))?;
        let mid = x + 0.5;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(mid, s.min), (mid, s.max)],
            BLACK.stroke_width(2),
        )))?;
        for y in [s.min, s.max] {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(mid - 0.1, y), (mid + 0.1, y)],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}

/// x: percentile plotted as log10(1 / (1 - p)), so 90 %, 99 %, 99.9 % are evenly spaced.
fn nines(p: f64) -> f64 {
    let q = (1.0 - p / 100.0).max(1e-5);
    (1.0 / q).log10()
}

fn curves(path: &Path, title: &str, sc: &ScenarioResult) -> Result<(), Err> {
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = sc
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    let min = sc
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .min()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(
            0f64..nines(99.999) + 0.2,
            (min * 0.7..max * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_labels(11)
        .x_label_formatter(&|x| match (*x * 10.0).round() as i64 {
            0 => "50%".into(),
            10 => "90%".into(),
            20 => "99%".into(),
            30 => "99.9%".into(),
            40 => "99.99%".into(),
            50 => "max".into(),
            _ => String::new(),
        })
        .x_desc("percentile")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("µs (log)")
        .draw()?;
    for (i, c) in sc.curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|(p, v)| {
                // 50 % at 0 (its true place, 0.3, would crowd it), max at the right edge.
                let x = if *p >= 100.0 {
                    nines(99.999)
                } else if *p <= 50.0 {
                    0.0
                } else {
                    nines(*p)
                };
                (x, (*v).max(1) as f64)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))?
            .label(short(&c.variant))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
