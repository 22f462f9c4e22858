//! The live state's one store: events (inventory and consent), the audit, the
//! plan activations (which version is served, and the history a rollback
//! walks back through) and the planning jobs, in a database with
//! one schema (`api/migrations/`, rendered per dialect by [`schema`]):
//! SQLite in the plan store (`live.db`, the default) or PostgreSQL shared by
//! every replica (`allot serve --database`, [`crate::shared`]). Everything
//! above this module (the fold into memory, idempotency, the audit writer) is
//! one code path over [`LiveDb`].
//!
//! Why a database and not appended files: a transaction either commits whole
//! or not at all, so a crash mid-write never leaves a torn record that hides
//! the next one, and an event id is recorded in the same transaction as the
//! event itself, so a retry can never apply it twice. An event is
//! acknowledged only after its transaction commits (`synchronous=FULL`).
//!
//! Activations: the active plan is the newest row of
//! `allot_plan_activations`. [`LiveDb::activate`] and [`LiveDb::rollback`]
//! read the history, decide by one rule (the version must be readable in the
//! plan store; a rollback follows [`rollback_target`]) and record the row, in
//! one transaction that excludes every other activation (SQLite `BEGIN
//! IMMEDIATE`, PostgreSQL an advisory lock): concurrent activations from
//! threads, processes (the CLI) and replicas serialize, and a refused one
//! records nothing. Plan payloads stay immutable files in the store.

mod error;
pub(crate) mod fault;
pub mod import;
pub(crate) mod rows;
pub(crate) mod schema;
mod sqlite;

use std::path::Path;

use allot_scenarios::plans::store::{rollback_target, Activation};
use allot_scenarios::{PlanStore, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::{Arc, Mutex};

pub use error::{ActivationError, LiveError};
pub use fault::FAULT_ENV;
pub(crate) use rows::ImportRows;
pub use rows::{Erased, EventKind, HistoryExists, Recorded, StoredEvent};
use schema::{DELETE_AUDIT_BEFORE, ERASE_AUDIT, ERASE_CONSENT};

use crate::shared::SharedLive;

/// The row an activation adds for version `id`, once its manifest reads.
fn readable(store: &PlanStore, id: &str, action: &str) -> Result<Activation, StoreError> {
    store.manifest(id)?;
    Ok(Activation { plan_id: id.to_string(), at: Utc::now(), action: action.to_string() })
}

/// Audit records deleted per statement by retention.
pub const RETENTION_BATCH: u64 = 10_000;

/// File name of the embedded database in the plan store.
pub const LIVE_DB_FILE: &str = "live.db";

enum Backend {
    Sqlite(sqlite::SqliteLive),
    Postgres { shared: Arc<SharedLive>, audit: Mutex<postgres::Client> },
}

/// The live-state database, either backend.
pub struct LiveDb {
    backend: Backend,
}

impl std::fmt::Debug for LiveDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

impl LiveDb {
    /// The embedded database in the plan store `dir` (created `0600`,
    /// migrated). The caller imports the old file mode's logs
    /// ([`import::import_file_mode`]) before folding anything.
    pub fn open_file(dir: &Path) -> Result<Self, LiveError> {
        Ok(LiveDb { backend: Backend::Sqlite(sqlite::SqliteLive::open(&dir.join(LIVE_DB_FILE))?) })
    }

    /// The database replicas share (the caller imports the old file mode's
    /// logs too, so starting with `--database` never drops them).
    pub fn open_shared(shared: Arc<SharedLive>) -> Result<Self, LiveError> {
        let audit = Mutex::new(shared.reconnect()?);
        Ok(LiveDb { backend: Backend::Postgres { shared, audit } })
    }

    /// Where the state is kept, for messages.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite(db) => db.path().display().to_string(),
            Backend::Postgres { shared, .. } => format!("PostgreSQL (replica {})", shared.replica()),
        }
    }

    /// The shared state, when the database is PostgreSQL.
    pub fn shared(&self) -> Option<&Arc<SharedLive>> {
        match &self.backend {
            Backend::Postgres { shared, .. } => Some(shared),
            Backend::Sqlite(_) => None,
        }
    }

    /// Records an event unless its (kind, id) was recorded before; durable when
    /// this returns `New`.
    pub fn record_event(&self, kind: EventKind, event_id: &str, body: &str) -> Result<Recorded, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.record_event(kind.as_str(), event_id, body),
            Backend::Postgres { shared, .. } => Ok(shared.record_event(kind.as_str(), event_id, body)?),
        }
    }

    /// Every event after `seq`, in order.
    pub fn events_after(&self, seq: i64) -> Result<Vec<StoredEvent>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.events_after(seq),
            Backend::Postgres { shared, .. } => Ok(shared.events_after(seq)?),
        }
    }

    /// Appends audit lines (JSON objects with a `customer_id`), in one transaction.
    pub fn append_audit(&self, lines: &[&str]) -> Result<(), LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.append_audit(lines),
            Backend::Postgres { shared, audit } => {
                let mut client = audit.lock().unwrap_or_else(|e| e.into_inner());
                if client.is_closed() {
                    // The database restarted: a new connection, or this batch waits for the retry.
                    *client = shared.reconnect()?;
                }
                Ok(SharedLive::append_audit(&mut client, shared.replica(), lines)?)
            }
        }
    }

    /// Every audit line of one customer, oldest first (through the index on customer).
    pub fn audit_of(&self, customer_id: &str) -> Result<Vec<String>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.audit_of(customer_id),
            Backend::Postgres { shared, .. } => Ok(shared.audit_of(customer_id)?),
        }
    }

    /// Deletes the audit records served before `cutoff` (audit retention),
    /// [`RETENTION_BATCH`] at a time so an event never waits long behind it;
    /// returns how many. Records compare by their `at` text (RFC 3339, UTC),
    /// so a record in the cutoff's own second may go with it.
    pub fn delete_audit_before(&self, cutoff: DateTime<Utc>) -> Result<u64, LiveError> {
        let cutoff = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut total = 0;
        loop {
            let n = match &self.backend {
                Backend::Sqlite(db) => db.execute(DELETE_AUDIT_BEFORE, &cutoff)?,
                Backend::Postgres { audit, .. } => {
                    let mut client = audit.lock().unwrap_or_else(|e| e.into_inner());
                    client.execute(DELETE_AUDIT_BEFORE, &[&cutoff]).map_err(crate::shared::SharedError::from)?
                }
            };
            total += n;
            if n < RETENTION_BATCH {
                return Ok(total);
            }
        }
    }

    /// Erases one customer's personal data (right to erasure): their audit
    /// records and their consent events, and records the erasure itself as
    /// `record(what was removed)` (an audit line without the customer), all in
    /// one transaction.
    pub fn erase_customer(&self, customer_id: &str, record: impl FnOnce(Erased) -> String) -> Result<Erased, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.erase_customer(customer_id, record),
            Backend::Postgres { shared, audit } => {
                let mut client = audit.lock().unwrap_or_else(|e| e.into_inner());
                let run = |client: &mut postgres::Client| -> Result<Erased, postgres::Error> {
                    let mut tx = client.transaction()?;
                    let audit_records = tx.execute(ERASE_AUDIT, &[&customer_id])?;
                    let consent_events = tx.execute(ERASE_CONSENT, &[&customer_id])?;
                    let erased = Erased { audit_records, consent_events };
                    tx.execute("INSERT INTO allot_audit (customer_id, body, replica) VALUES ('', CAST($1::text AS jsonb), $2)", &[&record(erased), &shared.replica()])?;
                    tx.commit()?;
                    Ok(erased)
                };
                Ok(run(&mut client).map_err(crate::shared::SharedError::from)?)
            }
        }
    }

    /// Inserts or replaces a planning job's record.
    pub fn save_job(&self, job_id: &str, body: &str) -> Result<(), LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.save_job(job_id, body),
            Backend::Postgres { shared, .. } => Ok(shared.save_job(job_id, body)?),
        }
    }

    /// Deletes planning jobs' records (the oldest, beyond the list's bound).
    pub fn delete_jobs(&self, job_ids: &[String]) -> Result<(), LiveError> {
        const DELETE_JOB: &str = "DELETE FROM allot_jobs WHERE job_id = $1";
        for id in job_ids {
            match &self.backend {
                Backend::Sqlite(db) => db.execute(DELETE_JOB, id).map(drop)?,
                Backend::Postgres { audit, .. } => {
                    let mut client = audit.lock().unwrap_or_else(|e| e.into_inner());
                    client.execute(DELETE_JOB, &[id]).map(drop).map_err(crate::shared::SharedError::from)?
                }
            }
        }
        Ok(())
    }

    /// Every planning job's record.
    pub fn jobs(&self) -> Result<Vec<String>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.jobs(),
            Backend::Postgres { shared, .. } => Ok(shared.jobs()?),
        }
    }

    /// The active plan: the newest activation's sequence number and version.
    pub fn active_plan(&self) -> Result<Option<(i64, String)>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.active_plan(),
            Backend::Postgres { shared, .. } => Ok(shared.active_plan()?),
        }
    }

    /// Every activation and rollback, oldest first.
    pub fn activations(&self) -> Result<Vec<Activation>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.activations(),
            Backend::Postgres { shared, .. } => Ok(shared.activations()?),
        }
    }

    /// Makes version `id` of `store` the active plan. Nothing is recorded
    /// when the version is absent or its manifest cannot be read.
    pub fn activate(&self, store: &PlanStore, id: &str) -> Result<Activation, ActivationError> {
        self.change_activation(|_| readable(store, id, "activate"))
    }

    /// Re-activates the version active before the current one, by
    /// [`rollback_target`] (successive rollbacks walk back). Nothing is
    /// recorded when there is none or it can no longer be read.
    pub fn rollback(&self, store: &PlanStore) -> Result<Activation, ActivationError> {
        self.change_activation(|history| {
            let target = rollback_target(history.iter().map(|a| (a.action.as_str(), a.plan_id.as_str())))?;
            readable(store, target, "rollback")
        })
    }

    /// The one code path of [`Self::activate`] and [`Self::rollback`]: the
    /// backend reads the history, `decide` names the row to add (or refuses),
    /// the backend adds it, all in one exclusive transaction.
    fn change_activation(&self, decide: impl FnOnce(&[Activation]) -> Result<Activation, StoreError>) -> Result<Activation, ActivationError> {
        Ok(match &self.backend {
            Backend::Sqlite(db) => db.change_activation(decide)??,
            Backend::Postgres { shared, .. } => shared.change_activation(decide).map_err(LiveError::from)??,
        })
    }

    /// Every audit record with its customer, oldest first (the embedded
    /// database only: what moves into PostgreSQL when a store switches to
    /// `--database`; empty for PostgreSQL).
    pub(crate) fn all_audit(&self) -> Result<Vec<(String, String)>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.all_audit(),
            Backend::Postgres { .. } => Ok(Vec::new()),
        }
    }

    /// Whether `file` was imported before.
    pub(crate) fn imported(&self, file: &str) -> Result<bool, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.imported(file),
            Backend::Postgres { shared, .. } => Ok(shared.imported(file)?),
        }
    }

    /// Imports the rows of one old file in one transaction, recording the file
    /// as imported in the same transaction; an event already recorded is kept.
    pub(crate) fn import(&self, file: &str, rows: &ImportRows) -> Result<(), LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.import(file, rows),
            Backend::Postgres { shared, .. } => Ok(shared.import(file, rows)?),
        }
    }
}

