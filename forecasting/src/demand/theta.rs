//! The Theta method (Assimakopoulos & Nikolopoulos 2000): the series, without
//! its season, is split into the regression line (the theta = 0 line) and a
//! theta line `Z = θ x + (1 − θ) line`, whose curvature is θ times the data's;
//! the line is extrapolated, the theta line forecast by simple exponential
//! smoothing, and the two combined with weights `1 − 1/θ` and `1/θ`.
//!
//! - The standard method takes θ = 2 (equal weights). Hyndman & Billah
//!   (2003) showed it is simple exponential smoothing with a drift of half
//!   the line's slope; the tests check that closed form.
//! - The optimised method (Fiorucci et al. 2016) chooses θ ≥ 1 by the
//!   in-sample one-step mean squared error of the combined forecast, which
//!   is the theta line's smoothing error divided by θ².
//!
//! Seasonal series (the autocorrelation test at the 90% level, as in the M3
//! competition) are deseasonalised by a classical decomposition first
//! (multiplicative for positive data, additive otherwise) and the forecast
//! reseasonalised.

use serde::{Deserialize, Serialize};

use super::decompose::{is_seasonal, normal_quantile, seasonal_indices, ses};
use super::ets::line;
use super::optim::golden_section;

/// A fitted Theta model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThetaFit {
    /// The theta coefficient (2 for the standard method).
    pub theta: f64,
    /// Smoothing parameter of the theta line.
    pub alpha: f64,
    /// Seasonal indices by position `t mod m` (empty when the series was not deseasonalised).
    pub season: Vec<f64>,
    /// Whether the indices divide (true) or subtract.
    pub multiplicative: bool,
    /// The regression line `intercept + slope t`, `t = 1..n`.
    pub intercept: f64,
    /// Its slope.
    pub slope: f64,
    /// The theta line's smoothed level after the data.
    pub level: f64,
    /// Observations fitted.
    pub n: usize,
    /// Variance of the in-sample one-step errors of the combined forecast (deseasonalised).
    pub sigma2: f64,
}

/// The theta line of `x` for `theta` around the line `(a, b)`.
fn theta_line(x: &[f64], theta: f64, a: f64, b: f64) -> Vec<f64> {
    x.iter().enumerate().map(|(t, v)| theta * v + (1.0 - theta) * (a + b * (t + 1) as f64)).collect()
}

/// The smoothing parameter minimising the theta line's one-step errors, with that error sum.
fn best_alpha(z: &[f64]) -> (f64, f64) {
    golden_section(|alpha| ses(z, alpha).0, 0.01, 0.99, 1e-4)
}

/// Fits the Theta method to `y` with season `m`: the standard method, or the
/// optimised one (θ searched on [1, 5]) with `optimise`.
pub fn fit(y: &[f64], m: usize, optimise: bool) -> ThetaFit {
    let n = y.len();
    let positive = y.iter().all(|v| *v > 0.0);
    let season = if m > 1 && is_seasonal(y, m) { seasonal_indices(y, m, positive) } else { None };
    let multiplicative = positive;
    let x: Vec<f64> = match &season {
        Some(s) => y.iter().enumerate().map(|(t, v)| if multiplicative { v / s[t % m] } else { v - s[t % m] }).collect(),
        None => y.to_vec(),
    };
    let (intercept, slope) = line(&x);
    let score = |theta: f64| {
        let z = theta_line(&x, theta, intercept, slope);
        let (alpha, sse) = best_alpha(&z);
        (sse / (theta * theta), alpha, z)
    };
    let theta = if optimise && n >= 4 { golden_section(|theta| score(theta).0, 1.0, 5.0, 1e-3).0 } else { 2.0 };
    let (mse_sum, alpha, z) = score(theta);
    let (_, level) = ses(&z, alpha);
    ThetaFit {
        theta,
        alpha,
        season: season.unwrap_or_default(),
        multiplicative,
        intercept,
        slope,
        level,
        n,
        sigma2: if n > 1 { mse_sum / (n - 1) as f64 } else { 0.0 },
    }
}

impl ThetaFit {
    /// Puts the season back on a deseasonalised value at absolute time `t`.
    fn reseasonalise(&self, t: usize, v: f64) -> f64 {
        if self.season.is_empty() {
            v
        } else if self.multiplicative {
            v * self.season[t % self.season.len()]
        } else {
            v + self.season[t % self.season.len()]
        }
    }

    /// Point forecasts of the `h` periods after the data.
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        if self.n == 0 {
            return vec![0.0; h];
        }
        let w = 1.0 / self.theta;
        (1..=h)
            .map(|k| {
                let trend_line = self.intercept + self.slope * (self.n + k) as f64;
                self.reseasonalise(self.n + k - 1, (1.0 - w) * trend_line + w * self.level)
            })
            .collect()
    }

    /// Quantiles of the next `h` periods from the smoothing's error variance,
    /// `σ² (1 + (k − 1) α²)` at step `k` (normal, reseasonalised).
    pub fn quantiles(&self, h: usize, qs: &[f64]) -> Vec<Vec<f64>> {
        let mean_path = self.forecast(h);
        let sigma = self.sigma2.sqrt();
        qs.iter()
            .map(|&q| {
                let z = normal_quantile(q);
                mean_path
                    .iter()
                    .enumerate()
                    .map(|(k, mu)| {
                        let spread = z * sigma * (1.0 + k as f64 * self.alpha * self.alpha).sqrt();
                        let scale = if self.multiplicative && !self.season.is_empty() { self.season[(self.n + k) % self.season.len()] } else { 1.0 };
                        mu + spread * scale
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-worked case: x = 1, 3, 2, 4 (no season). The line through
    /// (1,1), (2,3), (3,2), (4,4) is 0.5 + 0.8 t. The theta = 2 line is
    /// 2x − line = 2x − (1.3, 2.1, 2.9, 3.7) = 0.7, 3.9, 1.1, 4.3. Smoothed
    /// with α = 0.5 its level runs 0.7 → 2.3 → 1.7 → 3.0, and the forecast
    /// one step ahead is ½ (0.5 + 0.8·5) + ½ · 3.0 = 3.75.
    #[test]
    fn the_standard_method_on_a_hand_worked_series() {
        let x = [1.0, 3.0, 2.0, 4.0];
        let (a, b) = line(&x);
        assert!((a - 0.5).abs() < 1e-12 && (b - 0.8).abs() < 1e-12, "{a} {b}");
        let z = theta_line(&x, 2.0, a, b);
        for (got, want) in z.iter().zip([0.7, 3.9, 1.1, 4.3]) {
            assert!((got - want).abs() < 1e-12, "{z:?}");
        }
        let (_, level) = ses(&z, 0.5);
        assert!((level - 3.0).abs() < 1e-12, "{level}");
        let fit = ThetaFit { theta: 2.0, alpha: 0.5, season: vec![], multiplicative: true, intercept: a, slope: b, level, n: 4, sigma2: 0.0 };
        assert!((fit.forecast(1)[0] - 3.75).abs() < 1e-12);
    }

    /// Hyndman & Billah's closed form: the standard Theta forecast is simple
    /// exponential smoothing of the data (level `l_n`) plus a drift of half
    /// the line's slope, `l_n + b/2 (h − 1 + 1/α − (1 − α)^n / α)`.
    #[test]
    fn the_standard_method_is_ses_with_drift() {
        let mut rng = crate::synthetic::Rng::new(4);
        let x: Vec<f64> = (0..60).map(|t| 10.0 + 0.3 * t as f64 + 2.0 * rng.normal()).collect();
        let fitted = fit(&x, 1, false);
        assert!(fitted.season.is_empty());
        let alpha = fitted.alpha;
        let (_, ses_level) = ses(&x, alpha);
        let n = x.len() as i32;
        for (k, got) in fitted.forecast(12).iter().enumerate() {
            let h = (k + 1) as f64;
            let want = ses_level + fitted.slope / 2.0 * (h - 1.0 + 1.0 / alpha - (1.0 - alpha).powi(n) / alpha);
            assert!((got - want).abs() < 1e-9, "h {h}: {got} vs {want}");
        }
    }

    /// The optimised method chooses θ by in-sample error: on a straight line
    /// with noise it weights the line more than the standard method.
    #[test]
    fn the_optimised_method_chooses_theta_by_in_sample_error() {
        let mut rng = crate::synthetic::Rng::new(8);
        let x: Vec<f64> = (0..80).map(|t| 5.0 + 0.5 * t as f64 + rng.normal()).collect();
        let standard = fit(&x, 1, false);
        let optimised = fit(&x, 1, true);
        assert!((standard.theta - 2.0).abs() < 1e-12);
        assert!(optimised.theta >= 1.0 && optimised.theta <= 5.0);
        assert!(optimised.sigma2 <= standard.sigma2 + 1e-12, "{} vs {}", optimised.sigma2, standard.sigma2);
    }

    #[test]
    fn a_seasonal_series_is_deseasonalised_and_the_season_returns_in_the_forecast() {
        let pattern = [0.7, 0.9, 1.1, 1.3];
        let y: Vec<f64> = (0..48).map(|t| (50.0 + 0.5 * t as f64) * pattern[t % 4]).collect();
        let fitted = fit(&y, 4, false);
        assert_eq!(fitted.season.len(), 4);
        let f = fitted.forecast(4);
        // Period 48 is position 0 (the low one), 51 position 3 (the high one).
        assert!(f[0] < f[1] && f[1] < f[2] && f[2] < f[3], "{f:?}");
    }
}
