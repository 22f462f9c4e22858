//! The router: the route table's handlers behind the key and role check, the
//! per-route metrics, body limits, the request timeout, JSON errors and
//! request tracing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;

use crate::errors::ApiError;
use crate::metrics::HttpMetrics;
use crate::openapi::openapi;
use crate::routes::ops::OpenApiJson;
use crate::routes::{MAX_PICK_BODY_BYTES, ROUTES};
use crate::security::Access;
use crate::state::AppState;

/// Longest a request may run before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the key check and the metrics need per request.
#[derive(Clone)]
struct Guard {
    state: AppState,
    metrics: Arc<HttpMetrics>,
}

fn route_index(method: &Method, path: &str) -> Option<usize> {
    ROUTES.iter().position(|r| r.path == path && r.method == method.as_str())
}

/// The service's router over shared state, with keys, metrics, limits, JSON
/// errors and tracing applied.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::new(HttpMetrics::new(ROUTES.iter().map(|r| (r.method, r.path)).collect()));
    let doc = openapi().to_json().expect("the OpenAPI document serializes");
    let mut router = Router::new();
    for spec in ROUTES {
        router = router.route(spec.path, (spec.handler)().layer(DefaultBodyLimit::max(spec.max_body)));
    }
    let guard = Guard { state: state.clone(), metrics: metrics.clone() };
    router
        .route_layer(axum::middleware::from_fn_with_state(guard, authorize_and_measure))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method") })
        .with_state(state)
        .layer(Extension(metrics))
        .layer(Extension(OpenApiJson(doc.into())))
        // The outer limit is the largest of any route; each route has its own (above).
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_PICK_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(axum::middleware::map_response(json_errors))
        // Outermost, so a request's span covers everything and sees the final status.
        .layer(TraceLayer::new_for_http())
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

async fn authorize_and_measure(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let matched = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let Some(route) = matched.and_then(|path| route_index(request.method(), path)) else { return next.run(request).await };
    let path = ROUTES[route].path;
    let access = ROUTES[route].access;
    if access != Access::Public {
        let role = presented_key(request.headers()).and_then(|k| guard.state.config.keys.role_of(k));
        let denied = match role {
            None => Some(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required (Authorization: Bearer <key> or x-api-key)")),
            Some(role) if !access.allows(role) => {
                Some(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("the {role:?} role may not call {} {path}", ROUTES[route].method).to_lowercase()))
            }
            Some(_) => None,
        };
        if let Some(e) = denied {
            let response = e.into_response();
            guard.metrics.observe(route, response.status().as_u16(), started.elapsed());
            return response;
        }
    }
    let response = next.run(request).await;
    guard.metrics.observe(route, response.status().as_u16(), started.elapsed());
    response
}
