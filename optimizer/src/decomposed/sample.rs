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
use crate::exact::{self, ExactOptions};
use crate::model::{CustomerIx, Customers, Problem};
use crate::ShadowPrices;

/// The sample's size in customers: large enough that its prices are close, small
/// enough that HiGHS solves it in well under a second on two cores.
pub const SAMPLE_CUSTOMERS: usize = 4000;

/// Every `n/size`-th customer (a deterministic systematic sample, which keeps the
/// mix of zones, tiers and groups of the input order), with capacities scaled.
pub fn sample_problem(problem: &Problem, size: usize) -> Option<Problem> {
    let n = problem.customers.len();
    if n <= size * 2 || size == 0 {
        return None;
    }
    let stride = n as f64 / size as f64;
    let picked: Vec<usize> = (0..size).map(|i| (i as f64 * stride) as usize).collect();
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
        uptake: problem
            .uptake
            .iter()
            .filter(|u| new_index[u.customer as usize] != u32::MAX)
            .map(|u| crate::Uptake { customer: new_index[u.customer as usize], ..*u })
            .collect(),
        stock: problem.stock.clone(),
        lanes: problem.lanes.clone(),
        baseline: problem.baseline.clone(),
    };
    // The custom-offer limit stays with the full problem (its relaxation is dualized there).
    sample.policy.max_custom_offers = None;
    sample.policy.budget = problem.policy.budget.map(|b| b * share);
    for s in &mut sample.stock {
        s.on_hand *= share;
        s.inbound *= share;
        s.safety_stock *= share;
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

/// Solves the sample exactly and returns its shadow prices, or `None` when the
/// problem is too small to need a sample (or the sample fails to solve, in which
/// case the ascent simply starts from zero prices).
pub fn sample_prices(problem: &Problem, threads: Option<usize>) -> Option<ShadowPrices> {
    let sample = sample_problem(problem, SAMPLE_CUSTOMERS)?;
    let network = Network::new(&sample);
    let cands = Candidates::build(&sample, &network);
    let opts = ExactOptions { threads: threads.map(|t| t as u32), ..ExactOptions::default() };
    exact::solve(&sample, &network, &cands, &opts).ok().map(|a| a.prices)
}
