//! Lane capacity: units shipped on a capacitated lane over the horizon.

use super::family::{Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{LaneIx, Problem};

/// The family's name.
pub const NAME: &str = "lane_capacity";

/// One row per capacitated lane that some arc uses.
#[derive(Debug, Clone)]
pub struct Lane {
    /// The lane of each row.
    pub rows: Vec<LaneIx>,
    capacity: Vec<f64>,
}

impl Lane {
    /// The rows, in the order the network's arcs first use them.
    pub fn new(problem: &Problem, rows: Vec<LaneIx>) -> Self {
        let capacity = rows.iter().map(|&l| problem.lanes[l as usize].capacity.unwrap_or(f64::INFINITY)).collect();
        Lane { rows, capacity }
    }
}

impl Family for Lane {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn rhs(&self, row: usize) -> f64 {
        self.capacity[row]
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        let l = &problem.lanes[self.rows[row] as usize];
        format!("{}->{}", problem.warehouses[l.warehouse as usize], problem.zones[l.zone as usize].id)
    }

    fn check(&self, problem: &Problem, _cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let mut on_lane = vec![0.0; problem.lanes.len()];
        for f in &alloc.flows {
            on_lane[f.lane as usize] += f.units;
        }
        for (l, &units) in on_lane.iter().enumerate() {
            if let Some(cap) = problem.lanes[l].capacity {
                ck.le(NAME, units, cap, || format!("lane {l}"));
            }
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        for (&l, &p) in self.rows.iter().zip(prices) {
            out.lane_capacity[l as usize] = p;
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        for (&l, v) in self.rows.iter().zip(out) {
            *v = from.lane_capacity.get(l as usize).copied().unwrap_or(0.0);
        }
    }
}
