//! The decision service of allot (HTTP, axum): which offers a customer may see
//! now, what fulfilment should pick first, and control of the served plan.
//!
//! Routes, roles and their documentation come from one table, [`ROUTES`]
//! (`routes/mod.rs`): the router (`router.rs`), the key check, the per-route
//! metrics and `/openapi.json` (`openapi.rs`, schemas derived from the body
//! types) are all built from it. Handlers live in `routes/`, one file per
//! audience; the state they share in `state.rs`; errors in `errors.rs`;
//! starting and stopping in `server.rs`. Logs go through `tracing`.
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
//! one a hard rule excluded, one worth nothing, `not_selected:no_value`, nor
//! a custom offer the plan left closed), only with consent and without suppression, only
//! while live stock above safety stock covers one acceptance of every SKU in the
//! zone, ranked by expected value, up to the contact cap; flagged
//! `"fallback": true` with a `fallback_reason`. A customer no stored version
//! knows is 404; a known customer never gets a 5xx.
//!
//! **Live state** ([`live`]): events, the audit, plan activations and job
//! records are kept in a database, SQLite (`live.db` in the store) or
//! PostgreSQL with `--database`, one schema and one code path for both.
//!
//! **Audit**: every decision served is recorded in the live-state database;
//! `GET /v1/customers/{id}/decisions` returns them (data-subject access).
//!
//! Errors are JSON with a stable shape: `{"error": {"code", "message"}}`.
//!
//! Invariant: nothing here solves a plan. A version is indexed once and swapped
//! in whole behind an `Arc`; a request holds one snapshot from start to end.

pub mod audit;
pub mod contacts;
pub mod decide;
pub mod drift;
pub mod errors;
pub mod events;
pub mod experiments;
pub mod index;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod outcomes;
pub mod openapi;
pub mod router;
pub mod routes;
pub mod security;
pub mod server;
pub mod shared;
pub mod state;

pub use decide::{CustomerOverride, Decision, Exclusion, OfferDecision, LIVE_STATE_STALE};
pub use errors::{ApiError, ErrorBody, ErrorDetail, ServeError};
pub use experiments::{ExperimentKind, ExperimentReport};
pub use outcomes::{OutcomeEvent, OutcomeKind};
pub use events::{Applied, AuditLog, AuditRecord, ConsentEvent, EventLog, InventoryEvent, InventoryKind, LoggedEvent, MAX_EVENT_QTY};
pub use live::{ActivationError, LiveDb, LiveError};
pub use index::{LiveSupply, PlanIndex};
pub use jobs::{JobSolver, JobStatus, PlanJob, PlanJobs};
pub use metrics::{AuditCounts, HttpMetrics, Metrics};
pub use openapi::openapi;
pub use router::{router, App, MAX_URI_BYTES, REQUEST_TIMEOUT};
pub use routes::decisions::{DEFAULT_LIMIT, MAX_BATCH, MAX_CHANNEL, MAX_LIMIT};
pub use routes::{Reply, ReplyBody, RouteSpec, MAX_BODY_BYTES, MAX_PICK_BODY_BYTES, ROUTES};
pub use security::{Access, ApiKey, ApiKeys, Role};
pub use server::{serve, serve_connections, serve_trivial, ConnectionLimits, JsonErrorIo};
pub use shared::SharedLive;
pub use state::{AppState, ServiceConfig, ServiceState, DEFAULT_EVENT_WINDOW, DEFAULT_MAX_LIVE_SILENCE, DEFAULT_MAX_PLAN_AGE};
