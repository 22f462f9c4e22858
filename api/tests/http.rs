//! HTTP tests against the real router: a small scenario is planned by the real
//! solver into a temporary store, and every route is called through the router
//! with the keys, limits and error mapping in place.

mod common;

use std::sync::Arc;
use std::time::Duration;

use allot_api::{DEFAULT_MAX_PLAN_AGE, MAX_BODY_BYTES};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt;

fn offer_ids(decision: &Value) -> Vec<String> {
    decision["offers"].as_array().unwrap().iter().map(|o| o["offer_id"].as_str().unwrap().to_string()).collect()
}

fn exclusion(decision: &Value, offer: &str) -> Option<String> {
    decision["excluded"].as_array().unwrap().iter().find(|e| e["offer_id"] == offer).map(|e| e["reason"].as_str().unwrap().to_string())
}

fn order(id: &str, sku: &str, qty: f64, tier: &str) -> Value {
    json!({ "event_id": id, "kind": "order", "warehouse_id": "W1", "sku": sku, "qty": qty, "tier": tier })
}

#[tokio::test]
async fn offers_come_ranked_from_the_plan_with_reasons() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let g1 = f.offers("g1").await;
    assert_eq!(g1["fallback"], false);
    assert_eq!(g1["plan_version"], "000001");
    assert_eq!(offer_ids(&g1), ["bundle", "single"]);
    let best = &g1["offers"][0];
    assert_eq!(best["rank"], 1);
    assert!((best["expected_value"].as_f64().unwrap() - 5.0).abs() < 1e-6, "{best}");
    assert!((best["uptake"].as_f64().unwrap() - 0.5).abs() < 1e-6);
    // limit and channel
    let (_, one) = f.get("/v1/customers/g1/offers?limit=1&channel=email", DECISION).await;
    assert_eq!(offer_ids(&one), ["bundle"]);
    assert_eq!(one["channel"], "email");
    // the plan's own hard-rule reason is passed through
    let nc = f.offers("nc").await;
    assert!(offer_ids(&nc).is_empty());
    assert_eq!(exclusion(&nc, "bundle").as_deref(), Some("consent"));
    // bad query
    let (status, body) = f.get("/v1/customers/g1/offers?limit=lots", DECISION).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
}

#[tokio::test]
async fn unknown_customer_is_404_and_batch_reports_it_inline() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let (status, body) = f.get("/v1/customers/nobody/offers", DECISION).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "unknown_customer"));

    let (status, body) = f.post("/v1/eligibility:batch", DECISION, json!({ "customer_ids": ["g1", "nobody", "s2"], "limit": 1 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(offer_ids(&results[0]), ["bundle"]);
    assert_eq!(error_code(&results[1]), "unknown_customer");
    assert_eq!(results[2]["customer_id"], "s2");
}

#[tokio::test]
async fn bad_json_oversize_bodies_and_too_large_batches_get_json_errors() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let (status, body) = f.call("POST", "/v1/eligibility:batch", Some(DECISION), Some(b"{\"customer_ids\": [".to_vec())).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"));
    let (status, body) = f.post("/v1/eligibility:batch", DECISION, json!({ "customers": ["g1"] })).await;
    assert!(status.is_client_error(), "{status}");
    assert!(body["error"]["message"].as_str().unwrap().contains("customers"), "{body}");

    let huge = json!({ "customer_ids": vec!["x".repeat(100); MAX_BODY_BYTES / 50] }).to_string();
    let (status, body) = f.call("POST", "/v1/eligibility:batch", Some(DECISION), Some(huge.into_bytes())).await;
    assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));

    let many = json!({ "customer_ids": vec!["g1"; allot_api::MAX_BATCH + 1] });
    let (status, body) = f.post("/v1/eligibility:batch", DECISION, many).await;
    assert_eq!((status, error_code(&body)), (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"));

    let (status, body) = f.post("/v1/events/inventory", FULFILMENT, json!({ "event_id": "e", "kind": "order", "warehouse_id": "W1", "sku": "A", "qty": -3 })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"));
    let (status, body) = f.post("/v1/events/inventory", FULFILMENT, json!({ "event_id": "e", "kind": "theft", "warehouse_id": "W1", "sku": "A", "qty": 3 })).await;
    assert!(status.is_client_error() && error_code(&body) == "bad_request", "{status} {body}");
    let (status, body) = f.post("/v1/events/consent", DECISION, json!({ "event_id": "e", "customer_id": "g1" })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"));

    let (status, body) = f.get("/v1/no/such/route", DECISION).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = f.call("DELETE", "/v1/plans", Some(PLANNER), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

/// Every route: (method, uri, body, the one non-admin role allowed; None = any key).
fn route_calls() -> Vec<(&'static str, &'static str, Option<Value>, Option<&'static str>)> {
    vec![
        ("GET", "/metrics", None, None),
        ("GET", "/openapi.json", None, None),
        ("GET", "/v1/customers/g1/offers", None, Some(DECISION)),
        ("POST", "/v1/eligibility:batch", Some(json!({ "customer_ids": ["g1"] })), Some(DECISION)),
        ("GET", "/v1/customers/g1/decisions", None, Some(ADMIN)),
        ("DELETE", "/v1/customers/s1/personal-data", None, Some(ADMIN)),
        // Effects an unauthorised call must not have: all of A gone, g1's consent withdrawn.
        ("POST", "/v1/events/inventory", Some(json!({ "event_id": "r1", "kind": "order", "warehouse_id": "W1", "sku": "A", "qty": 10, "tier": "gold" })), Some(FULFILMENT)),
        ("POST", "/v1/events/consent", Some(json!({ "event_id": "c1", "customer_id": "g1", "consent": false })), Some(DECISION)),
        ("POST", "/v1/events/contact", Some(json!({ "event_id": "k1", "customer_id": "g1", "offer_id": "single", "date": "2026-12-02" })), Some(DECISION)),
        ("GET", "/v1/warehouses/W1/pick-priorities", None, Some(FULFILMENT)),
        ("POST", "/v1/warehouses/W1/pick-plan", Some(pick_request(&[("o1", "gold", "2026-12-01T12:00:00Z", "A", 1.0)], 5.0)), Some(FULFILMENT)),
        ("GET", "/v1/plans", None, Some(PLANNER)),
        ("POST", "/v1/plans/000001/activate", None, Some(PLANNER)),
        ("POST", "/v1/plans/rollback", None, Some(PLANNER)),
        ("GET", "/v1/jobs/job-1", None, Some(PLANNER)),
        ("POST", "/v1/plans", Some(json!({ "scenario": "scenario" })), Some(PLANNER)),
        ("POST", "/v1/events/outcome", Some(json!({ "event_id": "u1", "kind": "shown", "customer_id": "g1", "offer_id": "single", "occurred_at": "2026-12-02T10:00:00Z" })), Some(DECISION)),
        // A holdout of no one: nothing else in this test changes.
        ("POST", "/v1/experiments", Some(json!({ "experiment_id": "h1", "kind": "holdout", "share": 0.0 })), Some(PLANNER)),
        ("GET", "/v1/experiments", None, Some(PLANNER)),
        ("GET", "/v1/experiments/h1", None, Some(PLANNER)),
        ("POST", "/v1/experiments/h1/share", Some(json!({ "share": 0.0 })), Some(PLANNER)),
        ("POST", "/v1/experiments/h1/stop", None, Some(PLANNER)),
        ("GET", "/healthz", None, Some("public")),
        ("GET", "/readyz", None, Some("public")),
    ]
}

/// Route × method (the table's, HEAD for a GET route, OPTIONS, PUT: one the
/// table has on no route) × {no key, a wrong key, each role}: refusals come
/// first and leave no trace (no event applied, no audit record, no job, no
/// activation); then the allowed calls, HEAD among them without an audit record.
#[tokio::test]
async fn every_method_of_every_route_checks_keys_and_roles_first() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let routes = route_calls();
    assert_eq!(routes.len(), allot_api::ROUTES.len(), "a route was added without a test here");
    let wrong = "not-a-key-at-all-000000";
    let roles = [DECISION, FULFILMENT, PLANNER, ADMIN];
    let may = |allowed: Option<&str>, key: Option<&str>| match (allowed, key) {
        (Some("public"), _) => true,
        (_, None) => false,
        (_, Some(k)) if k == wrong => false,
        (None, Some(_)) => true,
        (Some(a), Some(k)) => k == ADMIN || k == a,
    };
    let methods = |method: &'static str| {
        let mut m = vec![method, "OPTIONS", "PUT"];
        if method == "GET" {
            m.push("HEAD");
        }
        m
    };
    let keys: Vec<Option<&str>> = [None, Some(wrong)].into_iter().chain(roles.iter().map(|k| Some(*k))).collect();
    // 1. Every refusal.
    let mut refused = 0;
    for (method, uri, body, allowed) in &routes {
        for m in methods(method) {
            for key in keys.iter().filter(|k| !may(*allowed, **k)) {
                let bytes = body.as_ref().map(|b| b.to_string().into_bytes());
                let (status, reply) = f.call(m, uri, *key, bytes).await;
                let expected = if key.is_none() || *key == Some(wrong) { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
                assert_eq!(status, expected, "{m} {uri} with {key:?}: {reply}");
                if m != "HEAD" {
                    assert_eq!(error_code(&reply), if expected == StatusCode::UNAUTHORIZED { "unauthorized" } else { "forbidden" });
                }
                refused += 1;
            }
        }
    }
    assert!(refused > 150, "{refused}");
    // No trace of any of them.
    let (_, audit) = f.get("/v1/customers/g1/decisions", ADMIN).await;
    assert_eq!(audit["decisions"], json!([]), "a refused call wrote an audit record");
    let (_, plans) = f.get("/v1/plans", PLANNER).await;
    assert_eq!(plans["jobs"], json!([]), "a refused call queued a job");
    assert_eq!(f.history().len(), 1, "a refused call changed the active plan");
    let (_, audit) = f.get("/v1/customers/g1/decisions", ADMIN).await;
    assert_eq!(audit["decisions"], json!([]));
    // 2. HEAD with an allowed key answers like GET and records nothing.
    for (method, uri, _, allowed) in routes.iter().filter(|r| r.0 == "GET") {
        for key in keys.iter().filter(|k| may(*allowed, **k)) {
            let (get_status, _) = f.call(method, uri, *key, None).await;
            let (status, _) = f.call("HEAD", uri, *key, None).await;
            assert_eq!(status, get_status, "HEAD {uri} with {key:?}");
        }
    }
    let (status, _) = f.call("HEAD", "/v1/customers/nobody/offers", Some(DECISION), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = f.get("/v1/customers/g1/decisions", ADMIN).await;
    let gets = audit["decisions"].as_array().unwrap().len();
    assert_eq!(gets, 2, "one record per GET of g1's offers (decision and admin keys), none per HEAD: {audit}");
    // Nothing refused above was applied: g1 still consents, A is still in stock.
    assert_eq!(offer_ids(&f.offers("g1").await), ["bundle", "single"]);
    // 3. The other methods, with an allowed key: 405 with the methods allowed.
    for (method, uri, _, allowed) in &routes {
        for m in ["OPTIONS", "PUT"] {
            let key = match allowed {
                Some("public") => None,
                Some(a) => Some(*a),
                None => Some(DECISION),
            };
            let (status, reply) = f.call(m, uri, key, None).await;
            assert_eq!((status, error_code(&reply)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"), "{m} {uri} ({method})");
        }
    }
    // 4. The table's method with each allowed key.
    for (method, uri, body, allowed) in &routes {
        for key in keys.iter().filter(|k| may(*allowed, **k)) {
            let bytes = body.as_ref().map(|b| b.to_string().into_bytes());
            let (status, reply) = f.call(method, uri, *key, bytes).await;
            if *uri == "/v1/jobs/job-1" && status == StatusCode::NOT_FOUND {
                // No job submitted yet on the first allowed call: the role check passed.
                assert_eq!(error_code(&reply), "unknown_job");
            } else if *uri == "/v1/plans/rollback" && !status.is_success() {
                assert_eq!(error_code(&reply), "nothing_to_roll_back", "{reply}");
            } else {
                assert!(status.is_success(), "{method} {uri} with {key:?}: {status} {reply}");
            }
        }
    }
    // The x-api-key header works too.
    let req = Request::builder().uri("/v1/plans").header("x-api-key", PLANNER).body(Body::empty()).unwrap();
    assert_eq!(f.app.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
}

/// What the framework answers (a path that is not UTF-8, a long URI, an
/// unknown route or method, a large body) is JSON like the rest; an unknown
/// customer gets one answer on every route; bodies with unknown fields, empty
/// ids or out-of-bounds values are refused.
#[tokio::test]
async fn every_error_is_json_and_inputs_are_strict() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let (status, body) = f.get("/v1/customers/%ff/offers", DECISION).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "bad_request"), "{body}");
    let long = format!("/v1/customers/{}/offers", "x".repeat(allot_api::MAX_URI_BYTES));
    let (status, body) = f.get(&long, DECISION).await;
    assert_eq!((status, error_code(&body)), (StatusCode::URI_TOO_LONG, "uri_too_long"));
    let (status, body) = f.call("PATCH", "/v1/plans", Some(PLANNER), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    // One answer for an unknown customer.
    let (s1, offers) = f.get("/v1/customers/nobody/offers", DECISION).await;
    let (s2, decisions) = f.get("/v1/customers/nobody/decisions", ADMIN).await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(offers, decisions);
    // Bounds and shapes.
    let (status, _) = f.get(&format!("/v1/customers/g1/offers?limit={}", allot_api::MAX_LIMIT + 1), DECISION).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = f.get("/v1/customers/g1/offers?channel=web%00x", DECISION).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = f.post("/v1/eligibility:batch", DECISION, json!({ "customer_ids": ["g1", ""] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for scenario in [json!(""), json!("  ")] {
        let (status, body) = f.post("/v1/plans", PLANNER, json!({ "scenario": scenario })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (status, _) = f.post("/v1/plans", PLANNER, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = f.post("/v1/plans", PLANNER, json!({ "scenario": "scenario", "activte": true })).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body.to_string().contains("activte"), "{status} {body}");
    let mut pick = pick_request(&[("o1", "gold", "2026-12-01T12:00:00Z", "A", 1.0)], 5.0);
    pick["orders"][0]["lines"][0]["qtty"] = json!(1);
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body.to_string().contains("qtty"), "{status} {body}");
    // Empty ids (found by schemathesis: an empty wave_id was planned).
    let mut pick = pick_request(&[("o1", "gold", "2026-12-01T12:00:00Z", "A", 1.0)], 5.0);
    pick["waves"][0]["wave_id"] = json!("");
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body.to_string().contains("wave_id"), "{status} {body}");
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick_request(&[("", "gold", "2026-12-01T12:00:00Z", "A", 1.0)], 5.0)).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body.to_string().contains("order_id"), "{status} {body}");
    let (status, _) = f.call("GET", "/v1/plans", Some(PLANNER), None).await;
    assert_eq!(status, StatusCode::OK, "nothing above queued or broke anything");
}

/// A plan id not of the store's form never reaches the file system: a
/// traversal to a directory holding a real manifest is 404 like an absent id.
#[tokio::test]
async fn plan_ids_are_checked_and_a_traversal_is_an_absent_plan() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let evil = f.dir.path().join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::copy(f.store().plan_dir("000001").join("manifest.json"), evil.join("manifest.json")).unwrap();
    let (absent, absent_body) = f.call("POST", "/v1/plans/999999/activate", Some(PLANNER), None).await;
    assert_eq!((absent, error_code(&absent_body)), (StatusCode::NOT_FOUND, "unknown_plan"));
    for id in ["..%2F..%2Fevil", "..%2F000001", "000001%00", "%2e%2e", "1e3", "000001.json"] {
        let (status, body) = f.call("POST", &format!("/v1/plans/{id}/activate"), Some(PLANNER), None).await;
        assert_eq!((status, error_code(&body)), (absent, "unknown_plan"), "{id}: {body}");
    }
    assert_eq!(f.history().len(), 1, "nothing was activated");
    assert!(allot_scenarios::plans::store::check_plan_id("000001").is_ok());
    assert!(allot_scenarios::plans::store::check_plan_id("../000001").is_err());
    // The plan label in the metrics is escaped (a version id is digits; the escaping holds for any).
    assert_eq!(allot_api::metrics::label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

/// The pick plan merges an order's lines of one SKU (through a map) and names
/// the SKUs the warehouse does not stock.
#[tokio::test]
async fn pick_plan_merges_lines_and_names_unknown_skus() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let one = pick_request(&[("o1", "gold", "2026-12-01T10:00:00Z", "A", 4.0)], 4.0);
    let mut split = one.clone();
    split["orders"][0]["lines"] = json!([{ "sku": "A", "qty": 1.5 }, { "sku": "A", "qty": 2.5 }]);
    let (s1, a) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, one).await;
    let (s2, b) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, split).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{a} {b}");
    assert_eq!(a["pick_plan"]["assignments"], b["pick_plan"]["assignments"]);
    let mut unknown = pick_request(&[("o1", "gold", "2026-12-01T10:00:00Z", "A", 1.0)], 4.0);
    unknown["orders"][0]["lines"] = json!([{ "sku": "A", "qty": 1 }, { "sku": "ZZ9", "qty": 1 }, { "sku": "QQ1", "qty": 2 }]);
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, unknown).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_pick_request"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("QQ1, ZZ9"), "{message}");
}

/// Served over TCP with the connection limits: slow clients (half a request
/// head, held open) up to and over the cap do not keep a normal request from
/// being answered; they are closed by the header-read timeout; what hyper
/// answers itself (a request target over 64 KiB) is JSON too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_over_the_cap_do_not_hold_the_service() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = allot_api::ConnectionLimits { max_connections: 4, header_read_timeout: Duration::from_millis(500) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(allot_api::serve_connections(listener, f.app.clone(), limits, async {
        let _ = stopped.await;
    }));
    let generous = Duration::from_secs(60);
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(c);
    }
    let request = |raw: Vec<u8>| async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(&raw).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(generous, c.read_to_end(&mut out)).await.expect("the service answers").unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    let ok = request(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()).await;
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains("\"ok\""), "{ok}");
    // Every slow client was closed by the server (end of stream, no answer needed).
    for mut c in slow {
        let mut buf = Vec::new();
        tokio::time::timeout(generous, c.read_to_end(&mut buf)).await.expect("a slow client is closed").ok();
    }
    // hyper's own 414 carries the service's JSON error.
    let huge = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "x".repeat(70 * 1024));
    let answer = request(huge.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(error_code(&body), "uri_too_long");
    let bad = request(b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n".to_vec()).await;
    assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("\"bad_request\""), "{bad}");
    let _ = stop.send(());
    tokio::time::timeout(generous, server).await.expect("the server stops").unwrap().unwrap();
}

#[tokio::test]
async fn pick_plan_assigns_waves_against_live_stock() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    // 4 units per wave. The gold order must go early to be on time; the standard
    // ones fit the late wave; `big` cannot be stocked (10 A on the shelf).
    let orders = [
        ("s-1", "standard", "2026-12-01T14:00:00Z", "C", 3.0),
        ("g-1", "gold", "2026-12-01T10:00:00Z", "A", 4.0),
        ("s-2", "standard", "2026-12-01T18:00:00Z", "C", 1.0),
        ("big", "gold", "2026-12-01T18:00:00Z", "A", 11.0),
    ];
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick_request(&orders, 4.0)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let plan = &body["pick_plan"];
    assert_eq!(plan["method"], "exact");
    let assigned: Vec<(String, String, bool)> = plan["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["order_id"].as_str().unwrap().to_string(), a["wave_id"].as_str().unwrap().to_string(), a["on_time"].as_bool().unwrap()))
        .collect();
    let expect = |o: &str, w: &str| (o.to_string(), w.to_string(), true);
    assert_eq!(assigned, [expect("g-1", "early"), expect("s-1", "late"), expect("s-2", "late")]);
    assert_eq!(plan["deferred"], json!([{ "order_id": "big", "reason": "stock" }]));

    // Live stock counts: after orders take 8 of the 10 A, g-1 (4 A) cannot be stocked.
    for i in 0..4 {
        f.post("/v1/events/inventory", FULFILMENT, order(&format!("o-{i}"), "A", 2.0, "standard")).await;
    }
    let (_, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick_request(&orders[..2], 4.0)).await;
    assert_eq!(body["pick_plan"]["deferred"], json!([{ "order_id": "g-1", "reason": "stock" }]), "{body}");

    // Errors name what is wrong.
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick_request(&[("x", "bronze", "2026-12-01T10:00:00Z", "A", 1.0)], 4.0)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_pick_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("bronze"), "{body}");
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick_request(&[("x", "gold", "2026-12-01T10:00:00Z", "A", -1.0)], 4.0)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_pick_request"));
    let (status, body) = f.post("/v1/warehouses/W1/pick-plan", FULFILMENT, pick_request(&[("x", "gold", "tomorrow", "A", 1.0)], 4.0)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "bad_request"), "{body}");
    let (status, body) = f.post("/v1/warehouses/W9/pick-plan", FULFILMENT, pick_request(&orders, 4.0)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "unknown_warehouse"));
}

#[tokio::test]
async fn consent_withdrawal_removes_all_offers_on_the_next_request() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    assert_eq!(offer_ids(&f.offers("g1").await).len(), 2);
    let (status, _) = f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-1", "customer_id": "g1", "consent": false })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let after = f.offers("g1").await;
    assert!(offer_ids(&after).is_empty(), "{after}");
    assert_eq!(exclusion(&after, "bundle").as_deref(), Some("live:consent"));
    assert_eq!(exclusion(&after, "single").as_deref(), Some("live:consent"));
    // Suppression is a hard rule too; others are untouched.
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-2", "customer_id": "g2", "suppressed": true })).await;
    assert_eq!(exclusion(&f.offers("g2").await, "bundle").as_deref(), Some("live:suppressed"));
    assert_eq!(offer_ids(&f.offers("g3").await), ["bundle"]);
    // Idempotent: a repeated event is acknowledged, not applied again; its id
    // reused with another body is refused with the original.
    let (status, body) = f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-1", "customer_id": "g1", "consent": false })).await;
    assert_eq!((status, &body["duplicate"]), (StatusCode::OK, &json!(true)));
    let (status, body) = f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-1", "customer_id": "g1", "consent": true })).await;
    assert_eq!((status, &body["original"]["consent"]), (StatusCode::CONFLICT, &json!(false)), "{body}");
    assert!(offer_ids(&f.offers("g1").await).is_empty());
    // Re-consent under a new id restores the plan's offers.
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-3", "customer_id": "g1", "consent": true })).await;
    assert_eq!(offer_ids(&f.offers("g1").await), ["bundle", "single"]);
}

/// The fallback never serves a custom offer the plan left closed: the
/// SKU-proliferation limit decides which customized variants exist.
#[tokio::test]
async fn the_fallback_keeps_closed_custom_offers_closed() {
    let custom = |scenario: &std::path::Path| {
        write_scenario(scenario);
        std::fs::write(scenario.join("offers.csv"), "offer_id,margin,discount_cost,custom\nbundle,10,0,true\nsingle,5,0,true\n").unwrap();
        let toml = std::fs::read_to_string(scenario.join("scenario.toml")).unwrap();
        std::fs::write(scenario.join("scenario.toml"), format!("{toml}\n[policy]\nmax_custom_offers = 1\n")).unwrap();
    };
    let mut f = Fixture::of_scenario(custom, DEFAULT_MAX_PLAN_AGE);
    // The plan opens the bundle (worth more to more customers), not the single.
    let g1 = f.offers("g1").await;
    assert_eq!(offer_ids(&g1), ["bundle"], "{g1}");
    assert_eq!(exclusion(&g1, "single").as_deref(), Some("not_selected:custom_limit"));
    (f.app, f.state) = Fixture::start(f.dir.path(), Duration::ZERO);
    let g1 = f.offers("g1").await;
    assert_eq!((g1["fallback_reason"].as_str(), offer_ids(&g1)), (Some("plan_stale"), vec!["bundle".to_string()]), "{g1}");
    assert_eq!(exclusion(&g1, "single").as_deref(), Some("not_selected:custom_limit"));
}

/// Stock below its safety level is never promised, by the fallback either:
/// a receipt first fills the shortfall (the live level used to start from
/// the plan's clamped 0, so a receipt smaller than the shortfall was served).
#[tokio::test]
async fn a_receipt_fills_the_shortfall_below_safety_stock_before_anything_is_promised() {
    // B: 5 on hand against a safety stock of 10.
    let short = |scenario: &std::path::Path| {
        write_scenario(scenario);
        std::fs::write(scenario.join("inventory.csv"), "warehouse_id,sku,on_hand,safety_stock\nW1,A,10,0\nW1,B,5,10\nW1,C,100,0\n").unwrap();
    };
    // A plan too old to trust: the fallback answers from live stock.
    let f = Fixture::of_scenario(short, Duration::ZERO);
    let receipt = |id: &str, qty: f64| json!({ "event_id": id, "kind": "receipt", "warehouse_id": "W1", "sku": "B", "qty": qty });
    let s1 = f.offers("s1").await;
    assert_eq!((s1["fallback_reason"].as_str(), offer_ids(&s1)), (Some("plan_stale"), vec!["single".to_string()]), "{s1}");
    assert_eq!(exclusion(&s1, "bundle").as_deref(), Some("live:out_of_stock"));
    f.post("/v1/events/inventory", FULFILMENT, receipt("r-1", 3.0)).await;
    let s1 = f.offers("s1").await;
    assert_eq!(exclusion(&s1, "bundle").as_deref(), Some("live:out_of_stock"), "2 units still short of safety: {s1}");
    f.post("/v1/events/inventory", FULFILMENT, receipt("r-2", 3.0)).await;
    assert_eq!(offer_ids(&f.offers("s1").await), ["bundle", "single"], "one unit above safety");
}

#[tokio::test]
async fn depleted_stock_keeps_the_bundle_for_the_higher_tier_only() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    assert_eq!(offer_ids(&f.offers("s1").await), ["bundle", "single"]);
    // 10 units of A; the plan holds 2 for gold. Standard orders take 8.
    for i in 0..4 {
        let (status, body) = f.post("/v1/events/inventory", FULFILMENT, order(&format!("o-{i}"), "A", 2.0, "standard")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let s1 = f.offers("s1").await;
    assert_eq!(offer_ids(&s1), ["single"], "{s1}");
    assert_eq!(exclusion(&s1, "bundle").as_deref(), Some("live:stock_reserved"));
    let g1 = f.offers("g1").await;
    assert_eq!(offer_ids(&g1), ["bundle", "single"], "{g1}");

    // Pick priorities are capped by live stock.
    let (status, picks) = f.get("/v1/warehouses/W1/pick-priorities", FULFILMENT).await;
    assert_eq!(status, StatusCode::OK);
    for p in picks["priorities"].as_array().unwrap() {
        assert!(p["units"].as_f64().unwrap() <= p["live_stock"].as_f64().unwrap() + 1e-9, "{p}");
    }
    let (status, body) = f.get("/v1/warehouses/W9/pick-priorities", FULFILMENT).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "unknown_warehouse"));

    // Gold orders take the rest: nobody gets the bundle, the single survives.
    f.post("/v1/events/inventory", FULFILMENT, order("o-gold", "A", 2.0, "gold")).await;
    let g1 = f.offers("g1").await;
    assert_eq!(exclusion(&g1, "bundle").as_deref(), Some("live:out_of_stock"), "{g1}");
    // A receipt brings it back for both tiers.
    f.post("/v1/events/inventory", FULFILMENT, json!({ "event_id": "rcv", "kind": "receipt", "warehouse_id": "W1", "sku": "A", "qty": 10 })).await;
    assert_eq!(offer_ids(&f.offers("s1").await), ["bundle", "single"]);
}

#[tokio::test]
async fn events_survive_a_restart() {
    let mut f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-1", "customer_id": "g1", "consent": false })).await;
    for i in 0..4 {
        f.post("/v1/events/inventory", FULFILMENT, order(&format!("o-{i}"), "A", 2.0, "standard")).await;
    }
    f.restart();
    assert!(offer_ids(&f.offers("g1").await).is_empty());
    assert_eq!(exclusion(&f.offers("s1").await, "bundle").as_deref(), Some("live:stock_reserved"));
    // Ids seen before the restart are still duplicates.
    let (status, _) = f.post("/v1/events/inventory", FULFILMENT, order("o-0", "A", 2.0, "standard")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_an_active_plan_or_with_a_stale_one_the_fallback_answers() {
    let f = Fixture::new(false, DEFAULT_MAX_PLAN_AGE);
    let (status, body) = f.call("GET", "/readyz", None, None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "no_active_plan"));
    let s1 = f.offers("s1").await;
    assert_eq!(s1["fallback"], true);
    assert_eq!(s1["fallback_reason"], "no_active_plan");
    assert_eq!(offer_ids(&s1), ["bundle", "single"], "ranked by expected value: {s1}");
    // The fallback still honours consent and stock.
    assert!(offer_ids(&f.offers("nc").await).is_empty());
    f.post("/v1/events/inventory", FULFILMENT, order("o-all", "B", 10.0, "gold")).await;
    assert_eq!(exclusion(&f.offers("s1").await, "bundle").as_deref(), Some("live:out_of_stock"));

    let stale = Fixture::new(true, Duration::ZERO);
    let g1 = stale.offers("g1").await;
    assert_eq!((g1["fallback"].clone(), g1["fallback_reason"].clone()), (json!(true), json!("plan_stale")));
    assert_eq!(offer_ids(&g1), ["bundle", "single"]);
    let (_, metrics) = stale.get("/metrics", PLANNER).await;
    let text = metrics.as_str().unwrap();
    assert!(text.contains("allot_fallback_decisions_total 1"), "{text}");
    assert!(text.contains("allot_plan_age_seconds"), "{text}");
    assert!(text.contains("allot_audit_records_dropped_total 0"), "{text}");
    assert!(text.lines().any(|l| l.strip_prefix("allot_audit_pending_records ").is_some_and(|n| n.parse::<usize>().is_ok())), "{text}");
}

#[tokio::test]
async fn a_store_error_serves_the_fallback_not_a_5xx() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    // The active version's eligibility table is lost; a reload must not take the service down.
    let table = f.store().plan_dir("000001").join("eligibility.parquet");
    std::fs::write(&table, b"not parquet").unwrap();
    f.state.reload();
    let (status, g1) = f.get("/v1/customers/g1/offers", DECISION).await;
    assert_eq!(status, StatusCode::OK, "{g1}");
    assert_eq!(g1["fallback"], true);
    assert_eq!(g1["fallback_reason"], "store_error");
}

/// Plans a second version of the fixture's scenario whose data says g1
/// withdrew consent; returns its id (not activated).
fn plan_g1_withdrawn(f: &Fixture) -> String {
    let newer = f.dir.path().join("scenario-newer");
    write_scenario(&newer);
    let customers = std::fs::read_to_string(newer.join("customers.csv")).unwrap().replace("g1,Z1,gold,true,false", "g1,Z1,gold,false,false");
    std::fs::write(newer.join("customers.csv"), customers).unwrap();
    plan_into(&f.store(), &newer)
}

/// A store error's fallback stands in for the active version with an older
/// one: a consent the active version's data withdraws stays withdrawn
/// (read from its customer table alone), and when that table cannot be read
/// either, consent is unknown and nothing is offered.
#[tokio::test]
async fn a_store_errors_fallback_keeps_the_active_versions_withdrawals() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let store = f.store();
    let second = plan_g1_withdrawn(&f);
    let (status, body) = f.call("POST", &format!("/v1/plans/{second}/activate"), Some(PLANNER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(offer_ids(&f.offers("g1").await).is_empty(), "no consent in the active version");
    // Its eligibility table is lost: version 1, where g1 consents, stands in.
    std::fs::write(store.plan_dir(&second).join("eligibility.parquet"), b"not parquet").unwrap();
    f.state.reload();
    let g1 = f.offers("g1").await;
    assert_eq!((g1["fallback_reason"].as_str(), g1["plan_version"].as_str()), (Some("store_error"), Some("000001")), "{g1}");
    assert!(offer_ids(&g1).is_empty(), "the active version's withdrawal holds on the fallback: {g1}");
    assert_eq!(exclusion(&g1, "bundle").as_deref(), Some("live:consent"));
    assert!(!offer_ids(&f.offers("s1").await).is_empty(), "other customers get the fallback's offers");
    // A canary of version 1 for everyone: the active version's withdrawal holds there too.
    let (status, body) = f.post("/v1/experiments", PLANNER, json!({ "experiment_id": "c1", "kind": "canary", "version": "000001", "share": 1.0 })).await;
    assert!(status.is_success(), "{body}");
    let g1 = f.offers("g1").await;
    assert_eq!(g1["experiments"][0]["arm"], "canary", "{g1}");
    assert!(offer_ids(&g1).is_empty(), "the active version's withdrawal holds on a canary: {g1}");
    // A live grant is newer than either version's data.
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "g", "customer_id": "g1", "consent": true })).await;
    assert!(!offer_ids(&f.offers("g1").await).is_empty(), "consent given live");
    // Its customer table is lost too: nobody's consent is known.
    std::fs::write(store.plan_dir(&second).join("customers.parquet"), b"not parquet").unwrap();
    f.state.reload();
    for customer in ["g1", "s1"] {
        let d = f.offers(customer).await;
        assert!(offer_ids(&d).is_empty(), "{d}");
        assert_eq!(exclusion(&d, "bundle").as_deref(), Some("live:consent_unknown"), "{d}");
    }
}

/// A receipt of the plan's own inbound is not counted twice: the plan's
/// stock already holds it, so a receipt is taken as its arrival first and
/// only what exceeds it adds (after a restart too).
#[tokio::test]
async fn a_receipt_of_the_plans_inbound_is_not_counted_twice() {
    let with_inbound = |dir: &std::path::Path| {
        write_scenario(dir);
        std::fs::write(dir.join("inbound.csv"), "warehouse_id,sku,qty,arrival_date\nW1,A,5,2026-12-02\n").unwrap();
    };
    let mut f = Fixture::of_scenario(with_inbound, DEFAULT_MAX_PLAN_AGE);
    async fn live_a(f: &Fixture) -> f64 {
        let (status, picks) = f.get("/v1/warehouses/W1/pick-priorities", FULFILMENT).await;
        assert_eq!(status, StatusCode::OK, "{picks}");
        let line = picks["priorities"].as_array().unwrap().iter().find(|p| p["sku"] == "A").cloned();
        line.unwrap_or_else(|| panic!("no pick line of A: {picks}"))["live_stock"].as_f64().unwrap()
    }
    assert_eq!(live_a(&f).await, 15.0, "10 on hand and 5 inbound");
    let receipt = |id: &str, qty: f64| json!({ "event_id": id, "kind": "receipt", "warehouse_id": "W1", "sku": "A", "qty": qty });
    let (status, body) = f.post("/v1/events/inventory", FULFILMENT, receipt("r1", 4.0)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(live_a(&f).await, 15.0, "4 of the 5 inbound arrived");
    f.post("/v1/events/inventory", FULFILMENT, receipt("r2", 3.0)).await;
    assert_eq!(live_a(&f).await, 17.0, "the last inbound unit, and 2 beyond it");
    // An adjustment is no arrival: it counts in full.
    f.post("/v1/events/inventory", FULFILMENT, json!({ "event_id": "a1", "kind": "adjustment", "warehouse_id": "W1", "sku": "A", "qty": 1 })).await;
    assert_eq!(live_a(&f).await, 18.0);
    f.restart();
    assert_eq!(live_a(&f).await, 18.0, "folded again at the start");
}

/// When no version loads in place of an active one that fails to, the plan
/// served so far is kept, through the fallback and under the active
/// version's facts: its withdrawals hold there too.
#[tokio::test]
async fn a_kept_plan_takes_the_failed_active_versions_withdrawals() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let store = f.store();
    let second = plan_g1_withdrawn(&f);
    assert_eq!(offer_ids(&f.offers("g1").await), ["bundle", "single"], "version 1, served");
    // Neither version loads any more; version 2 is activated.
    for version in ["000001", second.as_str()] {
        std::fs::write(store.plan_dir(version).join("eligibility.parquet"), b"not parquet").unwrap();
    }
    let (status, body) = f.call("POST", &format!("/v1/plans/{second}/activate"), Some(PLANNER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let g1 = f.offers("g1").await;
    assert_eq!((g1["fallback_reason"].as_str(), g1["plan_version"].as_str()), (Some("store_error"), Some("000001")), "{g1}");
    assert!(offer_ids(&g1).is_empty(), "version 2's withdrawal holds on the kept plan: {g1}");
    assert!(!offer_ids(&f.offers("s1").await).is_empty(), "{}", f.offers("s1").await);
}

/// The compaction tests' start: version 1 served, an order (which version 1
/// reads and a later version does not), then a second version planned and
/// activated over HTTP; returns the fixture and the second version.
async fn an_order_then_a_second_version_active() -> (Fixture, String) {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let order = json!({ "event_id": "o1", "kind": "order", "warehouse_id": "W1", "sku": "A", "qty": 2, "tier": "gold" });
    let (status, body) = f.post("/v1/events/inventory", FULFILMENT, order).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let second = plan_into(&f.store(), &f.dir.path().join("scenario"));
    let (status, body) = f.call("POST", &format!("/v1/plans/{second}/activate"), Some(PLANNER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (f, second)
}

/// A rollback recorded elsewhere (another replica, the CLI) to a version
/// older than the plan this replica serves, or a canary of one: this
/// replica's compaction, due before it has caught up, is bounded by the
/// versions the database says may be served (read under the activation
/// lock), so the stock moves they read stay. Before, it was bounded by what
/// this replica had folded and deleted them.
#[tokio::test]
async fn compaction_keeps_the_moves_of_a_version_served_elsewhere() {
    let (f, second) = an_order_then_a_second_version_active().await;
    // Elsewhere: a rollback to version 1, which reads the order.
    let db = Arc::new(allot_api::live::LiveDb::open_file(f.store().root()).unwrap());
    assert_eq!(db.rollback(&f.store()).unwrap().plan_id, "000001");
    // Here: compaction as the service runs it while serving `second` (its
    // inventory cutoff no later than the served plan's save), all else old.
    let served_saved = f.store().manifest(&second).unwrap().created_at;
    let now = chrono::Utc::now();
    let done = allot_api::EventLog::open(db.clone()).unwrap().compact(now, served_saved, &f.store()).unwrap();
    assert_eq!((done.inventory, db.inventory_compacted().unwrap()), (0, None), "the order version 1 reads stays");
    // `second` active again, but a canary of version 1 started elsewhere
    // (recorded, not yet folded here): the order still stays.
    db.activate(&f.store(), &second).unwrap();
    let start = json!({ "type": "experiment", "received_at": now, "event_id": "c1",
        "change": { "action": "start", "experiment_id": "c1", "kind": "canary", "version": "000001", "share": 0.5 } });
    let mut log = allot_api::EventLog::open(db.clone()).unwrap();
    log.record(serde_json::from_value(start).unwrap()).unwrap();
    assert_eq!(log.compact(now, served_saved, &f.store()).unwrap().inventory, 0, "the canary's version reads the order");
    // Once the canary stops, the same compaction deletes it.
    let stop = json!({ "type": "experiment", "received_at": now, "event_id": "c1/stop", "change": { "action": "stop", "experiment_id": "c1" } });
    log.record(serde_json::from_value(stop).unwrap()).unwrap();
    assert_eq!(log.compact(now, served_saved, &f.store()).unwrap().inventory, 1);
}

/// Compaction deletes inventory events no served plan needs; a version
/// saved before one of them cannot know its live stock, so activating it, or
/// rolling back to it, is refused (409 `moves_compacted`) and the active
/// plan stays; a version saved after them is activated as ever.
#[tokio::test]
async fn a_version_saved_before_compacted_stock_moves_is_not_activated() {
    let (f, second) = an_order_then_a_second_version_active().await;
    // The service compacts what is older than its event window; here, all.
    let db = Arc::new(allot_api::live::LiveDb::open_file(f.store().root()).unwrap());
    let now = chrono::Utc::now();
    assert_eq!(allot_api::EventLog::open(db.clone()).unwrap().compact(now, now, &f.store()).unwrap().inventory, 1);
    assert!(db.inventory_compacted().unwrap().is_some_and(|upto| upto <= now));
    for (what, path) in [("rollback", "/v1/plans/rollback".to_string()), ("activation", "/v1/plans/000001/activate".to_string())] {
        let (status, body) = f.call("POST", &path, Some(PLANNER), None).await;
        assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "moves_compacted"), "{what}: {body}");
    }
    assert_eq!(f.history().last().map(|a| a.plan_id.clone()), Some(second.clone()), "nothing recorded");
    // Nor does it serve a canary.
    let (status, body) = f.post("/v1/experiments", PLANNER, json!({ "experiment_id": "old", "kind": "canary", "version": "000001", "share": 0.5 })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "moves_compacted"), "{body}");
    let (status, body) = f.call("POST", &format!("/v1/plans/{second}/activate"), Some(PLANNER), None).await;
    assert_eq!(status, StatusCode::OK, "saved after the order: {body}");
    // Nor does it stand in for the active version when that fails to load:
    // the plan served so far is kept, through the fallback.
    std::fs::write(f.store().plan_dir(&second).join("eligibility.parquet"), b"not parquet").unwrap();
    f.state.reload();
    let g1 = f.offers("g1").await;
    assert_eq!((g1["fallback_reason"].as_str(), g1["plan_version"].as_str()), (Some("store_error"), Some(second.as_str())), "{g1}");
}

#[tokio::test]
async fn activate_and_rollback_swap_the_served_plan() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let store = f.store();
    let second = plan_into(&store, &f.dir.path().join("scenario"));
    let (status, plans) = f.get("/v1/plans", PLANNER).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((plans["active"].clone(), plans["serving"].clone()), (json!("000001"), json!("000001")));
    assert_eq!(plans["plans"].as_array().unwrap().len(), 2);

    let (status, body) = f.post(&format!("/v1/plans/{second}/activate"), PLANNER, json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["serving"], second.as_str());
    assert_eq!(f.offers("g1").await["plan_version"], second.as_str());

    let (status, body) = f.call("POST", "/v1/plans/rollback", Some(PLANNER), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(f.offers("g1").await["plan_version"], "000001");

    let (status, body) = f.call("POST", "/v1/plans/999999/activate", Some(PLANNER), None).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "unknown_plan"));
}

#[tokio::test]
async fn a_swap_is_atomic_for_concurrent_readers() {
    let f = Arc::new(Fixture::new(true, DEFAULT_MAX_PLAN_AGE));
    // The second version differs for g1: the bundle is no longer its candidate.
    let changed = f.dir.path().join("scenario-2");
    write_scenario(&changed);
    let uptake = std::fs::read_to_string(changed.join("uptake.csv")).unwrap().replace("g1,bundle,0.5\n", "");
    std::fs::write(changed.join("uptake.csv"), uptake).unwrap();
    let second = plan_into(&f.store(), &changed);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    let d = f.offers("g1").await;
                    // Whichever version answered, the offers are that version's whole answer.
                    match d["plan_version"].as_str() {
                        Some("000001") => assert_eq!(offer_ids(&d), ["bundle", "single"], "{d}"),
                        Some("000002") => assert_eq!(offer_ids(&d), ["single"], "{d}"),
                        _ => panic!("an answer from no version: {d}"),
                    }
                }
            })
        })
        .collect();
    for _ in 0..5 {
        f.post(&format!("/v1/plans/{second}/activate"), PLANNER, json!(null)).await;
        f.call("POST", "/v1/plans/rollback", Some(PLANNER), None).await;
    }
    for r in readers {
        r.await.unwrap();
    }
}

#[tokio::test]
async fn the_audit_reconstructs_what_a_customer_was_shown() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    f.offers("g1").await;
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w", "customer_id": "g1", "consent": false })).await;
    f.post("/v1/eligibility:batch", DECISION, json!({ "customer_ids": ["g1", "s1"] })).await;
    let (status, body) = f.get("/v1/customers/g1/decisions", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let decisions = body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{body}");
    assert_eq!(offer_ids(&decisions[0]), ["bundle", "single"]);
    assert!(offer_ids(&decisions[1]).is_empty());
    assert_eq!(exclusion(&decisions[1], "bundle").as_deref(), Some("live:consent"));
    for d in decisions {
        assert_eq!(d["plan_version"], "000001");
        assert_eq!(d["fallback"], false);
        assert!(d["at"].as_str().is_some());
    }
    let (status, none) = f.get("/v1/customers/nobody/decisions", ADMIN).await;
    assert_eq!((status, error_code(&none)), (StatusCode::NOT_FOUND, "unknown_customer"));
}

/// Right to erasure: the customer's audit records and consent events go,
/// other customers keep theirs, and the erasure is itself in the audit
/// without the customer's id. A withdrawal outlives it (after a restart
/// too): an erasure never makes reachable a customer who asked not to be;
/// a customer who only granted is served as the plan's data says again.
#[tokio::test]
async fn erasure_removes_a_customers_audit_and_consent_events_keeps_a_withdrawal_and_is_audited() {
    let mut f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    f.offers("g1").await;
    f.offers("s1").await;
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w", "customer_id": "g1", "consent": false })).await;
    assert!(offer_ids(&f.offers("g1").await).is_empty(), "withdrawn");
    let (status, erased) = f.call("DELETE", "/v1/customers/g1/personal-data", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased, json!({ "customer_id": "g1", "audit_records": 2, "consent_events": 1, "objection_kept": true }));
    let (_, audit) = f.get("/v1/customers/g1/decisions", ADMIN).await;
    assert_eq!(audit["decisions"], json!([]), "{audit}");
    let (_, other) = f.get("/v1/customers/s1/decisions", ADMIN).await;
    assert_eq!(other["decisions"].as_array().unwrap().len(), 1, "{other}");
    let g1 = f.offers("g1").await;
    assert!(offer_ids(&g1).is_empty(), "still withdrawn after the erasure: {g1}");
    assert_eq!(exclusion(&g1, "bundle").as_deref(), Some("live:consent"));
    f.restart();
    assert!(offer_ids(&f.offers("g1").await).is_empty(), "still withdrawn after a restart");
    // The same event id is new again: nothing of the erased event is kept;
    // a new grant is the customer's to give.
    let (status, _) = f.post("/v1/events/consent", DECISION, json!({ "event_id": "w", "customer_id": "g1", "consent": true })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(offer_ids(&f.offers("g1").await), ["bundle", "single"], "consent given again");
    // Erased again, having only granted: no objection, the plan's consent applies.
    let (status, erased) = f.call("DELETE", "/v1/customers/g1/personal-data", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased, json!({ "customer_id": "g1", "audit_records": 3, "consent_events": 2, "objection_kept": false }), "the grant and the kept withdrawal");
    assert_eq!(offer_ids(&f.offers("g1").await), ["bundle", "single"], "the override is gone: the plan's consent applies");
    f.restart();
    assert_eq!(offer_ids(&f.offers("g1").await), ["bundle", "single"], "after a restart too");
    // The erasure's own record names no one.
    let db = rusqlite::Connection::open(f.store().root().join(allot_api::live::LIVE_DB_FILE)).unwrap();
    // Chunk bodies are stored compressed (zstd).
    let mut chunks = db.prepare("SELECT body FROM allot_audit_chunks ORDER BY id").unwrap();
    let bodies = chunks.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap().map(|b| String::from_utf8(zstd::stream::decode_all(b.unwrap().as_slice()).unwrap()).unwrap());
    let body = bodies.into_iter().find(|b| b.contains("erasure")).expect("the erasure's record");
    assert!(body.contains(r#""audit_records":2"#) && !body.contains("g1"), "{body}");
    // Only admins; an unknown customer is 404 as everywhere.
    let (status, _) = f.call("DELETE", "/v1/customers/g1/personal-data", Some(DECISION), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, none) = f.call("DELETE", "/v1/customers/nobody/personal-data", Some(ADMIN), None).await;
    assert_eq!((status, error_code(&none)), (StatusCode::NOT_FOUND, "unknown_customer"));
}

#[tokio::test]
async fn openapi_lists_every_route_with_its_roles() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let (status, doc) = f.get("/openapi.json", DECISION).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for r in allot_api::ROUTES {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        assert!(op["summary"].is_string(), "{} {} missing", r.method, r.path);
    }
    assert_eq!(doc["paths"]["/v1/plans/{id}/activate"]["post"]["x-roles"], json!(["planner", "admin"]));
    assert_eq!(doc["paths"]["/v1/plans/{id}/activate"]["post"]["parameters"][0]["name"], "id");
}

#[tokio::test]
async fn a_planning_job_runs_in_the_background_and_can_activate_its_plan() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let (status, job) = f.post("/v1/plans", PLANNER, json!({ "scenario": "scenario", "activate": true, "solver": "exact" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert!(job["status"] == "queued" || job["status"] == "running", "{job}");
    let done = wait_for_job(&f, job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["plan_id"], "000002");
    assert_eq!(f.offers("g1").await["plan_version"], "000002", "the activated plan is served");
    let (_, plans) = f.get("/v1/plans", PLANNER).await;
    assert_eq!(plans["active"], "000002");
    assert_eq!(plans["jobs"].as_array().unwrap().len(), 1);

    // A broken scenario fails its job with the loader's message; nothing is saved.
    let broken = f.dir.path().join("broken");
    write_scenario(&broken);
    std::fs::write(broken.join("offers.csv"), "offer_id,margin,discount_cost\nbundle,ten,0\nsingle,5,0\n").unwrap();
    let (status, job) = f.post("/v1/plans", PLANNER, json!({ "scenario": "broken" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let failed = wait_for_job(&f, job["job_id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("offers.csv") && error.contains("margin"), "{error}");
    assert_eq!(f.store().ids().unwrap().len(), 2);

    // Paths are checked before a job is queued.
    let (status, body) = f.post("/v1/plans", PLANNER, json!({ "scenario": "nowhere" })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "scenario_not_found"));
    // Outside the root is answered exactly like absent.
    let (status, body) = f.post("/v1/plans", PLANNER, json!({ "scenario": "../" })).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "scenario_not_found"));
    // A variant inside the root whose base lies outside fails its job like a missing base.
    let outside = tempfile::tempdir().unwrap();
    write_scenario(outside.path());
    let escape = f.dir.path().join("escape");
    std::fs::create_dir_all(&escape).unwrap();
    std::fs::write(escape.join("scenario.toml"), format!("base = {:?}\n", outside.path().display().to_string())).unwrap();
    let (status, job) = f.post("/v1/plans", PLANNER, json!({ "scenario": "escape" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let failed = wait_for_job(&f, job["job_id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("under the scenario root"), "{failed}");
    assert_eq!(f.store().ids().unwrap().len(), 2, "nothing was planned from outside the root");
    let (status, body) = f.post("/v1/plans", PLANNER, json!({ "scenario": "scenario", "solver": "magic" })).await;
    assert!(status.is_client_error() && error_code(&body) == "bad_request", "{status} {body}");
    let (status, body) = f.get("/v1/jobs/job-99", PLANNER).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "unknown_job"));

    // A re-plan of the active version's scenario starts warm from it, and its version says so.
    let (status, job) = f.post("/v1/plans", PLANNER, json!({ "scenario": "scenario", "solver": "decomposed" })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let done = wait_for_job(&f, job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let replan = f.store().manifest(done["plan_id"].as_str().unwrap()).unwrap();
    assert_eq!(replan.warm_from.as_deref(), Some("000002"));
    assert_eq!(replan.replan_of.as_deref(), Some("000002"));
    assert_eq!(f.store().manifest("000002").unwrap().warm_from, None, "the exact solver starts cold");
}

/// Parallel activations of two versions through the service all succeed,
/// each recorded once, and leave the served plan the active one (before:
/// `cannot rename into active.json`, a 500, found by schemathesis with two
/// workers).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_all_succeed_and_serve_the_active_plan() {
    let f = Arc::new(Fixture::new(true, DEFAULT_MAX_PLAN_AGE));
    let second = plan_into(&f.store(), &f.dir.path().join("scenario"));
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let f = f.clone();
            let id = if i % 2 == 0 { "000001".to_string() } else { second.clone() };
            tokio::spawn(async move { f.call("POST", &format!("/v1/plans/{id}/activate"), Some(PLANNER), None).await })
        })
        .collect();
    for c in calls {
        let (status, body) = c.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, plans) = f.get("/v1/plans", PLANNER).await;
    assert_eq!(plans["active"], plans["serving"], "{plans}");
    assert_eq!(f.history().len(), 21);
}

/// A version-2 plan (contact costs, per-pair values: `tests/golden/channels_costs`)
/// answers each pair's own expected value `value × p - cost_per_contact` and its
/// acceptance probability, not one derived from the offer's margin.
#[tokio::test]
async fn pair_values_and_contact_costs_reach_the_answer() {
    let golden = |scenario: &std::path::Path| {
        for entry in std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/channels_costs")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), scenario.join(entry.file_name())).unwrap();
        }
    };
    let mut f = Fixture::of_scenario(golden, DEFAULT_MAX_PLAN_AGE);
    let c1 = f.offers("c1").await;
    assert_eq!(offer_ids(&c1), ["o1", "o2"]);
    for (i, value, uptake) in [(0, 9.0, 0.5), (1, 1.0, 0.5)] {
        let o = &c1["offers"][i];
        assert!((o["expected_value"].as_f64().unwrap() - value).abs() < 1e-6, "{o}");
        assert!((o["uptake"].as_f64().unwrap() - uptake).abs() < 1e-6, "{o}");
    }
    let c2 = f.offers("c2").await;
    assert_eq!(offer_ids(&c2), ["o3"]);
    assert!((c2["offers"][0]["uptake"].as_f64().unwrap() - 0.4).abs() < 1e-6, "{c2}");
    assert_eq!(exclusion(&c2, "o1").as_deref(), Some("not_selected:no_value"));
    // The plan's offers name channels: a channel gets its own offers only.
    for (channel, expected) in [("email", vec!["o1"]), ("call", vec!["o2"]), ("sms", vec![])] {
        let (status, answer) = f.get(&format!("/v1/customers/c1/offers?channel={channel}"), DECISION).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(offer_ids(&answer), expected, "{channel}");
        assert_eq!(answer["channel"], channel);
    }
    // The fallback (this plan, too old to trust) sets the plan's selection
    // aside but never serves a pair worth nothing: c2's o1 and o2 cost more
    // than they are expected to bring.
    (f.app, f.state) = Fixture::start(f.dir.path(), Duration::ZERO);
    let c2 = f.offers("c2").await;
    assert_eq!(c2["fallback_reason"], "plan_stale", "{c2}");
    assert_eq!(offer_ids(&c2), ["o3"]);
    for offer in ["o1", "o2"] {
        assert_eq!(exclusion(&c2, offer).as_deref(), Some("not_selected:no_value"), "{c2}");
    }
}
