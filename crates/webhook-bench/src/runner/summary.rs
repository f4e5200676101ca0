//! Each scenario's cells summarised: medians and ranges, "÷ own null" and "÷ naive", both
//! measured in the same run.

use crate::matrix::NAIVE;
use crate::results::{Curve, ScenarioResult, Spread};

use super::admit::Admitted;
use super::measure::{Grid, ScenarioMeta};

pub(super) fn summarise(
    scenarios: &[ScenarioMeta],
    admitted: &[Admitted],
    grid: Grid,
) -> Vec<ScenarioResult> {
    let Grid { cells, curves } = grid;
    scenarios
        .iter()
        .zip(cells)
        .zip(curves)
        .map(|((sc, mut sc_cells), sc_curves)| {
            for (cell, a) in sc_cells.iter_mut().zip(admitted) {
                cell.summarise(a.null_rps, a.null_rps);
                if cell.repeats.iter().all(|r| r.error.is_some()) {
                    cell.failed = cell.repeats.first().and_then(|r| r.error.clone());
                }
            }
            let naive_median = sc_cells
                .iter()
                .find(|c| c.variant == NAIVE)
                .and_then(|c| c.rps)
                .map(|s| s.median)
                .filter(|m| *m > 0.0);
            if let Some(naive_median) = naive_median {
                for cell in &mut sc_cells {
                    let rps: Vec<f64> = cell
                        .repeats
                        .iter()
                        .filter(|r| r.error.is_none())
                        .map(|r| r.rps / naive_median)
                        .collect();
                    cell.ratio_to_naive = Spread::of(&rps);
                }
            }
            ScenarioResult {
                scenario: sc.name.clone(),
                description: sc.description.clone(),
                engine: sc.engine.clone(),
                shape: sc.shape,
                cells: sc_cells,
                curves: admitted
                    .iter()
                    .zip(sc_curves)
                    .filter(|(_, c)| !c.1.is_empty())
                    .map(|(a, c)| Curve {
                        variant: a.variant.name.clone(),
                        points: c.1,
                    })
                    .collect(),
            }
        })
        .collect()
}
