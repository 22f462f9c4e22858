//! Stock: what leaves a warehouse for a SKU over the horizon is at most its
//! available units (on hand plus inbound minus safety stock).

use std::collections::HashMap;

use super::family::{Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{Problem, SkuIx, WarehouseIx};

/// The family's name.
pub const NAME: &str = "stock";

/// One row per listed (warehouse, SKU) that some arc ships from.
#[derive(Debug, Clone)]
pub struct Stock {
    /// Index into `Problem::stock` per row.
    pub rows: Vec<usize>,
    available: Vec<f64>,
}

impl Stock {
    /// The rows, in the order the network's arcs first use them.
    pub fn new(problem: &Problem, rows: Vec<usize>) -> Self {
        let available = rows.iter().map(|&si| problem.stock[si].available()).collect();
        Stock { rows, available }
    }
}

impl Family for Stock {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn rhs(&self, row: usize) -> f64 {
        self.available[row]
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        let s = &problem.stock[self.rows[row]];
        format!("{}/{}", problem.warehouses[s.warehouse as usize], problem.skus[s.sku as usize])
    }

    fn check(&self, problem: &Problem, _cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let mut shipped: HashMap<(WarehouseIx, SkuIx), f64> = HashMap::new();
        for f in &alloc.flows {
            *shipped.entry((problem.lanes[f.lane as usize].warehouse, f.sku)).or_default() += f.units;
        }
        let mut keys: Vec<_> = shipped.into_iter().collect();
        keys.sort_by_key(|&(key, _)| key);
        for ((w, s), units) in keys {
            let avail = problem.stock.iter().find(|p| p.warehouse == w && p.sku == s).map_or(0.0, |p| p.available());
            ck.le(NAME, units, avail, || format!("warehouse {} sku {}", problem.warehouses[w as usize], problem.skus[s as usize]));
        }
    }

    fn write_prices(&self, problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        for (&si, &p) in self.rows.iter().zip(prices) {
            let s = &problem.stock[si];
            out.stock.insert((s.warehouse, s.sku), p);
        }
    }

    fn read_prices(&self, problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        for (&si, v) in self.rows.iter().zip(out) {
            let s = &problem.stock[si];
            *v = from.stock.get(&(s.warehouse, s.sku)).copied().unwrap_or(0.0);
        }
    }
}
