//! Importing what the old file mode kept in the plan store (`events.jsonl`,
//! `audit.jsonl`) into the live-state database on first start, then renaming
//! the files aside (`*.imported`), so nothing acknowledged before the upgrade
//! is lost and nothing is read twice. A store that switches from the embedded
//! database to `--database` has its `live.db` imported into PostgreSQL the
//! same way ([`import_live_db`]).
//!
//! The old appends never checked for a torn last line, so a crash mid-append
//! could glue the next record onto it. A line that does not parse is therefore
//! searched for a whole record after the torn prefix; a last line with no
//! newline that still does not parse was never acknowledged and is skipped.
//! Anything else that does not parse stops the start with the file and line.

use std::path::Path;

use super::error::LiveError;
use super::rows::ImportRows;
use super::{LiveDb, LIVE_DB_FILE};
use crate::events::LoggedEvent;

/// The old event log.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The old audit log.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// Suffix an imported file is renamed with.
pub const IMPORTED_SUFFIX: &str = ".imported";

/// Imports each old log found in the plan store `dir` that is not yet imported.
pub fn import_file_mode(db: &LiveDb, dir: &Path) -> Result<(), LiveError> {
    for (name, start) in [(EVENTS_FILE, "{\"type\":"), (AUDIT_FILE, "{\"at\":")] {
        let path = dir.join(name);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LiveError::Import { path, reason: e.to_string() }),
        };
        if !db.imported(name)? {
            let rows = if name == EVENTS_FILE { event_rows(&path, &text, start)? } else { audit_rows(&path, &text, start)? };
            db.import(name, &rows)?;
            tracing::info!(file = %path.display(), events = rows.events.len(), audit = rows.audit.len(), "imported into {}", db.location());
        }
        let aside = dir.join(format!("{name}{IMPORTED_SUFFIX}"));
        std::fs::rename(&path, &aside).map_err(|e| LiveError::Import { path: path.clone(), reason: format!("imported, but cannot rename it to {}: {e}", aside.display()) })?;
    }
    Ok(())
}

/// Imports the plan store's embedded database (`live.db`: events and audit)
/// into `db` (PostgreSQL) once, then renames it aside (with its `-wal` and
/// `-shm` files), so starting with `--database` never leaves file-mode state behind.
pub fn import_live_db(db: &LiveDb, dir: &Path) -> Result<(), LiveError> {
    let path = dir.join(LIVE_DB_FILE);
    if !path.exists() {
        return Ok(());
    }
    if !db.imported(LIVE_DB_FILE)? {
        let local = LiveDb::open_file(dir)?;
        let mut rows = ImportRows::default();
        for row in local.events_after(0)? {
            let event = serde_json::from_str::<LoggedEvent>(&row.body)
                .map_err(|e| LiveError::Import { path: path.clone(), reason: format!("allot_events seq {}: {e}", row.seq) })?;
            let (kind, id) = event.key();
            rows.events.push((kind, id.to_string(), row.body));
        }
        rows.audit = local.all_audit()?;
        // Close it (and checkpoint its WAL) before it is moved.
        drop(local);
        db.import(LIVE_DB_FILE, &rows)?;
        tracing::info!(file = %path.display(), events = rows.events.len(), audit = rows.audit.len(), "imported into {}", db.location());
    }
    for suffix in ["", "-wal", "-shm"] {
        let from = dir.join(format!("{LIVE_DB_FILE}{suffix}"));
        let to = dir.join(format!("{LIVE_DB_FILE}{suffix}{IMPORTED_SUFFIX}"));
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|e| LiveError::Import { path: from.clone(), reason: format!("imported, but cannot rename it to {}: {e}", to.display()) })?;
        }
    }
    Ok(())
}

/// The parseable records of a log, each with its 1-based line number; a
/// glued line gives its last whole record, a torn last line nothing.
fn records<T: serde::de::DeserializeOwned>(path: &Path, text: &str, start: &str) -> Result<Vec<(usize, T)>, LiveError> {
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
        if let Some(record) = line.rfind(start).filter(|&at| at > 0).and_then(|at| serde_json::from_str(&line[at..]).ok()) {
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

fn event_rows(path: &Path, text: &str, start: &str) -> Result<ImportRows, LiveError> {
    let mut rows = ImportRows::default();
    for (_, event) in records::<LoggedEvent>(path, text, start)? {
        let (kind, id) = event.key();
        let body = serde_json::to_string(&event).map_err(|e| LiveError::Import { path: path.to_path_buf(), reason: e.to_string() })?;
        rows.events.push((kind, id.to_string(), body));
    }
    Ok(rows)
}

fn audit_rows(path: &Path, text: &str, start: &str) -> Result<ImportRows, LiveError> {
    let mut rows = ImportRows::default();
    for (line, record) in records::<serde_json::Value>(path, text, start)? {
        let Some(customer) = record.get("customer_id").and_then(|c| c.as_str()) else {
            return Err(LiveError::Import { path: path.to_path_buf(), reason: format!("line {line}: an audit record without customer_id") });
        };
        rows.audit.push((customer.to_string(), record.to_string()));
    }
    Ok(rows)
}
