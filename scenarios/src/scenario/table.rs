//! Reading one scenario table (CSV or Parquet) and parsing its columns with
//! precise, collected validation issues.
//!
//! Columns are read as their types: Parquet columns keep their physical types,
//! and the CSV columns a caller declares ([`Kind`]) are parsed by polars as
//! Float64, Int64 or Boolean; other CSV columns are text. A column whose typed
//! values all pass the parser's rule is used as is. Otherwise (a CSV cell polars
//! cannot parse, a value the rule rejects, a Parquet column of another type)
//! that column goes through the text path: the file's cells as text, parsed one
//! by one, so a message quotes the value as the file holds it and typed and
//! text reads accept exactly the same values.

use std::cell::{OnceCell, RefCell};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::LoadError;
pub use crate::error::{Issue, Issues, MAX_ISSUES};

/// How polars should parse a CSV column, declared by the caller that knows the
/// scenario format. Text and date columns are not declared: dates are read as
/// written and parsed strictly as `YYYY-MM-DD` ([`DATE`]), because polars infers
/// a date pattern per chunk (it would also take `05-01-2026` as 5 January).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number (Float64).
    Number,
    /// A whole number (Int64).
    Whole,
    /// A boolean `true`/`false` (Boolean; other spellings go the text path).
    Flag,
}

impl Kind {
    fn dtype(self) -> DataType {
        match self {
            Kind::Number => DataType::Float64,
            Kind::Whole => DataType::Int64,
            Kind::Flag => DataType::Boolean,
        }
    }
}

/// A loaded table: typed columns where the file allows, text otherwise.
pub struct Table {
    /// File name (for messages).
    pub file: String,
    path: PathBuf,
    frame: DataFrame,
    /// The CSV file read as text, only when a typed column needs the text path.
    text: OnceCell<Result<DataFrame, String>>,
    /// The columns the loader asked for: the table's known columns, for
    /// [`Table::check_header`].
    asked: RefCell<Vec<String>>,
    /// The file's index of this table's first row: 0, but for the later
    /// batches of [`Table::read_in_batches`].
    first_row: usize,
    /// Whether this is the whole table or its first batch: the one that
    /// reports the header's issues (the later batches have the same header).
    first_batch: bool,
}

/// A table read a batch of rows at a time, from [`Table::read_in_batches`]:
/// each item is one batch, its messages naming rows of the whole file.
pub struct TableBatches {
    /// File name (for messages).
    pub file: String,
    /// Data rows in all batches.
    pub rows: usize,
    source: BatchSource,
}

enum BatchSource {
    /// The whole table, one batch (CSV, or a Parquet file of no rows).
    Whole(Option<Table>),
    /// A Parquet file's row groups (those with rows), each decoded by a
    /// thread while the caller parses the one before.
    RowGroups {
        path: PathBuf,
        /// The decoded groups and their first rows, or the error that ended the decoding.
        groups: std::sync::mpsc::Receiver<Result<(usize, DataFrame), LoadError>>,
        /// The decoding thread, joined once it is done so that its panic is the caller's.
        decoder: Option<std::thread::JoinHandle<()>>,
        first_batch: bool,
    },
}

impl Iterator for TableBatches {
    type Item = Result<Table, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            BatchSource::Whole(table) => table.take().map(Ok),
            BatchSource::RowGroups { path, groups, decoder, first_batch } => match groups.recv() {
                Ok(group) => Some(group.map(|(first_row, frame)| Table::new(path.clone(), frame, first_row, std::mem::replace(first_batch, false)))),
                // Every group was sent, or the thread died: a panic there is raised here,
                // never taken for the end of the file.
                Err(_) => {
                    if let Err(panic) = decoder.take()?.join() {
                        std::panic::resume_unwind(panic);
                    }
                    None
                }
            },
        }
    }
}

impl Table {
    /// Whether `<dir>/<stem>.csv` or `<dir>/<stem>.parquet` exists.
    pub fn exists(dir: &Path, stem: &str) -> bool {
        dir.join(format!("{stem}.csv")).is_file() || dir.join(format!("{stem}.parquet")).is_file()
    }

    /// Reads `<dir>/<stem>.csv` or `<dir>/<stem>.parquet`; `Ok(None)` when
    /// neither exists, an error when both do (which of the two holds the
    /// data is never guessed: a Parquet table of consent withdrawals beside
    /// an older CSV was ignored).
    /// `typed` names the CSV columns to parse as their type (Parquet columns
    /// always keep theirs); a column missing from the file is ignored.
    pub fn read(dir: &Path, stem: &str, typed: &[(&str, Kind)]) -> Result<Option<Table>, LoadError> {
        let csv = dir.join(format!("{stem}.csv"));
        let parquet = dir.join(format!("{stem}.parquet"));
        if csv.is_file() && parquet.is_file() {
            let expected = format!("{stem}.csv or {stem}.parquet, not both: which of the two holds the data is never guessed");
            let issue = Issue { file: file_name(&csv), row: None, column: None, value: None, expected };
            return Err(LoadError::Invalid { issues: vec![issue], total: 1 });
        }
        let (path, frame) = if csv.is_file() {
            let schema: Schema = typed.iter().map(|&(name, kind)| Field::new(name.into(), kind.dtype())).collect();
            // A cell polars cannot parse as its column's type: the whole file as
            // text, where every cell is checked and reported on its own.
            let frame = match read_csv(&csv, Some(schema)) {
                Ok(frame) => frame,
                Err(_) => read_csv(&csv, None).map_err(|e| csv_layout_issue(&csv).unwrap_or_else(|| polars_error(&csv, e)))?,
            };
            // The reader also takes a row with fewer fields than the header.
            if let Some(issue) = csv_layout_issue(&csv) {
                return Err(issue);
            }
            (csv, frame)
        } else if parquet.is_file() {
            refuse_unreadable_columns(&parquet)?;
            let file = std::fs::File::open(&parquet).map_err(|e| LoadError::io(&parquet, e))?;
            let frame = decode_parquet(&parquet, || ParquetReader::new(file).finish())?;
            (parquet, frame)
        } else {
            return Ok(None);
        };
        Ok(Some(Table::new(path, frame, 0, true)))
    }

    fn new(path: PathBuf, frame: DataFrame, first_row: usize, first_batch: bool) -> Table {
        Table { file: file_name(&path), path, frame, text: OnceCell::new(), asked: RefCell::new(Vec::new()), first_row, first_batch }
    }

    /// [`Table::read`] a batch of rows at a time: a Parquet file one row group
    /// at a time, a CSV file in one batch. Why: a table of tens of millions of
    /// rows (uptake at 10M customers: 80M) held whole as a frame, beside the
    /// columns parsed from it and what the loader builds from those, was most
    /// of a plan's peak memory; a row group at a time, the loader holds only
    /// what it keeps. The next group is decoded on another thread while the
    /// caller parses one. The first batch reports the header's issues (a
    /// missing column, a misspelt one) as the whole table would; the later
    /// ones do not repeat them.
    pub fn read_in_batches(dir: &Path, stem: &str, typed: &[(&str, Kind)]) -> Result<Option<TableBatches>, LoadError> {
        let parquet = dir.join(format!("{stem}.parquet"));
        let whole = |table: Option<Table>| table.map(|t| TableBatches { file: t.file.clone(), rows: t.len(), source: BatchSource::Whole(Some(t)) });
        if dir.join(format!("{stem}.csv")).is_file() || !parquet.is_file() {
            return Ok(whole(Table::read(dir, stem, typed)?));
        }
        refuse_unreadable_columns(&parquet)?;
        // One file, opened once: every group is decoded from it with its metadata.
        let file = std::fs::File::open(&parquet).map_err(|e| LoadError::io(&parquet, e))?;
        let metadata = ParquetReader::new(file.try_clone().map_err(|e| LoadError::io(&parquet, e))?).get_metadata().map_err(|e| polars_error(&parquet, e))?.clone();
        let mut first_row = 0;
        let mut groups = Vec::new();
        for rows in metadata.row_groups.iter().map(|g| g.num_rows()) {
            if rows > 0 {
                groups.push((first_row, rows));
            }
            first_row += rows;
        }
        if groups.is_empty() {
            return Ok(whole(Table::read(dir, stem, typed)?));
        }
        let rows = metadata.num_rows;
        // A rendezvous: the thread decodes the next group while the caller
        // parses one, and waits for the caller to take it.
        let (send, receive) = std::sync::mpsc::sync_channel(0);
        let path = parquet.clone();
        let decode = move || {
            for (first_row, rows) in groups {
                let frame = file.try_clone().map_err(|e| LoadError::io(&path, e)).and_then(|file| {
                    let mut reader = ParquetReader::new(file).with_slice(Some((first_row, rows)));
                    reader.set_metadata(metadata.clone());
                    decode_parquet(&path, || reader.finish())
                });
                let failed = frame.is_err();
                // A receiver gone (the caller stopped early) or a failed read: no more groups.
                if send.send(frame.map(|frame| (first_row, frame))).is_err() || failed {
                    return;
                }
            }
        };
        let decoder = std::thread::Builder::new().name(format!("read {stem}")).spawn(decode).map_err(|e| LoadError::io(&parquet, e))?;
        let source = BatchSource::RowGroups { path: parquet.clone(), groups: receive, decoder: Some(decoder), first_batch: true };
        Ok(Some(TableBatches { file: file_name(&parquet), rows, source }))
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.frame.height()
    }

    /// Whether there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.frame.height() == 0
    }

    /// Parses a column; missing cells (and a missing optional column) give `None`.
    /// A missing required column or cell, and every unparsable value, is an issue.
    pub fn parse<T>(&self, name: &str, required: bool, issues: &mut Issues, parser: Parser<T>) -> Vec<Option<T>> {
        self.ask(name);
        if let Some(values) = self.frame.column(name).ok().and_then(|c| typed_values(c, parser.typed)) {
            if required {
                for (i, _) in values.iter().enumerate().filter(|(_, v)| v.is_none()) {
                    issues.push(self.issue(i, name, None, format!("a value ({})", parser.expected)));
                }
            }
            return values;
        }
        self.parse_with(name, required, issues, parser.expected, parser.parse)
    }

    /// Like [`Table::parse`] with any cell function on the cell's text; `expected`
    /// says what it accepts.
    pub fn parse_with<T>(&self, name: &str, required: bool, issues: &mut Issues, expected: &str, mut f: impl FnMut(&str) -> Option<T>) -> Vec<Option<T>> {
        self.ask(name);
        let Some(column) = self.frame.column(name).ok() else {
            if required && self.first_batch {
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
        let text = match self.text_column(name, column) {
            Ok(text) => text,
            Err(reason) => {
                if self.first_batch {
                    issues.push(Issue { file: self.file.clone(), row: None, column: Some(name.to_string()), value: None, expected: format!("a readable column ({reason})") });
                }
                return (0..self.len()).map(|_| None).collect();
            }
        };
        text.iter()
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

    /// The header's column names, in file order: for a table whose columns are
    /// not fixed by the format (`customer_features`).
    pub fn column_names(&self) -> Vec<String> {
        self.frame.get_column_names().into_iter().map(|n| n.to_string()).collect()
    }

    /// Whether the header has this column.
    pub fn has_column(&self, name: &str) -> bool {
        self.frame.column(name).is_ok()
    }

    fn ask(&self, name: &str) {
        let mut asked = self.asked.borrow_mut();
        if !asked.iter().any(|a| a == name) {
            asked.push(name.to_string());
        }
    }

    /// Checks the header once every column was parsed: a column nobody asked
    /// for that is close to a known one (a misspelling, see [`likely_meant`])
    /// is an issue, because ignoring `consnet` would silently default every
    /// customer's consent; so is one that speaks of consent or suppression
    /// ([`GOVERNANCE_WORDS`]: `suppression`, `has_consent`, `opt_in` are too
    /// far from the known names to be taken for misspellings), and a column
    /// the header names twice (a CSV reader keeps the first and renames the
    /// second away). Any other unknown column is ignored with a note. A batch
    /// after the first ([`Table::read_in_batches`]) checks nothing: the first
    /// one said it all.
    pub fn check_header(&self, issues: &mut Issues, notes: &mut Vec<String>) {
        if !self.first_batch {
            return;
        }
        let asked = self.asked.borrow();
        let columns = self.frame.get_column_names();
        let issue = |name: &str, expected: String| Issue { file: self.file.clone(), row: None, column: Some(name.to_string()), value: None, expected };
        for name in &columns {
            let name = name.as_str();
            if asked.iter().any(|a| a == name) {
                continue;
            }
            if let Some(first) = duplicate_of(name).filter(|first| columns.iter().any(|c| c.as_str() == *first)) {
                issues.push(issue(first, format!("`{first}` once: the header names it more than once")));
            } else if let Some(known) = likely_meant(name, asked.iter().map(String::as_str)) {
                issues.push(issue(name, format!("a known column: `{name}` is not one, did you mean `{known}`? (a misspelt column is an error, never ignored)")));
            } else if let Some(word) = speaks_of_governance(name) {
                let known: Vec<String> = asked.iter().filter(|a| speaks_of_governance(a).is_some()).map(|a| format!("`{a}`")).collect();
                let known = if known.is_empty() { "this table has none".to_string() } else { format!("this table's: {}", known.join(", ")) };
                issues.push(issue(name, format!("a known column: `{name}` is not one, and a column that speaks of {word} is never ignored ({known})")));
            } else {
                notes.push(format!("{}: unknown column `{name}` ignored", self.file));
            }
        }
    }

    /// The column's cells as text: itself when it is text; for CSV, the column
    /// of the file re-read as text (the cells as written); for Parquet, the
    /// column cast to text.
    fn text_column(&self, name: &str, column: &Column) -> Result<StringChunked, String> {
        let text = if column.dtype() == &DataType::String {
            column.clone()
        } else if self.path.extension().is_some_and(|e| e == "parquet") {
            column.cast(&DataType::String).map_err(|e| e.to_string())?
        } else {
            let frame = self.text.get_or_init(|| read_csv(&self.path, None).map_err(|e| e.to_string()));
            frame.as_ref().map_err(Clone::clone)?.column(name).map_err(|e| e.to_string())?.clone()
        };
        text.str().cloned().map_err(|e| e.to_string())
    }

    /// An issue about a cell, with the 0-based index turned into a 1-based data row.
    pub fn issue(&self, index: usize, column: &str, value: Option<&str>, expected: impl Into<String>) -> Issue {
        Issue {
            file: self.file.clone(),
            row: Some(self.first_row + index + 1),
            column: Some(column.to_string()),
            value: value.map(str::to_string),
            expected: expected.into(),
        }
    }
}

/// Words that mark a column as one of governance (consent, suppression):
/// an unknown column whose name holds one is an error, never ignored.
/// Matched in the name lowercased, with `-` and spaces read as `_`
/// ([`speaks_of_governance`]), and with a `_` before and after it: an
/// entry with a leading `_` must start one of the name's `_`-separated
/// words (`_opted` is in `opted_out`, not in `adopted_app`), one with a
/// trailing `_` must end one (`_do_not_` is in `do_not_contact`), one
/// without matches anywhere (`consent` in `has_consent`). Beyond the
/// model's own words, the names customer systems give the same facts
/// (`opted_out`, `unsubscribed`, `do_not_contact`, `no_marketing`,
/// `gdpr_permission`): each was once ignored as an unknown column, which
/// treated everyone as consenting. Not `marketing` alone: offers have
/// marketing columns of their own.
const GOVERNANCE_WORDS: &[&str] = &[
    "consent",
    "suppress",
    "opt_in",
    "opt_out",
    "optin",
    "optout",
    "_opted",
    "_unsubscri",
    "_do_not_",
    "_dnc_",
    "_no_marketing_",
    "_marketing_ok_",
    "_marketing_allowed_",
    "_permission",
    "_gdpr",
    "_blocklist",
    "_blacklist",
];

/// The governance word (see [`GOVERNANCE_WORDS`]) a column or file name
/// speaks of, if any: such a name is never ignored.
pub fn speaks_of_governance(name: &str) -> Option<&'static str> {
    let name = format!("_{}_", name.to_lowercase().replace(['-', ' '], "_"));
    GOVERNANCE_WORDS.iter().find(|w| name.contains(*w)).map(|w| w.trim_matches('_'))
}

/// The column `name` renames when it is a repeat of one the header already
/// named (`<first>_duplicated_<n>`, as the CSV reader names repeats).
fn duplicate_of(name: &str) -> Option<&str> {
    let (first, n) = name.rsplit_once("_duplicated_")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(first)
}

/// The known column `name` most likely misspells: the closest by edit distance
/// (case-insensitive), within 2 for names of five letters or more and within 1
/// for names of three or four (shorter names are too close to everything).
pub fn likely_meant<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    known
        .filter_map(|k| {
            let allowed = match k.chars().count() {
                0..=2 => 0,
                3 | 4 => 1,
                _ => 2,
            };
            let d = edit_distance(&lower, &k.to_lowercase());
            (d <= allowed).then_some((d, k))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Reads a CSV file: the `typed` columns as their types, every other column as text.
fn read_csv(path: &Path, typed: Option<Schema>) -> PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_schema_overwrite(typed.map(Arc::new))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Where a CSV file breaks its layout: the first data row (1-based) with
/// more or fewer fields than the header, a quoted field that never closes,
/// or bytes that are not UTF-8; `None` when none is found (or the file
/// cannot be read). Asked when the reader fails (its message names no row,
/// and its advice, an option of its own, is not one a planner can take) and
/// when it succeeds: it takes a row with fewer fields, filling the missing
/// cells with blanks, so an optional column took its default without a word
/// (`max_offers` missing from a short row). Fields are counted outside
/// quotes, a blank line is skipped, and the file is read in blocks, one
/// record held at a time (a large file is never held whole).
fn csv_layout_issue(path: &Path) -> Option<LoadError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut block = vec![0u8; 1 << 20];
    // The current record's bytes from earlier blocks (it spans a block's end).
    let mut carry = Vec::new();
    // `row`: the data rows before this record (the header is row 0).
    let mut layout = Layout { path, header: None, row: 0 };
    let (mut fields, mut quoted) = (1, false);
    loop {
        let n = file.read(&mut block).ok()?;
        if n == 0 {
            break;
        }
        let mut start = 0;
        for (i, &byte) in block[..n].iter().enumerate() {
            match byte {
                b'"' => quoted = !quoted,
                b',' if !quoted => fields += 1,
                b'\n' if !quoted => {
                    let record = if carry.is_empty() {
                        &block[start..i]
                    } else {
                        carry.extend_from_slice(&block[start..i]);
                        &carry[..]
                    };
                    if let Some(issue) = layout.record(record, fields) {
                        return Some(issue);
                    }
                    carry.clear();
                    (start, fields) = (i + 1, 1);
                }
                _ => {}
            }
        }
        carry.extend_from_slice(&block[start..n]);
    }
    // The last record: `quoted`, it never closes a quote.
    if quoted {
        return layout.issue("a closing quote: a quoted field of this row never ends");
    }
    layout.record(&carry, fields)
}

/// [`csv_layout_issue`]'s walk through a file's records.
struct Layout<'a> {
    path: &'a Path,
    /// The header's field count, once read.
    header: Option<usize>,
    /// Data rows before the current record.
    row: usize,
}

impl Layout<'_> {
    /// The file's issue at the current record.
    fn issue(&self, expected: &str) -> Option<LoadError> {
        let issue = Issue { file: file_name(self.path), row: Some(self.row), column: None, value: None, expected: expected.to_string() };
        Some(LoadError::Invalid { issues: vec![issue], total: 1 })
    }

    /// Checks one whole record of `fields` fields (a blank one is skipped).
    fn record(&mut self, record: &[u8], fields: usize) -> Option<LoadError> {
        if record.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        if std::str::from_utf8(record).is_err() {
            return self.issue("text in UTF-8 (this row holds bytes that are not)");
        }
        match self.header {
            None => self.header = Some(fields),
            Some(n) if n != fields => return self.issue(&format!("{n} fields, as the header has (this row has {fields})")),
            Some(_) => {}
        }
        self.row += 1;
        None
    }
}

fn polars_error(path: &Path, e: PolarsError) -> LoadError {
    LoadError::Unreadable { path: PathBuf::from(path), reason: e.to_string() }
}

/// What a column of a type allot does not read should be written as.
const READABLE_TYPES: &str = "a column of a type allot reads: whole numbers as 32- or 64-bit integers, other numbers as 64-bit floats, text as strings, \
     flags as booleans, dates as dates";

/// Runs a Parquet decode of `path`; a failure or a panic inside it (polars
/// fails, or panics, on a column type this build does not read: 8- and
/// 16-bit integers, decimals) is the file's error, naming each such column
/// when the file's schema shows them, not the process's end.
fn decode_parquet(path: &Path, decode: impl FnOnce() -> PolarsResult<DataFrame>) -> Result<DataFrame, LoadError> {
    let said = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(Ok(frame)) => return Ok(frame),
        Ok(Err(e)) => e.to_string(),
        // Polars panics only on a column type it does not read: say what to write.
        Err(panic) => {
            let message = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied()).unwrap_or("no message");
            format!("{message}: expected {READABLE_TYPES}")
        }
    };
    refuse_unreadable_columns(path)?;
    Err(LoadError::Unreadable { path: PathBuf::from(path), reason: said })
}

/// An issue per column of the Parquet file at `path` of a type allot does
/// not read, from its schema alone. Checked before decoding: polars panics
/// on some types (a decimal column, common in Spark and pandas exports), and
/// its worker thread's panic printed a backtrace before the clear error.
fn refuse_unreadable_columns(path: &Path) -> Result<(), LoadError> {
    let issues: Vec<Issue> = unreadable_columns(path)
        .into_iter()
        .map(|(column, dtype)| Issue { file: file_name(path), row: None, column: Some(column), value: Some(dtype), expected: READABLE_TYPES.to_string() })
        .collect();
    if issues.is_empty() {
        return Ok(());
    }
    Err(LoadError::Invalid { total: issues.len(), issues })
}

/// The columns of the Parquet file at `path` whose types allot does not read,
/// with their types (empty when its schema cannot be read either).
fn unreadable_columns(path: &Path) -> Vec<(String, String)> {
    use polars::prelude::ArrowDataType as T;
    let Ok(file) = std::fs::File::open(path) else { return Vec::new() };
    let Ok(schema) = ParquetReader::new(file).schema() else { return Vec::new() };
    schema
        .iter_values()
        .filter(|field| {
            !matches!(
                field.dtype(),
                T::Null | T::Boolean | T::Int32 | T::Int64 | T::UInt32 | T::UInt64 | T::Float32 | T::Float64 | T::Utf8 | T::LargeUtf8 | T::Utf8View | T::Date32 | T::Date64 | T::Timestamp(..)
            )
        })
        .map(|field| (field.name.to_string(), format!("{:?}", field.dtype())))
        .collect()
}

/// A typed cell, as polars read it.
#[derive(Debug, Clone, Copy)]
enum Value {
    Number(f64),
    Whole(i64),
    Flag(bool),
    Date(NaiveDate),
}

/// The column's values through `f`, when the column is typed and `f` takes every
/// present value; `None` sends the column to the text path.
fn typed_values<T>(column: &Column, f: fn(Value) -> Option<T>) -> Option<Vec<Option<T>>> {
    fn through<T, V>(cells: impl Iterator<Item = Option<V>>, len: usize, f: impl Fn(V) -> Option<T>) -> Option<Vec<Option<T>>> {
        let mut out = Vec::with_capacity(len);
        for cell in cells {
            out.push(match cell {
                None => None,
                Some(v) => Some(f(v)?),
            });
        }
        Some(out)
    }
    let len = column.len();
    let as_type = |dtype: &DataType| column.cast(dtype).ok();
    match column.dtype() {
        DataType::Float64 => through(column.f64().ok()?.iter(), len, |x| f(Value::Number(x))),
        DataType::Float32 => through(as_type(&DataType::Float64)?.f64().ok()?.iter(), len, |x| f(Value::Number(x))),
        DataType::Int64 => through(column.i64().ok()?.iter(), len, |i| f(Value::Whole(i))),
        // Every one of these fits an i64; a UInt64 might not, so it goes the text path.
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => {
            through(as_type(&DataType::Int64)?.i64().ok()?.iter(), len, |i| f(Value::Whole(i)))
        }
        DataType::Boolean => through(column.bool().ok()?.iter(), len, |b| f(Value::Flag(b))),
        DataType::Date => through(column.date().ok()?.physical().iter(), len, |d| f(Value::Date(epoch_day(d)?))),
        _ => None,
    }
}

/// The date `days` after 1970-01-01 (polars' Date).
fn epoch_day(days: i32) -> Option<NaiveDate> {
    const UNIX_EPOCH_FROM_CE: i32 = 719_163;
    days.checked_add(UNIX_EPOCH_FROM_CE).and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// A cell parser and a phrase saying what it accepts. `parse` reads a cell's
/// text; `typed` takes a value polars read as its type and must accept exactly
/// the values whose text `parse` accepts, with the same result (a value it
/// rejects sends the column to `parse`, which reports it).
pub struct Parser<T> {
    parse: fn(&str) -> Option<T>,
    typed: fn(Value) -> Option<T>,
    expected: &'static str,
}

/// The largest magnitude a number in a scenario may have (money, units,
/// capacities, weights). Why a bound: the optimizer multiplies inputs
/// together (an uptake's value by its probability, units by items per offer)
/// and HiGHS refuses a model with a coefficient beyond 1e15, or reads 1e20
/// as infinite; a value of 1e16 stopped the solve and one of 1e300 gave a
/// plan with an infinite objective. No real quantity of a retailer's comes
/// near 1e12 (a trillion units or currency units).
pub const LARGEST_INPUT: f64 = 1e12;

/// Whether `v` may stand where a scenario needs a number `>= 0` (a
/// scenario.toml setting, a what-if's new value): the rule of
/// [`NON_NEGATIVE`]'s cells, whose words [`NON_NEGATIVE_WORDS`] are.
pub fn is_non_negative_input(v: f64) -> bool {
    non_negative(v).is_some()
}

/// What [`NON_NEGATIVE`] accepts, in an error's words.
pub const NON_NEGATIVE_WORDS: &str = "a number >= 0 and <= 1e12";

fn finite(v: f64) -> Option<f64> {
    (v.abs() <= LARGEST_INPUT).then_some(v)
}

fn non_negative(v: f64) -> Option<f64> {
    (0.0..=LARGEST_INPUT).contains(&v).then_some(v)
}

fn positive(v: f64) -> Option<f64> {
    (v > 0.0 && v <= LARGEST_INPUT).then_some(v)
}

fn probability(v: f64) -> Option<f64> {
    (v > 0.0 && v <= 1.0).then_some(v)
}

fn whole_from_f64(v: f64) -> Option<u32> {
    (v.fract() == 0.0 && v >= 0.0 && v <= u32::MAX as f64).then_some(v as u32)
}

/// A number from a typed cell: a float, or a whole number (as its text would parse).
fn number(v: Value) -> Option<f64> {
    match v {
        Value::Number(x) => Some(x),
        Value::Whole(i) => Some(i as f64),
        Value::Flag(_) | Value::Date(_) => None,
    }
}

/// `YYYY-MM-DD`: the common zero-padded form without chrono's format machinery,
/// anything else through chrono (which accepts the same set).
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')));
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) {
            return NaiveDate::from_ymd_opt(y as i32, m, d);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Any text.
pub const TEXT: Parser<String> = Parser { parse: |s| Some(s.to_string()), typed: |_| None, expected: "text" };
/// A number of at most [`LARGEST_INPUT`] in magnitude.
pub const NUMBER: Parser<f64> = Parser { parse: |s| s.parse::<f64>().ok().and_then(finite), typed: |v| number(v).and_then(finite), expected: "a number between -1e12 and 1e12" };
/// A number `>= 0`, at most [`LARGEST_INPUT`].
pub const NON_NEGATIVE: Parser<f64> =
    Parser { parse: |s| s.parse::<f64>().ok().and_then(non_negative), typed: |v| number(v).and_then(non_negative), expected: NON_NEGATIVE_WORDS };
/// A number `> 0` (a price), at most [`LARGEST_INPUT`].
pub const POSITIVE: Parser<f64> = Parser { parse: |s| s.parse::<f64>().ok().and_then(positive), typed: |v| number(v).and_then(positive), expected: "a number > 0 and <= 1e12" };
/// A probability in (0, 1].
pub const PROBABILITY: Parser<f64> =
    Parser { parse: |s| s.parse::<f64>().ok().and_then(probability), typed: |v| number(v).and_then(probability), expected: "a probability in (0, 1]" };
/// A whole number `>= 0`.
pub const COUNT: Parser<u32> = Parser {
    parse: |s| s.parse::<u32>().ok().or_else(|| s.parse::<f64>().ok().and_then(whole_from_f64)),
    typed: |v| match v {
        Value::Whole(i) => u32::try_from(i).ok(),
        Value::Number(x) => whole_from_f64(x),
        Value::Flag(_) | Value::Date(_) => None,
    },
    expected: "a whole number >= 0",
};
/// A boolean: true/false, yes/no or 1/0.
pub const BOOL: Parser<bool> = Parser {
    parse: |s| match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "t" | "y" => Some(true),
        "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    },
    typed: |v| match v {
        Value::Flag(b) => Some(b),
        Value::Whole(1) => Some(true),
        Value::Whole(0) => Some(false),
        _ => None,
    },
    expected: "a boolean (true/false)",
};
/// A calendar date `YYYY-MM-DD`.
pub const DATE: Parser<NaiveDate> = Parser {
    parse: parse_date,
    typed: |v| match v {
        Value::Date(d) => Some(d),
        _ => None,
    },
    expected: "a date YYYY-MM-DD",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(body: &str, typed: &[(&str, Kind)]) -> (tempfile::TempDir, Table) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), body).unwrap();
        let t = Table::read(dir.path(), "t", typed).unwrap().unwrap();
        (dir, t)
    }

    fn parquet(mut df: DataFrame) -> (tempfile::TempDir, Table) {
        let dir = tempfile::tempdir().unwrap();
        ParquetWriter::new(std::fs::File::create(dir.path().join("t.parquet")).unwrap()).finish(&mut df).unwrap();
        let t = Table::read(dir.path(), "t", &[]).unwrap().unwrap();
        (dir, t)
    }

    fn dtype(t: &Table, name: &str) -> DataType {
        t.frame.column(name).unwrap().dtype().clone()
    }

    /// The layout check reads a file in 1 MiB blocks: a record split
    /// across blocks is one record (here the first block ends inside a
    /// two-byte `é`, which alone is no UTF-8), and the row it names is the
    /// file's.
    #[test]
    fn a_short_row_past_the_first_block_is_named_by_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 150_000; // 16 bytes each, the first 24
        let mut body = String::from("id,p,quoted\n");
        for i in 0..rows {
            body.push_str(&format!("{:0width$},0.5,\"é,\"\n", i, width = if i == 0 { 14 } else { 6 }));
        }
        assert_eq!(&body.as_bytes()[(1 << 20) - 1..(1 << 20) + 1], "é".as_bytes(), "the first block ends inside an é");
        body.push_str("x,0.5\n");
        std::fs::write(dir.path().join("t.csv"), &body).unwrap();
        let e = Table::read(dir.path(), "t", &[]).err().expect("the short row is refused").to_string();
        assert!(e.contains(&format!("t.csv row {}", rows + 1)) && e.contains("3 fields, as the header has (this row has 2)"), "{e}");
        // Without it, every record (quoted commas across block ends) is whole.
        std::fs::write(dir.path().join("t.csv"), &body[..body.len() - "x,0.5\n".len()]).unwrap();
        assert_eq!(Table::read(dir.path(), "t", &[]).unwrap().unwrap().len(), rows);
    }

    /// The fast path: declared CSV columns arrive typed and parse without text.
    #[test]
    fn declared_csv_columns_are_read_as_their_types() {
        let (_d, t) = csv("id,p,n,b\n007,0.5,3,true\n008,,4,FALSE\n", &[("p", Kind::Number), ("n", Kind::Whole), ("b", Kind::Flag)]);
        assert_eq!((dtype(&t, "id"), dtype(&t, "p"), dtype(&t, "n"), dtype(&t, "b")), (DataType::String, DataType::Float64, DataType::Int64, DataType::Boolean));
        let mut issues = Issues::default();
        assert_eq!(t.parse("id", true, &mut issues, TEXT), vec![Some("007".to_string()), Some("008".to_string())]);
        assert_eq!(t.parse("p", false, &mut issues, PROBABILITY), vec![Some(0.5), None]);
        assert_eq!(t.parse("n", true, &mut issues, COUNT), vec![Some(3), Some(4)]);
        assert_eq!(t.parse("b", true, &mut issues, BOOL), vec![Some(true), Some(false)]);
        assert!(issues.is_empty(), "{:?}", issues.list);
        assert!(t.text.get().is_none(), "the typed path re-read the file as text");
    }

    /// A value polars reads but the rule rejects is quoted as the file writes it.
    #[test]
    fn rejected_typed_value_is_reported_as_written() {
        let (_d, t) = csv("q\n1\n-3.50\n\n", &[("q", Kind::Number)]);
        assert_eq!(dtype(&t, "q"), DataType::Float64);
        let mut issues = Issues::default();
        assert_eq!(t.parse("q", true, &mut issues, NON_NEGATIVE), vec![Some(1.0), None, None]);
        let found: Vec<_> = issues.list.iter().map(|i| (i.row, i.value.clone())).collect();
        assert_eq!(found, vec![(Some(2), Some("-3.50".to_string())), (Some(3), None)]);
    }

    /// A cell polars cannot parse as the declared type: the file is read as text
    /// and every cell is judged on its own (`yes` and `1` are booleans too).
    #[test]
    fn unparsable_typed_cell_falls_back_to_text() {
        let (_d, t) = csv("b,n\nyes,1\n1,2.0\nmaybe,x\n", &[("b", Kind::Flag), ("n", Kind::Whole)]);
        assert_eq!(dtype(&t, "b"), DataType::String);
        let mut issues = Issues::default();
        assert_eq!(t.parse("b", false, &mut issues, BOOL), vec![Some(true), Some(true), None]);
        assert_eq!(t.parse("n", false, &mut issues, COUNT), vec![Some(1), Some(2), None]);
        let found: Vec<_> = issues.list.iter().map(|i| (i.row, i.column.clone().unwrap(), i.value.clone().unwrap())).collect();
        assert_eq!(found, vec![(Some(3), "b".to_string(), "maybe".to_string()), (Some(3), "n".to_string(), "x".to_string())]);
    }

    /// Dates are `YYYY-MM-DD` only: polars' own date parsing would also take
    /// `05-01-2026` (as 5 January).
    #[test]
    fn csv_dates_are_strict() {
        let (_d, t) = csv("d\n2026-01-05\n05-01-2026\n2026-02-29\n2024-02-29\n", &[]);
        let mut issues = Issues::default();
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(t.parse("d", false, &mut issues, DATE), vec![d(2026, 1, 5), None, None, d(2024, 2, 29)]);
        assert_eq!(issues.total, 2);
    }

    /// The hand-written date fast path agrees with chrono on every kind of input.
    #[test]
    fn date_fast_path_agrees_with_chrono() {
        for s in ["2026-01-05", "2026-13-01", "2026-00-10", "2026-02-30", "2024-02-29", "0000-01-01", "2026-1-05", "2026-01-5", "+2026-01-05", "2026/01/05", "20260105", "2026-01-0a"] {
            assert_eq!(parse_date(s), NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(), "{s}");
        }
    }

    /// Parquet keeps its physical types; numbers stored as integers, ids stored
    /// as integers and dates all parse, and a rejected value reads as before.
    #[test]
    fn misspelt_columns_are_found_and_short_names_are_not_guessed() {
        let known = ["consent", "suppressed", "zone", "tier", "p"];
        assert_eq!(likely_meant("consnet", known.iter().copied()), Some("consent"));
        assert_eq!(likely_meant("Consent", known.iter().copied()), Some("consent"));
        assert_eq!(likely_meant("supressed", known.iter().copied()), Some("suppressed"));
        assert_eq!(likely_meant("zon", known.iter().copied()), Some("zone"));
        assert_eq!(likely_meant("tiers", known.iter().copied()), Some("tier"));
        assert_eq!(likely_meant("tear", known.iter().copied()), None);
        assert_eq!(likely_meant("region", known.iter().copied()), None);
        assert_eq!(likely_meant("id", known.iter().copied()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn parquet_columns_keep_their_types() {
        let df = df!(
            "id" => [7i64, 8],
            "p" => [0.5f64, 1.5],
            "n" => [3i32, 4],
            "b" => [Some(true), None],
            "d" => [NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()],
        )
        .unwrap();
        let (_d, t) = parquet(df);
        let mut issues = Issues::default();
        assert_eq!(t.parse("id", true, &mut issues, TEXT), vec![Some("7".to_string()), Some("8".to_string())]);
        assert_eq!(t.parse("n", true, &mut issues, NUMBER), vec![Some(3.0), Some(4.0)]);
        assert_eq!(t.parse("n", true, &mut issues, COUNT), vec![Some(3), Some(4)]);
        assert_eq!(t.parse("b", false, &mut issues, BOOL), vec![Some(true), None]);
        assert_eq!(t.parse("d", true, &mut issues, DATE), vec![NaiveDate::from_ymd_opt(2026, 1, 5), NaiveDate::from_ymd_opt(2026, 2, 1)]);
        assert!(issues.is_empty(), "{:?}", issues.list);
        assert_eq!(t.parse("p", true, &mut issues, PROBABILITY), vec![Some(0.5), None]);
        assert_eq!(issues.list[0].to_string(), "t.parquet row 2 column `p`: got \"1.5\", expected a probability in (0, 1]");
    }

    /// A Parquet table read a row group at a time: every row once, in order;
    /// a cell's issue names its row in the whole file; a missing column is
    /// one issue, not one per batch; the header is checked once.
    #[test]
    fn a_parquet_table_is_read_a_row_group_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut df = df!("id" => ["a", "b", "c", "d", "e", "f", "g"], "p" => [0.1f64, 0.2, 0.3, 0.4, 0.5, 1.6, 0.7], "absnet" => [0i64; 7]).unwrap();
        ParquetWriter::new(std::fs::File::create(dir.path().join("t.parquet")).unwrap()).with_row_group_size(Some(3)).finish(&mut df).unwrap();
        let batches = Table::read_in_batches(dir.path(), "t", &[]).unwrap().unwrap();
        assert_eq!((batches.file.as_str(), batches.rows), ("t.parquet", 7));
        let (mut issues, mut notes) = (Issues::default(), Vec::new());
        let (mut sizes, mut ids, mut ps) = (Vec::new(), Vec::new(), Vec::new());
        for t in batches {
            let t = t.unwrap();
            sizes.push(t.len());
            ids.extend(t.parse_with("id", true, &mut issues, "an id", |s| Some(s.to_string())));
            ps.extend(t.parse("p", true, &mut issues, PROBABILITY));
            t.parse_with("absent", true, &mut issues, "an absent column", |s| Some(s.to_string()));
            t.check_header(&mut issues, &mut notes);
        }
        // The writer's groups: at most 3 rows, the last short one merged (3 + 4).
        assert!(sizes.len() > 1 && sizes.iter().sum::<usize>() == 7, "{sizes:?}");
        assert_eq!(ids.into_iter().flatten().collect::<String>(), "abcdefg");
        assert_eq!(ps, [Some(0.1), Some(0.2), Some(0.3), Some(0.4), Some(0.5), None, Some(0.7)]);
        let said: Vec<String> = issues.list.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said.contains(&"t.parquet row 6 column `p`: got \"1.6\", expected a probability in (0, 1]".to_string()), "{said:?}");
        assert_eq!(said.iter().filter(|s| s.contains("column `absent`")).count(), 1, "{said:?}");
        assert_eq!(said.iter().filter(|s| s.contains("`absnet`") && s.contains("did you mean `absent`")).count(), 1, "{said:?}");
    }

    /// A Parquet column of a type this build cannot decode (written by
    /// pyarrow: a decimal, which polars panics on, and 8- and 16-bit integers,
    /// which it refuses) is the file's error naming each such column and its
    /// type, found in the schema before anything is decoded, and not the others.
    #[test]
    fn an_unreadable_parquet_column_type_is_an_error_naming_the_column() {
        for (fixture, named, readable) in [("decimal_column", &["`p`: got \"Decimal(6, 4)\""][..], "`id`"), ("narrow_int_columns", &["`on_hand`: got \"Int8\"", "`qty`: got \"Int16\""][..], "`p`")] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::copy(format!("{}/../tests/fixtures/{fixture}.parquet", env!("CARGO_MANIFEST_DIR")), dir.path().join("t.parquet")).unwrap();
            // Read by batches, the schema is refused before any batch is decoded.
            for error in [Table::read(dir.path(), "t", &[]).err(), Table::read_in_batches(dir.path(), "t", &[]).err()] {
                let error = error.expect("an error").to_string();
                assert!(error.contains("t.parquet") && error.contains("a column of a type allot reads"), "{error}");
                for column in named {
                    assert!(error.contains(column), "{fixture}: {column} not in {error}");
                }
                assert!(!error.contains(readable), "{fixture}: {error}");
            }
        }
    }

    /// A row group that cannot be decoded ends the batches with an error
    /// naming the file, after the groups before it: never a table cut short
    /// in silence (the decoding thread stops at the failure; the caller sees it).
    #[test]
    fn a_row_group_that_cannot_be_read_is_an_error_not_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut df = df!("id" => (0..9).map(|i| format!("c{i}")).collect::<Vec<_>>(), "p" => [0.5f64; 9]).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).with_row_group_size(Some(3)).finish(&mut df).unwrap();
        let metadata = ParquetReader::new(std::fs::File::open(&path).unwrap()).get_metadata().unwrap().clone();
        assert_eq!(metadata.row_groups.len(), 3);
        // The second group's pages overwritten: the footer still reads.
        let damaged = metadata.row_groups[1].full_byte_range();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[damaged.start as usize..damaged.end as usize].fill(0xff);
        std::fs::write(&path, bytes).unwrap();

        let mut batches = Table::read_in_batches(dir.path(), "t", &[]).unwrap().unwrap();
        assert_eq!(batches.next().unwrap().unwrap().len(), 3);
        let error = batches.next().expect("a batch after the first").err().expect("the damaged group is an error").to_string();
        assert!(error.contains("t.parquet"), "{error}");
        assert!(batches.next().is_none(), "no group after the failure");
    }
}
