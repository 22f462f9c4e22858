//! `allot serve` as a process: an acknowledged event survives the server being
//! killed (SIGKILL, no shutdown) and restarted on the same store.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const KEY_FILE: &str = r#"{"keys": [{"key": "decision-key-0123456789", "role": "decision"}, {"key": "fulfilment-key-0123456789", "role": "fulfilment"}]}"#;
const DECISION: &str = "decision-key-0123456789";
const FULFILMENT: &str = "fulfilment-key-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 request over a fresh connection; returns (status, JSON body).
fn request(port: u16, method: &str, path: &str, key: &str, body: Option<&Value>) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (_, payload) = response.split_once("\r\n\r\n").unwrap_or_default();
    Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(store: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["serve", "--store", store.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}"), "--threads", "2"])
        .args(["--keys", store.join("keys.json").to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .expect("runs allot serve");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/healthz", "", None).map(|r| r.0).ok() != Some(200) {
        assert!(Instant::now() < deadline, "allot serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn offers(port: u16, customer: &str) -> Value {
    let (status, body) = request(port, "GET", &format!("/v1/customers/{customer}/offers"), DECISION, None).unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn offer_count(decision: &Value) -> usize {
    decision["offers"].as_array().unwrap().len()
}

#[test]
fn a_killed_server_restarts_with_every_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail");
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["plan", scenario.to_str().unwrap(), "--activate", "--store", store.to_str().unwrap(), "--out", tmp.path().join("out").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(store.join("keys.json"), KEY_FILE).unwrap();

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
