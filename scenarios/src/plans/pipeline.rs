//! The planning pipeline: the one way a scenario becomes a plan version.
//!
//! load (forecasting baseline demand and uptake from history when the
//! scenario has none) → solve → derive (plan tables, KPIs, marginal values,
//! demand plan) → save the version, writing the run's outputs beside its
//! files (both staged; the outputs published once the version is saved).
//!
//! Why one pipeline: `allot plan`, `allot scenario run` and `POST /v1/plans`
//! all call [`plan_scenario`], so a version is the same file for file whichever
//! path planned it. The solver is the caller's choice ([`PlanSolver`]): in
//! process, or the CLI's Ray driver.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use allot_optimizer::allocation::Allocation;
use allot_optimizer::plan::Kpis;
use allot_optimizer::{Candidates, Plan, Problem, SolverChoice};
use tracing::info;

use crate::error::{PipelineError, StoreError};
use crate::scenario::load::{LoadOptions, LoadedScenario};
use crate::whatif::variants::load_scenario_with;
use crate::plans::demand_plan::DEMAND_PLAN_TABLE;
use crate::plans::output::{write_plan_outputs, KPIS_FILE, OUTPUT_TABLES};
use crate::files::{Format, OutputFormat, StagedDir};
use crate::plans::store::{Manifest, PlanStore, VersionMeta, VERSION_FORMAT, WARM_START_FILE};
use allot_optimizer::decomposed::WarmStart;
use crate::whatif::marginal_values::{self, MarginalValue};

/// Subdirectory of a run (and of a plan version) holding the forecasts.
pub const FORECAST_DIR: &str = "forecast";

/// Something that turns a problem into an allocation and its plan.
pub trait PlanSolver: Sync {
    /// Solves `problem`: its candidates, the allocation, and the plan derived from it.
    fn solve(&self, problem: &Problem) -> Result<(Candidates, Allocation, Plan), Box<dyn std::error::Error + Send + Sync>>;

    /// The plan version this run re-plans (the warm start it was given,
    /// whether or not the solver that ran used it), recorded in the new
    /// version's manifest.
    fn replan_of(&self) -> Option<&str> {
        None
    }
}

impl PlanSolver for SolverChoice {
    fn solve(&self, problem: &Problem) -> Result<(Candidates, Allocation, Plan), Box<dyn std::error::Error + Send + Sync>> {
        Ok(allot_optimizer::plan(problem, self)?)
    }

    fn replan_of(&self) -> Option<&str> {
        self.warm_source()
    }
}

/// Where a run's outputs go besides the plan version: a directory, in the
/// planner's table encoding.
#[derive(Debug, Clone, Copy)]
pub struct OutputDir<'a> {
    /// Output directory (created if needed).
    pub dir: &'a Path,
    /// Encoding of its tables.
    pub format: OutputFormat,
}

/// What one planning run produced.
#[derive(Debug, Clone)]
pub struct PlanRun {
    /// The saved version.
    pub manifest: Manifest,
    /// Its KPIs (load time filled in).
    pub kpis: Kpis,
    /// Seconds writing the outputs and saving the version.
    pub write_seconds: f64,
}

/// Plans `scenario` with `solver`, writes the run's outputs to `out` (when
/// given) and saves a new plan version in `store` (not activated).
pub fn plan_scenario(store: &PlanStore, scenario: &Path, solver: &dyn PlanSolver, out: Option<OutputDir<'_>>) -> Result<PlanRun, PipelineError> {
    plan_scenario_with(store, scenario, solver, out, LoadOptions::default())
}

/// [`plan_scenario`] loading with `options` (`POST /v1/plans` confines the
/// files read to the server's scenario root through [`LoadOptions::root`]).
pub fn plan_scenario_with(store: &PlanStore, scenario: &Path, solver: &dyn PlanSolver, out: Option<OutputDir<'_>>, options: LoadOptions) -> Result<PlanRun, PipelineError> {
    if let Some(o) = &out {
        check_replaceable(o.dir).map_err(outputs_error(o.dir))?;
    }
    // The version records where the scenario is, whichever way it was named.
    let scenario = scenario.canonicalize().unwrap_or_else(|_| scenario.to_path_buf());
    info!(scenario = %scenario.display(), "loading");
    let t = Instant::now();
    let loaded = load_scenario_with(&scenario, options)?;
    let load_seconds = t.elapsed().as_secs_f64();
    for note in &loaded.notes {
        info!("note: {note}");
    }
    let p = &loaded.problem;
    let model = if p.is_mip() { "MIP" } else { "LP" };
    info!(
        customers = p.customers.len(),
        offers = p.offers.len(),
        uptake_pairs = p.uptake.len(),
        skus = p.skus.len(),
        warehouses = p.warehouses.len(),
        model,
        "loaded in {load_seconds:.2}s; solving"
    );
    let t = Instant::now();
    let (cands, alloc, plan) = solver.solve(p).map_err(PipelineError::Solve)?;
    let solve_call_seconds = t.elapsed().as_secs_f64();
    // What customers will be shown keeps every hard limit, or nothing is saved.
    let t = Instant::now();
    let violations = allot_optimizer::feasibility::check_served(p, &cands, &plan, allot_optimizer::feasibility::SERVED_TOL);
    if !violations.is_empty() {
        return Err(PipelineError::ServedPlan(violations));
    }
    let check_seconds = t.elapsed().as_secs_f64();
    let kpis = Kpis { load_seconds, ..plan.kpis.clone() };
    let warm_from = alloc.report.warm_from.clone();
    // Where the time between loading and writing goes (issue 17, item 6):
    // the solver's own build and solve, the rest of its call (candidates,
    // plan derivation) and the served-plan check.
    let solved = kpis.build_seconds + kpis.solve_seconds;
    let around = (solve_call_seconds - solved).max(0.0);
    info!(objective = kpis.objective, status = %kpis.status, gap = kpis.gap, "solved in {solved:.2}s (rest of the solver call, candidates and plan derivation: {around:.2}s; served-plan check {check_seconds:.2}s); writing outputs");
    let t = Instant::now();
    let layout = marginal_values::plan_layout(p, &cands);
    let run = Derived {
        loaded: &loaded,
        plan: &plan,
        kpis: &kpis,
        marginal_values: marginal_values::marginal_values(p, &layout, &alloc.prices),
        warm_start: WarmStart::of(p, &layout, &alloc),
    };
    drop(layout);
    // The plan holds what is written; the candidates and the allocation (one
    // entry per pair) would only raise the peak while the tables are built.
    drop((cands, alloc));
    // The outputs' encoding, now that the scenario's size is known.
    let out = out.map(|o| (o.dir, o.format.for_customers(p.customers.len())));
    // Written beside the output directory and put in its place only once the
    // version is saved: a failed or killed run leaves the earlier outputs whole.
    let staged = match out {
        Some((dir, _)) => Some(StagedDir::new(dir).map_err(outputs_error(dir))?),
        None => None,
    };
    let meta = VersionMeta { kpis: &kpis, scenario: &scenario, scenario_hash: &loaded.content_hash, lineage: &loaded.lineage, warm_from: warm_from.as_deref(), replan_of: solver.replan_of() };
    // Whether the outputs, not the version's own files, failed.
    let outputs_failed = AtomicBool::new(false);
    let saved = store.save(&meta, |staging| {
        // The tables (the eligibility table is most of the write, on both
        // cores) beside what serving reads, which is the version's alone.
        let (tables, serving) = rayon::join(
            || {
                if let (Some((_, format)), Some(staged)) = (out, &staged) {
                    let files = run.write(staged.path(), format).inspect_err(|_| outputs_failed.store(true, Ordering::Relaxed))?;
                    // The outputs just written, when in the version's format, are its files.
                    if format == VERSION_FORMAT {
                        return crate::plans::output::copy_outputs(&files, staged.path(), staging).map(drop);
                    }
                }
                run.write(staging, VERSION_FORMAT).map(drop)
            },
            || {
                crate::files::write_versioned(&staging.join(WARM_START_FILE), &run.warm_start)?;
                crate::plans::serving::write_serving(staging, p, &plan, VERSION_FORMAT)
            },
        );
        tables.and(serving)
    });
    let manifest = match (saved, out) {
        (Err(e), Some((dir, _))) if outputs_failed.load(Ordering::Relaxed) => return Err(outputs_error(dir)(e)),
        (saved, _) => saved?,
    };
    info!(plan = %manifest.id, store = %store.root().display(), "plan version saved");
    if let (Some((dir, format)), Some(staged)) = (out, staged) {
        staged.publish().map_err(outputs_error(dir))?;
        info!(dir = %dir.display(), format = format.extension(), "outputs written");
    }
    Ok(PlanRun { manifest, kpis, write_seconds: t.elapsed().as_secs_f64() })
}

/// The error of a run whose outputs in `dir` could not be written.
fn outputs_error(dir: &Path) -> impl FnOnce(StoreError) -> PipelineError + '_ {
    move |source| PipelineError::Outputs { dir: dir.to_path_buf(), source }
}

/// Refuses an output directory that holds anything a run does not write
/// (checked before solving): a run replaces its output directory whole, and
/// must never delete a planner's own files with it. An absent or empty
/// directory, or one an earlier run wrote, is fine.
fn check_replaceable(dir: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("cannot read", dir, e)),
    };
    let kpis = KPIS_FILE.split('.').next().unwrap_or(KPIS_FILE);
    let shadow_prices = marginal_values::SHADOW_PRICES_FILE.split('.').next().unwrap_or_default();
    let known = |stem: &str| OUTPUT_TABLES.contains(&stem) || [DEMAND_PLAN_TABLE, kpis, shadow_prices, FORECAST_DIR].contains(&stem);
    for entry in entries {
        let name = entry.map_err(|e| StoreError::io("cannot read", dir, e))?.file_name().to_string_lossy().into_owned();
        // A temporary a killed writer left (`.<file>.tmp-...`) is its file's.
        let file = name.strip_prefix('.').and_then(|hidden| hidden.split_once(".tmp-")).map_or(name.as_str(), |(file, _)| file);
        if !known(file.split('.').next().unwrap_or_default()) {
            let why = format!("it holds `{name}`, which a run does not write; a run replaces its output directory whole: give --out a new or empty directory, or one an earlier run wrote");
            return Err(StoreError::io("will not replace", dir, std::io::Error::other(why)));
        }
    }
    Ok(())
}

/// Everything derived from one solve that a run writes.
struct Derived<'a> {
    loaded: &'a LoadedScenario,
    plan: &'a Plan,
    kpis: &'a Kpis,
    marginal_values: Vec<MarginalValue>,
    /// What a re-plan of this scenario starts from (kept in the version only).
    warm_start: WarmStart,
}

impl Derived<'_> {
    /// Writes the plan tables, `kpis.json`, the demand plan, the marginal
    /// values and (when forecast) the forecasts into `dir`.
    fn write(&self, dir: &Path, format: Format) -> Result<Vec<PathBuf>, StoreError> {
        let p = &self.loaded.problem;
        // The plan tables (at scale on both cores) beside the small files.
        let (tables, rest) = rayon::join(
            || write_plan_outputs(dir, p, self.plan, self.kpis, format),
            || {
                let mut written = vec![crate::plans::demand_plan::write_demand_plan(dir, self.loaded, self.plan, format)?];
                written.push(marginal_values::write_marginal_values(dir, &self.marginal_values)?);
                if self.loaded.demand_forecast.is_some() || self.loaded.uptake_report.is_some() {
                    written.extend(crate::plans::forecast_output::write_forecasts(&dir.join(FORECAST_DIR), self.loaded)?);
                }
                Ok(written)
            },
        );
        let mut written = tables?;
        written.extend(rest?);
        Ok(written)
    }
}
