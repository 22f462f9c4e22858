//! Contact policies applied live (model version 2): the contacts a channel
//! reports (`POST /v1/events/contact`) join the history the plan was made
//! with, so that a decision respects every `max_per_customer` rule and
//! conflict as of today, and the hard `max_total` rules on contacts or
//! contact cost burn down as contacts are made.
//!
//! The rule itself is the planner's (`allot_optimizer::contact_policy::Policies`):
//! a contact of offer `o` today is refused when a rule selecting it has no
//! whole contact of room left, or when a contact its conflict's earlier
//! selector matches opened a window that today falls in. Live contacts dated
//! before the plan's horizon count only through the plan's own history (the
//! planner had them, or should have: `contact_history.csv`).

use std::collections::HashMap;

use allot_optimizer::contact_policy::{HistoryExclusion, Policies};
use allot_optimizer::{Measure, PastContact};
use allot_scenarios::ServingContactPolicies;
use chrono::NaiveDate;

use crate::index::PlanIndex;

/// A contact the service was told of, as folded from its event.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactMade {
    /// The offer contacted (its id: plans come and go, ids stay).
    pub offer_id: String,
    /// The channel it was made on, when posted (else the offer's).
    pub channel: Option<String>,
    /// The day it was made.
    pub date: NaiveDate,
}

/// A plan's contact policies indexed for decisions.
#[derive(Debug)]
pub(crate) struct PolicyIndex {
    offer_ix: HashMap<String, u32>,
    channel_ix: HashMap<String, u32>,
    /// `history[history_start[c]..history_start[c + 1]]`: customer `c`'s contacts before the plan.
    history_start: Vec<u32>,
}

impl PolicyIndex {
    /// Indexes `policies` for a plan with `customers` customers (the
    /// history is sorted by customer, as the planner keeps it).
    pub(crate) fn new(policies: &ServingContactPolicies, offer_ids: impl Iterator<Item = String>, customers: usize) -> Result<Self, String> {
        let mut history_start = vec![0u32; customers + 1];
        for h in &policies.history {
            let Some(slot) = history_start.get_mut(h.customer as usize + 1) else {
                return Err(format!("contact history names customer {} of {customers}", h.customer));
            };
            *slot += 1;
        }
        for c in 0..customers {
            history_start[c + 1] += history_start[c];
        }
        if policies.history.windows(2).any(|w| w[0].customer > w[1].customer) {
            return Err("the contact history is not sorted by customer".into());
        }
        Ok(PolicyIndex {
            offer_ix: offer_ids.enumerate().map(|(i, id)| (id, i as u32)).collect(),
            channel_ix: policies.channels.iter().enumerate().map(|(i, name)| (name.clone(), i as u32)).collect(),
            history_start,
        })
    }

    /// A live contact in the plan's terms: its channel as posted, else its
    /// offer's (an offer the plan does not know keeps the posted channel,
    /// without tags or offer).
    fn past(&self, policies: &ServingContactPolicies, c: u32, contact: &ContactMade) -> PastContact {
        let offer = self.offer_ix.get(&contact.offer_id).copied();
        let known = offer.and_then(|o| policies.offers.get(o as usize));
        let channel = match &contact.channel {
            Some(name) => self.channel_ix.get(name).copied(),
            None => known.map(|o| o.channel),
        };
        PastContact {
            customer: c,
            date: contact.date,
            channel: channel.unwrap_or(PastContact::OTHER_CHANNEL),
            tags: known.map(|o| o.tags.clone()).unwrap_or_default(),
            offer,
        }
    }
}

/// Whether a contact on `date` falls in the plan's horizon.
fn in_horizon(plan: &PlanIndex, date: NaiveDate) -> bool {
    let start = plan.context.horizon_start;
    date >= start && (date - start).num_days() < i64::from(plan.context.horizon_days)
}

impl PlanIndex {
    /// Why customer `c` may not be contacted with offer `o` today given its
    /// history and its live contacts (`live:rule:<id>`, `live:conflict`), if so.
    pub(crate) fn contact_block(&self, c: u32, o: u32, live: &[ContactMade], today: NaiveDate) -> Option<String> {
        let (Some(policies), Some(index)) = (&self.context.contact_policies, &self.policy_index) else { return None };
        if policies.rules.is_empty() && policies.conflicts.is_empty() {
            return None;
        }
        let offer = policies.offers.get(o as usize)?;
        let (lo, hi) = (index.history_start[c as usize] as usize, index.history_start[c as usize + 1] as usize);
        let history = &policies.history[lo..hi];
        let mut contacts: Vec<PastContact> = history.to_vec();
        let start = self.context.horizon_start;
        // A live contact the history already holds (same offer, same day) counts once.
        contacts.extend(
            live.iter()
                .filter(|l| l.date >= start)
                .map(|l| index.past(policies, c, l))
                .filter(|l| !history.iter().any(|h| h.offer.is_some() && h.offer == l.offer && h.date == l.date)),
        );
        let selects = |s: &allot_optimizer::Selector| s.matches(offer.channel, &offer.tags, Some(o), today);
        let set = Policies { rules: &policies.rules, conflicts: &policies.conflicts };
        // One whole contact of room is needed: this one.
        match set.first_block(|i| selects(&policies.rules[i].selector), |j| selects(&policies.conflicts[j].b), &contacts, today, 1.0)? {
            HistoryExclusion::Rule(i) => Some(format!("live:rule:{}", policies.rules[i as usize].id)),
            HistoryExclusion::Conflict(_) => Some("live:conflict".to_string()),
        }
    }
}

/// The live measure of each volume rule that burns down (see
/// `allot_scenarios::burns_down_live`): contacts made in the plan's horizon
/// that the rule selects, counted or costed. Kept per served plan; an event
/// adds to it in O(rules).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VolumeBurn {
    used: Vec<f64>,
}

impl VolumeBurn {
    /// The measures from every live contact so far.
    pub(crate) fn compute<'a>(plan: &PlanIndex, contacts: impl Iterator<Item = &'a ContactMade>) -> Self {
        let n = plan.context.contact_policies.as_ref().map_or(0, |p| p.volume_rules.len());
        let mut burn = VolumeBurn { used: vec![0.0; n] };
        if n > 0 {
            for contact in contacts {
                burn.apply(plan, contact);
            }
        }
        burn
    }

    /// Adds one contact.
    pub(crate) fn apply(&mut self, plan: &PlanIndex, contact: &ContactMade) {
        let (Some(policies), Some(index)) = (&plan.context.contact_policies, &plan.policy_index) else { return };
        if policies.volume_rules.is_empty() || !in_horizon(plan, contact.date) {
            return;
        }
        let past = index.past(policies, 0, contact);
        for (used, rule) in self.used.iter_mut().zip(&policies.volume_rules) {
            if past.selected_by(&rule.selector) {
                *used += measure(plan, rule.measure, past.offer);
            }
        }
    }

    /// The first volume rule a contact of offer `o` today would take past its
    /// bound (`live:rule:<id>`), if any.
    pub(crate) fn exhausted(&self, plan: &PlanIndex, o: u32, today: NaiveDate) -> Option<String> {
        let policies = plan.context.contact_policies.as_ref()?;
        let offer = policies.offers.get(o as usize)?;
        policies.volume_rules.iter().zip(&self.used).find_map(|(rule, used)| {
            let more = measure(plan, rule.measure, Some(o));
            (rule.selector.matches(offer.channel, &offer.tags, Some(o), today) && used + more > rule.bound * (1.0 + 1e-9) + 1e-9)
                .then(|| format!("live:rule:{}", rule.id))
        })
    }
}

/// What one contact of `offer` adds to a rule's measure.
fn measure(plan: &PlanIndex, m: Measure, offer: Option<u32>) -> f64 {
    match m {
        Measure::ContactCost => offer.and_then(|o| plan.context.offers.get(o as usize)).map_or(0.0, |o| o.cost_per_contact),
        _ => 1.0,
    }
}
