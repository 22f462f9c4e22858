//! Errors of scenario loading, output writing and the plan store, and the
//! validation issues a load collects (here, below the table reader, so that the
//! reader uses this file and not the other way round).

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The most issues kept for one scenario; the total is still counted.
pub const MAX_ISSUES: usize = 50;

/// One problem found in a scenario's files.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// File name within the scenario directory.
    pub file: String,
    /// 1-based data row (the header is row 0), when the issue is about a row.
    pub row: Option<usize>,
    /// Column name, when the issue is about a column.
    pub column: Option<String>,
    /// The offending value, when there is one.
    pub value: Option<String>,
    /// What was expected.
    pub expected: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(r) = self.row {
            write!(f, " row {r}")?;
        }
        if let Some(c) = &self.column {
            write!(f, " column `{c}`")?;
        }
        write!(f, ": ")?;
        if let Some(v) = &self.value {
            write!(f, "got {v:?}, ")?;
        }
        write!(f, "expected {}", self.expected)
    }
}

/// Issues collected across a whole scenario (capped at [`MAX_ISSUES`]).
#[derive(Debug, Default)]
pub struct Issues {
    /// The first issues found.
    pub list: Vec<Issue>,
    /// How many were found in all.
    pub total: usize,
}

impl Issues {
    /// Records an issue.
    pub fn push(&mut self, issue: Issue) {
        self.total += 1;
        if self.list.len() < MAX_ISSUES {
            self.list.push(issue);
        }
    }

    /// Records an issue about a whole file.
    pub fn file(&mut self, file: &str, expected: impl Into<String>) {
        self.push(Issue { file: file.to_string(), row: None, column: None, value: None, expected: expected.into() });
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

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
        /// The first issues found (at most [`MAX_ISSUES`]).
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
    /// A version saved before live inventory events it would need were
    /// compacted away: served, it would count stock that has left.
    #[error(
        "plan version {id} was saved at {saved}, before live inventory events received up to {compacted} were compacted away: \
         its live stock cannot be known; plan again, or activate a version saved after {compacted}"
    )]
    MovesCompacted {
        /// The version.
        id: String,
        /// When it was saved.
        saved: String,
        /// How far inventory events were compacted.
        compacted: String,
    },
    /// A plan whose objective is not a finite number (inputs near the limits
    /// of floating point): never saved, since every reader of the store
    /// expects a number there.
    #[error("the plan's objective is {0}, not a finite number: it was not saved (is an input value far too large?)")]
    NotFinite(f64),
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
    /// The served plan breaks a hard rule (a solver or rounding defect): it is
    /// never saved, never served.
    #[error("the served plan breaks {} hard rule(s), nothing saved; first: {}: {}", .0.len(), .0[0].rule, .0[0].detail)]
    ServedPlan(Vec<allot_optimizer::feasibility::Violation>),
}
