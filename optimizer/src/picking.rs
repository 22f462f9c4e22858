//! On-demand pick planning at one warehouse: which backlog orders to pick in
//! which wave, and in what order.
//!
//! Why a separate, small model: fulfilment asks during the day, over the orders
//! actually waiting, with the stock actually on the shelf; the nightly plan only
//! ranked bundles. The model:
//!
//! - `x[o][w] = 1` when order `o` is picked in wave `w` (at most one wave each;
//!   an order is picked whole or not at all);
//! - each wave picks at most its `capacity` units;
//! - the orders picked use at most the live stock of each SKU;
//! - maximise `sum x[o][w] * value(o, w)` with
//!   `value(o, w) = tier_weight(o) * units(o) * (1 if w ends by o's promise else late_value) *
//!   (1 - EARLY_TIEBREAK * w)`: weighted units picked, on time first, higher
//!   tiers first, earlier waves preferred among equals.
//!
//! Small backlogs (up to [`EXACT_MAX_PAIRS`] order-wave pairs) are solved to
//! optimality as a MIP with good_lp + HiGHS. Larger ones use [`greedy`], whose
//! answer comes with an upper bound from a fractional knapsack (every order at
//! its best value per unit, all waves' capacity pooled, stock ignored), so the
//! caller sees how far from optimal it can be.

use std::collections::HashMap;
use std::time::Instant;

use good_lp::solvers::highs::highs;

use crate::lp_backend::{self, Settings};
use good_lp::{variable, Expression, ProblemVariables, SolverModel, Variable};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::exact::relative_gap;

/// Largest number of (order, wave) pairs solved exactly.
pub const EXACT_MAX_PAIRS: usize = 20_000;
/// Time limit of the exact solve, seconds (the greedy answer is kept if it is better).
pub const EXACT_TIME_LIMIT: f64 = 2.0;
/// Relative value given up per wave of delay, so earlier waves win ties.
pub const EARLY_TIEBREAK: f64 = 1e-4;
/// Default value of a late pick relative to an on-time one.
pub const DEFAULT_LATE_VALUE: f64 = 0.5;

/// One order line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PickLine {
    /// SKU to pick.
    pub sku: String,
    /// Units.
    pub qty: f64,
}

/// An order waiting at the warehouse.
#[derive(Debug, Clone, PartialEq)]
pub struct PickOrder {
    /// The caller's id.
    pub order_id: String,
    /// Objective weight of the customer's tier.
    pub tier_weight: f64,
    /// Promised-by time, seconds since the epoch.
    pub promised_by: i64,
    /// What to pick.
    pub lines: Vec<PickLine>,
}

/// A pick wave with its capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct PickWave {
    /// The caller's id.
    pub wave_id: String,
    /// When the wave's picks are done (seconds since the epoch).
    pub ends_at: i64,
    /// Units the wave can pick.
    pub capacity: f64,
}

/// Everything one pick-plan solve needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PickProblem {
    /// The backlog.
    pub orders: Vec<PickOrder>,
    /// The waves, in any order (sorted by end time inside).
    pub waves: Vec<PickWave>,
    /// Live units per SKU at the warehouse.
    pub stock: HashMap<String, f64>,
    /// Value of a late pick relative to an on-time one, in [0, 1].
    pub late_value: f64,
}

/// Which method answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PickMethod {
    /// MIP, HiGHS.
    Exact,
    /// [`greedy`] with a fractional-knapsack bound.
    Greedy,
}

/// An order placed in a wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaveAssignment {
    /// 1 = pick first.
    pub priority: u32,
    /// The order.
    pub order_id: String,
    /// Its wave.
    pub wave_id: String,
    /// Whether the wave ends by the order's promise.
    pub on_time: bool,
    /// Units picked.
    pub units: f64,
}

/// An order left for later, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deferred {
    /// The order.
    pub order_id: String,
    /// `stock` (the live stock left after the orders picked does not cover all
    /// its lines) or `capacity` (it would be stocked, but no wave has room).
    pub reason: String,
}

/// The answer: a priority order with wave assignments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PickPlan {
    /// Orders to pick, by priority.
    pub assignments: Vec<WaveAssignment>,
    /// Orders not picked in these waves.
    pub deferred: Vec<Deferred>,
    /// Which method answered.
    pub method: PickMethod,
    /// Objective value of the answer.
    pub objective: f64,
    /// Proven upper bound on the objective.
    pub bound: f64,
    /// Relative gap between them (0 when proven optimal).
    pub gap: f64,
    /// Solve time.
    pub seconds: f64,
}

/// Why a pick problem cannot be solved.
#[derive(Debug, Error, PartialEq)]
pub enum PickError {
    /// The input breaks a rule; the message names the order, wave or line.
    #[error("{0}")]
    Invalid(String),
}

impl PickProblem {
    /// Checks what the model assumes: positive finite quantities and capacities,
    /// unique ids, at least one wave, a late value in [0, 1].
    pub fn validate(&self) -> Result<(), PickError> {
        let bad = |m: String| Err(PickError::Invalid(m));
        if self.waves.is_empty() {
            return bad("at least one wave is needed".into());
        }
        if !(0.0..=1.0).contains(&self.late_value) {
            return bad(format!("late_value must be in [0, 1], got {}", self.late_value));
        }
        let mut ids = std::collections::HashSet::new();
        for w in &self.waves {
            if !ids.insert(&w.wave_id) {
                return bad(format!("wave {:?} appears twice", w.wave_id));
            }
            if !(w.capacity.is_finite() && w.capacity >= 0.0) {
                return bad(format!("wave {:?}: capacity must be a non-negative number", w.wave_id));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for o in &self.orders {
            if !ids.insert(&o.order_id) {
                return bad(format!("order {:?} appears twice", o.order_id));
            }
            if o.lines.is_empty() {
                return bad(format!("order {:?} has no lines", o.order_id));
            }
            if let Some(l) = o.lines.iter().find(|l| !(l.qty.is_finite() && l.qty > 0.0)) {
                return bad(format!("order {:?}, SKU {:?}: qty must be a positive number", o.order_id, l.sku));
            }
            if !(o.tier_weight.is_finite() && o.tier_weight >= 0.0) {
                return bad(format!("order {:?}: tier weight must be non-negative", o.order_id));
            }
        }
        Ok(())
    }
}

/// The problem in index form: waves sorted by end time, per-order units and needs.
struct Prepared<'a> {
    problem: &'a PickProblem,
    /// Wave indices by end time.
    waves: Vec<usize>,
    units: Vec<f64>,
    /// Order -> (SKU index, qty), lines of one SKU merged.
    needs: Vec<Vec<(usize, f64)>>,
    stock: Vec<f64>,
    /// Whether the order's lines fit the whole live stock on their own.
    stockable: Vec<bool>,
}

impl<'a> Prepared<'a> {
    fn new(problem: &'a PickProblem) -> Self {
        let mut waves: Vec<usize> = (0..problem.waves.len()).collect();
        waves.sort_by_key(|&w| (problem.waves[w].ends_at, w));
        let mut sku_ix: HashMap<&str, usize> = HashMap::new();
        let mut stock = Vec::new();
        let needs: Vec<Vec<(usize, f64)>> = problem
            .orders
            .iter()
            .map(|o| {
                // Lines of one SKU merged through a map: linear in the lines.
                let mut merged: Vec<(usize, f64)> = Vec::new();
                let mut at: HashMap<usize, usize> = HashMap::new();
                for l in &o.lines {
                    let s = *sku_ix.entry(l.sku.as_str()).or_insert_with(|| {
                        stock.push(problem.stock.get(&l.sku).copied().unwrap_or(0.0).max(0.0));
                        stock.len() - 1
                    });
                    match at.get(&s) {
                        Some(&i) => merged[i].1 += l.qty,
                        None => {
                            at.insert(s, merged.len());
                            merged.push((s, l.qty));
                        }
                    }
                }
                merged
            })
            .collect();
        let units = needs.iter().map(|n| n.iter().map(|(_, q)| q).sum()).collect();
        let stockable = needs.iter().map(|n| n.iter().all(|&(s, q)| q <= stock[s] + 1e-9)).collect();
        Prepared { problem, waves, units, needs, stock, stockable }
    }

    /// Value of order `o` in the wave at position `pos` of the sorted waves.
    fn value(&self, o: usize, pos: usize) -> f64 {
        let order = &self.problem.orders[o];
        let wave = &self.problem.waves[self.waves[pos]];
        let timely = if wave.ends_at <= order.promised_by { 1.0 } else { self.problem.late_value };
        order.tier_weight * self.units[o] * timely * (1.0 - EARLY_TIEBREAK * pos as f64)
    }

    /// Upper bound: fractional knapsack over the pooled capacity, each order at
    /// its best value per unit; orders that cannot be stocked are left out.
    fn bound(&self) -> f64 {
        let mut items: Vec<(f64, f64)> = (0..self.units.len())
            .filter(|&o| self.stockable[o])
            .map(|o| {
                let fits = |pos: &usize| self.units[o] <= self.problem.waves[self.waves[*pos]].capacity + 1e-9;
                let best = (0..self.waves.len()).filter(fits).map(|pos| self.value(o, pos)).fold(0.0, f64::max);
                (best, self.units[o])
            })
            .filter(|&(v, _)| v > 0.0)
            .collect();
        items.sort_by(|a, b| (b.0 / b.1).total_cmp(&(a.0 / a.1)));
        let mut room: f64 = self.problem.waves.iter().map(|w| w.capacity).sum();
        let mut bound = 0.0;
        for (value, units) in items {
            if room <= 0.0 {
                break;
            }
            let take = units.min(room);
            bound += value * take / units;
            room -= take;
        }
        bound
    }

    /// The answer from a chosen wave position per order.
    fn finish(&self, chosen: &[Option<usize>], method: PickMethod, bound: f64, started: Instant) -> PickPlan {
        let orders = &self.problem.orders;
        let mut objective = 0.0;
        let mut picked: Vec<(usize, usize)> = Vec::new();
        let mut stock_left = self.stock.clone();
        for (o, c) in chosen.iter().enumerate() {
            if let Some(pos) = c {
                objective += self.value(o, *pos);
                picked.push((o, *pos));
                for &(s, q) in &self.needs[o] {
                    stock_left[s] -= q;
                }
            }
        }
        let deferred = (0..orders.len())
            .filter(|&o| chosen[o].is_none())
            .map(|o| {
                let stocked = self.needs[o].iter().all(|&(s, q)| q <= stock_left[s] + 1e-9);
                Deferred { order_id: orders[o].order_id.clone(), reason: if stocked { "capacity" } else { "stock" }.to_string() }
            })
            .collect();
        // Pick order: by wave, then higher tier, then earlier promise.
        picked.sort_by(|&(a, pa), &(b, pb)| {
            pa.cmp(&pb)
                .then(orders[b].tier_weight.total_cmp(&orders[a].tier_weight))
                .then(orders[a].promised_by.cmp(&orders[b].promised_by))
                .then(orders[a].order_id.cmp(&orders[b].order_id))
        });
        let assignments = picked
            .iter()
            .enumerate()
            .map(|(i, &(o, pos))| {
                let wave = &self.problem.waves[self.waves[pos]];
                WaveAssignment {
                    priority: i as u32 + 1,
                    order_id: orders[o].order_id.clone(),
                    wave_id: wave.wave_id.clone(),
                    on_time: wave.ends_at <= orders[o].promised_by,
                    units: self.units[o],
                }
            })
            .collect();
        let bound = bound.max(objective);
        PickPlan { assignments, deferred, method, objective, bound, gap: relative_gap(objective, bound), seconds: started.elapsed().as_secs_f64() }
    }
}

/// Solves a pick problem: exact when small, [`greedy`] otherwise (or when the
/// exact solve fails or does worse within its time limit).
pub fn plan_picks(problem: &PickProblem) -> Result<PickPlan, PickError> {
    problem.validate()?;
    let prepared = Prepared::new(problem);
    let greedy_plan = greedy_prepared(&prepared);
    if problem.orders.len() * problem.waves.len() > EXACT_MAX_PAIRS {
        return Ok(greedy_plan);
    }
    match exact_prepared(&prepared) {
        Some(exact) if exact.objective >= greedy_plan.objective - 1e-9 => Ok(exact),
        Some(exact) => Ok(PickPlan { bound: exact.bound.min(greedy_plan.bound), gap: relative_gap(greedy_plan.objective, exact.bound.min(greedy_plan.bound)), ..greedy_plan }),
        None => Ok(greedy_plan),
    }
}

/// The heuristic for large backlogs. Orders are taken by tier weight (highest
/// first), then promise (earliest first), then size (smallest first); each goes
/// to the *latest* wave that still meets its promise and has room (keeping early
/// capacity for tighter promises), else to the earliest wave with room (late),
/// provided live stock covers all its lines. O(orders x waves).
pub fn greedy(problem: &PickProblem) -> Result<PickPlan, PickError> {
    problem.validate()?;
    Ok(greedy_prepared(&Prepared::new(problem)))
}

fn greedy_prepared(p: &Prepared<'_>) -> PickPlan {
    let started = Instant::now();
    let orders = &p.problem.orders;
    let mut sequence: Vec<usize> = (0..orders.len()).collect();
    sequence.sort_by(|&a, &b| {
        orders[b]
            .tier_weight
            .total_cmp(&orders[a].tier_weight)
            .then(orders[a].promised_by.cmp(&orders[b].promised_by))
            .then(p.units[a].total_cmp(&p.units[b]))
    });
    let mut room: Vec<f64> = p.waves.iter().map(|&w| p.problem.waves[w].capacity).collect();
    let mut stock = p.stock.clone();
    let mut chosen = vec![None; orders.len()];
    for o in sequence {
        if !p.needs[o].iter().all(|&(s, q)| q <= stock[s] + 1e-9) {
            continue;
        }
        let fits = |pos: &usize| p.units[o] <= room[*pos] + 1e-9;
        let on_time = (0..p.waves.len()).rev().filter(|&pos| p.problem.waves[p.waves[pos]].ends_at <= orders[o].promised_by).find(fits);
        let Some(pos) = on_time.or_else(|| (0..p.waves.len()).find(fits)) else { continue };
        room[pos] -= p.units[o];
        for &(s, q) in &p.needs[o] {
            stock[s] -= q;
        }
        chosen[o] = Some(pos);
    }
    p.finish(&chosen, PickMethod::Greedy, p.bound(), started)
}

/// The MIP; `None` if HiGHS fails or finds no solution in time.
fn exact_prepared(p: &Prepared<'_>) -> Option<PickPlan> {
    let started = Instant::now();
    let n_waves = p.waves.len();
    let mut vars = ProblemVariables::new();
    // x[o][pos] for pairs that can be picked at all.
    let mut x: Vec<Vec<(usize, Variable)>> = Vec::with_capacity(p.units.len());
    let mut objective = Expression::from(0.0);
    for o in 0..p.units.len() {
        let mut row = Vec::new();
        if p.stockable[o] {
            for pos in 0..n_waves {
                if p.units[o] <= p.problem.waves[p.waves[pos]].capacity + 1e-9 {
                    let v = vars.add(variable().binary());
                    objective += p.value(o, pos) * v;
                    row.push((pos, v));
                }
            }
        }
        x.push(row);
    }
    if x.iter().all(Vec::is_empty) {
        return Some(p.finish(&vec![None; p.units.len()], PickMethod::Exact, 0.0, started));
    }
    let n_columns = vars.len();
    let mut n_rows = 0;
    let mut model = vars.maximise(objective).using(highs);
    let mut wave_load = vec![Expression::from(0.0); n_waves];
    let mut sku_use = vec![Expression::from(0.0); p.stock.len()];
    for (o, row) in x.iter().enumerate() {
        if row.is_empty() {
            continue;
        }
        let once: Expression = row.iter().map(|&(_, v)| v).sum();
        model = model.with(once.leq(1.0));
        n_rows += 1;
        for &(pos, v) in row {
            wave_load[pos] += p.units[o] * v;
            for &(s, q) in &p.needs[o] {
                sku_use[s] += q * v;
            }
        }
    }
    for (pos, load) in wave_load.into_iter().enumerate() {
        model = model.with(load.leq(p.problem.waves[p.waves[pos]].capacity));
        n_rows += 1;
    }
    for (s, used) in sku_use.into_iter().enumerate() {
        model = model.with(used.leq(p.stock[s]));
        n_rows += 1;
    }
    let settings = Settings { time_limit: Some(EXACT_TIME_LIMIT), mip_rel_gap: Some(1e-6), ..Settings::default() };
    let solved = lp_backend::run(model, n_columns, n_rows, &settings).ok()?;
    let (bound, columns) = (solved.bound, solved.columns);
    // Columns follow variable creation order.
    let mut col = 0;
    let mut chosen = vec![None; p.units.len()];
    for (o, row) in x.iter().enumerate() {
        for &(pos, _) in row {
            if columns[col] > 0.5 {
                chosen[o] = Some(pos);
            }
            col += 1;
        }
    }
    Some(p.finish(&chosen, PickMethod::Exact, bound.min(p.bound()), started))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, weight: f64, promised_by: i64, lines: &[(&str, f64)]) -> PickOrder {
        PickOrder {
            order_id: id.into(),
            tier_weight: weight,
            promised_by,
            lines: lines.iter().map(|&(s, q)| PickLine { sku: s.into(), qty: q }).collect(),
        }
    }

    fn wave(id: &str, ends_at: i64, capacity: f64) -> PickWave {
        PickWave { wave_id: id.into(), ends_at, capacity }
    }

    fn problem(orders: Vec<PickOrder>, waves: Vec<PickWave>, stock: &[(&str, f64)]) -> PickProblem {
        PickProblem { orders, waves, stock: stock.iter().map(|&(s, q)| (s.to_string(), q)).collect(), late_value: DEFAULT_LATE_VALUE }
    }

    /// Hand-checked: wave w1 (ends 10) holds 3 units, w2 (ends 20) holds 3.
    /// Gold `g` (3 units, promise 10) must take w1 to be on time; the standard
    /// orders `s1` (2 units, promise 20) and `s2` (1 unit, promise 20) fit w2.
    /// `x` needs 5 of SKU B with 4 in stock: deferred for stock.
    #[test]
    fn exact_places_each_order_where_it_is_on_time() {
        let p = problem(
            vec![order("s1", 1.0, 20, &[("A", 2.0)]), order("g", 1.5, 10, &[("A", 1.0), ("B", 2.0)]), order("s2", 1.0, 20, &[("A", 1.0)]), order("x", 2.0, 20, &[("B", 5.0)])],
            vec![wave("w2", 20, 3.0), wave("w1", 10, 3.0)],
            &[("A", 10.0), ("B", 4.0)],
        );
        let plan = plan_picks(&p).unwrap();
        assert_eq!(plan.method, PickMethod::Exact);
        let by_order: HashMap<&str, &WaveAssignment> = plan.assignments.iter().map(|a| (a.order_id.as_str(), a)).collect();
        assert_eq!(by_order["g"].wave_id, "w1");
        assert_eq!(by_order["s1"].wave_id, "w2");
        assert_eq!(by_order["s2"].wave_id, "w2");
        assert!(plan.assignments.iter().all(|a| a.on_time));
        assert_eq!(plan.assignments[0].order_id, "g", "the first wave is picked first");
        assert_eq!(plan.deferred, vec![Deferred { order_id: "x".into(), reason: "stock".into() }]);
        // 1.5*3 + (1*2 + 1*1) * (1 - 1e-4)
        assert!((plan.objective - (4.5 + 3.0 * (1.0 - EARLY_TIEBREAK))).abs() < 1e-9, "{}", plan.objective);
        assert!(plan.gap < 1e-6);
    }

    /// Stock shared across orders: only one of two orders for the last 2 units;
    /// then capacity shared: the smaller-value order waits for room.
    #[test]
    fn stock_is_shared_between_orders_and_capacity_between_waves() {
        let orders = vec![order("a", 1.0, 5, &[("A", 2.0)]), order("b", 1.2, 5, &[("A", 2.0)]), order("c", 1.0, 5, &[("C", 4.0)])];
        let reasons = |plan: &PickPlan| -> Vec<(String, String)> { plan.deferred.iter().map(|d| (d.order_id.clone(), d.reason.clone())).collect() };
        let roomy = problem(orders.clone(), vec![wave("w", 5, 10.0)], &[("A", 2.0), ("C", 9.0)]);
        for plan in [plan_picks(&roomy).unwrap(), greedy(&roomy).unwrap()] {
            let ids: Vec<&str> = plan.assignments.iter().map(|a| a.order_id.as_str()).collect();
            assert_eq!(ids, ["b", "c"], "the higher tier gets the last units, then the earlier promise");
            assert_eq!(reasons(&plan), [("a".to_string(), "stock".to_string())]);
        }
        let tight = problem(orders, vec![wave("w", 5, 5.0)], &[("A", 9.0), ("C", 9.0)]);
        let plan = plan_picks(&tight).unwrap();
        // Within 5 units: b + a (4 units, value 2.4 + 2.0 = 4.4) beat c alone (4.0).
        let ids: Vec<&str> = plan.assignments.iter().map(|a| a.order_id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(reasons(&plan), [("c".to_string(), "capacity".to_string())]);
        assert!((plan.objective - 4.4).abs() < 1e-9);
    }

    fn random_problem(seed: u64, orders: usize, waves: usize) -> PickProblem {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let skus = ["A", "B", "C", "D", "E"];
        let orders = (0..orders)
            .map(|i| {
                let lines: Vec<(&str, f64)> = (0..1 + next(3)).map(|_| (skus[next(5) as usize], 1.0 + next(4) as f64)).collect();
                order(&format!("o{i}"), [1.0, 1.2, 1.5][next(3) as usize], 10 * (1 + next(waves as u64) as i64), &lines)
            })
            .collect();
        let waves = (0..waves).map(|w| wave(&format!("w{w}"), 10 * (w as i64 + 1), 5.0 + next(20) as f64)).collect();
        let stock: Vec<(&str, f64)> = skus.iter().map(|&s| (s, next(40) as f64)).collect();
        problem(orders, waves, &stock)
    }

    fn check_feasible(p: &PickProblem, plan: &PickPlan) {
        let mut load: HashMap<&str, f64> = HashMap::new();
        let mut used: HashMap<&str, f64> = HashMap::new();
        let orders: HashMap<&str, &PickOrder> = p.orders.iter().map(|o| (o.order_id.as_str(), o)).collect();
        for a in &plan.assignments {
            *load.entry(a.wave_id.as_str()).or_default() += a.units;
            for l in &orders[a.order_id.as_str()].lines {
                *used.entry(l.sku.as_str()).or_default() += l.qty;
            }
        }
        for w in &p.waves {
            assert!(load.get(w.wave_id.as_str()).copied().unwrap_or(0.0) <= w.capacity + 1e-9, "wave {} over capacity", w.wave_id);
        }
        for (s, u) in used {
            assert!(u <= p.stock.get(s).copied().unwrap_or(0.0) + 1e-9, "SKU {s} over stock");
        }
        assert_eq!(plan.assignments.len() + plan.deferred.len(), p.orders.len());
        assert!(plan.objective <= plan.bound + 1e-9);
    }

    /// Both methods respect capacity and stock; the exact optimum is never below
    /// the greedy answer; both stay under the greedy's knapsack bound.
    #[test]
    fn greedy_and_exact_are_feasible_and_bounded() {
        for seed in 0..30 {
            let p = random_problem(seed, 25, 4);
            let exact = plan_picks(&p).unwrap();
            let heuristic = greedy(&p).unwrap();
            check_feasible(&p, &exact);
            check_feasible(&p, &heuristic);
            assert!(exact.objective >= heuristic.objective - 1e-9, "seed {seed}");
            assert!(exact.objective <= heuristic.bound + 1e-9, "seed {seed}: the knapsack bound must hold for the optimum");
        }
    }

    #[test]
    fn large_backlogs_use_the_heuristic() {
        let p = random_problem(7, EXACT_MAX_PAIRS / 10 + 1, 10);
        let plan = plan_picks(&p).unwrap();
        assert_eq!(plan.method, PickMethod::Greedy);
        check_feasible(&p, &plan);
    }

    #[test]
    fn bad_input_is_named() {
        let mut p = random_problem(1, 3, 2);
        p.orders[1].lines[0].qty = -1.0;
        assert!(matches!(plan_picks(&p), Err(PickError::Invalid(m)) if m.contains("o1")));
        p.orders[1].lines[0].qty = 1.0;
        p.waves.clear();
        assert!(plan_picks(&p).is_err());
    }
}
