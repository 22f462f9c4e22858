//! Baseline demand per series: the exponential-smoothing family, Theta, their
//! combination, and the intermittent models, with point forecasts, model-based
//! quantiles and an honest accuracy report.
//!
//! How a series is forecast ([`forecast_series`]), one documented procedure:
//! 1. only the last `fit_window` periods are used (older ones describe a
//!    business that has moved on, and long daily histories cost time);
//! 2. the series is classified by ADI and CV² ([`intermittent::classify`]).
//!    Intermittent and lumpy series take the one of SBA, TSB and IMAPA with
//!    the lowest in-sample one-step error;
//! 3. other series: every admissible ETS form is fitted by maximum likelihood
//!    and the one with the lowest AICc kept ([`ets`]); the Theta method is
//!    fitted ([`theta`]); the forecast follows the configured [`Rule`], by
//!    default the mean of the two (a combination of unlike models is the
//!    most reliable single rule on competition data); histories shorter
//!    than two seasons use non-seasonal forms only, and those too short for
//!    any form the naive forecast;
//! 4. the accuracy report is nested: the whole procedure runs on the history
//!    before the last `holdout` periods and is scored on them (MASE against
//!    the in-sample seasonal naive error), so the periods that judge it chose
//!    nothing; every candidate's score on the same periods is kept beside it
//!    with the selection score (AICc or in-sample error);
//! 5. the forecast: the form chosen in step 4 refitted on the whole history
//!    (its search warm-started where the first fit ended), Theta refitted, and
//!    the same rule; quantiles come from the models (analytic for the linear
//!    ETS forms, simulated for the multiplicative ones; Theta's from its
//!    smoothing variance; for intermittent series the history's distribution
//!    rescaled to the forecast's mean). Negative values are set to zero and
//!    counted per series ([`SeriesForecast::clipped`]).

pub mod decompose;
pub mod ets;
pub mod frequency;
pub mod intermittent;
pub mod optim;
pub mod promotions;
pub mod theta;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use decompose::{mean, quantile};
use ets::{EtsFit, EtsSpec};
use intermittent::{DemandClass, IntermittentFit, Method};

/// A forecasting model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandModel {
    /// The same period one season earlier (the last value without a season).
    SeasonalNaive,
    /// One form of the exponential-smoothing family.
    Ets(EtsSpec),
    /// The standard Theta method (θ = 2).
    Theta,
    /// The optimised Theta method (θ chosen by in-sample error).
    OptimisedTheta,
    /// The mean of the chosen ETS form and the Theta method.
    Combination,
    /// Croston's method with the Syntetos–Boylan approximation.
    CrostonSba,
    /// Teunter–Syntetos–Babai.
    Tsb,
    /// Temporal aggregation over several levels (IMAPA).
    Imapa,
}

impl DemandModel {
    /// Name used in output tables.
    pub fn name(self) -> &'static str {
        match self {
            DemandModel::SeasonalNaive => "seasonal_naive",
            DemandModel::Ets(spec) => spec.name(),
            DemandModel::Theta => "theta",
            DemandModel::OptimisedTheta => "optimised_theta",
            DemandModel::Combination => "combination",
            DemandModel::CrostonSba => "croston_sba",
            DemandModel::Tsb => "tsb",
            DemandModel::Imapa => "imapa",
        }
    }
}

/// What regular (not intermittent) series are forecast with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The mean of the AICc-best ETS form and the standard Theta method.
    Combination,
    /// The AICc-best ETS form alone.
    Ets,
    /// The standard Theta method alone.
    Theta,
    /// The optimised Theta method alone.
    OptimisedTheta,
}

/// Settings of the demand forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandConfig {
    /// Season length in periods (7 for daily data, 12 for monthly, 1 for none).
    pub season: usize,
    /// Periods held out for the nested accuracy report (at most a third of a series).
    pub holdout: usize,
    /// At most this many recent periods are fitted and forecast from.
    pub fit_window: usize,
    /// The rule for regular series.
    pub rule: Rule,
    /// Nelder–Mead evaluations per unknown of an ETS form.
    pub evaluations_per_unknown: usize,
    /// Sample paths for simulated quantiles.
    pub paths: usize,
    /// The ETS form is chosen again on the whole history when the holdout
    /// is at least this share of it; below, the form chosen before the
    /// holdout is kept and only refitted (on long histories the two choices
    /// agree, and choosing costs most of the time).
    pub reselect_share: f64,
}

impl DemandConfig {
    /// The settings for a history of `frequency`: its season and report
    /// holdout, and a fit window of a year of days, three years of weeks,
    /// or all of a monthly, quarterly or yearly history.
    pub fn for_frequency(frequency: frequency::Frequency) -> Self {
        use frequency::Frequency;
        let fit_window = match frequency {
            Frequency::Daily => 364,
            Frequency::Weekly => 156,
            _ => usize::MAX,
        };
        DemandConfig { season: frequency.season(), holdout: frequency.default_holdout(), fit_window, ..DemandConfig::default() }
    }
}

impl Default for DemandConfig {
    fn default() -> Self {
        DemandConfig { season: 7, holdout: 28, fit_window: 364, rule: Rule::Combination, evaluations_per_unknown: 30, paths: 200, reselect_share: 0.1 }
    }
}

/// Fitted parameters of one model, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Params {
    /// Level (or size) smoothing.
    pub alpha: f64,
    /// Trend (or, for TSB, probability) smoothing.
    pub beta: f64,
    /// Seasonal smoothing.
    pub gamma: f64,
    /// Trend damping.
    pub phi: f64,
    /// Theta's coefficient.
    pub theta: f64,
}

/// One candidate's score on the report's holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backtest {
    /// The model.
    pub model: DemandModel,
    /// Mean absolute scaled error over the holdout (1 = seasonal naive's in-sample error).
    pub mase: f64,
    /// Its parameters as fitted before the holdout.
    pub params: Params,
}

/// The forecast of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    /// The model the procedure chose on the whole history.
    pub model: DemandModel,
    /// The procedure's MASE on the holdout, run on the history before it
    /// (nested); `NaN` when the series is too short for a holdout or constant before it.
    pub mase: f64,
    /// The in-sample selection score of the model chosen before the holdout
    /// (AICc of the ETS form; in-sample mean squared error of an intermittent model).
    pub selection_score: f64,
    /// The series' demand class.
    pub class: DemandClass,
    /// Every candidate's holdout score (the chosen procedure's included).
    pub backtests: Vec<Backtest>,
    /// Point forecast per period (the mean).
    pub mean: Vec<f64>,
    /// Median per period.
    pub p50: Vec<f64>,
    /// 90th percentile per period.
    pub p90: Vec<f64>,
    /// Values below zero set to zero (mean, p50 and p90 together).
    pub clipped: usize,
}

impl SeriesForecast {
    /// Seasonal naive's score on the same holdout (`None` without a report):
    /// what the chosen procedure is judged against.
    pub fn naive_mase(&self) -> Option<f64> {
        self.backtests.iter().find(|b| b.model == DemandModel::SeasonalNaive).map(|b| b.mase)
    }
}

/// What one run of the procedure produced.
struct Outcome {
    model: DemandModel,
    class: DemandClass,
    score: f64,
    mean: Vec<f64>,
    p50: Vec<f64>,
    p90: Vec<f64>,
    /// Every candidate with its point forecast and parameters.
    candidates: Vec<(DemandModel, Vec<f64>, Params)>,
    /// The ETS form fitted, to refit on a longer history.
    ets: Option<EtsFit>,
    /// Periods it was run on.
    n: usize,
}

/// The seasonal naive forecast of `h` periods.
fn seasonal_naive(y: &[f64], m: usize, h: usize) -> Vec<f64> {
    let n = y.len();
    let m = m.max(1);
    (0..h).map(|k| if n >= m { y[n - m + k % m] } else { y.last().copied().unwrap_or(0.0) }).collect()
}

/// Mean absolute error of the seasonal naive forecast in sample: the MASE scale.
pub fn naive_scale(y: &[f64], season: usize) -> f64 {
    let m = season.max(1);
    if y.len() <= m {
        return 0.0;
    }
    y[m..].iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f64>() / (y.len() - m) as f64
}

/// The scale a holdout's errors are divided by: seasonal naive's in-sample
/// error, or the plain naive's where the history holds no full season or
/// repeats itself exactly; `NaN` for a constant history (no error to scale
/// by: such a series is left out of the report's means).
fn mase_scale(train: &[f64], season: usize) -> f64 {
    [naive_scale(train, season), naive_scale(train, 1)].into_iter().find(|s| *s > 0.0).unwrap_or(f64::NAN)
}

/// The mean of two forecasts, element by element.
fn average(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| 0.5 * (x + y)).collect()
}

/// A deterministic seed for a series' simulated quantiles.
fn seed_of(y: &[f64]) -> u64 {
    y.iter().fold(y.len() as u64, |h, v| h.rotate_left(7) ^ v.to_bits())
}

/// Runs the procedure (module docs, steps 2–3 and 5) on `y` for `h` periods;
/// `earlier`, the outcome on a prefix of `y`, fixes the ETS form and warm-starts it.
fn procedure(y: &[f64], h: usize, config: &DemandConfig, earlier: Option<&Outcome>) -> Outcome {
    let class = intermittent::classify(y);
    let naive = seasonal_naive(y, config.season, h);
    if y.len() < 3 {
        let level = mean(y);
        return Outcome { model: DemandModel::SeasonalNaive, class, score: 0.0, mean: vec![level; h], p50: vec![level; h], p90: vec![level; h], candidates: vec![(DemandModel::SeasonalNaive, naive, Params::default())], ets: None, n: y.len() };
    }
    if class.is_intermittent() {
        return intermittent_procedure(y, h, config, class, naive);
    }
    let m = config.season.max(1);
    let seasonal = m > 1 && y.len() >= 2 * m;
    let positive = y.iter().all(|v| *v > 0.0);
    let keep_form = earlier.is_some_and(|e| (y.len() - e.n) as f64 <= config.reselect_share * y.len() as f64);
    let ets = match earlier.and_then(|e| e.ets.as_ref()).filter(|_| keep_form) {
        // Warm from the earlier optimum on most of the same data: a third of the
        // budget. A multiplicative form no longer admissible (a zero in the
        // holdout) sends the choice back to the whole family.
        Some(fit) => ets::refit(fit, y, config.evaluations_per_unknown / 3)
            .or_else(|| ets::fit_best(&EtsSpec::family(seasonal, positive), y, m, config.evaluations_per_unknown)),
        None => ets::fit_best(&EtsSpec::family(seasonal, positive), y, m, config.evaluations_per_unknown),
    };
    let theta_season = if seasonal { m } else { 1 };
    let theta_fit = theta::fit(y, theta_season, false);
    let optimised = (config.rule == Rule::OptimisedTheta).then(|| theta::fit(y, theta_season, true));
    let qs = [0.5, 0.9];
    let theta_mean = theta_fit.forecast(h);
    let theta_q = theta_fit.quantiles(h, &qs);
    let theta_params = Params { alpha: theta_fit.alpha, theta: theta_fit.theta, ..Params::default() };
    let mut candidates = vec![(DemandModel::SeasonalNaive, naive, Params::default()), (DemandModel::Theta, theta_mean.clone(), theta_params)];
    let ets_part = ets.as_ref().map(|fit| {
        let q = fit.quantiles(h, &qs, config.paths, seed_of(y));
        let p = Params { alpha: fit.params.alpha, beta: fit.params.beta, gamma: fit.params.gamma, phi: fit.params.phi, theta: 0.0 };
        (DemandModel::Ets(fit.spec), fit.forecast(h), q, p, fit.aicc)
    });
    if let Some((model, f, _, p, _)) = &ets_part {
        candidates.push((*model, f.clone(), *p));
        candidates.push((DemandModel::Combination, average(f, &theta_mean), Params::default()));
    }
    let (model, mean_f, q, score) = match (config.rule, &ets_part, &optimised) {
        (Rule::OptimisedTheta, _, Some(o)) => {
            let f = o.forecast(h);
            candidates.push((DemandModel::OptimisedTheta, f.clone(), Params { alpha: o.alpha, theta: o.theta, ..Params::default() }));
            (DemandModel::OptimisedTheta, f, o.quantiles(h, &qs), o.sigma2)
        }
        (Rule::Ets, Some((model, f, q, _, aicc)), _) => (*model, f.clone(), q.clone(), *aicc),
        (Rule::Combination, Some((_, f, q, _, aicc)), _) => (DemandModel::Combination, average(f, &theta_mean), vec![average(&q[0], &theta_q[0]), average(&q[1], &theta_q[1])], *aicc),
        _ => (DemandModel::Theta, theta_mean, theta_q, theta_fit.sigma2),
    };
    let [p50, p90]: [Vec<f64>; 2] = q.try_into().unwrap_or_else(|_| [mean_f.clone(), mean_f.clone()]);
    Outcome { model, class, score, mean: mean_f, p50, p90, candidates, ets, n: y.len() }
}

/// Step 2 for intermittent series: SBA, TSB and IMAPA, the lowest in-sample error kept.
fn intermittent_procedure(y: &[f64], h: usize, config: &DemandConfig, class: DemandClass, naive: Vec<f64>) -> Outcome {
    let fits: [(DemandModel, IntermittentFit); 3] = [
        (DemandModel::CrostonSba, intermittent::fit(Method::Sba, y)),
        (DemandModel::Tsb, intermittent::fit(Method::Tsb, y)),
        (DemandModel::Imapa, intermittent::imapa(y, config.season.max(4))),
    ];
    let best = fits.iter().min_by(|a, b| a.1.mse.total_cmp(&b.1.mse)).map_or(fits[0], |b| *b);
    // Quantiles: the history's per-period distribution rescaled to the forecast's mean.
    let mut sorted = y.to_vec();
    sorted.sort_by(f64::total_cmp);
    let ratio = if mean(y) > 0.0 { best.1.forecast / mean(y) } else { 0.0 };
    let mut candidates = vec![(DemandModel::SeasonalNaive, naive, Params::default())];
    candidates.extend(fits.iter().map(|(m, f)| (*m, vec![f.forecast; h], Params { alpha: f.alpha, beta: f.beta, ..Params::default() })));
    Outcome {
        model: best.0,
        class,
        score: best.1.mse,
        mean: vec![best.1.forecast; h],
        p50: vec![quantile(&sorted, 0.5) * ratio; h],
        p90: vec![(quantile(&sorted, 0.9) * ratio).max(best.1.forecast); h],
        candidates,
        ets: None,
        n: y.len(),
    }
}

/// Periods held out for the report of an `n`-period series: the configured
/// holdout, at most a third of the series.
fn holdout_of(n: usize, config: &DemandConfig) -> usize {
    config.holdout.min(n / 3)
}

/// Mean absolute scaled error of `forecast` against `actual` (`NaN` with no scale).
fn mase(actual: &[f64], forecast: &[f64], scale: f64) -> f64 {
    if actual.is_empty() {
        return f64::NAN;
    }
    actual.iter().zip(forecast).map(|(a, f)| (a - f).abs()).sum::<f64>() / actual.len() as f64 / scale
}

/// Forecasts one series `horizon` periods past its end (module docs).
pub fn forecast_series(y: &[f64], horizon: usize, config: &DemandConfig) -> SeriesForecast {
    let y = &y[y.len().saturating_sub(config.fit_window.max(1))..];
    let n = y.len();
    let holdout = holdout_of(n, config);
    let (report, backtests, mase_chosen, score) = if holdout >= 1 && n - holdout >= 3 {
        let train = &y[..n - holdout];
        let actual = &y[n - holdout..];
        let before = procedure(train, holdout, config, None);
        let scale = mase_scale(train, config.season);
        let backtests: Vec<Backtest> = before.candidates.iter().map(|(model, f, params)| Backtest { model: *model, mase: mase(actual, f, scale), params: *params }).collect();
        let chosen = mase(actual, &before.mean, scale);
        let score = before.score;
        (Some(before), backtests, chosen, score)
    } else {
        // Too short for a report: no score, rather than a perfect one.
        (None, Vec::new(), f64::NAN, f64::NAN)
    };
    // Refit the earlier ETS form only when the class did not change.
    let outcome = match &report {
        Some(before) if before.class.is_intermittent() == intermittent::classify(y).is_intermittent() => procedure(y, horizon, config, Some(before)),
        _ => procedure(y, horizon, config, None),
    };
    let mut clipped = 0;
    let mut clip = |v: Vec<f64>| -> Vec<f64> {
        v.into_iter()
            .map(|x| {
                if x < 0.0 || !x.is_finite() {
                    clipped += 1;
                    0.0
                } else {
                    x
                }
            })
            .collect()
    };
    let mean_f = clip(outcome.mean);
    let p50 = clip(outcome.p50);
    let p90 = clip(outcome.p90);
    SeriesForecast { model: outcome.model, mase: mase_chosen, selection_score: score, class: outcome.class, backtests, mean: mean_f, p50, p90, clipped }
}

/// [`forecast_series`] for many series at once, in parallel (rayon).
pub fn forecast_all(series: &[Vec<f64>], horizon: usize, config: &DemandConfig) -> Vec<SeriesForecast> {
    series.par_iter().map(|y| forecast_series(y, horizon, config)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;

    /// The selection bug of issue 19 cannot return: the forecast is the
    /// procedure's on the whole history, and a series with too little
    /// history for a seasonal form is given non-seasonal ones only — on a
    /// 13-day flat noisy series (under two weekly seasons) no seasonal ETS
    /// form is fitted, before the holdout or after it.
    #[test]
    fn a_short_history_gets_non_seasonal_forms_only() {
        let mut rng = Rng::new(7);
        let y: Vec<f64> = (0..13).map(|_| 20.0 + 4.0 * (rng.uniform() - 0.5)).collect();
        let f = forecast_series(&y, 7, &DemandConfig::default());
        for b in &f.backtests {
            if let DemandModel::Ets(spec) = b.model {
                assert_eq!(spec.season, ets::Component::None, "{:?}", f.backtests);
            }
        }
        assert!(f.mean.iter().all(|v| (v - 20.0).abs() < 3.0), "{:?}", f.mean);
    }

    /// The other half of that bug: the forecast returned is exactly what the
    /// rule makes of forms fitted on the whole history, never a form whose
    /// parameters were judged on other data or left at their starting values.
    /// A 19-day series has two weekly seasons in all (seasonal forms are
    /// admissible on the whole history) but not before its 6-day holdout.
    #[test]
    fn the_forecast_is_the_rule_applied_to_forms_fitted_on_the_whole_history() {
        let mut rng = Rng::new(7);
        let y: Vec<f64> = (0..19).map(|t| 20.0 + [3.0, -1.0, 0.0, 2.0, -4.0, 1.0, -1.0][t % 7] + 2.0 * (rng.uniform() - 0.5)).collect();
        let config = DemandConfig::default();
        let f = forecast_series(&y, 7, &config);
        assert_eq!(f.model, DemandModel::Combination);
        let best = ets::fit_best(&EtsSpec::family(true, true), &y, 7, config.evaluations_per_unknown).expect("a form fits");
        let theta_fit = theta::fit(&y, 7, false);
        let want = average(&best.forecast(7), &theta_fit.forecast(7));
        for (got, want) in f.mean.iter().zip(&want) {
            assert!((got - want).abs() < 1e-9, "{:?} vs {want:?}", f.mean);
        }
        assert!((best.params.alpha - 0.2).abs() > 1e-6, "fitted, not the starting alpha: {:?}", best.params);
    }

    #[test]
    fn a_clean_weekly_pattern_is_forecast_closely() {
        let week = [3.0, 5.0, 7.0, 9.0, 11.0, 20.0, 1.0];
        let y: Vec<f64> = week.iter().cycle().take(140).copied().collect();
        let f = forecast_series(&y, 14, &DemandConfig::default());
        for (k, v) in f.mean.iter().enumerate() {
            assert!((v - week[k % 7]).abs() < 0.3, "day {k}: {v} ({:?})", f.model);
        }
    }

    #[test]
    fn a_trending_seasonal_series_beats_seasonal_naive() {
        let mut rng = Rng::new(9);
        let y: Vec<f64> = (0..400).map(|t| 20.0 + 0.1 * t as f64 + [0.0, 2.0, 4.0, 2.0, 0.0, 6.0, -3.0][t % 7] + rng.normal()).collect();
        let f = forecast_series(&y, 28, &DemandConfig::default());
        let naive = f.naive_mase().expect("naive");
        assert!(f.mase < naive, "{} vs naive {naive}: {:?}", f.mase, f.backtests);
        assert!(f.p90.iter().zip(&f.p50).all(|(a, b)| a >= b));
        assert!(f.backtests.iter().any(|b| matches!(b.model, DemandModel::Ets(s) if s.trend != ets::Trend::None)), "{:?}", f.backtests);
    }

    /// Intermittent demand: on 30% of days, 1-6 units.
    fn simulate_intermittent(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| if rng.uniform() < 0.3 { 1.0 + (rng.uniform() * 6.0).floor() } else { 0.0 }).collect()
    }

    #[test]
    fn intermittent_models_beat_seasonal_naive_on_intermittent_series() {
        let config = DemandConfig::default();
        let (mut naive, mut chosen) = (Vec::new(), Vec::new());
        for seed in 1..=40 {
            let y = simulate_intermittent(730, seed);
            let f = forecast_series(&y, 28, &config);
            assert!(f.class.is_intermittent());
            assert!(matches!(f.model, DemandModel::CrostonSba | DemandModel::Tsb | DemandModel::Imapa), "{:?}", f.model);
            naive.push(f.naive_mase().expect("naive"));
            chosen.push(f.mase);
        }
        let (n, c) = (mean(&naive), mean(&chosen));
        assert!(c < n, "MASE naive {n:.3}, chosen {c:.3}");
    }

    /// The backtest report on generated history: the chosen models beat
    /// seasonal naive on average, on a holdout that chose nothing.
    #[test]
    fn chosen_models_beat_seasonal_naive_on_generated_history() {
        let mut rng = Rng::new(11);
        let history: Vec<Vec<f64>> = (0..200).map(|_| crate::synthetic::SeriesShape::random(&mut rng, 0.3).sample(&mut rng, 730, 0)).collect();
        let forecasts = forecast_all(&history, 28, &DemandConfig::default());
        let (lines, chosen, naive) = backtest_summary(&forecasts);
        assert!(chosen < 1.0 && chosen < 0.9 * naive, "chosen {chosen:.3}, naive {naive:.3}: {lines:?}");
        assert!(forecasts.iter().any(|f| f.class.is_intermittent()) && forecasts.iter().any(|f| f.model == DemandModel::Combination));
    }

    /// Negative forecasts are set to zero and counted: a series falling
    /// steeply toward zero is forecast below it by its trend.
    #[test]
    fn negative_forecasts_are_clipped_and_counted() {
        let y: Vec<f64> = (0..60).map(|t| 120.0 - 2.0 * t as f64 + if t % 2 == 0 { 0.5 } else { -0.5 }).collect();
        let f = forecast_series(&y, 30, &DemandConfig { season: 1, holdout: 6, ..DemandConfig::default() });
        assert!(f.clipped > 0, "{:?}", f.mean);
        assert!(f.mean.iter().chain(&f.p50).chain(&f.p90).all(|v| *v >= 0.0));
    }

    /// A training part shorter than a season has no seasonal naive error:
    /// the report scales by the plain naive error (not by ~0, which made a
    /// MASE of 1e10), and a constant one has no score at all.
    #[test]
    fn the_holdout_score_has_a_scale_on_short_and_constant_histories() {
        let mut rng = Rng::new(5);
        let y: Vec<f64> = (0..18).map(|t| 100.0 + t as f64 + 3.0 * rng.normal()).collect();
        let f = forecast_series(&y, 6, &DemandConfig { season: 12, holdout: 6, ..DemandConfig::default() });
        assert!(f.mase.is_finite() && f.mase < 20.0, "{}", f.mase);
        let constant = forecast_series(&[5.0; 30], 6, &DemandConfig { season: 7, holdout: 6, ..DemandConfig::default() });
        assert!(constant.mase.is_nan());
        let (_, chosen, _) = backtest_summary([&f, &constant]);
        assert!((chosen - f.mase).abs() < 1e-12, "the constant series is left out of the mean");
    }

    /// A stock-out day in the holdout makes the kept multiplicative form
    /// inadmissible on the whole history: the form is chosen again, and the
    /// forecast stays the combination.
    #[test]
    fn a_zero_after_a_multiplicative_choice_chooses_again() {
        let mut rng = Rng::new(3);
        let mut y: Vec<f64> = (0..364).map(|t| (50.0 + 0.05 * t as f64) * [0.7, 0.9, 1.0, 1.0, 1.1, 1.5, 0.8][t % 7] * (1.0 + 0.05 * rng.normal())).collect();
        y[360] = 0.0;
        let f = forecast_series(&y, 14, &DemandConfig::default());
        let multiplicative = |m: &DemandModel| matches!(m, DemandModel::Ets(s) if s.error == ets::Component::Multiplicative || s.season == ets::Component::Multiplicative);
        assert!(f.backtests.iter().any(|b| multiplicative(&b.model)), "the form kept before the holdout is multiplicative: {:?}", f.backtests);
        assert_eq!(f.model, DemandModel::Combination, "{:?}", f.backtests);
    }

    #[test]
    fn short_and_empty_series_do_not_panic() {
        let config = DemandConfig::default();
        for y in [vec![], vec![1.0], vec![0.0; 10], vec![2.0; 20]] {
            let f = forecast_series(&y, 7, &config);
            assert_eq!(f.mean.len(), 7);
            assert!(f.mean.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
    }
}

/// One model's line of a backtest report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// The model.
    pub model: DemandModel,
    /// Series it was tried on.
    pub series: usize,
    /// Its mean backtest MASE over them.
    pub mean_mase: f64,
    /// Seasonal naive's mean MASE over the same series.
    pub naive_mase: f64,
    /// Series that chose it.
    pub chosen: usize,
}

/// Per-model backtest report over many series, and the chosen models' mean
/// MASE against seasonal naive's (both over the series with a score).
pub fn backtest_summary<'a>(forecasts: impl IntoIterator<Item = &'a SeriesForecast>) -> (Vec<ModelSummary>, f64, f64) {
    let mut lines: Vec<ModelSummary> = Vec::new();
    let line_of = |lines: &mut Vec<ModelSummary>, model: DemandModel| -> usize {
        lines.iter().position(|l| l.model == model).unwrap_or_else(|| {
            lines.push(ModelSummary { model, series: 0, mean_mase: 0.0, naive_mase: 0.0, chosen: 0 });
            lines.len() - 1
        })
    };
    let (mut chosen, mut naive, mut n) = (0.0, 0.0, 0usize);
    // Series without a score (too short, or constant before the holdout) are left out.
    for f in forecasts.into_iter().filter(|f| f.mase.is_finite()) {
        let naive_here = f.naive_mase().unwrap_or(f.mase);
        for b in &f.backtests {
            let at = line_of(&mut lines, b.model);
            let line = &mut lines[at];
            line.series += 1;
            line.mean_mase += b.mase;
            line.naive_mase += naive_here;
        }
        let at = line_of(&mut lines, f.model);
        lines[at].chosen += 1;
        chosen += f.mase;
        naive += naive_here;
        n += 1;
    }
    for l in &mut lines {
        let k = l.series.max(1) as f64;
        l.mean_mase /= k;
        l.naive_mase /= k;
    }
    lines.sort_by_key(|a| a.model);
    let k = n.max(1) as f64;
    (lines, chosen / k, naive / k)
}

/// How an offer's acceptances spread over the days of a horizon.
///
/// Why a weekday profile: the offer history records the day of each showing
/// and whether it was accepted, but no campaign start or redemption date, so
/// the one timing it supports is which weekdays customers accept on. The curve
/// gives day `k` of the horizon (whose first day has weekday `first_weekday`,
/// 0 = Monday) the share of acceptances of its weekday, normalised to sum to 1
/// over the horizon; without acceptances it is uniform.
pub fn redemption_curve(acceptances_by_weekday: &[f64; 7], first_weekday: usize, days: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..days).map(|k| acceptances_by_weekday[(first_weekday + k) % 7]).collect();
    let total: f64 = raw.iter().sum();
    if total <= 0.0 {
        return vec![1.0 / days.max(1) as f64; days];
    }
    raw.into_iter().map(|v| v / total).collect()
}

#[cfg(test)]
mod curve_tests {
    use super::redemption_curve;

    #[test]
    fn follows_the_weekday_profile_and_sums_to_one() {
        // Twice as many acceptances on Saturdays (5) as on other days.
        let mut by_weekday = [1.0; 7];
        by_weekday[5] = 2.0;
        let curve = redemption_curve(&by_weekday, 1, 7); // starts on a Tuesday
        assert!((curve.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((curve[4] - 0.25).abs() < 1e-12 && (curve[0] - 0.125).abs() < 1e-12, "{curve:?}");
        assert_eq!(redemption_curve(&[0.0; 7], 0, 4), vec![0.25; 4]);
    }
}
