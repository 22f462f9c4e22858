//! The live-state database (`live.db` in the plan store): the old file mode's
//! logs imported once, idempotency scoped per event kind, strict events, a
//! corrupt row refused at start-up, private files, job records kept.

mod common;

use std::path::Path;

use allot_api::live::import::IMPORTED_SUFFIX;
use allot_api::live::LIVE_DB_FILE;
use allot_api::{ServiceConfig, ServiceState, DEFAULT_MAX_PLAN_AGE};
use axum::http::StatusCode;
use common::*;
use serde_json::json;

fn fixture_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/file_mode").join(name)
}

fn offer_count(decision: &serde_json::Value) -> usize {
    decision["offers"].as_array().unwrap().len()
}

/// The old file mode's files of the fixture.
const OLD_FILES: [&str; 4] = ["events.jsonl", "audit.jsonl", "activations.jsonl", "active.json"];

/// A store as the old file mode left it: versions 000001 and 000002 (the
/// same scenario planned twice), no activation in the live-state database,
/// and the fixture's files (`names`) copied in, not yet imported.
fn old_file_mode_store(names: &[&str]) -> Fixture {
    let f = Fixture::new(false, DEFAULT_MAX_PLAN_AGE);
    assert_eq!(plan_into(&f.store(), &f.dir.path().join("scenario")), "000002");
    let store = f.dir.path().join("store");
    for name in names {
        std::fs::copy(fixture_file(name), store.join(name)).unwrap();
    }
    f
}

/// Protects the upgrade: what the old file mode acknowledged (a withdrawal
/// even behind a torn line, the active plan) is in force after the first
/// start, imported once.
#[tokio::test]
async fn the_old_file_modes_logs_are_imported_once_then_set_aside() {
    let mut f = old_file_mode_store(&OLD_FILES);
    let store = f.dir.path().join("store");
    f.restart();
    for name in OLD_FILES {
        assert!(!store.join(name).exists(), "{name} left in place");
        assert!(store.join(format!("{name}{IMPORTED_SUFFIX}")).exists(), "{name} not set aside");
    }
    let (_, plans) = f.get("/v1/plans", PLANNER).await;
    assert_eq!((&plans["active"], &plans["serving"]), (&json!("000002"), &json!("000002")), "{plans}");
    // The audit: g1's two records, read before any new decision.
    let (status, body) = f.get("/v1/customers/g1/decisions", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decisions"].as_array().unwrap().len(), 2, "{body}");
    // w-1, and w-2 that was glued behind a torn order, are in force; s1 suppressed.
    assert_eq!(offer_count(&f.offers("g1").await), 0);
    assert_eq!(offer_count(&f.offers("g2").await), 0, "the withdrawal behind the torn line was lost");
    assert_eq!(offer_count(&f.offers("s1").await), 0);
    // Imported ids are known: the same event again is a duplicate.
    let (status, body) = f.post("/v1/events/consent", DECISION, json!({ "event_id": "w-1", "customer_id": "g1", "consent": false })).await;
    assert_eq!((status, &body["duplicate"]), (StatusCode::OK, &json!(true)), "{body}");
    // A crash between the import's commit and the rename imports nothing twice.
    for name in ["audit.jsonl", "activations.jsonl"] {
        std::fs::copy(fixture_file(name), store.join(name)).unwrap();
    }
    f.restart();
    let (_, body) = f.get("/v1/customers/g2/decisions", ADMIN).await;
    let decisions = body["decisions"].as_array().unwrap();
    assert_eq!(decisions.iter().filter(|d| d["at"] == "2026-11-30T09:30:00Z").count(), 1, "imported twice: {body}");
    assert_eq!(f.history().len(), 4, "the history imported twice");
}

/// Protects "a lost history line makes rollback restore the wrong plan": the
/// fixture's history (a rollback glued behind a torn line, a torn last line)
/// is imported exactly, so rollbacks walk back through it as the old store's
/// would have.
#[tokio::test]
async fn a_rollback_after_the_import_restores_the_plan_before() {
    let mut f = old_file_mode_store(&["activations.jsonl", "active.json"]);
    f.restart();
    let steps: Vec<(String, String)> = f.history().into_iter().map(|a| (a.action, a.plan_id)).collect();
    let expected = [("activate", "000001"), ("activate", "000002"), ("rollback", "000001"), ("activate", "000002")];
    assert_eq!(steps, expected.map(|(a, p)| (a.to_string(), p.to_string())));
    assert_eq!(f.history()[2].at.to_rfc3339(), "2026-11-30T10:00:00+00:00", "each line's time is kept");
    let (status, body) = f.post("/v1/plans/rollback", PLANNER, json!(null)).await;
    assert_eq!((status, &body["active"], &body["serving"]), (StatusCode::OK, &json!("000001"), &json!("000001")), "{body}");
    // Were the glued rollback lost, the stack would still hold 000002 below.
    let (status, body) = f.post("/v1/plans/rollback", PLANNER, json!(null)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, "nothing_to_roll_back"), "{body}");
    assert_eq!(f.history().len(), 5, "a refused rollback records nothing");
}

/// The plan the old service served (`active.json`) is served after the
/// upgrade even when the history's last line names another (a crash between
/// the two writes): an activation of it is appended.
#[tokio::test]
async fn the_old_active_plan_is_served_when_the_history_ends_elsewhere() {
    let mut f = old_file_mode_store(&["active.json"]);
    let store = f.dir.path().join("store");
    std::fs::write(store.join("activations.jsonl"), "{\"plan_id\":\"000001\",\"at\":\"2026-11-30T08:00:00Z\",\"action\":\"activate\"}\n").unwrap();
    f.restart();
    let steps: Vec<_> = f.history().into_iter().map(|a| a.plan_id).collect();
    assert_eq!(steps, ["000001", "000002"]);
    assert_eq!(f.offers("g1").await["plan_version"], "000002");
}

/// Protects the history from a silent merge: an old history found next to a
/// database that already has activations (appending it would change the
/// active plan) stops the start with a clear error; the file stays.
#[test]
fn an_old_history_is_never_appended_to_another() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let store = f.dir.path().join("store");
    std::fs::copy(fixture_file("activations.jsonl"), store.join("activations.jsonl")).unwrap();
    let config = ServiceConfig { keys: keys(), max_plan_age: DEFAULT_MAX_PLAN_AGE, scenario_root: f.dir.path().to_path_buf(), max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE, event_window: allot_api::DEFAULT_EVENT_WINDOW, drift: Default::default() };
    let err = ServiceState::open(&store, config).unwrap_err().to_string();
    assert!(err.contains("activations.jsonl") && err.contains("already holds 1 plan activations"), "{err}");
    assert!(store.join("activations.jsonl").is_file(), "a history that was not imported must stay");
    assert_eq!(f.history().len(), 1);
}

/// Protects against silently dropping an unreadable log: a corrupt line in the
/// middle stops the start, naming the file and line.
#[test]
fn a_corrupt_line_in_an_old_log_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("store/events.jsonl"), "{\"type\":\"consent\",\"oops\"\n{\"type\":\"nothing\"}\n").unwrap();
    let config = ServiceConfig { keys: keys(), max_plan_age: DEFAULT_MAX_PLAN_AGE, scenario_root: dir.path().to_path_buf(), max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE, event_window: allot_api::DEFAULT_EVENT_WINDOW, drift: Default::default() };
    let err = ServiceState::open(dir.path().join("store"), config.clone()).unwrap_err().to_string();
    assert!(err.contains("events.jsonl") && err.contains("line 1"), "{err}");
    assert!(dir.path().join("store/events.jsonl").exists(), "a log that was not imported must stay");
    // The same for the activation history: a whole line that is no activation.
    std::fs::remove_file(dir.path().join("store/events.jsonl")).unwrap();
    std::fs::write(dir.path().join("store/activations.jsonl"), "{\"plan_id\":\"000001\",\"at\":\"2026-11-30T08:00:00Z\",\"action\":\"activate\"}\n{\"plan_id\":\"000001\"}\n").unwrap();
    let err = ServiceState::open(dir.path().join("store"), config).unwrap_err().to_string();
    assert!(err.contains("activations.jsonl") && err.contains("line 2"), "{err}");
    assert!(dir.path().join("store/activations.jsonl").exists(), "a history that was not imported must stay");
}

/// Protects "a withdrawal is never taken for a duplicate": ids are scoped per
/// kind, and an id reused with another body is refused with the original.
#[tokio::test]
async fn event_ids_are_scoped_per_kind_and_a_reused_id_is_refused_with_the_original() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let order = json!({ "event_id": "e-1", "kind": "order", "warehouse_id": "W1", "sku": "C", "qty": 1.0, "tier": "gold" });
    assert_eq!(f.post("/v1/events/inventory", FULFILMENT, order.clone()).await.0, StatusCode::ACCEPTED);
    let withdrawal = json!({ "event_id": "e-1", "customer_id": "g1", "consent": false });
    let (status, body) = f.post("/v1/events/consent", DECISION, withdrawal.clone()).await;
    assert_eq!((status, &body["duplicate"]), (StatusCode::ACCEPTED, &json!(false)), "{body}");
    assert_eq!(offer_count(&f.offers("g1").await), 0, "the withdrawal was not applied");
    // The same event again: the original result, nothing applied twice.
    let (status, body) = f.post("/v1/events/inventory", FULFILMENT, order.clone()).await;
    assert_eq!((status, &body["duplicate"]), (StatusCode::OK, &json!(true)), "{body}");
    // The same id with another body: 409 with the original.
    let mut bigger = order.clone();
    bigger["qty"] = json!(5);
    let (status, body) = f.post("/v1/events/inventory", FULFILMENT, bigger).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!((error_code(&body), &body["original"]), ("event_id_conflict", &order), "{body}");
    let db = rusqlite::Connection::open(f.dir.path().join("store").join(LIVE_DB_FILE)).unwrap();
    let rows: i64 = db.query_row("SELECT count(*) FROM allot_events WHERE event_id = 'e-1'", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 2, "one inventory and one consent event");
}

/// Protects live stock and consent from bad input: bounds, empty and unknown
/// names, unknown fields each answer 422 naming the field.
#[tokio::test]
async fn events_are_strict_and_errors_name_the_field() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let inventory = |patch: serde_json::Value| {
        let mut e = json!({ "event_id": "i", "kind": "receipt", "warehouse_id": "W1", "sku": "A", "qty": 1 });
        e.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        e
    };
    for (patch, field) in [
        (json!({ "qty": 1e308 }), "qty"),
        (json!({ "qty": -2e9, "kind": "adjustment" }), "qty"),
        (json!({ "warehouse_id": "" }), "warehouse_id"),
        (json!({ "sku": " " }), "sku"),
        (json!({ "event_id": "" }), "event_id"),
        (json!({ "warehouse_id": "W9" }), "warehouse_id"),
        (json!({ "sku": "Z" }), "sku"),
        (json!({ "kind": "order", "tier": "platinum" }), "tier"),
        (json!({ "qtty": 3 }), "qtty"),
    ] {
        let (status, body) = f.post("/v1/events/inventory", FULFILMENT, inventory(patch.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{patch}: {body}");
    }
    for (event, field) in [
        (json!({ "event_id": "c", "customer_id": "nobody", "consent": false }), "customer_id"),
        (json!({ "event_id": "c", "customer_id": "g1", "consnet": false }), "consnet"),
        (json!({ "event_id": "c", "customer_id": "", "consent": false }), "customer_id"),
    ] {
        let (status, body) = f.post("/v1/events/consent", DECISION, event.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{event}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{event}: {body}");
    }
    // Nothing of the above reached live stock: 10 A planned, still sellable.
    assert_eq!(offer_count(&f.offers("g1").await), 2);
}

/// Protects start-up from reading a damaged database as if it were whole.
#[tokio::test]
async fn a_corrupt_stored_event_stops_the_start_naming_its_row() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w", "customer_id": "g1", "consent": false })).await;
    let db = rusqlite::Connection::open(f.dir.path().join("store").join(LIVE_DB_FILE)).unwrap();
    db.execute("UPDATE allot_events SET body = '{\"type\":\"consent\"}'", []).unwrap();
    drop(db);
    let config = ServiceConfig { keys: keys(), max_plan_age: DEFAULT_MAX_PLAN_AGE, scenario_root: f.dir.path().to_path_buf(), max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE, event_window: allot_api::DEFAULT_EVENT_WINDOW, drift: Default::default() };
    let err = ServiceState::open(f.dir.path().join("store"), config).unwrap_err().to_string();
    assert!(err.contains("allot_events") && err.contains("seq 1"), "{err}");
}

/// Protects personal data: the database and its WAL are readable only by the
/// service's user.
#[cfg(unix)]
#[tokio::test]
async fn the_live_database_is_private_to_the_service_user() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    f.post("/v1/events/consent", DECISION, json!({ "event_id": "w", "customer_id": "g1", "consent": false })).await;
    f.offers("g1").await;
    // A data-subject access request writes the queued audit first.
    f.get("/v1/customers/g1/decisions", ADMIN).await;
    let store = f.dir.path().join("store");
    for name in [LIVE_DB_FILE.to_string(), format!("{LIVE_DB_FILE}-wal")] {
        let mode = std::fs::metadata(store.join(&name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
    }
}

/// Protects the job list across a restart: a finished job is still listed.
#[tokio::test]
async fn planning_jobs_survive_a_restart() {
    let mut f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let (status, job) = f.post("/v1/plans", PLANNER, json!({ "scenario": "scenario" })).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = wait_for_job(&f, job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    f.restart();
    let (_, again) = f.get(&format!("/v1/jobs/{}", job["job_id"].as_str().unwrap()), PLANNER).await;
    assert_eq!((&again["status"], &again["plan_id"]), (&done["status"], &done["plan_id"]));
}

/// Protects "a replica cut off from the database fails closed": once the last
/// contact is older than the bound, every answer is the fallback with no offer
/// (consent cannot be trusted), `/readyz` is 503 naming the reason; a new
/// contact restores the plan. The clock is moved through the seam the shared
/// sync calls, so no PostgreSQL is needed (tests/scaleout/replicas.py stops a
/// real one).
#[tokio::test]
async fn a_replica_silent_past_the_bound_answers_the_fallback_with_no_offers() {
    let f = Fixture::new(true, DEFAULT_MAX_PLAN_AGE);
    let served = f.offers("g1").await;
    assert!(offer_count(&served) > 0 && served["fallback"] == json!(false), "{served}");

    let bound = allot_api::DEFAULT_MAX_LIVE_SILENCE;
    let now = std::time::Instant::now();
    f.state.note_live_contact(now - bound + std::time::Duration::from_millis(500));
    let within = f.offers("g1").await;
    assert_eq!(within["fallback"], json!(false), "silent for less than the bound: {within}");

    f.state.note_live_contact(now - bound * 2); // an older contact is ignored
    assert_eq!(f.offers("g1").await["fallback"], json!(false));
    std::thread::sleep(std::time::Duration::from_millis(600)); // past the bound now
    for customer in ["g1", "s1"] {
        let d = f.offers(customer).await;
        assert_eq!((&d["fallback"], &d["fallback_reason"]), (&json!(true), &json!(allot_api::LIVE_STATE_STALE)), "{d}");
        assert_eq!(offer_count(&d), 0, "a stale replica showed offers: {d}");
        let reasons: Vec<_> = d["excluded"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap().to_string()).collect();
        assert!(reasons.iter().any(|r| r == "live:consent_unknown"), "{d}");
    }
    let (status, body) = f.get("/readyz", DECISION).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!(allot_api::LIVE_STATE_STALE)), "{body}");

    f.state.note_live_contact(std::time::Instant::now());
    let back = f.offers("g1").await;
    assert_eq!((offer_count(&back), &back["fallback"]), (offer_count(&served), &json!(false)), "{back}");
    assert_eq!(f.get("/readyz", DECISION).await.0, StatusCode::OK);
}
