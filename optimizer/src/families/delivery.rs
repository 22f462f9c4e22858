//! Delivery capacity: accepted offers a zone's last mile can deliver over the horizon.

use super::family::{check_accepts_per_entity, CappedRows, Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::Problem;

/// The family's name.
pub const NAME: &str = "delivery_capacity";

/// One row per zone with a delivery capacity, in zone order.
#[derive(Debug, Clone)]
pub struct Delivery(pub CappedRows);

impl Delivery {
    /// The capacitated zones of `problem`.
    pub fn new(problem: &Problem) -> Self {
        Delivery(CappedRows::new(problem.zones.len(), |z| problem.zones[z].delivery_capacity))
    }
}

impl Family for Delivery {
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
        problem.zones[self.0.entity[row] as usize].id.clone()
    }

    fn per_accept(&self, _offer: usize, zone: usize, push: &mut dyn FnMut(usize, f64)) {
        if let Some(r) = self.0.row_of[zone] {
            push(r, 1.0);
        }
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let zones = &problem.zones;
        let entity_of = |k: usize| problem.customers.zone[cands.customer[k] as usize] as usize;
        check_accepts_per_entity(NAME, zones.len(), cands, alloc, entity_of, |z| zones[z].delivery_capacity, |z| format!("zone {}", zones[z].id), ck);
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        self.0.write(prices, &mut out.delivery);
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        self.0.read(&from.delivery, out);
    }
}
