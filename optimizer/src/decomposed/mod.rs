//! The decomposed planner: the spec's model solved by Lagrangian dual
//! decomposition, for scenarios with millions of customers.
//!
//! # Method
//!
//! Only a few thousand constraints couple customers: zone balance, stock, lane
//! capacity, budget, redemptions, delivery capacity, fairness (and, in the MIP's
//! relaxation, the custom-offer limit). They are dualized with multipliers `nu`;
//! what remains separates into one tiny problem per customer (a capped simplex:
//! at most `max_offers` exposures in `[0, 1]`) and one per shipment arc and unmet
//! baseline (a box), each solved in closed form ([`kernel`]).
//!
//! * **Smoothing.** As in DuaLip (Basu, Ghoting, Mazumder, Pan: "ECLIPSE: An
//!   Extreme-Scale Linear Program Solver for Web-Applications", ICML 2020), a ridge
//!   term `-gamma_j/2 x_j^2` is added to the primal, which makes the dual function
//!   smooth with gradient `rhs - A x(nu)`. Here `gamma_k = epsilon * value_k` for an
//!   exposure, so the response depends on the *relative* margin of a candidate and
//!   the regularization bias is at most `epsilon/2` of the objective; `epsilon` is
//!   decreased in stages (continuation), as ECLIPSE does.
//! * **Accelerated dual ascent.** Projected accelerated gradient (FISTA: Beck and
//!   Teboulle 2009) on the multipliers, with a diagonal preconditioner
//!   `L_i = sum_j |a_ij| (sum_i' |a_i'j|) / gamma_j`, which majorizes
//!   `A Gamma^-1 A^T` (a Schur-type bound), and adaptive restart when momentum
//!   points uphill (O'Donoghue and Candès 2015).
//! * **Warm start** ([`sample`]): the exact prices of a 4,000-customer sample with
//!   every capacity scaled to its share (several disjoint samples above 250,000
//!   customers). Learning prices from a sample is the idea of Devanur and Hayes
//!   (EC 2009) and Agrawal, Wang and Ye (Operations Research 2014); here it puts
//!   the ascent within a fraction of a percent of the optimum before its first
//!   iteration. Measured: cold-started FISTA stalled 0.5-3% away after thousands
//!   of iterations on the same scenarios.
//! * **Certificates, not hopes.** At any `nu >= 0` the *unsmoothed* Lagrangian dual
//!   function is an upper bound on the optimum (weak duality); it is computed in the
//!   same pass as the gradient, and the best one is kept. A primal feasible plan comes
//!   from [`repair`]: the smoothed response is scaled per cell (offer, zone, tier,
//!   group) by a small LP that also routes the shipments, so every constraint holds.
//!   The reported gap is `(best bound - plan objective) / |plan objective|`.
//! * **The custom-offer limit** (the MIP) is handled by a documented heuristic: solve
//!   the relaxation (the limit dualized through `sum_o sum_c x[c,o] / n[o] <= K`),
//!   open the `K` custom offers with the largest net value at its prices, close the
//!   rest and solve again; the gap is reported against the relaxation's bound.
//!
//! The zone-balance multipliers are the plan's bid prices.

pub mod customers;
pub mod kernel;
mod repair;
pub mod sample;

use std::collections::HashMap;
use std::time::Instant;

use thiserror::Error;

use crate::allocation::{Allocation, FairnessPrice, Flow, ShadowPrices, SolveReport, SolveStatus};
use crate::candidates::{Candidates, Network};
use crate::exact::relative_gap;
use crate::model::{LaneIx, OfferIx, Problem, SkuIx, ZoneIx};
use customers::{CustomerSide, LocalCustomers, MapReply, MapRequest, OwnedPartition};
use kernel::{CellPrices, KernelInput, PartitionSums};

/// Knobs of the decomposed solver.
#[derive(Debug, Clone, PartialEq)]
pub struct DecomposedOptions {
    /// Stop once the certified relative gap is at most this.
    pub gap: f64,
    /// Wall-clock limit in seconds; the best certified plan so far is returned.
    pub time_limit: Option<f64>,
    /// Limit on dual iterations (per phase for the MIP heuristic).
    pub max_iterations: usize,
    /// Worker threads; `None` uses rayon's default (all cores).
    pub threads: Option<usize>,
    /// Print progress (iteration, bound, plan objective, gap) to stderr.
    pub verbose: bool,
}

impl Default for DecomposedOptions {
    fn default() -> Self {
        DecomposedOptions { gap: 1e-3, time_limit: None, max_iterations: 1000, threads: None, verbose: false }
    }
}

/// Why the decomposed solver returned no plan.
#[derive(Debug, Error)]
pub enum DecomposedError {
    /// The repair LP failed (it is always feasible, so this is a solver failure).
    #[error("the repair step failed: {0}")]
    Repair(String),
    /// The worker pool could not be built.
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
    /// The customers' side failed: a worker died, or answered out of turn. No
    /// plan comes from a solve that lost part of its customers.
    #[error("the customers' side failed: {0}")]
    Workers(String),
}

/// Per-customer and per-offer attributes that set a candidate's value and cell,
/// computed once per solve: the driver's preconditioner and every partition of
/// customers read the same numbers.
#[derive(Debug, Clone)]
pub struct CustomerAttributes {
    /// Fairness slot of each customer: its group index, or `groups` when it has none.
    slot: Vec<u32>,
    /// Objective weight of each customer (its tier's weight).
    weight: Vec<f64>,
    /// Contact cap of each customer (`u32::MAX` when unlimited).
    cap: Vec<u32>,
    /// Margin of each offer.
    margin: Vec<f64>,
    zones: usize,
    slots: usize,
}

impl CustomerAttributes {
    /// The attributes of `problem`'s customers and offers.
    pub fn new(problem: &Problem) -> Self {
        let groups = problem.groups.len() as u32;
        let cust = &problem.customers;
        CustomerAttributes {
            slot: cust.group.iter().map(|g| g.unwrap_or(groups)).collect(),
            weight: cust.tier.iter().map(|&t| problem.tiers[t as usize].weight).collect(),
            cap: (0..cust.len() as u32).map(|c| problem.contact_cap_of(c).unwrap_or(u32::MAX)).collect(),
            margin: problem.offers.iter().map(|o| o.margin).collect(),
            zones: problem.zones.len(),
            slots: problem.groups.len() + 1,
        }
    }

    /// The kernel's view of every customer of `problem`.
    pub fn input<'a>(&'a self, problem: &'a Problem, cands: &'a Candidates) -> KernelInput<'a> {
        KernelInput {
            customer_start: &cands.customer_start,
            offer: &cands.offer,
            p: &cands.p,
            zone: &problem.customers.zone,
            slot: &self.slot,
            weight: &self.weight,
            cap: &self.cap,
            margin: &self.margin,
            zones: self.zones,
            slots: self.slots,
        }
    }
}

/// Splits the customers into `n` partitions by `partition_of(customer)` (for
/// workers that each hold one; see [`customers::PartitionWorker`]).
pub fn partitions(problem: &Problem, cands: &Candidates, n: usize, partition_of: impl Fn(usize) -> usize) -> Vec<OwnedPartition> {
    let attrs = CustomerAttributes::new(problem);
    OwnedPartition::split(&attrs.input(problem, cands), n, partition_of)
}

/// One shipment arc `f[lane, sku]` with the rows it enters.
#[derive(Debug, Clone, Copy)]
struct Arc {
    lane: LaneIx,
    sku: SkuIx,
    balance: usize,
    stock: usize,
    lane_row: Option<usize>,
    cost: f64,
    upper: f64,
}

/// The dualized rows, laid out in one multiplier vector:
/// `[balance | stock | lane | budget | redemptions | delivery | fairness | custom]`.
#[derive(Debug, Clone)]
struct Coupling {
    zones: usize,
    slots: usize,
    /// (zone, SKU, baseline units) per zone-balance row.
    balance: Vec<(ZoneIx, SkuIx, f64)>,
    balance_of: HashMap<(ZoneIx, SkuIx), usize>,
    arcs: Vec<Arc>,
    /// Index into `Problem::stock` per stock row.
    stock: Vec<usize>,
    lanes: Vec<LaneIx>,
    budget: Option<f64>,
    redemptions: Vec<OfferIx>,
    delivery: Vec<ZoneIx>,
    /// (offer, group, reference group) per fairness row: rate(g) >= ratio * rate(h).
    fairness: Vec<(OfferIx, u32, u32)>,
    ratio: f64,
    /// Groups in the fairness rows of each offer (0 when it has none).
    fair_groups: Vec<usize>,
    /// Candidates per `offer * slots + slot`.
    slot_size: Vec<f64>,
    /// Candidates per offer.
    offer_size: Vec<f64>,
    /// The custom-offer limit, dualized (the MIP's relaxation only).
    custom_limit: Option<f64>,
    off: Offsets,
}

#[derive(Debug, Clone, Copy, Default)]
struct Offsets {
    stock: usize,
    lane: usize,
    budget: usize,
    redemptions: usize,
    delivery: usize,
    fairness: usize,
    custom: usize,
    total: usize,
}

impl Coupling {
    fn new(problem: &Problem, network: &Network, cands: &Candidates, relax_custom_limit: bool) -> Self {
        let zones = problem.zones.len();
        let groups = problem.groups.len();
        let slots = groups + 1;
        let mut balance_of: HashMap<(ZoneIx, SkuIx), usize> = HashMap::new();
        let mut balance: Vec<(ZoneIx, SkuIx, f64)> = Vec::new();
        let mut row = |z: ZoneIx, s: SkuIx, balance: &mut Vec<(ZoneIx, SkuIx, f64)>| {
            *balance_of.entry((z, s)).or_insert_with(|| {
                balance.push((z, s, 0.0));
                balance.len() - 1
            })
        };
        for b in problem.baseline.iter().filter(|b| b.units > 0.0) {
            let i = row(b.zone, b.sku, &mut balance);
            balance[i].2 += b.units;
        }
        // Offer demand: every (zone, SKU) an offer's candidates reach.
        let mut offer_zones = vec![false; problem.offers.len() * zones];
        for (c, &zone) in problem.customers.zone.iter().enumerate() {
            for k in cands.of_customer(c as u32) {
                offer_zones[cands.offer[k] as usize * zones + zone as usize] = true;
            }
        }
        for (o, offer) in problem.offers.iter().enumerate() {
            for z in 0..zones {
                if offer_zones[o * zones + z] {
                    for item in &offer.items {
                        row(z as ZoneIx, item.sku, &mut balance);
                    }
                }
            }
        }
        let mut stock_row: HashMap<usize, usize> = HashMap::new();
        let mut lane_row: HashMap<LaneIx, usize> = HashMap::new();
        let (mut stock, mut lanes, mut arcs) = (Vec::new(), Vec::new(), Vec::new());
        for (b, &(zone, sku, _)) in balance.iter().enumerate() {
            for &l in &network.lanes_into_zone[zone as usize] {
                let lane = &problem.lanes[l as usize];
                let Some(&si) = network.stock_index.get(&(lane.warehouse, sku)) else { continue };
                let s_row = *stock_row.entry(si).or_insert_with(|| {
                    stock.push(si);
                    stock.len() - 1
                });
                let l_row = lane.capacity.map(|_| {
                    *lane_row.entry(l).or_insert_with(|| {
                        lanes.push(l);
                        lanes.len() - 1
                    })
                });
                let avail = problem.stock[si].available();
                let upper = lane.capacity.map_or(avail, |c| c.min(avail));
                arcs.push(Arc { lane: l, sku, balance: b, stock: s_row, lane_row: l_row, cost: lane.cost_per_unit, upper });
            }
        }
        let n_o = problem.offers.len();
        let redemptions: Vec<OfferIx> = (0..n_o as u32).filter(|&o| problem.offers[o as usize].max_redemptions.is_some()).collect();
        let delivery: Vec<ZoneIx> = (0..zones as u32).filter(|&z| problem.zones[z as usize].delivery_capacity.is_some()).collect();
        let mut slot_size = vec![0.0; n_o * slots];
        let mut offer_size = vec![0.0; n_o];
        for k in 0..cands.len() {
            let o = cands.offer[k] as usize;
            let slot = problem.customers.group[cands.customer[k] as usize].map_or(groups, |g| g as usize);
            slot_size[o * slots + slot] += 1.0;
            offer_size[o] += 1.0;
        }
        let mut fairness = Vec::new();
        let mut fair_groups = vec![0; n_o];
        if problem.policy.fairness_min_ratio.is_some() {
            for o in (0..n_o).filter(|&o| problem.offers[o].fair) {
                let present: Vec<u32> = (0..groups as u32).filter(|&g| slot_size[o * slots + g as usize] > 0.0).collect();
                if present.len() >= 2 {
                    fair_groups[o] = present.len();
                    for &g in &present {
                        for &h in present.iter().filter(|&&h| h != g) {
                            fairness.push((o as OfferIx, g, h));
                        }
                    }
                }
            }
        }
        let custom_limit = match (relax_custom_limit, problem.policy.max_custom_offers) {
            (true, Some(k)) if problem.is_mip() => Some(k as f64),
            _ => None,
        };
        let mut off = Offsets { stock: balance.len(), ..Offsets::default() };
        off.lane = off.stock + stock.len();
        off.budget = off.lane + lanes.len();
        off.redemptions = off.budget + problem.policy.budget.is_some() as usize;
        off.delivery = off.redemptions + redemptions.len();
        off.fairness = off.delivery + delivery.len();
        off.custom = off.fairness + fairness.len();
        off.total = off.custom + custom_limit.is_some() as usize;
        Coupling {
            zones,
            slots,
            balance,
            balance_of,
            arcs,
            stock,
            lanes,
            budget: problem.policy.budget,
            redemptions,
            delivery,
            fairness,
            ratio: problem.policy.fairness_min_ratio.unwrap_or(0.0),
            fair_groups,
            slot_size,
            offer_size,
            custom_limit,
            off,
        }
    }

    /// Right-hand side of each row as it enters the dual's constant term.
    fn rhs(&self, problem: &Problem) -> Vec<f64> {
        let mut rhs = vec![0.0; self.off.total];
        for (i, b) in self.balance.iter().enumerate() {
            rhs[i] = -b.2;
        }
        for (i, &si) in self.stock.iter().enumerate() {
            rhs[self.off.stock + i] = problem.stock[si].available();
        }
        for (i, &l) in self.lanes.iter().enumerate() {
            rhs[self.off.lane + i] = problem.lanes[l as usize].capacity.unwrap_or(f64::INFINITY);
        }
        if let Some(b) = self.budget {
            rhs[self.off.budget] = b;
        }
        for (i, &o) in self.redemptions.iter().enumerate() {
            rhs[self.off.redemptions + i] = problem.offers[o as usize].max_redemptions.unwrap_or(f64::INFINITY);
        }
        for (i, &z) in self.delivery.iter().enumerate() {
            rhs[self.off.delivery + i] = problem.zones[z as usize].delivery_capacity.unwrap_or(f64::INFINITY);
        }
        if let Some(k) = self.custom_limit {
            rhs[self.off.custom] = k;
        }
        rhs
    }
}

/// Everything fixed during one decomposition run.
struct Context<'a> {
    problem: &'a Problem,
    cands: &'a Candidates,
    coupling: Coupling,
    rhs: Vec<f64>,
    attrs: &'a CustomerAttributes,
    /// Offers closed by the custom-offer heuristic.
    closed: Vec<bool>,
    /// Price scale (value per unit of SKU) that sets the ridge of shipments.
    unit_value: f64,
    /// Preconditioner at `epsilon = 1`: `L_i * epsilon`.
    curvature: Vec<f64>,
}

/// The result of evaluating the dual at one multiplier vector.
struct Evaluation {
    /// `rhs - A x(nu)` at the smoothed response: the smoothed dual's gradient.
    slack: Vec<f64>,
    /// The unsmoothed Lagrangian dual function: an upper bound on the optimum.
    bound: f64,
}

impl<'a> Context<'a> {
    fn new(
        problem: &'a Problem,
        network: &Network,
        cands: &'a Candidates,
        attrs: &'a CustomerAttributes,
        relax: bool,
        closed: Vec<bool>,
    ) -> Self {
        let coupling = Coupling::new(problem, network, cands, relax);
        let rhs = coupling.rhs(problem);
        let mut ctx = Context { problem, cands, coupling, rhs, attrs, closed, unit_value: 1.0, curvature: Vec::new() };
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

    /// Column of an exposure's absolute coefficients, split as `p * per_accept + per_exposure`.
    fn column_parts(&self, o: usize, z: usize, slot: usize) -> (f64, f64) {
        let cp = &self.coupling;
        let offer = &self.problem.offers[o];
        let mut per_accept: f64 = offer.items.iter().map(|i| i.qty).sum();
        if cp.budget.is_some() {
            per_accept += offer.discount_cost.abs();
        }
        if offer.max_redemptions.is_some() {
            per_accept += 1.0;
        }
        if self.problem.zones[z].delivery_capacity.is_some() {
            per_accept += 1.0;
        }
        let mut per_exposure = 0.0;
        // A group's exposure enters (groups - 1) rows as itself and as many as reference.
        let groups = cp.fair_groups[o];
        if groups >= 2 && slot < cp.slots - 1 && cp.slot_size[o * cp.slots + slot] > 0.0 {
            per_exposure += (groups - 1) as f64 * (1.0 + cp.ratio) / cp.slot_size[o * cp.slots + slot];
        }
        if cp.custom_limit.is_some() && offer.custom {
            per_exposure += 1.0 / cp.offer_size[o].max(1.0);
        }
        (per_accept, per_exposure)
    }

    /// The diagonal preconditioner `L_i` at `epsilon = 1` (see the module docs).
    fn curvature(&self) -> Vec<f64> {
        let cp = &self.coupling;
        let (zones, slots) = (cp.zones, cp.slots);
        let n_o = self.problem.offers.len();
        // Per (offer, zone, slot): sums over candidates of colabs/gamma and p*colabs/gamma.
        let mut parts = vec![(0.0, 0.0); n_o * zones * slots];
        for o in 0..n_o {
            for z in 0..zones {
                for s in 0..slots {
                    parts[(o * zones + z) * slots + s] = self.column_parts(o, z, s);
                }
            }
        }
        let (mut w0, mut w1) = (vec![0.0; n_o * zones * slots], vec![0.0; n_o * zones * slots]);
        let cust = &self.problem.customers;
        for c in 0..cust.len() {
            let (z, s) = (cust.zone[c] as usize, self.attrs.slot[c] as usize);
            for k in self.cands.of_customer(c as u32) {
                let o = self.cands.offer[k] as usize;
                let p = self.cands.p[k];
                let gamma = (self.attrs.weight[c] * self.attrs.margin[o] * p).max(1e-9);
                let cell = (o * zones + z) * slots + s;
                let colabs = p * parts[cell].0 + parts[cell].1;
                w0[cell] += colabs / gamma;
                w1[cell] += p * colabs / gamma;
            }
        }
        let off = cp.off;
        let mut l = vec![0.0; off.total];
        let red_row: HashMap<OfferIx, usize> = cp.redemptions.iter().enumerate().map(|(i, &o)| (o, i)).collect();
        let del_row: HashMap<ZoneIx, usize> = cp.delivery.iter().enumerate().map(|(i, &z)| (z, i)).collect();
        let mut slot_w0 = vec![0.0; n_o * slots];
        for o in 0..n_o {
            let offer = &self.problem.offers[o];
            for z in 0..zones {
                for s in 0..slots {
                    let cell = (o * zones + z) * slots + s;
                    let (a0, a1) = (w0[cell], w1[cell]);
                    if a0 == 0.0 {
                        continue;
                    }
                    slot_w0[o * slots + s] += a0;
                    for item in &offer.items {
                        if let Some(&b) = cp.balance_of.get(&(z as ZoneIx, item.sku)) {
                            l[b] += item.qty * a1;
                        }
                    }
                    if cp.budget.is_some() {
                        l[off.budget] += offer.discount_cost.abs() * a1;
                    }
                    if let Some(&r) = red_row.get(&(o as OfferIx)) {
                        l[off.redemptions + r] += a1;
                    }
                    if let Some(&d) = del_row.get(&(z as ZoneIx)) {
                        l[off.delivery + d] += a1;
                    }
                    if cp.custom_limit.is_some() && offer.custom {
                        l[off.custom] += a0 / cp.offer_size[o].max(1.0);
                    }
                }
            }
        }
        for (i, &(o, g, h)) in cp.fairness.iter().enumerate() {
            let (o, g, h) = (o as usize, g as usize, h as usize);
            l[off.fairness + i] += slot_w0[o * slots + g] / cp.slot_size[o * slots + g]
                + cp.ratio * slot_w0[o * slots + h] / cp.slot_size[o * slots + h];
        }
        for arc in &cp.arcs {
            let colabs = 2.0 + arc.lane_row.is_some() as u8 as f64;
            let inv_gamma = colabs / self.box_ridge(arc.upper);
            l[arc.balance] += inv_gamma;
            l[off.stock + arc.stock] += inv_gamma;
            if let Some(r) = arc.lane_row {
                l[off.lane + r] += inv_gamma;
            }
        }
        for (b, &(_, _, units)) in cp.balance.iter().enumerate() {
            if units > 0.0 {
                l[b] += 1.0 / self.box_ridge(units);
            }
        }
        l
    }

    /// Shadow prices (e.g. a sample's) laid out as this problem's multipliers.
    fn multipliers_from(&self, p: &ShadowPrices) -> Vec<f64> {
        let cp = &self.coupling;
        let off = cp.off;
        let mut nu = vec![0.0; off.total];
        for (i, &(z, s, _)) in cp.balance.iter().enumerate() {
            nu[i] = p.bid_price.get(&(z, s)).copied().unwrap_or(0.0).max(0.0);
        }
        for (i, &si) in cp.stock.iter().enumerate() {
            let sp = &self.problem.stock[si];
            nu[off.stock + i] = p.stock.get(&(sp.warehouse, sp.sku)).copied().unwrap_or(0.0).max(0.0);
        }
        for (i, &l) in cp.lanes.iter().enumerate() {
            nu[off.lane + i] = p.lane_capacity.get(l as usize).copied().unwrap_or(0.0).max(0.0);
        }
        if cp.budget.is_some() {
            nu[off.budget] = p.budget.max(0.0);
        }
        for (i, &o) in cp.redemptions.iter().enumerate() {
            nu[off.redemptions + i] = p.redemptions.get(o as usize).copied().unwrap_or(0.0).max(0.0);
        }
        for (i, &z) in cp.delivery.iter().enumerate() {
            nu[off.delivery + i] = p.delivery.get(z as usize).copied().unwrap_or(0.0).max(0.0);
        }
        let fair: HashMap<(OfferIx, u32, u32), f64> = p.fairness.iter().map(|f| ((f.offer, f.group, f.reference), f.price)).collect();
        for (i, key) in cp.fairness.iter().enumerate() {
            nu[off.fairness + i] = fair.get(key).copied().unwrap_or(0.0).max(0.0);
        }
        nu
    }

    /// Aggregates the multipliers into the prices each candidate cell faces.
    fn cell_prices(&self, nu: &[f64], epsilon: f64) -> CellPrices {
        let cp = &self.coupling;
        let off = cp.off;
        let (zones, slots) = (cp.zones, cp.slots);
        let n_o = self.problem.offers.len();
        let budget = if cp.budget.is_some() { nu[off.budget] } else { 0.0 };
        let mut delivery = vec![0.0; zones];
        for (i, &z) in cp.delivery.iter().enumerate() {
            delivery[z as usize] = nu[off.delivery + i];
        }
        let mut redemption = vec![0.0; n_o];
        for (i, &o) in cp.redemptions.iter().enumerate() {
            redemption[o as usize] = nu[off.redemptions + i];
        }
        let mut per_accept = vec![0.0; n_o * zones];
        for (o, offer) in self.problem.offers.iter().enumerate() {
            for z in 0..zones {
                let mut price = budget * offer.discount_cost + redemption[o] + delivery[z];
                for item in &offer.items {
                    if let Some(&b) = cp.balance_of.get(&(z as ZoneIx, item.sku)) {
                        price += item.qty * nu[b];
                    }
                }
                per_accept[o * zones + z] = price;
            }
        }
        let mut per_exposure = vec![0.0; n_o * slots];
        for (i, &(o, g, h)) in cp.fairness.iter().enumerate() {
            let (o, g, h) = (o as usize, g as usize, h as usize);
            let phi = nu[off.fairness + i];
            per_exposure[o * slots + g] += phi / cp.slot_size[o * slots + g];
            per_exposure[o * slots + h] -= cp.ratio * phi / cp.slot_size[o * slots + h];
        }
        for (o, offer) in self.problem.offers.iter().enumerate() {
            for s in 0..slots {
                if self.closed[o] {
                    per_exposure[o * slots + s] = f64::NEG_INFINITY;
                } else if cp.custom_limit.is_some() && offer.custom {
                    per_exposure[o * slots + s] -= nu[off.custom] / cp.offer_size[o].max(1.0);
                }
            }
        }
        CellPrices { per_accept, per_exposure, epsilon }
    }

    /// Prices every partition of customers and reduces their sums in partition
    /// order (so results do not depend on scheduling).
    fn price_all(&self, side: &mut dyn CustomerSide, prices: CellPrices, mix: Option<f64>) -> Result<PartitionSums, DecomposedError> {
        let cp = &self.coupling;
        let (cells, slots) = (self.problem.offers.len() * cp.zones, self.problem.offers.len() * cp.slots);
        match MapReply::merge(side.map(&MapRequest::Price { prices, mix })?)? {
            MapReply::Price(sums) if sums.accepts.len() == cells && sums.exposure.len() == slots => Ok(sums),
            _ => Err(DecomposedError::Workers("a partition answered a price request with another reply".into())),
        }
    }

    /// Evaluates the dual at `nu`: gradient of the smoothed dual, unsmoothed bound.
    fn evaluate(&self, side: &mut dyn CustomerSide, nu: &[f64], epsilon: f64, mix: Option<f64>) -> Result<Evaluation, DecomposedError> {
        let sums = self.price_all(side, self.cell_prices(nu, epsilon), mix)?;
        let cp = &self.coupling;
        let off = cp.off;
        let (zones, slots) = (cp.zones, cp.slots);
        let mut bound = sums.dual_value;
        let mut slack = self.rhs.clone();
        for (i, (&r, &v)) in self.rhs.iter().zip(nu).enumerate() {
            if v != 0.0 && r.is_finite() {
                bound += v * r;
            } else if !r.is_finite() {
                slack[i] = 0.0;
            }
        }
        // Customers' side: expected acceptances per cell enter every row family.
        let red_row: HashMap<OfferIx, usize> = cp.redemptions.iter().enumerate().map(|(i, &o)| (o, i)).collect();
        let del_row: HashMap<ZoneIx, usize> = cp.delivery.iter().enumerate().map(|(i, &z)| (z, i)).collect();
        for (o, offer) in self.problem.offers.iter().enumerate() {
            for z in 0..zones {
                let acc = sums.accepts[o * zones + z];
                if acc == 0.0 {
                    continue;
                }
                for item in &offer.items {
                    if let Some(&b) = cp.balance_of.get(&(z as ZoneIx, item.sku)) {
                        slack[b] -= item.qty * acc;
                    }
                }
                if cp.budget.is_some() {
                    slack[off.budget] -= offer.discount_cost * acc;
                }
                if let Some(&r) = red_row.get(&(o as OfferIx)) {
                    slack[off.redemptions + r] -= acc;
                }
                if let Some(&d) = del_row.get(&(z as ZoneIx)) {
                    slack[off.delivery + d] -= acc;
                }
            }
        }
        for (i, &(o, g, h)) in cp.fairness.iter().enumerate() {
            let (o, g, h) = (o as usize, g as usize, h as usize);
            let rate = |s: usize| sums.exposure[o * slots + s] / cp.slot_size[o * slots + s];
            slack[off.fairness + i] = rate(g) - cp.ratio * rate(h);
        }
        if cp.custom_limit.is_some() {
            for o in (0..self.problem.offers.len()).filter(|&o| self.problem.offers[o].custom) {
                let exposure: f64 = sums.exposure[o * slots..(o + 1) * slots].iter().sum();
                slack[off.custom] -= exposure / cp.offer_size[o].max(1.0);
            }
        }
        // Network side: shipments and unmet baseline, each a box.
        let penalty = self.problem.policy.unmet_baseline_penalty;
        for arc in &cp.arcs {
            let mut r = nu[arc.balance] - arc.cost - nu[off.stock + arc.stock];
            if let Some(l) = arc.lane_row {
                r -= nu[off.lane + l];
            }
            bound += arc.upper * r.max(0.0);
            let f = (r / (epsilon * self.box_ridge(arc.upper))).clamp(0.0, arc.upper);
            slack[arc.balance] += f;
            slack[off.stock + arc.stock] -= f;
            if let Some(l) = arc.lane_row {
                slack[off.lane + l] -= f;
            }
        }
        for (b, &(_, _, units)) in cp.balance.iter().enumerate() {
            if units > 0.0 {
                let r = nu[b] - penalty;
                bound += units * r.max(0.0);
                slack[b] += (r / (epsilon * self.box_ridge(units))).clamp(0.0, units);
            }
        }
        Ok(Evaluation { slack, bound })
    }
}

/// The outcome of one decomposition run (one phase).
struct Phase {
    nu: Vec<f64>,
    best_bound: f64,
    plan: repair::Repaired,
    iterations: usize,
    epsilon: f64,
    status: SolveStatus,
}

/// Continuation: the ridge starts at `EPSILON_START` of each value (or
/// `EPSILON_WARM` after a warm start) and shrinks by `EPSILON_SHRINK` after every
/// window of `WINDOW` iterations, down to `EPSILON_MIN`. Each window ends with a
/// repair of the window's averaged response.
const EPSILON_START: f64 = 0.5;
const EPSILON_WARM: f64 = 0.005;
const EPSILON_SHRINK: f64 = 0.5;
const EPSILON_MIN: f64 = 2e-3;
const WINDOW: usize = 40;
/// Windows without progress after which a run stops as stalled.
const STALL_WINDOWS: usize = 1;

fn run_phase(
    ctx: &Context,
    side: &mut dyn CustomerSide,
    start_nu: Option<Vec<f64>>,
    start_epsilon: f64,
    opts: &DecomposedOptions,
    started: Instant,
) -> Result<Phase, DecomposedError> {
    let n = ctx.coupling.off.total;
    let mut nu = start_nu.unwrap_or_else(|| vec![0.0; n]);
    nu.resize(n, 0.0);
    let mut prev = nu.clone();
    let mut y = nu.clone();
    let mut t = 1.0_f64;
    let mut epsilon = start_epsilon;
    let mut best_bound = f64::INFINITY;
    // The best repaired plan; its exposures are kept by the customers' side.
    let mut best: Option<repair::Repaired> = None;
    let mut iterations = 0;
    let status;
    let out_of_time = || opts.time_limit.is_some_and(|t| started.elapsed().as_secs_f64() >= t);
    // Primal recovery: a running average of the responses within the window, with
    // weights growing linearly so that early iterates fade.
    let mut in_window = 0usize;
    let mut window_start = 0usize;
    let (mut last_gap, mut stalled_windows) = (f64::INFINITY, 0);
    loop {
        in_window += 1;
        let mix = 2.0 / (in_window as f64 + 1.0);
        let eval = ctx.evaluate(side, &y, epsilon, Some(mix))?;
        best_bound = best_bound.min(eval.bound);
        let mut next = vec![0.0; n];
        let mut uphill = 0.0;
        for i in 0..n {
            let l = ctx.curvature[i] / epsilon;
            // A row with no variables keeps its price at 0.
            next[i] = if l > 0.0 { (y[i] - eval.slack[i] / l).max(0.0) } else { 0.0 };
            uphill += eval.slack[i] * (next[i] - nu[i]);
        }
        iterations += 1;
        // Adaptive restart: momentum that increases the dual is dropped.
        if uphill < 0.0 {
            t = 1.0;
        }
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = (t - 1.0) / t_next;
        std::mem::swap(&mut prev, &mut nu);
        nu = next;
        for i in 0..n {
            y[i] = (nu[i] + beta * (nu[i] - prev[i])).max(0.0);
        }
        t = t_next;
        let last = iterations >= opts.max_iterations || out_of_time();
        // The first repair comes after one iteration (a warm start is often already
        // within reach of the target); later ones at the end of each window.
        if iterations > 1 && iterations - window_start < WINDOW && !last {
            continue;
        }
        let (plan, generous, scales) = repair::repair(ctx, side, &nu, epsilon)?;
        if best.as_ref().is_none_or(|b| plan.objective > b.objective) {
            if MapReply::merge(side.map(&MapRequest::Keep { generous, scales })?)? != MapReply::Kept {
                return Err(DecomposedError::Workers("a partition did not keep the repaired plan".into()));
            }
            best = Some(plan);
        }
        let best_obj = best.as_ref().map_or(f64::NEG_INFINITY, |b| b.objective);
        let gap = relative_gap(best_obj, best_bound.max(best_obj));
        window_start = iterations;
        if opts.verbose {
            eprintln!(
                "decomposed: iteration {iterations:5}  epsilon {epsilon:.1e}  bound {best_bound:.6e}  plan {best_obj:.6e}  gap {gap:.2e}  {:.2}s",
                started.elapsed().as_secs_f64()
            );
        }
        if gap <= opts.gap {
            status = SolveStatus::WithinGap;
            break;
        }
        if last {
            status = if out_of_time() { SolveStatus::TimeLimit } else { SolveStatus::IterationLimit };
            break;
        }
        // Stall: windows that improve neither side by a tenth of the target gap
        // are not worth their time.
        if gap > last_gap - opts.gap / 10.0 {
            stalled_windows += 1;
            if stalled_windows >= STALL_WINDOWS {
                status = SolveStatus::Stalled;
                break;
            }
        } else {
            stalled_windows = 0;
        }
        last_gap = gap;
        // Next window: a smaller ridge with momentum and average restarted; once the
        // ridge is at its floor, the average keeps growing (primal recovery
        // converges with the number of iterates averaged).
        if epsilon > EPSILON_MIN {
            in_window = 0;
            window_start = iterations;
            epsilon = (epsilon * EPSILON_SHRINK).max(EPSILON_MIN);
            t = 1.0;
            y.clone_from(&nu);
        }
    }
    let plan = best.expect("every run ends with a repair");
    Ok(Phase { nu, best_bound, plan, iterations, epsilon, status })
}

/// Solves the spec's model by dual decomposition; see the module docs. The
/// customers are held in this process and priced by rayon.
pub fn solve(problem: &Problem, network: &Network, cands: &Candidates, opts: &DecomposedOptions) -> Result<Allocation, DecomposedError> {
    let in_pool = || {
        let attrs = CustomerAttributes::new(problem);
        let mut side = LocalCustomers::new(attrs.input(problem, cands));
        solve_driver(problem, network, cands, &attrs, opts, &mut side)
    };
    match opts.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| DecomposedError::Threads(n, e.to_string()))?
            .install(in_pool),
        None => in_pool(),
    }
}

/// Solves by dual decomposition with the customers held by `side` (in this
/// process or by remote workers): the driver (multipliers, network side, repair
/// LP, custom-offer heuristic) is the same code either way.
pub fn solve_with(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    opts: &DecomposedOptions,
    side: &mut dyn CustomerSide,
) -> Result<Allocation, DecomposedError> {
    solve_driver(problem, network, cands, &CustomerAttributes::new(problem), opts, side)
}

/// The driver, with the customers' attributes computed once by the caller.
fn solve_driver(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    attrs: &CustomerAttributes,
    opts: &DecomposedOptions,
    side: &mut dyn CustomerSide,
) -> Result<Allocation, DecomposedError> {
    let started = Instant::now();
    let n_o = problem.offers.len();
    let mip = problem.is_mip();
    let ctx = Context::new(problem, network, cands, attrs, mip, vec![false; n_o]);
    let build_seconds = started.elapsed().as_secs_f64();
    let samples: Vec<Vec<f64>> = sample::sample_prices(problem).iter().map(|p| ctx.multipliers_from(p)).collect();
    // Several samples: their mean and each of them are candidates, and the one with
    // the lowest dual bound (the certificate itself decides) starts the ascent.
    let warm = match samples.len() {
        0 => None,
        1 => samples.first().cloned(),
        k => {
            let mut mean = vec![0.0; ctx.coupling.off.total];
            for nu in &samples {
                for (m, v) in mean.iter_mut().zip(nu) {
                    *m += v / k as f64;
                }
            }
            let mut scored = Vec::with_capacity(k + 1);
            for nu in std::iter::once(mean).chain(samples.iter().cloned()) {
                scored.push((ctx.evaluate(side, &nu, EPSILON_WARM, None)?.bound, nu));
            }
            scored.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, nu)| nu)
        }
    };
    let start_epsilon = if warm.is_some() { EPSILON_WARM } else { EPSILON_START };
    if opts.verbose {
        eprintln!("decomposed: warm start from {} samples at {:.2}s", samples.len(), started.elapsed().as_secs_f64());
    }
    let mut phase = run_phase(&ctx, side, warm, start_epsilon, opts, started)?;
    let mut iterations = phase.iterations;
    let mut offer_open = vec![true; n_o];
    let mut ctx_final = ctx;
    if mip {
        // The relaxation's bound stands for the MIP; choose the open custom offers.
        let relaxation_bound = phase.best_bound;
        let limit = problem.policy.max_custom_offers.unwrap_or(0) as usize;
        let prices = ctx_final.cell_prices(&phase.nu, phase.epsilon);
        let net = custom_offer_values(side, prices, n_o)?;
        let mut custom: Vec<usize> = (0..n_o).filter(|&o| problem.offers[o].custom).collect();
        custom.sort_by(|&a, &b| net[b].total_cmp(&net[a]).then(a.cmp(&b)));
        for (rank, &o) in custom.iter().enumerate() {
            offer_open[o] = rank < limit && net[o] > 0.0;
        }
        let closed: Vec<bool> = offer_open.iter().map(|o| !o).collect();
        ctx_final = Context::new(problem, network, cands, attrs, false, closed);
        let mut nu = phase.nu.clone();
        nu.truncate(ctx_final.coupling.off.total);
        let mut restricted = run_phase(&ctx_final, side, Some(nu), phase.epsilon, opts, started)?;
        iterations += restricted.iterations;
        restricted.best_bound = relaxation_bound;
        phase = restricted;
    }
    let (x, contact_cap) = finish(side, ctx_final.cell_prices(&phase.nu, phase.epsilon), cands)?;
    let prices = shadow_prices(&ctx_final, &phase.nu, contact_cap);
    let Phase { plan, best_bound, status, .. } = phase;
    let flows = plan.flows.iter().filter(|f| f.units > 1e-9).copied().collect();
    let mut allocation = Allocation {
        x,
        flows,
        unmet: plan.unmet,
        offer_open,
        prices,
        report: SolveReport {
            solver: "decomposed".to_string(),
            status,
            objective: 0.0,
            bound: best_bound,
            gap: 0.0,
            build_seconds,
            solve_seconds: started.elapsed().as_secs_f64() - build_seconds,
            variables: cands.len() + ctx_final.coupling.arcs.len() + ctx_final.coupling.balance.len(),
            constraints: ctx_final.coupling.off.total + problem.customers.len(),
            iterations: Some(iterations),
        },
    };
    let objective = crate::feasibility::objective(problem, cands, &allocation);
    allocation.report.objective = objective;
    allocation.report.bound = best_bound.max(objective);
    allocation.report.gap = relative_gap(objective, allocation.report.bound);
    Ok(allocation)
}

/// Net value of each offer's kept exposures at the given prices (value minus the
/// resources they consume): how the MIP heuristic ranks custom offers.
fn custom_offer_values(side: &mut dyn CustomerSide, prices: CellPrices, offers: usize) -> Result<Vec<f64>, DecomposedError> {
    match MapReply::merge(side.map(&MapRequest::OfferValues { prices })?)? {
        MapReply::OfferValues(net) if net.len() == offers => Ok(net),
        _ => Err(DecomposedError::Workers("a partition answered the offer values with another reply".into())),
    }
}

/// Gathers the plan from the customers' side: every candidate's kept exposure and
/// every customer's contact-cap price, placed by global customer index. Every
/// customer must be answered for exactly once.
fn finish(side: &mut dyn CustomerSide, prices: CellPrices, cands: &Candidates) -> Result<(Vec<f64>, Vec<f64>), DecomposedError> {
    let n = cands.customer_start.len() - 1;
    let mut x = vec![0.0; cands.len()];
    let mut cap_price = vec![0.0; n];
    let mut answered = vec![false; n];
    for reply in side.map(&MapRequest::Finish { prices })? {
        let MapReply::Finish { customers, cap_price: part_price, x: part_x } = reply else {
            return Err(DecomposedError::Workers("a partition answered the plan request with another reply".into()));
        };
        let mut at = 0usize;
        for (&c, &price) in customers.iter().zip(&part_price) {
            let c = c as usize;
            if c >= n || std::mem::replace(&mut answered[c], true) {
                return Err(DecomposedError::Workers(format!("customer {c} was answered for twice or does not exist")));
            }
            let (lo, hi) = (cands.customer_start[c] as usize, cands.customer_start[c + 1] as usize);
            let Some(values) = part_x.get(at..at + hi - lo) else {
                return Err(DecomposedError::Workers(format!("a partition sent too few exposures (customer {c})")));
            };
            x[lo..hi].copy_from_slice(values);
            cap_price[c] = price;
            at += hi - lo;
        }
        if at != part_x.len() || customers.len() != part_price.len() {
            return Err(DecomposedError::Workers("a partition sent more exposures than its customers have candidates".into()));
        }
    }
    let missing = answered.iter().filter(|a| !**a).count();
    if missing > 0 {
        return Err(DecomposedError::Workers(format!("{missing} of {n} customers were not answered for")));
    }
    Ok((x, cap_price))
}

/// The multipliers as [`ShadowPrices`] (objective lost per unit of tightening).
fn shadow_prices(ctx: &Context, nu: &[f64], contact_cap: Vec<f64>) -> ShadowPrices {
    let problem = ctx.problem;
    let cp = &ctx.coupling;
    let off = cp.off;
    let mut p = ShadowPrices {
        contact_cap,
        lane_capacity: vec![0.0; problem.lanes.len()],
        redemptions: vec![0.0; problem.offers.len()],
        delivery: vec![0.0; problem.zones.len()],
        ..ShadowPrices::default()
    };
    for (i, &(z, s, _)) in cp.balance.iter().enumerate() {
        p.bid_price.insert((z, s), nu[i]);
    }
    for (i, &si) in cp.stock.iter().enumerate() {
        let sp = &problem.stock[si];
        p.stock.insert((sp.warehouse, sp.sku), nu[off.stock + i]);
    }
    for (i, &l) in cp.lanes.iter().enumerate() {
        p.lane_capacity[l as usize] = nu[off.lane + i];
    }
    if cp.budget.is_some() {
        p.budget = nu[off.budget];
    }
    for (i, &o) in cp.redemptions.iter().enumerate() {
        p.redemptions[o as usize] = nu[off.redemptions + i];
    }
    for (i, &z) in cp.delivery.iter().enumerate() {
        p.delivery[z as usize] = nu[off.delivery + i];
    }
    for (i, &(offer, group, reference)) in cp.fairness.iter().enumerate() {
        p.fairness.push(FairnessPrice { offer, group, reference, price: nu[off.fairness + i] });
    }
    p
}

#[doc(hidden)]
pub use repair::{CellSums, Repaired};

/// Flow type re-exported for the repair step.
pub(crate) type RepairFlow = Flow;
