//! Routes for the decision service (channels asking which offers a customer
//! may see) and for data-subject access to what was shown.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::decide::Decision;
use crate::errors::{ApiError, ErrorDetail, JsonBody};
use crate::events::AuditRecord;
use crate::state::AppState;

/// Most customers in one batch request.
pub const MAX_BATCH: usize = 1000;
/// Offers a customer may see, ranked, unless the request asks for fewer.
pub const DEFAULT_LIMIT: usize = 10;

/// Query of `GET /v1/customers/{id}/offers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OffersQuery {
    /// Most offers to return [default 10].
    limit: Option<usize>,
    /// The asking channel, echoed in the decision and its audit record.
    channel: Option<String>,
}

/// Body of `POST /v1/eligibility:batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// The customers, at most 1000.
    #[schema(max_items = 1000)]
    customer_ids: Vec<String>,
    /// Most offers per customer [default 10].
    limit: Option<usize>,
    /// The asking channel.
    channel: Option<String>,
}

/// Body of `POST /v1/eligibility:batch`'s answer: one result per customer, in
/// request order. Written piecewise by [`eligibility_batch`] so each decision
/// is serialized once, for the audit and the reply alike; this type is its
/// shape (and the schema test holds the two together).
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// A decision, or the customer's error.
    pub results: Vec<BatchResult>,
}

/// One customer's entry in a batch answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    /// The customer's decision.
    Decision(Decision),
    /// Why there is none (an unknown customer).
    Error(BatchError),
}

/// A customer a batch could not decide for.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchError {
    /// The customer as asked.
    pub customer_id: String,
    /// Why (`unknown_customer`).
    pub error: ErrorDetail,
}

/// Body of `GET /v1/customers/{id}/decisions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDecisions {
    /// The customer.
    pub customer_id: String,
    /// Every decision served to them, oldest first.
    pub decisions: Vec<AuditRecord>,
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unknown_customer(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_customer", format!("customer {id:?} is in no loaded plan"))
}

pub(crate) async fn customer_offers(State(state): State<AppState>, Path(id): Path<String>, query: Result<Query<OffersQuery>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    state.decide_json(&id, q.limit.unwrap_or(DEFAULT_LIMIT), q.channel.as_deref()).map(json_response).ok_or_else(|| unknown_customer(&id))
}

pub(crate) async fn eligibility_batch(State(state): State<AppState>, body: JsonBody<BatchRequest>) -> Result<Response, ApiError> {
    let Json(req) = body?;
    if req.customer_ids.len() > MAX_BATCH {
        let message = format!("{} customers in one batch; at most {MAX_BATCH}", req.customer_ids.len());
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", message));
    }
    let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
    let mut out = b"{\"results\":[".to_vec();
    for (i, id) in req.customer_ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match state.decide_json(id, limit, req.channel.as_deref()) {
            Some(d) => out.extend_from_slice(&d),
            None => {
                let error = BatchResult::Error(BatchError { customer_id: id.clone(), error: unknown_customer(id).detail() });
                serde_json::to_writer(&mut out, &error).map_err(ApiError::internal)?;
            }
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(out))
}

pub(crate) async fn customer_decisions(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<CustomerDecisions>, ApiError> {
    let s = state.clone();
    let key = id.clone();
    let decisions = tokio::task::spawn_blocking(move || s.audit.decisions_of(&key)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    Ok(Json(CustomerDecisions { customer_id: id, decisions }))
}
