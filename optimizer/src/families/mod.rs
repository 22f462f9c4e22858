//! Coupling constraint families: every constraint that ties customers together,
//! each written once, in its own module.
//!
//! A family says, in one place:
//! - its **rows** and right-hand sides (`A x <= rhs`, or `=` for [`Sense::Eq`]);
//! - its **coefficients** on the customers' exposures, by *cell*: per expected
//!   acceptance of an offer in a zone ([`Family::per_accept`]) and per unit of
//!   exposure of an offer to a fairness slot ([`Family::per_exposure`]), and per
//!   unit of expected acceptance value of an offer ([`Family::per_value`], whose
//!   candidates differ by their per-pair values);
//! - its **name**, used in eligibility reasons (`not_selected:<name>`), KPIs,
//!   checker violations and marginal-value reports, and the **label** of each row;
//! - how the **checker** tests it, re-derived from the spec ([`Family::check`]);
//! - how its **shadow prices** are stored in [`ShadowPrices`] and read back.
//!
//! Everything else is generic over the [`Layout`] (all families' rows in one
//! vector): the exact model's rows (`exact.rs`), the decomposition's right-hand
//! side, preconditioner, cell prices and gradient (`decomposed/mod.rs`), the
//! repair LP (`decomposed/repair.rs`), the eligibility reasons (`plan.rs`), the
//! checker (`feasibility.rs`) and the what-if marginal values. Adding a family is
//! one new module implementing [`Family`], listed in [`standard`] (or handed to
//! the `*_with` entry points, as `tests/families.rs` does with a toy family).
//!
//! The network side (shipments and unmet baseline) enters three families:
//! [`balance`], [`stock`] and [`lane`]; its columns are the [`Arc`]s the layout
//! builds from them, shared by every solver.

pub mod acceptance_cap;
pub mod balance;
pub mod family;
pub mod network;
pub mod budget;
pub mod custom_limit;
pub mod delivery;
pub mod fairness;
pub mod lane;
pub mod redemptions;
pub mod rules;
pub mod stock;

pub use family::{Checker, CustomLimitMode, ExactColumn, ExactRow, Family, Scope, Sense, Violation};
pub use network::Arc;

use crate::allocation::{Allocation, ShadowPrices};
use crate::candidates::Candidates;
use crate::model::Problem;

/// What scales a cell's coefficient ([`Layout::cell_coefs`]) into a
/// candidate's: its expected acceptances (`p`), its exposure itself, or its
/// expected acceptance value (`value * p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoefScale {
    /// Times `p`: a row on expected acceptances.
    P,
    /// As it is: a row on exposures.
    One,
    /// Times `value * p`: a row on expected acceptance value.
    ValueP,
}

impl CoefScale {
    /// The candidate's coefficient from the cell's `a`.
    pub fn apply(self, a: f64, p: f64, value: f64) -> f64 {
        match self {
            CoefScale::P => a * p,
            CoefScale::One => a,
            CoefScale::ValueP => a * value * p,
        }
    }
}

/// Every family's rows laid out in one vector, with the coefficients by cell and
/// the network's columns: what every solver iterates over.
pub struct Layout {
    /// The zone balance (its rows also carry the shipments and unmet baseline).
    pub balance: balance::Balance,
    families: Vec<Box<dyn Family>>,
    /// First global row of each family, plus the total at the end.
    offsets: Vec<usize>,
    /// Shipment arcs.
    pub arcs: Vec<Arc>,
    /// Zones.
    pub zones: usize,
    /// Fairness slots.
    pub slots: usize,
    /// Candidates per `offer * slots + slot`.
    pub slot_size: Vec<f64>,
    /// Candidates per offer.
    pub offer_size: Vec<f64>,
    accept: Csr,
    exposure: Csr,
    value: Csr,
}

/// Builds the families beyond the standard ones for one model (a scenario's own
/// rules, or the toy family of `tests/families.rs`).
pub type ExtraFamilies = dyn Fn(&Scope) -> Vec<Box<dyn Family>> + Sync;

/// No family beyond the standard ones.
pub fn no_extra(_: &Scope) -> Vec<Box<dyn Family>> {
    Vec::new()
}

/// Sparse coefficients by cell: `(global row, coefficient)` lists.
#[derive(Debug, Default)]
struct Csr {
    start: Vec<usize>,
    row: Vec<usize>,
    coef: Vec<f64>,
}

impl Csr {
    fn build(cells: usize, mut fill: impl FnMut(usize, &mut dyn FnMut(usize, f64))) -> Self {
        let mut csr = Csr { start: Vec::with_capacity(cells + 1), ..Csr::default() };
        csr.start.push(0);
        for cell in 0..cells {
            fill(cell, &mut |row, coef| {
                if coef != 0.0 {
                    csr.row.push(row);
                    csr.coef.push(coef);
                }
            });
            csr.start.push(csr.row.len());
        }
        csr
    }

    fn of(&self, cell: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.start[cell]..self.start[cell + 1];
        self.row[r.clone()].iter().copied().zip(self.coef[r].iter().copied())
    }
}

/// The standard families of `shared/spec/model.md`, in layout order after the
/// zone balance: stock, lane capacity, budget, redemptions, delivery capacity,
/// fairness, (relaxed) the custom-offer limit, and the scenario's volume rules.
pub fn standard(scope: &Scope, balance: &balance::Balance) -> (Vec<Box<dyn Family>>, Vec<Arc>) {
    let (stock, lane, arcs) = network::arcs(scope, balance);
    let families: Vec<Box<dyn Family>> = vec![
        Box::new(stock),
        Box::new(lane),
        Box::new(budget::Budget::new(scope.problem)),
        Box::new(redemptions::family(scope.problem)),
        Box::new(delivery::family(scope.problem)),
        Box::new(fairness::Fairness::new(scope)),
        Box::new(custom_limit::CustomLimit::new(scope)),
        Box::new(rules::Rules::new(scope)),
    ];
    (families, arcs)
}

impl Layout {
    /// The standard families plus `extra` ones (appended in order).
    pub fn new(scope: &Scope, extra: Vec<Box<dyn Family>>) -> Self {
        let balance = balance::Balance::new(scope);
        let (mut families, mut arcs) = standard(scope, &balance);
        families.extend(extra);
        let mut offsets = vec![0, balance.rows()];
        for f in &families {
            offsets.push(offsets.last().expect("non-empty") + f.rows());
        }
        // Arcs were laid out with family-local rows: shift them to global rows.
        let (stock_at, lane_at) = (offsets[1], offsets[2]);
        for a in &mut arcs {
            a.shift(stock_at, lane_at);
        }
        let (zones, slots, n_o) = (scope.zones, scope.slots, scope.problem.offers.len());
        let all: Vec<(usize, &dyn Family)> =
            std::iter::once(&balance as &dyn Family).chain(families.iter().map(|f| f.as_ref())).enumerate().collect();
        // One kind of coefficient of every family, by cell, at global rows.
        let by_cell = |cells: usize, coefs: &dyn Fn(&dyn Family, usize, &mut dyn FnMut(usize, f64))| {
            Csr::build(cells, |cell, push| {
                for &(i, f) in &all {
                    let at = offsets[i];
                    coefs(f, cell, &mut |r, a| push(at + r, a));
                }
            })
        };
        let accept = by_cell(n_o * zones, &|f, cell, push| f.per_accept(cell / zones, cell % zones, push));
        let exposure = by_cell(n_o * slots, &|f, cell, push| f.per_exposure(cell / slots, cell % slots, push));
        let value = by_cell(n_o, &|f, o, push| f.per_value(o, push));
        Layout {
            balance,
            families,
            offsets,
            arcs,
            zones,
            slots,
            slot_size: scope.slot_size.clone(),
            offer_size: scope.offer_size.clone(),
            accept,
            exposure,
            value,
        }
    }

    /// Number of rows of every family together.
    pub fn total(&self) -> usize {
        *self.offsets.last().expect("non-empty")
    }

    /// Every family with its first global row, in layout order.
    pub fn families(&self) -> impl Iterator<Item = (usize, &dyn Family)> + '_ {
        std::iter::once(&self.balance as &dyn Family)
            .chain(self.families.iter().map(|f| f.as_ref()))
            .enumerate()
            .map(|(i, f)| (self.offsets[i], f))
    }

    /// Index (in [`Layout::families`] order) of the family that owns a global row.
    pub fn family_of(&self, row: usize) -> usize {
        self.offsets.partition_point(|&o| o <= row) - 1
    }

    /// Number of families.
    pub fn family_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The global rows of the family named `name` (empty when it has none).
    pub fn rows_of(&self, name: &str) -> std::ops::Range<usize> {
        self.families().find(|(_, f)| f.name() == name).map_or(0..0, |(at, f)| at..at + f.rows())
    }

    /// Every soft row (global index) with its penalty ([`Family::penalty`]).
    pub fn soft_rows(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.families().flat_map(|(at, f)| (0..f.rows()).filter_map(move |r| f.penalty(r).map(|p| (at + r, p))))
    }

    /// The highest price of every row: a soft row's penalty, else unbounded.
    pub fn price_caps(&self) -> Vec<f64> {
        let mut cap = vec![f64::INFINITY; self.total()];
        for (row, penalty) in self.soft_rows() {
            cap[row] = penalty;
        }
        cap
    }

    /// Right-hand side of every row.
    pub fn rhs(&self) -> Vec<f64> {
        let mut rhs = vec![0.0; self.total()];
        for (at, f) in self.families() {
            for (r, v) in rhs[at..at + f.rows()].iter_mut().enumerate() {
                *v = f.rhs(r);
            }
        }
        rhs
    }

    /// Coefficients of one expected acceptance in cell `offer * zones + zone`.
    pub fn accept_coefs(&self, cell: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.accept.of(cell)
    }

    /// Coefficients of one unit of exposure in cell `offer * slots + slot`.
    pub fn exposure_coefs(&self, cell: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.exposure.of(cell)
    }

    /// Coefficients of one unit of expected acceptance value (`value * p`) of offer `o`.
    pub fn value_coefs(&self, o: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.value.of(o)
    }

    /// Whether any row has a coefficient on acceptance value (a `value` rule):
    /// the solvers then also sum `value * p * x` per offer.
    pub fn has_value_rows(&self) -> bool {
        !self.value.row.is_empty()
    }

    /// Coefficients of one candidate's exposure `x` on every row: its offer `o`
    /// in `zone` and fairness `slot`, with acceptance probability `p` and
    /// acceptance value `value`. The one place a candidate's column is assembled
    /// from its cells (the exact model, the served plan and the reasons read it).
    pub fn pair_coefs(&self, o: usize, zone: usize, slot: usize, p: f64, value: f64) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.cell_coefs(o, zone, slot).map(move |(r, a, scale)| (r, scale.apply(a, p, value)))
    }

    /// The coefficients [`Layout::pair_coefs`] scales, in its order: what every
    /// candidate of offer `o` in `zone` and fairness `slot` has, before its
    /// own `p` and value.
    pub fn cell_coefs(&self, o: usize, zone: usize, slot: usize) -> impl Iterator<Item = (usize, f64, CoefScale)> + '_ {
        self.accept_coefs(o * self.zones + zone)
            .map(|(r, a)| (r, a, CoefScale::P))
            .chain(self.exposure_coefs(o * self.slots + slot).map(|(r, a)| (r, a, CoefScale::One)))
            .chain(self.value_coefs(o).map(|(r, a)| (r, a, CoefScale::ValueP)))
    }

    /// The rows' prices read from [`ShadowPrices`] (e.g. a sample's), `>= 0`.
    pub fn prices_from(&self, problem: &Problem, from: &ShadowPrices) -> Vec<f64> {
        let mut nu = vec![0.0; self.total()];
        for (at, f) in self.families() {
            f.read_prices(problem, from, &mut nu[at..at + f.rows()]);
        }
        for (v, cap) in nu.iter_mut().zip(self.price_caps()) {
            *v = v.max(0.0).min(cap);
        }
        nu
    }

    /// The rows' nonzero prices keyed by family name and row key
    /// ([`Family::row_key`]): prices that outlive this layout, so a later
    /// problem of the same scenario (a stock receipt, a demand shock, a rule
    /// added) can start from them ([`Layout::prices_from_keyed`]).
    pub fn keyed_prices(&self, problem: &Problem, prices: &[f64]) -> KeyedPrices {
        let mut out = KeyedPrices::new();
        for (at, f) in self.families() {
            for r in (0..f.rows()).filter(|&r| prices[at + r] != 0.0 && prices[at + r].is_finite()) {
                out.entry(f.name().to_string()).or_default().insert(f.row_key(problem, r), prices[at + r]);
            }
        }
        out
    }

    /// This layout's row prices from keyed ones: a row whose family and key
    /// are not there starts at 0; every price is kept within the row's cap
    /// (`>= 0`, a soft row's at most its penalty).
    pub fn prices_from_keyed(&self, problem: &Problem, keyed: &KeyedPrices) -> Vec<f64> {
        let mut nu = vec![0.0; self.total()];
        for (at, f) in self.families() {
            let Some(rows) = keyed.get(f.name()) else { continue };
            for (r, v) in nu[at..at + f.rows()].iter_mut().enumerate() {
                *v = rows.get(&f.row_key(problem, r)).copied().unwrap_or(0.0);
            }
        }
        for (v, cap) in nu.iter_mut().zip(self.price_caps()) {
            *v = v.max(0.0).min(cap);
        }
        nu
    }

    /// Row prices of another layout of the same problem carried over family by
    /// family (a family whose rows changed starts at 0).
    pub fn carry(&self, from: &Layout, prices: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.total()];
        let sources: Vec<(usize, &dyn Family)> = from.families().collect();
        for (at, f) in self.families() {
            if let Some(&(src, g)) = sources.iter().find(|(_, g)| g.name() == f.name() && g.rows() == f.rows()) {
                out[at..at + f.rows()].copy_from_slice(&prices[src..src + g.rows()]);
            }
        }
        out
    }

    /// [`ShadowPrices`] from the rows' prices and the contact caps' prices.
    pub fn shadow_prices(&self, problem: &Problem, prices: &[f64], contact_cap: Vec<f64>) -> ShadowPrices {
        let mut out = ShadowPrices {
            contact_cap,
            lane_capacity: vec![0.0; problem.lanes.len()],
            redemptions: vec![0.0; problem.offers.len()],
            delivery: vec![0.0; problem.zones.len()],
            ..ShadowPrices::default()
        };
        for (at, f) in self.families() {
            f.write_prices(problem, &prices[at..at + f.rows()], &mut out);
        }
        out
    }

    /// Per family (in [`Layout::families`] order): the charge of one expected
    /// acceptance in cell `offer * zones + zone`, of one unit of exposure in
    /// cell `offer * slots + slot` and of one unit of acceptance value of an
    /// offer, at row prices `prices`.
    pub fn charges(&self, prices: &[f64]) -> Charges {
        let n = self.family_count();
        let per_family = |csr: &Csr| {
            let cells = csr.start.len() - 1;
            let mut out = vec![0.0; cells * n];
            for cell in 0..cells {
                for (r, a) in csr.of(cell) {
                    out[cell * n + self.family_of(r)] += a * prices[r];
                }
            }
            out
        };
        Charges { families: n, accept: per_family(&self.accept), exposure: per_family(&self.exposure), value: per_family(&self.value) }
    }
}

/// Row prices by family name, then row key (see [`Layout::keyed_prices`]).
pub type KeyedPrices = std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>>;

/// Reduced-cost charges per cell and family (see [`Layout::charges`]).
pub struct Charges {
    /// Number of families.
    pub families: usize,
    /// Per `(offer * zones + zone) * families + family`.
    pub accept: Vec<f64>,
    /// Per `(offer * slots + slot) * families + family`.
    pub exposure: Vec<f64>,
    /// Per `offer * families + family`.
    pub value: Vec<f64>,
}

/// Every family's check on an allocation (see [`Family::check`]), the
/// families at once (each reads the allocation only); their violations in
/// family order.
pub fn check_families(layout: &Layout, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
    use rayon::prelude::*;
    let families: Vec<&dyn Family> = layout.families().map(|(_, f)| f).collect();
    let found: Vec<Vec<Violation>> = families
        .par_iter()
        .map(|f| {
            let mut own = Checker::new(ck.tol);
            f.check(problem, cands, alloc, &mut own);
            own.out
        })
        .collect();
    ck.out.extend(found.into_iter().flatten());
}
