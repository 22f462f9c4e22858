//! What the decision service needs of a plan version besides its eligibility
//! table, saved with the version so that a stored plan can be served on its own.
//!
//! Why it exists: live decisions (bid-price control, tier protection, the
//! rule-based fallback) need the customer's zone and tier, each offer's bill of
//! materials and margin, the stock the plan started from and which warehouses
//! serve which zone. The scenario directory may have changed or gone since the
//! plan was made, so the version carries a snapshot:
//!
//! - `serving.json`: tiers, offers, stock, usable lanes, reservations, bid prices
//!   and pick priorities (all small: they grow with offers, SKUs and sites, not
//!   customers), and the contact policies;
//! - `customers.<ext>`: one row per customer (`customer_id`, `zone`, `tier`,
//!   `consent`, `suppressed`, `max_offers`);
//! - with contact policies, `contact_history.<ext>`: the contacts the plan was
//!   made with, as `contact_history.csv` gives them (`customer_id`, `date`,
//!   `channel`, `tags` joined by `;`, `offer_id`), by customer.

use std::path::Path;

use allot_optimizer::{Conflict, ContactRule, Measure, Network, Plan, Problem, Rule, RuleKind};
use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::files::{read_table, write_table, write_versioned, Format};

/// File name of the serving snapshot inside a plan version.
pub const SERVING_FILE: &str = "serving.json";
/// File stem of the per-customer table inside a plan version.
pub const CUSTOMERS_STEM: &str = "customers";
/// File stem of the contact history inside a plan version (with contact policies).
pub const CONTACT_HISTORY_STEM: &str = "contact_history";

/// The plan-wide part of a version's serving snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingContext {
    /// First day of the plan's horizon.
    pub horizon_start: NaiveDate,
    /// Days in the horizon.
    pub horizon_days: u32,
    /// Tiers, highest priority first, with their objective weights.
    pub tiers: Vec<ServingTier>,
    /// Default offers per customer (`None`: unlimited).
    pub contact_cap: Option<u32>,
    /// Every offer of the scenario.
    pub offers: Vec<ServingOffer>,
    /// Shippable stock per warehouse and SKU at the horizon start.
    pub stock: Vec<ServingStock>,
    /// Lanes usable under the promise, as (warehouse, zone).
    pub lanes: Vec<ServingLane>,
    /// The plan's inventory reservations.
    pub reservations: Vec<ServingReservation>,
    /// The plan's bid prices (dual value of zone balance).
    pub bid_prices: Vec<ServingBidPrice>,
    /// The plan's bundle pick priorities, by warehouse then rank.
    pub pick_priorities: Vec<ServingPickPriority>,
    /// What the service needs to apply contact policies and burn volume
    /// rules down live (model version 2); absent when the scenario has neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_policies: Option<ServingContactPolicies>,
    /// The scenario's budget of discount cost (`[policy] budget`), which the
    /// service burns down by acceptances (outcome events); absent: unlimited
    /// (and in versions saved before outcomes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
}

/// The contact policies of a plan, in the planning model's own types (their
/// indices are into the lists kept here and into `offers`), so that the
/// service applies them through the same code as the planner
/// (`allot_optimizer::contact_policy::Policies`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServingContactPolicies {
    /// Channel names, indexed by the offers' and selectors' channels.
    pub channels: Vec<String>,
    /// Tag names, indexed by the offers' and selectors' tags.
    pub tags: Vec<String>,
    /// Per offer (in `offers` order): its channel, tags and contact date.
    pub offers: Vec<ServingOfferContact>,
    /// The `max_per_customer` rules.
    pub rules: Vec<ContactRule>,
    /// The conflicts.
    pub conflicts: Vec<Conflict>,
    /// The hard `max_total` rules on contacts or contact cost: contact events
    /// burn them down live.
    pub volume_rules: Vec<Rule>,
}

/// One row of a version's contact history (the contacts made before the plan).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactRecord<'a> {
    /// The customer contacted.
    pub customer_id: &'a str,
    /// The day of the contact.
    pub date: NaiveDate,
    /// Its channel.
    pub channel: &'a str,
    /// Its tags, joined by `;` (empty: none).
    pub tags: &'a str,
    /// Its offer, when it names one of the scenario's offers.
    pub offer_id: Option<&'a str>,
}

/// An offer as contact policies see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingOfferContact {
    /// Channel index.
    pub channel: u32,
    /// Tag indices, sorted.
    pub tags: Vec<u32>,
    /// The day its contact is planned.
    pub contact_date: NaiveDate,
}

/// Whether contact events burn a volume rule down live: a hard maximum of a
/// measure a contact alone decides (acceptances need outcome events).
pub fn burns_down_live(rule: &Rule) -> bool {
    rule.kind == RuleKind::MaxTotal && rule.penalty.is_none() && matches!(rule.measure, Measure::Contacts | Measure::ContactCost)
}

fn contact_policies(problem: &Problem) -> Option<ServingContactPolicies> {
    let volume_rules: Vec<Rule> = problem.rules.iter().filter(|r| burns_down_live(r)).cloned().collect();
    if !problem.has_contact_policies() && volume_rules.is_empty() {
        return None;
    }
    Some(ServingContactPolicies {
        channels: problem.channels.clone(),
        tags: problem.tags.clone(),
        offers: (0..problem.offers.len() as u32)
            .map(|o| {
                let offer = &problem.offers[o as usize];
                ServingOfferContact { channel: offer.channel, tags: offer.tags.clone(), contact_date: problem.contact_date_of(o) }
            })
            .collect(),
        rules: problem.contact_rules.clone(),
        conflicts: problem.conflicts.clone(),
        volume_rules,
    })
}

/// A customer tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingTier {
    /// Tier name.
    pub name: String,
    /// Objective weight of its customers' margin.
    pub weight: f64,
}

/// An offer with what one acceptance consumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingOffer {
    /// Offer id.
    pub offer_id: String,
    /// Value of one acceptance.
    pub margin: f64,
    /// Paid for every exposure (absent before model version 2: 0).
    #[serde(default)]
    pub cost_per_contact: f64,
    /// The channel its contact goes out on (absent before model version 2: `default`).
    #[serde(default = "default_channel")]
    pub channel: String,
    /// Discount cost of one acceptance, counted against the budget (absent: 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub discount_cost: f64,
    /// Most acceptances the offer may have (absent: unlimited); the service
    /// stops showing it once accepted outcomes reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redemptions: Option<f64>,
    /// Lowest tier that may see it.
    pub min_tier: Option<String>,
    /// Bill of materials.
    pub items: Vec<ServingItem>,
    /// The time bucket its items are delivered in, whose bid prices it pays
    /// (model version 2; absent: 0, the only bucket).
    #[serde(default, skip_serializing_if = "is_first_bucket")]
    pub bucket: u32,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn default_channel() -> String {
    allot_optimizer::DEFAULT_CHANNEL.to_string()
}

/// One line of a bill of materials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingItem {
    /// SKU.
    pub sku: String,
    /// Units per acceptance.
    pub qty: f64,
}

/// Stock of one SKU at one warehouse when the plan was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingStock {
    /// Warehouse.
    pub warehouse_id: String,
    /// SKU.
    pub sku: String,
    /// `max(0, on_hand + inbound - safety_stock)`: what may be promised.
    pub available: f64,
    /// `max(0, safety_stock - on_hand - inbound)`: what live receipts fill
    /// before any unit is promised (0 in versions saved before it was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub short_of_safety: f64,
    /// Units of the scenario's `inbound` arriving within the horizon, which
    /// `available` already counts: a live receipt at this point is taken as
    /// their arrival first, and only what exceeds them adds to live stock
    /// (0 in versions saved before it was kept: every receipt adds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inbound: f64,
}

/// A usable lane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingLane {
    /// Origin warehouse.
    pub warehouse_id: String,
    /// Zone served.
    pub zone: String,
}

/// Stock held for one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingReservation {
    /// Warehouse.
    pub warehouse_id: String,
    /// SKU.
    pub sku: String,
    /// Tier the units are held for.
    pub tier: String,
    /// Units.
    pub units: f64,
}

/// Marginal value of one unit of a SKU delivered into a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingBidPrice {
    /// Zone.
    pub zone: String,
    /// SKU.
    pub sku: String,
    /// Time bucket of delivery (model version 2; absent: 0, the only bucket).
    #[serde(default, skip_serializing_if = "is_first_bucket")]
    pub bucket: u32,
    /// Price per unit.
    pub price: f64,
}

fn is_first_bucket(bucket: &u32) -> bool {
    *bucket == 0
}

/// What to kit or pre-pick first at a warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingPickPriority {
    /// Warehouse.
    pub warehouse_id: String,
    /// 1 = first.
    pub rank: u32,
    /// Offer the units are for.
    pub offer_id: String,
    /// SKU to pick.
    pub sku: String,
    /// Expected units.
    pub units: f64,
    /// The plan's priority score.
    pub priority_score: f64,
}

/// One row of the per-customer serving table, borrowed while reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerRecord<'a> {
    /// Customer id.
    pub customer_id: &'a str,
    /// Zone.
    pub zone: &'a str,
    /// Tier.
    pub tier: &'a str,
    /// Personalization consent when the plan was made.
    pub consent: bool,
    /// In a service-recovery workflow when the plan was made.
    pub suppressed: bool,
    /// The customer's own cap on offers (`None`: the plan's `contact_cap`); the
    /// service resolves it with `allot_optimizer::effective_contact_cap`, the
    /// planner's rule.
    pub max_offers: Option<u32>,
}

/// One row of a stored eligibility table, borrowed while reading (a 1M-customer
/// plan has millions of rows: nothing is copied that the caller does not keep).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EligibilityRecord<'a> {
    /// Customer id.
    pub customer_id: &'a str,
    /// Offer id.
    pub offer_id: &'a str,
    /// Whether the plan serves the offer.
    pub eligible: bool,
    /// The solver's exposure of the pair (what a warm re-plan starts from).
    pub x: f64,
    /// Expected value of showing the offer (`value × p - cost_per_contact`).
    pub expected_value: f64,
    /// Acceptance probability (`None` in versions saved before the column).
    pub p: Option<f64>,
    /// Rank among the customer's eligible offers (1 = best).
    pub rank: Option<u32>,
    /// Reason code (`eligible`, `consent`, `not_selected:stock`, ...).
    pub reason: &'a str,
}

/// Builds the plan-wide serving snapshot of a plan.
pub fn serving_context(problem: &Problem, plan: &Plan) -> ServingContext {
    let sku = |s: u32| problem.skus[s as usize].clone();
    let warehouse = |w: u32| problem.warehouses[w as usize].clone();
    let offer = |o: u32| problem.offers[o as usize].id.clone();
    let tier = |t: u32| problem.tiers[t as usize].name.clone();
    let network = Network::new(problem);
    let lanes = network
        .lanes_into_zone
        .iter()
        .flatten()
        .map(|&l| {
            let lane = &problem.lanes[l as usize];
            ServingLane { warehouse_id: warehouse(lane.warehouse), zone: problem.zones[lane.zone as usize].id.clone() }
        })
        .collect();
    ServingContext {
        horizon_start: problem.horizon.start,
        horizon_days: problem.horizon.days,
        tiers: problem.tiers.iter().map(|t| ServingTier { name: t.name.clone(), weight: t.weight }).collect(),
        contact_cap: problem.policy.contact_cap,
        offers: problem
            .offers
            .iter()
            .enumerate()
            .map(|(o_ix, o)| ServingOffer {
                offer_id: o.id.clone(),
                margin: o.margin,
                cost_per_contact: o.cost_per_contact,
                channel: problem.channels[o.channel as usize].clone(),
                discount_cost: o.discount_cost,
                max_redemptions: o.max_redemptions,
                min_tier: o.min_tier.map(tier),
                items: o.items.iter().map(|i| ServingItem { sku: sku(i.sku), qty: i.qty }).collect(),
                bucket: problem.bucket_of(o_ix as u32),
            })
            .collect(),
        stock: problem
            .stock
            .iter()
            .map(|s| ServingStock { warehouse_id: warehouse(s.warehouse), sku: sku(s.sku), available: s.available(), short_of_safety: s.short_of_safety(), inbound: s.inbound_units() })
            .collect(),
        lanes,
        reservations: plan
            .reservations
            .iter()
            .map(|r| ServingReservation { warehouse_id: warehouse(r.warehouse), sku: sku(r.sku), tier: tier(r.tier), units: r.units })
            .collect(),
        bid_prices: plan
            .bid_prices
            .iter()
            .map(|b| ServingBidPrice { zone: problem.zones[b.zone as usize].id.clone(), sku: sku(b.sku), bucket: b.bucket, price: b.price })
            .collect(),
        pick_priorities: plan
            .pick_priorities
            .iter()
            .map(|p| ServingPickPriority {
                warehouse_id: warehouse(p.warehouse),
                rank: p.rank,
                offer_id: offer(p.offer),
                sku: sku(p.sku),
                units: p.units,
                priority_score: p.priority_score,
            })
            .collect(),
        contact_policies: contact_policies(problem),
        budget: problem.policy.budget,
    }
}

/// Writes what serving needs of a plan into a version's directory:
/// `customers.<ext>` and `serving.json` (with its `schema_version`).
pub fn write_serving(dir: &Path, problem: &Problem, plan: &Plan, format: Format) -> Result<(), StoreError> {
    let mut customers = customers_table(problem).map_err(|e| StoreError::Table { path: dir.join(CUSTOMERS_STEM), reason: e.to_string() })?;
    write_table(dir, CUSTOMERS_STEM, &mut customers, format)?;
    let context = serving_context(problem, plan);
    if context.contact_policies.is_some() {
        let mut history = contact_history_table(problem).map_err(|e| StoreError::Table { path: dir.join(CONTACT_HISTORY_STEM), reason: e.to_string() })?;
        write_table(dir, CONTACT_HISTORY_STEM, &mut history, format)?;
    }
    write_versioned(&dir.join(SERVING_FILE), &context)
}

/// The contact history of a problem as a table (the problem keeps it by customer).
fn contact_history_table(problem: &Problem) -> Result<DataFrame, PolarsError> {
    let h = &problem.history;
    let channel = |c: u32| problem.channels.get(c as usize).map_or("", String::as_str);
    DataFrame::new(
        h.len(),
        vec![
            Column::new("customer_id".into(), h.iter().map(|x| problem.customers.id[x.customer as usize].as_str()).collect::<Vec<_>>()),
            Column::new("date".into(), h.iter().map(|x| x.date.to_string()).collect::<Vec<_>>()),
            Column::new("channel".into(), h.iter().map(|x| channel(x.channel)).collect::<Vec<_>>()),
            Column::new("tags".into(), h.iter().map(|x| x.tags.iter().map(|&t| problem.tags[t as usize].as_str()).collect::<Vec<_>>().join(";")).collect::<Vec<_>>()),
            Column::new("offer_id".into(), h.iter().map(|x| x.offer.map(|o| problem.offers[o as usize].id.as_str())).collect::<Vec<_>>()),
        ],
    )
}

/// Calls `visit` for every row of a version's contact history.
pub fn for_each_contact(path: &Path, mut visit: impl FnMut(ContactRecord<'_>)) -> Result<(), StoreError> {
    let t = StoredColumns::read(path)?;
    let columns = ["customer_id", "date", "channel", "tags", "offer_id"].map(|name| t.cast(name, &DataType::String));
    let [customers, dates, channels, tags, offers] = columns;
    let (customers, dates, channels, tags, offers) = (customers?, dates?, channels?, tags?, offers?);
    let e = |e: PolarsError| t.error(e);
    let (customers, dates, channels, tags, offers) = (customers.str().map_err(e)?, dates.str().map_err(e)?, channels.str().map_err(e)?, tags.str().map_err(e)?, offers.str().map_err(e)?);
    for i in 0..t.df.height() {
        let date = dates.get(i).ok_or_else(|| t.missing(i, "date"))?;
        let date = date.parse().map_err(|_| t.error(format!("row {}: column date is {date:?}, expected YYYY-MM-DD", i + 1)))?;
        visit(ContactRecord {
            customer_id: customers.get(i).ok_or_else(|| t.missing(i, "customer_id"))?,
            date,
            channel: channels.get(i).ok_or_else(|| t.missing(i, "channel"))?,
            tags: tags.get(i).unwrap_or(""),
            offer_id: offers.get(i),
        });
    }
    Ok(())
}

/// The per-customer serving table of a problem.
pub fn customers_table(problem: &Problem) -> Result<DataFrame, PolarsError> {
    let c = &problem.customers;
    DataFrame::new(
        c.len(),
        vec![
            Column::new("customer_id".into(), c.id.iter().map(String::as_str).collect::<Vec<_>>()),
            Column::new("zone".into(), c.zone.iter().map(|&z| problem.zones[z as usize].id.as_str()).collect::<Vec<_>>()),
            Column::new("tier".into(), c.tier.iter().map(|&t| problem.tiers[t as usize].name.as_str()).collect::<Vec<_>>()),
            Column::new("consent".into(), c.consent.clone()),
            Column::new("suppressed".into(), c.suppressed.clone()),
            Column::new("max_offers".into(), c.max_offers.clone()),
        ],
    )
}

/// Typed access to the columns of a stored table, with errors naming the file.
struct StoredColumns<'a> {
    path: &'a Path,
    df: DataFrame,
}

impl<'a> StoredColumns<'a> {
    fn read(path: &'a Path) -> Result<Self, StoreError> {
        Ok(StoredColumns { path, df: read_table(path)? })
    }

    fn error(&self, reason: impl ToString) -> StoreError {
        StoreError::Table { path: self.path.to_path_buf(), reason: reason.to_string() }
    }

    fn cast(&self, name: &str, dtype: &DataType) -> Result<Column, StoreError> {
        self.df.column(name).and_then(|c| c.cast(dtype)).map_err(|e| self.error(e))
    }

    fn missing(&self, row: usize, column: &str) -> StoreError {
        self.error(format!("row {}: column {column} is empty", row + 1))
    }
}

/// Calls `visit` for every row of a version's eligibility table.
pub fn for_each_eligibility(path: &Path, mut visit: impl FnMut(EligibilityRecord<'_>)) -> Result<(), StoreError> {
    let t = StoredColumns::read(path)?;
    let (customers, offers, reasons) = (t.cast("customer_id", &DataType::String)?, t.cast("offer_id", &DataType::String)?, t.cast("reason", &DataType::String)?);
    let (eligible, value, rank) = (t.cast("eligible", &DataType::Boolean)?, t.cast("expected_value", &DataType::Float64)?, t.cast("rank", &DataType::Int64)?);
    let x = t.cast("x", &DataType::Float64)?;
    let e = |e: PolarsError| t.error(e);
    let (customers, offers, reasons) = (customers.str().map_err(e)?, offers.str().map_err(e)?, reasons.str().map_err(e)?);
    let (eligible, value, rank) = (eligible.bool().map_err(e)?, value.f64().map_err(e)?, rank.i64().map_err(e)?);
    let x = x.f64().map_err(e)?;
    let p_column = if t.df.column("p").is_ok() { Some(t.cast("p", &DataType::Float64)?) } else { None };
    let p = match &p_column {
        Some(column) => Some(column.f64().map_err(e)?),
        None => None,
    };
    for i in 0..t.df.height() {
        visit(EligibilityRecord {
            customer_id: customers.get(i).ok_or_else(|| t.missing(i, "customer_id"))?,
            offer_id: offers.get(i).ok_or_else(|| t.missing(i, "offer_id"))?,
            eligible: eligible.get(i).ok_or_else(|| t.missing(i, "eligible"))?,
            x: x.get(i).ok_or_else(|| t.missing(i, "x"))?,
            expected_value: value.get(i).unwrap_or(0.0),
            p: p.and_then(|p| p.get(i)),
            rank: rank.get(i).and_then(|r| u32::try_from(r).ok()),
            reason: reasons.get(i).ok_or_else(|| t.missing(i, "reason"))?,
        });
    }
    Ok(())
}

/// Calls `visit` for every row of a version's customer table.
pub fn for_each_customer(path: &Path, mut visit: impl FnMut(CustomerRecord<'_>)) -> Result<(), StoreError> {
    let t = StoredColumns::read(path)?;
    let (ids, zones, tiers) = (t.cast("customer_id", &DataType::String)?, t.cast("zone", &DataType::String)?, t.cast("tier", &DataType::String)?);
    let (consent, suppressed, cap) = (t.cast("consent", &DataType::Boolean)?, t.cast("suppressed", &DataType::Boolean)?, t.cast("max_offers", &DataType::Int64)?);
    let e = |e: PolarsError| t.error(e);
    let (ids, zones, tiers) = (ids.str().map_err(e)?, zones.str().map_err(e)?, tiers.str().map_err(e)?);
    let (consent, suppressed, cap) = (consent.bool().map_err(e)?, suppressed.bool().map_err(e)?, cap.i64().map_err(e)?);
    for i in 0..t.df.height() {
        visit(CustomerRecord {
            customer_id: ids.get(i).ok_or_else(|| t.missing(i, "customer_id"))?,
            zone: zones.get(i).ok_or_else(|| t.missing(i, "zone"))?,
            tier: tiers.get(i).ok_or_else(|| t.missing(i, "tier"))?,
            // Governance fails closed: a stored row without its flags is corrupt, not consent.
            consent: consent.get(i).ok_or_else(|| t.missing(i, "consent"))?,
            suppressed: suppressed.get(i).ok_or_else(|| t.missing(i, "suppressed"))?,
            max_offers: cap.get(i).and_then(|v| u32::try_from(v).ok()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored customer row without its consent or suppression flag is an
    /// error naming the row, never a customer served as consenting.
    #[test]
    fn a_customer_row_without_its_governance_flags_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customers.csv");
        for (text, column) in [
            ("customer_id,zone,tier,consent,suppressed,max_offers\nc1,Z1,gold,true,false,\nc2,Z1,gold,,false,\n", "consent"),
            ("customer_id,zone,tier,consent,suppressed,max_offers\nc1,Z1,gold,true,false,\nc2,Z1,gold,false,,\n", "suppressed"),
        ] {
            std::fs::write(&path, text).unwrap();
            let mut seen = Vec::new();
            let err = for_each_customer(&path, |r| seen.push(r.customer_id.to_string())).unwrap_err().to_string();
            assert!(err.contains(&format!("row 2: column {column} is empty")), "{err}");
            assert_eq!(seen, ["c1"]);
        }
    }
}
