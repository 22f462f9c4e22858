//! What `allot forecast` writes and prints: the forecasts as tables the
//! planner can read (and feed back as `baseline_demand.csv` / `uptake.csv`),
//! and the accuracy report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use allot_forecasting::attributes::{ColumnEncoding, OTHER};
use allot_forecasting::demand::backtest_summary;
use allot_forecasting::uptake::CV_FOLDS;
use polars::prelude::*;

use crate::error::StoreError;
use crate::scenario::load::LoadedScenario;
use crate::files::{write_table, write_versioned, Format};

fn table_error(dir: &Path, stem: &str, e: PolarsError) -> StoreError {
    StoreError::Table { path: dir.join(stem), reason: e.to_string() }
}

/// Writes, as CSV, whatever was forecast: `baseline_demand`, the
/// `demand_forecast` per period of the history's frequency (`zone, sku, date,
/// mean, p50, p90, model, mase`; `date` is the period's first day), the
/// per-series `demand_report`, `uptake`
/// (`customer_id, offer_id, p`) and `uptake_report.json` (with its `schema_version`).
pub fn write_forecasts(dir: &Path, loaded: &LoadedScenario) -> Result<Vec<PathBuf>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
    let p = &loaded.problem;
    let mut written = Vec::new();
    if let Some(f) = &loaded.demand_forecast {
        // Over the whole horizon, one row per series: a `baseline_demand` file as written by hand.
        let baseline = f.baseline(&p.horizon.buckets(None));
        let mut df = DataFrame::new(
            baseline.len(),
            vec![
                Column::new("zone".into(), baseline.iter().map(|b| p.zones[b.zone as usize].id.as_str()).collect::<Vec<_>>()),
                Column::new("sku".into(), baseline.iter().map(|b| p.skus[b.sku as usize].as_str()).collect::<Vec<_>>()),
                Column::new("units".into(), baseline.iter().map(|b| (b.units * 1e3).round() / 1e3).collect::<Vec<_>>()),
            ],
        )
        .map_err(|e| table_error(dir, "baseline_demand", e))?;
        written.push(write_table(dir, "baseline_demand", &mut df, Format::Csv)?);
        let rows = f.series.iter().map(|(_, s)| s.mean.len()).sum();
        let mut zone: Vec<&str> = Vec::with_capacity(rows);
        let mut sku: Vec<&str> = Vec::with_capacity(rows);
        let mut date: Vec<String> = Vec::with_capacity(rows);
        let (mut mean, mut p50, mut p90, mut mase) = (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
        let mut model: Vec<&str> = Vec::with_capacity(rows);
        for ((z, s), series) in &f.series {
            for k in 0..series.mean.len() {
                zone.push(p.zones[*z as usize].id.as_str());
                sku.push(p.skus[*s as usize].as_str());
                date.push(f.period_start(k).to_string());
                mean.push((series.mean[k] * 1e3).round() / 1e3);
                p50.push((series.p50[k] * 1e3).round() / 1e3);
                p90.push((series.p90[k] * 1e3).round() / 1e3);
                model.push(series.model.name());
                mase.push((series.mase * 1e4).round() / 1e4);
            }
        }
        let mut df = DataFrame::new(
            rows,
            vec![
                Column::new("zone".into(), zone),
                Column::new("sku".into(), sku),
                Column::new("date".into(), date),
                Column::new("mean".into(), mean),
                Column::new("p50".into(), p50),
                Column::new("p90".into(), p90),
                Column::new("model".into(), model),
                Column::new("mase".into(), mase),
            ],
        )
        .map_err(|e| table_error(dir, "demand_forecast", e))?;
        written.push(write_table(dir, "demand_forecast", &mut df, Format::Csv)?);
        written.push(write_demand_report(dir, loaded, f)?);
    }
    if let Some(report) = &loaded.uptake_report {
        let u = &p.uptake;
        let mut df = DataFrame::new(
            u.len(),
            vec![
                Column::new("customer_id".into(), u.iter().map(|r| p.customers.id[r.customer as usize].as_str()).collect::<Vec<_>>()),
                Column::new("offer_id".into(), u.iter().map(|r| p.offers[r.offer as usize].id.as_str()).collect::<Vec<_>>()),
                Column::new("p".into(), u.iter().map(|r| r.p).collect::<Vec<_>>()),
            ],
        )
        .map_err(|e| table_error(dir, "uptake", e))?;
        written.push(write_table(dir, "uptake", &mut df, Format::Csv)?);
        let path = dir.join("uptake_report.json");
        write_versioned(&path, report)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `demand_report.csv`, one row per series: its demand class, the
/// model chosen, the procedure's nested holdout MASE beside seasonal naive's,
/// the in-sample selection score, and how many forecast values were below
/// zero and set to zero; with promotions or prices, the pooled promotion
/// lift and price elasticity.
fn write_demand_report(dir: &Path, loaded: &LoadedScenario, f: &crate::DemandForecast) -> Result<PathBuf, StoreError> {
    let p = &loaded.problem;
    let round = |v: f64, scale: f64| (v * scale).round() / scale;
    let mut df = DataFrame::new(
        f.series.len(),
        vec![
            Column::new("zone".into(), f.series.iter().map(|((z, _), _)| p.zones[*z as usize].id.as_str()).collect::<Vec<_>>()),
            Column::new("sku".into(), f.series.iter().map(|((_, s), _)| p.skus[*s as usize].as_str()).collect::<Vec<_>>()),
            Column::new("class".into(), f.series.iter().map(|(_, s)| s.class.name()).collect::<Vec<_>>()),
            Column::new("model".into(), f.series.iter().map(|(_, s)| s.model.name()).collect::<Vec<_>>()),
            Column::new("holdout_mase".into(), f.series.iter().map(|(_, s)| round(s.mase, 1e4)).collect::<Vec<_>>()),
            Column::new("naive_mase".into(), f.series.iter().map(|(_, s)| round(s.naive_mase().unwrap_or(f64::NAN), 1e4)).collect::<Vec<_>>()),
            Column::new("selection_score".into(), f.series.iter().map(|(_, s)| round(s.selection_score, 1e4)).collect::<Vec<_>>()),
            Column::new("clipped".into(), f.series.iter().map(|(_, s)| s.clipped as u32).collect::<Vec<_>>()),
        ],
    )
    .map_err(|e| table_error(dir, "demand_report", e))?;
    if !f.effects.is_empty() {
        // With promotions or prices in the history: each series' pooled effects.
        let lift: Vec<f64> = f.effects.iter().map(|e| round(e.promo.exp(), 1e4)).collect();
        let elasticity: Vec<f64> = f.effects.iter().map(|e| round(e.elasticity, 1e4)).collect();
        for column in [Column::new("promo_lift".into(), lift), Column::new("price_elasticity".into(), elasticity)] {
            df.with_column(column).map_err(|e| table_error(dir, "demand_report", e))?;
        }
    }
    write_table(dir, "demand_report", &mut df, Format::Csv)
}

/// The accuracy report as text: the demand procedure's nested holdout score
/// per model against seasonal naive, the demand classes and clipped values,
/// and the uptake model's holdout measures and coefficients (with customer
/// attributes: their encoding, and the model with and without them).
pub fn accuracy_report(loaded: &LoadedScenario) -> String {
    let mut out = String::new();
    if let Some(f) = &loaded.demand_forecast {
        let (lines, chosen, naive) = backtest_summary(f.series.iter().map(|(_, s)| s));
        let frequency = f.calendar.frequency;
        let _ = writeln!(
            out,
            "baseline demand: {} zone x SKU series, {} (season {}); MASE on the last {} periods, the whole procedure run on the history before them",
            f.series.len(),
            frequency.word(),
            frequency.season(),
            f.holdout
        );
        let _ = writeln!(out, "  {:<16} {:>7} {:>10} {:>14} {:>7}", "model", "series", "mean MASE", "naive on same", "chosen");
        for l in &lines {
            let _ = writeln!(out, "  {:<16} {:>7} {:>10.3} {:>14.3} {:>7}", l.model.name(), l.series, l.mean_mase, l.naive_mase, l.chosen);
        }
        let _ = writeln!(out, "  chosen models: mean MASE {chosen:.3} vs seasonal naive {naive:.3}");
        let mut classes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        let (mut clipped, mut clipped_series, mut lost) = (0, 0, 0);
        for (_, s) in &f.series {
            *classes.entry(s.class.name()).or_default() += 1;
            clipped += s.clipped;
            clipped_series += usize::from(s.clipped > 0);
            lost += usize::from(s.naive_mase().is_some_and(|naive| naive < s.mase));
        }
        let classes: Vec<String> = classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let _ = writeln!(out, "  demand classes: {}", classes.join(", "));
        let _ = writeln!(out, "  negative forecasts set to zero: {clipped} values in {clipped_series} series; series whose procedure lost to seasonal naive on the holdout: {lost}");
    }
    if let Some(r) = &loaded.uptake_report {
        let _ = writeln!(
            out,
            "uptake: logistic regression on {} showings, calibrated on {} (from {}), judged on {} (from {}); L2 strength by {}-fold cross-validation by customer on the fitting days",
            r.fit_rows, r.calibration_rows, r.calibration_from, r.holdout_rows, r.holdout_from, CV_FOLDS
        );
        let mut models = vec![("", &r.scores)];
        if let Some(a) = &r.attributes {
            let _ = writeln!(out, "  customer attributes from {} (encoding learned from the {} customers of the fitting days):", a.file, a.fitting_customers);
            for c in &a.columns {
                let _ = match c {
                    ColumnEncoding::Numeric { name, mean, sd } => writeln!(out, "    {name}: numeric, standardised with mean {mean:.4} and sd {sd:.4}"),
                    ColumnEncoding::Categorical { name, reference, levels, pooled } => writeln!(
                        out,
                        "    {name}: categorical, reference {reference}, levels {}{}",
                        if levels.is_empty() { "none".to_string() } else { levels.join(", ") },
                        if pooled.is_empty() { String::new() } else { format!(" ({} pooled into {OTHER}: {})", pooled.len(), pooled.join(", ")) }
                    ),
                };
            }
            models = vec![("with attributes, ", &r.scores), ("without attributes, ", &a.without_attributes)];
        }
        let _ = writeln!(out, "  {:<34} {:>7} {:>9} {:>7} {:>7} {:>8}  calibration (a, b)", "holdout", "AUC", "log-loss", "Brier", "ECE", "L2");
        for (prefix, m) in models {
            for (name, a) in [("calibrated", &m.holdout), ("uncalibrated", &m.holdout_uncalibrated)] {
                let calibration = if name == "calibrated" { format!("  {:.3}, {:+.3}", m.calibration.a, m.calibration.b) } else { String::new() };
                let _ = writeln!(out, "  {:<34} {:>7.4} {:>9.4} {:>7.4} {:>7.4} {:>8.1e}{calibration}", format!("{prefix}{name}"), a.auc, a.log_loss, a.brier, a.ece, m.l2);
            }
        }
        let _ = writeln!(out, "  base rate {:.4} over {} holdout showings", r.scores.holdout.base_rate, r.scores.holdout.rows);
        let coefficients: Vec<String> = r.coefficients.iter().map(|(n, c)| format!("{n} {c:+.3}")).collect();
        let _ = writeln!(out, "  coefficients: {}", coefficients.join(", "));
        let _ = writeln!(out, "  {} candidate pairs scored", r.candidates);
    }
    out
}
