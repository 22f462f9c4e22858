//! Per-customer and per-offer numbers that set a candidate's value and cell.

use super::kernel::KernelInput;
use crate::candidates::Candidates;
use crate::contact_policy::CustomerRows;
use crate::model::Problem;

/// Per-customer and per-offer attributes that set a candidate's value and cell,
/// computed once per solve: the driver's preconditioner and every partition of
/// customers read the same numbers.
#[derive(Debug, Clone)]
pub struct CustomerAttributes {
    /// Fairness slot of each customer: its group index, or `groups` when it has none.
    pub(super) slot: Vec<u32>,
    /// Objective weight of each customer (its tier's weight).
    pub(super) weight: Vec<f64>,
    /// Contact cap of each customer (`u32::MAX` when unlimited).
    pub(super) cap: Vec<u32>,
    /// Margin of each offer.
    pub(super) margin: Vec<f64>,
    /// Cost per contact of each offer.
    pub(super) contact_cost: Vec<f64>,
    /// Every customer's contact-policy rows over its candidates.
    pub(super) policy: CustomerRows,
    zones: usize,
    slots: usize,
}

impl CustomerAttributes {
    /// The attributes of `problem`'s customers and offers, and the
    /// contact-policy rows of the candidates `cands`.
    pub fn new(problem: &Problem, cands: &Candidates) -> Self {
        let groups = problem.groups.len() as u32;
        let cust = &problem.customers;
        CustomerAttributes {
            slot: cust.group.iter().map(|g| g.unwrap_or(groups)).collect(),
            weight: cust.tier.iter().map(|&t| problem.tiers[t as usize].weight).collect(),
            cap: (0..cust.len() as u32).map(|c| problem.contact_cap_of(c).unwrap_or(u32::MAX)).collect(),
            margin: problem.offers.iter().map(|o| o.margin).collect(),
            contact_cost: problem.offers.iter().map(|o| o.cost_per_contact).collect(),
            policy: cands.customer_rows(problem),
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
            contact_cost: &self.contact_cost,
            accept_value: cands.accept_value.as_deref(),
            zones: self.zones,
            slots: self.slots,
            policy: (!self.policy.is_empty()).then_some(&self.policy),
        }
    }
}

