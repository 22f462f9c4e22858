//! A plan's outputs: its tables (eligibility, reservations, pick priorities,
//! bid prices) and `kpis.json`, each written atomically through [`crate::files`].

use std::path::{Path, PathBuf};

use allot_optimizer::plan::{EligibilityRow, Kpis, Reason};
use allot_optimizer::{Plan, Problem};
use polars::prelude::*;

use crate::error::StoreError;
use crate::files::{sync_dir, write_atomic, write_table, write_table_in_batches, write_versioned, Format};

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

/// The output tables of a plan, by file stem.
pub const OUTPUT_TABLES: [&str; 4] = ["eligibility", "reservations", "pick_priorities", "bid_prices"];
/// The KPI file name.
pub const KPIS_FILE: &str = "kpis.json";

/// Rounds away float noise below 1e-9 so that tables print `1.6036`, not
/// `1.6036000000000001`; far below any planning precision.
fn tidy(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

/// The eligibility table of a plan (one row per uptake pair), built a range
/// of rows at a time ([`write_table_in_batches`]), with ids resolved to names.
///
/// Its text columns are gathered by index from columns of the distinct
/// names (customers', offers', reasons'), each built once: a gathered row
/// copies a 16-byte view, not its text. Why: building the batches' text
/// from `&str` was a third of the table's write at 1M customers (0.6 s of
/// CPU), as long as its compression.
pub struct EligibilityTable<'a> {
    problem: &'a Problem,
    plan: &'a Plan,
    customer_ids: StringChunked,
    offer_ids: StringChunked,
    /// Each distinct reason's row in `reason_codes` (a few dozen codes; a
    /// string per row was 80M allocations at 10M customers).
    reasons: foldhash::HashMap<Reason, IdxSize>,
    reason_codes: StringChunked,
    /// Whether the table has a `p` column.
    with_p: bool,
}

impl<'a> EligibilityTable<'a> {
    /// The table of `plan`.
    pub fn new(problem: &'a Problem, plan: &'a Plan) -> Self {
        assert_eq!(plan.eligibility.len(), problem.uptake.len(), "the eligibility table of a plan with the problem it was derived from");
        let mut reasons: foldhash::HashMap<Reason, IdxSize> = foldhash::HashMap::default();
        let mut codes = Vec::new();
        for r in &plan.eligibility {
            reasons.entry(r.reason).or_insert_with(|| {
                codes.push(r.reason.code(problem));
                (codes.len() - 1) as IdxSize
            });
        }
        // A version-1 scenario's artefacts stay as they were: `p` is only needed
        // where `expected_value / margin` does not give it back.
        let with_p = problem.uptake_value.is_some() || problem.offers.iter().any(|o| o.cost_per_contact != 0.0);
        EligibilityTable {
            problem,
            plan,
            customer_ids: StringChunked::from_iter_values("customer_id".into(), problem.customers.id.iter().map(String::as_str)),
            offer_ids: StringChunked::from_iter_values("offer_id".into(), problem.offers.iter().map(|o| o.id.as_str())),
            reasons,
            reason_codes: StringChunked::from_iter_values("reason".into(), codes.iter().map(String::as_str)),
            with_p,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.plan.eligibility.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.plan.eligibility.is_empty()
    }

    /// The frame of rows `rows`.
    pub fn frame(&self, rows: std::ops::Range<usize>) -> Result<DataFrame, PolarsError> {
        let problem = self.problem;
        // Row `i` is uptake row `i`: its pair, `p` and expected value are the problem's.
        let uptake = &problem.uptake[rows.clone()];
        let e = &self.plan.eligibility[rows.clone()];
        let gather = |names: &StringChunked, at: Vec<IdxSize>| names.take(&at).map(|names| names.into_series().into_column());
        let mut columns = vec![
            gather(&self.customer_ids, uptake.iter().map(|u| u.customer as IdxSize).collect())?,
            gather(&self.offer_ids, uptake.iter().map(|u| u.offer as IdxSize).collect())?,
            Column::new("x".into(), e.iter().map(|r| tidy(r.x)).collect::<Vec<_>>()),
            Column::new("eligible".into(), e.iter().map(EligibilityRow::eligible).collect::<Vec<_>>()),
            Column::new("expected_value".into(), rows.clone().map(|i| tidy(problem.expected_value(i))).collect::<Vec<_>>()),
        ];
        if self.with_p {
            columns.push(Column::new("p".into(), uptake.iter().map(|u| u.p).collect::<Vec<_>>()));
        }
        columns.push(Column::new("rank".into(), e.iter().map(|r| r.rank).collect::<Vec<_>>()));
        columns.push(gather(&self.reason_codes, e.iter().map(|r| self.reasons[&r.reason]).collect())?);
        DataFrame::new(e.len(), columns)
    }
}

/// The output tables of a plan other than its eligibility table
/// ([`EligibilityTable`]), with ids resolved to names.
pub fn plan_tables(problem: &Problem, plan: &Plan) -> Result<Vec<(&'static str, DataFrame)>, PolarsError> {
    let sku = |s: u32| problem.skus[s as usize].as_str();
    let warehouse = |w: u32| problem.warehouses[w as usize].as_str();
    let offer = |o: u32| problem.offers[o as usize].id.as_str();
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
    let mut bid_columns = vec![
        Column::new("zone".into(), b.iter().map(|x| problem.zones[x.zone as usize].id.as_str()).collect::<Vec<_>>()),
        Column::new("sku".into(), b.iter().map(|x| sku(x.sku)).collect::<Vec<_>>()),
    ];
    // With time buckets (model version 2) a price is per bucket, named by its first day.
    if problem.policy.bucket_days.is_some() {
        let buckets = problem.buckets();
        bid_columns.push(Column::new("bucket_start".into(), b.iter().map(|x| buckets.start_of(x.bucket).to_string()).collect::<Vec<_>>()));
    }
    bid_columns.push(Column::new("price".into(), b.iter().map(|x| tidy(x.price)).collect::<Vec<_>>()));
    let bids = DataFrame::new(b.len(), bid_columns)?;
    Ok(vec![
        ("reservations", reservations),
        ("pick_priorities", picks),
        ("bid_prices", bids),
    ])
}

/// Writes a plan's tables and `kpis.json` (with its `schema_version`) into `dir` (created if needed), each
/// file atomically. Returns the paths written.
pub fn write_plan_outputs(dir: &Path, problem: &Problem, plan: &Plan, kpis: &Kpis, format: Format) -> Result<Vec<PathBuf>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
    let eligibility = EligibilityTable::new(problem, plan);
    let mut written = vec![write_table_in_batches(dir, "eligibility", eligibility.len(), format, |rows| eligibility.frame(rows))?];
    fault_point();
    let tables = plan_tables(problem, plan).map_err(|e| StoreError::Table { path: dir.to_path_buf(), reason: e.to_string() })?;
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

/// Copies `files`, written under `from`, to the same relative paths under
/// `to`, each atomically; returns the copies' paths. Why: a run writes its
/// outputs, then the same files into its plan version; when both are in the
/// version's format, copying the bytes costs a fraction of encoding the
/// tables again (their eligibility table has one row per pair).
pub fn copy_outputs(files: &[PathBuf], from: &Path, to: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut copied = Vec::with_capacity(files.len());
    let mut dirs = vec![to.to_path_buf()];
    for file in files {
        let relative = file.strip_prefix(from).expect("a run's outputs are written under its output directory");
        let copy = to.join(relative);
        if let Some(dir) = copy.parent().filter(|d| !dirs.iter().any(|known| known == d)) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
            dirs.push(dir.to_path_buf());
        }
        write_atomic(&copy, |out| {
            let mut source = std::fs::File::open(file).map_err(|e| StoreError::io("cannot open", file, e))?;
            std::io::copy(&mut source, out).map(|_| ()).map_err(|e| StoreError::io("cannot copy", file, e))
        })?;
        fault_point();
        copied.push(copy);
    }
    for dir in &dirs {
        sync_dir(dir)?;
    }
    Ok(copied)
}
