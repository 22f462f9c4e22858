//! The two minimisers the demand models fit their parameters with.
//!
//! Why derivative-free: every objective here is a filter run over a series
//! (one pass per evaluation), cheap to evaluate but with no gradient at hand,
//! and with at most a handful of parameters.

/// Nelder–Mead minimisation (standard coefficients) from `start` with step
/// `step` along each axis; stops after `max_evals` evaluations or when the
/// simplex's values agree to 1e-10 relative. Returns the best point and value.
pub fn nelder_mead(f: impl Fn(&[f64]) -> f64, start: &[f64], step: f64, max_evals: usize) -> (Vec<f64>, f64) {
    let d = start.len();
    if d == 0 {
        return (Vec::new(), f(start));
    }
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(d + 1);
    simplex.push((start.to_vec(), f(start)));
    for i in 0..d {
        let mut x = start.to_vec();
        x[i] += step;
        let v = f(&x);
        simplex.push((x, v));
    }
    let mut evals = d + 1;
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[d].1);
        if (worst - best).abs() <= 1e-10 * (best.abs() + 1e-12) {
            break;
        }
        let centroid: Vec<f64> = (0..d).map(|j| simplex[..d].iter().map(|p| p.0[j]).sum::<f64>() / d as f64).collect();
        let along = |t: f64| -> Vec<f64> { (0..d).map(|j| centroid[j] + t * (simplex[d].0[j] - centroid[j])).collect() };
        let reflected = along(-1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < simplex[0].1 {
            let expanded = along(-2.0);
            let fe = f(&expanded);
            evals += 1;
            simplex[d] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < simplex[d - 1].1 {
            simplex[d] = (reflected, fr);
        } else {
            let contracted = if fr < worst { along(-0.5) } else { along(0.5) };
            let fc = f(&contracted);
            evals += 1;
            if fc < worst.min(fr) {
                simplex[d] = (contracted, fc);
            } else {
                let best_x = simplex[0].0.clone();
                for p in simplex.iter_mut().skip(1) {
                    for j in 0..d {
                        p.0[j] = best_x[j] + 0.5 * (p.0[j] - best_x[j]);
                    }
                    p.1 = f(&p.0);
                }
                evals += d;
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0)
}

/// Golden-section minimisation of a one-parameter objective on `[lo, hi]`
/// (unimodal there, or the best of the points it visits). Returns the point
/// and its value.
pub fn golden_section(f: impl Fn(f64) -> f64, lo: f64, hi: f64, tolerance: f64) -> (f64, f64) {
    const INV_PHI: f64 = 0.618_033_988_749_894_9;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - INV_PHI * (b - a);
    let mut d = a + INV_PHI * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while (b - a).abs() > tolerance {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - INV_PHI * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + INV_PHI * (b - a);
            fd = f(d);
        }
    }
    if fc < fd {
        (c, fc)
    } else {
        (d, fd)
    }
}

/// The logistic function mapping an unconstrained parameter into `(0, 1)`.
pub fn unit(u: f64) -> f64 {
    1.0 / (1.0 + (-u).exp())
}

/// The inverse of [`unit`] (clamped away from 0 and 1).
pub fn from_unit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let (x, v) = nelder_mead(|x| (x[0] - 1.5).powi(2) + 3.0 * (x[1] + 0.5).powi(2), &[0.0, 0.0], 1.0, 400);
        assert!((x[0] - 1.5).abs() < 1e-3 && (x[1] + 0.5).abs() < 1e-3 && v < 1e-6, "{x:?}");
    }

    #[test]
    fn golden_section_finds_a_one_dimensional_minimum() {
        let (x, _) = golden_section(|x| (x - 0.37).powi(2), 0.0, 1.0, 1e-6);
        assert!((x - 0.37).abs() < 1e-5, "{x}");
    }
}
