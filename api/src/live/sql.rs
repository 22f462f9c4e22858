//! The few operations the live state's maintenance needs, over a
//! transaction of either database ([`Sql`]), so the rules written over it
//! (the audit's format in [`super::audit_store`], the events' compaction in
//! [`crate::events`]) exist once. Statements use `$1`, which SQLite binds by
//! position too.

use super::error::LiveError;
use super::schema::Dialect;

/// A statement parameter, the same for both databases.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    pub(crate) fn int(&self) -> i64 {
        match self {
            Cell::Int(v) => *v,
            _ => 0,
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        match self {
            Cell::Bytes(b) => b,
            Cell::Text(t) => t.into_bytes(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn into_text(self) -> String {
        match self {
            Cell::Text(t) => t,
            Cell::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            Cell::Int(v) => v.to_string(),
            Cell::Null => String::new(),
        }
    }
}

/// One transaction of either database, as the audit's rules need it: why a
/// small trait and not two implementations of each rule, so the format and
/// every rule above are written once (statements use `$1`, which SQLite binds
/// by position too).
pub(crate) trait Sql {
    fn dialect(&self) -> Dialect;
    /// Serializes maintenance across replicas: the audit's merge, reads and
    /// erasures, and the events' compaction (a no-op where the database has
    /// one writer).
    fn lock_maintenance(&mut self) -> Result<(), LiveError> {
        Ok(())
    }
    /// Excludes activations and rollbacks until the transaction ends (a
    /// no-op where every write transaction excludes every other): what the
    /// transaction reads of the active plan stays true while it writes.
    fn lock_activations(&mut self) -> Result<(), LiveError> {
        Ok(())
    }
    /// The newest event every live replica has applied (`i64::MAX` where
    /// one process folds every event it writes): compaction stops there, so
    /// a replica catching up never finds an event it has yet to fold deleted
    /// into the snapshot it read only at its start.
    fn applied_everywhere(&mut self) -> Result<i64, LiveError> {
        Ok(i64::MAX)
    }
    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, LiveError>;
    fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Vec<Cell>>, LiveError>;
}

