//! Importing what the old file mode kept in the plan store (`events.jsonl`,
//! `audit.jsonl`, the activation history `activations.jsonl` with
//! `active.json`) into the live-state database on first start, then renaming
//! the files aside (`*.imported`), so nothing acknowledged before the upgrade
//! is lost and nothing is read twice. A store that switches from the embedded
//! database to `--database` has its `live.db` imported into PostgreSQL the
//! same way ([`import_live_db`]). [`open_store_live`] opens a store's live
//! state with every import done: the service and the CLI both go through it.
//!
//! An activation history is imported only into a database that has none
//! (after another history it would change the active plan): otherwise the
//! start stops, saying so, and the file stays.
//!
//! The old appends never checked for a torn last line, so a crash mid-append
//! could glue the next record onto it. A line that does not parse is therefore
//! searched for a whole record after the torn prefix; a last line with no
//! newline that still does not parse was never acknowledged and is skipped.
//! Anything else that does not parse stops the start with the file and line.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use allot_scenarios::plans::store::{check_plan_id, Activation};
use allot_scenarios::schema;

use chrono::{DateTime, Utc};

use super::audit_store::{batch_of, insert_batch};
use super::error::LiveError;
use super::rows::{EventKind, ImportEvent, ImportRows};
use super::sql::Sql;
use super::{note_inventory_compacted, LiveDb, LIVE_DB_FILE};
use crate::decide::CustomerOverride;
use crate::events::{ConsentEvent, LoggedEvent};
use crate::shared::SharedLive;

/// The old event log.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The old audit log.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// The old activation history (append-only, one activation or rollback a line).
pub const HISTORY_FILE: &str = "activations.jsonl";
/// The old file naming the active plan (imported with the history).
pub const ACTIVE_FILE: &str = "active.json";
/// Suffix an imported file is renamed with.
pub const IMPORTED_SUFFIX: &str = ".imported";

/// The live state of the plan store `dir`: its embedded database (`live.db`),
/// or the PostgreSQL database `shared`; with everything the store still holds
/// of an older mode imported first (the old file mode's logs and history,
/// and for PostgreSQL the embedded database), so none of it is dropped.
pub fn open_store_live(dir: &Path, shared: Option<Arc<SharedLive>>) -> Result<LiveDb, LiveError> {
    let db = match shared {
        None => LiveDb::open_file(dir)?,
        Some(shared) => LiveDb::open_shared(shared)?,
    };
    import_file_mode(&db, dir)?;
    if db.shared().is_some() {
        import_live_db(&db, dir)?;
    }
    Ok(db)
}

/// Imports each old log found in the plan store `dir` that is not yet
/// imported, then the old activation history.
pub fn import_file_mode(db: &LiveDb, dir: &Path) -> Result<(), LiveError> {
    for (name, start) in [(EVENTS_FILE, "{\"type\":"), (AUDIT_FILE, "{\"at\":")] {
        let path = dir.join(name);
        let Some(text) = read_if_present(&path)? else { continue };
        if !db.imported(name)? {
            let rows = if name == EVENTS_FILE { event_rows(&path, &text, &[start])? } else { audit_rows(&path, &text, &[start])? };
            db.import(name, &rows)?;
            tracing::info!(file = %path.display(), events = rows.events.len(), audit = rows.audit.len(), "imported into {}", db.location());
        }
        set_aside(dir, name)?;
    }
    import_history(db, dir)
}

/// Imports `activations.jsonl` and `active.json` as one import (recorded as
/// the history's), in their order; when `active.json` names another plan than
/// the history's last line (a crash between the two writes), an activation of
/// it is appended, so the plan served before the upgrade is served after it.
fn import_history(db: &LiveDb, dir: &Path) -> Result<(), LiveError> {
    let (history_path, active_path) = (dir.join(HISTORY_FILE), dir.join(ACTIVE_FILE));
    let history = read_if_present(&history_path)?;
    let active = read_if_present(&active_path)?;
    if history.is_none() && active.is_none() {
        return Ok(());
    }
    if !db.imported(HISTORY_FILE)? {
        let mut rows = ImportRows::default();
        for (line, value) in records::<serde_json::Value>(&history_path, history.as_deref().unwrap_or(""), &["{\"schema_version\":", "{\"plan_id\":"])? {
            rows.activations.push(activation(&history_path, &format!("line {line}: "), value)?);
        }
        if let Some(text) = &active {
            let value = serde_json::from_str(text).map_err(|e| LiveError::Import { path: active_path.clone(), reason: e.to_string() })?;
            let active = activation(&active_path, "", value)?;
            if rows.activations.last().map(|a| &a.plan_id) != Some(&active.plan_id) {
                rows.activations.push(Activation { action: "activate".to_string(), ..active });
            }
        }
        db.import(HISTORY_FILE, &rows).map_err(|e| match e {
            LiveError::HistoryExists(_) => LiveError::Import { path: history_path.clone(), reason: e.to_string() },
            e => e,
        })?;
        tracing::info!(file = %history_path.display(), activations = rows.activations.len(), "imported into {}", db.location());
    }
    set_aside(dir, HISTORY_FILE)?;
    set_aside(dir, ACTIVE_FILE)
}

/// One activation of the old history or `active.json`, of any schema version
/// this build reads (`at` names the line in errors).
fn activation(path: &Path, at: &str, value: serde_json::Value) -> Result<Activation, LiveError> {
    let fail = |reason: String| LiveError::Import { path: path.to_path_buf(), reason: format!("{at}{reason}") };
    let (_, a): (u32, Activation) = schema::from_str(&value.to_string(), path).map_err(|e| fail(e.to_string()))?;
    check_plan_id(&a.plan_id).map_err(|e| fail(e.to_string()))?;
    if !matches!(a.action.as_str(), "activate" | "rollback") {
        return Err(fail(format!("action {:?} is neither \"activate\" nor \"rollback\"", a.action)));
    }
    Ok(a)
}

/// The text of an old file, `None` when there is none.
fn read_if_present(path: &Path) -> Result<Option<String>, LiveError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LiveError::Import { path: path.to_path_buf(), reason: e.to_string() }),
    }
}

/// Renames an imported file `name` of `dir` aside; one already gone (another
/// replica starting on the same store set it aside) is no error. A file set
/// aside before is never replaced: the newer one takes a numbered name.
fn set_aside(dir: &Path, name: &str) -> Result<(), LiveError> {
    let from = dir.join(name);
    let mut to = dir.join(format!("{name}{IMPORTED_SUFFIX}"));
    let mut n = 1;
    while to.exists() && from.exists() {
        to = dir.join(format!("{name}{IMPORTED_SUFFIX}.{n}"));
        n += 1;
    }
    match std::fs::rename(&from, &to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LiveError::Import { path: from, reason: format!("imported, but cannot rename it to {}: {e}", to.display()) }),
    }
}

/// Imports the plan store's embedded database (`live.db`) into `db`
/// (PostgreSQL) once, then renames it aside (with its `-wal` and `-shm`
/// files), so starting with `--database` never leaves file-mode state
/// behind. Everything a replica folds moves: the events, the audit, the
/// activations, the consent snapshot compaction folded (as consent events
/// ahead of the store's own: [`snapshot_events`]) and how far compaction
/// deleted inventory events.
pub fn import_live_db(db: &LiveDb, dir: &Path) -> Result<(), LiveError> {
    let path = dir.join(LIVE_DB_FILE);
    let Some(local) = LiveDb::open_existing_file(dir)? else { return Ok(()) };
    // The snapshot and every event, in one statement.
    let changes = local.changes_after(i64::MIN)?;
    let snapshot = changes.overrides()?;
    let mut stored = Vec::new();
    for row in changes.events {
        let event = serde_json::from_str::<LoggedEvent>(&row.body)
            .map_err(|e| LiveError::Import { path: path.clone(), reason: format!("allot_events seq {}: {e}", row.seq) })?;
        stored.push((event, row.body));
    }
    let mut rows = ImportRows { audit: local.all_audit()?, activations: local.activations()?, inventory_compacted: local.inventory_compacted()?, ..ImportRows::default() };
    // Close it (and checkpoint its WAL) before it is moved.
    drop(local);
    let key = import_key(stored.iter().map(|(_, body)| body.as_str()), &snapshot, &rows);
    // Recorded by a build before the key named the content: this file when
    // the row count matches (with the snapshot's events or without: builds
    // differed) and its newest event is in the database.
    let counted = (stored.len() + rows.audit.len() + rows.activations.len()) as i64;
    let legacy = db.imported_rows(LIVE_DB_FILE)?.is_some_and(|n| n == counted || n == counted + snapshot.len() as i64)
        && stored.last().map_or(Ok(true), |(event, _)| {
            let (kind, id) = event.key();
            db.has_event(kind, id)
        })?;
    if db.imported_rows(&key)?.is_none() && !legacy {
        let fail = |e: serde_json::Error| LiveError::Import { path: path.clone(), reason: e.to_string() };
        rows.events = snapshot_events(&snapshot, Utc::now()).map_err(fail)?;
        rows.events.extend(stored.into_iter().map(|(event, body)| {
            let (kind, id) = event.key();
            (kind, id.to_string(), body)
        }));
        rows.objections_only_where_known = true;
        db.import(&key, &rows).map_err(|e| match e {
            LiveError::HistoryExists(_) => LiveError::Import { path: path.clone(), reason: e.to_string() },
            e => e,
        })?;
        tracing::info!(file = %path.display(), events = rows.events.len(), audit = rows.audit.len(), activations = rows.activations.len(), "imported into {}", db.location());
    }
    for suffix in ["", "-wal", "-shm"] {
        set_aside(dir, &format!("{LIVE_DB_FILE}{suffix}"))?;
    }
    Ok(())
}

/// The name an embedded database's import is recorded under: `live.db` and
/// a digest of what it holds (events, consent snapshot, audit, activations,
/// compaction point). Why the content: several stores may move into one
/// database, each with a `live.db` of its own; recorded by the name alone,
/// the second one's would be set aside unread (its withdrawals lost), while
/// the same file met again (another replica on the same store starting at
/// the same time) is recognized and not imported twice.
fn import_key<'a>(events: impl Iterator<Item = &'a str>, snapshot: &[(String, CustomerOverride)], rows: &ImportRows) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    let mut part = |bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    };
    for body in events {
        part(body.as_bytes());
    }
    for (customer, o) in snapshot {
        part(customer.as_bytes());
        part(&[u8::from(o.consent == Some(true)), u8::from(o.consent == Some(false)), u8::from(o.suppressed == Some(true)), u8::from(o.suppressed == Some(false))]);
    }
    for (customer, body) in &rows.audit {
        part(customer.as_bytes());
        part(body.as_bytes());
    }
    for a in &rows.activations {
        part(format!("{} {} {}", a.plan_id, a.action, a.at.to_rfc3339()).as_bytes());
    }
    part(rows.inventory_compacted.map(|t| t.to_rfc3339()).unwrap_or_default().as_bytes());
    let hex: String = digest.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{LIVE_DB_FILE} {hex}")
}

/// The consent snapshot of a store moving to another database, as consent
/// events (kind, id, body) to import ahead of the store's own events.
/// Why events and not snapshot rows: replicas already running on the
/// database fold new events as they arrive, but read the snapshot only at
/// their start; an imported withdrawal must be in force on them too. Like
/// every imported event, these fold after what the database held before,
/// a grant only where the database holds no consent fact of the customer
/// ([`events_to_insert`]). Received `now` (the import):
/// older, compaction could fold them back into the snapshot at once, before
/// a replica that was running catches up with them. The ids are unique to
/// this import (`now`).
fn snapshot_events(snapshot: &[(String, CustomerOverride)], now: DateTime<Utc>) -> serde_json::Result<Vec<ImportEvent>> {
    let import = now.format("%Y%m%dT%H%M%S%.6fZ");
    snapshot
        .iter()
        .filter(|(_, o)| *o != CustomerOverride::default())
        .map(|(customer, o)| LoggedEvent::Consent {
            received_at: now,
            event: ConsentEvent { event_id: format!("import-{import}-snapshot-{customer}"), customer_id: customer.clone(), consent: o.consent, suppressed: o.suppressed },
        })
        .map(|event| {
            let (kind, id) = event.key();
            Ok((kind, id.to_string(), serde_json::to_string(&event)?))
        })
        .collect()
}

/// The customers the database already holds consent facts for (consent
/// events, or a compacted snapshot row), read in `sql`'s transaction.
fn customers_with_consent(sql: &mut dyn Sql) -> Result<HashSet<String>, LiveError> {
    let rows = sql.rows(
        "SELECT body->'event'->>'customer_id' FROM allot_events WHERE kind = 'consent' UNION SELECT customer_id FROM allot_consent_snapshot",
        &[],
    )?;
    Ok(rows.into_iter().filter_map(|r| r.into_iter().next()).map(super::sql::Cell::into_text).collect())
}

/// The events an import inserts, decided in its transaction (`sql`, under
/// the event lock): `rows.events` as they are, or, with
/// [`ImportRows::objections_only_where_known`], each consent event of a
/// customer the database holds consent facts for reduced to its
/// objections ([`objections_only_where_known`]; left out when none is left).
pub(super) fn events_to_insert<'r>(sql: &mut dyn Sql, rows: &'r ImportRows) -> Result<Cow<'r, [ImportEvent]>, LiveError> {
    if !rows.objections_only_where_known {
        return Ok(Cow::Borrowed(&rows.events));
    }
    let known = customers_with_consent(sql)?;
    let corrupt = |id: &str, e: serde_json::Error| LiveError::Corrupt { table: "allot_events", reason: format!("the imported consent event {id}: {e}") };
    let mut out = Vec::with_capacity(rows.events.len());
    for (kind, id, body) in &rows.events {
        if *kind != EventKind::Consent {
            out.push((*kind, id.clone(), body.clone()));
            continue;
        }
        let event = serde_json::from_str::<LoggedEvent>(body).map_err(|e| corrupt(id, e))?;
        if let Some(kept) = objections_only_where_known(event, &known) {
            out.push((*kind, id.clone(), serde_json::to_string(&kept).map_err(|e| corrupt(id, e))?));
        }
    }
    Ok(Cow::Owned(out))
}

/// An imported event as it goes in: a consent event of a customer the
/// database already holds consent facts for keeps only its withdrawal and
/// suppression (`None`: nothing of it is left). Why: which of two stores'
/// facts is newer is unknown, and an import must never undo an objection
/// the database holds (a withdrawal recorded there after the moving store's
/// grant); the customer's own grant, posted again, restores what this drops.
fn objections_only_where_known(event: LoggedEvent, known: &HashSet<String>) -> Option<LoggedEvent> {
    match event {
        LoggedEvent::Consent { received_at, mut event } if known.contains(&event.customer_id) => {
            let kept = CustomerOverride { consent: event.consent, suppressed: event.suppressed }.objection()?;
            (event.consent, event.suppressed) = (kept.consent, kept.suppressed);
            Some(LoggedEvent::Consent { received_at, event })
        }
        other => Some(other),
    }
}

/// What an import stores beside its events and activations, in the import's
/// transaction, the same way in both databases: the audit records, and the
/// old store's compaction point (the database's only moves forward).
pub(super) fn store_rest(sql: &mut dyn Sql, rows: &ImportRows, replica: &str) -> Result<(), LiveError> {
    insert_batch(sql, &batch_of(&rows.audit), replica)?;
    if let Some(upto) = rows.inventory_compacted {
        note_inventory_compacted(sql, upto)?;
    }
    Ok(())
}

/// The parseable records of a log, each with its 1-based line number; a
/// glued line gives its last whole record, a torn last line nothing.
fn records<T: serde::de::DeserializeOwned>(path: &Path, text: &str, starts: &[&str]) -> Result<Vec<(usize, T)>, LiveError> {
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(record) = serde_json::from_str(line) {
            out.push((i + 1, record));
            continue;
        }
        let glued = starts.iter().filter_map(|start| line.rfind(start)).max().filter(|&at| at > 0);
        if let Some(record) = glued.and_then(|at| serde_json::from_str(&line[at..]).ok()) {
            tracing::warn!(file = %path.display(), line = i + 1, "a torn record was glued to the next one; importing the whole one");
            out.push((i + 1, record));
            continue;
        }
        if i + 1 == lines.len() && !complete {
            tracing::warn!(file = %path.display(), line = i + 1, "skipping a torn last line (never acknowledged)");
            continue;
        }
        let reason = serde_json::from_str::<serde_json::Value>(line).err().map_or("not a record of this log".to_string(), |e| e.to_string());
        return Err(LiveError::Import { path: path.to_path_buf(), reason: format!("line {}: {reason}", i + 1) });
    }
    Ok(out)
}

fn event_rows(path: &Path, text: &str, starts: &[&str]) -> Result<ImportRows, LiveError> {
    let mut rows = ImportRows::default();
    for (_, event) in records::<LoggedEvent>(path, text, starts)? {
        let (kind, id) = event.key();
        let body = serde_json::to_string(&event).map_err(|e| LiveError::Import { path: path.to_path_buf(), reason: e.to_string() })?;
        rows.events.push((kind, id.to_string(), body));
    }
    Ok(rows)
}

fn audit_rows(path: &Path, text: &str, starts: &[&str]) -> Result<ImportRows, LiveError> {
    let mut rows = ImportRows::default();
    for (line, record) in records::<serde_json::Value>(path, text, starts)? {
        let Some(customer) = record.get("customer_id").and_then(|c| c.as_str()) else {
            return Err(LiveError::Import { path: path.to_path_buf(), reason: format!("line {line}: an audit record without customer_id") });
        };
        rows.audit.push((customer.to_string(), record.to_string()));
    }
    Ok(rows)
}
