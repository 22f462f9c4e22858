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

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use tower::{Layer, Service};
use tracing::Instrument;

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

/// The route answering `method` on the route template `path`: `HEAD` is
/// answered by the `GET` route (axum runs its handler).
fn route_index(method: &Method, path: &str) -> Option<usize> {
    let method = if method == Method::HEAD { &Method::GET } else { method };
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

/// The service's whole HTTP stack over shared state: the [`Gate`] in front of
/// the routed router, both built from the route table `ROUTES` (a route goes
/// into the table, never into the router alone: the gate finds a request's
/// route, and so its roles, in the same table).
pub fn router(state: AppState) -> App {
    let metrics = Arc::new(HttpMetrics::new(ROUTES.iter().map(|r| (r.method, r.path)).collect()));
    let doc = OpenApiJson(openapi().to_json().expect("the OpenAPI document serializes").into());
    let mut router = Router::new();
    let mut paths = matchit::Router::new();
    let mut templates = HashSet::new();
    for spec in ROUTES {
        router = router.route(spec.path, (spec.handler)().layer(DefaultBodyLimit::max(spec.max_body)));
        if templates.insert(spec.path) {
            paths.insert(spec.path, spec.path).expect("the route table's paths are valid, distinct templates");
        }
    }
    let routed = router
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method") })
        .fallback(|| async { not_found() })
        .with_state(state.clone());
    // The outer limit is the largest of any route; each route has its own (above).
    let routed = tower_http::limit::RequestBodyLimitLayer::new(MAX_PICK_BODY_BYTES).layer(routed);
    App { gate: Arc::new(Gate { state, metrics, doc, paths }), routed }
}

/// What every request passes before a handler, and its answer after, in one
/// service rather than a stack of layers. Why one: each `from_fn` layer
/// clones and boxes the service behind it per request, and a timeout layer
/// arms a timer per request; together they cost a fifth of the decision
/// route's CPU (measured). In order:
///
/// 1. a request target longer than [`MAX_URI_BYTES`] is answered 414;
/// 2. the key and role are checked for the route the path and method name
///    (`HEAD` takes the `GET` route's roles; a method no route of the path
///    takes needs a key allowed on some method of the path before its 405;
///    a path no template matches is answered 404 here, never routed);
/// 3. the request's [`Deadline`] is set and the router answers within it
///    (408 past [`REQUEST_TIMEOUT`]; the timer is armed only for an answer
///    not ready at once);
/// 4. an error answer the framework gave in plain text gets our JSON shape;
/// 5. the route's latency and status class are counted, a server error is
///    logged, and the whole request runs in a `debug` span.
struct Gate {
    state: AppState,
    metrics: Arc<HttpMetrics>,
    doc: OpenApiJson,
    /// The table's path templates, to find the route of a request before routing.
    paths: matchit::Router<&'static str>,
}

/// The service: [`Gate`] in front of the routed router (see [`router`]).
#[derive(Clone)]
pub struct App {
    gate: Arc<Gate>,
    routed: tower_http::limit::RequestBodyLimit<Router>,
}

/// The answer future of [`App`].
pub type AppFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<B> Service<Request<B>> for App
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<Body>>::poll_ready(&mut self.routed, cx)
    }

    fn call(&mut self, request: Request<B>) -> AppFuture {
        let started = Instant::now();
        let mut request = request.map(Body::new);
        let gate = self.gate.clone();
        let len = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if len > MAX_URI_BYTES {
            let message = format!("the request target is {len} bytes long; at most {MAX_URI_BYTES}");
            return answered(ApiError::new(StatusCode::URI_TOO_LONG, "uri_too_long", message).into_response());
        }
        // A path no template of the table matches is answered here, so no
        // request the gate did not check can reach a handler (fail closed,
        // whatever the router behind might match).
        let route = match gate.paths.at(request.uri().path()) {
            Ok(matched) => {
                let path = *matched.value;
                let route = route_index(request.method(), path);
                let access = route.map_or_else(|| access_of_path(path), |r| ROUTES[r].access);
                let role = presented_key(request.headers()).and_then(|k| gate.state.config.keys.role_of(k));
                if let Some(e) = denied(access, role, || format!("{} {path}", request.method())) {
                    let response = e.into_response();
                    if let Some(r) = route {
                        gate.metrics.observe(r, response.status().as_u16(), started.elapsed());
                    }
                    return answered(response);
                }
                route
            }
            Err(_) => return answered(not_found()),
        };
        let deadline = started + REQUEST_TIMEOUT;
        let extensions = request.extensions_mut();
        extensions.insert(Deadline(deadline));
        extensions.insert(gate.doc.clone());
        extensions.insert(gate.metrics.clone());
        let span = tracing::debug_span!("request", method = %request.method(), uri = %request.uri());
        let routed = self.routed.call(request);
        Box::pin(
            async move {
                let response = json_errors(within_deadline(routed, deadline).await).await;
                let (status, latency) = (response.status(), started.elapsed());
                if let Some(r) = route {
                    gate.metrics.observe(r, status.as_u16(), latency);
                }
                let latency_ms = latency.as_secs_f64() * 1e3;
                if status.is_server_error() {
                    tracing::error!(status = status.as_u16(), latency_ms, "request failed");
                } else {
                    tracing::debug!(status = status.as_u16(), latency_ms, "request answered");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The answer for a path no route of the table has.
fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response()
}

/// An answer the gate gives itself, without the router.
fn answered(response: Response) -> AppFuture {
    Box::pin(std::future::ready(Ok(response)))
}

/// The router's answer, or 408 once `deadline` passes. A timer is armed only
/// when the answer is not ready at the first poll: a decision is computed in
/// place, and most answers never need one.
async fn within_deadline<F, R>(routed: F, deadline: Instant) -> Response
where
    F: Future<Output = Result<R, Infallible>>,
    R: IntoResponse,
{
    let mut routed = pin!(routed);
    let first = std::future::poll_fn(|cx| Poll::Ready(routed.as_mut().poll(cx))).await;
    let result = match first {
        Poll::Ready(result) => result,
        Poll::Pending => match tokio::time::timeout_at(deadline.into(), routed).await {
            Ok(result) => result,
            Err(_) => {
                let message = format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
                return ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", message).into_response();
            }
        },
    };
    let Ok(response) = result;
    response.into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn code_of_body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        body["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    /// An answer still pending at its deadline is a JSON 408 (without the
    /// timer of the pending branch the wait would not end); one ready at the
    /// first poll is given as it is, even past its deadline.
    #[tokio::test]
    async fn an_answer_pending_past_the_deadline_is_a_json_408() {
        let passed = Instant::now();
        let never = std::future::pending::<Result<Response, Infallible>>();
        let response = tokio::time::timeout(std::time::Duration::from_secs(10), within_deadline(never, passed)).await.expect("the deadline ends the wait");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(code_of_body(response).await, "timeout");

        let ready = std::future::ready(Ok::<_, Infallible>(StatusCode::ACCEPTED.into_response()));
        assert_eq!(within_deadline(ready, passed).await.status(), StatusCode::ACCEPTED);
    }
}
