//! Synthetic daily demand with known structure, for `allot generate`'s history
//! files, the accuracy tests and the forecasting benchmark.
//!
//! Why here: the generator and the models must agree on what "weekly
//! seasonality", "trend" and "intermittent" mean, and tests recover what it put in.

/// A deterministic random stream (xorshift64*), so a seed gives one history.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream from a seed (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Poisson with mean `lambda` (inversion; fine for the small means of daily sales).
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0);
        }
        let (limit, mut k, mut p) = ((-lambda).exp(), 0.0, self.uniform());
        while p > limit {
            k += 1.0;
            p *= self.uniform();
        }
        k
    }
}

/// What a series looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesShape {
    /// Mean daily units at the start.
    pub level: f64,
    /// Relative change per day (0.001 = +0.1% a day).
    pub trend: f64,
    /// Multiplicative weekday profile (7 values, mean 1).
    pub weekly: [f64; 7],
    /// Probability that a day has any demand (1 = regular series).
    pub demand_probability: f64,
}

impl SeriesShape {
    /// A random shape: mostly regular series with a weekly profile and a mild
    /// trend; `intermittent_share` of them sell on few days.
    pub fn random(rng: &mut Rng, intermittent_share: f64) -> Self {
        let mut weekly = [0.0; 7];
        let weekend_lift = 0.2 + 0.6 * rng.uniform();
        for (d, w) in weekly.iter_mut().enumerate() {
            *w = if d >= 5 { 1.0 + weekend_lift } else { 1.0 } * (0.9 + 0.2 * rng.uniform());
        }
        let m = weekly.iter().sum::<f64>() / 7.0;
        weekly.iter_mut().for_each(|w| *w /= m);
        let intermittent = rng.uniform() < intermittent_share;
        SeriesShape {
            level: if intermittent { 1.0 + 3.0 * rng.uniform() } else { 3.0 + 40.0 * rng.uniform() },
            trend: (rng.uniform() - 0.5) * 0.002,
            weekly,
            demand_probability: if intermittent { 0.05 + 0.3 * rng.uniform() } else { 1.0 },
        }
    }

    /// Expected units on day `t` (day 0 is a Monday when `first_weekday` is 0).
    pub fn expected(&self, t: usize, first_weekday: usize) -> f64 {
        self.level * (1.0 + self.trend).powi(t as i32) * self.weekly[(t + first_weekday) % 7]
    }

    /// `days` of Poisson sales (on demand days only, for intermittent shapes).
    pub fn sample(&self, rng: &mut Rng, days: usize, first_weekday: usize) -> Vec<f64> {
        (0..days)
            .map(|t| {
                if rng.uniform() >= self.demand_probability {
                    return 0.0;
                }
                let size = self.expected(t, first_weekday);
                // Intermittent: at least one unit when there is demand.
                if self.demand_probability < 1.0 {
                    1.0 + rng.poisson((size - 1.0).max(0.0))
                } else {
                    rng.poisson(size)
                }
            })
            .collect()
    }
}
