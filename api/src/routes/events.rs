//! Routes for live events: inventory movements from fulfilment, consent and
//! suppression changes from the channels. An event is durable before it is
//! acknowledged, and idempotent by its id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::errors::{ApiError, JsonBody};
use crate::events::{Applied, ConsentEvent, EventLog, InventoryEvent};
use crate::shared;
use crate::state::{write, AppState, ServiceState};

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

pub(crate) async fn inventory_event(State(state): State<AppState>, body: JsonBody<InventoryEvent>) -> Result<Response, ApiError> {
    let Json(event) = body?;
    event.validate().map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", m))?;
    record_event(state, event.event_id.clone(), false, move |s, events| {
        let applied = events.record_inventory(event)?;
        if applied == Applied::New {
            if let Some(current) = s.current() {
                s.swap(events, current.plan.clone(), current.source);
            }
        }
        Ok(applied)
    })
    .await
}

pub(crate) async fn consent_event(State(state): State<AppState>, body: JsonBody<ConsentEvent>) -> Result<Response, ApiError> {
    let Json(event) = body?;
    if event.event_id.trim().is_empty() || event.customer_id.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", "event_id and customer_id must not be empty"));
    }
    if event.consent.is_none() && event.suppressed.is_none() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", "a consent event sets consent, suppressed, or both"));
    }
    record_event(state, event.event_id.clone(), true, move |s, events| {
        let customer = event.customer_id.clone();
        let applied = events.record_consent(event)?;
        if let Some(o) = events.customer_overrides().get(&customer) {
            write(&s.customers).insert(customer, *o);
        }
        Ok(applied)
    })
    .await
}

/// Records an event under the writer lock, off the async threads (the append
/// is fsynced), counts it and acknowledges it: 202 when new, 200 for a repeat.
async fn record_event(
    state: AppState,
    id: String,
    wait_for_replicas: bool,
    record: impl FnOnce(&ServiceState, &mut EventLog) -> std::io::Result<Applied> + Send + 'static,
) -> Result<Response, ApiError> {
    let s = state.clone();
    let (applied, pending) = tokio::task::spawn_blocking(move || -> std::io::Result<(Applied, Option<Vec<String>>)> {
        let (applied, seq) = {
            let mut events = s.events();
            let applied = record(&s, &mut events)?;
            if events.shared().is_some() {
                // Other replicas' events were folded with ours.
                s.refresh_live(&events);
            }
            (applied, events.applied_seq())
        };
        s.metrics.count_event(applied == Applied::New);
        // Consent is in force on every live replica before it is acknowledged.
        let pending = match &s.shared {
            Some(db) if wait_for_replicas => Some(db.wait_applied(seq, shared::CONSENT_WAIT)?),
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
    };
    Ok((status, Json(EventAck { event_id: id, recorded: true, duplicate, replicas_pending: pending })).into_response())
}
