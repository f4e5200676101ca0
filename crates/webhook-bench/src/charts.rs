//! SVG charts with plotters: throughput with min–max bars, latency percentile curves (log scale,
//! HdrHistogram style), receiver CPU per 1,000 requests.

use std::path::Path;

use plotters::prelude::*;

use crate::results::{Results, ScenarioResult, Spread};

/// Sixteen distinguishable colours (Tableau's 10, then six more), one per variant of a run.
const COLOURS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 128, 96),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(197, 176, 213),
];

/// A variant's colour, the same in every chart of the run: its place in the run's variant list.
fn colour_of(r: &Results, variant: &str) -> RGBColor {
    let i = r
        .variants
        .iter()
        .position(|v| v.variant == variant)
        .unwrap_or(0);
    COLOURS[i % COLOURS.len()]
}

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
        let items: Vec<Bar> = sc
            .cells
            .iter()
            .map(|c| (c.variant.clone(), c.rps, colour_of(results, &c.variant)))
            .collect();
        let file = format!("throughput-{}.svg", sc.scenario);
        let title = format!("{}: throughput (req/s, median and min–max)", sc.scenario);
        bars(&dir.join(&file), &title, "req/s", &items)
            .map_err(|e| anyhow::anyhow!("chart {file}: {e}"))?;
        charts.push(Chart { file, title });

        let items: Vec<Bar> = sc
            .cells
            .iter()
            .map(|c| {
                let colour = colour_of(results, &c.variant);
                (c.variant.clone(), c.cpu_ms_per_1k, colour)
            })
            .collect();
        if items.iter().any(|(_, s, _)| s.is_some()) {
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
            curves(&dir.join(&file), &title, sc, results)
                .map_err(|e| anyhow::anyhow!("chart {file}: {e}"))?;
            charts.push(Chart { file, title });
        }
    }
    if let Some(sc) = &results.scaling
        && sc.points.len() > 1
    {
        let file = "scaling.svg".to_owned();
        let title = format!("{}: req/s against receiver cores", sc.scenario);
        scaling(&dir.join(&file), &title, sc, results)
            .map_err(|e| anyhow::anyhow!("chart {file}: {e}"))?;
        charts.push(Chart { file, title });
    }
    Ok(charts)
}

/// req/s against receiver cores, one line per variant, with the linear ideal from one core
/// dotted.
fn scaling(path: &Path, title: &str, sc: &crate::results::Scaling, r: &Results) -> Result<(), Err> {
    let root = SVGBackend::new(path, (900 + LEGEND_WIDTH, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (root, side) = root.split_horizontally(900);
    let max_cores = sc
        .points
        .iter()
        .map(|p| p.receiver_cores)
        .max()
        .unwrap_or(1) as f64;
    let top = sc
        .points
        .iter()
        .flat_map(|p| p.cells.iter().filter_map(|c| c.rps.map(|s| s.max)))
        .fold(1.0f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.5f64..max_cores * 1.1, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("receiver cores")
        .y_desc("req/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let variants: Vec<String> = sc
        .points
        .first()
        .map(|p| p.cells.iter().map(|c| c.variant.clone()).collect())
        .unwrap_or_default();
    for v in &variants {
        let colour = colour_of(r, v);
        let pts: Vec<(f64, f64)> = sc
            .points
            .iter()
            .filter_map(|p| {
                let c = p.cells.iter().find(|c| c.variant == *v)?;
                c.rps.map(|s| (p.receiver_cores as f64, s.median))
            })
            .collect();
        chart.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        if let Some(&(_, one)) = pts.first() {
            chart.draw_series(DashedLineSeries::new(
                vec![(1.0, one), (max_cores, one * max_cores)],
                4,
                4,
                colour.mix(0.5).stroke_width(1),
            ))?;
        }
    }
    let items: Vec<(String, RGBColor)> = variants
        .iter()
        .map(|v| (short(v), colour_of(r, v)))
        .collect();
    side_legend(&side, &items)?;
    root.present()?;
    Ok(())
}

/// Room on the right of a line chart for its legend, so that no line runs under it.
const LEGEND_WIDTH: u32 = 250;

/// The legend of a line chart in its own panel: one sample line and name per variant, in the
/// run's order and colours.
fn side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    items: &[(String, RGBColor)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 13).into_font();
    for (i, (name, colour)) in items.iter().enumerate() {
        let y = 50 + 20 * i as i32;
        area.draw(&PathElement::new(
            vec![(8, y), (32, y)],
            colour.stroke_width(3),
        ))?;
        area.draw(&Text::new(name.clone(), (40, y - 7), font.clone()))?;
    }
    Ok(())
}

fn short(name: &str) -> String {
    let s = name
        .strip_suffix(":serde")
        .unwrap_or(name)
        .replace("axum-naive:ring", "naive");
    match crate::matrix::broker_label(name) {
        Some((_, broker)) => format!("{s} ({broker})"),
        None => s,
    }
}

/// The name of the row whose middle is at `y` in a chart of horizontal bars (row 0 at the top,
/// one unit per row), or nothing between rows.
fn row_label(names: &[String], y: f64) -> String {
    let n = names.len();
    let k = (y - 0.5).round();
    if (y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
        names.get(n - 1 - k as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// One bar: variant, its spread, its colour.
type Bar = (String, Option<Spread>, RGBColor);

/// Horizontal bars, one row per variant in the order given, so that long names never overlap;
/// the chart grows with the number of variants.
fn bars(path: &Path, title: &str, unit: &str, items: &[Bar]) -> Result<(), Err> {
    let n = items.len().max(1);
    let height = (90 + 30 * n as u32).max(240);
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = items
        .iter()
        .filter_map(|(_, s, _)| s.map(|s| s.max))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(250)
        .build_cartesian_2d(0f64..top, 0f64..n as f64)?;
    let names: Vec<String> = items.iter().map(|(n, _, _)| short(n)).collect();
    // Row k from the bottom holds item n - 1 - k, so the first item is on top.
    let row = |i: usize| (n - 1 - i) as f64;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| row_label(&names, *y))
        .x_label_formatter(&|x| {
            if top > 100.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        })
        .x_desc(unit)
        .draw()?;
    for (i, (_, s, colour)) in items.iter().enumerate() {
        let Some(s) = s else { continue };
        let y = row(i);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y + 0.15), (s.median, y + 0.85)],
            colour.mix(0.85).filled(),
        )))?;
        let mid = y + 0.5;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(s.min, mid), (s.max, mid)],
            BLACK.stroke_width(2),
        )))?;
        for x in [s.min, s.max] {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, mid - 0.15), (x, mid + 0.15)],
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

fn curves(path: &Path, title: &str, sc: &ScenarioResult, r: &Results) -> Result<(), Err> {
    let root = SVGBackend::new(path, (900 + LEGEND_WIDTH, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (root, side) = root.split_horizontally(900);
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
    for c in &sc.curves {
        let colour = colour_of(r, &c.variant);
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
        chart.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
    }
    let items: Vec<(String, RGBColor)> = sc
        .curves
        .iter()
        .map(|c| (short(&c.variant), colour_of(r, &c.variant)))
        .collect();
    side_legend(&side, &items)?;
    root.present()?;
    Ok(())
}

/// One row of the "where the time goes" chart: its name, its segments (layer, µs) left to
/// right, and the floor when the row has one.
#[derive(Clone, Debug)]
pub struct CostRow {
    pub name: String,
    pub segments: Vec<(String, f64)>,
    pub floor: Option<f64>,
}

/// A layer's colour, the same in every row: the HTTP floor grey, then the path's layers.
fn layer_colour(layer: &str) -> RGBColor {
    match layer {
        "null" => RGBColor(170, 170, 170),
        "hmac" => COLOURS[0],
        "parse" => COLOURS[1],
        "process" => COLOURS[2],
        "broker" => COLOURS[4],
        _ => COLOURS[3],
    }
}

/// Stacked horizontal bars of µs per request, one row per variant (and store), the floor a
/// black tick on the rows that have one, the layers' legend in a panel of its own.
pub fn cost(path: &Path, title: &str, rows: &[CostRow]) -> Result<(), Err> {
    let n = rows.len().max(1);
    let height = (110 + 34 * n as u32).max(260);
    let root = SVGBackend::new(path, (900 + LEGEND_WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (root, side) = root.split_horizontally(900);
    let top = rows
        .iter()
        .map(|r| {
            let sum: f64 = r.segments.iter().map(|s| s.1.max(0.0)).sum();
            sum.max(r.floor.unwrap_or(0.0))
        })
        .fold(1.0f64, f64::max)
        * 1.08;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(230)
        .build_cartesian_2d(0f64..top, 0f64..n as f64)?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| row_label(&names, *y))
        .x_desc("CPU µs per request (median): the receiver, and a broker beside it")
        .draw()?;
    for (i, r) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let mut x = 0.0;
        for (layer, us) in &r.segments {
            let w = us.max(0.0);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y + 0.18), (x + w, y + 0.82)],
                layer_colour(layer).mix(0.9).filled(),
            )))?;
            x += w;
        }
        if let Some(f) = r.floor {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(f, y + 0.05), (f, y + 0.95)],
                BLACK.stroke_width(3),
            )))?;
        }
    }
    let mut items: Vec<(String, RGBColor)> = [
        ("null", "HTTP (null endpoint)"),
        ("hmac", "+ HMAC"),
        ("parse", "+ parse"),
        ("process", "+ processing"),
        ("store", "+ store"),
        ("broker", "broker process"),
    ]
    .iter()
    .map(|(l, name)| ((*name).to_owned(), layer_colour(l)))
    .collect();
    if rows.iter().any(|r| r.floor.is_some()) {
        items.push(("floor (black tick)".into(), BLACK));
    }
    side_legend(&side, &items)?;
    root.present()?;
    Ok(())
}
