//! The exponential-smoothing family ETS(error, trend, season) in its
//! innovations state-space form (Hyndman, Koehler, Ord & Snyder 2008):
//! additive or multiplicative error, no / additive / damped trend, no /
//! additive / multiplicative season. Parameters and the initial level and
//! trend are fitted by maximum likelihood (Nelder–Mead); the initial seasonal
//! states come from a classical decomposition of the first seasons; forms are
//! compared by AICc.
//!
//! Why the state updates are written once for both error types: with the
//! raw one-step error `e = y − μ`, the multiplicative-error updates
//! (`l = (l + φb)(1 + αε)`, `ε = e/μ`, …) are algebraically the additive ones,
//! so the error type changes only the likelihood and the prediction
//! intervals, never the point forecast.
//!
//! Admissible forms: additive error with a multiplicative season is left
//! out (numerically unstable, as in the standard automatic procedure), and
//! so are multiplicative trends; multiplicative forms need strictly positive
//! data; seasonal forms need two full seasons.

use serde::{Deserialize, Serialize};

use super::decompose::{mean, normal_quantile, quantile, seasonal_indices};
use super::optim::{from_unit, nelder_mead, unit};
use crate::synthetic::Rng;

/// How a component enters the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// Absent (season only).
    None,
    /// Added to the level.
    Additive,
    /// A factor of the level.
    Multiplicative,
}

/// The trend component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// No trend.
    None,
    /// A linear trend.
    Additive,
    /// A trend damped by `phi` each period.
    Damped,
}

/// One form of the family, e.g. ETS(M,Ad,M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EtsSpec {
    /// Additive or multiplicative error.
    pub error: Component,
    /// The trend.
    pub trend: Trend,
    /// The season.
    pub season: Component,
}

/// Smoothing parameters: level `alpha`, trend `beta`, season `gamma`, damping `phi`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EtsParams {
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing (0 without a trend).
    pub beta: f64,
    /// Season smoothing (0 without a season).
    pub gamma: f64,
    /// Trend damping (1 for a linear trend, 0 without one).
    pub phi: f64,
}

/// The states of the filter: level, trend, and the season ring indexed by
/// `t mod m`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EtsStates {
    /// Level.
    pub level: f64,
    /// Trend (0 without one).
    pub trend: f64,
    /// Seasonal states by position `t mod m` (empty without a season).
    pub season: Vec<f64>,
}

/// A fitted form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtsFit {
    /// The form.
    pub spec: EtsSpec,
    /// Its smoothing parameters.
    pub params: EtsParams,
    /// States before the first observation.
    pub initial: EtsStates,
    /// States after the last observation.
    pub end: EtsStates,
    /// Observations fitted.
    pub n: usize,
    /// Season length (1 without a season).
    pub m: usize,
    /// Variance of the one-step errors (relative errors for a multiplicative error).
    pub sigma2: f64,
    /// `−2 log L` up to a constant shared by every form on the same data.
    pub neg2_log_lik: f64,
    /// Parameters counted by the AICc (smoothing, initial states, variance).
    pub k: usize,
    /// Corrected Akaike information criterion (lower is better).
    pub aicc: f64,
    /// Where the search ended, to warm-start a refit on a longer history.
    #[serde(skip)]
    search: Vec<f64>,
}

impl EtsSpec {
    /// ETS(error, trend, season).
    pub const fn new(error: Component, trend: Trend, season: Component) -> Self {
        EtsSpec { error, trend, season }
    }

    /// Name in output tables: `ets_` and the form's letters, e.g. `ets_madm`
    /// for ETS(M,Ad,M).
    pub fn name(self) -> &'static str {
        use Component::{Additive as A, Multiplicative as M, None as N};
        use Trend::{Additive as TA, Damped as TD, None as TN};
        match (self.error, self.trend, self.season) {
            (A, TN, N) => "ets_ann",
            (A, TN, A) => "ets_ana",
            (A, TN, M) => "ets_anm",
            (A, TA, N) => "ets_aan",
            (A, TA, A) => "ets_aaa",
            (A, TA, M) => "ets_aam",
            (A, TD, N) => "ets_aadn",
            (A, TD, A) => "ets_aada",
            (A, TD, M) => "ets_aadm",
            (M, TN, N) => "ets_mnn",
            (M, TN, A) => "ets_mna",
            (M, TN, M) => "ets_mnm",
            (M, TA, N) => "ets_man",
            (M, TA, A) => "ets_maa",
            (M, TA, M) => "ets_mam",
            (M, TD, N) => "ets_madn",
            (M, TD, A) => "ets_mada",
            (M, TD, M) => "ets_madm",
            (N, _, _) => "ets",
        }
    }

    /// Whether the errors are multiplicative or the season is: such forms
    /// need strictly positive data and have no analytic intervals here.
    fn multiplicative(self) -> bool {
        self.error == Component::Multiplicative || self.season == Component::Multiplicative
    }

    /// The admissible forms for a series: seasonal ones only with
    /// `seasonal`, multiplicative ones only with `positive` data.
    pub fn family(seasonal: bool, positive: bool) -> Vec<EtsSpec> {
        let mut out = Vec::new();
        for error in [Component::Additive, Component::Multiplicative] {
            for trend in [Trend::None, Trend::Additive, Trend::Damped] {
                for season in [Component::None, Component::Additive, Component::Multiplicative] {
                    let spec = EtsSpec::new(error, trend, season);
                    let admissible = (season == Component::None || seasonal)
                        && !(error == Component::Additive && season == Component::Multiplicative)
                        && (!spec.multiplicative() || positive);
                    if admissible {
                        out.push(spec);
                    }
                }
            }
        }
        out
    }

    fn phi(self, p: &EtsParams) -> f64 {
        match self.trend {
            Trend::None => 0.0,
            Trend::Additive => 1.0,
            Trend::Damped => p.phi,
        }
    }
}

/// Runs the filter of `spec` over `y` from `start`, calling `visit(mu, y_t)`
/// with each one-step forecast; the end states, or `None` where a
/// multiplicative form meets a non-positive forecast or a state diverges.
///
/// Why specialised by season kind: the filter is most of the fitting time,
/// and a loop with the season's arithmetic fixed has no branch per step.
fn filter(spec: EtsSpec, p: &EtsParams, start: &EtsStates, y: &[f64], m: usize, visit: impl FnMut(f64, f64)) -> Option<EtsStates> {
    match spec.season {
        Component::None => filter_with::<NO_SEASON>(spec, p, start, y, m, visit),
        Component::Additive => filter_with::<ADDITIVE_SEASON>(spec, p, start, y, m, visit),
        Component::Multiplicative => filter_with::<MULTIPLICATIVE_SEASON>(spec, p, start, y, m, visit),
    }
}

const NO_SEASON: u8 = 0;
const ADDITIVE_SEASON: u8 = 1;
const MULTIPLICATIVE_SEASON: u8 = 2;

#[inline(always)]
fn filter_with<const SEASON: u8>(spec: EtsSpec, p: &EtsParams, start: &EtsStates, y: &[f64], m: usize, mut visit: impl FnMut(f64, f64)) -> Option<EtsStates> {
    let mut states = start.clone();
    let phi = spec.phi(p);
    let multiplicative = spec.multiplicative();
    // The season position, wrapped by hand: a division per step costs more than the rest of it.
    let mut j = 0;
    for &obs in y {
        advance::<SEASON>(p, phi, &mut states, j, |lb, mu| {
            if multiplicative && (mu <= 0.0 || lb <= 0.0) {
                return None;
            }
            visit(mu, obs);
            Some(obs)
        })?;
        if !states.level.is_finite() || states.level.abs() > 1e12 {
            return None;
        }
        if SEASON != NO_SEASON {
            j += 1;
            if j == m {
                j = 0;
            }
        }
    }
    Some(states)
}

/// One step of every form at season position `j`, the one place the
/// family's update equations are written (fitting, forecasting and
/// simulating all step through it): `observe(lb, mu)` gets the level plus
/// damped trend and the one-step forecast and returns the observation
/// (`None` stops the run), then the states advance on its error.
#[inline(always)]
fn advance<const SEASON: u8>(p: &EtsParams, phi: f64, states: &mut EtsStates, j: usize, observe: impl FnOnce(f64, f64) -> Option<f64>) -> Option<f64> {
    let lb = states.level + phi * states.trend;
    let s = if SEASON == NO_SEASON { 0.0 } else { states.season[j] };
    let mu = match SEASON {
        NO_SEASON => lb,
        ADDITIVE_SEASON => lb + s,
        _ => lb * s,
    };
    let obs = observe(lb, mu)?;
    let e = obs - mu;
    match SEASON {
        NO_SEASON => {
            states.level = lb + p.alpha * e;
            states.trend = phi * states.trend + p.beta * e;
        }
        ADDITIVE_SEASON => {
            states.level = lb + p.alpha * e;
            states.trend = phi * states.trend + p.beta * e;
            states.season[j] = s + p.gamma * e;
        }
        _ => {
            // e / s = y / s − lb: the division waits on the season state
            // (set m steps ago), not on this step's level. A simulated path
            // may take the level to zero: the guard keeps it finite.
            let relative = obs / s - lb;
            states.level = lb + p.alpha * relative;
            states.trend = phi * states.trend + p.beta * relative;
            states.season[j] = s + p.gamma * e / lb.max(1e-12);
        }
    }
    Some(obs)
}

/// Starting states: seasonal indices from the classical decomposition of the
/// first seasons, level and trend from a line through the first
/// deseasonalised points.
fn initial_states(spec: EtsSpec, y: &[f64], m: usize) -> Option<EtsStates> {
    let season = match spec.season {
        Component::None => Vec::new(),
        kind => seasonal_indices(&y[..y.len().min(4 * m)], m, kind == Component::Multiplicative)?,
    };
    let k = y.len().min(if m > 1 { (2 * m).max(10) } else { 10 });
    let deseasonalised: Vec<f64> = (0..k)
        .map(|t| match spec.season {
            Component::None => y[t],
            Component::Additive => y[t] - season[t % m],
            Component::Multiplicative => y[t] / season[t % m],
        })
        .collect();
    let (level, trend) = if spec.trend == Trend::None {
        (mean(&deseasonalised[..k.min(m.max(5))]), 0.0)
    } else {
        let (a, b) = line(&deseasonalised);
        (a, b)
    };
    Some(EtsStates { level, trend, season })
}

/// Least-squares line `a + b t` through `y` at `t = 1, 2, …` (`a` is its value at `t = 0`).
pub(crate) fn line(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.first().copied().unwrap_or(0.0), 0.0);
    }
    let tm = (n + 1.0) / 2.0;
    let ym = mean(y);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dt = (i + 1) as f64 - tm;
        sxy += dt * (v - ym);
        sxx += dt * dt;
    }
    let b = sxy / sxx;
    (ym - b * tm, b)
}

/// The unknowns Nelder–Mead searches, in this order: alpha, beta (with a
/// trend), gamma (with a season), phi (damped), the initial level's offset,
/// the initial trend's offset (with a trend).
struct Unknowns {
    spec: EtsSpec,
    start: EtsStates,
    level_scale: f64,
    trend_scale: f64,
}

impl Unknowns {
    fn count(&self) -> usize {
        let trend = self.spec.trend != Trend::None;
        1 + usize::from(trend) * 2 + usize::from(self.spec.season != Component::None) + usize::from(self.spec.trend == Trend::Damped) + 1
    }

    /// Parameters inside the usual region `0 < α < 1`, `0 < β < α`,
    /// `0 < γ < 1 − α`, `0.8 ≤ φ ≤ 0.98`, and initial states.
    fn decode(&self, u: &[f64]) -> (EtsParams, EtsStates) {
        let mut it = u.iter().copied();
        let alpha = 1e-4 + (1.0 - 2e-4) * unit(it.next().unwrap_or(0.0));
        let has_trend = self.spec.trend != Trend::None;
        let beta = if has_trend { alpha * unit(it.next().unwrap_or(0.0)) } else { 0.0 };
        let gamma = if self.spec.season != Component::None { (1.0 - alpha) * unit(it.next().unwrap_or(0.0)) } else { 0.0 };
        let phi = match self.spec.trend {
            Trend::Damped => 0.8 + 0.18 * unit(it.next().unwrap_or(0.0)),
            Trend::Additive => 1.0,
            Trend::None => 0.0,
        };
        let mut states = self.start.clone();
        states.level += self.level_scale * it.next().unwrap_or(0.0);
        if has_trend {
            states.trend += self.trend_scale * it.next().unwrap_or(0.0);
        }
        (EtsParams { alpha, beta, gamma, phi }, states)
    }

    /// Where the search starts: α 0.2, β 0.1 α, γ 0.05 (1 − α), φ 0.95, the heuristic states.
    fn start(&self) -> Vec<f64> {
        let mut u = vec![from_unit((0.2 - 1e-4) / (1.0 - 2e-4))];
        if self.spec.trend != Trend::None {
            u.push(from_unit(0.1));
        }
        if self.spec.season != Component::None {
            u.push(from_unit(0.05));
        }
        if self.spec.trend == Trend::Damped {
            u.push(from_unit((0.95 - 0.8) / 0.18));
        }
        u.push(0.0);
        if self.spec.trend != Trend::None {
            u.push(0.0);
        }
        u
    }
}

/// `−2 log L` (up to a constant) of one-step forecasts `mu` of `y`.
struct Likelihood {
    sum_sq: f64,
    /// Σ log μ is kept as a running product, folded into `sum_log_mu` only
    /// when it leaves a safe range: a logarithm per step would double the cost of a pass.
    product_mu: f64,
    sum_log_mu: f64,
    n: usize,
}

impl Likelihood {
    fn new() -> Self {
        Likelihood { sum_sq: 0.0, product_mu: 1.0, sum_log_mu: 0.0, n: 0 }
    }

    /// A one-step error of an additive-error form.
    #[inline(always)]
    fn add_absolute(&mut self, mu: f64, y: f64) {
        let e = y - mu;
        self.sum_sq += e * e;
        self.n += 1;
    }

    /// A one-step error of a multiplicative-error form (relative to `mu`).
    #[inline(always)]
    fn add_relative(&mut self, mu: f64, y: f64) {
        let relative = y / mu - 1.0;
        self.sum_sq += relative * relative;
        self.product_mu *= mu.abs();
        if !(1e-100..=1e100).contains(&self.product_mu) {
            self.sum_log_mu += self.product_mu.ln();
            self.product_mu = 1.0;
        }
        self.n += 1;
    }

    /// Runs the filter and accumulates the likelihood of its one-step errors.
    fn of(spec: EtsSpec, p: &EtsParams, start: &EtsStates, y: &[f64], m: usize) -> Option<(Likelihood, EtsStates)> {
        let mut lik = Likelihood::new();
        let end = match spec.error {
            Component::Multiplicative => filter(spec, p, start, y, m, |mu, obs| lik.add_relative(mu, obs)),
            _ => filter(spec, p, start, y, m, |mu, obs| lik.add_absolute(mu, obs)),
        }?;
        Some((lik, end))
    }

    fn sigma2(&self) -> f64 {
        self.sum_sq / self.n.max(1) as f64
    }

    fn value(&self) -> f64 {
        let n = self.n as f64;
        n * (self.sigma2().max(1e-300)).ln() + 2.0 * (self.sum_log_mu + self.product_mu.ln())
    }
}

/// Fits `spec` to `y` with season `m` by maximum likelihood; `None` when the
/// form is not admissible for the data or has too many parameters for it.
pub fn fit(spec: EtsSpec, y: &[f64], m: usize, max_evals_per_unknown: usize) -> Option<EtsFit> {
    fit_from(spec, y, m, max_evals_per_unknown, None)
}

/// Refits an earlier fit's form on `y`, a longer history that starts where
/// the earlier one did (so the same starting states), searching from where
/// the earlier search ended.
pub fn refit(earlier: &EtsFit, y: &[f64], max_evals_per_unknown: usize) -> Option<EtsFit> {
    fit_from(earlier.spec, y, earlier.m, max_evals_per_unknown, Some(&earlier.search))
}

fn fit_from(spec: EtsSpec, y: &[f64], m: usize, max_evals_per_unknown: usize, warm: Option<&[f64]>) -> Option<EtsFit> {
    let m = if spec.season == Component::None { 1 } else { m };
    let n = y.len();
    if n < 3 || (m > 1 && n < 2 * m) || (spec.multiplicative() && y.iter().any(|v| *v <= 0.0)) {
        return None;
    }
    let start = initial_states(spec, y, m)?;
    let spread = {
        let mu = mean(y);
        (y.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n as f64).sqrt()
    };
    let scale = spread.max(1e-3 * mean(y).abs()).max(1e-9);
    let unknowns = Unknowns { spec, start, level_scale: 0.5 * scale, trend_scale: 0.05 * scale };
    let objective = |u: &[f64]| {
        let (p, states) = unknowns.decode(u);
        Likelihood::of(spec, &p, &states, y, m).map_or(f64::INFINITY, |(lik, _)| lik.value())
    };
    let (start_u, step) = match warm {
        Some(u) if u.len() == unknowns.count() => (u.to_vec(), 0.25),
        _ => (unknowns.start(), 1.0),
    };
    let (u, value) = nelder_mead(objective, &start_u, step, max_evals_per_unknown * unknowns.count());
    if !value.is_finite() {
        return None;
    }
    let (params, initial) = unknowns.decode(&u);
    let (lik, end) = Likelihood::of(spec, &params, &initial, y, m)?;
    // Smoothing parameters and initial states (m − 1 free seasonal ones), plus the variance.
    let k = unknowns.count() + m.saturating_sub(1) + 1;
    let neg2_log_lik = lik.value();
    let aicc = if n > k + 1 { neg2_log_lik + 2.0 * k as f64 + 2.0 * (k * (k + 1)) as f64 / (n - k - 1) as f64 } else { f64::INFINITY };
    Some(EtsFit { spec, params, initial, end, n, m, sigma2: lik.sigma2(), neg2_log_lik, k, aicc, search: u })
}

/// Forms polished after the screening pass of [`fit_best`].
const POLISHED: usize = 1;
/// Nelder–Mead evaluations per unknown in the screening pass.
const SCREENING_EVALUATIONS: usize = 5;

/// Fits every form of `specs` and returns the one with the lowest AICc.
///
/// Why two passes: most forms are far from the best on AICc after a short
/// search, so every form gets [`SCREENING_EVALUATIONS`] evaluations per
/// unknown and only the [`POLISHED`] best continue, from where they stopped,
/// with the full budget: a third of the work of fitting every form in full,
/// at no loss on the M3 data (monthly sMAPE 13.7 either way).
pub fn fit_best(specs: &[EtsSpec], y: &[f64], m: usize, max_evals_per_unknown: usize) -> Option<EtsFit> {
    let mut screened: Vec<EtsFit> = specs.iter().filter_map(|&spec| fit(spec, y, m, SCREENING_EVALUATIONS.min(max_evals_per_unknown))).filter(|f| f.aicc.is_finite()).collect();
    screened.sort_by(|a, b| a.aicc.total_cmp(&b.aicc));
    screened.truncate(POLISHED);
    screened
        .into_iter()
        .map(|first| match fit_from(first.spec, y, first.m, max_evals_per_unknown, Some(&first.search)) {
            Some(polished) if polished.aicc <= first.aicc => polished,
            _ => first,
        })
        .min_by(|a, b| a.aicc.total_cmp(&b.aicc))
}

impl EtsFit {
    /// One-step state update of a path at absolute time `t` after an outcome `y`.
    fn step(&self, states: &mut EtsStates, t: usize, draw: impl FnOnce(f64) -> f64) -> f64 {
        let (p, phi) = (&self.params, self.spec.phi(&self.params));
        let j = if self.m > 1 { t % self.m } else { 0 };
        let observe = |_: f64, mu: f64| Some(draw(mu));
        let obs = match self.spec.season {
            Component::None => advance::<NO_SEASON>(p, phi, states, j, observe),
            Component::Additive => advance::<ADDITIVE_SEASON>(p, phi, states, j, observe),
            Component::Multiplicative => advance::<MULTIPLICATIVE_SEASON>(p, phi, states, j, observe),
        };
        obs.unwrap_or(f64::NAN)
    }

    /// Point forecasts of the `h` periods after the data (the filter run on with no error).
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let mut states = self.end.clone();
        (0..h).map(|k| self.step(&mut states, self.n + k, |mu| mu)).collect()
    }

    /// The `q` quantile of each of the next `h` periods: analytic for the
    /// linear forms (additive error and season), simulated (`paths` sample
    /// paths, seeded) for the others.
    pub fn quantiles(&self, h: usize, qs: &[f64], paths: usize, seed: u64) -> Vec<Vec<f64>> {
        let mean_path = self.forecast(h);
        let sigma = self.sigma2.sqrt();
        if !self.spec.multiplicative() {
            let p = &self.params;
            let phi = self.spec.phi(p);
            // Var(y_{n+k}) = σ² (1 + Σ_{j<k} c_j²), c_j = α + β φ_j + γ [j ≡ 0 mod m], φ_j = φ + … + φ^j.
            let mut sd = Vec::with_capacity(h);
            let (mut sum_c2, mut phi_j, mut pow): (f64, f64, f64) = (0.0, 0.0, 1.0);
            for k in 0..h {
                sd.push(sigma * (1.0 + sum_c2).sqrt());
                let j = k + 1;
                pow *= phi;
                phi_j += pow;
                let seasonal = if self.m > 1 && j % self.m == 0 { p.gamma } else { 0.0 };
                let c = p.alpha + p.beta * phi_j + seasonal;
                sum_c2 += c * c;
            }
            return qs.iter().map(|&q| mean_path.iter().zip(&sd).map(|(mu, s)| mu + normal_quantile(q) * s).collect()).collect();
        }
        let mut rng = Rng::new(seed);
        let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(paths); h];
        for _ in 0..paths {
            let mut states = self.end.clone();
            for (k, column) in draws.iter_mut().enumerate() {
                let eps = sigma * rng.normal();
                let multiplicative_error = self.spec.error == Component::Multiplicative;
                let y = self.step(&mut states, self.n + k, |mu| if multiplicative_error { mu * (1.0 + eps) } else { mu + eps });
                column.push(if y.is_finite() { y } else { 0.0 });
            }
        }
        for column in &mut draws {
            column.sort_by(f64::total_cmp);
        }
        qs.iter().map(|&q| draws.iter().map(|column| quantile(column, q)).collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates `spec` with parameters `p` from `start` for `n` periods with
    /// error scale `sigma` (relative for a multiplicative error).
    fn simulate(spec: EtsSpec, p: EtsParams, start: EtsStates, m: usize, n: usize, sigma: f64, seed: u64) -> Vec<f64> {
        let fit = EtsFit { spec, params: p, initial: start.clone(), end: start, n: 0, m, sigma2: sigma * sigma, neg2_log_lik: 0.0, k: 0, aicc: 0.0, search: Vec::new() };
        let mut rng = Rng::new(seed);
        let mut states = fit.end.clone();
        (0..n)
            .map(|t| {
                let eps = sigma * rng.normal();
                fit.step(&mut states, t, |mu| if spec.error == Component::Multiplicative { mu * (1.0 + eps) } else { mu + eps })
            })
            .collect()
    }

    fn season(m: usize, amplitude: f64, multiplicative: bool) -> Vec<f64> {
        (0..m).map(|j| (2.0 * std::f64::consts::PI * j as f64 / m as f64).sin() * amplitude + if multiplicative { 1.0 } else { 0.0 }).collect()
    }

    /// Each form recovers the parameters it was simulated with (the mean
    /// over several long series, within a tolerance that the estimator's
    /// spread allows).
    #[test]
    fn each_form_recovers_its_parameters_from_simulated_series() {
        use Component::{Additive as A, Multiplicative as M, None as N};
        let cases = [
            (EtsSpec::new(A, Trend::None, N), EtsParams { alpha: 0.3, ..EtsParams::default() }, 1, 2.0),
            (EtsSpec::new(A, Trend::Additive, N), EtsParams { alpha: 0.4, beta: 0.1, phi: 1.0, ..EtsParams::default() }, 1, 2.0),
            (EtsSpec::new(A, Trend::Damped, N), EtsParams { alpha: 0.4, beta: 0.15, phi: 0.9, ..EtsParams::default() }, 1, 2.0),
            (EtsSpec::new(A, Trend::None, A), EtsParams { alpha: 0.3, gamma: 0.1, ..EtsParams::default() }, 7, 2.0),
            (EtsSpec::new(A, Trend::Additive, A), EtsParams { alpha: 0.3, beta: 0.05, gamma: 0.1, phi: 1.0 }, 4, 2.0),
            (EtsSpec::new(M, Trend::None, N), EtsParams { alpha: 0.3, ..EtsParams::default() }, 1, 0.05),
            (EtsSpec::new(M, Trend::None, M), EtsParams { alpha: 0.2, gamma: 0.1, ..EtsParams::default() }, 12, 0.04),
            (EtsSpec::new(M, Trend::Additive, A), EtsParams { alpha: 0.3, beta: 0.01, gamma: 0.1, phi: 1.0 }, 4, 0.02),
            (EtsSpec::new(M, Trend::Damped, M), EtsParams { alpha: 0.3, beta: 0.1, gamma: 0.1, phi: 0.9 }, 4, 0.04),
            (EtsSpec::new(A, Trend::Damped, A), EtsParams { alpha: 0.3, beta: 0.1, gamma: 0.1, phi: 0.9 }, 4, 2.0),
            (EtsSpec::new(M, Trend::None, A), EtsParams { alpha: 0.3, gamma: 0.1, ..EtsParams::default() }, 4, 0.03),
            (EtsSpec::new(M, Trend::Additive, N), EtsParams { alpha: 0.3, beta: 0.01, phi: 1.0, ..EtsParams::default() }, 1, 0.02),
            (EtsSpec::new(M, Trend::Damped, N), EtsParams { alpha: 0.4, beta: 0.1, phi: 0.9, ..EtsParams::default() }, 1, 0.04),
            (EtsSpec::new(M, Trend::Additive, M), EtsParams { alpha: 0.3, beta: 0.01, gamma: 0.1, phi: 1.0 }, 4, 0.02),
            (EtsSpec::new(M, Trend::Damped, A), EtsParams { alpha: 0.3, beta: 0.1, gamma: 0.1, phi: 0.9 }, 4, 0.03),
        ];
        // Every admissible form is covered.
        let covered: Vec<EtsSpec> = cases.iter().map(|c| c.0).collect();
        assert!(EtsSpec::family(true, true).iter().all(|f| covered.contains(f)), "{covered:?}");
        for (spec, truth, m, sigma) in cases {
            let multiplicative = spec.season == M;
            let start = EtsStates {
                level: if spec.error == M && spec.trend == Trend::Additive { 200.0 } else { 100.0 },
                trend: if spec.trend == Trend::None { 0.0 } else { 0.5 },
                season: if m > 1 { season(m, if multiplicative { 0.2 } else { 10.0 }, multiplicative) } else { Vec::new() },
            };
            let mut got = Vec::new();
            for seed in 1..=6 {
                // A multiplicative error makes a linear trend a random walk of
                // growing steps: a shorter history keeps that one positive.
                let n = if spec.error == M && spec.trend == Trend::Additive { 300 } else { 600 };
                let y = simulate(spec, truth, start.clone(), m, n, sigma, seed);
                assert!(!spec.multiplicative() || y.iter().all(|v| *v > 0.0), "{} seed {seed}: the simulation left the positive range", spec.name());
                let fitted = fit(spec, &y, m, 200).unwrap_or_else(|| panic!("{} did not fit", spec.name()));
                got.push(fitted.params);
            }
            let avg = |f: fn(&EtsParams) -> f64| got.iter().map(f).sum::<f64>() / got.len() as f64;
            let checks = [("alpha", truth.alpha, avg(|p| p.alpha)), ("beta", truth.beta, avg(|p| p.beta)), ("gamma", truth.gamma, avg(|p| p.gamma)), ("phi", truth.phi, avg(|p| p.phi))];
            for (what, want, have) in checks {
                assert!((want - have).abs() < 0.06, "{}: {what} {have:.3}, simulated with {want} ({got:?})", spec.name());
            }
        }
    }

    /// AICc tells a multiplicative season from an additive one on data that
    /// has the first, and a trend from none.
    #[test]
    fn aicc_picks_the_simulated_form() {
        use Component::{Multiplicative as M, None as N};
        let spec = EtsSpec::new(M, Trend::Additive, M);
        let start = EtsStates { level: 100.0, trend: 1.0, season: season(12, 0.3, true) };
        let mut right = 0;
        for seed in 1..=5 {
            let y = simulate(spec, EtsParams { alpha: 0.2, beta: 0.02, gamma: 0.05, phi: 1.0 }, start.clone(), 12, 240, 0.03, seed);
            let best = fit_best(&EtsSpec::family(true, true), &y, 12, 60).expect("fits");
            right += usize::from(best.spec.season == M && best.spec.trend != Trend::None);
            assert_ne!(best.spec.season, N, "seed {seed}: {}", best.spec.name());
        }
        assert!(right >= 4, "{right} of 5 chose a trend with a multiplicative season");
    }

    #[test]
    fn analytic_intervals_widen_with_the_horizon_and_match_simulation() {
        use Component::{Additive as A, None as N};
        let spec = EtsSpec::new(A, Trend::Additive, N);
        let y = simulate(spec, EtsParams { alpha: 0.4, beta: 0.1, phi: 1.0, ..EtsParams::default() }, EtsStates { level: 50.0, trend: 0.2, season: vec![] }, 1, 300, 1.0, 3);
        let fitted = fit(spec, &y, 1, 100).expect("fits");
        let analytic = fitted.quantiles(10, &[0.9], 0, 0);
        let sd: Vec<f64> = analytic[0].iter().zip(fitted.forecast(10)).map(|(q, mu)| q - mu).collect();
        assert!(sd.windows(2).all(|w| w[1] > w[0]), "{sd:?}");
        // The same model simulated: its 90% quantile agrees within sampling error.
        let mut rng = Rng::new(5);
        let mut tenth: Vec<f64> = (0..4000)
            .map(|_| {
                let mut states = fitted.end.clone();
                let mut last = 0.0;
                for k in 0..10 {
                    let eps = fitted.sigma2.sqrt() * rng.normal();
                    last = fitted.step(&mut states, fitted.n + k, |mu| mu + eps);
                }
                last
            })
            .collect();
        tenth.sort_by(f64::total_cmp);
        let q90 = quantile(&tenth, 0.9);
        assert!((q90 - analytic[0][9]).abs() < 0.05 * sd[9] + 0.15, "simulated {q90:.3}, analytic {:.3}", analytic[0][9]);
    }
}
