//! The exact planner: the spec's model built with good_lp and solved by HiGHS.
//!
//! This is the only module that names HiGHS. The model is a pure LP unless
//! `max_custom_offers` is set, in which case it is a MIP with one binary per custom
//! offer; the MIP is then re-solved as an LP with those binaries fixed so that
//! duals (bid prices, eligibility reasons) exist for every plan.
//!
//! Variables and rows are created in a deterministic order: candidates in
//! (customer, offer) order, then shipments by (zone, SKU, lane), then unmet
//! baseline, then fairness rates, then custom-offer binaries.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use good_lp::solvers::highs::{highs, HighsProblem};
use good_lp::{variable, Expression, ProblemVariables, SolverModel, Variable};
use highs::HighsModelStatus;
use thiserror::Error;

use crate::allocation::{Allocation, FairnessPrice, Flow, ShadowPrices, SolveReport, SolveStatus};
use crate::candidates::{Candidates, Network};
use crate::model::{LaneIx, OfferIx, Problem, SkuIx, WarehouseIx, ZoneIx};

/// Knobs of the exact solver.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactOptions {
    /// Solver threads; `None` lets HiGHS choose.
    pub threads: Option<u32>,
    /// Wall-clock limit in seconds for the whole solve.
    pub time_limit: Option<f64>,
    /// Relative MIP gap at which branch-and-bound stops.
    pub mip_rel_gap: f64,
    /// Print HiGHS's log to stdout.
    pub verbose: bool,
    /// Further HiGHS options by name (value parsed as bool, integer, float, else text),
    /// applied last so they override the above.
    pub highs_options: Vec<(String, String)>,
}

impl Default for ExactOptions {
    fn default() -> Self {
        ExactOptions { threads: None, time_limit: None, mip_rel_gap: 1e-6, verbose: false, highs_options: Vec::new() }
    }
}

/// Why the exact solver returned no plan.
#[derive(Debug, Error)]
pub enum SolveError {
    /// The constraints admit no solution (should not happen: x = 0, u = b is feasible).
    #[error("the model is infeasible")]
    Infeasible,
    /// The objective is unbounded (a malformed model).
    #[error("the model is unbounded")]
    Unbounded,
    /// The time limit passed before any feasible solution was found.
    #[error("no feasible solution was found within the time limit")]
    NoSolution,
    /// HiGHS reported an error.
    #[error("HiGHS failed: {0}")]
    Highs(String),
}

/// What one row of the model constrains; index = HiGHS row index.
#[derive(Debug, Clone, Copy)]
enum Row {
    ContactCap(u32),
    ZoneBalance(ZoneIx, SkuIx),
    Stock(WarehouseIx, SkuIx),
    LaneCapacity(LaneIx),
    Budget,
    Redemptions(OfferIx),
    Delivery(ZoneIx),
    Fairness { offer: OfferIx, group: u32, reference: u32 },
    FairnessRate,
    CustomLink,
    CustomLimit,
}

/// A model ready for HiGHS, with the maps back to the spec's variables.
struct BuiltModel {
    problem: HighsProblem,
    rows: Vec<Row>,
    flow_keys: Vec<(LaneIx, SkuIx)>,
    unmet_rows: Vec<usize>,
    custom_offers: Vec<OfferIx>,
    variables: usize,
}

/// Custom offers fixed open or closed (the LP re-solve after the MIP).
type FixedCustom<'a> = Option<&'a [bool]>;

fn build(problem: &Problem, network: &Network, cands: &Candidates, fixed: FixedCustom) -> BuiltModel {
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::with_capacity(cands.len() + 1024);

    // x[c,o]
    let x: Vec<Variable> = (0..cands.len())
        .map(|k| {
            let closed = fixed.is_some_and(|open| !open[cands.offer[k] as usize]);
            let v = vars.add(variable().min(0.0).max(if closed { 0.0 } else { 1.0 }));
            objective.add_mul(cands.value(problem, k), v);
            v
        })
        .collect();

    // Zone-balance rows: one per (zone, SKU) with baseline or offer demand.
    let mut demand: BTreeMap<(ZoneIx, SkuIx), Expression> = BTreeMap::new();
    let mut baseline_units: HashMap<(ZoneIx, SkuIx), f64> = HashMap::new();
    for b in &problem.baseline {
        if b.units > 0.0 {
            *baseline_units.entry((b.zone, b.sku)).or_default() += b.units;
            demand.entry((b.zone, b.sku)).or_default();
        }
    }
    for k in 0..cands.len() {
        let zone = problem.customers.zone[cands.customer[k] as usize];
        for item in &problem.offers[cands.offer[k] as usize].items {
            demand.entry((zone, item.sku)).or_default().add_mul(-item.qty * cands.p[k], x[k]);
        }
    }

    // f[w,z,s]: usable lanes from warehouses that list the SKU.
    let mut flow_keys = Vec::new();
    let mut stock_rows: BTreeMap<(WarehouseIx, SkuIx), Expression> = BTreeMap::new();
    let mut lane_rows: BTreeMap<LaneIx, Expression> = BTreeMap::new();
    for (&(zone, sku), expr) in demand.iter_mut() {
        for &l in &network.lanes_into_zone[zone as usize] {
            let lane = &problem.lanes[l as usize];
            if !network.stock_index.contains_key(&(lane.warehouse, sku)) {
                continue;
            }
            let f = vars.add(variable().min(0.0));
            objective.add_mul(-lane.cost_per_unit, f);
            expr.add_mul(1.0, f);
            stock_rows.entry((lane.warehouse, sku)).or_default().add_mul(1.0, f);
            if lane.capacity.is_some() {
                lane_rows.entry(l).or_default().add_mul(1.0, f);
            }
            flow_keys.push((l, sku));
        }
    }

    // u[z,s] in [0, b]: one per baseline row, added to its zone balance.
    let mut unmet_rows = Vec::new();
    for (i, b) in problem.baseline.iter().enumerate() {
        if b.units > 0.0 {
            let u = vars.add(variable().min(0.0).max(b.units));
            objective.add_mul(-problem.policy.unmet_baseline_penalty, u);
            demand.get_mut(&(b.zone, b.sku)).expect("baseline key").add_mul(1.0, u);
            unmet_rows.push(i);
        }
    }

    // y[o] for custom offers, only in the MIP.
    let n_per_offer = cands.count_per_offer(problem);
    let custom_offers: Vec<OfferIx> = match (problem.policy.max_custom_offers, fixed) {
        (Some(_), None) => (0..problem.offers.len() as u32)
            .filter(|&o| problem.offers[o as usize].custom && n_per_offer[o as usize] > 0)
            .collect(),
        _ => Vec::new(),
    };
    // r[o,g]: the mean exposure of group g's candidates of fair offer o (fairness rows
    // then compare two rates, instead of repeating both groups' candidates).
    let fairness = match problem.policy.fairness_min_ratio {
        Some(_) => cands.fairness_groups(problem),
        None => Vec::new(),
    };
    let rates: Vec<Vec<Variable>> = fairness
        .iter()
        .map(|fg| fg.groups.iter().map(|_| vars.add(variable().min(0.0).max(1.0))).collect())
        .collect();
    let y: Vec<Variable> = custom_offers.iter().map(|_| vars.add(variable().binary())).collect();

    let variables = vars.len();
    let mut model = vars.maximise(objective).using(highs);
    let mut rows = Vec::new();
    let mut add = |model: &mut HighsProblem, row: Row, c: good_lp::Constraint| {
        model.add_constraint(c);
        rows.push(row);
    };

    // 1. contact cap (only where it can bind).
    for c in 0..problem.customers.len() as u32 {
        let range = cands.of_customer(c);
        if let Some(cap) = problem.contact_cap_of(c) {
            if (cap as usize) < range.len() {
                let e: Expression = range.map(|k| x[k]).sum();
                add(&mut model, Row::ContactCap(c), e.leq(cap as f64));
            }
        }
    }
    // 2. zone balance.
    for ((zone, sku), e) in demand {
        let b = baseline_units.get(&(zone, sku)).copied().unwrap_or(0.0);
        add(&mut model, Row::ZoneBalance(zone, sku), e.eq(b));
    }
    // 3. stock.
    for ((w, s), e) in stock_rows {
        let avail = problem.stock[network.stock_index[&(w, s)]].available();
        add(&mut model, Row::Stock(w, s), e.leq(avail));
    }
    // 4. lane capacity.
    for (l, e) in lane_rows {
        let cap = problem.lanes[l as usize].capacity.expect("capacitated lane");
        add(&mut model, Row::LaneCapacity(l), e.leq(cap));
    }
    // 5. budget.
    if let Some(budget) = problem.policy.budget {
        let mut e = Expression::with_capacity(cands.len());
        for k in 0..cands.len() {
            let cost = problem.offers[cands.offer[k] as usize].discount_cost;
            if cost != 0.0 {
                e.add_mul(cost * cands.p[k], x[k]);
            }
        }
        add(&mut model, Row::Budget, e.leq(budget));
    }
    // 6. redemptions and 7. delivery capacity.
    let mut redemption_rows: BTreeMap<OfferIx, Expression> = BTreeMap::new();
    let mut delivery_rows: BTreeMap<ZoneIx, Expression> = BTreeMap::new();
    for k in 0..cands.len() {
        let o = cands.offer[k];
        if problem.offers[o as usize].max_redemptions.is_some() {
            redemption_rows.entry(o).or_default().add_mul(cands.p[k], x[k]);
        }
        let z = problem.customers.zone[cands.customer[k] as usize];
        if problem.zones[z as usize].delivery_capacity.is_some() {
            delivery_rows.entry(z).or_default().add_mul(cands.p[k], x[k]);
        }
    }
    for (o, e) in redemption_rows {
        let cap = problem.offers[o as usize].max_redemptions.expect("capped offer");
        add(&mut model, Row::Redemptions(o), e.leq(cap));
    }
    for (z, e) in delivery_rows {
        let cap = problem.zones[z as usize].delivery_capacity.expect("capped zone");
        add(&mut model, Row::Delivery(z), e.leq(cap));
    }
    // 8. fairness: r[o,g] = mean exposure of g, and r[o,g] >= ratio * r[o,h] for every
    // ordered pair of groups: the spec's rows, with O(candidates) nonzeros in all.
    if let Some(ratio) = problem.policy.fairness_min_ratio {
        for (fg, r) in fairness.iter().zip(&rates) {
            for ((_, members), &rate) in fg.groups.iter().zip(r) {
                let mut e = Expression::with_capacity(members.len() + 1);
                for &k in members {
                    e.add_mul(1.0 / members.len() as f64, x[k as usize]);
                }
                e.add_mul(-1.0, rate);
                add(&mut model, Row::FairnessRate, e.eq(0.0));
            }
            for (i, (g, _)) in fg.groups.iter().enumerate() {
                for (j, (h, _)) in fg.groups.iter().enumerate() {
                    if i != j {
                        let row = Row::Fairness { offer: fg.offer, group: *g, reference: *h };
                        add(&mut model, row, (r[i] - ratio * r[j]).geq(0.0));
                    }
                }
            }
        }
    }
    // 9. SKU proliferation.
    if let (Some(limit), false) = (problem.policy.max_custom_offers, custom_offers.is_empty()) {
        let mut by_offer: HashMap<OfferIx, Expression> = HashMap::new();
        for k in 0..cands.len() {
            if problem.offers[cands.offer[k] as usize].custom {
                by_offer.entry(cands.offer[k]).or_default().add_mul(1.0, x[k]);
            }
        }
        for (i, &o) in custom_offers.iter().enumerate() {
            let mut e = by_offer.remove(&o).unwrap_or_default();
            e.add_mul(-(n_per_offer[o as usize] as f64), y[i]);
            add(&mut model, Row::CustomLink, e.leq(0.0));
        }
        let e: Expression = y.iter().copied().sum();
        add(&mut model, Row::CustomLimit, e.leq(limit as f64));
    }

    BuiltModel { problem: model, rows, flow_keys, unmet_rows, custom_offers, variables }
}

/// The raw result of one HiGHS run.
struct RawSolution {
    status: SolveStatus,
    objective: f64,
    bound: f64,
    columns: Vec<f64>,
    row_duals: Vec<f64>,
    seconds: f64,
}

fn run_highs(built: BuiltModel, opts: &ExactOptions, time_limit: Option<f64>) -> Result<(RawSolution, ModelMaps), SolveError> {
    let BuiltModel { problem, rows, flow_keys, unmet_rows, custom_offers, variables } = built;
    let is_mip = !custom_offers.is_empty();
    let mut model = problem.into_inner();
    if opts.verbose {
        set(&mut model, "output_flag", true)?;
        set(&mut model, "log_to_console", true)?;
    } else {
        model.make_quiet();
    }
    if let Some(t) = opts.threads {
        set(&mut model, "threads", t as i32)?;
    }
    if let Some(t) = time_limit {
        set(&mut model, "time_limit", t.max(0.01))?;
    }
    if is_mip {
        set(&mut model, "mip_rel_gap", opts.mip_rel_gap)?;
    }
    for (key, value) in &opts.highs_options {
        set_any(&mut model, key, value)?;
    }
    let maps = ModelMaps { rows, flow_keys, unmet_rows, custom_offers, variables };
    if variables == 0 {
        // Nothing to decide (no candidate, no baseline): the optimum is 0 and every row is slack.
        let raw = RawSolution {
            status: SolveStatus::Optimal,
            objective: 0.0,
            bound: 0.0,
            columns: Vec::new(),
            row_duals: vec![0.0; maps.rows.len()],
            seconds: 0.0,
        };
        return Ok((raw, maps));
    }
    let start = Instant::now();
    let solved = model.try_solve().map_err(|e| SolveError::Highs(format!("{e:?}")))?;
    let seconds = start.elapsed().as_secs_f64();
    let status = match solved.status() {
        HighsModelStatus::Optimal => SolveStatus::Optimal,
        HighsModelStatus::Infeasible => return Err(SolveError::Infeasible),
        HighsModelStatus::Unbounded | HighsModelStatus::UnboundedOrInfeasible => {
            return Err(SolveError::Unbounded)
        }
        HighsModelStatus::ReachedTimeLimit | HighsModelStatus::ReachedIterationLimit => SolveStatus::TimeLimit,
        other => return Err(SolveError::Highs(format!("unexpected model status {other:?}"))),
    };
    if solved.primal_solution_status() != highs::HighsSolutionStatus::Feasible {
        return Err(SolveError::NoSolution);
    }
    let objective = solved.objective_value();
    let bound = if is_mip {
        solved.double_info_value(c"mip_dual_bound").unwrap_or(f64::INFINITY)
    } else if status == SolveStatus::Optimal {
        objective
    } else {
        f64::INFINITY
    };
    let solution = solved.get_solution();
    let raw = RawSolution {
        status,
        objective,
        bound,
        columns: solution.columns().to_vec(),
        row_duals: solution.dual_rows().to_vec(),
        seconds,
    };
    Ok((raw, maps))
}

/// Relative gap of a maximisation: `(bound - objective) / max(1, |objective|)`.
pub fn relative_gap(objective: f64, bound: f64) -> f64 {
    let gap = (bound - objective) / objective.abs().max(1.0);
    // Below 1e-12 the difference is floating-point noise of an optimal solve.
    if gap < 1e-12 {
        0.0
    } else {
        gap
    }
}

fn set<V: highs::HighsOptionValue>(model: &mut highs::Model, key: &str, value: V) -> Result<(), SolveError> {
    model.try_set_option(key, value).map_err(|e| SolveError::Highs(format!("option {key}: {e:?}")))
}

/// Sets an option given as text, trying the types HiGHS options can have.
fn set_any(model: &mut highs::Model, key: &str, value: &str) -> Result<(), SolveError> {
    // Text last: HiGHS has text options whose values look like booleans (`presolve=on`).
    let ok = value.parse::<bool>().is_ok_and(|v| model.try_set_option(key, v).is_ok())
        || value.parse::<i32>().is_ok_and(|v| model.try_set_option(key, v).is_ok())
        || value.parse::<f64>().is_ok_and(|v| model.try_set_option(key, v).is_ok())
        || model.try_set_option(key, value).is_ok();
    if ok {
        Ok(())
    } else {
        Err(SolveError::Highs(format!("HiGHS rejected option {key}={value}")))
    }
}

struct ModelMaps {
    rows: Vec<Row>,
    flow_keys: Vec<(LaneIx, SkuIx)>,
    unmet_rows: Vec<usize>,
    custom_offers: Vec<OfferIx>,
    variables: usize,
}

/// Solves the spec's model exactly.
///
/// Returns the optimal allocation with shadow prices; with a time limit, the
/// best feasible one found and its proven bound.
pub fn solve(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions) -> Result<Allocation, SolveError> {
    let started = Instant::now();
    let remaining = |t: Option<f64>| t.map(|t| t - started.elapsed().as_secs_f64());

    let t0 = Instant::now();
    let built = build(problem, network, cands, None);
    let mut build_seconds = t0.elapsed().as_secs_f64();
    let constraints = built.rows.len();
    let (raw, maps) = run_highs(built, opts, remaining(opts.time_limit))?;
    let mut solve_seconds = raw.seconds;
    let variables = maps.variables;

    // A MIP: fix the custom-offer binaries and re-solve as an LP for duals.
    let mut offer_open = vec![true; problem.offers.len()];
    let (lp, lp_maps, mip) = if maps.custom_offers.is_empty() {
        (raw, maps, None)
    } else {
        let first_y = maps.variables - maps.custom_offers.len();
        for (i, &o) in maps.custom_offers.iter().enumerate() {
            offer_open[o as usize] = raw.columns[first_y + i] > 0.5;
        }
        let t1 = Instant::now();
        let fixed = build(problem, network, cands, Some(&offer_open));
        build_seconds += t1.elapsed().as_secs_f64();
        let (lp, lp_maps) = run_highs(fixed, opts, remaining(opts.time_limit).map(|t| t.max(1.0)))?;
        solve_seconds += lp.seconds;
        (lp, lp_maps, Some((raw.status, raw.bound)))
    };

    let x = lp.columns[..cands.len()].to_vec();
    let mut flows = Vec::new();
    for (i, &(lane, sku)) in lp_maps.flow_keys.iter().enumerate() {
        let units = lp.columns[cands.len() + i];
        if units > 1e-9 {
            flows.push(Flow { lane, sku, units });
        }
    }
    let mut unmet = vec![0.0; problem.baseline.len()];
    let first_u = cands.len() + lp_maps.flow_keys.len();
    for (i, &row) in lp_maps.unmet_rows.iter().enumerate() {
        unmet[row] = lp.columns[first_u + i].max(0.0);
    }
    let prices = shadow_prices(problem, &lp_maps.rows, &lp.row_duals);
    let (status, bound) = match mip {
        Some((status, bound)) => (status, bound.max(lp.objective)),
        None => (lp.status, lp.bound),
    };
    let solver = "exact".to_string();
    let report = SolveReport {
        solver,
        status,
        objective: lp.objective,
        bound,
        gap: relative_gap(lp.objective, bound),
        build_seconds,
        solve_seconds,
        variables,
        constraints,
        iterations: None,
    };
    Ok(Allocation { x, flows, unmet, offer_open, prices, report })
}

/// Converts HiGHS row duals into [`ShadowPrices`].
///
/// HiGHS reports `d(objective)/d(rhs)` for a maximisation; each family's price is
/// the objective lost per unit of tightening, so `<=` rows keep the sign and the
/// zone balance (`= demand`) and fairness (`>=`) rows flip it.
fn shadow_prices(problem: &Problem, rows: &[Row], duals: &[f64]) -> ShadowPrices {
    let mut p = ShadowPrices {
        contact_cap: vec![0.0; problem.customers.len()],
        lane_capacity: vec![0.0; problem.lanes.len()],
        redemptions: vec![0.0; problem.offers.len()],
        delivery: vec![0.0; problem.zones.len()],
        ..ShadowPrices::default()
    };
    for (row, &d) in rows.iter().zip(duals) {
        match *row {
            Row::ContactCap(c) => p.contact_cap[c as usize] = d,
            Row::ZoneBalance(z, s) => {
                p.bid_price.insert((z, s), -d);
            }
            Row::Stock(w, s) => {
                p.stock.insert((w, s), d);
            }
            Row::LaneCapacity(l) => p.lane_capacity[l as usize] = d,
            Row::Budget => p.budget = d,
            Row::Redemptions(o) => p.redemptions[o as usize] = d,
            Row::Delivery(z) => p.delivery[z as usize] = d,
            Row::Fairness { offer, group, reference } => {
                p.fairness.push(FairnessPrice { offer, group, reference, price: -d })
            }
            Row::FairnessRate | Row::CustomLink | Row::CustomLimit => {}
        }
    }
    p
}
