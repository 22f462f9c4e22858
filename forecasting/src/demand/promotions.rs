//! Promotions and price as drivers of baseline demand: a multiplicative
//! effect per series, pooled across the series of one group (a SKU), taken
//! out of the history before the models see it and put back on the periods
//! a promotion or price is planned for.
//!
//! Why this form: a promotion multiplies sales (a 20%-off week sells half as
//! much again whatever the level), so the effect is estimated on the log
//! scale, `ln(y + 1) − ln(base + 1) = lift · promo + elasticity · ln(price / reference)`,
//! where `base` is the mean of the nearby periods without a promotion (a
//! centred window of two seasons, so the season averages out). One series
//! has few promotions, so its estimate is shrunk toward its group's mean in
//! proportion to how few it has (empirical-Bayes style, prior weight
//! [`PRIOR_PERIODS`] promoted periods). Without the drivers removed, ETS would
//! read a promotion as a level shift and the forecast would carry it on.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{forecast_series, DemandConfig, SeriesForecast};

/// One period's drivers.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Drivers {
    /// Promotion depth: 0 none, 1 a promotion, or a depth such as 0.2 (20% off).
    pub promo: f64,
    /// Price, when known.
    pub price: Option<f64>,
}

/// A series' drivers over its history and over the forecast periods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesDrivers {
    /// One per history period (aligned with the series).
    pub history: Vec<Drivers>,
    /// One per forecast period (missing ones: no promotion, the reference price).
    pub future: Vec<Drivers>,
    /// The pooling group (series of one SKU share one).
    pub group: usize,
}

/// A series' fitted effects.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Effects {
    /// Log-lift per unit of promotion depth (after pooling).
    pub promo: f64,
    /// Price elasticity (after pooling; 0 without prices).
    pub elasticity: f64,
    /// The series' median price (what `ln(price / reference)` compares with).
    pub reference_price: f64,
    /// Promoted periods in the history.
    pub promoted: usize,
    /// Periods priced away from the reference price.
    pub repriced: usize,
}

impl Effects {
    /// The multiplicative effect of `d` on sales.
    pub fn multiplier(&self, d: &Drivers) -> f64 {
        let price = match d.price {
            Some(p) if p > 0.0 && self.reference_price > 0.0 => self.elasticity * (p / self.reference_price).ln(),
            _ => 0.0,
        };
        (self.promo * d.promo + price).exp()
    }
}

/// Prior weight of the group's mean, in promoted periods.
pub const PRIOR_PERIODS: f64 = 8.0;

/// Estimates a series' effects (before pooling) by least squares on the log
/// residuals from the local base (module docs).
pub fn fit_effects(y: &[f64], drivers: &[Drivers], season: usize) -> Effects {
    let n = y.len().min(drivers.len());
    let mut prices: Vec<f64> = drivers[..n].iter().filter_map(|d| d.price).filter(|p| *p > 0.0).collect();
    prices.sort_by(f64::total_cmp);
    let reference_price = prices.get(prices.len() / 2).copied().unwrap_or(0.0);
    let promoted = drivers[..n].iter().filter(|d| d.promo > 0.0).count();
    let repriced = drivers[..n].iter().filter(|d| d.price.is_some_and(|p| p > 0.0 && (p - reference_price).abs() > 1e-9 * reference_price)).count();
    let half = season.max(3);
    // Prefix sums of the periods without a promotion, for the windowed base.
    let (mut sum, mut count) = (vec![0.0; n + 1], vec![0usize; n + 1]);
    for t in 0..n {
        let plain = drivers[t].promo <= 0.0;
        sum[t + 1] = sum[t] + if plain { y[t] } else { 0.0 };
        count[t + 1] = count[t] + usize::from(plain);
    }
    // Normal equations of r = a·promo + b·log_price (no intercept).
    let (mut spp, mut spq, mut sqq, mut spr, mut sqr) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for t in 0..n {
        let (lo, hi) = (t.saturating_sub(half), (t + half + 1).min(n));
        let k = count[hi] - count[lo];
        if k == 0 {
            continue;
        }
        let base = (sum[hi] - sum[lo]) / k as f64;
        let r = (y[t] + 1.0).ln() - (base + 1.0).ln();
        let p = drivers[t].promo;
        let q = match drivers[t].price {
            Some(price) if price > 0.0 && reference_price > 0.0 => (price / reference_price).ln(),
            _ => 0.0,
        };
        spp += p * p;
        spq += p * q;
        sqq += q * q;
        spr += p * r;
        sqr += q * r;
    }
    let det = spp * sqq - spq * spq;
    let (promo, elasticity) = if spp > 0.0 && sqq > 0.0 && det.abs() > 1e-12 * spp * sqq {
        ((spr * sqq - sqr * spq) / det, (sqr * spp - spr * spq) / det)
    } else if spp > 0.0 {
        (spr / spp, 0.0)
    } else if sqq > 0.0 {
        (0.0, sqr / sqq)
    } else {
        (0.0, 0.0)
    };
    Effects { promo, elasticity, reference_price, promoted, repriced }
}

/// Shrinks each series' effects toward its group's mean, each weighted by
/// the periods that inform it (promoted, repriced): `(n e + k ē) / (n + k)`,
/// `k` = [`PRIOR_PERIODS`].
pub fn pool(effects: &mut [Effects], groups: &[usize]) {
    let shrink = |effects: &mut [Effects], weight_of: fn(&Effects) -> usize, value: fn(&mut Effects) -> &mut f64| {
        let top = groups.iter().copied().max().map_or(0, |g| g + 1);
        let (mut weight, mut total) = (vec![0.0; top], vec![0.0; top]);
        for (e, &g) in effects.iter_mut().zip(groups) {
            let w = weight_of(e) as f64;
            weight[g] += w;
            total[g] += w * *value(e);
        }
        for (e, &g) in effects.iter_mut().zip(groups) {
            let n = weight_of(e) as f64;
            let group = if weight[g] > 0.0 { total[g] / weight[g] } else { 0.0 };
            let v = value(e);
            *v = (n * *v + PRIOR_PERIODS * group) / (n + PRIOR_PERIODS);
        }
    };
    shrink(effects, |e| e.promoted, |e| &mut e.promo);
    shrink(effects, |e| e.repriced, |e| &mut e.elasticity);
}

/// Forecasts every series with its drivers: effects fitted, pooled, taken
/// out of the history, the series forecast ([`forecast_series`]) and the
/// planned drivers' effects put back on each period (mean and quantiles).
pub fn forecast_all_with_drivers(series: &[Vec<f64>], drivers: &[SeriesDrivers], horizon: usize, config: &DemandConfig) -> (Vec<SeriesForecast>, Vec<Effects>) {
    let mut effects: Vec<Effects> = series.par_iter().zip(drivers).map(|(y, d)| fit_effects(y, &d.history, config.season)).collect();
    pool(&mut effects, &drivers.iter().map(|d| d.group).collect::<Vec<_>>());
    let forecasts = series
        .par_iter()
        .zip(drivers)
        .zip(&effects)
        .map(|((y, d), e)| {
            let plain: Vec<f64> = y.iter().enumerate().map(|(t, v)| v / e.multiplier(&d.history.get(t).copied().unwrap_or_default())).collect();
            let mut f = forecast_series(&plain, horizon, config);
            for k in 0..horizon {
                let planned = d.future.get(k).copied().unwrap_or_default();
                let m = e.multiplier(&planned);
                f.mean[k] *= m;
                f.p50[k] *= m;
                f.p90[k] *= m;
            }
            f
        })
        .collect();
    (forecasts, effects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;

    /// Daily sales with a weekly pattern and Poisson noise; promotions on
    /// about one day in ten multiply the mean by `lift`.
    const WEEK: [f64; 7] = [0.8, 0.9, 1.0, 1.0, 1.1, 1.3, 0.9];

    /// Returns the series, its drivers and its level.
    fn simulate(lift: f64, seed: u64) -> (Vec<f64>, Vec<Drivers>, f64) {
        let mut rng = Rng::new(seed);
        let week = WEEK;
        let level = 20.0 + 20.0 * rng.uniform();
        let mut y = Vec::new();
        let mut d = Vec::new();
        for t in 0..730 {
            let promo = if rng.uniform() < 0.1 { 1.0 } else { 0.0 };
            let mean = level * week[t % 7] * if promo > 0.0 { lift } else { 1.0 };
            y.push(rng.poisson(mean));
            d.push(Drivers { promo, price: None });
        }
        (y, d, level)
    }

    /// The lift of generated promotions is recovered within 10%, pooled over
    /// the series of one SKU.
    #[test]
    fn a_known_promotion_lift_is_recovered() {
        let lift = 1.5;
        let mut levels = Vec::new();
        let (series, drivers): (Vec<Vec<f64>>, Vec<SeriesDrivers>) = (0..12)
            .map(|s| {
                let (y, d, level) = simulate(lift, s + 1);
                levels.push(level);
                (y, SeriesDrivers { history: d, future: vec![Drivers { promo: 1.0, price: None }, Drivers::default()], group: (s % 3) as usize })
            })
            .unzip();
        let (forecasts, effects) = forecast_all_with_drivers(&series, &drivers, 2, &DemandConfig::default());
        for e in &effects {
            let recovered = e.promo.exp();
            assert!((recovered - lift).abs() < 0.1 * lift, "recovered lift {recovered:.3}, simulated {lift}");
        }
        // A planned promotion on day 730 is forecast near its true mean, and
        // the day after without one near its own.
        for (f, level) in forecasts.iter().zip(&levels) {
            let (promoted, plain) = (level * WEEK[730 % 7] * lift, level * WEEK[731 % 7]);
            assert!((f.mean[0] - promoted).abs() < 0.15 * promoted, "forecast {:.2}, true mean {promoted:.2}", f.mean[0]);
            assert!((f.mean[1] - plain).abs() < 0.15 * plain, "forecast {:.2}, true mean {plain:.2}", f.mean[1]);
        }
    }

    /// A price elasticity of −2 is recovered from a series whose price moves.
    #[test]
    fn a_known_price_elasticity_is_recovered() {
        let mut rng = Rng::new(3);
        let (mut y, mut d) = (Vec::new(), Vec::new());
        for _ in 0..730 {
            let price = 10.0 * (1.0 + 0.2 * (rng.uniform() - 0.5));
            let mean = 30.0 * (price / 10.0_f64).powf(-2.0);
            y.push(rng.poisson(mean));
            d.push(Drivers { promo: 0.0, price: Some(price) });
        }
        let e = fit_effects(&y, &d, 7);
        assert!((e.elasticity + 2.0).abs() < 0.3, "elasticity {:.3}", e.elasticity);
    }

    /// Without drivers nothing changes: the effects are zero and the forecast
    /// is the plain one.
    #[test]
    fn no_drivers_no_effect() {
        let (y, _, _) = simulate(1.0, 9);
        let plain = forecast_series(&y, 7, &DemandConfig::default());
        let (with, effects) = forecast_all_with_drivers(std::slice::from_ref(&y), &[SeriesDrivers { history: vec![Drivers::default(); y.len()], future: Vec::new(), group: 0 }], 7, &DemandConfig::default());
        assert_eq!(effects[0].promo, 0.0);
        assert_eq!(with[0].mean, plain.mean);
    }
}
