//! Seasonal decomposition and the small statistics the models share: the
//! classical decomposition's seasonal indices (ETS's initial seasonal states,
//! Theta's deseasonalisation), the autocorrelation test for a season, the
//! standard normal quantile (model-based prediction intervals) and
//! empirical quantiles.

/// Seasonal indices of period `m` by classical decomposition of `y`: a
/// centred moving average of order `m` (2×m when `m` is even) is the trend,
/// `y / trend` (multiplicative) or `y − trend` (additive) averaged per
/// position `t mod m` are the indices, normalised to mean 1 (or 0).
/// `None` with fewer than two seasons of data (the average would not cover
/// every position) or a non-positive trend in the multiplicative form.
pub fn seasonal_indices(y: &[f64], m: usize, multiplicative: bool) -> Option<Vec<f64>> {
    let n = y.len();
    if m < 2 || n < 2 * m {
        return None;
    }
    let half = m / 2;
    let (mut sum, mut count) = (vec![0.0; m], vec![0usize; m]);
    for t in half..n - half {
        if m.is_multiple_of(2) && t + half >= n {
            break;
        }
        let trend = if m.is_multiple_of(2) {
            (0.5 * y[t - half] + y[t - half + 1..t + half].iter().sum::<f64>() + 0.5 * y[t + half]) / m as f64
        } else {
            y[t - half..=t + half].iter().sum::<f64>() / m as f64
        };
        let detrended = if multiplicative {
            if trend <= 0.0 {
                return None;
            }
            y[t] / trend
        } else {
            y[t] - trend
        };
        sum[t % m] += detrended;
        count[t % m] += 1;
    }
    if count.contains(&0) {
        return None;
    }
    let mut indices: Vec<f64> = sum.iter().zip(&count).map(|(s, c)| s / *c as f64).collect();
    let centre = indices.iter().sum::<f64>() / m as f64;
    for v in &mut indices {
        if multiplicative {
            *v /= centre;
        } else {
            *v -= centre;
        }
    }
    if multiplicative && indices.iter().any(|v| *v <= 0.0) {
        return None;
    }
    Some(indices)
}

/// Autocorrelation of `y` at lags `1..=max_lag`.
pub fn autocorrelations(y: &[f64], max_lag: usize) -> Vec<f64> {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n.max(1) as f64;
    let denominator: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
    (1..=max_lag)
        .map(|k| {
            if k >= n || denominator <= 0.0 {
                0.0
            } else {
                (k..n).map(|t| (y[t] - mean) * (y[t - k] - mean)).sum::<f64>() / denominator
            }
        })
        .collect()
}

/// Whether `y` is seasonal with period `m` at the 90% level: the
/// autocorrelation at lag `m` against its standard error under the
/// hypothesis that the first `m − 1` lags carry all the correlation
/// (Bartlett's formula), as the M3 competition's Theta method tested it.
pub fn is_seasonal(y: &[f64], m: usize) -> bool {
    let n = y.len();
    if m < 2 || n < 3 * m {
        return false;
    }
    let r = autocorrelations(y, m);
    let spread: f64 = r[..m - 1].iter().map(|v| v * v).sum();
    let limit = 1.644_853_626_951_472_2 * ((1.0 + 2.0 * spread) / n as f64).sqrt();
    r[m - 1].abs() > limit
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [-3.969_683_028_665_376e1, 2.209_460_984_245_205e2, -2.759_285_104_469_687e2, 1.383_577_518_672_69e2, -3.066_479_806_614_716e1, 2.506_628_277_459_239];
    const B: [f64; 5] = [-5.447_609_879_822_406e1, 1.615_858_368_580_409e2, -1.556_989_798_598_866e2, 6.680_131_188_771_972e1, -1.328_068_155_288_572e1];
    const C: [f64; 6] = [-7.784_894_002_430_293e-3, -3.223_964_580_411_365e-1, -2.400_758_277_161_838, -2.549_732_539_343_734, 4.374_664_141_464_968, 2.938_163_982_698_783];
    const D: [f64; 4] = [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0);
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Simple exponential smoothing of `z` (level starting at `z[0]`): the sum of
/// squared one-step errors and the final level (Theta's theta line, IMAPA's
/// aggregates).
pub fn ses(z: &[f64], alpha: f64) -> (f64, f64) {
    let Some(&first) = z.first() else { return (0.0, 0.0) };
    let mut level = first;
    let mut sse = 0.0;
    for &v in &z[1..] {
        let e = v - level;
        sse += e * e;
        level += alpha * e;
    }
    (sse, level)
}

/// The `q` quantile of sorted values (linear interpolation).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_indices_recover_a_multiplicative_pattern() {
        let pattern = [0.8, 1.0, 1.2, 1.0];
        let y: Vec<f64> = (0..40).map(|t| (100.0 + t as f64) * pattern[t % 4]).collect();
        let s = seasonal_indices(&y, 4, true).expect("two seasons");
        for (got, want) in s.iter().zip(pattern) {
            assert!((got - want).abs() < 0.01, "{s:?}");
        }
        assert!(is_seasonal(&y.iter().zip((0..40).map(|t| 100.0 + t as f64)).map(|(a, b)| a - b).collect::<Vec<_>>(), 4));
    }

    #[test]
    fn normal_quantile_matches_the_tables() {
        assert!((normal_quantile(0.9) - 1.281_551_565_5).abs() < 1e-8);
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!(normal_quantile(0.5).abs() < 1e-12);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-8);
    }
}
