//! The demand plan: what supply chain should expect per zone × SKU × day,
//! the baseline and the part the plan's offers will pull, shown apart.
//!
//! Offer-driven units of a served pair are `p × qty` for each SKU of the offer
//! (`x` is rounded to the served `eligible` decision), summed per zone and SKU
//! and spread over the horizon by the redemption curve
//! (`allot_forecasting::demand::redemption_curve`, from the offer history's
//! acceptances by weekday; uniform without history). The baseline per day is
//! the daily forecast when it was forecast from sales history, else the
//! horizon's units spread evenly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allot_forecasting::demand::redemption_curve;
use allot_optimizer::{Plan, Problem};
use chrono::Datelike;
use polars::prelude::*;

use crate::error::StoreError;
use crate::scenario::load::LoadedScenario;
use crate::files::{write_table, Format};

/// One zone × SKU × day of the demand plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemandPlanRow {
    /// Zone index.
    pub zone: u32,
    /// SKU index.
    pub sku: u32,
    /// Day of the horizon (0 = its first day).
    pub day: u32,
    /// Units expected without offers.
    pub baseline: f64,
    /// Units the plan's offers are expected to pull.
    pub offer: f64,
}

/// The demand plan's table (its file stem).
pub const DEMAND_PLAN_TABLE: &str = "demand_plan";

/// The demand plan of `plan` for the loaded scenario, sorted by zone, SKU, day.
pub fn demand_plan(loaded: &LoadedScenario, plan: &Plan) -> Vec<DemandPlanRow> {
    let problem: &Problem = &loaded.problem;
    let days = problem.horizon.days as usize;
    let by_weekday = loaded.uptake_report.as_ref().map_or([0.0; 7], |r| r.acceptances_by_weekday);
    let curve = redemption_curve(&by_weekday, problem.horizon.start.weekday().num_days_from_monday() as usize, days);
    let mut cells: BTreeMap<(u32, u32), (Vec<f64>, f64)> = BTreeMap::new();
    match &loaded.demand_forecast {
        Some(f) => {
            for ((zone, sku), s) in &f.series {
                cells.entry((*zone, *sku)).or_insert_with(|| (vec![0.0; days], 0.0)).0 = f.daily(s);
            }
        }
        None => {
            for b in &problem.baseline {
                cells.entry((b.zone, b.sku)).or_insert_with(|| (vec![0.0; days], 0.0)).0 = vec![b.units / days.max(1) as f64; days];
            }
        }
    }
    for (u, _) in plan.rows(problem).filter(|(_, e)| e.eligible()) {
        let zone = problem.customers.zone[u.customer as usize];
        for item in &problem.offers[u.offer as usize].items {
            cells.entry((zone, item.sku)).or_insert_with(|| (vec![0.0; days], 0.0)).1 += u.p * item.qty;
        }
    }
    cells
        .into_iter()
        .flat_map(|((zone, sku), (baseline, offer))| {
            let curve = &curve;
            (0..days).map(move |d| DemandPlanRow { zone, sku, day: d as u32, baseline: baseline.get(d).copied().unwrap_or(0.0), offer: offer * curve[d] })
        })
        .collect()
}

/// One zone × SKU × day of a saved version's demand plan, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandPlanLine {
    /// Zone.
    pub zone: String,
    /// SKU.
    pub sku: String,
    /// Day.
    pub date: chrono::NaiveDate,
    /// Units expected in all (baseline and offers).
    pub units: f64,
}

/// A saved version's demand plan (`demand_plan.parquet` or `.csv` in its
/// directory), what the decision service tracks live demand against; empty
/// for a version saved before demand plans existed.
pub fn read_demand_plan(version_dir: &Path) -> Result<Vec<DemandPlanLine>, StoreError> {
    let Some(path) = ["parquet", "csv"].iter().map(|ext| version_dir.join(format!("demand_plan.{ext}"))).find(|p| p.is_file()) else { return Ok(Vec::new()) };
    let df = crate::files::read_table(&path)?;
    let bad = |reason: String| StoreError::Table { path: path.clone(), reason };
    let text = |name: &str| -> Result<Vec<String>, StoreError> {
        let c = df.column(name).and_then(|c| c.cast(&DataType::String)).map_err(|e| bad(e.to_string()))?;
        Ok(c.str().map_err(|e| bad(e.to_string()))?.iter().map(|v| v.unwrap_or_default().to_string()).collect())
    };
    let units = df.column("total_units").and_then(|c| c.cast(&DataType::Float64)).map_err(|e| bad(e.to_string()))?;
    let units: Vec<f64> = units.f64().map_err(|e| bad(e.to_string()))?.iter().map(|v| v.unwrap_or(0.0)).collect();
    let (zones, skus, dates) = (text("zone")?, text("sku")?, text("date")?);
    zones
        .into_iter()
        .zip(skus)
        .zip(dates)
        .zip(units)
        .enumerate()
        .map(|(row, (((zone, sku), date), units))| {
            let date = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|e| bad(format!("row {}: date {date:?}: {e}", row + 1)))?;
            Ok(DemandPlanLine { zone, sku, date, units })
        })
        .collect()
}

/// Writes `demand_plan.<ext>` (`zone, sku, date, baseline_units, offer_units,
/// total_units`) into `dir`, atomically.
pub fn write_demand_plan(dir: &Path, loaded: &LoadedScenario, plan: &Plan, format: Format) -> Result<PathBuf, StoreError> {
    let problem = &loaded.problem;
    let rows = demand_plan(loaded, plan);
    let round = |v: f64| (v * 1e6).round() / 1e6;
    let date = |d: u32| (problem.horizon.start + chrono::Days::new(u64::from(d))).to_string();
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("zone".into(), rows.iter().map(|r| problem.zones[r.zone as usize].id.as_str()).collect::<Vec<_>>()),
            Column::new("sku".into(), rows.iter().map(|r| problem.skus[r.sku as usize].as_str()).collect::<Vec<_>>()),
            Column::new("date".into(), rows.iter().map(|r| date(r.day)).collect::<Vec<_>>()),
            Column::new("baseline_units".into(), rows.iter().map(|r| round(r.baseline)).collect::<Vec<_>>()),
            Column::new("offer_units".into(), rows.iter().map(|r| round(r.offer)).collect::<Vec<_>>()),
            Column::new("total_units".into(), rows.iter().map(|r| round(r.baseline + r.offer)).collect::<Vec<_>>()),
        ],
    )
    .map_err(|e| StoreError::Table { path: dir.join(DEMAND_PLAN_TABLE), reason: e.to_string() })?;
    write_table(dir, DEMAND_PLAN_TABLE, &mut df, format)
}
