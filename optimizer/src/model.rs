//! The planning model's inputs, held in memory exactly as `shared/spec/model.md`
//! describes them, with every name interned to a dense index.
//!
//! Why indices: solvers work on arrays, and a scenario of millions of customers
//! must not carry a `String` per reference. Names live once, in the id tables.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// Dense index of a customer in [`Customers`].
pub type CustomerIx = u32;
/// Dense index of an offer in [`Problem::offers`].
pub type OfferIx = u32;
/// Dense index of a SKU in [`Problem::skus`].
pub type SkuIx = u32;
/// Dense index of a zone in [`Problem::zones`].
pub type ZoneIx = u32;
/// Dense index of a warehouse in [`Problem::warehouses`].
pub type WarehouseIx = u32;
/// Dense index of a tier in [`Problem::tiers`]; 0 is the highest priority.
pub type TierIx = u32;
/// Dense index of a protected group in [`Problem::groups`].
pub type GroupIx = u32;
/// Dense index of a lane in [`Problem::lanes`].
pub type LaneIx = u32;
/// Dense index of a channel in [`Problem::channels`].
pub type ChannelIx = u32;
/// Dense index of a tag in [`Problem::tags`].
pub type TagIx = u32;
/// Index of a time bucket of the horizon ([`Buckets`]); 0 without `bucket_days`.
pub type BucketIx = u32;

/// The channel of an offer that names none (model version 2).
pub const DEFAULT_CHANNEL: &str = "default";

/// The planning horizon: days `start` to `start + days - 1`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    /// First day of the horizon.
    pub start: NaiveDate,
    /// Number of days; at least 1.
    pub days: u32,
}

impl Horizon {
    /// Last day of the horizon (inclusive).
    pub fn last_day(&self) -> NaiveDate {
        self.start + Duration::days(i64::from(self.days.max(1)) - 1)
    }

    /// Whether a day falls inside the horizon (both ends inclusive).
    pub fn contains(&self, day: NaiveDate) -> bool {
        day >= self.start && day <= self.last_day()
    }

    /// The part of an inclusive date range (open on a missing side) inside the
    /// horizon, as `(first, last)`; `first > last` when they do not overlap.
    pub fn clamp(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> (NaiveDate, NaiveDate) {
        (from.map_or(self.start, |f| f.max(self.start)), to.map_or(self.last_day(), |t| t.min(self.last_day())))
    }

    /// The horizon cut into buckets of `bucket_days` days (one bucket when `None`).
    pub fn buckets(&self, bucket_days: Option<u32>) -> Buckets {
        let days = self.days.max(1);
        Buckets { start: self.start, days, width: bucket_days.map_or(days, |b| b.clamp(1, days)) }
    }

    /// Whether an inclusive date range, open on a missing side, overlaps the horizon.
    pub fn overlaps(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
        from.is_none_or(|f| f <= self.last_day()) && to.is_none_or(|t| t >= self.start)
    }
}

/// The horizon's time buckets (model version 2, `bucket_days`): consecutive
/// runs of `width` days from the horizon's start, the last one possibly shorter.
/// Why a value of its own: the loader (baseline per bucket), the families
/// (balance and cumulative stock rows), the plan (bid prices per bucket) and
/// the decision service must cut the horizon the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    start: NaiveDate,
    days: u32,
    width: u32,
}

impl Buckets {
    /// Number of buckets (at least 1).
    pub fn count(&self) -> usize {
        self.days.div_ceil(self.width) as usize
    }

    /// The bucket holding `day` (days before the horizon fall in the first
    /// bucket, days after it in the last).
    pub fn of(&self, day: NaiveDate) -> BucketIx {
        let offset = (day - self.start).num_days().clamp(0, i64::from(self.days) - 1);
        (offset / i64::from(self.width)) as BucketIx
    }

    /// First day of bucket `t`.
    pub fn start_of(&self, t: BucketIx) -> NaiveDate {
        self.start + Duration::days(i64::from(t) * i64::from(self.width))
    }

    /// Last day of bucket `t`.
    pub fn last_day_of(&self, t: BucketIx) -> NaiveDate {
        self.start_of(t) + Duration::days(i64::from(self.days_in(t)) - 1)
    }

    /// Number of days in bucket `t` (the last may be shorter).
    pub fn days_in(&self, t: BucketIx) -> u32 {
        (self.days - t * self.width).min(self.width)
    }

    /// `units` over the horizon spread over the buckets in proportion to their days.
    pub fn spread(&self, units: f64) -> impl Iterator<Item = (BucketIx, f64)> + '_ {
        (0..self.count() as BucketIx).map(move |t| (t, units * f64::from(self.days_in(t)) / f64::from(self.days)))
    }
}

/// Policy knobs of `scenario.toml`'s `[policy]` section; `None` means "no limit".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Maximum offers per customer without a `max_offers` of its own; resolved
    /// per customer by [`effective_contact_cap`] only, never copied into [`Customers`].
    pub contact_cap: Option<u32>,
    /// Total expected discount cost allowed.
    pub budget: Option<f64>,
    /// Lanes slower than this serve nothing.
    pub promise_days: Option<u32>,
    /// Exposure-parity ratio between protected groups.
    pub fairness_min_ratio: Option<f64>,
    /// Limit on custom offers in use (makes the model a MIP).
    pub max_custom_offers: Option<u32>,
    /// Objective penalty per unit of unmet baseline demand.
    pub unmet_baseline_penalty: f64,
    /// All-or-nothing decisions, `x[c,o]` in {0, 1} (model version 2; makes the model a MIP).
    #[serde(default)]
    pub binary_decisions: bool,
    /// Length of the time buckets of supply (model version 2); `None`: one bucket, the whole horizon.
    #[serde(default)]
    pub bucket_days: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            contact_cap: None,
            budget: None,
            promise_days: None,
            fairness_min_ratio: None,
            max_custom_offers: None,
            unmet_baseline_penalty: DEFAULT_UNMET_BASELINE_PENALTY,
            binary_decisions: false,
            bucket_days: None,
        }
    }
}

/// The one rule for a customer's effective contact cap: its own `max_offers`,
/// else the policy's `contact_cap` (`None`: unlimited).
///
/// Why a free function: the planner ([`Problem::contact_cap_of`]) and the
/// decision service (which holds a stored plan's customer table and policy cap,
/// not a `Problem`) must resolve the cap the same way.
pub fn effective_contact_cap(own: Option<u32>, policy_cap: Option<u32>) -> Option<u32> {
    own.or(policy_cap)
}

/// The spec's default for `policy.unmet_baseline_penalty`.
pub const DEFAULT_UNMET_BASELINE_PENALTY: f64 = 1000.0;

/// A customer tier with its objective weight; position in [`Problem::tiers`] is priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// Tier name as used in `customers.csv`.
    pub name: String,
    /// Objective weight of this tier's expected margin.
    pub weight: f64,
}

/// A delivery zone and its last-mile capacity in accepted offers over the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    /// Zone id.
    pub id: String,
    /// Accepted offers deliverable over the horizon; `None` is unlimited.
    pub delivery_capacity: Option<f64>,
}

/// Customers as a struct of arrays, so millions of them stay compact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customers {
    /// External ids, unique.
    pub id: Vec<String>,
    /// Delivery zone.
    pub zone: Vec<ZoneIx>,
    /// Tier (priority index).
    pub tier: Vec<TierIx>,
    /// `false` when personalization consent was withdrawn (hard rule).
    pub consent: Vec<bool>,
    /// `true` while in a service-recovery workflow (hard rule).
    pub suppressed: Vec<bool>,
    /// Protected group, used only for fairness constraints and audits.
    pub group: Vec<Option<GroupIx>>,
    /// The customer's own cap on offers from the customers table (`None` when
    /// blank). Not the effective cap: read that with [`Problem::contact_cap_of`],
    /// so that a policy changed after loading (a what-if variant) still applies.
    pub max_offers: Vec<Option<u32>>,
}

impl Customers {
    /// Reserves room for `additional` more customers in every column.
    pub fn reserve(&mut self, additional: usize) {
        self.id.reserve(additional);
        self.zone.reserve(additional);
        self.tier.reserve(additional);
        self.consent.reserve(additional);
        self.suppressed.reserve(additional);
        self.group.reserve(additional);
        self.max_offers.reserve(additional);
    }

    /// Number of customers.
    pub fn len(&self) -> usize {
        self.id.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

/// One SKU line of an offer's bill of materials.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OfferItem {
    /// The SKU consumed.
    pub sku: SkuIx,
    /// Units per acceptance.
    pub qty: f64,
}

/// An offer (single product, bundle, discount or customized variant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// External id, unique.
    pub id: String,
    /// Value of one acceptance.
    pub margin: f64,
    /// Discount cost of one acceptance, counted against the budget.
    pub discount_cost: f64,
    /// Cap on expected acceptances; `None` is unlimited.
    pub max_redemptions: Option<f64>,
    /// Lowest tier allowed (tiers at or above it qualify).
    pub min_tier: Option<TierIx>,
    /// A customized variant, counted toward the SKU-proliferation limit.
    pub custom: bool,
    /// First valid day, inclusive.
    pub start_date: Option<NaiveDate>,
    /// Last valid day, inclusive.
    pub end_date: Option<NaiveDate>,
    /// Whether exposure parity across groups applies.
    pub fair: bool,
    /// Bill of materials of one acceptance.
    pub items: Vec<OfferItem>,
    /// The channel the contact goes out on (model version 2).
    pub channel: ChannelIx,
    /// Labels that rules and conflicts select on, sorted (model version 2).
    pub tags: Vec<TagIx>,
    /// The day the contact happens as written; `None` takes the default rule of
    /// [`Problem::contact_date_of`] (model version 2).
    pub contact_date: Option<NaiveDate>,
    /// Paid for every exposure, accepted or not (model version 2).
    pub cost_per_contact: f64,
}

impl Offer {
    /// Whether fulfilment must kit or pre-pick this offer: bundles, multi-unit
    /// lines and customized variants.
    pub fn needs_kitting(&self) -> bool {
        self.custom || self.items.len() > 1 || self.items.iter().any(|i| i.qty > 1.0)
    }
}

/// One row of `uptake.csv`: the forecast probability that a customer accepts an offer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Uptake {
    /// The customer.
    pub customer: CustomerIx,
    /// The offer.
    pub offer: OfferIx,
    /// Acceptance probability in (0, 1].
    pub p: f64,
}

/// Stock of one SKU at one warehouse, with the receipts that land inside the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockPoint {
    /// The warehouse.
    pub warehouse: WarehouseIx,
    /// The SKU.
    pub sku: SkuIx,
    /// Units on hand at the horizon start.
    pub on_hand: f64,
    /// Units never to be promised.
    pub safety_stock: f64,
    /// Receipts that land inside the horizon, each on its day.
    pub inbound: Vec<Receipt>,
}

/// Units received on one day inside the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The arrival day.
    pub day: NaiveDate,
    /// Units received.
    pub units: f64,
}

impl StockPoint {
    /// Units that may be shipped over the horizon: `max(0, on_hand + inbound - safety)`.
    pub fn available(&self) -> f64 {
        self.available_by(None)
    }

    /// Units that may have left by the end of `last_day` (the cumulative stock
    /// of model version 2): `max(0, on_hand + receipts up to that day - safety)`;
    /// `None`: the whole horizon.
    pub fn available_by(&self, last_day: Option<NaiveDate>) -> f64 {
        let received: f64 = self.inbound.iter().filter(|r| last_day.is_none_or(|d| r.day <= d)).map(|r| r.units).sum();
        (self.on_hand + received - self.safety_stock).max(0.0)
    }

    /// Units by which on hand and inbound fall short of safety stock over the
    /// horizon, `max(0, safety - on_hand - inbound)`: what units arriving
    /// beyond the plan (a live receipt) fill before any is promised.
    pub fn short_of_safety(&self) -> f64 {
        (self.safety_stock - self.on_hand - self.inbound_units()).max(0.0)
    }

    /// Units received over the horizon.
    pub fn inbound_units(&self) -> f64 {
        self.inbound.iter().map(|r| r.units).sum()
    }

    /// Scales every quantity (on hand, receipts, safety stock) by `factor`.
    pub fn scale(&mut self, factor: f64) {
        self.on_hand *= factor;
        self.safety_stock *= factor;
        for r in &mut self.inbound {
            r.units *= factor;
        }
    }
}

/// A fulfilment lane from a warehouse to a zone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    /// Origin warehouse.
    pub warehouse: WarehouseIx,
    /// Destination zone.
    pub zone: ZoneIx,
    /// Cost of shipping one unit.
    pub cost_per_unit: f64,
    /// Transit time; a lane slower than the promise serves nothing.
    pub transit_days: u32,
    /// Units over the horizon; `None` is unlimited.
    pub capacity: Option<f64>,
}

/// Demand of one SKU in one zone that does not come from offers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineDemand {
    /// The zone.
    pub zone: ZoneIx,
    /// The SKU.
    pub sku: SkuIx,
    /// Units over the bucket (over the horizon without `bucket_days`).
    pub units: f64,
    /// The time bucket the units fall in (model version 2; 0 without
    /// `bucket_days`), under the policy's `bucket_days` as loaded: a problem
    /// given other buckets must be loaded again, not edited.
    pub bucket: BucketIx,
}

/// Which offers a rule applies to (model version 2): an offer is selected when
/// it matches every non-empty part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selector {
    /// Channels (empty: every channel).
    pub channels: Vec<ChannelIx>,
    /// Tags; an offer with at least one of them matches (empty: every offer).
    pub tags: Vec<TagIx>,
    /// Offers (empty: every offer).
    pub offers: Vec<OfferIx>,
    /// First contact date, inclusive (`None`: open).
    pub from: Option<NaiveDate>,
    /// Last contact date, inclusive (`None`: open).
    pub to: Option<NaiveDate>,
}

impl Selector {
    /// Whether a contact on `channel` with `tags`, of `offer` when known, on
    /// `date` is selected: the one matching rule for offers and past contacts.
    pub fn matches(&self, channel: ChannelIx, tags: &[TagIx], offer: Option<OfferIx>, date: NaiveDate) -> bool {
        (self.channels.is_empty() || self.channels.contains(&channel))
            && (self.tags.is_empty() || tags.iter().any(|t| self.tags.contains(t)))
            && (self.offers.is_empty() || offer.is_some_and(|o| self.offers.contains(&o)))
            && self.from.is_none_or(|f| date >= f)
            && self.to.is_none_or(|t| date <= t)
    }
}

/// What a volume rule bounds (model version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// `sum m x <= bound` over the selected offers.
    MaxTotal,
    /// `sum m x >= bound` over the selected offers.
    MinTotal,
}

/// The measure `m[c,o]` a rule sums (model version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// 1 per exposure.
    Contacts,
    /// `p` per exposure.
    Accepts,
    /// `cost_per_contact` per exposure.
    ContactCost,
    /// `discount_cost * p` per exposure.
    DiscountCost,
    /// `value * p` per exposure (the pair's value of one acceptance).
    Value,
}

impl Measure {
    /// The name used in `rules.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Contacts => "contacts",
            Measure::Accepts => "accepts",
            Measure::ContactCost => "contact_cost",
            Measure::DiscountCost => "discount_cost",
            Measure::Value => "value",
        }
    }
}

/// A volume rule of `rules.csv` (model version 2): a total over the selected
/// offers' exposures bounded above or below, hard or soft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// `rule_id`, unique.
    pub id: String,
    /// Upper or lower bound.
    pub kind: RuleKind,
    /// What is summed.
    pub measure: Measure,
    /// The bound.
    pub bound: f64,
    /// Objective lost per unit of violation; `None`: a hard rule.
    pub penalty: Option<f64>,
    /// The offers it sums over.
    pub selector: Selector,
}

/// A `max_per_customer` rule of `rules.csv` (model version 2): for every
/// customer, its exposures to the selected offers plus its matching past
/// contacts stay within `bound`. Kept apart from [`Rule`] because it is one row
/// per customer, not one coupling row: always hard, contacts only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactRule {
    /// `rule_id`, unique among all rules.
    pub id: String,
    /// Most contacts per customer, history included.
    pub bound: f64,
    /// The offers (and past contacts) it counts.
    pub selector: Selector,
}

impl ContactRule {
    /// The contacts this rule still allows after `contacts` (those its
    /// selector matches count): `max(0, bound - h)`.
    pub fn room(&self, contacts: &[PastContact]) -> f64 {
        let used = contacts.iter().filter(|h| h.selected_by(&self.selector)).count();
        (self.bound - used as f64).max(0.0)
    }
}

/// A conflict of `conflicts.csv` (model version 2): an offer selected by `a`
/// and a different one selected by `b` contacted less than `within_days`
/// after it are never both given to one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// `conflict_id`, unique.
    pub id: String,
    /// Days after a contact of `a` during which `b` may not follow.
    pub within_days: u32,
    /// The earlier contact.
    pub a: Selector,
    /// The later contact.
    pub b: Selector,
}

impl Conflict {
    /// Whether a contact of `b` on `later` falls in the window opened by a contact of `a` on `earlier`.
    pub fn within(&self, earlier: NaiveDate, later: NaiveDate) -> bool {
        let days = (later - earlier).num_days();
        days >= 0 && days < i64::from(self.within_days)
    }
}

/// A contact already made, from `contact_history.csv` (model version 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastContact {
    /// The customer contacted.
    pub customer: CustomerIx,
    /// The day of the contact.
    pub date: NaiveDate,
    /// Its channel.
    pub channel: ChannelIx,
    /// Its tags, sorted.
    pub tags: Vec<TagIx>,
    /// Its offer, when it names one of the scenario's offers.
    pub offer: Option<OfferIx>,
}

impl PastContact {
    /// The channel of a past contact on a channel no offer uses: no selector
    /// names it, so it matches only selectors open on channels.
    pub const OTHER_CHANNEL: ChannelIx = ChannelIx::MAX;

    /// Whether `selector` selects this contact (as it would an offer: channel, tags, offer, date).
    pub fn selected_by(&self, selector: &Selector) -> bool {
        selector.matches(self.channel, &self.tags, self.offer, self.date)
    }
}

/// A complete planning problem: the validated content of a scenario directory.
///
/// Built by the `scenarios` crate (or by tests directly); consumed by every solver.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The planning horizon.
    pub horizon: Horizon,
    /// Policy limits.
    pub policy: Policy,
    /// Tiers, highest priority first.
    pub tiers: Vec<Tier>,
    /// Zones.
    pub zones: Vec<Zone>,
    /// SKU ids.
    pub skus: Vec<String>,
    /// Warehouse ids.
    pub warehouses: Vec<String>,
    /// Protected group names.
    pub groups: Vec<String>,
    /// Customers.
    pub customers: Customers,
    /// Offers, each with its bill of materials.
    pub offers: Vec<Offer>,
    /// Uptake forecasts; only these pairs can become candidates.
    pub uptake: Vec<Uptake>,
    /// The value of one acceptance per uptake pair (model version 2), a column
    /// parallel to `uptake` as customers are columns: `None` when the scenario
    /// gives none, and then every pair is worth its offer's `margin` (a column
    /// of its own so version-1 scenarios of millions of pairs pay nothing for it).
    pub uptake_value: Option<Vec<f64>>,
    /// Channel names; an offer's `channel` indexes it (`[DEFAULT_CHANNEL]` when
    /// no offer names one).
    pub channels: Vec<String>,
    /// Tag names; an offer's `tags` index it.
    pub tags: Vec<String>,
    /// Volume rules (model version 2): the `max_total` and `min_total` rows of `rules.csv`.
    pub rules: Vec<Rule>,
    /// The `max_per_customer` rules of `rules.csv` (model version 2).
    pub contact_rules: Vec<ContactRule>,
    /// Offer conflicts (model version 2).
    pub conflicts: Vec<Conflict>,
    /// Contacts already made, sorted by customer (model version 2); read one
    /// customer's with [`Problem::history_of`].
    pub history: Vec<PastContact>,
    /// Stock per warehouse and SKU (one entry per pair listed in inventory or inbound).
    pub stock: Vec<StockPoint>,
    /// Fulfilment lanes.
    pub lanes: Vec<Lane>,
    /// Baseline (non-offer) demand.
    pub baseline: Vec<BaselineDemand>,
}

impl Problem {
    /// The horizon's supply buckets under the current policy.
    pub fn buckets(&self) -> Buckets {
        self.horizon.buckets(self.policy.bucket_days)
    }

    /// The bucket offer `o`'s acceptances consume their items in (its contact date's).
    pub fn bucket_of(&self, o: OfferIx) -> BucketIx {
        self.buckets().of(self.contact_date_of(o))
    }

    /// Units of stock point `si` that may have left by the end of bucket `t`.
    pub fn available_through(&self, si: usize, t: BucketIx) -> f64 {
        let buckets = self.buckets();
        let last = (t as usize + 1 < buckets.count()).then(|| buckets.last_day_of(t));
        self.stock[si].available_by(last)
    }

    /// Whether a lane may serve anything under the promise.
    pub fn lane_usable(&self, lane: &Lane) -> bool {
        self.policy.promise_days.is_none_or(|d| lane.transit_days <= d)
    }

    /// The effective contact cap of customer `c` under the current policy ([`effective_contact_cap`]).
    pub fn contact_cap_of(&self, c: CustomerIx) -> Option<u32> {
        effective_contact_cap(self.customers.max_offers[c as usize], self.policy.contact_cap)
    }

    /// The day offer `o`'s contact happens: its own `contact_date`, else the
    /// later of its `start_date` and the horizon's first day (the spec's default).
    pub fn contact_date_of(&self, o: OfferIx) -> NaiveDate {
        let offer = &self.offers[o as usize];
        offer.contact_date.unwrap_or_else(|| self.horizon.clamp(offer.start_date, offer.end_date).0)
    }

    /// Whether `selector` selects offer `o` (its channel, tags, id and contact date).
    pub fn selects(&self, selector: &Selector, o: OfferIx) -> bool {
        let offer = &self.offers[o as usize];
        selector.matches(offer.channel, &offer.tags, Some(o), self.contact_date_of(o))
    }

    /// The value of one acceptance of uptake row `row`: its own `value`, else its offer's margin.
    pub fn accept_value(&self, row: usize) -> f64 {
        match &self.uptake_value {
            Some(v) => v[row],
            None => self.offers[self.uptake[row].offer as usize].margin,
        }
    }

    /// The expected value of showing uptake row `row`'s offer to its customer:
    /// `value × p − cost_per_contact` (the value of one acceptance,
    /// [`Problem::accept_value`]; unweighted). The one formula for every
    /// eligibility row, candidate or not, and the order of a customer's
    /// served offers.
    pub fn expected_value(&self, row: usize) -> f64 {
        let u = &self.uptake[row];
        self.accept_value(row) * u.p - self.offers[u.offer as usize].cost_per_contact
    }

    /// Customer `c`'s past contacts (`history` is sorted by customer).
    pub fn history_of(&self, c: CustomerIx) -> &[PastContact] {
        let first = self.history.partition_point(|h| h.customer < c);
        let end = first + self.history[first..].partition_point(|h| h.customer == c);
        &self.history[first..end]
    }

    /// Whether some customer-level policy (a `max_per_customer` rule or a conflict) applies.
    pub fn has_contact_policies(&self) -> bool {
        !self.contact_rules.is_empty() || !self.conflicts.is_empty()
    }

    /// Whether all-or-nothing decisions or the custom-offer limit make this a mixed-integer model.
    pub fn is_mip(&self) -> bool {
        self.policy.binary_decisions || self.has_custom_limit()
    }

    /// Whether the custom-offer limit can bind (binaries per custom offer):
    /// there are more custom offers than it lets open. Why not merely set:
    /// with no more custom offers than the limit every one may be open, the
    /// model is the LP, and solving it as a MIP only costs time (a draw of
    /// `allot generate` with one custom offer and a limit of one: the
    /// decomposition's branch took 26 s where the LP certifies in 4).
    pub fn has_custom_limit(&self) -> bool {
        self.policy.max_custom_offers.is_some_and(|limit| self.offers.iter().filter(|o| o.custom).count() > limit as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).expect("a December day")
    }

    /// Ten days in buckets of 4: 12-01..04, 12-05..08, 12-09..10 (short); days
    /// outside fall in the first or last; 10 units spread 4, 4, 2.
    #[test]
    fn buckets_cut_the_horizon_with_a_short_last_one() {
        let b = Horizon { start: day(1), days: 10 }.buckets(Some(4));
        assert_eq!(b.count(), 3);
        assert_eq!([b.of(day(1)), b.of(day(4)), b.of(day(5)), b.of(day(10)), b.of(day(30))], [0, 0, 1, 2, 2]);
        assert_eq!(b.of(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()), 0);
        assert_eq!((b.start_of(2), b.last_day_of(1), b.days_in(2)), (day(9), day(8), 2));
        assert_eq!(b.spread(10.0).collect::<Vec<_>>(), [(0, 4.0), (1, 4.0), (2, 2.0)]);
        // No bucket_days, or one longer than the horizon: one bucket.
        assert_eq!(Horizon { start: day(1), days: 10 }.buckets(None).count(), 1);
        assert_eq!(Horizon { start: day(1), days: 10 }.buckets(Some(30)).count(), 1);
    }

    /// Stock through a bucket counts the receipts up to its last day only.
    #[test]
    fn stock_is_cumulative_over_receipts() {
        let s = StockPoint {
            warehouse: 0,
            sku: 0,
            on_hand: 2.0,
            safety_stock: 1.0,
            inbound: vec![Receipt { day: day(4), units: 3.0 }, Receipt { day: day(5), units: 5.0 }],
        };
        assert_eq!([s.available_by(Some(day(3))), s.available_by(Some(day(4))), s.available_by(None)], [1.0, 4.0, 9.0]);
        let empty = StockPoint { on_hand: 0.0, ..s.clone() };
        assert_eq!(empty.available_by(Some(day(1))), 0.0, "never below zero");
    }
}
