//! The `allot` binary end to end: planning, outputs, the plan store and its
//! crash safety, generation, and failures that must leave nothing behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use allot_scenarios::plans::store::FAULT_ENV;
use allot_scenarios::PlanStore;

mod support;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn allot(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_allot"));
    cmd.args(args).env_remove("ALLOT_STORE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("runs allot")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "allot failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn plan(scenario: &Path, out: &Path, store: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["plan", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--store", store.to_str().unwrap()];
    args.extend_from_slice(extra);
    allot(&args, &[])
}

#[test]
fn plan_writes_outputs_kpis_and_a_plan_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    let stdout = ok(&plan(&golden("stock_lanes"), &out, &store, &["--activate"]));
    assert!(stdout.contains("plan 000001 (active)") && stdout.contains("objective        12.90"), "{stdout}");

    let eligibility = fs::read_to_string(out.join("eligibility.csv")).unwrap();
    let mut lines = eligibility.lines();
    assert_eq!(lines.next(), Some("customer_id,offer_id,x,eligible,expected_value,rank,reason"));
    assert!(eligibility.contains("c4,o1,0.0,false,9.0,,undeliverable"), "{eligibility}");
    assert!(eligibility.contains("not_selected:stock"), "{eligibility}");
    for f in ["reservations.csv", "pick_priorities.csv", "bid_prices.csv"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let kpis: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.join("kpis.json")).unwrap()).unwrap();
    for key in ["objective", "expected_margin", "expected_accepts", "budget_used", "fill_rate_baseline", "fairness_ratio", "solver", "status", "gap", "solve_seconds"] {
        assert!(kpis.get(key).is_some(), "kpis.json lacks {key}");
    }
    assert!((kpis["objective"].as_f64().unwrap() - 12.9).abs() < 1e-6);

    let s = PlanStore::open(&store).unwrap();
    assert_eq!(s.ids().unwrap(), vec!["000001"]);
    assert_eq!(support::active(&store).as_deref(), Some("000001"), "--activate records in the store's live.db");
    let m = s.manifest("000001").unwrap();
    assert_eq!(m.solver, "exact");
    assert_eq!(m.scenario_hash.len(), 64);
}

#[test]
fn parquet_outputs_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    ok(&plan(&golden("budget_redemptions"), &out, &store, &["--format", "parquet"]));
    let df = allot_scenarios::files::read_table(&out.join("eligibility.parquet")).unwrap();
    assert_eq!(df.height(), 6);
    let names: Vec<&str> = df.get_column_names().into_iter().map(|n| n.as_str()).collect();
    assert_eq!(names, vec!["customer_id", "offer_id", "x", "eligible", "expected_value", "rank", "reason"]);
}

#[test]
fn bad_input_fails_with_location_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("bad");
    fs::create_dir(&scenario).unwrap();
    for e in fs::read_dir(golden("stock_lanes")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), scenario.join(e.file_name())).unwrap();
    }
    fs::write(scenario.join("uptake.csv"), "customer_id,offer_id,p\nc1,o1,0.8\nc2,o1,1.7\n").unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    let result = plan(&scenario, &out, &store, &[]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("uptake.csv row 2 column `p`: got \"1.7\", expected a probability in (0, 1]"), "{stderr}");
    assert!(!out.exists(), "no output directory on failure");
    assert!(PlanStore::open(&store).unwrap().ids().unwrap().is_empty(), "no plan version on failure");
}

#[test]
fn versions_activate_and_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    let st = store.to_str().unwrap();
    ok(&plan(&golden("stock_lanes"), &out, &store, &["--activate"]));
    ok(&plan(&golden("fairness"), &out, &store, &["--activate"]));
    ok(&plan(&golden("custom_limit"), &out, &store, &[]));
    let list = ok(&allot(&["plans", "list", "--store", st], &[]));
    assert!(list.contains("* 000002") && list.contains("  000001") && list.contains("  000003"), "{list}");

    ok(&allot(&["plans", "activate", "000003", "--store", st], &[]));
    assert!(ok(&allot(&["plans", "rollback", "--store", st], &[])).contains("plan 000002 is active"));
    assert!(ok(&allot(&["plans", "rollback", "--store", st], &[])).contains("plan 000001 is active"));
    let last = allot(&["plans", "rollback", "--store", st], &[]);
    assert!(!last.status.success(), "nothing before the first activation");
    let unknown = allot(&["plans", "activate", "000009", "--store", st], &[]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no plan version 000009"));
    let history = support::live(&store).activations().unwrap();
    let steps: Vec<_> = history.iter().map(|a| (a.action.as_str(), a.plan_id.as_str())).collect();
    assert_eq!(
        steps,
        [("activate", "000001"), ("activate", "000002"), ("activate", "000003"), ("rollback", "000002"), ("rollback", "000001")],
        "the history is exact: refused calls recorded nothing"
    );

    let show: serde_json::Value = serde_json::from_str(&ok(&allot(&["plans", "show", "000002", "--store", st], &[]))).unwrap();
    assert!((show["kpis"]["objective"].as_f64().unwrap() - 50.0 / 3.0).abs() < 1e-6);
    let missing = allot(&["plans", "show", "000009", "--store", st], &[]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no plan version 000009"));
}

/// A process killed while writing a plan version (here: aborted after the
/// output directory and two files of the new version) leaves the store readable
/// with every earlier version intact and no trace of the half-written one.
#[test]
fn crash_mid_write_keeps_the_store_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    ok(&plan(&golden("stock_lanes"), &out, &store, &["--activate"]));
    let before = fs::read(store.join("plans/000001/eligibility.parquet")).unwrap();
    let (outputs_before, kpis_before) = (listing(&out), fs::read(out.join("kpis.json")).unwrap());

    // 4 table files go to --out first, then the crash hits inside the store's staging directory.
    let fairness = golden("fairness");
    let args = ["plan", fairness.to_str().unwrap(), "--out", out.to_str().unwrap(), "--store", store.to_str().unwrap(), "--activate"];
    let crashed = allot(&args, &[(FAULT_ENV, "6")]);
    assert!(!crashed.status.success(), "the fault hook aborts the process");

    let s = PlanStore::open(&store).unwrap();
    assert_eq!(s.ids().unwrap(), vec!["000001"], "the half-written version is invisible");
    // The output directory is the first run's, whole: the second run's tables
    // were written beside it and never put in its place.
    assert_eq!(listing(&out), outputs_before, "the outputs of the run that saved nothing replaced nothing");
    assert_eq!(fs::read(out.join("kpis.json")).unwrap(), kpis_before);
    assert_eq!(support::active(&store).as_deref(), Some("000001"));
    assert!((s.kpis("000001").unwrap().objective - 12.9).abs() < 1e-6);
    assert_eq!(fs::read(store.join("plans/000001/eligibility.parquet")).unwrap(), before);
    let staging = fs::read_dir(store.join("plans")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".staging-")).count();
    assert_eq!(staging, 1, "the crash left its staging directory, which readers ignore");

    // The next save gets the next id, and the store lists both.
    ok(&plan(&golden("fairness"), &out, &store, &[]));
    assert_eq!(s.ids().unwrap(), vec!["000001", "000002"]);
}

/// The names in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A run's output directory is replaced whole, and only once its version is
/// saved: a run whose save fails leaves no outputs (they looked complete for
/// a version that does not exist), a run in another encoding leaves none of
/// the earlier one's tables, and a directory holding a planner's own files
/// is refused before anything is solved.
#[test]
fn outputs_are_replaced_whole_and_only_after_the_version_is_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    // A store whose lock cannot be taken: the save fails after the solve.
    fs::create_dir_all(store.join("store.lock")).unwrap();
    let failed = plan(&golden("stock_lanes"), &out, &store, &[]);
    assert!(!failed.status.success(), "the save fails");
    assert!(!out.exists(), "no outputs for a version never saved");
    assert_eq!(listing(tmp.path()), ["store"], "nothing left beside it either");
    fs::remove_dir(store.join("store.lock")).unwrap();

    ok(&plan(&golden("stock_lanes"), &out, &store, &["--format", "csv"]));
    assert!(out.join("eligibility.csv").is_file());
    ok(&plan(&golden("stock_lanes"), &out, &store, &["--format", "parquet"]));
    let names = listing(&out);
    assert!(names.contains(&"eligibility.parquet".to_string()) && !names.iter().any(|n| n.ends_with(".csv")), "{names:?}");

    fs::write(out.join("notes.txt"), "mine").unwrap();
    let refused = plan(&golden("stock_lanes"), &out, &store, &[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("notes.txt"), "{said}");
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    assert_eq!(PlanStore::open(&store).unwrap().ids().unwrap().len(), 2, "refused before solving: no version");
}

#[test]
fn generate_is_deterministic_and_plannable() {
    let tmp = tempfile::tempdir().unwrap();
    let sizes = ["--customers", "300", "--offers", "12", "--skus", "30", "--zones", "4", "--warehouses", "3", "--candidates", "4"];
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    for (dir, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        let mut args = vec!["generate", dir.to_str().unwrap(), "--seed", seed];
        args.extend_from_slice(&sizes);
        ok(&allot(&args, &[]));
    }
    let read = |d: &Path, f: &str| fs::read(d.join(f)).unwrap();
    for f in ["customers.csv", "offers.csv", "uptake.csv", "inventory.csv", "lanes.csv", "scenario.toml"] {
        assert_eq!(read(&a, f), read(&b, f), "{f} differs for one seed");
    }
    assert_ne!(read(&a, "uptake.csv"), read(&c, "uptake.csv"));
    // Refuses to overwrite.
    let again = allot(&["generate", a.to_str().unwrap()], &[]);
    assert!(!again.status.success());
    // Sizes it cannot draw are refused, not bent (0 offers was drawn as 1,
    // 13 candidates of 12 offers as 12), and nothing is written.
    for (flags, said) in [(&["--offers", "0"][..], "offers: got 0"), (&["--offers", "12", "--candidates", "13"][..], "candidates: got 13, more than the 12 offers"), (&["--days", "100000000"][..], "days: got 100000000")] {
        let d = tmp.path().join("refused");
        let mut args = vec!["generate", d.to_str().unwrap()];
        args.extend_from_slice(flags);
        let out = allot(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(said) && !d.exists(), "{flags:?}: {stderr}");
    }

    let stdout = ok(&plan(&a, &tmp.path().join("out"), &tmp.path().join("store"), &[]));
    assert!(stdout.contains("binding"), "{stdout}");
}

/// `allot bench --binary-decisions --solvers exact,auto`: the all-or-nothing
/// model drawn at each size, `auto` beside the whole MIP, named in the JSON
/// by what answered (here the whole MIP: 1,200 pairs, below the support
/// MIP's 2,000) and measured against exact's optimum.
#[test]
fn bench_runs_auto_on_all_or_nothing_decisions() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let work = tmp.path().join("work");
    let args = ["bench", "--customers", "300", "--offers", "10", "--skus", "20", "--zones", "3", "--warehouses", "2", "--candidates", "4", "--binary-decisions", "--solvers", "exact,auto"];
    ok(&allot(&[&args[..], &["--json", json.to_str().unwrap(), "--work-dir", work.to_str().unwrap()]].concat(), &[]));
    let toml = fs::read_to_string(work.join("bench-300-4-1-default/scenario.toml")).unwrap();
    assert!(toml.contains("binary_decisions = true"), "{toml}");
    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let runs = report["sizes"][0]["runs"].as_array().expect("runs");
    let by: Vec<(&str, &str, &str)> = runs.iter().map(|r| (r["solver"].as_str().unwrap(), r["answered_by"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(by, [("exact", "exact", "optimal"), ("auto", "exact", "optimal")]);
    let below = runs[1]["below_exact"].as_f64().expect("measured against exact");
    assert!(below.abs() <= 1e-9, "auto {below:e} below exact's optimum");
}

/// Protects the fail-closed bound: a silence bound past the replicas' liveness
/// (a consent change would stop waiting for a replica still serving offers) or
/// under the sync poll (a healthy replica would flap) is refused before serving.
#[test]
fn serve_refuses_a_live_silence_bound_outside_poll_and_liveness() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    for bad in ["5", "0.2", "NaN"] {
        let out = allot(&["serve", "--store", store.to_str().unwrap(), "--addr", "127.0.0.1:0", "--max-live-silence-secs", bad], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("--max-live-silence-secs"), "{bad}: {stderr}");
    }
}

/// A target gap outside [0, 1) and a time limit that is not a positive
/// number are refused before anything is read: `--gap nan` and
/// `--time-limit -1` ran, the second ending "no feasible solution within the
/// time limit".
#[test]
fn plan_refuses_a_gap_or_time_limit_that_means_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    for (flag, bad) in [("--gap", "nan"), ("--gap", "-1"), ("--gap", "1"), ("--time-limit", "-1"), ("--time-limit", "nan"), ("--time-limit", "0")] {
        let result = plan(&golden("stock_lanes"), &out, &store, &[&format!("{flag}={bad}")]);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success() && stderr.contains(flag) && stderr.contains("expected"), "{flag} {bad}: {stderr}");
    }
    assert!(!out.exists());
}

/// The summary names each volume rule with its measure, bound and price, and
/// the contacts per channel (`tests/golden/rules`, worked out in `tests/golden.rs`).
#[test]
fn plan_summary_shows_rules_and_channels() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = ok(&plan(&golden("rules"), &tmp.path().join("out"), &tmp.path().join("store"), &["--solver", "exact"]));
    assert!(printed.contains("rule email_capacity contacts 5.00 <= 5") && printed.contains("price 4.000"), "{printed}");
    assert!(printed.contains("rule new_accepts accepts 0.50 >= 1.5") && printed.contains("penalty 2.00"), "{printed}");
    assert!(printed.contains("channels") && printed.contains("email 5.0 contacts"), "{printed}");
}

/// `--warm-from`: a version keeps the prices its re-plans start from; a
/// re-plan from it runs the decomposition warm and saves a version; the exact
/// solver and an unknown version are refused with a message saying why.
#[test]
fn a_replan_starts_warm_from_an_earlier_version() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, store) = (tmp.path().join("out"), tmp.path().join("store"));
    ok(&plan(&golden("stock_lanes"), &out, &store, &["--solver", "decomposed"]));
    let warm = PlanStore::open(&store).unwrap().warm_start("000001").expect("a version keeps its warm start");
    assert!(warm.prices.contains_key("zone_balance"), "{warm:?}");
    // ... and the plan's exposures: every pair of the eligibility table with x > 0.
    let table = fs::read_to_string(out.join("eligibility.csv")).unwrap();
    let header: Vec<&str> = table.lines().next().unwrap().split(',').collect();
    let x_column = header.iter().position(|&h| h == "x").unwrap();
    let exposed = table.lines().skip(1).filter(|line| line.split(',').nth(x_column).unwrap().parse::<f64>().unwrap() > 0.0).count();
    assert!(exposed > 0 && warm.exposures.as_ref().map(|e| e.len()) == Some(exposed), "{exposed} exposed pairs, warm start {:?}", warm.exposures);
    let stdout = ok(&plan(&golden("stock_lanes"), &out, &store, &["--solver", "decomposed", "--warm-from", "000001"]));
    assert!(stdout.contains("plan 000002") && stdout.contains("objective        12.90"), "{stdout}");
    let store_now = PlanStore::open(&store).unwrap();
    assert_eq!(store_now.manifest("000002").unwrap().warm_from.as_deref(), Some("000001"), "the version names where it started");
    assert_eq!(store_now.manifest("000002").unwrap().replan_of.as_deref(), Some("000001"));
    assert_eq!((store_now.manifest("000001").unwrap().warm_from, store_now.manifest("000001").unwrap().replan_of), (None, None));
    let refused = plan(&golden("stock_lanes"), &out, &store, &["--solver", "exact", "--warm-from", "000001"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("the exact solver solves from scratch"), "{}", String::from_utf8_lossy(&refused.stderr));
    let unknown = plan(&golden("stock_lanes"), &out, &store, &["--solver", "decomposed", "--warm-from", "000009"]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("000009"), "{}", String::from_utf8_lossy(&unknown.stderr));
    assert_eq!(PlanStore::open(&store).unwrap().ids().unwrap(), vec!["000001", "000002"], "refused re-plans save nothing");
    // `auto` on a problem this small runs the exact solver, which takes no
    // warm start: the version is a re-plan of 000001, not warm from it.
    ok(&plan(&golden("stock_lanes"), &out, &store, &["--warm-from", "000001"]));
    let auto = PlanStore::open(&store).unwrap().manifest("000003").unwrap();
    assert_eq!((auto.solver.as_str(), auto.warm_from, auto.replan_of.as_deref()), ("exact", None, Some("000001")));
}

/// `allot experiment list` and `report` read what the service recorded: a
/// canary over two versions of one scenario, decisions and outcomes through
/// the real routes; the report printed, as JSON equal to the route's, and as
/// an HTML page; an unknown experiment is an error naming it.
#[test]
fn experiment_report_reads_what_the_service_recorded() {
    use allot_api::Role;
    use serde_json::json;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok(&plan(&golden("stock_lanes"), &tmp.path().join("a"), &store, &["--activate"]));
    ok(&plan(&golden("stock_lanes"), &tmp.path().join("b"), &store, &[]));
    let customers = ["c1", "c2", "c3", "c4"];
    // An id whose hash splits the four customers two and two.
    let id = (0..100)
        .map(|i| format!("cli-{i}"))
        .find(|id| customers.iter().filter(|c| allot_api::experiments::bucket(id, c) < 0.5).count() == 2)
        .unwrap();
    let route_report = {
        let service = support::InProcess::open(&store, tmp.path());
        service.call(Role::Planner, "POST", "/v1/experiments", Some(json!({ "experiment_id": id, "kind": "canary", "version": "000002", "share": 0.5 })));
        for (i, c) in customers.iter().enumerate() {
            let decision = service.call(Role::Decision, "GET", &format!("/v1/customers/{c}/offers"), None);
            let offer = decision["offers"][0]["offer_id"].as_str().or(decision["excluded"][0]["offer_id"].as_str()).unwrap().to_string();
            let body = json!({ "event_id": format!("a{i}"), "kind": "accepted", "customer_id": c, "offer_id": offer, "occurred_at": "2026-12-02T10:00:00Z", "value": 2.0 * i as f64 });
            service.call(Role::Decision, "POST", "/v1/events/outcome", Some(body));
        }
        service.call(Role::Planner, "GET", &format!("/v1/experiments/{id}"), None)
    };
    let store_arg = store.to_str().unwrap();
    let list = ok(&allot(&["experiment", "list", "--store", store_arg], &[]));
    assert!(list.contains(&format!("{id}  canary   000002   share  50.0%")), "{list}");
    let html = tmp.path().join("report.html");
    let json_out = ok(&allot(&["experiment", "report", &id, "--store", store_arg, "--json", "--html", html.to_str().unwrap()], &[]));
    let report: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(report, route_report, "the CLI and the route give one report");
    let decisions: u64 = report["arms"].as_array().unwrap().iter().map(|a| a["decisions"].as_u64().unwrap()).sum();
    assert_eq!(decisions, 4, "{report}");
    assert!(report["comparison"]["uplift"].is_number(), "{report}");
    let page = fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"chart-uplift\"") && page.contains("id=\"chart-arms\"") && page.contains(&id), "{page}");
    let table = ok(&allot(&["experiment", "report", &id, "--store", store_arg], &[]));
    assert!(table.contains("canary") && table.contains("control") && table.contains("always-valid 95%"), "{table}");
    // allot forecast reads the outcomes as offer history: four acceptances
    // on one day leave no day to hold out, and the error says where they came from.
    let fc = allot(&["forecast", golden("stock_lanes").to_str().unwrap(), "--outcomes", store_arg, "--out", tmp.path().join("fc").to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&fc.stderr);
    assert!(!fc.status.success() && stderr.contains("outcome events: expected rows to fit an uptake model on"), "{stderr}");
    let unknown = allot(&["experiment", "report", "nope", "--store", store_arg], &[]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no experiment \"nope\""), "{}", String::from_utf8_lossy(&unknown.stderr));
}
