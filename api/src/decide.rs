//! One customer's decision: the plan's ranked offers with the live rules applied
//! on top, or the rule-based fallback when the plan cannot be trusted.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use chrono::NaiveDate;

use crate::contacts::{ContactMade, VolumeBurn};
use crate::experiments::ArmLabel;
use crate::outcomes::OutcomeBurn;
use crate::index::{LiveSupply, PlanIndex};

/// What a customer's live state overrides (from consent events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerOverride {
    /// Latest consent event, if any.
    pub consent: Option<bool>,
    /// Latest suppression event, if any.
    pub suppressed: Option<bool>,
}

impl CustomerOverride {
    /// Folds in one consent event's settings: what it sets wins, what it
    /// leaves out stays. The one rule, whether folded from the event log,
    /// its compacted snapshot, or at an erasure.
    pub fn update(&mut self, consent: Option<bool>, suppressed: Option<bool>) {
        self.consent = consent.or(self.consent);
        self.suppressed = suppressed.or(self.suppressed);
    }

    /// What of this override outlives an erasure of the customer's personal
    /// data: a withdrawn consent and a suppression, nothing they granted.
    /// Why: an erasure must not make a customer reachable again who asked
    /// not to be (the plan's data may still say they consent); keeping the
    /// objection alone, as a suppression list does, is what honours both
    /// requests. `None` when there is no objection to keep.
    pub fn objection(self) -> Option<CustomerOverride> {
        let kept = CustomerOverride { consent: self.consent.filter(|given| !given), suppressed: self.suppressed.filter(|s| *s) };
        (kept != CustomerOverride::default()).then_some(kept)
    }

    /// After an erasure: a customer's entry of `overrides` becomes the
    /// objection it kept, or goes.
    pub(crate) fn keep_only(overrides: &mut std::collections::HashMap<String, CustomerOverride>, customer_id: &str, kept: Option<CustomerOverride>) {
        match kept {
            Some(o) => overrides.insert(customer_id.to_string(), o),
            None => overrides.remove(customer_id),
        };
    }
}

/// What the service answers for one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// The customer.
    pub customer_id: String,
    /// The plan version the decision comes from (the fallback names the version
    /// whose customer and offer data it used).
    pub plan_version: String,
    /// Whether the rule-based fallback answered instead of the plan.
    pub fallback: bool,
    /// Why the fallback answered (`no_active_plan`, `plan_stale`, `store_error`,
    /// [`LIVE_STATE_STALE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The channel the request named, echoed for the audit (and, when the
    /// plan's offers name channels, the only channel whose offers are answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Offers the customer may see, best first.
    pub offers: Vec<OfferDecision>,
    /// Offers the customer may not see, with the reason.
    pub excluded: Vec<Exclusion>,
    /// The customer's arm in each running experiment (absent when none runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<ArmLabel>,
}

/// An offer the customer may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OfferDecision {
    /// The offer.
    pub offer_id: String,
    /// 1 = best.
    pub rank: u32,
    /// Expected margin of showing it (margin x uptake). Single precision, as
    /// the plan keeps it: written in its shortest form, not with the digits a
    /// widening to double would add.
    pub expected_value: f32,
    /// Probability that the customer accepts it if shown (single precision, as `expected_value`).
    pub uptake: f32,
}

/// An offer the customer may not see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Exclusion {
    /// The offer.
    pub offer_id: String,
    /// Reason code: the plan's (`consent`, `tier`, `not_selected:stock`, ...) or a
    /// live one (`live:consent`, `live:suppressed`, `live:stock_reserved`,
    /// `live:out_of_stock`, `live:bid_price`, `live:contact_cap`,
    /// `live:consent_unknown` when the live state is stale, or the plan stands
    /// in for an active version whose customer facts cannot be read; with contact
    /// policies `live:rule:<rule_id>` and `live:conflict`; once accepted
    /// outcomes reach a cap, `live:redemptions` and `live:budget`).
    pub reason: String,
}

/// A decision as [`decide`] makes it, borrowing the plan's ids and reasons:
/// what the service writes into its answer and its audit record. Why not a
/// [`Decision`]: owning its text took an allocation per offer and reason on
/// every request. It serializes exactly as its owned form
/// ([`DecisionView::to_decision`]) does, whose schema the answer documents (a
/// test holds the two to one shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionView<'a> {
    pub customer_id: &'a str,
    pub plan_version: &'a str,
    pub fallback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    pub offers: Vec<OfferView<'a>>,
    pub excluded: Vec<ExclusionView<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<ArmLabel>,
}

/// An [`OfferDecision`], borrowing the offer's id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OfferView<'a> {
    pub offer_id: &'a str,
    pub rank: u32,
    pub expected_value: f32,
    pub uptake: f32,
}

/// An [`Exclusion`], borrowing the offer's id and, unless a contact rule
/// names itself in it, the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExclusionView<'a> {
    pub offer_id: &'a str,
    pub reason: Cow<'a, str>,
}

impl DecisionView<'_> {
    /// The decision owning its text, for what keeps it beyond the plan it
    /// borrows from (a simulation's record, a test).
    pub fn to_decision(&self) -> Decision {
        Decision {
            customer_id: self.customer_id.to_string(),
            plan_version: self.plan_version.to_string(),
            fallback: self.fallback,
            fallback_reason: self.fallback_reason.map(str::to_string),
            channel: self.channel.map(str::to_string),
            offers: self.offers.iter().map(|o| OfferDecision { offer_id: o.offer_id.to_string(), rank: o.rank, expected_value: o.expected_value, uptake: o.uptake }).collect(),
            excluded: self.excluded.iter().map(|e| Exclusion { offer_id: e.offer_id.to_string(), reason: e.reason.to_string() }).collect(),
            experiments: self.experiments.clone(),
        }
    }
}

impl Decision {
    /// The decision as a view borrowing from it (what the audit records).
    pub fn view(&self) -> DecisionView<'_> {
        DecisionView {
            customer_id: &self.customer_id,
            plan_version: &self.plan_version,
            fallback: self.fallback,
            fallback_reason: self.fallback_reason.as_deref(),
            channel: self.channel.as_deref(),
            offers: self.offers.iter().map(|o| OfferView { offer_id: &o.offer_id, rank: o.rank, expected_value: o.expected_value, uptake: o.uptake }).collect(),
            excluded: self.excluded.iter().map(|e| ExclusionView { offer_id: &e.offer_id, reason: Cow::Borrowed(&e.reason) }).collect(),
            experiments: self.experiments.clone(),
        }
    }
}

/// The fallback reason of a replica that has not heard from the shared
/// database within [`crate::ServiceConfig::max_live_silence`]: it cannot know of
/// a withdrawal recorded elsewhere, so consent fails closed and no offer is shown.
pub const LIVE_STATE_STALE: &str = "live_state_stale";

/// Inputs of one decision besides the customer: `'a` is what the decision
/// borrows (its channel and fallback reason), `'c` what only its making reads.
pub(crate) struct Ask<'a, 'c> {
    pub limit: usize,
    pub channel: Option<&'a str>,
    pub customer: CustomerOverride,
    /// `Some(reason)` to answer with the fallback rule.
    pub fallback: Option<&'a str>,
    /// The customer's live contacts (contact events).
    pub contacts: &'c [ContactMade],
    /// The day a contact made now would be made.
    pub today: NaiveDate,
    /// Rank the fallback's offers by the offer's margin, the same order for
    /// every customer (a holdout's non-personalized baseline), instead of by
    /// the customer's expected value.
    pub by_margin: bool,
    /// Whether the customer's consent can be known: not on a replica cut off
    /// from the shared database ([`LIVE_STATE_STALE`]), nor on a plan
    /// standing in for a version whose customer facts could not be read.
    /// Unknown consent fails closed (`live:consent_unknown`).
    pub consent_known: bool,
}

/// The fallback reason a holdout customer's decision carries.
pub const HOLDOUT: &str = "holdout";

/// Why a live rule takes an offer away, or `None` when it stays.
fn live_block(plan: &PlanIndex, supply: &LiveSupply, zone: u32, tier: u32, offer: u32, accept_value: f64, contact_per_accept: f64, fallback: bool) -> Option<&'static str> {
    let n_skus = plan.skus.len();
    let n_tiers = plan.context.tiers.len();
    let mut cost = 0.0;
    for &(sku, qty) in &plan.offer_items[offer as usize] {
        let cell = zone as usize * n_skus + sku as usize;
        if supply.total.get(cell).copied().unwrap_or(0.0) < qty {
            return Some("live:out_of_stock");
        }
        if fallback {
            continue;
        }
        if supply.usable[cell * n_tiers + tier as usize] < qty {
            return Some("live:stock_reserved");
        }
        cost += qty * supply.price[cell * plan.buckets + plan.offer_bucket[offer as usize] as usize];
    }
    // What one acceptance is worth net of the contact it takes (`cost_per_contact / p`):
    // the plan serves a pair while its units' bid prices stay below this.
    let value = plan.context.tiers[tier as usize].weight * accept_value - contact_per_accept;
    // A small tolerance keeps offers the plan priced exactly at break-even
    // (the pair's value is read back from single-precision figures: 1e-6).
    if !fallback && cost > value * (1.0 + 1e-6) + 1e-9 {
        return Some("live:bid_price");
    }
    None
}

/// The decision for a customer the plan knows (`c` is its index).
///
/// With the plan: its eligible offers in rank order, each kept only while the
/// live rules allow it, renumbered. With the fallback (documented in the crate
/// docs): the customer's candidate offers (rows the plan kept or did not select,
/// never those a hard rule excluded nor those worth nothing: see
/// `allot_optimizer::plan::servable_without_the_plan`), ranked by expected value, kept while live
/// stock above safety stock covers one acceptance, up to the contact cap.
pub(crate) fn decide<'a>(plan: &'a PlanIndex, supply: &LiveSupply, burn: &VolumeBurn, outcomes: &OutcomeBurn, customer_id: &'a str, c: u32, ask: &Ask<'a, '_>) -> DecisionView<'a> {
    let facts = plan.customers[c as usize];
    let consent = ask.customer.consent.unwrap_or(facts.consent);
    let suppressed = ask.customer.suppressed.unwrap_or(facts.suppressed);
    let fallback = ask.fallback.is_some();
    let cap = allot_optimizer::effective_contact_cap(facts.max_offers, plan.context.contact_cap).map_or(usize::MAX, |c| c as usize);
    let mut offers = Vec::new();
    let mut excluded = Vec::new();
    let rows = plan.rows(c);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if ask.by_margin {
        let margin = |i: usize| plan.context.offers[rows[i].offer as usize].margin;
        order.sort_by(|&a, &b| margin(b).total_cmp(&margin(a)).then(rows[a].offer.cmp(&rows[b].offer)));
    } else if fallback {
        order.sort_by(|&a, &b| rows[b].expected_value.total_cmp(&rows[a].expected_value).then(rows[a].offer.cmp(&rows[b].offer)));
    }
    // A plan whose offers name channels answers a channel with its offers only.
    let channel = ask.channel.filter(|_| plan.channels_named);
    for i in order {
        let e = rows[i];
        if channel.is_some_and(|ch| plan.context.offers[e.offer as usize].channel != ch) {
            continue;
        }
        let offer_id = plan.offer_id(e.offer);
        let plan_reason = plan.reasons[e.reason as usize].as_str();
        let candidate = e.rank > 0 || (fallback && allot_optimizer::plan::servable_without_the_plan(plan_reason));
        if !candidate {
            excluded.push(ExclusionView { offer_id, reason: Cow::Borrowed(plan_reason) });
            continue;
        }
        let blocked = if !ask.consent_known {
            Some("live:consent_unknown")
        } else if !consent {
            Some("live:consent")
        } else if suppressed {
            Some("live:suppressed")
        } else if plan.offer_min_tier[e.offer as usize].is_some_and(|m| facts.tier > m) {
            Some("tier")
        } else {
            live_block(plan, supply, facts.zone, facts.tier, e.offer, plan.accept_value(&e), plan.contact_per_accept(&e), fallback)
        };
        // Contact policies and burnt-down volume rules are hard, with or without the plan.
        let blocked = blocked.map(Cow::Borrowed).or_else(|| {
            plan.contact_block(c, e.offer, ask.contacts, ask.today)
                .or_else(|| burn.exhausted(plan, e.offer, ask.today))
                .map(Cow::Owned)
                .or_else(|| outcomes.exhausted(plan, e.offer).map(Cow::Borrowed))
        });
        match blocked {
            Some(reason) => excluded.push(ExclusionView { offer_id, reason }),
            None if offers.len() >= cap => excluded.push(ExclusionView { offer_id, reason: Cow::Borrowed("live:contact_cap") }),
            None if offers.len() >= ask.limit => {}
            None => {
                offers.push(OfferView { offer_id, rank: offers.len() as u32 + 1, expected_value: e.expected_value, uptake: e.p });
            }
        }
    }
    DecisionView { customer_id, plan_version: &plan.version, fallback, fallback_reason: ask.fallback, channel: ask.channel, offers, excluded, experiments: Vec::new() }
}

/// A plan's decisions as saved, before any live event: no stock moved, no
/// contact, acceptance or consent change recorded. Why: the truth of an
/// experiment (`allot simulate`) compares what two versions would serve the
/// same customer, through the service's own rule rather than a copy of it.
pub struct AsPlanned<'a> {
    plan: &'a PlanIndex,
    supply: LiveSupply,
    burn: VolumeBurn,
    outcomes: OutcomeBurn,
}

impl<'a> AsPlanned<'a> {
    /// The plan with its live state at the plan's own figures.
    pub fn new(plan: &'a PlanIndex) -> Self {
        AsPlanned { plan, supply: LiveSupply::compute(plan, &[]), burn: VolumeBurn::compute(plan, std::iter::empty()), outcomes: OutcomeBurn::compute(plan, std::iter::empty()) }
    }

    /// The decision for a customer (at most `limit` offers), as the service
    /// would answer it with no live event; `None` when the plan does not know them.
    pub fn decide(&self, customer_id: &str, limit: usize) -> Option<Decision> {
        let &c = self.plan.customer_ix.get(customer_id)?;
        let ask = Ask {
            limit,
            channel: None,
            customer: CustomerOverride::default(),
            fallback: None,
            contacts: &[],
            today: self.plan.context.horizon_start,
            by_margin: false,
            consent_known: true,
        };
        Some(decide(self.plan, &self.supply, &self.burn, &self.outcomes, customer_id, c, &ask).to_decision())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::index::StockMove;

    /// One zone served by one stock point of SKU A (10 units planned), a plan bid
    /// price of 10 per unit of A, and an offer of margin 10 that takes one A:
    /// exactly break-even for the standard tier (weight 1.0), worth 12 to gold.
    fn plan() -> PlanIndex {
        let context = serde_json::from_value(json!({
            "horizon_start": "2026-12-01", "horizon_days": 7,
            "tiers": [{ "name": "gold", "weight": 1.2 }, { "name": "standard", "weight": 1.0 }],
            "contact_cap": null,
            "offers": [{ "offer_id": "o", "margin": 10.0, "min_tier": null, "items": [{ "sku": "A", "qty": 1.0 }] }],
            "stock": [{ "warehouse_id": "W1", "sku": "A", "available": 10.0 }],
            "lanes": [{ "warehouse_id": "W1", "zone": "Z1" }],
            "reservations": [], "bid_prices": [{ "zone": "Z1", "sku": "A", "price": 10.0 }], "pick_priorities": []
        }))
        .unwrap();
        PlanIndex {
            version: "000001".into(),
            channels_named: false,
            created_at: chrono::Utc::now(),
            context,
            reasons: Vec::new(),
            customer_ix: Default::default(),
            customer_ix_bytes: 0,
            customers: Vec::new(),
            start: vec![0],
            entries: Vec::new(),
            tier_ix: [("gold".to_string(), 0), ("standard".to_string(), 1)].into(),
            skus: vec!["A".into()],
            sku_ix: [("A".to_string(), 0)].into(),
            warehouses: ["W1".to_string()].into(),
            offer_items: vec![vec![(0, 1.0)]],
            offer_min_tier: vec![None],
            point_ix: [(("W1".to_string(), "A".to_string()), 0)].into(),
            zone_points: vec![vec![0]],
            point_cells: vec![vec![0]],
            reserved: vec![0.0, 0.0],
            bid: vec![10.0],
            buckets: 1,
            offer_bucket: vec![0],
            policy_index: None,
            demand: Vec::new(),
        }
    }

    fn supply_after(plan: &PlanIndex, delta: f64) -> LiveSupply {
        let moves = [StockMove { warehouse_id: "W1".into(), sku: "A".into(), delta, tier: None, receipt: false }];
        LiveSupply::compute(plan, &moves)
    }

    /// The view the service writes and the decision it stands for are one
    /// shape: every optional field present, and absent.
    #[test]
    fn a_view_serializes_as_its_owned_decision() {
        let full = DecisionView {
            customer_id: "C1",
            plan_version: "000002",
            fallback: true,
            fallback_reason: Some("plan_stale"),
            channel: Some("web"),
            offers: vec![OfferView { offer_id: "O1", rank: 1, expected_value: 0.895752, uptake: 0.1144 }],
            excluded: vec![ExclusionView { offer_id: "O2", reason: Cow::Borrowed("tier") }, ExclusionView { offer_id: "O3", reason: Cow::Owned("live:rule:r1".into()) }],
            experiments: vec![ArmLabel { experiment_id: "e1".into(), arm: "canary".into() }],
        };
        let bare = DecisionView { customer_id: "C2", plan_version: "000003", fallback: false, fallback_reason: None, channel: None, offers: Vec::new(), excluded: Vec::new(), experiments: Vec::new() };
        for view in [full, bare] {
            let owned = view.to_decision();
            assert_eq!(serde_json::to_string(&view).unwrap(), serde_json::to_string(&owned).unwrap());
            assert_eq!(owned.view(), view);
        }
    }

    #[test]
    fn bid_prices_rise_as_live_stock_falls_below_plan() {
        let plan = plan();
        let (gold, standard) = (0, 1);
        let at_plan = supply_after(&plan, 0.0);
        assert_eq!(at_plan.price[0], 10.0);
        assert_eq!(live_block(&plan, &at_plan, 0, standard, 0, 10.0, 0.0, false), None, "break-even stays eligible");
        // A contact costing 0.5 at p = 0.5 takes 1 of each acceptance's value:
        // standard's 10 - 1 is below the price 10, gold's 12 - 1 is not.
        assert_eq!(live_block(&plan, &at_plan, 0, standard, 0, 10.0, 1.0, false), Some("live:bid_price"));
        assert_eq!(live_block(&plan, &at_plan, 0, gold, 0, 10.0, 1.0, false), None);

        // One unit sold: 9 of 10 left, price 10 * 10/9 = 11.1: above the standard
        // tier's value (10), below gold's (12).
        let sold_one = supply_after(&plan, -1.0);
        assert!((sold_one.price[0] - 100.0 / 9.0).abs() < 1e-9);
        assert_eq!(live_block(&plan, &sold_one, 0, standard, 0, 10.0, 0.0, false), Some("live:bid_price"));
        assert_eq!(live_block(&plan, &sold_one, 0, gold, 0, 10.0, 0.0, false), None);
        // The fallback rule does not use bid prices.
        assert_eq!(live_block(&plan, &sold_one, 0, standard, 0, 10.0, 0.0, true), None);

        // Three sold: 10 * 10/7 = 14.3 is above gold's value too.
        assert_eq!(live_block(&plan, &supply_after(&plan, -3.0), 0, gold, 0, 10.0, 0.0, false), Some("live:bid_price"));
        // More stock than planned never lowers the price below the plan's.
        assert_eq!(supply_after(&plan, 5.0).price[0], 10.0);
        // None left: out of stock, whatever the price.
        let empty = supply_after(&plan, -10.0);
        assert!(empty.price[0].is_infinite());
        assert_eq!(live_block(&plan, &empty, 0, gold, 0, 10.0, 0.0, false), Some("live:out_of_stock"));
        assert_eq!(live_block(&plan, &empty, 0, gold, 0, 10.0, 0.0, true), Some("live:out_of_stock"));
    }

    /// Time buckets: an offer pays its own bucket's bid prices, scaled by live
    /// scarcity like any other. Bucket 1 is priced 10 (break-even for the
    /// standard tier), bucket 2 at 4.
    #[test]
    fn an_offer_pays_its_own_buckets_bid_price() {
        let mut plan = plan();
        (plan.bid, plan.buckets) = (vec![10.0, 4.0], 2);
        let standard = 1;
        for (bucket, first_blocked_by) in [(0, 1.0), (1, 7.0)] {
            plan.offer_bucket = vec![bucket];
            let supply = supply_after(&plan, 0.0);
            assert_eq!(supply.price, [10.0, 4.0]);
            // A contact worth `c` a acceptance leaves 10 - c: blocked once below the bucket's price.
            assert_eq!(live_block(&plan, &supply, 0, standard, 0, 10.0, first_blocked_by, false), Some("live:bid_price"), "bucket {bucket}");
            assert_eq!(live_block(&plan, &supply, 0, standard, 0, 10.0, first_blocked_by - 1.0, false), None, "bucket {bucket}");
        }
        // Half the stock sold: both buckets' prices double.
        assert_eq!(supply_after(&plan, -5.0).price, [20.0, 8.0]);
    }

    #[test]
    fn reservations_for_higher_tiers_are_off_limits_until_they_consume_them() {
        let mut plan = plan();
        plan.bid = vec![0.0];
        plan.reserved = vec![4.0, 0.0]; // 4 of A held for gold
        let order = |delta: f64, tier: &str| StockMove { warehouse_id: "W1".into(), sku: "A".into(), delta, tier: Some(tier.into()), receipt: false };
        // Standard orders take 6: 4 left, all held for gold.
        let s = LiveSupply::compute(&plan, &[order(-6.0, "standard")]);
        assert_eq!((s.usable[0], s.usable[1]), (4.0, 0.0));
        assert_eq!(live_block(&plan, &s, 0, 1, 0, 10.0, 0.0, false), Some("live:stock_reserved"));
        assert_eq!(live_block(&plan, &s, 0, 0, 0, 10.0, 0.0, false), None);
        // Gold consumes 3 of its 4: one unit is still held, none free for standard.
        let s = LiveSupply::compute(&plan, &[order(-6.0, "standard"), order(-3.0, "gold")]);
        assert_eq!((s.usable[0], s.usable[1]), (1.0, 0.0));
        // A receipt frees units for standard above what gold still holds.
        let receipt = StockMove { warehouse_id: "W1".into(), sku: "A".into(), delta: 5.0, tier: None, receipt: true };
        let s = LiveSupply::compute(&plan, &[order(-6.0, "standard"), order(-3.0, "gold"), receipt.clone()]);
        assert_eq!((s.usable[0], s.usable[1]), (6.0, 5.0));
    }

    #[test]
    fn folding_moves_one_at_a_time_gives_the_batch_result() {
        let mut plan = plan();
        plan.reserved = vec![4.0, 0.0];
        let moves = [
            StockMove { warehouse_id: "W1".into(), sku: "A".into(), delta: -6.0, tier: Some("standard".into()), receipt: false },
            StockMove { warehouse_id: "W1".into(), sku: "A".into(), delta: -3.0, tier: Some("gold".into()), receipt: false },
            StockMove { warehouse_id: "W9".into(), sku: "A".into(), delta: 50.0, tier: None, receipt: false },
            StockMove { warehouse_id: "W1".into(), sku: "A".into(), delta: 5.0, tier: None, receipt: false },
        ];
        let batch = LiveSupply::compute(&plan, &moves);
        let mut one_by_one = LiveSupply::compute(&plan, &[]);
        for m in &moves {
            one_by_one.apply(&plan, m);
        }
        assert_eq!((one_by_one.usable.clone(), one_by_one.price.clone(), one_by_one.total.clone()), (batch.usable.clone(), batch.price.clone(), batch.total.clone()));
        assert_eq!((one_by_one.live.clone(), one_by_one.unmatched), (vec![6.0], 1));
        assert_eq!(batch.unmatched, 1);
    }
}
