//! Loading a scenario directory into an [`allot_optimizer::Problem`], validating
//! every file and reporting all problems at once.
//!
//! The problem holds the tables as written: nothing derived from `[policy]` or
//! `[tiers]` is copied into customers, offers or lanes, so a what-if variant
//! that changes the policy after loading changes the plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// Loading hashes every customer id and every uptake pair (8M at 1M
// customers): with std's SipHash that was half of the load time.
use foldhash::HashMap;

use allot_forecasting::demand::frequency::{Calendar, Frequency};
use chrono::NaiveDate;

use allot_optimizer::{
    BaselineDemand, Buckets, Conflict, ContactRule, Customers, Lane, Measure, Offer, OfferItem, PastContact, Problem, Rule, RuleKind, Selector, StockPoint, Uptake,
    Receipt, Zone, DEFAULT_CHANNEL,
};
use sha2::{Digest, Sha256};

use crate::scenario::config::{read_config, ScenarioConfig, SCENARIO_FILE};
use crate::error::LoadError;
use crate::scenario::table::{likely_meant, speaks_of_governance, Issues, Kind, Table, BOOL, COUNT, DATE, NON_NEGATIVE, NUMBER, POSITIVE, PROBABILITY, TEXT};

/// A validated scenario, ready to plan.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The planning problem.
    pub problem: Problem,
    /// SHA-256 of every file of the directory (names and bytes), for plan lineage.
    pub content_hash: String,
    /// What the loader did beyond reading (forecasts made, defaults applied).
    pub notes: Vec<String>,
    /// The uptake forecast's holdout report, when uptake was forecast from history.
    pub uptake_report: Option<crate::scenario::uptake_history::UptakeReport>,
    /// The per-series demand forecast, when baseline demand was forecast from history.
    pub demand_forecast: Option<DemandForecast>,
    /// For a what-if variant: the `scenario.toml` files from the root's first
    /// variant down to this one (empty for a plain scenario).
    pub lineage: Vec<String>,
    /// Inbound rows each of [`LoadOptions::inbound_delays`] matched.
    pub inbound_delay_matches: Vec<usize>,
}

/// Baseline demand forecast from sales history, per zone × SKU series, per
/// period of the history's frequency.
#[derive(Debug, Clone)]
pub struct DemandForecast {
    /// The history's periods.
    pub calendar: Calendar,
    /// Period index of the first forecast period (the one after the history ends).
    pub first_period: i64,
    /// Periods held out for the accuracy report.
    pub holdout: usize,
    /// The planning horizon's first day.
    pub horizon_start: NaiveDate,
    /// The planning horizon's days.
    pub horizon_days: usize,
    /// (zone index, SKU index) of each series, with its forecast per period.
    pub series: Vec<((u32, u32), allot_forecasting::demand::SeriesForecast)>,
    /// Each series' promotion and price effects, when the history had `promo` or `price`.
    pub effects: Vec<allot_forecasting::demand::promotions::Effects>,
}

impl DemandForecast {
    /// First day of forecast period `k` (0 = the first after the history).
    pub fn period_start(&self, k: usize) -> NaiveDate {
        self.calendar.start(self.first_period + k as i64)
    }

    /// A series' forecast per day of the planning horizon: each period's
    /// units spread evenly over its days (the one place periods become days).
    pub fn daily(&self, forecast: &allot_forecasting::demand::SeriesForecast) -> Vec<f64> {
        (0..self.horizon_days)
            .map(|d| {
                let day = self.horizon_start + chrono::Days::new(d as u64);
                let Ok(period) = self.calendar.index_of_day(day) else { return 0.0 };
                let k = period - self.first_period;
                if k < 0 {
                    return 0.0;
                }
                forecast.mean.get(k as usize).map_or(0.0, |units| units / self.calendar.days(period) as f64)
            })
            .collect()
    }

    /// Units per series over each of the horizon's buckets (the forecast's
    /// days summed per bucket): the planner's baseline demand.
    pub fn baseline(&self, buckets: &Buckets) -> Vec<BaselineDemand> {
        let mut out = Vec::new();
        for &((zone, sku), ref f) in &self.series {
            let mut per_bucket = vec![0.0; buckets.count()];
            for (d, units) in self.daily(f).into_iter().enumerate() {
                per_bucket[buckets.of(self.horizon_start + chrono::Days::new(d as u64)) as usize] += units;
            }
            out.extend(per_bucket.into_iter().enumerate().map(|(t, units)| BaselineDemand { zone, sku, units, bucket: t as u32 }));
        }
        out
    }

    /// One line: the frequency, the models chosen and the mean nested MASE.
    pub fn summary(&self) -> String {
        let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, f) in &self.series {
            *chosen.entry(f.model.name()).or_default() += 1;
        }
        let mix: Vec<String> = chosen.iter().map(|(m, n)| format!("{m} x{n}")).collect();
        let (_, mase, _) = allot_forecasting::demand::backtest_summary(self.series.iter().map(|(_, f)| f));
        format!("{} history; models: {}; mean MASE {mase:.3} on the last {} periods (at most a third of a series)", self.calendar.frequency.word(), mix.join(", "), self.holdout)
    }
}

/// Names to dense indices; either fixed by a defining file or grown as names appear.
#[derive(Debug, Default)]
struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
    closed: bool,
}

impl Names {
    /// Index of a name; a new name is added unless the set is closed.
    fn resolve(&mut self, name: &str) -> Option<u32> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        if self.closed {
            return None;
        }
        let i = self.names.len() as u32;
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        Some(i)
    }
}

/// The typed columns of `offers` (the CSV reader parses them as their types).
const OFFER_COLUMNS: &[(&str, Kind)] = &[
    ("margin", Kind::Number),
    ("discount_cost", Kind::Number),
    ("max_redemptions", Kind::Number),
    ("cost_per_contact", Kind::Number),
    ("custom", Kind::Flag),
    ("fair", Kind::Flag),
];

/// How to load a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Forecast baseline demand and uptake from the history files whenever they
    /// exist, even when `baseline_demand` / `uptake` are given (`allot forecast`).
    pub prefer_history: bool,
    /// Inbound delays of a what-if variant, applied while `inbound` is read.
    pub inbound_delays: Vec<InboundDelay>,
    /// When set, every file the load reads (the scenario's tables, a
    /// variant's `scenario.toml`, its base and bases of bases), resolved
    /// through symlinks, must lie under this directory; one outside it is
    /// reported like a missing one. Why: `POST /v1/plans` plans what a remote
    /// planner names, and must not read files outside `--scenarios`.
    pub root: Option<PathBuf>,
    /// Overrides of the scenario's `[forecast]` settings (`allot forecast --frequency`, `--horizon`).
    pub forecast: ForecastOverride,
    /// Showings recorded by the decision service (outcome events), read as
    /// more offer history: when given, the uptake is forecast from
    /// `offer_history` (if the scenario has one) and these rows, not read
    /// from `uptake` (`allot forecast --outcomes`, drift re-plans). Rows of a
    /// customer or offer the scenario does not have are left out and counted.
    pub outcome_history: Vec<OutcomeShowings>,
}

/// A customer's showings and acceptances of one offer on one day, as the
/// decision service recorded them (its outcome events), by id.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeShowings {
    /// The customer.
    pub customer_id: String,
    /// The offer.
    pub offer_id: String,
    /// The day.
    pub date: NaiveDate,
    /// Showings.
    pub shown: u32,
    /// Acceptances (at most `shown`).
    pub accepted: u32,
}

/// Command-line overrides of `[forecast]`; `None` keeps the scenario's setting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ForecastOverride {
    /// `Some(None)`: infer (`auto`); `Some(Some(f))`: this frequency.
    pub frequency: Option<Option<allot_forecasting::demand::frequency::Frequency>>,
    /// Periods to forecast at least.
    pub horizon: Option<usize>,
}

/// Matching rows of an inbound delay, applied while `inbound` is read (the
/// problem keeps no arrival dates, so a variant cannot apply it afterwards).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundDelay {
    /// Days later.
    pub days: u32,
    /// Only this warehouse.
    pub warehouse: Option<String>,
    /// Only this SKU.
    pub sku: Option<String>,
}

/// Every table a scenario directory may hold, by file stem (each as `.csv`
/// or `.parquet`).
pub const TABLES: &[&str] = &[
    "customers",
    "offers",
    "offer_items",
    "uptake",
    "inventory",
    "inbound",
    "lanes",
    "zones",
    "baseline_demand",
    "sales_history",
    "promotions_plan",
    "offer_history",
    "rules",
    "conflicts",
    "contact_history",
    crate::scenario::customer_features::STEM,
];

/// The files of `dir` that look like tables (`.csv` or `.parquet`, any
/// case) but are none of [`TABLES`]: an issue when the name is close to a
/// table's (`rule.csv`, `Conflicts.csv`, `inbound.CSV`: the same edit
/// distance as a misspelt column, see [`likely_meant`]) or speaks of
/// governance (`opt_outs.csv`), else a note. Why: a misnamed table was read
/// as absent, without a word; `rules.csv` named `rule.csv` dropped every
/// contact cap of the plan.
fn check_file_names(dir: &Path, issues: &mut Issues, notes: &mut Vec<String>) -> Result<(), LoadError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::io(dir, e))?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if is_leftover(&name) {
            continue;
        }
        let Some((stem, extension)) = name.rsplit_once('.') else { continue };
        let lower = extension.to_ascii_lowercase();
        if !matches!(lower.as_str(), "csv" | "parquet") || (extension == lower && TABLES.contains(&stem)) {
            continue;
        }
        if let Some(table) = table_meant(&name) {
            issues.file(&name, format!("a table's name: `{name}` is none, did you mean `{table}.{lower}`? (a misnamed table is an error, never ignored)"));
        } else if let Some(word) = speaks_of_governance(stem) {
            issues.file(&name, format!("a table's name: `{name}` is none, and a file that speaks of {word} is never ignored (consent and suppression are columns of customers)"));
        } else {
            notes.push(format!("{name}: not a table of a scenario, ignored"));
        }
    }
    Ok(())
}

/// Whether a file is another tool's leftover beside the tables (a macOS
/// `._customers.csv`, an Excel lock `~$customers.csv`): never a table,
/// however close its name.
fn is_leftover(name: &str) -> bool {
    name.starts_with('.') || name.starts_with("~$")
}

/// The table a file named `name` is, or most likely means: its stem is one
/// of [`TABLES`] in any case, or close to one (see [`likely_meant`]), and
/// its extension `csv` or `parquet` in any case; `None` for any other file
/// and for other tools' leftovers (`._customers.csv`, `~$offers.csv`).
pub(crate) fn table_meant(name: &str) -> Option<&'static str> {
    if is_leftover(name) {
        return None;
    }
    let (stem, extension) = name.rsplit_once('.')?;
    if !matches!(extension.to_ascii_lowercase().as_str(), "csv" | "parquet") {
        return None;
    }
    TABLES.iter().copied().find(|t| t.eq_ignore_ascii_case(stem)).or_else(|| likely_meant(stem, TABLES.iter().copied()))
}

/// Loads a scenario directory that holds its own tables. Callers use
/// `load_scenario` (in `variants.rs`), which also reads what-if variants: this
/// module knows nothing of variants, they are applied on top of its result.
pub(crate) fn load_root(dir: &Path, options: LoadOptions) -> Result<LoadedScenario, LoadError> {
    if !dir.is_dir() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "not a scenario directory");
        return Err(LoadError::io(dir, e));
    }
    let config = read_config(dir)?;
    let content_hash = content_hash(dir)?;
    let mut issues = Issues::default();
    let mut notes = Vec::new();
    check_file_names(dir, &mut issues, &mut notes)?;
    let required = |stem: &str, typed: &[(&str, Kind)], issues: &mut Issues| -> Result<Option<Table>, LoadError> {
        let t = Table::read(dir, stem, typed)?;
        if t.is_none() {
            issues.file(&format!("{stem}.csv"), "this required file (as .csv or .parquet)");
        }
        Ok(t)
    };

    let tier_index: HashMap<&str, u32> =
        config.tiers.iter().enumerate().map(|(i, t)| (t.name.as_str(), i as u32)).collect();
    let tier_names = config.tiers.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
    let tier_expected = format!("a tier of scenario.toml [tiers] ({tier_names})");

    // Zones: fixed by zones.csv when present, else the zones that appear.
    let mut zones = Names::default();
    let mut delivery_capacity: Vec<Option<f64>> = Vec::new();
    if let Some(t) = Table::read(dir, "zones", &[("delivery_capacity", Kind::Number)])? {
        let ids = t.parse("zone", true, &mut issues, TEXT);
        let caps = t.parse("delivery_capacity", false, &mut issues, NON_NEGATIVE);
        t.check_header(&mut issues, &mut notes);
        for (i, (id, cap)) in ids.into_iter().zip(caps).enumerate() {
            let Some(id) = id else { continue };
            if zones.index.contains_key(&id) {
                issues.push(t.issue(i, "zone", Some(&id), "a zone id not listed before (duplicate)"));
                continue;
            }
            zones.resolve(&id);
            delivery_capacity.push(cap);
        }
        zones.closed = true;
    }
    let zone_expected = if zones.closed { "a zone listed in zones.csv" } else { "a zone id" };

    // Customers.
    let mut customers = Customers::default();
    let mut customer_index: HashMap<String, u32> = HashMap::default();
    let mut groups = Names::default();
    if let Some(t) = required("customers", &[("consent", Kind::Flag), ("suppressed", Kind::Flag), ("max_offers", Kind::Whole)], &mut issues)? {
        if t.is_empty() {
            issues.file(&t.file, "at least one customer row");
        }
        let ids = t.parse("customer_id", true, &mut issues, TEXT);
        let zone = t.parse_with("zone", true, &mut issues, zone_expected, |s| zones.resolve(s));
        let tier = t.parse_with("tier", true, &mut issues, &tier_expected, |s| tier_index.get(s).copied());
        // Governance fails closed: a present consent or suppression column needs
        // a value in every row (an empty cell is not consent).
        let consent = t.parse("consent", t.has_column("consent"), &mut issues, BOOL);
        let suppressed = t.parse("suppressed", t.has_column("suppressed"), &mut issues, BOOL);
        let group = t.parse("group", false, &mut issues, TEXT);
        let max_offers = t.parse("max_offers", false, &mut issues, COUNT);
        t.check_header(&mut issues, &mut notes);
        // Sized once: grown by doubling, the index and the columns were
        // rehashed and copied over and over (10M customers).
        customer_index.reserve(t.len());
        customers.reserve(t.len());
        for (i, id) in ids.into_iter().enumerate() {
            let Some(id) = id else { continue };
            if customer_index.contains_key(&id) {
                issues.push(t.issue(i, "customer_id", Some(&id), "a customer_id not listed before (duplicate)"));
                continue;
            }
            customer_index.insert(id.clone(), customers.id.len() as u32);
            customers.id.push(id);
            customers.zone.push(zone[i].unwrap_or(0));
            customers.tier.push(tier[i].unwrap_or(0));
            customers.consent.push(consent[i].unwrap_or(true));
            customers.suppressed.push(suppressed[i].unwrap_or(false));
            customers.group.push(group[i].as_deref().and_then(|g| groups.resolve(g)));
            // The customer's own cap only: the policy's default is resolved when the
            // plan is made (`Problem::contact_cap_of`), after any variant changed it.
            customers.max_offers.push(max_offers[i]);
        }
    }

    // Customer attributes for the uptake model: checked whenever present (a
    // protected column fails the load even when uptake.csv makes them unused).
    let attributes = crate::scenario::customer_features::read_customer_features(dir, &customers.id, &mut issues)?;

    // Stock: inventory and inbound define the warehouses and SKUs.
    let mut warehouses = Names::default();
    let mut skus = Names::default();
    let mut stock: Vec<StockPoint> = Vec::new();
    let mut stock_at: HashMap<(u32, u32), usize> = HashMap::default();
    if let Some(t) = required("inventory", &[("on_hand", Kind::Number), ("safety_stock", Kind::Number)], &mut issues)? {
        let w = t.parse_with("warehouse_id", true, &mut issues, "a warehouse id", |s| warehouses.resolve(s));
        let s = t.parse_with("sku", true, &mut issues, "a SKU id", |x| skus.resolve(x));
        let on_hand = t.parse("on_hand", true, &mut issues, NON_NEGATIVE);
        let safety = t.parse("safety_stock", false, &mut issues, NON_NEGATIVE);
        t.check_header(&mut issues, &mut notes);
        for i in 0..t.len() {
            let (Some(w), Some(s), Some(on_hand)) = (w[i], s[i], on_hand[i]) else { continue };
            if stock_at.contains_key(&(w, s)) {
                let v = format!("{}/{}", warehouses.names[w as usize], skus.names[s as usize]);
                issues.push(t.issue(i, "sku", Some(&v), "one row per warehouse and SKU (duplicate)"));
                continue;
            }
            stock_at.insert((w, s), stock.len());
            let safety_stock = safety[i].unwrap_or(0.0);
            stock.push(StockPoint { warehouse: w, sku: s, on_hand, safety_stock, inbound: Vec::new() });
        }
    }
    let mut inbound_delay_matches = vec![0; options.inbound_delays.len()];
    if let Some(t) = Table::read(dir, "inbound", &[("qty", Kind::Number)])? {
        let w = t.parse_with("warehouse_id", true, &mut issues, "a warehouse id", |s| warehouses.resolve(s));
        let s = t.parse_with("sku", true, &mut issues, "a SKU id", |x| skus.resolve(x));
        let qty = t.parse("qty", true, &mut issues, NON_NEGATIVE);
        let arrival = t.parse("arrival_date", true, &mut issues, DATE);
        t.check_header(&mut issues, &mut notes);
        for i in 0..t.len() {
            let (Some(w), Some(s), Some(qty), Some(day)) = (w[i], s[i], qty[i], arrival[i]) else { continue };
            let at = *stock_at.entry((w, s)).or_insert_with(|| {
                stock.push(StockPoint { warehouse: w, sku: s, on_hand: 0.0, safety_stock: 0.0, inbound: Vec::new() });
                stock.len() - 1
            });
            let mut day = day;
            for (k, d) in options.inbound_delays.iter().enumerate() {
                let hit = d.warehouse.as_ref().is_none_or(|x| *x == warehouses.names[w as usize]) && d.sku.as_ref().is_none_or(|x| *x == skus.names[s as usize]);
                if hit {
                    // A delay past the calendar's end arrives never (beyond any horizon).
                    day = day.checked_add_days(chrono::Days::new(u64::from(d.days))).unwrap_or(NaiveDate::MAX);
                    inbound_delay_matches[k] += 1;
                }
            }
            if config.horizon.contains(day) {
                stock[at].inbound.push(Receipt { day, units: qty });
            }
        }
    }
    warehouses.closed = true;
    skus.closed = true;
    let sku_expected = "a SKU listed in inventory.csv or inbound.csv";

    // Offers and their bills of materials.
    let mut offers: Vec<Offer> = Vec::new();
    let mut offer_index: HashMap<String, u32> = HashMap::default();
    let mut channels = Names::default();
    let mut tags = Names::default();
    if let Some(t) = required("offers", OFFER_COLUMNS, &mut issues)? {
        let ids = t.parse("offer_id", true, &mut issues, TEXT);
        let margin = t.parse("margin", true, &mut issues, NUMBER);
        let discount = t.parse("discount_cost", false, &mut issues, NON_NEGATIVE);
        let max_red = t.parse("max_redemptions", false, &mut issues, NON_NEGATIVE);
        let min_tier = t.parse_with("min_tier", false, &mut issues, &tier_expected, |s| tier_index.get(s).copied());
        let custom = t.parse("custom", false, &mut issues, BOOL);
        let start = t.parse("start_date", false, &mut issues, DATE);
        let end = t.parse("end_date", false, &mut issues, DATE);
        let fair = t.parse("fair", false, &mut issues, BOOL);
        let channel = t.parse("channel", false, &mut issues, TEXT);
        let tag_lists = t.parse("tags", false, &mut issues, TEXT);
        let contact_date = t.parse("contact_date", false, &mut issues, DATE);
        let cost_per_contact = t.parse("cost_per_contact", false, &mut issues, NON_NEGATIVE);
        t.check_header(&mut issues, &mut notes);
        for i in 0..t.len() {
            // An offer whose margin is missing or bad is still listed (its
            // issue is recorded, the load fails): left out, every row naming
            // it was an issue too, 217 of them for one cell.
            let Some(id) = &ids[i] else { continue };
            let margin = margin[i].unwrap_or(0.0);
            if offer_index.contains_key(id) {
                issues.push(t.issue(i, "offer_id", Some(id), "an offer_id not listed before (duplicate)"));
                continue;
            }
            if let (Some(s), Some(e)) = (start[i], end[i]) {
                if e < s {
                    issues.push(t.issue(i, "end_date", Some(&e.to_string()), format!("a date on or after start_date {s}")));
                }
            }
            if let Some(day) = contact_date[i] {
                let (first, last) = config.horizon.clamp(start[i], end[i]);
                if day < first || day > last {
                    issues.push(t.issue(i, "contact_date", Some(&day.to_string()), format!("a day inside the horizon and the offer's validity ({first} to {last})")));
                }
            }
            let mut offer_tags: Vec<u32> = tag_lists[i].as_deref().map_or_else(Vec::new, |list| split_list(list).filter_map(|tag| tags.resolve(tag)).collect());
            offer_tags.sort_unstable();
            offer_tags.dedup();
            offer_index.insert(id.clone(), offers.len() as u32);
            offers.push(Offer {
                id: id.clone(),
                margin,
                discount_cost: discount[i].unwrap_or(0.0),
                max_redemptions: max_red[i],
                min_tier: min_tier[i],
                custom: custom[i].unwrap_or(false),
                start_date: start[i],
                end_date: end[i],
                fair: fair[i].unwrap_or(true),
                items: Vec::new(),
                channel: channels.resolve(channel[i].as_deref().filter(|c| !c.trim().is_empty()).map_or(DEFAULT_CHANNEL, str::trim)).unwrap_or(0),
                tags: offer_tags,
                contact_date: contact_date[i],
                cost_per_contact: cost_per_contact[i].unwrap_or(0.0),
            });
        }
    }
    if let Some(t) = required("offer_items", &[("qty", Kind::Number)], &mut issues)? {
        let o = t.parse_with("offer_id", true, &mut issues, "an offer_id of offers", |s| offer_index.get(s).copied());
        let s = t.parse_with("sku", true, &mut issues, sku_expected, |x| skus.resolve(x));
        let qty = t.parse("qty", true, &mut issues, NON_NEGATIVE);
        t.check_header(&mut issues, &mut notes);
        for i in 0..t.len() {
            let (Some(o), Some(sku), Some(qty)) = (o[i], s[i], qty[i]) else { continue };
            let items = &mut offers[o as usize].items;
            if items.iter().any(|it| it.sku == sku) {
                issues.push(t.issue(i, "sku", Some(&skus.names[sku as usize]), "one row per offer and SKU (duplicate)"));
                continue;
            }
            items.push(OfferItem { sku, qty });
        }
    }

    // Lanes.
    let mut lanes: Vec<Lane> = Vec::new();
    if let Some(t) = required("lanes", &[("cost_per_unit", Kind::Number), ("transit_days", Kind::Whole), ("capacity", Kind::Number)], &mut issues)? {
        let w = t.parse_with("warehouse_id", true, &mut issues, "a warehouse listed in inventory.csv or inbound.csv", |s| warehouses.resolve(s));
        let z = t.parse_with("zone", true, &mut issues, zone_expected, |s| zones.resolve(s));
        let cost = t.parse("cost_per_unit", true, &mut issues, NON_NEGATIVE);
        let transit = t.parse("transit_days", true, &mut issues, COUNT);
        let capacity = t.parse("capacity", false, &mut issues, NON_NEGATIVE);
        t.check_header(&mut issues, &mut notes);
        let mut seen = HashMap::default();
        for i in 0..t.len() {
            let (Some(w), Some(z), Some(cost), Some(transit)) = (w[i], z[i], cost[i], transit[i]) else { continue };
            if seen.insert((w, z), i).is_some() {
                let v = format!("{}->{}", warehouses.names[w as usize], zones.names[z as usize]);
                issues.push(t.issue(i, "zone", Some(&v), "one lane per warehouse and zone (duplicate)"));
                continue;
            }
            lanes.push(Lane { warehouse: w, zone: z, cost_per_unit: cost, transit_days: transit, capacity: capacity[i] });
        }
    }

    // Baseline demand: the file, else a forecast from sales history, else none.
    let mut baseline: Vec<BaselineDemand> = Vec::new();
    let buckets = config.horizon.buckets(config.policy.bucket_days);
    let mut demand_forecast = None;
    let from_history = |stem: &str| options.prefer_history && Table::exists(dir, stem);
    if let Some(t) = if from_history("sales_history") { None } else { Table::read(dir, "baseline_demand", &[("units", Kind::Number)])? } {
        let z = t.parse_with("zone", true, &mut issues, zone_expected, |s| zones.resolve(s));
        let s = t.parse_with("sku", true, &mut issues, sku_expected, |x| skus.resolve(x));
        let units = t.parse("units", true, &mut issues, NON_NEGATIVE);
        // A `date` column is read only with time buckets (model version 2):
        // each row is then that day's demand, in its day's bucket.
        let dated = config.policy.bucket_days.is_some() && t.has_column("date");
        let date = if dated { t.parse("date", true, &mut issues, DATE) } else { Vec::new() };
        t.check_header(&mut issues, &mut notes);
        let mut seen = HashMap::default();
        // Rows in file order, one per (zone, SKU, bucket).
        let mut row_of: HashMap<(u32, u32, u32), usize> = HashMap::default();
        let mut add = |zone, sku, bucket, units| {
            let at = *row_of.entry((zone, sku, bucket)).or_insert_with(|| {
                baseline.push(BaselineDemand { zone, sku, units: 0.0, bucket });
                baseline.len() - 1
            });
            baseline[at].units += units;
        };
        for i in 0..t.len() {
            let (Some(zone), Some(sku), Some(units)) = (z[i], s[i], units[i]) else { continue };
            let day = if dated {
                let Some(day) = date[i] else { continue };
                Some(day)
            } else {
                None
            };
            if seen.insert((zone, sku, day), i).is_some() {
                let expected = if dated { "one row per zone, SKU and date (duplicate)" } else { "one row per zone and SKU (duplicate)" };
                issues.push(t.issue(i, "sku", Some(&skus.names[sku as usize]), expected));
                continue;
            }
            match day {
                // Rows dated outside the horizon are not demand of this plan.
                Some(day) if config.horizon.contains(day) => add(zone, sku, buckets.of(day), units),
                Some(_) => {}
                None => {
                    for (bucket, share) in buckets.spread(units) {
                        add(zone, sku, bucket, share);
                    }
                }
            }
        }
    } else if let Some(t) = Table::read(dir, "sales_history", &[("units", Kind::Number), ("price", Kind::Number), ("promo", Kind::Number)])? {
        let plan = Table::read(dir, "promotions_plan", &[("price", Kind::Number), ("promo", Kind::Number)])?;
        let forecast = forecast_baseline(&t, plan.as_ref(), &config, &options.forecast, &mut zones, &mut skus, &mut issues);
        t.check_header(&mut issues, &mut notes);
        if let Some(plan) = &plan {
            plan.check_header(&mut issues, &mut notes);
        }
        baseline = forecast.baseline(&buckets);
        notes.push(format!("baseline_demand forecast: {} zone x SKU series from {} ({})", baseline.len(), t.file, forecast.summary()));
        demand_forecast = Some(forecast);
    }

    // Uptake: the file, else a forecast from offer history.
    let mut uptake: Vec<Uptake> = Vec::new();
    let mut uptake_value: Option<Vec<f64>> = None;
    let mut uptake_report = None;
    let outcomes = &options.outcome_history;
    match if from_history("offer_history") || !outcomes.is_empty() { None } else { Table::read_in_batches(dir, "uptake", &[("p", Kind::Number), ("value", Kind::Number)])? } {
        Some(batches) => {
            if let Some(a) = &attributes {
                notes.push(format!("{} unused: {} gives the uptake (the attributes feed the model fitted from offer_history)", a.file, batches.file));
            }
            let rows = batches.rows;
            uptake.reserve(rows);
            let mut customer_of = customer_lookup(&customers.id, &customer_index);
            let mut repeats = PairRepeats::new(customers.id.len(), offers.len());
            for t in batches {
                let t = t?;
                let c = t.parse_with("customer_id", true, &mut issues, "a customer_id of customers", &mut customer_of);
                let o = t.parse_with("offer_id", true, &mut issues, "an offer_id of offers", |s| offer_index.get(s).copied());
                let p = t.parse("p", true, &mut issues, PROBABILITY);
                // Per-pair value of one acceptance (version 2); a blank cell is the offer's margin.
                let value = t.has_column("value").then(|| t.parse("value", false, &mut issues, NUMBER));
                t.check_header(&mut issues, &mut notes);
                if value.is_some() && uptake_value.is_none() {
                    uptake_value = Some(Vec::with_capacity(rows));
                }
                for i in 0..t.len() {
                    let (Some(customer), Some(offer), Some(p)) = (c[i], o[i], p[i]) else { continue };
                    if repeats.repeats(customer, offer, || uptake.iter().map(|u| (u.customer, u.offer))) {
                        issues.push(t.issue(i, "offer_id", Some(&offers[offer as usize].id), "one row per customer and offer (duplicate)"));
                        continue;
                    }
                    uptake.push(Uptake { customer, offer, p });
                    if let (Some(out), Some(value)) = (uptake_value.as_mut(), value.as_ref()) {
                        out.push(value[i].unwrap_or(offers[offer as usize].margin));
                    }
                }
            }
        }
        None => match Table::read(dir, "offer_history", &[("shown", Kind::Whole), ("accepted", Kind::Whole)])?.map(Some).or_else(|| (!outcomes.is_empty()).then_some(None)) {
            Some(t) => {
                let mut history = match &t {
                    Some(t) => {
                        let rows = read_offer_history(t, &customer_index, &offer_index, config.horizon.start, &mut issues);
                        t.check_header(&mut issues, &mut notes);
                        rows
                    }
                    None => Vec::new(),
                };
                let before = history.len();
                history.extend(outcomes.iter().filter_map(|r| {
                    let (customer, offer) = (*customer_index.get(&r.customer_id)?, *offer_index.get(&r.offer_id)?);
                    Some(crate::scenario::uptake_history::Showing { customer, offer, date: r.date, shown: f64::from(r.shown), accepted: f64::from(r.accepted.min(r.shown)) })
                }));
                let added = history.len() - before;
                if added < outcomes.len() {
                    notes.push(format!("{} outcome rows left out: their customer or offer is not in the scenario", outcomes.len() - added));
                }
                let source = match (&t, outcomes.is_empty()) {
                    (Some(t), true) => t.file.clone(),
                    (Some(t), false) => format!("{} and {added} rows of outcome events", t.file),
                    (None, _) => format!("{added} rows of outcome events"),
                };
                if issues.is_empty() {
                    let tier_names: Vec<String> = config.tiers.iter().map(|t| t.name.clone()).collect();
                    match crate::scenario::uptake_history::forecast_uptake(history, &customers, &offers, &tier_names, &zones.names, &config.horizon, attributes.as_ref()) {
                        Some((rows, report)) => {
                            if let Some(a) = &attributes {
                                notes.push(a.summary());
                            }
                            let h = &report.scores.holdout;
                            let without = report.attributes.as_ref().map_or(String::new(), |a| {
                                let w = &a.without_attributes.holdout;
                                format!("; without customer attributes: AUC {:.3}, log-loss {:.4}", w.auc, w.log_loss)
                            });
                            notes.push(format!(
                                "uptake forecast: {} candidate pairs from {} (logistic regression, L2 {:.1e} by cross-validation; holdout from {}: {} showings, AUC {:.3}, log-loss {:.4}, Brier {:.4}, ECE {:.4}{without})",
                                rows.len(),
                                source,
                                report.scores.l2,
                                report.holdout_from,
                                h.rows,
                                h.auc,
                                h.log_loss,
                                h.brier,
                                h.ece
                            ));
                            uptake = rows;
                            uptake_report = Some(report);
                        }
                        None => issues.file(t.as_ref().map_or("outcome events", |t| t.file.as_str()), "rows to fit an uptake model on (none before the holdout)"),
                    }
                }
            }
            None => issues.file("uptake.csv", "this required file (as .csv or .parquet), or offer_history.csv to forecast it from"),
        },
    }

    channels.closed = true;
    tags.closed = true;
    let rule_rows = read_rules(dir, &mut channels, &mut tags, &offer_index, &mut issues, &mut notes)?;
    let conflict_rows = read_conflicts(dir, &mut channels, &mut tags, &offer_index, &mut issues, &mut notes)?;
    let history = read_contact_history(dir, &mut channels, &mut tags, &customer_index, &offer_index, &mut issues, &mut notes)?;

    if !issues.is_empty() {
        return Err(LoadError::Invalid { issues: issues.list, total: issues.total });
    }
    delivery_capacity.resize(zones.names.len(), None);
    let ScenarioConfig { horizon, policy, tiers, forecast: _ } = config;
    let problem = Problem {
        horizon,
        policy,
        tiers,
        zones: zones
            .names
            .into_iter()
            .zip(delivery_capacity)
            .map(|(id, delivery_capacity)| Zone { id, delivery_capacity })
            .collect(),
        skus: skus.names,
        warehouses: warehouses.names,
        groups: groups.names,
        customers,
        offers,
        uptake,
        uptake_value,
        channels: if channels.names.is_empty() { vec![DEFAULT_CHANNEL.to_string()] } else { channels.names },
        tags: tags.names,
        rules: Vec::new(),
        contact_rules: Vec::new(),
        conflicts: Vec::new(),
        history,
        stock,
        lanes,
        baseline,
    };
    // A rule or conflict whose selector picks no offer is a mistake, named with its row.
    let mut problem = problem;
    let picks_none = |problem: &Problem, selector: &Selector| !(0..problem.offers.len() as u32).any(|o| problem.selects(selector, o));
    for (rule, issue) in rule_rows {
        let selector = match &rule {
            ReadRule::Total(rule) => &rule.selector,
            ReadRule::PerCustomer(rule) => &rule.selector,
        };
        if picks_none(&problem, selector) {
            issues.push(issue);
        }
        match rule {
            ReadRule::Total(rule) => problem.rules.push(rule),
            ReadRule::PerCustomer(rule) => problem.contact_rules.push(rule),
        }
    }
    for (conflict, [issue_a, issue_b]) in conflict_rows {
        if picks_none(&problem, &conflict.a) {
            issues.push(issue_a);
        }
        if picks_none(&problem, &conflict.b) {
            issues.push(issue_b);
        }
        problem.conflicts.push(conflict);
    }
    if !issues.is_empty() {
        return Err(LoadError::Invalid { issues: issues.list, total: issues.total });
    }
    Ok(LoadedScenario { dir: dir.to_path_buf(), problem, content_hash, notes, uptake_report, demand_forecast, lineage: Vec::new(), inbound_delay_matches })
}

/// Baseline demand forecast from `sales_history` (`date`, `zone`, `sku`,
/// `units`): the history's frequency is set (`[forecast] frequency`, or the
/// command line's) or inferred from each series' dates, rows are summed per
/// period, each series runs from its first period to the history's last, and
/// each gets the forecast of `allot_forecasting::demand`, up to the period
/// holding the horizon's last day (or `horizon` periods, if more).
///
/// A missing period is zero sales in a daily history; in a coarser one it is
/// an error naming the series and period, unless `fill_missing = "zero"`.
fn forecast_baseline(
    t: &Table,
    plan: Option<&Table>,
    config: &ScenarioConfig,
    overrides: &ForecastOverride,
    zones: &mut Names,
    skus: &mut Names,
    issues: &mut Issues,
) -> DemandForecast {
    use allot_forecasting::demand::promotions::{forecast_all_with_drivers, Drivers, SeriesDrivers};
    use allot_forecasting::demand::{forecast_all, DemandConfig};
    let dates = t.parse("date", true, issues, DATE);
    let z = t.parse_with("zone", true, issues, "a zone id", |s| zones.resolve(s));
    let s = t.parse_with("sku", true, issues, "a SKU listed in inventory.csv or inbound.csv", |x| skus.resolve(x));
    let units = t.parse("units", true, issues, NON_NEGATIVE);
    let price = t.parse("price", false, issues, POSITIVE);
    let promo = t.parse("promo", false, issues, NON_NEGATIVE);
    let with_drivers = t.has_column("price") || t.has_column("promo");
    let settings = &config.forecast;
    let horizon_end = config.horizon.start + chrono::Days::new(u64::from(config.horizon.days.max(1)) - 1);
    let mut forecast = DemandForecast {
        calendar: Calendar { frequency: Frequency::Daily, anchor: config.horizon.start },
        first_period: 0,
        holdout: 0,
        horizon_start: config.horizon.start,
        horizon_days: config.horizon.days as usize,
        series: Vec::new(),
        effects: Vec::new(),
    };
    if t.is_empty() {
        // Read as no demand at all, silently, where an empty offer_history is an error.
        issues.file(&t.file, "some rows: sales history to forecast the baseline demand from (the file has none; give baseline_demand instead)");
        return forecast;
    }
    let Some(anchor) = dates.iter().flatten().min().copied() else { return forecast };
    let mut rows: BTreeMap<(u32, u32), Vec<(NaiveDate, f64, usize)>> = BTreeMap::new();
    for i in 0..t.len() {
        let (Some(d), Some(zone), Some(sku), Some(u)) = (dates[i], z[i], s[i], units[i]) else { continue };
        rows.entry((zone, sku)).or_default().push((d, u, i));
    }
    let row_drivers = |i: usize| Drivers { promo: promo[i].unwrap_or(0.0), price: price[i] };
    let name = |(zone, sku): (u32, u32), zones: &Names, skus: &Names| format!("series zone {}, SKU {}", zones.names[zone as usize], skus.names[sku as usize]);
    // The rows' own frequency: each series with three dates or more votes for
    // the one its dates fit, and the finest vote wins (a sparse daily series
    // can look weekly or monthly; a weekly one never looks daily). Without a
    // vote, all the dates together decide.
    let (mut finest, mut irregular): (Option<Frequency>, Option<((u32, u32), String)>) = (None, None);
    for (&key, series) in &rows {
        let d = distinct_sorted(series.iter().map(|r| r.0));
        if d.len() < 3 {
            continue;
        }
        match Frequency::infer(&d, d[0]) {
            Ok(Some(f)) => finest = Some(finest.map_or(f, |g| g.min(f))),
            Ok(None) => {}
            Err(e) => {
                irregular.get_or_insert((key, e.to_string()));
            }
        }
    }
    let observed = match finest {
        Some(f) => Ok(f),
        None => {
            Frequency::infer(&distinct_sorted(dates.iter().flatten().copied()), anchor).map(|f| f.unwrap_or(Frequency::Daily)).map_err(|e| irregular.clone().unwrap_or_else(|| (rows.keys().next().copied().unwrap_or_default(), e.to_string())))
        }
    };
    // Rows a day apart: a missing day is no sales, whatever period the forecast reads them by.
    let daily_rows = observed == Ok(Frequency::Daily);
    let frequency = match overrides.frequency.unwrap_or(settings.frequency) {
        Some(f) => f,
        None => match observed {
            Ok(f) => f,
            Err((key, e)) => {
                issues.file(&t.file, format!("dates of one period each (day, week, month, quarter or year): {} has {e} (or set [forecast] frequency)", name(key, zones, skus)));
                return forecast;
            }
        },
    };
    let last_day = dates.iter().flatten().max().copied().unwrap_or(anchor);
    if last_day >= config.horizon.start {
        issues.file(&t.file, format!("sales before the horizon: its last date {last_day} is on or after the horizon's start {}", config.horizon.start));
        return forecast;
    }
    let calendar = Calendar { frequency, anchor };
    // Per series and period: units summed, drivers averaged over the period's rows.
    let mut indexed: Vec<((u32, u32), NaiveDate, BTreeMap<i64, (f64, DriverMean)>)> = Vec::with_capacity(rows.len());
    for (key, series) in rows {
        let first_day = series.iter().map(|r| r.0).min().unwrap_or(anchor);
        let mut per_period: BTreeMap<i64, (f64, DriverMean)> = BTreeMap::new();
        for (d, u, row) in series {
            match calendar.index_of_day(d) {
                Ok(k) => {
                    let cell = per_period.entry(k).or_default();
                    cell.0 += u;
                    cell.1.add(row_drivers(row));
                }
                Err(e) => issues.push(t.issue(row, "date", Some(&d.to_string()), format!("a {} date: {e}", frequency.word()))),
            }
        }
        indexed.push((key, first_day, per_period));
    }
    let Some(last_seen) = indexed.iter().filter_map(|(_, _, p)| p.keys().next_back().copied()).max() else { return forecast };
    // Daily rows read by a coarser period: a period the rows cover only in
    // part would read as a slump. The history's last one, when it runs past
    // the last day, is forecast rather than fitted; a series' first, when the
    // series starts after its first day, is left out.
    let coarse = daily_rows && frequency != Frequency::Daily;
    let last = if coarse && calendar.index_of_day(last_day + chrono::Days::new(1)) == Ok(last_seen) { last_seen - 1 } else { last_seen };
    let mut keys = Vec::with_capacity(indexed.len());
    let mut histories = Vec::with_capacity(indexed.len());
    let mut drivers: Vec<SeriesDrivers> = Vec::with_capacity(indexed.len());
    for (key, first_day, per_period) in indexed {
        let Some(&first_seen) = per_period.keys().next() else { continue };
        let first = if coarse && first_day > calendar.start(first_seen) { first_seen + 1 } else { first_seen };
        if first > last {
            continue;
        }
        let mut values = vec![0.0; (last - first + 1) as usize];
        let mut history = vec![Drivers::default(); values.len()];
        for (k, (u, d)) in per_period.range(first..=last) {
            values[(k - first) as usize] = *u;
            history[(k - first) as usize] = d.mean();
        }
        if !daily_rows && !settings.fill_missing_zero && per_period.len() < values.len() {
            let missing = (first..=last).find(|k| !per_period.contains_key(k)).unwrap_or(last);
            issues.file(
                &t.file,
                format!(
                    "a row for every {} period: {} has none for the period of {} (set [forecast] fill_missing = \"zero\" to read missing periods as no sales)",
                    frequency.word(),
                    name(key, zones, skus),
                    calendar.start(missing)
                ),
            );
            return forecast;
        }
        keys.push(key);
        histories.push(values);
        drivers.push(SeriesDrivers { history, future: Vec::new(), group: key.1 as usize });
    }
    let needed = calendar.index_of_day(horizon_end).unwrap_or(last) - last;
    let horizon = (needed.max(1) as usize).max(overrides.horizon.or(settings.horizon).unwrap_or(0));
    if let Some(plan) = plan {
        if !with_drivers {
            issues.file(&plan.file, "a promo or price column in sales_history too: without one a planned promotion's effect cannot be learnt");
        }
        plan_drivers(plan, &calendar, last + 1, horizon, &keys, &mut drivers, zones, skus, issues);
    }
    let mut demand = DemandConfig::for_frequency(frequency);
    if let Some(h) = settings.holdout {
        demand.holdout = h;
    }
    let (forecasts, effects) = if with_drivers || plan.is_some() {
        forecast_all_with_drivers(&histories, &drivers, horizon, &demand)
    } else {
        (forecast_all(&histories, horizon, &demand), Vec::new())
    };
    forecast.calendar = calendar;
    forecast.first_period = last + 1;
    forecast.holdout = demand.holdout;
    forecast.series = keys.into_iter().zip(forecasts).collect();
    forecast.effects = effects;
    forecast
}

/// Dates in order, each once.
fn distinct_sorted(dates: impl Iterator<Item = NaiveDate>) -> Vec<NaiveDate> {
    let mut d: Vec<NaiveDate> = dates.collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// The mean promotion depth and price of the rows of one period.
#[derive(Debug, Default, Clone, Copy)]
struct DriverMean {
    promo: f64,
    rows: usize,
    price: f64,
    priced: usize,
}

impl DriverMean {
    fn add(&mut self, d: allot_forecasting::demand::promotions::Drivers) {
        self.promo += d.promo;
        self.rows += 1;
        if let Some(p) = d.price {
            self.price += p;
            self.priced += 1;
        }
    }

    fn mean(&self) -> allot_forecasting::demand::promotions::Drivers {
        allot_forecasting::demand::promotions::Drivers {
            promo: self.promo / self.rows.max(1) as f64,
            price: (self.priced > 0).then(|| self.price / self.priced as f64),
        }
    }
}

/// Reads `promotions_plan` (`zone, sku, date`, optional `promo`, `price`):
/// the drivers planned for the forecast periods. A row must name a series of
/// `sales_history` (a misspelt SKU would drop its promotion unseen) and fall
/// in a forecast period; rows of one period are averaged.
#[allow(clippy::too_many_arguments)]
fn plan_drivers(
    plan: &Table,
    calendar: &Calendar,
    first_period: i64,
    horizon: usize,
    keys: &[(u32, u32)],
    drivers: &mut [allot_forecasting::demand::promotions::SeriesDrivers],
    zones: &Names,
    skus: &Names,
    issues: &mut Issues,
) {
    use allot_forecasting::demand::promotions::Drivers;
    let dates = plan.parse("date", true, issues, DATE);
    let z = plan.parse("zone", true, issues, TEXT);
    let s = plan.parse("sku", true, issues, TEXT);
    let price = plan.parse("price", false, issues, POSITIVE);
    let promo = plan.parse("promo", false, issues, NON_NEGATIVE);
    let position: HashMap<(u32, u32), usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut cells: BTreeMap<(usize, usize), DriverMean> = BTreeMap::new();
    for i in 0..plan.len() {
        let (Some(d), Some(zone), Some(sku)) = (dates[i], &z[i], &s[i]) else { continue };
        let Some(&zone_ix) = zones.index.get(zone.as_str()) else {
            issues.push(plan.issue(i, "zone", Some(zone), "a zone with sales_history"));
            continue;
        };
        let Some(&series) = skus.index.get(sku.as_str()).and_then(|&s| position.get(&(zone_ix, s))) else {
            issues.push(plan.issue(i, "sku", Some(sku), format!("a SKU with sales_history in zone {zone}")));
            continue;
        };
        if price[i].is_some() && drivers[series].history.iter().all(|d| d.price.is_none()) {
            issues.push(plan.issue(i, "price", price[i].map(|p| p.to_string()).as_deref(), format!("no price: zone {zone}, SKU {sku} has no prices in sales_history to learn their effect from")));
            continue;
        }
        let k = calendar.index_of_day(d).map(|p| p - first_period).unwrap_or(-1);
        if k < 0 || k as usize >= horizon {
            issues.push(plan.issue(i, "date", Some(&d.to_string()), format!("a date in the forecast periods, {} to {}", calendar.start(first_period), calendar.start(first_period + horizon as i64) - chrono::Days::new(1))));
            continue;
        }
        cells.entry((series, k as usize)).or_default().add(Drivers { promo: promo[i].unwrap_or(0.0), price: price[i] });
    }
    for ((series, k), cell) in cells {
        let future = &mut drivers[series].future;
        if future.len() <= k {
            future.resize(k + 1, Drivers::default());
        }
        future[k] = cell.mean();
    }
}

/// A rule of `rules.csv` as read: a coupling total or a per-customer cap.
enum ReadRule {
    Total(Rule),
    PerCustomer(ContactRule),
}

/// The selector columns of `rules.csv` and `conflicts.csv` (with a suffix in
/// the latter), parsed for every row; `selector` resolves one row's names.
struct SelectorColumns {
    suffix: &'static str,
    channels: Vec<Option<String>>,
    tags: Vec<Option<String>>,
    offers: Vec<Option<String>>,
    from: Vec<Option<NaiveDate>>,
    to: Vec<Option<NaiveDate>>,
}

impl SelectorColumns {
    fn parse(t: &Table, suffix: &'static str, issues: &mut Issues) -> Self {
        let col = |name: &str| format!("{name}{suffix}");
        SelectorColumns {
            suffix,
            channels: t.parse(&col("channels"), false, issues, TEXT),
            tags: t.parse(&col("tags"), false, issues, TEXT),
            offers: t.parse(&col("offers"), false, issues, TEXT),
            from: t.parse(&col("from"), false, issues, DATE),
            to: t.parse(&col("to"), false, issues, DATE),
        }
    }

    /// Row `i`'s selector; every listed name must exist (a misspelt channel
    /// would select nothing), each miss an issue naming `owner` (`rule r1`).
    #[allow(clippy::too_many_arguments)]
    fn selector(&self, t: &Table, i: usize, owner: &str, channels: &mut Names, tags: &mut Names, offers: &HashMap<String, u32>, issues: &mut Issues) -> Selector {
        let suffix = self.suffix;
        let mut resolve = |column: &str, cell: &Option<String>, names: &mut dyn FnMut(&str) -> Option<u32>, what: &str| -> Vec<u32> {
            let mut out = Vec::new();
            for name in cell.as_deref().map(split_list).into_iter().flatten() {
                match names(name) {
                    Some(ix) => out.push(ix),
                    None => issues.push(t.issue(i, &format!("{column}{suffix}"), Some(name), format!("{owner}: {what}"))),
                }
            }
            out
        };
        let selector = Selector {
            channels: resolve("channels", &self.channels[i], &mut |s| channels.resolve(s), "a channel of some offer in offers.csv"),
            tags: resolve("tags", &self.tags[i], &mut |s| tags.resolve(s), "a tag of some offer in offers.csv"),
            offers: resolve("offers", &self.offers[i], &mut |s| offers.get(s).copied(), "an offer_id of offers"),
            from: self.from[i],
            to: self.to[i],
        };
        if let (Some(f), Some(to)) = (selector.from, selector.to) {
            if to < f {
                issues.push(t.issue(i, &format!("to{suffix}"), Some(&to.to_string()), format!("{owner}: a date on or after from{suffix} {f}")));
            }
        }
        selector
    }
}

/// Reads `rules.csv` (model version 2): each rule with the issue to report if
/// its selector turns out to pick no offer (checked once the offers' contact
/// dates are known).
fn read_rules(
    dir: &Path,
    channels: &mut Names,
    tags: &mut Names,
    offers: &HashMap<String, u32>,
    issues: &mut Issues,
    notes: &mut Vec<String>,
) -> Result<Vec<(ReadRule, crate::error::Issue)>, LoadError> {
    let Some(t) = Table::read(dir, "rules", &[("bound", Kind::Number), ("penalty", Kind::Number)])? else {
        return Ok(Vec::new());
    };
    let ids = t.parse("rule_id", true, issues, TEXT);
    // `None` inside: a `max_per_customer` rule (a per-customer row, not a total).
    let kind = t.parse_with("kind", true, issues, "max_total, min_total or max_per_customer", |s| match s.trim() {
        "max_total" => Some(Some(RuleKind::MaxTotal)),
        "min_total" => Some(Some(RuleKind::MinTotal)),
        "max_per_customer" => Some(None),
        _ => None,
    });
    let measure = t.parse_with("measure", true, issues, "contacts, accepts, contact_cost, discount_cost or value", |s| match s.trim() {
        "contacts" => Some(Measure::Contacts),
        "accepts" => Some(Measure::Accepts),
        "contact_cost" => Some(Measure::ContactCost),
        "discount_cost" => Some(Measure::DiscountCost),
        "value" => Some(Measure::Value),
        _ => None,
    });
    let bound = t.parse("bound", true, issues, NON_NEGATIVE);
    let penalty = t.parse("penalty", false, issues, NON_NEGATIVE);
    let selectors = SelectorColumns::parse(&t, "", issues);
    t.check_header(issues, notes);
    let mut seen = HashMap::default();
    let mut rules = Vec::new();
    for i in 0..t.len() {
        let (Some(id), Some(kind), Some(measure), Some(bound)) = (&ids[i], kind[i], measure[i], bound[i]) else { continue };
        if seen.insert(id.clone(), i).is_some() {
            issues.push(t.issue(i, "rule_id", Some(id), "a rule_id not listed before (duplicate)"));
            continue;
        }
        let selector = selectors.selector(&t, i, &format!("rule {id}"), channels, tags, offers, issues);
        let no_offer = t.issue(i, "rule_id", Some(id), format!("rule {id}: a selector that picks at least one offer (channels, tags, offers, from, to)"));
        let rule = match kind {
            Some(kind) => ReadRule::Total(Rule { id: id.clone(), kind, measure, bound, penalty: penalty[i], selector }),
            None => {
                // A per-customer cap counts contacts and is always hard (the spec).
                if measure != Measure::Contacts {
                    issues.push(t.issue(i, "measure", Some(measure.name()), format!("rule {id}: contacts (a max_per_customer rule counts contacts)")));
                    continue;
                }
                if let Some(p) = penalty[i] {
                    issues.push(t.issue(i, "penalty", Some(&p.to_string()), format!("rule {id}: an empty penalty (a max_per_customer rule is always hard)")));
                    continue;
                }
                ReadRule::PerCustomer(ContactRule { id: id.clone(), bound, selector })
            }
        };
        rules.push((rule, no_offer));
    }
    Ok(rules)
}

/// Reads `conflicts.csv` (model version 2): each conflict with the issues to
/// report if its selector A or B turns out to pick no offer.
fn read_conflicts(
    dir: &Path,
    channels: &mut Names,
    tags: &mut Names,
    offers: &HashMap<String, u32>,
    issues: &mut Issues,
    notes: &mut Vec<String>,
) -> Result<Vec<(Conflict, [crate::error::Issue; 2])>, LoadError> {
    let Some(t) = Table::read(dir, "conflicts", &[("within_days", Kind::Number)])? else {
        return Ok(Vec::new());
    };
    let ids = t.parse("conflict_id", true, issues, TEXT);
    let within = t.parse("within_days", true, issues, COUNT);
    let (a, b) = (SelectorColumns::parse(&t, "_a", issues), SelectorColumns::parse(&t, "_b", issues));
    t.check_header(issues, notes);
    let mut seen = HashMap::default();
    let mut conflicts = Vec::new();
    for i in 0..t.len() {
        let (Some(id), Some(within_days)) = (&ids[i], within[i]) else { continue };
        if seen.insert(id.clone(), i).is_some() {
            issues.push(t.issue(i, "conflict_id", Some(id), "a conflict_id not listed before (duplicate)"));
            continue;
        }
        if within_days == 0 {
            issues.push(t.issue(i, "within_days", Some("0"), format!("conflict {id}: at least 1 day (a window of 0 days excludes nothing)")));
            continue;
        }
        let owner = format!("conflict {id}");
        let selector_a = a.selector(&t, i, &owner, channels, tags, offers, issues);
        let selector_b = b.selector(&t, i, &owner, channels, tags, offers, issues);
        let none = |side: &str| t.issue(i, "conflict_id", Some(id), format!("{owner}: a selector {side} that picks at least one offer (channels_{side}, tags_{side}, offers_{side}, from_{side}, to_{side})"));
        conflicts.push((Conflict { id: id.clone(), within_days, a: selector_a, b: selector_b }, [none("a"), none("b")]));
    }
    Ok(conflicts)
}

/// Reads `contact_history.csv` (model version 2), sorted by customer and date.
/// A channel or tag no offer uses is kept as [`PastContact::OTHER_CHANNEL`] or
/// dropped: no selector can name it, so it matches only selectors that leave
/// that column empty. An `offer_id` not in `offers.csv` (an offer of an earlier
/// programme) matches no `offers` list; the loader notes how many there were.
fn read_contact_history(
    dir: &Path,
    channels: &mut Names,
    tags: &mut Names,
    customers: &HashMap<String, u32>,
    offers: &HashMap<String, u32>,
    issues: &mut Issues,
    notes: &mut Vec<String>,
) -> Result<Vec<PastContact>, LoadError> {
    let Some(t) = Table::read(dir, "contact_history", &[])? else {
        return Ok(Vec::new());
    };
    let c = t.parse_with("customer_id", true, issues, "a customer_id of customers", |s| customers.get(s).copied());
    let dates = t.parse("date", true, issues, DATE);
    let channel = t.parse("channel", true, issues, TEXT);
    let tag_lists = t.parse("tags", false, issues, TEXT);
    let offer_ids = t.parse("offer_id", false, issues, TEXT);
    t.check_header(issues, notes);
    let mut history = Vec::with_capacity(t.len());
    let mut other_offers = 0usize;
    for i in 0..t.len() {
        let (Some(customer), Some(date), Some(channel)) = (c[i], dates[i], &channel[i]) else { continue };
        let offer = offer_ids[i].as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|id| {
            let found = offers.get(id).copied();
            other_offers += usize::from(found.is_none());
            found
        });
        let mut row_tags: Vec<u32> = tag_lists[i].as_deref().map(split_list).into_iter().flatten().filter_map(|s| tags.resolve(s)).collect();
        row_tags.sort_unstable();
        row_tags.dedup();
        history.push(PastContact { customer, date, channel: channels.resolve(channel.trim()).unwrap_or(PastContact::OTHER_CHANNEL), tags: row_tags, offer });
    }
    if other_offers > 0 {
        notes.push(format!("{}: {other_offers} rows name an offer_id not in offers.csv; they match rules and conflicts by channel, tags and date only", t.file));
    }
    history.sort_by_key(|h| (h.customer, h.date));
    Ok(history)
}

/// Looks customer ids up for a table read row by row: the index of `id`
/// in `ids` (`index` maps each to it). Why not the map alone: a table of
/// pairs (uptake) lists each customer's rows together, in the customers'
/// order as a rule, so the row before's customer or the next one is
/// compared first; at 10M customers the map's 80M lookups, each a miss in
/// memory, were seconds of the load.
fn customer_lookup<'a>(ids: &'a [String], index: &'a HashMap<String, u32>) -> impl FnMut(&str) -> Option<u32> + 'a {
    let mut last = 0usize;
    move |id| {
        let found = [last, last + 1].into_iter().find(|&c| ids.get(c).is_some_and(|known| known == id)).map(|c| c as u32).or_else(|| index.get(id).copied());
        if let Some(c) = found {
            last = c as usize;
        }
        found
    }
}

/// Finds, row by row, the rows of a (customer, offer) table whose pair an
/// earlier row has. Why not a set of the pairs seen: at 10M customers that is
/// 80M entries, gigabytes and most of the load's time, while uptake tables
/// list each customer's rows together. Then a repeat can only be within the
/// customer's run of rows, found by remembering the run in which each offer
/// was last seen. From the first customer whose rows are not together, a set
/// of the pairs seen.
struct PairRepeats {
    /// Per customer: whether its run of rows has ended.
    closed: Vec<bool>,
    /// Per offer: the run (1-based) it was last seen in.
    seen_in: Vec<usize>,
    /// The current run and its customer.
    run: usize,
    current: Option<u32>,
    /// Every pair seen, once a customer's rows were found apart.
    seen: Option<foldhash::HashSet<(u32, u32)>>,
}

impl PairRepeats {
    fn new(customers: usize, offers: usize) -> Self {
        PairRepeats { closed: vec![false; customers], seen_in: vec![0; offers], run: 0, current: None, seen: None }
    }

    /// Whether `(customer, offer)` repeats the pair of an earlier row.
    /// `earlier` gives the distinct pairs of the rows before; it is read once,
    /// when a customer's rows are first found apart.
    fn repeats<I: Iterator<Item = (u32, u32)>>(&mut self, customer: u32, offer: u32, earlier: impl FnOnce() -> I) -> bool {
        if let Some(seen) = &mut self.seen {
            return !seen.insert((customer, offer));
        }
        if self.current != Some(customer) {
            if let Some(previous) = self.current {
                self.closed[previous as usize] = true;
            }
            if self.closed[customer as usize] {
                // The customer's rows are not together: every pair against every earlier one.
                let mut seen: foldhash::HashSet<(u32, u32)> = earlier().collect();
                let repeated = !seen.insert((customer, offer));
                self.seen = Some(seen);
                return repeated;
            }
            (self.run, self.current) = (self.run + 1, Some(customer));
        }
        let repeated = self.seen_in[offer as usize] == self.run;
        self.seen_in[offer as usize] = self.run;
        repeated
    }
}

/// The items of a `;`-separated list cell (`tags`, selectors), trimmed, blanks skipped.
pub(crate) fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').map(str::trim).filter(|s| !s.is_empty())
}

/// Rows of `offer_history` resolved to indices; `accepted` may not exceed
/// `shown`, and every row is dated before `horizon_start` (history is what
/// happened before the plan, as `sales_history`'s dates are: a row on the
/// horizon's first day left the model's holdout with no rows, AUC NaN).
fn read_offer_history(t: &Table, customers: &HashMap<String, u32>, offers: &HashMap<String, u32>, horizon_start: NaiveDate, issues: &mut Issues) -> Vec<crate::scenario::uptake_history::Showing> {
    let c = t.parse_with("customer_id", true, issues, "a customer_id of customers", |s| customers.get(s).copied());
    let o = t.parse_with("offer_id", true, issues, "an offer_id of offers", |s| offers.get(s).copied());
    let dates = t.parse("date", true, issues, DATE);
    let shown = t.parse("shown", true, issues, COUNT);
    let accepted = t.parse("accepted", true, issues, COUNT);
    let mut rows = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        let (Some(customer), Some(offer), Some(date), Some(shown), Some(accepted)) = (c[i], o[i], dates[i], shown[i], accepted[i]) else { continue };
        if accepted > shown {
            issues.push(t.issue(i, "accepted", Some(&accepted.to_string()), "at most `shown` acceptances"));
            continue;
        }
        if date >= horizon_start {
            issues.push(t.issue(i, "date", Some(&date.to_string()), format!("a date before the horizon's start {horizon_start}")));
            continue;
        }
        rows.push(crate::scenario::uptake_history::Showing { customer, offer, date, shown: f64::from(shown), accepted: f64::from(accepted) });
    }
    rows
}

/// SHA-256 of several byte strings, each length-prefixed, as hex.
pub(crate) fn hash_bytes(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over the names and bytes of every regular file in a scenario
/// directory (sorted by name), starting with `scenario.toml`.
pub fn content_hash(dir: &Path) -> Result<String, LoadError> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort_by_key(|p| (p.file_name() != Some(SCENARIO_FILE.as_ref()), p.clone()));
    let mut h = Sha256::new();
    for p in names {
        let bytes = std::fs::read(&p).map_err(|e| LoadError::io(&p, e))?;
        h.update(p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
