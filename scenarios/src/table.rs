//! Reading one scenario table (CSV or Parquet) and parsing its columns with
//! precise, collected validation issues.
//!
//! Every column is read as text (Parquet columns are cast to text), so CSV and
//! Parquet share one parser and one set of error messages.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::LoadError;

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

/// A loaded table: every column as text.
pub struct Table {
    /// File name (for messages).
    pub file: String,
    frame: DataFrame,
}

impl Table {
    /// Whether `<dir>/<stem>.csv` or `<dir>/<stem>.parquet` exists.
    pub fn exists(dir: &Path, stem: &str) -> bool {
        dir.join(format!("{stem}.csv")).is_file() || dir.join(format!("{stem}.parquet")).is_file()
    }

    /// Reads `<dir>/<stem>.csv`, else `<dir>/<stem>.parquet`; `Ok(None)` when neither exists.
    pub fn read(dir: &Path, stem: &str) -> Result<Option<Table>, LoadError> {
        let csv = dir.join(format!("{stem}.csv"));
        let parquet = dir.join(format!("{stem}.parquet"));
        let (path, frame) = if csv.is_file() {
            let frame = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(csv.clone()))
                .and_then(|r| r.finish())
                .map_err(|e| polars_error(&csv, e))?;
            (csv, frame)
        } else if parquet.is_file() {
            let file = std::fs::File::open(&parquet).map_err(|e| LoadError::io(&parquet, e))?;
            let frame = ParquetReader::new(file).finish().map_err(|e| polars_error(&parquet, e))?;
            let height = frame.height();
            let columns = frame
                .columns()
                .iter()
                .map(|c| c.cast(&DataType::String))
                .collect::<PolarsResult<Vec<_>>>()
                .map_err(|e| polars_error(&parquet, e))?;
            let frame = DataFrame::new(height, columns).map_err(|e| polars_error(&parquet, e))?;
            (parquet, frame)
        } else {
            return Ok(None);
        };
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Some(Table { file, frame }))
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.frame.height()
    }

    /// Whether there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.frame.height() == 0
    }

    fn text(&self, name: &str) -> Option<&StringChunked> {
        self.frame.column(name).ok().and_then(|c| c.str().ok())
    }

    /// Parses a column; missing cells (and a missing optional column) give `None`.
    /// A missing required column or cell, and every unparsable value, is an issue.
    pub fn parse<T>(&self, name: &str, required: bool, issues: &mut Issues, parser: Parser<T>) -> Vec<Option<T>> {
        self.parse_with(name, required, issues, parser.expected, parser.parse)
    }

    /// Like [`Table::parse`] with any cell function; `expected` says what it accepts.
    pub fn parse_with<T>(&self, name: &str, required: bool, issues: &mut Issues, expected: &str, mut f: impl FnMut(&str) -> Option<T>) -> Vec<Option<T>> {
        let Some(col) = self.text(name) else {
            if required {
                issues.push(Issue {
                    file: self.file.clone(),
                    row: None,
                    column: Some(name.to_string()),
                    value: None,
                    expected: "this required column in the header".to_string(),
                });
            }
            return (0..self.len()).map(|_| None).collect();
        };
        col.iter()
            .enumerate()
            .map(|(i, cell)| match cell.map(str::trim).filter(|s| !s.is_empty()) {
                None => {
                    if required {
                        issues.push(self.issue(i, name, None, format!("a value ({expected})")));
                    }
                    None
                }
                Some(text) => {
                    let v = f(text);
                    if v.is_none() {
                        issues.push(self.issue(i, name, Some(text), expected));
                    }
                    v
                }
            })
            .collect()
    }

    /// An issue about a cell, with the 0-based index turned into a 1-based data row.
    pub fn issue(&self, index: usize, column: &str, value: Option<&str>, expected: impl Into<String>) -> Issue {
        Issue {
            file: self.file.clone(),
            row: Some(index + 1),
            column: Some(column.to_string()),
            value: value.map(str::to_string),
            expected: expected.into(),
        }
    }
}

fn polars_error(path: &Path, e: PolarsError) -> LoadError {
    LoadError::Unreadable { path: PathBuf::from(path), reason: e.to_string() }
}

/// A cell parser and a phrase saying what it accepts.
pub struct Parser<T> {
    parse: fn(&str) -> Option<T>,
    expected: &'static str,
}

/// Any text.
pub const TEXT: Parser<String> = Parser { parse: |s| Some(s.to_string()), expected: "text" };
/// A finite number.
pub const NUMBER: Parser<f64> = Parser { parse: |s| s.parse::<f64>().ok().filter(|v| v.is_finite()), expected: "a number" };
/// A finite number `>= 0`.
pub const NON_NEGATIVE: Parser<f64> =
    Parser { parse: |s| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0), expected: "a number >= 0" };
/// A probability in (0, 1].
pub const PROBABILITY: Parser<f64> =
    Parser { parse: |s| s.parse::<f64>().ok().filter(|v| *v > 0.0 && *v <= 1.0), expected: "a probability in (0, 1]" };
/// A whole number `>= 0`.
pub const COUNT: Parser<u32> = Parser {
    parse: |s| s.parse::<u32>().ok().or_else(|| s.parse::<f64>().ok().filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= u32::MAX as f64).map(|v| v as u32)),
    expected: "a whole number >= 0",
};
/// A boolean: true/false, yes/no or 1/0.
pub const BOOL: Parser<bool> = Parser {
    parse: |s| match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "t" | "y" => Some(true),
        "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    },
    expected: "a boolean (true/false)",
};
/// A calendar date `YYYY-MM-DD`.
pub const DATE: Parser<NaiveDate> =
    Parser { parse: |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(), expected: "a date YYYY-MM-DD" };
