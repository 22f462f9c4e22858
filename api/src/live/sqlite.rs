//! The embedded backend of [`super::LiveDb`]: one SQLite file in the plan
//! store, WAL with `synchronous=FULL` (a commit is on disk when it returns),
//! used through one connection behind a mutex from blocking threads (one
//! writer at a time, which SQLite requires anyway).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use allot_scenarios::plans::store::Activation;
use allot_scenarios::StoreError;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use super::error::LiveError;
use super::CompactionGuard;
use super::fault::fault;
use super::sql::{Cell, Param, Sql};
use super::rows::{Changes, HistoryExists, ImportRows, Recorded};
use super::schema::{render, Dialect, ACTIVATIONS, ACTIVE_PLAN, COUNT_ACTIVATIONS, INSERT_ACTIVATION, MIGRATIONS};

/// The name this process records as `replica` (one writer: itself).
pub(super) const REPLICA: &str = "local";

pub(super) struct SqliteLive {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteLive {
    /// Opens (creating, readable by this user only) and migrates the database.
    pub(super) fn open(path: &Path) -> Result<Self, LiveError> {
        let err = |source| LiveError::Sqlite { path: path.to_path_buf(), source };
        create_private(path).map_err(|source| LiveError::Io { path: path.to_path_buf(), source })?;
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        migrate(&mut conn).map_err(err)?;
        Ok(SqliteLive { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    /// The database at `path` when the file exists (never created: a file
    /// another process just renamed away is not made again, empty).
    pub(super) fn open_existing(path: &Path) -> Result<Option<Self>, LiveError> {
        let err = |source| LiveError::Sqlite { path: path.to_path_buf(), source };
        let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX) {
            Ok(conn) => conn,
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::CannotOpen => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let mut conn = conn;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        migrate(&mut conn).map_err(err)?;
        Ok(Some(SqliteLive { path: path.to_path_buf(), conn: Mutex::new(conn) }))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LiveError + '_ {
        |source| LiveError::Sqlite { path: self.path.clone(), source }
    }

    pub(super) fn record_event(&self, kind: &str, event_id: &str, body: &str, guard: Option<CompactionGuard<'_>>) -> Result<Result<Recorded, StoreError>, LiveError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err())?;
        let existing: Option<String> = tx
            .query_row("SELECT body FROM allot_events WHERE kind = ?1 AND event_id = ?2", params![kind, event_id], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        if let Some(body) = existing {
            return Ok(Ok(Recorded::Existing(body)));
        }
        if let Some(guard) = guard {
            // This write transaction excludes every other: no compaction moves the point until it ends.
            if let Err(e) = guard(super::inventory_compacted_in(&mut SqliteSql { tx: &tx, path: &self.path })?) {
                return Ok(Err(e));
            }
        }
        tx.execute("INSERT INTO allot_events (kind, event_id, body, replica) VALUES (?1, ?2, ?3, ?4)", params![kind, event_id, body, REPLICA])
            .map_err(self.err())?;
        let seq = tx.last_insert_rowid();
        fault("before_commit");
        tx.commit().map_err(self.err())?;
        fault("after_commit");
        Ok(Ok(Recorded::New(seq)))
    }

    pub(super) fn changes_after(&self, seq: i64) -> Result<Changes, LiveError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(super::schema::CHANGES_AFTER).map_err(self.err())?;
        let mut rows = stmt.query([seq]).map_err(self.err())?;
        let mut changes = Changes::default();
        while let Some(r) = rows.next().map_err(self.err())? {
            changes.push(r.get(0).map_err(self.err())?, r.get(1).map_err(self.err())?, r.get(2).map_err(self.err())?, r.get(3).map_err(self.err())?);
        }
        Ok(changes)
    }

    /// Runs `f` in one immediate transaction through the [`Sql`] view,
    /// committing when it succeeds.
    pub(super) fn transaction<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T, LiveError>) -> Result<T, LiveError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err())?;
        let out = f(&mut SqliteSql { tx: &tx, path: &self.path })?;
        tx.commit().map_err(self.err())?;
        Ok(out)
    }

    /// Runs one of the statements both dialects share ([`super::schema`]) with a text parameter.
    pub(super) fn execute(&self, sql: &str, param: &str) -> Result<u64, LiveError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(self.err())?;
        stmt.execute([param]).map(|n| n as u64).map_err(self.err())
    }

    pub(super) fn save_job(&self, job_id: &str, body: &str) -> Result<(), LiveError> {
        self.conn()
            .execute(
                "INSERT INTO allot_jobs (job_id, body) VALUES (?1, ?2)
                 ON CONFLICT (job_id) DO UPDATE SET body = excluded.body, updated_at = (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                params![job_id, body],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    pub(super) fn jobs(&self) -> Result<Vec<String>, LiveError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT body FROM allot_jobs ORDER BY rowid").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    pub(super) fn active_plan(&self) -> Result<Option<(i64, String)>, LiveError> {
        self.conn().query_row(ACTIVE_PLAN, [], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(self.err())
    }

    pub(super) fn activations(&self) -> Result<Vec<Activation>, LiveError> {
        let conn = self.conn();
        read_activations(&conn, &self.path)
    }

    /// Reads the history and the compaction point and records what `decide`
    /// makes of them, in one transaction that holds SQLite's write lock from
    /// its start (`BEGIN IMMEDIATE`): activations and compactions from other
    /// threads and processes wait for it.
    pub(super) fn change_activation(&self, decide: impl FnOnce(&[Activation], Option<DateTime<Utc>>) -> Result<Activation, StoreError>) -> Result<Result<Activation, StoreError>, LiveError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err())?;
        let history = read_activations(&tx, &self.path)?;
        let compacted = super::inventory_compacted_in(&mut SqliteSql { tx: &tx, path: &self.path })?;
        let activation = match decide(&history, compacted) {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        insert_activation(&tx, &activation).map_err(self.err())?;
        tx.commit().map_err(self.err())?;
        Ok(Ok(activation))
    }

    pub(super) fn import(&self, file: &str, rows: &ImportRows) -> Result<(), LiveError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err())?;
        {
            let mut event = tx
                .prepare("INSERT INTO allot_events (kind, event_id, body, replica) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, event_id) DO NOTHING")
                .map_err(self.err())?;
            let events = super::import::events_to_insert(&mut SqliteSql { tx: &tx, path: &self.path }, rows)?;
            for (kind, id, body) in events.iter() {
                event.execute(params![kind.as_str(), id, body, REPLICA]).map_err(self.err())?;
            }
            super::import::store_rest(&mut SqliteSql { tx: &tx, path: &self.path }, rows, REPLICA)?;
            if !rows.activations.is_empty() {
                let existing: i64 = tx.query_row(COUNT_ACTIVATIONS, [], |r| r.get(0)).map_err(self.err())?;
                if existing > 0 {
                    return Err(HistoryExists { file: file.to_string(), existing }.into());
                }
                for a in &rows.activations {
                    insert_activation(&tx, a).map_err(self.err())?;
                }
            }
            tx.execute("INSERT INTO allot_imports (file, rows) VALUES (?1, ?2)", params![file, rows.len_with(events.len())]).map_err(self.err())?;
        }
        tx.commit().map_err(self.err())
    }
}

/// The audit's view of a SQLite transaction.
struct SqliteSql<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl SqliteSql<'_> {
    fn err(&self, source: rusqlite::Error) -> LiveError {
        LiveError::Sqlite { path: self.path.to_path_buf(), source }
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Int(v) => ValueRef::Integer(v),
            Param::Text(t) => ValueRef::Text(t.as_bytes()),
            Param::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

impl Sql for SqliteSql<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, LiveError> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        stmt.execute(rusqlite::params_from_iter(params)).map(|n| n as u64).map_err(|e| self.err(e))
    }

    fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, LiveError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let columns = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => Cell::Null,
                        ValueRef::Integer(v) => Cell::Int(v),
                        ValueRef::Real(v) => Cell::Int(v as i64),
                        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                    })
                })
                .collect::<rusqlite::Result<Vec<Cell>>>()
        });
        let rows = rows.map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// The activation history, oldest first (times are RFC 3339 text).
fn read_activations(conn: &Connection, path: &Path) -> Result<Vec<Activation>, LiveError> {
    let err = |source| LiveError::Sqlite { path: path.to_path_buf(), source };
    let mut stmt = conn.prepare_cached(ACTIVATIONS).map_err(err)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))).map_err(err)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, plan_id, action, at) = row.map_err(err)?;
        let at = DateTime::parse_from_rfc3339(&at)
            .map_err(|e| LiveError::Corrupt { table: "allot_plan_activations", reason: format!("seq {seq}: activated_at {at:?}: {e}") })?
            .with_timezone(&Utc);
        out.push(Activation { plan_id, at, action });
    }
    Ok(out)
}

fn insert_activation(tx: &Transaction<'_>, a: &Activation) -> rusqlite::Result<i64> {
    let at = a.at.to_rfc3339_opts(SecondsFormat::Micros, true);
    tx.query_row(INSERT_ACTIVATION, params![a.plan_id, a.action, REPLICA, at], |r| r.get(0))
}

/// Creates the database file readable and writable by this user only (SQLite
/// gives its `-wal` and `-shm` files the same mode), and tightens an existing one.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS allot_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))")?;
    for &(version, sql) in MIGRATIONS {
        let done = tx.query_row("SELECT 1 FROM allot_schema_migrations WHERE version = ?1", [version], |_| Ok(())).optional()?.is_some();
        if !done {
            tx.execute_batch(&render(sql, Dialect::Sqlite))?;
            tx.execute("INSERT INTO allot_schema_migrations (version) VALUES (?1)", [version])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite chose for `sql` (parameters as text).
    fn plan(db: &SqliteLive, sql: &str) -> String {
        let conn = db.conn();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(["x", "y"].iter().take(n)), |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// Migration 0006 rebuilds the event table: every event is kept, the
    /// counter never goes back below a number already handed out (the
    /// newest event deleted before it), and the new kind is accepted.
    #[test]
    fn the_contact_kind_migration_keeps_events_and_sequence_numbers() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE allot_schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT 'x')").unwrap();
        for &(version, sql) in &MIGRATIONS[..5] {
            conn.execute_batch(&render(sql, Dialect::Sqlite)).unwrap();
            conn.execute("INSERT INTO allot_schema_migrations (version) VALUES (?1)", [version]).unwrap();
        }
        for id in ["a", "b", "c"] {
            conn.execute("INSERT INTO allot_events (kind, event_id, body, replica) VALUES ('consent', ?1, '{}', 'r')", [id]).unwrap();
        }
        conn.execute("DELETE FROM allot_events WHERE event_id = 'c'", []).unwrap();
        migrate(&mut conn).unwrap();
        let kept: Vec<(i64, String)> =
            conn.prepare("SELECT seq, event_id FROM allot_events ORDER BY seq").unwrap().query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(kept, [(1, "a".to_string()), (2, "b".to_string())]);
        conn.execute("INSERT INTO allot_events (kind, event_id, body, replica) VALUES ('contact', 'd', '{}', 'r')", []).unwrap();
        assert_eq!(conn.last_insert_rowid(), 4, "3 was handed out before the migration");
        let index: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'allot_events_customer'", [], |r| r.get(0)).unwrap();
        assert_eq!(index, 1);
    }

    /// An access request reads one bucket's postings through its index,
    /// retention and erasure read through theirs: never a scan of a whole table.
    #[test]
    fn access_retention_and_erasure_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteLive::open(&dir.path().join("live.db")).unwrap();
        let postings = plan(&db, "SELECT entries FROM allot_audit_postings WHERE bucket = $1 ORDER BY id");
        let waiting = plan(&db, super::super::audit_store::UNINDEXED_LINES);
        assert!(!waiting.contains("SCAN allot_audit_chunks") && !waiting.contains("SCAN c"), "{waiting}");
        assert!(postings.contains("INDEX allot_audit_postings_bucket") && !postings.contains("TEMP B-TREE"), "{postings}");
        let retention = plan(&db, "SELECT id FROM allot_audit_chunks WHERE newest_at < $1 LIMIT $2");
        assert!(retention.contains("INDEX allot_audit_chunks_newest"), "{retention}");
        let erasure = plan(&db, super::super::schema::ERASE_CONSENT);
        assert!(erasure.contains("INDEX allot_events_customer"), "{erasure}");
    }
}
