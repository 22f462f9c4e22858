//! The `policy` perturbation changes the PLAN, not only the policy field: one
//! test per key it can override, each planning the example scenario and a
//! variant of it and checking the variant's plan obeys the new rule where the
//! base plan did not (and pays for it in the objective).
//!
//! Why: the loader used to copy `contact_cap` into every customer before the
//! variant applied, so a variant with `contact_cap = 1` planned exactly like its
//! base. Every policy value must be read when the plan is made.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use allot_optimizer::decomposed::DecomposedOptions;
use allot_optimizer::exact::ExactOptions;
use allot_optimizer::feasibility::{check_allocation, check_served};
use allot_optimizer::{effective_contact_cap, plan, Allocation, Candidates, Plan, Problem, SolverChoice};
use allot_scenarios::load_scenario;
use allot_scenarios::plans::serving::{customers_table, serving_context};

const TOL: f64 = 1e-6;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/retail-v1")
}

struct Planned {
    problem: Problem,
    cands: Candidates,
    alloc: Allocation,
    plan: Plan,
}

/// Plans a problem and checks the result with the independent checker.
fn plan_problem(problem: Problem, solver: &SolverChoice) -> Planned {
    let (cands, alloc, plan) = plan(&problem, solver).expect("solves");
    assert_eq!(check_allocation(&problem, &cands, &alloc, TOL), vec![], "allocation feasible");
    assert_eq!(check_served(&problem, &cands, &plan, TOL), vec![], "plan respects the hard rules");
    Planned { problem, cands, alloc, plan }
}

fn exact() -> SolverChoice {
    SolverChoice::Exact(ExactOptions::default())
}

/// The example scenario planned once for every test.
fn base() -> &'static Planned {
    static BASE: OnceLock<Planned> = OnceLock::new();
    BASE.get_or_init(|| plan_problem(load_scenario(&example()).unwrap().problem, &exact()))
}

/// Writes a variant of the example with one `policy` perturbation and loads it.
fn policy_variant(overrides: &str) -> Problem {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("variant");
    fs::create_dir_all(&d).unwrap();
    let toml = format!("base = {:?}\n\n[[perturbation]]\nkind = \"policy\"\n{overrides}\n", example().display().to_string());
    fs::write(d.join("scenario.toml"), toml).unwrap();
    load_scenario(&d).unwrap().problem
}

/// Each customer's `max_offers` as written in the example's `customers.csv`
/// (read here, not through the loader, so a loader that fills in the policy's
/// cap cannot hide it).
fn own_caps() -> Vec<Option<u32>> {
    let text = fs::read_to_string(example().join("customers.csv")).unwrap();
    let mut lines = text.lines();
    let col = lines.next().unwrap().split(',').position(|h| h == "max_offers").unwrap();
    lines.map(|l| l.split(',').nth(col).filter(|v| !v.is_empty()).map(|v| v.parse().unwrap())).collect()
}

/// Offers served per customer in the plan's `eligible` column.
fn served(p: &Planned) -> Vec<u32> {
    let mut n = vec![0; p.problem.customers.len()];
    for (u, _) in p.plan.rows(&p.problem).filter(|(_, r)| r.eligible()) {
        n[u.customer as usize] += 1;
    }
    n
}

/// Expected acceptances (sum of `p * x`) of the customers of one tier.
fn accepts_of_tier(p: &Planned, tier: &str) -> f64 {
    let t = p.problem.tiers.iter().position(|x| x.name == tier).unwrap() as u32;
    (0..p.cands.len()).filter(|&k| p.problem.customers.tier[p.cands.customer[k] as usize] == t).map(|k| p.cands.p[k] * p.alloc.x[k]).sum()
}

/// Lowest exposure ratio between two groups over the fair offers, computed from
/// `x` here (not by the checker): mean exposure per group and fair offer.
fn min_fairness_ratio(p: &Planned) -> f64 {
    let groups = p.problem.groups.len();
    let mut sum = vec![vec![0.0; groups]; p.problem.offers.len()];
    let mut count = vec![vec![0.0; groups]; p.problem.offers.len()];
    for k in 0..p.cands.len() {
        let o = p.cands.offer[k] as usize;
        if let (true, Some(g)) = (p.problem.offers[o].fair, p.problem.customers.group[p.cands.customer[k] as usize]) {
            sum[o][g as usize] += p.alloc.x[k];
            count[o][g as usize] += 1.0;
        }
    }
    let mut ratio: f64 = 1.0;
    for (s, n) in sum.iter().zip(&count) {
        let means: Vec<f64> = s.iter().zip(n).filter(|(_, &n)| n > 0.0).map(|(s, n)| s / n).collect();
        let hi = means.iter().copied().fold(0.0, f64::max);
        let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
        if means.len() >= 2 && hi > TOL {
            ratio = ratio.min(lo / hi);
        }
    }
    ratio
}

/// contact_cap: every customer without a cap of its own gets at most one offer,
/// in the exact and the decomposed plan and in what the service is handed.
#[test]
fn contact_cap_limits_the_offers_each_customer_is_served() {
    let base = base();
    let own = &own_caps();
    assert!(
        served(base).iter().zip(own).any(|(&n, m)| n > 1 && m.is_none()),
        "the example serves someone without a cap of their own more than one offer"
    );
    let problem = policy_variant("contact_cap = 1");
    for solver in [exact(), SolverChoice::Decomposed(DecomposedOptions::default())] {
        let v = plan_problem(problem.clone(), &solver);
        for (c, &n) in served(&v).iter().enumerate() {
            assert!(n <= own[c].unwrap_or(1), "{solver:?}: customer {} served {n}, own cap {:?}", v.problem.customers.id[c], own[c]);
        }
        assert!(v.alloc.report.objective < base.alloc.report.objective - TOL, "{solver:?}: a tighter cap costs margin");
    }
    assert_eq!(&problem.customers.max_offers, own, "customers keep their own caps only");
    // The service resolves the cap from the stored table and context by the same rule.
    let v = plan_problem(problem, &exact());
    let context = serving_context(&v.problem, &v.plan);
    assert_eq!(context.contact_cap, Some(1));
    let table = customers_table(&v.problem).unwrap();
    let stored: Vec<Option<u32>> = table.column("max_offers").unwrap().u32().unwrap().iter().collect();
    assert_eq!(&stored, own, "the service gets each customer's own cap, not the base policy's");
    for (c, &m) in stored.iter().enumerate() {
        assert_eq!(effective_contact_cap(m, context.contact_cap), v.problem.contact_cap_of(c as u32));
        assert_eq!(v.problem.contact_cap_of(c as u32), Some(own[c].unwrap_or(1)));
    }
}

/// budget: the plan spends at most the new budget and earns less.
#[test]
fn budget_bounds_the_discount_the_plan_spends() {
    let base = base();
    assert!(base.plan.kpis.budget_used > 200.0 + 1.0, "the example spends more than 200: {}", base.plan.kpis.budget_used);
    let v = plan_problem(policy_variant("budget = 200"), &exact());
    assert!(v.plan.kpis.budget_used <= 200.0 + TOL, "budget used {}", v.plan.kpis.budget_used);
    assert!(v.alloc.report.objective < base.alloc.report.objective - TOL);
}

/// promise_days: lanes slower than the new promise carry no flow.
#[test]
fn promise_days_empties_the_slower_lanes() {
    let base = base();
    let slow = |p: &Planned| -> f64 { p.alloc.flows.iter().filter(|f| p.problem.lanes[f.lane as usize].transit_days > 2).map(|f| f.units).sum() };
    assert!(slow(base) > 1.0, "the example ships over 3-day lanes: {}", slow(base));
    let v = plan_problem(policy_variant("promise_days = 2"), &exact());
    assert!(slow(&v) <= TOL, "units on lanes slower than 2 days: {}", slow(&v));
    assert!(v.alloc.report.objective < base.alloc.report.objective - TOL);
}

/// fairness_min_ratio: the plan's exposures meet the new, stricter ratio.
#[test]
fn fairness_ratio_holds_in_the_plan() {
    let base = base();
    assert!(min_fairness_ratio(base) < 0.95, "the example's plan is not at parity: {}", min_fairness_ratio(base));
    let v = plan_problem(policy_variant("fairness_min_ratio = 1.0"), &exact());
    assert!(min_fairness_ratio(&v) >= 1.0 - 1e-6, "ratio {}", min_fairness_ratio(&v));
    assert!(v.alloc.report.objective < base.alloc.report.objective - TOL);
}

/// tier_weights: up-weighting a tier moves acceptances toward it.
#[test]
fn tier_weights_shift_the_allocation_to_the_upweighted_tier() {
    let base = base();
    let v = plan_problem(policy_variant("tier_weights = { standard = 5.0 }"), &exact());
    let (before, after) = (accepts_of_tier(base, "standard"), accepts_of_tier(&v, "standard"));
    assert!(after > before + 0.1, "standard accepts {before} -> {after}");
    for other in ["platinum", "gold"] {
        let (b, a) = (accepts_of_tier(base, other), accepts_of_tier(&v, other));
        assert!(a <= b + TOL, "{other} accepts {b} -> {a}");
    }
}

/// A custom-offer limit no lower than the number of custom offers cannot
/// bind: the model stays the LP (no binaries, no branch over the choices of
/// open offers); a limit below that count makes it a MIP. The example has
/// one custom offer and a limit of one.
#[test]
fn a_custom_limit_that_cannot_bind_leaves_the_lp() {
    let custom = base().problem.offers.iter().filter(|o| o.custom).count();
    assert_eq!((custom, base().problem.policy.max_custom_offers), (1, Some(1)));
    assert!(!base().problem.is_mip());
    assert!(policy_variant("max_custom_offers = 0").is_mip());
}

/// max_custom_offers: with a limit of 0, no custom offer is open or served.
#[test]
fn custom_limit_closes_custom_offers() {
    let base = base();
    let custom = |p: &Planned, o: u32| p.problem.offers[o as usize].custom;
    let open = |p: &Planned| (0..p.problem.offers.len() as u32).filter(|&o| custom(p, o) && p.alloc.offer_open[o as usize]).count();
    let served = |p: &Planned| p.plan.rows(&p.problem).filter(|(u, r)| r.eligible() && custom(p, u.offer)).count();
    assert!(open(base) >= 1 && served(base) >= 1, "the example serves its custom offer");
    let v = plan_problem(policy_variant("max_custom_offers = 0"), &exact());
    assert_eq!((open(&v), served(&v)), (0, 0));
    assert!((0..v.cands.len()).all(|k| !custom(&v, v.cands.offer[k]) || v.alloc.x[k] <= TOL));
    assert!(v.alloc.report.objective < base.alloc.report.objective - TOL);
}
