//! Benchmark of the baseline-demand forecast (not a test; asserts nothing about
//! time): fit, backtest-select and forecast 28 days for many daily series in
//! parallel, and the backtest report (mean MASE per model, relative to seasonal
//! naive) on the same generated history.
//!
//! Run with `cargo bench --bench forecast` (30,000 series × 730 days), or
//! `cargo bench --bench forecast -- SERIES DAYS`.

use std::time::Instant;

use allot_forecasting::demand::{backtest_summary, forecast_all, DemandConfig};
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

    let (lines, chosen, naive) = backtest_summary(&forecasts);
    println!("{:<16} {:>8} {:>10} {:>14} {:>8}", "model", "series", "mean MASE", "naive on same", "chosen");
    for l in &lines {
        println!("{:<16} {:>8} {:>10.3} {:>14.3} {:>8}", l.model.name(), l.series, l.mean_mase, l.naive_mase, l.chosen);
    }
    println!("chosen model: mean MASE {chosen:.3} vs seasonal naive {naive:.3} (ratio {:.3})", chosen / naive);
}
