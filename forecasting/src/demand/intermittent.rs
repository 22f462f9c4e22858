//! Intermittent demand: the Syntetos–Boylan–Croston classification, Croston's
//! method with the Syntetos–Boylan approximation (SBA), TSB, and IMAPA
//! (temporal aggregation).
//!
//! - Classification (Syntetos, Boylan & Croston 2005): the average
//!   inter-demand interval ADI and the squared coefficient of variation CV²
//!   of the non-zero sizes, cut at 1.32 and 0.49: smooth, erratic,
//!   intermittent, lumpy. The last two go to these models.
//! - SBA updates size `z` and interval `q` on demand periods and forecasts
//!   `(1 − α/2) z / q`; TSB updates a demand probability every period and
//!   the size on demand periods and forecasts `p z`, so it decays when demand
//!   stops. Both are fitted on a grid by the in-sample one-step squared error.
//! - IMAPA (Petropoulos & Kourentzes 2015) aggregates the series into
//!   non-overlapping buckets of 1, 2, …, ⌈ADI⌉ periods, forecasts each
//!   aggregate by simple exponential smoothing (α fitted) and averages the
//!   per-period forecasts: aggregation removes most zeros, and averaging
//!   over levels removes the need to pick one.

use serde::{Deserialize, Serialize};

use super::decompose::{mean, ses};
use super::optim::golden_section;

/// The Syntetos–Boylan–Croston demand classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandClass {
    /// Frequent demand of steady size.
    Smooth,
    /// Frequent demand of varying size.
    Erratic,
    /// Infrequent demand of steady size.
    Intermittent,
    /// Infrequent demand of varying size.
    Lumpy,
}

/// The cut-off on the average inter-demand interval.
pub const ADI_CUT: f64 = 1.32;
/// The cut-off on the squared coefficient of variation of demand sizes.
pub const CV2_CUT: f64 = 0.49;

impl DemandClass {
    /// Whether the class goes to the intermittent models.
    pub fn is_intermittent(self) -> bool {
        matches!(self, DemandClass::Intermittent | DemandClass::Lumpy)
    }

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            DemandClass::Smooth => "smooth",
            DemandClass::Erratic => "erratic",
            DemandClass::Intermittent => "intermittent",
            DemandClass::Lumpy => "lumpy",
        }
    }
}

/// Average inter-demand interval: periods per non-zero period (infinite without demand).
pub fn adi(y: &[f64]) -> f64 {
    let nonzero = y.iter().filter(|v| **v > 0.0).count();
    if nonzero == 0 {
        f64::INFINITY
    } else {
        y.len() as f64 / nonzero as f64
    }
}

/// Classifies a series by ADI and CV² (a series without demand is intermittent).
pub fn classify(y: &[f64]) -> DemandClass {
    let sizes: Vec<f64> = y.iter().copied().filter(|v| *v > 0.0).collect();
    if sizes.is_empty() {
        return DemandClass::Intermittent;
    }
    let mu = mean(&sizes);
    let cv2 = sizes.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / sizes.len() as f64 / (mu * mu);
    match (adi(y) >= ADI_CUT, cv2 >= CV2_CUT) {
        (false, false) => DemandClass::Smooth,
        (false, true) => DemandClass::Erratic,
        (true, false) => DemandClass::Intermittent,
        (true, true) => DemandClass::Lumpy,
    }
}

/// Which intermittent model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Croston with the SBA correction.
    Sba,
    /// Teunter–Syntetos–Babai.
    Tsb,
}

/// A fitted intermittent model: its per-period forecast, in-sample one-step
/// mean squared error and parameters (`alpha`, and TSB's probability smoothing `beta`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntermittentFit {
    /// The flat per-period forecast.
    pub forecast: f64,
    /// In-sample one-step mean squared error.
    pub mse: f64,
    /// Size (and interval) smoothing.
    pub alpha: f64,
    /// TSB's probability smoothing (0 for SBA and IMAPA).
    pub beta: f64,
}

/// Runs SBA or TSB over `y` with `alpha`, `beta`: the final forecast and the
/// sum of squared one-step errors.
fn run(method: Method, alpha: f64, beta: f64, y: &[f64]) -> (f64, f64) {
    let nonzero: Vec<usize> = (0..y.len()).filter(|&t| y[t] > 0.0).collect();
    let Some(&first) = nonzero.first() else { return (0.0, 0.0) };
    let mut size = y[first];
    let mut interval = if nonzero.len() > 1 { (nonzero[nonzero.len() - 1] - first) as f64 / (nonzero.len() - 1) as f64 } else { y.len() as f64 };
    let mut prob = nonzero.len() as f64 / y.len() as f64;
    let mut since = 1.0;
    let forecast = |size: f64, interval: f64, prob: f64| match method {
        Method::Tsb => prob * size,
        Method::Sba => (1.0 - alpha / 2.0) * size / interval.max(1.0),
    };
    let mut sse = 0.0;
    for &obs in y {
        let f = forecast(size, interval, prob);
        sse += (obs - f) * (obs - f);
        if obs > 0.0 {
            size += alpha * (obs - size);
            interval += alpha * (since - interval);
            since = 1.0;
        } else {
            since += 1.0;
        }
        if method == Method::Tsb {
            prob += beta * (f64::from(u8::from(obs > 0.0)) - prob);
        }
    }
    (forecast(size, interval, prob), sse)
}

/// Fits SBA or TSB on a grid of smoothing parameters by in-sample squared error.
pub fn fit(method: Method, y: &[f64]) -> IntermittentFit {
    const GRID: [f64; 8] = [0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4];
    let betas: &[f64] = if method == Method::Tsb { &GRID } else { &[0.0] };
    let mut best = IntermittentFit { forecast: 0.0, mse: f64::INFINITY, alpha: GRID[0], beta: 0.0 };
    for &alpha in &GRID {
        for &beta in betas {
            let (forecast, sse) = run(method, alpha, beta, y);
            let mse = sse / y.len().max(1) as f64;
            if mse < best.mse {
                best = IntermittentFit { forecast, mse, alpha, beta };
            }
        }
    }
    if !best.mse.is_finite() {
        best.mse = 0.0;
    }
    best
}

/// IMAPA: the mean over aggregation levels `1..=⌈ADI⌉` (at most `max_level`)
/// of the per-period forecast of simple exponential smoothing on the
/// aggregated series; `mse` is the mean over levels of the in-sample
/// squared error per period (each period against its bucket's forecast / k).
pub fn imapa(y: &[f64], max_level: usize) -> IntermittentFit {
    let top = (adi(y).ceil() as usize).clamp(1, max_level.max(1));
    let (mut forecast, mut mse, mut alphas, mut levels) = (0.0, 0.0, 0.0, 0usize);
    for k in 1..=top {
        let buckets = y.len() / k;
        if buckets < 2 {
            break;
        }
        let skip = y.len() - buckets * k;
        let periods = &y[skip..];
        let aggregate: Vec<f64> = periods.chunks(k).map(|c| c.iter().sum()).collect();
        let (alpha, _) = golden_section(|a| ses(&aggregate, a).0, 0.01, 0.99, 1e-3);
        // Scored per period, as SBA and TSB are: each period of a bucket
        // against the bucket's forecast spread over its k periods.
        let mut level = aggregate[0];
        let mut sse = 0.0;
        for (bucket, &v) in periods.chunks(k).zip(&aggregate).skip(1) {
            sse += bucket.iter().map(|y| (y - level / k as f64).powi(2)).sum::<f64>();
            level += alpha * (v - level);
        }
        forecast += level / k as f64;
        mse += sse / ((buckets - 1) * k) as f64;
        alphas += alpha;
        levels += 1;
    }
    if levels == 0 {
        return IntermittentFit { forecast: mean(y), mse: 0.0, alpha: 0.0, beta: 0.0 };
    }
    let n = levels as f64;
    IntermittentFit { forecast: forecast / n, mse: mse / n, alpha: alphas / n, beta: 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_follow_the_standard_cut_offs() {
        // Demand every period, steady: smooth; every period, varying: erratic.
        assert_eq!(classify(&[5.0, 6.0, 5.0, 4.0, 5.0, 6.0]), DemandClass::Smooth);
        assert_eq!(classify(&[1.0, 9.0, 1.0, 12.0, 2.0, 15.0]), DemandClass::Erratic);
        // Every other period (ADI 2): intermittent or lumpy by size.
        assert_eq!(classify(&[0.0, 5.0, 0.0, 6.0, 0.0, 5.0]), DemandClass::Intermittent);
        assert_eq!(classify(&[0.0, 1.0, 0.0, 14.0, 0.0, 2.0]), DemandClass::Lumpy);
        // ADI just under the cut (4 of 5 periods) stays frequent.
        assert!(!classify(&[3.0, 3.0, 0.0, 3.0, 3.0]).is_intermittent());
        assert!(classify(&[0.0; 8]).is_intermittent());
    }

    #[test]
    fn imapa_on_a_regular_pattern_forecasts_its_rate() {
        // One unit every third period: 1/3 per period at every aggregation level.
        let y: Vec<f64> = (0..90).map(|t| if t % 3 == 2 { 1.0 } else { 0.0 }).collect();
        let f = imapa(&y, 6);
        assert!((f.forecast - 1.0 / 3.0).abs() < 0.06, "{f:?}");
    }
}
