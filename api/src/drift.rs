//! Drift of live acceptance from the served plan's uptake, and the policy
//! that acts on it.
//!
//! Why: a plan is only as good as its uptake forecast. Outcome events say
//! what customers actually did with the offers they were shown; when, for an
//! offer, acceptances leave what the plan's probabilities predict by more
//! than chance explains, the plan is optimizing the wrong numbers and should
//! be refreshed.
//!
//! The test, per offer of the served plan: over the `shown` outcomes received
//! since the plan was saved, the expected acceptances are the sum of the
//! shown pairs' planned `p`, their variance the sum of `p (1 - p)`; the
//! signal is `z = (accepted - expected) / sqrt(variance)`. An offer drifts
//! once it has [`DriftPolicy::min_shown`] showings and `|z|` reaches
//! [`DriftPolicy::z`].
//!
//! Live demand, per zone × SKU: inventory `order` events that name their
//! zone, by the day they were placed, against the version's demand plan
//! (baseline and offer units per day). Over the horizon's days up to the
//! latest order seen, with daily errors `e = ordered - planned`, the tracking
//! signal is `sum e / mean |e|` (it grows by one a day while every day errs
//! the same way). A cell drifts once [`DriftPolicy::demand_min_days`] days
//! are in and `|signal|` reaches [`DriftPolicy::tracking_signal`]. Calibration by decile of `p` (planned against
//! observed rate) is kept for the metrics and the report. Acceptances count
//! against their offer whether or not their showing was posted, so a channel
//! that posts acceptances without showings reads as drift upward: post both.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::index::PlanIndex;
use crate::outcomes::OutcomeKind;

/// What the service does about drift (`allot serve --drift-z`,
/// `--drift-min-shown`, `--replan-on-drift`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftPolicy {
    /// `|z|` at which an offer drifts.
    pub z: f64,
    /// Showings an offer needs before it can drift.
    pub min_shown: f64,
    /// `|tracking signal|` at which a zone × SKU's demand drifts.
    pub tracking_signal: f64,
    /// Days of the horizon a zone × SKU needs before it can drift.
    pub demand_min_days: f64,
    /// Start a warm re-plan of the served plan's scenario when an offer or
    /// a zone × SKU drifts (once per served version), and what to do with its result.
    pub replan: Option<AfterReplan>,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy { z: 4.0, min_shown: 200.0, tracking_signal: 4.0, demand_min_days: 4.0, replan: None }
    }
}

/// What becomes of a re-plan started by drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterReplan {
    /// Saved; it waits for a planner to activate it.
    Wait,
    /// Saved and started as a canary for this share (when no canary runs).
    Canary(f64),
}

/// One shown or accepted outcome, as the drift test reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    pub received_at: DateTime<Utc>,
    pub customer_id: String,
    pub offer_id: String,
    pub accepted: bool,
}

impl Seen {
    /// The outcome as the drift test reads it, if it is a showing or an acceptance.
    pub(crate) fn of(received_at: DateTime<Utc>, event: &crate::outcomes::OutcomeEvent) -> Option<Self> {
        let accepted = match event.kind {
            OutcomeKind::Shown => false,
            OutcomeKind::Accepted => true,
            _ => return None,
        };
        Some(Seen { received_at, customer_id: event.customer_id.clone(), offer_id: event.offer_id.clone(), accepted })
    }
}

/// Showings, expected and observed acceptances of one offer or one decile.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    shown: f64,
    expected: f64,
    variance: f64,
    accepted: f64,
}

/// Live acceptance against a served plan's uptake, per offer and per decile of `p`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AcceptanceDrift {
    offers: Vec<Tally>,
    deciles: [Tally; 10],
}

impl AcceptanceDrift {
    /// The tallies from every outcome received after the plan was saved.
    pub(crate) fn compute<'a>(plan: &PlanIndex, seen: impl Iterator<Item = &'a Seen>) -> Self {
        let mut drift = AcceptanceDrift { offers: vec![Tally::default(); plan.context.offers.len()], deciles: [Tally::default(); 10] };
        for s in seen {
            drift.apply(plan, s);
        }
        drift
    }

    /// Adds one outcome (one received before the plan was saved, or of a
    /// pair the plan has no probability for, changes nothing).
    pub(crate) fn apply(&mut self, plan: &PlanIndex, s: &Seen) {
        if s.received_at <= plan.created_at() {
            return;
        }
        let Some(&c) = plan.customer_ix.get(s.customer_id.as_str()) else { return };
        let Some(o) = plan.offer_index(&s.offer_id) else { return };
        let Some(p) = plan.rows(c).iter().find(|e| e.offer == o).map(|e| f64::from(e.p)) else { return };
        let decile = ((p * 10.0) as usize).min(9);
        for t in [&mut self.offers[o as usize], &mut self.deciles[decile]] {
            if s.accepted {
                t.accepted += 1.0;
            } else {
                t.shown += 1.0;
                t.expected += p;
                t.variance += p * (1.0 - p);
            }
        }
    }

    /// Every offer's standing, drifting or not, in the plan's offer order.
    pub(crate) fn offers(&self, plan: &PlanIndex, policy: &DriftPolicy) -> Vec<OfferDrift> {
        self.offers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.shown > 0.0)
            .map(|(o, t)| {
                let z = if t.variance > 0.0 { (t.accepted - t.expected) / t.variance.sqrt() } else { 0.0 };
                OfferDrift {
                    offer_id: plan.offer_id(o as u32).to_string(),
                    shown: t.shown as u64,
                    accepted: t.accepted as u64,
                    planned_rate: t.expected / t.shown,
                    observed_rate: t.accepted / t.shown,
                    z,
                    drifting: t.shown >= policy.min_shown && z.abs() >= policy.z,
                }
            })
            .collect()
    }

    /// Calibration by decile of planned `p`: (decile, showings, planned rate, observed rate).
    pub(crate) fn calibration(&self) -> impl Iterator<Item = (usize, f64, f64, f64)> + '_ {
        self.deciles.iter().enumerate().filter(|(_, t)| t.shown > 0.0).map(|(d, t)| (d, t.shown, t.expected / t.shown, t.accepted / t.shown))
    }
}

/// One offer's live acceptance against the plan's.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OfferDrift {
    /// The offer.
    pub offer_id: String,
    /// Showings since the plan was saved.
    pub shown: u64,
    /// Acceptances since then.
    pub accepted: u64,
    /// Mean planned `p` of the showings.
    pub planned_rate: f64,
    /// Acceptances per showing.
    pub observed_rate: f64,
    /// `(accepted - expected) / sqrt(variance)`.
    pub z: f64,
    /// Past the policy's bounds.
    pub drifting: bool,
}

impl OfferDrift {
    /// The `/readyz` warning for a drifting offer.
    pub fn warning(&self) -> String {
        format!(
            "acceptance_drift: offer {} accepted {:.1}% of {} showings against the plan's {:.1}% (z = {:+.1})",
            self.offer_id,
            100.0 * self.observed_rate,
            self.shown,
            100.0 * self.planned_rate,
            self.z
        )
    }
}

/// An order that names its zone, as live demand reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DemandOrder {
    pub received_at: DateTime<Utc>,
    pub zone: String,
    pub sku: String,
    pub date: chrono::NaiveDate,
    pub qty: f64,
}

impl DemandOrder {
    /// The order as live demand, if it is an order naming its zone.
    pub(crate) fn of(received_at: DateTime<Utc>, event: &crate::events::InventoryEvent) -> Option<Self> {
        let zone = event.zone.clone().filter(|_| event.kind == crate::events::InventoryKind::Order)?;
        Some(DemandOrder { received_at, zone, sku: event.sku.clone(), date: event.date.unwrap_or(received_at.date_naive()), qty: event.qty })
    }
}

/// Live demand against a served plan's demand plan, per zone × SKU × day.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DemandDrift {
    /// (zone, SKU) -> (planned per day, ordered per day).
    cells: std::collections::BTreeMap<(String, String), (Vec<f64>, Vec<f64>)>,
    /// Days of the horizon up to the latest order seen.
    days_in: usize,
}

impl DemandDrift {
    /// The plan's demand with every order received after it was saved.
    pub(crate) fn compute<'a>(plan: &PlanIndex, orders: impl Iterator<Item = &'a DemandOrder>) -> Self {
        let days = plan.context.horizon_days as usize;
        let mut drift = DemandDrift::default();
        for line in &plan.demand {
            if let Some(d) = plan.horizon_day(line.date) {
                drift.cells.entry((line.zone.clone(), line.sku.clone())).or_insert_with(|| (vec![0.0; days], vec![0.0; days])).0[d] += line.units;
            }
        }
        for o in orders {
            drift.apply(plan, o);
        }
        drift
    }

    /// Adds one order (one before the plan was saved, or dated outside its horizon, changes nothing).
    pub(crate) fn apply(&mut self, plan: &PlanIndex, o: &DemandOrder) {
        let Some(d) = plan.horizon_day(o.date).filter(|_| o.received_at > plan.created_at()) else { return };
        let days = plan.context.horizon_days as usize;
        self.cells.entry((o.zone.clone(), o.sku.clone())).or_insert_with(|| (vec![0.0; days], vec![0.0; days])).1[d] += o.qty;
        self.days_in = self.days_in.max(d + 1);
    }

    /// Every zone × SKU with orders, with its tracking signal.
    pub(crate) fn cells(&self, policy: &DriftPolicy) -> Vec<DemandCell> {
        let n = self.days_in;
        self.cells
            .iter()
            .filter(|(_, (_, ordered))| ordered.iter().any(|&q| q != 0.0))
            .map(|((zone, sku), (planned, ordered))| {
                let errors: Vec<f64> = (0..n).map(|d| ordered[d] - planned[d]).collect();
                let mad = errors.iter().map(|e| e.abs()).sum::<f64>() / n.max(1) as f64;
                let signal = if mad > 0.0 { errors.iter().sum::<f64>() / mad } else { 0.0 };
                DemandCell {
                    zone: zone.clone(),
                    sku: sku.clone(),
                    days: n as u64,
                    planned_units: planned[..n].iter().sum(),
                    ordered_units: ordered[..n].iter().sum(),
                    tracking_signal: signal,
                    drifting: n as f64 >= policy.demand_min_days && signal.abs() >= policy.tracking_signal,
                }
            })
            .collect()
    }
}

/// One zone × SKU's live demand against the plan's.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DemandCell {
    /// Zone.
    pub zone: String,
    /// SKU.
    pub sku: String,
    /// Days of the horizon counted (up to the latest order seen).
    pub days: u64,
    /// Units the demand plan expected over them.
    pub planned_units: f64,
    /// Units ordered over them.
    pub ordered_units: f64,
    /// Sum of daily errors over their mean absolute value.
    pub tracking_signal: f64,
    /// Past the policy's bounds.
    pub drifting: bool,
}

impl DemandCell {
    /// The `/readyz` warning for a drifting cell.
    pub fn warning(&self) -> String {
        format!(
            "demand_drift: zone {} sku {} ordered {:.1} units in {} days against the plan's {:.1} (tracking signal {:+.1})",
            self.zone, self.sku, self.ordered_units, self.days, self.planned_units, self.tracking_signal
        )
    }
}
