//! Live events (inventory movements, consent changes) and the audit log: by
//! default append-only files in the plan store; with `allot serve --database`,
//! tables in PostgreSQL shared by every replica ([`crate::shared`]). What is
//! folded from them in memory is the same either way.
//!
//! Why files with fsync: an event is acknowledged only after its line is on disk,
//! and the whole log is replayed on start, so a restart (or a crash) loses no
//! acknowledged event. A torn last line (a crash mid-append, never acknowledged)
//! is skipped on replay. Event ids make posting idempotent: a repeated id is
//! acknowledged again and not applied twice.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::decide::{CustomerOverride, Decision};
use crate::index::StockMove;
use crate::shared::{SharedError, SharedLive};

/// File name of the event log in the store.
pub const EVENTS_FILE: &str = "events.jsonl";
/// File name of the decision audit log in the store.
pub const AUDIT_FILE: &str = "audit.jsonl";

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
pub struct InventoryEvent {
    /// Unique id from the sender; repeats are acknowledged and ignored.
    #[schema(min_length = 1)]
    pub event_id: String,
    /// What happened.
    pub kind: InventoryKind,
    /// Warehouse.
    #[schema(min_length = 1)]
    pub warehouse_id: String,
    /// SKU.
    #[schema(min_length = 1)]
    pub sku: String,
    /// Units (see [`InventoryKind`] for the sign).
    pub qty: f64,
    /// For orders: the tier of the ordering customer, so it consumes that tier's reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

impl InventoryEvent {
    /// Checks what serde cannot: sign and finiteness.
    pub fn validate(&self) -> Result<(), String> {
        if self.event_id.trim().is_empty() {
            return Err("event_id must not be empty".to_string());
        }
        if !self.qty.is_finite() {
            return Err("qty must be a finite number".to_string());
        }
        if self.kind != InventoryKind::Adjustment && self.qty <= 0.0 {
            return Err(format!("qty must be positive for a {:?} (got {})", self.kind, self.qty).to_lowercase());
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
pub struct ConsentEvent {
    /// Unique id from the sender; repeats are acknowledged and ignored.
    #[schema(min_length = 1)]
    pub event_id: String,
    /// The customer.
    #[schema(min_length = 1)]
    pub customer_id: String,
    /// Personalization consent (`false` = withdrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<bool>,
    /// Service-recovery suppression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<bool>,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum LoggedEvent {
    Inventory { received_at: DateTime<Utc>, event: InventoryEvent },
    Consent { received_at: DateTime<Utc>, event: ConsentEvent },
}

/// Where events are made durable.
#[derive(Debug)]
enum EventStore {
    /// `events.jsonl` in the plan store, fsynced per event.
    File { path: PathBuf, file: File },
    /// PostgreSQL, shared with the other replicas.
    Shared(Arc<SharedLive>),
}

/// The event log and everything folded from it.
#[derive(Debug)]
pub struct EventLog {
    store: EventStore,
    /// Sequence number of the last shared event folded (0 for the file log).
    applied_seq: i64,
    seen: HashSet<String>,
    inventory: Vec<(DateTime<Utc>, StockMove)>,
    customers: HashMap<String, CustomerOverride>,
}

/// Whether an event was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Logged and applied.
    New,
    /// Its id was seen before; nothing changed.
    Duplicate,
}

impl EventLog {
    /// Opens (creating) the log in `dir` and replays it.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(EVENTS_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut log = EventLog::empty(EventStore::File { path: path.clone(), file });
        for line in BufReader::new(File::open(&path)?).lines() {
            // A line that does not parse is a torn final append: never acknowledged.
            if let Ok(event) = serde_json::from_str::<LoggedEvent>(&line?) {
                log.fold(event);
            }
        }
        Ok(log)
    }

    /// The log in PostgreSQL, with every event recorded so far folded in.
    pub fn open_shared(shared: Arc<SharedLive>) -> Result<Self, SharedError> {
        let mut log = EventLog::empty(EventStore::Shared(shared));
        log.catch_up()?;
        Ok(log)
    }

    fn empty(store: EventStore) -> Self {
        EventLog { store, applied_seq: 0, seen: HashSet::new(), inventory: Vec::new(), customers: HashMap::new() }
    }

    /// Where the log is kept, for messages.
    pub fn location(&self) -> String {
        match &self.store {
            EventStore::File { path, .. } => path.display().to_string(),
            EventStore::Shared(db) => format!("PostgreSQL (replica {})", db.replica()),
        }
    }

    /// The shared state, when the log is in PostgreSQL.
    pub fn shared(&self) -> Option<&Arc<SharedLive>> {
        match &self.store {
            EventStore::Shared(db) => Some(db),
            EventStore::File { .. } => None,
        }
    }

    /// Sequence number of the last shared event folded in.
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq
    }

    /// Folds every shared event recorded (by any replica) since the last one
    /// folded, in their shared order; returns how many. Nothing to do for the
    /// file log, which only this process writes.
    pub fn catch_up(&mut self) -> Result<usize, SharedError> {
        let EventStore::Shared(db) = &self.store else { return Ok(0) };
        let events = db.events_after(self.applied_seq)?;
        for stored in &events {
            let event = serde_json::from_str::<LoggedEvent>(&stored.body)
                .map_err(|e| SharedError::Corrupt { table: "allot_events", reason: format!("seq {}: {e}", stored.seq) })?;
            self.fold(event);
            self.applied_seq = stored.seq;
        }
        Ok(events.len())
    }

    fn fold(&mut self, event: LoggedEvent) {
        match event {
            LoggedEvent::Inventory { received_at, event } => {
                self.seen.insert(event.event_id.clone());
                self.inventory.push((received_at, event.stock_move()));
            }
            LoggedEvent::Consent { event, .. } => {
                self.seen.insert(event.event_id.clone());
                let o = self.customers.entry(event.customer_id).or_default();
                o.consent = event.consent.or(o.consent);
                o.suppressed = event.suppressed.or(o.suppressed);
            }
        }
    }

    fn append(&mut self, event: LoggedEvent, id: &str) -> std::io::Result<Applied> {
        if self.seen.contains(id) {
            return Ok(Applied::Duplicate);
        }
        let mut line = serde_json::to_vec(&event).map_err(std::io::Error::other)?;
        match &mut self.store {
            EventStore::File { file, .. } => {
                line.push(b'\n');
                file.write_all(&line)?;
                file.sync_data()?;
                self.fold(event);
                Ok(Applied::New)
            }
            EventStore::Shared(db) => {
                let body = String::from_utf8(line).map_err(std::io::Error::other)?;
                let new = db.append_event(id, &body)?;
                // Ours is folded with any earlier ones from other replicas, in order.
                self.catch_up()?;
                Ok(if new.is_some() { Applied::New } else { Applied::Duplicate })
            }
        }
    }

    /// Logs (fsynced) and applies an inventory event.
    pub fn record_inventory(&mut self, event: InventoryEvent) -> std::io::Result<Applied> {
        let id = event.event_id.clone();
        self.append(LoggedEvent::Inventory { received_at: Utc::now(), event }, &id)
    }

    /// Logs (fsynced) and applies a consent event.
    pub fn record_consent(&mut self, event: ConsentEvent) -> std::io::Result<Applied> {
        let id = event.event_id.clone();
        self.append(LoggedEvent::Consent { received_at: Utc::now(), event }, &id)
    }

    /// Inventory movements received after `since` (a plan's stock is as of its save).
    pub(crate) fn moves_since(&self, since: DateTime<Utc>) -> impl Iterator<Item = &StockMove> {
        self.inventory.iter().filter(move |(at, _)| *at > since).map(|(_, m)| m)
    }

    /// The live overrides of every customer with a consent event.
    pub fn customer_overrides(&self) -> &HashMap<String, CustomerOverride> {
        &self.customers
    }
}

/// One line of the audit log: what a customer was shown and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// When it was served.
    pub at: DateTime<Utc>,
    /// The decision as served (customer, plan version, fallback flag, offers and exclusions).
    #[serde(flatten)]
    pub decision: Decision,
}

/// The audit log. Why a shared buffer and a timer: a decision must never wait
/// on the disk, and waking a writer per decision costs a system call each (a
/// quarter of the service's CPU under load, measured). Requests append their
/// serialized line to an in-memory buffer; a writer thread moves the buffer to
/// the file every [`AUDIT_FLUSH_INTERVAL`] and on drop. A crash can lose at most
/// that interval of audit lines (never an event: those are fsynced).
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<AuditShared>,
}

#[derive(Debug)]
struct AuditShared {
    pending: Mutex<Vec<u8>>,
    sink: AuditSink,
    stop: AtomicBool,
}

/// Where audit lines go.
enum AuditSink {
    /// `audit.jsonl` in the plan store.
    File { path: PathBuf, file: Mutex<File> },
    /// The `allot_audit` table, through a connection of the writer's own.
    Shared { shared: Arc<SharedLive>, client: Mutex<postgres::Client> },
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

impl AuditSink {
    fn location(&self) -> String {
        match self {
            AuditSink::File { path, .. } => path.display().to_string(),
            AuditSink::Shared { shared, .. } => format!("PostgreSQL (replica {})", shared.replica()),
        }
    }
}

/// How often buffered audit lines are written to the file.
pub const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_millis(50);

impl AuditShared {
    fn flush(&self) -> std::io::Result<()> {
        match &self.sink {
            AuditSink::File { file, .. } => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                let lines = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
                file.write_all(&lines)
            }
            AuditSink::Shared { shared, client } => {
                let mut client = client.lock().unwrap_or_else(|e| e.into_inner());
                let bytes = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<&str> = text.lines().collect();
                if let Err(e) = SharedLive::append_audit(&mut client, shared.replica(), &lines) {
                    // Keep the lines for the next flush, ahead of newer ones.
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    let newer = std::mem::replace(&mut *pending, bytes);
                    pending.extend_from_slice(&newer);
                    return Err(e.into());
                }
                Ok(())
            }
        }
    }
}

impl AuditLog {
    /// Opens (creating) the audit log in `dir` and starts its writer.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(AUDIT_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Self::start(AuditSink::File { path, file: Mutex::new(file) })
    }

    /// The audit log in PostgreSQL, shared by every replica.
    pub fn open_shared(shared: Arc<SharedLive>) -> std::io::Result<Self> {
        let client = shared.reconnect()?;
        Self::start(AuditSink::Shared { shared, client: Mutex::new(client) })
    }

    fn start(sink: AuditSink) -> std::io::Result<Self> {
        let shared = Arc::new(AuditShared { pending: Mutex::new(Vec::new()), sink, stop: AtomicBool::new(false) });
        let writer = shared.clone();
        std::thread::Builder::new().name("allot-audit".to_string()).spawn(move || {
            while !writer.stop.load(Ordering::Relaxed) {
                std::thread::sleep(AUDIT_FLUSH_INTERVAL);
                if let Err(e) = writer.flush() {
                    eprintln!("allot serve: audit log {}: {e}", writer.sink.location());
                }
            }
        })?;
        Ok(AuditLog { shared })
    }

    /// Queues a served decision, already serialized as a JSON object.
    pub fn record_json(&self, decision_json: &[u8]) {
        let at = serde_json::to_string(&Utc::now()).unwrap_or_default();
        let body = decision_json.strip_prefix(b"{").unwrap_or(decision_json);
        let mut pending = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(b"{\"at\":");
        pending.extend_from_slice(at.as_bytes());
        if body != b"}" {
            pending.push(b',');
        }
        pending.extend_from_slice(body);
        pending.push(b'\n');
    }

    /// Every decision served to one customer, oldest first (a data-subject
    /// access request: a scan of the log, which is rare and may be slow).
    pub fn decisions_of(&self, customer_id: &str) -> std::io::Result<Vec<AuditRecord>> {
        self.shared.flush()?;
        let mut out = Vec::new();
        let mut keep = |line: &str| {
            if let Ok(r) = serde_json::from_str::<AuditRecord>(line) {
                if r.decision.customer_id == customer_id {
                    out.push(r);
                }
            }
        };
        match &self.shared.sink {
            AuditSink::File { path, .. } => {
                let needle = format!("\"customer_id\":{}", serde_json::to_string(customer_id).map_err(std::io::Error::other)?);
                for line in BufReader::new(File::open(path)?).lines() {
                    let line = line?;
                    if line.contains(&needle) {
                        keep(&line);
                    }
                }
            }
            AuditSink::Shared { shared, .. } => shared.audit_of(customer_id)?.iter().for_each(|line| keep(line)),
        }
        Ok(out)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.shared.flush();
    }
}
