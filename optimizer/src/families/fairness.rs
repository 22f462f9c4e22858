//! Fairness of exposure: for a fair offer, the mean exposure of each protected
//! group is at least `ratio` times that of every other group with candidates:
//! `ratio * rate(h) - rate(g) <= 0`, with `rate(g)` the sum of the group's
//! exposures over its number of candidates.

use foldhash::{HashMap, HashMapExt};

use super::family::{Checker, ExactColumn, ExactRow, Family, Scope, Sense};
use crate::allocation::{Allocation, FairnessPrice, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{OfferIx, Problem};

/// The family's name.
pub const NAME: &str = "fairness";

/// One row per fair offer and ordered pair of groups that both have candidates.
#[derive(Debug, Clone)]
pub struct Fairness {
    /// (offer, group g, reference group h) per row.
    pub rows: Vec<(OfferIx, u32, u32)>,
    ratio: f64,
    slots: usize,
    /// Candidates per `offer * slots + slot`.
    slot_size: Vec<f64>,
    /// Rows of each offer (a contiguous range).
    of_offer: Vec<std::ops::Range<usize>>,
}

impl Fairness {
    /// The rows of `scope` (none without a fairness ratio).
    pub fn new(scope: &Scope) -> Self {
        let problem = scope.problem;
        let (n_o, slots, groups) = (problem.offers.len(), scope.slots, problem.groups.len());
        let mut rows = Vec::new();
        let mut of_offer = vec![0..0; n_o];
        if problem.policy.fairness_min_ratio.is_some() {
            for o in (0..n_o).filter(|&o| problem.offers[o].fair) {
                let present: Vec<u32> = (0..groups as u32).filter(|&g| scope.slot_size[o * slots + g as usize] > 0.0).collect();
                if present.len() >= 2 {
                    let first = rows.len();
                    for &g in &present {
                        for &h in present.iter().filter(|&&h| h != g) {
                            rows.push((o as OfferIx, g, h));
                        }
                    }
                    of_offer[o] = first..rows.len();
                }
            }
        }
        Fairness { rows, ratio: problem.policy.fairness_min_ratio.unwrap_or(0.0), slots, slot_size: scope.slot_size.clone(), of_offer }
    }
}

impl Fairness {
    /// (offer, group) pairs that enter some row, sorted: one exact rate column each.
    fn rate_keys(&self) -> Vec<(usize, usize)> {
        let mut keys: Vec<(usize, usize)> = self.rows.iter().flat_map(|&(o, g, h)| [(o as usize, g as usize), (o as usize, h as usize)]).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

impl Family for Fairness {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn rhs(&self, _row: usize) -> f64 {
        0.0
    }

    fn row_key(&self, problem: &Problem, row: usize) -> String {
        let (o, g, h) = self.rows[row];
        format!("{} {}/{}", problem.offers[o as usize].id, problem.groups[g as usize], problem.groups[h as usize])
    }

    fn is_capacity(&self) -> bool {
        false
    }

    fn per_exposure(&self, offer: usize, slot: usize, push: &mut dyn FnMut(usize, f64)) {
        let size = self.slot_size[offer * self.slots + slot];
        for r in self.of_offer[offer].clone() {
            let (_, g, h) = self.rows[r];
            if g as usize == slot {
                push(r, -1.0 / size);
            } else if h as usize == slot {
                push(r, self.ratio / size);
            }
        }
    }

    /// The exact model keeps O(candidates) nonzeros: one rate column per (offer,
    /// group), defined by `sum(x of g) / n_g - r_g = 0`, and the rows compare
    /// two rates (`ratio * r_h - r_g <= 0`), the same rows in `x` as the
    /// coefficients describe.
    fn exact_generic_rows(&self) -> bool {
        false
    }

    fn exact_columns(&self, _problem: &Problem, _cands: &Candidates) -> Vec<ExactColumn> {
        self.rate_keys().iter().map(|_| ExactColumn::Continuous { lower: 0.0, upper: 1.0 }).collect()
    }

    fn exact_rows(&self, problem: &Problem, cands: &Candidates) -> Vec<ExactRow> {
        let keys = self.rate_keys();
        let mut rows: Vec<ExactRow> = keys
            .iter()
            .enumerate()
            .map(|(i, _)| ExactRow { exposures: Vec::new(), own: vec![(i, -1.0)], sense: Sense::Eq, rhs: 0.0, price_of: None })
            .collect();
        let groups = problem.groups.len();
        for k in 0..cands.len() {
            let o = cands.offer[k] as usize;
            let slot = problem.customers.group[cands.customer[k] as usize].map_or(groups, |g| g as usize);
            if let Ok(i) = keys.binary_search(&(o, slot)) {
                rows[i].exposures.push((k, 1.0 / self.slot_size[o * self.slots + slot]));
            }
        }
        for (r, &(o, g, h)) in self.rows.iter().enumerate() {
            let rate = |s: u32| keys.binary_search(&(o as usize, s as usize)).expect("a rate per row's group");
            let own = vec![(rate(h), self.ratio), (rate(g), -1.0)];
            rows.push(ExactRow { exposures: Vec::new(), own, sense: Sense::Le, rhs: 0.0, price_of: Some(r) });
        }
        rows
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let Some(ratio) = problem.policy.fairness_min_ratio else { return };
        let mut groups: HashMap<(u32, u32), (f64, f64)> = HashMap::new();
        for k in 0..cands.len() {
            let o = cands.offer[k];
            if let (true, Some(g)) = (problem.offers[o as usize].fair, problem.customers.group[cands.customer[k] as usize]) {
                let e = groups.entry((o, g)).or_default();
                e.0 += alloc.x[k];
                e.1 += 1.0;
            }
        }
        let mut keys: Vec<_> = groups.iter().collect();
        keys.sort_by_key(|(key, _)| **key);
        for &(&(o, g), &(sum_g, n_g)) in &keys {
            for &(&(o2, h), &(sum_h, n_h)) in &keys {
                if o2 == o && h != g {
                    ck.le(NAME, ratio * sum_h / n_h, sum_g / n_g, || format!("offer {} groups {g}/{h}", problem.offers[o as usize].id));
                }
            }
        }
    }

    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        for (&(offer, group, reference), &price) in self.rows.iter().zip(prices) {
            out.fairness.push(FairnessPrice { offer, group, reference, price });
        }
    }

    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        let fair: HashMap<(OfferIx, u32, u32), f64> = from.fairness.iter().map(|f| ((f.offer, f.group, f.reference), f.price)).collect();
        for (key, v) in self.rows.iter().zip(out) {
            *v = fair.get(key).copied().unwrap_or(0.0);
        }
    }
}
