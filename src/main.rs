//! `allot`: the command line of the offer and allocation optimizer.
//!
//! Planners run `allot plan` on a scenario directory; every plan is saved as a
//! version in the plan store, whose active version the decision service serves.

mod bench;
mod memory;
mod ray;
mod simulate;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use allot_optimizer::decomposed::DecomposedOptions;
use allot_optimizer::exact::ExactOptions;
use allot_optimizer::{RuleKind, SolverChoice};
use allot_optimizer::plan::Kpis;
use allot_scenarios::plans::store::{DEFAULT_STORE, STORE_ENV};
use allot_scenarios::{convert_scenario_to_parquet, generate, plan_scenario, Family, Format, GenerateSpec, OutputFormat, PlanRun, PlanSolver, PlanStore, OutputDir};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "allot", version, about = "Supply-chain-aware offer and allocation optimizer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plan a scenario: solve, write the outputs, save a plan version.
    Plan(PlanArgs),
    /// Inspect and control plan versions.
    Plans {
        #[command(subcommand)]
        action: PlansAction,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Experiments on plans (canary, shadow, holdout): list them, read a report.
    /// Start, change and stop them through the service (`/v1/experiments`).
    Experiment {
        #[command(subcommand)]
        action: ExperimentAction,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// What-if planning: run scenario variants in parallel, compare them with a base.
    Scenario {
        #[command(subcommand)]
        action: ScenarioAction,
    },
    /// Forecast baseline demand and uptake from a scenario's history files and
    /// print the accuracy report (backtest per model, uptake holdout).
    Forecast(ForecastArgs),
    /// Write a synthetic scenario in the spec's format.
    Generate(GenerateArgs),
    /// Generate scenarios at given sizes and compare the solvers side by side.
    Bench(bench::BenchArgs),
    /// Serve the active plan over HTTP: eligibility, events, pick priorities, plan control.
    Serve(ServeArgs),
    /// Play a scenario's customers, with its uptake as their true acceptance
    /// probabilities, against a running service: offers asked, outcomes,
    /// orders and deliveries posted; an experiment's report and its truth.
    Simulate(simulate::SimulateArgs),
    /// A trivial HTTP handler on the offers route: the baseline of `benches/serve_load.sh`.
    #[command(hide = true)]
    ServeTrivial {
        #[arg(long, default_value = "127.0.0.1:8081")]
        addr: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
enum ScenarioAction {
    /// Plan several scenarios or variants in parallel: outputs in OUT_ROOT/<name>,
    /// each saved as a plan version with its lineage.
    Run {
        /// Scenario or variant directories.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Parent of each run's output directory.
        #[arg(long, default_value = "out")]
        out_root: PathBuf,
        /// Most plans at once [default: bounded by cores and available memory].
        #[arg(long)]
        jobs: Option<usize>,
        /// Encoding of the output tables (auto: Parquet from 100,000 customers, CSV below).
        #[arg(long, value_enum, default_value_t = OutputFormatArg::Auto)]
        format: OutputFormatArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Compare variants with a base (from their runs in OUT_ROOT): terminal
    /// table, CSV and a self-contained HTML report.
    Compare {
        /// The base scenario directory.
        base: PathBuf,
        /// Variant directories.
        #[arg(required = true)]
        variants: Vec<PathBuf>,
        /// Where `scenario run` wrote the runs.
        #[arg(long, default_value = "out")]
        out_root: PathBuf,
        /// Directory for comparison.csv and report.html [default: OUT_ROOT/compare-<base>].
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ForecastArgs {
    /// Scenario directory with sales_history and/or offer_history.
    scenario: PathBuf,
    /// Where to write the forecasts [default: out/<scenario name>/forecast].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Periods to forecast at least, 1 to 3660 [default: the scenario's
    /// `[forecast] horizon`, else up to the planning horizon's end].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u64::from(allot_scenarios::scenario::config::MAX_HORIZON_DAYS)))]
    horizon: Option<usize>,
    /// The sales history's period: auto (inferred from its dates), D, W, M, Q
    /// or Y [default: the scenario's `[forecast] frequency`, else auto].
    #[arg(long, value_parser = parse_frequency_arg)]
    frequency: Option<FrequencyArg>,
    /// Also read the outcome events (shown, accepted) the decision service
    /// recorded in this plan store's live state (or --database) as offer history.
    #[arg(long)]
    outcomes: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArg,
}

/// A `--frequency` value: `None` is `auto`.
#[derive(Clone, Copy)]
struct FrequencyArg(Option<allot_forecasting::demand::frequency::Frequency>);

fn parse_frequency_arg(text: &str) -> Result<FrequencyArg, String> {
    allot_scenarios::scenario::config::parse_frequency(text).map(FrequencyArg)
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// API key file ({"keys": [{"key", "role"}]}); created with one random key per
    /// role when missing [default: <store>/api_keys.json].
    #[arg(long)]
    keys: Option<PathBuf>,
    /// A plan older than this many hours is answered by the rule-based fallback.
    #[arg(long, default_value_t = 48.0)]
    max_plan_age_hours: f64,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// `POST /v1/plans` may plan scenarios inside this directory only.
    #[arg(long, default_value = ".")]
    scenarios: PathBuf,
    /// Keep live events, consent, plan activations and the audit log in this
    /// PostgreSQL database (`postgres://user@host:port/db`), shared with every
    /// replica started with the same URL; plan files stay in --store, which the
    /// replicas share. Without it, they are in the store's embedded database
    /// (live.db). Either way, what the store holds of an older mode is imported
    /// on start.
    #[arg(long, env = "ALLOT_DATABASE_URL")]
    database: Option<String>,
    /// With --database: a replica that has not synced with the database for
    /// this many seconds answers only the fallback, with no offers (consent
    /// fails closed), and /readyz answers 503. Between the sync poll (0.5) and
    /// the replicas' liveness (3), past which consent changes stop waiting for it.
    #[arg(long, default_value_t = allot_api::DEFAULT_MAX_LIVE_SILENCE.as_secs_f64())]
    max_live_silence_secs: f64,
    /// Keep audit records (decisions served) this many days; older ones are
    /// deleted at start and then hourly.
    #[arg(long, default_value_t = allot_api::audit::DEFAULT_AUDIT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
    audit_retention_days: u32,
    /// Keep live events (inventory and consent) this many days, their ids
    /// remembered so a retry is recognized; older ones are compacted at each
    /// activation and hourly (consent folded into one row per customer).
    #[arg(long, default_value_t = (allot_api::DEFAULT_EVENT_WINDOW.as_secs() / 86_400) as u32, value_parser = clap::value_parser!(u32).range(1..))]
    event_window_days: u32,
    /// An offer's live acceptance drifts from the plan's uptake once
    /// |accepted - expected| / sd reaches this (expected and sd from the
    /// shown pairs' planned probabilities).
    #[arg(long, default_value_t = allot_api::drift::DriftPolicy::default().z, value_parser = positive_f64)]
    drift_z: f64,
    /// Showings an offer needs (since the plan was saved) before it can drift.
    #[arg(long, default_value_t = allot_api::drift::DriftPolicy::default().min_shown, value_parser = positive_f64)]
    drift_min_shown: f64,
    /// A zone x SKU's live demand (orders naming their zone) drifts from the
    /// demand plan once its tracking signal (sum of daily errors over their
    /// mean absolute value) reaches this, after 4 days.
    #[arg(long, default_value_t = allot_api::drift::DriftPolicy::default().tracking_signal, value_parser = positive_f64)]
    drift_tracking_signal: f64,
    /// When an offer or a zone x SKU drifts, start a warm re-plan of the served plan's
    /// scenario (once per served version; the scenario must lie under
    /// --scenarios): `wait` saves it for a planner to activate,
    /// `canary:SHARE` also starts it as a canary for that share.
    #[arg(long, value_parser = after_replan)]
    replan_on_drift: Option<allot_api::drift::AfterReplan>,
}

#[derive(clap::Args)]
struct StoreArg {
    /// Plan store directory.
    #[arg(long, env = STORE_ENV, default_value = DEFAULT_STORE, global = true)]
    store: PathBuf,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Scenario directory (scenario.toml and the CSV/Parquet tables).
    scenario: PathBuf,
    /// Directory for the output tables and kpis.json [default: out/<scenario name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Solver: `auto` picks exact for small scenarios and decomposed above a measured size.
    #[arg(long, value_enum, default_value_t = SolverArg::Auto)]
    solver: SolverArg,
    /// Decomposed solver: stop once the certified relative gap is at most this.
    #[arg(long, default_value_t = DecomposedOptions::default().gap, value_parser = parse_gap)]
    gap: f64,
    /// Decomposed solver: limit on dual iterations (per phase).
    #[arg(long, default_value_t = DecomposedOptions::default().max_iterations)]
    max_iterations: usize,
    /// Encoding of the output tables (auto: Parquet from 100,000 customers, CSV below).
    #[arg(long, value_enum, default_value_t = OutputFormatArg::Auto)]
    format: OutputFormatArg,
    #[command(flatten)]
    store: StoreArg,
    /// Solver threads [default: the solver's choice].
    #[arg(long)]
    threads: Option<u32>,
    /// Time limit for the solve, in seconds.
    #[arg(long, value_parser = parse_seconds)]
    time_limit: Option<f64>,
    /// Make the new plan version the active one.
    #[arg(long)]
    activate: bool,
    /// Decomposed solver: start from the prices of this earlier plan version
    /// of the same scenario (after a receipt, a demand shock, a changed rule)
    /// and stop once its certified gap is reached again (or `--gap`, if tighter).
    #[arg(long, value_parser = plan_id)]
    warm_from: Option<String>,
    #[command(flatten)]
    database: DatabaseArg,
    /// Print the solver's own log (HiGHS) to stdout.
    #[arg(long)]
    solver_log: bool,
    /// A HiGHS option, KEY=VALUE (repeatable), e.g. `--solver-option mip_heuristic_effort=0`.
    #[arg(long = "solver-option", value_parser = parse_key_value)]
    solver_options: Vec<(String, String)>,
    /// `--solver ray`: the Ray cluster's address (`host:port`, or `auto`).
    #[arg(long, env = "RAY_ADDRESS", default_value = "auto")]
    ray_address: String,
    /// `--solver ray`: partitions of the customers, one Ray actor each.
    #[arg(long, default_value_t = 4)]
    partitions: usize,
    /// `--solver ray`: Python interpreter with `ray` and the `allot_ray` package.
    #[arg(long, env = "ALLOT_RAY_PYTHON", default_value = "python3")]
    ray_python: PathBuf,
    /// `--solver ray`: kernel threads per actor (the CPUs Ray reserves for each).
    #[arg(long, default_value_t = 1)]
    actor_threads: usize,
    /// `--solver ray`: directory for the partition files, readable by every Ray
    /// node [default: a temporary directory, enough on one machine].
    #[arg(long)]
    partitions_dir: Option<PathBuf>,
}

/// A target gap: a number in [0, 1) (NaN or a negative gap made every run
/// miss or meet it whatever the plan).
pub(crate) fn parse_gap(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|g| (0.0..1.0).contains(g)).ok_or_else(|| format!("expected a gap in [0, 1), got {s:?}"))
}

/// A duration in seconds: a finite number > 0 (a negative or NaN limit was
/// reported as "no feasible solution within the time limit").
fn parse_seconds(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|t| t.is_finite() && *t > 0.0).ok_or_else(|| format!("expected a number of seconds > 0, got {s:?}"))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[derive(Clone, Copy, ValueEnum)]
enum SolverArg {
    /// Exact below a measured size, decomposed above it.
    Auto,
    /// good_lp + HiGHS on the full model (LP, or MIP with the custom-offer limit).
    Exact,
    /// Lagrangian dual decomposition with a certified gap (millions of customers).
    Decomposed,
    /// The decomposition with its customers held by Ray actors (see `--ray-address`).
    Ray,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Parquet,
}

/// A run's output encoding: [`FormatArg`]'s, or by the scenario's size.
#[derive(Clone, Copy, ValueEnum)]
enum OutputFormatArg {
    Auto,
    Csv,
    Parquet,
}

#[derive(Subcommand)]
enum PlansAction {
    /// List plan versions (newest last); `*` marks the active one.
    List,
    /// Show one plan version's manifest and KPIs as JSON.
    Show {
        #[arg(value_parser = plan_id)]
        id: String,
    },
    /// Make a plan version the active one.
    Activate {
        #[arg(value_parser = plan_id)]
        id: String,
    },
    /// Re-activate the plan that was active before the current one.
    Rollback,
}

#[derive(Subcommand)]
enum ExperimentAction {
    /// List every experiment (running ones first is not implied: by id).
    List,
    /// An experiment's report: per arm customers, decisions, acceptance rate,
    /// value per customer, orders' fill and on-time rates; the uplift with an
    /// always-valid interval and a verdict (the same as `GET /v1/experiments/{id}`).
    Report {
        id: String,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write the report as a self-contained HTML page here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

/// A finite number above zero.
fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number above zero")),
    }
}

/// `wait` or `canary:SHARE` (a share in (0, 1]).
fn after_replan(s: &str) -> Result<allot_api::drift::AfterReplan, String> {
    match s.split_once(':') {
        None if s == "wait" => Ok(allot_api::drift::AfterReplan::Wait),
        Some(("canary", share)) => match share.parse::<f64>() {
            Ok(x) if x > 0.0 && x <= 1.0 => Ok(allot_api::drift::AfterReplan::Canary(x)),
            _ => Err(format!("canary:{share}: the share must be a number in (0, 1]")),
        },
        _ => Err(format!("{s:?}: expected `wait` or `canary:SHARE`")),
    }
}

/// A plan version id argument, in the store's id format (refused before any
/// file is read, so no argument names a path).
fn plan_id(id: &str) -> Result<String, String> {
    allot_scenarios::plans::store::check_plan_id(id).map(|()| id.to_string()).map_err(|_| format!("{id:?} is not a plan version id (digits, as `allot plans list` shows them)"))
}

#[derive(clap::Args)]
struct DatabaseArg {
    /// The live state (which plan is active, the activation history) in the
    /// replicas' shared PostgreSQL database (as `allot serve --database`), so
    /// every replica switches; without it, the store's embedded database
    /// (live.db), which a running `allot serve` on the store follows.
    #[arg(long, env = "ALLOT_DATABASE_URL", global = true)]
    database: Option<String>,
}

impl DatabaseArg {
    /// The store's live state: PostgreSQL with `--database`, else `live.db`,
    /// with what the store holds of an older mode imported first.
    fn open(&self, store: &PlanStore) -> Result<allot_api::LiveDb> {
        let shared = match &self.database {
            Some(url) => Some(std::sync::Arc::new(allot_api::SharedLive::connect(url, "allot-cli").context("connecting to the database")?)),
            None => None,
        };
        allot_api::live::import::open_store_live(store.root(), shared).with_context(|| format!("opening the live state of {}", store.root().display()))
    }
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Directory to create (must not exist or be empty).
    out_dir: PathBuf,
    #[arg(long, default_value_t = 1000)]
    customers: usize,
    #[arg(long, default_value_t = 20)]
    offers: usize,
    #[arg(long, default_value_t = 50)]
    skus: usize,
    #[arg(long, default_value_t = 5)]
    zones: usize,
    #[arg(long, default_value_t = 3)]
    warehouses: usize,
    /// Candidate offers (uptake rows) per customer, at most `--offers`
    /// [default: 5, or every offer when there are fewer].
    #[arg(long)]
    candidates: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Horizon length in days.
    #[arg(long, default_value_t = GenerateSpec::default().days, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Encoding of the tables (Parquet for large scenarios).
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    format: FormatArg,
    /// Also write this many days of `sales_history.csv` and `offer_history.csv`
    /// before the horizon.
    #[arg(long, default_value_t = 0)]
    history_days: u32,
    /// Leave out `uptake.csv` and `baseline_demand.csv`, so that `plan` forecasts
    /// them from the history files (needs --history-days).
    #[arg(long, requires = "history_days")]
    no_forecasts: bool,
    /// Also write `customer_features.csv` (age, tenure, household, newsletter)
    /// whose attributes drive each customer's uptake, for the uptake model
    /// fitted from the offer history (needs --history-days).
    #[arg(long, requires = "history_days")]
    customer_attributes: bool,
    /// Model version 2's marketing columns: channels (with costs per contact),
    /// tags, contact dates and per-pair values.
    #[arg(long)]
    channels: bool,
    /// Model version 2's contact policies (implies --channels): per-customer
    /// contact limits, conflicts between channels and tags, and a contact history.
    #[arg(long)]
    contact_policies: bool,
    /// Model version 2's volume rules (implies --channels): an email capacity,
    /// a call-centre budget, a hard minimum of app acceptances and a soft
    /// minimum for one category, sized to the customers so that they bind.
    #[arg(long)]
    volume_rules: bool,
    /// Model version 2's time-phased supply: buckets of this many days (the
    /// receipts of `inbound.csv` then count from their arrival's bucket on).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    bucket_days: Option<u32>,
    /// Model version 2's all-or-nothing decisions (the model becomes a MIP).
    #[arg(long)]
    binary_decisions: bool,
    /// More contact policies (implies --contact-policies): one contact per
    /// customer per category for four categories, and a conflict for every
    /// ordered pair of categories.
    #[arg(long)]
    category_policies: bool,
    /// The kind of scenario: default, no-fairness, no-budget, tight-stock,
    /// many-candidates (three times --candidates) or skewed-uptake (see
    /// `Family` in the scenarios crate for what each draws).
    #[arg(long, default_value = "default")]
    family: Family,
}

/// Restores the default SIGPIPE action, so `allot ... | head` ends quietly
/// instead of panicking on the closed pipe (Rust ignores SIGPIPE by default).
#[cfg(unix)]
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: called first thing in main, before any thread starts; SIG_DFL is
    // a valid disposition for SIGPIPE.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

/// Logs go to stderr through `tracing` (level from `RUST_LOG`, default info),
/// written above the progress bars (one per span named [`RUN_SPAN`]); stdout
/// carries only the command's output.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let bars = tracing_indicatif::IndicatifLayer::new();
    let writer = bars.get_stderr_writer();
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(writer).with_target(false).with_ansi(std::io::stderr().is_terminal()))
        .with(bars.with_filter(tracing_subscriber::filter::filter_fn(|meta| meta.name() == RUN_SPAN)))
        .try_init();
}

/// Name of the span of one run of `scenario run`: each gets a progress bar.
const RUN_SPAN: &str = "run";

/// mimalloc serves the whole CLI (see `Cargo.toml`): measured on the decision
/// service, glibc's malloc and free were about 15% of its CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    #[cfg(unix)]
    default_sigpipe();
    init_logging();
    match Cli::parse().command {
        Command::Plan(args) => plan(args),
        Command::Plans { action, store, database } => plans(action, &store.store, &database),
        Command::Experiment { action, store, database } => experiment(action, &store.store, &database),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Forecast(args) => forecast(args),
        Command::Scenario { action: ScenarioAction::Run { scenarios, out_root, jobs, format, store } } => scenario_run(&scenarios, &out_root, jobs, output_format_of(format), &store.store),
        Command::Scenario { action: ScenarioAction::Compare { base, variants, out_root, report } } => scenario_compare(&base, &variants, &out_root, report),
        Command::ServeTrivial { addr } => runtime(None)?.block_on(allot_api::serve_trivial(addr)).context("trivial server"),
        Command::Generate(a) => {
            let spec = GenerateSpec {
                customers: a.customers,
                offers: a.offers,
                skus: a.skus,
                zones: a.zones,
                warehouses: a.warehouses,
                candidates: a.candidates.unwrap_or(a.offers.min(5)),
                seed: a.seed,
                history_days: a.history_days,
                forecasts: !a.no_forecasts,
                channels: a.channels || a.contact_policies || a.volume_rules || a.category_policies,
                contact_policies: a.contact_policies || a.category_policies,
                category_policies: a.category_policies,
                volume_rules: a.volume_rules,
                days: a.days,
                bucket_days: a.bucket_days,
                binary_decisions: a.binary_decisions,
                customer_attributes: a.customer_attributes,
                family: a.family,
                ..GenerateSpec::default()
            };
            let t = Instant::now();
            generate(&a.out_dir, &spec)?;
            if matches!(a.format, FormatArg::Parquet) {
                convert_scenario_to_parquet(&a.out_dir)?;
            }
            tracing::info!("wrote {} in {:.1}s", a.out_dir.display(), t.elapsed().as_secs_f64());
            Ok(())
        }
    }
}

fn scenario_compare(base: &Path, variants: &[PathBuf], out_root: &Path, report: Option<PathBuf>) -> Result<()> {
    let run = |dir: &Path| -> Result<allot_scenarios::whatif::compare::RunOutputs> {
        let name = run_name(dir);
        allot_scenarios::whatif::compare::RunOutputs::read(&name, dir, &out_root.join(&name))
            .with_context(|| format!("reading the run of {} (plan it first: allot scenario run {})", dir.display(), dir.display()))
    };
    let base_run = run(base)?;
    let variant_runs = variants.iter().map(|v| run(v)).collect::<Result<Vec<_>>>()?;
    let comparison = allot_scenarios::whatif::compare::compare(&base_run, &variant_runs);
    print!("{}", comparison.terminal_table());
    let dir = report.unwrap_or_else(|| out_root.join(format!("compare-{}", base_run.name)));
    let written = allot_scenarios::whatif::report::write_report(&dir, &comparison, &base_run, &variant_runs).context("writing the comparison")?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn forecast(args: ForecastArgs) -> Result<()> {
    let has = |stem: &str| allot_scenarios::scenario::table::Table::exists(&args.scenario, stem);
    let outcome_history = match &args.outcomes {
        Some(store) => {
            let store = PlanStore::open(store).with_context(|| format!("opening the plan store {}", store.display()))?;
            let rows = allot_api::events::outcome_history(&args.database.open(&store)?).context("reading the outcome events")?;
            if rows.is_empty() {
                anyhow::bail!("{} has no outcome events (shown or accepted) to read as offer history", store.root().display());
            }
            rows
        }
        None => Vec::new(),
    };
    if !has("sales_history") && !has("offer_history") && outcome_history.is_empty() {
        anyhow::bail!("{} has neither sales_history nor offer_history (.csv or .parquet): nothing to forecast from", args.scenario.display());
    }
    let t = Instant::now();
    let overrides = allot_scenarios::ForecastOverride { frequency: args.frequency.map(|f| f.0), horizon: args.horizon };
    let options = allot_scenarios::LoadOptions { prefer_history: true, forecast: overrides, outcome_history, ..Default::default() };
    let loaded = allot_scenarios::load_scenario_with(&args.scenario, options)?;
    tracing::info!("forecast in {:.2}s", t.elapsed().as_secs_f64());
    let out = args.out.unwrap_or_else(|| default_out(&args.scenario).join("forecast"));
    let written = allot_scenarios::plans::forecast_output::write_forecasts(&out, &loaded).with_context(|| format!("writing forecasts to {}", out.display()))?;
    print!("{}", allot_scenarios::plans::forecast_output::accuracy_report(&loaded));
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    builder.enable_all().build().context("starting the async runtime")
}

/// The service's logs (`tracing`) to stderr, filtered by `RUST_LOG` [default info].
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).try_init(); // keeps one already installed
}

fn serve(args: ServeArgs) -> Result<()> {
    init_tracing();
    if !(args.max_plan_age_hours.is_finite() && args.max_plan_age_hours >= 0.0) {
        anyhow::bail!("--max-plan-age-hours must be a non-negative number, got {}", args.max_plan_age_hours);
    }
    let (poll, liveness) = (allot_api::shared::POLL_INTERVAL.as_secs_f64(), allot_api::shared::REPLICA_LIVENESS.as_secs_f64());
    if !(args.max_live_silence_secs > poll && args.max_live_silence_secs <= liveness) {
        anyhow::bail!(
            "--max-live-silence-secs must be above the sync poll ({poll} s) and at most the replicas' liveness ({liveness} s, past which a consent change no longer waits for a replica), got {}",
            args.max_live_silence_secs
        );
    }
    let store = args.store.store;
    std::fs::create_dir_all(&store).with_context(|| format!("creating the store {}", store.display()))?;
    let key_file = args.keys.unwrap_or_else(|| store.join("api_keys.json"));
    let (keys, created) = allot_api::ApiKeys::load_or_create(&key_file)?;
    if created {
        tracing::info!("created API keys (one per role) in {}", key_file.display());
    }
    let config = allot_api::ServiceConfig {
        keys,
        max_plan_age: std::time::Duration::from_secs_f64(args.max_plan_age_hours * 3600.0),
        scenario_root: args.scenarios,
        max_live_silence: std::time::Duration::from_secs_f64(args.max_live_silence_secs),
        event_window: std::time::Duration::from_secs(u64::from(args.event_window_days) * 86_400),
        drift: allot_api::drift::DriftPolicy {
            z: args.drift_z,
            min_shown: args.drift_min_shown,
            tracking_signal: args.drift_tracking_signal,
            replan: args.replan_on_drift,
            ..Default::default()
        },
    };
    runtime(args.threads)?.block_on(allot_api::serve(store, args.addr, config, args.database, std::time::Duration::from_secs(u64::from(args.audit_retention_days) * 86_400)))?;
    Ok(())
}

fn plan(args: PlanArgs) -> Result<()> {
    let store = PlanStore::open(&args.store.store).context("opening the plan store")?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.scenario));
    let warm = match &args.warm_from {
        Some(id) => Some(std::sync::Arc::new(warm_start(&store, id, &args)?)),
        None => None,
    };
    let solver = solver_of(&args, warm)?;
    // Opened before the solve, so a live state that cannot be opened costs no plan.
    let live = if args.activate { Some(args.database.open(&store)?) } else { None };
    let run = plan_scenario(&store, &args.scenario, solver.as_ref(), Some(OutputDir { dir: &out, format: output_format_of(args.format) }))?;
    if let Some(live) = &live {
        live.activate(&store, &run.manifest.id)?;
    }
    print_summary(&run.kpis, &run.manifest.id, args.activate, &out, &store, run.write_seconds);
    Ok(())
}

/// The name a scenario's outputs go under: its directory's name.
fn run_name(dir: &Path) -> String {
    dir.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_else(|| "plan".to_string())
}

/// How many plans may run at once: cores, and available memory over a rough
/// per-plan need (40 × the bytes of its tables, at least 256 MiB).
fn parallel_runs(scenarios: &[PathBuf], requested: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(u64::MAX, |kb| kb * 1024);
    let need = scenarios
        .iter()
        .map(|d| {
            // A variant's tables are its root's.
            let mut root = d.clone();
            for _ in 0..16 {
                match allot_scenarios::whatif::variants::read_variant(&root) {
                    Ok(Some(v)) => root = v.base,
                    _ => break,
                }
            }
            let bytes = std::fs::read_dir(&root).map(|e| e.flatten().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum::<u64>()).unwrap_or(0);
            (bytes * 40).max(256 << 20)
        })
        .max()
        .unwrap_or(256 << 20);
    let by_memory = (available / need).max(1) as usize;
    requested.unwrap_or(cores).min(cores).min(by_memory).min(scenarios.len()).max(1)
}

fn scenario_run(scenarios: &[PathBuf], out_root: &Path, jobs: Option<usize>, format: OutputFormat, store: &Path) -> Result<()> {
    use rayon::prelude::*;
    use tracing_indicatif::span_ext::IndicatifSpanExt;
    use tracing_indicatif::style::ProgressStyle;
    let names: Vec<String> = scenarios.iter().map(|d| run_name(d)).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            anyhow::bail!("two scenarios are named {n:?}: their outputs would share {}", out_root.join(n).display());
        }
    }
    let store = PlanStore::open(store).context("opening the plan store")?;
    let parallel = parallel_runs(scenarios, jobs);
    let style = ProgressStyle::with_template("{spinner} {span_child_prefix}{span_name}{{{span_fields}}} [{elapsed_precise}]").context("progress style")?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(parallel).build().context("starting the runs' threads")?;
    tracing::info!("planning {} scenario(s), {parallel} at a time", scenarios.len());
    let started = Instant::now();
    let results: Vec<(String, Result<PlanRun>)> = pool.install(|| {
        scenarios
            .par_iter()
            .zip(&names)
            .map(|(dir, name)| {
                let span = tracing::info_span!(RUN_SPAN, scenario = %name);
                span.pb_set_style(&style);
                let _entered = span.enter();
                let solver = SolverChoice::Auto(ExactOptions::default(), DecomposedOptions::default());
                let run = plan_scenario(&store, dir, &solver, Some(OutputDir { dir: &out_root.join(name), format })).map_err(anyhow::Error::from);
                match &run {
                    Ok(r) => tracing::info!(plan = %r.manifest.id, objective = r.kpis.objective, status = %r.kpis.status, gap = r.kpis.gap, "planned"),
                    Err(e) => tracing::error!("failed: {e:#}"),
                }
                (name.clone(), run)
            })
            .collect()
    });
    let failed: Vec<String> = results.iter().filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e:#}"))).collect();
    println!("{:<24} {:>8} {:>14} {:>14} {:>10}  outputs", "scenario", "plan", "objective", "margin", "status");
    for (name, r) in &results {
        if let Ok(r) = r {
            println!("{name:<24} {:>8} {:>14.2} {:>14.2} {:>10}  {}", r.manifest.id, r.kpis.objective, r.kpis.expected_margin, r.kpis.status, out_root.join(name).display());
        }
    }
    println!("{} planned in {:.1}s", results.len() - failed.len(), started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        anyhow::bail!("{} of {} runs failed:\n  {}", failed.len(), results.len(), failed.join("\n  "));
    }
    Ok(())
}

fn output_format_of(f: OutputFormatArg) -> OutputFormat {
    match f {
        OutputFormatArg::Auto => OutputFormat::BySize,
        OutputFormatArg::Csv => OutputFormat::Fixed(Format::Csv),
        OutputFormatArg::Parquet => OutputFormat::Fixed(Format::Parquet),
    }
}

/// The warm start `--warm-from` names: an error for the exact solver (it
/// solves from scratch) or a version without one; a warning when the version
/// was planned from another scenario directory (its prices are matched by row
/// names, so they still apply where the rows are the same).
fn warm_start(store: &PlanStore, id: &str, args: &PlanArgs) -> Result<allot_optimizer::decomposed::WarmStart> {
    anyhow::ensure!(!matches!(args.solver, SolverArg::Exact), "--warm-from starts the decomposed solver from an earlier plan's prices; the exact solver solves from scratch (use --solver auto or decomposed)");
    let manifest = store.manifest(id).with_context(|| format!("--warm-from {id}"))?;
    let here = args.scenario.canonicalize().unwrap_or_else(|_| args.scenario.clone());
    if Path::new(&manifest.scenario) != here {
        tracing::warn!(version = id, planned_from = %manifest.scenario, "--warm-from: that version was planned from another scenario directory; its prices apply where row names match");
    }
    store.warm_start(id).with_context(|| format!("--warm-from {id}"))
}

/// The solver and its options from the command line (`warm`: `--warm-from`'s prices).
fn solver_of(args: &PlanArgs, warm: Option<std::sync::Arc<allot_optimizer::decomposed::WarmStart>>) -> Result<Box<dyn PlanSolver>> {
    Ok(match args.solver {
        SolverArg::Ray => {
            anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
            Box::new(ray::RayOptions {
                address: args.ray_address.clone(),
                partitions: args.partitions,
                python: args.ray_python.clone(),
                partitions_dir: args.partitions_dir.clone(),
                actor_threads: args.actor_threads.max(1),
                decomposed: decomposed_options(args, warm),
            })
        }
        _ => Box::new(solver_choice(args, warm)),
    })
}

/// The decomposed solver's options from the command line.
fn decomposed_options(args: &PlanArgs, warm: Option<std::sync::Arc<allot_optimizer::decomposed::WarmStart>>) -> DecomposedOptions {
    DecomposedOptions {
        gap: args.gap,
        time_limit: args.time_limit,
        max_iterations: args.max_iterations,
        threads: args.threads.map(|t| t as usize),
        verbose: args.solver_log,
        warm,
    }
}

/// The in-process solver and its options from the command line.
fn solver_choice(args: &PlanArgs, warm: Option<std::sync::Arc<allot_optimizer::decomposed::WarmStart>>) -> SolverChoice {
    let exact = ExactOptions {
        threads: args.threads,
        time_limit: args.time_limit,
        verbose: args.solver_log,
        highs_options: args.solver_options.clone(),
        ..ExactOptions::default()
    };
    let decomposed = decomposed_options(args, warm);
    match args.solver {
        SolverArg::Auto => SolverChoice::Auto(exact, decomposed),
        SolverArg::Exact => SolverChoice::Exact(exact),
        SolverArg::Decomposed | SolverArg::Ray => SolverChoice::Decomposed(decomposed),
    }
}

fn default_out(scenario: &Path) -> PathBuf {
    PathBuf::from("out").join(run_name(scenario))
}

fn print_summary(k: &Kpis, id: &str, active: bool, out: &Path, store: &PlanStore, write_seconds: f64) {
    let r = &k.rounding;
    println!("plan {id}{} saved in {}", if active { " (active)" } else { "" }, store.root().display());
    println!("  outputs          {}", out.display());
    println!(
        "  objective        {:.2}  ({}, {}, gap {:.2e} on the offers' value {:.2}, {:.2e} of the whole)",
        k.objective,
        k.solver,
        k.status,
        k.offers_gap,
        k.objective - k.objective_without_offers,
        k.gap
    );
    println!("  expected margin  {:.2}", k.expected_margin);
    println!("  expected accepts {:.2}", k.expected_accepts);
    println!("  budget used      {:.2}", k.budget_used);
    println!("  baseline fill    {:.2}%  ({:.1} units unmet)", 100.0 * k.fill_rate_baseline, k.unmet_baseline_units);
    println!("  candidates       {} ({} excluded by hard rules, {} served)", k.candidates, k.excluded, k.eligible);
    let binding: Vec<String> = k.binding_constraints.iter().map(|(f, n)| format!("{f} x{n}")).collect();
    println!("  binding          {}", if binding.is_empty() { "none".to_string() } else { binding.join(", ") });
    for rule in &k.rules {
        let (sense, paid) = match rule.kind {
            RuleKind::MaxTotal => ("<=", rule.penalty_paid),
            RuleKind::MinTotal => (">=", rule.penalty_paid),
        };
        println!(
            "  rule {:<11} {} {:.2} {sense} {} (served {:.2}, price {:.3}{})",
            rule.rule_id,
            rule.measure.name(),
            rule.measured,
            rule.bound,
            rule.measured_served,
            rule.shadow_price,
            if paid > 0.0 { format!(", penalty {paid:.2}") } else { String::new() }
        );
    }
    for policy in &k.contact_policies {
        println!(
            "  {} {:<11} {} customer rows ({} binding, price {:.3}), {} pairs excluded by contact history",
            if policy.kind == "conflict" { "conflict" } else { "rule" },
            policy.id,
            policy.rows,
            policy.binding,
            policy.shadow_price,
            policy.excluded_by_history
        );
    }
    if k.channels.keys().any(|c| c != allot_optimizer::DEFAULT_CHANNEL) {
        let channels: Vec<String> = k.channels.iter().map(|(c, x)| format!("{c} {:.1} contacts ({} served, cost {:.2})", x.contacts, x.served_contacts, x.contact_cost)).collect();
        println!("  channels         {}", channels.join(", "));
    }
    println!(
        "  served plan      objective {:.2} ({:.2} below the solver's), value {:+.2}% vs LP, {} pairs dropped to keep limits; budget excess {:.2}, redemption excess {:.2}, delivery excess {:.2}, {:.1} units beyond its shipments",
        r.objective_served,
        r.rounding_cost,
        100.0 * r.offer_value_relative_change,
        r.pairs_dropped,
        r.budget_excess,
        r.max_redemption_excess,
        r.max_delivery_excess,
        r.units_beyond_supply
    );
    println!(
        "  time             load {:.2}s, build {:.2}s, solve {:.2}s, write {:.2}s; peak memory {}",
        k.load_seconds,
        k.build_seconds,
        k.solve_seconds,
        write_seconds,
        memory::peak_kib().map_or("unknown".to_string(), |kb| format!("{:.0} MiB", kb as f64 / 1024.0))
    );
}

fn experiment(action: ExperimentAction, store: &Path, database: &DatabaseArg) -> Result<()> {
    let store = PlanStore::open(store)?;
    let live = std::sync::Arc::new(database.open(&store)?);
    let events = allot_api::EventLog::open(live.clone()).context("reading the live events")?;
    match action {
        ExperimentAction::List => {
            if events.experiments().all().next().is_none() {
                println!("no experiments in {}", live.location());
            }
            for e in events.experiments().all() {
                let state = e.stopped_at.map_or_else(|| "running".to_string(), |t| format!("stopped {}", t.format("%Y-%m-%d %H:%M:%S")));
                let kind = e.kind.name();
                println!("{}  {kind:<8} {:<8} share {:>5.1}%  started {}  {state}", e.experiment_id, e.version.as_deref().unwrap_or("-"), 100.0 * e.share, e.started_at.format("%Y-%m-%d %H:%M:%S"));
            }
        }
        ExperimentAction::Report { id, json, html } => {
            let audit = allot_api::AuditLog::open(live.clone()).context("opening the audit")?;
            let report = allot_api::events::experiment_report(&live, events.experiments(), &audit, &id)
                .context("reading the decisions and outcomes")?
                .with_context(|| format!("no experiment {id:?} in {} (`allot experiment list` shows them)", live.location()))?;
            if let Some(path) = &html {
                allot_scenarios::files::write_atomic(path, |f| std::io::Write::write_all(f, allot_api::experiments::html(&report).as_bytes()).map_err(|e| allot_scenarios::StoreError::io("cannot write", path, e)))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_experiment_report(&report);
            }
            if let Some(path) = &html {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

/// The report as a table on stdout.
fn print_experiment_report(r: &allot_api::ExperimentReport) {
    let e = &r.experiment;
    println!("experiment {} ({:?}, share {:.1}%{})", e.experiment_id, e.kind, 100.0 * e.share, e.version.as_deref().map_or(String::new(), |v| format!(", version {v}")));
    let row = |cells: &[&str]| {
        let (arm, rest) = cells.split_first().expect("an arm column");
        println!("{arm:<10} {}", rest.iter().map(|c| format!("{c:>14}")).collect::<Vec<_>>().join(" "));
    };
    row(&allot_api::experiments::ArmReport::COLUMNS);
    for a in &r.arms {
        let cells = a.cells();
        row(&cells.iter().map(String::as_str).collect::<Vec<_>>());
    }
    match &r.comparison {
        Some(c) => println!(
            "uplift {} - {}: {:+.4} per customer (se {:.4}); always-valid 95% [{:+.4}, {:+.4}]; fixed-horizon 95% [{:+.4}, {:+.4}]; verdict: {}",
            c.treatment, c.baseline, c.uplift, c.standard_error, c.always_valid_95.low, c.always_valid_95.high, c.fixed_horizon_95.low, c.fixed_horizon_95.high, c.verdict
        ),
        None => println!("no comparison (a shadow serves nothing, or an arm has fewer than two customers)"),
    }
}

fn plans(action: PlansAction, store: &Path, database: &DatabaseArg) -> Result<()> {
    let store = PlanStore::open(store)?;
    let live = database.open(&store)?;
    let active = || -> Result<Option<String>> { Ok(live.active_plan()?.map(|(_, id)| id)) };
    match action {
        PlansAction::List => {
            let active = active()?;
            let list = store.list()?;
            if list.is_empty() {
                println!("no plan versions in {}", store.root().display());
            }
            for m in list {
                let mark = if active.as_deref() == Some(m.id.as_str()) { "*" } else { " " };
                println!(
                    "{mark} {}  {}  {:<6} {:<10} objective {:>14.2}  {}",
                    m.id,
                    m.created_at.format("%Y-%m-%d %H:%M:%S"),
                    m.solver,
                    m.status,
                    m.objective,
                    m.scenario
                );
            }
        }
        PlansAction::Show { id } => {
            let value = serde_json::json!({ "manifest": store.manifest(&id)?, "kpis": store.kpis(&id)?, "active": active()?.as_deref() == Some(id.as_str()) });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        PlansAction::Activate { id } => {
            live.activate(&store, &id)?;
            println!("plan {id} is active");
        }
        PlansAction::Rollback => {
            let a = live.rollback(&store)?;
            println!("rolled back: plan {} is active", a.plan_id);
        }
    }
    Ok(())
}
