//! Benchmark of the baseline-demand forecast (not a test; asserts nothing about
//! time): fit, backtest-select and forecast 28 days for many daily series in
//! parallel, and the backtest report (mean MASE per model, relative to seasonal
//! naive) on the same generated history.
//!
//! Run with `cargo bench --bench forecast` (30,000 series × 730 days), or
//! `cargo bench --bench forecast -- SERIES DAYS`.

use std::collections::BTreeMap;
use std::time::Instant;

use allot_forecasting::demand::{forecast_all, DemandConfig, DemandModel};
use allot_forecasting::synthetic::{Rng, SeriesShape};

fn main() {
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

    // Backtest report: mean MASE per model over the series it was tried on, and
    // of the chosen model, against seasonal naive on the same series.
    let mut by_model: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
    let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut chosen_mase, mut naive_mase) = (0.0, 0.0);
    for f in &forecasts {
        let naive = f.backtests.iter().find(|b| b.model == DemandModel::SeasonalNaive).map_or(f64::NAN, |b| b.mase);
        for b in &f.backtests {
            let e = by_model.entry(b.model.name()).or_default();
            e.0 += b.mase;
            e.1 += naive;
            e.2 += 1;
        }
        *chosen.entry(f.model.name()).or_default() += 1;
        chosen_mase += f.mase;
        naive_mase += naive;
    }
    println!("{:<16} {:>8} {:>10} {:>14} {:>8}", "model", "series", "mean MASE", "naive on same", "chosen");
    for (name, (mase, naive, n)) in &by_model {
        println!("{name:<16} {n:>8} {:>10.3} {:>14.3} {:>8}", mase / *n as f64, naive / *n as f64, chosen.get(name).copied().unwrap_or(0));
    }
    println!(
        "chosen model: mean MASE {:.3} vs seasonal naive {:.3} (ratio {:.3})",
        chosen_mase / series as f64,
        naive_mase / series as f64,
        chosen_mase / naive_mase
    );
}
