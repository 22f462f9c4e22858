//! Synthetic scenarios in the spec's format, for tests, benchmarks and demos.
//!
//! The generator aims at the structure that makes planning hard: bundles that
//! share popular SKUs, stock scarcer than demand, lanes slower than the promise,
//! lane and delivery capacities that bind, a budget below what offers would
//! spend, protected groups with different affinities, consent withdrawals,
//! suppressions, tier-restricted and date-limited offers, and custom variants
//! beyond the SKU-proliferation limit. The same seed gives the same files.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate};

use crate::error::StoreError;
use crate::scenario::config::MAX_HORIZON_DAYS;
use crate::files::sync_dir;

/// Sizes and seed of a synthetic scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSpec {
    /// Customers.
    pub customers: usize,
    /// Offers.
    pub offers: usize,
    /// SKUs.
    pub skus: usize,
    /// Zones.
    pub zones: usize,
    /// Warehouses.
    pub warehouses: usize,
    /// Candidate offers per customer (uptake rows per customer).
    pub candidates: usize,
    /// Random seed.
    pub seed: u64,
    /// First day of the horizon.
    pub start: NaiveDate,
    /// Horizon length in days.
    pub days: u32,
    /// Days of history before the horizon to write as `sales_history.csv` and
    /// `offer_history.csv` (0: none). Sales follow the baseline demand with a
    /// weekly profile, a trend and intermittency; each candidate offer is shown
    /// one to three times and accepted with the customer's true uptake.
    pub history_days: u32,
    /// Whether to write `uptake.csv` and `baseline_demand.csv` (without them,
    /// `allot plan` forecasts both from the history files).
    pub forecasts: bool,
    /// Model version 2's marketing columns: each offer's channel (email, app or
    /// call centre, each with its cost per contact), tags (its SKUs'
    /// categories) and contact date, and each pair's own value of one
    /// acceptance. Drawn from a stream of their own, so the version-1 files of
    /// a seed are the same with or without them.
    pub channels: bool,
    /// Model version 2's contact policies (needs `channels`): `max_per_customer`
    /// rules per channel, conflicts (a call then an email within 7 days, two
    /// categories within 14 days) and a contact history for about a third of
    /// the customers, from a stream of their own.
    pub contact_policies: bool,
    /// Model version 2's volume rules (needs `channels`), sized to the
    /// customers so that they bind: an email capacity (contacts on 15% of the
    /// customers), a call-centre budget (contact cost of 0.5% of them), a hard
    /// minimum of app acceptances and a soft minimum of acceptances of one
    /// category (penalty 2 a unit).
    pub volume_rules: bool,
    /// Model version 2's time-phased supply: `bucket_days` in `[policy]`
    /// (the generated receipts arrive on days spread over the horizon and
    /// after it, so with buckets some stock comes late).
    pub bucket_days: Option<u32>,
    /// Model version 2's all-or-nothing decisions (`binary_decisions`).
    pub binary_decisions: bool,
    /// More contact policies (with `contact_policies`): at most one contact a
    /// customer per category for four categories, and a conflict for every
    /// ordered pair of categories within 14 days (20) besides the call-then-email one.
    pub category_policies: bool,
    /// The kind of scenario drawn (see [`Family`]); the default family's
    /// files are those of earlier versions for the same seed.
    pub family: Family,
    /// `customer_features.csv` with attributes that drive acceptance (see
    /// [`CustomerDraw`]): every pair's true uptake, and so `uptake.csv` and
    /// the offer history, carries the customer's lift. Drawn from a stream of
    /// their own, so without it the files of a seed are unchanged.
    pub customer_attributes: bool,
}

/// The families of scenarios the generator draws: the same structure with one
/// trait changed, so that a solver is measured on more than one shape of
/// problem (`allot bench --families`, the decomposition's agreement tests).
/// Every family draws the same random stream as the default (only what the
/// draws become differs), so a family and the default of one seed share
/// their offers, and their customers too except with many candidates (which
/// draws more a customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Family {
    /// Everything the generator draws: fairness across protected groups, a
    /// budget below what offers would spend, stock at 40-130% of offer demand.
    #[default]
    Default,
    /// No fairness rule (`fairness_min_ratio` left out): no exposure rows.
    NoFairness,
    /// No budget (`budget` left out): discount costs are not rationed.
    NoBudget,
    /// Stock at a third of the default's (13-43% of offer demand): the stock
    /// rows of most SKUs bind and offers compete for them.
    TightStock,
    /// Three times the candidates per customer (capped by the offers), with
    /// the contact cap unchanged: each customer chooses among many more.
    ManyCandidates,
    /// Skewed uptake: a pair's uptake factor is the default's draw raised to
    /// the fourth power on its range and stretched to twice its width, so
    /// most pairs sit near the floor (many near-ties) and a few reach twice
    /// the default's top.
    SkewedUptake,
}

impl Family {
    /// Every family, the default first.
    pub const ALL: [Family; 6] = [Family::Default, Family::NoFairness, Family::NoBudget, Family::TightStock, Family::ManyCandidates, Family::SkewedUptake];

    /// The family's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Default => "default",
            Family::NoFairness => "no-fairness",
            Family::NoBudget => "no-budget",
            Family::TightStock => "tight-stock",
            Family::ManyCandidates => "many-candidates",
            Family::SkewedUptake => "skewed-uptake",
        }
    }

    /// Candidates per customer drawn for `requested`.
    fn candidates(self, requested: usize) -> usize {
        match self {
            Family::ManyCandidates => requested * 3,
            _ => requested,
        }
    }

    /// Factor on each SKU's drawn stock.
    fn stock_factor(self) -> f64 {
        match self {
            Family::TightStock => 1.0 / 3.0,
            _ => 1.0,
        }
    }

    /// A pair's uptake factor from the default's uniform draw `u` in `[lo, hi)`.
    fn uptake(self, u: f64, lo: f64, hi: f64) -> f64 {
        match self {
            Family::SkewedUptake => lo + (hi - lo) * ((u - lo) / (hi - lo)).powi(4) * 2.0,
            _ => u,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            format!("unknown family `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// Channels of generated offers: name, share of offers, cost per contact.
const CHANNELS: [(&str, f64, f64); 3] = [("email", 0.6, 0.02), ("app", 0.3, 0.0), ("call_centre", 0.1, 1.5)];
/// The channel a uniform draw in `[0, 1)` falls on, by the channels' shares.
fn channel_of(draw: f64) -> (&'static str, f64, f64) {
    CHANNELS
        .iter()
        .scan(0.0, |acc, c| {
            *acc += c.1;
            Some((*acc, c))
        })
        .find(|(acc, _)| draw < *acc)
        .map_or(CHANNELS[0], |(_, c)| *c)
}

/// SKU categories used as tags (`cat<sku % CATEGORIES>`).
const CATEGORIES: usize = 5;

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            customers: 1000,
            offers: 20,
            skus: 50,
            zones: 5,
            warehouses: 3,
            candidates: 5,
            seed: 1,
            start: NaiveDate::from_ymd_opt(2026, 12, 1).expect("valid date"),
            days: 14,
            history_days: 0,
            forecasts: true,
            channels: false,
            contact_policies: false,
            volume_rules: false,
            bucket_days: None,
            binary_decisions: false,
            category_policies: false,
            family: Family::Default,
            customer_attributes: false,
        }
    }
}

impl GenerateSpec {
    /// Why this spec cannot be drawn as asked, if it cannot: a count of 0,
    /// more candidates per customer than offers, a horizon or a history of
    /// more than [`MAX_HORIZON_DAYS`] days. Why not bend them: 0 offers was
    /// drawn as 1 and 13 candidates of 12 offers as 12 without a word, and
    /// 10^8 days overflowed the calendar.
    pub fn check(&self) -> Result<(), String> {
        let counts = [("customers", self.customers), ("offers", self.offers), ("skus", self.skus), ("zones", self.zones), ("warehouses", self.warehouses), ("candidates", self.candidates)];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(format!("{name}: got 0, expected at least 1"));
        }
        if self.candidates > self.offers {
            return Err(format!("candidates: got {}, more than the {} offers (a customer's candidates are distinct offers)", self.candidates, self.offers));
        }
        if !(1..=MAX_HORIZON_DAYS).contains(&self.days) {
            return Err(format!("days: got {}, expected 1 to {MAX_HORIZON_DAYS}", self.days));
        }
        if self.history_days > MAX_HORIZON_DAYS {
            return Err(format!("history days: got {}, expected at most {MAX_HORIZON_DAYS}", self.history_days));
        }
        Ok(())
    }
}

/// A small deterministic generator (SplitMix64): fast, seedable, stable across
/// platforms and dependency versions, which a library RNG does not promise.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
    /// Uniform integer in [0, n).
    fn below(&mut self, n: usize) -> usize {
        (self.f() * n as f64) as usize % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
    /// Zipf-like popularity draw in [0, n): low indices are popular, index
    /// `k` with probability `ln((k + 2) / (k + 1)) / ln(n + 1)`, the last
    /// one included (`(n + 1)^f - 1` with `f` in [0, 1) covers [0, n)).
    fn popular(&mut self, n: usize) -> usize {
        (((n + 1) as f64).powf(self.f()) - 1.0).floor() as usize % n.max(1)
    }
}

/// Household levels of generated customers: name, share, effect on the
/// log-odds of acceptance (about the log of the uptake's lift). `student` is
/// rare (0.5%): below the pooling threshold of a few thousand customers.
const HOUSEHOLDS: [(&str, f64, f64); 5] = [("single", 0.45, 0.0), ("couple", 0.30, 0.2), ("family", 0.22, 0.6), ("shared", 0.025, -0.2), ("student", 0.005, 0.3)];

/// The generated attributes of one customer, and the lift they give its uptake.
struct CustomerDraw {
    age: u32,
    tenure_months: u32,
    household: &'static str,
    newsletter: bool,
}

impl CustomerDraw {
    const HEADER: &'static str = "customer_id,age,tenure_months,household,newsletter\n";

    fn draw(rng: &mut Rng) -> Self {
        let age = 18 + rng.below(63) as u32;
        let tenure_months = rng.below(121) as u32;
        let (u, mut acc) = (rng.f(), 0.0);
        let household = HOUSEHOLDS
            .iter()
            .find(|h| {
                acc += h.1;
                u < acc
            })
            .map_or(HOUSEHOLDS[0].0, |h| h.0);
        CustomerDraw { age, tenure_months, household, newsletter: rng.chance(0.4) }
    }

    /// The factor on every uptake of this customer: younger customers,
    /// longer-standing ones, families and newsletter readers accept more
    /// (log-odds effects of -0.5 and +0.4 per standard deviation of age and
    /// tenure, the household's, and +0.3), centred so the mean is near 1.
    fn lift(&self) -> f64 {
        let household = HOUSEHOLDS.iter().find(|h| h.0 == self.household).map_or(0.0, |h| h.2);
        let z = -0.5 * (f64::from(self.age) - 49.0) / 18.2 + 0.4 * (f64::from(self.tenure_months) - 60.0) / 35.0 + household + if self.newsletter { 0.3 } else { 0.0 };
        (z - 0.55).exp()
    }

    fn line(&self, id: &str) -> String {
        format!("{id},{},{},{},{}\n", self.age, self.tenure_months, self.household, if self.newsletter { "yes" } else { "no" })
    }
}

const TIERS: [(&str, f64, f64); 3] = [("platinum", 1.5, 0.05), ("gold", 1.2, 0.20), ("standard", 1.0, 0.75)];
const GROUPS: [(&str, f64); 3] = [("A", 1.0), ("B", 0.8), ("C", 0.6)];
const CONTACT_CAP: usize = 3;
const PROMISE_DAYS: u32 = 3;

/// Writes a synthetic scenario into `out` (which must not exist or be empty),
/// through a staging directory renamed into place at the end.
pub fn generate(out: &Path, spec: &GenerateSpec) -> Result<(), StoreError> {
    spec.check().map_err(|e| StoreError::io("cannot generate", out, std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    if out.exists() && std::fs::read_dir(out).map_err(|e| StoreError::io("cannot read", out, e))?.next().is_some() {
        let e = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "directory is not empty");
        return Err(StoreError::io("refusing to overwrite", out, e));
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| StoreError::io("cannot create", parent, e))?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "scenario".into());
    let staging = parent.join(format!(".{name}.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| StoreError::io("cannot create", &staging, e))?;
    let result = write_files(&staging, spec).and_then(|_| {
        if out.exists() {
            std::fs::remove_dir(out).map_err(|e| StoreError::io("cannot replace", out, e))?;
        }
        std::fs::rename(&staging, out).map_err(|e| StoreError::io("cannot rename into", out, e))?;
        sync_dir(parent)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn write_files(dir: &Path, spec: &GenerateSpec) -> Result<(), StoreError> {
    let mut rng = Rng(spec.seed ^ 0xA110_7000);
    let (n_c, n_o, n_s, n_z, n_w) = (spec.customers, spec.offers.max(1), spec.skus.max(1), spec.zones.max(1), spec.warehouses.max(1));
    let last_day = spec.start + Duration::days(i64::from(spec.days) - 1);
    let zone = |z: usize| format!("Z{z:03}");
    let sku = |s: usize| format!("SKU{s:05}");
    let wh = |w: usize| format!("W{w:02}");
    let offer = |o: usize| format!("O{o:05}");

    // Offers: singles, bundles over popular SKUs, and custom variants.
    let mut offers = String::from("offer_id,margin,discount_cost,max_redemptions,min_tier,custom,start_date,end_date,fair");
    offers.push_str(if spec.channels { ",channel,tags,contact_date,cost_per_contact\n" } else { "\n" });
    let mut marketing = Rng(spec.seed ^ 0x3A6E_0002);
    let (mut channels_used, mut tags_used) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    let mut margin_of = Vec::with_capacity(n_o);
    let mut items = String::from("offer_id,sku,qty\n");
    let mut offer_skus: Vec<Vec<(usize, f64)>> = Vec::with_capacity(n_o);
    let mut offer_appeal = Vec::with_capacity(n_o);
    let mut custom_count = 0;
    let mut discount_of = Vec::with_capacity(n_o);
    for o in 0..n_o {
        let kind = rng.f();
        let custom = kind > 0.88;
        custom_count += custom as usize;
        let n_items = if kind < 0.6 { 1 } else if custom { 1 + rng.below(2) } else { 2 + rng.below(3) };
        let mut lines: Vec<(usize, f64)> = Vec::new();
        while lines.len() < n_items.min(n_s) {
            let s = if custom && lines.is_empty() { n_s - 1 - rng.popular(n_s) } else { rng.popular(n_s) };
            if !lines.iter().any(|l| l.0 == s) {
                lines.push((s, if rng.chance(0.15) { 2.0 } else { 1.0 }));
            }
        }
        let margin = rng.range(5.0, 25.0) * n_items as f64 * if custom { 1.6 } else { 1.0 };
        let discount = (margin * rng.range(0.05, 0.35) * 100.0).round() / 100.0;
        let max_red = if rng.chance(0.2) { format!("{}", 5 + rng.below(n_c / 40 + 5)) } else { String::new() };
        let min_tier = match rng.below(20) {
            0 => "gold",
            1 => "platinum",
            _ => "",
        };
        let (start, end) = match rng.below(12) {
            0 => (String::new(), (spec.start - Duration::days(1 + rng.below(10) as i64)).to_string()),
            1 => ((spec.start + Duration::days(rng.below(spec.days as usize) as i64)).to_string(), String::new()),
            2 => (String::new(), (last_day + Duration::days(rng.below(30) as i64)).to_string()),
            _ => (String::new(), String::new()),
        };
        let fair = if rng.chance(0.85) { "true" } else { "false" };
        let _ = write!(offers, "{},{margin:.2},{discount},{max_red},{min_tier},{custom},{start},{end},{fair}", offer(o));
        if spec.channels {
            let (channel, _, cost) = channel_of(marketing.f());
            let mut tags: Vec<String> = lines.iter().map(|&(s, _)| format!("cat{}", s % CATEGORIES)).collect();
            tags.sort();
            tags.dedup();
            // A contact day inside the offer's validity and the horizon, when it has one.
            let horizon = allot_optimizer::Horizon { start: spec.start, days: spec.days };
            let (first, last) = horizon.clamp(start.parse().ok(), end.parse().ok());
            let contact = if first <= last { (first + Duration::days(marketing.below((last - first).num_days() as usize + 1) as i64)).to_string() } else { String::new() };
            let _ = write!(offers, ",{channel},{},{contact},{cost}", tags.join(";"));
            channels_used.insert(channel);
            tags_used.extend(tags);
        }
        offers.push('\n');
        margin_of.push(margin);
        for &(s, q) in &lines {
            let _ = writeln!(items, "{},{},{q}", offer(o), sku(s));
        }
        offer_skus.push(lines);
        offer_appeal.push(rng.range(0.3, 1.0));
        discount_of.push(discount);
    }

    // Customers and their uptake, with expected demand per SKU for stock sizing.
    let mut customers = String::with_capacity(n_c * 32);
    customers.push_str("customer_id,zone,tier,consent,suppressed,group,max_offers\n");
    let candidates = spec.family.candidates(spec.candidates);
    let mut uptake = String::with_capacity(n_c * candidates * 24);
    uptake.push_str(if spec.channels { "customer_id,offer_id,p,value\n" } else { "customer_id,offer_id,p\n" });
    let history_start = spec.start - Duration::days(i64::from(spec.history_days));
    let mut offer_history = String::from("customer_id,offer_id,date,shown,accepted\n");
    let mut demand_per_sku = vec![0.0; n_s];
    let mut discount_spend = 0.0;
    let mut accepts_per_zone = vec![0.0; n_z];
    let share = CONTACT_CAP as f64 / candidates.max(CONTACT_CAP) as f64;
    let mut chosen: Vec<usize> = Vec::with_capacity(candidates);
    let mut attribute_rng = Rng(spec.seed ^ 0xA77B_0004);
    let mut customer_features = String::from(CustomerDraw::HEADER);
    for c in 0..n_c {
        let z = rng.popular(n_z);
        let t = rng.f();
        let tier = if t < TIERS[0].2 { 0 } else if t < TIERS[0].2 + TIERS[1].2 { 1 } else { 2 };
        let g = rng.below(10);
        let (group, affinity) = if g == 9 { ("", 0.9) } else { (GROUPS[g % 3].0, GROUPS[g % 3].1) };
        let consent = !rng.chance(0.03);
        let suppressed = rng.chance(0.02);
        let max_offers = if rng.chance(0.1) { format!("{}", 1 + rng.below(2)) } else { String::new() };
        let id = format!("C{c:07}");
        let _ = writeln!(customers, "{id},{},{},{consent},{suppressed},{group},{max_offers}", zone(z), TIERS[tier].0);
        let attributes = spec.customer_attributes.then(|| CustomerDraw::draw(&mut attribute_rng));
        if let Some(a) = &attributes {
            customer_features.push_str(&a.line(&id));
        }
        chosen.clear();
        if candidates >= n_o {
            // Every offer, without drawing: the least popular offers are
            // rare draws (the last of 40 about one draw in 150).
            chosen.extend(0..n_o);
        }
        while chosen.len() < candidates.min(n_o) {
            let o = rng.popular(n_o);
            if !chosen.contains(&o) {
                chosen.push(o);
            }
        }
        for &o in &chosen {
            let tier_lift = [1.3, 1.1, 1.0][tier];
            let mut p = offer_appeal[o] * affinity * tier_lift * spec.family.uptake(rng.range(0.02, 0.45), 0.02, 0.45);
            if let Some(a) = &attributes {
                p *= a.lift();
            }
            let p = p.clamp(0.005, 0.95);
            let p = (p * 1e4).round() / 1e4;
            if spec.channels {
                // The pair's own value: its basket around the offer's margin.
                let value = (margin_of[o] * marketing.range(0.6, 1.6) * 100.0).round() / 100.0;
                let _ = writeln!(uptake, "{id},{},{p},{value}", offer(o));
            } else {
                let _ = writeln!(uptake, "{id},{},{p}", offer(o));
            }
            if spec.history_days > 0 {
                for _ in 0..1 + rng.below(3) {
                    let date = history_start + Duration::days(rng.below(spec.history_days as usize) as i64);
                    let _ = writeln!(offer_history, "{id},{},{date},1,{}", offer(o), u8::from(rng.chance(p)));
                }
            }
            for &(s, q) in &offer_skus[o] {
                demand_per_sku[s] += q * p * share;
            }
            discount_spend += discount_of[o] * p * share;
            accepts_per_zone[z] += p * share;
        }
    }

    // Lanes: every warehouse to every zone; some too slow for the promise, some capacitated.
    let mut lanes = String::from("warehouse_id,zone,cost_per_unit,transit_days,capacity\n");
    // Baseline (non-offer) demand per SKU: 10-40% of its offer demand.
    let base_total: Vec<f64> = demand_per_sku.iter().map(|d| d * rng.range(0.1, 0.4)).collect();
    let total_units: f64 = demand_per_sku.iter().sum::<f64>() + base_total.iter().sum::<f64>();
    let mut fast = vec![vec![false; n_z]; n_w];
    for w in 0..n_w {
        for z in 0..n_z {
            // Most lanes keep the promise; about one in five is too slow.
            let transit = if rng.chance(0.8) { 1 + rng.below(PROMISE_DAYS as usize) as u32 } else { PROMISE_DAYS + 1 + rng.below(2) as u32 };
            fast[w][z] = transit <= PROMISE_DAYS;
            let cost = (rng.range(0.5, 2.0) + 0.4 * transit as f64) * 100.0;
            // A zone is served by about half the warehouses: a fair lane share is
            // 2 / n_w of the zone's flow; capacitated lanes get 60-160% of that.
            let fair_share = total_units / n_z as f64 * 2.0 / n_w as f64;
            let cap = if rng.chance(0.3) { format!("{:.0}", fair_share * rng.range(0.6, 1.6)) } else { String::new() };
            let _ = writeln!(lanes, "{},{},{:.2},{transit},{cap}", wh(w), zone(z), cost.round() / 100.0);
        }
    }
    // Stock: each warehouse lists most SKUs; total stock is 40-130% of offer demand.
    let mut inventory = String::from("warehouse_id,sku,on_hand,safety_stock\n");
    let mut inbound = String::from("warehouse_id,sku,qty,arrival_date\n");
    let mut baseline = String::from("zone,sku,units\n");
    let mut baseline_rows: Vec<(usize, usize, f64)> = Vec::new();
    for s in 0..n_s {
        let listing: Vec<usize> = (0..n_w).filter(|_| rng.chance(0.8)).collect();
        let listing = if listing.is_empty() { vec![rng.below(n_w)] } else { listing };
        let total = (demand_per_sku[s] * rng.range(0.4, 1.3) + base_total[s] * 1.5) * spec.family.stock_factor();
        for &w in &listing {
            let units = (total / listing.len() as f64 * rng.range(0.6, 1.4)).ceil();
            let safety = (units * 0.05).round();
            let receipt = rng.chance(0.25).then(|| {
                let arrive = spec.start + Duration::days(rng.below(spec.days as usize + 10) as i64);
                (arrive, (units * rng.range(0.1, 0.5)).round())
            });
            // With time buckets a receipt inside the horizon is part of the
            // stock that is not there yet (so it matters when it comes);
            // without, it comes on top, as in version 1.
            let late = match receipt {
                Some((arrive, qty)) if spec.bucket_days.is_some() && arrive < spec.start + Duration::days(i64::from(spec.days)) => qty,
                _ => 0.0,
            };
            let _ = writeln!(inventory, "{},{},{},{safety}", wh(w), sku(s), units - late);
            if let Some((arrive, qty)) = receipt {
                let _ = writeln!(inbound, "{},{},{qty},{arrive}", wh(w), sku(s));
            }
        }
        // Baseline demand of popular SKUs in a few zones that a fast lane reaches.
        if s < n_s / 3 + 1 {
            let zones: Vec<usize> = (0..n_z).filter(|&z| listing.iter().any(|&w| fast[w][z])).filter(|_| rng.chance(0.4)).collect();
            let units = (base_total[s] / zones.len().max(1) as f64).round();
            for &z in zones.iter().filter(|_| units >= 1.0) {
                let _ = writeln!(baseline, "{},{},{units:.0}", zone(z), sku(s));
                baseline_rows.push((z, s, units));
            }
        }
    }

    let mut zones = String::from("zone,delivery_capacity\n");
    for (z, accepts) in accepts_per_zone.iter().enumerate() {
        let cap = if rng.chance(0.3) { format!("{:.0}", (accepts * rng.range(0.4, 0.8)).max(1.0)) } else { String::new() };
        let _ = writeln!(zones, "{},{cap}", zone(z));
    }
    let toml = format!(
        "# Synthetic scenario: allot generate --customers {} --offers {} --skus {} --zones {} --warehouses {} --candidates {} --seed {}{}\n\
         [horizon]\nstart = \"{}\"\ndays = {}\n\n[policy]\ncontact_cap = {CONTACT_CAP}\n{}promise_days = {PROMISE_DAYS}\n\
         {}max_custom_offers = {}\nunmet_baseline_penalty = 1000.0\n{}{}\n[tiers]\nplatinum = 1.5\ngold = 1.2\nstandard = 1.0\n",
        spec.customers, spec.offers, spec.skus, spec.zones, spec.warehouses, spec.candidates, spec.seed,
        if spec.family == Family::Default { String::new() } else { format!(" --family {}", spec.family) },
        spec.start, spec.days,
        if spec.family == Family::NoBudget { String::new() } else { format!("budget = {:.0}\n", (discount_spend * 0.6).max(1.0)) },
        if spec.family == Family::NoFairness { "" } else { "fairness_min_ratio = 0.8\n" },
        (custom_count / 2).max(1),
        spec.bucket_days.map_or(String::new(), |b| format!("bucket_days = {b}\n")),
        if spec.binary_decisions { "binary_decisions = true\n" } else { "" },
    );
    // Sales history: each baseline series back in time, with its own weekly
    // profile and trend; below one unit a day, intermittent.
    let mut sales_history = String::from("date,zone,sku,units\n");
    if spec.history_days > 0 {
        let mut series_rng = allot_forecasting::synthetic::Rng::new(rng.next_u64());
        let weekday = history_start.weekday().num_days_from_monday() as usize;
        for &(z, s, units) in &baseline_rows {
            let mut shape = allot_forecasting::synthetic::SeriesShape::random(&mut series_rng, 0.0);
            let per_day = units / f64::from(spec.days.max(1));
            // The trend ends at today's level.
            shape.level = per_day / (1.0 + shape.trend).powi(spec.history_days as i32);
            if per_day < 1.0 {
                shape.demand_probability = per_day.max(0.05);
                shape.level = 1.0;
                shape.trend = 0.0;
            }
            for (t, u) in shape.sample(&mut series_rng, spec.history_days as usize, weekday).into_iter().enumerate() {
                if u > 0.0 {
                    let _ = writeln!(sales_history, "{},{},{},{u}", history_start + Duration::days(t as i64), zone(z), sku(s));
                }
            }
        }
    }
    let mut files: Vec<(&str, &str)> = vec![
        ("scenario.toml", toml.as_str()),
        ("customers.csv", &customers),
        ("offers.csv", &offers),
        ("offer_items.csv", &items),
        ("inventory.csv", &inventory),
        ("inbound.csv", &inbound),
        ("lanes.csv", &lanes),
        ("zones.csv", &zones),
    ];
    if spec.forecasts {
        files.extend([("uptake.csv", uptake.as_str()), ("baseline_demand.csv", baseline.as_str())]);
    }
    if spec.history_days > 0 {
        files.extend([("sales_history.csv", sales_history.as_str()), ("offer_history.csv", offer_history.as_str())]);
    }
    if spec.customer_attributes {
        files.push(("customer_features.csv", customer_features.as_str()));
    }
    let policies = (spec.channels && spec.contact_policies).then(|| contact_policies(spec, &channels_used, &tags_used));
    let mut rules = String::from(RULES_HEADER);
    if let Some((per_customer, conflicts, history)) = &policies {
        rules.push_str(per_customer);
        files.extend([("conflicts.csv", conflicts.as_str()), ("contact_history.csv", history.as_str())]);
    }
    if spec.channels && spec.volume_rules {
        rules.push_str(&volume_rules(spec, &channels_used, &tags_used));
    }
    if rules.len() > RULES_HEADER.len() {
        files.push(("rules.csv", rules.as_str()));
    }
    for (name, body) in files {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).map_err(|e| StoreError::io("cannot create", &path, e))?;
        f.write_all(body.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| StoreError::io("cannot write", &path, e))?;
    }
    sync_dir(dir)
}

/// `rules.csv`, `conflicts.csv` and `contact_history.csv` of the contact
/// policies, naming only channels and tags some offer has (a selector that
/// picks nothing is an input error).
fn contact_policies(spec: &GenerateSpec, channels: &std::collections::BTreeSet<&str>, tags: &std::collections::BTreeSet<String>) -> (String, String, String) {
    let mut rng = Rng(spec.seed ^ 0xC047_AC75);
    let mut rules = String::new();
    for (channel, bound) in [("email", 2), ("call_centre", 1)] {
        if channels.contains(channel) {
            let _ = writeln!(rules, "{channel}_per_customer,max_per_customer,contacts,{bound},,{channel},,,,");
        }
    }
    let mut conflicts = String::from("conflict_id,within_days,channels_a,tags_a,channels_b,tags_b\n");
    if channels.contains("call_centre") && channels.contains("email") {
        conflicts.push_str("call_then_email,7,call_centre,,email,\n");
    }
    let categories: Vec<String> = (0..CATEGORIES).map(|c| format!("cat{c}")).filter(|t| tags.contains(t)).collect();
    for (i, a) in categories.iter().enumerate() {
        for (j, b) in categories.iter().enumerate() {
            if i != j && (spec.category_policies || (i, j) == (0, 1)) {
                let _ = writeln!(conflicts, "{a}_then_{b},14,,{a},,{b}");
            }
        }
    }
    if spec.category_policies {
        for tag in categories.iter().take(4) {
            let _ = writeln!(rules, "{tag}_per_customer,max_per_customer,contacts,1,,,{tag},,,");
        }
    }
    let mut history = String::from("customer_id,date,channel,tags,offer_id\n");
    for c in 0..spec.customers {
        if !rng.chance(0.35) {
            continue;
        }
        for _ in 0..1 + rng.below(3) {
            let date = spec.start - Duration::days(1 + rng.below(14) as i64);
            let channel = channel_of(rng.f()).0;
            let _ = writeln!(history, "C{c:07},{date},{channel},cat{},", rng.below(CATEGORIES));
        }
    }
    (rules, conflicts, history)
}

/// The header of a generated `rules.csv`.
const RULES_HEADER: &str = "rule_id,kind,measure,bound,penalty,channels,tags,offers,from,to\n";

/// The volume rules of `rules.csv` (see [`GenerateSpec::volume_rules`]), on
/// channels and tags some offer has.
fn volume_rules(spec: &GenerateSpec, channels: &std::collections::BTreeSet<&str>, tags: &std::collections::BTreeSet<String>) -> String {
    let n = spec.customers as f64;
    let mut rules = String::new();
    if channels.contains("email") {
        let _ = writeln!(rules, "email_capacity,max_total,contacts,{},,email,,,,", (0.15 * n).ceil());
    }
    if channels.contains("call_centre") {
        let _ = writeln!(rules, "call_budget,max_total,contact_cost,{},,call_centre,,,,", (0.005 * n * 1.5).ceil());
    }
    if channels.contains("app") {
        let _ = writeln!(rules, "app_volume,min_total,accepts,{},,app,,,,", (0.002 * n).ceil());
    }
    if let Some(tag) = tags.iter().next() {
        let _ = writeln!(rules, "{tag}_volume,min_total,accepts,{},2,,{tag},,,", (0.02 * n).ceil());
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The popularity draw reaches every index: each of the 20 zones has
    /// customers and each of the 40 offers is some customer's candidate (the
    /// least popular zone about 1.6% of the customers, the last offer about
    /// 0.7% of the draws). Why a test: a draw that stopped one short of `n`
    /// left the last zone and offer of every generated scenario empty.
    #[test]
    fn every_zone_and_offer_is_drawn() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 3000, offers: 40, zones: 20, seed: 4, ..GenerateSpec::default() };
        generate(tmp.path(), &spec).unwrap();
        let problem = crate::scenario::load::load_root(tmp.path(), Default::default()).unwrap().problem;
        let mut customers_in_zone = vec![0usize; problem.zones.len()];
        for &z in &problem.customers.zone {
            customers_in_zone[z as usize] += 1;
        }
        let mut pairs_of_offer = vec![0usize; problem.offers.len()];
        for u in &problem.uptake {
            pairs_of_offer[u.offer as usize] += 1;
        }
        assert_eq!((customers_in_zone.len(), pairs_of_offer.len()), (20, 40));
        assert!(customers_in_zone.iter().all(|&n| n > 0), "customers per zone: {customers_in_zone:?}");
        assert!(pairs_of_offer.iter().all(|&n| n > 0), "candidate pairs per offer: {pairs_of_offer:?}");
    }

    /// The version-2 columns come from their own stream: the version-1 columns
    /// of a seed are unchanged, and the scenario loads with three channels,
    /// their costs and per-pair values.
    #[test]
    fn channels_add_columns_without_changing_version_1_draws() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 300, offers: 40, seed: 4, ..GenerateSpec::default() };
        let (v1, v2) = (tmp.path().join("v1"), tmp.path().join("v2"));
        generate(&v1, &spec).unwrap();
        generate(&v2, &GenerateSpec { channels: true, ..spec }).unwrap();
        let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        for f in ["customers.csv", "inventory.csv", "lanes.csv", "offer_items.csv", "baseline_demand.csv"] {
            assert_eq!(read(&v1, f), read(&v2, f), "{f}");
        }
        let first_columns = |text: String, n: usize| text.lines().map(|l| l.split(',').take(n).collect::<Vec<_>>().join(",")).collect::<Vec<_>>();
        assert_eq!(first_columns(read(&v1, "offers.csv"), 9), first_columns(read(&v2, "offers.csv"), 9));
        assert_eq!(first_columns(read(&v1, "uptake.csv"), 3), first_columns(read(&v2, "uptake.csv"), 3));
        let problem = crate::scenario::load::load_root(&v2, Default::default()).unwrap().problem;
        let mut channels = problem.channels.clone();
        channels.sort();
        assert_eq!(channels, ["app", "call_centre", "email"]);
        assert!(problem.offers.iter().any(|o| o.cost_per_contact > 0.0));
        assert!(problem.offers.iter().all(|o| !o.tags.is_empty()));
        let values = problem.uptake_value.as_ref().expect("per-pair values");
        assert!(values.iter().zip(&problem.uptake).any(|(v, u)| (v - problem.offers[u.offer as usize].margin).abs() > 0.01));
    }

    /// Customer attributes come from a stream of their own: the customers and
    /// offers of a seed are unchanged, every customer has one row, and the
    /// attributes move the uptake (families accept about e^0.6 times as often
    /// as singles, the young more than the old).
    #[test]
    fn customer_attributes_drive_uptake_without_changing_other_draws() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 3000, seed: 4, ..GenerateSpec::default() };
        let (plain, with) = (tmp.path().join("plain"), tmp.path().join("with"));
        generate(&plain, &spec).unwrap();
        generate(&with, &GenerateSpec { customer_attributes: true, ..spec }).unwrap();
        let read = |dir: &Path, f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        // (Stock and lane capacities are sized to the expected uptake, so they move.)
        for f in ["customers.csv", "offers.csv", "offer_items.csv"] {
            assert_eq!(read(&plain, f), read(&with, f), "{f}");
        }
        assert!(!plain.join("customer_features.csv").exists());
        let features = read(&with, "customer_features.csv");
        let rows: Vec<Vec<&str>> = features.lines().skip(1).map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 3000);
        let of: HashMap<&str, &Vec<&str>> = rows.iter().map(|r| (r[0], r)).collect();
        // Mean uptake by household and by age band, against the plain scenario's.
        let mean_p = |dir: &Path, keep: &dyn Fn(&Vec<&str>) -> bool| {
            let text = read(dir, "uptake.csv");
            let ps: Vec<f64> = text.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()).filter(|c| keep(of[c[0]])).map(|c| c[2].parse::<f64>().unwrap()).collect();
            ps.iter().sum::<f64>() / ps.len() as f64
        };
        let household = |h: &'static str| move |r: &Vec<&str>| r[3] == h;
        let ratio = |keep: &dyn Fn(&Vec<&str>) -> bool| mean_p(&with, keep) / mean_p(&plain, keep);
        let family_vs_single = ratio(&household("family")) / ratio(&household("single"));
        assert!((1.5..2.2).contains(&family_vs_single), "{family_vs_single}");
        let young_vs_old = ratio(&|r: &Vec<&str>| r[1].parse::<u32>().unwrap() < 30) / ratio(&|r: &Vec<&str>| r[1].parse::<u32>().unwrap() > 68);
        assert!(young_vs_old > 2.0, "{young_vs_old}");
        // Centred: the mean uptake moves little.
        let all = ratio(&|_: &Vec<&str>| true);
        assert!((0.85..1.2).contains(&all), "{all}");
    }

    /// Each family loads and changes what it says, from the default's
    /// stream (the same customers, but for many candidates); the default's
    /// header names no family.
    #[test]
    fn families_change_one_trait_each() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 2000, seed: 4, ..GenerateSpec::default() };
        let load = |family: Family| {
            let dir = tmp.path().join(family.name());
            if !dir.exists() {
                generate(&dir, &GenerateSpec { family, ..spec.clone() }).unwrap();
            }
            let customers = std::fs::read_to_string(dir.join("customers.csv")).unwrap();
            (crate::scenario::load::load_root(&dir, Default::default()).unwrap().problem, customers)
        };
        let (default, customers) = load(Family::Default);
        assert!(!std::fs::read_to_string(tmp.path().join("default/scenario.toml")).unwrap().contains("--family"));
        let stock = |p: &allot_optimizer::Problem| p.stock.iter().map(|s| s.on_hand).sum::<f64>();
        let median_p = |p: &allot_optimizer::Problem| {
            let mut v: Vec<f64> = p.uptake.iter().map(|u| u.p).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        for family in Family::ALL {
            assert_eq!(family.name().parse::<Family>(), Ok(family));
            let (p, c) = load(family);
            // (Many candidates draw more per customer, so later customers differ.)
            assert!(family == Family::ManyCandidates || c == customers, "{family}: the same customers");
            assert_eq!(p.policy.fairness_min_ratio.is_none(), family == Family::NoFairness, "{family}");
            assert_eq!(p.policy.budget.is_none(), family == Family::NoBudget, "{family}");
            let ratio = stock(&p) / stock(&default);
            assert!(if family == Family::TightStock { ratio < 0.5 } else { (ratio - 1.0).abs() < 0.3 }, "{family}: stock ratio {ratio}");
            assert_eq!(p.uptake.len(), 2000 * if family == Family::ManyCandidates { 15 } else { 5 }, "{family}");
            assert_eq!(median_p(&p) < 0.5 * median_p(&default), family == Family::SkewedUptake, "{family}");
        }
        assert!("nope".parse::<Family>().unwrap_err().contains("tight-stock"));
    }

    /// As many candidates as offers (or more, as `many-candidates` asks
    /// for three times `--candidates`) gives every customer every offer; it
    /// used to draw forever. Run on a thread so that a regression fails
    /// instead of hanging the suite.
    #[test]
    fn candidates_up_to_the_offers_give_every_offer() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let spec = GenerateSpec { customers: 50, offers: 5, candidates: 2, family: Family::ManyCandidates, seed: 9, ..GenerateSpec::default() };
            let _ = done.send(generate(&dir, &spec).map(|_| crate::scenario::load::load_root(&dir, Default::default()).unwrap().problem.uptake.len()));
        });
        let pairs = finished.recv_timeout(std::time::Duration::from_secs(60)).expect("generate finished").unwrap();
        assert_eq!(pairs, 50 * 5, "every customer, every offer");
    }

    /// Contact policies come from a stream of their own too, and load: two
    /// per-customer limits, two conflicts, a history for about a third of the
    /// customers.
    #[test]
    fn contact_policies_add_tables_that_load() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 300, offers: 40, seed: 4, channels: true, ..GenerateSpec::default() };
        let (plain, with) = (tmp.path().join("plain"), tmp.path().join("with"));
        generate(&plain, &spec).unwrap();
        generate(&with, &GenerateSpec { contact_policies: true, ..spec }).unwrap();
        for f in ["customers.csv", "offers.csv", "uptake.csv", "inventory.csv"] {
            assert_eq!(std::fs::read_to_string(plain.join(f)).unwrap(), std::fs::read_to_string(with.join(f)).unwrap(), "{f}");
        }
        let problem = crate::scenario::load::load_root(&with, Default::default()).unwrap().problem;
        assert_eq!(problem.contact_rules.len(), 2);
        assert_eq!(problem.conflicts.len(), 2);
        let customers: std::collections::HashSet<u32> = problem.history.iter().map(|h| h.customer).collect();
        assert!((60..150).contains(&customers.len()), "{} customers with history", customers.len());
        assert!(problem.history.windows(2).all(|w| w[0].customer <= w[1].customer), "sorted by customer");
    }

    /// Volume rules join the per-customer ones in one `rules.csv`, load, and
    /// bind at the exact optimum.
    #[test]
    fn volume_rules_load_and_bind() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 400, offers: 20, seed: 5, channels: true, contact_policies: true, volume_rules: true, ..GenerateSpec::default() };
        generate(tmp.path(), &spec).unwrap();
        let problem = crate::scenario::load::load_root(tmp.path(), Default::default()).unwrap().problem;
        assert_eq!((problem.contact_rules.len(), problem.rules.len()), (2, 4), "{:?}", problem.rules);
        let (_, alloc, _) = allot_optimizer::plan(&problem, &allot_optimizer::SolverChoice::Exact(Default::default())).unwrap();
        let binding = alloc.prices.families["rule"].iter().filter(|&&p| p > 1e-7).count();
        assert!(binding >= 2, "binding volume rules: {:?}", alloc.prices.families["rule"]);
    }

    /// Time buckets: four 7-day buckets over 28 days, the baseline spread over
    /// them, and receipts that arrive late cost value against counting them
    /// from day 1 (one bucket).
    #[test]
    fn time_buckets_make_late_receipts_matter() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = GenerateSpec { customers: 400, offers: 20, seed: 5, channels: true, days: 28, bucket_days: Some(7), ..GenerateSpec::default() };
        generate(tmp.path(), &spec).unwrap();
        let problem = crate::scenario::load::load_root(tmp.path(), Default::default()).unwrap().problem;
        assert_eq!(problem.buckets().count(), 4);
        assert!(problem.baseline.iter().any(|b| b.bucket == 3));
        assert!(problem.stock.iter().any(|s| s.inbound.iter().any(|r| r.day > problem.horizon.start)), "receipts inside the horizon");
        let exact = allot_optimizer::SolverChoice::Exact(Default::default());
        let (_, bucketed, _) = allot_optimizer::plan(&problem, &exact).unwrap();
        // The same files read as one bucket: every receipt usable from day 1.
        std::fs::write(tmp.path().join("scenario.toml"), std::fs::read_to_string(tmp.path().join("scenario.toml")).unwrap().replace("bucket_days = 7\n", "")).unwrap();
        let one = crate::scenario::load::load_root(tmp.path(), Default::default()).unwrap().problem;
        assert_eq!(one.buckets().count(), 1);
        let (_, whole, _) = allot_optimizer::plan(&one, &exact).unwrap();
        assert!(bucketed.report.objective < whole.report.objective - 1e-6, "{} vs {}", bucketed.report.objective, whole.report.objective);
    }
}
