//! Zone balance: in every (zone, SKU) with demand, shipments plus unmet baseline
//! equal the baseline plus the offers' expected units. Its price is the plan's
//! bid price for one more unit in that zone.
//!
//! Written as `offer units - shipments - unmet = -baseline`, so the price of the
//! row (objective lost per unit of tightening) is the bid price, `>= 0`.

use std::collections::{BTreeMap, HashMap};

use super::family::{Checker, Family, Scope, Sense};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{Problem, SkuIx, ZoneIx};

/// The family's name.
pub const NAME: &str = "zone_balance";

/// One row per (zone, SKU) that has baseline demand or that some candidate's
/// offer reaches, sorted by (zone, SKU).
#[derive(Debug, Clone)]
pub struct Balance {
    /// (zone, SKU, baseline units) per row.
    pub rows: Vec<(ZoneIx, SkuIx, f64)>,
    /// Row of each (zone, SKU).
    pub row_of: HashMap<(ZoneIx, SkuIx), usize>,
    /// Bill of materials per offer: (SKU, units per acceptance).
    items: Vec<Vec<(SkuIx, f64)>>,
}

impl Balance {
    /// The rows of `scope`'s problem and candidates.
    pub fn new(scope: &Scope) -> Self {
        let problem = scope.problem;
        let mut units: BTreeMap<(ZoneIx, SkuIx), f64> = BTreeMap::new();
        for b in problem.baseline.iter().filter(|b| b.units > 0.0) {
            *units.entry((b.zone, b.sku)).or_default() += b.units;
        }
        let zones = scope.zones;
        let mut offer_zones = vec![false; problem.offers.len() * zones];
        for k in 0..scope.cands.len() {
            let zone = problem.customers.zone[scope.cands.customer[k] as usize] as usize;
            offer_zones[scope.cands.offer[k] as usize * zones + zone] = true;
        }
        for (o, offer) in problem.offers.iter().enumerate() {
            for z in (0..zones).filter(|&z| offer_zones[o * zones + z]) {
                for item in &offer.items {
                    units.entry((z as ZoneIx, item.sku)).or_default();
                }
            }
        }
        let rows: Vec<(ZoneIx, SkuIx, f64)> = units.into_iter().map(|((z, s), u)| (z, s, u)).collect();
        let row_of = rows.iter().enumerate().map(|(i, &(z, s, _))| ((z, s), i)).collect();
        let items = problem.offers.iter().map(|o| o.items.iter().map(|i| (i.sku, i.qty)).collect()).collect();
        Balance { rows, row_of, items }
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
        -self.rows[row].2
    }

    fn sense(&self) -> Sense {
        Sense::Eq
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        let (z, s, _) = self.rows[row];
        format!("{}/{}", problem.zones[z as usize].id, problem.skus[s as usize])
    }

    fn is_capacity(&self) -> bool {
        false
    }

    fn per_accept(&self, offer: usize, zone: usize, push: &mut dyn FnMut(usize, f64)) {
        for &(sku, qty) in &self.items[offer] {
            if let Some(&row) = self.row_of.get(&(zone as ZoneIx, sku)) {
                push(row, qty);
            }
        }
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        // Shipped = offer demand + baseline - unmet, per (zone, SKU).
        let mut residual: HashMap<(ZoneIx, SkuIx), f64> = HashMap::new();
        for k in 0..cands.len() {
            let zone = problem.customers.zone[cands.customer[k] as usize];
            for item in &problem.offers[cands.offer[k] as usize].items {
                *residual.entry((zone, item.sku)).or_default() += item.qty * cands.p[k] * alloc.x[k];
            }
        }
        for f in &alloc.flows {
            *residual.entry((problem.lanes[f.lane as usize].zone, f.sku)).or_default() -= f.units;
        }
        for (b, &u) in problem.baseline.iter().zip(&alloc.unmet) {
            *residual.entry((b.zone, b.sku)).or_default() += b.units - u;
        }
        let mut keys: Vec<_> = residual.into_iter().collect();
        keys.sort_by_key(|&(key, _)| key);
        for ((z, s), r) in keys {
            if r.abs() > ck.tol * 10.0 {
                let detail = format!("zone {} sku {}: shipped differs from demand by {r}", problem.zones[z as usize].id, problem.skus[s as usize]);
                ck.push(NAME, detail);
            }
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        for (&(z, s, _), &p) in self.rows.iter().zip(prices) {
            out.bid_price.insert((z, s), p);
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        for (&(z, s, _), v) in self.rows.iter().zip(out) {
            *v = from.bid_price.get(&(z, s)).copied().unwrap_or(0.0);
        }
    }
}
