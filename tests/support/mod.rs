//! Helpers shared by the root test files (each includes this with `mod support;`).
#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Copies a directory tree (files and folders) from `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The live state of the plan store `root` (its `live.db`, with any old
/// file-mode history imported), where activations are recorded.
pub fn live(root: &Path) -> allot_api::LiveDb {
    allot_api::live::import::open_store_live(root, None).unwrap()
}

/// The active plan of the plan store `root`.
pub fn active(root: &Path) -> Option<String> {
    live(root).active_plan().unwrap().map(|(_, id)| id)
}

/// The service in this process over a plan store: the real router, one key
/// per role, called synchronously (tests here are plain `#[test]`s).
pub struct InProcess {
    app: allot_api::App,
    rt: tokio::runtime::Runtime,
}

/// The keys [`InProcess`] accepts, one per role.
pub const KEYS: [(&str, allot_api::Role); 4] = [
    ("decision-key-0123456789", allot_api::Role::Decision),
    ("fulfilment-key-0123456789", allot_api::Role::Fulfilment),
    ("planner-key-0123456789", allot_api::Role::Planner),
    ("admin-key-0123456789", allot_api::Role::Admin),
];

impl InProcess {
    /// Opens the service on `store`, planning jobs confined to `scenario_root`.
    pub fn open(store: &Path, scenario_root: &Path) -> Self {
        use allot_api::{ApiKey, ApiKeys, ServiceConfig, ServiceState};
        let keys = ApiKeys { keys: KEYS.iter().map(|(key, role)| ApiKey { key: key.to_string(), role: *role }).collect() };
        let config = ServiceConfig {
            keys,
            max_plan_age: allot_api::DEFAULT_MAX_PLAN_AGE,
            scenario_root: scenario_root.to_path_buf(),
            max_live_silence: allot_api::DEFAULT_MAX_LIVE_SILENCE,
            event_window: allot_api::DEFAULT_EVENT_WINDOW,
            drift: Default::default(),
        };
        let app = allot_api::router(std::sync::Arc::new(ServiceState::open(store, config).unwrap()));
        InProcess { app, rt: tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap() }
    }

    /// Calls a route with the key of `role` and asserts success; the JSON answer.
    pub fn call(&self, role: allot_api::Role, method: &str, uri: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let key = KEYS.iter().find(|(_, r)| *r == role).map(|(k, _)| *k).unwrap();
        let req = axum::http::Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {key}")).header("content-type", "application/json");
        let req = req.body(body.map_or_else(axum::body::Body::empty, |b| axum::body::Body::from(b.to_string()))).unwrap();
        self.rt.block_on(async {
            let response = self.app.clone().oneshot(req).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            assert!(status.is_success(), "{method} {uri}: {status} {}", String::from_utf8_lossy(&bytes));
            serde_json::from_slice(&bytes).unwrap()
        })
    }
}
/// A port free to listen on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 request over a fresh connection; returns (status, JSON body).
pub fn request(port: u16, method: &str, path: &str, key: &str, body: Option<&Value>) -> std::io::Result<(u16, Value)> {
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

/// A child process (`allot serve`) killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` (an `allot serve` listening on `port`) and waits until
/// its `/healthz` answers.
pub fn start_serve(mut command: Command, port: u16) -> Server {
    let server = Server(command.spawn().expect("runs allot serve"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/healthz", "", None).map(|r| r.0).ok() != Some(200) {
        assert!(Instant::now() < deadline, "allot serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}
