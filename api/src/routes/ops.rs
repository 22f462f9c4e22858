//! Routes for operators and orchestrators: liveness, readiness, metrics and
//! the OpenAPI document.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::decide::LIVE_STATE_STALE;
use crate::errors::ApiError;
use crate::metrics::HttpMetrics;
use crate::state::{AppState, Source};

/// Body of `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: &'static str,
}

/// Body of `GET /readyz` when an active plan is loaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
    /// The plan version served.
    pub plan_version: String,
    /// Customers in it.
    pub customers: usize,
    /// Why decisions come from the fallback anyway (`plan_stale`), or null. A
    /// replica whose live state is stale (`live_state_stale`) answers 503 instead.
    pub fallback: Option<&'static str>,
    /// Inventory events naming a warehouse and SKU the plan does not stock.
    pub unmatched_inventory_events: usize,
    /// What an operator should look at while the service stays ready: each
    /// offer whose live acceptance drifts from the plan's uptake
    /// (`acceptance_drift: ...`), each zone × SKU whose live demand drifts
    /// from the demand plan (`demand_drift: ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The OpenAPI document, serialized once when the router is built (it is
/// generated from the route table, which does not change while serving).
#[derive(Debug, Clone)]
pub struct OpenApiJson(pub Bytes);

pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if let Some(silence) = state.live_silence() {
        let message = format!(
            "no contact with the shared database for {} ms (bound {} ms): decisions come from the fallback, with no offers, until it is back",
            silence.as_millis(),
            state.config.max_live_silence.as_millis()
        );
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, LIVE_STATE_STALE, message));
    }
    match state.current() {
        Some(s) if s.source == Source::Active => Ok(Json(Ready {
            status: "ready",
            plan_version: s.plan.version().to_string(),
            customers: s.plan.customers(),
            fallback: state.fallback_reason(&s),
            unmatched_inventory_events: s.supply.unmatched,
            warnings: state.drift_warnings(),
        })),
        _ => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_active_plan", "no active plan is loaded; decisions come from the fallback")),
    }
}

pub(crate) async fn metrics_text(State(state): State<AppState>, Extension(http): Extension<Arc<HttpMetrics>>) -> Response {
    let mut out = String::new();
    http.render(&mut out);
    let snapshot = state.current();
    let plan = snapshot.as_ref().map(|s| (s.plan.version().to_string(), s.plan.created_at(), s.plan.approx_bytes(), s.plan.customers()));
    state.metrics.render(&mut out, plan, crate::metrics::AuditCounts { dropped: state.audit.dropped(), pending: state.audit.pending() });
    if let Some(s) = &snapshot {
        crate::metrics::render_drift(&mut out, &s.drift.offers(&s.plan, &state.config.drift), s.drift.calibration(), &s.demand.cells(&state.config.drift));
    }
    crate::metrics::render_fulfilment(&mut out, &state.events().fulfilment());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

pub(crate) async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.0).into_response()
}
