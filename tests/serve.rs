//! `allot serve` as a process: an acknowledged event survives the server being
//! killed (SIGKILL, no shutdown, or an abort inside the database write path)
//! and restarted on the same store; an activation made by the CLI on the
//! store is followed by the running server.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{free_port, request, start_serve, Server};

const KEY_FILE: &str = r#"{"keys": [{"key": "decision-key-0123456789", "role": "decision"}, {"key": "fulfilment-key-0123456789", "role": "fulfilment"}]}"#;
const DECISION: &str = "decision-key-0123456789";
const FULFILMENT: &str = "fulfilment-key-0123456789";

fn start(store: &Path, port: u16) -> Server {
    start_with(store, port, None)
}

/// Starts `allot serve`, with the crash-test fault point `fault`
/// (`ALLOT_TEST_LIVE_FAULT`) if given.
fn start_with(store: &Path, port: u16, fault: Option<&str>) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_allot"));
    command
        .args(["serve", "--store", store.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}"), "--threads", "2"])
        .args(["--keys", store.join("keys.json").to_str().unwrap()])
        .stderr(Stdio::null());
    if let Some(fault) = fault {
        command.env(allot_api::live::FAULT_ENV, fault);
    }
    start_serve(command, port)
}

fn offers(port: u16, customer: &str) -> Value {
    let (status, body) = request(port, "GET", &format!("/v1/customers/{customer}/offers"), DECISION, None).unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn offer_count(decision: &Value) -> usize {
    decision["offers"].as_array().unwrap().len()
}

/// A store in `tmp` with the retail example planned and active, and the keys.
fn planned_store(tmp: &Path) -> std::path::PathBuf {
    let store = tmp.join("store");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1");
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["plan", scenario.to_str().unwrap(), "--activate", "--store", store.to_str().unwrap(), "--out", tmp.join("out").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(store.join("keys.json"), KEY_FILE).unwrap();
    store
}

#[test]
fn a_killed_server_restarts_with_every_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let store = planned_store(tmp.path());

    let port = free_port();
    let mut server = start(&store, port);
    let customer = (0..400)
        .map(|i| format!("C{i:07}"))
        .find(|c| offer_count(&offers(port, c)) > 0)
        .expect("the example plan shows some customer an offer");
    let (status, ack) = request(port, "POST", "/v1/events/consent", DECISION, Some(&json!({ "event_id": "withdraw-1", "customer_id": customer, "consent": false }))).unwrap();
    assert_eq!(status, 202, "{ack}");
    let order = json!({ "event_id": "order-1", "kind": "order", "warehouse_id": "W00", "sku": "SKU00000", "qty": 1 });
    assert_eq!(request(port, "POST", "/v1/events/inventory", FULFILMENT, Some(&order)).unwrap().0, 202);

    // No graceful shutdown: the process dies between the events and the next read.
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);

    let port = free_port();
    let _server = start(&store, port);
    let after = offers(port, &customer);
    assert_eq!(offer_count(&after), 0, "consent withdrawal lost in the restart: {after}");
    assert!(after["excluded"].as_array().unwrap().iter().any(|e| e["reason"] == "live:consent"), "{after}");
    let (status, again) = request(port, "POST", "/v1/events/inventory", FULFILMENT, Some(&order)).unwrap();
    assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "the order was lost in the restart");
}

fn allot(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_allot")).args(args).env_remove("ALLOT_DATABASE_URL").output().unwrap();
    assert!(out.status.success(), "allot {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (a generous bound, not a timing check) until the server answers
/// `customer` from plan `version`.
fn wait_for_plan(port: u16, customer: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while offers(port, customer)["plan_version"] != version {
        assert!(Instant::now() < deadline, "the server did not follow the CLI to plan {version}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Protects "the served plan is the active one" in file mode: `allot plans
/// activate` and `rollback` from another process record in the store's
/// `live.db`, and the running server follows (it polls the newest
/// activation), with no restart and no call to its own route.
#[test]
fn a_running_server_follows_activations_made_by_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let store = planned_store(tmp.path());
    let (st, scenario) = (store.to_str().unwrap(), Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1"));
    let second = allot(&["plan", scenario.to_str().unwrap(), "--store", st, "--out", tmp.path().join("out2").to_str().unwrap()]);
    assert!(second.contains("plan 000002 saved"), "{second}");
    let port = free_port();
    let _server = start(&store, port);
    assert_eq!(offers(port, "C0000001")["plan_version"], "000001");

    allot(&["plans", "activate", "000002", "--store", st]);
    wait_for_plan(port, "C0000001", "000002");
    assert!(allot(&["plans", "list", "--store", st]).contains("* 000002"));
    assert!(allot(&["plans", "rollback", "--store", st]).contains("plan 000001 is active"));
    wait_for_plan(port, "C0000001", "000001");
}

/// A small xorshift generator: the crash test's random moments, reproducible
/// from the seed it prints.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One event a writer thread posts: its route, key, body and (kind, id).
#[derive(Clone)]
struct Posted {
    path: &'static str,
    key: &'static str,
    body: Value,
    kind: &'static str,
    id: String,
}

/// Posts `event`; `Some(status)` when the server answered.
fn post(port: u16, event: &Posted) -> Option<u16> {
    request(port, "POST", event.path, event.key, Some(&event.body)).ok().map(|r| r.0).filter(|&s| s != 0)
}

/// The acceptance test of the live-state store: 8 threads post consent
/// withdrawals and receipts while the server is killed 5 times (SIGKILL at a
/// random moment, or an abort inside the write transaction, before or after
/// its commit). A client retries an event it got no answer for. After the last
/// restart every acknowledged event is in the database exactly once (and
/// nothing unacknowledged twice), and every customer whose withdrawal was
/// acknowledged gets no offers.
#[test]
fn eight_writers_and_five_kills_lose_no_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let store = planned_store(tmp.path());
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let customers: Vec<String> = (0..400).map(|i| format!("C{i:07}")).collect();
    let acked = std::sync::Mutex::new(Vec::<Posted>::new());
    // Per thread: the event it got no answer for, retried first next round.
    let pending: Vec<std::sync::Mutex<Option<Posted>>> = (0..8).map(|_| std::sync::Mutex::new(None)).collect();
    let faults = ["before_commit", "after_commit", "kill"];
    for round in 0..6 {
        let port = free_port();
        let fault = (round < 5).then(|| faults[rng.below(3) as usize]).filter(|f| *f != "kill").map(|f| format!("{f}:{}", 5 + rng.below(60)));
        let mut server = start_with(&store, port, fault.as_deref());
        let kill_after = Duration::from_millis(150 + rng.below(900));
        std::thread::scope(|scope| {
            for t in 0..8usize {
                let (acked, pending, customers) = (&acked, &pending[t], &customers);
                scope.spawn(move || {
                    let mut i = 0;
                    let started = Instant::now();
                    loop {
                        let event = pending.lock().unwrap().take().unwrap_or_else(|| {
                            i += 1;
                            let id = format!("t{t}-r{round}-{i}");
                            if (t + i) % 2 == 0 {
                                let customer = &customers[(t * 131 + i * 17 + round * 7) % customers.len()];
                                let body = json!({ "event_id": id, "customer_id": customer, "consent": false });
                                Posted { path: "/v1/events/consent", key: DECISION, body, kind: "consent", id }
                            } else {
                                let body = json!({ "event_id": id, "kind": "receipt", "warehouse_id": "W00", "sku": "SKU00000", "qty": 1 });
                                Posted { path: "/v1/events/inventory", key: FULFILMENT, body, kind: "inventory", id }
                            }
                        });
                        match post(port, &event) {
                            Some(200 | 202) => acked.lock().unwrap().push(event),
                            Some(status) => panic!("event {} answered {status}", event.id),
                            None => {
                                // No answer: the server died; retry on the next one.
                                *pending.lock().unwrap() = Some(event);
                                return;
                            }
                        }
                        // The last round only retries what is pending.
                        if round == 5 && (pending.lock().unwrap().is_none() || started.elapsed() > Duration::from_secs(30)) {
                            return;
                        }
                    }
                });
            }
            if round < 5 {
                std::thread::sleep(kill_after);
                let aborted = server.0.try_wait().ok().flatten().is_some();
                let _ = server.0.kill();
                let _ = server.0.wait();
                eprintln!("round {round}: fault {fault:?}, {}, {} events acknowledged so far", if aborted { "aborted by the fault point" } else { "SIGKILLed" }, acked.lock().unwrap().len());
            }
        });
        if round < 5 {
            drop(server);
            continue;
        }
        // The last server: every acknowledged withdrawal is in force.
        let acked = acked.lock().unwrap();
        assert!(acked.len() > 50, "too few events acknowledged to mean anything: {}", acked.len());
        for event in acked.iter().filter(|e| e.kind == "consent") {
            let customer = event.body["customer_id"].as_str().unwrap();
            let (status, decision) = request(port, "GET", &format!("/v1/customers/{customer}/offers"), DECISION, None).unwrap();
            assert_eq!(status, 200, "{decision}");
            assert_eq!(offer_count(&decision), 0, "seed {seed}: withdrawal {} of {customer} acknowledged but not in force: {decision}", event.id);
        }
        drop(server);
        // Every acknowledged event exactly once; no event twice.
        let db = rusqlite::Connection::open(store.join(allot_api::live::LIVE_DB_FILE)).unwrap();
        let twice: i64 = db.query_row("SELECT count(*) FROM (SELECT 1 FROM allot_events GROUP BY kind, event_id HAVING count(*) > 1)", [], |r| r.get(0)).unwrap();
        assert_eq!(twice, 0, "seed {seed}: an event recorded twice");
        let mut count = db.prepare("SELECT count(*) FROM allot_events WHERE kind = ?1 AND event_id = ?2").unwrap();
        for event in acked.iter() {
            let n: i64 = count.query_row([event.kind, event.id.as_str()], |r| r.get(0)).unwrap();
            assert_eq!(n, 1, "seed {seed}: acknowledged {} event {} recorded {n} times", event.kind, event.id);
        }
    }
}
