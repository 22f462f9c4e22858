//! What-if variants: a scenario directory whose `scenario.toml` names a `base`
//! scenario and lists perturbations applied on top of it, in order.
//!
//! ```toml
//! # scenarios/supplier_delay/scenario.toml
//! base = "../../examples/retail-v1"     # relative to this file's directory
//!
//! [[perturbation]]
//! kind = "inbound_delay"              # every inbound of W01 arrives 7 days later
//! warehouse = "W01"
//! days = 7
//! ```
//!
//! Kinds (filters are optional unless marked; each filter must match something):
//!
//! | kind | fields | effect |
//! | --- | --- | --- |
//! | `demand_shock` | `factor`; filters `sku`, `zone`, `offer`, `tier` | baseline demand of the matching zone × SKU (only without `offer`/`tier` filters: baseline has neither) and the uptake of matching pairs (customer zone and tier, offer, offer containing the SKU) × factor, uptake clamped to (0, 1] |
//! | `warehouse_outage` | `warehouse` (required), `from`, `to` (dates, inclusive) | the warehouse is closed for the part of the horizon the dates cover: with `k` of `H` days closed, its stock and its lanes' capacities are scaled by `(H - k) / H` (the model is aggregated over the horizon); closed all horizon, it ships nothing |
//! | `lane_capacity` | `factor` or `capacity`; filters `warehouse`, `zone` | capacity of matching lanes × factor, or set (an uncapacitated lane with `factor` stays uncapacitated) |
//! | `inbound_delay` | `days` (required); filters `warehouse`, `sku` | matching inbound arrives `days` later; what then lands after the horizon is no longer available |
//! | `receipt` | `warehouse`, `sku`, `units` (required), `date` (a day of the horizon; default: its first day) | a receipt of `units` of the SKU at the warehouse on that date (the warehouse must hold a stock row for the SKU) |
//! | `uptake_shift` | `factor`; filters `offer`, `tier`, `zone`, `sku` | uptake of matching pairs × factor, clamped to (0, 1] |
//! | `rule` | `rule` (a `rule_id`, required); `bound` or `factor`, and/or `penalty` | the rule's bound set or scaled, its penalty set (a volume rule becomes soft; a `max_per_customer` rule takes no penalty) |
//! | `conflict` | `conflict` (a `conflict_id`, required); `remove = true`, or `within_days` (required to add) with selectors `channels_a`, `tags_a`, `offers_a`, `channels_b`, `tags_b`, `offers_b` (`;` lists) | the conflict removed, or added (or replaced when the id exists) |
//! | `contact_cost` | `factor`; filters `channel`, `offer` | cost per contact of matching offers × factor |
//! | `channel_outage` | `channel` (required), `from`, `to` (dates, inclusive) | no contact on the channel for offers whose contact date falls in the outage (a hard `max_total` of 0 contacts, `channel_outage:<channel>`) |
//! | `policy` | any of `budget`, `contact_cap`, `promise_days`, `fairness_min_ratio`, `max_custom_offers`, `tier_weights = { gold = 1.4 }` | overrides the policy; `contact_cap` reaches every customer without a `max_offers` of its own, since the loader copies no policy value into the tables ([`allot_optimizer::Problem::contact_cap_of`]) |
//!
//! A variant's base may itself be a variant: perturbations compose, the base's
//! first. Unknown keys, unknown kinds and filters that match nothing are errors
//! naming the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allot_optimizer::{Measure, Problem, Rule, RuleKind, Selector};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::scenario::config::SCENARIO_FILE;
use crate::error::LoadError;
use crate::scenario::table::{is_non_negative_input, LARGEST_INPUT, NON_NEGATIVE_WORDS};
use crate::scenario::load::{hash_bytes, load_root, table_meant, InboundDelay, LoadOptions, LoadedScenario};

/// Reads, validates and assembles a scenario directory, plain or variant.
pub fn load_scenario(dir: &Path) -> Result<LoadedScenario, LoadError> {
    load_scenario_with(dir, LoadOptions::default())
}

/// [`load_scenario`] with options. A directory whose `scenario.toml` names a
/// `base` is a what-if variant; any other is read by the loader alone.
///
/// Why it lives here: variants build on the loader, never the reverse, so the
/// entry point that chooses between them sits on top of both.
pub fn load_scenario_with(dir: &Path, options: LoadOptions) -> Result<LoadedScenario, LoadError> {
    if let Some(root) = &options.root {
        confine(dir, root)?;
    }
    if dir.join(SCENARIO_FILE).is_file() && read_variant(dir)?.is_some() {
        return load_variant(dir, options);
    }
    load_root(dir, options)
}

/// Checks that `dir`, every file in it, and the same for each base of the
/// variant chain, resolve (symlinks followed) to paths under `root`. A path
/// outside is reported as not found, like a missing one, so an answer never
/// tells whether something exists outside the root.
fn confine(dir: &Path, root: &Path) -> Result<(), LoadError> {
    let root = root.canonicalize().map_err(|e| LoadError::io(root, e))?;
    let inside = |path: &Path| -> Result<(), LoadError> {
        let real = path.canonicalize().map_err(|e| LoadError::io(path, e))?;
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(LoadError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file under the scenario root")))
        }
    };
    let mut dir = dir.to_path_buf();
    // One more level than `chain` allows, which reports deeper chains itself.
    for _ in 0..=17 {
        inside(&dir)?;
        for entry in std::fs::read_dir(&dir).map_err(|e| LoadError::io(&dir, e))?.flatten() {
            // What the loader may read: regular files, through symlinks.
            if entry.path().is_file() {
                inside(&entry.path())?;
            }
        }
        if !dir.join(SCENARIO_FILE).is_file() {
            return Ok(());
        }
        match read_variant(&dir)? {
            Some(v) => dir = v.base,
            None => return Ok(()),
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    base: String,
    #[serde(default)]
    perturbation: Vec<toml::Spanned<Perturbation>>,
}

/// One perturbation, as written in `scenario.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Perturbation {
    /// Baseline demand and uptake × factor.
    DemandShock(DemandShock),
    /// A warehouse closed for part of the horizon.
    WarehouseOutage(WarehouseOutage),
    /// Lane capacities changed.
    LaneCapacity(LaneCapacity),
    /// Inbound arrives later.
    InboundDelay(InboundDelaySpec),
    /// A stock receipt added.
    Receipt(ReceiptSpec),
    /// Uptake × factor.
    UptakeShift(UptakeShift),
    /// Policy overrides.
    Policy(PolicyOverride),
    /// A volume rule's bound or penalty changed (model version 2).
    Rule(RuleChange),
    /// Contact costs × factor (model version 2).
    ContactCost(ContactCostFactor),
    /// A channel closed for part of the horizon (model version 2).
    ChannelOutage(ChannelOutage),
    /// A conflict added, replaced or removed (model version 2).
    Conflict(ConflictChange),
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictChange {
    /// The conflict's `conflict_id`.
    pub conflict: String,
    /// Remove it (it must exist).
    #[serde(default)]
    pub remove: bool,
    /// Window in days (adding or replacing).
    pub within_days: Option<u32>,
    /// Selector A: channels (`;` list).
    pub channels_a: Option<String>,
    /// Selector A: tags.
    pub tags_a: Option<String>,
    /// Selector A: offer ids.
    pub offers_a: Option<String>,
    /// Selector B: channels.
    pub channels_b: Option<String>,
    /// Selector B: tags.
    pub tags_b: Option<String>,
    /// Selector B: offer ids.
    pub offers_b: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleChange {
    /// The rule's `rule_id`.
    pub rule: String,
    /// New bound.
    pub bound: Option<f64>,
    /// Multiplier of the bound.
    pub factor: Option<f64>,
    /// New penalty (the rule becomes soft).
    pub penalty: Option<f64>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactCostFactor {
    /// Multiplier (>= 0).
    pub factor: f64,
    /// Filters.
    pub channel: Option<String>,
    /// Filters.
    pub offer: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelOutage {
    /// The channel.
    pub channel: String,
    /// First closed day (`YYYY-MM-DD`; default: the horizon start).
    pub from: Option<String>,
    /// Last closed day (default: the horizon end).
    pub to: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandShock {
    /// Multiplier (>= 0).
    pub factor: f64,
    /// Filters.
    pub sku: Option<String>,
    /// Filters.
    pub zone: Option<String>,
    /// Filters.
    pub offer: Option<String>,
    /// Filters.
    pub tier: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseOutage {
    /// The warehouse.
    pub warehouse: String,
    /// First closed day (`YYYY-MM-DD`; default: the horizon start).
    pub from: Option<String>,
    /// Last closed day (default: the horizon end).
    pub to: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneCapacity {
    /// Multiplier of existing capacities.
    pub factor: Option<f64>,
    /// New capacity, in units over the horizon.
    pub capacity: Option<f64>,
    /// Filters.
    pub warehouse: Option<String>,
    /// Filters.
    pub zone: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundDelaySpec {
    /// Days later.
    pub days: u32,
    /// Filters.
    pub warehouse: Option<String>,
    /// Filters.
    pub sku: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSpec {
    /// The receiving warehouse.
    pub warehouse: String,
    /// The SKU received.
    pub sku: String,
    /// Units received (>= 0).
    pub units: f64,
    /// Arrival date (`YYYY-MM-DD`); the horizon's first day when absent.
    pub date: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UptakeShift {
    /// Multiplier (> 0).
    pub factor: f64,
    /// Filters.
    pub offer: Option<String>,
    /// Filters.
    pub tier: Option<String>,
    /// Filters.
    pub zone: Option<String>,
    /// Filters.
    pub sku: Option<String>,
}

/// See the module table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    /// Discount budget.
    pub budget: Option<f64>,
    /// Offers per customer.
    pub contact_cap: Option<u32>,
    /// Promise in days.
    pub promise_days: Option<u32>,
    /// Fairness ratio in [0, 1].
    pub fairness_min_ratio: Option<f64>,
    /// Custom-offer limit.
    pub max_custom_offers: Option<u32>,
    /// New weights of existing tiers.
    pub tier_weights: Option<BTreeMap<String, f64>>,
}

/// A variant: its base directory and its perturbations with their lines.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The variant's `scenario.toml`.
    pub file: PathBuf,
    /// The base scenario directory.
    pub base: PathBuf,
    /// Perturbations and the line each starts on.
    pub perturbations: Vec<(usize, Perturbation)>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The variant a directory describes, or `None` when its `scenario.toml` has no `base`.
pub fn read_variant(dir: &Path) -> Result<Option<Variant>, LoadError> {
    let file = dir.join(SCENARIO_FILE);
    let text = std::fs::read_to_string(&file).map_err(|e| LoadError::io(&file, e))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| LoadError::Unreadable { path: file.clone(), reason: e.to_string() })?;
    if !table.contains_key("base") {
        return Ok(None);
    }
    let raw: RawVariant = toml::from_str(&text).map_err(|e| LoadError::Unreadable { path: file.clone(), reason: e.to_string() })?;
    let perturbations = raw.perturbation.into_iter().map(|p| (line_of(&text, p.span().start), p.into_inner())).collect();
    Ok(Some(Variant { base: dir.join(&raw.base), file, perturbations }))
}

/// Every perturbation from the root scenario down, each with its file and line,
/// and the root directory whose tables are read.
fn chain(dir: &Path, depth: usize) -> Result<(PathBuf, Vec<(PathBuf, usize, Perturbation)>, Vec<String>), LoadError> {
    let Some(v) = read_variant(dir)? else { return Ok((dir.to_path_buf(), Vec::new(), Vec::new())) };
    if depth > 16 {
        return Err(LoadError::Unreadable { path: v.file, reason: "base: more than 16 levels of variants (a cycle?)".into() });
    }
    if !v.base.join(SCENARIO_FILE).is_file() {
        return Err(LoadError::Unreadable { path: v.file.clone(), reason: format!("base: {} is not a scenario directory", v.base.display()) });
    }
    // A variant's tables are its base's: one of its own would be ignored
    // (a `customers.csv` withdrawing consent planned with the base's).
    let files = std::fs::read_dir(dir).map_err(|e| LoadError::io(dir, e))?.flatten().filter(|e| e.path().is_file());
    if let Some(table) = files.map(|e| e.file_name().to_string_lossy().into_owned()).find(|name| table_meant(name).is_some()) {
        let reason = format!("{table} is beside a what-if variant's scenario.toml: a variant reads its tables from its base ({}) and changes them through perturbations, so this file would be ignored; move it, or make this directory a scenario of its own (no `base`)", v.base.display());
        return Err(LoadError::Unreadable { path: dir.join(&table), reason });
    }
    let (root, mut all, mut lineage) = chain(&v.base, depth + 1)?;
    lineage.push(v.file.display().to_string());
    all.extend(v.perturbations.into_iter().map(|(line, p)| (v.file.clone(), line, p)));
    Ok((root, all, lineage))
}

/// Loads a variant: the root scenario's tables (inbound delays applied while
/// reading), then every perturbation in order.
pub fn load_variant(dir: &Path, options: LoadOptions) -> Result<LoadedScenario, LoadError> {
    let (root, perturbations, lineage) = chain(dir, 0)?;
    let delays: Vec<InboundDelay> = perturbations
        .iter()
        .filter_map(|(_, _, p)| match p {
            Perturbation::InboundDelay(d) => Some(InboundDelay { days: d.days, warehouse: d.warehouse.clone(), sku: d.sku.clone() }),
            _ => None,
        })
        .collect();
    let mut loaded = load_root(&root, LoadOptions { inbound_delays: delays, ..options })?;
    let mut delay_index = 0;
    for (file, line, p) in &perturbations {
        let at = |reason: String| LoadError::Unreadable { path: file.clone(), reason: format!("line {line}: {reason}") };
        if let Perturbation::InboundDelay(_) = p {
            if loaded.inbound_delay_matches[delay_index] == 0 {
                return Err(at("inbound_delay matches no inbound row".into()));
            }
            delay_index += 1;
            continue;
        }
        apply(&mut loaded.problem, p).map_err(at)?;
        if let Some(reason) = beyond_largest_input(&loaded.problem) {
            return Err(at(reason));
        }
    }
    loaded.lineage = lineage;
    loaded.notes.push(format!("variant of {} with {} perturbation(s)", root.display(), perturbations.len()));
    // The variant's identity is its base's data and every file of the chain.
    let mut hash = loaded.content_hash.clone();
    for file in &loaded.lineage {
        let text = std::fs::read(file).map_err(|e| LoadError::io(Path::new(file), e))?;
        hash = hash_bytes(&[hash.as_bytes(), &text]);
    }
    loaded.content_hash = hash;
    loaded.dir = dir.to_path_buf();
    Ok(loaded)
}

fn index_of(names: &[String], name: &str, what: &str) -> Result<u32, String> {
    names.iter().position(|n| n == name).map(|i| i as u32).ok_or_else(|| format!("{what} {name:?} is not in the scenario"))
}

fn factor_ok(f: f64, positive: bool) -> Result<(), String> {
    if is_non_negative_input(f) && (f > 0.0 || !positive) {
        Ok(())
    } else {
        Err(format!("factor: got {f}, expected a number {} and <= 1e12", if positive { "> 0" } else { ">= 0" }))
    }
}

/// Uptake × factor on pairs matching the filters; returns how many matched.
fn scale_uptake(p: &mut Problem, factor: f64, offer: Option<u32>, tier: Option<u32>, zone: Option<u32>, sku: Option<u32>) -> usize {
    let mut matched = 0;
    for u in &mut p.uptake {
        let c = u.customer as usize;
        let hit = offer.is_none_or(|o| u.offer == o)
            && tier.is_none_or(|t| p.customers.tier[c] == t)
            && zone.is_none_or(|z| p.customers.zone[c] == z)
            && sku.is_none_or(|s| p.offers[u.offer as usize].items.iter().any(|i| i.sku == s));
        if hit {
            u.p = (u.p * factor).clamp(1e-6, 1.0);
            matched += 1;
        }
    }
    matched
}

/// A perturbation's date field `name` (`YYYY-MM-DD`), `default` when absent.
fn date_or(s: &Option<String>, default: NaiveDate, name: &str) -> Result<NaiveDate, String> {
    s.as_deref().map_or(Ok(default), |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{name}: got {s:?}, expected a date \"YYYY-MM-DD\"")))
}

/// The closed days of an outage: `from` and `to` (default: the horizon's
/// ends), in order.
fn outage_days(p: &Problem, from: &Option<String>, to: &Option<String>) -> Result<(NaiveDate, NaiveDate), String> {
    let (from, to) = (date_or(from, p.horizon.start, "from")?, date_or(to, p.horizon.last_day(), "to")?);
    if to < from {
        return Err(format!("to ({to}) is before from ({from})"));
    }
    Ok((from, to))
}

/// The first quantity a perturbation can scale or add to that is now beyond
/// [`LARGEST_INPUT`], in words. Why: each perturbation's own numbers are
/// checked, but a factor times a table's value (1e12 x 1e12) can still
/// reach what HiGHS refuses, which ended the solve after the load had
/// passed; the loader's bound holds for the perturbed scenario too.
fn beyond_largest_input(p: &Problem) -> Option<String> {
    let over = |v: f64| v.abs() > LARGEST_INPUT;
    let said = |what: String, v: f64| Some(format!("after this perturbation {what} is {v:e}, beyond the {LARGEST_INPUT:e} every number of a scenario must stay within"));
    if let Some(b) = p.baseline.iter().find(|b| over(b.units)) {
        return said(format!("the baseline demand of {}/{}", p.zones[b.zone as usize].id, p.skus[b.sku as usize]), b.units);
    }
    for s in &p.stock {
        let total = s.on_hand + s.inbound.iter().map(|r| r.units).sum::<f64>();
        if over(total) {
            return said(format!("the stock of {}/{} with its receipts", p.warehouses[s.warehouse as usize], p.skus[s.sku as usize]), total);
        }
    }
    if let Some((l, c)) = p.lanes.iter().find_map(|l| l.capacity.filter(|&c| over(c)).map(|c| (l, c))) {
        return said(format!("the capacity of lane {}->{}", p.warehouses[l.warehouse as usize], p.zones[l.zone as usize].id), c);
    }
    // Volume rules and per-customer contact rules share one id space.
    let mut rule_bounds = p.rules.iter().map(|r| (&r.id, r.bound)).chain(p.contact_rules.iter().map(|r| (&r.id, r.bound)));
    if let Some((id, bound)) = rule_bounds.find(|&(_, bound)| over(bound)) {
        return said(format!("the bound of rule {id}"), bound);
    }
    if let Some(o) = p.offers.iter().find(|o| over(o.cost_per_contact)) {
        return said(format!("the cost per contact of offer {}", o.id), o.cost_per_contact);
    }
    None
}

/// Applies one perturbation (not inbound delays, which the loader applies).
pub fn apply(p: &mut Problem, perturbation: &Perturbation) -> Result<(), String> {
    let zone_names: Vec<String> = p.zones.iter().map(|z| z.id.clone()).collect();
    let offer_names: Vec<String> = p.offers.iter().map(|o| o.id.clone()).collect();
    let tier_names: Vec<String> = p.tiers.iter().map(|t| t.name.clone()).collect();
    let zone = |n: &Option<String>| n.as_deref().map(|n| index_of(&zone_names, n, "zone")).transpose();
    let sku = |n: &Option<String>| n.as_deref().map(|n| index_of(&p.skus, n, "sku")).transpose();
    let offer = |n: &Option<String>| n.as_deref().map(|n| index_of(&offer_names, n, "offer")).transpose();
    let tier = |n: &Option<String>| n.as_deref().map(|n| index_of(&tier_names, n, "tier")).transpose();
    let warehouse = |n: &Option<String>| n.as_deref().map(|n| index_of(&p.warehouses, n, "warehouse")).transpose();
    match perturbation {
        Perturbation::DemandShock(d) => {
            factor_ok(d.factor, false)?;
            let (z, s, o, t) = (zone(&d.zone)?, sku(&d.sku)?, offer(&d.offer)?, tier(&d.tier)?);
            let mut matched = 0;
            if o.is_none() && t.is_none() {
                for b in p.baseline.iter_mut().filter(|b| z.is_none_or(|z| b.zone == z) && s.is_none_or(|s| b.sku == s)) {
                    b.units *= d.factor;
                    matched += 1;
                }
            }
            matched += scale_uptake(p, d.factor.max(1e-9), o, t, z, s);
            if matched == 0 {
                return Err("demand_shock matches no baseline demand and no uptake pair".into());
            }
        }
        Perturbation::UptakeShift(u) => {
            factor_ok(u.factor, true)?;
            let (o, t, z, s) = (offer(&u.offer)?, tier(&u.tier)?, zone(&u.zone)?, sku(&u.sku)?);
            if scale_uptake(p, u.factor, o, t, z, s) == 0 {
                return Err("uptake_shift matches no uptake pair".into());
            }
        }
        Perturbation::WarehouseOutage(w) => {
            let wh = index_of(&p.warehouses, &w.warehouse, "warehouse")?;
            let (from, to) = outage_days(p, &w.from, &w.to)?;
            let (first, last) = p.horizon.clamp(Some(from), Some(to));
            if last < first {
                return Err(format!("warehouse_outage {from}..{to} does not overlap the horizon"));
            }
            let closed = (last - first).num_days() as f64 + 1.0;
            let open = 1.0 - closed / f64::from(p.horizon.days);
            for s in p.stock.iter_mut().filter(|s| s.warehouse == wh) {
                s.scale(open);
            }
            for l in p.lanes.iter_mut().filter(|l| l.warehouse == wh) {
                l.capacity = match l.capacity {
                    Some(c) => Some(c * open),
                    None if open <= 0.0 => Some(0.0),
                    None => None,
                };
            }
        }
        Perturbation::Rule(r) => {
            if r.bound.is_some() == r.factor.is_some() && r.penalty.is_none() {
                return Err("rule takes one of bound and factor, and/or penalty".into());
            }
            for (name, v) in [("bound", r.bound), ("factor", r.factor), ("penalty", r.penalty)] {
                if let Some(v) = v.filter(|v| !is_non_negative_input(*v)) {
                    return Err(format!("{name}: got {v}, expected {NON_NEGATIVE_WORDS}"));
                }
            }
            let new_bound = |old: f64| r.bound.or(r.factor.map(|f| old * f)).unwrap_or(old);
            if let Some(rule) = p.rules.iter_mut().find(|x| x.id == r.rule) {
                rule.bound = new_bound(rule.bound);
                rule.penalty = r.penalty.or(rule.penalty);
            } else if let Some(rule) = p.contact_rules.iter_mut().find(|x| x.id == r.rule) {
                if r.penalty.is_some() {
                    return Err(format!("rule {:?} is a max_per_customer rule, always hard: it takes no penalty", r.rule));
                }
                rule.bound = new_bound(rule.bound);
            } else {
                return Err(format!("rule {:?} is not in the scenario's rules.csv", r.rule));
            }
        }
        Perturbation::Conflict(c) => {
            let at = p.conflicts.iter().position(|x| x.id == c.conflict);
            if c.remove {
                if c.within_days.is_some() || [&c.channels_a, &c.tags_a, &c.offers_a, &c.channels_b, &c.tags_b, &c.offers_b].iter().any(|x| x.is_some()) {
                    return Err("conflict with remove = true takes no window or selectors".into());
                }
                let Some(at) = at else {
                    return Err(format!("conflict {:?} is not in the scenario's conflicts.csv", c.conflict));
                };
                p.conflicts.remove(at);
                return Ok(());
            }
            let Some(within_days) = c.within_days.filter(|&d| d >= 1) else {
                return Err("conflict needs within_days >= 1 to add one (or remove = true)".into());
            };
            let list = |cell: &Option<String>, names: &[String], what: &str| -> Result<Vec<u32>, String> {
                cell.as_deref().map(crate::scenario::load::split_list).into_iter().flatten().map(|n| index_of(names, n, what)).collect()
            };
            let selector = |channels: &Option<String>, tags: &Option<String>, offers: &Option<String>| -> Result<Selector, String> {
                Ok(Selector { channels: list(channels, &p.channels, "channel")?, tags: list(tags, &p.tags, "tag")?, offers: list(offers, &offer_names, "offer")?, from: None, to: None })
            };
            let conflict = allot_optimizer::Conflict {
                id: c.conflict.clone(),
                within_days,
                a: selector(&c.channels_a, &c.tags_a, &c.offers_a)?,
                b: selector(&c.channels_b, &c.tags_b, &c.offers_b)?,
            };
            for (side, sel) in [("a", &conflict.a), ("b", &conflict.b)] {
                if !(0..p.offers.len() as u32).any(|o| p.selects(sel, o)) {
                    return Err(format!("conflict {:?}: selector {side} picks no offer", c.conflict));
                }
            }
            match at {
                Some(at) => p.conflicts[at] = conflict,
                None => p.conflicts.push(conflict),
            }
        }
        Perturbation::ContactCost(c) => {
            factor_ok(c.factor, false)?;
            let (ch, o) = (c.channel.as_deref().map(|n| index_of(&p.channels, n, "channel")).transpose()?, offer(&c.offer)?);
            let mut matched = 0;
            for (_, x) in p.offers.iter_mut().enumerate().filter(|(i, x)| ch.is_none_or(|ch| x.channel == ch) && o.is_none_or(|o| *i as u32 == o)) {
                x.cost_per_contact *= c.factor;
                matched += 1;
            }
            if matched == 0 {
                return Err("contact_cost matches no offer".into());
            }
        }
        Perturbation::ChannelOutage(c) => {
            let ch = index_of(&p.channels, &c.channel, "channel")?;
            let (from, to) = outage_days(p, &c.from, &c.to)?;
            // A closed channel is a hard rule: no contact on it while it is closed.
            let rule = Rule {
                id: format!("channel_outage:{}", c.channel),
                kind: RuleKind::MaxTotal,
                measure: Measure::Contacts,
                bound: 0.0,
                penalty: None,
                selector: Selector { channels: vec![ch], from: Some(from), to: Some(to), ..Selector::default() },
            };
            if !(0..p.offers.len() as u32).any(|o| p.selects(&rule.selector, o)) {
                return Err(format!("channel_outage: no offer of channel {:?} has its contact date in {from}..{to}", c.channel));
            }
            p.rules.push(rule);
        }
        Perturbation::LaneCapacity(l) => {
            let (w, z) = (warehouse(&l.warehouse)?, zone(&l.zone)?);
            if l.factor.is_some() == l.capacity.is_some() {
                return Err("lane_capacity takes exactly one of factor and capacity".into());
            }
            if let Some(f) = l.factor {
                factor_ok(f, false)?;
            }
            if let Some(c) = l.capacity.filter(|c| !is_non_negative_input(*c)) {
                return Err(format!("capacity: got {c}, expected {NON_NEGATIVE_WORDS}"));
            }
            let mut matched = 0;
            for lane in p.lanes.iter_mut().filter(|x| w.is_none_or(|w| x.warehouse == w) && z.is_none_or(|z| x.zone == z)) {
                lane.capacity = match (l.capacity, l.factor) {
                    (Some(c), _) => Some(c),
                    (None, Some(f)) => lane.capacity.map(|c| c * f),
                    (None, None) => lane.capacity,
                };
                matched += 1;
            }
            if matched == 0 {
                return Err("lane_capacity matches no lane".into());
            }
        }
        Perturbation::Policy(o) => {
            if let Some(b) = o.budget.filter(|b| !is_non_negative_input(*b)) {
                return Err(format!("budget: got {b}, expected {NON_NEGATIVE_WORDS}"));
            }
            if let Some(r) = o.fairness_min_ratio.filter(|r| !(0.0..=1.0).contains(r)) {
                return Err(format!("fairness_min_ratio: got {r}, expected a ratio in [0, 1]"));
            }
            let policy = &mut p.policy;
            policy.budget = o.budget.or(policy.budget);
            policy.contact_cap = o.contact_cap.or(policy.contact_cap);
            policy.promise_days = o.promise_days.or(policy.promise_days);
            policy.fairness_min_ratio = o.fairness_min_ratio.or(policy.fairness_min_ratio);
            policy.max_custom_offers = o.max_custom_offers.or(policy.max_custom_offers);
            for (name, weight) in o.tier_weights.iter().flatten() {
                let t = index_of(&tier_names, name, "tier")? as usize;
                if !is_non_negative_input(*weight) {
                    return Err(format!("tier_weights.{name}: got {weight}, expected a weight >= 0 and <= 1e12"));
                }
                p.tiers[t].weight = *weight;
            }
        }
        Perturbation::Receipt(r) => {
            let (w, k) = (index_of(&p.warehouses, &r.warehouse, "warehouse")?, index_of(&p.skus, &r.sku, "sku")?);
            if !is_non_negative_input(r.units) {
                return Err(format!("units: got {}, expected {NON_NEGATIVE_WORDS}", r.units));
            }
            let day = date_or(&r.date, p.horizon.start, "date")?;
            // The model counts a receipt only inside the horizon (as the
            // inbound table's rows): one outside would change nothing.
            if !p.horizon.contains(day) {
                return Err(format!("date: got {day}, expected a day of the horizon, {} to {}", p.horizon.start, p.horizon.last_day()));
            }
            let point = p
                .stock
                .iter_mut()
                .find(|s| s.warehouse == w && s.sku == k)
                .ok_or_else(|| format!("receipt: {} holds no stock of {} (add an inventory row for it)", r.warehouse, r.sku))?;
            point.inbound.push(allot_optimizer::Receipt { day, units: r.units });
        }
        Perturbation::InboundDelay(_) => {}
    }
    Ok(())
}
