//! Errors of scenario loading, output writing and the plan store.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::table::Issue;

/// Why a scenario could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid CSV/Parquet/TOML at all.
    #[error("cannot parse {path}: {reason}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The files parse but break the scenario format's rules.
    #[error("{}", format_issues(.issues, *.total))]
    Invalid {
        /// The first issues found (at most [`crate::table::MAX_ISSUES`]).
        issues: Vec<Issue>,
        /// How many were found in all.
        total: usize,
    },
}

impl LoadError {
    /// An I/O error at a path.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        LoadError::Io { path: path.to_path_buf(), source }
    }
}

fn format_issues(issues: &[Issue], total: usize) -> String {
    let mut s = format!("the scenario has {total} problem{}:", if total == 1 { "" } else { "s" });
    for i in issues {
        s.push_str(&format!("\n  - {i}"));
    }
    if total > issues.len() {
        s.push_str(&format!("\n  ... and {} more", total - issues.len()));
    }
    s
}

/// Why plan outputs or a plan version could not be written or read.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A table could not be encoded or decoded.
    #[error("cannot encode or decode {path}: {reason}")]
    Table {
        /// The path.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// A manifest or index file is malformed.
    #[error("corrupt store file {path}: {reason}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// No plan version has this id.
    #[error("no plan version {0} in the store")]
    UnknownPlan(String),
    /// Rollback asked for with no earlier activation.
    #[error("nothing to roll back to: {0}")]
    NothingToRollBack(&'static str),
    /// A file written by a newer allot, in a format this build does not know.
    #[error("{path} has schema_version {found}, newer than this allot reads (up to {supported}): upgrade allot to read it")]
    NewerSchema {
        /// The path.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done.
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        StoreError::Io { what, path: path.to_path_buf(), source }
    }
}

/// Why planning a scenario failed, at whichever step of the pipeline.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The scenario could not be read or is invalid (names file, row, column).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The solver failed.
    #[error("solving: {0}")]
    Solve(Box<dyn std::error::Error + Send + Sync>),
    /// The run's outputs could not be written.
    #[error("writing the outputs to {dir}: {source}")]
    Outputs {
        /// The output directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The plan version could not be saved.
    #[error("saving the plan version: {0}")]
    Store(#[from] StoreError),
}
