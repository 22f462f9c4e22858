//! Stock: what leaves a warehouse for a SKU is at most its available units (on
//! hand plus inbound minus safety stock). With time buckets (model version 2)
//! the rule is cumulative: what leaves by the end of bucket `t` is at most the
//! units on hand plus the receipts of buckets up to `t`, so a receipt cannot
//! serve an earlier bucket's demand.

use std::collections::BTreeMap;

use super::family::{Checker, Family};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{BucketIx, Problem, SkuIx, WarehouseIx};

/// The family's name.
pub const NAME: &str = "stock";

/// One row per listed (warehouse, SKU) that some arc ships from and bucket
/// that can bind ([`super::network::stock_buckets`]), a stock point's rows
/// consecutive and in bucket order.
#[derive(Debug, Clone)]
pub struct Stock {
    /// Index into `Problem::stock` and the bucket the row counts through, per row.
    pub rows: Vec<(usize, BucketIx)>,
    available: Vec<f64>,
    bucketed: bool,
}

impl Stock {
    /// The rows, in the order the network's arcs first use them.
    pub fn new(problem: &Problem, rows: Vec<(usize, BucketIx)>) -> Self {
        let available = rows.iter().map(|&(si, t)| problem.available_through(si, t)).collect();
        Stock { rows, available, bucketed: problem.policy.bucket_days.is_some() }
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
        let (si, t) = self.rows[row];
        let s = &problem.stock[si];
        let key = format!("{}/{}", problem.warehouses[s.warehouse as usize], problem.skus[s.sku as usize]);
        if self.bucketed {
            format!("{key} by {}", problem.buckets().last_day_of(t))
        } else {
            key
        }
    }

    fn check(&self, problem: &Problem, _cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        // Shipped per (warehouse, SKU, bucket), then every bucket's running total.
        let buckets = problem.buckets().count();
        let mut shipped: BTreeMap<(WarehouseIx, SkuIx), Vec<f64>> = BTreeMap::new();
        for f in &alloc.flows {
            shipped.entry((problem.lanes[f.lane as usize].warehouse, f.sku)).or_insert_with(|| vec![0.0; buckets])[f.bucket as usize] += f.units;
        }
        for ((w, s), per_bucket) in shipped {
            let point = problem.stock.iter().position(|p| p.warehouse == w && p.sku == s);
            let mut running = 0.0;
            for (t, units) in per_bucket.into_iter().enumerate() {
                running += units;
                let avail = point.map_or(0.0, |si| problem.available_through(si, t as BucketIx));
                ck.le(NAME, running, avail, || format!("warehouse {} sku {} through bucket {t}", problem.warehouses[w as usize], problem.skus[s as usize]));
            }
        }
    }

    fn write_prices(&self, problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        for (&(si, t), &p) in self.rows.iter().zip(prices) {
            let s = &problem.stock[si];
            out.stock.insert((s.warehouse, s.sku, t), p);
        }
    }

    fn read_prices(&self, problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        for (&(si, t), v) in self.rows.iter().zip(out) {
            let s = &problem.stock[si];
            *v = from.stock.get(&(s.warehouse, s.sku, t)).copied().unwrap_or(0.0);
        }
    }
}
