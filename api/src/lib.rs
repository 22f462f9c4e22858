//! The decision service of allot (HTTP, axum): which offers a customer may see
//! now, what fulfilment should pick first, and control of the served plan.
//!
//! Routes, roles and their documentation come from one table, [`ROUTES`]: the
//! router, the key check and `/openapi.json` are all built from it.
//!
//! **Live rules** (see [`index::LiveSupply`]): inventory events since the plan
//! was saved are folded into its stock; an offer stays eligible while every SKU
//! it needs is still promisable to the customer's tier (tier protection) and its
//! tier-weighted margin covers the live bid prices of those units (bid-price
//! control). Consent and suppression events apply on the very next request.
//!
//! **Fallback**: with no active plan (the newest saved version's customers and
//! offers are used), a plan older than `max_plan_age`, or a store error while
//! loading, decisions come from a rule: the customer's candidate offers (never
//! one a hard rule excluded), only with consent and without suppression, only
//! while live stock above safety stock covers one acceptance of every SKU in the
//! zone, ranked by expected value, up to the contact cap; flagged
//! `"fallback": true` with a `fallback_reason`. A customer no stored version
//! knows is 404; a known customer never gets a 5xx.
//!
//! **Audit**: every decision served is appended to `audit.jsonl` in the store;
//! `GET /v1/customers/{id}/decisions` returns them (data-subject access).
//!
//! Errors are JSON with a stable shape: `{"error": {"code", "message"}}`.
//!
//! Invariant: nothing here solves a plan. A version is indexed once and swapped
//! in whole behind an `Arc`; a request holds one snapshot from start to end.

pub mod decide;
pub mod events;
pub mod index;
pub mod jobs;
pub mod metrics;
pub mod security;
pub mod shared;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use allot_scenarios::{PlanStore, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use thiserror::Error;

pub use decide::{CustomerOverride, Decision, Exclusion, OfferDecision};
pub use events::{Applied, AuditLog, AuditRecord, ConsentEvent, EventLog, InventoryEvent, InventoryKind};
pub use index::{LiveSupply, PlanIndex};
pub use jobs::{JobSolver, JobStatus, PlanJob, PlanJobs};
pub use metrics::Metrics;
pub use security::{Access, ApiKey, ApiKeys, Role};
pub use shared::SharedLive;

/// Most customers in one batch request.
pub const MAX_BATCH: usize = 1000;
/// Offers a customer may see, ranked, unless the request asks for fewer.
pub const DEFAULT_LIMIT: usize = 10;
/// Largest request body accepted (a full batch of long ids fits easily).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest pick-plan request (a backlog of tens of thousands of order lines).
pub const MAX_PICK_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Longest a request may run before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default age after which a plan is no longer trusted and the fallback answers.
pub const DEFAULT_MAX_PLAN_AGE: Duration = Duration::from_secs(48 * 3600);

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The plan store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event or audit log could not be opened, or a thread not started.
    #[error("opening {what}: {source}")]
    Log {
        /// Which log.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The API key file is unusable.
    #[error(transparent)]
    Keys(#[from] security::KeyFileError),
    /// The shared live state (PostgreSQL) could not be reached or read.
    #[error("the shared live state: {0}")]
    Database(#[from] shared::SharedError),
    /// The address could not be bound or the server failed.
    #[error("server on {addr}: {source}")]
    Io {
        /// The listening address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Accepted keys.
    pub keys: ApiKeys,
    /// A plan older than this is answered by the fallback.
    pub max_plan_age: Duration,
    /// `POST /v1/plans` plans only scenarios inside this directory.
    pub scenario_root: PathBuf,
}

/// Why the served snapshot is not the active plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Active,
    NoActivePlan,
    StoreError,
}

/// A plan version with its live supply: what one request reads.
#[derive(Debug)]
struct Snapshot {
    plan: Arc<PlanIndex>,
    supply: LiveSupply,
    source: Source,
}

/// Shared state of the service.
#[derive(Debug)]
pub struct ServiceState {
    store: PlanStore,
    config: ServiceConfig,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Writers (events, plan swaps) take this first, so a swap never misses an event.
    events: Mutex<EventLog>,
    customers: RwLock<HashMap<String, CustomerOverride>>,
    audit: AuditLog,
    metrics: Metrics,
    last_store_error: RwLock<Option<String>>,
    jobs: PlanJobs,
    /// The live state shared with other replicas (`--database`), if any.
    shared: Option<Arc<SharedLive>>,
    /// Sequence number of the shared activation last loaded.
    plan_seq: std::sync::atomic::AtomicI64,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl ServiceState {
    /// Opens the store, replays the event log and loads the plan to serve.
    pub fn open(store_dir: impl Into<PathBuf>, config: ServiceConfig) -> Result<Self, ServeError> {
        let store = PlanStore::open(store_dir)?;
        let events = EventLog::open(store.root()).map_err(|source| ServeError::Log { what: "the event log", source })?;
        let audit = AuditLog::open(store.root()).map_err(|source| ServeError::Log { what: "the audit log", source })?;
        Self::assemble(store, config, events, audit, None)
    }

    /// Opens the store for plan files, with events, consent, activations and
    /// the audit in PostgreSQL, shared with the other replicas (see [`shared`]).
    pub fn open_shared(store_dir: impl Into<PathBuf>, config: ServiceConfig, shared: Arc<SharedLive>) -> Result<Self, ServeError> {
        let store = PlanStore::open(store_dir)?;
        let events = EventLog::open_shared(shared.clone())?;
        let audit = AuditLog::open_shared(shared.clone()).map_err(|source| ServeError::Log { what: "the shared audit log", source })?;
        // A database with no activation yet starts from the store's active plan.
        if shared.active_plan()?.is_none() {
            if let Some(id) = store.active()? {
                shared.activate(&id, "activate")?;
            }
        }
        Self::assemble(store, config, events, audit, Some(shared))
    }

    fn assemble(store: PlanStore, config: ServiceConfig, events: EventLog, audit: AuditLog, shared: Option<Arc<SharedLive>>) -> Result<Self, ServeError> {
        let state = ServiceState {
            customers: RwLock::new(events.customer_overrides().clone()),
            events: Mutex::new(events),
            store,
            config,
            snapshot: RwLock::new(None),
            audit,
            metrics: Metrics::new(ROUTES.len()),
            last_store_error: RwLock::new(None),
            jobs: PlanJobs::start().map_err(|source| ServeError::Log { what: "the planning job runner", source })?,
            shared,
            plan_seq: std::sync::atomic::AtomicI64::new(0),
        };
        state.reload();
        Ok(state)
    }

    /// The active plan version with its activation's sequence number: the
    /// newest shared activation, or the store's (sequence 0).
    fn active_id(&self) -> Result<Option<(i64, String)>, String> {
        match &self.shared {
            Some(db) => db.active_plan().map_err(|e| e.to_string()),
            None => self.store.active().map(|id| id.map(|id| (0, id))).map_err(|e| e.to_string()),
        }
    }

    /// Makes `id` the active plan (`None`: the one before the current, a
    /// rollback), for every replica when the state is shared.
    fn change_active(&self, id: Option<&str>) -> Result<allot_scenarios::store::Activation, ApiError> {
        Ok(match &self.shared {
            Some(db) => activate_shared(&self.store, db, id)?,
            None => match id {
                Some(id) => self.store.activate(id)?,
                None => self.store.rollback()?,
            },
        })
    }

    /// Applies what other replicas recorded since the last look: their events
    /// (consent and stock), and a new activation (a reload). The shared mode's
    /// background loop calls it on every notification and every poll.
    pub fn sync_shared(&self) -> Result<(), shared::SharedError> {
        let Some(db) = &self.shared else { return Ok(()) };
        {
            let mut events = self.events();
            if events.catch_up()? > 0 {
                self.refresh_live(&events);
            }
            db.heartbeat(events.applied_seq())?;
        }
        let active = db.active_plan()?;
        if active.is_some_and(|(seq, _)| seq != self.plan_seq.load(std::sync::atomic::Ordering::Relaxed)) {
            self.reload();
        }
        Ok(())
    }

    /// Rebuilds the live overrides and supply from the folded events.
    fn refresh_live(&self, events: &EventLog) {
        *write(&self.customers) = events.customer_overrides().clone();
        if let Some(current) = self.current() {
            self.swap(events, current.plan.clone(), current.source);
        }
    }

    fn events(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the active plan (or, failing that, the newest loadable version for
    /// the fallback) and swaps it in; keeps the current one if nothing loads.
    pub fn reload(&self) {
        let (loaded, error) = match self.active_id() {
            Ok(Some((seq, id))) => {
                // Loaded or not, this activation has been seen: no reload per poll.
                self.plan_seq.store(seq, std::sync::atomic::Ordering::Relaxed);
                match PlanIndex::load(&self.store, &id) {
                    Ok(plan) => (Some((plan, Source::Active)), None),
                    Err(e) => (self.newest_loadable(Some(&id)).map(|p| (p, Source::StoreError)), Some(e.to_string())),
                }
            }
            Ok(None) => (self.newest_loadable(None).map(|p| (p, Source::NoActivePlan)), None),
            Err(e) => (self.newest_loadable(None).map(|p| (p, Source::StoreError)), Some(e.to_string())),
        };
        if let Some(e) = &error {
            eprintln!("allot serve: store error, answering from the fallback: {e}");
        }
        *write(&self.last_store_error) = error.clone();
        let events = self.events();
        match loaded {
            Some((plan, source)) => self.swap(&events, Arc::new(plan), source),
            None if error.is_some() => {
                // Keep serving what we had, but only through the fallback.
                let current = read(&self.snapshot).clone();
                if let Some(s) = current {
                    self.swap(&events, s.plan.clone(), Source::StoreError);
                }
            }
            None => *write(&self.snapshot) = None,
        }
    }

    fn newest_loadable(&self, skip: Option<&str>) -> Option<PlanIndex> {
        let ids = self.store.ids().ok()?;
        ids.iter().rev().filter(|id| Some(id.as_str()) != skip).find_map(|id| PlanIndex::load(&self.store, id).ok())
    }

    fn swap(&self, events: &EventLog, plan: Arc<PlanIndex>, source: Source) {
        let supply = LiveSupply::compute(&plan, events.moves_since(plan.created_at()));
        *write(&self.snapshot) = Some(Arc::new(Snapshot { plan, supply, source }));
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        read(&self.snapshot).clone()
    }

    /// The plan being served from, if any.
    pub fn plan(&self) -> Option<Arc<PlanIndex>> {
        self.current().map(|s| s.plan.clone())
    }

    /// Whether the served plan is the active one and fresh enough to trust.
    fn fallback_reason(&self, s: &Snapshot) -> Option<&'static str> {
        match s.source {
            Source::NoActivePlan => Some("no_active_plan"),
            Source::StoreError => Some("store_error"),
            Source::Active => {
                let age = chrono::Utc::now().signed_duration_since(s.plan.created_at()).to_std().unwrap_or_default();
                (age > self.config.max_plan_age).then_some("plan_stale")
            }
        }
    }

    /// The decision for one customer as JSON, recorded in the audit (serialized
    /// once for both); `None` when no loaded plan knows the customer.
    pub fn decide_json(&self, customer_id: &str, limit: usize, channel: Option<&str>) -> Option<Vec<u8>> {
        let d = self.decision(customer_id, limit, channel)?;
        let mut json = Vec::with_capacity(1024);
        serde_json::to_writer(&mut json, &d).ok()?;
        self.audit.record_json(&json);
        Some(json)
    }

    fn decision(&self, customer_id: &str, limit: usize, channel: Option<&str>) -> Option<Decision> {
        let s = self.current()?;
        let &c = s.plan.customer_ix.get(customer_id)?;
        let customer = read(&self.customers).get(customer_id).copied().unwrap_or_default();
        let fallback = self.fallback_reason(&s);
        let ask = decide::Ask { limit, channel, customer, fallback };
        let d = decide::decide(&s.plan, &s.supply, customer_id, c, &ask);
        self.metrics.count_decision(d.fallback);
        Some(d)
    }
}

fn json_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Why a shared activation failed.
#[derive(Debug, Error)]
pub enum ActivationError {
    /// The version is not in the store, or there is nothing to roll back to.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database refused.
    #[error(transparent)]
    Database(#[from] shared::SharedError),
}

impl From<ActivationError> for ApiError {
    fn from(e: ActivationError) -> Self {
        match e {
            ActivationError::Store(e) => e.into(),
            ActivationError::Database(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_error", e.to_string()),
        }
    }
}

/// Makes `id` (`None`: the version active before the current one) the active
/// plan of every replica sharing `db`; the version must be in `store`. For the
/// service's routes and for `allot plans activate --database`.
pub fn activate_shared(store: &PlanStore, db: &SharedLive, id: Option<&str>) -> Result<allot_scenarios::store::Activation, ActivationError> {
    let (version, action) = match id {
        Some(id) => {
            store.manifest(id)?;
            (id.to_string(), "activate")
        }
        None => (db.previous_plan()?.ok_or(StoreError::NothingToRollBack("no earlier activation in the database"))?, "rollback"),
    };
    db.activate(&version, action)?;
    Ok(allot_scenarios::store::Activation { plan_id: version, at: chrono::Utc::now(), action: action.to_string() })
}

/// A JSON error with a stable shape and an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": { "code": self.code, "message": self.message } }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownPlan(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_plan", e.to_string()),
            StoreError::NothingToRollBack(_) => ApiError::new(StatusCode::CONFLICT, "nothing_to_roll_back", e.to_string()),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "payload_too_large" } else { "bad_request" };
        ApiError::new(e.status(), code, e.body_text())
    }
}

type AppState = Arc<ServiceState>;
type Body2<T> = Result<Json<T>, JsonRejection>;

/// One route: method, path, who may call it, what it does. The router, the key
/// check and the OpenAPI document are all built from [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: &'static str,
    /// Path, with `{param}` placeholders.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// Name of the request body's type, if it takes one.
    pub body: Option<&'static str>,
    /// Largest body accepted (413 above it).
    pub max_body: usize,
    handler: fn() -> MethodRouter<AppState>,
}

const DECISION: &[Role] = &[Role::Decision];
const FULFILMENT: &[Role] = &[Role::Fulfilment];
const PLANNER: &[Role] = &[Role::Planner];
const ADMIN: &[Role] = &[];

/// Every route of the service.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec { method: "GET", path: "/healthz", access: Access::Public, summary: "Liveness: the process answers.", body: None, max_body: MAX_BODY_BYTES, handler: || get(healthz) },
    RouteSpec { method: "GET", path: "/readyz", access: Access::Public, summary: "Readiness: an active plan is loaded (503 otherwise).", body: None, max_body: MAX_BODY_BYTES, handler: || get(readyz) },
    RouteSpec { method: "GET", path: "/metrics", access: Access::AnyKey, summary: "Prometheus metrics.", body: None, max_body: MAX_BODY_BYTES, handler: || get(metrics_text) },
    RouteSpec { method: "GET", path: "/openapi.json", access: Access::AnyKey, summary: "This document.", body: None, max_body: MAX_BODY_BYTES, handler: || get(openapi_json) },
    RouteSpec {
        method: "GET",
        path: "/v1/customers/{id}/offers",
        access: Access::Roles(DECISION),
        summary: "Ranked eligible offers of a customer now (query: limit, channel), with reasons for excluded offers.",
        body: None, max_body: MAX_BODY_BYTES,
        handler: || get(customer_offers),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/eligibility:batch",
        access: Access::Roles(DECISION),
        summary: "Decisions for up to 1000 customers: {\"customer_ids\": [...], \"limit\"?, \"channel\"?}.",
        body: Some("BatchRequest"), max_body: MAX_BODY_BYTES,
        handler: || post(eligibility_batch),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/customers/{id}/decisions",
        access: Access::Roles(ADMIN),
        summary: "Every decision served to a customer, with reasons and plan version (data-subject access).",
        body: None, max_body: MAX_BODY_BYTES,
        handler: || get(customer_decisions),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/events/inventory",
        access: Access::Roles(FULFILMENT),
        summary: "An order, receipt or adjustment; idempotent by event_id; durable when acknowledged.",
        body: Some("InventoryEvent"), max_body: MAX_BODY_BYTES,
        handler: || post(inventory_event),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/events/consent",
        access: Access::Roles(DECISION),
        summary: "Consent or suppression change of a customer; applies from the next request.",
        body: Some("ConsentEvent"), max_body: MAX_BODY_BYTES,
        handler: || post(consent_event),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/warehouses/{id}/pick-priorities",
        access: Access::Roles(FULFILMENT),
        summary: "The plan's pick priorities at a warehouse, capped by live stock.",
        body: None, max_body: MAX_BODY_BYTES,
        handler: || get(pick_priorities),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/warehouses/{id}/pick-plan",
        access: Access::Roles(FULFILMENT),
        summary: "Wave assignment and pick order for a backlog of orders, against live stock (exact MIP when small, greedy with a bound when large).",
        body: Some("PickPlanRequest"),
        max_body: MAX_PICK_BODY_BYTES,
        handler: || post(pick_plan),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/plans",
        access: Access::Roles(PLANNER),
        summary: "Plan versions, the active one, the one served, and planning jobs.",
        body: None,
        max_body: MAX_BODY_BYTES,
        handler: || get(list_plans),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/plans",
        access: Access::Roles(PLANNER),
        summary: "Start planning a scenario (inside the server's scenario root) in the background; returns a job to poll.",
        body: Some("PlanJobRequest"),
        max_body: MAX_BODY_BYTES,
        handler: || post(start_plan_job),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/jobs/{id}",
        access: Access::Roles(PLANNER),
        summary: "A planning job: queued, running, succeeded (with its plan version) or failed (with why).",
        body: None,
        max_body: MAX_BODY_BYTES,
        handler: || get(plan_job),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/plans/{id}/activate",
        access: Access::Roles(PLANNER),
        summary: "Make a plan version active and serve it (atomic swap).",
        body: None, max_body: MAX_BODY_BYTES,
        handler: || post(activate_plan),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/plans/rollback",
        access: Access::Roles(PLANNER),
        summary: "Re-activate the plan active before the current one and serve it.",
        body: None, max_body: MAX_BODY_BYTES,
        handler: || post(rollback_plan),
    },
];

fn route_index(method: &Method, path: &str) -> Option<usize> {
    ROUTES.iter().position(|r| r.path == path && r.method == method.as_str())
}

/// The service's router over shared state, with keys, metrics, limits and
/// JSON errors applied.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for spec in ROUTES {
        router = router.route(spec.path, (spec.handler)().layer(axum::extract::DefaultBodyLimit::max(spec.max_body)));
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorize_and_measure))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method") })
        .with_state(state)
        // The outer limit is the largest of any route; each route has its own (above).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_PICK_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(axum::middleware::map_response(json_errors))
}

/// Gives errors produced outside the handlers (body limit, timeout) the same
/// JSON shape as ours.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    ApiError::new(status, code, status.canonical_reason().unwrap_or("error")).into_response()
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

async fn authorize_and_measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let matched = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let Some(route) = matched.and_then(|path| route_index(request.method(), path)) else { return next.run(request).await };
    let path = ROUTES[route].path;
    let access = ROUTES[route].access;
    if access != Access::Public {
        let role = presented_key(request.headers()).and_then(|k| state.config.keys.role_of(k));
        let denied = match role {
            None => Some(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required (Authorization: Bearer <key> or x-api-key)")),
            Some(role) if !access.allows(role) => {
                Some(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("the {role:?} role may not call {} {path}", ROUTES[route].method).to_lowercase()))
            }
            Some(_) => None,
        };
        if let Some(e) = denied {
            let response = e.into_response();
            state.metrics.observe(route, response.status().as_u16(), started.elapsed());
            return response;
        }
    }
    let response = next.run(request).await;
    state.metrics.observe(route, response.status().as_u16(), started.elapsed());
    response
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.current() {
        Some(s) if s.source == Source::Active => {
            Ok(Json(json!({
            "status": "ready",
            "plan_version": s.plan.version(),
            "customers": s.plan.customers(),
            "fallback": state.fallback_reason(&s),
            "unmatched_inventory_events": s.supply.unmatched,
        })))
        }
        _ => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_active_plan", "no active plan is loaded; decisions come from the fallback")),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics(&state)).into_response()
}

// A plain fn, not async: an async handler that reads ROUTES would make the
// const's type depend on itself.
fn render_metrics(state: &ServiceState) -> String {
    let snapshot = state.current();
    let plan = snapshot.as_ref().map(|s| (s.plan.version().to_string(), s.plan.created_at(), s.plan.approx_bytes(), s.plan.customers()));
    state.metrics.render(ROUTES, plan)
}

async fn openapi_json() -> Json<Value> {
    Json(openapi())
}

/// The OpenAPI 3.1 document, generated from [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": { "description": "OK" },
                "default": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        match r.access {
            Access::Public => op["security"] = json!([]),
            Access::AnyKey => op["x-roles"] = json!(["any"]),
            Access::Roles(roles) => {
                let mut names: Vec<String> = roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
                names.push("admin".to_string());
                op["x-roles"] = json!(names);
            }
        }
        if let Some(body) = r.body {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{body}") } } } });
        }
        paths.entry(r.path.to_string()).or_insert_with(|| json!({}))[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "allot decision service", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "BatchRequest": { "type": "object", "required": ["customer_ids"], "properties": { "customer_ids": { "type": "array", "maxItems": MAX_BATCH, "items": { "type": "string" } }, "limit": { "type": "integer", "minimum": 0 }, "channel": { "type": "string" } } },
                "InventoryEvent": { "type": "object", "required": ["event_id", "kind", "warehouse_id", "sku", "qty"], "properties": { "event_id": { "type": "string" }, "kind": { "enum": ["order", "receipt", "adjustment"] }, "warehouse_id": { "type": "string" }, "sku": { "type": "string" }, "qty": { "type": "number" }, "tier": { "type": "string" } } },
                "PickPlanRequest": { "type": "object", "required": ["orders", "waves"], "properties": {
                    "orders": { "type": "array", "items": { "type": "object", "required": ["order_id", "tier", "promised_by", "lines"], "properties": { "order_id": { "type": "string" }, "tier": { "type": "string" }, "promised_by": { "type": "string", "format": "date-time" }, "lines": { "type": "array", "items": { "type": "object", "required": ["sku", "qty"], "properties": { "sku": { "type": "string" }, "qty": { "type": "number", "exclusiveMinimum": 0 } } } } } } },
                    "waves": { "type": "array", "minItems": 1, "items": { "type": "object", "required": ["wave_id", "ends_at", "capacity"], "properties": { "wave_id": { "type": "string" }, "ends_at": { "type": "string", "format": "date-time" }, "capacity": { "type": "number", "minimum": 0 } } } },
                    "late_value": { "type": "number", "minimum": 0, "maximum": 1 } } },
                "PlanJobRequest": { "type": "object", "required": ["scenario"], "properties": { "scenario": { "type": "string" }, "activate": { "type": "boolean", "default": false }, "solver": { "enum": ["auto", "exact", "decomposed"], "default": "auto" } } },
                "ConsentEvent": { "type": "object", "required": ["event_id", "customer_id"], "properties": { "event_id": { "type": "string" }, "customer_id": { "type": "string" }, "consent": { "type": "boolean" }, "suppressed": { "type": "boolean" } } }
            }
        }
    })
}

/// Query of `GET /v1/customers/{id}/offers`.
#[derive(Debug, Deserialize)]
struct OffersQuery {
    limit: Option<usize>,
    channel: Option<String>,
}

fn unknown_customer(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_customer", format!("customer {id:?} is in no loaded plan"))
}

async fn customer_offers(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<OffersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    state.decide_json(&id, q.limit.unwrap_or(DEFAULT_LIMIT), q.channel.as_deref()).map(json_response).ok_or_else(|| unknown_customer(&id))
}

/// Body of `POST /v1/eligibility:batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    customer_ids: Vec<String>,
    limit: Option<usize>,
    channel: Option<String>,
}

async fn eligibility_batch(State(state): State<AppState>, body: Body2<BatchRequest>) -> Result<Response, ApiError> {
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
                let error = json!({ "customer_id": id, "error": { "code": "unknown_customer", "message": unknown_customer(id).message } });
                serde_json::to_writer(&mut out, &error).map_err(ApiError::internal)?;
            }
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(out))
}

async fn customer_decisions(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    let key = id.clone();
    let records = tokio::task::spawn_blocking(move || s.audit.decisions_of(&key)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    Ok(Json(json!({ "customer_id": id, "decisions": records })))
}

async fn inventory_event(State(state): State<AppState>, body: Body2<InventoryEvent>) -> Result<Response, ApiError> {
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

async fn consent_event(State(state): State<AppState>, body: Body2<ConsentEvent>) -> Result<Response, ApiError> {
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
    let mut body = json!({ "event_id": id, "recorded": true, "duplicate": duplicate });
    if let Some(pending) = pending {
        body["replicas_pending"] = json!(pending);
    }
    Ok((status, Json(body)).into_response())
}

async fn pick_priorities(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let s = state.current().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_plan", "no plan version is loaded"))?;
    let plan = &s.plan;
    if !plan.context.stock.iter().any(|p| p.warehouse_id == id) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_warehouse", format!("warehouse {id:?} is not in plan {}", plan.version())));
    }
    let items: Vec<Value> = plan
        .context
        .pick_priorities
        .iter()
        .filter(|p| p.warehouse_id == id)
        .map(|p| {
            let live = plan.point_ix.get(&(p.warehouse_id.clone(), p.sku.clone())).map_or(0.0, |&i| s.supply.live[i].max(0.0));
            json!({
                "rank": p.rank, "offer_id": p.offer_id, "sku": p.sku,
                "planned_units": p.units, "units": p.units.min(live), "live_stock": live,
                "short": live < p.units, "priority_score": p.priority_score
            })
        })
        .collect();
    Ok(Json(json!({ "warehouse_id": id, "plan_version": plan.version(), "fallback": state.fallback_reason(&s).is_some(), "priorities": items })))
}

/// Body of `POST /v1/warehouses/{id}/pick-plan`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickPlanRequest {
    orders: Vec<PickOrderBody>,
    waves: Vec<PickWaveBody>,
    /// Value of a late pick relative to an on-time one [default 0.5].
    late_value: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickOrderBody {
    order_id: String,
    /// The customer's tier (weights the order like the plan weights margin).
    tier: String,
    promised_by: chrono::DateTime<chrono::Utc>,
    lines: Vec<allot_optimizer::picking::PickLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickWaveBody {
    wave_id: String,
    ends_at: chrono::DateTime<chrono::Utc>,
    /// Units the wave can pick.
    capacity: f64,
}

async fn pick_plan(State(state): State<AppState>, Path(id): Path<String>, body: Body2<PickPlanRequest>) -> Result<Json<Value>, ApiError> {
    use allot_optimizer::picking::{plan_picks, PickOrder, PickProblem, PickWave, DEFAULT_LATE_VALUE};
    let Json(req) = body?;
    let s = state.current().ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_plan", "no plan version is loaded"))?;
    let plan = &s.plan;
    let stock: HashMap<String, f64> =
        plan.context.stock.iter().enumerate().filter(|(_, p)| p.warehouse_id == id).map(|(i, p)| (p.sku.clone(), s.supply.live[i].max(0.0))).collect();
    if stock.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_warehouse", format!("warehouse {id:?} is not in plan {}", plan.version())));
    }
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_pick_request", m);
    let mut orders = Vec::with_capacity(req.orders.len());
    for o in req.orders {
        let tier = plan.context.tiers.iter().find(|t| t.name == o.tier).ok_or_else(|| {
            let known: Vec<&str> = plan.context.tiers.iter().map(|t| t.name.as_str()).collect();
            invalid(format!("order {:?}: unknown tier {:?} (plan tiers: {})", o.order_id, o.tier, known.join(", ")))
        })?;
        orders.push(PickOrder { order_id: o.order_id, tier_weight: tier.weight, promised_by: o.promised_by.timestamp(), lines: o.lines });
    }
    let waves = req.waves.into_iter().map(|w| PickWave { wave_id: w.wave_id, ends_at: w.ends_at.timestamp(), capacity: w.capacity }).collect();
    let problem = PickProblem { orders, waves, stock, late_value: req.late_value.unwrap_or(DEFAULT_LATE_VALUE) };
    let picks = tokio::task::spawn_blocking(move || plan_picks(&problem)).await.map_err(ApiError::internal)?.map_err(|e| invalid(e.to_string()))?;
    Ok(Json(json!({ "warehouse_id": id, "plan_version": plan.version(), "pick_plan": picks })))
}

/// Body of `POST /v1/plans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanJobRequest {
    /// Scenario directory, relative to the scenario root (or absolute inside it).
    scenario: String,
    #[serde(default)]
    activate: bool,
    #[serde(default)]
    solver: JobSolver,
}

impl ServiceState {
    /// The scenario directory a job may plan: inside the configured root.
    fn scenario_dir(&self, requested: &str) -> Result<PathBuf, ApiError> {
        let root = self.config.scenario_root.canonicalize().map_err(|e| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_scenario_root", format!("scenario root {}: {e}", self.config.scenario_root.display()))
        })?;
        let dir = root.join(requested).canonicalize().map_err(|e| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scenario_not_found", format!("scenario {requested:?} under {}: {e}", root.display()))
        })?;
        if !dir.starts_with(&root) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "scenario_outside_root", format!("scenario {requested:?} is outside the scenario root {}", root.display())));
        }
        if !dir.is_dir() {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scenario_not_found", format!("{} is not a directory", dir.display())));
        }
        Ok(dir)
    }
}

async fn start_plan_job(State(state): State<AppState>, body: Body2<PlanJobRequest>) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let dir = state.scenario_dir(&req.scenario)?;
    let (s, scenario, activate) = (state.clone(), dir.clone(), req.activate);
    let work: jobs::JobWork = Box::new(move |solver| {
        let manifest = allot_scenarios::plan_scenario(&s.store, &scenario, solver, None).map_err(|e| e.to_string())?.manifest;
        if activate {
            s.change_active(Some(&manifest.id)).map_err(|e| format!("saved {} but could not activate it: {}", manifest.id, e.message))?;
            s.reload();
        }
        Ok(manifest.id)
    });
    let job = state.jobs.submit(dir, req.solver, activate, work);
    let location = format!("/v1/jobs/{}", job.job_id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job)).into_response())
}

async fn plan_job(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<PlanJob>, ApiError> {
    state.jobs.get(&id).map(Json).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_job", format!("no job {id:?} in this server's life")))
}

async fn list_plans(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    // The active plan may come from the database: a blocking call.
    let active = tokio::task::spawn_blocking(move || s.active_id())
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_error", e))?
        .map(|(_, id)| id);
    let plans = state.store.list()?;
    let serving = state.current().map(|s| s.plan.version().to_string());
    Ok(Json(json!({ "active": active, "serving": serving, "plans": plans, "jobs": state.jobs.list() })))
}

/// Runs a store change then reloads the served plan, off the async threads (an
/// index of a million customers takes seconds to build).
async fn change_plan(state: AppState, id: Option<String>) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    let activation = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let a = s.change_active(id.as_deref())?;
        s.reload();
        Ok(a)
    })
    .await
    .map_err(ApiError::internal)??;
    let serving = state.current().map(|s| s.plan.version().to_string());
    Ok(Json(json!({ "active": activation.plan_id, "action": activation.action, "at": activation.at, "serving": serving })))
}

async fn activate_plan(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    change_plan(state, Some(id)).await
}

async fn rollback_plan(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    change_plan(state, None).await
}

/// Serves the store on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(store_dir: PathBuf, addr: SocketAddr, config: ServiceConfig, database: Option<String>) -> Result<(), ServeError> {
    let state = match database {
        None => Arc::new(ServiceState::open(store_dir, config)?),
        Some(url) => {
            let replica = format!("{addr}/{}", std::process::id());
            let connect = |url: String, replica: String| SharedLive::connect(&url, &replica).map(Arc::new);
            let shared = tokio::task::spawn_blocking(move || connect(url, replica))
                .await
                .map_err(|e| ServeError::Log { what: "the database connection", source: std::io::Error::other(e.to_string()) })??;
            let state = Arc::new(tokio::task::spawn_blocking(move || ServiceState::open_shared(store_dir, config, shared)).await.map_err(|e| {
                ServeError::Log { what: "the shared state", source: std::io::Error::other(e.to_string()) }
            })??);
            start_shared_sync(&state)?;
            eprintln!("live state shared in PostgreSQL as replica {addr}/{}", std::process::id());
            state
        }
    };
    match state.current() {
        Some(s) => eprintln!(
            "serving plan {} ({} customers{}) on http://{addr}",
            s.plan.version(),
            s.plan.customers(),
            state.fallback_reason(&s).map_or(String::new(), |r| format!("; fallback: {r}"))
        ),
        None => eprintln!("no plan version in the store: /readyz answers 503 until one is activated; listening on http://{addr}"),
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Io { addr, source })?;
    let served = axum::serve(listener, router(state.clone())).with_graceful_shutdown(shutdown_signal()).await;
    // The last flush of the audit and the database connections block: they
    // close on a blocking thread, never on the async ones.
    let _ = tokio::task::spawn_blocking(move || drop(state)).await;
    served.map_err(|source| ServeError::Io { addr, source })
}

/// The shared mode's background loop: waits for a notification (or
/// [`shared::POLL_INTERVAL`]) and applies what other replicas recorded. A lost
/// connection is retried every poll interval; the replica keeps serving.
fn start_shared_sync(state: &AppState) -> Result<(), ServeError> {
    let Some(db) = state.shared.clone() else { return Ok(()) };
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("allot-shared-sync".to_string())
        .spawn(move || {
            let mut listener = None;
            while let Some(state) = weak.upgrade() {
                if listener.is_none() {
                    listener = shared::Listener::new(&db).map_err(|e| eprintln!("allot serve: cannot listen for other replicas: {e}")).ok();
                }
                if let Err(e) = state.sync_shared() {
                    eprintln!("allot serve: syncing with the other replicas: {e}");
                }
                drop(state);
                match listener.as_mut().map(|l| l.wait(shared::POLL_INTERVAL)) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        eprintln!("allot serve: notification connection lost ({e}); polling until it is back");
                        listener = None;
                        std::thread::sleep(shared::POLL_INTERVAL);
                    }
                    None => std::thread::sleep(shared::POLL_INTERVAL),
                }
            }
        })
        .map(|_| ())
        .map_err(|source| ServeError::Log { what: "the shared-state sync thread", source })
}

/// Ctrl-C or SIGTERM: in-flight requests finish, then the server stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A handler that does no work on the offers route, with no layers: the
/// baseline the load benchmark compares the real service against.
pub async fn serve_trivial(addr: SocketAddr) -> std::io::Result<()> {
    async fn offers(Path(id): Path<String>) -> Json<Value> {
        Json(json!({ "customer_id": id, "offers": [] }))
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("trivial handler on http://{addr}");
    axum::serve(listener, Router::new().route("/v1/customers/{id}/offers", get(offers))).with_graceful_shutdown(shutdown_signal()).await
}
