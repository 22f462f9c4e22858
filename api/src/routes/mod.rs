//! The route table, [`ROUTES`]: every route's method, path, who may call it,
//! what it takes and answers, and its handler. The router, the key and role
//! check, the per-route metrics and `/openapi.json` are all built from it; the
//! handlers live in one file per audience:
//!
//! - [`decisions`]: channels asking which offers a customer may see, and
//!   data-subject access to what was shown;
//! - [`events`]: live inventory, consent, contact and outcome events;
//! - [`experiments`]: canary, shadow and holdout experiments on plans, and their reports;
//! - [`fulfilment`]: pick priorities and on-demand pick plans;
//! - [`plans`]: planners' plan versions, jobs, activation and rollback;
//! - [`ops`]: health, readiness, metrics and the OpenAPI document.

pub mod decisions;
pub mod extract;
pub mod events;
pub mod experiments;
pub mod fulfilment;
pub mod ops;
pub mod plans;

use axum::routing::{delete, get, post, MethodRouter};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use crate::decide::Decision;
use crate::errors::ErrorBody;
use crate::events::{ConsentEvent, ContactEvent, InventoryEvent};
use crate::experiments::{Experiment, ExperimentReport, ExperimentStart, ShareChange};
use crate::outcomes::OutcomeEvent;
use crate::jobs::PlanJob;
use crate::security::{Access, Role};
use crate::state::AppState;

/// Largest request body accepted (a full batch of long ids fits easily).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest pick-plan request (a backlog of tens of thousands of order lines).
pub const MAX_PICK_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Named schemas collected while the document is built (name, schema).
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// Registers a type's schema (and those it refers to) and returns a reference
/// to it: how a route names the Rust type of a body.
pub type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// The schema of `T`, derived from the type that (de)serializes the body.
pub fn schema<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
}

/// The body of one answer.
#[derive(Debug, Clone, Copy)]
pub enum ReplyBody {
    /// JSON of this type.
    Json(SchemaFn),
    /// `text/plain` (the Prometheus exposition format).
    Text,
}

/// One status a route answers, with its body.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// When it is answered.
    pub description: &'static str,
    /// What the body is.
    pub body: ReplyBody,
}

const fn ok(status: u16, description: &'static str, body: SchemaFn) -> Reply {
    Reply { status, description, body: ReplyBody::Json(body) }
}

/// An error answer: its body is always [`ErrorBody`].
pub const fn error(status: u16, description: &'static str) -> Reply {
    Reply { status, description, body: ReplyBody::Json(schema::<ErrorBody>) }
}

/// One route: method, path, who may call it, what it does, takes and answers.
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
    /// The request body's type, if it takes one.
    pub body: Option<SchemaFn>,
    /// The query parameters, from the type the handler extracts.
    pub query: Option<fn() -> Vec<Parameter>>,
    /// What it answers, besides the errors every route of its kind shares
    /// (401, 403, a rejected body: added by [`crate::openapi`]).
    pub replies: &'static [Reply],
    /// Largest body accepted (413 above it).
    pub max_body: usize,
    /// The handler with its method.
    pub(crate) handler: fn() -> MethodRouter<AppState>,
}

const DECISION: &[Role] = &[Role::Decision];
const FULFILMENT: &[Role] = &[Role::Fulfilment];
const PLANNER: &[Role] = &[Role::Planner];
const ADMIN: &[Role] = &[];

/// A free-form JSON object (the OpenAPI document itself).
fn any_object(_: &mut Schemas) -> RefOr<Schema> {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Object).into()
}

/// Every route of the service.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: "GET",
        path: "/healthz",
        access: Access::Public,
        summary: "Liveness: the process answers.",
        body: None,
        query: None,
        replies: &[ok(200, "The process answers.", schema::<ops::Health>)],
        max_body: MAX_BODY_BYTES,
        handler: || get(ops::healthz),
    },
    RouteSpec {
        method: "GET",
        path: "/readyz",
        access: Access::Public,
        summary: "Readiness: an active plan is loaded (503 otherwise).",
        body: None,
        query: None,
        replies: &[ok(200, "An active plan is loaded.", schema::<ops::Ready>), error(503, "No active plan is loaded (`no_active_plan`).")],
        max_body: MAX_BODY_BYTES,
        handler: || get(ops::readyz),
    },
    RouteSpec {
        method: "GET",
        path: "/metrics",
        access: Access::AnyKey,
        summary: "Prometheus metrics.",
        body: None,
        query: None,
        replies: &[Reply { status: 200, description: "The Prometheus text exposition format.", body: ReplyBody::Text }],
        max_body: MAX_BODY_BYTES,
        handler: || get(ops::metrics_text),
    },
    RouteSpec {
        method: "GET",
        path: "/openapi.json",
        access: Access::AnyKey,
        summary: "This document.",
        body: None,
        query: None,
        replies: &[ok(200, "The OpenAPI document.", any_object)],
        max_body: MAX_BODY_BYTES,
        handler: || get(ops::openapi_json),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/customers/{id}/offers",
        access: Access::Roles(DECISION),
        summary: "Ranked eligible offers of a customer now, with reasons for excluded offers.",
        body: None,
        query: Some(|| decisions::OffersQuery::into_params(|| Some(ParameterIn::Query))),
        replies: &[
            ok(200, "The decision (from the plan, or flagged `fallback`).", schema::<Decision>),
            error(400, "A malformed query: `limit` above 100, a `channel` not of its pattern (`bad_request`)."),
            error(404, "No loaded plan knows the customer (`unknown_customer`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || get(decisions::customer_offers),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/eligibility:batch",
        access: Access::Roles(DECISION),
        summary: "Decisions for up to 1000 customers, in request order; an unknown customer's error is reported inline.",
        body: Some(schema::<decisions::BatchRequest>),
        query: None,
        replies: &[
            ok(200, "One result per customer.", schema::<decisions::BatchResponse>),
            error(413, "More than 1000 customers (`batch_too_large`) or too large a body."),
            error(422, "The body does not have the request's shape: an unknown field, an empty customer id, `limit` above 100, a bad `channel` (`bad_request`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(decisions::eligibility_batch),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/customers/{id}/decisions",
        access: Access::Roles(ADMIN),
        summary: "Every decision served to a customer, with reasons and plan version (data-subject access).",
        body: None,
        query: None,
        replies: &[
            ok(200, "The customer's decisions, oldest first.", schema::<decisions::CustomerDecisions>),
            error(404, "Neither the served plan nor the audit knows the customer (`unknown_customer`), as on the offers route."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || get(decisions::customer_decisions),
    },
    RouteSpec {
        method: "DELETE",
        path: "/v1/customers/{id}/personal-data",
        access: Access::Roles(ADMIN),
        summary: "Right to erasure: delete a customer's audit records and consent overrides; the erasure is audited without the customer's id.",
        body: None,
        query: None,
        replies: &[
            ok(200, "Erased (counts of what was deleted; zero when there was nothing).", schema::<decisions::Erasure>),
            error(404, "Neither the served plan, the audit nor the consent events know the customer (`unknown_customer`)."),
            error(503, "The live-state database refused; nothing was erased (`database_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || delete(decisions::erase_personal_data),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/events/inventory",
        access: Access::Roles(FULFILMENT),
        summary: "An order, receipt or adjustment; idempotent by event_id; durable when acknowledged.",
        body: Some(schema::<InventoryEvent>),
        query: None,
        replies: &[
            ok(202, "Recorded and applied.", schema::<events::EventAck>),
            ok(200, "A repeat of a recorded event id with the same body; nothing changed.", schema::<events::EventAck>),
            ok(409, "The event id was recorded before with another body (`event_id_conflict`); the original is returned.", schema::<events::EventConflict>),
            error(422, "An invalid event (`invalid_event`): an empty id, warehouse or SKU, a non-finite, out-of-bounds or wrongly signed qty, a warehouse, SKU or tier neither the active plan nor a running canary's or shadow's version knows."),
            error(503, "The event could not be made durable (`event_log_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(events::inventory_event),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/events/consent",
        access: Access::Roles(DECISION),
        summary: "Consent or suppression change of a customer; applies from the next request.",
        body: Some(schema::<ConsentEvent>),
        query: None,
        replies: &[
            ok(202, "Recorded and in force (on every live replica, with shared state).", schema::<events::EventAck>),
            ok(200, "A repeat of a recorded event id with the same body; nothing changed.", schema::<events::EventAck>),
            ok(409, "The event id was recorded before with another body (`event_id_conflict`); the original is returned.", schema::<events::EventConflict>),
            error(422, "An invalid event (`invalid_event`): empty ids, neither consent nor suppressed, a customer neither the active plan nor a running canary's or shadow's version knows."),
            error(503, "The event could not be made durable (`event_log_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(events::consent_event),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/events/contact",
        access: Access::Roles(DECISION),
        summary: "A contact made (customer, offer, channel, day); joins the customer's contact history for contact policies and burns volume rules down; applies from the next request.",
        body: Some(schema::<ContactEvent>),
        query: None,
        replies: &[
            ok(202, "Recorded and in force.", schema::<events::EventAck>),
            ok(200, "A repeat of a recorded event id with the same body; nothing changed.", schema::<events::EventAck>),
            ok(409, "The event id was recorded before with another body (`event_id_conflict`); the original is returned.", schema::<events::EventConflict>),
            error(422, "An invalid event (`invalid_event`): empty ids or channel, a customer or offer neither the active plan nor a running canary's or shadow's version knows, a channel not the offer's."),
            error(503, "The event could not be made durable (`event_log_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(events::contact_event),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/events/outcome",
        access: Access::Roles(DECISION),
        summary: "What a customer did with an offer (shown, accepted, declined, ordered, delivered); recorded with the customer's experiment arms; acceptances burn redemption caps and the budget down from the next request.",
        body: Some(schema::<OutcomeEvent>),
        query: None,
        replies: &[
            ok(202, "Recorded and in force.", schema::<events::EventAck>),
            ok(200, "A repeat of a recorded event id with the same body; nothing changed.", schema::<events::EventAck>),
            ok(409, "The event id was recorded before with another body (`event_id_conflict`); the original is returned.", schema::<events::EventConflict>),
            error(422, "An invalid event (`invalid_event`): empty ids, a customer, offer or warehouse the served plan does not know, an order or delivery without order_id, a delivery without on_time, on_time or value on another kind, a value out of bounds."),
            error(503, "The event could not be made durable (`event_log_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(events::outcome_event),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/warehouses/{id}/pick-priorities",
        access: Access::Roles(FULFILMENT),
        summary: "The plan's pick priorities at a warehouse, capped by live stock.",
        body: None,
        query: None,
        replies: &[
            ok(200, "The warehouse's priorities.", schema::<fulfilment::PickPriorities>),
            error(404, "The plan does not stock the warehouse (`unknown_warehouse`)."),
            error(503, "No plan version is loaded (`no_plan`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || get(fulfilment::pick_priorities),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/warehouses/{id}/pick-plan",
        access: Access::Roles(FULFILMENT),
        summary: "Wave assignment and pick order for a backlog of orders, against live stock (exact MIP when small, greedy with a bound when large).",
        body: Some(schema::<fulfilment::PickPlanRequest>),
        query: None,
        replies: &[
            ok(200, "The pick plan.", schema::<fulfilment::PickPlanReply>),
            error(404, "The plan does not stock the warehouse (`unknown_warehouse`)."),
            error(422, "An unknown tier, SKUs the warehouse does not stock (named), duplicate ids or a non-positive qty (`invalid_pick_request`), or a body not of the request's shape (`bad_request`)."),
            error(503, "No plan version is loaded (`no_plan`)."),
        ],
        max_body: MAX_PICK_BODY_BYTES,
        handler: || post(fulfilment::pick_plan),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/plans",
        access: Access::Roles(PLANNER),
        summary: "Plan versions, the active one, the one served, and planning jobs.",
        body: None,
        query: None,
        replies: &[ok(200, "The versions and jobs.", schema::<plans::PlanList>), error(503, "The active plan could not be read (`store_error`).")],
        max_body: MAX_BODY_BYTES,
        handler: || get(plans::list_plans),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/plans",
        access: Access::Roles(PLANNER),
        summary: "Start planning a scenario (inside the server's scenario root) in the background; returns a job to poll (its URL in Location).",
        body: Some(schema::<plans::PlanJobRequest>),
        query: None,
        replies: &[
            ok(202, "Queued; poll the job.", schema::<PlanJob>),
            error(422, "No such scenario directory under the scenario root (`scenario_not_found`: one outside it is answered the same), or an empty `scenario`."),
            error(503, "The server's scenario root is missing (`no_scenario_root`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(plans::start_plan_job),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/jobs/{id}",
        access: Access::Roles(PLANNER),
        summary: "A planning job: queued, running, succeeded (with its plan version) or failed (with why).",
        body: None,
        query: None,
        replies: &[ok(200, "The job.", schema::<PlanJob>), error(404, "No such job in this server's life (`unknown_job`).")],
        max_body: MAX_BODY_BYTES,
        handler: || get(plans::plan_job),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/plans/{id}/activate",
        access: Access::Roles(PLANNER),
        summary: "Make a plan version active and serve it (atomic swap).",
        body: None,
        query: None,
        replies: &[
            ok(200, "Activated and served.", schema::<plans::ActivationReply>),
            error(404, "No such plan version, or an id not of the store's form (`unknown_plan`)."),
            error(409, "The version was saved before live inventory events it needs were compacted away (`moves_compacted`)."),
            error(503, "The live-state database refused (`database_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(plans::activate_plan),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/plans/rollback",
        access: Access::Roles(PLANNER),
        summary: "Re-activate the plan active before the current one and serve it.",
        body: None,
        query: None,
        replies: &[
            ok(200, "Rolled back and served.", schema::<plans::ActivationReply>),
            error(409, "No earlier activation to roll back to (`nothing_to_roll_back`), or it was saved before live inventory events it needs were compacted away (`moves_compacted`)."),
            error(503, "The live-state database refused (`database_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(plans::rollback_plan),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/experiments",
        access: Access::Roles(PLANNER),
        summary: "Start a canary (a version served to a share of customers), a shadow (a version's decisions logged, never served) or a holdout (a share served the non-personalized baseline); durable and on every replica when answered.",
        body: Some(schema::<ExperimentStart>),
        query: None,
        replies: &[
            ok(201, "Started.", schema::<Experiment>),
            ok(200, "Already running with this body; nothing changed.", schema::<Experiment>),
            error(409, "Another experiment of the kind is running, or the id was used before with another body or has stopped (`experiment_conflict`); or its version was saved before live inventory events it needs were compacted away (`moves_compacted`)."),
            error(422, "An invalid experiment (`invalid_experiment`): a bad id, a share outside [0, 1] (a shadow's is 1), a canary or shadow without a version of the store, a holdout with one."),
            error(503, "The change could not be made durable (`event_log_error`), or the store could not be read (`store_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(experiments::start_experiment),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/experiments",
        access: Access::Roles(PLANNER),
        summary: "Every experiment, running or stopped.",
        body: None,
        query: None,
        replies: &[ok(200, "The experiments.", schema::<experiments::ExperimentList>)],
        max_body: MAX_BODY_BYTES,
        handler: || get(experiments::list_experiments),
    },
    RouteSpec {
        method: "GET",
        path: "/v1/experiments/{id}",
        access: Access::Roles(PLANNER),
        summary: "An experiment's report: per arm customers, decisions, acceptance rate, value per customer, orders' fill and on-time rates; the uplift with an always-valid interval and a verdict.",
        body: None,
        query: None,
        replies: &[
            ok(200, "The report, from the raw decisions and outcomes.", schema::<ExperimentReport>),
            error(404, "No such experiment (`unknown_experiment`)."),
            error(503, "The decisions or outcomes could not be read (`database_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || get(experiments::experiment_report),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/experiments/{id}/share",
        access: Access::Roles(PLANNER),
        summary: "Change a running canary's or holdout's share (raising it only moves customers into the treatment); no restart.",
        body: Some(schema::<ShareChange>),
        query: None,
        replies: &[
            ok(200, "The experiment with its new share.", schema::<Experiment>),
            error(404, "No such experiment (`unknown_experiment`)."),
            error(409, "The experiment has stopped (`experiment_conflict`)."),
            error(422, "A share outside [0, 1], or not 1 for a shadow (`invalid_experiment`)."),
            error(503, "The change could not be made durable (`event_log_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(experiments::set_share),
    },
    RouteSpec {
        method: "POST",
        path: "/v1/experiments/{id}/stop",
        access: Access::Roles(PLANNER),
        summary: "Stop an experiment: its arms are no longer assigned (everyone gets the active plan); its report stays.",
        body: None,
        query: None,
        replies: &[
            ok(200, "Stopped (or stopped before).", schema::<Experiment>),
            error(404, "No such experiment (`unknown_experiment`)."),
            error(503, "The change could not be made durable (`event_log_error`)."),
        ],
        max_body: MAX_BODY_BYTES,
        handler: || post(experiments::stop_experiment),
    },
];
