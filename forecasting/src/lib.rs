//! Demand and uptake forecasting for allot: pure numerics on plain slices.
//!
//! This crate knows nothing of the planning model; `allot-scenarios` feeds it
//! series read from history files and turns its forecasts into model inputs.

pub mod demand;
pub mod synthetic;
pub mod uptake;

/// Seasonal-mean forecast of a daily series.
///
/// Why: the baseline demand the planner needs when `baseline_demand.csv` is
/// absent must respect the weekly pattern of retail sales; the mean of the same
/// weekday over the last `cycles` seasons does that and is robust on short or
/// noisy history.
///
/// `history[t]` is day `t`; the forecast covers days `from .. from + days`
/// (`from` may lie beyond the history). Each forecast day is the mean of the
/// `cycles` most recent history days of the same phase (`t - k * season`); with
/// none, the mean of the last `season * cycles` days; with no history, zero.
pub fn seasonal_mean(history: &[f64], season: usize, cycles: usize, from: usize, days: usize) -> Vec<f64> {
    let season = season.max(1);
    let cycles = cycles.max(1);
    let window = &history[history.len().saturating_sub(season * cycles)..];
    let fallback = if window.is_empty() { 0.0 } else { window.iter().sum::<f64>() / window.len() as f64 };
    (from..from + days)
        .map(|t| {
            let same_phase: Vec<f64> = (1..)
                .map(|k| t.checked_sub(k * season))
                .take_while(Option::is_some)
                .flatten()
                .filter(|&i| i < history.len())
                .take(cycles)
                .map(|i| history[i])
                .collect();
            if same_phase.is_empty() {
                fallback
            } else {
                same_phase.iter().sum::<f64>() / same_phase.len() as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::seasonal_mean;

    #[test]
    fn repeats_a_clean_weekly_pattern() {
        let week = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let history: Vec<f64> = week.iter().cycle().take(28).copied().collect();
        assert_eq!(seasonal_mean(&history, 7, 4, 28, 7), week.to_vec());
        // Two weeks past the end of history, the phase is kept.
        assert_eq!(seasonal_mean(&history, 7, 4, 42, 2), vec![1.0, 2.0]);
    }

    #[test]
    fn averages_the_last_cycles_only() {
        let mut history = vec![100.0; 7];
        history.extend(vec![10.0; 7]);
        history.extend(vec![20.0; 7]);
        assert_eq!(seasonal_mean(&history, 7, 2, 21, 1), vec![15.0]);
        assert_eq!(seasonal_mean(&[], 7, 4, 0, 3), vec![0.0; 3]);
    }
}
