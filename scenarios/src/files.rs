//! Files on disk, written so that a crash never leaves half of one: every
//! write goes to a temporary sibling, is flushed and synced, then renamed over
//! the final name. Tables are CSV or Parquet; JSON artefacts carry their
//! `schema_version` (see [`crate::schema`]). Plans, partitions, forecasts and
//! reports all write through here.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::io::parquet::write::{get_encodings, BatchedWriter};
use polars::prelude::*;
use polars_parquet::write::{array_to_columns, compress, CompressedPage, Encoding, ParquetType, Version, WriteOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::schema;

/// Table encoding of the files allot writes (plans, forecasts, serving tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated text with a header.
    #[default]
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// How a run's output tables are encoded: as the planner asked, or by the
/// scenario's size (Parquet from [`PARQUET_FROM_CUSTOMERS`] customers, CSV
/// below). Why by size: at scale the eligibility table has a row per pair
/// (6.3 million at 1,000,000 customers), which CSV makes several times
/// larger and slower to write and read than Parquet, while a small run's
/// CSV is what a planner opens in a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Always this encoding.
    Fixed(Format),
    /// By the number of customers.
    BySize,
}

/// Customers from which [`OutputFormat::BySize`] writes Parquet.
pub const PARQUET_FROM_CUSTOMERS: usize = 100_000;

impl OutputFormat {
    /// The encoding for a scenario of `customers` customers.
    pub fn for_customers(self, customers: usize) -> Format {
        match self {
            OutputFormat::Fixed(format) => format,
            OutputFormat::BySize if customers >= PARQUET_FROM_CUSTOMERS => Format::Parquet,
            OutputFormat::BySize => Format::Csv,
        }
    }
}

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// Writes one table as `dir/<stem>.<ext>`, atomically; returns its path.
pub fn write_table(dir: &Path, stem: &str, df: &mut DataFrame, format: Format) -> Result<PathBuf, StoreError> {
    let path = dir.join(format!("{stem}.{}", format.extension()));
    write_atomic(&path, |file| encode(df, format, file).map_err(|reason| StoreError::Table { path: path.clone(), reason }))?;
    Ok(path)
}

/// Rows per batch of [`write_table_in_batches`]: polars' row group size
/// (512 × 512 rows). A Parquet file gets one row group per batch (one frame
/// was split into groups of equal size instead; the rows are the same).
pub const BATCH_ROWS: usize = 512 * 512;

/// Writes a table of `rows` rows into `<dir>/<stem>.<ext>` atomically, its
/// frame built [`BATCH_ROWS`] rows at a time by `batch(range)`: the next
/// batch is built on another thread while this one is encoded (and the one
/// before written).
/// Why: the eligibility table has a row per pair (80 million at 10 million
/// customers); as one frame its text columns alone held gigabytes beside
/// the plan they were copied from, and building it and encoding it ran one
/// after the other on one core. A batch is a few megabytes.
pub fn write_table_in_batches(
    dir: &Path,
    stem: &str,
    rows: usize,
    format: Format,
    batch: impl Fn(std::ops::Range<usize>) -> PolarsResult<DataFrame> + Sync,
) -> Result<PathBuf, StoreError> {
    let path = dir.join(format!("{stem}.{}", format.extension()));
    write_atomic(&path, |file| encode_in_batches(file, format, rows, BATCH_ROWS, &batch).map_err(|e| StoreError::Table { path: path.clone(), reason: e.to_string() }))?;
    Ok(path)
}

/// Encodes a table of `rows` rows, built `batch_rows` at a time by `batch`
/// (see [`write_table_in_batches`]), into `file`.
fn encode_in_batches(
    file: &mut AtomicWriter,
    format: Format,
    rows: usize,
    batch_rows: usize,
    batch: &(impl Fn(std::ops::Range<usize>) -> PolarsResult<DataFrame> + Sync),
) -> PolarsResult<()> {
    let range = |start: usize| start..(start + batch_rows).min(rows);
    // An empty table is one empty batch: its header (or schema) is still written.
    let mut current = batch(range(0))?;
    let starts = (batch_rows..rows).step_by(batch_rows);
    match format {
        Format::Csv => {
            let mut writer = CsvWriter::new(file).batched(current.schema())?;
            for start in starts {
                let (written, next) = rayon::join(|| writer.write_batch(&current), || batch(range(start)));
                written?;
                current = next?;
            }
            writer.write_batch(&current)?;
            writer.finish()
        }
        Format::Parquet => {
            let mut writer = ParquetWriter::new(file).batched(current.schema())?;
            let encoder = RowGroupEncoder::new(&mut writer, current.schema());
            // Batch k is encoded while batch k + 1 is built, and written
            // just before batch k + 1 is encoded (beside the build of k + 2).
            let mut encoded = Vec::new();
            for start in starts {
                let (done, next) = rayon::join(
                    || {
                        RowGroupEncoder::write(&mut writer, &encoded)?;
                        encoder.encode(&current)
                    },
                    || batch(range(start)),
                );
                encoded = done?;
                current = next?;
            }
            RowGroupEncoder::write(&mut writer, &encoded)?;
            RowGroupEncoder::write(&mut writer, &encoder.encode(&current)?)?;
            writer.finish().map(|_| ())
        }
    }
}

/// A Parquet row group encoded and compressed, ready to be written: its
/// number of rows and each column's pages.
struct EncodedRowGroup {
    rows: u64,
    columns: Vec<Vec<CompressedPage>>,
}

/// Encodes and compresses a frame's row groups with the settings of polars'
/// own [`ParquetWriter`] (the bytes are the same), every column at once.
/// Why not `BatchedWriter::write_batch`: it encodes the columns in parallel
/// but compresses their pages one after the other while writing them, so at
/// 1M customers zstd (0.73 s of the eligibility table's 1.6 s) ran on one
/// core while the other waited.
struct RowGroupEncoder {
    fields: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
}

impl RowGroupEncoder {
    /// The encoder of frames with `schema`, written by `writer`.
    fn new<W: Write>(writer: &mut BatchedWriter<W>, schema: &Schema) -> Self {
        let fields = writer.parquet_schema().fields().to_vec();
        let encodings = get_encodings(&schema.to_arrow(CompatLevel::newest())).iter().cloned().collect();
        // `ParquetWriter::new`'s defaults, as its `batched` writer uses them.
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression: ParquetCompression::default().into(),
            version: Version::V1,
            data_page_size: None,
        };
        RowGroupEncoder { fields, encodings, options }
    }

    /// The row groups of `df` (one per chunk), encoded and compressed.
    fn encode(&self, df: &DataFrame) -> PolarsResult<Vec<EncodedRowGroup>> {
        let options = self.options;
        let mut groups = Vec::new();
        for chunk in df.iter_chunks(CompatLevel::newest(), false).filter(|chunk| !chunk.is_empty()) {
            let columns = chunk
                .columns()
                .par_iter()
                .zip(&self.fields)
                .zip(&self.encodings)
                .map(|((array, field), encoding)| {
                    array_to_columns(array, field.clone(), options, encoding)?
                        .into_iter()
                        .map(|pages| pages.map(|page| Ok(compress(page?, Vec::new(), options.compression)?)).collect::<PolarsResult<Vec<_>>>())
                        .collect::<PolarsResult<Vec<_>>>()
                })
                .collect::<PolarsResult<Vec<_>>>()?;
            groups.push(EncodedRowGroup { rows: chunk.len() as u64, columns: columns.into_iter().flatten().collect() });
        }
        Ok(groups)
    }

    /// Writes encoded row groups, in order.
    fn write<W: Write>(writer: &mut BatchedWriter<W>, groups: &[EncodedRowGroup]) -> PolarsResult<()> {
        groups.iter().try_for_each(|group| writer.write_row_group(group.rows, &group.columns))
    }
}

fn encode(df: &mut DataFrame, format: Format, file: &mut AtomicWriter) -> Result<(), String> {
    match format {
        Format::Csv => CsvWriter::new(file).finish(df).map_err(|e| e.to_string()),
        Format::Parquet => ParquetWriter::new(file).finish(df).map(|_| ()).map_err(|e| e.to_string()),
    }
}

/// What a [`write_atomic`] callback writes to: the temporary file behind a
/// buffer of [`WRITE_BUFFER`] bytes. Why buffered: serde_json writes a call
/// per token and polars' Parquet writer one per page header, so a 1M-customer
/// plan took 190,000 write calls (its `serving.json` alone 128,000 for
/// 300 KB).
pub type AtomicWriter = BufWriter<File>;
/// The buffer of an [`AtomicWriter`]: larger than a Parquet page, so that a
/// table's pages go out in a few large writes.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes `path` through a temporary sibling: write, fsync, rename, so the
/// final name only ever holds a complete file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut AtomicWriter) -> Result<(), StoreError>) -> Result<(), StoreError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", unique_suffix()));
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| StoreError::io("cannot create", &tmp, e))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| StoreError::io("cannot write", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| StoreError::io("cannot sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io("cannot rename into", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A directory built beside its final place and swapped in whole once the
/// work that fills it has succeeded ([`StagedDir::publish`]); dropped
/// unpublished (a failed run), it is removed. Why: a run's output directory
/// written in place, file by file, was left mixing a failed run's files
/// with an earlier run's, or looking complete for a plan version the store
/// never saved, and kept the other encoding's tables of an earlier run.
pub struct StagedDir {
    target: PathBuf,
    staging: PathBuf,
    published: bool,
}

impl StagedDir {
    /// A new, empty staging directory for `target` (a hidden sibling of it).
    pub fn new(target: &Path) -> Result<Self, StoreError> {
        let parent = parent_dir(target);
        std::fs::create_dir_all(&parent).map_err(|e| StoreError::io("cannot create", &parent, e))?;
        let staging = parent.join(format!(".{}.partial-{}", dir_name(target), unique_suffix()));
        std::fs::create_dir(&staging).map_err(|e| StoreError::io("cannot create", &staging, e))?;
        Ok(StagedDir { target: target.to_path_buf(), staging, published: false })
    }

    /// Where the files go until [`StagedDir::publish`].
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the staging directory in the target's place: the target as it was
    /// (when there is one) is renamed aside, the staging directory renamed in,
    /// and the old one removed. A reader sees the old directory or the new
    /// one, never a mix (a crash between the two renames leaves no target,
    /// and both beside it).
    pub fn publish(mut self) -> Result<(), StoreError> {
        sync_dir(&self.staging)?;
        let parent = parent_dir(&self.target);
        let aside = parent.join(format!(".{}.replaced-{}", dir_name(&self.target), unique_suffix()));
        let replaced = match std::fs::rename(&self.target, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(StoreError::io("cannot move aside", &self.target, e)),
        };
        std::fs::rename(&self.staging, &self.target).map_err(|e| StoreError::io("cannot rename into", &self.target, e))?;
        self.published = true;
        sync_dir(&parent)?;
        if replaced {
            std::fs::remove_dir_all(&aside).map_err(|e| StoreError::io("cannot remove", &aside, e))?;
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn dir_name(path: &Path) -> String {
    path.file_name().map_or_else(|| "out".to_string(), |n| n.to_string_lossy().into_owned())
}

/// A name suffix no other writer uses at the same time (process id, a
/// per-process counter, the time): threads and processes writing the same file
/// never share a temporary.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_atomic(path, |file| {
        serde_json::to_writer_pretty(&mut *file, value).map_err(|e| StoreError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
        file.write_all(b"\n").map_err(|e| StoreError::io("cannot write", path, e))
    })
}

/// Writes an artefact (a struct) as pretty JSON with its `schema_version`
/// first, atomically (see [`crate::schema`]).
pub fn write_versioned<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_json_atomic(path, &schema::tagged(value))
}

/// Writes a list artefact as `{"schema_version", "values"}`, atomically.
pub fn write_versioned_list<T: Serialize>(path: &Path, values: &[T]) -> Result<(), StoreError> {
    write_json_atomic(path, &schema::tagged_list(values))
}

/// Flushes a directory's entries (new names, renames) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io("cannot sync directory", dir, e))
}

/// Reads a table written by [`write_table`] (CSV or Parquet, by extension).
pub fn read_table(path: &Path) -> Result<DataFrame, StoreError> {
    let err = |e: PolarsError| StoreError::Table { path: path.to_path_buf(), reason: e.to_string() };
    if path.extension().is_some_and(|e| e == "parquet") {
        let file = File::open(path).map_err(|e| StoreError::io("cannot open", path, e))?;
        ParquetReader::new(file).finish().map_err(err)
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(err)
    }
}

/// Rewrites every CSV table of a scenario directory as Parquet (typed columns as
/// polars infers them), atomically per file, then removes the CSV: the loader reads
/// either, and Parquet is what large scenarios are shipped as.
pub fn convert_scenario_to_parquet(dir: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io("cannot read", dir, e))?;
    let mut csvs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "csv")).collect();
    csvs.sort();
    for csv in csvs {
        let mut df = read_table(&csv)?;
        let parquet = csv.with_extension("parquet");
        write_atomic(&parquet, |file| encode(&mut df, Format::Parquet, file).map_err(|reason| StoreError::Table { path: parquet.clone(), reason }))?;
        std::fs::remove_file(&csv).map_err(|e| StoreError::io("cannot remove", &csv, e))?;
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `auto` switches to Parquet at the documented size and a fixed
    /// encoding ignores the size.
    #[test]
    fn output_format_by_size_switches_to_parquet_at_scale() {
        assert_eq!(OutputFormat::BySize.for_customers(PARQUET_FROM_CUSTOMERS - 1), Format::Csv);
        assert_eq!(OutputFormat::BySize.for_customers(PARQUET_FROM_CUSTOMERS), Format::Parquet);
        assert_eq!(OutputFormat::Fixed(Format::Csv).for_customers(10 * PARQUET_FROM_CUSTOMERS), Format::Csv);
        assert_eq!(OutputFormat::Fixed(Format::Parquet).for_customers(1), Format::Parquet);
    }

    /// A table written in batches reads back as the whole table, in order,
    /// in both encodings, with a last batch shorter than the others; an
    /// empty one still has its header.
    #[test]
    fn a_table_written_in_batches_reads_back_whole() {
        let ids: Vec<String> = (0..7).map(|i| format!("c{i}")).collect();
        let values: Vec<f64> = (0..7).map(|i| f64::from(i) * 0.5).collect();
        let frame = |rows: std::ops::Range<usize>| {
            DataFrame::new(rows.len(), vec![Column::new("id".into(), &ids[rows.clone()]), Column::new("value".into(), &values[rows])])
        };
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Csv, Format::Parquet] {
            for rows in [7, 0] {
                let path = dir.path().join(format!("t{rows}.{}", format.extension()));
                let mut file = BufWriter::new(File::create(&path).unwrap());
                encode_in_batches(&mut file, format, rows, 3, &frame).unwrap();
                file.flush().unwrap();
                drop(file);
                let read = match format {
                    Format::Csv => CsvReadOptions::default().try_into_reader_with_file_path(Some(path.clone())).unwrap().finish().unwrap(),
                    Format::Parquet => ParquetReader::new(File::open(&path).unwrap()).finish().unwrap(),
                };
                // (A header alone gives no types to compare.)
                assert!(rows == 0 && read.height() == 0 || read.equals(&frame(0..rows).unwrap()), "{format:?}, {rows} rows: {read}");
                assert_eq!(read.get_column_names(), ["id", "value"]);
            }
        }
    }

    /// The row groups encoded ahead ([`RowGroupEncoder`]) are the bytes
    /// polars' own batched writer gives the same batches: same encodings,
    /// compression, statistics and page layout.
    #[test]
    fn row_groups_encoded_ahead_are_polars_own_bytes() {
        let ids: Vec<String> = (0..2000).map(|i| format!("c{}", i / 7)).collect();
        let values: Vec<f64> = (0..2000).map(|i| if i % 5 == 0 { 0.0 } else { f64::from(i).sqrt() }).collect();
        let flags: Vec<bool> = (0..2000).map(|i| i % 3 == 0).collect();
        let frame = |rows: std::ops::Range<usize>| {
            DataFrame::new(
                rows.len(),
                vec![Column::new("id".into(), &ids[rows.clone()]), Column::new("value".into(), &values[rows.clone()]), Column::new("flag".into(), &flags[rows])],
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.parquet");
        let mut file = BufWriter::new(File::create(&ours).unwrap());
        encode_in_batches(&mut file, Format::Parquet, 2000, 600, &frame).unwrap();
        file.flush().unwrap();
        drop(file);
        let mut theirs = Vec::new();
        let mut writer = ParquetWriter::new(&mut theirs).batched(frame(0..1).unwrap().schema()).unwrap();
        for start in (0..2000).step_by(600) {
            writer.write_batch(&frame(start..(start + 600).min(2000)).unwrap()).unwrap();
        }
        writer.finish().unwrap();
        assert_eq!(std::fs::read(&ours).unwrap(), theirs);
    }
}
