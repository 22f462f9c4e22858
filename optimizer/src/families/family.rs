//! The abstraction every coupling family implements (see the module docs of
//! `families`): its rows, coefficients by cell, name, check and prices.

use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::{Candidates, Network};
use crate::model::{OfferIx, Problem};

/// How a family's rows bind in the exact model and the repair LP. The
/// decomposition always dualizes a row as `<=` (multipliers `>= 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// `A x <= rhs`.
    Le,
    /// `A x = rhs` (the zone balance).
    Eq,
}

/// What a family sees when it lays out its rows.
pub struct Scope<'a> {
    /// The problem.
    pub problem: &'a Problem,
    /// Its network.
    pub network: &'a Network,
    /// Its candidates.
    pub cands: &'a Candidates,
    /// Number of zones.
    pub zones: usize,
    /// Fairness slots: one per protected group, plus one for customers without a group.
    pub slots: usize,
    /// Candidates per `offer * slots + slot`.
    pub slot_size: Vec<f64>,
    /// Candidates per offer.
    pub offer_size: Vec<f64>,
    /// How the custom-offer limit enters this model.
    pub custom_limit: CustomLimitMode,
}

/// How the custom-offer limit of a MIP enters a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomLimitMode {
    /// One binary per custom offer (the exact MIP).
    Binaries,
    /// One dualized row over the offers' mean exposures (the decomposition's relaxation).
    Relaxed,
    /// Not in the model: the open offers are fixed (the LP after the MIP, a restricted phase, plan derivation).
    Off,
}

impl<'a> Scope<'a> {
    /// The scope of a solve (slot and offer sizes counted once).
    pub fn new(problem: &'a Problem, network: &'a Network, cands: &'a Candidates, custom_limit: CustomLimitMode) -> Self {
        let groups = problem.groups.len();
        let slots = groups + 1;
        let n_o = problem.offers.len();
        let mut slot_size = vec![0.0; n_o * slots];
        let mut offer_size = vec![0.0; n_o];
        for k in 0..cands.len() {
            let o = cands.offer[k] as usize;
            let slot = problem.customers.group[cands.customer[k] as usize].map_or(groups, |g| g as usize);
            slot_size[o * slots + slot] += 1.0;
            offer_size[o] += 1.0;
        }
        Scope { problem, network, cands, zones: problem.zones.len(), slots, slot_size, offer_size, custom_limit }
    }
}

/// Collects broken rules with a tolerance scaled to each row's size.
#[derive(Debug)]
pub struct Checker {
    /// Relative tolerance.
    pub tol: f64,
    /// What was found so far.
    pub out: Vec<Violation>,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The rule or constraint family (`contact_cap`, `stock`, ...).
    pub rule: &'static str,
    /// What and where.
    pub detail: String,
}

impl Checker {
    /// A checker with relative tolerance `tol`.
    pub fn new(tol: f64) -> Self {
        Checker { tol, out: Vec::new() }
    }

    /// Records a violation when `lhs > rhs` beyond the tolerance.
    pub fn le(&mut self, rule: &'static str, lhs: f64, rhs: f64, what: impl FnOnce() -> String) {
        if lhs > rhs + self.tol * rhs.abs().max(1.0) {
            self.out.push(Violation { rule, detail: format!("{}: {lhs} > {rhs}", what()) });
        }
    }

    /// Checks `lhs >= rhs` within the tolerance (a lower bound, stated as
    /// such in its message: `30 needed, 0 served` reads better negated).
    pub fn ge(&mut self, rule: &'static str, lhs: f64, rhs: f64, what: impl FnOnce() -> String) {
        if lhs < rhs - self.tol * rhs.abs().max(1.0) {
            self.out.push(Violation { rule, detail: format!("{}: {lhs} < {rhs}", what()) });
        }
    }

    /// Records a violation.
    pub fn push(&mut self, rule: &'static str, detail: String) {
        self.out.push(Violation { rule, detail });
    }
}

/// One family of coupling rows; see the module docs.
pub trait Family: Send + Sync {
    /// The family's name in reasons, KPIs, checker violations and reports.
    fn name(&self) -> &'static str;

    /// Number of rows.
    fn rows(&self) -> usize;

    /// Right-hand side of a row (`+inf`: no limit, the row is dropped).
    fn rhs(&self, row: usize) -> f64;

    /// How the rows bind in the exact model and the repair LP.
    fn sense(&self) -> Sense {
        Sense::Le
    }

    /// A soft row's penalty: the objective loses this much per unit the row is
    /// exceeded (the exact model and the repair LP add a slack column at this
    /// cost; the decomposition caps the row's multiplier here; the checker and
    /// the served plan do not hold it). `None`: a hard row.
    fn penalty(&self, _row: usize) -> Option<f64> {
        None
    }

    /// What a row is about, in the scenario's names (`W01/SKU3`, an offer id, ...).
    fn row_key(&self, problem: &Problem, row: usize) -> String;

    /// Whether one more unit of this family's right-hand side is a capacity a
    /// planner could buy (reported as a marginal value by what-if runs).
    fn is_capacity(&self) -> bool {
        true
    }

    /// Coefficients of one expected acceptance of `offer` by a customer in `zone`:
    /// `push(row, coefficient)`.
    fn per_accept(&self, _offer: usize, _zone: usize, _push: &mut dyn FnMut(usize, f64)) {}

    /// Coefficients of one unit of exposure of `offer` to a customer in fairness `slot`.
    fn per_exposure(&self, _offer: usize, _slot: usize, _push: &mut dyn FnMut(usize, f64)) {}

    /// Coefficients of one unit of an exposure's expected acceptance value
    /// (`value[c,o] * p[c,o]`, model version 2) of `offer`: the only coefficient
    /// that differs between two candidates of one cell by more than their `p`,
    /// since the scenario may give a value per pair.
    fn per_value(&self, _offer: usize, _push: &mut dyn FnMut(usize, f64)) {}

    /// Tests the family's rule on an allocation, re-derived from the spec (not
    /// from [`Family::per_accept`]), so a wrong coefficient cannot hide itself.
    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker);

    /// Stores the rows' prices (objective lost per unit of tightening) in `out`.
    fn write_prices(&self, problem: &Problem, prices: &[f64], out: &mut ShadowPrices);

    /// Reads the rows' prices back from `from` (0 where absent).
    fn read_prices(&self, problem: &Problem, from: &ShadowPrices, out: &mut [f64]);

    /// Extra columns the exact model needs for this family (e.g. the custom-offer
    /// binaries); returns their objective coefficients and kinds.
    fn exact_columns(&self, _problem: &Problem, _cands: &Candidates) -> Vec<ExactColumn> {
        Vec::new()
    }

    /// Whether the exact model builds the rows from the coefficients (`true`), or
    /// only from [`Family::exact_rows`].
    fn exact_generic_rows(&self) -> bool {
        true
    }

    /// Extra exact rows over the candidates' exposures and this family's columns.
    fn exact_rows(&self, _problem: &Problem, _cands: &Candidates) -> Vec<ExactRow> {
        Vec::new()
    }

    /// Offers this family's exact columns open or close, from their solved values.
    fn open_offers(&self, _columns: &[f64]) -> Vec<(OfferIx, bool)> {
        Vec::new()
    }
}

/// A column a family adds to the exact model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExactColumn {
    /// A binary variable.
    Binary,
    /// A continuous variable in `[lower, upper]`.
    Continuous {
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
}

/// A row a family adds to the exact model: `sum(coef * column) <= rhs`, where a
/// column is either a candidate's exposure or one of the family's own columns.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactRow {
    /// (candidate index, coefficient).
    pub exposures: Vec<(usize, f64)>,
    /// (index into the family's own columns, coefficient).
    pub own: Vec<(usize, f64)>,
    /// `<=` or `=`.
    pub sense: Sense,
    /// Right-hand side.
    pub rhs: f64,
    /// The family's own row (local index) whose price this row's dual is, if any.
    pub price_of: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::Checker;

    /// A lower bound reads as one: `0 < 30`, where the negated upper bound
    /// it was checked as said `-0 > -30`; the tolerance is the same.
    #[test]
    fn a_lower_bound_is_checked_and_stated_as_one() {
        let mut ck = Checker::new(1e-6);
        ck.ge("rule", 30.0 - 1e-6, 30.0, || "kept within the tolerance".into());
        ck.ge("rule", 0.0, 30.0, || "rule r".into());
        assert_eq!(ck.out.iter().map(|v| v.detail.as_str()).collect::<Vec<_>>(), ["rule r: 0 < 30"]);
    }
}
