//! An independent checker of the spec's rules, written once and used by every
//! solver's tests (and available to callers who want a certificate).
//!
//! It re-derives everything from the [`Problem`] and the spec's text, not from
//! any solver's model: candidate rules, constraint left-hand sides, the objective.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::allocation::{Allocation, SolveReport, SolveStatus};
use crate::candidates::{Candidates, Network};
use crate::families::{check_families, no_extra, CustomLimitMode, ExtraFamilies, Layout, Scope};
use crate::model::{Problem, SkuIx, WarehouseIx, ZoneIx};
use crate::plan::Plan;

pub use crate::families::{Checker, Violation};

/// The hard rules of the spec (consent, suppression, tier, validity,
/// deliverability), re-derived from its text independently of [`Candidates`].
pub struct HardRules<'a> {
    problem: &'a Problem,
    reachable: HashSet<(ZoneIx, SkuIx)>,
}

impl<'a> HardRules<'a> {
    /// Precomputes which (zone, SKU) pairs a usable lane from a listing warehouse reaches.
    pub fn new(problem: &'a Problem) -> Self {
        let mut reachable = HashSet::new();
        for l in &problem.lanes {
            if problem.lane_usable(l) {
                for s in problem.stock.iter().filter(|s| s.warehouse == l.warehouse) {
                    reachable.insert((l.zone, s.sku));
                }
            }
        }
        HardRules { problem, reachable }
    }

    /// Whether a customer-offer pair passes every hard rule.
    pub fn allows(&self, customer: u32, offer: u32) -> bool {
        let problem = self.problem;
        let c = customer as usize;
        let o = &problem.offers[offer as usize];
        let cust = &problem.customers;
        let valid = o.start_date.is_none_or(|d| d <= problem.horizon.last_day())
            && o.end_date.is_none_or(|d| d >= problem.horizon.start);
        let tier_ok = o.min_tier.is_none_or(|m| cust.tier[c] <= m);
        let deliverable = o.items.iter().all(|item| self.reachable.contains(&(cust.zone[c], item.sku)));
        cust.consent[c] && !cust.suppressed[c] && tier_ok && valid && deliverable
    }
}

/// The contact policies of model version 2 (`max_per_customer` rules and
/// conflicts, with the contact history), re-derived from the spec's text
/// independently of `contact_policy`.
struct ContactPolicies<'a> {
    problem: &'a Problem,
    /// Per rule, then per offer: selected.
    rule: Vec<Vec<bool>>,
    /// Per conflict, then per offer: selected by A, by B.
    side_a: Vec<Vec<bool>>,
    side_b: Vec<Vec<bool>>,
    /// Past contacts by customer (the checker does not rely on `history` being sorted).
    history: HashMap<u32, Vec<&'a crate::model::PastContact>>,
}

impl<'a> ContactPolicies<'a> {
    fn new(problem: &'a Problem) -> Self {
        let offers = |sel: &crate::model::Selector| (0..problem.offers.len() as u32).map(|o| problem.selects(sel, o)).collect::<Vec<_>>();
        ContactPolicies {
            problem,
            rule: problem.contact_rules.iter().map(|r| offers(&r.selector)).collect(),
            side_a: problem.conflicts.iter().map(|f| offers(&f.a)).collect(),
            side_b: problem.conflicts.iter().map(|f| offers(&f.b)).collect(),
            history: problem.history.iter().fold(HashMap::new(), |mut m, h| {
                m.entry(h.customer).or_insert_with(Vec::new).push(h);
                m
            }),
        }
    }

    /// Checks customer `c`'s exposures `(offer, x)` (only those above the tolerance need be given).
    fn check(&self, c: u32, exposed: &[(u32, f64)], ck: &mut Checker) {
        let problem = self.problem;
        let history = self.history.get(&c).map_or(&[][..], Vec::as_slice);
        let who = || problem.customers.id[c as usize].clone();
        for (i, rule) in problem.contact_rules.iter().enumerate() {
            let past = history.iter().filter(|h| h.selected_by(&rule.selector)).count() as f64;
            let sum: f64 = exposed.iter().filter(|(o, _)| self.rule[i][*o as usize]).map(|(_, x)| x).sum();
            if sum > 0.0 {
                ck.le("contact_rule", sum, (rule.bound - past).max(0.0), || format!("rule {} for customer {}", rule.id, who()));
            }
        }
        for (j, conflict) in problem.conflicts.iter().enumerate() {
            for &(b, xb) in exposed.iter().filter(|(o, _)| self.side_b[j][*o as usize]) {
                let date_b = problem.contact_date_of(b);
                for &(a, xa) in exposed.iter().filter(|&&(o, _)| o != b && self.side_a[j][o as usize]) {
                    if conflict.within(problem.contact_date_of(a), date_b) {
                        ck.le("conflict", xa + xb, 1.0, || format!("conflict {} for customer {}: offers {a} and {b}", conflict.id, who()));
                    }
                }
                if history.iter().any(|h| h.selected_by(&conflict.a) && conflict.within(h.date, date_b)) {
                    ck.le("conflict", xb, 0.0, || format!("conflict {} for customer {}: offer {b} after a past contact", conflict.id, who()));
                }
            }
        }
    }
}

/// Shippable stock of a (warehouse, SKU) over the horizon, 0 when not listed.
fn available(problem: &Problem, w: WarehouseIx, s: SkuIx) -> f64 {
    problem.stock.iter().find(|p| p.warehouse == w && p.sku == s).map_or(0.0, |p| p.available())
}

/// The spec's objective evaluated at an allocation.
pub fn objective(problem: &Problem, cands: &Candidates, alloc: &Allocation) -> f64 {
    let offers: f64 = (0..cands.len())
        .map(|k| {
            let c = cands.customer[k] as usize;
            let w = problem.tiers[problem.customers.tier[c] as usize].weight;
            let row = cands.uptake_row[k] as usize;
            let u = &problem.uptake[row];
            (w * problem.accept_value(row) * u.p - problem.offers[u.offer as usize].cost_per_contact) * alloc.x[k]
        })
        .sum();
    let shipping: f64 = alloc.flows.iter().map(|f| problem.lanes[f.lane as usize].cost_per_unit * f.units).sum();
    let unmet: f64 = alloc.unmet.iter().sum();
    offers - shipping - problem.policy.unmet_baseline_penalty * unmet - crate::families::rules::penalties(problem, cands, &|k| alloc.x[k])
}

/// Checks an allocation against every constraint of the spec (within `tol`,
/// relative to each right-hand side), and its reported objective.
pub fn check_allocation(problem: &Problem, cands: &Candidates, alloc: &Allocation, tol: f64) -> Vec<Violation> {
    check_allocation_with(problem, cands, alloc, tol, &no_extra)
}

/// [`check_allocation`] with coupling families beyond the standard ones.
pub fn check_allocation_with(problem: &Problem, cands: &Candidates, alloc: &Allocation, tol: f64, extra: &ExtraFamilies) -> Vec<Violation> {
    let n = cands.len();
    if alloc.x.len() != n {
        let mut ck = Checker::new(tol);
        ck.push("shape", format!("{} exposures for {n} candidates", alloc.x.len()));
        return ck.out;
    }
    // The per-customer and network side beside the coupling families (each
    // reads the allocation only); violations in that order.
    let (mut out, coupling) = rayon::join(|| check_customers_and_network(problem, cands, alloc, tol), || check_coupling(problem, cands, alloc, tol, extra));
    out.extend(coupling);
    out
}

/// The half of [`check_allocation_with`] that reads customers one by one:
/// bounds, hard rules, contact caps and policies, then shipments and unmet
/// baseline.
fn check_customers_and_network(problem: &Problem, cands: &Candidates, alloc: &Allocation, tol: f64) -> Vec<Violation> {
    let mut ck = Checker::new(tol);
    let rules = HardRules::new(problem);
    let cust = &problem.customers;
    let n = cands.len();
    let mut per_customer = vec![0.0; cust.len()];
    for k in 0..n {
        let (c, o, x) = (cands.customer[k], cands.offer[k], alloc.x[k]);
        if !(-tol..=1.0 + tol).contains(&x) {
            ck.push("bounds", format!("x[{c},{o}] = {x}"));
        }
        if x > tol && !rules.allows(c, o) {
            ck.push("hard_rules", format!("customer {c} offer {o} exposed at {x}"));
        }
        per_customer[c as usize] += x;
    }
    // Contact cap, per customer.
    for (c, &sum) in per_customer.iter().enumerate() {
        if let Some(cap) = problem.contact_cap_of(c as u32) {
            ck.le("contact_cap", sum, cap as f64, || format!("customer {}", cust.id[c]));
        }
    }
    // Contact policies, per customer.
    if problem.has_contact_policies() {
        let policies = ContactPolicies::new(problem);
        let mut exposed = Vec::new();
        for c in 0..cust.len() as u32 {
            exposed.clear();
            exposed.extend(cands.of_customer(c).filter(|&k| alloc.x[k] > tol).map(|k| (cands.offer[k], alloc.x[k])));
            policies.check(c, &exposed, &mut ck);
        }
    }
    // Shipments: usable lanes only, from listing warehouses, non-negative.
    for f in &alloc.flows {
        let lane = &problem.lanes[f.lane as usize];
        if !problem.lane_usable(lane) || f.units < -tol {
            ck.push("shipments", format!("{} units on unusable lane {}", f.units, f.lane));
        }
        if !problem.stock.iter().any(|s| s.warehouse == lane.warehouse && s.sku == f.sku) {
            ck.push("shipments", format!("sku {} shipped from a warehouse that does not list it", f.sku));
        }
    }
    for (i, b) in problem.baseline.iter().enumerate() {
        let u = alloc.unmet[i];
        if u < -tol || u > b.units + tol * b.units.max(1.0) {
            ck.push("unmet_bounds", format!("u = {u} for baseline {}", b.units));
        }
    }
    ck.out
}

/// The half of [`check_allocation_with`] that reads the coupling rows:
/// every family, each re-deriving its rows from the spec, and the objective.
fn check_coupling(problem: &Problem, cands: &Candidates, alloc: &Allocation, tol: f64, extra: &ExtraFamilies) -> Vec<Violation> {
    let mut ck = Checker::new(tol);
    let network = Network::new(problem);
    let scope = Scope::new(problem, &network, cands, CustomLimitMode::Off);
    let layout = Layout::new(&scope, extra(&scope));
    check_families(&layout, problem, cands, alloc, &mut ck);
    // The reported objective is the spec's objective of this solution.
    let obj = objective(problem, cands, alloc);
    if (obj - alloc.report.objective).abs() > 1e-6 * obj.abs().max(1.0) + tol {
        ck.push("objective", format!("reported {} but the solution is worth {obj}", alloc.report.objective));
    }
    ck.out
}

/// Tolerance of [`check_served`] in the plan pipeline (the spec's 1e-6).
pub const SERVED_TOL: f64 = 1e-6;

/// Checks the served plan as the spec's "served plan" rule has it: everything
/// [`check_plan`] checks, and every constraint of the model with `x` replaced
/// by `eligible` (0/1) and the plan's own shipments and unmet baseline, within
/// `tol`: stock, lanes and the zone balance (a shipment plan exists), budget,
/// redemptions, delivery capacity, fairness, the custom-offer limit; and the
/// served objective the KPIs report is the one of those decisions.
pub fn check_served(problem: &Problem, cands: &Candidates, plan: &Plan, tol: f64) -> Vec<Violation> {
    check_served_with(problem, cands, plan, tol, &no_extra)
}

/// [`check_served`] with coupling families beyond the standard ones.
pub fn check_served_with(problem: &Problem, cands: &Candidates, plan: &Plan, tol: f64, extra: &ExtraFamilies) -> Vec<Violation> {
    // The two halves run at once (each on one core); the model's rows are
    // only reported for a plan whose own rows hold.
    let (mut out, rows) = rayon::join(|| check_plan(problem, plan), || check_served_rows(problem, cands, plan, tol, extra));
    if !out.is_empty() {
        return out;
    }
    out.extend(rows);
    out
}

/// The model's rows with `x` replaced by the plan's `eligible` (the half of
/// [`check_served_with`] that [`check_plan`] does not check).
fn check_served_rows(problem: &Problem, cands: &Candidates, plan: &Plan, tol: f64, extra: &ExtraFamilies) -> Vec<Violation> {
    let mut out = Vec::new();
    if plan.eligibility.len() != problem.uptake.len() {
        return out; // check_plan's coverage error: no row to read `x` from
    }
    // Candidate `k`'s row is its uptake row's.
    let served = |k: usize| plan.eligibility[cands.uptake_row[k] as usize].eligible();
    let x: Vec<f64> = (0..cands.len()).map(|k| if served(k) { 1.0 } else { 0.0 }).collect();
    let report = SolveReport {
        solver: "served".to_string(),
        status: SolveStatus::Optimal,
        objective: plan.kpis.rounding.objective_served,
        bound: f64::INFINITY,
        gap: 0.0,
        objective_without_offers: 0.0,
        offers_gap: 0.0,
        build_seconds: 0.0,
        solve_seconds: 0.0,
        variables: 0,
        constraints: 0,
        iterations: None,
        warm_from: None,
    };
    let alloc = Allocation {
        x,
        flows: plan.shipments.clone(),
        unmet: plan.unmet.clone(),
        offer_open: vec![true; problem.offers.len()],
        prices: Default::default(),
        report,
    };
    if alloc.unmet.len() != problem.baseline.len() {
        out.push(Violation { rule: "shape", detail: format!("{} unmet values for {} baseline rows", alloc.unmet.len(), problem.baseline.len()) });
        return out;
    }
    out.extend(check_allocation_with(problem, cands, &alloc, tol, extra).into_iter().map(|v| Violation { rule: v.rule, detail: format!("served plan: {}", v.detail) }));
    out
}

/// Checks the served plan's per-customer side: hard rules and contact caps
/// hold exactly, every uptake row has its eligibility row (row `i` is uptake
/// row `i`'s), served rows and only they are ranked, and reservations never
/// exceed available stock.
pub fn check_plan(problem: &Problem, plan: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    let rules = HardRules::new(problem);
    let mut push = |rule, detail: String| out.push(Violation { rule, detail });
    if plan.eligibility.len() != problem.uptake.len() {
        push("coverage", format!("{} eligibility rows for {} uptake pairs", plan.eligibility.len(), problem.uptake.len()));
    }
    let mut served = vec![0u32; problem.customers.len()];
    for (u, r) in plan.rows(problem) {
        if r.eligible() {
            served[u.customer as usize] += 1;
            if !rules.allows(u.customer, u.offer) {
                push("hard_rules", format!("customer {} served offer {} against a hard rule", u.customer, u.offer));
            }
        }
        if r.eligible() != r.rank.is_some() {
            push("rank", format!("row {}/{} ({:?}) has rank {:?}: a rank is for a served offer, and every served offer has one", u.customer, u.offer, r.reason, r.rank));
        }
    }
    for (c, &n) in served.iter().enumerate() {
        if let Some(cap) = problem.contact_cap_of(c as u32) {
            if n > cap {
                push("contact_cap", format!("customer {} served {n} offers, cap {cap}", problem.customers.id[c]));
            }
        }
    }
    let mut reserved: HashMap<(WarehouseIx, SkuIx), f64> = HashMap::new();
    for r in &plan.reservations {
        if r.units < 0.0 {
            push("reservations", format!("negative reservation {r:?}"));
        }
        *reserved.entry((r.warehouse, r.sku)).or_default() += r.units;
    }
    for ((w, s), units) in reserved {
        let avail = available(problem, w, s);
        if units > avail + 1e-6 * avail.max(1.0) {
            push("reservations", format!("warehouse {w} sku {s}: {units} reserved of {avail}"));
        }
    }
    // Contact policies on every eligible row, history exclusions included
    // (an eligible pair the history rules out breaks its rule's room or its conflict's window).
    if problem.has_contact_policies() {
        let policies = ContactPolicies::new(problem);
        let mut exposed: std::collections::BTreeMap<u32, Vec<(u32, f64)>> = std::collections::BTreeMap::new();
        for (u, _) in plan.rows(problem).filter(|(_, r)| r.eligible()) {
            exposed.entry(u.customer).or_default().push((u.offer, 1.0));
        }
        let mut ck = Checker::new(1e-9);
        for (c, pairs) in exposed {
            policies.check(c, &pairs, &mut ck);
        }
        out.extend(ck.out);
    }
    out
}
