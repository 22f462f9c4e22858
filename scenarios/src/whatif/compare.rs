//! Side-by-side comparison of a base plan and its variants, read from the
//! runs' output directories: KPIs with deltas, stock utilisation, reservations
//! by tier and pick load by warehouse, the SKUs and zones that changed most,
//! customers whose eligibility changed, binding constraints that appeared or
//! vanished, and the most valuable capacities. As a terminal table, a CSV and a
//! self-contained HTML report (charts as inline SVG: no script, no network).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use allot_optimizer::plan::Kpis;
use serde::Serialize;

use crate::error::LoadError;
use crate::whatif::variants::load_scenario;
use crate::scenario::table::{Issues, Kind, Table, BOOL, NUMBER, TEXT};
use crate::schema;
use crate::whatif::marginal_values::{read_marginal_values, MarginalValue, SHADOW_PRICES_FILE};

/// What one run left in its output directory, plus its scenario's stock.
#[derive(Debug, Clone)]
pub struct RunOutputs {
    /// Run name (the scenario directory's name).
    pub name: String,
    /// Its KPIs.
    pub kpis: Kpis,
    /// Customer -> offers served.
    pub eligible: BTreeMap<String, BTreeSet<String>>,
    /// Customer -> zone.
    pub customer_zone: HashMap<String, String>,
    /// (warehouse, SKU, tier, units) reserved.
    pub reservations: Vec<(String, String, String, f64)>,
    /// Warehouse -> units to pick.
    pub pick_load: BTreeMap<String, f64>,
    /// (zone, SKU) -> bid price.
    pub bid_prices: BTreeMap<(String, String), f64>,
    /// Warehouse -> units available.
    pub stock: BTreeMap<String, f64>,
    /// Tiers, highest first.
    pub tiers: Vec<String>,
    /// Most valuable capacities first.
    pub marginal_values: Vec<MarginalValue>,
}

fn unreadable(path: &Path, reason: impl std::fmt::Display) -> LoadError {
    LoadError::Unreadable { path: path.to_path_buf(), reason: reason.to_string() }
}

fn table(dir: &Path, stem: &str, typed: &[(&str, Kind)]) -> Result<Table, LoadError> {
    Table::read(dir, stem, typed)?.ok_or_else(|| unreadable(&dir.join(format!("{stem}.csv")), "missing (is this a run's output directory?)"))
}

fn checked(issues: Issues) -> Result<(), LoadError> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid { total: issues.total, issues: issues.list })
    }
}

impl RunOutputs {
    /// Reads a run: `out` is its output directory, `scenario` its scenario.
    pub fn read(name: &str, scenario: &Path, out: &Path) -> Result<Self, LoadError> {
        let kpis_path = out.join("kpis.json");
        let text = std::fs::read_to_string(&kpis_path).map_err(|e| LoadError::io(&kpis_path, e))?;
        let (_, kpis): (u32, Kpis) = schema::from_str(&text, &kpis_path).map_err(|e| unreadable(&kpis_path, e))?;
        let marginal_values = read_marginal_values(out).map_err(|e| unreadable(&out.join(SHADOW_PRICES_FILE), e))?;
        let mut issues = Issues::default();
        let t = table(out, "eligibility", &[("eligible", Kind::Flag)])?;
        let (c, o, e) = (t.parse("customer_id", true, &mut issues, TEXT), t.parse("offer_id", true, &mut issues, TEXT), t.parse("eligible", true, &mut issues, BOOL));
        let mut eligible: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for i in 0..t.len() {
            if let (Some(c), Some(o), Some(true)) = (&c[i], &o[i], e[i]) {
                eligible.entry(c.clone()).or_default().insert(o.clone());
            }
        }
        let t = table(out, "reservations", &[("units", Kind::Number)])?;
        let (w, s, tier, u) = (t.parse("warehouse_id", true, &mut issues, TEXT), t.parse("sku", true, &mut issues, TEXT), t.parse("tier", true, &mut issues, TEXT), t.parse("units", true, &mut issues, NUMBER));
        let reservations = (0..t.len()).filter_map(|i| Some((w[i].clone()?, s[i].clone()?, tier[i].clone()?, u[i]?))).collect();
        let t = table(out, "pick_priorities", &[("units", Kind::Number)])?;
        let (w, u) = (t.parse("warehouse_id", true, &mut issues, TEXT), t.parse("units", true, &mut issues, NUMBER));
        let mut pick_load = BTreeMap::new();
        for i in 0..t.len() {
            if let (Some(w), Some(u)) = (&w[i], u[i]) {
                *pick_load.entry(w.clone()).or_insert(0.0) += u;
            }
        }
        let t = table(out, "bid_prices", &[("price", Kind::Number)])?;
        let (z, s, p) = (t.parse("zone", true, &mut issues, TEXT), t.parse("sku", true, &mut issues, TEXT), t.parse("price", true, &mut issues, NUMBER));
        let bid_prices = (0..t.len()).filter_map(|i| Some(((z[i].clone()?, s[i].clone()?), p[i]?))).collect();
        checked(issues)?;
        let loaded = load_scenario(scenario)?;
        let p = &loaded.problem;
        let mut stock = BTreeMap::new();
        for s in &p.stock {
            *stock.entry(p.warehouses[s.warehouse as usize].clone()).or_insert(0.0) += s.available();
        }
        let customer_zone = p.customers.id.iter().zip(&p.customers.zone).map(|(c, z)| (c.clone(), p.zones[*z as usize].id.clone())).collect();
        Ok(RunOutputs {
            name: name.to_string(),
            kpis,
            eligible,
            customer_zone,
            reservations,
            pick_load,
            bid_prices,
            stock,
            tiers: p.tiers.iter().map(|t| t.name.clone()).collect(),
            marginal_values,
        })
    }

    fn reserved_by<K: Ord>(&self, key: impl Fn(&(String, String, String, f64)) -> K) -> BTreeMap<K, f64> {
        let mut m = BTreeMap::new();
        for r in &self.reservations {
            *m.entry(key(r)).or_insert(0.0) += r.3;
        }
        m
    }

    /// Reserved units over available stock, per warehouse.
    pub fn stock_utilisation(&self) -> BTreeMap<String, f64> {
        let reserved = self.reserved_by(|r| r.0.clone());
        self.stock.iter().map(|(w, &avail)| (w.clone(), if avail > 0.0 { reserved.get(w).copied().unwrap_or(0.0) / avail } else { 0.0 })).collect()
    }

    /// Reserved units per tier.
    pub fn reserved_by_tier(&self) -> BTreeMap<String, f64> {
        self.reserved_by(|r| r.2.clone())
    }

    /// Offers served per customer zone.
    fn served_by_zone(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for (c, offers) in &self.eligible {
            *m.entry(self.customer_zone.get(c).cloned().unwrap_or_default()).or_insert(0.0) += offers.len() as f64;
        }
        m
    }
}

/// One compared figure: the base's value and each variant's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Section (`kpi`, `stock_utilisation`, `reserved_by_tier`, `pick_load`,
    /// `fairness_ratio` per offer; per rule `rule_measure` and
    /// `rule_shadow_price`, what one more unit of its bound is worth; per
    /// channel `channel_contacts` and `channel_cost`).
    pub section: String,
    /// The item (a KPI name, a warehouse, a tier, ...).
    pub item: String,
    /// The base's value.
    pub base: f64,
    /// Each variant's value, in the order given.
    pub variants: Vec<f64>,
}

impl Line {
    /// Absolute delta of variant `v`.
    pub fn delta(&self, v: usize) -> f64 {
        self.variants[v] - self.base
    }

    /// Relative delta of variant `v` (`None` when the base is 0).
    pub fn relative(&self, v: usize) -> Option<f64> {
        (self.base.abs() > 1e-12).then(|| self.delta(v) / self.base.abs())
    }
}

/// Eligibility changes of one variant against the base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EligibilityChange {
    /// Customers whose served offers differ.
    pub customers_changed: usize,
    /// Customers who gained at least one offer.
    pub gained: usize,
    /// Customers who lost at least one offer.
    pub lost: usize,
    /// Up to 5 examples: (customer, offers gained, offers lost).
    pub samples: Vec<(String, Vec<String>, Vec<String>)>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Base name.
    pub base: String,
    /// Variant names.
    pub variants: Vec<String>,
    /// Every compared figure.
    pub lines: Vec<Line>,
    /// Per variant: eligibility changes.
    pub eligibility: Vec<EligibilityChange>,
    /// Per variant: binding constraint families that appeared and vanished.
    pub binding: Vec<(Vec<String>, Vec<String>)>,
    /// Per variant: the 5 SKUs and 5 zones that changed most (reserved units; offers served).
    pub movers: Vec<(Vec<(String, f64)>, Vec<(String, f64)>)>,
}

fn keyed_lines(section: &str, base: &BTreeMap<String, f64>, variants: &[BTreeMap<String, f64>]) -> Vec<Line> {
    let mut keys: BTreeSet<&String> = base.keys().collect();
    for v in variants {
        keys.extend(v.keys());
    }
    keys.into_iter()
        .map(|k| Line {
            section: section.to_string(),
            item: k.clone(),
            base: base.get(k).copied().unwrap_or(0.0),
            variants: variants.iter().map(|v| v.get(k).copied().unwrap_or(0.0)).collect(),
        })
        .collect()
}

fn top_movers(base: &BTreeMap<String, f64>, variant: &BTreeMap<String, f64>) -> Vec<(String, f64)> {
    let keys: BTreeSet<&String> = base.keys().chain(variant.keys()).collect();
    let mut moves: Vec<(String, f64)> = keys
        .into_iter()
        .map(|k| (k.clone(), variant.get(k).copied().unwrap_or(0.0) - base.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| d.abs() > 1e-9)
        .collect();
    moves.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    moves.truncate(5);
    moves
}

/// KPIs compared, by name.
fn kpi_values(k: &Kpis) -> Vec<(&'static str, f64)> {
    vec![
        ("objective", k.objective),
        ("expected_margin", k.expected_margin),
        ("expected_accepts", k.expected_accepts),
        ("budget_used", k.budget_used),
        ("fill_rate_baseline", k.fill_rate_baseline),
        ("unmet_baseline_units", k.unmet_baseline_units),
        ("offers_served", k.eligible as f64),
        ("min_fairness_ratio", k.fairness_ratio.values().copied().fold(1.0, f64::min)),
    ]
}

/// Compares variants with a base.
pub fn compare(base: &RunOutputs, variants: &[RunOutputs]) -> Comparison {
    let mut lines = Vec::new();
    let kb = kpi_values(&base.kpis);
    for (i, (name, value)) in kb.iter().enumerate() {
        lines.push(Line { section: "kpi".into(), item: name.to_string(), base: *value, variants: variants.iter().map(|v| kpi_values(&v.kpis)[i].1).collect() });
    }
    let sections: [(&str, fn(&RunOutputs) -> BTreeMap<String, f64>); 8] = [
        ("stock_utilisation", RunOutputs::stock_utilisation),
        ("reserved_by_tier", RunOutputs::reserved_by_tier),
        ("pick_load", |r| r.pick_load.clone()),
        ("fairness_ratio", |r| r.kpis.fairness_ratio.clone()),
        ("rule_measure", |r| r.kpis.rules.iter().map(|x| (x.rule_id.clone(), x.measured)).collect()),
        ("rule_shadow_price", |r| r.kpis.rules.iter().map(|x| (x.rule_id.clone(), x.shadow_price)).collect()),
        ("channel_contacts", |r| r.kpis.channels.iter().map(|(c, x)| (c.clone(), x.contacts)).collect()),
        ("channel_cost", |r| r.kpis.channels.iter().map(|(c, x)| (c.clone(), x.contact_cost)).collect()),
    ];
    for (section, values) in sections {
        let per_variant: Vec<_> = variants.iter().map(values).collect();
        lines.extend(keyed_lines(section, &values(base), &per_variant));
    }
    let eligibility = variants
        .iter()
        .map(|v| {
            let customers: BTreeSet<&String> = base.eligible.keys().chain(v.eligible.keys()).collect();
            let empty = BTreeSet::new();
            let mut change = EligibilityChange { customers_changed: 0, gained: 0, lost: 0, samples: Vec::new() };
            for c in customers {
                let (b, a) = (base.eligible.get(c).unwrap_or(&empty), v.eligible.get(c).unwrap_or(&empty));
                if a == b {
                    continue;
                }
                let gained: Vec<String> = a.difference(b).cloned().collect();
                let lost: Vec<String> = b.difference(a).cloned().collect();
                change.customers_changed += 1;
                change.gained += usize::from(!gained.is_empty());
                change.lost += usize::from(!lost.is_empty());
                if change.samples.len() < 5 {
                    change.samples.push((c.clone(), gained, lost));
                }
            }
            change
        })
        .collect();
    let binding = variants
        .iter()
        .map(|v| {
            let b: BTreeSet<&String> = base.kpis.binding_constraints.keys().collect();
            let a: BTreeSet<&String> = v.kpis.binding_constraints.keys().collect();
            (a.difference(&b).map(|s| s.to_string()).collect(), b.difference(&a).map(|s| s.to_string()).collect())
        })
        .collect();
    let by_sku = |r: &RunOutputs| r.reserved_by(|x| x.1.clone());
    let movers = variants.iter().map(|v| (top_movers(&by_sku(base), &by_sku(v)), top_movers(&base.served_by_zone(), &v.served_by_zone()))).collect();
    Comparison { base: base.name.clone(), variants: variants.iter().map(|v| v.name.clone()).collect(), lines, eligibility, binding, movers }
}

fn percent(r: Option<f64>) -> String {
    r.map_or("n/a".to_string(), |r| format!("{:+.1}%", 100.0 * r))
}

impl Comparison {
    /// The terminal table: KPIs with deltas, then what changed.
    pub fn terminal_table(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{:<22} {:>14}", "kpi", self.base);
        for v in &self.variants {
            let _ = write!(out, " {:>14} {:>9}", v, "delta");
        }
        out.push('\n');
        for l in self.lines.iter().filter(|l| l.section == "kpi") {
            let _ = write!(out, "{:<22} {:>14.2}", l.item, l.base);
            for i in 0..l.variants.len() {
                let _ = write!(out, " {:>14.2} {:>9}", l.variants[i], percent(l.relative(i)));
            }
            out.push('\n');
        }
        for (i, v) in self.variants.iter().enumerate() {
            let e = &self.eligibility[i];
            let _ = writeln!(out, "{v}: eligibility changed for {} customers ({} gained an offer, {} lost one)", e.customers_changed, e.gained, e.lost);
            let (appeared, vanished) = &self.binding[i];
            let _ = writeln!(out, "{v}: binding constraints appeared [{}], vanished [{}]", appeared.join(", "), vanished.join(", "));
            let (skus, zones) = &self.movers[i];
            let fmt = |m: &[(String, f64)]| m.iter().map(|(k, d)| format!("{k} {d:+.1}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(out, "{v}: SKUs moved most (reserved units) {}; zones (offers served) {}", fmt(skus), fmt(zones));
        }
        out
    }

    /// The CSV: `section, item, scenario, value, base, delta, relative_delta`.
    pub fn csv(&self) -> String {
        let mut out = String::from("section,item,scenario,value,base,delta,relative_delta\n");
        for l in &self.lines {
            for (i, v) in self.variants.iter().enumerate() {
                let rel = l.relative(i).map_or(String::new(), |r| format!("{r:.6}"));
                let _ = writeln!(out, "{},{},{},{:.6},{:.6},{:.6},{rel}", l.section, l.item, v, l.variants[i], l.base, l.delta(i));
            }
        }
        for (i, v) in self.variants.iter().enumerate() {
            let e = &self.eligibility[i];
            let _ = writeln!(out, "eligibility,customers_changed,{v},{},0,{},", e.customers_changed, e.customers_changed);
        }
        out
    }
}
