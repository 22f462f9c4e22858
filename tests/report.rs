//! The what-if pipeline end to end on the bundled example variants: `scenario
//! run` plans them in parallel, `scenario compare` writes the comparison, and
//! the HTML report is opened in headless Chromium (Debian `chromium`, which
//! `.ci/run` installs): it loads, holds every chart, and renders to a screenshot.

use std::path::{Path, PathBuf};
use std::process::Command;

fn allot(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_allot")).args(args).env_remove("ALLOT_STORE").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "allot {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run chromium ({e}): install Debian's chromium package (bash .ci/run does)"))
}

#[test]
fn example_variants_run_compare_and_render() {
    let tmp = tempfile::tempdir().unwrap();
    let (out_root, store) = (tmp.path().join("out"), tmp.path().join("store"));
    let (o, s) = (out_root.to_str().unwrap(), store.to_str().unwrap());
    let variants: Vec<String> = ["budget_cut", "promo_surge", "supplier_delay", "warehouse_outage"].iter().map(|v| examples().join("variants").join(v).display().to_string()).collect();
    let base = examples().join("retail-v1").display().to_string();
    let mut run_args = vec!["scenario", "run", base.as_str()];
    run_args.extend(variants.iter().map(String::as_str));
    run_args.extend(["--out-root", o, "--store", s]);
    let table = allot(&run_args);
    assert!(table.contains("5 planned"), "{table}");
    // Each variant is a plan version with its lineage.
    let plans = allot_scenarios::PlanStore::open(&store).unwrap().list().unwrap();
    assert_eq!(plans.len(), 5);
    assert_eq!(plans.iter().filter(|m| m.lineage.len() == 1).count(), 4);

    let mut compare_args = vec!["scenario", "compare", base.as_str()];
    compare_args.extend(variants.iter().map(String::as_str));
    compare_args.extend(["--out-root", o]);
    let printed = allot(&compare_args);
    assert!(printed.contains("objective") && printed.contains("budget_cut"), "{printed}");
    let report = out_root.join("compare-retail-v1/report.html");

    // Hand-checked deltas. The base spends its whole budget (797, binding);
    // the cut leaves 600, so budget_used moves by -197 (-24.72%).
    let csv = std::fs::read_to_string(out_root.join("compare-retail-v1/comparison.csv")).unwrap();
    assert!(csv.contains("kpi,budget_used,budget_cut,600.000000,797.000000,-197.000000,-0.247177"), "{csv}");
    // Customers whose served offers differ, counted here from the two eligibility tables.
    let served = |run: &str| -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut m: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        for line in std::fs::read_to_string(out_root.join(run).join("eligibility.csv")).unwrap().lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let entry = m.entry(f[0].to_string()).or_default();
            if f[3] == "true" {
                entry.insert(f[1].to_string());
            }
        }
        m
    };
    let (before, after) = (served("retail-v1"), served("budget_cut"));
    let changed = before.keys().filter(|c| before.get(*c) != after.get(*c)).count();
    assert!(changed > 0);
    assert!(csv.contains(&format!("eligibility,customers_changed,budget_cut,{changed},")), "{changed} customers changed: {csv}");
    assert!(printed.contains(&format!("budget_cut: eligibility changed for {changed} customers")), "{printed}");

    let dom = chromium(&["--dump-dom", &format!("file://{}", report.display())]);
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    for id in ["chart-kpis", "chart-stock", "chart-reservations", "chart-pick-load", "chart-bids-0", "chart-bids-4"] {
        let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("the page has no chart {id}"));
        assert!(dom[at..].split("</svg>").next().unwrap().contains("<rect"), "chart {id} draws nothing");
    }
    assert!(dom.contains("What one more unit is worth"));

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("whatif-report.png");
    let _ = std::fs::remove_file(&shot);
    let render = chromium(&["--window-size=1150,2600", &format!("--screenshot={}", shot.display()), &format!("file://{}", report.display())]);
    assert!(render.status.success(), "{}", String::from_utf8_lossy(&render.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "screenshot of {} bytes", png.len());
    eprintln!("screenshot: {}", shot.display());
}

/// Model version 2 in the comparison: a variant that gives the email channel
/// one more contact (`tests/golden/rules`, worked out in `tests/golden.rs`:
/// the email capacity of 5 binds at a price of 4) moves the rule's measure
/// from 5 to 6 and the email contacts with it; the report shows the rules.
#[test]
fn rule_and_channel_deltas_reach_the_comparison_and_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/rules").display().to_string();
    let variant = tmp.path().join("more_email");
    std::fs::create_dir_all(&variant).unwrap();
    std::fs::write(variant.join("scenario.toml"), format!("base = {base:?}\n\n[[perturbation]]\nkind = \"rule\"\nrule = \"email_capacity\"\nbound = 6\n")).unwrap();
    let (out_root, store) = (tmp.path().join("out"), tmp.path().join("store"));
    let (o, s, v) = (out_root.to_str().unwrap(), store.to_str().unwrap(), variant.to_str().unwrap());
    allot(&["scenario", "run", &base, v, "--out-root", o, "--store", s]);
    allot(&["scenario", "compare", &base, v, "--out-root", o]);
    let csv = std::fs::read_to_string(out_root.join("compare-rules/comparison.csv")).unwrap();
    assert!(csv.contains("rule_measure,email_capacity,more_email,6.000000,5.000000,1.000000"), "{csv}");
    assert!(csv.contains("channel_contacts,email,more_email,6.000000,5.000000,1.000000"), "{csv}");
    let html = std::fs::read_to_string(out_root.join("compare-rules/report.html")).unwrap();
    assert!(html.contains("Volume rules") && html.contains("email_capacity") && html.contains("Contacts by channel"));
}
