//! The audit's view of a PostgreSQL transaction ([`Sql`]), so the audit's
//! rules in [`super::audit_store`] run unchanged on the shared database.

use postgres::types::{ToSql, Type};

use super::rows::{ImportEvent, ImportRows};
use super::sql::{Cell, Param, Sql};
use super::error::LiveError;
use super::schema::Dialect;
use crate::shared::SharedError;


pub(super) struct PgSql<'a, 'b> {
    pub(super) tx: &'a mut postgres::Transaction<'b>,
}

fn err(e: postgres::Error) -> LiveError {
    LiveError::Shared(SharedError::from(e))
}

fn refs<'p>(params: &'p [Param<'_>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(v) => v as &(dyn ToSql + Sync),
            Param::Text(t) => t as &(dyn ToSql + Sync),
            Param::Bytes(b) => b as &(dyn ToSql + Sync),
        })
        .collect()
}

impl Sql for PgSql<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn lock_maintenance(&mut self) -> Result<(), LiveError> {
        self.tx.execute("SELECT pg_advisory_xact_lock($1)", &[&crate::shared::MAINTENANCE_LOCK]).map(drop).map_err(err)
    }

    fn lock_activations(&mut self) -> Result<(), LiveError> {
        self.tx.execute("SELECT pg_advisory_xact_lock($1)", &[&crate::shared::ACTIVATION_LOCK]).map(drop).map_err(err)
    }

    fn applied_everywhere(&mut self) -> Result<i64, LiveError> {
        let liveness = format!("{} milliseconds", crate::shared::REPLICA_LIVENESS.as_millis());
        let row = self
            .tx
            .query_one("SELECT MIN(applied_seq) FROM allot_replicas WHERE heartbeat_at > now() - CAST($1::text AS interval)", &[&liveness])
            .map_err(err)?;
        Ok(row.get::<_, Option<i64>>(0).unwrap_or(i64::MAX))
    }

    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, LiveError> {
        self.tx.execute(sql, &refs(params)).map_err(err)
    }

    fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, LiveError> {
        let rows = self.tx.query(sql, &refs(params)).map_err(err)?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_();
                        let cell = if *ty == Type::INT8 {
                            row.try_get::<_, Option<i64>>(i).map(|v| v.map_or(Cell::Null, Cell::Int))
                        } else if *ty == Type::INT4 {
                            row.try_get::<_, Option<i32>>(i).map(|v| v.map_or(Cell::Null, |v| Cell::Int(v.into())))
                        } else if *ty == Type::BYTEA {
                            row.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map_or(Cell::Null, Cell::Bytes))
                        } else {
                            row.try_get::<_, Option<String>>(i).map(|v| v.map_or(Cell::Null, Cell::Text))
                        };
                        cell.map_err(err)
                    })
                    .collect()
            })
            .collect()
    }
}

/// Stores what an import adds beside its events and activations
/// ([`super::import::store_rest`]) in the import's transaction.
pub(super) fn import_rest(tx: &mut postgres::Transaction<'_>, rows: &ImportRows, replica: &str) -> Result<(), SharedError> {
    super::import::store_rest(&mut PgSql { tx }, rows, replica).map_err(|e| shared_error(e, "allot_audit_chunks or allot_inventory_compacted"))
}

/// The events an import inserts ([`super::import::events_to_insert`]),
/// decided in the import's transaction.
pub(super) fn events_to_insert<'r>(tx: &mut postgres::Transaction<'_>, rows: &'r ImportRows) -> Result<std::borrow::Cow<'r, [ImportEvent]>, SharedError> {
    super::import::events_to_insert(&mut PgSql { tx }, rows).map_err(|e| shared_error(e, "allot_events"))
}

/// How far compaction has deleted inventory events, read in an activation's
/// transaction ([`super::inventory_compacted_in`]).
pub(super) fn inventory_compacted(tx: &mut postgres::Transaction<'_>) -> Result<Option<chrono::DateTime<chrono::Utc>>, SharedError> {
    super::inventory_compacted_in(&mut PgSql { tx }).map_err(|e| shared_error(e, "allot_inventory_compacted"))
}

/// A live-state error met inside one of [`SharedLive`](crate::shared::SharedLive)'s
/// own transactions, as its error (`table`: where it was, when the error names none).
fn shared_error(e: LiveError, table: &'static str) -> SharedError {
    match e {
        LiveError::Shared(e) => e,
        LiveError::Corrupt { table, reason } => SharedError::Corrupt { table, reason },
        e => SharedError::Corrupt { table, reason: e.to_string() },
    }
}
