//! The event fold's cost against the number of events since the plan was
//! activated (issue 16, item 8): with 10k, 100k and 1M inventory and consent
//! events already recorded, how many more inventory events per second the
//! service records (through the router: validate, commit with
//! `synchronous=FULL`, fold into live stock), what one event's fold into the
//! served supply costs, and the p99 of an eligibility decision. Flat is right:
//! an event changes only the cells its stock point serves.
//!
//! It also reports the audit's bytes per decision, the full answer (as the
//! old `audit.jsonl` held it) against the compact record now stored.
//!
//! Run with `cargo bench --bench event_fold` (add `-- 10000 100000` for other
//! sizes). Figures are reported as ratios to the first size, measured in the
//! same run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allot_api::{router, ApiKey, ApiKeys, Role, ServiceConfig, ServiceState, DEFAULT_MAX_PLAN_AGE};
use allot_scenarios::PlanStore;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

const KEY: &str = "fulfilment-key-0123456789";
/// Events posted per size for the events/s figure.
const POSTED: usize = 1000;
/// Decisions timed per size for the p99.
const DECISIONS: usize = 20_000;

/// Records `n` events (4 in 5 inventory receipts and orders, 1 in 5 consent
/// changes) straight into the store's live-state database, as if posted
/// after the plan was saved.
fn preload(store: &Path, n: usize, customers: &[String]) {
    let db = rusqlite::Connection::open(store.join(allot_api::live::LIVE_DB_FILE)).unwrap();
    db.execute_batch("BEGIN").unwrap();
    let at = chrono::Utc::now().to_rfc3339();
    let mut insert = db.prepare("INSERT INTO allot_events (kind, event_id, body, replica) VALUES (?1, ?2, ?3, 'bench')").unwrap();
    for i in 0..n {
        let id = format!("pre-{i}");
        let (kind, body) = if i % 5 == 4 {
            let c = &customers[i % customers.len()];
            ("consent", format!(r#"{{"type":"consent","received_at":"{at}","event":{{"event_id":"{id}","customer_id":"{c}","suppressed":false}}}}"#))
        } else {
            let (kind, qty) = if i % 2 == 0 { ("receipt", 2.0) } else { ("order", 2.0) };
            let w = format!("W{:02}", i % 3);
            (
                "inventory",
                format!(r#"{{"type":"inventory","received_at":"{at}","event":{{"event_id":"{id}","kind":"{kind}","warehouse_id":"{w}","sku":"SKU00000","qty":{qty}}}}}"#),
            )
        };
        insert.execute([kind, id.as_str(), body.as_str()]).unwrap();
    }
    drop(insert);
    db.execute_batch("COMMIT").unwrap();
    // As a long-running service would have it: the write-ahead log checkpointed,
    // not one commit's worth of a million rows waiting in it.
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

struct Row {
    /// Audit bytes per decision: the full answer as the old log stored it, and the compact record.
    audit_bytes: (f64, f64),
    events: usize,
    start: Duration,
    per_second: f64,
    p99: Duration,
}

fn measure(n: usize, scenario: &Path, customers: &[String]) -> Row {
    let tmp = tempfile::tempdir().unwrap();
    let store = PlanStore::open(tmp.path().join("store")).unwrap();
    let id = allot_scenarios::plan_scenario(&store, scenario, &allot_optimizer::SolverChoice::Auto(Default::default(), Default::default()), None).unwrap().manifest.id;
    allot_api::live::import::open_store_live(store.root(), None).unwrap().activate(&store, &id).unwrap();
    let keys = ApiKeys { keys: vec![ApiKey { key: KEY.to_string(), role: Role::Fulfilment }] };
    let config = ServiceConfig { keys, max_plan_age: DEFAULT_MAX_PLAN_AGE, scenario_root: tmp.path().to_path_buf(), max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE, event_window: allot_api::DEFAULT_EVENT_WINDOW, drift: Default::default() };
    // Create the database (migrations), then fill it while no service runs.
    drop(ServiceState::open(store.root(), config.clone()).unwrap());
    preload(store.root(), n, customers);
    let started = Instant::now();
    let state = Arc::new(ServiceState::open(store.root(), config).unwrap());
    let start = started.elapsed();
    let app = router(state.clone());

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        for i in 0..POSTED {
            let body = format!(r#"{{"event_id":"post-{i}","kind":"order","warehouse_id":"W00","sku":"SKU00000","qty":1,"tier":"standard"}}"#);
            let request = Request::post("/v1/events/inventory")
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 202);
        }
    });
    let per_second = POSTED as f64 / started.elapsed().as_secs_f64();

    let mut times = Vec::with_capacity(DECISIONS);
    for i in 0..DECISIONS {
        let t = Instant::now();
        std::hint::black_box(state.decide_json(&customers[i % customers.len()], 10, None));
        times.push(t.elapsed());
    }
    times.sort();
    let (mut full, mut compact) = (0usize, 0usize);
    for c in customers {
        let json = state.decide_json(c, 10, Some("web")).unwrap();
        let decision: allot_api::Decision = serde_json::from_slice(&json).unwrap();
        let at = chrono::Utc::now();
        full += serde_json::to_string(&allot_api::AuditRecord { at, decision: decision.clone() }).unwrap().len() + 1;
        compact += serde_json::to_string(&allot_api::audit::Compact::of(at, &decision.view())).unwrap().len() + 1;
    }
    let audit_bytes = (full as f64 / customers.len() as f64, compact as f64 / customers.len() as f64);
    Row { audit_bytes, events: n, start, per_second, p99: percentile(&times, 0.99) }
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10_000, 100_000, 1_000_000] } else { sizes };
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1");
    let customers: Vec<String> = (0..400).map(|i| format!("C{i:07}")).collect();
    let rows: Vec<Row> = sizes.iter().map(|&n| measure(n, &scenario, &customers)).collect();
    let base = &rows[0];
    println!("audit bytes per decision: full answer {:.0}, compact record {:.0} ({:.2})", base.audit_bytes.0, base.audit_bytes.1, base.audit_bytes.1 / base.audit_bytes.0);
    println!("| events since activation | start-up fold | events/s (ratio) | eligibility p99 (ratio) |");
    println!("|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.2} s | {:.0} ({:.2}) | {:.1} µs ({:.2}) |",
            r.events,
            r.start.as_secs_f64(),
            r.per_second,
            r.per_second / base.per_second,
            r.p99.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() / base.p99.as_secs_f64()
        );
    }
}
