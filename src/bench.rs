//! `allot bench`: generates scenarios at given sizes and runs every solver on each,
//! side by side in one process, so the figures compare like with like (same
//! machine, same run). Prints a table and optionally writes JSON.
//!
//! Per size and scenario family (`--families`): generate (CSV, then converted to Parquet), load from Parquet, then per
//! solver: the solve (scenario in memory to a feasible plan with its certificate),
//! its peak memory, objective, bound and gap; then plan derivation and output
//! writing for the last solver. Peak memory is the process's `VmHWM` after the
//! kernel's peak counter is reset before each phase, so it includes the loaded
//! scenario itself (and HiGHS's C++ allocations).

use std::path::PathBuf;
use std::time::Instant;

use allot_optimizer::decomposed::DecomposedOptions;
use allot_optimizer::exact::ExactOptions;
use allot_optimizer::{derive_plan, solve, Candidates, Network, SolverChoice};
use allot_scenarios::{convert_scenario_to_parquet, generate, load_scenario, write_plan_outputs, Family, GenerateSpec, OutputFormat};
use anyhow::{Context, Result};

use crate::memory::{peak_kib, reset_peak};
use serde::Serialize;

/// Options of `allot bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Customer counts to generate, comma-separated (e.g. 100000,1000000).
    #[arg(long, value_delimiter = ',', default_value = "20000,100000")]
    customers: Vec<usize>,
    /// Candidate offers per customer.
    #[arg(long, default_value_t = 8)]
    candidates: usize,
    #[arg(long, default_value_t = 40)]
    offers: usize,
    #[arg(long, default_value_t = 300)]
    skus: usize,
    #[arg(long, default_value_t = 20)]
    zones: usize,
    #[arg(long, default_value_t = 5)]
    warehouses: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the custom-offer limit (a MIP when it can bind: fewer than the
    /// custom offers); by default it is dropped so both solvers face the same LP.
    #[arg(long)]
    mip: bool,
    /// Version-2 features on: 3 channels with costs per contact, per-pair
    /// values, 10 rules (6 per customer, an email capacity, a call-centre
    /// budget, two minimums), 21 conflicts, a contact history, and 7-day
    /// buckets over 28 days.
    #[arg(long)]
    v2: bool,
    /// Model version 2's all-or-nothing decisions (a MIP at any size; with no
    /// time limit the whole MIP, exact's or auto's fallback, can take
    /// minutes from a few thousand customers: keep `--exact-max-customers` low).
    #[arg(long)]
    binary_decisions: bool,
    /// Scenario families to generate at every size, comma-separated: default,
    /// no-fairness, no-budget, tight-stock, many-candidates, skewed-uptake
    /// (what each draws: `Family` in the scenarios crate).
    #[arg(long, value_delimiter = ',', default_value = "default")]
    families: Vec<Family>,
    /// Solvers to run, in order, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "exact,decomposed")]
    solvers: Vec<BenchSolver>,
    /// Skip the exact solver above this many customers (it grows superlinearly).
    #[arg(long, default_value_t = 100_000)]
    exact_max_customers: usize,
    /// Derive and write the plan outputs only up to this many customers.
    #[arg(long, default_value_t = 1_000_000)]
    write_max_customers: usize,
    /// Worker threads for the solvers [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Decomposed solver: target gap.
    #[arg(long, default_value_t = DecomposedOptions::default().gap, value_parser = crate::parse_gap)]
    gap: f64,
    /// Decomposed solver: iteration limit.
    #[arg(long, default_value_t = DecomposedOptions::default().max_iterations)]
    max_iterations: usize,
    /// Directory for the generated scenarios [default: a temporary directory, removed after].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only load these existing scenario directories (comma-separated) and report
    /// each one's load time and peak memory: no generation, no solving. Measures
    /// the loader alone, e.g. the same files with two builds.
    #[arg(long, value_delimiter = ',')]
    load_only: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum BenchSolver {
    Exact,
    Decomposed,
    /// What `allot plan` runs by default: the exact solver or the
    /// decomposition by size, with HiGHS's polish of a MIP's plan.
    Auto,
}

/// One solver on one size.
#[derive(Serialize)]
struct SolverRun {
    solver: BenchSolver,
    /// The solver that answered, as the plan's report names it (`auto`'s
    /// choice: `exact`, `decomposed`, `decomposed+exact`).
    answered_by: Option<String>,
    /// `None` when skipped (with the reason in `skipped`).
    status: Option<String>,
    skipped: Option<String>,
    solve_seconds: f64,
    peak_mib: f64,
    objective: f64,
    bound: f64,
    gap: f64,
    /// Certified gap on the offers' value.
    offers_gap: f64,
    /// The optimum with no offers (the zero of the offers' value).
    objective_without_offers: f64,
    iterations: Option<usize>,
    /// `(exact - this) / max(1, |exact - without offers|)` (on the offers'
    /// value) when the exact solver ran on this size.
    below_exact: Option<f64>,
    /// Exact solve time over this solve time, when the exact solver ran.
    speedup_vs_exact: Option<f64>,
}

/// One generated size of one family.
#[derive(Serialize)]
struct SizeRun {
    customers: usize,
    family: String,
    candidate_pairs: usize,
    generate_seconds: f64,
    load_parquet_seconds: f64,
    load_peak_mib: f64,
    candidates_seconds: f64,
    runs: Vec<SolverRun>,
    /// Plan derivation and output writing (CSV) for the last solver that ran.
    write_seconds: Option<f64>,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> Result<()> {
    if !args.load_only.is_empty() {
        return load_only(&args.load_only);
    }
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let root = args.work_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let mut sizes = Vec::new();
    for (&customers, &family) in args.customers.iter().flat_map(|c| args.families.iter().map(move |f| (c, f))) {
        let dir = root.join(format!("bench-{customers}-{}-{}-{family}", args.candidates, args.seed));
        let spec = GenerateSpec {
            customers,
            offers: args.offers,
            skus: args.skus,
            zones: args.zones,
            warehouses: args.warehouses,
            candidates: args.candidates,
            seed: args.seed,
            channels: args.v2,
            contact_policies: args.v2,
            volume_rules: args.v2,
            category_policies: args.v2,
            days: if args.v2 { 28 } else { GenerateSpec::default().days },
            bucket_days: args.v2.then_some(7),
            binary_decisions: args.binary_decisions,
            family,
            ..GenerateSpec::default()
        };
        tracing::info!("bench: generating {customers} customers x {} candidates ({family}) in {} ...", args.candidates, dir.display());
        let t = Instant::now();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        generate(&dir, &spec)?;
        convert_scenario_to_parquet(&dir)?;
        let generate_seconds = t.elapsed().as_secs_f64();

        reset_peak();
        let t = Instant::now();
        let mut problem = load_scenario(&dir)?.problem;
        let load_parquet_seconds = t.elapsed().as_secs_f64();
        let load_peak_mib = peak_mib();
        if !args.mip {
            problem.policy.max_custom_offers = None;
        }
        let t = Instant::now();
        let network = Network::new(&problem);
        let cands = Candidates::build(&problem, &network);
        let candidates_seconds = t.elapsed().as_secs_f64();
        tracing::info!("bench: loaded {} pairs in {load_parquet_seconds:.2}s", cands.len());

        let mut runs: Vec<SolverRun> = Vec::new();
        let mut last_allocation = None;
        for &solver in &args.solvers {
            if solver == BenchSolver::Exact && customers > args.exact_max_customers {
                runs.push(SolverRun::skipped(solver, format!("above --exact-max-customers {}", args.exact_max_customers)));
                continue;
            }
            let exact = ExactOptions { threads: args.threads.map(|t| t as u32), ..ExactOptions::default() };
            let decomposed = DecomposedOptions { gap: args.gap, max_iterations: args.max_iterations, threads: args.threads, ..DecomposedOptions::default() };
            let choice = match solver {
                BenchSolver::Exact => SolverChoice::Exact(exact),
                BenchSolver::Decomposed => SolverChoice::Decomposed(decomposed),
                BenchSolver::Auto => SolverChoice::Auto(exact, decomposed),
            };
            tracing::info!("bench: {customers} customers, {} ...", name(solver));
            reset_peak();
            let t = Instant::now();
            let alloc = solve(&problem, &network, &cands, &choice)?;
            let solve_seconds = t.elapsed().as_secs_f64();
            let r = &alloc.report;
            runs.push(SolverRun {
                solver,
                answered_by: Some(r.solver.clone()),
                status: Some(r.status.as_str().to_string()),
                skipped: None,
                solve_seconds,
                peak_mib: peak_mib(),
                objective: r.objective,
                bound: r.bound,
                gap: r.gap,
                offers_gap: r.offers_gap,
                objective_without_offers: r.objective_without_offers,
                iterations: r.iterations,
                below_exact: None,
                speedup_vs_exact: None,
            });
            last_allocation = Some(alloc);
        }
        if let Some(exact) = runs.iter().find(|r| r.solver == BenchSolver::Exact && r.status.is_some()) {
            let (objective, seconds, without) = (exact.objective, exact.solve_seconds, exact.objective_without_offers);
            for r in runs.iter_mut().filter(|r| r.status.is_some()) {
                r.below_exact = Some((objective - r.objective) / (objective - without).abs().max(1.0));
                r.speedup_vs_exact = Some(seconds / r.solve_seconds.max(1e-9));
            }
        }
        let write_seconds = match last_allocation {
            Some(alloc) if customers <= args.write_max_customers => {
                let t = Instant::now();
                let plan = derive_plan(&problem, &network, &cands, &alloc);
                write_plan_outputs(&dir.join("out"), &problem, &plan, &plan.kpis, OutputFormat::BySize.for_customers(customers))?;
                Some(t.elapsed().as_secs_f64())
            }
            _ => None,
        };
        sizes.push(SizeRun {
            customers,
            family: family.name().to_string(),
            candidate_pairs: cands.len(),
            generate_seconds,
            load_parquet_seconds,
            load_peak_mib,
            candidates_seconds,
            runs,
            write_seconds,
        });
        drop((problem, cands, network));
        if args.work_dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        print_table(&sizes);
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) },
            "threads": args.threads,
            "sizes": sizes,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n").with_context(|| format!("writing {}", path.display()))?;
        tracing::info!("bench: wrote {}", path.display());
    }
    Ok(())
}

/// `--load-only`: one line per directory with its load time and peak memory.
fn load_only(dirs: &[PathBuf]) -> Result<()> {
    println!("{:>10} {:>11} {:>8} {:>9}  scenario", "customers", "pairs", "load_s", "peak_MiB");
    for dir in dirs {
        reset_peak();
        let t = Instant::now();
        let loaded = load_scenario(dir).with_context(|| format!("loading {}", dir.display()))?;
        let seconds = t.elapsed().as_secs_f64();
        let p = &loaded.problem;
        println!("{:>10} {:>11} {seconds:>8.2} {:>9.0}  {}", p.customers.id.len(), p.uptake.len(), peak_mib(), dir.display());
    }
    Ok(())
}

impl SolverRun {
    fn skipped(solver: BenchSolver, why: String) -> Self {
        SolverRun {
            solver,
            answered_by: None,
            status: None,
            skipped: Some(why),
            solve_seconds: 0.0,
            peak_mib: 0.0,
            objective: f64::NAN,
            bound: f64::NAN,
            gap: f64::NAN,
            offers_gap: f64::NAN,
            objective_without_offers: f64::NAN,
            iterations: None,
            below_exact: None,
            speedup_vs_exact: None,
        }
    }
}

fn name(s: BenchSolver) -> &'static str {
    match s {
        BenchSolver::Exact => "exact",
        BenchSolver::Decomposed => "decomposed",
        BenchSolver::Auto => "auto",
    }
}

fn print_table(sizes: &[SizeRun]) {
    println!(
        "{:>10} {:>15} {:>11} {:>8} {:>8} {:>16} {:>15} {:>8} {:>9} {:>10} {:>14} {:>10} {:>10} {:>9} {:>15} {:>7}",
        "customers", "family", "pairs", "load_s", "write_s", "solver", "status", "solve_s", "peak_MiB", "speedup", "objective", "offers_gap", "gap", "vs_exact", "bound", "iters"
    );
    for s in sizes {
        for r in &s.runs {
            let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
            println!(
                "{:>10} {:>15} {:>11} {:>8.2} {:>8} {:>16} {:>15} {:>8.2} {:>9.0} {:>10} {:>14.2} {:>10.2e} {:>10.2e} {:>9} {:>15.2} {:>7}",
                s.customers,
                s.family,
                s.candidate_pairs,
                s.load_parquet_seconds,
                opt(s.write_seconds, &|v| format!("{v:.2}")),
                // `auto` by what answered.
                r.answered_by.as_deref().filter(|_| r.solver == BenchSolver::Auto).map_or_else(|| name(r.solver).to_string(), |by| format!("auto:{by}")),
                r.status.as_deref().unwrap_or("skipped"),
                r.solve_seconds,
                r.peak_mib,
                opt(r.speedup_vs_exact, &|v| format!("{v:.1}x")),
                r.objective,
                r.offers_gap,
                r.gap,
                opt(r.below_exact, &|v| format!("{:.3}%", 100.0 * v)),
                r.bound,
                r.iterations.map_or("-".to_string(), |i| i.to_string())
            );
        }
    }
}

/// Peak resident memory since the last reset, in MiB.
fn peak_mib() -> f64 {
    peak_kib().map_or(f64::NAN, |kb| kb as f64 / 1024.0)
}
