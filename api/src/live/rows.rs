//! What goes in and out of the live-state database, the same for both backends.

use allot_scenarios::plans::store::Activation;

use super::error::LiveError;
use crate::decide::CustomerOverride;

/// A customer's folded consent as `allot_consent_snapshot` stores it (JSON),
/// written by compaction and by an erasure's kept objection.
pub(crate) fn consent_snapshot_text(o: &CustomerOverride) -> Result<String, LiveError> {
    serde_json::to_string(o).map_err(|e| LiveError::Corrupt { table: "allot_consent_snapshot", reason: e.to_string() })
}

/// A customer's folded consent read back from `allot_consent_snapshot`.
pub(crate) fn parse_consent_snapshot(customer: &str, text: &str) -> Result<CustomerOverride, LiveError> {
    serde_json::from_str(text).map_err(|e| LiveError::Corrupt { table: "allot_consent_snapshot", reason: format!("customer {customer:?}: {e}") })
}

/// The kind of an event: ids are unique within a kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `POST /v1/events/inventory`.
    Inventory,
    /// `POST /v1/events/consent`.
    Consent,
    /// `POST /v1/events/contact`.
    Contact,
    /// `POST /v1/events/outcome`.
    Outcome,
    /// `/v1/experiments`: an experiment started, its share changed, stopped.
    Experiment,
}

impl EventKind {
    /// The name stored in the `kind` column (and the body's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Inventory => "inventory",
            EventKind::Consent => "consent",
            EventKind::Contact => "contact",
            EventKind::Outcome => "outcome",
            EventKind::Experiment => "experiment",
        }
    }
}

/// What recording an event found.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Committed with this sequence number.
    New(i64),
    /// The (kind, id) was recorded before: nothing was written; the stored body.
    Existing(String),
}

/// One event as stored: its sequence number and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the recorded order.
    pub seq: i64,
    /// The event ([`crate::events::LoggedEvent`] as JSON).
    pub body: String,
}

/// What a replica catching up folds ([`super::LiveDb::changes_after`]).
#[derive(Debug, Default)]
pub struct Changes {
    /// Consent snapshot rows folding events after the point asked: (customer, override as JSON).
    pub snapshot: Vec<(String, String)>,
    /// The events after it, in order.
    pub events: Vec<StoredEvent>,
}

impl Changes {
    /// Sorts one row of [`super::schema::CHANGES_AFTER`] (kind, seq, customer, text) in.
    pub(crate) fn push(&mut self, kind: i64, seq: i64, customer: String, text: String) {
        if kind == 0 {
            self.snapshot.push((customer, text));
        } else {
            self.events.push(StoredEvent { seq, body: text });
        }
    }

    /// The snapshot rows' overrides, parsed.
    pub(crate) fn overrides(&self) -> Result<Vec<(String, CustomerOverride)>, LiveError> {
        self.snapshot.iter().map(|(customer, text)| Ok((customer.clone(), parse_consent_snapshot(customer, text)?))).collect()
    }
}

/// An event as an import inserts it: (kind, event id, body).
pub(crate) type ImportEvent = (EventKind, String, String);

/// Events, audit lines, plan activations and the compaction point of an old
/// log or store, ready for the import's one transaction.
#[derive(Debug, Default)]
pub(crate) struct ImportRows {
    pub events: Vec<ImportEvent>,
    /// (customer id, body).
    pub audit: Vec<(String, String)>,
    /// An activation history, oldest first: imported only into a database
    /// that has none (appended after another history it would change the
    /// active plan).
    pub activations: Vec<Activation>,
    /// How far the old store's compaction had deleted inventory events
    /// ([`super::LiveDb::inventory_compacted`]): the database's point moves
    /// up to it, so a version saved before it is refused there too.
    pub inventory_compacted: Option<chrono::DateTime<chrono::Utc>>,
    /// Another store's events moving into a database that may already hold
    /// consent facts: a consent event of a customer it holds facts for
    /// keeps only its objections ([`super::import::events_to_insert`]),
    /// decided in the import's transaction, under the lock every event is
    /// recorded under. Why there: a withdrawal another replica records
    /// while the import is prepared must be known when the grant is
    /// dropped, else the grant, folded after it, would undo it.
    pub objections_only_where_known: bool,
}

impl ImportRows {
    /// How many rows the import adds (recorded in `allot_imports`) when
    /// `events` of its events go in.
    pub fn len_with(&self, events: usize) -> i64 {
        (events + self.audit.len() + self.activations.len()) as i64
    }
}

/// What an erasure removed, and the objection it kept.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Erased {
    /// Audit records (decisions shown) deleted.
    pub audit_records: u64,
    /// Consent events (personal overrides) deleted.
    pub consent_events: u64,
    /// The customer's withdrawn consent or suppression, kept as their only
    /// consent fact ([`CustomerOverride::objection`]).
    pub objection: Option<CustomerOverride>,
}

/// Why an old activation history was not imported: the database holds
/// activations of its own, and the history appended after them would change
/// the active plan.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database already holds {existing} plan activations: importing {file}'s history after them would change the active plan \
     (to keep the database's history, rename {file} with the suffix .imported)"
)]
pub struct HistoryExists {
    /// The file whose history was to be imported.
    pub file: String,
    /// Activations already recorded.
    pub existing: i64,
}
