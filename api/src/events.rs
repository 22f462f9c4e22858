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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::audit::{AuditLog, AuditRecord};
use crate::decide::CustomerOverride;
use crate::index::{PlanIndex, StockMove};
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
    #[schema(min_length = 1)]
    pub event_id: String,
    /// What happened.
    pub kind: InventoryKind,
    /// Warehouse (one the served plan knows).
    #[schema(min_length = 1)]
    pub warehouse_id: String,
    /// SKU (one the served plan knows).
    #[schema(min_length = 1)]
    pub sku: String,
    /// Units (see [`InventoryKind`] for the sign); |qty| at most 1e9.
    pub qty: f64,
    /// For orders: the tier of the ordering customer, so it consumes that tier's reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

fn non_empty(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    Ok(())
}

impl InventoryEvent {
    /// Checks what serde cannot: ids, sign, finiteness and bounds, and (when a
    /// plan is served) that its warehouse, SKU and tier are the plan's. The
    /// message names the field.
    pub fn validate(&self, plan: Option<&PlanIndex>) -> Result<(), String> {
        non_empty("event_id", &self.event_id)?;
        non_empty("warehouse_id", &self.warehouse_id)?;
        non_empty("sku", &self.sku)?;
        if !self.qty.is_finite() || self.qty.abs() > MAX_EVENT_QTY {
            return Err(format!("qty must be a finite number of at most {MAX_EVENT_QTY:e} in size (got {})", self.qty));
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
        StockMove { warehouse_id: self.warehouse_id.clone(), sku: self.sku.clone(), delta, tier }
    }
}

/// Body of `POST /v1/events/consent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentEvent {
    /// Unique id from the sender among consent events; a repeat with the same
    /// body is acknowledged and ignored, with another body refused (409).
    #[schema(min_length = 1)]
    pub event_id: String,
    /// The customer (one the served plan knows).
    #[schema(min_length = 1)]
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
        non_empty("event_id", &self.event_id)?;
        non_empty("customer_id", &self.customer_id)?;
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

impl ConsentEvent {
    /// Folds this event into a customer's live override (what it sets wins).
    pub(crate) fn apply_to(&self, o: &mut CustomerOverride) {
        o.consent = self.consent.or(o.consent);
        o.suppressed = self.suppressed.or(o.suppressed);
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
}

impl LoggedEvent {
    /// Its kind and id: the key idempotency is scoped by.
    pub fn key(&self) -> (EventKind, &str) {
        match self {
            LoggedEvent::Inventory { event, .. } => (EventKind::Inventory, &event.event_id),
            LoggedEvent::Consent { event, .. } => (EventKind::Consent, &event.event_id),
        }
    }

    /// The event as posted, as JSON (for a conflict's answer).
    pub fn posted(&self) -> serde_json::Value {
        match self {
            LoggedEvent::Inventory { event, .. } => serde_json::to_value(event),
            LoggedEvent::Consent { event, .. } => serde_json::to_value(event),
        }
        .unwrap_or_default()
    }

    /// Whether both carry the same posted event (the time received aside).
    fn same_posted(&self, other: &LoggedEvent) -> bool {
        match (self, other) {
            (LoggedEvent::Inventory { event: a, .. }, LoggedEvent::Inventory { event: b, .. }) => a == b,
            (LoggedEvent::Consent { event: a, .. }, LoggedEvent::Consent { event: b, .. }) => a == b,
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
}

impl EventLog {
    /// The log in `db`, with every event recorded so far folded in; a stored
    /// event that does not parse is an error naming its sequence number.
    pub fn open(db: Arc<LiveDb>) -> Result<Self, LiveError> {
        let mut log = EventLog { db, applied_seq: 0, inventory: Vec::new(), customers: HashMap::new() };
        log.catch_up()?;
        Ok(log)
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
    /// it serves.
    pub fn catch_up(&mut self) -> Result<Vec<LoggedEvent>, LiveError> {
        let stored = self.db.events_after(self.applied_seq)?;
        let mut folded = Vec::with_capacity(stored.len());
        for row in stored {
            let event = serde_json::from_str::<LoggedEvent>(&row.body)
                .map_err(|e| LiveError::Corrupt { table: "allot_events", reason: format!("seq {}: {e}", row.seq) })?;
            self.fold(&event);
            self.applied_seq = row.seq;
            folded.push(event);
        }
        Ok(folded)
    }

    fn fold(&mut self, event: &LoggedEvent) {
        match event {
            LoggedEvent::Inventory { received_at, event } => self.inventory.push((*received_at, event.stock_move())),
            LoggedEvent::Consent { event, .. } => event.apply_to(self.customers.entry(event.customer_id.clone()).or_default()),
        }
    }

    /// Records `event` (committed before this returns `New`) and folds it with
    /// any others recorded since; returns what happened and every event folded.
    pub fn record(&mut self, event: LoggedEvent) -> Result<(Applied, Vec<LoggedEvent>), LiveError> {
        let body = serde_json::to_string(&event).map_err(|e| LiveError::Corrupt { table: "allot_events", reason: e.to_string() })?;
        let (kind, id) = event.key();
        let applied = match self.db.record_event(kind, id, &body)? {
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
        Ok((applied, self.catch_up()?))
    }

    /// Inventory movements received after `since` (a plan's stock is as of its save).
    pub(crate) fn moves_since(&self, since: DateTime<Utc>) -> impl Iterator<Item = &StockMove> {
        self.inventory.iter().filter(move |(at, _)| *at > since).map(|(_, m)| m)
    }

    /// Drops a customer's folded consent overrides (after an erasure deleted
    /// their consent events): they are served as the plan's own data says.
    pub(crate) fn forget_customer(&mut self, customer_id: &str) {
        self.customers.remove(customer_id);
    }

    /// The live overrides of every customer with a consent event.
    pub fn customer_overrides(&self) -> &HashMap<String, CustomerOverride> {
        &self.customers
    }
}
