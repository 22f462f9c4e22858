//! An independent checker of the spec's rules, written once and used by every
//! solver's tests (and available to callers who want a certificate).
//!
//! It re-derives everything from the [`Problem`] and the spec's text, not from
//! any solver's model: candidate rules, constraint left-hand sides, the objective.

use std::collections::HashMap;

use crate::allocation::Allocation;
use crate::candidates::Candidates;
use crate::model::{Problem, SkuIx, WarehouseIx, ZoneIx};
use crate::plan::{Plan, Reason};

/// One broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The rule or constraint family (`contact_cap`, `stock`, ...).
    pub rule: &'static str,
    /// What and where.
    pub detail: String,
}

/// Collects violations with a tolerance scaled to each constraint's size.
struct Checker {
    tol: f64,
    out: Vec<Violation>,
}

impl Checker {
    fn le(&mut self, rule: &'static str, lhs: f64, rhs: f64, what: impl FnOnce() -> String) {
        if lhs > rhs + self.tol * rhs.abs().max(1.0) {
            self.out.push(Violation { rule, detail: format!("{}: {lhs} > {rhs}", what()) });
        }
    }
}

/// The hard rules of the spec (consent, suppression, tier, validity,
/// deliverability), re-derived from its text independently of [`Candidates`].
pub struct HardRules<'a> {
    problem: &'a Problem,
    reachable: std::collections::HashSet<(ZoneIx, SkuIx)>,
}

impl<'a> HardRules<'a> {
    /// Precomputes which (zone, SKU) pairs a usable lane from a listing warehouse reaches.
    pub fn new(problem: &'a Problem) -> Self {
        let mut reachable = std::collections::HashSet::new();
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
            w * problem.offers[cands.offer[k] as usize].margin * cands.p[k] * alloc.x[k]
        })
        .sum();
    let shipping: f64 = alloc.flows.iter().map(|f| problem.lanes[f.lane as usize].cost_per_unit * f.units).sum();
    let unmet: f64 = alloc.unmet.iter().sum();
    offers - shipping - problem.policy.unmet_baseline_penalty * unmet
}

/// Checks an allocation against every constraint of the spec (within `tol`,
/// relative to each right-hand side), and its reported objective.
pub fn check_allocation(problem: &Problem, cands: &Candidates, alloc: &Allocation, tol: f64) -> Vec<Violation> {
    let mut ck = Checker { tol, out: Vec::new() };
    let rules = HardRules::new(problem);
    let cust = &problem.customers;
    let n = cands.len();
    if alloc.x.len() != n {
        ck.out.push(Violation { rule: "shape", detail: format!("{} exposures for {n} candidates", alloc.x.len()) });
        return ck.out;
    }
    let mut per_customer = vec![0.0; cust.len()];
    let mut demand: HashMap<(ZoneIx, SkuIx), f64> = HashMap::new();
    let mut budget = 0.0;
    let mut redemptions = vec![0.0; problem.offers.len()];
    let mut delivery = vec![0.0; problem.zones.len()];
    let mut custom_used = vec![false; problem.offers.len()];
    for k in 0..n {
        let (c, o, p, x) = (cands.customer[k], cands.offer[k], cands.p[k], alloc.x[k]);
        if !(-tol..=1.0 + tol).contains(&x) {
            ck.out.push(Violation { rule: "bounds", detail: format!("x[{c},{o}] = {x}") });
        }
        if x > tol && !rules.allows(c, o) {
            ck.out.push(Violation { rule: "hard_rules", detail: format!("customer {c} offer {o} exposed at {x}") });
        }
        let offer = &problem.offers[o as usize];
        let zone = cust.zone[c as usize];
        per_customer[c as usize] += x;
        for item in &offer.items {
            *demand.entry((zone, item.sku)).or_default() += item.qty * p * x;
        }
        budget += offer.discount_cost * p * x;
        redemptions[o as usize] += p * x;
        delivery[zone as usize] += p * x;
        if offer.custom && x > tol {
            custom_used[o as usize] = true;
        }
    }
    // 1. contact cap
    for (c, &sum) in per_customer.iter().enumerate() {
        if let Some(cap) = problem.contact_cap_of(c as u32) {
            ck.le("contact_cap", sum, cap as f64, || format!("customer {}", cust.id[c]));
        }
    }
    // Shipments: usable lanes only, from listing warehouses, non-negative.
    let mut shipped_from: HashMap<(WarehouseIx, SkuIx), f64> = HashMap::new();
    let mut on_lane = vec![0.0; problem.lanes.len()];
    for f in &alloc.flows {
        let lane = &problem.lanes[f.lane as usize];
        if !problem.lane_usable(lane) || f.units < -tol {
            ck.out.push(Violation { rule: "shipments", detail: format!("{} units on unusable lane {}", f.units, f.lane) });
        }
        if !problem.stock.iter().any(|s| s.warehouse == lane.warehouse && s.sku == f.sku) {
            ck.out.push(Violation { rule: "shipments", detail: format!("sku {} shipped from a warehouse that does not list it", f.sku) });
        }
        *shipped_from.entry((lane.warehouse, f.sku)).or_default() += f.units;
        on_lane[f.lane as usize] += f.units;
        *demand.entry((lane.zone, f.sku)).or_default() -= f.units;
    }
    // 2. zone balance: shipped = offer demand + baseline - unmet.
    for (i, b) in problem.baseline.iter().enumerate() {
        let u = alloc.unmet[i];
        if u < -tol || u > b.units + tol * b.units.max(1.0) {
            ck.out.push(Violation { rule: "unmet_bounds", detail: format!("u = {u} for baseline {}", b.units) });
        }
        *demand.entry((b.zone, b.sku)).or_default() += b.units - u;
    }
    for (&(z, s), &residual) in &demand {
        if residual.abs() > tol * 10.0 {
            let detail = format!("zone {} sku {}: shipped differs from demand by {residual}", problem.zones[z as usize].id, problem.skus[s as usize]);
            ck.out.push(Violation { rule: "zone_balance", detail });
        }
    }
    // 3. stock
    for (&(w, s), &units) in &shipped_from {
        let avail = available(problem, w, s);
        ck.le("stock", units, avail, || format!("warehouse {} sku {}", problem.warehouses[w as usize], problem.skus[s as usize]));
    }
    // 4. lane capacity
    for (l, &units) in on_lane.iter().enumerate() {
        if let Some(cap) = problem.lanes[l].capacity {
            ck.le("lane_capacity", units, cap, || format!("lane {l}"));
        }
    }
    // 5. budget, 6. redemptions, 7. delivery
    if let Some(b) = problem.policy.budget {
        ck.le("budget", budget, b, || "total".to_string());
    }
    for (o, &r) in redemptions.iter().enumerate() {
        if let Some(cap) = problem.offers[o].max_redemptions {
            ck.le("redemptions", r, cap, || format!("offer {}", problem.offers[o].id));
        }
    }
    for (z, &d) in delivery.iter().enumerate() {
        if let Some(cap) = problem.zones[z].delivery_capacity {
            ck.le("delivery_capacity", d, cap, || format!("zone {}", problem.zones[z].id));
        }
    }
    // 8. fairness, from the spec: groups with candidates per fair offer.
    if let Some(ratio) = problem.policy.fairness_min_ratio {
        let mut groups: HashMap<(u32, u32), (f64, f64)> = HashMap::new();
        for k in 0..n {
            let o = cands.offer[k];
            if let (true, Some(g)) = (problem.offers[o as usize].fair, cust.group[cands.customer[k] as usize]) {
                let e = groups.entry((o, g)).or_default();
                e.0 += alloc.x[k];
                e.1 += 1.0;
            }
        }
        for (&(o, g), &(sum_g, n_g)) in &groups {
            for (&(o2, h), &(sum_h, n_h)) in &groups {
                if o2 == o && h != g {
                    ck.le("fairness", ratio * sum_h / n_h, sum_g / n_g, || format!("offer {} groups {g}/{h}", problem.offers[o as usize].id));
                }
            }
        }
    }
    // 9. SKU proliferation
    if let Some(limit) = problem.policy.max_custom_offers {
        let used = custom_used.iter().filter(|&&u| u).count();
        ck.le("custom_limit", used as f64, limit as f64, || "custom offers in use".to_string());
    }
    // The reported objective is the spec's objective of this solution.
    let obj = objective(problem, cands, alloc);
    if (obj - alloc.report.objective).abs() > 1e-6 * obj.abs().max(1.0) + tol {
        ck.out.push(Violation { rule: "objective", detail: format!("reported {} but the solution is worth {obj}", alloc.report.objective) });
    }
    ck.out
}

/// Checks the served plan: hard rules and contact caps hold exactly, every uptake
/// pair has a row, every non-eligible row has a reason, and reservations never
/// exceed available stock.
pub fn check_plan(problem: &Problem, plan: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    let rules = HardRules::new(problem);
    let mut push = |rule, detail: String| out.push(Violation { rule, detail });
    if plan.eligibility.len() != problem.uptake.len() {
        push("coverage", format!("{} eligibility rows for {} uptake pairs", plan.eligibility.len(), problem.uptake.len()));
    }
    let mut served = vec![0u32; problem.customers.len()];
    for r in &plan.eligibility {
        if r.eligible {
            served[r.customer as usize] += 1;
            if !rules.allows(r.customer, r.offer) {
                push("hard_rules", format!("customer {} served offer {} against a hard rule", r.customer, r.offer));
            }
            if r.reason != Reason::Eligible || r.rank.is_none() {
                push("reason", format!("eligible row {}/{} has reason {:?}", r.customer, r.offer, r.reason));
            }
        } else if r.reason == Reason::Eligible {
            push("reason", format!("non-eligible row {}/{} has no reason", r.customer, r.offer));
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
    out
}
