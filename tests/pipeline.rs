//! One planning pipeline: the same scenario planned by `allot plan`, by
//! `allot scenario run` and by `POST /v1/plans` (the real router, in process)
//! gives byte-identical artefacts: every file of the two output directories
//! and of the three saved versions (and of a fourth, whose tables `allot
//! plan --format parquet` copies from its outputs).
//!
//! The only differences allowed are listed here and normalised before
//! comparing: the wall-clock timings and the save timestamp. Ids are equal
//! anyway (each store is fresh, so every version is `000001`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use allot_api::Role;
use serde_json::Value;

/// JSON fields that measure time and so differ between any two runs.
const TIMING_FIELDS: [&str; 3] = ["load_seconds", "build_seconds", "solve_seconds"];
/// JSON fields stamped with the moment of saving.
const TIMESTAMP_FIELDS: [&str; 1] = ["created_at"];
/// The JSON files that hold those fields (kpis.json in the output directory and
/// the version; manifest.json in the version).
const NORMALISED_FILES: [&str; 2] = ["kpis.json", "manifest.json"];

mod support;

fn allot(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_allot")).args(args).env_remove("ALLOT_STORE").output().unwrap();
    assert!(out.status.success(), "allot {args:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Every file under `dir` by relative path, with the listed fields of the
/// listed JSON files removed.
fn artefacts(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if NORMALISED_FILES.contains(&name.as_str()) {
                let mut value: Value = serde_json::from_slice(&bytes).unwrap();
                let map = value.as_object_mut().unwrap();
                for field in TIMING_FIELDS.iter().chain(&TIMESTAMP_FIELDS) {
                    map.remove(*field);
                }
                bytes = serde_json::to_vec_pretty(&value).unwrap();
            }
            out.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_same(what: &str, a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: different files");
    for (path, bytes) in a {
        assert!(bytes == &b[path], "{what}: {} differs:\n{}\n---\n{}", path.display(), String::from_utf8_lossy(bytes), String::from_utf8_lossy(&b[path]));
    }
}

/// Plans `scenario` (under `root`) through `POST /v1/plans` on the real router
/// over `store`, waits for the job, and returns the new version's id.
fn plan_over_http(root: &Path, scenario: &str, store: &Path) -> String {
    let service = support::InProcess::open(store, root);
    let call = |method: &str, uri: &str, body: Option<Value>| service.call(Role::Planner, method, uri, body);
    let job = call("POST", "/v1/plans", Some(serde_json::json!({ "scenario": scenario })));
    let uri = format!("/v1/jobs/{}", job["job_id"].as_str().unwrap());
    let started = Instant::now();
    loop {
        let job = call("GET", &uri, None);
        match job["status"].as_str().unwrap() {
            "succeeded" => return job["plan_id"].as_str().unwrap().to_string(),
            "failed" => panic!("the planning job failed: {}", job["error"]),
            _ => {
                assert!(started.elapsed() < Duration::from_secs(300), "the planning job did not finish: {job}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn plan_scenario_run_and_http_give_identical_artefacts() {
    let tmp = tempfile::tempdir().unwrap();
    // History instead of forecasts, so the run forecasts, and every kind of
    // artefact (tables, demand plan, marginal values, forecasts) is written.
    let scenario = tmp.path().join("history");
    let spec = allot_scenarios::GenerateSpec { customers: 300, history_days: 200, forecasts: false, seed: 11, ..Default::default() };
    allot_scenarios::generate(&scenario, &spec).unwrap();
    let s = scenario.to_str().unwrap();
    let path = |p: &str| tmp.path().join(p);
    let (plan_out, plan_store) = (path("plan-out"), path("plan-store"));
    allot(&["plan", s, "--out", plan_out.to_str().unwrap(), "--store", plan_store.to_str().unwrap()]);
    let (run_root, run_store) = (path("run-out"), path("run-store"));
    allot(&["scenario", "run", s, "--out-root", run_root.to_str().unwrap(), "--store", run_store.to_str().unwrap()]);
    let http_store = path("http-store");
    let id = plan_over_http(tmp.path(), "history", &http_store);
    assert_eq!(id, "000001");

    let plan_files = artefacts(&plan_out);
    for f in ["eligibility.csv", "kpis.json", "demand_plan.csv", "shadow_prices.json", "forecast/demand_forecast.csv", "forecast/uptake_report.json"] {
        assert!(plan_files.contains_key(Path::new(f)), "the run wrote no {f}");
    }
    assert_same("plan vs scenario run outputs", &plan_files, &artefacts(&run_root.join("history")));

    let version = artefacts(&plan_store.join("plans/000001"));
    for f in ["manifest.json", "serving.json", "customers.parquet", "demand_plan.parquet", "shadow_prices.json", "forecast/uptake.csv"] {
        assert!(version.contains_key(Path::new(f)), "the version holds no {f}");
    }
    assert_same("plan vs scenario run version", &version, &artefacts(&run_store.join("plans/000001")));
    assert_same("plan vs POST /v1/plans version", &version, &artefacts(&http_store.join("plans/000001")));

    // Outputs in the version's format (Parquet) are copied into it, not
    // encoded again: the version is the same, byte for byte.
    let (parquet_out, parquet_store) = (path("parquet-out"), path("parquet-store"));
    allot(&["plan", s, "--out", parquet_out.to_str().unwrap(), "--store", parquet_store.to_str().unwrap(), "--format", "parquet"]);
    assert!(parquet_out.join("eligibility.parquet").exists());
    assert_same("plan vs plan --format parquet version", &version, &artefacts(&parquet_store.join("plans/000001")));
}
