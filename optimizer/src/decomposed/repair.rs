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
//! `s = 0` with all baseline unmet is always feasible, so the repair always succeeds.

use std::ops::Range;

use good_lp::solvers::highs::highs;
use good_lp::{variable, Expression, ProblemVariables, Solution, SolverModel, Variable};
use serde::{Deserialize, Serialize};

use super::customers::{CustomerSide, MapReply, MapRequest};
use super::kernel::{CellPrices, KernelInput};
use super::{Context, DecomposedError, RepairFlow};

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

/// Sums of a response over one cell: all the repair LP needs of the customers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CellSums {
    value: f64,
    accepts: f64,
    exposure: f64,
}

impl CellSums {
    pub(super) fn add(&mut self, other: &CellSums) {
        self.value += other.value;
        self.accepts += other.accepts;
        self.exposure += other.exposure;
    }
}

/// Bands of a candidate's reduced value relative to its value at the current
/// prices: cells split by band let the repair drop the marginal customers of an
/// offer first, as the exact optimum would, instead of scaling all of them.
const BAND_EDGES: [f64; 13] = [-0.5, -0.2, -0.05, -0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02, 0.05, 0.2, 0.5];
const BANDS: usize = BAND_EDGES.len() + 1;

fn band(reduced: f64, inv_gamma: f64, epsilon: f64) -> usize {
    // gamma = epsilon * value, so reduced / value = reduced * epsilon / gamma.
    let relative = reduced * epsilon * inv_gamma;
    BAND_EDGES.iter().take_while(|&&e| relative > e).count()
}

/// How far below zero (relative to its value) a candidate's reduced value may be
/// and still be offered in full by the generous response.
const GENEROUS_MARGIN: f64 = 0.01;

/// Number of cells (offer, zone, slot, band) at these prices.
pub(super) fn cell_count(input: &KernelInput, prices: &CellPrices) -> usize {
    prices.per_exposure.len() * input.zones * BANDS
}

/// Reusable buffers of [`cells_and_generous`].
#[derive(Debug, Default)]
pub(super) struct RepairScratch {
    reduced: Vec<f64>,
    gamma: Vec<f64>,
    breaks: Vec<f64>,
    x: Vec<f64>,
}

/// Customer `c`'s candidates: their cells (offer, zone, slot, band) and the
/// *generous* response (every candidate whose reduced value is above
/// `-GENEROUS_MARGIN` of its value, up to the cap), which the banded cells can
/// only trim, so the LP places the threshold where the exact optimum would.
pub(super) fn cells_and_generous(
    input: &KernelInput,
    prices: &CellPrices,
    c: usize,
    cell: &mut [u32],
    generous: &mut [f32],
    s: &mut RepairScratch,
) {
    let (zones, slots) = (input.zones, input.slots);
    super::kernel::reduced_values(input, prices, c, &mut s.reduced, &mut s.gamma);
    let epsilon = prices.epsilon;
    let first = input.customer_start[c] as usize;
    for (i, (&r, &g)) in s.reduced.iter().zip(&s.gamma).enumerate() {
        let o = input.offer[first + i] as usize;
        cell[i] = (((o * zones + input.zone[c] as usize) * slots + input.slot[c] as usize) * BANDS + band(r, g, epsilon)) as u32;
    }
    // Shift by the margin, with a ridge far below it: nearly 0/1, up to the cap.
    for (r, ig) in s.reduced.iter_mut().zip(s.gamma.iter_mut()) {
        let value = 1.0 / (*ig * epsilon);
        *r += GENEROUS_MARGIN * value;
        *ig = 1.0 / (1e-3 * GENEROUS_MARGIN * value.max(1e-9));
    }
    super::kernel::smoothed_response(&s.reduced, &s.gamma, input.cap[c], &mut s.breaks, &mut s.x);
    for (g, &x) in generous.iter_mut().zip(&s.x) {
        *g = x as f32;
    }
}

/// Sums of the response `xhat` (indexed from candidate `first`) over the cells of
/// `customers`' candidates.
pub(super) fn cell_sums(input: &KernelInput, customers: Range<usize>, first: usize, xhat: &[f32], cell: &[u32], n_cells: usize) -> Vec<CellSums> {
    let mut sums = vec![CellSums::default(); n_cells];
    for c in customers {
        for k in input.customer_start[c] as usize..input.customer_start[c + 1] as usize {
            let x = f64::from(xhat[k - first]);
            if x > 0.0 {
                let p = input.p[k];
                let cell = &mut sums[cell[k - first] as usize];
                cell.value += input.weight[c] * input.margin[input.offer[k] as usize] * p * x;
                cell.accepts += p * x;
                cell.exposure += x;
            }
        }
    }
    sums
}

/// The repair at multipliers `nu`: cell sums of the averaged and the generous
/// responses from the customers' side, one LP for each, and the better plan.
/// Returns the plan, whether it scales the generous response, and the cell scales
/// (for [`MapRequest::Keep`]).
pub(super) fn repair(ctx: &Context, side: &mut dyn CustomerSide, nu: &[f64], epsilon: f64) -> Result<(Repaired, bool, Vec<f64>), DecomposedError> {
    let prices = ctx.cell_prices(nu, epsilon);
    let n_cells = ctx.problem.offers.len() * ctx.coupling.zones * ctx.coupling.slots * BANDS;
    let MapReply::RepairCells { average, generous } = MapReply::merge(side.map(&MapRequest::RepairCells { prices })?)? else {
        return Err(DecomposedError::Workers("a partition answered the repair with another reply".into()));
    };
    if average.len() != n_cells || generous.len() != n_cells {
        return Err(DecomposedError::Workers(format!("the partitions sent {} cells where {n_cells} were expected", average.len())));
    }
    let (a, a_scales) = master(ctx, &average)?;
    let (b, b_scales) = master(ctx, &generous)?;
    Ok(if b.objective > a.objective { (b, true, b_scales) } else { (a, false, a_scales) })
}

/// The repair LP over cell scales for a response with these cell sums; returns
/// the plan's network side and the scale of every cell.
fn master(ctx: &Context, cells: &[CellSums]) -> Result<(Repaired, Vec<f64>), DecomposedError> {
    let problem = ctx.problem;
    let cp = &ctx.coupling;
    let (zones, slots) = (cp.zones, cp.slots);

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
    let arcs: Vec<Variable> = cp
        .arcs
        .iter()
        .map(|a| {
            let v = vars.add(variable().min(0.0).max(a.upper));
            objective.add_mul(-a.cost, v);
            v
        })
        .collect();
    let penalty = problem.policy.unmet_baseline_penalty;
    let unmet: Vec<Option<Variable>> = cp
        .balance
        .iter()
        .map(|&(_, _, units)| {
            (units > 0.0).then(|| {
                let v = vars.add(variable().min(0.0).max(units));
                objective.add_mul(-penalty, v);
                v
            })
        })
        .collect();
    let fair_pairs: Vec<(usize, usize)> = {
        let mut pairs: Vec<(usize, usize)> = cp.fairness.iter().flat_map(|&(o, g, h)| [(o as usize, g as usize), (o as usize, h as usize)]).collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    };
    let rates: Vec<Variable> = fair_pairs.iter().map(|_| vars.add(variable().min(0.0))).collect();

    let mut balance: Vec<Expression> = cp.balance.iter().map(|_| Expression::default()).collect();
    let mut stock: Vec<Expression> = cp.stock.iter().map(|_| Expression::default()).collect();
    let mut lanes: Vec<Expression> = cp.lanes.iter().map(|_| Expression::default()).collect();
    let mut budget = Expression::default();
    let mut redemptions: Vec<Expression> = cp.redemptions.iter().map(|_| Expression::default()).collect();
    let mut delivery: Vec<Expression> = cp.delivery.iter().map(|_| Expression::default()).collect();
    let mut rate_sums: Vec<Expression> = fair_pairs.iter().map(|_| Expression::default()).collect();
    let red_row: std::collections::HashMap<u32, usize> = cp.redemptions.iter().enumerate().map(|(i, &o)| (o, i)).collect();
    let del_row: std::collections::HashMap<u32, usize> = cp.delivery.iter().enumerate().map(|(i, &z)| (z, i)).collect();
    for (i, (cell, var)) in cells.iter().zip(&scale).enumerate() {
        let Some(s) = *var else { continue };
        let slot = (i / BANDS) % slots;
        let o = i / (BANDS * slots * zones);
        let z = (i / (BANDS * slots)) % zones;
        let offer = &problem.offers[o];
        for item in &offer.items {
            let b = cp.balance_of[&(z as u32, item.sku)];
            balance[b].add_mul(-item.qty * cell.accepts, s);
        }
        if cp.budget.is_some() && offer.discount_cost != 0.0 {
            budget.add_mul(offer.discount_cost * cell.accepts, s);
        }
        if let Some(&r) = red_row.get(&(o as u32)) {
            redemptions[r].add_mul(cell.accepts, s);
        }
        if let Some(&d) = del_row.get(&(z as u32)) {
            delivery[d].add_mul(cell.accepts, s);
        }
        if let Ok(f) = fair_pairs.binary_search(&(o, slot)) {
            rate_sums[f].add_mul(cell.exposure / cp.slot_size[o * slots + slot], s);
        }
    }
    for (a, &f) in cp.arcs.iter().zip(&arcs) {
        balance[a.balance].add_mul(1.0, f);
        stock[a.stock].add_mul(1.0, f);
        if let Some(l) = a.lane_row {
            lanes[l].add_mul(1.0, f);
        }
    }
    for (b, u) in unmet.iter().enumerate() {
        if let Some(u) = *u {
            balance[b].add_mul(1.0, u);
        }
    }

    if vars.is_empty() {
        // Nothing to decide (no candidate, no baseline): the empty plan is the optimum.
        let flows = cp.arcs.iter().map(|a| RepairFlow { lane: a.lane, sku: a.sku, units: 0.0 }).collect();
        return Ok((Repaired { objective: 0.0, flows, unmet: vec![0.0; problem.baseline.len()] }, vec![0.0; cells.len()]));
    }
    let mut model = vars.maximise(objective.clone()).using(highs);
    model.set_verbose(false);
    for (b, e) in balance.into_iter().enumerate() {
        model.add_constraint(e.eq(cp.balance[b].2));
    }
    for (i, e) in stock.into_iter().enumerate() {
        model.add_constraint(e.leq(problem.stock[cp.stock[i]].available()));
    }
    for (i, e) in lanes.into_iter().enumerate() {
        let cap = problem.lanes[cp.lanes[i] as usize].capacity.unwrap_or(f64::INFINITY);
        model.add_constraint(e.leq(cap));
    }
    if let Some(b) = cp.budget {
        model.add_constraint(budget.leq(b));
    }
    for (i, e) in redemptions.into_iter().enumerate() {
        let cap = problem.offers[cp.redemptions[i] as usize].max_redemptions.unwrap_or(f64::INFINITY);
        model.add_constraint(e.leq(cap));
    }
    for (i, e) in delivery.into_iter().enumerate() {
        let cap = problem.zones[cp.delivery[i] as usize].delivery_capacity.unwrap_or(f64::INFINITY);
        model.add_constraint(e.leq(cap));
    }
    for (e, &r) in rate_sums.into_iter().zip(&rates) {
        model.add_constraint((e - r).eq(0.0));
    }
    for &(o, g, h) in &cp.fairness {
        let rg = rates[fair_pairs.binary_search(&(o as usize, g as usize)).expect("rate")];
        let rh = rates[fair_pairs.binary_search(&(o as usize, h as usize)).expect("rate")];
        model.add_constraint((rg - cp.ratio * rh).geq(0.0));
    }
    let solution = model.solve().map_err(|e| DecomposedError::Repair(e.to_string()))?;
    let s_of: Vec<f64> = scale.iter().map(|v| v.map_or(0.0, |v| solution.value(v).clamp(0.0, 1.0))).collect();
    let flows = cp
        .arcs
        .iter()
        .zip(&arcs)
        .map(|(a, &f)| RepairFlow { lane: a.lane, sku: a.sku, units: solution.value(f).max(0.0) })
        .collect();
    // Unmet baseline per balance row, spread over the baseline rows of that (zone, SKU).
    let mut left: Vec<f64> = unmet.iter().map(|u| u.map_or(0.0, |u| solution.value(u).max(0.0))).collect();
    let mut unmet_rows = vec![0.0; problem.baseline.len()];
    for (i, b) in problem.baseline.iter().enumerate() {
        if b.units > 0.0 {
            let row = cp.balance_of[&(b.zone, b.sku)];
            let take = left[row].min(b.units);
            unmet_rows[i] = take;
            left[row] -= take;
        }
    }
    let objective = solution.eval(&objective);
    Ok((Repaired { objective, flows, unmet: unmet_rows }, s_of))
}
