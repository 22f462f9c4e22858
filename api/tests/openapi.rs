//! `/openapi.json` against the service it describes: every route of the route
//! table is documented with its method, roles, parameters and statuses, and
//! every real answer (success and error, called through the real router on a
//! scenario planned by the real solver) validates against the schema the
//! document declares for its status. A handler whose body drifts from its
//! declared type (a renamed or extra field, a missing required one, another
//! status) fails here.

mod common;

use std::collections::BTreeSet;

use allot_api::ROUTES;
use axum::http::StatusCode;
use common::*;
use serde_json::{json, Map, Value};

/// The document as served.
async fn document(f: &Fixture) -> Value {
    let (status, doc) = f.get("/openapi.json", DECISION).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

#[tokio::test]
async fn every_route_is_documented_with_its_method_roles_and_parameters() {
    let f = Fixture::new(true, allot_api::DEFAULT_MAX_PLAN_AGE);
    let doc = document(&f).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        documented += item.as_object().unwrap().len();
        assert!(ROUTES.iter().any(|r| r.path == path), "{path} is documented but not in the route table");
    }
    assert_eq!(documented, ROUTES.len(), "one operation per route");
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        assert!(op["summary"].is_string(), "{} {} missing", r.method, r.path);
        for reply in r.replies {
            assert!(op["responses"][reply.status.to_string()].is_object(), "{} {}: status {} not declared", r.method, r.path, reply.status);
        }
        let declared_params: Vec<&str> = op["parameters"].as_array().map_or(vec![], |ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect());
        for param in r.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            assert!(declared_params.contains(&param), "{} {}: path parameter {param} not declared", r.method, r.path);
        }
        assert_eq!(op["requestBody"].is_object(), r.body.is_some(), "{} {}: request body", r.method, r.path);
    }
    let offers = &doc["paths"]["/v1/customers/{id}/offers"]["get"];
    let query: BTreeSet<&str> = offers["parameters"].as_array().unwrap().iter().filter(|p| p["in"] == "query").map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(query, BTreeSet::from(["channel", "limit"]));
    assert_eq!(doc["paths"]["/v1/plans/{id}/activate"]["post"]["x-roles"], json!(["planner", "admin"]));
    assert_eq!(doc["paths"]["/metrics"]["get"]["x-roles"], json!(["any"]));
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]), "health needs no key");
    let inventory = &doc["paths"]["/v1/events/inventory"]["post"]["responses"];
    assert!(inventory["202"].is_object() && inventory["200"].is_object() && inventory["401"].is_object() && inventory["403"].is_object());
}

/// The document with every object closed: a property no schema declares is
/// an error. `unevaluatedProperties` (not `additionalProperties`) so that an
/// `allOf` (a flattened struct) sees the properties of all its parts; the
/// parts of an `allOf` stay open and referenced ones are inlined open.
fn closed(doc: &Value) -> Value {
    fn close(v: &mut Value, in_all_of: bool) {
        match v {
            Value::Object(map) => {
                if !in_all_of && (map.contains_key("properties") || map.contains_key("allOf")) {
                    map.insert("unevaluatedProperties".to_string(), json!(false));
                }
                for (k, child) in map.iter_mut() {
                    match (k.as_str(), child) {
                        ("allOf", Value::Array(parts)) => parts.iter_mut().for_each(|p| close(p, true)),
                        (_, child) => close(child, false),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| close(i, false)),
            _ => {}
        }
    }
    fn inline_all_of_refs(v: &mut Value, open: &Map<String, Value>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(parts)) = map.get_mut("allOf") {
                    for part in parts.iter_mut() {
                        if let Some(name) = part["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
                            *part = open[name].clone();
                        }
                    }
                }
                map.values_mut().for_each(|c| inline_all_of_refs(c, open));
            }
            Value::Array(items) => items.iter_mut().for_each(|i| inline_all_of_refs(i, open)),
            _ => {}
        }
    }
    let open = doc["components"]["schemas"].as_object().unwrap().clone();
    let mut out = doc.clone();
    close(&mut out, false);
    inline_all_of_refs(&mut out, &open);
    out
}

/// Validates one real answer against the document: its status must be
/// declared for the route, its content type must be the declared one, and its
/// body must match the declared schema.
fn check(doc: &Value, method: &str, path: &str, status: StatusCode, content_type: &str, body: &[u8]) {
    let what = format!("{method} {path} -> {status}");
    let response = &doc["paths"][path][method.to_lowercase()]["responses"][status.as_u16().to_string()];
    assert!(response.is_object(), "{what}: status not declared");
    let media = content_type.split(';').next().unwrap().trim();
    let schema = &response["content"][media]["schema"];
    assert!(schema.is_object(), "{what}: content type {content_type:?} not declared (declared: {})", response["content"]);
    let instance: Value = if media == "application/json" {
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(body)))
    } else {
        Value::String(String::from_utf8(body.to_vec()).unwrap())
    };
    // The response schema, with the document's components for its `$ref`s.
    let root = json!({ "components": doc["components"], "allOf": [schema] });
    let validator = jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: the body does not match its schema {schema}:\n{}\nbody: {instance}", errors.join("\n"));
}

#[tokio::test]
async fn real_answers_of_every_route_validate_against_their_schemas() {
    let f = Fixture::new(true, allot_api::DEFAULT_MAX_PLAN_AGE);
    let doc = closed(&document(&f).await);
    let mut exercised = BTreeSet::new();
    // (method, route path, uri, key, body, expected status)
    let receipt = json!({ "event_id": "r1", "kind": "receipt", "warehouse_id": "W1", "sku": "C", "qty": 1 });
    let pick = pick_request(&[("o1", "gold", "2026-12-01T12:00:00Z", "A", 1.0), ("o2", "standard", "2026-12-01T09:00:00Z", "B", 50.0)], 5.0);
    let calls: Vec<(&str, &str, String, Option<&str>, Option<Value>, StatusCode)> = vec![
        ("GET", "/healthz", "/healthz".into(), None, None, StatusCode::OK),
        ("GET", "/readyz", "/readyz".into(), None, None, StatusCode::OK),
        ("GET", "/metrics", "/metrics".into(), Some(PLANNER), None, StatusCode::OK),
        ("GET", "/metrics", "/metrics".into(), None, None, StatusCode::UNAUTHORIZED),
        ("GET", "/openapi.json", "/openapi.json".into(), Some(DECISION), None, StatusCode::OK),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/g1/offers?limit=5&channel=email".into(), Some(DECISION), None, StatusCode::OK),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/nc/offers".into(), Some(DECISION), None, StatusCode::OK),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/nobody/offers".into(), Some(DECISION), None, StatusCode::NOT_FOUND),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/g1/offers?limit=many".into(), Some(DECISION), None, StatusCode::BAD_REQUEST),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/g1/offers".into(), Some(FULFILMENT), None, StatusCode::FORBIDDEN),
        ("POST", "/v1/eligibility:batch", "/v1/eligibility:batch".into(), Some(DECISION), Some(json!({ "customer_ids": ["g1", "nobody", "s1"], "limit": 1 })), StatusCode::OK),
        ("POST", "/v1/eligibility:batch", "/v1/eligibility:batch".into(), Some(DECISION), Some(json!({ "customer_ids": ["g1"], "colour": "red" })), StatusCode::UNPROCESSABLE_ENTITY),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/%ff/offers".into(), Some(DECISION), None, StatusCode::BAD_REQUEST),
        ("GET", "/v1/customers/{id}/offers", format!("/v1/customers/g1/offers?channel={}", "x".repeat(allot_api::MAX_URI_BYTES)), Some(DECISION), None, StatusCode::URI_TOO_LONG),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/g1/offers?limit=101".into(), Some(DECISION), None, StatusCode::BAD_REQUEST),
        ("GET", "/v1/customers/{id}/decisions", "/v1/customers/g1/decisions".into(), Some(ADMIN), None, StatusCode::OK),
        ("GET", "/v1/customers/{id}/decisions", "/v1/customers/nobody/decisions".into(), Some(ADMIN), None, StatusCode::NOT_FOUND),
        ("DELETE", "/v1/customers/{id}/personal-data", "/v1/customers/nc/personal-data".into(), Some(ADMIN), None, StatusCode::OK),
        ("DELETE", "/v1/customers/{id}/personal-data", "/v1/customers/nobody/personal-data".into(), Some(ADMIN), None, StatusCode::NOT_FOUND),
        ("POST", "/v1/plans", "/v1/plans".into(), Some(PLANNER), Some(json!({ "scenario": "" })), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/warehouses/{id}/pick-plan", "/v1/warehouses/W1/pick-plan".into(), Some(FULFILMENT), Some(pick_request(&[("o1", "gold", "2026-12-01T12:00:00Z", "Z9", 1.0)], 5.0)), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/events/inventory", "/v1/events/inventory".into(), Some(FULFILMENT), Some(receipt.clone()), StatusCode::ACCEPTED),
        ("POST", "/v1/events/inventory", "/v1/events/inventory".into(), Some(FULFILMENT), Some(receipt), StatusCode::OK),
        ("POST", "/v1/events/inventory", "/v1/events/inventory".into(), Some(FULFILMENT), Some(json!({ "event_id": "r2", "kind": "receipt", "warehouse_id": "W1", "sku": "C", "qty": -1 })), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/events/consent", "/v1/events/consent".into(), Some(DECISION), Some(json!({ "event_id": "c1", "customer_id": "s4", "suppressed": true })), StatusCode::ACCEPTED),
        ("POST", "/v1/events/consent", "/v1/events/consent".into(), Some(DECISION), Some(json!({ "event_id": "c2", "customer_id": "s4" })), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/events/contact", "/v1/events/contact".into(), Some(DECISION), Some(json!({ "event_id": "k1", "customer_id": "s4", "offer_id": "single", "date": "2026-12-02" })), StatusCode::ACCEPTED),
        ("POST", "/v1/events/contact", "/v1/events/contact".into(), Some(DECISION), Some(json!({ "event_id": "k2", "customer_id": "s4", "offer_id": "nope", "date": "2026-12-02" })), StatusCode::UNPROCESSABLE_ENTITY),
        ("GET", "/v1/warehouses/{id}/pick-priorities", "/v1/warehouses/W1/pick-priorities".into(), Some(FULFILMENT), None, StatusCode::OK),
        ("GET", "/v1/warehouses/{id}/pick-priorities", "/v1/warehouses/W9/pick-priorities".into(), Some(FULFILMENT), None, StatusCode::NOT_FOUND),
        ("POST", "/v1/warehouses/{id}/pick-plan", "/v1/warehouses/W1/pick-plan".into(), Some(FULFILMENT), Some(pick), StatusCode::OK),
        ("POST", "/v1/warehouses/{id}/pick-plan", "/v1/warehouses/W1/pick-plan".into(), Some(FULFILMENT), Some(pick_request(&[("o1", "platinum", "2026-12-01T12:00:00Z", "A", 1.0)], 5.0)), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/plans/rollback", "/v1/plans/rollback".into(), Some(PLANNER), None, StatusCode::CONFLICT),
        ("POST", "/v1/plans/{id}/activate", "/v1/plans/000009/activate".into(), Some(PLANNER), None, StatusCode::NOT_FOUND),
        ("POST", "/v1/plans", "/v1/plans".into(), Some(PLANNER), Some(json!({ "scenario": "nowhere" })), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/plans", "/v1/plans".into(), Some(PLANNER), Some(json!({ "scenario": "scenario", "solver": "exact" })), StatusCode::ACCEPTED),
        ("GET", "/v1/jobs/{id}", "/v1/jobs/job-99".into(), Some(PLANNER), None, StatusCode::NOT_FOUND),
    ];
    for (method, path, uri, key, body, expected) in calls {
        let (status, content_type, bytes) = f.call_raw(method, &uri, key, body.map(|b| b.to_string().into_bytes())).await;
        assert_eq!(status, expected, "{method} {uri}: {}", String::from_utf8_lossy(&bytes));
        check(&doc, method, path, status, &content_type, &bytes);
        exercised.insert((method, path));
    }
    // The job planned a second version: its record, the list, an activation
    // and a rollback, each answered for real.
    let job = wait_for_job(&f, "job-1").await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let later: [(&str, &str, &str); 4] = [
        ("GET", "/v1/jobs/{id}", "/v1/jobs/job-1"),
        ("GET", "/v1/plans", "/v1/plans"),
        ("POST", "/v1/plans/{id}/activate", "/v1/plans/000002/activate"),
        ("POST", "/v1/plans/rollback", "/v1/plans/rollback"),
    ];
    for (method, path, uri) in later {
        let (status, content_type, bytes) = f.call_raw(method, uri, Some(PLANNER), None).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {}", String::from_utf8_lossy(&bytes));
        check(&doc, method, path, status, &content_type, &bytes);
        exercised.insert((method, path));
    }
    // Experiments on the second version, and outcomes that carry their arms.
    let canary = json!({ "experiment_id": "x1", "kind": "canary", "version": "000002", "share": 0.5 });
    let shown = json!({ "event_id": "u1", "kind": "shown", "customer_id": "g1", "offer_id": "bundle", "occurred_at": "2026-12-02T10:00:00Z" });
    let experiments: Vec<(&str, &str, &str, Option<Value>, StatusCode)> = vec![
        ("POST", "/v1/experiments", "/v1/experiments", Some(canary.clone()), StatusCode::CREATED),
        ("POST", "/v1/experiments", "/v1/experiments", Some(canary), StatusCode::OK),
        ("POST", "/v1/experiments", "/v1/experiments", Some(json!({ "experiment_id": "x2", "kind": "canary", "version": "000002", "share": 0.1 })), StatusCode::CONFLICT),
        ("POST", "/v1/experiments", "/v1/experiments", Some(json!({ "experiment_id": "x3", "kind": "holdout", "version": "000002", "share": 0.1 })), StatusCode::UNPROCESSABLE_ENTITY),
        ("GET", "/v1/customers/{id}/offers", "/v1/customers/g2/offers", None, StatusCode::OK),
        ("POST", "/v1/events/outcome", "/v1/events/outcome", Some(shown.clone()), StatusCode::ACCEPTED),
        ("POST", "/v1/events/outcome", "/v1/events/outcome", Some(shown), StatusCode::OK),
        ("POST", "/v1/events/outcome", "/v1/events/outcome", Some(json!({ "event_id": "u1", "kind": "declined", "customer_id": "g1", "offer_id": "bundle", "occurred_at": "2026-12-02T10:00:00Z" })), StatusCode::CONFLICT),
        ("POST", "/v1/events/outcome", "/v1/events/outcome", Some(json!({ "event_id": "u2", "kind": "ordered", "customer_id": "g1", "offer_id": "bundle", "occurred_at": "2026-12-02T10:00:00Z" })), StatusCode::UNPROCESSABLE_ENTITY),
        ("GET", "/v1/experiments", "/v1/experiments", None, StatusCode::OK),
        ("GET", "/v1/experiments/{id}", "/v1/experiments/x1", None, StatusCode::OK),
        ("GET", "/v1/experiments/{id}", "/v1/experiments/x9", None, StatusCode::NOT_FOUND),
        ("POST", "/v1/experiments/{id}/share", "/v1/experiments/x1/share", Some(json!({ "share": 0.8 })), StatusCode::OK),
        ("POST", "/v1/experiments/{id}/share", "/v1/experiments/x1/share", Some(json!({ "share": 1.8 })), StatusCode::UNPROCESSABLE_ENTITY),
        ("POST", "/v1/experiments/{id}/stop", "/v1/experiments/x1/stop", None, StatusCode::OK),
        ("POST", "/v1/experiments/{id}/share", "/v1/experiments/x1/share", Some(json!({ "share": 0.9 })), StatusCode::CONFLICT),
        ("POST", "/v1/experiments/{id}/stop", "/v1/experiments/x9/stop", None, StatusCode::NOT_FOUND),
    ];
    for (method, path, uri, body, expected) in experiments {
        let key = if path.starts_with("/v1/experiments") { PLANNER } else { DECISION };
        let (status, content_type, bytes) = f.call_raw(method, uri, Some(key), body.map(|b| b.to_string().into_bytes())).await;
        assert_eq!(status, expected, "{method} {uri}: {}", String::from_utf8_lossy(&bytes));
        check(&doc, method, path, status, &content_type, &bytes);
        exercised.insert((method, path));
    }
    let untested: Vec<String> = ROUTES.iter().filter(|r| !exercised.contains(&(r.method, r.path))).map(|r| format!("{} {}", r.method, r.path)).collect();
    assert!(untested.is_empty(), "routes with no answer checked against their schema: {untested:?}");
}

/// A route answering a status its document does not declare fails the check
/// (no `default` catch-all stands in for it).
#[tokio::test]
async fn an_undeclared_status_fails_the_check() {
    let f = Fixture::new(true, allot_api::DEFAULT_MAX_PLAN_AGE);
    let doc = closed(&document(&f).await);
    let body = br#"{"error":{"code":"teapot","message":"short and stout"}}"#;
    for status in [StatusCode::IM_A_TEAPOT, StatusCode::INTERNAL_SERVER_ERROR] {
        let failed = std::panic::catch_unwind(|| check(&doc, "GET", "/healthz", status, "application/json", body));
        assert!(failed.is_err(), "{status} passed as declared for GET /healthz");
    }
    // Statuses every route may answer are declared on every route.
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_lowercase()]["responses"];
        for status in ["408", "414"] {
            assert!(op[status].is_object(), "{} {}: {status} not declared", r.method, r.path);
        }
        if r.path.contains('{') {
            assert!(op["400"].is_object(), "{} {}: 400 (a path parameter that is not UTF-8) not declared", r.method, r.path);
        }
    }
    // The schemas refuse what the service refuses: unknown fields and empty ids.
    let schemas = &doc["components"]["schemas"];
    for name in ["BatchRequest", "PickPlanRequest", "PickOrderBody", "PickLineBody", "PickWaveBody", "PlanJobRequest"] {
        assert_eq!(schemas[name]["additionalProperties"], json!(false), "{name}: {}", schemas[name]);
    }
    assert_eq!(schemas["PlanJobRequest"]["properties"]["scenario"]["minLength"], 1);
    assert_eq!(schemas["BatchRequest"]["properties"]["customer_ids"]["items"]["minLength"], 1);
    let offers = doc["paths"]["/v1/customers/{id}/offers"]["get"]["parameters"].as_array().unwrap();
    let limit = offers.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!((limit["schema"]["minimum"].clone(), limit["schema"]["maximum"].clone()), (json!(0), json!(100)), "{limit}");
}

/// The check itself catches drift: a body with a renamed field, and a body
/// with an extra one, fail against the declared schema.
#[tokio::test]
async fn a_body_that_drifts_from_its_schema_fails_validation() {
    let f = Fixture::new(true, allot_api::DEFAULT_MAX_PLAN_AGE);
    let doc = closed(&document(&f).await);
    let (status, ready) = f.call("GET", "/readyz", None, None).await;
    let mut renamed = ready.as_object().unwrap().clone();
    let version = renamed.remove("plan_version").unwrap();
    renamed.insert("plan_ver".to_string(), version);
    let mut extra = ready.as_object().unwrap().clone();
    extra.insert("colour".to_string(), json!("red"));
    for body in [Value::Object(renamed), Value::Object(extra)] {
        let bytes = body.to_string().into_bytes();
        let failed = std::panic::catch_unwind(|| check(&doc, "GET", "/readyz", status, "application/json", &bytes));
        assert!(failed.is_err(), "{body} passed the schema check");
    }
    check(&doc, "GET", "/readyz", status, "application/json", ready.to_string().as_bytes());
}
