//! Redemptions: an offer's expected acceptances are at most its cap.

use super::family::{check_accepts_per_entity, CappedRows, Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::Problem;

/// The family's name.
pub const NAME: &str = "redemptions";

/// One row per offer with a redemption cap, in offer order.
#[derive(Debug, Clone)]
pub struct Redemptions(pub CappedRows);

impl Redemptions {
    /// The capped offers of `problem`.
    pub fn new(problem: &Problem) -> Self {
        Redemptions(CappedRows::new(problem.offers.len(), |o| problem.offers[o].max_redemptions))
    }
}

impl Family for Redemptions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.0.entity.len()
    }

    fn rhs(&self, row: usize) -> f64 {
        self.0.cap[row]
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        problem.offers[self.0.entity[row] as usize].id.clone()
    }

    fn per_accept(&self, offer: usize, _zone: usize, push: &mut dyn FnMut(usize, f64)) {
        if let Some(r) = self.0.row_of[offer] {
            push(r, 1.0);
        }
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let offers = &problem.offers;
        let entity_of = |k: usize| cands.offer[k] as usize;
        check_accepts_per_entity(NAME, offers.len(), cands, alloc, entity_of, |o| offers[o].max_redemptions, |o| format!("offer {}", offers[o].id), ck);
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        self.0.write(prices, &mut out.redemptions);
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        self.0.read(&from.redemptions, out);
    }
}
