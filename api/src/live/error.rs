//! Why the live state could not be read or written.

use std::path::PathBuf;

use allot_scenarios::StoreError;
use thiserror::Error;

use super::rows::HistoryExists;
use crate::shared::SharedError;

/// Why the live state could not be read or written.
#[derive(Debug, Error)]
pub enum LiveError {
    /// SQLite refused or failed.
    #[error("SQLite database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database file could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// PostgreSQL refused or failed.
    #[error(transparent)]
    Shared(#[from] SharedError),
    /// A stored row does not parse.
    #[error("a malformed row in {table}: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Which row and why.
        reason: String,
    },
    /// A file of the old file mode cannot be imported.
    #[error("cannot import {path}: {reason}")]
    Import {
        /// The file.
        path: PathBuf,
        /// Which line and why.
        reason: String,
    },
    /// An old activation history would be appended after the database's own.
    #[error(transparent)]
    HistoryExists(#[from] HistoryExists),
}

/// Why an activation or a rollback was not recorded.
#[derive(Debug, Error)]
pub enum ActivationError {
    /// The version is not in the store or cannot be read, or there is
    /// nothing to roll back to.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database refused.
    #[error(transparent)]
    Database(#[from] LiveError),
}

impl From<LiveError> for std::io::Error {
    fn from(e: LiveError) -> Self {
        std::io::Error::other(e.to_string())
    }
}
