//! Zone balance: in every (zone, SKU, time bucket) with demand, shipments plus
//! unmet baseline equal the baseline plus the offers' expected units (an offer's
//! units fall in the bucket of its contact date). Its price is the plan's bid
//! price for one more unit in that zone and bucket.
//!
//! Written as `offer units - shipments - unmet = -baseline`, so the price of the
//! row (objective lost per unit of tightening) is the bid price, `>= 0`.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use super::family::{Checker, Family, Scope, Sense};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{BaselineDemand, BucketIx, OfferIx, Problem, SkuIx, ZoneIx};

/// The family's name.
pub const NAME: &str = "zone_balance";

/// One row per (zone, SKU, bucket) that has baseline demand or that some
/// candidate's offer reaches, sorted by (zone, SKU, bucket).
#[derive(Debug, Clone)]
pub struct Balance {
    /// (zone, SKU, bucket) and baseline units per row.
    pub rows: Vec<(BalanceKey, f64)>,
    /// Row of each (zone, SKU, bucket).
    pub row_of: HashMap<BalanceKey, usize>,
    /// Bill of materials per offer: (SKU, units per acceptance).
    items: Vec<Vec<(SkuIx, f64)>>,
    /// The bucket each offer's units fall in.
    offer_bucket: Vec<BucketIx>,
    /// Whether the scenario cuts the horizon into buckets (row keys name them).
    bucketed: bool,
}

/// The (zone, SKU, bucket) a balance row is about.
pub type BalanceKey = (ZoneIx, SkuIx, BucketIx);

impl Balance {
    /// The rows of `scope`'s problem and candidates.
    pub fn new(scope: &Scope) -> Self {
        let problem = scope.problem;
        let mut units: BTreeMap<BalanceKey, f64> = BTreeMap::new();
        let buckets = problem.buckets().count();
        for b in problem.baseline.iter().filter(|b| b.units > 0.0) {
            // The loader cuts the baseline with the policy's buckets; a problem
            // whose `bucket_days` changed after loading must be loaded again.
            assert!((b.bucket as usize) < buckets, "a baseline row in bucket {} of {buckets}: bucket_days changed after the scenario was loaded", b.bucket);
            *units.entry((b.zone, b.sku, b.bucket)).or_default() += b.units;
        }
        let offer_bucket: Vec<BucketIx> = (0..problem.offers.len()).map(|o| problem.bucket_of(o as u32)).collect();
        let zones = scope.zones;
        let mut offer_zones = vec![false; problem.offers.len() * zones];
        for k in 0..scope.cands.len() {
            let zone = problem.customers.zone[scope.cands.customer[k] as usize] as usize;
            offer_zones[scope.cands.offer[k] as usize * zones + zone] = true;
        }
        for (o, offer) in problem.offers.iter().enumerate() {
            for z in (0..zones).filter(|&z| offer_zones[o * zones + z]) {
                for item in &offer.items {
                    units.entry((z as ZoneIx, item.sku, offer_bucket[o])).or_default();
                }
            }
        }
        let rows: Vec<(BalanceKey, f64)> = units.into_iter().collect();
        let row_of = rows.iter().enumerate().map(|(i, &(key, _))| (key, i)).collect();
        let items = problem.offers.iter().map(|o| o.items.iter().map(|i| (i.sku, i.qty)).collect()).collect();
        Balance { rows, row_of, items, offer_bucket, bucketed: problem.policy.bucket_days.is_some() }
    }

    /// The bucket offer `o`'s units fall in.
    pub fn offer_bucket(&self, o: OfferIx) -> BucketIx {
        self.offer_bucket[o as usize]
    }

    /// The row a baseline demand row enters (none for a row without units).
    pub fn baseline_row(&self, b: &BaselineDemand) -> Option<usize> {
        self.row_of.get(&(b.zone, b.sku, b.bucket)).copied()
    }
}

impl Family for Balance {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn rhs(&self, row: usize) -> f64 {
        -self.rows[row].1
    }

    fn sense(&self) -> Sense {
        Sense::Eq
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        let ((z, s, t), _) = self.rows[row];
        let key = format!("{}/{}", problem.zones[z as usize].id, problem.skus[s as usize]);
        if self.bucketed {
            format!("{key}@{}", problem.buckets().start_of(t))
        } else {
            key
        }
    }

    fn is_capacity(&self) -> bool {
        false
    }

    fn per_accept(&self, offer: usize, zone: usize, push: &mut dyn FnMut(usize, f64)) {
        for &(sku, qty) in &self.items[offer] {
            if let Some(&row) = self.row_of.get(&(zone as ZoneIx, sku, self.offer_bucket[offer])) {
                push(row, qty);
            }
        }
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        // Shipped = offer demand + baseline - unmet, per (zone, SKU, bucket of the contact date).
        let buckets = problem.buckets();
        let mut residual: HashMap<BalanceKey, f64> = HashMap::new();
        // A pair not exposed adds nothing (a served plan's `x` is mostly 0).
        for k in (0..cands.len()).filter(|&k| alloc.x[k] != 0.0) {
            let zone = problem.customers.zone[cands.customer[k] as usize];
            let bucket = buckets.of(problem.contact_date_of(cands.offer[k]));
            for item in &problem.offers[cands.offer[k] as usize].items {
                *residual.entry((zone, item.sku, bucket)).or_default() += item.qty * cands.p[k] * alloc.x[k];
            }
        }
        for f in &alloc.flows {
            *residual.entry((problem.lanes[f.lane as usize].zone, f.sku, f.bucket)).or_default() -= f.units;
        }
        for (b, &u) in problem.baseline.iter().zip(&alloc.unmet) {
            *residual.entry((b.zone, b.sku, b.bucket)).or_default() += b.units - u;
        }
        let mut keys: Vec<_> = residual.into_iter().collect();
        keys.sort_by_key(|&(key, _)| key);
        for ((z, s, t), r) in keys {
            if r.abs() > ck.tol * 10.0 {
                let detail = format!("zone {} sku {} bucket {t}: shipped differs from demand by {r}", problem.zones[z as usize].id, problem.skus[s as usize]);
                ck.push(NAME, detail);
            }
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        for (&(key, _), &p) in self.rows.iter().zip(prices) {
            out.bid_price.insert(key, p);
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        for (&(key, _), v) in self.rows.iter().zip(out) {
            *v = from.bid_price.get(&key).copied().unwrap_or(0.0);
        }
    }
}
