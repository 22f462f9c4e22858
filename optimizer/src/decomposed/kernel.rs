//! The per-customer step of the decomposition: given resource prices, every
//! customer picks its exposures independently.
//!
//! This is the "map" of the method (see `ARCHITECTURE.md`, "Beyond one machine"):
//! it reads only its own customers' candidates and a few thousand prices, and
//! returns sums of the same small size, so it can run on any partition of the
//! customers, in any worker, with no global state.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::customer_lp::CustomerLp;
use crate::contact_policy::CustomerRows;

/// Read-only view of the candidates the kernel needs: CSR by customer, plus the
/// per-customer and per-offer attributes that set a candidate's value and cell.
#[derive(Debug, Clone, Copy)]
pub struct KernelInput<'a> {
    /// `customer_start[c]..customer_start[c+1]` are customer `c`'s candidates.
    pub customer_start: &'a [u32],
    /// Offer of each candidate.
    pub offer: &'a [u32],
    /// Acceptance probability of each candidate.
    pub p: &'a [f64],
    /// Zone of each customer.
    pub zone: &'a [u32],
    /// Fairness slot of each customer: its group index, or `groups` when it has none.
    pub slot: &'a [u32],
    /// Objective weight of each customer (its tier's weight).
    pub weight: &'a [f64],
    /// Contact cap of each customer (`u32::MAX` when unlimited).
    pub cap: &'a [u32],
    /// Margin of each offer.
    pub margin: &'a [f64],
    /// Cost per contact of each offer (paid per unit of exposure).
    pub contact_cost: &'a [f64],
    /// Value of one acceptance of each candidate, when the scenario gives
    /// per-pair values (else each offer's margin).
    pub accept_value: Option<&'a [f64]>,
    /// Number of zones (cells are `offer * zones + zone`).
    pub zones: usize,
    /// Number of fairness slots per offer (groups + 1).
    pub slots: usize,
    /// The customers' contact-policy rows (`max_per_customer` rules and
    /// conflicts), indexed by the same customers; `None` when there are none.
    pub policy: Option<&'a CustomerRows>,
}

impl KernelInput<'_> {
    /// Customer `c`'s contact-policy rows, when it has any (most customers
    /// have none: their subproblem is the cap's breakpoint search).
    #[inline]
    pub fn policy_of(&self, c: usize) -> Option<(&CustomerRows, Range<usize>)> {
        self.policy.map(|p| (p, p.of_customer(c))).filter(|(_, rows)| !rows.is_empty())
    }

    /// Candidate `k`'s (of customer `c`) objective coefficient
    /// `weight * value * p - cost_per_contact` (as `Candidates::value`), and its
    /// acceptance part `weight * value * p`, the scale of its ridge.
    #[inline]
    pub fn gain(&self, c: usize, k: usize) -> (f64, f64) {
        let accept = self.weight[c] * self.accept_value(k) * self.p[k];
        (accept - self.contact_cost[self.offer[k] as usize], accept)
    }

    /// The (unweighted) value of one acceptance of candidate `k`: its pair's
    /// own, else its offer's margin.
    #[inline]
    pub fn accept_value(&self, k: usize) -> f64 {
        self.accept_value.map_or_else(|| self.margin[self.offer[k] as usize], |v| v[k])
    }
}

/// The prices the customers face, aggregated to cells so the kernel does two
/// lookups per candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellPrices {
    /// Per `offer * zones + zone`: the price of one expected acceptance (its SKUs
    /// at the zone's bid prices, its budget share, redemption and delivery prices).
    pub per_accept: Vec<f64>,
    /// Per `offer * slots + slot`: a price per unit of exposure (fairness and the
    /// custom-offer limit); `-inf` closes the offer.
    pub per_exposure: Vec<f64>,
    /// Per offer: the price of one unit of expected acceptance value
    /// (`value * p`, volume rules on `value`); empty when no row counts value.
    pub per_value: Vec<f64>,
    /// Ridge weight relative to a candidate's value (`gamma_k = epsilon * value_k`).
    pub epsilon: f64,
}

impl CellPrices {
    /// What candidate `k` (of a customer in `zone`) pays for its expected
    /// acceptances at these prices: its cell's price per acceptance and its
    /// offer's price per unit of acceptance value.
    #[inline]
    pub fn accept_charge(&self, input: &KernelInput, zone: usize, k: usize) -> f64 {
        let o = input.offer[k] as usize;
        let p = input.p[k];
        let per_accept = p * self.per_accept[o * input.zones + zone];
        if self.per_value.is_empty() {
            per_accept
        } else {
            per_accept + self.per_value[o] * input.accept_value(k) * p
        }
    }
}

/// What one partition of customers returns: sums over its candidates, all small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionSums {
    /// Per cell `offer * zones + zone`: expected acceptances `sum p x` of the smoothed response.
    pub accepts: Vec<f64>,
    /// Per `offer * slots + slot`: exposures `sum x` of the smoothed response.
    pub exposure: Vec<f64>,
    /// Per offer: expected acceptance value `sum value p x` (empty when the
    /// prices have no `per_value`).
    pub values: Vec<f64>,
    /// The customers' part of the (unsmoothed) Lagrangian dual function.
    pub dual_value: f64,
}

impl PartitionSums {
    /// Zeroed sums for the sizes of `prices`.
    pub fn zeros(prices: &CellPrices) -> Self {
        PartitionSums {
            accepts: vec![0.0; prices.per_accept.len()],
            exposure: vec![0.0; prices.per_exposure.len()],
            values: vec![0.0; prices.per_value.len()],
            dual_value: 0.0,
        }
    }

    /// Whether these sums have the sizes of `other`'s (one problem's).
    pub fn same_shape(&self, other: &PartitionSums) -> bool {
        self.accepts.len() == other.accepts.len() && self.exposure.len() == other.exposure.len() && self.values.len() == other.values.len()
    }

    /// Adds another partition's sums (the "reduce").
    pub fn add(&mut self, other: &PartitionSums) {
        for (a, b) in self.accepts.iter_mut().zip(&other.accepts) {
            *a += b;
        }
        for (a, b) in self.exposure.iter_mut().zip(&other.exposure) {
            *a += b;
        }
        for (a, b) in self.values.iter_mut().zip(&other.values) {
            *a += b;
        }
        self.dual_value += other.dual_value;
    }
}

/// Reusable per-thread buffers, so the kernel allocates nothing per customer.
#[derive(Debug, Default)]
pub struct Scratch {
    reduced: Vec<f64>,
    inv_gamma: Vec<f64>,
    breaks: Vec<f64>,
    x: Vec<f64>,
    lp: CustomerLp,
    duals: Vec<f64>,
}

/// Where the kernel blends its responses: `out += mix * (x - out)`, indexed from the
/// partition's first candidate (`mix = 1` writes the response itself; a smaller
/// `mix` keeps a running average of responses, the primal recovery of the method).
pub type Blend<'a> = Option<(&'a mut [f32], f64)>;

/// Prices the customers in `customers`: each one's smoothed best response
/// (accumulated into the sums, and blended into `blend` when given) and its
/// unsmoothed dual value. A customer with contact-policy rows responds with
/// its exact LP's optimum instead (a vertex: every row and the cap kept
/// exactly), which the window's average mixes as the iterations move the
/// prices. Why not the ridge there: the ridge ignores the rows, and made to
/// keep them ([`respond_within_policy`]) it stays a guess at how the
/// customer's LP splits; measured on `allot generate --contact-policies`
/// (40 offers, 300 SKUs, 20 zones, seed 67, the LP), the plan against the
/// bound with the ridge kept within the rows, then with the LP's optimum:
/// 8,000 customers (at the optimal prices) 4.5e-3, then 1.6e-4 at the first
/// repair; 30,000 customers 3.3e-3 after 281 iterations, then within 6.5e-4
/// after 121; 12,000 customers 7.7e-3, then 4.3e-3 (after 121 and 161).
pub fn price_customers(
    input: &KernelInput,
    prices: &CellPrices,
    customers: Range<usize>,
    scratch: &mut Scratch,
    mut blend: Blend,
) -> PartitionSums {
    let mut sums = PartitionSums::zeros(prices);
    let first = input.customer_start[customers.start] as usize;
    for c in customers {
        let range = input.customer_start[c] as usize..input.customer_start[c + 1] as usize;
        if range.is_empty() {
            continue;
        }
        let zone = input.zone[c] as usize;
        let slot = input.slot[c] as usize;
        reduced_values(input, prices, c, &mut scratch.reduced, &mut scratch.inv_gamma);
        let cap = input.cap[c];
        sums.dual_value += match input.policy_of(c) {
            Some((policy, rows)) => {
                let optimum = scratch.lp.solve(&scratch.reduced, cap, policy, rows, &mut scratch.duals);
                scratch.x.clone_from(&scratch.lp.x);
                optimum.value
            }
            None => {
                smoothed_response(&scratch.reduced, &scratch.inv_gamma, cap, &mut scratch.breaks, &mut scratch.x);
                best_response_value(&mut scratch.breaks, &scratch.reduced, cap)
            }
        };
        for (i, k) in range.clone().enumerate() {
            let x = scratch.x[i];
            if x > 0.0 {
                let o = input.offer[k] as usize;
                sums.accepts[o * input.zones + zone] += input.p[k] * x;
                sums.exposure[o * input.slots + slot] += x;
                if let Some(v) = sums.values.get_mut(o) {
                    *v += input.accept_value(k) * input.p[k] * x;
                }
            }
            if let Some((out, mix)) = blend.as_mut() {
                let slot = &mut out[k - first];
                *slot += (*mix * (x - f64::from(*slot))) as f32;
            }
        }
    }
    sums
}

/// Most refills of [`respond_within_policy`]. A refill that breaks no row
/// ends the loop; one that does is cut again, which may leave a slot empty
/// again (rows can share members). Running out is safe (the response keeps
/// every row) but may leave a freed slot empty.
const MAX_REFILLS: usize = 4;

/// Customer `c`'s ridge response `x` (at `reduced`, `inv_gamma`, within its
/// contact cap) made to keep its contact-policy rows (the repair's generous
/// response; pricing takes the customer's exact LP, see
/// [`price_customers`]): each row over its right-hand side is cut
/// ([`keep_policy`]), and the contact slots the cuts
/// freed are refilled by the candidates in no full row, along the same
/// ridge (`x_i = clip((r_i - theta) / gamma_i, x_i, 1)` with the smallest
/// `theta >= 0` that fits the freed slots); a refill that breaks another
/// row is cut again. Why refill: the ridge response fills the cap before
/// the rows are seen, so a cut alone left the slot of an offer the rows
/// turn away empty where the customer's exact LP gives it to the next
/// best offer outside the row (`allot generate --contact-policies` at
/// 40 offers, 300 SKUs, 20 zones, 8,000 customers: the plan stayed 3.2e-2
/// of the offers' value short of the optimal prices' bound).
pub fn respond_within_policy(input: &KernelInput, c: usize, reduced: &[f64], inv_gamma: &[f64], order: &mut Vec<u32>, x: &mut [f64]) {
    let Some((policy, rows)) = input.policy_of(c) else { return };
    if !keep_policy(input, c, reduced, order, x) {
        return;
    }
    let cap = input.cap[c];
    if cap == u32::MAX {
        // No cap: a cut frees nothing another candidate could use.
        return;
    }
    const FULL: f64 = 1e-9;
    for _ in 0..MAX_REFILLS {
        let room = f64::from(cap) - x.iter().sum::<f64>();
        if room <= FULL {
            return;
        }
        // Candidates that may grow: below 1 and in no full row.
        order.clear();
        order.extend((0..x.len() as u32).filter(|&i| x[i as usize] < 1.0 && reduced[i as usize] > 0.0));
        for row in rows.clone() {
            let members = policy.members(row);
            if members.iter().map(|&i| x[i as usize]).sum::<f64>() >= policy.rhs[row] - FULL {
                order.retain(|i| !members.contains(i));
            }
        }
        let grown = |theta: f64, i: usize, now: f64| ((reduced[i] - theta) * inv_gamma[i]).clamp(now, 1.0);
        let added = |theta: f64| order.iter().map(|&i| grown(theta, i as usize, x[i as usize]) - x[i as usize]).sum::<f64>();
        if order.is_empty() || added(0.0) <= FULL {
            return;
        }
        // `added` falls from above zero at 0 to 0 at the largest reduced value.
        let theta = if added(0.0) <= room {
            0.0
        } else {
            let (mut lo, mut hi) = (0.0, order.iter().map(|&i| reduced[i as usize]).fold(0.0, f64::max));
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if added(mid) > room {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };
        for &i in order.iter() {
            let i = i as usize;
            x[i] = grown(theta, i, x[i]);
        }
        if !keep_policy(input, c, reduced, order, x) {
            return;
        }
    }
}

/// Makes customer `c`'s response `x` keep its contact-policy rows: in each row
/// over its right-hand side, the members of lowest reduced value are cut first
/// (lowering `x` only lowers the other rows too, so one pass keeps them all).
///
/// Why not the exact projection: the response only has to be a feasible point
/// near the ridge response; the dual function itself (its value and prices)
/// comes from the customer's exact LP ([`CustomerLp`]).
/// Returns whether it cut anything.
pub fn keep_policy(input: &KernelInput, c: usize, reduced: &[f64], order: &mut Vec<u32>, x: &mut [f64]) -> bool {
    let Some(policy) = input.policy else { return false };
    let mut cut_any = false;
    for row in policy.of_customer(c) {
        let members = policy.members(row);
        let mut excess = members.iter().map(|&i| x[i as usize]).sum::<f64>() - policy.rhs[row];
        if excess <= 0.0 {
            continue;
        }
        // Rounding left by an earlier cut is no cut worth a refill.
        cut_any |= excess > 1e-12;
        order.clear();
        order.extend_from_slice(members);
        order.sort_by(|&a, &b| reduced[a as usize].total_cmp(&reduced[b as usize]));
        for &i in order.iter() {
            let cut = x[i as usize].min(excess);
            x[i as usize] -= cut;
            excess -= cut;
            if excess <= 0.0 {
                break;
            }
        }
    }
    cut_any
}

/// Customer `c`'s contact-cap price and the prices of its contact-policy rows
/// (into `row_prices`, in row order) at the reduced values `reduced`.
pub fn customer_prices(input: &KernelInput, c: usize, reduced: &[f64], scratch: &mut Scratch, row_prices: &mut Vec<f64>) -> f64 {
    match input.policy_of(c) {
        Some((policy, rows)) => scratch.lp.solve(reduced, input.cap[c], policy, rows, row_prices).cap_price,
        None => {
            row_prices.clear();
            contact_cap_price(&mut scratch.breaks, reduced, input.cap[c])
        }
    }
}

/// Reduced values `value - accept charge + per_exposure` of customer `c`'s
/// candidates ([`CellPrices::accept_charge`]), and the inverses of their ridge
/// weights `1 / (epsilon * value)`.
pub fn reduced_values(input: &KernelInput, prices: &CellPrices, c: usize, reduced: &mut Vec<f64>, inv_gamma: &mut Vec<f64>) {
    reduced.clear();
    inv_gamma.clear();
    let zone = input.zone[c] as usize;
    let slot = input.slot[c] as usize;
    for k in input.customer_start[c] as usize..input.customer_start[c + 1] as usize {
        let o = input.offer[k] as usize;
        let (value, scale) = input.gain(c, k);
        reduced.push(value - prices.accept_charge(input, zone, k) + prices.per_exposure[o * input.slots + slot]);
        inv_gamma.push(1.0 / (prices.epsilon * scale.abs()).max(1e-9));
    }
}

/// The customer's unsmoothed best value: the sum of its `cap` largest positive
/// reduced values (its term of the Lagrangian dual function).
pub fn best_response_value(buf: &mut Vec<f64>, reduced: &[f64], cap: u32) -> f64 {
    let cap = cap as usize;
    if cap >= reduced.len() {
        return reduced.iter().filter(|&&r| r > 0.0).sum();
    }
    if cap == 0 {
        return 0.0;
    }
    if cap <= 8 {
        // The common case (small caps): keep the top values in a sorted array.
        let mut top = [0.0f64; 8];
        let mut n = 0;
        for &r in reduced.iter().filter(|&&r| r > 0.0) {
            if n < cap {
                n += 1;
            } else if r <= top[n - 1] {
                continue;
            }
            let mut i = n - 1;
            while i > 0 && top[i - 1] < r {
                top[i] = top[i - 1];
                i -= 1;
            }
            top[i] = r;
        }
        return top[..n].iter().sum();
    }
    buf.clear();
    buf.extend(reduced.iter().copied().filter(|&r| r > 0.0));
    if buf.len() > cap {
        buf.select_nth_unstable_by(cap - 1, |a, b| b.total_cmp(a));
        buf[..cap].iter().sum()
    } else {
        buf.iter().sum()
    }
}

/// The contact-cap price of a customer: its `cap`-th largest reduced value when
/// more than `cap` candidates are worth taking, else 0.
pub fn contact_cap_price(buf: &mut Vec<f64>, reduced: &[f64], cap: u32) -> f64 {
    buf.clear();
    buf.extend(reduced.iter().copied().filter(|&r| r > 0.0));
    let cap = cap as usize;
    if buf.len() > cap && cap > 0 {
        // The (cap+1)-th value is what the cap turns away; the price lies between.
        buf.select_nth_unstable_by(cap, |a, b| b.total_cmp(a));
        buf[cap]
    } else {
        0.0
    }
}

/// The ridge-regularized best response: maximise `sum r x - gamma/2 x^2` over
/// `x in [0,1]`, `sum x <= cap`, given `inv_gamma = 1/gamma`. The solution is
/// `x = clip((r - theta)/gamma, 0, 1)` with the smallest `theta >= 0` meeting the
/// cap, found exactly on the breakpoints of that piecewise-linear sum.
pub fn smoothed_response(reduced: &[f64], inv_gamma: &[f64], cap: u32, breaks: &mut Vec<f64>, x: &mut Vec<f64>) {
    let at = |theta: f64, x: &mut Vec<f64>| {
        x.clear();
        x.extend(reduced.iter().zip(inv_gamma).map(|(&r, &ig)| ((r - theta) * ig).clamp(0.0, 1.0)));
    };
    let sum_at = |theta: f64| reduced.iter().zip(inv_gamma).map(|(&r, &ig)| ((r - theta) * ig).clamp(0.0, 1.0)).sum::<f64>();
    let cap = cap as f64;
    at(0.0, x);
    let s0: f64 = x.iter().sum();
    if s0 <= cap {
        return;
    }
    // sum(theta) falls from > cap at 0 to 0 at max(r); it is linear between breakpoints.
    breaks.clear();
    for (&r, &ig) in reduced.iter().zip(inv_gamma) {
        if r > 0.0 {
            breaks.push(r);
            let lower = r - 1.0 / ig;
            if lower > 0.0 {
                breaks.push(lower);
            }
        }
    }
    breaks.sort_unstable_by(f64::total_cmp);
    // Binary search for the first breakpoint where the sum is within the cap
    // (invariant: sum(lo) > cap >= sum(hi); the sum is 0 at the last breakpoint).
    let (mut lo, mut s_lo) = (0.0, s0);
    let (mut lo_i, mut hi_i) = (None, breaks.len() - 1);
    let mut first = 0;
    while first < hi_i {
        let mid = (first + hi_i) / 2;
        let s = sum_at(breaks[mid]);
        if s > cap {
            lo_i = Some(mid);
            s_lo = s;
            first = mid + 1;
        } else {
            hi_i = mid;
        }
    }
    if let Some(i) = lo_i {
        lo = breaks[i];
    }
    let hi = breaks[hi_i];
    let s_hi = sum_at(hi);
    // The sum is linear between the two breakpoints: interpolate the root.
    let theta = if s_lo - s_hi > 0.0 { lo + (hi - lo) * (s_lo - cap) / (s_lo - s_hi) } else { hi };
    at(theta, x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothed_response_meets_the_cap_exactly() {
        let r = [3.0, 2.0, 1.5, 0.2, -1.0];
        let g = [1.0; 5];
        let g = g.map(|g: f64| 1.0 / g);
        let (mut b, mut x) = (Vec::new(), Vec::new());
        smoothed_response(&r, &g, 2, &mut b, &mut x);
        let s: f64 = x.iter().sum();
        assert!((s - 2.0).abs() < 1e-9, "{x:?}");
        assert!(x.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(x[4], 0.0);
        // Uncapped: plain clipping.
        smoothed_response(&r, &g, 10, &mut b, &mut x);
        assert_eq!(x, vec![1.0, 1.0, 1.0, 0.2, 0.0]);
    }

    #[test]
    fn smoothed_response_is_the_projection() {
        // Compare with a fine search over theta.
        let r = [0.9, 0.85, 0.8, 0.3];
        let g = [0.5, 0.1, 0.2, 0.3];
        let (mut b, mut x) = (Vec::new(), Vec::new());
        smoothed_response(&r, &g.map(|g: f64| 1.0 / g), 1, &mut b, &mut x);
        let s: f64 = x.iter().sum();
        assert!((s - 1.0).abs() < 1e-9, "{x:?}");
        let theta = r[0] - g[0] * x[0];
        for i in 0..4 {
            let want = ((r[i] - theta) / g[i]).clamp(0.0, 1.0);
            assert!((x[i] - want).abs() < 1e-9, "{i}: {x:?}");
        }
    }

    #[test]
    fn smoothed_response_matches_bisection_on_many_inputs() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut b, mut x) = (Vec::new(), Vec::new());
        for _ in 0..500 {
            let m = 1 + (next() * 12.0) as usize;
            let r: Vec<f64> = (0..m).map(|_| 2.0 * next() - 0.5).collect();
            let g: Vec<f64> = (0..m).map(|_| 0.01 + next()).collect();
            let cap = (next() * 4.0) as u32;
            let inv: Vec<f64> = g.iter().map(|g| 1.0 / g).collect();
            smoothed_response(&r, &inv, cap, &mut b, &mut x);
            let sum = |t: f64| r.iter().zip(&g).map(|(&r, &g)| ((r - t) / g).clamp(0.0, 1.0)).sum::<f64>();
            let theta = if sum(0.0) <= cap as f64 {
                0.0
            } else {
                let (mut lo, mut hi) = (0.0, 10.0);
                for _ in 0..200 {
                    let mid = (lo + hi) / 2.0;
                    if sum(mid) > cap as f64 { lo = mid } else { hi = mid }
                }
                hi
            };
            for i in 0..m {
                let want = ((r[i] - theta) / g[i]).clamp(0.0, 1.0);
                assert!((x[i] - want).abs() < 1e-6, "r {r:?} g {g:?} cap {cap}: {x:?}");
            }
        }
    }

    #[test]
    fn best_response_takes_the_top_positive_values() {
        let mut b = Vec::new();
        assert_eq!(best_response_value(&mut b, &[1.0, 5.0, -2.0, 3.0], 2), 8.0);
        assert_eq!(best_response_value(&mut b, &[1.0, -5.0], 3), 1.0);
        assert_eq!(best_response_value(&mut b, &[1.0, 5.0], 0), 0.0);
        assert_eq!(best_response_value(&mut b, &[1.0, 5.0, 3.0, 4.0, 2.0, -1.0], 3), 12.0);
        let many: Vec<f64> = (0..20).map(f64::from).collect();
        assert_eq!(best_response_value(&mut b, &many, 10), (10..20).map(f64::from).sum::<f64>());
        assert_eq!(contact_cap_price(&mut b, &[1.0, 5.0, -2.0, 3.0], 2), 1.0);
        assert_eq!(contact_cap_price(&mut b, &[1.0, 5.0], 2), 0.0);
    }
}
