//! The router: the route table's handlers behind the key and role check, the
//! per-route metrics, body and URI limits, the request timeout, JSON errors
//! and request tracing.
//!
//! Who may call what is decided here, before any handler runs, for **every**
//! method a client may send to a routed path: the table's method, `HEAD` (axum
//! answers it with the `GET` handler, so it gets the `GET` route's roles), and
//! any other (`OPTIONS`, `DELETE`, ...: a key allowed on some method of the
//! path is needed before the 405 is given, so an unauthenticated client learns
//! nothing about the path).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;

use crate::errors::ApiError;
use crate::metrics::HttpMetrics;
use crate::openapi::openapi;
use crate::routes::extract::Deadline;
pub use crate::routes::extract::REQUEST_TIMEOUT;
use crate::routes::ops::OpenApiJson;
use crate::routes::{MAX_PICK_BODY_BYTES, ROUTES};
use crate::security::{Access, Role};
use crate::state::AppState;

/// Longest request target (path and query) accepted; longer ones get a JSON
/// 414. Every id the service knows is far shorter.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Largest framework error body kept as the message of its JSON error.
const MAX_ERROR_TEXT: usize = 4 * 1024;

/// What the key check and the metrics need per request.
#[derive(Clone)]
struct Guard {
    state: AppState,
    metrics: Arc<HttpMetrics>,
}

/// The route answering `method` on the route template `path`: `HEAD` is
/// answered by the `GET` route (axum runs its handler).
fn route_index(method: &Method, path: &str) -> Option<usize> {
    let method = if method == Method::HEAD { Method::GET } else { method.clone() };
    ROUTES.iter().position(|r| r.path == path && r.method == method.as_str())
}

/// Who may send a method the table does not route to `path` (answered 405):
/// anyone who may call some route of the path.
fn access_of_path(path: &str) -> Access {
    let mut access = Access::Roles(&[]);
    for r in ROUTES.iter().filter(|r| r.path == path) {
        access = match (access, r.access) {
            (_, Access::Public) | (Access::Public, _) => Access::Public,
            (_, Access::AnyKey) | (Access::AnyKey, _) => Access::AnyKey,
            // Roles of different methods of one path: any of them may learn the path's methods.
            (Access::Roles(a), Access::Roles(b)) => {
                if b.iter().all(|r| a.contains(r)) {
                    Access::Roles(a)
                } else if a.iter().all(|r| b.contains(r)) {
                    Access::Roles(b)
                } else {
                    Access::AnyKey
                }
            }
        };
    }
    access
}

/// The service's router over shared state, with keys, metrics, limits, JSON
/// errors and tracing applied. It is complete: a route added to it would
/// bypass the key check and every layer (routes go into `ROUTES`).
pub fn router(state: AppState) -> Router {
    let metrics = Arc::new(HttpMetrics::new(ROUTES.iter().map(|r| (r.method, r.path)).collect()));
    let doc = openapi().to_json().expect("the OpenAPI document serializes");
    let mut router = Router::new();
    for spec in ROUTES {
        router = router.route(spec.path, (spec.handler)().layer(DefaultBodyLimit::max(spec.max_body)));
    }
    let guard = Guard { state: state.clone(), metrics: metrics.clone() };
    let routed = router
        // Before the guard is layered: the guard then wraps the 405 answer too,
        // so an unrouted method on a routed path is authorized first.
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method") })
        .route_layer(axum::middleware::from_fn_with_state(guard, authorize_and_measure))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state);
    // The service-wide layers wrap the routed router once, as one stack (the
    // first layer is the outermost). Why not `Router::layer` per layer: each
    // call boxes every route's service once more, and a request clones that
    // chain of boxes at every level it passes (a tenth of the decision
    // route's CPU, measured).
    let layered = tower::ServiceBuilder::new()
        // Outermost, so a request's span covers everything and sees the final status.
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn(limit_uri))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(Extension(OpenApiJson(doc.into())))
        .layer(Extension(metrics))
        // Back to the router's body type (the timeout's answer needs an empty one).
        .map_response(|r: Response<tower_http::limit::ResponseBody<Body>>| r.into_response())
        // The outer limit is the largest of any route; each route has its own (above).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_PICK_BODY_BYTES))
        .service(routed);
    Router::new().fallback_service(layered)
}

/// A request target longer than [`MAX_URI_BYTES`] is answered 414 before routing.
async fn limit_uri(request: Request, next: Next) -> Response {
    let len = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > MAX_URI_BYTES {
        let message = format!("the request target is {len} bytes long; at most {MAX_URI_BYTES}");
        return ApiError::new(StatusCode::URI_TOO_LONG, "uri_too_long", message).into_response();
    }
    next.run(request).await
}

/// The stable code of a status the framework answers.
pub(crate) fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

/// Gives errors produced outside the handlers (body limit, timeout, a path
/// axum could not decode) the same JSON shape as ours; their text, if any,
/// becomes the message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT).await.map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let mut json = ApiError::new(status, code_of(status), message).into_response();
    // Keep what the framework said besides the body (`Allow` on a 405).
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH) {
        json.headers_mut().insert(name, value.clone());
    }
    json
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Why `role` (none: no valid key) may not call with `access`, if it may not;
/// `what` names the call (only built for a refusal: the decision path
/// allocates nothing to be let through).
fn denied(access: Access, role: Option<Role>, what: impl FnOnce() -> String) -> Option<ApiError> {
    if access == Access::Public {
        return None;
    }
    match role {
        None => Some(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required (Authorization: Bearer <key> or x-api-key)")),
        Some(role) if !access.allows(role) => Some(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("the {role:?} role may not call {}", what()).to_lowercase())),
        Some(_) => None,
    }
}

async fn authorize_and_measure(State(guard): State<Guard>, mut request: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    // Every routed request has its template; fail closed if one ever does not.
    let Some(path) = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    };
    let route = route_index(request.method(), path);
    let access = route.map_or_else(|| access_of_path(path), |r| ROUTES[r].access);
    let role = presented_key(request.headers()).and_then(|k| guard.state.config.keys.role_of(k));
    if let Some(e) = denied(access, role, || format!("{} {path}", request.method())) {
        let response = e.into_response();
        if let Some(r) = route {
            guard.metrics.observe(r, response.status().as_u16(), started.elapsed());
        }
        return response;
    }
    request.extensions_mut().insert(Deadline(started + REQUEST_TIMEOUT));
    let response = next.run(request).await;
    if let Some(r) = route {
        guard.metrics.observe(r, response.status().as_u16(), started.elapsed());
    }
    response
}
