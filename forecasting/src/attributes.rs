//! Customer attributes as model features: numeric columns standardised,
//! categorical columns one-hot with rare levels pooled into `other`.
//!
//! The encoding is learned from the rows a model is fitted on and only from
//! them (the means, standard deviations and level counts), then applied to
//! every row: statistics that saw the holdout would leak it into the report.
//!
//! Why standardise: the L2 penalty treats every coefficient alike, so a column
//! in years and one in cents must be on one scale for the penalty to mean the
//! same for both (and the coefficients read as "per standard deviation").
//! Why pool rare levels: a level held by a handful of customers gets a
//! coefficient that is mostly noise, and a level seen only in the holdout has
//! none at all; both go to one `other` feature.
//!
//! One categorical level, the most frequent kept one, is the reference and has
//! no feature: its effect is the intercept's, and each other level's
//! coefficient reads as the difference from it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The level rare levels are pooled into. A level actually named `other`
/// shares its feature with them.
pub const OTHER: &str = "other";
/// A level needs at least this many fitting rows to keep a feature of its own...
pub const MIN_LEVEL_COUNT: usize = 20;
/// ...and at least this share of them.
pub const MIN_LEVEL_SHARE: f64 = 0.01;

/// The values of one attribute, one per row (customer).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Numbers (every row has one).
    Numeric(Vec<f64>),
    /// Levels.
    Categorical(Vec<String>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Categorical(v) => v.len(),
        }
    }
}

/// One attribute column.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Column name.
    pub name: String,
    /// Its values.
    pub values: Values,
}

/// How one column becomes features (what the report shows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnEncoding {
    /// One feature, `(x - mean) / sd`.
    Numeric {
        /// Column name.
        name: String,
        /// Mean over the fitting rows.
        mean: f64,
        /// Standard deviation over the fitting rows (1 when they are all equal:
        /// the feature is then 0 on every fitting row).
        sd: f64,
    },
    /// One 0/1 feature per level but the reference.
    Categorical {
        /// Column name.
        name: String,
        /// The level without a feature (the most frequent kept one).
        reference: String,
        /// The levels with a feature, in feature order (`other` last when present).
        levels: Vec<String>,
        /// Levels of the fitting rows pooled into `other` (too rare).
        pooled: Vec<String>,
    },
}

impl ColumnEncoding {
    /// Its features.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoding::Numeric { .. } => 1,
            ColumnEncoding::Categorical { levels, .. } => levels.len(),
        }
    }
}

/// The encoding of a set of attributes, learned from fitting rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    /// Per column, in the attributes' order.
    pub columns: Vec<ColumnEncoding>,
    /// Per categorical column: level to feature offset (`None`: the reference).
    lookup: Vec<HashMap<String, Option<usize>>>,
}

impl Encoding {
    /// Learns the encoding from the rows `fitting` of `attributes`.
    pub fn fit(attributes: &[Attribute], fitting: &[usize]) -> Encoding {
        let mut columns = Vec::with_capacity(attributes.len());
        let mut lookup = Vec::with_capacity(attributes.len());
        for a in attributes {
            match &a.values {
                Values::Numeric(x) => {
                    let n = fitting.len().max(1) as f64;
                    let mean = fitting.iter().map(|&i| x[i]).sum::<f64>() / n;
                    let sd = (fitting.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / n).sqrt();
                    let sd = if sd > 1e-12 && sd.is_finite() { sd } else { 1.0 };
                    columns.push(ColumnEncoding::Numeric { name: a.name.clone(), mean, sd });
                    lookup.push(HashMap::new());
                }
                Values::Categorical(x) => {
                    let mut counts: HashMap<&str, usize> = HashMap::new();
                    for &i in fitting {
                        *counts.entry(x[i].as_str()).or_default() += 1;
                    }
                    let needed = MIN_LEVEL_COUNT.max((MIN_LEVEL_SHARE * fitting.len() as f64).ceil() as usize);
                    let mut kept: Vec<(&str, usize)> = counts.iter().filter(|&(l, &c)| c >= needed && *l != OTHER).map(|(&l, &c)| (l, c)).collect();
                    // Most frequent first (ties by name): the first is the reference.
                    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    let mut pooled: Vec<String> = counts.iter().filter(|&(l, &c)| c < needed || *l == OTHER).map(|(l, _)| l.to_string()).collect();
                    pooled.sort();
                    let mut levels: Vec<String> = kept.iter().map(|(l, _)| l.to_string()).collect();
                    // With nothing kept, `other` itself is the reference.
                    if !pooled.is_empty() || levels.is_empty() {
                        levels.push(OTHER.to_string());
                    }
                    let reference = levels.remove(0);
                    let mut map: HashMap<String, Option<usize>> = levels.iter().enumerate().map(|(j, l)| (l.clone(), Some(j))).collect();
                    map.insert(reference.clone(), None);
                    columns.push(ColumnEncoding::Categorical { name: a.name.clone(), reference, levels, pooled });
                    lookup.push(map);
                }
            }
        }
        Encoding { columns, lookup }
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnEncoding::width).sum()
    }

    /// The features' names: a numeric column's name, `column=level` for a level.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.width());
        for c in &self.columns {
            match c {
                ColumnEncoding::Numeric { name, .. } => out.push(name.clone()),
                ColumnEncoding::Categorical { name, levels, .. } => out.extend(levels.iter().map(|l| format!("{name}={l}"))),
            }
        }
        out
    }

    /// Appends the features of row `i`. A level not kept (rare in the fitting
    /// rows, or never seen in them) counts as `other`; when the fitting rows
    /// pooled nothing there is no `other` feature and it scores as the reference.
    pub fn encode(&self, attributes: &[Attribute], i: usize, out: &mut Vec<f64>) {
        for ((c, a), map) in self.columns.iter().zip(attributes).zip(&self.lookup) {
            match (c, &a.values) {
                (ColumnEncoding::Numeric { mean, sd, .. }, Values::Numeric(x)) => out.push((x[i] - mean) / sd),
                (ColumnEncoding::Categorical { levels, .. }, Values::Categorical(x)) => {
                    let at = out.len();
                    out.resize(at + levels.len(), 0.0);
                    let other = || levels.iter().position(|l| l == OTHER);
                    if let Some(j) = map.get(x[i].as_str()).copied().unwrap_or_else(other) {
                        out[at + j] = 1.0;
                    }
                }
                // Attributes other than those the encoding was fitted on: zeros.
                _ => out.resize(out.len() + c.width(), 0.0),
            }
        }
    }

    /// Every row's features, row-major (`rows × width`).
    pub fn encode_all(&self, attributes: &[Attribute]) -> Vec<f64> {
        let rows = attributes.first().map_or(0, |a| a.values.len());
        let mut out = Vec::with_capacity(rows * self.width());
        for i in 0..rows {
            self.encode(attributes, i, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;
    use crate::uptake::{accuracy, fit_cv, fold_of, sigmoid, FitOptions, CV_FOLDS, L2_GRID};

    fn categorical(name: &str, levels: &[&str]) -> Attribute {
        Attribute { name: name.into(), values: Values::Categorical(levels.iter().map(|s| s.to_string()).collect()) }
    }

    /// Standardisation uses the fitting rows only: a holdout row far away
    /// does not move the mean or the scale.
    #[test]
    fn numeric_statistics_come_from_the_fitting_rows() {
        let a = [Attribute { name: "age".into(), values: Values::Numeric(vec![20.0, 30.0, 40.0, 1000.0]) }];
        let e = Encoding::fit(&a, &[0, 1, 2]);
        let sd = (200.0f64 / 3.0).sqrt();
        assert_eq!(e.columns, vec![ColumnEncoding::Numeric { name: "age".into(), mean: 30.0, sd }]);
        let x = e.encode_all(&a);
        assert!((x[0] + 10.0 / sd).abs() < 1e-12 && x[1].abs() < 1e-12 && (x[3] - 970.0 / sd).abs() < 1e-9, "{x:?}");
        // A constant column is all zeros on the fitting rows (not a division by zero).
        let c = [Attribute { name: "c".into(), values: Values::Numeric(vec![5.0, 5.0, 7.0]) }];
        assert_eq!(Encoding::fit(&c, &[0, 1]).encode_all(&c), vec![0.0, 0.0, 2.0]);
    }

    /// Levels below 20 fitting rows (or 1% of them) share `other`, as do
    /// levels never seen when fitting; the most frequent level is the reference.
    #[test]
    fn rare_and_unseen_levels_are_pooled_into_other() {
        let mut levels = vec!["email"; 50];
        levels.extend(vec!["app"; 30]);
        levels.extend(vec!["fax"; 19]);
        levels.push("pigeon");
        levels.push("telex"); // only in the holdout
        let a = [categorical("channel", &levels)];
        let fitting: Vec<usize> = (0..100).collect();
        let e = Encoding::fit(&a, &fitting);
        assert_eq!(
            e.columns,
            vec![ColumnEncoding::Categorical { name: "channel".into(), reference: "email".into(), levels: vec!["app".into(), OTHER.into()], pooled: vec!["fax".into(), "pigeon".into()] }]
        );
        assert_eq!(e.names(), vec!["channel=app", "channel=other"]);
        let x = e.encode_all(&a);
        let row = |i: usize| &x[i * 2..i * 2 + 2];
        assert_eq!((row(0), row(50), row(80), row(99), row(100)), (&[0.0, 0.0][..], &[1.0, 0.0][..], &[0.0, 1.0][..], &[0.0, 1.0][..], &[0.0, 1.0][..]));
        // Nothing rare: no `other` feature, and an unseen level scores as the reference.
        let b = [categorical("k", &[&["x"; 25][..], &["y"; 25][..], &["z"][..]].concat())];
        let e = Encoding::fit(&b, &(0..50).collect::<Vec<_>>());
        assert_eq!(e.names(), vec!["k=y"]);
        assert_eq!(e.encode_all(&b)[50], 0.0);
    }

    /// The product's path on simulated customers: raw attributes on their own
    /// scales through the encoding and the cross-validated fit give back the
    /// coefficients that made the labels (per raw unit and per level).
    #[test]
    fn recovers_attribute_coefficients_through_the_encoding() {
        let n = 60_000;
        let mut rng = Rng::new(11);
        let (mut age, mut spend, mut household, mut labels) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let a = 45.0 + 12.0 * rng.normal();
            let s = 300.0 + 80.0 * rng.normal();
            let u = rng.uniform();
            let h = if u < 0.5 { "single" } else if u < 0.8 { "couple" } else if u < 0.995 { "family" } else { "commune" };
            let effect = match h {
                "couple" => 0.4,
                "family" => 0.9,
                _ => 0.0,
            };
            let z = -1.5 - 0.04 * (a - 45.0) + 0.005 * (s - 300.0) + effect;
            labels.push(f64::from(u8::from(rng.uniform() < sigmoid(z))));
            age.push(a);
            spend.push(s);
            household.push(h.to_string());
        }
        let attributes = [
            Attribute { name: "age".into(), values: Values::Numeric(age) },
            Attribute { name: "spend".into(), values: Values::Numeric(spend) },
            Attribute { name: "household".into(), values: Values::Categorical(household) },
        ];
        let e = Encoding::fit(&attributes, &(0..n).collect::<Vec<_>>());
        let x = e.encode_all(&attributes);
        let folds: Vec<usize> = (0..n).map(|i| fold_of(i as u64, CV_FOLDS)).collect();
        let fit = fit_cv(&x, e.width(), &labels, None, &folds, CV_FOLDS, &L2_GRID, FitOptions::default()).unwrap();
        assert_eq!(fit.points.len(), L2_GRID.len());
        let coef: HashMap<String, f64> = e.names().into_iter().zip(fit.model.coef.iter().copied()).collect();
        let sd: HashMap<&str, f64> = e
            .columns
            .iter()
            .filter_map(|c| match c {
                ColumnEncoding::Numeric { name, sd, .. } => Some((name.as_str(), *sd)),
                ColumnEncoding::Categorical { .. } => None,
            })
            .collect();
        let per_unit = |name: &str| coef[name] / sd[name];
        assert!((per_unit("age") + 0.04).abs() < 0.004, "age {}", per_unit("age"));
        assert!((per_unit("spend") - 0.005).abs() < 0.0006, "spend {}", per_unit("spend"));
        assert!((coef["household=couple"] - 0.4).abs() < 0.06, "couple {}", coef["household=couple"]);
        assert!((coef["household=family"] - 0.9).abs() < 0.06, "family {}", coef["household=family"]);
        assert!(coef.contains_key("household=other"), "the 0.5% level is pooled: {coef:?}");
        let p: Vec<f64> = x.chunks(e.width()).map(|r| fit.model.predict(r)).collect();
        assert!(accuracy(&p, &labels).auc > 0.6);
    }
}
