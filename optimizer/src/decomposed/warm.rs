//! Where a warm re-plan starts: an earlier plan's row prices and exposures,
//! keyed by names so they map onto a changed scenario.

use std::collections::HashMap;
use std::sync::Arc;

use super::customers::SeedPlan;
use crate::allocation::Allocation;
use crate::candidates::Candidates;
use crate::families::{KeyedPrices, Layout};
use crate::model::Problem;

/// Where a re-plan starts: an earlier plan's coupling-row prices, keyed by
/// family and row key so they map onto a changed scenario's rows, the gap
/// on the offers' value that plan certified, and (when read back with them)
/// its exposures. Why: after a small change the earlier prices are close to
/// the new optimum's and the earlier plan is close to the new plan, so the
/// first repair (which may scale the earlier plan per cell, see `repair.rs`)
/// is already about as good as the earlier plan; the sample LP and the
/// windows of ascent a cold start needs to get there are skipped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmStart {
    /// The earlier plan's certified gap on the offers' value: the re-plan
    /// stops once it certifies as much (or the target gap, if tighter).
    pub offers_gap: f64,
    /// Row prices by family name and row key.
    pub prices: KeyedPrices,
    /// Offers the earlier plan closed (the custom offers it did not open, by id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed_offers: Vec<String>,
    /// The plan version it was read from (set by whoever reads it; not
    /// stored), so the re-plan's version can name where it started.
    #[serde(skip)]
    pub source: Option<String>,
    /// The earlier plan's exposures (not stored here: a plan version holds
    /// them in its eligibility table, and whoever reads the warm start reads
    /// them from there). Without them a warm re-plan repairs only responses
    /// at the earlier prices, which a plan mixed over many windows can beat.
    #[serde(skip)]
    pub exposures: Option<Arc<KeyedExposures>>,
}

impl WarmStart {
    /// The warm start a plan leaves for its re-plans: its allocation's prices
    /// on `layout`'s rows (a layout of the plan's problem) and its closed
    /// offers. Its exposures are added by [`WarmStart::with_exposures`].
    pub fn of(problem: &Problem, layout: &Layout, alloc: &Allocation) -> Self {
        let nu = layout.prices_from(problem, &alloc.prices);
        let closed_offers = problem.offers.iter().zip(&alloc.offer_open).filter(|(_, &open)| !open).map(|(o, _)| o.id.clone()).collect();
        WarmStart { offers_gap: alloc.report.offers_gap, prices: layout.keyed_prices(problem, &nu), closed_offers, source: None, exposures: None }
    }

    /// This warm start with the earlier plan's exposures.
    pub fn with_exposures(self, exposures: KeyedExposures) -> Self {
        WarmStart { exposures: Some(Arc::new(exposures)), ..self }
    }

    /// The earlier plan's open offers in `problem`, when they keep its
    /// custom-offer limit (an offer it did not know is open).
    pub(super) fn open_offers(&self, problem: &Problem) -> Option<Vec<bool>> {
        let open: Vec<bool> = problem.offers.iter().map(|o| !self.closed_offers.contains(&o.id)).collect();
        let custom_open = problem.offers.iter().zip(&open).filter(|(o, &open)| o.custom && open).count();
        (custom_open <= problem.policy.max_custom_offers.unwrap_or(u32::MAX) as usize).then_some(open)
    }
}

/// An earlier plan's positive exposures by customer id and offer id, names
/// interned once. Why by name: a re-plan's scenario may have gained or lost
/// customers, offers and candidates; a pair it no longer has is dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyedExposures {
    /// Customer ids, one per run of rows of one customer.
    customers: Vec<String>,
    /// Offer ids and their indices, in order of first appearance.
    offer_ix: HashMap<String, u32>,
    /// (customer, offer) as indices into the two lists, and the exposure.
    pairs: Vec<(u32, u32, f32)>,
}

impl KeyedExposures {
    /// From `(customer id, offer id, x)` rows (an eligibility table's);
    /// rows with `x <= 0` are left out.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str, f64)>) -> Self {
        let mut out = KeyedExposures::default();
        for (customer, offer, x) in rows {
            out.push(customer, offer, x);
        }
        out
    }

    /// Adds one `(customer id, offer id, x)` row (left out when `x <= 0`).
    /// A customer's rows are expected together, as a plan's tables hold
    /// them; a customer seen again later is only stored twice.
    pub fn push(&mut self, customer: &str, offer: &str, x: f64) {
        if x <= 0.0 {
            return;
        }
        if self.customers.last().is_none_or(|last| last != customer) {
            self.customers.push(customer.to_string());
        }
        let c = self.customers.len() as u32 - 1;
        let o = match self.offer_ix.get(offer) {
            Some(&o) => o,
            None => {
                let o = self.offer_ix.len() as u32;
                self.offer_ix.insert(offer.to_string(), o);
                o
            }
        };
        self.pairs.push((c, o, x as f32));
    }

    /// A plan's exposures `x` over `cands`, the candidates of `problem`.
    pub fn of(problem: &Problem, cands: &Candidates, x: &[f64]) -> Self {
        let rows = (0..problem.customers.len()).flat_map(|c| {
            (cands.customer_start[c] as usize..cands.customer_start[c + 1] as usize)
                .map(move |k| (problem.customers.id[c].as_str(), problem.offers[cands.offer[k] as usize].id.as_str(), x[k]))
        });
        KeyedExposures::from_rows(rows)
    }

    /// Number of positive exposures.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The exposures on `problem`'s customers and offers, sorted by customer
    /// then offer; pairs whose customer or offer `problem` lacks are dropped.
    pub(super) fn seed(&self, problem: &Problem) -> SeedPlan {
        let offer_ix: HashMap<&str, u32> = problem.offers.iter().enumerate().map(|(o, offer)| (offer.id.as_str(), o as u32)).collect();
        let customers = indices_in(&self.customers, &problem.customers.id);
        let mut offers: Vec<Option<u32>> = vec![None; self.offer_ix.len()];
        for (id, &o) in &self.offer_ix {
            offers[o as usize] = offer_ix.get(id.as_str()).copied();
        }
        let mut pairs: Vec<(u32, u32, f32)> =
            self.pairs.iter().filter_map(|&(c, o, x)| Some((customers[c as usize]?, offers[o as usize]?, x))).collect();
        if !pairs.is_sorted_by_key(|&(c, o, _)| (c, o)) {
            pairs.sort_unstable_by_key(|&(c, o, _)| (c, o));
        }
        SeedPlan { customer: pairs.iter().map(|p| p.0).collect(), offer: pairs.iter().map(|p| p.1).collect(), x: pairs.iter().map(|p| p.2).collect() }
    }
}

/// Each of `wanted` (ids) as an index into `ids`, `None` where `ids` lacks
/// it. Why a walk first: a re-plan of the same lineage keeps its customers
/// in the same order, so one pass matches them without hashing every id
/// (1M customers: 0.38 s of a warm re-plan's 2.4 s solve did that); an id
/// not found ahead of the last match (a customer gone, or the order
/// changed) falls back to a map of every id.
fn indices_in(wanted: &[String], ids: &[String]) -> Vec<Option<u32>> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut cursor = 0;
    for id in wanted {
        match ids[cursor..].iter().position(|candidate| candidate == id) {
            Some(ahead) => {
                cursor += ahead;
                out.push(Some(cursor as u32));
                cursor += 1;
            }
            None => {
                let index: HashMap<&str, u32> = ids.iter().enumerate().map(|(c, id)| (id.as_str(), c as u32)).collect();
                return wanted.iter().map(|id| index.get(id.as_str()).copied()).collect();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::indices_in;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn ids_are_found_in_order_and_out_of_it() {
        let all = ids(&["a", "b", "c", "d", "e"]);
        // In order, some skipped: the walk.
        assert_eq!(indices_in(&ids(&["b", "d", "e"]), &all), vec![Some(1), Some(3), Some(4)]);
        // One gone and one out of order: the map, every id still found.
        assert_eq!(indices_in(&ids(&["b", "x", "a", "e"]), &all), vec![Some(1), None, Some(0), Some(4)]);
        assert_eq!(indices_in(&ids(&["e", "a"]), &all), vec![Some(4), Some(0)]);
        assert_eq!(indices_in(&ids(&[]), &all), Vec::<Option<u32>>::new());
    }
}
