//! `allot simulate`: a population with known true acceptance probabilities
//! played against a running decision service, for tests and demos.
//!
//! Why: an experiment's report estimates an uplift; only a simulation knows
//! the uplift it should find. The customers are a scenario's, and their truth
//! is its `uptake.csv` (what `allot generate` drew): each simulated day a
//! seeded sample of them asks for offers (`POST /v1/eligibility:batch`), and
//! for every offer shown the simulator posts `shown`, draws the acceptance
//! from the true probability (an offer without an uptake row: never
//! accepted), posts `accepted` (with the pair's true value: its `value`
//! column, else the offer's margin) or `declined`, and for an acceptance
//! `ordered`, then `delivered` the next day (on time with `--on-time-rate`);
//! with `--inventory` also an inventory `order` per item of the offer, from
//! the warehouse of the cheapest usable lane into the customer's zone that
//! lists the SKU.
//! Every draw is a function of the seed, the day, the customer and the offer,
//! and every event id of those and the experiment, so a re-run posts the same
//! events and the service counts them once (its decisions are recorded
//! again). Inventory events are not posted by default: live stock would move
//! the bid prices, and so what is served, away from what the plans say,
//! which is what the truth below is made of (the check of decisions counts
//! how many were changed).
//!
//! **The truth of a canary** (with `--experiment` and `--store`): the report
//! estimates, by intention to treat, the canary's value per customer minus
//! control's, over the customers who asked, each counting the summed value of
//! all their acceptances. The same estimand with the true probabilities: for
//! each customer `c` who asked `n_c` times, `v_V(c)` = the sum over the offers
//! version `V` serves them as planned ([`allot_api::decide::AsPlanned`]) of
//! true p × value, and the true uplift is the mean over those customers of
//! `n_c × (v_canary(c) - v_control(c))`. It holds while the service serves
//! what the versions planned: the simulator checks each decision against its
//! version as planned and reports the ones a live rule changed (a redemption
//! cap or the budget burnt down by acceptances).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use allot_api::decide::AsPlanned;
use allot_api::{Decision, PlanIndex, Role};
use allot_scenarios::PlanStore;
use anyhow::{bail, ensure, Context, Result};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{json, Value};

/// `allot simulate`'s arguments.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The decision service (`http://host:port`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key file as `allot serve --keys` reads it: the simulator uses a
    /// decision key, and a planner key to read the experiment and the plans
    /// (an admin key serves for both) [default: <store>/api_keys.json].
    #[arg(long)]
    keys: Option<PathBuf>,
    /// The scenario whose customers play; its `uptake.csv` is their truth.
    #[arg(long)]
    scenario: PathBuf,
    /// Simulated days (each posts its events dated from the horizon's start on).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Customers asking for offers each day, drawn without replacement
    /// [default: a tenth of the scenario's customers].
    #[arg(long)]
    customers_per_day: Option<usize>,
    /// Seed of the draws and of the event ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of orders delivered on time.
    #[arg(long, default_value_t = 0.9)]
    on_time_rate: f64,
    /// The plan version the service must be serving as its active plan (the
    /// control of any canary): the simulation refuses to start otherwise.
    #[arg(long)]
    plan: Option<String>,
    /// An experiment whose report is read at the end (and, with --store, its truth).
    #[arg(long)]
    experiment: Option<String>,
    /// The plan store the service serves: with it the simulator checks each
    /// decision against its version as planned, and computes a canary's true uplift.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Also post an inventory `order` (role fulfilment) for each item of an
    /// accepted offer; live stock then moves bid prices, and decisions away
    /// from the plans (the truth assumes they are not).
    #[arg(long)]
    inventory: bool,
    /// Concurrent connections posting events.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    connections: u32,
    /// Also write the summary, the report and the truth as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A minimal HTTP/1.1 client over one kept-alive connection, JSON in and out.
/// Why not a crate: the service answers plain HTTP/1.1 with a
/// `Content-Length`, and this is all the simulator needs of it.
struct Http {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Http {
    /// A client of `url` (`http://host:port`; nothing else is accepted).
    fn new(url: &str) -> Result<Self> {
        let addr = url.strip_prefix("http://").map(|a| a.trim_end_matches('/')).filter(|a| !a.is_empty() && !a.contains('/'));
        let addr = addr.with_context(|| format!("--url {url:?}: expected http://host:port (plain HTTP, no path)"))?;
        Ok(Http { addr: addr.to_string(), conn: None })
    }

    /// One request; returns the status and the JSON body (`null` when empty).
    /// A kept-alive connection the server closed meanwhile is reopened and
    /// the request sent again, only when no byte of an answer came back.
    fn call(&mut self, method: &str, path: &str, key: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let reused = self.conn.is_some();
        match self.exchange(&request) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) if reused => self.exchange(&request)?.with_context(|| format!("{method} {path}: the service closed the connection without answering")),
            Ok(None) => bail!("{method} {path}: the service closed the connection without answering"),
            Err(e) => Err(e).with_context(|| format!("{method} {path} to {}", self.addr)),
        }
    }

    /// Sends `request` and reads its answer; `None` when the connection
    /// ended before any byte of it.
    fn exchange(&mut self, request: &str) -> Result<Option<(u16, Value)>> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr).with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().expect("connected above");
        let answer = (|| -> Result<Option<(u16, Value, bool)>> {
            conn.get_mut().write_all(request.as_bytes())?;
            let mut line = String::new();
            if conn.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("not an HTTP status line: {line:?}"))?;
            let (mut length, mut close) = (None, false);
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((header, ""));
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse::<usize>().ok(),
                    "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                    "transfer-encoding" => bail!("the service answered with Transfer-Encoding {}; only Content-Length bodies are read", value.trim()),
                    _ => {}
                }
            }
            let mut payload = vec![0; length.unwrap_or(0)];
            conn.read_exact(&mut payload)?;
            let value = if payload.is_empty() { Value::Null } else { serde_json::from_slice(&payload).context("the answer is not JSON")? };
            Ok(Some((status, value, close)))
        })();
        // A connection the server closes, or one whose answer went wrong, is not reused.
        if !matches!(answer, Ok(Some((_, _, false)))) {
            self.conn = None;
        }
        answer.map(|a| a.map(|(status, value, _)| (status, value)))
    }

    /// A request that must answer one of `ok` statuses.
    fn expect(&mut self, method: &str, path: &str, key: &str, body: Option<&Value>, ok: &[u16]) -> Result<Value> {
        let (status, answer) = self.call(method, path, key, body)?;
        ensure!(ok.contains(&status), "{method} {path} answered {status}: {answer}");
        Ok(answer)
    }
}

/// The scenario's truth: who the customers are, and each pair's true
/// acceptance probability and value of an acceptance.
struct Truth {
    customers: Vec<String>,
    offer_ix: HashMap<String, u32>,
    /// (customer, offer) to (p, value).
    pairs: HashMap<(u32, u32), (f64, f64)>,
    horizon_start: NaiveDate,
    /// Where accepted offers ship from (with --inventory).
    shipping: Option<Shipping>,
}

/// What an accepted offer takes from which warehouse: each item from the
/// warehouse of the cheapest usable lane into the customer's zone that lists
/// its SKU (the planner's own [`allot_optimizer::Network`]), for the
/// customer's tier.
struct Shipping {
    /// Per offer, per zone: (warehouse, or `None` when no usable lane brings the SKU; SKU; units) per item.
    items: Vec<Vec<Vec<(Option<String>, String, f64)>>>,
    customer_zone: Vec<u32>,
    customer_tier: Vec<String>,
}

impl Shipping {
    fn new(p: &allot_optimizer::Problem) -> Self {
        let network = allot_optimizer::Network::new(p);
        let from = |zone: usize, sku: u32| -> Option<String> {
            let lanes = network.lanes_into_zone[zone].iter().map(|&l| &p.lanes[l as usize]);
            let listing = lanes.filter(|lane| network.stock_index.contains_key(&(lane.warehouse, sku)));
            listing.min_by(|a, b| a.cost_per_unit.total_cmp(&b.cost_per_unit)).map(|lane| p.warehouses[lane.warehouse as usize].clone())
        };
        let items = p
            .offers
            .iter()
            .map(|o| (0..p.zones.len()).map(|z| o.items.iter().map(|i| (from(z, i.sku), p.skus[i.sku as usize].clone(), i.qty)).collect()).collect())
            .collect();
        let customer_tier = p.customers.tier.iter().map(|&t| p.tiers[t as usize].name.clone()).collect();
        Shipping { items, customer_zone: p.customers.zone.clone(), customer_tier }
    }
}

impl Truth {
    /// The scenario's truth (and, with `shipping`, where its offers ship from).
    fn load(dir: &std::path::Path, shipping: bool) -> Result<Self> {
        let loaded = allot_scenarios::load_scenario(dir).with_context(|| format!("loading the scenario {}", dir.display()))?;
        ensure!(
            loaded.uptake_report.is_none(),
            "{}: its uptake was forecast from offer_history; the simulator plays uptake.csv as the customers' true acceptance probabilities",
            dir.display()
        );
        let p = &loaded.problem;
        let pairs = p
            .uptake
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let value = p.uptake_value.as_ref().map_or(p.offers[u.offer as usize].margin, |v| v[i]);
                ((u.customer, u.offer), (u.p, value))
            })
            .collect();
        let offer_ix = p.offers.iter().enumerate().map(|(i, o)| (o.id.clone(), i as u32)).collect();
        Ok(Truth { customers: p.customers.id.clone(), offer_ix, pairs, horizon_start: p.horizon.start, shipping: shipping.then(|| Shipping::new(p)) })
    }

    /// True (p, value) of a pair; an offer the customer has no uptake row for is never accepted.
    fn pair(&self, customer: u32, offer_id: &str) -> (f64, f64) {
        self.offer_ix.get(offer_id).and_then(|&o| self.pairs.get(&(customer, o))).copied().unwrap_or((0.0, 0.0))
    }

    /// Expected value of one decision to the customer: true p × value over its offers.
    fn expected_value(&self, customer: u32, decision: &Decision) -> f64 {
        decision.offers.iter().map(|o| self.pair(customer, &o.offer_id)).map(|(p, v)| p * v).sum()
    }
}

/// A uniform draw in `[0, 1)` that depends only on its keys (splitmix64 over
/// them): the same seed, day, customer and offer give the same draw in any
/// order of work, so a re-run posts the same events.
fn uniform(keys: &[u64]) -> f64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &k in keys {
        h = (h ^ k).wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Keys of the draws, so that no two kinds of draw share one.
const DRAW_SAMPLE: u64 = 1;
const DRAW_ACCEPT: u64 = 2;
const DRAW_ON_TIME: u64 = 3;

/// `k` of `n` customers for a day, without replacement (a partial Fisher-Yates).
fn sample_day(seed: u64, day: u32, n: usize, k: usize) -> Vec<u32> {
    let mut all: Vec<u32> = (0..n as u32).collect();
    for i in 0..k.min(n) {
        let j = i + (uniform(&[seed, DRAW_SAMPLE, u64::from(day), i as u64]) * (n - i) as f64) as usize;
        all.swap(i, j.min(n - 1));
    }
    all.truncate(k.min(n));
    all
}

/// What happened to one offer shown.
struct Shown {
    customer: u32,
    offer_id: String,
    accepted: bool,
    value: f64,
}

/// One arm's counts as the simulator saw them.
#[derive(Debug, Default, Serialize)]
pub struct ArmTally {
    /// Plan versions that answered this arm's decisions.
    versions: BTreeSet<String>,
    /// Distinct customers who asked.
    customers: usize,
    #[serde(skip)]
    seen: HashSet<u32>,
    /// Decisions (requests answered).
    decisions: u64,
    /// Decisions the fallback answered.
    fallback: u64,
    /// Offers shown.
    shown: u64,
    /// Acceptances (and orders).
    accepted: u64,
    /// Their summed value.
    value: f64,
}

/// The summary `allot simulate` prints and writes.
#[derive(Debug, Serialize)]
pub struct Summary {
    seed: u64,
    days: u32,
    customers_per_day: usize,
    /// Distinct customers who asked.
    customers: usize,
    decisions: u64,
    shown: u64,
    accepted: u64,
    value: f64,
    /// Orders delivered, and of those on time.
    delivered: u64,
    on_time: u64,
    /// Events posted (outcomes; with --inventory, inventory orders too).
    events: u64,
    /// Events the service had recorded before (a re-run of the seed and
    /// experiment): counted once, in the arms of their first recording.
    repeated_events: u64,
    /// Per arm of `--experiment` (`all` without one).
    arms: BTreeMap<String, ArmTally>,
    /// Decisions compared with their version as planned (with --store), and
    /// those a live rule had changed.
    checked_against_plan: u64,
    changed_by_live_rules: u64,
    /// The service's report of `--experiment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Value>,
    /// The canary's truth (with --experiment and --store).
    #[serde(skip_serializing_if = "Option::is_none")]
    truth: Option<ExperimentTruth>,
}

/// What a canary's report should find, from the true probabilities.
#[derive(Debug, Serialize)]
pub struct ExperimentTruth {
    /// The version the canary serves, and the one control gets (the active plan).
    canary_version: String,
    control_version: String,
    /// Customers who asked (the report's customers over both arms).
    customers: usize,
    /// Expected value per customer who asked, had every one of them been
    /// served by the canary's version, and by control's.
    canary_value_per_customer: f64,
    control_value_per_customer: f64,
    /// Their difference: the report's estimand.
    uplift: f64,
    /// The same over the whole population, for customers asking as the
    /// simulation draws them: E[asks | asked at least once] × mean difference per ask.
    population_uplift: f64,
}

/// Runs `allot simulate`.
pub fn run(args: SimulateArgs) -> Result<()> {
    ensure!((0.0..=1.0).contains(&args.on_time_rate), "--on-time-rate must be in [0, 1], got {}", args.on_time_rate);
    let truth = Truth::load(&args.scenario, args.inventory)?;
    let n = truth.customers.len();
    ensure!(n > 0, "{} has no customers", args.scenario.display());
    let per_day = args.customers_per_day.unwrap_or(n.div_ceil(10)).min(n);
    let key_file = match (&args.keys, &args.store) {
        (Some(k), _) => k.clone(),
        (None, Some(store)) => store.join("api_keys.json"),
        (None, None) => bail!("--keys is needed (or --store, whose api_keys.json is read)"),
    };
    ensure!(key_file.is_file(), "API key file {} does not exist", key_file.display());
    let (keys, _) = allot_api::ApiKeys::load_or_create(&key_file)?;
    let key_for = |role: Role| keys.keys.iter().find(|k| k.role == role).or_else(|| keys.keys.iter().find(|k| k.role == Role::Admin)).map(|k| k.key.clone());
    let decision_key = key_for(Role::Decision).with_context(|| format!("{} has no decision (or admin) key", key_file.display()))?;
    let planner_key = key_for(Role::Planner);
    let fulfilment_key = match args.inventory {
        true => Some(key_for(Role::Fulfilment).with_context(|| format!("{} has no fulfilment (or admin) key for --inventory", key_file.display()))?),
        false => None,
    };
    let keys = Keys { decision: decision_key.clone(), fulfilment: fulfilment_key };
    let store = args.store.as_ref().map(PlanStore::open).transpose().context("opening the plan store")?;
    let mut plans = PlannedVersions { store: store.as_ref(), loaded: HashMap::new() };

    let mut http = Http::new(&args.url)?;
    if args.experiment.is_some() || args.plan.is_some() {
        ensure!(planner_key.is_some(), "{} has no planner (or admin) key to read the plans and the experiment", key_file.display());
    }
    if let (Some(expected), Some(key)) = (&args.plan, &planner_key) {
        let active = http.expect("GET", "/v1/plans", key, None, &[200])?["active"].clone();
        ensure!(active.as_str() == Some(expected.as_str()), "--plan {expected}: the service's active plan is {active}");
    }
    if let (Some(id), Some(key)) = (&args.experiment, &planner_key) {
        let experiment = http.expect("GET", &format!("/v1/experiments/{id}"), key, None, &[200]).context("--experiment")?;
        ensure!(experiment["experiment"]["stopped_at"].is_null(), "experiment {id} has stopped: its arms are no longer assigned");
    }
    let mut summary = Summary {
        seed: args.seed,
        days: args.days,
        customers_per_day: per_day,
        customers: 0,
        decisions: 0,
        shown: 0,
        accepted: 0,
        value: 0.0,
        delivered: 0,
        on_time: 0,
        events: 0,
        repeated_events: 0,
        arms: BTreeMap::new(),
        checked_against_plan: 0,
        changed_by_live_rules: 0,
        report: None,
        truth: None,
    };
    let mut asks: HashMap<u32, u32> = HashMap::new();
    let mut to_deliver: Vec<(u32, String)> = Vec::new();
    for day in 0..args.days {
        let date = truth.horizon_start + chrono::Days::new(u64::from(day));
        let (delivered, on_time, repeats) = post_deliveries(&args, &keys, &truth, day, date, std::mem::take(&mut to_deliver))?;
        (summary.delivered, summary.on_time, summary.repeated_events) = (summary.delivered + delivered, summary.on_time + on_time, summary.repeated_events + repeats);
        let mut shown: Vec<(Shown, String)> = Vec::new();
        for batch in sample_day(args.seed, day, n, per_day).chunks(allot_api::MAX_BATCH) {
            let ids: Vec<&str> = batch.iter().map(|&c| truth.customers[c as usize].as_str()).collect();
            let body = json!({ "customer_ids": ids, "limit": allot_api::DEFAULT_LIMIT });
            let answer = http.expect("POST", "/v1/eligibility:batch", &decision_key, Some(&body), &[200])?;
            let results = answer["results"].as_array().context("the batch answer has no results")?;
            ensure!(results.len() == batch.len(), "the batch answered {} results for {} customers", results.len(), batch.len());
            for (&c, result) in batch.iter().zip(results) {
                let Ok(decision) = serde_json::from_value::<Decision>(result.clone()) else {
                    bail!("customer {} of the scenario has no decision (does the service serve a plan of this scenario?): {result}", truth.customers[c as usize]);
                };
                *asks.entry(c).or_default() += 1;
                if let Some(planned) = if decision.fallback { None } else { plans.decide(&decision.plan_version, &decision.customer_id)? } {
                    summary.checked_against_plan += 1;
                    let offer_ids = |d: &Decision| d.offers.iter().map(|o| o.offer_id.clone()).collect::<Vec<_>>();
                    summary.changed_by_live_rules += u64::from(offer_ids(&planned) != offer_ids(&decision));
                }
                let arm = arm_of(&decision, args.experiment.as_deref());
                let tally = summary.arms.entry(arm.clone()).or_default();
                tally.versions.insert(decision.plan_version.clone());
                tally.seen.insert(c);
                tally.decisions += 1;
                tally.fallback += u64::from(decision.fallback);
                for offer in &decision.offers {
                    let (p, value) = truth.pair(c, &offer.offer_id);
                    let offer_ix = truth.offer_ix.get(&offer.offer_id).map_or(u64::MAX, |&o| u64::from(o));
                    let accepted = uniform(&[args.seed, DRAW_ACCEPT, u64::from(day), u64::from(c), offer_ix]) < p;
                    shown.push((Shown { customer: c, offer_id: offer.offer_id.clone(), accepted, value }, arm.clone()));
                }
            }
        }
        for (s, arm) in &shown {
            let tally = summary.arms.get_mut(arm).expect("tallied above");
            tally.shown += 1;
            if s.accepted {
                tally.accepted += 1;
                tally.value += s.value;
                to_deliver.push((s.customer, s.offer_id.clone()));
            }
        }
        let (posted, repeats) = post_outcomes(&args, &keys, &truth, day, date, shown.into_iter().map(|(s, _)| s).collect())?;
        (summary.events, summary.repeated_events) = (summary.events + posted, summary.repeated_events + repeats);
    }
    let last = truth.horizon_start + chrono::Days::new(u64::from(args.days));
    let (delivered, on_time, repeats) = post_deliveries(&args, &keys, &truth, args.days, last, to_deliver)?;
    (summary.delivered, summary.on_time, summary.repeated_events) = (summary.delivered + delivered, summary.on_time + on_time, summary.repeated_events + repeats);
    for tally in summary.arms.values_mut() {
        tally.customers = tally.seen.len();
        summary.decisions += tally.decisions;
        summary.shown += tally.shown;
        summary.accepted += tally.accepted;
        summary.value += tally.value;
    }
    summary.customers = asks.len();
    summary.events += summary.delivered;

    if let Some(id) = &args.experiment {
        let planner = planner_key.as_deref().expect("checked before the simulation");
        let report = http.expect("GET", &format!("/v1/experiments/{id}"), planner, None, &[200])?;
        if store.is_some() && report["experiment"]["kind"] == "canary" {
            let canary = report["experiment"]["version"].as_str().context("the canary's report names no version")?.to_string();
            let plan_list = http.expect("GET", "/v1/plans", planner, None, &[200])?;
            let control = plan_list["active"].as_str().context("the service has no active plan: control serves none")?.to_string();
            summary.truth = Some(canary_truth(&truth, &mut plans, &asks, args.days, per_day, canary, control)?);
        }
        summary.report = Some(report);
    }
    print_summary(&args, &summary);
    if let Some(path) = &args.json {
        allot_scenarios::files::write_json_atomic(path, &summary).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The customer's arm in `experiment` (`all` without one; `none` when the
/// decision carries no arm of it: it was not running).
fn arm_of(decision: &Decision, experiment: Option<&str>) -> String {
    match experiment {
        None => "all".to_string(),
        Some(id) => decision.experiments.iter().find(|a| a.experiment_id == id).map_or("none".to_string(), |a| a.arm.clone()),
    }
}

/// Plan versions loaded from the store on first use, for their decisions as planned.
struct PlannedVersions<'a> {
    store: Option<&'a PlanStore>,
    loaded: HashMap<String, PlanIndex>,
}

impl PlannedVersions<'_> {
    /// What `version` serves `customer` as planned; `None` without a store.
    fn decide(&mut self, version: &str, customer: &str) -> Result<Option<Decision>> {
        let Some(store) = self.store else { return Ok(None) };
        if !self.loaded.contains_key(version) {
            let plan = PlanIndex::load(store, version).with_context(|| format!("loading plan {version} from {}", store.root().display()))?;
            self.loaded.insert(version.to_string(), plan);
        }
        Ok(AsPlanned::new(&self.loaded[version]).decide(customer, allot_api::DEFAULT_LIMIT))
    }
}

/// The canary's true uplift over the customers who asked (see the module docs).
fn canary_truth(truth: &Truth, plans: &mut PlannedVersions<'_>, asks: &HashMap<u32, u32>, days: u32, per_day: usize, canary: String, control: String) -> Result<ExperimentTruth> {
    let mut value_per_ask = |version: &str, c: u32| -> Result<f64> {
        let decision = plans.decide(version, &truth.customers[c as usize])?;
        Ok(decision.map_or(0.0, |d| truth.expected_value(c, &d)))
    };
    let (mut canary_sum, mut control_sum) = (0.0, 0.0);
    // In customer order, so the sums come out the same on every run.
    let mut askers: Vec<(u32, u32)> = asks.iter().map(|(&c, &n)| (c, n)).collect();
    askers.sort_unstable();
    for (c, n) in askers {
        canary_sum += f64::from(n) * value_per_ask(&canary, c)?;
        control_sum += f64::from(n) * value_per_ask(&control, c)?;
    }
    let mut population_difference = 0.0;
    for c in 0..truth.customers.len() as u32 {
        population_difference += value_per_ask(&canary, c)? - value_per_ask(&control, c)?;
    }
    let askers = asks.len().max(1) as f64;
    // Each day asks `per_day` of `n` customers: asks ~ Binomial(days, q) per customer.
    let q = per_day as f64 / truth.customers.len() as f64;
    let asks_if_asked = f64::from(days) * q / (1.0 - (1.0 - q).powi(days as i32));
    Ok(ExperimentTruth {
        canary_version: canary,
        control_version: control,
        customers: asks.len(),
        canary_value_per_customer: canary_sum / askers,
        control_value_per_customer: control_sum / askers,
        uplift: (canary_sum - control_sum) / askers,
        population_uplift: asks_if_asked * population_difference / truth.customers.len() as f64,
    })
}

/// The simulation's name in its event ids: the seed and the experiment, so a
/// re-run of both posts the same ids, and a run for another experiment new ones
/// (a repeat would count only in the arms it was first recorded with).
fn run_name(args: &SimulateArgs) -> String {
    match &args.experiment {
        Some(id) => format!("sim-{}-{id}", args.seed),
        None => format!("sim-{}", args.seed),
    }
}

/// The id of an event of the simulation: a function of the run, day,
/// customer, offer and kind, so a re-run posts the same ids.
fn event_id(run: &str, day: u32, customer: &str, offer: &str, kind: &str) -> String {
    format!("{run}-d{day}-{customer}-{offer}-{kind}")
}

/// The order an acceptance of day `day` becomes.
fn order_id(run: &str, day: u32, customer: &str, offer: &str) -> String {
    format!("{run}-d{day}-{customer}-{offer}")
}

/// Noon of a simulated day, as the events' `occurred_at`.
fn noon(date: NaiveDate) -> String {
    format!("{date}T12:00:00Z")
}

/// The keys events are posted with.
struct Keys {
    decision: String,
    /// With --inventory.
    fulfilment: Option<String>,
}

/// An event to post: its route, key and body.
type Post<'a> = (&'static str, &'a str, Value);

/// The outcome route.
const OUTCOME: &str = "/v1/events/outcome";

/// Posts `shown`, then `accepted` (with its true value), `ordered` and
/// (with --inventory) the order's inventory events, or `declined`, for
/// every offer shown on `day`; returns (posted, recorded before).
fn post_outcomes(args: &SimulateArgs, keys: &Keys, truth: &Truth, day: u32, date: NaiveDate, shown: Vec<Shown>) -> Result<(u64, u64)> {
    let (at, run) = (noon(date), run_name(args));
    let events = |s: &Shown| -> Vec<Post<'_>> {
        let customer = &truth.customers[s.customer as usize];
        let event = |kind: &str| json!({ "event_id": event_id(&run, day, customer, &s.offer_id, kind), "kind": kind, "customer_id": customer, "offer_id": s.offer_id, "occurred_at": at });
        let outcome = |body: Value| (OUTCOME, keys.decision.as_str(), body);
        let mut out = vec![outcome(event("shown"))];
        if s.accepted {
            let mut accepted = event("accepted");
            accepted["value"] = json!(s.value);
            let mut ordered = event("ordered");
            ordered["order_id"] = json!(order_id(&run, day, customer, &s.offer_id));
            out.extend([outcome(accepted), outcome(ordered)]);
            if let (Some(shipping), Some(key), Some(&o)) = (&truth.shipping, &keys.fulfilment, truth.offer_ix.get(&s.offer_id)) {
                let zone = shipping.customer_zone[s.customer as usize] as usize;
                for (warehouse, sku, qty) in &shipping.items[o as usize][zone] {
                    // An item no usable lane brings is not shipped (the plan never serves such an offer).
                    let Some(warehouse) = warehouse else { continue };
                    let id = event_id(&run, day, customer, &s.offer_id, &format!("{sku}-inventory"));
                    let body = json!({ "event_id": id, "kind": "order", "warehouse_id": warehouse, "sku": sku, "qty": qty, "tier": shipping.customer_tier[s.customer as usize] });
                    out.push(("/v1/events/inventory", key.as_str(), body));
                }
            }
        } else {
            out.push(outcome(event("declined")));
        }
        out
    };
    post_all(args, shown.iter().map(events).collect())
}

/// Posts `delivered` for the orders of the day before `day` (on time with
/// the `--on-time-rate`); returns (delivered, on time, recorded before).
fn post_deliveries(args: &SimulateArgs, keys: &Keys, truth: &Truth, day: u32, date: NaiveDate, orders: Vec<(u32, String)>) -> Result<(u64, u64, u64)> {
    let (at, run) = (noon(date), run_name(args));
    let ordered_on = day.saturating_sub(1);
    let mut on_time = 0;
    let groups: Vec<Vec<Post<'_>>> = orders
        .iter()
        .map(|(c, offer)| {
            let customer = &truth.customers[*c as usize];
            let offer_ix = truth.offer_ix.get(offer).map_or(u64::MAX, |&o| u64::from(o));
            let kept = uniform(&[args.seed, DRAW_ON_TIME, u64::from(ordered_on), u64::from(*c), offer_ix]) < args.on_time_rate;
            on_time += u64::from(kept);
            let body = json!({
                "event_id": event_id(&run, ordered_on, customer, offer, "delivered"), "kind": "delivered", "customer_id": customer, "offer_id": offer,
                "occurred_at": at, "order_id": order_id(&run, ordered_on, customer, offer), "on_time": kept,
            });
            vec![(OUTCOME, keys.decision.as_str(), body)]
        })
        .collect();
    let (_, repeats) = post_all(args, groups)?;
    Ok((orders.len() as u64, on_time, repeats))
}

/// Posts groups of events over `--connections` connections, each group's
/// events in order on one connection (an acceptance before its order);
/// returns how many were posted, and how many of those the service had
/// recorded before (a re-run's repeats).
fn post_all(args: &SimulateArgs, groups: Vec<Vec<Post<'_>>>) -> Result<(u64, u64)> {
    let connections = (args.connections as usize).min(groups.len()).max(1);
    let chunk = groups.len().div_ceil(connections).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = groups
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<(u64, u64)> {
                    let mut http = Http::new(&args.url)?;
                    let (mut posted, mut repeats) = (0, 0);
                    for (route, key, event) in part.iter().flatten() {
                        let ack = http.expect("POST", route, key, Some(event), &[200, 202]).with_context(|| format!("event {}", event["event_id"]))?;
                        posted += 1;
                        repeats += u64::from(ack["duplicate"] == true);
                    }
                    Ok((posted, repeats))
                })
            })
            .collect();
        workers.into_iter().try_fold((0, 0), |(posted, repeats), w| {
            let (p, r) = w.join().unwrap_or_else(|_| bail!("a connection's thread panicked"))?;
            Ok((posted + p, repeats + r))
        })
    })
}

fn print_summary(args: &SimulateArgs, s: &Summary) {
    println!("simulated {} day(s), {} customers a day, seed {}, against {}", s.days, s.customers_per_day, s.seed, args.url);
    println!(
        "  customers {}  decisions {}  shown {}  accepted {}  value {:.2}  delivered {} ({} on time)  events posted {}",
        s.customers, s.decisions, s.shown, s.accepted, s.value, s.delivered, s.on_time, s.events
    );
    if s.repeated_events > 0 {
        println!("  {} events were recorded before (a re-run of this seed and experiment): they count once, in the arms of their first run", s.repeated_events);
    }
    for (arm, t) in &s.arms {
        let versions: Vec<&str> = t.versions.iter().map(String::as_str).collect();
        println!(
            "  arm {arm:<9} plan {:<14} customers {:>6}  decisions {:>6}  shown {:>6}  accepted {:>5}  value {:>10.2}{}",
            versions.join(","),
            t.customers,
            t.decisions,
            t.shown,
            t.accepted,
            t.value,
            if t.fallback > 0 { format!("  ({} by the fallback)", t.fallback) } else { String::new() }
        );
    }
    if args.store.is_some() {
        println!("  {} of {} decisions checked against their version as planned were changed by live rules", s.changed_by_live_rules, s.checked_against_plan);
    }
    if let Some(report) = &s.report {
        let e = &report["experiment"];
        println!("experiment {} ({}, version {}, share {}): the service's report", e["experiment_id"].as_str().unwrap_or("?"), e["kind"].as_str().unwrap_or("?"), e["version"].as_str().unwrap_or("-"), e["share"]);
        for arm in report["arms"].as_array().into_iter().flatten() {
            println!("  {:<9} customers {:>6}  value per customer {:>8.3}", arm["arm"].as_str().unwrap_or("?"), arm["customers"], arm["value_per_customer"].as_f64().unwrap_or(f64::NAN));
        }
        let c = &report["comparison"];
        if c.is_object() {
            let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
            println!(
                "  uplift {:.3} (se {:.3})  always-valid 95% [{:.3}, {:.3}]  fixed-horizon 95% [{:.3}, {:.3}]  verdict {}",
                f(&c["uplift"]),
                f(&c["standard_error"]),
                f(&c["always_valid_95"]["low"]),
                f(&c["always_valid_95"]["high"]),
                f(&c["fixed_horizon_95"]["low"]),
                f(&c["fixed_horizon_95"]["high"]),
                c["verdict"].as_str().unwrap_or("?")
            );
        }
    }
    if let Some(t) = &s.truth {
        println!(
            "  truth: uplift {:.3} over the {} customers who asked (canary {} {:.3}, control {} {:.3} per customer); {:.3} over the population",
            t.uplift, t.customers, t.canary_version, t.canary_value_per_customer, t.control_version, t.control_value_per_customer, t.population_uplift
        );
    }
}
