//! The uptake model's attribute path on a plain table: customers with
//! attributes and a binary response, for comparison with other tools
//! (`benches/uptake_real.sh` runs it against scikit-learn on a public data set).
//!
//! `uptake_table DIR` (the example's binary; `cargo run --example uptake_table -- DIR`) reads `DIR/customer_features.csv`
//! through the scenario reader (`customer_id` + attributes, the same rules as in
//! a scenario) and `DIR/labels.csv` (`customer_id, response, split`: `response`
//! 0 or 1, `split` `train` or `test`), then does what the uptake model does with
//! attributes: the encoding learned from the training rows (numeric columns
//! standardised, categorical one-hot with rare levels pooled), the L2 strength
//! by 5-fold cross-validation on the training rows (folds by customer), IRLS.
//! It prints the test rows' AUC and log-loss and writes `DIR/encoded.csv` (the
//! features the model saw, with `response` and `split`: another tool fits the
//! identical features) and `DIR/allot.json` (the measures and the chosen L2).

use std::fmt::Write as _;
use std::path::PathBuf;

use allot_forecasting::attributes::{ColumnEncoding, Encoding, OTHER};
use allot_forecasting::uptake::{accuracy, fit_cv, fold_of, FitOptions, CV_FOLDS, L2_GRID};
use allot_scenarios::scenario::customer_features::read_customer_features;
use allot_scenarios::scenario::table::Issues;
use allot_scenarios::LoadError;
use anyhow::{bail, Context};
use serde::Serialize;

/// What `allot.json` holds.
#[derive(Serialize)]
struct Measures {
    train_rows: usize,
    test_rows: usize,
    features: usize,
    l2: f64,
    auc: f64,
    log_loss: f64,
    brier: f64,
}

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args().nth(1).context("usage: uptake_table DIR")?.into();
    let labels = std::fs::read_to_string(dir.join("labels.csv")).context("labels.csv")?;
    let (mut ids, mut response, mut train) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in labels.lines().enumerate().skip(1) {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [id, y, split] = cells[..] else { bail!("labels.csv row {i}: expected customer_id,response,split") };
        ids.push(id.to_string());
        response.push(match y {
            "1" => 1.0,
            "0" => 0.0,
            _ => bail!("labels.csv row {i}: response {y:?}, expected 0 or 1"),
        });
        train.push(match split {
            "train" => true,
            "test" => false,
            _ => bail!("labels.csv row {i}: split {split:?}, expected train or test"),
        });
    }
    let mut issues = Issues::default();
    let attributes = read_customer_features(&dir, &ids, &mut issues)?.context("no customer_features.csv")?;
    if !issues.is_empty() {
        return Err(LoadError::Invalid { issues: issues.list, total: issues.total }.into());
    }
    let fitting: Vec<usize> = (0..ids.len()).filter(|&i| train[i]).collect();
    let testing: Vec<usize> = (0..ids.len()).filter(|&i| !train[i]).collect();
    let encoding = Encoding::fit(&attributes.columns, &fitting);
    let d = encoding.width();
    let x = encoding.encode_all(&attributes.columns);
    let rows = |set: &[usize]| -> Vec<f64> { set.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect() };
    let folds: Vec<usize> = fitting.iter().map(|&i| fold_of(i as u64, CV_FOLDS)).collect();
    let y_fit: Vec<f64> = fitting.iter().map(|&i| response[i]).collect();
    let cv = fit_cv(&rows(&fitting), d, &y_fit, None, &folds, CV_FOLDS, &L2_GRID, FitOptions::default())?;
    let p: Vec<f64> = testing.iter().map(|&i| cv.model.predict(&x[i * d..(i + 1) * d])).collect();
    let y_test: Vec<f64> = testing.iter().map(|&i| response[i]).collect();
    let a = accuracy(&p, &y_test);
    for c in &encoding.columns {
        if let ColumnEncoding::Categorical { name, reference, levels, pooled } = c {
            println!("allot: {name}: reference {reference}, {} levels with a feature, {} pooled into {OTHER}", levels.len(), pooled.len());
        }
    }
    println!("allot: {} training rows, {} test rows, {d} features; L2 {:e} by {CV_FOLDS}-fold cross-validation", fitting.len(), testing.len(), cv.l2);
    println!("allot: test AUC {:.4}, log-loss {:.4}, Brier {:.4}", a.auc, a.log_loss, a.brier);

    let mut out = encoding.names().join(",");
    out.push_str(",response,split\n");
    for i in 0..ids.len() {
        for v in &x[i * d..(i + 1) * d] {
            let _ = write!(out, "{v},");
        }
        let _ = writeln!(out, "{},{}", response[i], if train[i] { "train" } else { "test" });
    }
    std::fs::write(dir.join("encoded.csv"), out)?;
    let result = Measures { train_rows: fitting.len(), test_rows: testing.len(), features: d, l2: cv.l2, auc: a.auc, log_loss: a.log_loss, brier: a.brier };
    std::fs::write(dir.join("allot.json"), serde_json::to_string_pretty(&result)?)?;
    Ok(())
}
