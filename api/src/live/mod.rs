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

pub mod audit_store;
mod error;
pub(crate) mod fault;
pub mod import;
mod pg;
pub(crate) mod rows;
pub(crate) mod schema;
pub(crate) mod sql;
mod sqlite;

use std::path::Path;

use allot_scenarios::plans::store::{rollback_target, Activation};
use allot_scenarios::{PlanStore, StoreError};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

pub use error::{ActivationError, LiveError};
pub use fault::FAULT_ENV;
pub(crate) use rows::ImportRows;
pub use rows::{Changes, Erased, EventKind, HistoryExists, Recorded, StoredEvent};
pub use audit_store::AuditBatch;
use audit_store::MERGE_AT;
use sql::Sql;

use crate::shared::SharedLive;

/// The activation of version `id`, when its manifest reads and it was saved
/// after every inventory event compaction deleted (`compacted`: see
/// [`LiveDb::inventory_compacted`]); else why not.
fn servable(store: &PlanStore, id: &str, action: &str, compacted: Option<DateTime<Utc>>) -> Result<Activation, StoreError> {
    moves_kept(store, id, compacted)?;
    Ok(Activation { plan_id: id.to_string(), at: Utc::now(), action: action.to_string() })
}

/// Refuses version `id` of `store` when its manifest cannot be read, or it
/// was saved before the inventory events compaction deleted (up to
/// `compacted`): served, it would count stock that has left. The one check
/// of activation, rollback, an experiment's version and a store error's
/// stand-in.
pub(crate) fn moves_kept(store: &PlanStore, id: &str, compacted: Option<DateTime<Utc>>) -> Result<(), StoreError> {
    let saved = store.manifest(id)?.created_at;
    let Some(upto) = compacted else { return Ok(()) };
    if saved < upto {
        return Err(StoreError::MovesCompacted { id: id.to_string(), saved: saved.to_rfc3339(), compacted: upto.to_rfc3339() });
    }
    Ok(())
}

/// A check an event must pass in the transaction that records it, given how
/// far compaction has deleted stock moves ([`LiveDb::record_event_if`]).
pub type CompactionGuard<'a> = &'a dyn Fn(Option<DateTime<Utc>>) -> Result<(), StoreError>;

/// [`LiveDb::inventory_compacted`], read in transaction `sql`.
fn inventory_compacted_in(sql: &mut dyn Sql) -> Result<Option<DateTime<Utc>>, LiveError> {
    let rows = sql.rows(schema::INVENTORY_COMPACTED, &[])?;
    let Some(text) = rows.into_iter().next().and_then(|r| r.into_iter().next()).map(sql::Cell::into_text) else { return Ok(None) };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| LiveError::Corrupt { table: "allot_inventory_compacted", reason: format!("upto {text:?}: {e}") })
}

/// Records in transaction `sql` that compaction deleted inventory events
/// received up to `newest` (the point only moves forward).
pub(crate) fn note_inventory_compacted(sql: &mut dyn Sql, newest: DateTime<Utc>) -> Result<(), LiveError> {
    let upto = inventory_compacted_in(sql)?.map_or(newest, |before| before.max(newest));
    sql.exec(schema::SET_INVENTORY_COMPACTED, &[sql::Param::Text(&upto.to_rfc3339())])?;
    Ok(())
}

/// The time `span` before `now` (the earliest time when `span` reaches
/// past it): the cutoff of audit retention and of event compaction alike.
pub(crate) fn time_before(now: DateTime<Utc>, span: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span).ok().and_then(|d| now.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

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
        let db = LiveDb { backend: Backend::Sqlite(sqlite::SqliteLive::open(&dir.join(LIVE_DB_FILE))?) };
        db.move_legacy_audit()?;
        Ok(db)
    }

    /// The embedded database of the plan store `dir` when it has one (none is
    /// created): what an import into PostgreSQL reads.
    pub(crate) fn open_existing_file(dir: &Path) -> Result<Option<Self>, LiveError> {
        let Some(db) = sqlite::SqliteLive::open_existing(&dir.join(LIVE_DB_FILE))? else { return Ok(None) };
        let db = LiveDb { backend: Backend::Sqlite(db) };
        db.move_legacy_audit()?;
        Ok(Some(db))
    }

    /// The database replicas share (the caller imports the old file mode's
    /// logs too, so starting with `--database` never drops them).
    pub fn open_shared(shared: Arc<SharedLive>) -> Result<Self, LiveError> {
        let audit = Mutex::new(shared.reconnect()?);
        let db = LiveDb { backend: Backend::Postgres { shared, audit } };
        db.move_legacy_audit()?;
        Ok(db)
    }

    /// Moves the records of the audit table of migrations 0001-0003 (a row
    /// per record) into chunks, a batch per transaction, once.
    fn move_legacy_audit(&self) -> Result<(), LiveError> {
        let replica = self.replica();
        let mut moved = 0;
        loop {
            let n = self.transaction(|sql| audit_store::move_legacy_rows(sql, &replica))?;
            if n == 0 {
                break;
            }
            moved += n;
        }
        if moved > 0 {
            tracing::info!("moved {moved} audit records of the old one-row-per-record table into chunks in {}", self.location());
        }
        Ok(())
    }

    /// The name this process writes in the `replica` columns.
    fn replica(&self) -> String {
        match &self.backend {
            Backend::Sqlite(_) => sqlite::REPLICA.to_string(),
            Backend::Postgres { shared, .. } => shared.replica().to_string(),
        }
    }

    /// Runs `f` in one transaction on the maintenance connection (the audit
    /// writer's), committed when it succeeds.
    pub(crate) fn transaction<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, LiveError>) -> Result<T, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.transaction(f),
            Backend::Postgres { shared, audit } => {
                let mut client = audit.lock().unwrap_or_else(|e| e.into_inner());
                if client.is_closed() {
                    // The database restarted: a new connection, or this work waits for the retry.
                    *client = shared.reconnect()?;
                }
                let mut tx = client.transaction().map_err(|e| LiveError::Shared(e.into()))?;
                let out = f(&mut pg::PgSql { tx: &mut tx })?;
                tx.commit().map_err(|e| LiveError::Shared(e.into()))?;
                Ok(out)
            }
        }
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
        Ok(self.record_event_if(kind, event_id, body, None)?.expect("no guard refuses"))
    }

    /// [`Self::record_event`], refused by `guard` (its error, nothing
    /// recorded) when given: the guard reads how far compaction has deleted
    /// stock moves inside the transaction that records the event, under the
    /// lock compaction and activation take, so no compaction slips between
    /// the check and the event (an experiment's start of a version).
    pub fn record_event_if(&self, kind: EventKind, event_id: &str, body: &str, guard: Option<CompactionGuard<'_>>) -> Result<Result<Recorded, StoreError>, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.record_event(kind.as_str(), event_id, body, guard),
            Backend::Postgres { shared, .. } => {
                let mut check = guard.map(|guard| move |tx: &mut postgres::Transaction<'_>| Ok(guard(pg::inventory_compacted(tx)?)));
                type Check<'c> = &'c mut dyn FnMut(&mut postgres::Transaction<'_>) -> Result<Result<(), StoreError>, crate::shared::SharedError>;
                Ok(shared.record_event(kind.as_str(), event_id, body, check.as_mut().map(|c| c as Check<'_>))?)
            }
        }
    }

    /// What a replica that applied every event up to `seq` folds next
    /// ([`schema::CHANGES_AFTER`]).
    pub fn changes_after(&self, seq: i64) -> Result<Changes, LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.changes_after(seq),
            Backend::Postgres { shared, .. } => Ok(shared.changes_after(seq)?),
        }
    }

    /// Every event after `seq`, in order.
    pub fn events_after(&self, seq: i64) -> Result<Vec<StoredEvent>, LiveError> {
        Ok(self.changes_after(seq)?.events)
    }

    /// Stores a batch of audit records in one transaction; then, when
    /// [`MERGE_AT`] chunks wait for the postings, merges them (in transactions
    /// of their own, so a failed merge never loses the records just stored).
    pub fn append_audit(&self, batch: &AuditBatch) -> Result<(), LiveError> {
        if batch.is_empty() {
            return Ok(());
        }
        let replica = self.replica();
        let chunks = audit_store::stored_chunks(batch);
        let waiting = self.transaction(|sql| audit_store::insert_chunks(sql, &chunks, &replica))?;
        if waiting >= MERGE_AT {
            while self.transaction(audit_store::merge)? > 0 {}
        }
        Ok(())
    }

    /// Every audit record of one customer, oldest first: their bucket's
    /// postings, the chunks not merged yet, then only the chunks holding
    /// their records ([`audit_store`]).
    pub fn audit_of(&self, customer_id: &str) -> Result<Vec<String>, LiveError> {
        self.transaction(|sql| audit_store::records_of(sql, customer_id))
    }

    /// The audit records (with their customers) of every chunk whose newest
    /// record was served at or after `since`, oldest chunk first.
    pub fn audit_since(&self, since: DateTime<Utc>) -> Result<Vec<(String, String)>, LiveError> {
        let since = audit_store::time_text(since);
        self.transaction(|sql| audit_store::records_since(sql, &since))
    }

    /// Deletes the audit records served before `cutoff` (audit retention) by
    /// whole chunks (a chunk goes once its newest record is older: a flush's
    /// worth of records, so at most the flush interval late), a batch per
    /// transaction so an event never waits long behind it; returns how many
    /// records went.
    pub fn delete_audit_before(&self, cutoff: DateTime<Utc>) -> Result<u64, LiveError> {
        self.delete_audit_in_batches(cutoff, audit_store::RETENTION_BATCH)
    }

    /// [`LiveDb::delete_audit_before`], `batch` chunks per transaction.
    pub(crate) fn delete_audit_in_batches(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64, LiveError> {
        let cutoff = audit_store::time_text(cutoff);
        let mut total = 0;
        loop {
            let (chunks, records) = self.transaction(|sql| audit_store::delete_before(sql, &cutoff, batch))?;
            total += records as u64;
            if chunks < batch {
                return Ok(total);
            }
        }
    }

    /// Erases one customer's personal data (right to erasure): their audit
    /// records and their consent events, and records the erasure itself as
    /// `record(what was removed)` (an audit record of no customer), all in
    /// one transaction.
    pub fn erase_customer(&self, customer_id: &str, record: impl FnOnce(Erased) -> String) -> Result<Erased, LiveError> {
        let replica = self.replica();
        self.transaction(|sql| audit_store::erase(sql, customer_id, &replica, record))
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
        self.change_activation(|_, compacted| servable(store, id, "activate", compacted))
    }

    /// Re-activates the version active before the current one, by
    /// [`rollback_target`] (successive rollbacks walk back). Nothing is
    /// recorded when there is none or it can no longer be read.
    pub fn rollback(&self, store: &PlanStore) -> Result<Activation, ActivationError> {
        self.change_activation(|history, compacted| {
            let target = rollback_target(history.iter().map(|a| (a.action.as_str(), a.plan_id.as_str())))?;
            servable(store, target, "rollback", compacted)
        })
    }

    /// How far compaction has deleted inventory events: every one received
    /// at or before this time may be gone (`None`: none was deleted). A
    /// version saved before it is not activated ([`StoreError::MovesCompacted`]).
    pub fn inventory_compacted(&self) -> Result<Option<DateTime<Utc>>, LiveError> {
        self.transaction(inventory_compacted_in)
    }

    /// The one code path of [`Self::activate`] and [`Self::rollback`]: the
    /// backend reads the history and how far compaction has deleted stock
    /// moves, `decide` names the row to add (or refuses), the backend adds
    /// it, all in one transaction that excludes other activations and
    /// compactions (so no compaction deletes what the version decided on
    /// needs between the check and the row: see [`crate::events::EventLog::compact`]).
    fn change_activation(&self, decide: impl FnOnce(&[Activation], Option<DateTime<Utc>>) -> Result<Activation, StoreError>) -> Result<Activation, ActivationError> {
        Ok(match &self.backend {
            Backend::Sqlite(db) => db.change_activation(decide)??,
            Backend::Postgres { shared, .. } => {
                shared.change_activation(|tx, history| Ok(decide(history, pg::inventory_compacted(tx)?))).map_err(LiveError::from)??
            }
        })
    }

    /// Every audit record with its customer, oldest first (the embedded
    /// database only: what moves into PostgreSQL when a store switches to
    /// `--database`; empty for PostgreSQL).
    pub(crate) fn all_audit(&self) -> Result<Vec<(String, String)>, LiveError> {
        match &self.backend {
            Backend::Sqlite(_) => self.transaction(audit_store::all_records),
            Backend::Postgres { .. } => Ok(Vec::new()),
        }
    }

    /// Whether the event (`kind`, `id`) is recorded.
    pub(crate) fn has_event(&self, kind: EventKind, id: &str) -> Result<bool, LiveError> {
        let rows = self.transaction(|sql| sql.rows("SELECT 1 FROM allot_events WHERE kind = $1 AND event_id = $2", &[sql::Param::Text(kind.as_str()), sql::Param::Text(id)]))?;
        Ok(!rows.is_empty())
    }

    /// How many rows the import of `file` added, when it was imported.
    pub(crate) fn imported_rows(&self, file: &str) -> Result<Option<i64>, LiveError> {
        let rows = self.transaction(|sql| sql.rows("SELECT rows FROM allot_imports WHERE file = $1", &[sql::Param::Text(file)]))?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).map(|c| c.int()))
    }

    /// Whether `file` was imported before.
    pub(crate) fn imported(&self, file: &str) -> Result<bool, LiveError> {
        Ok(self.imported_rows(file)?.is_some())
    }

    /// Imports the rows of one old file in one transaction, recording the file
    /// as imported in the same transaction; an event already recorded is kept.
    pub(crate) fn import(&self, file: &str, rows: &ImportRows) -> Result<(), LiveError> {
        match &self.backend {
            Backend::Sqlite(db) => db.import(file, rows),
            Backend::Postgres { shared, .. } => {
                let replica = shared.replica().to_string();
                Ok(shared.import(file, rows, |tx| pg::events_to_insert(tx, rows), |tx| pg::import_rest(tx, rows, &replica))?)
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    /// A database made by a build before the audit moved into chunks (its
    /// migrations 1-3 only, a row per record) opens with every record
    /// readable, in order, and the old table gone.
    #[test]
    fn records_of_the_old_one_row_per_record_table_move_into_chunks_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = rusqlite::Connection::open(dir.path().join(LIVE_DB_FILE)).unwrap();
            conn.execute_batch("CREATE TABLE allot_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT 'x')").unwrap();
            for &(version, sql) in &schema::MIGRATIONS[..3] {
                conn.execute_batch(&schema::render(sql, schema::Dialect::Sqlite)).unwrap();
                conn.execute("INSERT INTO allot_schema_migrations (version) VALUES (?1)", [version]).unwrap();
            }
            conn.execute_batch("BEGIN").unwrap();
            for i in 0..12_000 {
                let customer = format!("C{}", i % 7);
                let body = format!(r#"{{"at":"2026-11-01T00:00:{:02}.000000Z","customer_id":"{customer}","v":"{i:06}","o":[]}}"#, i % 60);
                conn.execute("INSERT INTO allot_audit (customer_id, body, replica) VALUES (?1, ?2, 'old')", [&customer, &body]).unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        let db = LiveDb::open_file(dir.path()).unwrap();
        let versions = |c: &str| -> Vec<usize> {
            db.audit_of(c).unwrap().iter().map(|l| l.split(r#""v":""#).nth(1).unwrap()[..6].parse().unwrap()).collect()
        };
        assert_eq!(versions("C3"), (0..12_000).filter(|i| i % 7 == 3).collect::<Vec<_>>());
        assert_eq!(db.all_audit().unwrap().len(), 12_000);
        drop(db);
        let conn = rusqlite::Connection::open(dir.path().join(LIVE_DB_FILE)).unwrap();
        let old: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'allot_audit'", [], |r| r.get(0)).unwrap();
        assert_eq!(old, 0, "the old table is dropped");
        drop(conn);
        // Opening again moves nothing twice.
        let db = LiveDb::open_file(dir.path()).unwrap();
        assert_eq!(db.all_audit().unwrap().len(), 12_000);
    }

    /// Chunk bodies are stored compressed, and read back whole: by a
    /// customer's access request, by an erasure (which blanks a record in
    /// a compressed chunk and stores it compressed again), and whole; a
    /// chunk an older build stored plain reads and erases the same way.
    #[test]
    fn audit_chunks_are_stored_compressed_and_plain_ones_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = LiveDb::open_file(dir.path()).unwrap();
        let record = |customer: &str, i: usize| format!(r#"{{"at":{i},"customer_id":"{customer}","v":"000001","o":[["O00012",0.895752,0.1144]],"r":["not_selected:budget"],"x":[["O00002",0]]}}"#);
        let mut batch = AuditBatch::default();
        for i in 0..400 {
            let customer = format!("C{}", i % 4);
            batch.push(&customer, Utc::now(), record(&customer, i).as_bytes());
        }
        db.append_audit(&batch).unwrap();
        // An older build's chunk: its body as the records themselves.
        let plain = format!("{}\n{}\n", record("C1", 1000), record("C9", 1001));
        let lines: Vec<u8> = [(audit_store::customer_hash("C1"), 0u32, record("C1", 1000).len() as u32), (audit_store::customer_hash("C9"), record("C1", 1000).len() as u32 + 1, record("C9", 1001).len() as u32)]
            .iter()
            .flat_map(|&(h, o, l)| [h.to_le_bytes(), o.to_le_bytes(), l.to_le_bytes()].concat())
            .collect();
        let raw = |conn: &rusqlite::Connection| -> Vec<Vec<u8>> {
            let mut rows = conn.prepare("SELECT body FROM allot_audit_chunks ORDER BY id").unwrap();
            rows.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        {
            let conn = rusqlite::Connection::open(dir.path().join(LIVE_DB_FILE)).unwrap();
            let id: i64 = conn
                .query_row("INSERT INTO allot_audit_chunks (newest_at, records, lines, body, replica) VALUES ('2026-12-07T00:00:00.000000Z', 2, ?1, ?2, 'old') RETURNING id", rusqlite::params![lines, plain.as_bytes()], |r| r.get(0))
                .unwrap();
            conn.execute("INSERT INTO allot_audit_unindexed (chunk) VALUES (?1)", [id]).unwrap();
            let bodies = raw(&conn);
            assert!(bodies[0].starts_with(&[0x28, 0xB5, 0x2F, 0xFD]), "a zstd frame");
            assert!(bodies[0].len() * 5 < batch.len() * record("C0", 0).len(), "compressed: {} bytes", bodies[0].len());
        }
        assert_eq!(db.audit_of("C2").unwrap(), (0..400).filter(|i| i % 4 == 2).map(|i| record("C2", i)).collect::<Vec<_>>());
        assert_eq!(db.audit_of("C1").unwrap().len(), 101, "100 compressed and one plain");
        assert_eq!(db.audit_of("C9").unwrap(), [record("C9", 1001)]);
        assert_eq!(db.all_audit().unwrap().len(), 402);
        // Erasing C1 blanks records in both kinds of chunk.
        let erased = db.transaction(|sql| audit_store::erase(sql, "C1", "test", |_| "{}".to_string())).unwrap();
        assert_eq!(erased.audit_records, 101);
        assert!(db.audit_of("C1").unwrap().is_empty());
        assert_eq!(db.audit_of("C3").unwrap().len(), 100, "the others' records stay");
        assert_eq!(db.audit_of("C9").unwrap(), [record("C9", 1001)]);
        let conn = rusqlite::Connection::open(dir.path().join(LIVE_DB_FILE)).unwrap();
        assert!(raw(&conn).iter().all(|b| b.starts_with(&[0x28, 0xB5, 0x2F, 0xFD])), "stored compressed again, the plain chunk too");
    }
}
