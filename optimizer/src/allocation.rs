//! What a solver returns, whatever the solver: the primal solution in the
//! spec's variables, the shadow prices of its constraints, and a solve report.
//!
//! Plan outputs (eligibility, reservations, pick priorities, bid prices, KPIs) are
//! derived from an [`Allocation`] alone, so every solver gets the same outputs.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{BucketIx, LaneIx, OfferIx, SkuIx, WarehouseIx, ZoneIx};

/// Units of one SKU shipped on one lane for one time bucket (`f[w,z,s,t]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// The lane (warehouse and zone).
    pub lane: LaneIx,
    /// The SKU.
    pub sku: SkuIx,
    /// Units over the bucket.
    pub units: f64,
    /// The time bucket (0 without `bucket_days`).
    #[serde(default)]
    pub bucket: BucketIx,
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolveStatus {
    /// Proven optimal (within the MIP gap tolerance for a MIP).
    Optimal,
    /// Stopped at the time limit with a feasible solution.
    TimeLimit,
    /// A feasible solution proven within the requested relative gap of the optimum
    /// (the decomposed solver's certificate).
    WithinGap,
    /// Stopped at the iteration limit with a feasible solution and its gap.
    IterationLimit,
    /// Stopped when further iterations no longer narrowed the gap; the plan and
    /// its certified gap are reported.
    Stalled,
    /// A warm re-plan (`--warm-from`) that certified the earlier plan's gap,
    /// looser than the requested one, and stopped there. For a MIP the gap is
    /// against the bound of every choice of open custom offers, as a cold
    /// plan's is.
    MatchedEarlierPlan,
}

impl SolveStatus {
    /// Stable lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SolveStatus::Optimal => "optimal",
            SolveStatus::TimeLimit => "time_limit",
            SolveStatus::WithinGap => "within_gap",
            SolveStatus::IterationLimit => "iteration_limit",
            SolveStatus::Stalled => "stalled",
            SolveStatus::MatchedEarlierPlan => "matched_earlier_plan",
        }
    }
}

/// Marginal values of the constraints, each as "objective lost per unit of
/// tightening" (so every price is `>= 0` at an optimum).
///
/// Why: the decision service prices offers against these (bid-price control),
/// eligibility reasons name the constraint that charges a candidate most, and
/// planners read them as "what one more unit is worth".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowPrices {
    /// Contact cap, per customer.
    pub contact_cap: Vec<f64>,
    /// Contact policies (`max_per_customer` rules, conflicts), per row of
    /// `contact_policy::CustomerRows` (empty when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customer_rows: Vec<f64>,
    /// Zone balance: the value of one more unit of demand served in (zone, SKU,
    /// bucket), i.e. the plan's bid price for that unit.
    pub bid_price: HashMap<(ZoneIx, SkuIx, BucketIx), f64>,
    /// Stock of (warehouse, SKU) through the end of a bucket (the cumulative
    /// row; an arc of bucket `t` pays the sum over the rows from `t` on).
    pub stock: HashMap<(WarehouseIx, SkuIx, BucketIx), f64>,
    /// Lane capacity, per lane.
    pub lane_capacity: Vec<f64>,
    /// The discount budget.
    pub budget: f64,
    /// Redemption cap, per offer.
    pub redemptions: Vec<f64>,
    /// Delivery capacity, per zone.
    pub delivery: Vec<f64>,
    /// Exposure parity, per (offer, lower group g, reference group h).
    pub fairness: Vec<FairnessPrice>,
    /// Families beyond the standard ones (see [`crate::families`]): row prices
    /// by family name, in the family's row order.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub families: std::collections::BTreeMap<String, Vec<f64>>,
}

impl ShadowPrices {
    /// The stock price an arc of bucket `t` from (warehouse, SKU) pays: the sum
    /// of the cumulative stock rows' prices from its bucket to the last of `buckets`.
    pub fn stock_from(&self, warehouse: WarehouseIx, sku: SkuIx, t: BucketIx, buckets: usize) -> f64 {
        (t..buckets as BucketIx).map(|u| self.stock.get(&(warehouse, sku, u)).copied().unwrap_or(0.0).max(0.0)).sum()
    }
}

/// Shadow price of one fairness row `rate(g) >= ratio * rate(h)` of one offer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FairnessPrice {
    /// The offer.
    pub offer: OfferIx,
    /// The group whose exposure rate is bounded below.
    pub group: u32,
    /// The reference group.
    pub reference: u32,
    /// Objective lost per unit of tightening.
    pub price: f64,
}

/// Facts about one solve, for KPIs and the plan's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveReport {
    /// Solver name (`exact`, ...).
    pub solver: String,
    /// How the solve ended.
    pub status: SolveStatus,
    /// Objective of the returned primal solution.
    pub objective: f64,
    /// Best proven upper bound on the optimum (for a maximisation).
    pub bound: f64,
    /// Relative gap `(bound - objective) / max(1, |objective|)`.
    pub gap: f64,
    /// The optimum with no candidate pairs (baseline shipping and penalties
    /// only): what the plan is worth without offers.
    #[serde(default)]
    pub objective_without_offers: f64,
    /// Gap on the offers' own value: `(bound - objective) / max(1, |bound -
    /// objective_without_offers|)`. Why: baseline shipping costs dominate the
    /// whole objective in many scenarios, so `gap` understates how far the
    /// offers are from their best; stopping rules use this one.
    #[serde(default)]
    pub offers_gap: f64,
    /// Seconds spent building the model.
    pub build_seconds: f64,
    /// Seconds spent in the solver itself.
    pub solve_seconds: f64,
    /// Number of model variables.
    pub variables: usize,
    /// Number of model constraints.
    pub constraints: usize,
    /// Dual iterations of an iterative solver (`None` for the exact one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// The plan version whose prices and plan this solve started from (the
    /// decomposition's warm start); `None` for a cold start, and when `auto`
    /// ran the exact solver, which takes no warm start. Why here: only the
    /// solve knows whether the warm start it was given was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_from: Option<String>,
}

/// A solved plan in the spec's variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// Exposure `x` per candidate, in [`crate::Candidates`] order.
    pub x: Vec<f64>,
    /// Positive shipments.
    pub flows: Vec<Flow>,
    /// Unmet baseline `u` per row of `Problem::baseline`.
    pub unmet: Vec<f64>,
    /// Per offer: `false` for a custom offer closed by the SKU-proliferation limit.
    pub offer_open: Vec<bool>,
    /// Constraint prices.
    pub prices: ShadowPrices,
    /// Solve facts.
    pub report: SolveReport,
}

/// The spec's objective at exposures `x` with shipments `flows` and unmet
/// baseline `unmet`: the pairs' values less shipping, unmet-baseline
/// penalties and soft rules' penalties. The one evaluation the plan outputs
/// use (the served plan's objective, the binary plan of a relaxation); the
/// checker keeps its own (`feasibility::objective`).
pub fn objective_at(problem: &crate::Problem, cands: &crate::Candidates, x: &dyn Fn(usize) -> f64, flows: &[Flow], unmet: &[f64]) -> f64 {
    let offers: f64 = (0..cands.len()).map(|k| cands.value(problem, k) * x(k)).sum();
    let shipping: f64 = flows.iter().map(|f| problem.lanes[f.lane as usize].cost_per_unit * f.units).sum();
    offers - shipping - problem.policy.unmet_baseline_penalty * unmet.iter().sum::<f64>() - crate::families::rules::penalties(problem, cands, x)
}
