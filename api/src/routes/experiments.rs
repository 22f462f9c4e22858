//! Routes for people who run experiments on plans: start a canary, shadow or
//! holdout, change its share, stop it, list them, and read one's report.
//! A change is an event of the live log (see [`crate::experiments`]): durable
//! when answered, applied by every replica in the same order.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::errors::{ApiError, JsonBody};
use crate::experiments::{Experiment, ExperimentChange, ExperimentReport, ExperimentStart, ShareChange};
use crate::routes::extract::PathId;
use crate::state::AppState;

/// Body of `GET /v1/experiments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentList {
    /// Every experiment, running or stopped, by id.
    pub experiments: Vec<Experiment>,
}

/// Applies a change off the async threads (its commit waits for the disk).
async fn change(state: AppState, change: ExperimentChange) -> Result<(bool, Experiment), ApiError> {
    tokio::task::spawn_blocking(move || state.change_experiment(change)).await.map_err(ApiError::internal)?
}

pub(crate) async fn start_experiment(State(state): State<AppState>, body: JsonBody<ExperimentStart>) -> Result<Response, ApiError> {
    let Json(start) = body?;
    let (new, experiment) = change(state, ExperimentChange::Start(start)).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(experiment)).into_response())
}

pub(crate) async fn set_share(State(state): State<AppState>, PathId(id): PathId, body: JsonBody<ShareChange>) -> Result<Response, ApiError> {
    let Json(ShareChange { share }) = body?;
    let (_, experiment) = change(state, ExperimentChange::Share { experiment_id: id, share }).await?;
    Ok(Json(experiment).into_response())
}

pub(crate) async fn stop_experiment(State(state): State<AppState>, PathId(id): PathId) -> Result<Response, ApiError> {
    let (_, experiment) = change(state, ExperimentChange::Stop { experiment_id: id }).await?;
    Ok(Json(experiment).into_response())
}

pub(crate) async fn list_experiments(State(state): State<AppState>) -> Json<ExperimentList> {
    Json(ExperimentList { experiments: state.experiments().all().cloned().collect() })
}

pub(crate) async fn experiment_report(State(state): State<AppState>, PathId(id): PathId) -> Result<Json<ExperimentReport>, ApiError> {
    let report = tokio::task::spawn_blocking(move || state.experiment_report(&id)).await.map_err(ApiError::internal)??;
    Ok(Json(report))
}
