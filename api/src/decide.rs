//! One customer's decision: the plan's ranked offers with the live rules applied
//! on top, or the rule-based fallback when the plan cannot be trusted.

use serde::{Deserialize, Serialize};

use crate::index::{LiveSupply, PlanIndex};

/// What a customer's live state overrides (from consent events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerOverride {
    /// Latest consent event, if any.
    pub consent: Option<bool>,
    /// Latest suppression event, if any.
    pub suppressed: Option<bool>,
}

/// What the service answers for one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The customer.
    pub customer_id: String,
    /// The plan version the decision comes from (the fallback names the version
    /// whose customer and offer data it used).
    pub plan_version: String,
    /// Whether the rule-based fallback answered instead of the plan.
    pub fallback: bool,
    /// Why the fallback answered (`no_active_plan`, `plan_stale`, `store_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The channel the request named, echoed for the audit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Offers the customer may see, best first.
    pub offers: Vec<OfferDecision>,
    /// Offers the customer may not see, with the reason.
    pub excluded: Vec<Exclusion>,
}

/// An offer the customer may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferDecision {
    /// The offer.
    pub offer_id: String,
    /// 1 = best.
    pub rank: u32,
    /// Expected margin of showing it (margin x uptake).
    pub expected_value: f64,
    /// Probability that the customer accepts it if shown.
    pub uptake: f64,
}

/// An offer the customer may not see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The offer.
    pub offer_id: String,
    /// Reason code: the plan's (`consent`, `tier`, `not_selected:stock`, ...) or a
    /// live one (`live:consent`, `live:suppressed`, `live:stock_reserved`,
    /// `live:out_of_stock`, `live:bid_price`, `live:contact_cap`).
    pub reason: String,
}

/// Inputs of one decision besides the customer.
pub(crate) struct Ask<'a> {
    pub limit: usize,
    pub channel: Option<&'a str>,
    pub customer: CustomerOverride,
    /// `Some(reason)` to answer with the fallback rule.
    pub fallback: Option<&'a str>,
}

/// Why a live rule takes an offer away, or `None` when it stays.
fn live_block(plan: &PlanIndex, supply: &LiveSupply, zone: u32, tier: u32, offer: u32, fallback: bool) -> Option<&'static str> {
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
        cost += qty * supply.price[cell];
    }
    let value = plan.context.tiers[tier as usize].weight * plan.context.offers[offer as usize].margin;
    // A small tolerance keeps offers the plan priced exactly at break-even.
    if !fallback && cost > value * (1.0 + 1e-9) + 1e-9 {
        return Some("live:bid_price");
    }
    None
}

/// The decision for a customer the plan knows (`c` is its index).
///
/// With the plan: its eligible offers in rank order, each kept only while the
/// live rules allow it, renumbered. With the fallback (documented in the crate
/// docs): the customer's candidate offers (rows the plan kept or did not select,
/// never those a hard rule excluded), ranked by expected value, kept while live
/// stock above safety stock covers one acceptance, up to the contact cap.
pub(crate) fn decide(plan: &PlanIndex, supply: &LiveSupply, customer_id: &str, c: u32, ask: &Ask<'_>) -> Decision {
    let facts = plan.customers[c as usize];
    let consent = ask.customer.consent.unwrap_or(facts.consent);
    let suppressed = ask.customer.suppressed.unwrap_or(facts.suppressed);
    let fallback = ask.fallback.is_some();
    let cap = facts.max_offers.or(plan.context.contact_cap).map_or(usize::MAX, |c| c as usize);
    let mut offers = Vec::new();
    let mut excluded = Vec::new();
    let rows = plan.rows(c);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if fallback {
        order.sort_by(|&a, &b| rows[b].expected_value.total_cmp(&rows[a].expected_value).then(rows[a].offer.cmp(&rows[b].offer)));
    }
    for i in order {
        let e = rows[i];
        let offer_id = plan.offer_id(e.offer).to_string();
        let plan_reason = &plan.reasons[e.reason as usize];
        let candidate = if fallback { e.rank > 0 || plan_reason.starts_with("not_selected") } else { e.rank > 0 };
        if !candidate {
            excluded.push(Exclusion { offer_id, reason: plan_reason.clone() });
            continue;
        }
        let blocked = if !consent {
            Some("live:consent")
        } else if suppressed {
            Some("live:suppressed")
        } else if plan.offer_min_tier[e.offer as usize].is_some_and(|m| facts.tier > m) {
            Some("tier")
        } else {
            live_block(plan, supply, facts.zone, facts.tier, e.offer, fallback)
        };
        match blocked {
            Some(reason) => excluded.push(Exclusion { offer_id, reason: reason.to_string() }),
            None if offers.len() >= cap => excluded.push(Exclusion { offer_id, reason: "live:contact_cap".to_string() }),
            None if offers.len() >= ask.limit => {}
            None => {
                let margin = plan.context.offers[e.offer as usize].margin;
                let uptake = if margin > 0.0 { f64::from(e.expected_value) / margin } else { 0.0 };
                offers.push(OfferDecision { offer_id, rank: offers.len() as u32 + 1, expected_value: f64::from(e.expected_value), uptake });
            }
        }
    }
    Decision {
        customer_id: customer_id.to_string(),
        plan_version: plan.version.clone(),
        fallback,
        fallback_reason: ask.fallback.map(str::to_string),
        channel: ask.channel.map(str::to_string),
        offers,
        excluded,
    }
}
