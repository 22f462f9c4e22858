//! Plan outputs as tables (CSV or Parquet) and `kpis.json`, written atomically.
//!
//! Every file is written to a temporary name in its final directory, flushed to
//! disk, then renamed over the final name: a reader sees the old file or the new
//! one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use allot_optimizer::plan::Kpis;
use allot_optimizer::{Plan, Problem};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::schema;

/// Test hook: when set to N, the process aborts after writing N plan files, as a
/// crash would (used by the crash-safety tests; never set in production).
pub const FAULT_ENV: &str = "ALLOT_TEST_ABORT_AFTER_FILES";

/// Aborts the process at the configured plan-file count (see [`FAULT_ENV`]).
fn fault_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITTEN: AtomicUsize = AtomicUsize::new(0);
    if let Some(limit) = std::env::var(FAULT_ENV).ok().and_then(|v| v.parse::<usize>().ok()) {
        if WRITTEN.fetch_add(1, Ordering::SeqCst) + 1 >= limit {
            std::process::abort();
        }
    }
}

/// Table encoding of plan outputs.
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

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// The output tables of a plan, by file stem.
pub const OUTPUT_TABLES: [&str; 4] = ["eligibility", "reservations", "pick_priorities", "bid_prices"];
/// The KPI file name.
pub const KPIS_FILE: &str = "kpis.json";

/// Rounds away float noise below 1e-9 so that tables print `1.6036`, not
/// `1.6036000000000001`; far below any planning precision.
fn tidy(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

/// Builds the output tables of a plan, with ids resolved to names.
pub fn plan_tables(problem: &Problem, plan: &Plan) -> Result<Vec<(&'static str, DataFrame)>, PolarsError> {
    let e = &plan.eligibility;
    let customer = |c: u32| problem.customers.id[c as usize].as_str();
    let offer = |o: u32| problem.offers[o as usize].id.as_str();
    let sku = |s: u32| problem.skus[s as usize].as_str();
    let warehouse = |w: u32| problem.warehouses[w as usize].as_str();
    let eligibility = DataFrame::new(
        e.len(),
        vec![
            Column::new("customer_id".into(), e.iter().map(|r| customer(r.customer)).collect::<Vec<_>>()),
            Column::new("offer_id".into(), e.iter().map(|r| offer(r.offer)).collect::<Vec<_>>()),
            Column::new("x".into(), e.iter().map(|r| tidy(r.x)).collect::<Vec<_>>()),
            Column::new("eligible".into(), e.iter().map(|r| r.eligible).collect::<Vec<_>>()),
            Column::new("expected_value".into(), e.iter().map(|r| tidy(r.expected_value)).collect::<Vec<_>>()),
            Column::new("rank".into(), e.iter().map(|r| r.rank).collect::<Vec<_>>()),
            Column::new("reason".into(), e.iter().map(|r| r.reason.code()).collect::<Vec<_>>()),
        ],
    )?;
    let r = &plan.reservations;
    let reservations = DataFrame::new(
        r.len(),
        vec![
            Column::new("warehouse_id".into(), r.iter().map(|x| warehouse(x.warehouse)).collect::<Vec<_>>()),
            Column::new("sku".into(), r.iter().map(|x| sku(x.sku)).collect::<Vec<_>>()),
            Column::new("tier".into(), r.iter().map(|x| problem.tiers[x.tier as usize].name.as_str()).collect::<Vec<_>>()),
            Column::new("units".into(), r.iter().map(|x| tidy(x.units)).collect::<Vec<_>>()),
        ],
    )?;
    let p = &plan.pick_priorities;
    let picks = DataFrame::new(
        p.len(),
        vec![
            Column::new("warehouse_id".into(), p.iter().map(|x| warehouse(x.warehouse)).collect::<Vec<_>>()),
            Column::new("rank".into(), p.iter().map(|x| x.rank).collect::<Vec<_>>()),
            Column::new("offer_id".into(), p.iter().map(|x| offer(x.offer)).collect::<Vec<_>>()),
            Column::new("sku".into(), p.iter().map(|x| sku(x.sku)).collect::<Vec<_>>()),
            Column::new("units".into(), p.iter().map(|x| tidy(x.units)).collect::<Vec<_>>()),
            Column::new("priority_score".into(), p.iter().map(|x| tidy(x.priority_score)).collect::<Vec<_>>()),
        ],
    )?;
    let b = &plan.bid_prices;
    let bids = DataFrame::new(
        b.len(),
        vec![
            Column::new("zone".into(), b.iter().map(|x| problem.zones[x.zone as usize].id.as_str()).collect::<Vec<_>>()),
            Column::new("sku".into(), b.iter().map(|x| sku(x.sku)).collect::<Vec<_>>()),
            Column::new("price".into(), b.iter().map(|x| tidy(x.price)).collect::<Vec<_>>()),
        ],
    )?;
    Ok(vec![
        ("eligibility", eligibility),
        ("reservations", reservations),
        ("pick_priorities", picks),
        ("bid_prices", bids),
    ])
}

/// Writes a plan's tables and `kpis.json` (with its `schema_version`) into `dir` (created if needed), each
/// file atomically. Returns the paths written.
pub fn write_plan_outputs(dir: &Path, problem: &Problem, plan: &Plan, kpis: &Kpis, format: Format) -> Result<Vec<PathBuf>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
    let tables = plan_tables(problem, plan).map_err(|e| StoreError::Table { path: dir.to_path_buf(), reason: e.to_string() })?;
    let mut written = Vec::new();
    for (stem, mut df) in tables {
        written.push(write_table(dir, stem, &mut df, format)?);
        fault_point();
    }
    let path = dir.join(KPIS_FILE);
    write_versioned(&path, kpis)?;
    written.push(path);
    sync_dir(dir)?;
    Ok(written)
}

/// Writes one table as `dir/<stem>.<ext>`, atomically; returns its path.
pub(crate) fn write_table(dir: &Path, stem: &str, df: &mut DataFrame, format: Format) -> Result<PathBuf, StoreError> {
    let path = dir.join(format!("{stem}.{}", format.extension()));
    write_atomic(&path, |file| encode(df, format, file).map_err(|reason| StoreError::Table { path: path.clone(), reason }))?;
    Ok(path)
}

fn encode(df: &mut DataFrame, format: Format, file: &mut File) -> Result<(), String> {
    match format {
        Format::Csv => CsvWriter::new(file).finish(df).map_err(|e| e.to_string()),
        Format::Parquet => ParquetWriter::new(file).finish(df).map(|_| ()).map_err(|e| e.to_string()),
    }
}

/// Writes `path` through a temporary sibling: write, fsync, rename, so the
/// final name only ever holds a complete file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<(), StoreError>) -> Result<(), StoreError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| StoreError::io("cannot create", &tmp, e))?;
        write(&mut file)?;
        file.flush().map_err(|e| StoreError::io("cannot write", &tmp, e))?;
        file.sync_all().map_err(|e| StoreError::io("cannot sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| StoreError::io("cannot rename into", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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

/// Reads a plan table written by [`write_plan_outputs`].
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
