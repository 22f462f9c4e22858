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

use good_lp::solvers::highs::highs;
use good_lp::{variable, Expression, ProblemVariables, Solution, SolverModel, Variable};
use rayon::prelude::*;

use super::{Context, DecomposedError, RepairFlow};

/// A repaired plan's network side and objective (exposures are returned beside it).
#[derive(Debug, Clone)]
pub struct Repaired {
    /// The spec's objective of the repaired plan.
    pub objective: f64,
    /// Shipments per arc (zero ones included).
    pub flows: Vec<RepairFlow>,
    /// Unmet baseline per row of `Problem::baseline`.
    pub unmet: Vec<f64>,
}

/// Sums of the smoothed response over one cell.
#[derive(Debug, Clone, Copy, Default)]
struct CellSums {
    value: f64,
    accepts: f64,
    exposure: f64,
}

/// Most blocks of customers whose cell sums are kept apart before reduction:
/// a fixed count keeps memory bounded and the sums' order deterministic.
const REDUCE_BLOCKS: usize = 64;

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

/// Repairs two candidate responses at multipliers `nu` and keeps the better plan:
/// `average` (the averaged smoothed responses, nearly feasible) and a *generous*
/// response (every candidate whose reduced value is above `-GENEROUS_MARGIN` of
/// its value, up to the cap), which the banded cells can only trim, so the LP
/// places the threshold where the exact optimum would.
pub(super) fn repair(ctx: &Context, average: &[f32], nu: &[f64], epsilon: f64) -> Result<(Repaired, Vec<f64>), DecomposedError> {
    let problem = ctx.problem;
    let cands = ctx.cands;
    let cp = &ctx.coupling;
    let (zones, slots) = (cp.zones, cp.slots);
    let prices = ctx.cell_prices(nu, epsilon);
    let input = ctx.input();
    let cust = &problem.customers;
    // Cell of each candidate, (offer, zone, slot, band), and the generous response.
    let (cell, generous): (Vec<u32>, Vec<f32>) = (0..cust.len())
        .into_par_iter()
        .flat_map_iter(|c| {
            let (mut reduced, mut gamma, mut breaks, mut x) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            super::kernel::reduced_values(&input, &prices, c, &mut reduced, &mut gamma);
            let cells: Vec<u32> = cands
                .of_customer(c as u32)
                .zip(reduced.iter().zip(&gamma))
                .map(|(k, (&r, &g))| {
                    let o = cands.offer[k] as usize;
                    (((o * zones + cust.zone[c] as usize) * slots + ctx.slot[c] as usize) * BANDS + band(r, g, epsilon)) as u32
                })
                .collect();
            // Shift by the margin, with a ridge far below it: nearly 0/1, up to the cap.
            for (r, ig) in reduced.iter_mut().zip(gamma.iter_mut()) {
                let value = 1.0 / (*ig * epsilon);
                *r += GENEROUS_MARGIN * value;
                *ig = 1.0 / (1e-3 * GENEROUS_MARGIN * value.max(1e-9));
            }
            super::kernel::smoothed_response(&reduced, &gamma, input.cap[c], &mut breaks, &mut x);
            cells.into_iter().zip(x.into_iter().map(|v| v as f32))
        })
        .unzip();
    let (a, a_scales) = master(ctx, average, &cell)?;
    let (b, b_scales) = master(ctx, &generous, &cell)?;
    let (plan, xhat, scales) = if b.objective > a.objective { (b, generous.as_slice(), b_scales) } else { (a, average, a_scales) };
    // The plan's exposures: each response value scaled by its cell's factor.
    let x = (0..xhat.len())
        .into_par_iter()
        .map(|k| if xhat[k] > 0.0 { f64::from(xhat[k]) * scales[cell[k] as usize] } else { 0.0 })
        .collect();
    Ok((plan, x))
}

/// The repair LP over cell scales for the exposures `xhat`; returns the plan's
/// network side and the scale of every cell.
fn master(ctx: &Context, xhat: &[f32], cell: &[u32]) -> Result<(Repaired, Vec<f64>), DecomposedError> {
    let problem = ctx.problem;
    let cands = ctx.cands;
    let cp = &ctx.coupling;
    let (zones, slots) = (cp.zones, cp.slots);
    let cust = &problem.customers;
    let cell_of = |_c: usize, k: usize| cell[k] as usize;
    let n_cells = problem.offers.len() * zones * slots * BANDS;
    let block = cust.len().div_ceil(REDUCE_BLOCKS).max(1);
    let blocks: Vec<Vec<CellSums>> = (0..cust.len().div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let mut sums = vec![CellSums::default(); n_cells];
            for c in b * block..((b + 1) * block).min(cust.len()) {
                for k in cands.of_customer(c as u32) {
                    let x = f64::from(xhat[k]);
                    if x > 0.0 {
                        let p = cands.p[k];
                        let cell = &mut sums[cell_of(c, k)];
                        cell.value += ctx.weight[c] * ctx.margin[cands.offer[k] as usize] * p * x;
                        cell.accepts += p * x;
                        cell.exposure += x;
                    }
                }
            }
            sums
        })
        .collect();
    let mut cells = vec![CellSums::default(); n_cells];
    for b in &blocks {
        for (t, s) in cells.iter_mut().zip(b) {
            t.value += s.value;
            t.accepts += s.accepts;
            t.exposure += s.exposure;
        }
    }
    drop(blocks);

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
