//! The live state's schema, shared by both databases: the migrations in
//! `api/migrations/*.sql`, applied in order, once each, and rendered for a
//! [`Dialect`] here (the one place where SQLite and PostgreSQL differ).

/// The migrations, in order; each runs once, in a transaction.
pub(crate) const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_live_state.sql")),
    (2, include_str!("../../migrations/0002_event_kinds_jobs_imports.sql")),
    (3, include_str!("../../migrations/0003_audit_retention_erasure.sql")),
    (4, include_str!("../../migrations/0004_audit_chunks.sql")),
    (5, include_str!("../../migrations/0005_consent_snapshot.sql")),
    (6, include_str!("../../migrations/0006_contact_events.sql")),
    (7, include_str!("../../migrations/0007_outcomes_experiments.sql")),
    (8, include_str!("../../migrations/0008_inventory_compacted.sql")),
    (9, include_str!("../../migrations/0009_consent_snapshot_upto.sql")),
];

/// Erasure of a customer's consent, contact and outcome events (their
/// personal overrides, contact history and what they did with offers),
/// through `allot_events_customer` (migrations 0003, 0006, 0007); `$1` binds
/// the first parameter in SQLite too. Acceptances are not deleted but made
/// anonymous first ([`ERASED_ACCEPTANCES`]): the redemption caps and budget
/// they burnt must stay burnt after a restart. Consent events are deleted
/// first, and folded ([`ERASE_CONSENT_EVENTS_RETURNING`]).
pub(crate) const ERASE_CONSENT: &str = "DELETE FROM allot_events WHERE kind IN ('consent', 'contact', 'outcome') AND body->'event'->>'customer_id' = $1";
/// A customer's accepted outcomes, to be made anonymous before an erasure.
pub(crate) const ERASED_ACCEPTANCES: &str =
    "SELECT seq, CAST(body AS TEXT) FROM allot_events WHERE kind = 'outcome' AND body->'event'->>'customer_id' = $1 AND body->'event'->>'kind' = 'accepted'";
/// Erasure of a customer's compacted consent, returning it (the snapshot's
/// override, as JSON, and the last event folded in).
pub(crate) const ERASE_CONSENT_SNAPSHOT_RETURNING: &str = "DELETE FROM allot_consent_snapshot WHERE customer_id = $1 RETURNING override, upto_seq";
/// Erasure of a customer's consent events, returning each one's sequence
/// number and its `consent` and `suppressed` as JSON text (`true`, `false`,
/// `null`, or SQL NULL when left out), the same way in both databases. Why
/// fold what is deleted, not what a read before found: in PostgreSQL another
/// replica may commit a withdrawal between a read and the delete, and it
/// would go unfolded.
pub(crate) const ERASE_CONSENT_EVENTS_RETURNING: &str = "DELETE FROM allot_events WHERE kind = 'consent' AND body->'event'->>'customer_id' = $1 \
     RETURNING seq, CAST(body->'event'->'consent' AS TEXT), CAST(body->'event'->'suppressed' AS TEXT)";
/// What a replica catching up from `$1` folds, in one statement (one
/// snapshot of the database, so a compaction or erasure committing
/// meanwhile is seen whole or not at all): the consent snapshot's rows that
/// fold events after `$1` (kind 0: seq, customer, override), then the events
/// after `$1` (kind 1: seq, '', body). Why the rows: an event this replica
/// has not applied yet may have been folded into the snapshot and deleted
/// (a compaction that stopped waiting for a silent replica, an erasure that
/// kept the objection).
pub(crate) const CHANGES_AFTER: &str = "SELECT 0, upto_seq, customer_id, override FROM allot_consent_snapshot WHERE upto_seq > $1 \
     UNION ALL SELECT 1, seq, '', CAST(body AS TEXT) FROM allot_events WHERE seq > $1 ORDER BY 1, 2";
/// How far compaction has deleted inventory events (migration 0008).
pub(crate) const INVENTORY_COMPACTED: &str = "SELECT upto FROM allot_inventory_compacted WHERE id = 1";
/// Records how far compaction has deleted inventory events.
pub(crate) const SET_INVENTORY_COMPACTED: &str =
    "INSERT INTO allot_inventory_compacted (id, upto) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET upto = excluded.upto";
/// The snapshot row an erasure leaves: the customer's objection alone.
pub(crate) const KEEP_OBJECTION: &str = "INSERT INTO allot_consent_snapshot (customer_id, override, upto_seq) VALUES ($1, $2, $3)";

/// The plan activations, oldest first (`activated_at`: text in SQLite, a
/// `timestamptz` in PostgreSQL); the active plan is the newest row.
pub(crate) const ACTIVATIONS: &str = "SELECT seq, version, action, activated_at FROM allot_plan_activations ORDER BY seq";
/// The newest activation: the active plan.
pub(crate) const ACTIVE_PLAN: &str = "SELECT seq, version FROM allot_plan_activations ORDER BY seq DESC LIMIT 1";
/// Records an activation (version, action, replica, time) and returns its sequence number.
pub(crate) const INSERT_ACTIVATION: &str = "INSERT INTO allot_plan_activations (version, action, replica, activated_at) VALUES ($1, $2, $3, $4) RETURNING seq";
/// How many activations are recorded (an old history is imported only into none).
pub(crate) const COUNT_ACTIVATIONS: &str = "SELECT count(*) FROM allot_plan_activations";

/// Which SQL a migration is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// The embedded database of file mode.
    Sqlite,
    /// The database replicas share.
    Postgres,
}

/// A migration's text for `dialect`: placeholders replaced, lines marked for
/// the other dialect dropped.
pub(crate) fn render(sql: &str, dialect: Dialect) -> String {
    let (serial, json, time, now, blob, mine, other) = match dialect {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "TEXT", "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", "BLOB", "--@sqlite ", "--@postgres "),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "JSONB", "TIMESTAMPTZ", "now()", "BYTEA", "--@postgres ", "--@sqlite "),
    };
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with(other) {
            continue;
        }
        out.push_str(trimmed.strip_prefix(mine).unwrap_or(line));
        out.push('\n');
    }
    out.replace("{{SERIAL}}", serial).replace("{{JSON}}", json).replace("{{TIME}}", time).replace("{{NOW}}", now).replace("{{BLOB}}", blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_keeps_only_its_own_lines_and_types() {
        let pg = render(MIGRATIONS[1].1, Dialect::Postgres);
        let lite = render(MIGRATIONS[1].1, Dialect::Sqlite);
        assert!(pg.contains("setval(") && !lite.contains("setval("));
        assert!(pg.contains("BIGSERIAL PRIMARY KEY") && lite.contains("INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(!pg.contains("{{") && !lite.contains("{{"));
    }
}
