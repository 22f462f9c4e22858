//! Agreement tests: the decomposed solver against the exact one on generated
//! scenarios, with the independent checker (`feasibility`) as judge.
//!
//! The scenarios have 10,000 customers, so the decomposition's sample warm start
//! (4,000 customers) is a true sample, as it is at scale.

use allot_optimizer::decomposed::DecomposedOptions;
use allot_optimizer::exact::ExactOptions;
use allot_optimizer::feasibility::{check_allocation, check_served};
use allot_optimizer::{derive_plan, solve, Allocation, Candidates, Network, Problem, SolveStatus, SolverChoice};
use allot_scenarios::{generate, load_scenario, Family, GenerateSpec};

const TOL: f64 = 1e-6;

/// A generated scenario, with `edit` applied to the policy before solving.
fn scenario(seed: u64, edit: impl FnOnce(&mut Problem)) -> Problem {
    let spec = GenerateSpec { customers: 10_000, offers: 20, skus: 60, zones: 6, warehouses: 3, candidates: 6, seed, ..GenerateSpec::default() };
    let mut problem = generated(spec);
    edit(&mut problem);
    problem
}

fn solve_both(problem: &Problem) -> (Candidates, Allocation, Allocation) {
    let network = Network::new(problem);
    let cands = Candidates::build(problem, &network);
    let exact = solve(problem, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("exact solves");
    let decomposed = solve(problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("decomposed solves");
    // The one checker, for both solvers.
    assert_eq!(check_allocation(problem, &cands, &exact, TOL), vec![], "exact allocation feasible");
    assert_eq!(check_allocation(problem, &cands, &decomposed, TOL), vec![], "decomposed allocation feasible");
    let plan = derive_plan(problem, &network, &cands, &decomposed);
    assert_eq!(check_served(problem, &cands, &plan, TOL), vec![], "decomposed plan respects the hard rules");
    (cands, exact, decomposed)
}

/// The certificate must be true: the bound is above the optimum, the plan below
/// it, and the reported gap is what they say.
fn assert_certificate(exact: &Allocation, decomposed: &Allocation) {
    let opt = exact.report.objective;
    let r = &decomposed.report;
    let slack = 1e-7 * opt.abs().max(1.0);
    assert!(r.bound >= opt - slack, "bound {} below the optimum {opt}", r.bound);
    assert!(r.objective <= opt + slack, "plan {} above the optimum {opt}", r.objective);
    let gap = (r.bound - r.objective) / r.objective.abs().max(1.0);
    assert!((gap - r.gap).abs() < 1e-9, "reported gap {} but bound and objective give {gap}", r.gap);
    // The offers' value is measured from the same zero by both solvers.
    let without = exact.report.objective_without_offers;
    assert!((r.objective_without_offers - without).abs() <= 1e-6 * without.abs().max(1.0), "without offers: {} vs {without}", r.objective_without_offers);
    let offers_gap = (r.bound - r.objective) / (r.bound - without).abs().max(1.0);
    assert!((offers_gap - r.offers_gap).abs() < 1e-9, "reported offers gap {} but bound and objective give {offers_gap}", r.offers_gap);
    if r.status == SolveStatus::WithinGap {
        assert!(r.offers_gap <= DecomposedOptions::default().gap);
    }
}

/// How far the decomposed plan is below the exact optimum, on the offers'
/// value (the optimum less the optimum without offers).
fn relative_difference(exact: &Allocation, decomposed: &Allocation) -> f64 {
    let offers_value = exact.report.objective - exact.report.objective_without_offers;
    (exact.report.objective - decomposed.report.objective).abs() / offers_value.abs().max(1.0)
}

/// Solves with both solvers, checks the certificate, and asserts the decomposed
/// objective is within `tolerance` (relative) of the exact optimum.
fn assert_agrees(problem: &Problem, tolerance: f64) {
    let (_, exact, decomposed) = solve_both(problem);
    assert_certificate(&exact, &decomposed);
    let diff = relative_difference(&exact, &decomposed);
    assert!(diff <= tolerance, "decomposed {} vs exact {}: {diff:.2e}", decomposed.report.objective, exact.report.objective);
}

fn lp(problem: &mut Problem) {
    problem.policy.max_custom_offers = None;
}

#[test]
fn agrees_with_exact_with_fairness_budget_and_caps() {
    let problem = scenario(7, lp);
    assert!(problem.policy.fairness_min_ratio.is_some() && problem.policy.budget.is_some());
    assert!(problem.offers.iter().any(|o| o.max_redemptions.is_some()));
    assert!(problem.zones.iter().any(|z| z.delivery_capacity.is_some()));
    assert_agrees(&problem, 1e-3);
}

#[test]
fn agrees_with_exact_without_fairness() {
    let problem = scenario(7, |p| {
        lp(p);
        p.policy.fairness_min_ratio = None;
    });
    assert_agrees(&problem, 1e-3);
}

#[test]
fn agrees_with_exact_without_redemption_and_delivery_caps() {
    let problem = scenario(7, |p| {
        lp(p);
        p.offers.iter_mut().for_each(|o| o.max_redemptions = None);
        p.zones.iter_mut().for_each(|z| z.delivery_capacity = None);
    });
    assert_agrees(&problem, 1e-3);
}

#[test]
fn agrees_with_exact_without_budget() {
    let problem = scenario(7, |p| {
        lp(p);
        p.policy.budget = None;
    });
    assert_agrees(&problem, 1e-3);
}

/// A scenario of `family` as `allot generate` draws it at its defaults (20
/// offers, 50 SKUs, 5 zones, 3 warehouses, 5 candidates a customer), seed 1,
/// as the LP (the custom-offer limit dropped, as `allot bench` does).
fn family_scenario(family: Family, customers: usize) -> Problem {
    generated_lp(GenerateSpec { customers, family, ..GenerateSpec::default() })
}

/// The scenario `allot generate` draws with `spec`, as the LP.
fn generated_lp(spec: GenerateSpec) -> Problem {
    let mut problem = generated(spec);
    lp(&mut problem);
    problem
}

/// The scenario `allot generate` draws with `spec`, as it loads.
fn generated(spec: GenerateSpec) -> Problem {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("scenario");
    generate(&out, &spec).expect("generates");
    load_scenario(&out).expect("loads").problem
}

/// The decomposition's target on a family (issue 17): it stops `within_gap`,
/// certifying at most 1e-3 on the offers' value, and its plan is within that
/// of the exact optimum. Returns the exact allocation for the family's own
/// checks.
fn assert_reaches_the_target(problem: &Problem) -> Allocation {
    let (_, exact, decomposed) = solve_both(problem);
    assert_certificate(&exact, &decomposed);
    let r = &decomposed.report;
    assert_eq!(r.status, SolveStatus::WithinGap, "offers gap {:.2e} after {:?} iterations", r.offers_gap, r.iterations);
    assert!(r.offers_gap <= 1e-3, "certified offers gap {:.2e}", r.offers_gap);
    let diff = relative_difference(&exact, &decomposed);
    assert!(diff <= 1e-3, "decomposed {} vs exact {}: {diff:.2e} of the offers' value", r.objective, exact.report.objective);
    exact
}

#[test]
fn reaches_the_target_on_the_default_family() {
    let problem = family_scenario(Family::Default, 10_000);
    assert!(problem.policy.fairness_min_ratio.is_some() && problem.policy.budget.is_some());
    assert_reaches_the_target(&problem);
}

#[test]
fn reaches_the_target_without_fairness() {
    let problem = family_scenario(Family::NoFairness, 10_000);
    assert!(problem.policy.fairness_min_ratio.is_none());
    assert_reaches_the_target(&problem);
}

#[test]
fn reaches_the_target_without_budget() {
    let problem = family_scenario(Family::NoBudget, 10_000);
    assert!(problem.policy.budget.is_none());
    assert_reaches_the_target(&problem);
}

/// A problem that is its own first sample (8,000 customers): the ascent
/// starts at the LP's optimal prices, and its first repair runs the hull
/// LP. Held-out draw (`no-budget`, seed 43, `allot bench`'s sizes): when the
/// first hull was skipped, the response alone was 4.0e-3 short and the run
/// stalled at 2.0e-3.
#[test]
fn reaches_the_target_from_the_optimal_prices_of_its_own_sample() {
    let spec = GenerateSpec { customers: 8_000, offers: 40, skus: 300, zones: 20, warehouses: 5, candidates: 8, seed: 43, family: Family::NoBudget, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    assert!(allot_optimizer::decomposed::sample::whole_problem_is_sampled(problem.customers.len()));
    assert_reaches_the_target(&problem);
}

/// Contact policies at `allot bench`'s sizes (40 offers, 300 SKUs, 20
/// zones; held-out draw, seed 67, 8,000 customers: the decomposition starts
/// at the optimal prices): customers with policy rows respond with their
/// exact LP's optimum. With the ridge kept within the rows the plan stalled
/// 4.5e-3 short (3.2e-2 with the rows only cut).
#[test]
fn reaches_the_target_with_contact_policies_at_bench_sizes() {
    let spec = GenerateSpec { customers: 8_000, offers: 40, skus: 300, zones: 20, warehouses: 5, candidates: 8, seed: 67, channels: true, contact_policies: true, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    assert!(!problem.contact_rules.is_empty() || !problem.conflicts.is_empty(), "the draw has contact policies");
    assert_reaches_the_target(&problem);
}

/// Volume rules (model version 2: an email capacity, a call-centre budget,
/// a hard minimum of app acceptances, a soft minimum for a category) with
/// fairness rows, at `allot bench`'s settings (held-out draw, seed 82,
/// 20,000 customers). The samples' fairness prices are read in the full
/// problem's units: as they were (a sample's share of the exact duals), the
/// fairness prices stayed about half of the optimum's and the run stalled
/// at 3.2e-3 after 241 iterations.
#[test]
fn reaches_the_target_with_volume_rules_and_fairness() {
    let spec = GenerateSpec { customers: 20_000, offers: 40, skus: 300, zones: 20, warehouses: 5, candidates: 8, seed: 82, channels: true, volume_rules: true, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    assert!(!problem.rules.is_empty() && problem.policy.fairness_min_ratio.is_some(), "the draw has volume rules and fairness");
    let exact = assert_reaches_the_target(&problem);
    assert!(exact.prices.fairness.iter().any(|f| f.price > 1e-7), "a fairness row binds");
}

/// The same draw at 12,000 customers: no sample fits between twice the
/// first (8,000) and half the problem (6,000), so when the ascent could not
/// lower the first sample's bound (1.6e-3 of the offers' value above the
/// optimum) the run had nothing to escalate to and stalled at 2.24e-3
/// after 201 iterations. It now escalates to the whole problem, whose
/// exact prices certify the plan.
#[test]
fn escalates_to_the_whole_problem_where_no_sample_fits() {
    let spec = GenerateSpec { customers: 12_000, offers: 40, skus: 300, zones: 20, warehouses: 5, candidates: 8, seed: 82, channels: true, volume_rules: true, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    assert!(!allot_optimizer::decomposed::sample::whole_problem_is_sampled(problem.customers.len()), "the first sample is not the whole problem");
    assert_reaches_the_target(&problem);
}

/// An escalated sample solved ahead of the ask (as large runs do after a
/// first repair far from the target) gives the prices the escalation computes when asked:
/// a run's path does not depend on when that thread finishes.
#[test]
fn a_sample_solved_ahead_has_the_prices_solved_when_asked() {
    use allot_optimizer::decomposed::sample::Escalation;
    let spec = GenerateSpec { customers: 20_000, offers: 20, skus: 60, zones: 6, warehouses: 3, candidates: 6, seed: 4, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    let n = problem.customers.len();
    let (asked, asked_prices) = Escalation::new(n).next(&problem, &[]).expect("a sample of 9,999 customers solves");
    assert!(!asked.solved_ahead);
    let mut escalation = Escalation::new(n);
    escalation.solve_ahead(&problem, &[]);
    let (ahead, ahead_prices) = escalation.next(&problem, &[]).expect("solved ahead");
    assert!(ahead.solved_ahead, "taken from the thread");
    assert_eq!((ahead.customers, ahead.repeat), (asked.customers, asked.repeat));
    assert_eq!(ahead_prices, asked_prices);
    // Drawn with other offers closed, the sample is another LP: solved when asked.
    let mut escalation = Escalation::new(n);
    escalation.solve_ahead(&problem, &[]);
    let closed = vec![true; problem.offers.len()];
    let (other, _) = escalation.next(&problem, &closed).expect("solves");
    assert!(!other.solved_ahead);
}

/// A set cancel flag gives an exact LP up: what stops a sample solved ahead
/// that the run ends without.
#[test]
fn a_cancelled_exact_solve_is_given_up() {
    let problem = scenario(3, lp);
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let cancel = allot_optimizer::lp_backend::Interrupt::default();
    cancel.set();
    let opts = ExactOptions { cancel: Some(cancel), ..ExactOptions::default() };
    let given_up = allot_optimizer::exact::solve(&problem, &network, &cands, &opts);
    assert!(matches!(given_up, Err(allot_optimizer::exact::SolveError::Interrupted)), "{:?}", given_up.err());
}

/// Tight stock: most offers compete for SKUs whose stock binds.
#[test]
fn reaches_the_target_with_tight_stock() {
    let problem = family_scenario(Family::TightStock, 10_000);
    let exact = assert_reaches_the_target(&problem);
    let binding = exact.prices.stock.values().filter(|&&p| p > 1e-7).count();
    assert!(binding >= 20, "{binding} binding stock rows");
}

/// Tight stock at `allot bench`'s settings (40 offers, 300 SKUs, 20 zones,
/// 5 warehouses, 8 candidates), 20,000 customers: the first sample's prices
/// (4,000 customers) leave the bound 1.9e-2 of the offers' value above the
/// optimum, and the ascent does not lower it (the zone-balance prices hardly
/// move), so the run used to stall there. A window that does not lower the
/// bound now solves a larger sample (9,999 customers here, the most under
/// half the customers): its bound is 1.2e-3 above the optimum and the run
/// certifies 1.6e-3. A second, disjoint sample of that size, averaged with
/// the first, certifies 1.16e-3.
#[test]
fn a_held_bound_escalates_to_a_larger_sample() {
    let spec = GenerateSpec { customers: 20_000, offers: 40, skus: 300, zones: 20, warehouses: 5, candidates: 8, seed: 1, family: Family::TightStock, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    let (_, exact, decomposed) = solve_both(&problem);
    assert_certificate(&exact, &decomposed);
    let r = &decomposed.report;
    assert!(r.offers_gap <= 1.4e-3, "certified offers gap {:.2e} after {:?} iterations", r.offers_gap, r.iterations);
    let diff = relative_difference(&exact, &decomposed);
    assert!(diff <= 1e-3, "decomposed {} vs exact {}: {diff:.2e} of the offers' value", r.objective, exact.report.objective);
}

#[test]
fn reaches_the_target_with_many_candidates() {
    let problem = family_scenario(Family::ManyCandidates, 10_000);
    assert_eq!(problem.uptake.len(), 10_000 * 15);
    assert_reaches_the_target(&problem);
}

#[test]
fn reaches_the_target_with_skewed_uptake() {
    let problem = family_scenario(Family::SkewedUptake, 10_000);
    let mut p: Vec<f64> = problem.uptake.iter().map(|u| u.p).collect();
    p.sort_by(f64::total_cmp);
    // The default family's median is about 0.1.
    assert!(p[p.len() / 2] < 0.05 && p[p.len() - 1] > 0.5, "median {} top {}", p[p.len() / 2], p[p.len() - 1]);
    assert_reaches_the_target(&problem);
}

/// Contact costs and per-pair values (model version 2): every contact costs
/// something, and a pair's value of one acceptance differs from its offer's
/// margin (some pairs lose money when accepted). Both enter the customers'
/// side of the decomposition and its repair. This draw stalls about 0.26%
/// below the optimum on the offers' value (each feature alone: 0.18% and
/// 0.30%); the certificate says so (offers gap 0.29%), as on the harder draw.
#[test]
fn agrees_with_exact_with_contact_costs_and_pair_values() {
    let problem = scenario(7, |p| {
        lp(p);
        contact_costs_and_pair_values(p);
    });
    assert_agrees(&problem, 3.5e-3);
}

/// Volume rules (model version 2) over a generated scenario with channels: an
/// email capacity, a call-centre budget on contact costs, a soft minimum of
/// acceptances on one category and a soft minimum of contacts on another.
/// They are coupling rows like any other: dualized (a soft rule's multiplier
/// capped at its penalty) and held by the repair: the plan keeps every hard
/// rule and the certificate is true. Its quality is not yet the other draws':
/// rows over a whole channel have a large preconditioner, so their multipliers
/// move slowly and the plan stalls 9.4% below the optimum on the offers' value
/// (the reported gap says so). A hard minimum binding at the optimum is not
/// here: for the same reason the repair does not meet it on this draw, and
/// the solve ends with an error saying so, never with a plan below the bound.
#[test]
fn agrees_with_exact_with_volume_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("scenario");
    let spec = GenerateSpec { customers: 10_000, offers: 20, skus: 60, zones: 6, warehouses: 3, candidates: 6, seed: 7, channels: true, ..GenerateSpec::default() };
    generate(&out, &spec).expect("generates");
    std::fs::write(
        out.join("rules.csv"),
        "rule_id,kind,measure,bound,penalty,channels,tags\nemail_capacity,max_total,contacts,4000,,email,\ncall_budget,max_total,contact_cost,600,,call_centre,\ncat1_volume,min_total,accepts,900,3,,cat1\ncat2_reach,min_total,contacts,2500,4,,cat2\n",
    )
    .expect("writes rules");
    let mut problem = load_scenario(&out).expect("loads").problem;
    lp(&mut problem);
    assert_eq!(problem.rules.len(), 4);
    let (cands, exact, decomposed) = solve_both(&problem);
    assert_certificate(&exact, &decomposed);
    // The rules bind at the optimum (else this tests nothing).
    let binding = exact.prices.families["rule"].iter().filter(|&&p| p > 1e-7).count();
    assert!(binding >= 3, "binding rules: {:?}", exact.prices.families["rule"]);
    let diff = relative_difference(&exact, &decomposed);
    assert!(diff <= 0.1, "decomposed {} vs exact {}: {diff:.2e}", decomposed.report.objective, exact.report.objective);
    // The same minimum made hard: a plan only if it keeps the bound.
    problem.rules[3].penalty = None;
    let network = Network::new(&problem);
    match solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())) {
        Ok(alloc) => assert_eq!(check_allocation(&problem, &cands, &alloc, TOL), vec![], "a plan keeps the hard minimum"),
        Err(e) => assert!(e.to_string().contains("min_total"), "{e}"),
    }
}

/// A `value` rule over per-pair values (model version 2): a cap on the
/// expected acceptance value of every offer, at 30% of what all candidates
/// could bring, where each pair counts its own value (0.5 to 1.7 times its
/// offer's margin, some pairs losing money). The rule's coefficient differs
/// between the customers of one cell, so the customers pay its price on their
/// own `value * p` and sum it per offer for the gradient: without that the
/// multiplier would rise with no response and the bound with it. The plan
/// keeps the rule (the checker measures it from the spec) and the certificate
/// is tight.
#[test]
fn agrees_with_exact_with_a_value_rule_over_pair_values() {
    let mut problem = scenario(7, |p| {
        lp(p);
        contact_costs_and_pair_values(p);
    });
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let reachable: f64 = (0..cands.len()).map(|k| cands.accept_value_of(&problem, k) * cands.p[k]).filter(|v| *v > 0.0).sum();
    problem.rules.push(allot_optimizer::Rule {
        id: "value_cap".into(),
        kind: allot_optimizer::RuleKind::MaxTotal,
        measure: allot_optimizer::Measure::Value,
        bound: 0.3 * reachable,
        penalty: None,
        selector: allot_optimizer::Selector::default(),
    });
    let (_, exact, decomposed) = solve_both(&problem);
    assert_certificate(&exact, &decomposed);
    assert!(exact.prices.families["rule"][0] > 1e-7, "the value cap binds: {:?}", exact.prices.families["rule"]);
    assert!(decomposed.report.offers_gap <= 2e-2, "certified offers gap {:.2e}", decomposed.report.offers_gap);
    let diff = relative_difference(&exact, &decomposed);
    assert!(diff <= 1e-2, "decomposed {} vs exact {}: {diff:.2e}", decomposed.report.objective, exact.report.objective);
}

/// Contact policies (model version 2) over a generated scenario: per-customer
/// limits on email and call-centre contacts, a call-then-email and a
/// category conflict, and a contact history for a third of the customers.
/// They stay inside each customer's subproblem (its exact LP gives the dual
/// function), so the certificate holds and the plan keeps every row.
#[test]
fn agrees_with_exact_with_contact_policies() {
    let spec = GenerateSpec { customers: 10_000, offers: 20, skus: 60, zones: 6, warehouses: 3, candidates: 6, seed: 7, channels: true, contact_policies: true, ..GenerateSpec::default() };
    let problem = generated_lp(spec);
    assert!(!problem.contact_rules.is_empty() && !problem.conflicts.is_empty() && !problem.history.is_empty());
    let (cands, exact, decomposed) = solve_both(&problem);
    assert_certificate(&exact, &decomposed);
    // The policies bind at the optimum (else this tests nothing).
    let binding = exact.prices.customer_rows.iter().filter(|&&p| p > 1e-7).count();
    assert!(binding >= 100, "{binding} binding customer rows");
    assert!(cands.excluded.iter().any(|(_, r)| matches!(r, allot_optimizer::ExclusionRule::Conflict(_))), "history excludes some pair");
    let diff = relative_difference(&exact, &decomposed);
    assert!(diff <= 1e-2, "decomposed {} vs exact {}: {diff:.2e}", decomposed.report.objective, exact.report.objective);
    // The partition files carry the customers' policy rows: workers loaded
    // from them reach the single-machine plan.
    let network = Network::new(&problem);
    let mut side = partitioned(&problem, &cands, 3);
    let remote = allot_optimizer::decomposed::solve_with(&problem, &network, &cands, &DecomposedOptions::default(), &mut side).expect("partitioned solve");
    assert_eq!(check_allocation(&problem, &cands, &remote, TOL), vec![], "partitioned allocation keeps the policy rows");
    let rel = (remote.report.objective - decomposed.report.objective).abs() / decomposed.report.objective.abs().max(1.0);
    assert!(rel <= DecomposedOptions::default().gap, "partitioned {} vs local {}", remote.report.objective, decomposed.report.objective);
    assert_certificate(&exact, &remote);
}

/// Every offer's contact costs 0 to 0.2; each pair's value of one acceptance
/// is 0.5 to 1.7 times its offer's margin, one pair in 17 loses 30 more.
fn contact_costs_and_pair_values(p: &mut Problem) {
    for (o, offer) in p.offers.iter_mut().enumerate() {
        offer.cost_per_contact = 0.05 * (o % 5) as f64;
    }
    let values = p.uptake.iter().enumerate().map(|(i, u)| p.offers[u.offer as usize].margin * (0.5 + ((i * 7919) % 100) as f64 / 80.0) - if i % 17 == 0 { 30.0 } else { 0.0 }).collect();
    p.uptake_value = Some(values);
}

/// A harder draw (seed 11) where the plan stalls about 0.15% below the optimum: the
/// certificate still holds and says so (the bound is within 0.02%); 0.1% is not
/// reached here, which the closing note of the scale issue records.
#[test]
fn certified_on_a_harder_draw() {
    let problem = scenario(11, |p| {
        lp(p);
        p.offers.iter_mut().for_each(|o| o.max_redemptions = None);
        p.zones.iter_mut().for_each(|z| z.delivery_capacity = None);
    });
    assert_agrees(&problem, 3e-3);
}

/// The custom-offer limit: the plan keeps the limit, and its bound is the
/// choices' (each choice of open offers bounded), below the relaxation's
/// optimum, not the relaxation's own; the agreement tests with the exact MIP
/// below show that bound holds.
#[test]
fn custom_offer_limit_is_kept_and_bounded_by_its_choices() {
    let problem = scenario(5, |p| p.policy.max_custom_offers = Some(1));
    assert!(problem.is_mip());
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let decomposed = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("solves");
    assert_eq!(check_allocation(&problem, &cands, &decomposed, TOL), vec![]);
    let open_custom = problem.offers.iter().zip(&decomposed.offer_open).filter(|(o, &open)| o.custom && open).count();
    assert!(open_custom <= 1, "{open_custom} custom offers open");
    let mut relaxed = problem.clone();
    relaxed.policy.max_custom_offers = None;
    let lp = solve(&relaxed, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("LP solves");
    assert!(decomposed.report.objective <= lp.report.objective + 1e-6);
    assert!(decomposed.report.bound < lp.report.objective, "bound {} not below the relaxation's optimum {}", decomposed.report.bound, lp.report.objective);
    assert!(decomposed.report.bound >= decomposed.report.objective);
}

/// `auto` picks exact below the measured threshold and decomposed above it.
#[test]
fn auto_picks_by_size() {
    let mut problem = generated_lp(GenerateSpec { customers: 30_000, candidates: 10, ..GenerateSpec::default() });
    let auto = SolverChoice::Auto(ExactOptions::default(), DecomposedOptions::default());
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    assert!(cands.len() > allot_optimizer::AUTO_EXACT_MAX_CANDIDATES);
    assert!(matches!(auto.resolve(&problem, &cands), SolverChoice::Decomposed(_)));
    problem.uptake.truncate(1000);
    let cands = Candidates::build(&problem, &network);
    assert!(matches!(auto.resolve(&problem, &cands), SolverChoice::Exact(_)));
    // An LP of 8,000 customers above the pairs' threshold is the
    // decomposition's own first sample: exact. As a MIP, decomposed.
    let mut problem = generated_lp(GenerateSpec { customers: 8_000, offers: 60, candidates: 40, ..GenerateSpec::default() });
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    assert!(cands.len() > allot_optimizer::AUTO_EXACT_MAX_CANDIDATES, "{} pairs", cands.len());
    assert!(matches!(auto.resolve(&problem, &cands), SolverChoice::Exact(_)));
    // A warm start or a time limit keeps the decomposition (its check of the
    // earlier plan; its plan at the limit).
    let warm = allot_optimizer::decomposed::WarmStart { offers_gap: 1e-3, prices: Default::default(), closed_offers: Vec::new(), source: None, exposures: None };
    let warmed = auto.clone().with_warm_start(std::sync::Arc::new(warm));
    assert!(matches!(warmed.resolve(&problem, &cands), SolverChoice::Decomposed(_)));
    let timed = SolverChoice::Auto(ExactOptions::default(), DecomposedOptions { time_limit: Some(60.0), ..DecomposedOptions::default() });
    assert!(matches!(timed.resolve(&problem, &cands), SolverChoice::Decomposed(_)));
    problem.policy.binary_decisions = true;
    assert!(matches!(auto.resolve(&problem, &cands), SolverChoice::Decomposed(_)));
}

/// The customers' side held by partition workers, reached through the encoded
/// messages and loaded from the partition files, exactly as the Ray actors do
/// (without Ray: the workers live in this process).
struct FileWorkers(Vec<allot_optimizer::decomposed::customers::PartitionWorker>);

impl allot_optimizer::decomposed::customers::CustomerSide for FileWorkers {
    fn map(
        &mut self,
        request: &allot_optimizer::decomposed::customers::MapRequest,
    ) -> Result<Vec<allot_optimizer::decomposed::customers::MapReply>, allot_optimizer::decomposed::DecomposedError> {
        use allot_optimizer::decomposed::customers::{decode, encode};
        let bytes = encode(request)?;
        self.0.iter_mut().map(|w| decode(&w.serve_bytes(&bytes)?)).collect()
    }
}

fn partitioned(problem: &Problem, cands: &Candidates, n: usize) -> FileWorkers {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = allot_scenarios::scenario::partitions::write_partitions(dir.path(), problem, cands, n).expect("writes partitions");
    assert_eq!((manifest.partitions, manifest.customers, manifest.candidates), (n, problem.customers.len(), cands.len()));
    let workers = (0..n)
        .map(|i| allot_optimizer::decomposed::customers::PartitionWorker::new(allot_scenarios::scenario::partitions::read_partition(dir.path(), i).expect("reads")))
        .collect();
    FileWorkers(workers)
}

/// The distributed path's equivalence, without Ray: customers split by hash into
/// Parquet partitions, every request and reply encoded, reaches the
/// single-machine solve's objective within the stopping gap (the same driver;
/// only the order of the sums differs), and the checker accepts the plan.
/// Checked on the LP with contact costs and per-pair values (the partition
/// files carry both), and on the MIP (custom-offer heuristic).
#[test]
fn partitioned_workers_reach_the_single_machine_plan() {
    for mip in [false, true] {
        let problem = scenario(31, |p| {
            if !mip {
                lp(p);
                contact_costs_and_pair_values(p);
            }
        });
        let network = Network::new(&problem);
        let cands = Candidates::build(&problem, &network);
        let opts = DecomposedOptions::default();
        let local = allot_optimizer::decomposed::solve(&problem, &network, &cands, &opts).expect("local solve");
        let mut side = partitioned(&problem, &cands, 3);
        let remote = allot_optimizer::decomposed::solve_with(&problem, &network, &cands, &opts, &mut side).expect("partitioned solve");
        assert_eq!(check_allocation(&problem, &cands, &remote, TOL), vec![], "partitioned allocation feasible (mip {mip})");
        let (a, b) = (&local.report, &remote.report);
        let rel = (a.objective - b.objective).abs() / a.objective.abs().max(1.0);
        assert!(rel <= opts.gap, "objectives {} vs {} (mip {mip})", a.objective, b.objective);
        assert!(b.offers_gap <= opts.gap || b.status != SolveStatus::WithinGap);
        // The certificate against the exact optimum, computed apart: a bound
        // clamped up to the plan's own objective would fail here.
        let exact = solve(&problem, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("exact solves");
        assert_certificate(&exact, &remote);
    }
}

/// A worker that answers with the wrong reply or goes missing ends the solve in
/// an error, never in a plan.
#[test]
fn a_lost_partition_is_an_error_not_a_plan() {
    let problem = scenario(32, lp);
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let mut side = partitioned(&problem, &cands, 3);
    side.0.pop();
    let err = allot_optimizer::decomposed::solve_with(&problem, &network, &cands, &DecomposedOptions::default(), &mut side)
        .expect_err("a third of the customers is missing");
    assert!(err.to_string().contains("not answered for"), "{err}");
}

/// A warm re-plan (`allot plan --warm-from`) after a 5% demand shock. The
/// earlier plan's prices map back onto the same rows by family and row key.
/// On the harder draw (seed 15) with a target of 1e-4, from an earlier plan
/// that stopped after its first repair short of the target (the runs to
/// the target now escalate to the whole problem and reach it), the warm
/// start certifies the earlier plan's gap within two iterations and stops
/// (`matched_earlier_plan`), where the cold start goes on. On the
/// easy one (seed 7), where the sample's prices reach the target in one
/// iteration, the earlier prices alone do not: the re-plan goes on from the
/// better start and reaches the target as the cold one does. With the
/// custom-offer limit (a MIP, its earlier plan stopped short the same
/// way), the earlier plan's open offers are kept: the
/// relaxation's dual function at the earlier prices gives the bound, and one
/// iteration with those offers fixed the plan (on seed 5 it reaches the
/// target itself, so the status says so). Every certificate holds
/// against the exact optimum of the shocked problem (the relaxation's, for the MIP).
#[test]
fn a_warm_replan_starts_from_the_earlier_plans_prices() {
    use allot_optimizer::decomposed::{KeyedExposures, WarmStart};
    use allot_optimizer::families::{no_extra, CustomLimitMode, Layout, Scope};
    let harder = |p: &mut Problem| {
        lp(p);
        p.offers.iter_mut().for_each(|o| o.max_redemptions = None);
        p.zones.iter_mut().for_each(|z| z.delivery_capacity = None);
    };
    // (seed, target gap, the LP or the MIP with the custom-offer limit, expected to match the earlier gap)
    for (seed, target, mip, matched) in [(15, 1e-4, false, true), (7, 1e-3, false, false), (5, 1e-4, true, true)] {
        let options = DecomposedOptions { gap: target, ..DecomposedOptions::default() };
        let before = match (mip, matched) {
            (false, true) => scenario(seed, harder),
            (false, false) => scenario(seed, lp),
            (true, _) => scenario(seed, |p| p.policy.max_custom_offers = Some(1)),
        };
        assert_eq!(before.has_custom_limit(), mip);
        let network = Network::new(&before);
        let cands = Candidates::build(&before, &network);
        // The earlier plan to match: one that stopped after its first
        // repair (a phase's), short of the target.
        let earlier_options = if matched { DecomposedOptions { max_iterations: 1, ..options.clone() } } else { options.clone() };
        let earlier = solve(&before, &network, &cands, &SolverChoice::Decomposed(earlier_options)).expect("solves");
        let scope = Scope::new(&before, &network, &cands, CustomLimitMode::Off);
        let layout = Layout::new(&scope, no_extra(&scope));
        let warm = WarmStart::of(&before, &layout, &earlier).with_exposures(KeyedExposures::of(&before, &cands, &earlier.x));
        let nu = layout.prices_from(&before, &earlier.prices);
        assert!(nu.iter().filter(|&&v| v > 0.0).count() > 10, "the plan prices some rows");
        assert_eq!(layout.prices_from_keyed(&before, &warm.prices), nu, "keyed prices map back onto the same rows");

        let mut after = before.clone();
        after.baseline.iter_mut().for_each(|b| b.units *= 1.05);
        let cands = Candidates::build(&after, &network);
        let cold = solve(&after, &network, &cands, &SolverChoice::Decomposed(options.clone())).expect("cold re-plan");
        let opts = DecomposedOptions { warm: Some(std::sync::Arc::new(warm.clone())), ..options };
        let warmed = solve(&after, &network, &cands, &SolverChoice::Decomposed(opts)).expect("warm re-plan");
        assert_eq!(check_allocation(&after, &cands, &warmed, TOL), vec![], "warm plan feasible (seed {seed})");
        let mut relaxed = after.clone();
        relaxed.policy.max_custom_offers = None;
        let exact = solve(&relaxed, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("exact solves");
        if mip {
            // The earlier plan's open offers, kept: one iteration, no relaxation phase.
            assert_eq!(warmed.offer_open, earlier.offer_open);
            assert_eq!(warmed.report.iterations, Some(1), "{:?}", warmed.report);
            // Certified as the earlier plan was, by the choices' bounds (below
            // the relaxation's optimum), not by the relaxation's.
            assert!(warmed.report.bound < exact.report.objective, "bound {} not below the relaxation's optimum {}", warmed.report.bound, exact.report.objective);
            assert!(warm.offers_gap > target && warmed.report.offers_gap <= warm.offers_gap, "warm certifies {:.2e}, the earlier plan {:.2e}", warmed.report.offers_gap, warm.offers_gap);
            // As good a plan as the cold re-plan's.
            let offers_value = cold.report.objective - cold.report.objective_without_offers;
            assert!(warmed.report.objective >= cold.report.objective - 2e-3 * offers_value, "warm {} vs cold {}", warmed.report.objective, cold.report.objective);
            // The one iteration reaches the target itself here (seed 5).
            assert_eq!(warmed.report.status, SolveStatus::WithinGap, "certified {:.2e}", warmed.report.offers_gap);
            continue;
        } else {
            assert_certificate(&exact, &warmed);
        }
        let (w, c) = (warmed.report.iterations.unwrap(), cold.report.iterations.unwrap());
        if matched {
            assert!(warm.offers_gap > target, "the earlier plan stopped short of the target (else this tests nothing): {:.2e}", warm.offers_gap);
            assert!(cold.report.offers_gap <= target, "the cold re-plan reaches the target (its last escalation is the whole problem): {:.2e}", cold.report.offers_gap);
            assert!(w <= 2 && w < c, "warm {w} iterations, cold {c}");
            assert!(warmed.report.offers_gap <= warm.offers_gap, "warm certifies {:.2e}, the earlier plan {:.2e}", warmed.report.offers_gap, warm.offers_gap);
            assert_eq!(warmed.report.status, SolveStatus::MatchedEarlierPlan);
        } else {
            assert!(warmed.report.offers_gap <= target, "warm certifies {:.2e}", warmed.report.offers_gap);
            assert_eq!(warmed.report.status, SolveStatus::WithinGap);
        }
    }
}

/// A warm re-plan whose earlier plan, scaled to the changed limits, is far
/// from certifying at the earlier prices (a receipt of as many units as the
/// warehouse holds of the stock row the earlier plan prices highest) lets
/// that plan go: from the samples' prices it is the cold re-plan, the same
/// plan and bound. Kept, the earlier plan was a third response in every
/// repair's hull LPs, and at 1M customers the re-plan took 1.13-1.41 times
/// the cold one.
#[test]
fn a_warm_replan_far_from_its_earlier_plan_is_the_cold_one() {
    use allot_optimizer::decomposed::{KeyedExposures, WarmStart};
    use allot_optimizer::families::{no_extra, CustomLimitMode, Layout, Scope};
    let before = scenario(7, lp);
    let network = Network::new(&before);
    let cands = Candidates::build(&before, &network);
    let options = DecomposedOptions::default();
    let earlier = solve(&before, &network, &cands, &SolverChoice::Decomposed(options.clone())).expect("solves");
    let scope = Scope::new(&before, &network, &cands, CustomLimitMode::Off);
    let layout = Layout::new(&scope, no_extra(&scope));
    let warm = WarmStart::of(&before, &layout, &earlier).with_exposures(KeyedExposures::of(&before, &cands, &earlier.x));
    let (&(warehouse, sku, _), _) = earlier.prices.stock.iter().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0))).expect("a stock row");
    let mut after = before.clone();
    let point = after.stock.iter_mut().find(|s| s.warehouse == warehouse && s.sku == sku).expect("the priced stock point");
    point.on_hand *= 2.0;
    let network = Network::new(&after);
    let cands = Candidates::build(&after, &network);
    let cold = solve(&after, &network, &cands, &SolverChoice::Decomposed(options.clone())).expect("cold re-plan");
    let warmed = solve(&after, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions { warm: Some(std::sync::Arc::new(warm)), ..options })).expect("warm re-plan");
    assert_eq!(check_allocation(&after, &cands, &warmed, TOL), vec![], "warm plan feasible");
    let (w, c) = (&warmed.report, &cold.report);
    assert_eq!((w.objective, w.bound), (c.objective, c.bound), "warm {w:?}\ncold {c:?}");
}

/// A re-plan of an unchanged scenario (a scheduled re-plan with nothing new)
/// gives back the earlier plan itself, certified at the earlier prices
/// without an iteration of the ascent's repair: the exposures the decision
/// service serves do not move when nothing moved them. The LP, and the MIP
/// with the custom-offer limit (the earlier choice of open offers, every
/// other choice bounded).
#[test]
fn a_warm_replan_of_an_unchanged_scenario_keeps_the_earlier_plan() {
    use allot_optimizer::decomposed::{KeyedExposures, WarmStart};
    use allot_optimizer::families::{no_extra, CustomLimitMode, Layout, Scope};
    for mip in [false, true] {
        let problem = if mip { scenario(5, |p| p.policy.max_custom_offers = Some(1)) } else { scenario(7, lp) };
        let network = Network::new(&problem);
        let cands = Candidates::build(&problem, &network);
        let earlier = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("solves");
        assert_eq!(earlier.report.status, SolveStatus::WithinGap, "{:?}", earlier.report);
        let scope = Scope::new(&problem, &network, &cands, CustomLimitMode::Off);
        let layout = Layout::new(&scope, no_extra(&scope));
        let warm = WarmStart::of(&problem, &layout, &earlier).with_exposures(KeyedExposures::of(&problem, &cands, &earlier.x));
        let opts = DecomposedOptions { warm: Some(std::sync::Arc::new(warm)), ..DecomposedOptions::default() };
        let again = solve(&problem, &network, &cands, &SolverChoice::Decomposed(opts)).expect("warm re-plan");
        assert_eq!(check_allocation(&problem, &cands, &again, TOL), vec![], "feasible (mip {mip})");
        assert_eq!(again.offer_open, earlier.offer_open, "mip {mip}");
        let moved = earlier.x.iter().zip(&again.x).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(moved <= 1e-6, "an exposure moved by {moved:.2e} (mip {mip})");
        assert!((again.report.objective - earlier.report.objective).abs() <= 1e-6 * earlier.report.objective.abs(), "{} vs {}", again.report.objective, earlier.report.objective);
        assert!(again.report.offers_gap <= earlier.report.offers_gap.max(1e-3), "{:?}", again.report);
        assert_eq!(again.report.iterations, Some(1), "{:?}", again.report);
    }
}

/// A MIP with the custom-offer limit above the exact solver's MIP size, on
/// issue 17's generator (40 offers, 5 of them custom, 300 SKUs, 20 zones, 8
/// candidates a customer), both ways the large solvers take it:
/// - `auto`: the decomposition picks the open custom offers, HiGHS solves the
///   LP left; the plan is the exact optimum within 0.1% of the offers' value.
/// - the decomposition alone: the fixed problem started from its own samples'
///   prices (from the relaxation's, its plan stalled 1.6% short at 5,000
///   customers), and every other choice of open offers bounded, so its plan is
///   within 0.1% too and its certificate says so: the bound is the choices'
///   (a valid bound on the MIP), not the relaxation's, which sits more than
///   0.1% of the offers' value above the MIP's optimum here.
fn assert_mip_agrees(customers: usize, seed: u64) {
    let spec = GenerateSpec { customers, offers: 40, skus: 300, zones: 20, warehouses: 5, candidates: 8, seed, ..GenerateSpec::default() };
    let problem = generated(spec);
    assert!(problem.has_custom_limit());
    let limit = problem.policy.max_custom_offers.expect("a limit") as usize;
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    assert!(cands.len() > allot_optimizer::AUTO_EXACT_MAX_MIP_CANDIDATES, "{} pairs: auto would run exact", cands.len());
    let exact = solve(&problem, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("exact solves");
    let mut relaxed = problem.clone();
    relaxed.policy.max_custom_offers = None;
    let relaxation = solve(&relaxed, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("the relaxation solves");
    let auto = solve(&problem, &network, &cands, &SolverChoice::Auto(ExactOptions::default(), DecomposedOptions::default())).expect("auto solves");
    let decomposed = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("decomposed solves");
    let integrality_gap = (relaxation.report.objective - exact.report.objective) / (exact.report.objective - exact.report.objective_without_offers);
    assert!(integrality_gap > 1e-3, "the relaxation is within {integrality_gap:.2e} of the MIP: its bound would certify the plan alone");
    for alloc in [&auto, &decomposed] {
        let solver = &alloc.report.solver;
        assert_eq!(check_allocation(&problem, &cands, alloc, TOL), vec![], "{solver}: allocation feasible");
        let open_custom = problem.offers.iter().zip(&alloc.offer_open).filter(|(o, &open)| o.custom && open).count();
        assert!(open_custom <= limit, "{solver}: {open_custom} custom offers open");
        let diff = relative_difference(&exact, alloc);
        assert!(diff <= 1e-3, "{solver} {} vs exact {}: {diff:.2e} of the offers' value", alloc.report.objective, exact.report.objective);
        assert!(alloc.report.bound >= exact.report.objective - 1e-7 * exact.report.objective.abs(), "{solver}: bound {} below the optimum {}", alloc.report.bound, exact.report.objective);
    }
    assert_eq!(decomposed.report.status, SolveStatus::WithinGap, "{:?}", decomposed.report);
    assert!(decomposed.report.offers_gap <= 1e-3, "{:?}", decomposed.report);
    assert!(decomposed.report.bound < relaxation.report.objective, "the relaxation's bound {} is reported, not the choices' {}", relaxation.report.objective, decomposed.report.bound);
}

/// Issue 17's draw: 5,000 customers, `max_custom_offers = 1`.
#[test]
fn large_solvers_match_exact_on_a_mip_with_the_custom_limit_5k() {
    assert_mip_agrees(5_000, 3);
}

/// 20,000 customers, `max_custom_offers = 2` (10 choices of open offers).
#[test]
fn large_solvers_match_exact_on_a_mip_with_the_custom_limit_20k() {
    assert_mip_agrees(20_000, 1);
}

/// 5,000 customers, 9 custom offers and `max_custom_offers = 4`: 126
/// choices of open offers, every one bounded (with at most 64 counted, the
/// relaxation's bound stood and the decomposition stalled at 2.7e-3).
#[test]
fn large_solvers_match_exact_on_a_mip_with_126_choices_of_open_offers() {
    assert_mip_agrees(5_000, 23);
}

/// The branch solves a choice of open custom offers other than the one it
/// started from when that choice's bound leaves room above the plan, and
/// keeps its plan when better: a warm re-plan starts the branch from the
/// earlier version's choice, so an earlier version made to have opened
/// another custom offer than the cold plan's (the same prices) must come
/// back to the cold plan's offer, within the target, after solving it.
#[test]
fn the_branch_solves_a_better_choice_than_the_one_it_started_from() {
    use allot_optimizer::decomposed::WarmStart;
    use allot_optimizer::families::{no_extra, CustomLimitMode, Layout, Scope};
    let problem = scenario(5, |p| p.policy.max_custom_offers = Some(1));
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let cold = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("solves");
    assert_eq!(cold.report.status, SolveStatus::WithinGap, "{:?}", cold.report);
    let custom: Vec<usize> = (0..problem.offers.len()).filter(|&o| problem.offers[o].custom).collect();
    let chosen = *custom.iter().find(|&&o| cold.offer_open[o]).expect("the cold plan opens a custom offer");
    let scope = Scope::new(&problem, &network, &cands, CustomLimitMode::Off);
    let layout = Layout::new(&scope, no_extra(&scope));
    let mut switched = 0;
    for &other in custom.iter().filter(|&&o| o != chosen) {
        let mut warm = WarmStart::of(&problem, &layout, &cold);
        warm.closed_offers = custom.iter().filter(|&&o| o != other).map(|&o| problem.offers[o].id.clone()).collect();
        let opts = DecomposedOptions { warm: Some(std::sync::Arc::new(warm)), ..DecomposedOptions::default() };
        let replan = solve(&problem, &network, &cands, &SolverChoice::Decomposed(opts)).expect("warm re-plan");
        assert_eq!(check_allocation(&problem, &cands, &replan, TOL), vec![]);
        let offers_value = cold.report.objective - cold.report.objective_without_offers;
        assert!(replan.report.objective >= cold.report.objective - 1e-3 * offers_value, "from {}: {} vs cold {}", problem.offers[other].id, replan.report.objective, cold.report.objective);
        assert!(replan.report.offers_gap <= 1e-3, "from {}: {:?}", problem.offers[other].id, replan.report);
        switched += usize::from(replan.offer_open[chosen] && !replan.offer_open[other]);
    }
    assert!(switched > 0, "no re-plan came back to the cold plan's custom offer: the branch never solved another choice here");
}

/// A binding hard minimum above the size of the whole all-or-nothing model
/// (20,899 pairs, against 10,000): `app_volume` raised 2% above what the
/// optimum gives it without the rule, so it binds. Rounding the optimum
/// leaves it short (and no swap restores it); the served plan
/// is then the all-or-nothing model's with the customers nearest the
/// minimum decided again, and keeps every hard rule, the minimum included.
#[test]
fn a_binding_hard_minimum_is_kept_above_the_whole_models_size() {
    use allot_optimizer::families::{no_extra, CustomLimitMode, Layout, Scope};
    use allot_optimizer::served::{serve, Fill};
    let spec = GenerateSpec { customers: 5_000, offers: 20, skus: 60, zones: 6, warehouses: 3, candidates: 6, seed: 3, channels: true, contact_policies: true, volume_rules: true, ..GenerateSpec::default() };
    let mut problem = generated_lp(spec);
    let rule = problem.rules.iter().position(|r| r.id == "app_volume").expect("app_volume");
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    assert!(cands.len() > allot_optimizer::AUTO_EXACT_MAX_MIP_CANDIDATES, "{} pairs", cands.len());
    let free = solve(&problem, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("exact solves");
    let measured = |plan: &allot_optimizer::Plan| plan.kpis.rules[rule].clone();
    let unconstrained = measured(&derive_plan(&problem, &network, &cands, &free)).measured;
    problem.rules[rule].bound = (unconstrained * 1.02).round() + 0.5;
    let bound = problem.rules[rule].bound;
    {
        let alloc = solve(&problem, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("solves");
        assert!(alloc.prices.families["rule"][rule] > 1e-6, "{}: the minimum binds", alloc.report.solver);
        // Rounding alone leaves the minimum short (else this tests nothing).
        let scope = Scope::new(&problem, &network, &cands, CustomLimitMode::Off);
        let layout = Layout::new(&scope, no_extra(&scope));
        let rounded = serve(&problem, &cands, &alloc, &layout, &cands.customer_rows(&problem), Fill::Exposed);
        assert!(!rounded.over.is_empty(), "{}: rounding keeps the minimum by itself", alloc.report.solver);
        let plan = derive_plan(&problem, &network, &cands, &alloc);
        assert_eq!(check_served(&problem, &cands, &plan, TOL), vec![], "{}", alloc.report.solver);
        let kpi = measured(&plan);
        assert!(kpi.measured_served >= bound - TOL, "{}: served {} app acceptances, minimum {bound}", alloc.report.solver, kpi.measured_served);
    }
}

/// The all-or-nothing draw of the held-out figures (`allot generate
/// --binary-decisions --offers 20 --skus 60 --zones 4 --candidates 6`).
fn all_or_nothing(customers: usize, seed: u64) -> Problem {
    generated(GenerateSpec { customers, offers: 20, skus: 60, zones: 4, warehouses: 3, candidates: 6, seed, binary_decisions: true, ..GenerateSpec::default() })
}

/// `auto` on an all-or-nothing model above the exact solver's size: the
/// decomposition's relaxation rounded misses the target by far (held-out
/// draw: 2,000 customers, 20 offers, 6 candidates, seed 33, 10,422 pairs:
/// 4.3e-2 of the offers' value from the relaxation's bound), and so does
/// the MIP over the pairs the relaxation uses (4.6e-3: its optimum, the
/// whole MIP's is within 1e-4 of the bound); widened with the unused pairs
/// whose reduced value is nearest zero, the MIP decides, and certifies
/// the target against the relaxation's bound (which bounds the MIP too).
/// The whole MIP is not solved here: on such draws it took minutes.
#[test]
fn auto_certifies_the_target_on_an_all_or_nothing_model_above_exacts_size() {
    let problem = all_or_nothing(2_000, 33);
    assert!(problem.policy.binary_decisions);
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    assert!(cands.len() > allot_optimizer::AUTO_EXACT_MAX_MIP_CANDIDATES, "{} pairs: auto would run exact", cands.len());
    let rounded = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("decomposed solves");
    assert!(rounded.report.offers_gap > 1e-3, "the rounding alone certifies {:.2e}: this draw needs no MIP", rounded.report.offers_gap);
    let auto = solve(&problem, &network, &cands, &SolverChoice::Auto(ExactOptions::default(), DecomposedOptions::default())).expect("auto solves");
    let r = &auto.report;
    assert_eq!((r.solver.as_str(), r.status), ("decomposed+exact", SolveStatus::WithinGap), "{r:?}");
    assert!(r.offers_gap <= 1e-3 && r.objective > rounded.report.objective, "{r:?}");
    assert!((r.bound - rounded.report.bound).abs() <= 1e-9 * r.bound.abs(), "the relaxation's bound {} is kept, not the held MIP's {}", rounded.report.bound, r.bound);
    assert_eq!(check_allocation(&problem, &cands, &auto, TOL), vec![], "x keeps every hard limit");
    // At the MIP's own values, as the exact solver gives them.
    assert!(auto.x.iter().all(|&x| x.min(1.0 - x).abs() <= TOL), "x is 0/1");
}

/// `auto` on an all-or-nothing model of the exact solver's size, but above
/// `AUTO_BINARY_SUPPORT_FIRST_MIN_CANDIDATES`: the relaxation and its support
/// MIP answer when they certify the target, and the whole MIP (which on this
/// held-out draw, 1,000 customers and 3,658 pairs, and its neighbours runs for
/// minutes) is not solved.
#[test]
fn auto_tries_the_support_mip_before_the_whole_one() {
    let problem = all_or_nothing(1_000, 52);
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let n = cands.len();
    assert!((allot_optimizer::AUTO_BINARY_SUPPORT_FIRST_MIN_CANDIDATES..=allot_optimizer::AUTO_EXACT_MAX_MIP_CANDIDATES).contains(&n), "{n} pairs");
    let auto = solve(&problem, &network, &cands, &SolverChoice::Auto(ExactOptions::default(), DecomposedOptions::default())).expect("auto solves");
    let r = &auto.report;
    assert!(r.solver.starts_with("decomposed") && r.status == SolveStatus::WithinGap && r.offers_gap <= 1e-3, "{r:?}");
    assert_eq!(check_allocation(&problem, &cands, &auto, TOL), vec![], "x keeps every hard limit");
    assert!(auto.x.iter().all(|&x| x.min(1.0 - x).abs() <= TOL), "x is 0/1");
}

/// A support MIP starts from the plan it is to improve (`solve_pinned`'s
/// `start`: HiGHS completes those decisions into its first incumbent).
/// Held to its root node (`mip_max_nodes=0`, a limit HiGHS reports as
/// such: the plan it has, status `iteration_limit`), HiGHS answers with a
/// plan at least as good as the start's, where without the start it has
/// none; so does the whole MIP from a start (`exact::solve_from`). Why: on
/// large all-or-nothing models HiGHS's own heuristics can end the support
/// MIP's budget on plans worse than the rounding's.
#[test]
fn a_pinned_mip_starts_from_the_plan_it_is_given() {
    use allot_optimizer::exact::{solve_pinned, SolveError};
    let problem = all_or_nothing(1_000, 52);
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let rounded = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("decomposed solves");
    let root_only = ExactOptions { highs_options: vec![("mip_max_nodes".to_string(), "0".to_string())], ..ExactOptions::default() };
    let free = vec![None; cands.len()];
    let without = solve_pinned(&problem, &network, &cands, &root_only, &free, None);
    assert!(matches!(without, Err(SolveError::NoSolution)), "without a start HiGHS has a plan at its root (else this tests nothing): {:?}", without.map(|a| a.report));
    let started = solve_pinned(&problem, &network, &cands, &root_only, &free, Some(&rounded.x)).expect("a plan from the start");
    let r = &started.report;
    assert_eq!(r.status, SolveStatus::IterationLimit, "{r:?}");
    assert!(r.objective >= rounded.report.objective - 1e-9 * rounded.report.objective.abs(), "{} below the start's {}", r.objective, rounded.report.objective);
    assert_eq!(check_allocation(&problem, &cands, &started, TOL), vec![], "x keeps every hard limit");
    assert!(started.x.iter().all(|&x| x.min(1.0 - x).abs() <= TOL), "x is 0/1");
    // The whole MIP from a start (`auto`'s after a support MIP that missed the target).
    let whole = allot_optimizer::exact::solve_from(&problem, &network, &cands, &root_only, &rounded.x).expect("a plan from the start");
    assert!(whole.report.objective >= rounded.report.objective - 1e-9 * rounded.report.objective.abs(), "{} below the start's {}", whole.report.objective, rounded.report.objective);
    assert!(whole.report.objective_without_offers < whole.report.objective, "the whole model's report is against the optimum without offers");
}

/// With binary decisions the decomposition's answer is its served plan
/// (`x = eligible`), and it keeps every hard limit: where rounding the
/// relaxation leaves a hard minimum short, the all-or-nothing model decides
/// (`tests/fixtures/binary_minimum_rounding`: `neg_min`, 3.31 acceptances of
/// an offer worth less than nothing). Before, `x` was the rounding as it
/// stood: 3.23 acceptances, and an objective above the proven bound.
#[test]
fn a_binary_plan_keeps_a_hard_minimum_that_rounding_misses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/binary_minimum_rounding");
    let problem = load_scenario(&dir).expect("loads").problem;
    assert!(problem.policy.binary_decisions);
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let alloc = solve(&problem, &network, &cands, &SolverChoice::Decomposed(DecomposedOptions::default())).expect("solves");
    assert_eq!(check_allocation(&problem, &cands, &alloc, TOL), vec![], "x keeps every hard limit");
    assert!(alloc.x.iter().all(|&x| x == 0.0 || x == 1.0), "x is 0/1");
    assert!(alloc.report.objective <= alloc.report.bound + TOL, "objective {} above the bound {}", alloc.report.objective, alloc.report.bound);
    let plan = derive_plan(&problem, &network, &cands, &alloc);
    for (k, &x) in alloc.x.iter().enumerate() {
        assert_eq!(plan.eligibility[cands.uptake_row[k] as usize].eligible(), x == 1.0, "pair {k}: eligible = x");
    }
}

/// A pair the served plan leaves out is never blamed on what it would help
/// or on a cap with room left: on the same fixture as a relaxation (exact),
/// the all-or-nothing model leaves out pairs of O00005 that count towards
/// `neg_min` (they were blamed on it), and a pair blamed on the contact cap
/// belongs to a customer served up to the cap.
#[test]
fn reasons_of_pairs_left_out_name_a_limit_that_holds_them_back() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/binary_minimum_rounding");
    let mut problem = load_scenario(&dir).expect("loads").problem;
    problem.policy.binary_decisions = false;
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);
    let alloc = solve(&problem, &network, &cands, &SolverChoice::Exact(ExactOptions::default())).expect("solves");
    let plan = derive_plan(&problem, &network, &cands, &alloc);
    let neg_min = problem.rules.iter().position(|r| r.id == "neg_min").expect("neg_min");
    let mut left_out_selected = 0;
    for k in 0..cands.len() {
        let row = &plan.eligibility[cands.uptake_row[k] as usize];
        if row.eligible() {
            continue;
        }
        left_out_selected += usize::from(alloc.x[k] >= 0.5);
        let c = cands.customer[k];
        match row.reason {
            allot_optimizer::plan::Reason::NotSelected(allot_optimizer::plan::Binding::Rule(r)) => assert_ne!(r as usize, neg_min, "pair {k} blamed on the minimum it counts towards"),
            allot_optimizer::plan::Reason::NotSelected(allot_optimizer::plan::Binding::ContactCap) if alloc.x[k] >= 0.5 => {
                let served = cands.of_customer(c).filter(|&j| plan.eligibility[cands.uptake_row[j] as usize].eligible()).count();
                assert!(problem.contact_cap_of(c).is_some_and(|cap| served >= cap as usize), "pair {k} blamed on the cap of a customer served {served}");
            }
            _ => {}
        }
    }
    assert!(left_out_selected > 0, "the served plan leaves out pairs the relaxation selected (else this tests nothing)");
}
