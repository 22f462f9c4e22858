//! Budget: the expected discount cost of every exposure together is at most the
//! policy's budget.

use super::family::{Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::Problem;

/// The family's name.
pub const NAME: &str = "budget";

/// One row when the policy sets a budget, none otherwise.
#[derive(Debug, Clone)]
pub struct Budget {
    budget: Option<f64>,
    /// Discount cost of one acceptance, per offer.
    cost: Vec<f64>,
}

impl Budget {
    /// The family of `problem`'s policy.
    pub fn new(problem: &Problem) -> Self {
        Budget { budget: problem.policy.budget, cost: problem.offers.iter().map(|o| o.discount_cost).collect() }
    }
}

impl Family for Budget {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.budget.is_some() as usize
    }

    fn rhs(&self, _row: usize) -> f64 {
        self.budget.unwrap_or(f64::INFINITY)
    }

    fn row_key(&self, _problem: &Problem, _row: usize) -> String {
        NAME.to_string()
    }

    fn per_accept(&self, offer: usize, _zone: usize, push: &mut dyn FnMut(usize, f64)) {
        if self.budget.is_some() {
            push(0, self.cost[offer]);
        }
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        if let Some(b) = problem.policy.budget {
            let used: f64 = (0..cands.len()).map(|k| problem.offers[cands.offer[k] as usize].discount_cost * cands.p[k] * alloc.x[k]).sum();
            ck.le(NAME, used, b, || "total".to_string());
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        if let Some(&p) = prices.first() {
            out.budget = p;
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        if let Some(v) = out.first_mut() {
            *v = from.budget;
        }
    }
}
