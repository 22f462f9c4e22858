//! The fixture the HTTP tests share: a small scenario planned by the real
//! solver into a temporary store, served by the real router with one key per
//! role, and calls made through it with `tower::ServiceExt::oneshot`.
#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use allot_api::{router, ApiKey, ApiKeys, Role, ServiceConfig, ServiceState, DEFAULT_MAX_PLAN_AGE};
use allot_scenarios::PlanStore;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use allot_api::App;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const DECISION: &str = "decision-key-0123456789";
pub const FULFILMENT: &str = "fulfilment-key-0123456789";
pub const PLANNER: &str = "planner-key-0123456789";
pub const ADMIN: &str = "admin-key-0123456789";

/// Two tiers, one zone, one warehouse. Every customer is a candidate for the
/// bundle (A + B) with uptake 0.5, so the plan reserves 2 units of A and of B for
/// each tier; the single (C) is abundant.
pub fn write_scenario(dir: &Path) {
    let files: &[(&str, &str)] = &[
        ("scenario.toml", "[horizon]\nstart = \"2026-12-01\"\ndays = 7\n\n[tiers]\ngold = 1.2\nstandard = 1.0\n"),
        ("customers.csv", "customer_id,zone,tier,consent,suppressed\ng1,Z1,gold,true,false\ng2,Z1,gold,true,false\ng3,Z1,gold,true,false\ng4,Z1,gold,true,false\ns1,Z1,standard,true,false\ns2,Z1,standard,true,false\ns3,Z1,standard,true,false\ns4,Z1,standard,true,false\nnc,Z1,standard,false,false\n"),
        ("offers.csv", "offer_id,margin,discount_cost\nbundle,10,0\nsingle,5,0\n"),
        ("offer_items.csv", "offer_id,sku,qty\nbundle,A,1\nbundle,B,1\nsingle,C,1\n"),
        ("inventory.csv", "warehouse_id,sku,on_hand\nW1,A,10\nW1,B,10\nW1,C,100\n"),
        ("lanes.csv", "warehouse_id,zone,cost_per_unit,transit_days\nW1,Z1,0,1\n"),
        (
            "uptake.csv",
            "customer_id,offer_id,p\ng1,bundle,0.5\ng2,bundle,0.5\ng3,bundle,0.5\ng4,bundle,0.5\ns1,bundle,0.5\ns2,bundle,0.5\ns3,bundle,0.5\ns4,bundle,0.5\ng1,single,0.4\ns1,single,0.4\nnc,bundle,0.5\n",
        ),
    ];
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// Plans the scenario into the store and returns the new version's id.
pub fn plan_into(store: &PlanStore, scenario: &Path) -> String {
    allot_scenarios::plan_scenario(store, scenario, &allot_optimizer::SolverChoice::Exact(Default::default()), None).unwrap().manifest.id
}

pub fn keys() -> ApiKeys {
    let k = |key: &str, role| ApiKey { key: key.to_string(), role };
    ApiKeys { keys: vec![k(DECISION, Role::Decision), k(FULFILMENT, Role::Fulfilment), k(PLANNER, Role::Planner), k(ADMIN, Role::Admin)] }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub state: Arc<ServiceState>,
}

impl Fixture {
    /// A store with one planned version, active unless `activate` is false.
    pub fn new(activate: bool, max_plan_age: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write_scenario(&dir.path().join("scenario"));
        let store = PlanStore::open(dir.path().join("store")).unwrap();
        let id = plan_into(&store, &dir.path().join("scenario"));
        if activate {
            allot_api::live::import::open_store_live(store.root(), None).unwrap().activate(&store, &id).unwrap();
        }
        let (app, state) = Self::start(dir.path(), max_plan_age);
        Fixture { dir, app, state }
    }

    /// A store with one planned, active version of the scenario `write` puts
    /// in the directory it is given, served with `max_plan_age`.
    pub fn of_scenario(write: impl FnOnce(&Path), max_plan_age: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let scenario = dir.path().join("scenario");
        std::fs::create_dir_all(&scenario).unwrap();
        write(&scenario);
        let store = PlanStore::open(dir.path().join("store")).unwrap();
        let id = plan_into(&store, &scenario);
        allot_api::live::import::open_store_live(store.root(), None).unwrap().activate(&store, &id).unwrap();
        let (app, state) = Self::start(dir.path(), max_plan_age);
        Fixture { dir, app, state }
    }

    pub fn start(dir: &Path, max_plan_age: Duration) -> (App, Arc<ServiceState>) {
        Self::start_with_drift(dir, max_plan_age, Default::default())
    }

    /// [`Fixture::start`] with a drift policy.
    pub fn start_with_drift(dir: &Path, max_plan_age: Duration, drift: allot_api::drift::DriftPolicy) -> (App, Arc<ServiceState>) {
        Self::start_with(dir, |config| {
            config.max_plan_age = max_plan_age;
            config.drift = drift;
        })
    }

    /// The service on `dir`'s store with the defaults as `configure` changes them.
    pub fn start_with(dir: &Path, configure: impl FnOnce(&mut ServiceConfig)) -> (App, Arc<ServiceState>) {
        let mut config = ServiceConfig {
            keys: keys(),
            max_plan_age: DEFAULT_MAX_PLAN_AGE,
            scenario_root: dir.to_path_buf(),
            max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE,
            event_window: allot_api::DEFAULT_EVENT_WINDOW,
            drift: Default::default(),
        };
        configure(&mut config);
        let state = Arc::new(ServiceState::open(dir.join("store"), config).unwrap());
        (router(state.clone()), state)
    }

    pub fn store(&self) -> PlanStore {
        PlanStore::open(self.dir.path().join("store")).unwrap()
    }

    /// The activation history the service recorded.
    pub fn history(&self) -> Vec<allot_scenarios::plans::store::Activation> {
        self.state.live().activations().unwrap()
    }

    /// Drops the service and opens it again on the same store (a restart).
    pub fn restart(&mut self) {
        let (app, state) = Self::start(self.dir.path(), DEFAULT_MAX_PLAN_AGE);
        self.app = app;
        self.state = state;
    }

    /// A call's status, content type and body bytes.
    pub async fn call_raw(&self, method: &str, uri: &str, key: Option<&str>, body: Option<Vec<u8>>) -> (StatusCode, String, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b)
            }
            None => Body::empty(),
        };
        let response = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, bytes.to_vec())
    }

    /// A call's status and body as JSON (a string if the body is not JSON).
    pub async fn call(&self, method: &str, uri: &str, key: Option<&str>, body: Option<Vec<u8>>) -> (StatusCode, Value) {
        let (status, _, bytes) = self.call_raw(method, uri, key, body).await;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.call("GET", uri, Some(key), None).await
    }

    pub async fn post(&self, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", uri, Some(key), Some(body.to_string().into_bytes())).await
    }

    pub async fn offers(&self, customer: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/customers/{customer}/offers"), DECISION).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not a JSON error: {body}"))
}

/// Orders (id, tier, promised by, SKU, qty) and two waves (ending 10:00 and
/// 14:00 on 2026-12-01) of `capacity` units each.
pub fn pick_request(orders: &[(&str, &str, &str, &str, f64)], capacity: f64) -> Value {
    let orders: Vec<Value> =
        orders.iter().map(|(id, tier, by, sku, qty)| json!({ "order_id": id, "tier": tier, "promised_by": by, "lines": [{ "sku": sku, "qty": qty }] })).collect();
    json!({
        "orders": orders,
        "waves": [
            { "wave_id": "late", "ends_at": "2026-12-01T14:00:00Z", "capacity": capacity },
            { "wave_id": "early", "ends_at": "2026-12-01T10:00:00Z", "capacity": capacity }
        ]
    })
}

/// Polls a job until it finishes.
pub async fn wait_for_job(f: &Fixture, job_id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, job) = f.get(&format!("/v1/jobs/{job_id}"), PLANNER).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "job {job_id} did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
