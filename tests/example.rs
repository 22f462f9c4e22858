//! The bundled example, `examples/retail`, is a version-2 scenario whose
//! features all take part: three channels, a call-centre capacity and an
//! email budget that bind, a minimum volume, a 30-day conflict, and 7-day
//! buckets with a receipt mid-horizon that costs value against counting it
//! from day 1. `examples/retail-v1` keeps the version-1 example.

use std::path::Path;

use allot_optimizer::exact::ExactOptions;
use allot_optimizer::feasibility::check_served;
use allot_optimizer::{plan, RuleKind, SolverChoice};
use allot_scenarios::load_scenario;

#[test]
fn the_example_uses_every_version_2_family() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail");
    let problem = load_scenario(&dir).expect("the example loads").problem;
    assert_eq!(problem.channels.len(), 3, "{:?}", problem.channels);
    assert_eq!(problem.buckets().count(), 4);
    assert!(problem.conflicts.iter().any(|c| c.within_days == 30));
    assert!(problem.rules.iter().any(|r| r.kind == RuleKind::MinTotal));
    let (cands, alloc, served) = plan(&problem, &SolverChoice::Exact(ExactOptions::default())).expect("solves");
    assert_eq!(check_served(&problem, &cands, &served, 1e-6), vec![]);
    let rule_price = |id: &str| {
        let i = problem.rules.iter().position(|r| r.id == id).unwrap_or_else(|| panic!("rule {id}"));
        alloc.prices.families["rule"][i]
    };
    assert!(rule_price("call_centre_capacity") > 1e-6 && rule_price("email_budget") > 1e-6, "capacity and budget bind");

    // The same files with one bucket: the receipt of W02/SKU00008 on 12-23
    // would serve the demand of bucket 3 (12-15..21), worth more.
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    let toml = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    assert!(toml.contains("bucket_days = 7\n"));
    std::fs::write(tmp.path().join("scenario.toml"), toml.replace("bucket_days = 7\n", "")).unwrap();
    let one = load_scenario(tmp.path()).unwrap().problem;
    let (_, whole, _) = plan(&one, &SolverChoice::Exact(ExactOptions::default())).unwrap();
    assert!(whole.report.objective > alloc.report.objective + 100.0, "{} vs {}", whole.report.objective, alloc.report.objective);
}

/// A binding hard minimum the rounding cannot keep: `app_volume` raised to
/// 44 expected app acceptances, what the LP optimum gives it exactly.
/// Rounding leaves it short (about 43.3) and no other pair can make up the
/// difference within the caps, policies and stock, so the served plan is the
/// all-or-nothing model's optimum instead: every hard rule holds on
/// `eligible`, the minimum included, and the rounding's cost is reported.
#[test]
fn a_binding_hard_minimum_is_kept_by_the_served_plan() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail");
    let mut problem = load_scenario(&dir).expect("the example loads").problem;
    let rule = problem.rules.iter().position(|r| r.id == "app_volume").expect("app_volume");
    problem.rules[rule].bound = 44.0;
    let (cands, alloc, served) = plan(&problem, &SolverChoice::Exact(ExactOptions::default())).expect("solves");
    assert!(alloc.prices.families["rule"][rule] > 1e-6, "the minimum binds at the optimum");
    assert_eq!(check_served(&problem, &cands, &served, 1e-6), vec![]);
    let kpi = served.kpis.rules.iter().find(|r| r.rule_id == "app_volume").unwrap();
    assert!(kpi.measured_served >= 44.0 - 1e-6, "served {} app acceptances", kpi.measured_served);
    assert!(served.kpis.rounding.objective_served <= alloc.report.objective + 1e-6);
}
