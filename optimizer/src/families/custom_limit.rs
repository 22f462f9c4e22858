//! The custom-offer (SKU-proliferation) limit: at most `K` customized offers in
//! use. It makes the model a MIP: the exact solver adds one binary per custom
//! offer with candidates (`x[c,o] <= y[o]`, summed per offer, and
//! `sum y <= K`); the decomposition's relaxation dualizes
//! `sum_o sum_c x[c,o] / n[o] <= K` as one row.

use super::family::{Checker, CustomLimitMode, ExactColumn, ExactRow, Family, Scope, Sense};
use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::{OfferIx, Problem};

/// The family's name (also the reason of a closed custom offer).
pub const NAME: &str = "custom_limit";

/// The limit in the form the scope asks for (see [`CustomLimitMode`]).
#[derive(Debug, Clone)]
pub struct CustomLimit {
    mode: CustomLimitMode,
    limit: f64,
    custom: Vec<bool>,
    /// Candidates per offer.
    offer_size: Vec<f64>,
}

impl CustomLimit {
    /// The limit of `scope`'s policy; a family without rows or columns when the
    /// problem is not a MIP.
    pub fn new(scope: &Scope) -> Self {
        let problem = scope.problem;
        let mode = if problem.has_custom_limit() { scope.custom_limit } else { CustomLimitMode::Off };
        CustomLimit {
            mode,
            limit: problem.policy.max_custom_offers.map_or(f64::INFINITY, f64::from),
            custom: problem.offers.iter().map(|o| o.custom).collect(),
            offer_size: scope.offer_size.clone(),
        }
    }

    /// The custom offers that get a binary: those with candidates.
    fn binary_offers(&self) -> Vec<OfferIx> {
        (0..self.custom.len() as u32).filter(|&o| self.custom[o as usize] && self.offer_size[o as usize] > 0.0).collect()
    }
}

impl Family for CustomLimit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn rows(&self) -> usize {
        (self.mode == CustomLimitMode::Relaxed) as usize
    }

    fn rhs(&self, _row: usize) -> f64 {
        self.limit
    }

    fn row_key(&self, _problem: &Problem, _row: usize) -> String {
        "custom offers in use".to_string()
    }

    fn is_capacity(&self) -> bool {
        false
    }

    fn per_exposure(&self, offer: usize, _slot: usize, push: &mut dyn FnMut(usize, f64)) {
        if self.mode == CustomLimitMode::Relaxed && self.custom[offer] {
            push(0, 1.0 / self.offer_size[offer].max(1.0));
        }
    }

    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        if let Some(limit) = problem.policy.max_custom_offers {
            let mut used = vec![false; problem.offers.len()];
            for k in 0..cands.len() {
                let o = cands.offer[k] as usize;
                used[o] |= problem.offers[o].custom && alloc.x[k] > ck.tol;
            }
            let used = used.iter().filter(|&&u| u).count();
            ck.le(NAME, used as f64, f64::from(limit), || "custom offers in use".to_string());
        }
    }

    fn write_prices(&self, _problem: &Problem, _prices: &[f64], _out: &mut ShadowPrices) {}

    fn read_prices(&self, _problem: &Problem, _from: &ShadowPrices, _out: &mut [f64]) {}

    fn exact_columns(&self, _problem: &Problem, _cands: &Candidates) -> Vec<ExactColumn> {
        match self.mode {
            CustomLimitMode::Binaries => self.binary_offers().iter().map(|_| ExactColumn::Binary).collect(),
            _ => Vec::new(),
        }
    }

    fn exact_rows(&self, _problem: &Problem, cands: &Candidates) -> Vec<ExactRow> {
        if self.mode != CustomLimitMode::Binaries {
            return Vec::new();
        }
        let offers = self.binary_offers();
        let mut position = vec![usize::MAX; self.custom.len()];
        for (i, &o) in offers.iter().enumerate() {
            position[o as usize] = i;
        }
        let mut rows: Vec<ExactRow> = offers
            .iter()
            .enumerate()
            .map(|(i, &o)| ExactRow { exposures: Vec::new(), own: vec![(i, -self.offer_size[o as usize])], sense: Sense::Le, rhs: 0.0, price_of: None })
            .collect();
        for k in 0..cands.len() {
            let at = position[cands.offer[k] as usize];
            if at != usize::MAX {
                rows[at].exposures.push((k, 1.0));
            }
        }
        rows.push(ExactRow { exposures: Vec::new(), own: (0..offers.len()).map(|i| (i, 1.0)).collect(), sense: Sense::Le, rhs: self.limit, price_of: None });
        rows
    }

    fn exact_generic_rows(&self) -> bool {
        false
    }

    fn open_offers(&self, columns: &[f64]) -> Vec<(OfferIx, bool)> {
        self.binary_offers().into_iter().zip(columns).map(|(o, &y)| (o, y > 0.5)).collect()
    }
}
