//! Outcome events: what customers did with the offers they were shown
//! (`POST /v1/events/outcome`), and the plan limits they burn down live.
//!
//! Why: a plan's redemption caps and budget are on *expected* acceptances;
//! once real acceptances arrive, the service must stop showing an offer whose
//! cap is reached, or any discounted offer once the budget is spent, whatever
//! the plan expected. The same events feed the experiment report
//! ([`crate::experiments`]) and fulfilment of offer-driven orders.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::index::PlanIndex;

/// Largest value an outcome may carry (far above any order's).
pub const MAX_OUTCOME_VALUE: f64 = 1e9;

/// What the customer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// The offer was shown (an exposure).
    Shown,
    /// The customer accepted it: burns down its redemption cap and the budget.
    Accepted,
    /// The customer declined it.
    Declined,
    /// The acceptance became an order (`order_id` names it; the inventory
    /// order event with the same `order_id` is linked to the offer).
    Ordered,
    /// The order was delivered (`order_id`, `on_time`).
    Delivered,
}

/// Body of `POST /v1/events/outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeEvent {
    /// Unique id from the sender among outcome events; a repeat with the same
    /// body is acknowledged and ignored, with another body refused (409).
    #[schema(min_length = 1, max_length = 256)]
    pub event_id: String,
    /// What happened.
    pub kind: OutcomeKind,
    /// The customer (one the served plan knows).
    #[schema(min_length = 1, max_length = 256)]
    pub customer_id: String,
    /// The offer (one the served plan knows).
    #[schema(min_length = 1, max_length = 256)]
    pub offer_id: String,
    /// The channel it happened on, if the sender knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// When it happened (the sender's clock).
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<Utc>,
    /// The order (required for `ordered` and `delivered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Whether the delivery kept its promise (required for `delivered`, only there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_time: Option<bool>,
    /// The warehouse that shipped the order (`ordered`, `delivered`; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<String>,
    /// What the acceptance was worth (`accepted`; absent: the offer's margin
    /// in the plan served when it is recorded). Non-negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0, maximum = 1e9)]
    pub value: Option<f64>,
}

impl OutcomeEvent {
    /// Checks ids, the fields each kind needs, bounds, and (when a plan is
    /// served) that its customer and offer are the plan's. The message names the field.
    pub fn validate(&self, plan: Option<&PlanIndex>) -> Result<(), String> {
        for (field, value) in [("event_id", Some(&self.event_id)), ("customer_id", Some(&self.customer_id)), ("offer_id", Some(&self.offer_id))].into_iter().chain([
            ("channel", self.channel.as_ref()),
            ("order_id", self.order_id.as_ref()),
            ("warehouse_id", self.warehouse_id.as_ref()),
        ]) {
            if let Some(value) = value {
                crate::events::check_id(field, value)?;
            }
        }
        crate::events::check_date("occurred_at", self.occurred_at.date_naive())?;
        let kind = format!("{:?}", self.kind).to_lowercase();
        if matches!(self.kind, OutcomeKind::Ordered | OutcomeKind::Delivered) && self.order_id.is_none() {
            return Err(format!("order_id is required for a {kind} outcome"));
        }
        match (self.kind, self.on_time) {
            (OutcomeKind::Delivered, None) => return Err("on_time is required for a delivered outcome".to_string()),
            (OutcomeKind::Delivered, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(format!("on_time is only for a delivered outcome, not a {kind} one")),
        }
        if let Some(v) = self.value {
            if self.kind != OutcomeKind::Accepted {
                return Err(format!("value is only for an accepted outcome, not a {kind} one"));
            }
            if !v.is_finite() || !(0.0..=MAX_OUTCOME_VALUE).contains(&v) {
                return Err(format!("value must be a finite number between 0 and {MAX_OUTCOME_VALUE:e} (got {v})"));
            }
        }
        let Some(plan) = plan else { return Ok(()) };
        if !plan.customer_ix.contains_key(self.customer_id.as_str()) {
            return Err(format!("customer_id {:?} is not a customer of plan {}", self.customer_id, plan.version()));
        }
        if plan.offer_index(&self.offer_id).is_none() {
            return Err(format!("offer_id {:?} is not an offer of plan {}", self.offer_id, plan.version()));
        }
        if let Some(w) = self.warehouse_id.as_deref().filter(|w| !plan.has_warehouse(w)) {
            return Err(format!("warehouse_id {w:?} is not a warehouse of plan {}", plan.version()));
        }
        Ok(())
    }

    /// The acceptance it is, if it is one (its day: when it happened).
    pub(crate) fn acceptance(&self) -> Option<Acceptance> {
        (self.kind == OutcomeKind::Accepted).then(|| Acceptance { offer_id: self.offer_id.clone(), date: self.occurred_at.date_naive() })
    }

    /// What the acceptance is worth: its own value, else the offer's margin in `plan`.
    pub(crate) fn resolved_value(&self, plan: Option<&PlanIndex>) -> Option<f64> {
        if self.kind != OutcomeKind::Accepted {
            return None;
        }
        self.value.or_else(|| plan.and_then(|p| p.offer_index(&self.offer_id)).and_then(|o| plan.map(|p| p.context.offers[o as usize].margin)))
    }
}

/// An accepted outcome as the live limits read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Acceptance {
    pub offer_id: String,
    pub date: NaiveDate,
}

/// A plan's redemption caps and budget as accepted outcomes burn them down,
/// kept per served plan (like [`crate::contacts::VolumeBurn`]): acceptances
/// on a day of the plan's horizon count.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OutcomeBurn {
    /// Acceptances per offer (the plan's offer order).
    accepted: Vec<f64>,
    /// Discount cost of those acceptances.
    budget_used: f64,
}

impl OutcomeBurn {
    /// The burn-down from every acceptance so far.
    pub(crate) fn compute<'a>(plan: &PlanIndex, acceptances: impl Iterator<Item = &'a Acceptance>) -> Self {
        let mut burn = OutcomeBurn { accepted: vec![0.0; plan.context.offers.len()], budget_used: 0.0 };
        for a in acceptances {
            burn.apply(plan, a);
        }
        burn
    }

    /// Adds one acceptance (one outside the plan's horizon or of an offer the
    /// plan does not have changes nothing).
    pub(crate) fn apply(&mut self, plan: &PlanIndex, a: &Acceptance) {
        let Some(o) = plan.offer_index(&a.offer_id).filter(|_| plan.horizon_day(a.date).is_some()) else {
            return;
        };
        self.accepted[o as usize] += 1.0;
        self.budget_used += plan.context.offers[o as usize].discount_cost;
    }

    /// Why offer `o` may not be shown any more (`live:redemptions` once its
    /// acceptances reach its cap, `live:budget` once one more acceptance's
    /// discount would pass the budget), if so.
    pub(crate) fn exhausted(&self, plan: &PlanIndex, o: u32) -> Option<&'static str> {
        let offer = &plan.context.offers[o as usize];
        if offer.max_redemptions.is_some_and(|cap| self.accepted.get(o as usize).copied().unwrap_or(0.0) >= cap - 1e-9) {
            return Some("live:redemptions");
        }
        match plan.context.budget {
            Some(budget) if offer.discount_cost > 0.0 && self.budget_used + offer.discount_cost > budget * (1.0 + 1e-9) + 1e-9 => Some("live:budget"),
            _ => None,
        }
    }
}

/// One offer-driven order as fulfilment follows it.
#[derive(Debug, Clone, Default, PartialEq)]
struct OrderTrack {
    /// The plan version that served the offer (from its `ordered` outcome).
    version: Option<String>,
    /// The warehouse shipping it (from an outcome or its inventory order event).
    warehouse: Option<String>,
    /// An `ordered` outcome named it (only those count: offer-driven orders).
    ordered: bool,
    /// Delivered, and whether on time.
    delivered: Option<bool>,
    /// Its inventory order event was received (stock was taken for it).
    picked: bool,
}

/// Offer-driven orders by order id, folded from `ordered` and `delivered`
/// outcomes and the inventory order events that carry an `order_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fulfilment {
    orders: std::collections::BTreeMap<String, OrderTrack>,
}

impl Fulfilment {
    /// Folds an outcome (only `ordered` and `delivered` ones name orders).
    pub(crate) fn outcome(&mut self, event: &OutcomeEvent, plan_version: Option<&str>) {
        let Some(id) = &event.order_id else { return };
        let track = self.orders.entry(id.clone()).or_default();
        if event.warehouse_id.is_some() {
            track.warehouse.clone_from(&event.warehouse_id);
        }
        match event.kind {
            OutcomeKind::Ordered => {
                track.ordered = true;
                track.version = plan_version.map(str::to_string);
            }
            OutcomeKind::Delivered => track.delivered = event.on_time,
            _ => {}
        }
    }

    /// Folds an inventory order event that names its order (its pick, at `warehouse`).
    pub(crate) fn picked(&mut self, order_id: &str, warehouse: &str) {
        let track = self.orders.entry(order_id.to_string()).or_default();
        track.picked = true;
        track.warehouse.get_or_insert_with(|| warehouse.to_string());
    }

    /// Per plan version and warehouse (`-` when unknown), in that order.
    pub(crate) fn rows(&self) -> Vec<FulfilmentRow> {
        let mut by: std::collections::BTreeMap<(String, String), FulfilmentRow> = std::collections::BTreeMap::new();
        for t in self.orders.values().filter(|t| t.ordered) {
            let key = (t.version.clone().unwrap_or_else(|| "-".into()), t.warehouse.clone().unwrap_or_else(|| "-".into()));
            let row = by.entry(key.clone()).or_insert_with(|| FulfilmentRow { plan_version: key.0, warehouse_id: key.1, ..FulfilmentRow::default() });
            row.orders += 1;
            row.picked += u64::from(t.picked);
            row.delivered += u64::from(t.delivered.is_some());
            row.on_time += u64::from(t.delivered == Some(true));
        }
        by.into_values().collect()
    }
}

/// Offer-driven orders of one plan version at one warehouse.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FulfilmentRow {
    /// The plan version that served the offers.
    pub plan_version: String,
    /// The warehouse shipping them (`-`: not said).
    pub warehouse_id: String,
    /// Orders (`ordered` outcomes).
    pub orders: u64,
    /// Of those, orders whose inventory order event (stock taken for the pick) arrived.
    pub picked: u64,
    /// Of those, orders delivered.
    pub delivered: u64,
    /// Of those, delivered on time.
    pub on_time: u64,
}
