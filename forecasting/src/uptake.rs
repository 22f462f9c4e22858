//! Offer uptake: L2-regularised logistic regression fitted by IRLS (Newton's
//! method), Platt calibration, and the accuracy measures of a holdout.
//!
//! Why IRLS: the design has tens of features and up to millions of rows, so
//! each Newton step is one pass over the rows (the `d × d` normal matrix is
//! accumulated in parallel chunks) plus a tiny Cholesky solve, and it converges
//! in a handful of steps where first-order methods need hundreds of passes.
//!
//! Rows are dense `f64` slices of equal width; the caller builds the features
//! (see `allot-scenarios`), this module only fits and scores.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a model could not be fitted.
#[derive(Debug, Error, PartialEq)]
pub enum FitError {
    /// Rows and labels disagree, or a row has the wrong width.
    #[error("{0}")]
    Shape(String),
    /// The normal matrix is not positive definite (use a positive `l2`).
    #[error("singular system: features are collinear and l2 is 0")]
    Singular,
}

/// A fitted logistic model: `p = sigmoid(intercept + coef . x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    /// Intercept (not penalised).
    pub intercept: f64,
    /// One coefficient per feature.
    pub coef: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
}

/// Settings of the fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// L2 penalty `l2/2 * |coef|^2` (per row: the objective is the mean log-loss).
    pub l2: f64,
    /// Most Newton steps.
    pub max_iterations: usize,
    /// Stop when the largest coefficient change is below this.
    pub tolerance: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { l2: 1e-4, max_iterations: 50, tolerance: 1e-8 }
    }
}

/// The logistic function, safe for large arguments.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Logistic {
    /// The linear score of one row.
    pub fn score(&self, x: &[f64]) -> f64 {
        self.intercept + self.coef.iter().zip(x).map(|(c, v)| c * v).sum::<f64>()
    }

    /// Probability of acceptance for one row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.score(x))
    }

    /// Fits on `rows` (each of width `d`) and 0/1 `labels` with optional row weights.
    pub fn fit(rows: &[f64], d: usize, labels: &[f64], weights: Option<&[f64]>, options: FitOptions) -> Result<Self, FitError> {
        Self::fit_from(rows, d, labels, weights, options, None)
    }

    /// Like [`Logistic::fit`], Newton's method starting from `start` (a
    /// neighbouring fit: along a regularisation path it saves most steps).
    fn fit_from(rows: &[f64], d: usize, labels: &[f64], weights: Option<&[f64]>, options: FitOptions, start: Option<&Logistic>) -> Result<Self, FitError> {
        let n = labels.len();
        if rows.len() != n * d {
            return Err(FitError::Shape(format!("{} values for {n} rows of {d} features", rows.len())));
        }
        if weights.is_some_and(|w| w.len() != n) {
            return Err(FitError::Shape("one weight per row is needed".into()));
        }
        let k = d + 1; // intercept first
        let mut beta = match start {
            Some(m) if m.coef.len() == d => std::iter::once(m.intercept).chain(m.coef.iter().copied()).collect(),
            _ => vec![0.0; k],
        };
        let total_weight: f64 = weights.map_or(n as f64, |w| w.iter().sum());
        let mut iterations = 0;
        for _ in 0..options.max_iterations {
            iterations += 1;
            // Gradient g and Hessian H of the mean weighted log-loss, in parallel chunks.
            let (mut g, mut h) = (0..n)
                .into_par_iter()
                .with_min_len(4096)
                .fold(
                    || (vec![0.0; k], vec![0.0; k * k]),
                    |(mut g, mut h), i| {
                        let w = weights.map_or(1.0, |w| w[i]);
                        // A row of weight zero (a fold held out) adds nothing.
                        if w == 0.0 {
                            return (g, h);
                        }
                        let x = &rows[i * d..(i + 1) * d];
                        let z = beta[0] + beta[1..].iter().zip(x).map(|(b, v)| b * v).sum::<f64>();
                        let p = sigmoid(z);
                        let r = w * (p - labels[i]);
                        let s = w * p * (1.0 - p);
                        // Lower triangle, intercept first: row a+1 is
                        // s * x[a] * (1, x[0..=a]), a slice the compiler vectorises.
                        g[0] += r;
                        h[0] += s;
                        for (a, &xa) in x.iter().enumerate() {
                            g[a + 1] += r * xa;
                            let sa = s * xa;
                            let row = &mut h[(a + 1) * k..(a + 1) * k + a + 2];
                            row[0] += sa;
                            for (hb, &xb) in row[1..].iter_mut().zip(&x[..=a]) {
                                *hb += sa * xb;
                            }
                        }
                        (g, h)
                    },
                )
                .reduce(
                    || (vec![0.0; k], vec![0.0; k * k]),
                    |(mut g1, mut h1), (g2, h2)| {
                        g1.iter_mut().zip(&g2).for_each(|(a, b)| *a += b);
                        h1.iter_mut().zip(&h2).for_each(|(a, b)| *a += b);
                        (g1, h1)
                    },
                );
            for a in 0..k {
                g[a] /= total_weight;
                for b in 0..=a {
                    h[a * k + b] /= total_weight;
                    h[b * k + a] = h[a * k + b];
                }
            }
            for j in 1..k {
                g[j] += options.l2 * beta[j];
                h[j * k + j] += options.l2;
            }
            let step = cholesky_solve(&h, &g, k).ok_or(FitError::Singular)?;
            let mut largest: f64 = 0.0;
            for j in 0..k {
                beta[j] -= step[j];
                largest = largest.max(step[j].abs());
            }
            if largest < options.tolerance {
                break;
            }
        }
        Ok(Logistic { intercept: beta[0], coef: beta[1..].to_vec(), iterations })
    }
}

/// The L2 strengths [`fit_cv`] chooses from (per row, on standardised
/// features): half-decades from almost none to strong shrinkage. Why a grid and
/// not a fixed value: how much a model should shrink depends on the rows and on
/// how many, and how correlated, the features are (a few history features, or
/// dozens of one-hot customer attributes).
pub const L2_GRID: [f64; 11] = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1];

/// Folds of the cross-validation.
pub const CV_FOLDS: usize = 5;

/// The fold in `0..k` of a key (a customer index): a hash, so that folds do
/// not follow the order of the ids (customers listed by region or sign-up date).
pub fn fold_of(key: u64, k: usize) -> usize {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % k.max(1) as u64) as usize
}

/// One point of the cross-validation curve: the held-out mean log-loss of an
/// L2 strength.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CvPoint {
    /// The L2 strength.
    pub l2: f64,
    /// Mean log-loss over the held-out folds (weighted rows).
    pub log_loss: f64,
}

/// A model whose L2 strength was chosen by cross-validation.
#[derive(Debug, Clone, PartialEq)]
pub struct CvFit {
    /// The model refitted on every row with the chosen strength.
    pub model: Logistic,
    /// The chosen strength.
    pub l2: f64,
    /// Every strength tried, weakest first (a strength whose fit failed is
    /// left out), per row of the rows cross-validated.
    pub points: Vec<CvPoint>,
    /// The rows cross-validated: all, or a sample of [`CV_MAX_ROWS`].
    pub rows: usize,
}

/// About the most rows the cross-validation runs on: beyond, it runs on a
/// sample of every `ceil(rows / CV_MAX_ROWS)`-th row (by a hash of its index). Why: it fits about 200
/// Newton steps over its rows where the final fit takes a handful, and a
/// sample of this size pins the strength down as well as millions of rows.
pub const CV_MAX_ROWS: usize = 100_000;

/// Chooses the L2 strength from `grid` by k-fold cross-validation, then fits
/// every row with it. `folds[i]` (in `0..k`) is row `i`'s fold: rows that
/// belong together (one customer's) share a fold, so a held-out fold is
/// customers the model has not seen, as in production. The strength with the
/// lowest held-out log-loss wins; a tie goes to the stronger one (the simpler
/// model). With fewer than two folds present, `options.l2` is used as is.
///
/// Over [`CV_MAX_ROWS`] rows the cross-validation runs on a sample and the
/// strength it picks is scaled by the sample's share of the weight: what a
/// sample estimates is the penalty's total (`l2 × rows`, a prior on the
/// coefficients that does not grow with the rows), and the per-row `l2` of the
/// whole is that total over all rows.
pub fn fit_cv(rows: &[f64], d: usize, labels: &[f64], weights: Option<&[f64]>, folds: &[usize], k: usize, grid: &[f64], options: FitOptions) -> Result<CvFit, FitError> {
    let n = labels.len();
    if folds.len() != n || rows.len() != n * d || weights.is_some_and(|w| w.len() != n) {
        return Err(FitError::Shape("one fold, one label and one weight per row of d values are needed".into()));
    }
    if folds.iter().any(|&f| f >= k) {
        return Err(FitError::Shape(format!("a fold outside 0..{k}")));
    }
    let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
    let every = n.div_ceil(CV_MAX_ROWS).max(1);
    let (points, rows_used, share) = if every == 1 {
        (cross_validate(rows, d, labels, weights, folds, k, grid, options), n, 1.0)
    } else {
        let sample: Vec<usize> = (0..n).filter(|&i| fold_of(i as u64 ^ 0x5A3B_1E00, every) == 0).collect();
        let pick = |f: &dyn Fn(usize) -> f64| -> Vec<f64> { sample.iter().map(|&i| f(i)).collect() };
        let sample_rows: Vec<f64> = sample.iter().flat_map(|&i| rows[i * d..(i + 1) * d].iter().copied()).collect();
        let (sample_labels, sample_weights) = (pick(&|i| labels[i]), pick(&weight));
        let sample_folds: Vec<usize> = sample.iter().map(|&i| folds[i]).collect();
        let points = cross_validate(&sample_rows, d, &sample_labels, Some(&sample_weights), &sample_folds, k, grid, options);
        let total: f64 = (0..n).map(weight).sum();
        (points, sample.len(), sample_weights.iter().sum::<f64>() / total.max(f64::MIN_POSITIVE))
    };
    // Strongest first (as listed), so a strict `<` keeps the stronger of two equal ones.
    let best = points.iter().rev().fold(None::<CvPoint>, |best, p| if best.is_none_or(|b| p.log_loss < b.log_loss) { Some(*p) } else { best });
    let l2 = best.map_or(options.l2, |b| b.l2 * share);
    let model = Logistic::fit(rows, d, labels, weights, FitOptions { l2, ..options })?;
    Ok(CvFit { model, l2, points, rows: rows_used })
}

/// The held-out log-loss of every strength of `grid`, weakest first (a
/// strength whose fit failed is left out); none with fewer than two folds.
#[allow(clippy::too_many_arguments)]
fn cross_validate(rows: &[f64], d: usize, labels: &[f64], weights: Option<&[f64]>, folds: &[usize], k: usize, grid: &[f64], options: FitOptions) -> Vec<CvPoint> {
    let n = labels.len();
    let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
    let mut present = vec![false; k];
    folds.iter().for_each(|&f| present[f] = true);
    let mut points = Vec::new();
    if present.iter().filter(|&&p| p).count() < 2 {
        return points;
    }
    // Strongest first, each fold warm-started from its fit at the previous strength.
    let mut order: Vec<f64> = grid.to_vec();
    order.sort_by(|a, b| b.total_cmp(a));
    let mut previous: Vec<Option<Logistic>> = vec![None; k];
    let mut train = vec![0.0; n];
    for &l2 in &order {
        let (mut loss, mut total) = (0.0, 0.0);
        let mut failed = false;
        for f in (0..k).filter(|&f| present[f]) {
            for (i, t) in train.iter_mut().enumerate() {
                *t = if folds[i] == f { 0.0 } else { weight(i) };
            }
            let Ok(m) = Logistic::fit_from(rows, d, labels, Some(&train), FitOptions { l2, ..options }, previous[f].as_ref()) else {
                failed = true;
                break;
            };
            for i in (0..n).filter(|&i| folds[i] == f) {
                let q = m.predict(&rows[i * d..(i + 1) * d]).clamp(1e-15, 1.0 - 1e-15);
                loss -= weight(i) * (labels[i] * q.ln() + (1.0 - labels[i]) * (1.0 - q).ln());
                total += weight(i);
            }
            previous[f] = Some(m);
        }
        if !failed && total > 0.0 {
            points.push(CvPoint { l2, log_loss: loss / total });
        }
    }
    points.reverse();
    points
}

/// Solves `A x = b` for symmetric positive definite `A` (row-major `k × k`).
fn cholesky_solve(a: &[f64], b: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = a[i * k + j] - (0..j).map(|m| l[i * k + m] * l[j * k + m]).sum::<f64>();
            if i == j {
                if s <= 1e-300 {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut y = vec![0.0; k];
    for i in 0..k {
        y[i] = (b[i] - (0..i).map(|m| l[i * k + m] * y[m]).sum::<f64>()) / l[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        x[i] = (y[i] - (i + 1..k).map(|m| l[m * k + i] * x[m]).sum::<f64>()) / l[i * k + i];
    }
    Some(x)
}

/// Platt scaling: `p' = sigmoid(a * logit(p) + b)`, fitted on a calibration set
/// the model was not fitted on, so probabilities mean what they say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Slope on the logit.
    pub a: f64,
    /// Offset.
    pub b: f64,
}

impl Calibration {
    /// The identity.
    pub const IDENTITY: Calibration = Calibration { a: 1.0, b: 0.0 };

    /// Fits on raw probabilities and outcomes.
    pub fn fit(probabilities: &[f64], labels: &[f64]) -> Result<Self, FitError> {
        let logits: Vec<f64> = probabilities.iter().map(|&p| logit(p)).collect();
        let m = Logistic::fit(&logits, 1, labels, None, FitOptions { l2: 0.0, ..FitOptions::default() })?;
        Ok(Calibration { a: m.coef[0], b: m.intercept })
    }

    /// A calibrated probability.
    pub fn apply(&self, p: f64) -> f64 {
        sigmoid(self.a * logit(p) + self.b)
    }
}

/// The log-odds of `p`, with `p` kept inside (0, 1) so it stays finite.
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

/// Accuracy of probabilities against outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Rows scored.
    pub rows: usize,
    /// Area under the ROC curve (ties count half).
    pub auc: f64,
    /// Mean log-loss.
    pub log_loss: f64,
    /// Mean squared error of the probability (Brier score).
    pub brier: f64,
    /// Expected calibration error over 10 equal-width bins.
    pub ece: f64,
    /// Observed acceptance rate.
    pub base_rate: f64,
}

/// AUC, log-loss, Brier and ECE of `probabilities` for 0/1 `labels`.
pub fn accuracy(probabilities: &[f64], labels: &[f64]) -> Accuracy {
    let n = labels.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    // Rank-sum AUC with average ranks for ties.
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < n {
        let mut j = i;
        while j + 1 < n && probabilities[order[j + 1]] == probabilities[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&r| labels[order[r]] > 0.5).count() as f64 * average_rank;
        i = j + 1;
    }
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = n as f64 - positives;
    let auc = if positives > 0.0 && negatives > 0.0 { (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives) } else { f64::NAN };
    let mut log_loss = 0.0;
    let mut brier = 0.0;
    let mut bins = [(0.0, 0.0, 0usize); 10];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let q = p.clamp(1e-15, 1.0 - 1e-15);
        log_loss -= y * q.ln() + (1.0 - y) * (1.0 - q).ln();
        brier += (p - y) * (p - y);
        let bin = &mut bins[((p * 10.0) as usize).min(9)];
        bin.0 += p;
        bin.1 += y;
        bin.2 += 1;
    }
    let ece = bins.iter().map(|&(p, y, c)| if c == 0 { 0.0 } else { (p - y).abs() }).sum::<f64>() / n.max(1) as f64;
    let nf = n.max(1) as f64;
    Accuracy { rows: n, auc, log_loss: log_loss / nf, brier: brier / nf, ece, base_rate: positives / nf }
}

/// An acceptance rate shrunk toward its parent's: `(accepted + k * parent) /
/// (shown + k)`. Why: a customer or offer with three showings says little; its
/// rate borrows strength from its segment (or the whole population) in
/// proportion to how little it has been seen (a beta prior of strength `k`).
pub fn shrunk_rate(accepted: f64, shown: f64, parent: f64, strength: f64) -> f64 {
    (accepted + strength * parent) / (shown + strength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;

    /// Rows from known coefficients; labels drawn from the true probabilities.
    fn generated(n: usize, intercept: f64, coef: &[f64], seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let d = coef.len();
        let mut rows = Vec::with_capacity(n * d);
        let mut labels = Vec::with_capacity(n);
        let mut truth = Vec::with_capacity(n);
        for _ in 0..n {
            let x: Vec<f64> = (0..d).map(|j| if j % 2 == 0 { rng.normal() } else { f64::from(u8::from(rng.uniform() < 0.3)) }).collect();
            let p = sigmoid(intercept + coef.iter().zip(&x).map(|(c, v)| c * v).sum::<f64>());
            labels.push(f64::from(u8::from(rng.uniform() < p)));
            truth.push(p);
            rows.extend(x);
        }
        (rows, labels, truth)
    }

    #[test]
    fn recovers_generated_coefficients_and_is_calibrated() {
        let coef = [0.8, -1.2, 0.4, 1.5, 0.0];
        let (rows, labels, _) = generated(200_000, -2.0, &coef, 3);
        let m = Logistic::fit(&rows, coef.len(), &labels, None, FitOptions::default()).unwrap();
        assert!((m.intercept + 2.0).abs() < 0.05, "intercept {}", m.intercept);
        for (j, (got, want)) in m.coef.iter().zip(&coef).enumerate() {
            assert!((got - want).abs() < 0.05, "coef {j}: {got} vs {want}");
        }
        assert!(m.iterations < 15, "{} Newton steps", m.iterations);
        // On fresh data from the same process.
        let (test_rows, test_labels, truth) = generated(200_000, -2.0, &coef, 4);
        let p: Vec<f64> = test_rows.chunks(coef.len()).map(|x| m.predict(x)).collect();
        let a = accuracy(&p, &test_labels);
        assert!(a.ece < 0.02, "ECE {}", a.ece);
        let oracle = accuracy(&truth, &test_labels);
        assert!((a.auc - oracle.auc).abs() < 0.005 && a.log_loss < oracle.log_loss + 0.002, "{a:?} vs oracle {oracle:?}");
    }

    #[test]
    fn calibration_repairs_overconfident_scores() {
        let (rows, labels, truth) = generated(100_000, -1.0, &[1.0, 0.5], 5);
        let _ = rows;
        // Overconfident: logits doubled.
        let skewed: Vec<f64> = truth.iter().map(|&p| sigmoid(2.0 * logit(p))).collect();
        let before = accuracy(&skewed, &labels);
        let c = Calibration::fit(&skewed, &labels).unwrap();
        assert!((c.a - 0.5).abs() < 0.05, "{c:?}");
        let fixed: Vec<f64> = skewed.iter().map(|&p| c.apply(p)).collect();
        let after = accuracy(&fixed, &labels);
        assert!(after.ece < 0.01 && after.ece < before.ece / 3.0, "before {before:?} after {after:?}");
        assert!((after.auc - before.auc).abs() < 1e-9, "a monotone map keeps the ranking");
    }

    #[test]
    fn accuracy_measures_on_a_hand_checked_case() {
        let p = [0.1, 0.4, 0.35, 0.8];
        let y = [0.0, 0.0, 1.0, 1.0];
        let a = accuracy(&p, &y);
        assert!((a.auc - 0.75).abs() < 1e-12);
        assert!((a.brier - (0.01 + 0.16 + 0.4225 + 0.04) / 4.0).abs() < 1e-12);
        let ll = -((0.9f64).ln() + (0.6f64).ln() + (0.35f64).ln() + (0.8f64).ln()) / 4.0;
        assert!((a.log_loss - ll).abs() < 1e-12);
        // One row per bin (1, 3, 4, 8): |0.1-0| + |0.35-1| + |0.4-0| + |0.8-1|, over 4 rows.
        assert!((a.ece - (0.1 + 0.65 + 0.4 + 0.2) / 4.0).abs() < 1e-12, "{}", a.ece);
        // Two rows in one bin: their means are compared, not each row.
        let b = accuracy(&[0.31, 0.39], &[0.0, 1.0]);
        assert!((b.ece - (0.7f64 - 1.0).abs() / 2.0).abs() < 1e-12, "{}", b.ece);
    }

    #[test]
    fn shrinkage_moves_small_counts_toward_the_parent() {
        assert!((shrunk_rate(1.0, 1.0, 0.1, 9.0) - 0.19).abs() < 1e-12);
        assert!((shrunk_rate(500.0, 1000.0, 0.1, 9.0) - 0.4965).abs() < 1e-3);
    }

    /// Few rows and many useless features: cross-validation picks strong
    /// shrinkage, which predicts fresh data better than almost none; with many
    /// rows it picks little. Fails if the grid is ignored (a fixed l2 is one answer for both).
    #[test]
    fn cross_validation_shrinks_more_when_rows_are_few() {
        let mut coef = vec![0.0; 30];
        coef[0] = 1.0;
        let (rows, labels, _) = generated(150, -0.5, &coef, 21);
        let folds: Vec<usize> = (0..150).map(|i| fold_of(i as u64, CV_FOLDS)).collect();
        let small = fit_cv(&rows, coef.len(), &labels, None, &folds, CV_FOLDS, &L2_GRID, FitOptions::default()).unwrap();
        assert!(small.l2 >= 1e-2, "{small:?}");
        let (test_rows, test_labels, _) = generated(50_000, -0.5, &coef, 22);
        let loss = |m: &Logistic| accuracy(&test_rows.chunks(coef.len()).map(|x| m.predict(x)).collect::<Vec<_>>(), &test_labels).log_loss;
        let weak = Logistic::fit(&rows, coef.len(), &labels, None, FitOptions { l2: L2_GRID[0], ..FitOptions::default() }).unwrap();
        assert!(loss(&small.model) < loss(&weak) - 0.02, "{} vs {}", loss(&small.model), loss(&weak));
        // Many rows of a few real features: little shrinkage.
        let strong = [0.8, -1.2, 0.4, 1.5];
        let (rows_l, labels_l, _) = generated(20_000, -0.5, &strong, 23);
        let folds: Vec<usize> = (0..20_000).map(|i| fold_of(i as u64, CV_FOLDS)).collect();
        let large = fit_cv(&rows_l, strong.len(), &labels_l, None, &folds, CV_FOLDS, &L2_GRID, FitOptions::default()).unwrap();
        assert!(large.l2 <= 1e-3, "{:?}", large.points);
        // Over CV_MAX_ROWS rows: a sample is cross-validated, and its choice
        // is scaled to all rows by the sample's share.
        let n = 2 * CV_MAX_ROWS + 10_000;
        let (rows_b, labels_b, _) = generated(n, -0.5, &strong, 24);
        let folds: Vec<usize> = (0..n).map(|i| fold_of(i as u64, CV_FOLDS)).collect();
        let big = fit_cv(&rows_b, strong.len(), &labels_b, None, &folds, CV_FOLDS, &L2_GRID, FitOptions::default()).unwrap();
        // Every third row (by hash): about 70,000.
        assert!((CV_MAX_ROWS * 6 / 10..CV_MAX_ROWS * 8 / 10).contains(&big.rows), "{} rows", big.rows);
        assert!(big.points.iter().any(|p| (p.l2 * big.rows as f64 / n as f64 - big.l2).abs() < 1e-12 * p.l2), "{} from {:?}", big.l2, big.points);
        for (got, want) in big.model.coef.iter().zip(&strong) {
            assert!((got - want).abs() < 0.03, "{got} vs {want}");
        }
        // A fold id out of range is refused.
        assert!(matches!(fit_cv(&rows, coef.len(), &labels, None, &vec![CV_FOLDS; 150], CV_FOLDS, &L2_GRID, FitOptions::default()), Err(FitError::Shape(_))));
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(Logistic::fit(&[1.0, 2.0, 3.0], 2, &[1.0, 0.0], None, FitOptions::default()), Err(FitError::Shape(_))));
    }
}
