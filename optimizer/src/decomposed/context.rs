//! One decomposition run's fixed data (the families' layout, right-hand side,
//! preconditioner) and the dual function: cell prices, gradient and bound.

use super::attributes::CustomerAttributes;
use super::customers::{CustomerSide, MapReply, MapRequest};
use super::error::DecomposedError;
use super::kernel::{CellPrices, PartitionSums};
use crate::allocation::ShadowPrices;
use crate::candidates::{Candidates, Network};
use crate::families::{CustomLimitMode, ExtraFamilies, Layout, Scope};
use crate::model::Problem;

/// Everything fixed during one decomposition run.
pub(super) struct Context<'a> {
    pub(super) problem: &'a Problem,
    pub(super) cands: &'a Candidates,
    /// Every coupling family's rows, dualized as `<=` with multipliers `>= 0`.
    pub(super) layout: Layout,
    pub(super) rhs: Vec<f64>,
    pub(super) attrs: &'a CustomerAttributes,
    /// Offers closed in the choice of open custom offers being solved or bounded.
    pub(super) closed: Vec<bool>,
    /// Price scale (value per unit of SKU) that sets the ridge of shipments.
    pub(super) unit_value: f64,
    /// Preconditioner at `epsilon = 1`: `L_i * epsilon`.
    pub(super) curvature: Vec<f64>,
    /// Whether a start from the first sample's prices starts at this
    /// problem's optimal prices: the problem is its own first sample
    /// ([`super::sample::whole_problem_is_sampled`]) and has no row the
    /// sample leaves out (the relaxed custom-offer limit, an extra family).
    pub(super) sample_is_whole: bool,
}

/// The result of evaluating the dual at one multiplier vector.
pub(super) struct Evaluation {
    /// `rhs - A x(nu)` at the smoothed response: the smoothed dual's gradient.
    pub(super) slack: Vec<f64>,
    /// The unsmoothed Lagrangian dual function: an upper bound on the optimum.
    pub(super) bound: f64,
}

impl<'a> Context<'a> {
    pub(super) fn new(
        problem: &'a Problem,
        network: &Network,
        cands: &'a Candidates,
        attrs: &'a CustomerAttributes,
        mode: CustomLimitMode,
        closed: Vec<bool>,
        extra: &ExtraFamilies,
    ) -> Self {
        let scope = Scope::new(problem, network, cands, mode);
        let extra = extra(&scope);
        let sample_is_whole = extra.is_empty() && mode != CustomLimitMode::Relaxed && super::sample::whole_problem_is_sampled(problem.customers.len());
        let layout = Layout::new(&scope, extra);
        let rhs = layout.rhs();
        let mut ctx = Context { problem, cands, layout, rhs, attrs, closed, unit_value: 1.0, curvature: Vec::new(), sample_is_whole };
        ctx.unit_value = ctx.mean_unit_value();
        ctx.curvature = ctx.curvature();
        ctx
    }

    /// Mean value of one SKU unit across offers: the price scale of the network side.
    fn mean_unit_value(&self) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for offer in &self.problem.offers {
            let units: f64 = offer.items.iter().map(|i| i.qty).sum();
            if units > 0.0 && offer.margin > 0.0 {
                sum += offer.margin / units;
                n += 1.0;
            }
        }
        if n > 0.0 {
            sum / n
        } else {
            1.0
        }
    }

    /// Ridge of a shipment arc or unmet baseline at `epsilon = 1`: its box fills over
    /// a reduced-cost band of one unit value.
    fn box_ridge(&self, upper: f64) -> f64 {
        self.unit_value / upper.max(1e-9)
    }

    /// The diagonal preconditioner `L_i` at `epsilon = 1` (see the module docs):
    /// `L_i = sum_j |a_ij| colabs_j / gamma_j`, summed per cell (offer, zone, slot)
    /// since every candidate of a cell has the same coefficients up to its `p`.
    fn curvature(&self) -> Vec<f64> {
        let layout = &self.layout;
        let (zones, slots) = (layout.zones, layout.slots);
        let n_o = self.problem.offers.len();
        let abs_sum = |coefs: &mut dyn Iterator<Item = (usize, f64)>| coefs.map(|(_, a)| a.abs()).sum::<f64>();
        let accept_abs: Vec<f64> = (0..n_o * zones).map(|cell| abs_sum(&mut layout.accept_coefs(cell))).collect();
        let exposure_abs: Vec<f64> = (0..n_o * slots).map(|cell| abs_sum(&mut layout.exposure_coefs(cell))).collect();
        let value_abs: Vec<f64> = (0..n_o).map(|o| abs_sum(&mut layout.value_coefs(o))).collect();
        // Per (offer, zone, slot): sums over candidates of colabs/gamma, p*colabs/gamma
        // and |value| p colabs/gamma.
        let (mut w0, mut w1) = (vec![0.0; n_o * zones * slots], vec![0.0; n_o * zones * slots]);
        let mut w2 = vec![0.0; n_o * zones * slots];
        let cust = &self.problem.customers;
        let input = self.attrs.input(self.problem, self.cands);
        for c in 0..cust.len() {
            let (z, s) = (cust.zone[c] as usize, self.attrs.slot[c] as usize);
            for k in self.cands.of_customer(c as u32) {
                let o = self.cands.offer[k] as usize;
                let p = self.cands.p[k];
                let gamma = input.gain(c, k).1.abs().max(1e-9);
                let cell = (o * zones + z) * slots + s;
                let value_p = input.accept_value(k).abs() * p;
                let colabs = p * accept_abs[o * zones + z] + exposure_abs[o * slots + s] + value_p * value_abs[o];
                w0[cell] += colabs / gamma;
                w1[cell] += p * colabs / gamma;
                w2[cell] += value_p * colabs / gamma;
            }
        }
        let mut l = vec![0.0; layout.total()];
        for o in 0..n_o {
            for z in 0..zones {
                for s in 0..slots {
                    let cell = (o * zones + z) * slots + s;
                    let (a0, a1) = (w0[cell], w1[cell]);
                    if a0 == 0.0 {
                        continue;
                    }
                    for (r, a) in layout.accept_coefs(o * zones + z) {
                        l[r] += a.abs() * a1;
                    }
                    for (r, a) in layout.exposure_coefs(o * slots + s) {
                        l[r] += a.abs() * a0;
                    }
                    for (r, a) in layout.value_coefs(o) {
                        l[r] += a.abs() * w2[cell];
                    }
                }
            }
        }
        for arc in &layout.arcs {
            let colabs = (1 + arc.stock_rows().len() + usize::from(arc.lane_row.is_some())) as f64;
            let inv_gamma = colabs / self.box_ridge(arc.upper);
            l[arc.balance] += inv_gamma;
            for r in arc.stock_rows() {
                l[r] += inv_gamma;
            }
            if let Some(r) = arc.lane_row {
                l[r] += inv_gamma;
            }
        }
        for (b, &(_, units)) in layout.balance.rows.iter().enumerate() {
            if units > 0.0 {
                l[b] += 1.0 / self.box_ridge(units);
            }
        }
        l
    }

    /// Shadow prices (e.g. a sample's) laid out as this problem's multipliers.
    pub(super) fn multipliers_from(&self, p: &ShadowPrices) -> Vec<f64> {
        self.layout.prices_from(self.problem, p)
    }

    /// Aggregates the multipliers into the prices each candidate cell faces:
    /// `A^T nu` per cell, a cost per acceptance and a bonus per exposure.
    pub(super) fn cell_prices(&self, nu: &[f64], epsilon: f64) -> CellPrices {
        let layout = &self.layout;
        let (zones, slots) = (layout.zones, layout.slots);
        let n_o = self.problem.offers.len();
        let per_accept: Vec<f64> = (0..n_o * zones).map(|cell| layout.accept_coefs(cell).map(|(r, a)| a * nu[r]).sum()).collect();
        let mut per_exposure: Vec<f64> = (0..n_o * slots).map(|cell| -layout.exposure_coefs(cell).map(|(r, a)| a * nu[r]).sum::<f64>()).collect();
        for (o, &closed) in self.closed.iter().enumerate() {
            if closed {
                per_exposure[o * slots..(o + 1) * slots].fill(f64::NEG_INFINITY);
            }
        }
        let per_value = if layout.has_value_rows() { (0..n_o).map(|o| layout.value_coefs(o).map(|(r, a)| a * nu[r]).sum()).collect() } else { Vec::new() };
        CellPrices { per_accept, per_exposure, per_value, epsilon }
    }

    /// Prices every partition of customers and reduces their sums in partition
    /// order (so results do not depend on scheduling).
    fn price_all(&self, side: &mut dyn CustomerSide, prices: CellPrices, mix: Option<f64>) -> Result<PartitionSums, DecomposedError> {
        let shape = PartitionSums::zeros(&prices);
        match MapReply::merge(side.map(&MapRequest::Price { prices, mix })?)? {
            MapReply::Price(sums) if sums.same_shape(&shape) => Ok(sums),
            _ => Err(DecomposedError::Workers("a partition answered a price request with another reply".into())),
        }
    }

    /// Evaluates the dual at `nu`: gradient of the smoothed dual, unsmoothed bound.
    pub(super) fn evaluate(&self, side: &mut dyn CustomerSide, nu: &[f64], epsilon: f64, mix: Option<f64>) -> Result<Evaluation, DecomposedError> {
        let sums = self.price_all(side, self.cell_prices(nu, epsilon), mix)?;
        let layout = &self.layout;
        let mut bound = sums.dual_value;
        let mut slack = self.rhs.clone();
        for (i, (&r, &v)) in self.rhs.iter().zip(nu).enumerate() {
            if v != 0.0 && r.is_finite() {
                bound += v * r;
            } else if !r.is_finite() {
                slack[i] = 0.0;
            }
        }
        // Customers' side: expected acceptances and exposures per cell enter every family.
        for (cell, &acc) in sums.accepts.iter().enumerate() {
            if acc != 0.0 {
                for (r, a) in layout.accept_coefs(cell) {
                    slack[r] -= a * acc;
                }
            }
        }
        for (cell, &exposure) in sums.exposure.iter().enumerate() {
            if exposure != 0.0 {
                for (r, a) in layout.exposure_coefs(cell) {
                    slack[r] -= a * exposure;
                }
            }
        }
        for (o, &value) in sums.values.iter().enumerate() {
            if value != 0.0 {
                for (r, a) in layout.value_coefs(o) {
                    slack[r] -= a * value;
                }
            }
        }
        // Network side: shipments and unmet baseline, each a box.
        let penalty = self.problem.policy.unmet_baseline_penalty;
        for arc in &layout.arcs {
            let mut r = nu[arc.balance] - arc.cost - nu[arc.stock_rows()].iter().sum::<f64>();
            if let Some(l) = arc.lane_row {
                r -= nu[l];
            }
            bound += arc.upper * r.max(0.0);
            let f = (r / (epsilon * self.box_ridge(arc.upper))).clamp(0.0, arc.upper);
            slack[arc.balance] += f;
            for s in &mut slack[arc.stock_rows()] {
                *s -= f;
            }
            if let Some(l) = arc.lane_row {
                slack[l] -= f;
            }
        }
        for (b, &(_, units)) in layout.balance.rows.iter().enumerate() {
            if units > 0.0 {
                let r = nu[b] - penalty;
                bound += units * r.max(0.0);
                slack[b] += (r / (epsilon * self.box_ridge(units))).clamp(0.0, units);
            }
        }
        Ok(Evaluation { slack, bound })
    }
}

