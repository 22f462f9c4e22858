//! Volume rules of `rules.csv` (model version 2): a total of a measure over the
//! selected offers' exposures, bounded above (`max_total`) or below
//! (`min_total`), hard or soft. A channel's capacity is a `max_total` of
//! contacts on it, a channel's budget a `max_total` of contact cost, a volume
//! target a `min_total`.
//!
//! One row per rule. A lower bound is written as the `<=` row `-sum m x <=
//! -bound`, so every solver keeps its one sense and its multipliers `>= 0`. A
//! soft rule's row has a penalty ([`Family::penalty`]): the exact model and the
//! repair LP give it a slack column paid at that penalty, and the decomposition
//! caps its multiplier there (the slack's term of the Lagrangian is
//! `max_s (nu - penalty) s`, zero exactly when `nu <= penalty`).

use super::family::{Checker, Family, Scope};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{Measure, Problem, Rule, RuleKind};

/// The family's name.
pub const NAME: &str = "rule";

/// One row per `max_total` or `min_total` rule.
#[derive(Debug, Clone)]
pub struct Rules {
    rows: Vec<RuleRow>,
}

#[derive(Debug, Clone)]
struct RuleRow {
    /// `+1` for an upper bound, `-1` for a lower one.
    sign: f64,
    rhs: f64,
    penalty: Option<f64>,
    measure: Measure,
    /// Per offer: whether the rule selects it.
    selected: Vec<bool>,
    /// Per offer: the measure of one acceptance (`discount_cost`) or of one
    /// exposure (`cost_per_contact`); 1 for counts and for `value`, whose
    /// coefficient is the pair's value ([`Family::per_value`]).
    offer_coef: Vec<f64>,
}

impl Rules {
    /// The rules of `scope`'s problem. Without candidates (the optimum without
    /// offers of the spec's gap) a hard lower bound is left out: nothing could
    /// meet it, and the spec measures the offers' value against baseline
    /// shipping and penalties only.
    pub fn new(scope: &Scope) -> Self {
        let problem = scope.problem;
        let rows = problem
            .rules
            .iter()
            .map(|rule| {
                let sign = sign(rule.kind);
                let unreachable = rule.kind == RuleKind::MinTotal && rule.penalty.is_none() && scope.cands.is_empty();
                RuleRow {
                    sign,
                    rhs: if unreachable { f64::INFINITY } else { sign * rule.bound },
                    penalty: rule.penalty,
                    measure: rule.measure,
                    selected: selected_offers(problem, rule),
                    offer_coef: problem
                        .offers
                        .iter()
                        .map(|o| match rule.measure {
                            Measure::DiscountCost => o.discount_cost,
                            Measure::ContactCost => o.cost_per_contact,
                            Measure::Contacts | Measure::Accepts | Measure::Value => 1.0,
                        })
                        .collect(),
                }
            })
            .collect();
        Rules { rows }
    }

    /// The coefficients of `offer` on the rows whose measure counts `kind`.
    fn push_coefs(&self, offer: usize, kind: Per, push: &mut dyn FnMut(usize, f64)) {
        for (r, row) in self.rows.iter().enumerate().filter(|(_, row)| row.selected[offer] && per(row.measure) == kind) {
            push(r, row.sign * row.offer_coef[offer]);
        }
    }
}

/// `+1` for an upper bound, `-1` for a lower one: the rule as a `<=` row.
fn sign(kind: RuleKind) -> f64 {
    match kind {
        RuleKind::MaxTotal => 1.0,
        RuleKind::MinTotal => -1.0,
    }
}

/// What one exposure of a pair adds to a measure: a multiple of its expected
/// acceptances, of its expected acceptance value, or of the exposure itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Per {
    Acceptance,
    Value,
    Exposure,
}

fn per(measure: Measure) -> Per {
    match measure {
        Measure::Accepts | Measure::DiscountCost => Per::Acceptance,
        Measure::Value => Per::Value,
        Measure::Contacts | Measure::ContactCost => Per::Exposure,
    }
}

/// Per offer: whether `rule` selects it.
fn selected_offers(problem: &Problem, rule: &Rule) -> Vec<bool> {
    (0..problem.offers.len() as u32).map(|o| problem.selects(&rule.selector, o)).collect()
}

/// The rule's measure summed over an exposure vector, evaluated from the spec
/// (not from the family's coefficients): what the checker, the KPIs and the
/// soft rules' penalties read.
pub fn measure(problem: &Problem, cands: &Candidates, rule: &Rule, x: &dyn Fn(usize) -> f64) -> f64 {
    let selected = selected_offers(problem, rule);
    (0..cands.len())
        .filter(|&k| selected[cands.offer[k] as usize])
        .map(|k| {
            let offer = &problem.offers[cands.offer[k] as usize];
            let p = cands.p[k];
            let m = match rule.measure {
                Measure::Contacts => 1.0,
                Measure::Accepts => p,
                Measure::ContactCost => offer.cost_per_contact,
                Measure::DiscountCost => offer.discount_cost * p,
                Measure::Value => problem.accept_value(cands.uptake_row[k] as usize) * p,
            };
            m * x(k)
        })
        .sum()
}

/// Room a measured total leaves before the rule's bound (negative: broken).
pub fn slack(rule: &Rule, measured: f64) -> f64 {
    sign(rule.kind) * (rule.bound - measured)
}

/// How far a measured total breaks the rule's bound (0 when kept).
pub fn violation(rule: &Rule, measured: f64) -> f64 {
    (-slack(rule, measured)).max(0.0)
}

/// The objective the soft rules take away at exposures `x`: `penalty * violation` summed.
pub fn penalties(problem: &Problem, cands: &Candidates, x: &dyn Fn(usize) -> f64) -> f64 {
    problem
        .rules
        .iter()
        .filter_map(|rule| rule.penalty.map(|pen| pen * violation(rule, measure(problem, cands, rule, x))))
        .sum()
}

impl Family for Rules {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn rhs(&self, row: usize) -> f64 {
        self.rows[row].rhs
    }

    fn penalty(&self, row: usize) -> Option<f64> {
        self.rows[row].penalty
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        problem.rules[row].id.clone()
    }

    fn per_accept(&self, offer: usize, _zone: usize, push: &mut dyn FnMut(usize, f64)) {
        self.push_coefs(offer, Per::Acceptance, push);
    }

    fn per_exposure(&self, offer: usize, _slot: usize, push: &mut dyn FnMut(usize, f64)) {
        self.push_coefs(offer, Per::Exposure, push);
    }

    fn per_value(&self, offer: usize, push: &mut dyn FnMut(usize, f64)) {
        self.push_coefs(offer, Per::Value, push);
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        for rule in problem.rules.iter().filter(|r| r.penalty.is_none()) {
            // `+ 0.0`: an empty sum is -0, printed as such.
            let measured = measure(problem, cands, rule, &|k| alloc.x[k]) + 0.0;
            let what = || format!("rule {} ({} of {})", rule.id, rule.measure.name(), measured);
            match rule.kind {
                RuleKind::MaxTotal => ck.le(NAME, measured, rule.bound, what),
                RuleKind::MinTotal => ck.ge(NAME, measured, rule.bound, what),
            }
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        if !prices.is_empty() {
            out.families.insert(NAME.to_string(), prices.to_vec());
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        if let Some(p) = from.families.get(NAME) {
            for (o, v) in out.iter_mut().zip(p) {
                *o = *v;
            }
        }
    }
}
