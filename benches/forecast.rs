//! Benchmark of the baseline-demand forecast (not a test; asserts nothing about
//! time): fit, backtest-select and forecast 28 days for many daily series in
//! parallel, and the backtest report (mean MASE per model, relative to seasonal
//! naive) on the same generated history.
//!
//! A bench of the `allot-forecasting` crate (declared in forecasting/Cargo.toml,
//! so it builds only that crate). Run with
//! `cargo bench -p allot-forecasting --bench forecast` (30,000 series × 730
//! days), or `cargo bench -p allot-forecasting --bench forecast -- SERIES DAYS`.
//!
//! `cargo bench -p allot-forecasting --bench forecast -- --panel FILE ID_COLUMN VALUE_COLUMN SEASON HOLDOUT`
//! runs the same selection and report on real history: a CSV panel, one series
//! per id in file order (`benches/real_history.sh` fetches one).
//!
//! `cargo bench -p allot-forecasting --bench forecast -- --forecast TRAIN_CSV SEASON H OUT_CSV`
//! forecasts H steps for every series of a long CSV `id,value` (series in file
//! order, values in time order) with `DemandConfig { season, holdout: 0, .. }`
//! (the forecast alone, without the nested accuracy report),
//! writes `id,step,forecast,model` to OUT_CSV and prints the wall time of the
//! `forecast_all` call and the thread count (`benches/m3.sh` uses it).

use std::time::Instant;

use allot_forecasting::demand::{backtest_summary, forecast_all, DemandConfig};
use allot_forecasting::synthetic::{Rng, SeriesShape};

/// Series of a CSV panel: values of `value` grouped by `id`, in file order.
fn read_panel(path: &str, id: &str, value: &str) -> Vec<Vec<f64>> {
    read_panel_with_ids(path, id, value).into_iter().map(|(_, v)| v).collect()
}

/// Series of a CSV panel with their ids: values of `value` grouped by `id`, in file order.
fn read_panel_with_ids(path: &str, id: &str, value: &str) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(|h| h.trim_matches('"').to_string()).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{path}: no column {name:?} in {header:?}"));
    let (i, v) = (column(id), column(value));
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let key = cells[i].trim_matches('"').to_string();
        let x: f64 = cells[v].trim_matches('"').parse().unwrap_or_else(|_| panic!("{path}: row {}, column {value}: not a number", row + 2));
        match series.last_mut() {
            Some((k, values)) if *k == key => values.push(x),
            _ => series.push((key, vec![x])),
        }
    }
    series
}

/// `--forecast TRAIN_CSV SEASON H OUT_CSV`: point forecasts for every series of
/// a long `id,value` CSV, written as `id,step,forecast,model`.
fn forecast_file(train: &str, season: &str, h: &str, out: &str) {
    let named = read_panel_with_ids(train, "id", "value");
    let season: usize = season.parse().expect("SEASON");
    let h: usize = h.parse().expect("H");
    let series: Vec<Vec<f64>> = named.iter().map(|(_, v)| v.clone()).collect();
    // The forecast alone, as the statsforecast models it is compared with are
    // timed: no nested accuracy report (holdout 0).
    let config = DemandConfig { season, holdout: 0, ..DemandConfig::default() };
    let t = Instant::now();
    let forecasts = forecast_all(&series, h, &config);
    let seconds = t.elapsed().as_secs_f64();
    let mut text = String::from("id,step,forecast,model\n");
    for ((id, _), f) in named.iter().zip(&forecasts) {
        for (step, x) in f.mean.iter().enumerate() {
            text.push_str(&format!("{id},{},{x},{}\n", step + 1, f.model.name()));
        }
    }
    std::fs::write(out, text).unwrap_or_else(|e| panic!("{out}: {e}"));
    println!("forecast_all: {} series, season {season}, h {h}: {seconds:.4}s on {} threads", series.len(), rayon::current_num_threads());
}

fn report(forecasts: &[allot_forecasting::demand::SeriesForecast]) {
    let (lines, chosen, naive) = backtest_summary(forecasts);
    println!("{:<16} {:>8} {:>10} {:>14} {:>8}", "model", "series", "mean MASE", "naive on same", "chosen");
    for l in &lines {
        println!("{:<16} {:>8} {:>10.3} {:>14.3} {:>8}", l.model.name(), l.series, l.mean_mase, l.naive_mase, l.chosen);
    }
    println!("chosen model: mean MASE {chosen:.3} vs seasonal naive {naive:.3} (ratio {:.3})", chosen / naive);
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if raw.first().map(String::as_str) == Some("--forecast") {
        let [_, train, season, h, out] = &raw[..5] else { panic!("--forecast TRAIN_CSV SEASON H OUT_CSV") };
        forecast_file(train, season, h, out);
        return;
    }
    if raw.first().map(String::as_str) == Some("--panel") {
        let [_, file, id, value, season, holdout] = &raw[..6] else { panic!("--panel FILE ID_COLUMN VALUE_COLUMN SEASON HOLDOUT") };
        let series = read_panel(file, id, value);
        let config = DemandConfig { season: season.parse().expect("SEASON"), holdout: holdout.parse().expect("HOLDOUT"), ..DemandConfig::default() };
        let forecasts = forecast_all(&series, config.holdout, &config);
        println!("{file}: {} series of {} to {} points, season {}, holdout {}", series.len(), series.iter().map(Vec::len).min().unwrap_or(0), series.iter().map(Vec::len).max().unwrap_or(0), config.season, config.holdout);
        report(&forecasts);
        return;
    }
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let series = args.first().copied().unwrap_or(30_000);
    let days = args.get(1).copied().unwrap_or(730);
    let mut rng = Rng::new(1);
    let t = Instant::now();
    let history: Vec<Vec<f64>> = (0..series).map(|_| SeriesShape::random(&mut rng, 0.3).sample(&mut rng, days, 0)).collect();
    println!("generated {series} series x {days} days in {:.2}s", t.elapsed().as_secs_f64());

    let config = DemandConfig::default();
    let t = Instant::now();
    let forecasts = forecast_all(&history, 28, &config);
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "fit + select + forecast 28 days: {seconds:.2}s on {} threads ({:.1} us per series)",
        rayon::current_num_threads(),
        seconds * 1e6 / series as f64
    );

    report(&forecasts);
}
