//! Plan outputs of the spec, derived from any solver's [`Allocation`].
//!
//! * **Eligibility**: one row per uptake pair. `eligible` is the served plan of
//!   [`crate::served`]: `x` rounded per customer, then repaired until every
//!   hard coupling limit holds with `x` replaced by `eligible`; its shipments
//!   are the plan's [`Plan::shipments`].
//! * **Reasons** for candidates not served: the constraint family that charges the
//!   candidate most in the LP's reduced cost (`coefficient × shadow price`), with
//!   zone-balance charges split into shipping cost, stock and lane capacity along
//!   the cheapest lane.
//! * **Reservations**: each (zone, SKU)'s served offer demand per tier is routed
//!   to warehouses in proportion to the served plan's shipments; a warehouse's available
//!   stock, after the baseline demand the plan serves from it, is given to tiers
//!   highest first, so when stock is short lower tiers are cut first.
//! * **Pick priorities**: per warehouse, offers that need kitting (bundles,
//!   multi-unit lines, custom variants) ranked by
//!   `score = (weighted expected margin routed to the warehouse / units routed)
//!   × (1 + mean transit days / promise days)`: value per unit picked, boosted for
//!   lanes that must ship earliest to keep the promise.
//! * **Bid prices**: the zone-balance shadow prices.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::allocation::{Allocation, Flow, ShadowPrices};
use crate::contact_policy::{CustomerRows, PolicyRow};
use crate::served::{self, DropCause, Served, ROUND_UP_AT};
use crate::candidates::{Candidates, ExclusionRule, Network};
use crate::families::{balance, custom_limit, lane, no_extra, rules, stock, Charges, CustomLimitMode, ExtraFamilies, Layout, Scope};
use crate::model::{BucketIx, Measure, OfferIx, Problem, RuleKind, SkuIx, TierIx, Uptake, WarehouseIx, ZoneIx};

/// Prices below this count as zero (solver noise).
const PRICE_EPS: f64 = 1e-7;

/// A coupling family's name, interned to a small number: a reason is stored
/// on every candidate pair's eligibility row, and a `&'static str` there would
/// add 16 bytes per pair (about 100 MB at a million customers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FamilyName(u16);

/// How many distinct family names one process can intern.
const MAX_FAMILY_NAMES: usize = 1024;

/// Every family name interned so far, in first-use order. Set once per slot,
/// so reading a name (once per eligibility row when tables are written) takes
/// no lock; only interning a new name does.
static FAMILY_NAMES: [std::sync::OnceLock<&'static str>; MAX_FAMILY_NAMES] = [const { std::sync::OnceLock::new() }; MAX_FAMILY_NAMES];
static INTERNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl FamilyName {
    /// The interned name (a family's `NAME`).
    pub fn of(name: &'static str) -> Self {
        let find = || FAMILY_NAMES.iter().map_while(|slot| slot.get()).position(|n| *n == name);
        let i = find().unwrap_or_else(|| {
            let _one_at_a_time = INTERNING.lock().unwrap_or_else(|e| e.into_inner());
            find().unwrap_or_else(|| {
                let next = FAMILY_NAMES.iter().position(|slot| slot.get().is_none()).expect("fewer than 1,024 family names");
                let _ = FAMILY_NAMES[next].set(name);
                next
            })
        });
        FamilyName(i as u16)
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        FAMILY_NAMES[usize::from(self.0)].get().expect("an interned name")
    }
}

impl std::fmt::Debug for FamilyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl PartialOrd for FamilyName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By name, so that orders do not depend on which family was interned first.
impl Ord for FamilyName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Serialize for FamilyName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The constraint that kept a candidate from being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// The customer's contact cap.
    ContactCap,
    /// A coupling family, by its name (`stock`, `budget`, ...; see
    /// [`crate::families`]); a closed custom offer is the `custom_limit` family's.
    Family(FamilyName),
    /// Shipping costs more than the expected margin.
    ShippingCost,
    /// The candidate has no positive value.
    NoValue,
    /// A volume rule, by its index in `Problem::rules` (reason `rule:<rule_id>`).
    Rule(u32),
    /// A `max_per_customer` rule, by its index in `Problem::contact_rules` (reason `rule:<rule_id>`).
    ContactRule(u32),
    /// A conflict with another offer of the customer (reason `conflict`).
    Conflict,
}

impl Binding {
    /// The family named `name` (a family's `NAME`).
    pub fn family(name: &'static str) -> Self {
        Binding::Family(FamilyName::of(name))
    }

    /// Machine-readable name used after `not_selected:` (a rule's names its id).
    pub fn code(self, problem: &Problem) -> std::borrow::Cow<'static, str> {
        match self {
            Binding::ContactCap => "contact_cap".into(),
            Binding::Family(name) => name.as_str().into(),
            Binding::ShippingCost => "shipping_cost".into(),
            Binding::NoValue => NO_VALUE.into(),
            Binding::Rule(i) => format!("{}:{}", rules::NAME, problem.rules[i as usize].id).into(),
            Binding::ContactRule(i) => format!("{}:{}", rules::NAME, problem.contact_rules[i as usize].id).into(),
            Binding::Conflict => "conflict".into(),
        }
    }

    /// The binding of a contact-policy row.
    pub fn of_policy(row: PolicyRow) -> Self {
        match row {
            PolicyRow::Rule(i) => Binding::ContactRule(i),
            PolicyRow::Conflict(_) => Binding::Conflict,
        }
    }
}

/// Why a pair is or is not eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Reason {
    /// Served to the customer.
    Eligible,
    /// Excluded by a hard rule before optimisation.
    Excluded(ExclusionRule),
    /// A candidate the plan does not serve.
    NotSelected(Binding),
}

impl Reason {
    /// The machine-readable reason code of the spec.
    pub fn code(self, problem: &Problem) -> String {
        match self {
            Reason::Eligible => "eligible".to_string(),
            Reason::Excluded(r) => r.code(problem).into_owned(),
            Reason::NotSelected(b) => format!("{NOT_SELECTED}{}", b.code(problem)),
        }
    }
}

/// The prefix of the reason code of a candidate the plan does not serve
/// (`not_selected:<constraint>`).
pub const NOT_SELECTED: &str = "not_selected:";
/// The constraint code of a pair with no positive value ([`Binding::NoValue`]).
pub const NO_VALUE: &str = "no_value";

/// Whether a pair the plan does not serve, with reason code `reason`, may
/// still be served when the plan's selection is set aside (the decision
/// service's fallback): a candidate one of the plan's limits kept out, never
/// a pair a hard rule excluded, one worth nothing to serve, nor one of a
/// custom offer the plan left closed (the SKU-proliferation limit decides
/// which customized variants exist at all).
pub fn servable_without_the_plan(reason: &str) -> bool {
    reason.strip_prefix(NOT_SELECTED).is_some_and(|why| why != NO_VALUE && why != custom_limit::NAME)
}

/// One row of the eligibility output: what the plan decided for one uptake
/// pair. The pair itself is not repeated here: row `i` of
/// [`Plan::eligibility`] is uptake row `i` (its customer, offer and `p`; its
/// expected value is [`Problem::expected_value`]`(i)`), read together with
/// [`Plan::rows`]. Why: the rows are most of a plan's memory at scale (80M
/// at 10M customers), 24 bytes each this way, 56 with the pair, its value
/// and a flag for `reason == Eligible`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EligibilityRow {
    /// LP exposure (0 for excluded pairs).
    pub x: f64,
    /// Rank among the customer's eligible offers (1 = best), by expected value.
    pub rank: Option<u32>,
    /// Why; [`Reason::Eligible`] is the rounded decision served.
    pub reason: Reason,
}

impl EligibilityRow {
    /// Whether the pair is served (the rounded decision).
    pub fn eligible(&self) -> bool {
        self.reason == Reason::Eligible
    }
}

impl Plan {
    /// Each uptake pair of `problem` (the one the plan was derived from) with
    /// its eligibility row, in uptake order; as many as the shorter of the
    /// two has (the checker, `feasibility::check_plan`, says when they differ).
    pub fn rows<'a>(&'a self, problem: &'a Problem) -> impl Iterator<Item = (&'a Uptake, &'a EligibilityRow)> + 'a {
        problem.uptake.iter().zip(&self.eligibility)
    }
}

/// Stock held at a warehouse for a tier's expected offer demand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// The warehouse.
    pub warehouse: WarehouseIx,
    /// The SKU.
    pub sku: SkuIx,
    /// The tier.
    pub tier: TierIx,
    /// Units reserved.
    pub units: f64,
}

/// One SKU line of a warehouse's kitting and pre-picking order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PickPriority {
    /// The warehouse.
    pub warehouse: WarehouseIx,
    /// Rank within the warehouse (1 = first); shared by the lines of one offer.
    pub rank: u32,
    /// The offer to kit.
    pub offer: OfferIx,
    /// The SKU to pick.
    pub sku: SkuIx,
    /// Expected units to pick.
    pub units: f64,
    /// The ranking score (see the module docs).
    pub priority_score: f64,
}

/// The value of one more unit of demand served in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BidPrice {
    /// The zone.
    pub zone: ZoneIx,
    /// The SKU.
    pub sku: SkuIx,
    /// The time bucket of delivery (0 without `bucket_days`).
    pub bucket: BucketIx,
    /// Price per unit.
    pub price: f64,
}

/// How far the rounded (served) plan is from the LP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundingReport {
    /// Weighted expected margin of the LP exposures.
    pub offer_value_lp: f64,
    /// Weighted expected margin of the rounded plan.
    pub offer_value_rounded: f64,
    /// `(rounded - lp) / max(1, |lp|)`.
    pub offer_value_relative_change: f64,
    /// Expected discount cost of the rounded plan.
    pub budget_used_rounded: f64,
    /// Largest excess over a budget in currency (0 when within).
    pub budget_excess: f64,
    /// Largest excess of expected acceptances over an offer's redemption cap.
    pub max_redemption_excess: f64,
    /// Largest excess of expected acceptances over a zone's delivery capacity.
    pub max_delivery_excess: f64,
    /// Smallest exposure-parity ratio over fair offers in the rounded plan.
    pub min_fairness_ratio: Option<f64>,
    /// Expected offer units of the served plan beyond what its shipments carry
    /// to each (zone, SKU).
    pub units_beyond_supply: f64,
    /// The spec's objective of the served plan (`eligible` as `x`, its shipments).
    #[serde(default)]
    pub objective_served: f64,
    /// What serving 0/1 decisions costs against the solver's objective:
    /// `objective - objective_served`.
    #[serde(default)]
    pub rounding_cost: f64,
    /// Pairs the rounding took and dropped again to keep a coupling limit.
    #[serde(default)]
    pub pairs_dropped: usize,
}

/// One volume rule's figures in [`Kpis::rules`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleKpi {
    /// `rule_id`.
    pub rule_id: String,
    /// `max_total` or `min_total`.
    pub kind: RuleKind,
    /// What it sums.
    pub measure: Measure,
    /// Its bound.
    pub bound: f64,
    /// The measure at the LP exposures.
    pub measured: f64,
    /// The measure on the served plan (`eligible`).
    pub measured_served: f64,
    /// Room left before the bound at the LP exposures (negative: violated, a soft rule).
    pub slack: f64,
    /// Objective gained per unit the bound is relaxed (0 when not binding).
    pub shadow_price: f64,
    /// `penalty * violation` at the LP exposures (soft rules).
    pub penalty_paid: f64,
}

/// One contact policy's figures in [`Kpis::contact_policies`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyKpi {
    /// `rule_id` or `conflict_id`.
    pub id: String,
    /// `max_per_customer` or `conflict`.
    pub kind: String,
    /// Uptake pairs the contact history excluded.
    pub excluded_by_history: usize,
    /// Customer rows that can bind: customers with more candidates than the
    /// rule leaves room for, or conflicting pairs of one customer's candidates.
    pub rows: usize,
    /// Rows with a positive shadow price.
    pub binding: usize,
    /// Objective gained if each of its rows were relaxed by one unit (the sum of their shadow prices).
    pub shadow_price: f64,
}

/// One channel's figures in [`Kpis::channels`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelKpi {
    /// Exposures `sum x` of the channel's offers.
    pub contacts: f64,
    /// Their cost, `sum cost_per_contact * x`.
    pub contact_cost: f64,
    /// Expected acceptances `sum p x`.
    pub accepts: f64,
    /// Pairs the served plan shows on the channel.
    pub served_contacts: usize,
}

/// Reads a figure that JSON wrote as `null` because it was infinite (a gap
/// or bound a MIP stopped before HiGHS had one: serde_json writes every
/// non-finite number as `null`) as infinite. Why: such a `kpis.json` or
/// manifest could be written but never read back, which made the version,
/// and `plans list` with it, unreadable.
pub fn infinite_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// The plan's key figures for planners (`kpis.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    /// The spec's objective value of the LP/MIP solution.
    pub objective: f64,
    /// Expected margin (unweighted) of the LP exposures.
    pub expected_margin: f64,
    /// Expected acceptances of the LP exposures.
    pub expected_accepts: f64,
    /// Expected discount cost of the LP exposures.
    pub budget_used: f64,
    /// Served share of baseline demand (1 when there is none).
    pub fill_rate_baseline: f64,
    /// Unmet baseline units.
    pub unmet_baseline_units: f64,
    /// Exposure-parity ratio per fair offer id (min over ordered group pairs).
    pub fairness_ratio: BTreeMap<String, f64>,
    /// Solver name.
    pub solver: String,
    /// Solve status.
    pub status: String,
    /// Relative gap between the objective and the proven bound (infinite
    /// when none was proven: see [`infinite_if_null`]).
    #[serde(deserialize_with = "infinite_if_null")]
    pub gap: f64,
    /// Gap on the offers' own value, `(bound - objective) / max(1, |bound -
    /// objective_without_offers|)`: the figure stopping rules use.
    #[serde(default, deserialize_with = "infinite_if_null")]
    pub offers_gap: f64,
    /// The optimum with no candidate pairs (baseline shipping only).
    #[serde(default)]
    pub objective_without_offers: f64,
    /// Proven upper bound on the optimum (infinite when none was proven).
    #[serde(deserialize_with = "infinite_if_null")]
    pub bound: f64,
    /// Seconds in the solver.
    pub solve_seconds: f64,
    /// Seconds building the model.
    pub build_seconds: f64,
    /// Dual iterations (the decomposed solvers); absent for the exact one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// Seconds loading the scenario (filled in by the caller that loaded it).
    pub load_seconds: f64,
    /// Model variables.
    pub variables: usize,
    /// Model constraints.
    pub constraints: usize,
    /// Candidate pairs.
    pub candidates: usize,
    /// Uptake pairs excluded by a hard rule.
    pub excluded: usize,
    /// Pairs served (eligible after rounding).
    pub eligible: usize,
    /// Binding constraints per family (rows with a positive shadow price).
    pub binding_constraints: BTreeMap<String, usize>,
    /// Per channel (model version 2): contacts, their cost and expected
    /// acceptances of the LP exposures, and the contacts the served plan makes.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelKpi>,
    /// Per volume rule (model version 2), in `rules.csv` order.
    #[serde(default)]
    pub rules: Vec<RuleKpi>,
    /// Per `max_per_customer` rule (in `rules.csv` order), then per conflict
    /// (model version 2).
    #[serde(default)]
    pub contact_policies: Vec<PolicyKpi>,
    /// Rounded plan versus LP.
    pub rounding: RoundingReport,
}

/// A complete plan, with every id as an index into the [`Problem`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One row per uptake pair, in uptake-file order: row `i` is uptake row `i`.
    pub eligibility: Vec<EligibilityRow>,
    /// Reservations per warehouse, SKU and tier.
    pub reservations: Vec<Reservation>,
    /// Bundle pick priorities per warehouse.
    pub pick_priorities: Vec<PickPriority>,
    /// Bid prices per zone and SKU.
    pub bid_prices: Vec<BidPrice>,
    /// KPIs.
    pub kpis: Kpis,
    /// The served plan's shipments: with [`Plan::unmet`], the certificate that
    /// `eligible` keeps stock, lane capacity and the zone balance
    /// ([`crate::feasibility::check_served`]).
    pub shipments: Vec<Flow>,
    /// Unmet baseline of the served plan, per row of `Problem::baseline`.
    pub unmet: Vec<f64>,
}

/// Derives every plan output from a solved allocation.
pub fn derive_plan(problem: &Problem, network: &Network, cands: &Candidates, alloc: &Allocation) -> Plan {
    derive_plan_with(problem, network, cands, alloc, &no_extra)
}

/// [`derive_plan`] with coupling families beyond the standard ones (their
/// names become reasons and binding-row counts).
pub fn derive_plan_with(problem: &Problem, network: &Network, cands: &Candidates, alloc: &Allocation, extra: &ExtraFamilies) -> Plan {
    let scope = Scope::new(problem, network, cands, CustomLimitMode::Off);
    let layout = Layout::new(&scope, extra(&scope));
    let row_prices = layout.prices_from(problem, &alloc.prices);
    let policy = cands.customer_rows(problem);
    let mut served = served::serve(problem, cands, alloc, &layout, &policy, served::Fill::Exposed);
    if !served.over.is_empty() {
        if let Some(exact) = served::all_or_nothing(problem, network, cands, alloc, &layout, &served) {
            served = exact;
        }
    }
    let eligible = &served.eligible;
    let shipped = Shipments::new(problem, &served);
    // The eligibility rows, the KPIs and the network side's tables at once:
    // each reads the served plan only, in its own order (the outputs do not
    // depend on the threads). Why: the KPIs and the two tables each run on
    // one core (0.7 s at 1M customers), beside the rows' parallel steps.
    let (eligibility, (kpis, (reservations, pick_priorities))) = rayon::join(
        || eligibility_rows(problem, network, cands, alloc, &served, &layout, &row_prices, &policy),
        || {
            rayon::join(
                || kpis(problem, cands, alloc, &served, &shipped, &layout, &row_prices, &policy),
                || rayon::join(|| reservations(problem, network, cands, eligible, &shipped), || pick_priorities(problem, cands, eligible, &shipped)),
            )
        },
    );
    let mut bid_prices: Vec<BidPrice> = alloc
        .prices
        .bid_price
        .iter()
        .map(|(&(zone, sku, bucket), &price)| BidPrice { zone, sku, bucket, price: clean(price) })
        .collect();
    bid_prices.sort_by_key(|b| (b.zone, b.sku, b.bucket));
    Plan { eligibility, reservations, pick_priorities, bid_prices, kpis, shipments: served.flows, unmet: served.unmet }
}

/// Zeroes solver noise so that outputs are stable.
fn clean(v: f64) -> f64 {
    if v.abs() < PRICE_EPS {
        0.0
    } else {
        v
    }
}

/// The served plan's shipments indexed for routing demand to warehouses.
struct Shipments {
    /// (zone, SKU) -> [(warehouse, lane transit days, units)].
    into: HashMap<(ZoneIx, SkuIx), Vec<(WarehouseIx, u32, f64)>>,
    /// Baseline demand the plan serves (demand minus unmet), per (zone, SKU).
    served_baseline: HashMap<(ZoneIx, SkuIx), f64>,
}

impl Shipments {
    fn new(problem: &Problem, served: &Served) -> Self {
        let mut into: HashMap<(ZoneIx, SkuIx), Vec<(WarehouseIx, u32, f64)>> = HashMap::new();
        for f in &served.flows {
            let lane = &problem.lanes[f.lane as usize];
            into.entry((lane.zone, f.sku)).or_default().push((lane.warehouse, lane.transit_days, f.units));
        }
        let mut served_baseline: HashMap<(ZoneIx, SkuIx), f64> = HashMap::new();
        for (i, b) in problem.baseline.iter().enumerate() {
            *served_baseline.entry((b.zone, b.sku)).or_default() += b.units - served.unmet[i];
        }
        Shipments { into, served_baseline }
    }

    /// Total units shipped into (zone, SKU).
    fn total(&self, zone: ZoneIx, sku: SkuIx) -> f64 {
        self.into.get(&(zone, sku)).map_or(0.0, |v| v.iter().map(|s| s.2).sum())
    }

    /// Splits `units` of demand at (zone, SKU) over warehouses in proportion to
    /// the LP's shipments; with none, sends it all along `fallback`.
    fn route(&self, zone: ZoneIx, sku: SkuIx, units: f64, fallback: Option<(WarehouseIx, u32)>, mut sink: impl FnMut(WarehouseIx, u32, f64)) {
        let total = self.total(zone, sku);
        match self.into.get(&(zone, sku)) {
            Some(v) if total > 0.0 => {
                for &(w, transit, shipped) in v {
                    sink(w, transit, units * shipped / total);
                }
            }
            _ => {
                if let Some((w, transit)) = fallback {
                    sink(w, transit, units);
                }
            }
        }
    }
}

/// The cheapest usable lane bringing `sku` into `zone` from a listing warehouse.
fn cheapest_source(problem: &Problem, network: &Network, zone: ZoneIx, sku: SkuIx) -> Option<(WarehouseIx, u32)> {
    network.lanes_into_zone[zone as usize]
        .iter()
        .map(|&l| &problem.lanes[l as usize])
        .filter(|lane| network.stock_index.contains_key(&(lane.warehouse, sku)))
        .min_by(|a, b| a.cost_per_unit.total_cmp(&b.cost_per_unit))
        .map(|lane| (lane.warehouse, lane.transit_days))
}

#[allow(clippy::too_many_arguments)]
fn eligibility_rows(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    alloc: &Allocation,
    served: &Served,
    layout: &Layout,
    row_prices: &[f64],
    policy: &CustomerRows,
) -> Vec<EligibilityRow> {
    let eligible = &served.eligible;
    let charges = ChargeModel::new(problem, network, policy, &alloc.prices, layout, row_prices);
    // What each uptake row is: a candidate, an exclusion, or neither.
    let sources = RowSources::new(problem.uptake.len(), cands);
    let expected_value_of = |k: usize| problem.expected_value(cands.uptake_row[k] as usize);
    // A served candidate's rank among its customer's served offers: by
    // expected value (highest first), then by offer. Counted, not sorted, so
    // that every row is built on its own, in parallel.
    let rank = |k: usize| {
        let (value, offer) = (expected_value_of(k), cands.offer[k]);
        let before = cands
            .of_customer(cands.customer[k])
            .filter(|&j| j != k && eligible[j])
            .filter(|&j| expected_value_of(j).total_cmp(&value).then(offer.cmp(&cands.offer[j])).is_gt())
            .count();
        before as u32 + 1
    };
    let candidate_row = |k: usize| {
        let reason = if eligible[k] {
            Reason::Eligible
        } else if let Some(&cause) = served.dropped.get(&k) {
            // Selected by the solver, turned away to keep this limit.
            Reason::NotSelected(match cause {
                DropCause::Row(family, row) if family == rules::NAME => Binding::Rule(row as u32),
                DropCause::Row(family, _) => Binding::family(family),
                DropCause::Policy(row) => Binding::of_policy(row),
            })
        } else {
            // The charges of a pair left out read every family's prices
            // (most of this function's time at scale).
            Reason::NotSelected(charges.binding(problem, cands, alloc, eligible, k))
        };
        EligibilityRow { x: clean(alloc.x[k]).clamp(0.0, 1.0), rank: eligible[k].then(|| rank(k)), reason }
    };
    let unserved_row = |reason: Reason| EligibilityRow { x: 0.0, rank: None, reason };
    let row = |i: usize| match sources.of(i) {
        RowSource::Candidate(k) => candidate_row(k),
        RowSource::Excluded(e) => unserved_row(Reason::Excluded(cands.excluded[e].1)),
        // A pair with p = 0 that passed every rule is no candidate (were
        // validation to let it through; it does not): it has no value.
        RowSource::None => unserved_row(Reason::NotSelected(Binding::NoValue)),
    };
    // One row per uptake row, in its order, each built once where it is
    // stored (a vector collected from an indexed parallel iterator is written
    // in place). Why: the rows are most of the plan's memory at scale (80M at
    // 10M customers); a vector filled first and overwritten after paid for
    // every page twice, on one core.
    (0..problem.uptake.len()).into_par_iter().map(row).collect()
}

/// What an uptake row is to the candidates.
enum RowSource {
    /// Candidate `k`.
    Candidate(usize),
    /// Entry `e` of `Candidates::excluded`.
    Excluded(usize),
    /// Neither: a pair with no chance of acceptance.
    None,
}

/// Each uptake row's [`RowSource`], packed in a `u32`: a candidate's index,
/// or an exclusion's with the top bit set.
struct RowSources {
    packed: Vec<u32>,
}

impl RowSources {
    const EXCLUDED: u32 = 1 << 31;
    const NONE: u32 = u32::MAX;

    fn new(rows: usize, cands: &Candidates) -> Self {
        assert!(cands.len() < Self::EXCLUDED as usize && cands.excluded.len() < Self::EXCLUDED as usize - 1, "more pairs than an eligibility row's source can index");
        let mut packed = vec![Self::NONE; rows];
        for (e, &(row, _)) in cands.excluded.iter().enumerate() {
            packed[row as usize] = Self::EXCLUDED | e as u32;
        }
        for (k, &row) in cands.uptake_row.iter().enumerate() {
            packed[row as usize] = k as u32;
        }
        RowSources { packed }
    }

    fn of(&self, row: usize) -> RowSource {
        match self.packed[row] {
            Self::NONE => RowSource::None,
            v if v & Self::EXCLUDED != 0 => RowSource::Excluded((v & !Self::EXCLUDED) as usize),
            k => RowSource::Candidate(k as usize),
        }
    }
}

/// Reduced-cost charges of candidates, per constraint family.
struct ChargeModel<'a> {
    /// Per (offer, zone), from `network_at[offer × zones + zone]` to the next
    /// cell's: each item's quantity, the bid price of its units there and
    /// that price's split as [shipping, stock, lane capacity] fractions. Why
    /// per cell: a pair left out read two hash maps per item (most of the
    /// eligibility rows' time at 10M customers); the table has an entry per
    /// offer, zone and item, as `charges` has one per offer, zone and family.
    network_terms: Vec<(f64, f64, [f64; 3])>,
    network_at: Vec<usize>,
    zones: usize,
    /// Every family's charge per cell.
    charges: Charges,
    /// The families charged from their coefficients (all but the network's three),
    /// by index in layout order, with their reasons.
    charged: Vec<(usize, Binding)>,
    layout: &'a Layout,
    /// The volume rules' rows and their prices: charged row by row, so a
    /// reason names the rule.
    rule_rows: std::ops::Range<usize>,
    rule_prices: Vec<f64>,
    /// The customers' contact-policy rows (their prices are `ShadowPrices::customer_rows`).
    policy: &'a CustomerRows,
    /// The reasons of the families charged apart (interned once, not per pair).
    stock: Binding,
    lane: Binding,
    custom_limit: Binding,
}

impl<'a> ChargeModel<'a> {
    fn new(problem: &Problem, network: &Network, policy: &'a CustomerRows, prices: &ShadowPrices, layout: &'a Layout, row_prices: &[f64]) -> Self {
        let mut zone_split: HashMap<(ZoneIx, SkuIx, BucketIx), [f64; 3]> = HashMap::new();
        let buckets = problem.buckets().count();
        for &(zone, sku, bucket) in prices.bid_price.keys() {
            // Along the lane with the lowest full cost (shipping + stock + lane prices),
            // the bid price is made of exactly these three parts at an optimum.
            let best = network.lanes_into_zone[zone as usize]
                .iter()
                .filter_map(|&l| {
                    let lane = &problem.lanes[l as usize];
                    network.stock_index.get(&(lane.warehouse, sku))?;
                    let stock = prices.stock_from(lane.warehouse, sku, bucket, buckets);
                    let cap = prices.lane_capacity[l as usize].max(0.0);
                    Some([lane.cost_per_unit.max(0.0), stock, cap])
                })
                .min_by(|a, b| a.iter().sum::<f64>().total_cmp(&b.iter().sum::<f64>()));
            if let Some(parts) = best {
                let total: f64 = parts.iter().sum();
                if total > 0.0 {
                    zone_split.insert((zone, sku, bucket), parts.map(|p| p / total));
                }
            }
        }
        let zones = problem.zones.len();
        let (mut network_terms, mut network_at) = (Vec::new(), vec![0]);
        for (o, offer) in problem.offers.iter().enumerate() {
            let bucket = layout.balance.offer_bucket(o as OfferIx);
            for zone in 0..zones as ZoneIx {
                for item in &offer.items {
                    let key = (zone, item.sku, bucket);
                    let bid = prices.bid_price.get(&key).copied().unwrap_or(0.0).max(0.0);
                    network_terms.push((item.qty, bid, zone_split.get(&key).copied().unwrap_or([0.0, 1.0, 0.0])));
                }
                network_at.push(network_terms.len());
            }
        }
        let charges = layout.charges(row_prices);
        let apart = [balance::NAME, stock::NAME, lane::NAME, rules::NAME];
        let charged = layout.families().enumerate().filter(|(_, (_, f))| !apart.contains(&f.name())).map(|(i, (_, f))| (i, Binding::family(f.name()))).collect();
        let rule_rows = layout.rows_of(rules::NAME);
        let rule_prices = row_prices[rule_rows.clone()].to_vec();
        ChargeModel {
            network_terms,
            network_at,
            zones,
            charges,
            charged,
            layout,
            rule_rows,
            rule_prices,
            policy,
            stock: Binding::family(stock::NAME),
            lane: Binding::family(lane::NAME),
            custom_limit: Binding::family(custom_limit::NAME),
        }
    }

    /// The family that charges candidate `k` most (`eligible`: the served plan).
    fn binding(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, eligible: &[bool], k: usize) -> Binding {
        let o = cands.offer[k];
        let customer = cands.customer[k];
        let c = customer as usize;
        if !alloc.offer_open[o as usize] {
            return self.custom_limit;
        }
        let at_cap = || problem.contact_cap_of(customer).is_some_and(|cap| cands.of_customer(customer).filter(|&j| eligible[j]).count() >= cap as usize);
        if alloc.x[k] >= ROUND_UP_AT - 1e-9 && at_cap() {
            // Selected by the LP, cut by the customer's cap when rounding.
            return Binding::ContactCap;
        }
        if cands.value(problem, k) <= 0.0 {
            return Binding::NoValue;
        }
        let p = cands.p[k];
        let zone = problem.customers.zone[c];
        let prices = &alloc.prices;
        let mut charge = LargestCharge(Binding::ContactCap, prices.contact_cap[c]);
        // The customer's contact-policy rows this pair is a member of.
        for r in self.policy.rows_with(&cands.customer_start, c, k) {
            charge.offer(Binding::of_policy(self.policy.kind[r]), prices.customer_rows.get(r).copied().unwrap_or(0.0));
        }
        // The network families: the bid price of the offer's units, split along
        // the cheapest lane into shipping, stock and lane capacity.
        let (mut ship, mut stock, mut lane) = (0.0, 0.0, 0.0);
        let cell = o as usize * self.zones + zone as usize;
        for &(qty, bid, split) in &self.network_terms[self.network_at[cell]..self.network_at[cell + 1]] {
            let amount = qty * p * bid;
            ship += amount * split[0];
            stock += amount * split[1];
            lane += amount * split[2];
        }
        charge.offer(self.stock, stock);
        charge.offer(self.lane, lane);
        // Every other family: its coefficients on this candidate's cells at its prices.
        let n = self.charges.families;
        let groups = problem.groups.len();
        let slot = problem.customers.group[c].map_or(groups, |g| g as usize);
        let accept = (o as usize * self.layout.zones + zone as usize) * n;
        let exposure = (o as usize * self.layout.slots + slot) * n;
        let accept_value = cands.accept_value_of(problem, k);
        let value = accept_value * p;
        let per_value = o as usize * n;
        for &(f, name) in &self.charged {
            let amount = self.charges.accept[accept + f] * p + self.charges.exposure[exposure + f] + self.charges.value[per_value + f] * value;
            charge.offer(name, amount);
        }
        // Volume rules, one by one (a rule's row has coefficients on one of
        // acceptances, exposures or acceptance value, and once per cell).
        if !self.rule_rows.is_empty() {
            let coefs = self.layout.pair_coefs(o as usize, zone as usize, slot, p, accept_value);
            for (r, a) in coefs.filter(|(r, _)| self.rule_rows.contains(r)) {
                let i = r - self.rule_rows.start;
                charge.offer(Binding::Rule(i as u32), a * self.rule_prices[i]);
            }
        }
        let LargestCharge(family, amount) = charge;
        if amount > PRICE_EPS && amount >= ship {
            family
        } else {
            Binding::ShippingCost
        }
    }
}

/// The largest charge offered so far and its family; of equal charges the
/// last offered. Why not a list and `max_by` (which also keeps the last of
/// equals): one list per pair left out, 50M at 10M customers.
struct LargestCharge(Binding, f64);

impl LargestCharge {
    fn offer(&mut self, family: Binding, amount: f64) {
        if amount.total_cmp(&self.1).is_ge() {
            *self = LargestCharge(family, amount);
        }
    }
}

fn reservations(problem: &Problem, network: &Network, cands: &Candidates, eligible: &[bool], shipped: &Shipments) -> Vec<Reservation> {
    let n_tiers = problem.tiers.len();
    // Rounded offer demand per (zone, SKU), per tier.
    let mut demand: BTreeMap<(ZoneIx, SkuIx), Vec<f64>> = BTreeMap::new();
    for k in (0..cands.len()).filter(|&k| eligible[k]) {
        let c = cands.customer[k] as usize;
        let zone = problem.customers.zone[c];
        let tier = problem.customers.tier[c] as usize;
        for item in &problem.offers[cands.offer[k] as usize].items {
            demand.entry((zone, item.sku)).or_insert_with(|| vec![0.0; n_tiers])[tier] += item.qty * cands.p[k];
        }
    }
    // Route both to warehouses.
    let mut wanted: BTreeMap<(WarehouseIx, SkuIx), Vec<f64>> = BTreeMap::new();
    let mut baseline_at: HashMap<(WarehouseIx, SkuIx), f64> = HashMap::new();
    for (&(zone, sku), units) in &shipped.served_baseline {
        shipped.route(zone, sku, *units, None, |w, _, u| *baseline_at.entry((w, sku)).or_default() += u);
    }
    for (&(zone, sku), per_tier) in &demand {
        let fallback = cheapest_source(problem, network, zone, sku);
        for (tier, &units) in per_tier.iter().enumerate().filter(|(_, u)| **u > 0.0) {
            shipped.route(zone, sku, units, fallback, |w, _, u| {
                wanted.entry((w, sku)).or_insert_with(|| vec![0.0; n_tiers])[tier] += u;
            });
        }
    }
    let mut out = Vec::new();
    for ((w, sku), per_tier) in wanted {
        let available = network
            .stock_index
            .get(&(w, sku))
            .map_or(0.0, |&i| problem.stock[i].available());
        let mut left = (available - baseline_at.get(&(w, sku)).copied().unwrap_or(0.0)).max(0.0);
        for (tier, want) in per_tier.into_iter().enumerate() {
            let units = want.min(left);
            if units > 1e-9 {
                out.push(Reservation { warehouse: w, sku, tier: tier as TierIx, units });
                left -= units;
            }
        }
    }
    out
}

fn pick_priorities(problem: &Problem, cands: &Candidates, eligible: &[bool], shipped: &Shipments) -> Vec<PickPriority> {
    let promise = problem
        .policy
        .promise_days
        .unwrap_or_else(|| problem.lanes.iter().map(|l| l.transit_days).max().unwrap_or(0))
        .max(1) as f64;
    #[derive(Default)]
    struct Kit {
        value: f64,
        units: f64,
        transit_units: f64,
        per_sku: BTreeMap<SkuIx, f64>,
    }
    let mut kits: BTreeMap<(WarehouseIx, OfferIx), Kit> = BTreeMap::new();
    for k in (0..cands.len()).filter(|&k| eligible[k]) {
        let offer = &problem.offers[cands.offer[k] as usize];
        if !offer.needs_kitting() {
            continue;
        }
        let zone = problem.customers.zone[cands.customer[k] as usize];
        let units_per_accept: f64 = offer.items.iter().map(|i| i.qty).sum();
        let value = cands.value(problem, k);
        for item in &offer.items {
            let units = item.qty * cands.p[k];
            shipped.route(zone, item.sku, units, None, |w, transit, u| {
                let kit = kits.entry((w, cands.offer[k])).or_default();
                kit.value += value * (item.qty / units_per_accept) * (u / units);
                kit.units += u;
                kit.transit_units += u * transit as f64;
                *kit.per_sku.entry(item.sku).or_default() += u;
            });
        }
    }
    let mut by_warehouse: BTreeMap<WarehouseIx, Vec<(OfferIx, f64, BTreeMap<SkuIx, f64>)>> = BTreeMap::new();
    for ((w, o), kit) in kits {
        if kit.units <= 0.0 {
            continue;
        }
        let urgency = 1.0 + (kit.transit_units / kit.units) / promise;
        let score = kit.value / kit.units * urgency;
        by_warehouse.entry(w).or_default().push((o, score, kit.per_sku));
    }
    let mut out = Vec::new();
    for (w, mut offers) in by_warehouse {
        offers.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (i, (offer, score, per_sku)) in offers.into_iter().enumerate() {
            for (sku, units) in per_sku {
                out.push(PickPriority { warehouse: w, rank: i as u32 + 1, offer, sku, units, priority_score: score });
            }
        }
    }
    out
}

/// Per volume rule: its measure on the LP and on the served plan, its slack,
/// shadow price and the penalty it costs.
fn rule_kpis(problem: &Problem, cands: &Candidates, x: &[f64], eligible: &[bool], layout: &Layout, row_prices: &[f64]) -> Vec<RuleKpi> {
    let at = layout.rows_of(rules::NAME).start;
    problem
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let measured = rules::measure(problem, cands, rule, &|k| x[k]);
            RuleKpi {
                rule_id: rule.id.clone(),
                kind: rule.kind,
                measure: rule.measure,
                bound: rule.bound,
                measured,
                measured_served: rules::measure(problem, cands, rule, &|k| if eligible[k] { 1.0 } else { 0.0 }),
                slack: rules::slack(rule, measured),
                shadow_price: row_prices.get(at + i).copied().unwrap_or(0.0),
                penalty_paid: rule.penalty.map_or(0.0, |p| p * rules::violation(rule, measured)),
            }
        })
        .collect()
}

/// Per channel: contacts, cost and expected acceptances of the exposures `x`,
/// and the pairs the served plan shows.
fn channel_kpis(problem: &Problem, cands: &Candidates, x: &[f64], eligible: &[bool]) -> BTreeMap<String, ChannelKpi> {
    let mut per = vec![ChannelKpi::default(); problem.channels.len()];
    for k in 0..cands.len() {
        let offer = &problem.offers[cands.offer[k] as usize];
        let kpi = &mut per[offer.channel as usize];
        kpi.contacts += x[k];
        kpi.contact_cost += offer.cost_per_contact * x[k];
        kpi.accepts += cands.p[k] * x[k];
        kpi.served_contacts += usize::from(eligible[k]);
    }
    problem.channels.iter().cloned().zip(per).collect()
}

/// Exposure-parity ratio of one fair offer: min over ordered group pairs of
/// `rate(g) / rate(h)`, where a rate is the mean exposure over the group's candidates.
pub fn fairness_ratios(problem: &Problem, cands: &Candidates, exposure: impl Fn(usize) -> f64) -> BTreeMap<OfferIx, f64> {
    let mut out = BTreeMap::new();
    for fg in cands.fairness_groups(problem) {
        let rates: Vec<f64> = fg
            .groups
            .iter()
            .map(|(_, ks)| ks.iter().map(|&k| exposure(k as usize)).sum::<f64>() / ks.len() as f64)
            .collect();
        let max = rates.iter().copied().fold(0.0, f64::max);
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        out.insert(fg.offer, if max <= 0.0 { 1.0 } else { min / max });
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn kpis(
    problem: &Problem,
    cands: &Candidates,
    alloc: &Allocation,
    served: &Served,
    shipped: &Shipments,
    layout: &Layout,
    row_prices: &[f64],
    policy: &CustomerRows,
) -> Kpis {
    let offer_of = |k: usize| &problem.offers[cands.offer[k] as usize];
    let x = &alloc.x;
    let eligible = &served.eligible;
    let rounded = |k: usize| if eligible[k] { 1.0 } else { 0.0 };
    let baseline: f64 = problem.baseline.iter().map(|b| b.units).sum();
    let unmet: f64 = alloc.unmet.iter().sum();

    // The sums over every candidate, of the LP's plan and the rounded one, in
    // one pass (a pass each was seconds at 10M customers); each is still
    // added in candidate order.
    let [offer_value_lp, offer_value_rounded, budget_used_rounded, expected_margin, expected_accepts, budget_used] = (0..cands.len()).fold([0.0; 6], |mut sum, k| {
        let (value, p, cost, served) = (cands.value(problem, k), cands.p[k], offer_of(k).discount_cost, rounded(k));
        sum[0] += value * x[k];
        sum[1] += value * served;
        sum[2] += cost * p * served;
        sum[3] += cands.accept_value_of(problem, k) * p * x[k];
        sum[4] += p * x[k];
        sum[5] += cost * p * x[k];
        sum
    });

    // Rounded plan vs LP, constraint by constraint.
    let mut accepts_per_offer = vec![0.0; problem.offers.len()];
    let mut accepts_per_zone = vec![0.0; problem.zones.len()];
    let mut units_rounded: HashMap<(ZoneIx, SkuIx), f64> = HashMap::new();
    for k in (0..cands.len()).filter(|&k| eligible[k]) {
        let zone = problem.customers.zone[cands.customer[k] as usize];
        accepts_per_offer[cands.offer[k] as usize] += cands.p[k];
        accepts_per_zone[zone as usize] += cands.p[k];
        for item in &offer_of(k).items {
            *units_rounded.entry((zone, item.sku)).or_default() += item.qty * cands.p[k];
        }
    }
    let units_beyond_supply: f64 = units_rounded
        .iter()
        .map(|(&(z, s), &units)| {
            let need = units + shipped.served_baseline.get(&(z, s)).copied().unwrap_or(0.0);
            (need - shipped.total(z, s)).max(0.0)
        })
        .sum();
    let objective_served = crate::allocation::objective_at(problem, cands, &rounded, &served.flows, &served.unmet);
    let excess = |used: &[f64], cap: &dyn Fn(usize) -> Option<f64>| {
        used.iter().enumerate().filter_map(|(i, u)| cap(i).map(|c| (u - c).max(0.0))).fold(0.0, f64::max)
    };
    let rounding = RoundingReport {
        offer_value_lp,
        offer_value_rounded,
        offer_value_relative_change: (offer_value_rounded - offer_value_lp) / offer_value_lp.abs().max(1.0),
        budget_used_rounded,
        budget_excess: problem.policy.budget.map_or(0.0, |b| (budget_used_rounded - b).max(0.0)),
        max_redemption_excess: excess(&accepts_per_offer, &|o| problem.offers[o].max_redemptions),
        max_delivery_excess: excess(&accepts_per_zone, &|z| problem.zones[z].delivery_capacity),
        min_fairness_ratio: fairness_ratios(problem, cands, rounded).values().copied().reduce(f64::min),
        units_beyond_supply,
        objective_served,
        rounding_cost: alloc.report.objective - objective_served,
        pairs_dropped: served.dropped.len(),
    };

    let p = &alloc.prices;
    let mut binding = BTreeMap::new();
    let mut count = |name: &str, n: usize| {
        if n > 0 {
            *binding.entry(name.to_string()).or_insert(0) += n;
        }
    };
    count("contact_cap", p.contact_cap.iter().filter(|&&d| d > PRICE_EPS).count());
    count("contact_policy", p.customer_rows.iter().filter(|&&d| d > PRICE_EPS).count());
    for (at, family) in layout.families().filter(|(_, f)| f.name() != balance::NAME) {
        count(family.name(), row_prices[at..at + family.rows()].iter().filter(|&&d| d > PRICE_EPS).count());
    }
    if problem.policy.max_custom_offers.is_some() {
        count(custom_limit::NAME, alloc.offer_open.iter().zip(&problem.offers).filter(|(open, o)| o.custom && !**open).count());
    }

    let r = &alloc.report;
    Kpis {
        objective: r.objective,
        expected_margin,
        expected_accepts,
        budget_used,
        fill_rate_baseline: if baseline > 0.0 { 1.0 - unmet / baseline } else { 1.0 },
        unmet_baseline_units: unmet,
        fairness_ratio: fairness_ratios(problem, cands, |k| x[k])
            .into_iter()
            .map(|(o, r)| (problem.offers[o as usize].id.clone(), r))
            .collect(),
        solver: r.solver.clone(),
        status: r.status.as_str().to_string(),
        gap: r.gap,
        offers_gap: r.offers_gap,
        objective_without_offers: r.objective_without_offers,
        bound: r.bound,
        solve_seconds: r.solve_seconds,
        build_seconds: r.build_seconds,
        iterations: r.iterations,
        load_seconds: 0.0,
        variables: r.variables,
        constraints: r.constraints,
        candidates: cands.len(),
        excluded: cands.excluded.len(),
        eligible: eligible.iter().filter(|&&e| e).count(),
        binding_constraints: binding,
        channels: channel_kpis(problem, cands, x, eligible),
        rules: rule_kpis(problem, cands, x, eligible, layout, row_prices),
        contact_policies: policy_kpis(problem, cands, &alloc.prices, policy),
        rounding,
    }
}

/// Per `max_per_customer` rule and conflict: what history excluded, and its
/// customer rows, binding rows and their prices.
fn policy_kpis(problem: &Problem, cands: &Candidates, prices: &ShadowPrices, policy: &CustomerRows) -> Vec<PolicyKpi> {
    let mut out: Vec<PolicyKpi> = problem
        .contact_rules
        .iter()
        .map(|r| PolicyKpi { id: r.id.clone(), kind: "max_per_customer".into(), ..PolicyKpi::default() })
        .chain(problem.conflicts.iter().map(|c| PolicyKpi { id: c.id.clone(), kind: "conflict".into(), ..PolicyKpi::default() }))
        .collect();
    let rules = problem.contact_rules.len();
    let at = |row: PolicyRow| match row {
        PolicyRow::Rule(i) => i as usize,
        PolicyRow::Conflict(j) => rules + j as usize,
    };
    for &(_, why) in &cands.excluded {
        match why {
            ExclusionRule::ContactRule(i) => out[at(PolicyRow::Rule(i))].excluded_by_history += 1,
            ExclusionRule::Conflict(j) => out[at(PolicyRow::Conflict(j))].excluded_by_history += 1,
            _ => {}
        }
    }
    for (r, &kind) in policy.kind.iter().enumerate() {
        let kpi = &mut out[at(kind)];
        let price = prices.customer_rows.get(r).copied().unwrap_or(0.0);
        kpi.rows += 1;
        kpi.binding += usize::from(price > PRICE_EPS);
        kpi.shadow_price += price;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason of a pair left out is the family charging it most; of equal
    /// charges the last offered (the order `Iterator::max_by` kept when the
    /// charges were a list).
    #[test]
    fn the_largest_charge_wins_and_the_last_of_equals() {
        let mut charge = LargestCharge(Binding::ContactCap, 1.0);
        charge.offer(Binding::family(stock::NAME), 0.5);
        assert_eq!(charge.0, Binding::ContactCap);
        charge.offer(Binding::family(lane::NAME), 2.0);
        charge.offer(Binding::Rule(0), 2.0);
        charge.offer(Binding::Conflict, 1.5);
        assert_eq!((charge.0, charge.1), (Binding::Rule(0), 2.0));
    }
}
