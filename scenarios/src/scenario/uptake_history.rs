//! Offer uptake forecast from `offer_history.csv` (`customer_id`, `offer_id`,
//! `date`, `shown`, `accepted`): features, the logistic model of
//! `allot_forecasting::uptake`, a time-based holdout report, and the scored
//! candidates that become the planner's uptake.
//!
//! Features of a (customer, offer) showing on day `t`, each with its reason:
//! - **tier** (one-hot): higher tiers accept more, and tier is a business
//!   attribute the retailer targets on;
//! - **zone** (one-hot): regional taste and delivery experience;
//! - **customer recency and frequency** of acceptances before `t` (`exp(-days
//!   since the last / 30)`, `ln(1 + count)`) and the customer's own acceptance
//!   rate before `t`, shrunk toward the overall rate (few showings say little);
//! - **offer margin** (/100) and **discount depth** (`discount / (margin +
//!   discount)`): deeper discounts are taken more;
//! - the **offer's acceptance rate** shrunk toward the overall rate, and the
//!   **offer × tier segment's** rate shrunk toward the offer's (leave-one-out on
//!   the rows the model is fitted on, so a row never sees its own outcome);
//! - the **pair's own history** before `t`: how often this customer was shown
//!   this offer and accepted it (`ln(1 + count)` each): the strongest sign of a
//!   customer's taste for one offer.
//!
//! - with `customer_features.csv`, the **customer's attributes** (see
//!   [`crate::scenario::customer_features`]): numeric ones standardised,
//!   categorical ones one-hot with rare levels pooled, both learned from the
//!   customers of the fitting days only.
//!
//! Never the protected `group`: exposure fairness is a constraint of the plan,
//! and a model that learned group would carry any historical bias into it.
//! Offers have no category column in the spec, so none is used.
//!
//! Holdout: showings are split by date: the first 70% of days fit the model, the
//! next 15% fit its Platt calibration, the last 15% are the report. The L2
//! strength is chosen by 5-fold cross-validation on the fitting days, the folds
//! split by customer (a held-out fold is customers the model has not seen). With
//! attributes, the same model is also fitted without them and both are judged on
//! the holdout, so the report shows what the attributes add. The final scores use
//! the model (with attributes, when given) with features from the whole history.
//! A showing's probability stands for the spec's "accepts within the horizon if shown".

use allot_forecasting::attributes::{ColumnEncoding, Encoding};
use allot_forecasting::uptake::{accuracy, fit_cv, fold_of, logit, shrunk_rate, Accuracy, Calibration, CvPoint, FitOptions, Logistic, CV_FOLDS, L2_GRID};
use allot_optimizer::model::{Customers, Offer, Uptake};
use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;

use crate::scenario::customer_features::CustomerAttributes;

/// Prior strength (in showings) of the shrunk acceptance rates.
const SHRINK: f64 = 20.0;
/// Candidate offers kept per customer: the most likely ones.
pub const CANDIDATES_PER_CUSTOMER: usize = 8;

/// One row of the offer history, resolved to indices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Showing {
    /// Customer index.
    pub customer: u32,
    /// Offer index.
    pub offer: u32,
    /// The date.
    pub date: NaiveDate,
    /// Times shown that day.
    pub shown: f64,
    /// Times accepted that day.
    pub accepted: f64,
}

/// How one model was fitted and how it did on the holdout.
#[derive(Debug, Clone, Serialize)]
pub struct ModelScores {
    /// The L2 strength chosen by cross-validation (per row of the fit).
    pub l2: f64,
    /// Held-out log-loss of every strength tried (folds by customer, fitting days only).
    pub cross_validation: Vec<CvPoint>,
    /// Rows cross-validated: every fitting row, or a sample of
    /// [`allot_forecasting::uptake::CV_MAX_ROWS`] (whose choice is then scaled
    /// to all rows, see [`fit_cv`]).
    pub cross_validation_rows: usize,
    /// The Platt calibration fitted on the calibration days.
    pub calibration: Calibration,
    /// Holdout accuracy of the calibrated model.
    pub holdout: Accuracy,
    /// Holdout accuracy before calibration.
    pub holdout_uncalibrated: Accuracy,
}

/// The customer attributes' part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct AttributesReport {
    /// The file they came from.
    pub file: String,
    /// How each column became features (means and scales, kept and pooled levels).
    pub columns: Vec<ColumnEncoding>,
    /// Customers of the fitting days: the rows the encoding was learned from.
    pub fitting_customers: usize,
    /// The same model without the attributes, fitted and judged on the same days.
    pub without_attributes: ModelScores,
}

/// What the uptake forecast reports.
#[derive(Debug, Clone, Serialize)]
pub struct UptakeReport {
    /// Showings used to fit the model, its calibration, and the holdout.
    pub fit_rows: usize,
    /// Rows of the calibration split.
    pub calibration_rows: usize,
    /// Rows of the holdout.
    pub holdout_rows: usize,
    /// First day of the calibration split and of the holdout.
    pub calibration_from: NaiveDate,
    /// First day of the holdout.
    pub holdout_from: NaiveDate,
    /// The model's L2 strength, calibration and holdout accuracy.
    #[serde(flatten)]
    pub scores: ModelScores,
    /// Named coefficients of the model (attributes' as `attr:name` and
    /// `attr:name=level`, per standard deviation and against the reference level).
    pub coefficients: Vec<(String, f64)>,
    /// With `customer_features.csv`: the encoding and the model without them.
    pub attributes: Option<AttributesReport>,
    /// Candidate pairs scored and kept.
    pub candidates: usize,
    /// Acceptances in the history by weekday (0 = Monday): the redemption curve's input.
    pub acceptances_by_weekday: [f64; 7],
}

/// Per-row acceptance counts, for rates with leave-one-out.
#[derive(Default, Clone, Copy)]
struct Counts {
    shown: f64,
    accepted: f64,
}

impl Counts {
    fn add(&mut self, s: &Showing) {
        self.shown += s.shown;
        self.accepted += s.accepted;
    }
    fn rate_without(&self, s: Option<&Showing>, parent: f64) -> f64 {
        let (shown, accepted) = s.map_or((self.shown, self.accepted), |s| (self.shown - s.shown, self.accepted - s.accepted));
        shrunk_rate(accepted, shown, parent, SHRINK)
    }
}

/// Rates learned from a set of showings.
struct Rates {
    global: f64,
    offer: Vec<Counts>,
    /// offer * tiers + tier
    segment: Vec<Counts>,
}

impl Rates {
    fn from(rows: &[Showing], customers: &Customers, n_offers: usize, n_tiers: usize) -> Self {
        let mut offer = vec![Counts::default(); n_offers];
        let mut segment = vec![Counts::default(); n_offers * n_tiers];
        let mut all = Counts::default();
        for s in rows {
            all.add(s);
            offer[s.offer as usize].add(s);
            segment[s.offer as usize * n_tiers + customers.tier[s.customer as usize] as usize].add(s);
        }
        Rates { global: shrunk_rate(all.accepted, all.shown, 0.5, 1.0), offer, segment }
    }
}

/// A customer's acceptance history before some day.
#[derive(Default, Clone)]
struct Past {
    counts: Counts,
    last_accept: Option<NaiveDate>,
    /// Per offer shown to the customer (few per customer: a short list).
    by_offer: Vec<(u32, Counts)>,
}

impl Past {
    fn add(&mut self, s: &Showing) {
        self.counts.add(s);
        if s.accepted > 0.0 {
            self.last_accept = Some(s.date);
        }
        match self.by_offer.iter_mut().find(|(o, _)| *o == s.offer) {
            Some((_, c)) => c.add(s),
            None => {
                let mut c = Counts::default();
                c.add(s);
                self.by_offer.push((s.offer, c));
            }
        }
    }

    fn offer(&self, o: u32) -> Counts {
        self.by_offer.iter().find(|(x, _)| *x == o).map_or(Counts::default(), |(_, c)| *c)
    }
}

/// Encoded customer attributes: `width` features per customer, row-major.
#[derive(Clone, Copy)]
struct EncodedAttributes<'a> {
    values: &'a [f64],
    width: usize,
}

#[derive(Clone, Copy)]
struct Features<'a> {
    customers: &'a Customers,
    offers: &'a [Offer],
    n_tiers: usize,
    n_zones: usize,
    attributes: Option<EncodedAttributes<'a>>,
}

impl Features<'_> {
    fn width(&self) -> usize {
        (self.n_tiers - 1) + (self.n_zones - 1) + 3 + 2 + 2 + 2 + self.attributes.map_or(0, |a| a.width)
    }

    fn names(&self, tier_names: &[String], zone_names: &[String], attribute_names: &[String]) -> Vec<String> {
        let mut n: Vec<String> = tier_names.iter().skip(1).map(|t| format!("tier={t}")).collect();
        n.extend(zone_names.iter().skip(1).map(|z| format!("zone={z}")));
        n.extend(["customer_recency", "customer_frequency", "customer_rate_logit", "offer_margin", "discount_depth", "offer_rate_logit", "segment_rate_logit", "pair_shown", "pair_accepted"].map(String::from));
        if self.attributes.is_some() {
            n.extend(attribute_names.iter().map(|a| format!("attr:{a}")));
        }
        n
    }

    /// Appends one row of features.
    fn push(&self, out: &mut Vec<f64>, c: usize, o: usize, day: NaiveDate, past: &Past, rates: &Rates, own: Option<&Showing>) {
        let tier = self.customers.tier[c] as usize;
        for t in 1..self.n_tiers {
            out.push(f64::from(u8::from(tier == t)));
        }
        let zone = self.customers.zone[c] as usize;
        for z in 1..self.n_zones {
            out.push(f64::from(u8::from(zone == z)));
        }
        out.push(past.last_accept.map_or(0.0, |d| (-((day - d).num_days().max(0) as f64) / 30.0).exp()));
        out.push(past.counts.accepted.ln_1p());
        out.push(logit(shrunk_rate(past.counts.accepted, past.counts.shown, rates.global, SHRINK)));
        let offer = &self.offers[o];
        out.push(offer.margin / 100.0);
        out.push(offer.discount_cost / (offer.margin + offer.discount_cost).max(1e-9));
        let offer_rate = rates.offer[o].rate_without(own, rates.global);
        out.push(logit(offer_rate));
        out.push(logit(rates.segment[o * self.n_tiers + tier].rate_without(own, offer_rate)));
        let pair = past.offer(o as u32);
        out.push(pair.shown.ln_1p());
        out.push(pair.accepted.ln_1p());
        if let Some(a) = self.attributes {
            out.extend_from_slice(&a.values[c * a.width..(c + 1) * a.width]);
        }
    }
}

/// Builds feature rows for `rows` (sorted by customer then date), each with
/// the customer's history strictly before its day and `rates`; `leave_out`
/// removes each row's own outcome from the offer and segment rates.
fn design(f: &Features<'_>, rows: &[Showing], history: &[Showing], rates: &Rates, leave_out: bool) -> Vec<f64> {
    // Customer pasts come from `history` (sorted by customer, date).
    let mut out = Vec::with_capacity(rows.len() * f.width());
    let mut h = 0;
    let mut past = Past::default();
    let mut current = u32::MAX;
    for s in rows {
        if s.customer != current {
            current = s.customer;
            past = Past::default();
            while h < history.len() && history[h].customer < current {
                h += 1;
            }
        }
        while h < history.len() && history[h].customer == current && history[h].date < s.date {
            past.add(&history[h]);
            h += 1;
        }
        f.push(&mut out, s.customer as usize, s.offer as usize, s.date, &past, rates, leave_out.then_some(s));
    }
    out
}

/// The days a model is fitted, calibrated and judged on, and the rates of the fitting days.
struct Splits<'a> {
    /// Every showing, sorted by customer, date and offer.
    history: &'a [Showing],
    fit: Vec<Showing>,
    calibration: Vec<Showing>,
    holdout: Vec<Showing>,
    rates: Rates,
}

impl Splits<'_> {
    /// Fits a model with features `f` on the fitting days (its L2 strength by
    /// cross-validation, folds by customer), calibrates it on the calibration
    /// days and judges it on the holdout.
    fn fit(&self, f: &Features<'_>) -> Option<(Logistic, ModelScores)> {
        let d = f.width();
        let x = design(f, &self.fit, self.history, &self.rates, true);
        // A row of `shown` showings with `accepted` acceptances is two weighted
        // rows (a row of weight zero adds nothing and is left out).
        let (mut rows, mut labels, mut weights, mut folds) = (Vec::with_capacity(x.len()), Vec::new(), Vec::new(), Vec::new());
        for (s, r) in self.fit.iter().zip(x.chunks(d)) {
            for (y, w) in [(1.0, s.accepted), (0.0, (s.shown - s.accepted).max(0.0))] {
                if w > 0.0 {
                    rows.extend_from_slice(r);
                    labels.push(y);
                    weights.push(w);
                    folds.push(fold_of(u64::from(s.customer), CV_FOLDS));
                }
            }
        }
        let cv = fit_cv(&rows, d, &labels, Some(&weights), &folds, CV_FOLDS, &L2_GRID, FitOptions { l2: 1e-3, ..FitOptions::default() }).ok()?;
        let model = cv.model;
        let score = |rows: &[Showing]| -> Vec<f64> { design(f, rows, self.history, &self.rates, false).chunks(d).map(|r| model.predict(r)).collect() };
        let expand = |rows: &[Showing], p: &[f64]| -> (Vec<f64>, Vec<f64>) {
            let mut probs = Vec::new();
            let mut outcomes = Vec::new();
            for (s, &p) in rows.iter().zip(p) {
                for k in 0..s.shown.round() as usize {
                    probs.push(p);
                    outcomes.push(f64::from(u8::from((k as f64) < s.accepted)));
                }
            }
            (probs, outcomes)
        };
        let calibration = if self.calibration.is_empty() {
            Calibration::IDENTITY
        } else {
            let (p, y) = expand(&self.calibration, &score(&self.calibration));
            Calibration::fit(&p, &y).unwrap_or(Calibration::IDENTITY)
        };
        let (raw, outcomes) = expand(&self.holdout, &score(&self.holdout));
        let calibrated: Vec<f64> = raw.iter().map(|&p| calibration.apply(p)).collect();
        let scores = ModelScores {
            l2: cv.l2,
            cross_validation: cv.points,
            cross_validation_rows: cv.rows,
            calibration,
            holdout: accuracy(&calibrated, &outcomes),
            holdout_uncalibrated: accuracy(&raw, &outcomes),
        };
        Some((model, scores))
    }
}

/// Fits the uptake model on `history` (with the customers' `attributes`, when
/// given) and scores every pair of a customer and an offer it may get (tier
/// allowed, valid in the horizon), keeping the [`CANDIDATES_PER_CUSTOMER`]
/// most likely offers per customer.
pub fn forecast_uptake(
    mut history: Vec<Showing>,
    customers: &Customers,
    offers: &[Offer],
    tier_names: &[String],
    zone_names: &[String],
    horizon: &allot_optimizer::Horizon,
    attributes: Option<&CustomerAttributes>,
) -> Option<(Vec<Uptake>, UptakeReport)> {
    let as_of = horizon.start;
    if history.is_empty() || offers.is_empty() {
        return None;
    }
    history.sort_by_key(|s| (s.customer, s.date, s.offer));
    let (n_tiers, n_zones) = (tier_names.len().max(1), zone_names.len().max(1));
    let base = Features { customers, offers, n_tiers, n_zones, attributes: None };

    // Split by date.
    let first = history.iter().map(|s| s.date).min()?;
    let last = history.iter().map(|s| s.date).max()?;
    let span = (last - first).num_days().max(1);
    let calibration_from = first + chrono::Days::new((span as f64 * 0.70) as u64);
    let holdout_from = first + chrono::Days::new((span as f64 * 0.85) as u64);
    let part = |lo: Option<NaiveDate>, hi: Option<NaiveDate>| -> Vec<Showing> {
        history.iter().filter(|s| lo.is_none_or(|l| s.date >= l) && hi.is_none_or(|h| s.date < h)).copied().collect()
    };
    let fit_rows = part(None, Some(calibration_from));
    if fit_rows.is_empty() {
        return None;
    }
    let splits = Splits {
        history: &history,
        rates: Rates::from(&fit_rows, customers, offers.len(), n_tiers),
        calibration: part(Some(calibration_from), Some(holdout_from)),
        holdout: part(Some(holdout_from), None),
        fit: fit_rows,
    };

    // The attributes' encoding is learned from the customers of the fitting days.
    let encoding = attributes.map(|a| {
        let mut fitting: Vec<usize> = splits.fit.iter().map(|s| s.customer as usize).collect();
        fitting.dedup(); // sorted by customer
        (Encoding::fit(&a.columns, &fitting), fitting.len())
    });
    let encoded = attributes.zip(encoding.as_ref()).map(|(a, (e, _))| e.encode_all(&a.columns));
    let f = Features { attributes: encoding.as_ref().zip(encoded.as_deref()).map(|((e, _), values)| EncodedAttributes { values, width: e.width() }), ..base };
    let d = f.width();
    let (model, scores) = splits.fit(&f)?;
    let attributes_report = match (attributes, &encoding) {
        (Some(a), Some((e, fitting_customers))) => {
            Some(AttributesReport { file: a.file.clone(), columns: e.columns.clone(), fitting_customers: *fitting_customers, without_attributes: splits.fit(&base)?.1 })
        }
        _ => None,
    };
    let calibration = scores.calibration;

    // Score every customer x offer as of the horizon start, with all history.
    let all_rates = Rates::from(&history, customers, offers.len(), n_tiers);
    let mut starts = vec![0usize; customers.len() + 1];
    for s in &history {
        starts[s.customer as usize + 1] += 1;
    }
    for c in 0..customers.len() {
        starts[c + 1] += starts[c];
    }
    let valid: Vec<bool> = offers.iter().map(|o| horizon.overlaps(o.start_date, o.end_date)).collect();
    let uptake: Vec<Uptake> = (0..customers.len())
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut past = Past::default();
            for s in &history[starts[c]..starts[c + 1]] {
                past.add(s);
            }
            let mut row = Vec::with_capacity(d);
            // Only offers this customer could be served: a tier-restricted or
            // out-of-horizon offer would take a candidate slot for nothing.
            let tier = customers.tier[c];
            let mut scored: Vec<(f64, u32)> = (0..offers.len())
                .filter(|&o| offers[o].min_tier.is_none_or(|m| tier <= m) && valid[o])
                .map(|o| {
                    row.clear();
                    f.push(&mut row, c, o, as_of, &past, &all_rates, None);
                    (calibration.apply(model.predict(&row)), o as u32)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            scored.truncate(CANDIDATES_PER_CUSTOMER);
            scored.into_iter().map(move |(p, o)| Uptake { customer: c as u32, offer: o, p: (p * 1e4).round().max(1.0) / 1e4 })
        })
        .collect();

    let mut coefficients = vec![("intercept".to_string(), model.intercept)];
    let attribute_names = encoding.as_ref().map(|(e, _)| e.names()).unwrap_or_default();
    coefficients.extend(f.names(tier_names, zone_names, &attribute_names).into_iter().zip(model.coef.iter().copied()));
    let report = UptakeReport {
        fit_rows: splits.fit.len(),
        calibration_rows: splits.calibration.len(),
        holdout_rows: splits.holdout.len(),
        calibration_from,
        holdout_from,
        scores,
        coefficients,
        attributes: attributes_report,
        candidates: uptake.len(),
        acceptances_by_weekday: history.iter().fold([0.0; 7], |mut w, s| {
            w[chrono::Datelike::weekday(&s.date).num_days_from_monday() as usize] += s.accepted;
            w
        }),
    };
    Some((uptake, report))
}
