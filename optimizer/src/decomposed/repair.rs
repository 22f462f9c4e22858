//! The repair step: from the decomposition's smoothed response to a plan that
//! satisfies every constraint of the spec exactly.
//!
//! The smoothed response `x^` at the current multipliers nearly satisfies the
//! coupling rows, but not exactly. Every coupling row depends on the exposures only
//! through sums over *cells* (offer, zone, tier, group): expected acceptances per
//! offer and zone (zone balance, budget, redemptions, delivery) and exposures per
//! offer and group (fairness). So the plan `x = s_cell * x^` with one scale
//! `s_cell in [0, 1]` per cell is feasible for the per-customer rules (bounds,
//! contact cap) whatever `s` is, and the coupling rows are linear in `s`. A small LP
//! over `s`, the shipments and the unmet baseline (a few thousand columns, whatever
//! the number of customers) picks the best such plan and routes it. This is a
//! restricted master problem in the sense of Dantzig-Wolfe, with the cells as blocks.
//!
//! `s = 0` with all baseline unmet is feasible, so the repair succeeds unless a
//! hard lower bound (a `min_total` rule) asks for more than the response
//! offers: that repair is skipped and a later one, at multipliers that push the
//! response over the bound, is taken.

use good_lp::solvers::highs::highs;
use good_lp::{variable, Expression, ProblemVariables, SolverModel, Variable};

use super::cells::{CellSums, BANDS, GENEROUS_MARGINS};
use super::context::Context;
use super::customers::{CustomerSide, MapReply, MapRequest};
use super::error::DecomposedError;
use crate::allocation::Flow as RepairFlow;
use crate::families::Sense;
use crate::lp_backend::{self, Settings};

/// A repaired plan's network side and objective (exposures are kept by the customers' side).
#[derive(Debug, Clone)]
pub struct Repaired {
    /// The spec's objective of the repaired plan.
    pub objective: f64,
    /// Shipments per arc (zero ones included).
    pub flows: Vec<RepairFlow>,
    /// Unmet baseline per row of `Problem::baseline`.
    pub unmet: Vec<f64>,
}

/// The repair at multipliers `nu`: cell sums of the averaged response and of
/// a generous response per margin of [`GENEROUS_MARGINS`] from the customers'
/// side, one LP for each, and the best plan. Returns the plan, whether it
/// scales the generous response, and the cell scales (for
/// [`MapRequest::Keep`]); the customers' side then holds the chosen generous
/// response (a margin tried before the last is asked for again).
pub(super) fn repair(ctx: &Context, side: &mut dyn CustomerSide, nu: &[f64], epsilon: f64) -> Result<Option<(Repaired, bool, Vec<f64>)>, DecomposedError> {
    let prices = ctx.cell_prices(nu, epsilon);
    let n_cells = ctx.problem.offers.len() * ctx.layout.zones * ctx.layout.slots * BANDS;
    let mut cells_at = |margin: f64| -> Result<(Vec<CellSums>, Vec<CellSums>), DecomposedError> {
        let MapReply::RepairCells { average, generous } = MapReply::merge(side.map(&MapRequest::RepairCells { prices: prices.clone(), margin })?)? else {
            return Err(DecomposedError::Workers("a partition answered the repair with another reply".into()));
        };
        if average.len() != n_cells || generous.len() != n_cells {
            return Err(DecomposedError::Workers(format!("the partitions sent {} cells where {n_cells} were expected", average.len())));
        }
        Ok((average, generous))
    };
    // (plan, the margin of its generous response or None for the average, scales)
    let mut best: Option<(Repaired, Option<f64>, Vec<f64>)> = None;
    for (i, &margin) in GENEROUS_MARGINS.iter().enumerate() {
        let (average, generous) = cells_at(margin)?;
        // The average does not depend on the margin: its LP once.
        let average_plan = if i == 0 { master(ctx, &average)?.map(|(plan, scales)| (plan, None, scales)) } else { None };
        let generous_plan = master(ctx, &generous)?.map(|(plan, scales)| (plan, Some(margin), scales));
        for candidate in [average_plan, generous_plan].into_iter().flatten() {
            if best.as_ref().is_none_or(|b| candidate.0.objective > b.0.objective) {
                best = Some(candidate);
            }
        }
    }
    let last = GENEROUS_MARGINS[GENEROUS_MARGINS.len() - 1];
    if let Some((_, Some(margin), _)) = &best {
        if *margin != last {
            cells_at(*margin)?;
        }
    }
    Ok(best.map(|(plan, margin, scales)| (plan, margin.is_some(), scales)))
}

/// The repair LP over cell scales for a response with these cell sums; returns
/// the plan's network side and the scale of every cell.
/// `None` when no scaling of this response meets the hard lower bounds.
fn master(ctx: &Context, cells: &[CellSums]) -> Result<Option<(Repaired, Vec<f64>)>, DecomposedError> {
    let problem = ctx.problem;
    let layout = &ctx.layout;
    let (zones, slots) = (layout.zones, layout.slots);

    // The LP.
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::default();
    let scale: Vec<Option<Variable>> = cells
        .iter()
        .map(|cell| {
            (cell.exposure > 0.0).then(|| {
                let v = vars.add(variable().min(0.0).max(1.0));
                objective.add_mul(cell.value, v);
                v
            })
        })
        .collect();
    let arcs: Vec<Variable> = layout
        .arcs
        .iter()
        .map(|a| {
            let v = vars.add(variable().min(0.0).max(a.upper));
            objective.add_mul(-a.cost, v);
            v
        })
        .collect();
    let penalty = problem.policy.unmet_baseline_penalty;
    let unmet: Vec<Option<Variable>> = layout
        .balance
        .rows
        .iter()
        .map(|&(_, units)| {
            (units > 0.0).then(|| {
                let v = vars.add(variable().min(0.0).max(units));
                objective.add_mul(-penalty, v);
                v
            })
        })
        .collect();

    // Exposures enter the rows through one aggregate column per (offer, slot)
    // that some family reads, defined by `sum of cell exposures * scales - e = 0`:
    // a fairness row then holds two columns instead of every cell of two groups.
    let n_exposure_cells = problem.offers.len() * slots;
    let mut exposure_sums: Vec<Option<(Variable, Expression)>> = (0..n_exposure_cells)
        .map(|c| layout.exposure_coefs(c).next().is_some().then(|| (vars.add(variable().min(0.0)), Expression::default())))
        .collect();

    // Every family's rows, with the cells' sums as coefficients of their scales.
    let mut rows: Vec<Expression> = (0..layout.total()).map(|_| Expression::default()).collect();
    for (i, (cell, var)) in cells.iter().zip(&scale).enumerate() {
        let Some(s) = *var else { continue };
        let slot = (i / BANDS) % slots;
        let o = i / (BANDS * slots * zones);
        let z = (i / (BANDS * slots)) % zones;
        for (r, a) in layout.accept_coefs(o * zones + z) {
            rows[r].add_mul(a * cell.accepts, s);
        }
        for (r, a) in layout.value_coefs(o) {
            rows[r].add_mul(a * cell.values, s);
        }
        if let Some((_, sum)) = &mut exposure_sums[o * slots + slot] {
            sum.add_mul(cell.exposure, s);
        }
    }
    for (c, aggregate) in exposure_sums.iter().enumerate() {
        if let Some((e, _)) = aggregate {
            for (r, a) in layout.exposure_coefs(c) {
                rows[r].add_mul(a, *e);
            }
        }
    }
    for (a, &f) in layout.arcs.iter().zip(&arcs) {
        rows[a.balance].add_mul(-1.0, f);
        for r in a.stock_rows() {
            rows[r].add_mul(1.0, f);
        }
        if let Some(l) = a.lane_row {
            rows[l].add_mul(1.0, f);
        }
    }
    for (b, u) in unmet.iter().enumerate() {
        if let Some(u) = *u {
            rows[b].add_mul(-1.0, u);
        }
    }

    if vars.is_empty() {
        // Nothing to decide (no candidate, no baseline): the empty plan is the optimum.
        let flows = layout.arcs.iter().map(|a| a.flow(0.0)).collect();
        return Ok(Some((Repaired { objective: 0.0, flows, unmet: vec![0.0; problem.baseline.len()] }, vec![0.0; cells.len()])));
    }
    // A soft row's slack, paid at its penalty (after every column read back by position).
    for (row, penalty) in layout.soft_rows() {
        let s = vars.add(variable().min(0.0));
        objective.add_mul(-penalty, s);
        rows[row].add_mul(-1.0, s);
    }
    let columns = vars.len();
    let mut model = vars.maximise(objective).using(highs);
    let mut n_rows = 0;
    for (e, mut sum) in exposure_sums.into_iter().flatten() {
        sum.add_mul(-1.0, e);
        model.add_constraint(sum.eq(0.0));
        n_rows += 1;
    }
    for (at, family) in layout.families() {
        for (r, e) in rows.drain(..family.rows()).enumerate() {
            let rhs = ctx.rhs[at + r];
            if !rhs.is_finite() {
                continue;
            }
            model.add_constraint(match family.sense() {
                Sense::Eq => e.eq(rhs),
                Sense::Le => e.leq(rhs),
            });
            n_rows += 1;
        }
    }
    let solved = match lp_backend::run(model, columns, n_rows, &Settings::default()) {
        Ok(solved) => solved,
        Err(lp_backend::SolveError::Infeasible(_)) => return Ok(None),
        Err(e) => return Err(DecomposedError::Repair(e.to_string())),
    };
    // Columns in creation order: the used cells' scales, the arcs, the unmet
    // baseline, then the exposure aggregates (not needed here).
    let mut values = solved.columns.iter().copied();
    let s_of: Vec<f64> = scale.iter().map(|v| v.map_or(0.0, |_| values.next().unwrap_or(0.0).clamp(0.0, 1.0))).collect();
    let flows = layout
        .arcs
        .iter()
        .zip(&arcs)
        .map(|(a, _)| a.flow(values.next().unwrap_or(0.0).max(0.0)))
        .collect();
    // Unmet baseline per balance row, spread over the baseline rows of that (zone, SKU, bucket).
    let mut left: Vec<f64> = unmet.iter().map(|u| u.map_or(0.0, |_| values.next().unwrap_or(0.0).max(0.0))).collect();
    let mut unmet_rows = vec![0.0; problem.baseline.len()];
    for (i, b) in problem.baseline.iter().enumerate() {
        if b.units > 0.0 {
            let row = layout.balance.baseline_row(b).expect("a baseline row with units has a balance row");
            let take = left[row].min(b.units);
            unmet_rows[i] = take;
            left[row] -= take;
        }
    }
    Ok(Some((Repaired { objective: solved.objective, flows, unmet: unmet_rows }, s_of)))
}
