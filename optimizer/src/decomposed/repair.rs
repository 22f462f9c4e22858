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
use rayon::prelude::*;

use super::cells::{CellParts, CellSums, BANDS, GENEROUS_MARGINS};
use super::context::Context;
use super::customers::{CustomerSide, MapReply, MapRequest, Mix};
use super::error::DecomposedError;
use super::kernel::CellPrices;
use crate::allocation::Flow as RepairFlow;
use crate::families::Sense;
use crate::lp_backend::{self, Interrupt, Settings};

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

/// How much of a response a repair LP may take: up to a fixed share of it,
/// or up to a weight the LP chooses per customer group (zone and fairness
/// slot), a group's weights adding up to at most 1.
/// Either way the plan is below a convex combination of responses that each
/// keep every customer's own rules (bounds, contact cap, policy rows), so it
/// keeps them too.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Share {
    Fixed(f64),
    Weighted,
}

/// Most cells (over all responses) for which the repair mixes the responses
/// with weights of the LP's choosing (the convex hull: a row `scale <= weight`
/// per cell), and most simplex iterations it may take; beyond either, fixed
/// shares ([`KEPT_SHARES`], bounds only). Why: at `allot generate`'s
/// defaults (20 offers, 5 zones) the hull LP takes a fraction of a second and
/// certifies more families than fixed shares (10,000 customers: tight stock
/// 8.1e-4 against 1.7e-3, many candidates 9.9e-4 against 1.7e-3), but on a
/// cold-started MIP (5,000 customers, 40 offers, 20 zones, 8,000 cells) it
/// took 8-18 s a repair where the plain LPs take well under one. An
/// iteration limit, not a time limit, so that a solve is reproducible.
const HULL_MAX_CELLS: usize = 20_000;

/// The hull LP's simplex iteration limit: one iteration per
/// [`HULL_PAIRS_PER_ITERATION`] candidate pairs, within
/// [`HULL_MIN_ITERATIONS`, `HULL_MAX_ITERATIONS`]. Why it grows with the
/// pairs: the LP's size depends on the cells and the network, not on the
/// customers, while a window of pricing costs time in proportion to the
/// pairs, so a large scenario can afford a hull LP that takes longer. Measured
/// on `allot bench`'s scenarios (40 offers, 300 SKUs, 20 zones; 30,000
/// customers without budget, 190,000 pairs, about 12,000 cells): 5,000
/// iterations never solved the hull LP and the plan stalled 3.6e-3 short of
/// the optimum on the offers' value; 50,000 solved every one (about 4 s
/// each) and the plan came within 5.4e-4.
fn hull_iteration_limit(pairs: usize) -> u32 {
    (pairs / HULL_PAIRS_PER_ITERATION).clamp(HULL_MIN_ITERATIONS, HULL_MAX_ITERATIONS) as u32
}
const HULL_PAIRS_PER_ITERATION: usize = 4;
const HULL_MIN_ITERATIONS: usize = 5_000;
const HULL_MAX_ITERATIONS: usize = 200_000;

/// Shares of the kept plan tried in a mix with the best new response (the
/// response gets the rest) when the hull is too large.
const KEPT_SHARES: [f64; 3] = [0.25, 0.5, 0.75];

/// The repair at multipliers `nu`: cell sums of the averaged response, of a
/// generous response per margin of [`GENEROUS_MARGINS`] and of the kept plan
/// (the best so far) from the customers' side, and LPs that mix them.
///
/// With `hull_from` (the first repair of a phase that goes on for a full
/// window) and no kept plan, each margin's generous response alone first,
/// at fixed shares (a small LP with bounds only: a tenth of a hull LP's
/// time or less); when the best of those is below that objective, it is
/// the repair: the hull's mix cannot certify from there, and the window's
/// iterations serve the next repair better (see `HULL_REACH` in the module
/// above).
///
/// With `one_hull` (a phase's first repair with a short window to follow,
/// at scale) and no kept plan, each margin's generous response alone
/// first, as above, and then only the hull of the margin whose response
/// alone is best; the other margins' responses count alone (the average
/// is in that hull). Why: the
/// margins' hulls run at once, one core each, and the one that loses can
/// take several times as long (1M customers of `allot generate`'s LP:
/// 0.41 s for the narrow margin's 7.250934e6, 1.89 s for the wide one's
/// 7.234535e6, the second core idle the rest of the time). With a kept
/// plan (a window's repair) the wide margin's hull can win, and both run.
///
/// Else, per margin, the three with weights of the LP's choosing when that LP
/// is small ([`HULL_MAX_CELLS`]; the narrowest margin's alone when its plan
/// reaches `certifies_from`, the objective from which the run's target is
/// certified: at 100,000 customers of `allot bench`'s LP the window's two
/// hulls took 1.04 s, the narrow one certifying, and 1.73 s for a worse
/// plan); beyond it each response alone, then the
/// best of those with the kept plan at each of [`KEPT_SHARES`]. A hull's
/// simplex starts from the better of the kept plan alone and the margin's
/// generous response alone (both solved first when a plan is kept; without
/// one, from the generous response). Why choose: the kept plan is the best
/// start after a window, but after a large change (a warm re-plan's earlier
/// plan, scaled, 1e-2 of the offers' value short) the primal simplex took
/// longer from it than the dual simplex from scratch. The margins'
/// LPs run at once (rayon). Why mix: a customer's contact slot that one
/// scaled-down offer frees is refilled only by another response, and the
/// plan keeps what earlier repairs found. Returns the best plan and its
/// [`Mix`] (for [`MapRequest::Keep`]), which names the margin of the
/// generous response it scales (the customers' side holds every margin's:
/// one pass over the candidates computes them all, where a pass per margin,
/// and another for the chosen one when it was not the last, took 0.6 to
/// 0.9 s of a first repair at 1M customers).
#[allow(clippy::too_many_arguments)]
pub(super) fn repair(
    ctx: &Context,
    side: &mut dyn CustomerSide,
    nu: &[f64],
    epsilon: f64,
    hull_from: Option<f64>,
    one_hull: bool,
    certifies_from: f64,
) -> Result<Option<(Repaired, Mix)>, DecomposedError> {
    let prices = ctx.cell_prices(nu, epsilon);
    let used = |cells: &[CellSums]| cells.iter().filter(|c| c.exposure > 0.0).count();
    // (plan, the index in GENEROUS_MARGINS of its generous response's margin, its mix)
    let mut best: Option<(Repaired, usize, Mix)> = None;
    let consider = |best: &mut Option<(Repaired, usize, Mix)>, plan: Repaired, margin: usize, mix: Mix| {
        if best.as_ref().is_none_or(|b| plan.objective > b.0.objective) {
            *best = Some((plan, margin, mix));
        }
    };
    // A response alone at fixed shares: the plan is considered, and noted
    // as the best response alone (its margin's index, whether it is the
    // average) when it is the best plan so far.
    let take_alone = |best: &mut Option<(Repaired, usize, Mix)>, alone: &mut Option<(usize, bool)>, i: usize, is_average: bool, solved: Option<(Repaired, Vec<Vec<f64>>)>| {
        if let Some((plan, mut scales)) = solved {
            let scales = scales.pop().unwrap_or_default();
            let mix = if is_average { Mix { average: scales, ..Mix::default() } } else { Mix { generous: scales, ..Mix::default() } };
            if best.as_ref().is_none_or(|b| plan.objective > b.0.objective) {
                *alone = Some((i, is_average));
            }
            consider(best, plan, i, mix);
        }
    };
    let mut alone: Option<(usize, bool)> = None;
    let sums = repair_cells(ctx, side, &prices)?;
    let nothing_kept = sums.iter().all(|[_, _, kept]| used(kept) == 0);
    // Each generous response alone first, every margin at once: where the
    // hull may be skipped (`hull_from`, nothing kept), and beside the kept
    // plan alone, when there is one, to pick the response each hull's
    // simplex starts from (the better alone).
    let screened = hull_from.is_some() && nothing_kept;
    let one_hull = one_hull && nothing_kept && !screened;
    let generous_alone = screened || !nothing_kept || one_hull;
    let mut generous_objective = vec![f64::NEG_INFINITY; GENEROUS_MARGINS.len()];
    let mut kept_objective = f64::NEG_INFINITY;
    // Solved only to choose a start: taken below where a hull is too large,
    // as if solved there.
    let mut generous_solved: Vec<Option<Option<(Repaired, Vec<Vec<f64>>)>>> = GENEROUS_MARGINS.iter().map(|_| None).collect();
    if generous_alone {
        // The kept plan's cells depend on the prices, not on the margin.
        let kept_cells = (!nothing_kept).then(|| sums[0][2].as_slice());
        let alone_cells: Vec<&[CellSums]> = sums.iter().map(|[_, generous, _]| generous.as_slice()).chain(kept_cells).collect();
        let mut plans = alone_cells.par_iter().map(|cells| master(ctx, &[(cells, Share::Fixed(1.0))], None, None)).collect::<Result<Vec<_>, DecomposedError>>()?.into_iter();
        for (i, solved) in plans.by_ref().take(GENEROUS_MARGINS.len()).enumerate() {
            generous_objective[i] = solved.as_ref().map_or(f64::NEG_INFINITY, |(plan, _)| plan.objective);
            if screened {
                take_alone(&mut best, &mut alone, i, false, solved);
            } else {
                generous_solved[i] = Some(solved);
            }
        }
        // The kept plan alone needs no considering: each hull holds it.
        kept_objective = plans.next().flatten().map_or(f64::NEG_INFINITY, |(plan, _)| plan.objective);
    }
    let alone_objective = best.as_ref().map(|b| b.0.objective);
    let hull_margin = one_hull.then(|| best_alone(&generous_objective));
    let mut kept: &[CellSums] = &[];
    if hull_may_pay(hull_from, alone_objective, nothing_kept) {
        // The hull LPs of every margin at once: HiGHS's simplex runs on one
        // thread, and at scale these LPs are most of a repair's time. The
        // narrowest margin's hull, when its plan certifies the target
        // (`certifies_from`), is the repair: the others are stopped and not
        // taken, whether or not they finished first (the plan does not
        // depend on the threads).
        let stop = Interrupt::default();
        let certifies = |(plan, _): &(Repaired, Vec<Vec<f64>>)| plan.objective >= certifies_from;
        let hulls = sums
            .par_iter()
            .zip(&generous_objective)
            .enumerate()
            .map(|(i, ([average, generous, kept_cells], &generous_objective))| {
                if used(average) + used(generous) + used(kept_cells) > HULL_MAX_CELLS || hull_margin.is_some_and(|m| m != i) {
                    return Ok(None);
                }
                // The simplex starts from the kept plan alone when it is at
                // least as good as the generous response alone, else from that
                // response (the average alone was the worst of the three on
                // every repair measured).
                let start = if used(kept_cells) > 0 && kept_objective >= generous_objective { 2 } else { 1 };
                let solved = master(ctx, &[(average, Share::Weighted), (generous, Share::Weighted), (kept_cells, Share::Weighted)], Some(start), (i > 0).then_some(&stop))?;
                if i == 0 && hull_margin.is_none() && solved.as_ref().is_some_and(certifies) {
                    stop.set();
                }
                Ok(solved)
            })
            .collect::<Vec<Result<_, DecomposedError>>>();
        // With one hull, the others' responses alone still count.
        let hulls = hulls_taken(hulls, hull_margin.is_none(), certifies)?;
        // The one hull solved holds the average: it is not solved alone too.
        let one_hull_solved = hull_margin.is_some() && hulls.iter().any(Option::is_some);
        for (i, ([average, generous, kept_cells], hull)) in sums.iter().zip(hulls).enumerate() {
            if let Some((plan, scales)) = hull {
                let [average, generous, kept] = scales.try_into().unwrap_or_default();
                consider(&mut best, plan, i, Mix { average, generous, kept, ..Mix::default() });
                continue;
            }
            // The average does not depend on the margin: its LP once; a
            // generous response screened above is not taken again, one
            // solved above to choose a start is taken as solved.
            if i == 0 && !one_hull_solved {
                take_alone(&mut best, &mut alone, i, true, master(ctx, &[(average, Share::Fixed(1.0))], None, None)?);
            }
            if !screened {
                let solved = match generous_solved[i].take() {
                    Some(solved) => solved,
                    None => master(ctx, &[(generous, Share::Fixed(1.0))], None, None)?,
                };
                take_alone(&mut best, &mut alone, i, false, solved);
            }
            kept = kept_cells;
        }
    }
    if let Some((i, is_average)) = alone.filter(|_| used(kept) > 0) {
        let [average, generous, _] = &sums[i];
        let cells = if is_average { average } else { generous };
        for share in KEPT_SHARES {
            if let Some((plan, mut scales)) = master(ctx, &[(cells, Share::Fixed(1.0 - share)), (kept, Share::Fixed(share))], None, None)? {
                let kept = scales.pop().unwrap_or_default();
                let response = scales.pop().unwrap_or_default();
                let mix = if is_average { Mix { average: response, kept, ..Mix::default() } } else { Mix { generous: response, kept, ..Mix::default() } };
                consider(&mut best, plan, i, mix);
            }
        }
    }
    // The customers' side keeps every margin's generous response: the mix names its own.
    Ok(best.map(|(plan, margin, mix)| (plan, Mix { margin, ..mix })))
}

/// The margin whose generous response alone made the best plan (the first
/// of equals): with `one_hull`, the one margin whose hull LP a first
/// repair solves.
fn best_alone(objectives: &[f64]) -> usize {
    (0..objectives.len()).fold(0, |best, i| if objectives[i] > objectives[best] { i } else { best })
}

/// Whether a repair solves its hull LPs, given the best response alone's
/// objective (`None`: no response alone keeps the hard minimums): always
/// without `hull_from`, with a kept plan (an earlier repair's, or a warm
/// re-plan's earlier plan: what the hull mixes best with a new response, by
/// up to 1e-3 of the offers' value on the warm re-plans of
/// tests/decomposed.rs) or when no response alone is a plan; else only from
/// `hull_from` up.
fn hull_may_pay(hull_from: Option<f64>, best_alone: Option<f64>, nothing_kept: bool) -> bool {
    !nothing_kept || hull_from.zip(best_alone).is_none_or(|(from, alone)| alone >= from)
}

/// The cell sums at `prices`, per margin of [`GENEROUS_MARGINS`]: of the
/// averaged response, of the generous response at that margin and of the
/// kept plan, from the customers' side (one pass over the candidates for
/// every margin; the average and the kept plan are the same in each).
fn repair_cells(ctx: &Context, side: &mut dyn CustomerSide, prices: &CellPrices) -> Result<Vec<[Vec<CellSums>; 3]>, DecomposedError> {
    let n_cells = ctx.problem.offers.len() * ctx.layout.zones * ctx.layout.slots * BANDS;
    let MapReply::RepairCells { average, generous, kept } = MapReply::merge(side.map(&MapRequest::RepairCells { prices: prices.clone() })?)? else {
        return Err(DecomposedError::Workers("a partition answered the repair with another reply".into()));
    };
    if generous.len() != GENEROUS_MARGINS.len() || [&average, &kept].into_iter().chain(&generous).any(|sums| sums.len() != n_cells) {
        return Err(DecomposedError::Workers(format!("the partitions sent {} cells and {} margins where {n_cells} and {} were expected", average.len(), generous.len(), GENEROUS_MARGINS.len())));
    }
    Ok(generous.into_iter().map(|generous| [average.clone(), generous, kept.clone()]).collect())
}

/// The kept plan alone (a warm re-plan's earlier plan), each of its cells
/// at `nu` scaled within [0, 1] by one LP so that every coupling row holds,
/// and routed. Why: after a small change that plan, scaled to the changed
/// limits, is often within the target already, and this LP has one column
/// per used cell where [`repair`]'s mixes have three (at 1M customers,
/// 0.04 s against 2.5-6 s). Returns the plan and its [`Mix`] (for
/// [`MapRequest::Keep`]); `None` when nothing is kept or no scaling meets
/// the hard lower bounds.
pub(super) fn repair_kept(ctx: &Context, side: &mut dyn CustomerSide, nu: &[f64], epsilon: f64) -> Result<Option<(Repaired, Mix)>, DecomposedError> {
    let prices = ctx.cell_prices(nu, epsilon);
    let [_, _, kept] = repair_cells(ctx, side, &prices)?.swap_remove(0);
    if kept.iter().all(|c| c.exposure <= 0.0) {
        return Ok(None);
    }
    Ok(master(ctx, &[(&kept, Share::Fixed(1.0))], None, None)?.map(|(plan, mut scales)| (plan, Mix { kept: scales.pop().unwrap_or_default(), ..Mix::default() })))
}

/// The margins' hull results a repair goes on with, narrowest margin
/// first: all of them, unless every margin's hull ran (`all_ran`) and the
/// narrowest one's plan `certifies`; then that one alone, so that the wider
/// ones (stopped, failed, or finished first with a plan that does not
/// certify more) count for nothing, their responses alone included, and the
/// plan does not depend on which thread finished first.
fn hulls_taken<T, E>(hulls: Vec<Result<Option<T>, E>>, all_ran: bool, certifies: impl Fn(&T) -> bool) -> Result<Vec<Option<T>>, E> {
    let first_certifies = all_ran && matches!(hulls.first(), Some(Ok(Some(first))) if certifies(first));
    let taken = if first_certifies { 1 } else { hulls.len() };
    hulls.into_iter().take(taken).collect()
}

/// The repair LP over cell scales of one or more responses, each given by
/// its cell sums and [`Share`]: response `j`'s cells are scaled by
/// `s_j,cell in [0, share_j]`. Returns the plan's network side and every
/// response's cell scales. `None` when no such plan meets the hard lower
/// bounds, or, with weighted shares, when the LP is not solved within
/// [`hull_iteration_limit`]. With weighted shares and `start`, response
/// `start` alone is solved first and its plan starts the simplex on the
/// whole hull (see [`lp_backend::Settings::start_without`]), and `stop`
/// ends it early (`None` then, as for an unsolved hull): at 1M
/// customers of `allot bench`'s scenario a window's hull LPs took 1.2 s and
/// 0.85 s from the kept plan, 3.3 s and 4.2 s from scratch, and a first
/// repair's (from the generous response) 0.42 s against 1.7 s at the
/// narrow margin, 2.1 s against 2.2 s at the wide one.
fn master(ctx: &Context, responses: &[(&[CellSums], Share)], start: Option<usize>, stop: Option<&Interrupt>) -> Result<Option<(Repaired, Vec<Vec<f64>>)>, DecomposedError> {
    let problem = ctx.problem;
    let layout = &ctx.layout;
    let (zones, slots) = (layout.zones, layout.slots);
    let parts = |i: usize| CellParts::of(i, zones, slots);
    // A cell takes part when its response exposes someone there and its offer
    // is open (the kept plan of a phase before the custom offers were chosen
    // may expose an offer closed since: those exposures are dropped).
    let takes_part = |i: usize, cell: &CellSums| cell.exposure > 0.0 && !ctx.closed[parts(i).offer];

    // The LP.
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::default();
    let scales: Vec<Vec<Option<Variable>>> = responses
        .iter()
        .map(|&(cells, share)| {
            cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    takes_part(i, cell).then(|| {
                        let upper = match share {
                            Share::Fixed(share) => share,
                            Share::Weighted => 1.0,
                        };
                        let v = vars.add(variable().min(0.0).max(upper));
                        objective.add_mul(cell.value, v);
                        v
                    })
                })
                .collect()
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
    for (i, (cell, var)) in responses.iter().zip(&scales).flat_map(|((cells, _), scale)| cells.iter().zip(scale).enumerate()) {
        let Some(s) = *var else { continue };
        let CellParts { offer: o, zone: z, slot, .. } = parts(i);
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
        let scales = responses.iter().map(|(cells, _)| vec![0.0; cells.len()]).collect();
        return Ok(Some((Repaired { objective: 0.0, flows, unmet: vec![0.0; problem.baseline.len()] }, scales)));
    }
    // A soft row's slack, paid at its penalty (after every column read back by position).
    for (row, penalty) in layout.soft_rows() {
        let s = vars.add(variable().min(0.0));
        objective.add_mul(-penalty, s);
        rows[row].add_mul(-1.0, s);
    }
    // Each weighted response's weight per customer group (zone and fairness
    // slot, which every customer has one of), bounding its scales there; a
    // group's weights add up to at most 1. Per group, not one weight per
    // response: every customer's exposures are still below a convex
    // combination of responses, and a group whose limits moved (a demand
    // shock in one zone) can lean on another response than the rest.
    let groups = zones * slots;
    let group_of = |i: usize| parts(i).group;
    // The other responses' weights, by column, when `start` starts the simplex.
    let mut held = Vec::new();
    let weights: Vec<Vec<Option<Variable>>> = responses
        .iter()
        .zip(&scales)
        .enumerate()
        .map(|(j, ((_, share), scale))| {
            let mut used = vec![false; groups];
            if *share == Share::Weighted {
                scale.iter().enumerate().filter(|(_, s)| s.is_some()).for_each(|(i, _)| used[group_of(i)] = true);
            }
            let held_here = start.is_some_and(|start| start != j);
            used.into_iter()
                .map(|used| {
                    used.then(|| {
                        if held_here {
                            held.push(vars.len());
                        }
                        vars.add(variable().min(0.0).max(1.0))
                    })
                })
                .collect()
        })
        .collect();
    let columns = vars.len();
    let mut model = vars.maximise(objective).using(highs);
    let mut n_rows = 0;
    let hull = weights.iter().flatten().any(Option::is_some);
    if hull {
        for g in 0..groups {
            let total: Expression = weights.iter().filter_map(|w| w[g]).map(Expression::from).sum();
            model.add_constraint(total.leq(1.0));
            n_rows += 1;
        }
        for (scale, weight) in scales.iter().zip(&weights) {
            for (i, s) in scale.iter().enumerate() {
                if let (Some(s), Some(w)) = (*s, weight[group_of(i)]) {
                    model.add_constraint((s - w).leq(0.0));
                    n_rows += 1;
                }
            }
        }
    }
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
    let limit = ("simplex_iteration_limit".to_string(), hull_iteration_limit(ctx.cands.len()).to_string());
    let hull_options = [limit, lp_backend::option(lp_backend::UNSCALED)];
    let scaled = [lp_backend::option(lp_backend::SCALED)];
    let settings = if hull { Settings { options: &hull_options, retry: &scaled, start_without: &held, interrupt: stop, ..Settings::default() } } else { Settings::default() };
    let solved = match lp_backend::run(model, columns, n_rows, &settings) {
        Ok(solved) if hull && solved.status != crate::allocation::SolveStatus::Optimal => return Ok(None),
        Ok(solved) => solved,
        Err(lp_backend::SolveError::Infeasible(_)) => return Ok(None),
        Err(lp_backend::SolveError::NoSolution | lp_backend::SolveError::Interrupted) if hull => return Ok(None),
        Err(e) => return Err(DecomposedError::Repair(e.to_string())),
    };
    // Columns in creation order: the used cells' scales, the arcs, the unmet
    // baseline, then the exposure aggregates (not needed here).
    let mut values = solved.columns.iter().copied();
    let s_of: Vec<Vec<f64>> = scales.iter().map(|scale| scale.iter().map(|v| v.map_or(0.0, |_| values.next().unwrap_or(0.0).clamp(0.0, 1.0))).collect()).collect();
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

#[cfg(test)]
mod tests {
    use super::{best_alone, hull_may_pay, hulls_taken};

    #[test]
    fn the_hull_is_skipped_only_far_from_the_target_with_nothing_kept() {
        assert!(hull_may_pay(None, Some(1.0), true), "no screen: always");
        assert!(hull_may_pay(Some(100.0), Some(100.0), true), "a response alone within reach");
        assert!(!hull_may_pay(Some(100.0), Some(99.0), true), "out of reach, nothing kept");
        assert!(hull_may_pay(Some(100.0), Some(99.0), false), "a kept plan to mix with");
        assert!(hull_may_pay(Some(100.0), None, true), "no response alone keeps the hard minimums");
    }

    /// The hull a first repair solves alone is the margin whose response
    /// alone did best; a margin with no plan (`-inf`) never wins over one
    /// with a plan, and equals go to the first (the narrower margin).
    #[test]
    fn the_one_hull_is_the_best_response_alones_margin() {
        assert_eq!(best_alone(&[7.25e6, 7.23e6]), 0);
        assert_eq!(best_alone(&[7.23e6, 7.25e6]), 1);
        assert_eq!(best_alone(&[f64::NEG_INFINITY, 1.0]), 1);
        assert_eq!(best_alone(&[2.0, 2.0]), 0);
    }

    /// Once the narrowest margin's hull certifies, it is the repair whatever
    /// the wider hull did: a better plan it finished with, or its error, is
    /// not taken (which hull finishes first depends on the threads). Short
    /// of certifying, or with one hull, every result counts.
    #[test]
    fn a_certifying_narrow_hull_is_taken_alone_whatever_the_wider_did() {
        let certifies = |plan: &f64| *plan >= 100.0;
        let hulls_taken = |hulls: Vec<Result<Option<f64>, &'static str>>, all_ran: bool| hulls_taken(hulls, all_ran, certifies);
        let better_wide: Vec<Result<Option<f64>, &str>> = vec![Ok(Some(100.0)), Ok(Some(120.0))];
        assert_eq!(hulls_taken(better_wide.clone(), true), Ok(vec![Some(100.0)]));
        assert_eq!(hulls_taken(vec![Ok(Some(100.0)), Err("wide failed")], true), Ok(vec![Some(100.0)]));
        assert_eq!(hulls_taken(vec![Ok(Some(99.0)), Ok(Some(120.0))], true), Ok(vec![Some(99.0), Some(120.0)]));
        assert_eq!(hulls_taken(vec![Ok(Some(99.0)), Err("wide failed")], true), Err("wide failed"));
        assert_eq!(hulls_taken(vec![Ok(None), Ok(Some(120.0))], true), Ok(vec![None, Some(120.0)]));
        assert_eq!(hulls_taken(better_wide, false), Ok(vec![Some(100.0), Some(120.0)]), "one hull: the others' responses alone count");
    }
}
