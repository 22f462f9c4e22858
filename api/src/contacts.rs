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
use allot_scenarios::{ContactRecord, ServingContactPolicies};
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
    /// The contacts made before the plan, by customer.
    history: Vec<PastContact>,
    /// `history[history_start[c]..history_start[c + 1]]`: customer `c`'s.
    history_start: Vec<u32>,
}

impl PolicyIndex {
    /// Indexes `policies` and the version's contact history, whose rows (in
    /// the scenario's names) `visit_history` hands to its visitor, for a plan
    /// whose customers are `customer_ix`. A name the plan does not know is an
    /// error naming the row.
    pub(crate) fn new<E>(
        policies: &ServingContactPolicies,
        offer_ids: impl Iterator<Item = String>,
        customer_ix: &crate::index::CustomerIx,
        visit_history: impl FnOnce(&mut dyn FnMut(ContactRecord<'_>)) -> Result<(), E>,
    ) -> Result<Result<Self, String>, E> {
        let offer_ix: HashMap<String, u32> = offer_ids.enumerate().map(|(i, id)| (id, i as u32)).collect();
        let channel_ix: HashMap<String, u32> = policies.channels.iter().enumerate().map(|(i, name)| (name.clone(), i as u32)).collect();
        let tag_ix: HashMap<&str, u32> = policies.tags.iter().enumerate().map(|(i, name)| (name.as_str(), i as u32)).collect();
        let mut contacts = Vec::new();
        let mut bad = None;
        let mut row = 0;
        visit_history(&mut |h: ContactRecord<'_>| {
            row += 1;
            if bad.is_some() {
                return;
            }
            let what = |column: &str, value: &str| format!("contact history row {row}: {column} {value:?} is not the plan's");
            let contact = (|| {
                let customer = *customer_ix.get(h.customer_id).ok_or_else(|| what("customer_id", h.customer_id))?;
                let channel = *channel_ix.get(h.channel).ok_or_else(|| what("channel", h.channel))?;
                let mut tags = h.tags.split(';').filter(|t| !t.is_empty()).map(|t| tag_ix.get(t).copied().ok_or_else(|| what("tag", t))).collect::<Result<Vec<u32>, String>>()?;
                tags.sort_unstable();
                let offer = match h.offer_id {
                    Some(id) => Some(*offer_ix.get(id).ok_or_else(|| what("offer_id", id))?),
                    None => None,
                };
                Ok(PastContact { customer, date: h.date, channel, tags, offer })
            })();
            match contact {
                Ok(contact) => contacts.push(contact),
                Err(reason) => bad = Some(reason),
            }
        })?;
        if let Some(reason) = bad {
            return Ok(Err(reason));
        }
        contacts.sort_by_key(|h| h.customer);
        let mut history_start = vec![0u32; customer_ix.len() + 1];
        for h in &contacts {
            history_start[h.customer as usize + 1] += 1;
        }
        for c in 0..customer_ix.len() {
            history_start[c + 1] += history_start[c];
        }
        Ok(Ok(PolicyIndex { offer_ix, channel_ix, history: contacts, history_start }))
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
        let history = &index.history[lo..hi];
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
        if policies.volume_rules.is_empty() || plan.horizon_day(contact.date).is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// History rows are indexed by customer; a name the plan does not know is
    /// an error naming the row and the column.
    #[test]
    fn history_rows_are_checked_and_indexed_by_customer() {
        let policies = ServingContactPolicies { channels: vec!["email".into()], tags: vec!["promo".into()], ..ServingContactPolicies::default() };
        let customers: crate::index::CustomerIx = [("a".into(), 0), ("b".into(), 1)].into_iter().collect();
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let row = |customer_id, channel, tags, offer_id| ContactRecord { customer_id, date: day, channel, tags, offer_id };
        let rows = [row("b", "email", "promo", Some("o")), row("a", "email", "", None), row("b", "email", "", None)];
        let offers = || ["o".to_string()].into_iter();
        let index = PolicyIndex::new(&policies, offers(), &customers, |visit| {
            rows.iter().for_each(|&r| visit(r));
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(index.history_start, [0, 1, 3]);
        assert_eq!(index.history[1].tags, [0]);
        assert_eq!(index.history[1].offer, Some(0));
        for (bad, column) in [(row("c", "email", "", None), "customer_id"), (row("a", "sms", "", None), "channel"), (row("a", "email", "x", None), "tag"), (row("a", "email", "", Some("p")), "offer_id")] {
            let err = PolicyIndex::new(&policies, offers(), &customers, |visit| {
                visit(rows[1]);
                visit(bad);
                Ok::<(), ()>(())
            })
            .unwrap()
            .unwrap_err();
            assert!(err.starts_with(&format!("contact history row 2: {column} ")), "{err}");
        }
    }
}
