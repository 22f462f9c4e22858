//! A plan store written by allot before files carried a `schema_version`
//! (`tests/fixtures/store-v1`: `allot plan tests/golden/stock_lanes --activate`
//! then `allot plan tests/golden/fairness --activate`, both with the code of
//! that time) stays readable: listed, shown, served, activated and rolled back
//! by today's code, its activation history (`activations.jsonl`,
//! `active.json`) imported into the store's live-state database on first use.
//! A file of a newer schema is refused with a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use allot_api::{router, ApiKey, ApiKeys, Role, ServiceConfig, ServiceState};
use allot_scenarios::schema::SCHEMA_VERSION;
use allot_scenarios::PlanStore;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

mod support;

const DECISION: &str = "decision-key-0123456789";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

/// A copy of the fixture to change (activate, roll back, corrupt).
fn copy_of_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    support::copy_tree(&fixture(), &tmp.path().join("store"));
    tmp
}

fn allot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allot")).args(args).env_remove("ALLOT_STORE").output().unwrap()
}

fn stdout_of(out: Output) -> String {
    assert!(out.status.success(), "allot failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_fixture_is_a_version_1_store() {
    for f in ["active.json", "plans/000001/manifest.json", "plans/000001/kpis.json", "plans/000002/serving.json"] {
        assert!(json(&fixture().join(f)).get("schema_version").is_none(), "{f} of the fixture must stay as version 1 wrote it");
    }
}

#[test]
fn a_version_1_store_is_listed_shown_and_served() {
    let tmp = copy_of_fixture();
    let root = tmp.path().join("store");
    let store = PlanStore::open(&root).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["000001", "000002"]);
    assert!(list.iter().all(|m| m.solver == "exact" && m.scenario_hash.len() == 64));
    assert_eq!(support::active(&root).as_deref(), Some("000002"), "the old active.json, imported");
    assert!((store.kpis("000001").unwrap().objective - 12.9).abs() < 1e-6, "stock_lanes' hand-worked optimum");
    let serving = store.serving("000002").unwrap();
    assert_eq!(serving.tiers.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["platinum", "standard"]);
    let mut rows = 0;
    store.for_each_eligibility("000002", |_| rows += 1).unwrap();
    assert!(rows > 0);

    let listed = stdout_of(allot(&["plans", "list", "--store", root.to_str().unwrap()]));
    assert!(listed.contains("* 000002") && listed.contains("  000001"), "{listed}");
    let shown: Value = serde_json::from_str(&stdout_of(allot(&["plans", "show", "000001", "--store", root.to_str().unwrap()]))).unwrap();
    assert_eq!(shown["manifest"]["id"], "000001");
    assert!((shown["kpis"]["objective"].as_f64().unwrap() - 12.9).abs() < 1e-6);

    // The decision service loads the active version 1 plan and answers from it.
    let keys = ApiKeys { keys: vec![ApiKey { key: DECISION.to_string(), role: Role::Decision }] };
    let config = ServiceConfig { keys, max_plan_age: std::time::Duration::from_secs(100 * 365 * 24 * 3600), scenario_root: tmp.path().to_path_buf(), max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE, event_window: allot_api::DEFAULT_EVENT_WINDOW, drift: Default::default() };
    let app = router(Arc::new(ServiceState::open(&root, config).unwrap()));
    let req = Request::builder().uri("/v1/customers/a1/offers").header("authorization", format!("Bearer {DECISION}")).body(Body::empty()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, body) = rt.block_on(async {
        let response = app.oneshot(req).await.unwrap();
        (response.status(), response.into_body().collect().await.unwrap().to_bytes())
    });
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["plan_version"], "000002", "{body}");
}

#[test]
fn a_version_1_store_activates_and_rolls_back() {
    let tmp = copy_of_fixture();
    let root = tmp.path().join("store");
    let r = root.to_str().unwrap();
    stdout_of(allot(&["plans", "activate", "000001", "--store", r]));
    for name in ["activations.jsonl", "active.json"] {
        assert!(!root.join(name).exists(), "{name} left in place after its import");
        assert!(root.join(format!("{name}.imported")).is_file(), "{name} not set aside");
    }
    assert_eq!(support::active(&root).as_deref(), Some("000001"));
    // The history: the fixture's two version 1 lines, imported, then today's.
    let live = support::live(&root);
    let history = live.activations().unwrap();
    assert_eq!(history.iter().map(|a| a.plan_id.as_str()).collect::<Vec<_>>(), ["000001", "000002", "000001"]);
    assert_eq!(history[0].at.to_rfc3339(), "2026-12-01T23:54:54.568726+00:00", "the old line's time is kept (to the microsecond)");
    let rolled = stdout_of(allot(&["plans", "rollback", "--store", r]));
    assert!(rolled.contains("plan 000002 is active"), "{rolled}");
    assert_eq!(support::active(&root).as_deref(), Some("000002"));
    let store = PlanStore::open(&root).unwrap();
    assert_eq!(live.rollback(&store).unwrap().plan_id, "000001");
}

/// Protects the history across the upgrade: an old history whose last line
/// was torn by a crash is imported without it, and a rollback after the
/// import walks back through the imported activations.
#[test]
fn a_torn_old_history_is_imported_and_rolled_back_through() {
    let tmp = copy_of_fixture();
    let root = tmp.path().join("store");
    let history = root.join("activations.jsonl");
    let mut text = std::fs::read_to_string(&history).unwrap();
    text.push_str("{\"schema_version\":2,\"plan_id\":\"0000");
    std::fs::write(&history, text).unwrap();
    let live = support::live(&root);
    let imported: Vec<_> = live.activations().unwrap().into_iter().map(|a| a.plan_id).collect();
    assert_eq!(imported, ["000001", "000002"], "the torn last line was never acknowledged");
    let store = PlanStore::open(&root).unwrap();
    assert_eq!(live.rollback(&store).unwrap().plan_id, "000001", "rollback restores the plan before");
    assert!(live.rollback(&store).is_err(), "nothing before the first imported activation");
    assert_eq!(live.activations().unwrap().len(), 3, "a refused rollback records nothing");
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let tmp = copy_of_fixture();
    let root = tmp.path().join("store");
    let newer = SCHEMA_VERSION + 1;

    // The old activation files are imported on first use: one of a newer
    // schema stops it, naming the file (and line), and stays where it is.
    let open = || allot_api::live::import::open_store_live(&root, None).map(drop).unwrap_err().to_string();
    let active = root.join("active.json");
    let mut value = json(&active);
    value["schema_version"] = newer.into();
    std::fs::write(&active, value.to_string()).unwrap();
    let err = open();
    assert!(err.contains("active.json") && err.contains("newer than this allot reads"), "{err}");
    // A whole history line of a newer schema is an error, not a torn line to skip.
    let history = root.join("activations.jsonl");
    let line = format!("{{\"schema_version\":{newer},\"plan_id\":\"000001\",\"at\":\"2026-01-01T00:00:00Z\",\"action\":\"activate\"}}\n");
    std::fs::write(&history, format!("{}{line}", std::fs::read_to_string(&history).unwrap())).unwrap();
    let err = open();
    assert!(err.contains("activations.jsonl") && err.contains("line 3") && err.contains("newer than this allot reads"), "{err}");
    assert!(history.is_file() && active.is_file(), "files that were not imported stay");
    let listed = allot(&["plans", "list", "--store", root.to_str().unwrap()]);
    assert!(!listed.status.success() && String::from_utf8_lossy(&listed.stderr).contains("activations.jsonl"), "the CLI refuses too");
    let db = rusqlite::Connection::open(root.join("live.db")).unwrap();
    let rows: i64 = db.query_row("SELECT count(*) FROM allot_plan_activations", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0, "nothing of a refused history is imported");
    for name in ["active.json", "activations.jsonl"] {
        std::fs::copy(fixture().join(name), root.join(name)).unwrap();
    }

    let kpis = root.join("plans/000001/kpis.json");
    let mut value = json(&kpis);
    value["schema_version"] = newer.into();
    std::fs::write(&kpis, value.to_string()).unwrap();
    let store = PlanStore::open(&root).unwrap();
    let err = store.kpis("000001").unwrap_err().to_string();
    assert!(err.contains("kpis.json") && err.contains(&format!("schema_version {newer}")) && err.contains("upgrade allot"), "{err}");
    let shown = allot(&["plans", "show", "000001", "--store", root.to_str().unwrap()]);
    assert!(!shown.status.success());
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert!(stderr.contains("kpis.json") && stderr.contains(&format!("schema_version {newer}")), "{stderr}");
}
