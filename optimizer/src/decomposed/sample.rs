//! Warm start: prices learned exactly on a sample of the customers.
//!
//! For an allocation LP with many small customers and few coupling rows, the
//! optimal prices of a random sample of customers, with every capacity scaled to
//! the sample's share, approximate the full problem's prices (the idea behind
//! learning dual prices from a sample in online allocation: Devanur and Hayes,
//! "The AdWords problem", EC 2009; Agrawal, Wang and Ye, "A dynamic near-optimal
//! algorithm for online linear programming", Operations Research 2014). Solving the
//! sample exactly is cheap and puts the dual ascent close to the optimum from its
//! first iteration.

use crate::candidates::{Candidates, Network};
use crate::exact::{self, ExactOptions, SolveError};
use crate::lp_backend::{self, Interrupt};
use crate::model::{CustomerIx, Customers, Problem};
use crate::allocation::ShadowPrices;

/// The sample's size in customers: large enough that its prices are close, small
/// enough that HiGHS solves it in well under a second on two cores.
pub const SAMPLE_CUSTOMERS: usize = 4000;

/// Whether a problem of `customers` customers is its own first sample (see
/// [`sample_problem`]): the first sample's prices are then the LP's optimal
/// prices, found by solving the whole LP exactly.
pub fn whole_problem_is_sampled(customers: usize) -> bool {
    is_own_sample(customers, SAMPLE_CUSTOMERS)
}

/// Whether a problem of `customers` customers is its own sample of `size`
/// (see [`sample_problem`]).
fn is_own_sample(customers: usize, size: usize) -> bool {
    customers <= size * 2
}

/// Customers per independent sample: above this many customers, several disjoint
/// samples are solved (in parallel); their mean and each of them are tried, and
/// the prices with the lowest dual bound start the ascent. Measured at 1M
/// customers: 4 samples cut the certified gap from 2.8e-3 to 1.6e-3 for 2 s more
/// (at 100k, 2 samples did not help, so small runs use one).
pub const CUSTOMERS_PER_SAMPLE: usize = 250_000;

/// At most this many samples are averaged.
pub const MAX_SAMPLES: usize = 4;

/// The largest sample the ascent escalates to ([`Escalation`]): about
/// 200,000 candidate pairs at `allot bench`'s settings, an exact LP of a few
/// seconds.
pub const MAX_ESCALATED_CUSTOMERS: usize = 32_000;

/// Each escalation solves a sample this many times larger than the last.
const ESCALATION_FACTOR: usize = 4;

/// Every `n/size`-th customer starting at `phase` (in `[0, 1)` of a stride): a
/// deterministic systematic sample, which keeps the mix of zones, tiers and groups
/// of the input order, with capacities scaled to its share. The offers marked
/// in `closed` (indexed by offer; empty when none is) lose their uptake rows,
/// so the sample prices one choice of open custom offers. A
/// problem of at most twice `size` customers is its own sample: its exact
/// prices cost no more than a sample's, and a smaller sample's would be a
/// poor guess at them.
pub fn sample_problem(problem: &Problem, size: usize, phase: f64, closed: &[bool]) -> Option<Problem> {
    let n = problem.customers.len();
    if size == 0 || n == 0 {
        return None;
    }
    let size = if is_own_sample(n, size) { n } else { size };
    let stride = n as f64 / size as f64;
    let picked: Vec<usize> = (0..size).map(|i| (((i as f64 + phase) * stride) as usize).min(n - 1)).collect();
    let share = picked.len() as f64 / n as f64;
    let mut new_index = vec![u32::MAX; n];
    let src = &problem.customers;
    let mut customers = Customers::default();
    for (i, &c) in picked.iter().enumerate() {
        new_index[c] = i as CustomerIx;
        customers.id.push(src.id[c].clone());
        customers.zone.push(src.zone[c]);
        customers.tier.push(src.tier[c]);
        customers.consent.push(src.consent[c]);
        customers.suppressed.push(src.suppressed[c]);
        customers.group.push(src.group[c]);
        customers.max_offers.push(src.max_offers[c]);
    }
    let is_closed = |offer: usize| closed.get(offer).copied().unwrap_or(false);
    let kept: Vec<usize> = (0..problem.uptake.len())
        .filter(|&row| new_index[problem.uptake[row].customer as usize] != u32::MAX && !is_closed(problem.uptake[row].offer as usize))
        .collect();
    let mut sample = Problem {
        horizon: problem.horizon,
        policy: problem.policy.clone(),
        tiers: problem.tiers.clone(),
        zones: problem.zones.clone(),
        skus: problem.skus.clone(),
        warehouses: problem.warehouses.clone(),
        groups: problem.groups.clone(),
        customers,
        offers: problem.offers.clone(),
        uptake: kept.iter().map(|&row| crate::model::Uptake { customer: new_index[problem.uptake[row].customer as usize], ..problem.uptake[row] }).collect(),
        uptake_value: problem.uptake_value.as_ref().map(|v| kept.iter().map(|&row| v[row]).collect()),
        channels: problem.channels.clone(),
        tags: problem.tags.clone(),
        rules: problem.rules.clone(),
        contact_rules: problem.contact_rules.clone(),
        conflicts: problem.conflicts.clone(),
        // Customers keep their order, so the history stays sorted by customer.
        history: problem
            .history
            .iter()
            .filter(|h| new_index[h.customer as usize] != u32::MAX)
            .map(|h| crate::model::PastContact { customer: new_index[h.customer as usize], ..h.clone() })
            .collect(),
        stock: problem.stock.clone(),
        lanes: problem.lanes.clone(),
        baseline: problem.baseline.clone(),
    };
    // The custom-offer limit stays with the full problem (its relaxation is dualized there).
    sample.policy.max_custom_offers = None;
    // The warm start wants the relaxation's prices, not a sample MIP's.
    sample.policy.binary_decisions = false;
    sample.policy.budget = problem.policy.budget.map(|b| b * share);
    for rule in &mut sample.rules {
        rule.bound *= share;
    }
    for s in &mut sample.stock {
        s.scale(share);
    }
    for l in &mut sample.lanes {
        l.capacity = l.capacity.map(|c| c * share);
    }
    for z in &mut sample.zones {
        z.delivery_capacity = z.delivery_capacity.map(|c| c * share);
    }
    for o in &mut sample.offers {
        o.max_redemptions = o.max_redemptions.map(|c| c * share);
    }
    for b in &mut sample.baseline {
        b.units *= share;
    }
    Some(sample)
}

/// Solves one or more disjoint samples exactly (in parallel) and returns their
/// shadow prices (a problem of at most twice the sample's size is its own
/// sample); empty when every sample fails to solve, in which case the ascent
/// starts from zero prices.
/// `closed` as in [`sample_problem`].
pub fn sample_prices(problem: &Problem, closed: &[bool]) -> Vec<ShadowPrices> {
    samples_from(problem, closed, 0)
}

/// The exact prices of the first of [`sample_prices`]'s samples, alone: for a
/// quick bound.
pub fn first_sample_prices(problem: &Problem, closed: &[bool]) -> Option<ShadowPrices> {
    prices_of_sample(problem, SAMPLE_CUSTOMERS, 0.0, closed)
}

/// The prices of [`sample_prices`]'s samples after the first (none below
/// 500,000 customers): with [`first_sample_prices`], all of them.
pub fn further_sample_prices(problem: &Problem, closed: &[bool]) -> Vec<ShadowPrices> {
    samples_from(problem, closed, 1)
}

/// The prices of [`sample_prices`]'s disjoint samples from the `first`-th on,
/// solved in parallel.
fn samples_from(problem: &Problem, closed: &[bool], first: usize) -> Vec<ShadowPrices> {
    use rayon::prelude::*;
    let count = (problem.customers.len() / CUSTOMERS_PER_SAMPLE).clamp(1, MAX_SAMPLES);
    (first..count).into_par_iter().filter_map(|i| prices_of_sample(problem, SAMPLE_CUSTOMERS, i as f64 / count as f64, closed)).collect()
}

/// The exact prices of one sample of `size` customers (see [`sample_problem`]);
/// `None` when the problem is too small for it or the sample fails to solve.
/// An escalated sample (larger than [`SAMPLE_CUSTOMERS`]) is solved
/// unscaled first ([`lp_backend::UNSCALED`]), with HiGHS's scaling when that
/// run fails. Why: at 16,000 customers of `allot bench`'s scenario the
/// unscaled simplex took 2.7 s where the scaled one took 4.5 s, for a bound
/// 8e-6 of the offers' value apart (its optimal duals differ: the LP is
/// degenerate). The first samples stay scaled: their prices start every
/// cold solve, and the tests' warm re-plans certify from them.
fn prices_of_sample(problem: &Problem, size: usize, phase: f64, closed: &[bool]) -> Option<ShadowPrices> {
    let sample = sample_problem(problem, size, phase, closed)?;
    prices_of_sampled(&sample, size, problem.customers.len(), None)
}

/// [`prices_of_sample`] of a sample already drawn from a problem of
/// `customers` customers; `stop` gives the solve up (then `None`).
fn prices_of_sampled(sample: &Problem, size: usize, customers: usize, stop: Option<&Interrupt>) -> Option<ShadowPrices> {
    let given_up = || stop.is_some_and(Interrupt::is_set);
    if given_up() {
        return None;
    }
    let network = Network::new(sample);
    let cands = Candidates::build(sample, &network);
    // HiGHS's thread count is left alone: it is a process-wide scheduler, and
    // asking for a different count after its first use makes the solve fail.
    // An infeasible sample is only dropped: no infeasible subset is asked for.
    let scaled = ExactOptions { explain_infeasible: false, cancel: stop.cloned(), ..ExactOptions::default() };
    let prices = 'solved: {
        if size > SAMPLE_CUSTOMERS {
            let unscaled = ExactOptions { highs_options: vec![lp_backend::option(lp_backend::UNSCALED)], ..scaled.clone() };
            match exact::prices(sample, &network, &cands, &unscaled) {
                Ok(prices) => break 'solved prices,
                // An answer that scaling does not change, or the solve given up.
                Err(SolveError::Contradiction(_) | SolveError::Infeasible(_) | SolveError::Unbounded | SolveError::Interrupted) => return None,
                Err(_) => {}
            }
        }
        if given_up() {
            return None;
        }
        exact::prices(sample, &network, &cands, &scaled).ok()?
    };
    Some(in_full_units(prices, sample.customers.len() as f64 / customers as f64))
}

/// A sample's prices in the full problem's units: its fairness prices over
/// `share` (the sample's customers over the problem's). Why: every other
/// coupling row a sample has sums over customers, and the sample scales its
/// right-hand side with its objective, so their prices carry over as they
/// are (the custom-offer limit, a mean too, is left out of samples); a
/// fairness row compares mean exposures, which a sample keeps at the full
/// problem's scale while its objective is `share` of it, so its price is
/// about `share` of the full problem's (exactly, the ratio of the groups'
/// candidates in the sample to the problem's, which a systematic sample
/// keeps near `share`). Measured on `allot generate
/// --volume-rules` (30,000 customers, 40 offers, 20 zones, seed 82, the LP):
/// the unscaled prices (a 15,000-customer sample's half of the exact duals)
/// left the bound 2.4e-3 of the offers' value above the optimum and the
/// ascent stalled at 2.8e-3; with them, 2.8e-4 in 7.9 s instead of 30.7 s.
fn in_full_units(mut prices: ShadowPrices, share: f64) -> ShadowPrices {
    for row in &mut prices.fairness {
        row.price /= share;
    }
    prices
}

/// Larger samples, for when the ascent cannot lower the first sample's bound.
///
/// Why: the bound a sample's prices certify improves quickly with its size,
/// while the ascent barely moves the zone-balance prices (their
/// preconditioner is large: every shipment arc into a zone responds to them).
/// Measured on a tight-stock scenario of 30,000 customers (`allot generate`
/// with 40 offers, 300 SKUs, 20 zones), the sample's bound above the optimum:
/// 3,743 at 2,000 customers, 509 at 4,000, 209 at 8,000, 39 at 14,000, on an
/// offers' value of about 55,000. Most of the difference from the optimal
/// prices was in the zone-balance rows (a quarter of their sum), while the
/// stock prices were within 0.2%.
///
/// Once no larger sample is allowed, one more sample of the last size, disjoint
/// from it, is solved and the two samples' prices are averaged (as the first
/// samples are above [`CUSTOMERS_PER_SAMPLE`]); last, once, the whole problem
/// when it has at most [`MAX_ESCALATED_CUSTOMERS`] customers.
#[derive(Debug)]
pub struct Escalation {
    /// The last sample's size (the first is [`SAMPLE_CUSTOMERS`]).
    size: usize,
    customers: usize,
    /// Whether the second sample of the largest size was solved.
    repeated: bool,
    /// The next sample, solving on a thread of its own ([`Escalation::solve_ahead`]).
    ahead: Option<Ahead>,
}

/// A sample solving ahead of the ascent's need, and how to give it up.
#[derive(Debug)]
struct Ahead {
    sample: EscalatedSample,
    /// The offers closed when it was drawn ([`sample_problem`]).
    closed: Vec<bool>,
    stop: Interrupt,
    solving: std::thread::JoinHandle<Option<ShadowPrices>>,
}

impl Drop for Escalation {
    /// A sample solving ahead that no one will ask for stops: its thread
    /// ends at HiGHS's next simplex iteration, or before its next step
    /// (building the sample's candidates and model, and HiGHS's presolve,
    /// are not interrupted: about a fifth of the solve at 16,000 customers).
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.stop.set();
        }
    }
}

/// One escalation's sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EscalatedSample {
    pub customers: usize,
    /// A second sample of the last escalation's size, to be averaged with it.
    pub repeat: bool,
    /// Where in each stride its customers are taken (see [`sample_problem`]).
    phase: f64,
    /// Whether its prices were solved ahead of the ask ([`Escalation::solve_ahead`]).
    pub solved_ahead: bool,
}

impl Escalation {
    /// Escalation from the first sample of a problem of `customers` customers.
    pub fn new(customers: usize) -> Self {
        Escalation { size: SAMPLE_CUSTOMERS, customers, repeated: false, ahead: None }
    }

    /// No escalation (a warm re-plan's first iteration, or a problem whose
    /// first samples did not solve).
    pub fn none() -> Self {
        Escalation { size: usize::MAX, customers: 0, repeated: true, ahead: None }
    }

    /// The next sample: [`ESCALATION_FACTOR`] times the last, at most
    /// [`MAX_ESCALATED_CUSTOMERS`] and under half the customers (else the
    /// sample is most of the problem), when that at least doubles the last;
    /// else, once, a second sample of an escalated size; else, once, the
    /// whole problem, when it has at most [`MAX_ESCALATED_CUSTOMERS`]
    /// customers (its exact prices then cost no more than the largest
    /// sample's). Why the whole: from 8,000 to 16,000 customers no sample
    /// fits between twice the first and half the problem, so a run whose
    /// first sample's bound the ascent cannot lower had nothing to escalate
    /// to (`allot generate --volume-rules`, 12,000 customers, 40 offers,
    /// 300 SKUs, 20 zones, seed 82, the LP: stalled 2.24e-3 of the offers'
    /// value after 201 iterations, its bound 1.6e-3 above the optimum); and
    /// above that, a run the escalated samples leave short would only stall.
    pub fn next_sample(&self) -> Option<EscalatedSample> {
        if self.size >= self.customers || is_own_sample(self.customers, SAMPLE_CUSTOMERS) {
            // The whole problem's prices are known (or no escalation was asked for).
            return None;
        }
        let size = self.size.saturating_mul(ESCALATION_FACTOR).min(MAX_ESCALATED_CUSTOMERS).min(self.customers.saturating_sub(1) / 2);
        if size >= self.size.saturating_mul(2) {
            // Offset from the first samples' customers (which start at phase 0).
            return Some(EscalatedSample { customers: size, repeat: false, phase: 0.5, solved_ahead: false });
        }
        if self.size > SAMPLE_CUSTOMERS && !self.repeated {
            return Some(EscalatedSample { customers: self.size, repeat: true, phase: 0.0, solved_ahead: false });
        }
        (self.customers <= MAX_ESCALATED_CUSTOMERS).then_some(EscalatedSample { customers: self.customers, repeat: false, phase: 0.0, solved_ahead: false })
    }

    fn advance(&mut self, sample: &EscalatedSample) {
        self.size = sample.customers;
        self.repeated |= sample.repeat;
    }

    /// Solves the next sample and returns it with its prices; `None` once no
    /// further sample is worth it (or it fails to solve).
    pub fn next(&mut self, problem: &Problem, closed: &[bool]) -> Option<(EscalatedSample, ShadowPrices)> {
        let sample = self.next_sample()?;
        self.advance(&sample);
        if let Some(ahead) = self.ahead.take() {
            if ahead.sample == sample && ahead.closed == closed {
                // The same LP as below, solved ahead: the same prices (and
                // its panic, as if solved here).
                let prices = ahead.solving.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                return prices.map(|p| (EscalatedSample { solved_ahead: true, ..sample }, p));
            }
            ahead.stop.set();
        }
        prices_of_sample(problem, sample.customers, sample.phase, closed).map(|p| (sample, p))
    }

    /// Starts solving the next sample on a thread of its own, for
    /// [`Escalation::next`] to take when the ascent asks for it (given up
    /// when this escalation is dropped first). Why: the escalated sample's
    /// LP runs on one core, and at scale the ascent asks for it one window
    /// after its first repair: solved meanwhile, beside the window's
    /// iterations and in the core its repair's hull LPs leave idle, it no
    /// longer holds up the run. The prices are the ones `next` would
    /// compute (the same LP, solved elsewhere), so a run's path does not
    /// depend on when it finishes. The thread (with a rayon pool of its
    /// own, one thread) is beside the solve's pool: the caller starts it
    /// only where a second core is allowed.
    pub fn solve_ahead(&mut self, problem: &Problem, closed: &[bool]) {
        if self.ahead.is_some() {
            return;
        }
        let Some(sample) = self.next_sample() else { return };
        let Some(drawn) = sample_problem(problem, sample.customers, sample.phase, closed) else { return };
        let customers = problem.customers.len();
        let stop = Interrupt::default();
        let stop_here = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("allot-escalation".to_string())
            .spawn(move || {
                // One core's work: the sample's own rayon steps (its
                // candidates) in a pool of this thread alone, not rayon's
                // global pool of every core beside the solve's.
                let solve = || prices_of_sampled(&drawn, sample.customers, customers, Some(&stop_here));
                match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(pool) => pool.install(solve),
                    Err(_) => solve(),
                }
            });
        // Without a thread, `next` solves it when asked.
        if let Ok(solving) = spawned {
            self.ahead = Some(Ahead { sample, closed: closed.to_vec(), stop, solving });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_grows_fourfold_up_to_its_limit_and_half_the_customers_then_the_whole_problem() {
        let sizes = |customers: usize| {
            let mut e = Escalation::new(customers);
            let mut out = Vec::new();
            while let Some(sample) = e.next_sample() {
                out.push((sample.customers, sample.repeat));
                e.advance(&sample);
            }
            out
        };
        assert_eq!(sizes(1_000_000), vec![(16_000, false), (MAX_ESCALATED_CUSTOMERS, false), (MAX_ESCALATED_CUSTOMERS, true)]);
        // Up to the largest sample's size, the whole problem last; above it, not.
        assert_eq!(sizes(30_000), vec![(14_999, false), (14_999, true), (30_000, false)]);
        assert_eq!(sizes(40_000), vec![(16_000, false), (16_000, true)]);
        // No sample between twice the first and half the problem: the whole problem at once.
        assert_eq!(sizes(15_000), vec![(15_000, false)]);
        // A problem that is its own first sample: its prices are already exact.
        assert_eq!(sizes(8_000), vec![]);
        assert_eq!(Escalation::none().next_sample(), None);
    }
}
