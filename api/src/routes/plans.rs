//! Routes for planners: plan versions, planning jobs, activation and rollback.

use std::path::PathBuf;

use allot_scenarios::plans::store::{check_plan_id, Manifest};
use allot_scenarios::LoadOptions;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::errors::{ApiError, JsonBody};
use crate::experiments::{ExperimentChange, ExperimentKind, ExperimentStart};
use crate::jobs::{JobSolver, JobWork, PlanJob};
use crate::routes::extract::{Deadline, PathId};
use crate::state::{AppState, ServiceConfig};

/// Body of `POST /v1/plans`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanJobRequest {
    /// Scenario directory, relative to the scenario root (or absolute inside it).
    #[schema(min_length = 1)]
    scenario: String,
    /// Activate and serve the new version once saved [default false].
    #[serde(default)]
    activate: bool,
    /// The solver [default auto].
    #[serde(default)]
    solver: JobSolver,
}

/// Body of `GET /v1/plans`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    /// The active version, if any.
    pub active: Option<String>,
    /// The version decisions come from (the fallback may serve a non-active one).
    pub serving: Option<String>,
    /// Every saved version, oldest first.
    pub plans: Vec<Manifest>,
    /// Planning jobs of this server's life.
    pub jobs: Vec<PlanJob>,
}

/// Body of an activation's or a rollback's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationReply {
    /// The version now active.
    pub active: String,
    /// `activate` or `rollback`.
    pub action: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The version now served.
    pub serving: Option<String>,
}

/// One activation, rollback or job activation at a time in this process, so
/// that the store's change and the reload of the served plan happen as one
/// step: two at once could record A then B but reload B then A, serving a plan
/// other than the active one. The activations themselves serialize in the
/// live-state database (one exclusive transaction each), in this process and
/// others.
static PLAN_CHANGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `change` while holding [`PLAN_CHANGES`].
fn one_change_at_a_time<T>(change: impl FnOnce() -> T) -> T {
    let _held = PLAN_CHANGES.lock().unwrap_or_else(|e| e.into_inner());
    change()
}

/// The scenario directory a job may plan: inside the configured root. One
/// outside it is answered exactly like a missing one (422
/// `scenario_not_found`), so a caller cannot probe what exists elsewhere.
fn scenario_dir(config: &ServiceConfig, requested: &str) -> Result<(PathBuf, PathBuf), ApiError> {
    let root = config.scenario_root.canonicalize().map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_scenario_root", format!("scenario root {}: {e}", config.scenario_root.display()))
    })?;
    if requested.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_request", "scenario: a directory under the scenario root is required"));
    }
    let not_found = || ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scenario_not_found", format!("no scenario directory {requested:?} under the scenario root"));
    let dir = root.join(requested).canonicalize().map_err(|_| not_found())?;
    if !dir.starts_with(&root) || !dir.is_dir() {
        return Err(not_found());
    }
    Ok((root, dir))
}

pub(crate) async fn start_plan_job(State(state): State<AppState>, body: JsonBody<PlanJobRequest>) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let (root, dir) = scenario_dir(&state.config, &req.scenario)?;
    let after = if req.activate { AfterPlan::Activate } else { AfterPlan::Keep };
    let job = submit_job(&state, root, dir, req.solver, after, false);
    let location = format!("/v1/jobs/{}", job.job_id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job)).into_response())
}

/// What a planning job does with the version it saves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AfterPlan {
    /// Nothing: it waits for a planner.
    Keep,
    /// Activates and serves it.
    Activate,
    /// Starts it as a canary for this share (`drift-<version>`), unless a canary runs.
    Canary(f64),
}

/// Starts a drift re-plan when [`AppState::replan_due`] says one is due: a
/// warm job over the served plan's scenario directory (it must lie under the
/// scenario root) whose uptake is fitted again with the outcome events as
/// more offer history, its result kept or started as a canary by the drift
/// policy. The server's sync loop calls it; returns the job started.
pub fn replan_on_drift(state: &AppState) -> Option<PlanJob> {
    let version = state.replan_due()?;
    let after = match state.config.drift.replan? {
        crate::drift::AfterReplan::Wait => AfterPlan::Keep,
        crate::drift::AfterReplan::Canary(share) => AfterPlan::Canary(share),
    };
    let scenario = match state.store.manifest(&version) {
        Ok(m) => m.scenario,
        Err(e) => {
            tracing::warn!(version = %version, error = %e, "acceptance drift: the served version's manifest does not read; no re-plan");
            return None;
        }
    };
    // Once per served version across restarts and replicas too: a version
    // already re-planned warm from it (by drift or a planner) is in the store.
    // (Versions saved before `replan_of` name it in `warm_from`.)
    if state.store.list().is_ok_and(|list| list.iter().any(|m| m.replan_of.as_deref().or(m.warm_from.as_deref()) == Some(version.as_str()))) {
        return None;
    }
    match scenario_dir(&state.config, &scenario) {
        Ok((root, dir)) => {
            let job = submit_job(state, root, dir, JobSolver::default(), after, true);
            tracing::warn!(version = %version, job = %job.job_id, "acceptance drift: started a warm re-plan");
            state.metrics.count_drift_replan();
            Some(job)
        }
        Err(e) => {
            tracing::warn!(version = %version, scenario = %scenario, error = %e.message(), "acceptance drift: the scenario is not under the scenario root; no re-plan");
            None
        }
    }
}

/// Queues a planning job over `scenario` (under `root`), warm from the
/// earlier version of the same scenario when there is one; with
/// `refit_from_outcomes`, the uptake is forecast again with the outcome
/// events recorded so far as more offer history (a drift re-plan).
fn submit_job(state: &AppState, root: PathBuf, dir: PathBuf, solver: JobSolver, after: AfterPlan, refit_from_outcomes: bool) -> PlanJob {
    let (s, scenario) = (state.clone(), dir.clone());
    let work: JobWork = Box::new(move |solver| {
        let outcome_history = if refit_from_outcomes { crate::events::outcome_history(s.live()).map_err(|e| format!("reading the outcome events: {e}"))? } else { Vec::new() };
        // Every file the load reads (tables, bases of variants, symlinks) must lie under the root.
        let options = LoadOptions { root: Some(root), outcome_history, ..LoadOptions::default() };
        let solver = match warm_start_for(&s, &scenario) {
            Some((from, warm)) => {
                tracing::info!(scenario = %scenario.display(), warm_from = %from, "re-plan starts from an earlier version's prices");
                solver.clone().with_warm_start(std::sync::Arc::new(warm))
            }
            None => solver.clone(),
        };
        let manifest = allot_scenarios::plan_scenario_with(&s.store, &scenario, &solver, None, options).map_err(|e| e.to_string())?.manifest;
        match after {
            AfterPlan::Keep => {}
            AfterPlan::Activate => one_change_at_a_time(|| {
                s.change_active(Some(&manifest.id)).map_err(|e| format!("saved {} but could not activate it: {}", manifest.id, e.message()))?;
                s.reload();
                Ok::<_, String>(())
            })?,
            AfterPlan::Canary(share) => {
                let start = ExperimentStart { experiment_id: format!("drift-{}", manifest.id), kind: ExperimentKind::Canary, version: Some(manifest.id.clone()), share };
                if let Err(e) = s.change_experiment(ExperimentChange::Start(start)) {
                    tracing::warn!(version = %manifest.id, error = %e.message(), "the drift re-plan is saved but not started as a canary");
                }
            }
        }
        Ok(manifest.id)
    });
    state.jobs.submit(dir, solver, after == AfterPlan::Activate, work)
}

/// The earlier version a planning job's decomposition starts from (a warm
/// re-plan): the active version when it was planned from the same scenario
/// directory, else the newest one that was; none for a scenario's first plan
/// or a version saved before warm starts existed (the job then starts cold).
fn warm_start_for(s: &AppState, scenario: &std::path::Path) -> Option<(String, allot_optimizer::decomposed::WarmStart)> {
    let same: Vec<String> = s.store.list().ok()?.into_iter().filter(|m| std::path::Path::new(&m.scenario) == scenario).map(|m| m.id).collect();
    let active = s.active_id().ok().flatten().map(|(_, id)| id);
    let from = active.filter(|id| same.contains(id)).or_else(|| same.last().cloned())?;
    let warm = s.store.warm_start(&from).ok()?;
    Some((from, warm))
}

pub(crate) async fn plan_job(State(state): State<AppState>, PathId(id): PathId) -> Result<Json<PlanJob>, ApiError> {
    state.jobs.get(&id).map(Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_job", format!("no job {id:?} in this server's life")))
}

pub(crate) async fn list_plans(State(state): State<AppState>, deadline: Deadline) -> Result<Json<PlanList>, ApiError> {
    let s = state.clone();
    // The active plan may come from the database: a blocking call.
    let active = deadline.blocking(move || s.active_id().map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_error", e))).await?.map(|(_, id)| id);
    let plans = state.store.list()?;
    let serving = state.current().map(|s| s.plan.version().to_string());
    Ok(Json(PlanList { active, serving, plans, jobs: state.jobs.list() }))
}

/// Runs a store change then reloads the served plan, off the async threads (an
/// index of a million customers takes seconds to build). A change not started
/// by the request's deadline is not started at all; one started completes.
async fn change_plan(state: AppState, deadline: Deadline, id: Option<String>) -> Result<Json<ActivationReply>, ApiError> {
    let s = state.clone();
    let activation = deadline
        .blocking(move || {
            one_change_at_a_time(|| {
                let a = s.change_active(id.as_deref())?;
                s.reload();
                Ok(a)
            })
        })
        .await?;
    let serving = state.current().map(|s| s.plan.version().to_string());
    Ok(Json(ActivationReply { active: activation.plan_id, action: activation.action, at: activation.at, serving }))
}

/// Activates a version; an id not of the store's form (`..%2F..%2Fx`) is
/// answered like an absent version (404 `unknown_plan`), before any file is read.
pub(crate) async fn activate_plan(State(state): State<AppState>, deadline: Deadline, PathId(id): PathId) -> Result<Json<ActivationReply>, ApiError> {
    check_plan_id(&id)?;
    change_plan(state, deadline, Some(id)).await
}

pub(crate) async fn rollback_plan(State(state): State<AppState>, deadline: Deadline) -> Result<Json<ActivationReply>, ApiError> {
    change_plan(state, deadline, None).await
}
