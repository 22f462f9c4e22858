//! Routes for the decision service (channels asking which offers a customer
//! may see) and for data-subject access to what was shown.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::decide::{CustomerOverride, Decision};
use crate::errors::{ApiError, ErrorDetail, JsonBody};
use crate::events::AuditRecord;
use crate::routes::extract::{Deadline, PathId};
use crate::state::{write, AppState};

/// Most customers in one batch request.
pub const MAX_BATCH: usize = 1000;
/// Offers a customer may see, ranked, unless the request asks for fewer.
pub const DEFAULT_LIMIT: usize = 10;
/// Most offers one decision may ask for (no contact cap comes near it).
pub const MAX_LIMIT: usize = 100;
/// Longest channel name; a channel is letters, digits and `_ . : -` (it is
/// echoed into the audit, so control characters and NULs never reach it).
pub const MAX_CHANNEL: usize = 64;

/// Query of `GET /v1/customers/{id}/offers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OffersQuery {
    /// Most offers to return [default 10].
    #[param(minimum = 0, maximum = 100)]
    #[serde(default, deserialize_with = "whole_number")]
    limit: Option<usize>,
    /// The asking channel, echoed in the decision and its audit record; when the
    /// plan's offers name channels, only that channel's offers are answered.
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    channel: Option<String>,
}

/// Body of `POST /v1/eligibility:batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// The customers, at most 1000, each a non-empty id.
    #[schema(schema_with = customer_ids_schema)]
    customer_ids: Vec<String>,
    /// Most offers per customer [default 10].
    #[schema(minimum = 0, maximum = 100)]
    #[serde(default, deserialize_with = "whole_number")]
    limit: Option<usize>,
    /// The asking channel.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    channel: Option<String>,
}

/// A count as JSON Schema's `integer` has it: any whole number, `19.0`
/// included (serde's `usize` refuses the `.0`).
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(x) if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) => Ok(Some(x as usize)),
        Some(x) => Err(serde::de::Error::custom(format!("{x}: expected a whole number >= 0"))),
    }
}

/// `customer_ids`: an array of at most [`MAX_BATCH`] non-empty strings.
fn customer_ids_schema() -> utoipa::openapi::Array {
    let id = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).min_length(Some(1));
    utoipa::openapi::ArrayBuilder::new().items(id).max_items(Some(MAX_BATCH)).build()
}

/// The limit and channel of a decision request, checked (`status` is the
/// answer when they are not: 400 for a query, 422 for a body).
fn checked_ask(limit: Option<usize>, channel: Option<&str>, status: StatusCode) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::new(status, "bad_request", format!("limit {limit}: at most {MAX_LIMIT}")));
    }
    if let Some(c) = channel {
        let ok = (1..=MAX_CHANNEL).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
        if !ok {
            return Err(ApiError::new(status, "bad_request", format!("channel {c:?}: 1 to {MAX_CHANNEL} letters, digits, '_', '.', ':' or '-'")));
        }
    }
    Ok(limit)
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

/// Body of `DELETE /v1/customers/{id}/personal-data`: what was erased.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erasure {
    /// The customer.
    pub customer_id: String,
    /// Audit records (decisions shown to them) deleted.
    pub audit_records: u64,
    /// Consent events (their personal overrides) deleted.
    pub consent_events: u64,
    /// Whether their withdrawn consent or suppression was kept, as the one
    /// fact left of them: an erasure never makes a customer reachable who
    /// asked not to be.
    pub objection_kept: bool,
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The one answer for a customer no loaded plan knows, on every route.
fn unknown_customer(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_customer", format!("customer {id:?} is in no loaded plan"))
}

/// Whether the plan served knows the customer.
fn knows(state: &AppState, id: &str) -> bool {
    state.current().is_some_and(|s| s.plan.customer_ix.contains_key(id))
}

/// A `HEAD` answer: the status `GET` would give, no body, and nothing decided
/// or recorded (nothing was shown to anyone).
fn head(state: &AppState, id: &str) -> Result<Response, ApiError> {
    if knows(state, id) {
        Ok(json_response(Vec::new()))
    } else {
        Err(unknown_customer(id))
    }
}

pub(crate) async fn customer_offers(
    State(state): State<AppState>,
    method: Method,
    PathId(id): PathId,
    query: Result<Query<OffersQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let limit = checked_ask(q.limit, q.channel.as_deref(), StatusCode::BAD_REQUEST)?;
    if method == Method::HEAD {
        return head(&state, &id);
    }
    state.decide_json(&id, limit, q.channel.as_deref()).map(json_response).ok_or_else(|| unknown_customer(&id))
}

pub(crate) async fn eligibility_batch(State(state): State<AppState>, body: JsonBody<BatchRequest>) -> Result<Response, ApiError> {
    let Json(req) = body?;
    if req.customer_ids.len() > MAX_BATCH {
        let message = format!("{} customers in one batch; at most {MAX_BATCH}", req.customer_ids.len());
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", message));
    }
    if let Some(i) = req.customer_ids.iter().position(String::is_empty) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_request", format!("customer_ids[{i}] is empty")));
    }
    let limit = checked_ask(req.limit, req.channel.as_deref(), StatusCode::UNPROCESSABLE_ENTITY)?;
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

/// A customer's decisions; 404 (the same answer as on the offers route) for a
/// customer neither the served plan nor the audit knows.
pub(crate) async fn customer_decisions(State(state): State<AppState>, method: Method, deadline: Deadline, PathId(id): PathId) -> Result<Response, ApiError> {
    if method == Method::HEAD && knows(&state, &id) {
        return head(&state, &id);
    }
    let (s, key) = (state.clone(), id.clone());
    let decisions = deadline.blocking(move || s.audit.decisions_of(&key).map_err(ApiError::internal)).await?;
    if decisions.is_empty() && !knows(&state, &id) {
        return Err(unknown_customer(&id));
    }
    if method == Method::HEAD {
        return Ok(json_response(Vec::new()));
    }
    Ok(Json(CustomerDecisions { customer_id: id, decisions }).into_response())
}

/// Right to erasure: deletes the customer's audit records, consent and
/// contact events and drops their live overrides and contacts, under the writers' lock so no consent
/// event folds in between; the erasure is itself audited without the
/// customer's id. 404 as on every route when nothing knows the customer.
pub(crate) async fn erase_personal_data(State(state): State<AppState>, deadline: Deadline, PathId(id): PathId) -> Result<Response, ApiError> {
    let (s, key) = (state.clone(), id.clone());
    let erased = deadline
        .blocking(move || {
            let mut events = s.events();
            let erased = s.audit.erase(&key).map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_error", format!("nothing erased: {e}")))?;
            events.forget_customer(&key, erased.objection);
            CustomerOverride::keep_only(&mut write(&s.customers), &key, erased.objection);
            write(&s.contacts).remove(&key);
            Ok(erased)
        })
        .await?;
    if erased.audit_records == 0 && erased.consent_events == 0 && !knows(&state, &id) {
        return Err(unknown_customer(&id));
    }
    let objection_kept = erased.objection.is_some();
    Ok(Json(Erasure { customer_id: id, audit_records: erased.audit_records, consent_events: erased.consent_events, objection_kept }).into_response())
}
