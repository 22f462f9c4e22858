//! Live events (inventory movements, consent changes), kept
//! in the live-state database ([`crate::live::LiveDb`]: SQLite in the plan
//! store by default, PostgreSQL with `allot serve --database`). What is folded
//! from them in memory is the same either way. (The audit log, kept in the same
//! database, is in [`crate::audit`].)
//!
//! Why a database: an event is acknowledged only after its transaction has
//! committed, and every event is folded again on start, so a restart (or a
//! crash) loses no acknowledged event. Event ids make posting idempotent, per
//! kind: a repeat of an id with the same body is acknowledged again and not
//! applied twice; the same id with a different body is refused with the
//! original ([`Applied::Conflict`]).

use std::collections::HashMap;
use std::sync::Arc;

use allot_scenarios::PlanStore;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::audit::{AuditLog, AuditRecord};
use crate::decide::CustomerOverride;
use crate::experiments::{ArmLabel, DecisionSeen, ExperimentChange, ExperimentReport, Experiments, OutcomeSeen};
use crate::drift::{DemandOrder, Seen};
use crate::outcomes::{Acceptance, Fulfilment, OutcomeEvent};
use crate::index::{PlanIndex, StockMove};
use crate::live::rows::{consent_snapshot_text, parse_consent_snapshot};
use crate::live::sql::{Cell, Param, Sql};
use crate::live::{EventKind, LiveDb, LiveError, Recorded};
use crate::shared::SharedLive;

/// Largest |qty| an inventory event may carry: far above any real movement,
/// far below where sums of stock lose integer precision or overflow.
pub const MAX_EVENT_QTY: f64 = 1e9;

/// Kind of inventory movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InventoryKind {
    /// Units left for a customer order (`qty` > 0 is taken off stock).
    Order,
    /// Units received (`qty` > 0 is added).
    Receipt,
    /// A count correction (`qty` signed).
    Adjustment,
}

/// Body of `POST /v1/events/inventory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryEvent {
    /// Unique id from the sender among inventory events; a repeat with the same
    /// body is acknowledged and ignored, with another body refused (409).
    #[schema(min_length = 1, max_length = 256)]
    pub event_id: String,
    /// What happened.
    pub kind: InventoryKind,
    /// Warehouse (one the active plan, or a running canary's or shadow's version, knows).
    #[schema(min_length = 1, max_length = 256)]
    pub warehouse_id: String,
    /// SKU (one the active plan, or a running canary's or shadow's version, knows).
    #[schema(min_length = 1, max_length = 256)]
    pub sku: String,
    /// Units (see [`InventoryKind`] for the sign); |qty| at most 1e9.
    pub qty: f64,
    /// For orders: the tier of the ordering customer, so it consumes that tier's reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// For orders: the order's id, linking it to the `ordered` outcome with
    /// the same `order_id` (an offer-driven order, counted by fulfilment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// For orders: the zone delivered to; with it the order counts as live
    /// demand against the plan's demand plan (see [`crate::drift`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// For orders: the day it was placed (absent: the day it is received).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub date: Option<chrono::NaiveDate>,
}

/// The longest id a live event may carry, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// The rule for every id of a live event (event, customer, offer, order,
/// warehouse, SKU, zone, channel): not blank, at most [`MAX_ID_BYTES`], no
/// control characters. Why bounds: ids are stored with every event and
/// keyed on; a 200 KB `event_id` and one holding `\u0000` were accepted.
pub(crate) fn check_id(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(format!("{field} must be at most {MAX_ID_BYTES} bytes (got {})", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not hold control characters"));
    }
    Ok(())
}

/// The days a live event's date may fall on: 2000-01-01 to 2100-12-31.
/// Why: a date is the day a contact or an acceptance counts on (conflict
/// windows, contact caps); year 9999 or year 0 was accepted and would have
/// counted against a customer for ever, or never.
pub(crate) fn check_date(field: &str, day: chrono::NaiveDate) -> Result<(), String> {
    let (first, last) = (chrono::NaiveDate::from_ymd_opt(2000, 1, 1), chrono::NaiveDate::from_ymd_opt(2100, 12, 31));
    if first.is_some_and(|f| day < f) || last.is_some_and(|l| day > l) {
        return Err(format!("{field} must be a day from 2000-01-01 to 2100-12-31 (got {day})"));
    }
    Ok(())
}

impl InventoryEvent {
    /// Checks what serde cannot: ids, sign, finiteness and bounds, and (when a
    /// plan is served) that its warehouse, SKU and tier are the plan's. The
    /// message names the field.
    pub fn validate(&self, plan: Option<&PlanIndex>) -> Result<(), String> {
        check_id("event_id", &self.event_id)?;
        check_id("warehouse_id", &self.warehouse_id)?;
        check_id("sku", &self.sku)?;
        if !self.qty.is_finite() || self.qty.abs() > MAX_EVENT_QTY {
            return Err(format!("qty must be a finite number of at most {MAX_EVENT_QTY:e} in size (got {})", self.qty));
        }
        for (field, given) in [("order_id", self.order_id.as_deref()), ("zone", self.zone.as_deref())] {
            if let Some(value) = given {
                check_id(field, value)?;
            }
        }
        if let Some(day) = self.date {
            check_date("date", day)?;
        }
        if self.kind != InventoryKind::Order && (self.order_id.is_some() || self.zone.is_some() || self.date.is_some()) {
            return Err(format!("order_id, zone and date are only for an order, not a {:?}", self.kind).to_lowercase());
        }
        if self.kind != InventoryKind::Adjustment && self.qty <= 0.0 {
            return Err(format!("qty must be positive for a {:?} (got {})", self.kind, self.qty).to_lowercase());
        }
        let Some(plan) = plan else { return Ok(()) };
        if !plan.has_warehouse(&self.warehouse_id) {
            return Err(format!("warehouse_id {:?} is not a warehouse of plan {}", self.warehouse_id, plan.version()));
        }
        if !plan.has_sku(&self.sku) {
            return Err(format!("sku {:?} is not a SKU of plan {}", self.sku, plan.version()));
        }
        if let Some(zone) = self.zone.as_deref().filter(|z| !plan.context.lanes.iter().any(|l| l.zone == *z)) {
            return Err(format!("zone {zone:?} is not a zone of plan {}", plan.version()));
        }
        if let Some(tier) = self.tier.as_deref().filter(|t| !plan.tier_ix.contains_key(*t)) {
            return Err(format!("tier {tier:?} is not a tier of plan {}", plan.version()));
        }
        Ok(())
    }

    pub(crate) fn stock_move(&self) -> StockMove {
        let delta = match self.kind {
            InventoryKind::Order => -self.qty,
            InventoryKind::Receipt | InventoryKind::Adjustment => self.qty,
        };
        let tier = if self.kind == InventoryKind::Order { self.tier.clone() } else { None };
        StockMove { warehouse_id: self.warehouse_id.clone(), sku: self.sku.clone(), delta, tier, receipt: self.kind == InventoryKind::Receipt }
    }
}

/// Body of `POST /v1/events/consent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentEvent {
    /// Unique id from the sender among consent events; a repeat with the same
    /// body is acknowledged and ignored, with another body refused (409).
    #[schema(min_length = 1, max_length = 256)]
    pub event_id: String,
    /// The customer (one the active plan, or a running canary's or shadow's version, knows).
    #[schema(min_length = 1, max_length = 256)]
    pub customer_id: String,
    /// Personalization consent (`false` = withdrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
    /// Service-recovery suppression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<bool>,
}

impl ConsentEvent {
    /// Checks ids, that something changes, and (when a plan is served) that the
    /// customer is the plan's. The message names the field.
    pub fn validate(&self, plan: Option<&PlanIndex>) -> Result<(), String> {
        check_id("event_id", &self.event_id)?;
        check_id("customer_id", &self.customer_id)?;
        if self.consent.is_none() && self.suppressed.is_none() {
            return Err("a consent event sets consent, suppressed, or both".to_string());
        }
        match plan {
            Some(plan) if !plan.customer_ix.contains_key(self.customer_id.as_str()) => {
                Err(format!("customer_id {:?} is not a customer of plan {}", self.customer_id, plan.version()))
            }
            _ => Ok(()),
        }
    }
}

/// Body of `POST /v1/events/contact` (model version 2): a contact made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactEvent {
    /// Unique id from the sender among contact events; a repeat with the same
    /// body is acknowledged and ignored, with another body refused (409).
    #[schema(min_length = 1, max_length = 256)]
    pub event_id: String,
    /// The customer contacted (one the active plan, or a running canary's or shadow's version, knows).
    #[schema(min_length = 1, max_length = 256)]
    pub customer_id: String,
    /// The offer the contact made (one of that plan's).
    #[schema(min_length = 1, max_length = 256)]
    pub offer_id: String,
    /// The channel it was made on: the offer's own (the default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The day of the contact.
    #[schema(value_type = String, format = Date)]
    pub date: chrono::NaiveDate,
}

impl ContactEvent {
    /// Checks ids and (when a plan is served) that the customer and offer are
    /// the plan's and the channel the offer's. The message names the field.
    pub fn validate(&self, plan: Option<&PlanIndex>) -> Result<(), String> {
        check_id("event_id", &self.event_id)?;
        check_id("customer_id", &self.customer_id)?;
        check_id("offer_id", &self.offer_id)?;
        if let Some(channel) = &self.channel {
            check_id("channel", channel)?;
        }
        check_date("date", self.date)?;
        let Some(plan) = plan else { return Ok(()) };
        if !plan.customer_ix.contains_key(self.customer_id.as_str()) {
            return Err(format!("customer_id {:?} is not a customer of plan {}", self.customer_id, plan.version()));
        }
        let Some(offer) = plan.context.offers.iter().find(|o| o.offer_id == self.offer_id) else {
            return Err(format!("offer_id {:?} is not an offer of plan {}", self.offer_id, plan.version()));
        };
        match &self.channel {
            Some(channel) if *channel != offer.channel => {
                Err(format!("channel {channel:?} is not the channel of offer {} ({:?}) in plan {}", self.offer_id, offer.channel, plan.version()))
            }
            _ => Ok(()),
        }
    }

    /// The contact as folded (stored as posted: a channel left out is the
    /// offer's, read from the plan that applies it).
    pub(crate) fn contact(&self) -> crate::contacts::ContactMade {
        crate::contacts::ContactMade { offer_id: self.offer_id.clone(), channel: self.channel.clone(), date: self.date }
    }
}

impl ConsentEvent {
    /// Folds this event into a customer's live override (what it sets wins).
    pub(crate) fn apply_to(&self, o: &mut CustomerOverride) {
        o.update(self.consent, self.suppressed);
    }
}

/// One recorded event, as stored (the `body` column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LoggedEvent {
    /// An inventory movement.
    Inventory {
        /// When the service received it.
        received_at: DateTime<Utc>,
        /// The event as posted.
        event: InventoryEvent,
    },
    /// A consent or suppression change.
    Consent {
        /// When the service received it.
        received_at: DateTime<Utc>,
        /// The event as posted.
        event: ConsentEvent,
    },
    /// A contact made (model version 2).
    Contact {
        /// When the service received it.
        received_at: DateTime<Utc>,
        /// The event as posted.
        event: ContactEvent,
    },
    /// What a customer did with an offer.
    Outcome {
        /// When the service received it.
        received_at: DateTime<Utc>,
        /// The customer's arm in each experiment running when it was received.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        arms: Vec<ArmLabel>,
        /// An acceptance's value: posted, else the offer's margin in the plan served then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        /// The plan version serving the customer when it was received (a
        /// canary's for its customers): whose orders fulfilment counts it in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_version: Option<String>,
        /// The event as posted.
        event: OutcomeEvent,
    },
    /// An experiment started, its share changed, or stopped.
    Experiment {
        /// When the service received it (an experiment's start and stop time).
        received_at: DateTime<Utc>,
        /// The change (its id: the experiment's for a start, else unique).
        event_id: String,
        /// What changed.
        change: ExperimentChange,
    },
}

impl LoggedEvent {
    /// Its kind and id: the key idempotency is scoped by.
    pub fn key(&self) -> (EventKind, &str) {
        match self {
            LoggedEvent::Inventory { event, .. } => (EventKind::Inventory, &event.event_id),
            LoggedEvent::Consent { event, .. } => (EventKind::Consent, &event.event_id),
            LoggedEvent::Contact { event, .. } => (EventKind::Contact, &event.event_id),
            LoggedEvent::Outcome { event, .. } => (EventKind::Outcome, &event.event_id),
            LoggedEvent::Experiment { event_id, .. } => (EventKind::Experiment, event_id),
        }
    }

    /// When the service received it.
    pub fn received_at(&self) -> DateTime<Utc> {
        match self {
            LoggedEvent::Inventory { received_at, .. }
            | LoggedEvent::Consent { received_at, .. }
            | LoggedEvent::Contact { received_at, .. }
            | LoggedEvent::Outcome { received_at, .. }
            | LoggedEvent::Experiment { received_at, .. } => *received_at,
        }
    }

    /// The event as posted, as JSON (for a conflict's answer).
    pub fn posted(&self) -> serde_json::Value {
        match self {
            LoggedEvent::Inventory { event, .. } => serde_json::to_value(event),
            LoggedEvent::Consent { event, .. } => serde_json::to_value(event),
            LoggedEvent::Contact { event, .. } => serde_json::to_value(event),
            LoggedEvent::Outcome { event, .. } => serde_json::to_value(event),
            LoggedEvent::Experiment { change, .. } => serde_json::to_value(change),
        }
        .unwrap_or_default()
    }

    /// Whether both carry the same posted event (the time received aside).
    fn same_posted(&self, other: &LoggedEvent) -> bool {
        match (self, other) {
            (LoggedEvent::Inventory { event: a, .. }, LoggedEvent::Inventory { event: b, .. }) => a == b,
            (LoggedEvent::Consent { event: a, .. }, LoggedEvent::Consent { event: b, .. }) => a == b,
            (LoggedEvent::Contact { event: a, .. }, LoggedEvent::Contact { event: b, .. }) => a == b,
            (LoggedEvent::Outcome { event: a, .. }, LoggedEvent::Outcome { event: b, .. }) => a == b,
            (LoggedEvent::Experiment { change: a, .. }, LoggedEvent::Experiment { change: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Committed and applied.
    New,
    /// Its (kind, id) was recorded before with the same body; nothing changed.
    Duplicate,
    /// Its (kind, id) was recorded before with another body (boxed); nothing changed.
    Conflict(Box<LoggedEvent>),
}

/// The event log and everything folded from it.
#[derive(Debug)]
pub struct EventLog {
    db: Arc<LiveDb>,
    /// Sequence number of the last event folded.
    applied_seq: i64,
    inventory: Vec<(DateTime<Utc>, StockMove)>,
    customers: HashMap<String, CustomerOverride>,
    /// Every customer's live contacts, in the order received.
    contacts: HashMap<String, Vec<crate::contacts::ContactMade>>,
    /// Every accepted outcome, in the order received (the live limits burn down by them).
    acceptances: Vec<Acceptance>,
    /// Every shown and accepted outcome, in the order received (the drift test reads them).
    seen: Vec<Seen>,
    /// Every experiment.
    experiments: Experiments,
    /// Offer-driven orders, by order id.
    orders: Fulfilment,
    /// Orders that name their zone: live demand.
    demand: Vec<DemandOrder>,
}

impl EventLog {
    /// The log in `db`, with every event recorded so far folded in; a stored
    /// event that does not parse is an error naming its sequence number.
    pub fn open(db: Arc<LiveDb>) -> Result<Self, LiveError> {
        let mut log = EventLog {
            db,
            applied_seq: 0,
            inventory: Vec::new(),
            customers: HashMap::new(),
            contacts: HashMap::new(),
            acceptances: Vec::new(),
            seen: Vec::new(),
            experiments: Experiments::default(),
            orders: Fulfilment::default(),
            demand: Vec::new(),
        };
        // The whole snapshot and every event, read in one statement: a
        // compaction elsewhere never moves events between them.
        log.fold_changes(i64::MIN, false)?;
        Ok(log)
    }

    /// Folds what changed after `after` ([`LiveDb::changes_after`]): the
    /// consent snapshot's rows past it, then the events after it, in order;
    /// returns them when `keep` (the rows as the consent events they stand
    /// for), for the caller to apply to what it serves. Why a row folds as an
    /// event (what it sets wins): it is the fold of every consent event of
    /// its customer up to its `upto_seq`, past what this log applied, so it
    /// only sets more than memory holds; after an erasure elsewhere it may
    /// set less (its objection alone), and a grant memory still holds stays
    /// beside the objection, which wins.
    fn fold_changes(&mut self, after: i64, keep: bool) -> Result<Vec<LoggedEvent>, LiveError> {
        let changes = self.db.changes_after(after)?;
        let mut folded = Vec::new();
        for (customer_id, o) in changes.overrides()? {
            let event = LoggedEvent::Consent {
                received_at: Utc::now(),
                event: ConsentEvent { event_id: String::new(), customer_id, consent: o.consent, suppressed: o.suppressed },
            };
            self.fold(&event);
            if keep {
                folded.push(event);
            }
        }
        for stored in changes.events {
            let event = self.fold_stored(stored.seq, &stored.body)?;
            if keep {
                folded.push(event);
            }
        }
        Ok(folded)
    }

    /// Where the log is kept, for messages.
    pub fn location(&self) -> String {
        self.db.location()
    }

    /// The database the log is kept in.
    pub fn db(&self) -> &Arc<LiveDb> {
        &self.db
    }

    /// The shared state, when the log is in PostgreSQL.
    pub fn shared(&self) -> Option<&Arc<SharedLive>> {
        self.db.shared()
    }

    /// Sequence number of the last event folded in.
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq
    }

    /// Folds every event recorded (by any replica) since the last one folded,
    /// in their recorded order; returns them, for the caller to apply to what
    /// it serves. The consent snapshot's rows past what this log applied
    /// fold first ([`LiveDb::changes_after`]): an event it had yet to apply
    /// may have been folded there and deleted (a compaction that stopped
    /// waiting for this replica while it was silent, an erasure that kept
    /// the objection), so no withdrawal is missed.
    pub fn catch_up(&mut self) -> Result<Vec<LoggedEvent>, LiveError> {
        self.fold_changes(self.applied_seq, true)
    }

    /// Folds one stored event, the next in sequence order.
    fn fold_stored(&mut self, seq: i64, body: &str) -> Result<LoggedEvent, LiveError> {
        let event = parse_stored(seq, body)?;
        self.fold(&event);
        self.applied_seq = seq;
        Ok(event)
    }

    fn fold(&mut self, event: &LoggedEvent) {
        match event {
            LoggedEvent::Inventory { received_at, event } => {
                self.inventory.push((*received_at, event.stock_move()));
                if let Some(order) = &event.order_id {
                    self.orders.picked(order, &event.warehouse_id);
                }
                self.demand.extend(DemandOrder::of(*received_at, event));
            }
            LoggedEvent::Consent { event, .. } => event.apply_to(self.customers.entry(event.customer_id.clone()).or_default()),
            LoggedEvent::Contact { event, .. } => self.contacts.entry(event.customer_id.clone()).or_default().push(event.contact()),
            LoggedEvent::Outcome { received_at, event, plan_version, .. } => {
                self.acceptances.extend(event.acceptance());
                self.seen.extend(Seen::of(*received_at, event));
                self.orders.outcome(event, plan_version.as_deref());
            }
            LoggedEvent::Experiment { received_at, change, .. } => self.experiments.apply(change, *received_at),
        }
    }

    /// Records `event` (committed before this returns `New`) and folds it with
    /// any others recorded since; returns what happened and every event folded.
    pub fn record(&mut self, event: LoggedEvent) -> Result<(Applied, Vec<LoggedEvent>), LiveError> {
        Ok(self.record_if(event, None)?.expect("no guard refuses"))
    }

    /// [`Self::record`], refused by `guard` inside the event's transaction
    /// ([`LiveDb::record_event_if`]): nothing is recorded then.
    pub fn record_if(&mut self, event: LoggedEvent, guard: Option<crate::live::CompactionGuard<'_>>) -> Result<Result<(Applied, Vec<LoggedEvent>), allot_scenarios::StoreError>, LiveError> {
        let body = serde_json::to_string(&event).map_err(|e| LiveError::Corrupt { table: "allot_events", reason: e.to_string() })?;
        let (kind, id) = event.key();
        let recorded = match self.db.record_event_if(kind, id, &body, guard)? {
            Ok(recorded) => recorded,
            Err(refused) => return Ok(Err(refused)),
        };
        let applied = match recorded {
            Recorded::New(_) => Applied::New,
            Recorded::Existing(stored) => {
                let original = serde_json::from_str::<LoggedEvent>(&stored)
                    .map_err(|e| LiveError::Corrupt { table: "allot_events", reason: format!("{} {id}: {e}", kind.as_str()) })?;
                if original.same_posted(&event) {
                    Applied::Duplicate
                } else {
                    Applied::Conflict(Box::new(original))
                }
            }
        };
        Ok(Ok((applied, self.catch_up()?)))
    }

    /// Inventory movements received after `since` (a plan's stock is as of its save).
    pub(crate) fn moves_since(&self, since: DateTime<Utc>) -> impl Iterator<Item = &StockMove> {
        self.inventory.iter().filter(move |(at, _)| *at > since).map(|(_, m)| m)
    }

    /// Drops a customer's folded consent overrides, contacts and event ids
    /// (after an erasure deleted their events), keeping only the objection
    /// the erasure kept (`kept`, see [`CustomerOverride::objection`]):
    /// otherwise they are served as the plan's own data says.
    pub(crate) fn forget_customer(&mut self, customer_id: &str, kept: Option<CustomerOverride>) {
        CustomerOverride::keep_only(&mut self.customers, customer_id, kept);
        self.contacts.remove(customer_id);
        self.seen.retain(|s| s.customer_id != customer_id);
    }

    /// Every customer's live contacts.
    pub fn customer_contacts(&self) -> &HashMap<String, Vec<crate::contacts::ContactMade>> {
        &self.contacts
    }

    /// Every accepted outcome, in the order received.
    pub(crate) fn acceptances(&self) -> &[Acceptance] {
        &self.acceptances
    }

    /// Offer-driven orders' fill and on-time rates per plan version and warehouse.
    pub fn fulfilment(&self) -> Vec<crate::outcomes::FulfilmentRow> {
        self.orders.rows()
    }

    /// Every order that names its zone, in the order received.
    pub(crate) fn demand_orders(&self) -> &[DemandOrder] {
        &self.demand
    }

    /// Every shown and accepted outcome, in the order received.
    pub(crate) fn seen(&self) -> &[Seen] {
        &self.seen
    }

    /// Every experiment, as folded.
    pub fn experiments(&self) -> &Experiments {
        &self.experiments
    }

    /// The live overrides of every customer with a consent event.
    pub fn customer_overrides(&self) -> &HashMap<String, CustomerOverride> {
        &self.customers
    }

    /// Compacts the live events (bounded growth): consent events received
    /// before `consent_cutoff` are folded into the consent snapshot (a row
    /// per customer) and deleted; inventory events received before
    /// `inventory_cutoff` (no plan that can still be served needs them) are
    /// deleted, and dropped from memory. What is served does not change; a
    /// compacted event's id is forgotten, so a retry of it after the window
    /// would count as new. One transaction per [`COMPACTION_BATCH`] events,
    /// oldest first, stopping at the first event received after `consent_cutoff`.
    ///
    /// Events after the newest one every live replica, and this log, has
    /// applied are left for later ([`Sql::applied_everywhere`]).
    ///
    /// The versions the database says may be served, read in each
    /// transaction under the activation lock, bound `inventory_cutoff` too
    /// ([`earliest_servable`]): another replica (or the CLI) may have just
    /// activated or rolled back to a version older than the plan this
    /// replica serves, or started a canary or shadow of one, before this
    /// replica caught up; an activation checks the compaction point under
    /// the same lock ([`LiveDb::activate`]). A manifest in `store`
    /// unreadable: no inventory event goes.
    pub fn compact(&mut self, consent_cutoff: DateTime<Utc>, inventory_cutoff: DateTime<Utc>, store: &PlanStore) -> Result<Compacted, LiveError> {
        let mut done = Compacted::default();
        let mut after = 0;
        let mut kept_after = inventory_cutoff;
        let applied_here = self.applied_seq;
        loop {
            let (last, batch, end) = self.db.transaction(|sql| {
                sql.lock_maintenance()?;
                sql.lock_activations()?;
                let cutoff = inventory_cutoff.min(earliest_servable(sql, store)?);
                kept_after = kept_after.min(cutoff);
                // Nor past what this log has folded: what it deletes, this replica must have applied.
                compact_batch(sql, after, applied_here, consent_cutoff, cutoff)
            })?;
            done.consent += batch.consent;
            done.inventory += batch.inventory;
            after = last;
            if end {
                break;
            }
        }
        self.inventory.retain(|(at, _)| *at > kept_after);
        Ok(done)
    }
}

/// Every outcome event recorded in `db`, oldest first (an experiment
/// report's raw data: read from the database, not kept in memory).
pub fn outcomes(db: &LiveDb) -> Result<Vec<LoggedEvent>, LiveError> {
    let rows = db.transaction(|sql| sql.rows("SELECT seq, CAST(body AS TEXT) FROM allot_events WHERE kind = 'outcome' ORDER BY seq", &[]))?;
    rows.into_iter()
        .map(|row| {
            let mut row = row.into_iter();
            let seq = row.next().map_or(0, |c| c.int());
            parse_stored(seq, &row.next().map(Cell::into_text).unwrap_or_default())
        })
        .collect()
}

/// The outcome events in `db` as offer history for the uptake model: per
/// customer, offer and day, the showings and acceptances. An acceptance is
/// counted on the day of its pair's latest showing before it (it often comes
/// a day or more later, and on its own day it would read as a showing of
/// its own); one with no showing posted counts as shown on its own day.
/// Anonymous (erased) outcomes are left out.
pub fn outcome_history(db: &LiveDb) -> Result<Vec<allot_scenarios::OutcomeShowings>, LiveError> {
    use crate::outcomes::OutcomeKind;
    let mut by_pair: std::collections::BTreeMap<(String, String), Vec<(DateTime<Utc>, bool)>> = std::collections::BTreeMap::new();
    for e in outcomes(db)? {
        let LoggedEvent::Outcome { event, .. } = e else { continue };
        let accepted = match event.kind {
            OutcomeKind::Shown => false,
            OutcomeKind::Accepted => true,
            _ => continue,
        };
        if !event.customer_id.is_empty() {
            by_pair.entry((event.customer_id, event.offer_id)).or_default().push((event.occurred_at, accepted));
        }
    }
    let mut rows = Vec::new();
    for ((customer_id, offer_id), mut seen) in by_pair {
        seen.sort();
        let mut days: std::collections::BTreeMap<chrono::NaiveDate, (u32, u32)> = std::collections::BTreeMap::new();
        let mut last_shown = None;
        for (at, accepted) in seen {
            let day = if accepted { last_shown.unwrap_or(at.date_naive()) } else { at.date_naive() };
            let counts = days.entry(day).or_default();
            if accepted {
                counts.1 += 1;
                counts.0 = counts.0.max(counts.1);
            } else {
                counts.0 += 1;
                last_shown = Some(day);
            }
        }
        rows.extend(days.into_iter().map(|(date, (shown, accepted))| allot_scenarios::OutcomeShowings { customer_id: customer_id.clone(), offer_id: offer_id.clone(), date, shown, accepted }));
    }
    Ok(rows)
}

/// The report of experiment `id` (`None`: no such experiment), from the raw
/// decisions (the audit, between its start and stop) and outcomes in `db`
/// that carry its arm. The service's route and `allot experiment report` both
/// come here.
pub fn experiment_report(db: &LiveDb, experiments: &Experiments, audit: &AuditLog, id: &str) -> std::io::Result<Option<ExperimentReport>> {
    let Some(experiment) = experiments.get(id) else { return Ok(None) };
    let arm_of = |arms: &[ArmLabel]| arms.iter().find(|a| a.experiment_id == id).map(|a| a.arm.clone());
    let decisions: Vec<DecisionSeen> = audit
        .records_since(experiment.started_at)?
        .into_iter()
        .filter(|r| experiment.stopped_at.is_none_or(|stop| r.at <= stop))
        .filter_map(|r| arm_of(&r.decision.experiments).map(|arm| DecisionSeen { customer_id: r.decision.customer_id, arm }))
        .collect();
    let all = outcomes(db)?;
    // CUPED's covariate: what each customer's acceptances were worth before the start.
    let mut pre_period: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    for e in &all {
        if let LoggedEvent::Outcome { received_at, value: Some(v), event, .. } = e {
            if *received_at < experiment.started_at {
                *pre_period.entry(event.customer_id.clone()).or_default() += v;
            }
        }
    }
    let outcomes: Vec<OutcomeSeen> = all
        .into_iter()
        .filter_map(|e| match e {
            LoggedEvent::Outcome { arms, value, event, .. } => arm_of(&arms).map(|arm| OutcomeSeen {
                customer_id: event.customer_id,
                arm,
                kind: event.kind,
                order_id: event.order_id,
                on_time: event.on_time,
                value,
            }),
            _ => None,
        })
        .collect();
    Ok(Some(crate::experiments::report(experiment, &decisions, &outcomes, &pre_period)))
}

/// Events read and considered per compaction transaction.
pub const COMPACTION_BATCH: i64 = 10_000;

/// What a compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Consent events folded into the snapshot and deleted.
    pub consent: u64,
    /// Inventory events deleted.
    pub inventory: u64,
}


fn parse_stored(seq: i64, body: &str) -> Result<LoggedEvent, LiveError> {
    serde_json::from_str::<LoggedEvent>(body).map_err(|e| LiveError::Corrupt { table: "allot_events", reason: format!("seq {seq}: {e}") })
}

/// When the earliest of the versions the database says may be served was
/// saved, read in transaction `sql`: the active one and every running
/// canary's or shadow's (experiment events are never compacted, so they
/// fold whole here). The latest time when there is none; the earliest when
/// a manifest cannot be read (that version may need every stock move).
fn earliest_servable(sql: &mut dyn Sql, store: &PlanStore) -> Result<DateTime<Utc>, LiveError> {
    let active = sql.rows(crate::live::schema::ACTIVE_PLAN, &[])?;
    let mut versions: Vec<String> = active.into_iter().next().and_then(|row| row.into_iter().nth(1)).map(Cell::into_text).into_iter().collect();
    let mut experiments = Experiments::default();
    for row in sql.rows("SELECT seq, CAST(body AS TEXT) FROM allot_events WHERE kind = 'experiment' ORDER BY seq", &[])? {
        let mut row = row.into_iter();
        let seq = row.next().map_or(0, |c| c.int());
        if let LoggedEvent::Experiment { received_at, change, .. } = parse_stored(seq, &row.next().map(Cell::into_text).unwrap_or_default())? {
            experiments.apply(&change, received_at);
        }
    }
    versions.extend(experiments.all().filter(|e| e.running()).filter_map(|e| e.version.clone()));
    let mut earliest = DateTime::<Utc>::MAX_UTC;
    for version in versions {
        match store.manifest(&version) {
            Ok(m) => earliest = earliest.min(m.created_at),
            Err(e) => {
                tracing::warn!(error = %e, version, "a servable version's manifest cannot be read: compaction keeps every stock move");
                return Ok(DateTime::<Utc>::MIN_UTC);
            }
        }
    }
    Ok(earliest)
}

/// One compaction transaction over the events after `after` (the caller
/// holds the maintenance and activation locks): returns the last sequence
/// number considered, what went, and whether compaction is done.
fn compact_batch(sql: &mut dyn Sql, after: i64, applied_here: i64, consent_cutoff: DateTime<Utc>, inventory_cutoff: DateTime<Utc>) -> Result<(i64, Compacted, bool), LiveError> {
    let applied = sql.applied_everywhere()?.min(applied_here);
    let rows = sql.rows(
        "SELECT seq, CAST(body AS TEXT) FROM allot_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        &[Param::Int(after), Param::Int(applied), Param::Int(COMPACTION_BATCH)],
    )?;
    let full = rows.len() as i64 == COMPACTION_BATCH;
    let mut last = after;
    let mut folded: HashMap<String, (CustomerOverride, i64)> = HashMap::new();
    let mut delete = Vec::new();
    let mut done = Compacted::default();
    let mut reached_cutoff = false;
    // The newest inventory event deleted: versions saved before it can no
    // longer know their live stock (`LiveDb::inventory_compacted`).
    let mut newest_deleted: Option<DateTime<Utc>> = None;
    for row in rows {
        let mut row = row.into_iter();
        let seq = row.next().map_or(0, |c| c.int());
        let event = parse_stored(seq, &row.next().map(Cell::into_text).unwrap_or_default())?;
        if event.received_at() >= consent_cutoff {
            reached_cutoff = true;
            break;
        }
        match &event {
            // Contacts are history: a conflict window or a rule's count may
            // reach back further than the event window (kept until erasure).
            // Outcomes and experiments are what experiment reports read.
            LoggedEvent::Contact { .. } | LoggedEvent::Outcome { .. } | LoggedEvent::Experiment { .. } => {}
            LoggedEvent::Inventory { received_at, .. } => {
                if *received_at <= inventory_cutoff {
                    delete.push(seq);
                    done.inventory += 1;
                    newest_deleted = newest_deleted.max(Some(*received_at));
                }
            }
            LoggedEvent::Consent { event, .. } => {
                if !folded.contains_key(&event.customer_id) {
                    let stored = sql.rows("SELECT override FROM allot_consent_snapshot WHERE customer_id = $1", &[Param::Text(&event.customer_id)])?;
                    let o = match stored.into_iter().next().and_then(|r| r.into_iter().next()) {
                        Some(text) => parse_consent_snapshot(&event.customer_id, &text.into_text())?,
                        None => CustomerOverride::default(),
                    };
                    folded.insert(event.customer_id.clone(), (o, seq));
                }
                if let Some((o, upto)) = folded.get_mut(&event.customer_id) {
                    event.apply_to(o);
                    *upto = seq;
                }
                delete.push(seq);
                done.consent += 1;
            }
        }
        last = seq;
    }
    for (customer, (o, upto)) in &folded {
        let text = consent_snapshot_text(o)?;
        sql.exec(
            "INSERT INTO allot_consent_snapshot (customer_id, override, upto_seq) VALUES ($1, $2, $3)
             ON CONFLICT (customer_id) DO UPDATE SET override = excluded.override, upto_seq = excluded.upto_seq",
            &[Param::Text(customer), Param::Text(&text), Param::Int(*upto)],
        )?;
    }
    for seq in delete {
        sql.exec("DELETE FROM allot_events WHERE seq = $1", &[Param::Int(seq)])?;
    }
    if let Some(newest) = newest_deleted {
        crate::live::note_inventory_compacted(sql, newest)?;
    }
    Ok((last, done, reached_cutoff || !full))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(id: &str, customer: &str, consent: Option<bool>, suppressed: Option<bool>, days_ago: i64) -> LoggedEvent {
        let event = ConsentEvent { event_id: id.into(), customer_id: customer.into(), consent, suppressed };
        LoggedEvent::Consent { received_at: Utc::now() - chrono::Duration::days(days_ago), event }
    }

    fn receipt(id: &str, qty: f64, days_ago: i64) -> LoggedEvent {
        let event = InventoryEvent { event_id: id.into(), kind: InventoryKind::Receipt, warehouse_id: "W1".into(), sku: "A".into(), qty, tier: None, order_id: None, zone: None, date: None };
        LoggedEvent::Inventory { received_at: Utc::now() - chrono::Duration::days(days_ago), event }
    }

    /// A plan store with no version (nothing active bounds compaction).
    fn no_plans(dir: &tempfile::TempDir) -> PlanStore {
        PlanStore::open(dir.path().join("plans")).unwrap()
    }

    fn stored_seqs(db: &LiveDb) -> usize {
        db.events_after(0).unwrap().len()
    }

    /// Compaction changes nothing a restart folds (the consent snapshot then
    /// the events left give the same overrides), removes what it may, and
    /// keeps what a served plan or a retry still needs.
    #[test]
    fn compaction_keeps_the_folded_state_and_drops_only_old_events() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let mut log = EventLog::open(db.clone()).unwrap();
        for e in [
            consent("c1", "C1", Some(false), None, 40),
            receipt("i1", 5.0, 40),
            consent("c2", "C1", None, Some(true), 35),
            consent("c3", "C2", Some(false), None, 33),
            receipt("i2", 7.0, 20),
            consent("c4", "C1", Some(true), None, 2),
            consent("c5", "C3", None, Some(true), 1),
        ] {
            assert_eq!(log.record(e).unwrap().0, Applied::New);
        }
        let before = log.customer_overrides().clone();
        let now = Utc::now();
        let cutoff = now - chrono::Duration::days(30);
        let done = log.compact(cutoff, now - chrono::Duration::days(25), &no_plans(&dir)).unwrap();
        assert_eq!(done, Compacted { consent: 3, inventory: 1 });
        assert_eq!(stored_seqs(&db), 3, "i2 (needed by a plan younger than 25 days), c4 and c5 are left");
        assert_eq!(log.customer_overrides(), &before, "what is served does not change");
        assert_eq!(log.moves_since(DateTime::<Utc>::MIN_UTC).map(|m| m.delta).collect::<Vec<_>>(), [7.0], "the old move is dropped from memory");
        // A restart folds the snapshot, then the events left, in order: C1's
        // newer consent (c4) wins over the folded withdrawal.
        let reopened = EventLog::open(db.clone()).unwrap();
        assert_eq!(reopened.customer_overrides(), &before);
        assert_eq!(before["C1"], CustomerOverride { consent: Some(true), suppressed: Some(true) });
        // Compacting again finds nothing more; ids not compacted stay known.
        assert_eq!(log.compact(cutoff, now - chrono::Duration::days(25), &no_plans(&dir)).unwrap(), Compacted::default());
        assert_eq!(log.record(consent("c4", "C1", Some(true), None, 2)).unwrap().0, Applied::Duplicate);
        // An erasure removes the folded consent too, and keeps only the
        // objection folded from the snapshot and the events after it: C1
        // granted consent again (c4, not compacted) after a withdrawal and a
        // suppression (c1, c2, in the snapshot), so only the suppression stays.
        let audit = AuditLog::open(db.clone()).unwrap();
        let withdrawn = CustomerOverride { consent: Some(false), suppressed: None };
        let suppressed = CustomerOverride { consent: None, suppressed: Some(true) };
        let erased = audit.erase("C2").unwrap();
        assert_eq!((erased.consent_events, erased.objection), (0, Some(withdrawn)), "the snapshot row of C2 is its withdrawal, which stays");
        let erased = audit.erase("C1").unwrap();
        assert_eq!((erased.consent_events, erased.objection), (2, Some(suppressed)), "C1's snapshot row and c4");
        let erased = audit.erase("C3").unwrap();
        assert_eq!((erased.consent_events, erased.objection), (1, Some(suppressed)), "c5 alone");
        let reopened = EventLog::open(db.clone()).unwrap();
        assert_eq!([&reopened.customer_overrides()["C1"], &reopened.customer_overrides()["C2"]], [&suppressed, &withdrawn]);
        // Erased again, nothing is left to erase but the objection, which stays.
        let erased = audit.erase("C1").unwrap();
        assert_eq!((erased.consent_events, erased.objection), (0, Some(suppressed)));
        // A customer who only granted keeps nothing.
        assert_eq!(log.record(consent("c6", "C4", Some(true), Some(false), 0)).unwrap().0, Applied::New);
        assert_eq!(audit.erase("C4").unwrap().objection, None);
        assert!(!EventLog::open(db).unwrap().customer_overrides().contains_key("C4"));
    }

    /// A store moving to another database (`live.db` into PostgreSQL at
    /// `--database`) takes what compaction folded and deleted: the consent
    /// snapshot is in force there, ahead of the store's events left, and a
    /// version saved before the deleted stock moves is refused there too.
    #[test]
    fn a_store_moving_to_another_database_takes_its_compacted_consent_and_compaction_point() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let compacted = {
            let db = Arc::new(LiveDb::open_file(from.path()).unwrap());
            let mut log = EventLog::open(db.clone()).unwrap();
            for e in [
                consent("c1", "C1", Some(false), None, 40),
                receipt("i1", 5.0, 40),
                consent("c2", "C2", None, Some(true), 35),
                consent("c3", "C1", Some(true), Some(true), 2),
            ] {
                assert_eq!(log.record(e).unwrap().0, Applied::New);
            }
            let now = Utc::now();
            let done = log.compact(now - chrono::Duration::days(30), now - chrono::Duration::days(25), &no_plans(&from)).unwrap();
            assert_eq!(done, Compacted { consent: 2, inventory: 1 });
            db.inventory_compacted().unwrap().expect("i1 was deleted")
        };
        let db = Arc::new(LiveDb::open_file(to.path()).unwrap());
        crate::live::import::import_live_db(&db, from.path()).unwrap();
        let log = EventLog::open(db.clone()).unwrap();
        let overrides = log.customer_overrides();
        assert_eq!(overrides["C1"], CustomerOverride { consent: Some(true), suppressed: Some(true) }, "the folded withdrawal, then c3's grant");
        assert_eq!(overrides["C2"], CustomerOverride { consent: None, suppressed: Some(true) });
        assert_eq!(db.inventory_compacted().unwrap(), Some(compacted));
        assert!(!from.path().join(crate::live::LIVE_DB_FILE).exists(), "set aside");
        // The snapshot's events are consent events like any: an erasure folds them.
        let erased = AuditLog::open(db.clone()).unwrap().erase("C1").unwrap();
        assert_eq!((erased.consent_events, erased.objection), (2, Some(CustomerOverride { consent: None, suppressed: Some(true) })));
    }

    /// Two stores moving into one database each bring their own `live.db`:
    /// the second is imported too (recorded by its content, not its name),
    /// while the same file met again is not imported twice; an imported
    /// grant never undoes a withdrawal the database holds.
    #[test]
    fn a_second_stores_live_db_is_imported_too_and_the_same_one_once() {
        let (x, y, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // x withdraws C1; y withdraws C2 and grants C3, whom the database
        // already knows as withdrawn: that grant is not imported.
        for (dir, events) in [(&x, vec![consent("w-C1", "C1", Some(false), None, 1)]), (&y, vec![consent("w-C2", "C2", Some(false), None, 1), consent("g-C3", "C3", Some(true), Some(true), 1)])] {
            let mut log = EventLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
            for e in events {
                assert_eq!(log.record(e).unwrap().0, Applied::New);
            }
        }
        let copy = tempfile::tempdir().unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let name = format!("{}{suffix}", crate::live::LIVE_DB_FILE);
            if x.path().join(&name).exists() {
                std::fs::copy(x.path().join(&name), copy.path().join(&name)).unwrap();
            }
        }
        let db = Arc::new(LiveDb::open_file(to.path()).unwrap());
        EventLog::open(db.clone()).unwrap().record(consent("w-C3", "C3", Some(false), None, 0)).unwrap();
        for dir in [&x, &y, &copy] {
            crate::live::import::import_live_db(&db, dir.path()).unwrap();
            assert!(!dir.path().join(crate::live::LIVE_DB_FILE).exists(), "set aside");
        }
        let withdrawn = CustomerOverride { consent: Some(false), suppressed: None };
        let log = EventLog::open(db.clone()).unwrap();
        assert_eq!([log.customer_overrides().get("C1"), log.customer_overrides().get("C2")], [Some(&withdrawn), Some(&withdrawn)]);
        assert_eq!(log.customer_overrides()["C3"], CustomerOverride { consent: Some(false), suppressed: Some(true) }, "C3's grant dropped, its suppression kept");
        assert_eq!(stored_seqs(&db), 4, "w-C3, w-C1, w-C2, what is left of g-C3; the copy of the first store's file added nothing");
        let imports = db.transaction(|sql| sql.rows("SELECT file FROM allot_imports WHERE file LIKE 'live.db%'", &[])).unwrap();
        assert_eq!(imports.len(), 2, "the copy is recognized as the first store's file, not imported again: {imports:?}");
    }

    /// A withdrawal another replica records after a moving store's events
    /// were read, before they are imported, is not undone by that store's
    /// grant of the same customer: which grants go in is decided inside
    /// the import's transaction, where the withdrawal is seen.
    #[test]
    fn a_withdrawal_recorded_while_an_import_is_prepared_is_not_undone_by_its_grant() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        // Prepared as `import_live_db` prepares a moving store's events.
        let moving = [consent("g-C7", "C7", Some(true), Some(true), 1), consent("g-C8", "C8", Some(true), None, 1)];
        let events = moving.iter().map(|e| (EventKind::Consent, e.key().1.to_string(), serde_json::to_string(e).unwrap())).collect();
        let rows = crate::live::ImportRows { events, objections_only_where_known: true, ..Default::default() };
        EventLog::open(db.clone()).unwrap().record(consent("w-C7", "C7", Some(false), None, 0)).unwrap();
        db.import("live.db moving", &rows).unwrap();
        let log = EventLog::open(db.clone()).unwrap();
        assert_eq!(log.customer_overrides()["C7"], CustomerOverride { consent: Some(false), suppressed: Some(true) }, "the grant dropped, the suppression kept");
        assert_eq!(log.customer_overrides()["C8"], CustomerOverride { consent: Some(true), suppressed: None }, "a customer the database knew nothing of takes the grant");
    }

    /// A replica left out of another's compaction (silent for a while):
    /// its next catch-up folds the snapshot's rows past what it applied, so
    /// a withdrawal compacted away before it saw the event still reaches it
    /// (and what it serves, through the events it returns).
    #[test]
    fn a_replica_left_out_of_a_compaction_folds_the_snapshot_on_catching_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let mut behind = EventLog::open(db.clone()).unwrap();
        let mut other = EventLog::open(db.clone()).unwrap();
        assert_eq!(other.record(consent("w9", "C9", Some(false), None, 40)).unwrap().0, Applied::New);
        let now = Utc::now();
        assert_eq!(other.compact(now - chrono::Duration::days(30), now, &no_plans(&dir)).unwrap().consent, 1);
        assert_eq!(stored_seqs(&db), 0, "the withdrawal is in the snapshot only");
        let folded = behind.catch_up().unwrap();
        let withdrawn = CustomerOverride { consent: Some(false), suppressed: None };
        assert_eq!(behind.customer_overrides().get("C9"), Some(&withdrawn));
        assert!(matches!(&folded[..], [LoggedEvent::Consent { event, .. }] if event.customer_id == "C9" && event.consent == Some(false)), "{folded:?}");
    }

    /// More events than one transaction takes: compaction goes on batch
    /// after batch, and stops at the first event inside the window.
    #[test]
    fn compaction_runs_in_batches_and_stops_at_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let mut log = EventLog::open(db.clone()).unwrap();
        let old = COMPACTION_BATCH as usize + 10;
        let rows: Vec<(EventKind, String, String)> = (0..old)
            .map(|i| consent(&format!("o{i}"), &format!("C{}", i % 50), Some(i % 2 == 0), None, 60))
            .chain([consent("new", "C1", Some(false), None, 1)])
            .map(|e| (EventKind::Consent, e.key().1.to_string(), serde_json::to_string(&e).unwrap()))
            .collect();
        db.import("bulk", &crate::live::ImportRows { events: rows, ..Default::default() }).unwrap();
        log.catch_up().unwrap();
        let before = log.customer_overrides().clone();
        let done = log.compact(Utc::now() - chrono::Duration::days(30), Utc::now() - chrono::Duration::days(30), &no_plans(&dir)).unwrap();
        assert_eq!(done.consent, old as u64);
        assert_eq!(stored_seqs(&db), 1);
        assert_eq!(EventLog::open(db).unwrap().customer_overrides(), &before);
    }
}
