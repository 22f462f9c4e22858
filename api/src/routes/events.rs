//! Routes for live events: inventory movements from fulfilment, consent and
//! suppression changes and contacts made from the channels. An event is committed to the
//! live-state database before it is acknowledged, and idempotent by its id
//! within its kind: the same id and body answers the original result, the same
//! id with another body is refused (409) with the original.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use crate::errors::{ApiError, ErrorDetail, JsonBody};
use crate::events::{Applied, ConsentEvent, ContactEvent, InventoryEvent, LoggedEvent};
use crate::index::PlanIndex;
use crate::outcomes::OutcomeEvent;
use crate::shared;
use crate::state::AppState;

/// The acknowledgement of an event: 202 when new, 200 for a repeat of its id.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAck {
    /// The event's id, as sent.
    pub event_id: String,
    /// Always true: the event is durable (a repeat was already).
    pub recorded: bool,
    /// Whether the id was seen before (nothing changed).
    pub duplicate: bool,
    /// With shared live state, consent events only: replicas that had not
    /// applied the event when the wait ended (empty when all had).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas_pending: Option<Vec<String>>,
}

/// The answer to an event id recorded before with another body (409).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventConflict {
    /// `event_id_conflict` and a message naming the id.
    pub error: ErrorDetail,
    /// The event recorded first under this id, as it was posted.
    #[schema(value_type = Object)]
    pub original: serde_json::Value,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", message)
}

/// Checks an event (`check`) against the plans the service answers from:
/// valid when the active plan accepts it or, failing that, a running
/// experiment's version does (a canary's, a shadow's); else the active
/// plan's message. Why not the active plan alone: a canary's version may
/// hold customers, offers, warehouses or SKUs the active one lacks, and what
/// happens to them, a consent withdrawn above all, must be recorded, not refused.
fn check_against_served(state: &AppState, check: impl Fn(Option<&PlanIndex>) -> Result<(), String>) -> Result<(), ApiError> {
    let verdict = check(state.plan().as_deref());
    if verdict.is_err() && state.experiment_plans().iter().any(|plan| check(Some(plan)).is_ok()) {
        return Ok(());
    }
    verdict.map_err(invalid)
}

pub(crate) async fn inventory_event(State(state): State<AppState>, body: JsonBody<InventoryEvent>) -> Result<Response, ApiError> {
    let Json(event) = body?;
    check_against_served(&state, |plan| event.validate(plan))?;
    let id = event.event_id.clone();
    record_event(state, id, false, LoggedEvent::Inventory { received_at: Utc::now(), event }).await
}

pub(crate) async fn consent_event(State(state): State<AppState>, body: JsonBody<ConsentEvent>) -> Result<Response, ApiError> {
    let Json(event) = body?;
    check_against_served(&state, |plan| event.validate(plan))?;
    let id = event.event_id.clone();
    record_event(state, id, true, LoggedEvent::Consent { received_at: Utc::now(), event }).await
}

pub(crate) async fn contact_event(State(state): State<AppState>, body: JsonBody<ContactEvent>) -> Result<Response, ApiError> {
    let Json(event) = body?;
    check_against_served(&state, |plan| event.validate(plan))?;
    let id = event.event_id.clone();
    record_event(state, id, false, LoggedEvent::Contact { received_at: Utc::now(), event }).await
}

pub(crate) async fn outcome_event(State(state): State<AppState>, body: JsonBody<OutcomeEvent>) -> Result<Response, ApiError> {
    let Json(event) = body?;
    // The plan serving the customer now (a canary's for its customers) and
    // their arms, as their decisions have them: the outcome is checked
    // against that plan, valued by it and attributed to those arms.
    let serving = state.serving(&event.customer_id);
    let plan = serving.snapshot.as_ref().map(|s| &*s.plan);
    event.validate(plan).map_err(invalid)?;
    let id = event.event_id.clone();
    let plan_version = plan.map(|p| p.version().to_string());
    let value = event.resolved_value(plan);
    record_event(state, id, false, LoggedEvent::Outcome { received_at: Utc::now(), arms: serving.assignment.arms, value, plan_version, event }).await
}

/// Records an event under the writer lock, off the async threads (the commit
/// waits for the disk), applies what was folded, counts it and answers: 202
/// when new, 200 for a repeat, 409 for the id reused with another body.
async fn record_event(state: AppState, id: String, wait_for_replicas: bool, event: LoggedEvent) -> Result<Response, ApiError> {
    let s = state.clone();
    let (applied, pending) = tokio::task::spawn_blocking(move || -> std::io::Result<(Applied, Option<Vec<String>>)> {
        let (applied, seq) = {
            let mut events = s.events();
            let (applied, folded) = events.record(event)?;
            s.apply_folded(&events, &folded);
            (applied, events.applied_seq())
        };
        s.metrics.count_event(applied == Applied::New);
        // Consent is in force on every live replica before it is acknowledged.
        let pending = match &s.shared {
            Some(db) if wait_for_replicas && applied == Applied::New => Some(db.wait_applied(seq, shared::CONSENT_WAIT)?),
            _ => None,
        };
        Ok((applied, pending))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "event_log_error", format!("event {id} not recorded: {e}")))?;
    let (status, duplicate) = match applied {
        Applied::New => (StatusCode::ACCEPTED, false),
        Applied::Duplicate => (StatusCode::OK, true),
        Applied::Conflict(original) => {
            let message = format!("event_id {id:?} was recorded before with another body; the original is in `original`");
            let body = EventConflict { error: ErrorDetail { code: "event_id_conflict".to_string(), message }, original: original.posted() };
            return Ok((StatusCode::CONFLICT, Json(body)).into_response());
        }
    };
    Ok((status, Json(EventAck { event_id: id, recorded: true, duplicate, replicas_pending: pending })).into_response())
}
