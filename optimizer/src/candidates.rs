//! The candidate set `E` of the spec, and the hard-rule reason for every uptake
//! pair that is not a candidate.
//!
//! Every solver starts from the same [`Candidates`], so the hard rules (consent,
//! suppression, tier, validity, deliverability, and the contact history's
//! exhausted rules and conflict windows) are applied in exactly one place.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::contact_policy::{CustomerRows, HistoryExclusion, HistoryRules};
use crate::model::{CustomerIx, LaneIx, OfferIx, Problem, SkuIx, Uptake, WarehouseIx, ZoneIx};

/// Uptake rows whose hard rules one task checks ([`Candidates::build`]).
const RULES_BLOCK_ROWS: usize = 1 << 16;

/// Why an uptake pair was excluded before optimisation, in the order rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExclusionRule {
    /// Personalization consent withdrawn.
    Consent,
    /// Customer in a service-recovery workflow.
    Suppressed,
    /// Customer tier below the offer's `min_tier`.
    Tier,
    /// Offer date range does not overlap the horizon.
    Validity,
    /// Some SKU of the offer cannot reach the customer's zone within the promise.
    Undeliverable,
    /// The customer's contact history leaves no room under this `max_per_customer`
    /// rule (index in `Problem::contact_rules`; reason `rule:<rule_id>`).
    ContactRule(u32),
    /// A past contact opens this conflict's window (index in `Problem::conflicts`; reason `conflict`).
    Conflict(u32),
}

impl ExclusionRule {
    /// Machine-readable reason code used in the eligibility output.
    pub fn code(self, problem: &Problem) -> std::borrow::Cow<'static, str> {
        match self {
            ExclusionRule::Consent => "consent".into(),
            ExclusionRule::Suppressed => "suppressed".into(),
            ExclusionRule::Tier => "tier".into(),
            ExclusionRule::Validity => "validity".into(),
            ExclusionRule::Undeliverable => "undeliverable".into(),
            ExclusionRule::ContactRule(i) => format!("rule:{}", problem.contact_rules[i as usize].id).into(),
            ExclusionRule::Conflict(_) => "conflict".into(),
        }
    }
}

/// The supply network as the solvers see it: which warehouse lists which SKU,
/// which lanes are usable under the promise, and what is reachable where.
#[derive(Debug, Clone)]
pub struct Network {
    /// Index into `Problem::stock` for each listed (warehouse, SKU).
    pub stock_index: HashMap<(WarehouseIx, SkuIx), usize>,
    /// Usable lanes (transit within the promise) into each zone.
    pub lanes_into_zone: Vec<Vec<LaneIx>>,
    /// (zone, SKU) pairs that some usable lane from a listing warehouse reaches.
    reachable: HashSet<(ZoneIx, SkuIx)>,
}

impl Network {
    /// Derives the network from a problem.
    pub fn new(problem: &Problem) -> Self {
        let stock_index: HashMap<_, _> = problem
            .stock
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.warehouse, s.sku), i))
            .collect();
        let mut lanes_into_zone = vec![Vec::new(); problem.zones.len()];
        let mut skus_at: HashMap<WarehouseIx, Vec<SkuIx>> = HashMap::new();
        for s in &problem.stock {
            skus_at.entry(s.warehouse).or_default().push(s.sku);
        }
        let mut reachable = HashSet::new();
        for (l, lane) in problem.lanes.iter().enumerate() {
            if !problem.lane_usable(lane) {
                continue;
            }
            lanes_into_zone[lane.zone as usize].push(l as LaneIx);
            for &sku in skus_at.get(&lane.warehouse).map(Vec::as_slice).unwrap_or(&[]) {
                reachable.insert((lane.zone, sku));
            }
        }
        Network { stock_index, lanes_into_zone, reachable }
    }

    /// Whether some usable lane brings `sku` into `zone`.
    pub fn reachable(&self, zone: ZoneIx, sku: SkuIx) -> bool {
        self.reachable.contains(&(zone, sku))
    }
}

/// The candidate pairs `E`, sorted by (customer, offer) for a deterministic model,
/// as a struct of arrays with a CSR index by customer.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// Customer of each candidate.
    pub customer: Vec<CustomerIx>,
    /// Offer of each candidate.
    pub offer: Vec<OfferIx>,
    /// Acceptance probability of each candidate.
    pub p: Vec<f64>,
    /// Row of `Problem::uptake` each candidate came from.
    pub uptake_row: Vec<u32>,
    /// Value of one acceptance of each candidate, when the scenario gives
    /// per-pair values (`Problem::uptake_value`); `None`: each offer's margin.
    pub accept_value: Option<Vec<f64>>,
    /// `customer_start[c]..customer_start[c+1]` are customer `c`'s candidates.
    pub customer_start: Vec<u32>,
    /// Uptake pairs excluded by a hard rule: (uptake row, rule).
    pub excluded: Vec<(u32, ExclusionRule)>,
}

impl Candidates {
    /// Applies the spec's hard rules to every uptake pair.
    pub fn build(problem: &Problem, network: &Network) -> Self {
        let valid_offer: Vec<bool> = problem
            .offers
            .iter()
            .map(|o| problem.horizon.overlaps(o.start_date, o.end_date))
            .collect();
        let cust = &problem.customers;
        let history = problem.has_contact_policies().then(|| HistoryRules::new(problem));
        let rule_of = |u: &Uptake| {
            let c = u.customer as usize;
            let offer = &problem.offers[u.offer as usize];
            if !cust.consent[c] {
                Some(ExclusionRule::Consent)
            } else if cust.suppressed[c] {
                Some(ExclusionRule::Suppressed)
            } else if offer.min_tier.is_some_and(|m| cust.tier[c] > m) {
                Some(ExclusionRule::Tier)
            } else if !valid_offer[u.offer as usize] {
                Some(ExclusionRule::Validity)
            } else if !offer.items.iter().all(|i| network.reachable(cust.zone[c], i.sku)) {
                Some(ExclusionRule::Undeliverable)
            } else {
                history.as_ref().and_then(|h| h.exclusion(problem, u.customer, u.offer)).map(|e| match e {
                    HistoryExclusion::Rule(i) => ExclusionRule::ContactRule(i),
                    HistoryExclusion::Conflict(j) => ExclusionRule::Conflict(j),
                })
            }
        };
        // The rules of every pair, a block of rows per task, the blocks' rows
        // kept in order.
        let blocks: Vec<(Vec<u32>, Vec<(u32, ExclusionRule)>)> = problem
            .uptake
            .par_chunks(RULES_BLOCK_ROWS)
            .enumerate()
            .map(|(b, rows)| {
                let (mut kept, mut excluded) = (Vec::new(), Vec::new());
                for (i, u) in rows.iter().enumerate() {
                    let row = (b * RULES_BLOCK_ROWS + i) as u32;
                    match rule_of(u) {
                        Some(r) => excluded.push((row, r)),
                        None if u.p > 0.0 => kept.push(row),
                        None => {}
                    }
                }
                (kept, excluded)
            })
            .collect();
        let mut kept: Vec<u32> = Vec::with_capacity(blocks.iter().map(|b| b.0.len()).sum());
        let mut excluded = Vec::with_capacity(blocks.iter().map(|b| b.1.len()).sum());
        for (k, e) in blocks {
            kept.extend(k);
            excluded.extend(e);
        }
        // By customer, then offer. Uptake tables list each customer's rows
        // together in the customers' order as a rule: then only each run of
        // a customer's rows is ordered by offer, where a sort of every pair
        // read two rows at random places per comparison (80M at 10M customers).
        let customer_of = |r: u32| problem.uptake[r as usize].customer;
        if kept.windows(2).all(|w| customer_of(w[0]) <= customer_of(w[1])) {
            for run in kept.chunk_by_mut(|&a, &b| customer_of(a) == customer_of(b)) {
                run.sort_unstable_by_key(|&r| problem.uptake[r as usize].offer);
            }
        } else {
            kept.par_sort_unstable_by_key(|&r| {
                let u = &problem.uptake[r as usize];
                (u.customer, u.offer)
            });
        }
        let mut out = Candidates {
            customer: Vec::with_capacity(kept.len()),
            offer: Vec::with_capacity(kept.len()),
            p: Vec::with_capacity(kept.len()),
            accept_value: problem.uptake_value.as_ref().map(|v| kept.iter().map(|&r| v[r as usize]).collect()),
            uptake_row: kept,
            customer_start: vec![0; cust.len() + 1],
            excluded,
        };
        for &r in &out.uptake_row {
            let u = &problem.uptake[r as usize];
            out.customer.push(u.customer);
            out.offer.push(u.offer);
            out.p.push(u.p);
            out.customer_start[u.customer as usize + 1] += 1;
        }
        for c in 0..cust.len() {
            out.customer_start[c + 1] += out.customer_start[c];
        }
        out
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    /// Every customer's contact-policy rows over these candidates.
    pub fn customer_rows(&self, problem: &Problem) -> CustomerRows {
        CustomerRows::build(problem, &self.customer_start, &self.offer)
    }

    /// Candidate indices of one customer.
    pub fn of_customer(&self, c: CustomerIx) -> std::ops::Range<usize> {
        self.customer_start[c as usize] as usize..self.customer_start[c as usize + 1] as usize
    }

    /// Objective coefficient of a candidate, the one place it is written:
    /// `weight(tier) * value * p - cost_per_contact` (the value of one acceptance
    /// is the pair's own, else the offer's margin; the contact is paid accepted or not).
    pub fn value(&self, problem: &Problem, k: usize) -> f64 {
        let tier = problem.customers.tier[self.customer[k] as usize];
        let offer = &problem.offers[self.offer[k] as usize];
        problem.tiers[tier as usize].weight * self.accept_value_of(problem, k) * self.p[k] - offer.cost_per_contact
    }

    /// The value of one acceptance of candidate `k` (unweighted): its pair's own, else its offer's margin.
    pub fn accept_value_of(&self, problem: &Problem, k: usize) -> f64 {
        problem.accept_value(self.uptake_row[k] as usize)
    }

    /// Candidates per offer (`n[o]`).
    pub fn count_per_offer(&self, problem: &Problem) -> Vec<u32> {
        let mut n = vec![0u32; problem.offers.len()];
        for &o in &self.offer {
            n[o as usize] += 1;
        }
        n
    }

    /// The fairness structure: for each fair offer, its candidates per group,
    /// listing only offers where at least two groups have candidates.
    pub fn fairness_groups(&self, problem: &Problem) -> Vec<FairnessGroups> {
        if problem.policy.fairness_min_ratio.is_none() {
            return Vec::new();
        }
        let mut by_offer: Vec<HashMap<u32, Vec<u32>>> = vec![HashMap::new(); problem.offers.len()];
        for k in 0..self.len() {
            let o = self.offer[k] as usize;
            if !problem.offers[o].fair {
                continue;
            }
            if let Some(g) = problem.customers.group[self.customer[k] as usize] {
                by_offer[o].entry(g).or_default().push(k as u32);
            }
        }
        by_offer
            .into_iter()
            .enumerate()
            .filter(|(_, m)| m.len() >= 2)
            .map(|(o, m)| {
                let mut groups: Vec<(u32, Vec<u32>)> = m.into_iter().collect();
                groups.sort_unstable_by_key(|(g, _)| *g);
                FairnessGroups { offer: o as OfferIx, groups }
            })
            .collect()
    }
}

/// Candidates of one fair offer split by protected group (groups sorted by index).
#[derive(Debug, Clone)]
pub struct FairnessGroups {
    /// The offer.
    pub offer: OfferIx,
    /// (group, candidate indices) for every group with candidates.
    pub groups: Vec<(u32, Vec<u32>)>,
}
