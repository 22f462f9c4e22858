//! Adding a coupling family is one module: this test defines a toy family (a
//! regional cap on expected acceptances over a set of zones) outside the crate
//! and proves that both solvers, the checker, the reasons and the KPIs honour it
//! without any other change.

use allot_optimizer::allocation::ShadowPrices;
use allot_optimizer::decomposed::{self, DecomposedOptions};
use allot_optimizer::exact::{self, ExactOptions};
use allot_optimizer::families::{Checker, Family, Scope};
use allot_optimizer::feasibility::check_allocation_with;
use allot_optimizer::model::*;
use allot_optimizer::plan::{derive_plan_with, Binding, Reason};
use allot_optimizer::{Allocation, Candidates, Network};
use chrono::NaiveDate;

const NAME: &str = "regional_cap";

/// At most `cap` expected acceptances from customers in the listed zones.
struct RegionalCap {
    in_region: Vec<bool>,
    cap: f64,
}

impl Family for RegionalCap {
    fn name(&self) -> &'static str {
        NAME
    }
    fn rows(&self) -> usize {
        1
    }
    fn rhs(&self, _row: usize) -> f64 {
        self.cap
    }
    fn row_key(&self, _problem: &Problem, _row: usize) -> String {
        "north".to_string()
    }
    fn per_accept(&self, _offer: usize, zone: usize, push: &mut dyn FnMut(usize, f64)) {
        if self.in_region[zone] {
            push(0, 1.0);
        }
    }
    fn check(&self, problem: &Problem, cands: &Candidates, alloc: &Allocation, ck: &mut Checker) {
        let accepted: f64 = (0..cands.len())
            .filter(|&k| self.in_region[problem.customers.zone[cands.customer[k] as usize] as usize])
            .map(|k| cands.p[k] * alloc.x[k])
            .sum();
        ck.le(NAME, accepted, self.cap, || "north".to_string());
    }
    fn write_prices(&self, _problem: &Problem, prices: &[f64], out: &mut ShadowPrices) {
        out.families.insert(NAME.to_string(), prices.to_vec());
    }
    fn read_prices(&self, _problem: &Problem, from: &ShadowPrices, out: &mut [f64]) {
        if let Some(p) = from.families.get(NAME) {
            out.copy_from_slice(p);
        }
    }
}

fn toy(scope: &Scope) -> Vec<Box<dyn Family>> {
    let in_region = (0..scope.zones).map(|z| z == 0).collect();
    vec![Box::new(RegionalCap { in_region, cap: 12.0 })]
}

/// 200 customers in two zones, two offers, ample stock: only the toy family binds.
fn problem() -> Problem {
    let n = 200;
    let customers = Customers {
        id: (0..n).map(|c| format!("c{c}")).collect(),
        zone: (0..n).map(|c| (c % 2) as u32).collect(),
        tier: vec![0; n],
        consent: vec![true; n],
        suppressed: vec![false; n],
        group: vec![None; n],
        max_offers: vec![Some(1); n],
    };
    let offer = |id: &str, margin: f64| Offer {
        id: id.to_string(),
        margin,
        discount_cost: 0.0,
        max_redemptions: None,
        min_tier: None,
        custom: false,
        start_date: None,
        end_date: None,
        fair: false,
        items: vec![OfferItem { sku: 0, qty: 1.0 }],
        channel: 0, tags: Vec::new(), contact_date: None, cost_per_contact: 0.0,
    };
    let mut uptake = Vec::new();
    for c in 0..n as u32 {
        uptake.push(Uptake { customer: c, offer: 0, p: 0.3 + 0.002 * f64::from(c) });
        uptake.push(Uptake { customer: c, offer: 1, p: 0.5 });
    }
    Problem {
        horizon: Horizon { start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), days: 7 },
        policy: Policy::default(),
        tiers: vec![Tier { name: "std".into(), weight: 1.0 }],
        zones: vec![Zone { id: "north".into(), delivery_capacity: None }, Zone { id: "south".into(), delivery_capacity: None }],
        skus: vec!["S".into()],
        warehouses: vec!["W".into()],
        groups: Vec::new(),
        customers,
        offers: vec![offer("big", 20.0), offer("small", 8.0)],
        uptake,
        uptake_value: None,
        channels: vec![allot_optimizer::DEFAULT_CHANNEL.into()],
        tags: Vec::new(),
        rules: Vec::new(),
        contact_rules: Vec::new(),
        conflicts: Vec::new(),
        history: Vec::new(),
        stock: vec![StockPoint { warehouse: 0, sku: 0, on_hand: 1e6, safety_stock: 0.0, inbound: Vec::new() }],
        lanes: vec![
            Lane { warehouse: 0, zone: 0, cost_per_unit: 1.0, transit_days: 1, capacity: None },
            Lane { warehouse: 0, zone: 1, cost_per_unit: 1.0, transit_days: 1, capacity: None },
        ],
        baseline: Vec::new(),
    }
}

fn north_accepts(problem: &Problem, cands: &Candidates, x: &[f64]) -> f64 {
    (0..cands.len()).filter(|&k| problem.customers.zone[cands.customer[k] as usize] == 0).map(|k| cands.p[k] * x[k]).sum()
}

#[test]
fn a_toy_family_is_honoured_by_both_solvers_the_checker_reasons_and_kpis() {
    let problem = problem();
    let network = Network::new(&problem);
    let cands = Candidates::build(&problem, &network);

    // Without the family the north zone takes far more than the cap, and the
    // checker (given the family) says so.
    let free = exact::solve(&problem, &network, &cands, &ExactOptions::default()).unwrap();
    assert!(north_accepts(&problem, &cands, &free.x) > 30.0);
    let broken = check_allocation_with(&problem, &cands, &free, 1e-6, &toy);
    assert!(broken.iter().any(|v| v.rule == NAME), "{broken:?}");

    // Exact with the family: the cap holds, it costs value, and it has a price.
    let capped = exact::solve_with_families(&problem, &network, &cands, &ExactOptions::default(), &toy).unwrap();
    assert!(check_allocation_with(&problem, &cands, &capped, 1e-6, &toy).is_empty());
    assert!((north_accepts(&problem, &cands, &capped.x) - 12.0).abs() < 1e-6);
    assert!(capped.report.objective < free.report.objective - 1.0);
    // Hand-worked price: every north customer would take `big` (margin 20, one
    // unit shipped at 1), far more than 12 acceptances; at a price of 19 per
    // acceptance `big` is worth nothing more and `small` (8 - 1) less than nothing.
    let price = capped.prices.families[NAME][0];
    assert!((price - 19.0).abs() < 1e-6, "price {price}");

    // The decomposition agrees within its certificate, and its plan passes the same checker.
    let opts = DecomposedOptions { gap: 1e-4, ..DecomposedOptions::default() };
    let dec = decomposed::solve_with_families(&problem, &network, &cands, &opts, &toy).unwrap();
    assert!(check_allocation_with(&problem, &cands, &dec, 1e-6, &toy).is_empty());
    let optimum = capped.report.objective;
    assert!(dec.report.objective <= optimum + 1e-6 * optimum.abs());
    assert!(dec.report.bound >= optimum - 1e-6 * optimum.abs());
    assert!((optimum - dec.report.objective) / optimum.abs() <= 1e-3, "{} vs {optimum}", dec.report.objective);

    // Reasons and KPIs name the family.
    let plan = derive_plan_with(&problem, &network, &cands, &capped, &toy);
    assert!(plan.eligibility.iter().any(|r| r.reason == Reason::NotSelected(Binding::family(NAME))));
    assert_eq!(plan.kpis.binding_constraints.get(NAME), Some(&1));
}
