//! A customer's subproblem when contact policies apply to it: the small LP
//!
//! ```text
//! maximise  sum r_i x_i
//! s.t.      0 <= x_i <= 1,   sum x_i <= cap,   sum_{i in row} x_i <= rhs(row)
//! ```
//!
//! over its candidates' reduced values `r`, with one row per `max_per_customer`
//! rule and per conflicting pair (`contact_policy::CustomerRows`). Keeping these
//! rows inside the customer's subproblem, instead of pricing them (one
//! multiplier per customer and row, millions of them), keeps the dual function
//! exact: its value and its duals are those of the customer's own LP, as in the
//! decomposition of large knapsack problems with local constraints per user
//! (Zhang et al., "Solving Billion-Scale Knapsack Problems", WWW 2020), where
//! each user's local problem is solved exactly at the current prices.
//!
//! Why a dense simplex of its own and not HiGHS: it runs for every customer with
//! policy rows at every dual iteration, millions of times; each LP has a handful
//! of columns and every right-hand side is `>= 0`, so the slack basis is
//! feasible, no phase 1 is needed, and a dense tableau with Bland's rule (which
//! cannot cycle) solves it exactly in microseconds. Its answers are tested
//! against HiGHS.

use std::ops::Range;

use crate::contact_policy::CustomerRows;

/// Pivot and reduced-cost tolerance of the tableau.
const EPS: f64 = 1e-12;

/// Reusable buffers of the tableau.
#[derive(Debug, Default)]
pub struct CustomerLp {
    /// Candidates with a positive reduced value (the others stay at 0).
    vars: Vec<usize>,
    /// Which input row (cap = `usize::MAX`, policy row index) each tableau row is; bounds are `None`.
    origin: Vec<Option<usize>>,
    tableau: Vec<f64>,
    basis: Vec<usize>,
    /// Value of each candidate at the optimum of the last solve.
    pub x: Vec<f64>,
}

/// The optimum of a customer's subproblem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimum {
    /// The objective `sum r x`.
    pub value: f64,
    /// The dual of the contact cap (0 when it does not bind or is absent).
    pub cap_price: f64,
}

impl CustomerLp {
    /// Solves the subproblem of the customer whose candidates have reduced
    /// values `reduced`, contact cap `cap` (`u32::MAX`: none) and policy rows
    /// `rows` of `policy`; writes the dual of each of those rows into `duals`
    /// (in row order) and the optimal exposures into [`CustomerLp::x`].
    pub fn solve(&mut self, reduced: &[f64], cap: u32, policy: &CustomerRows, rows: Range<usize>, duals: &mut Vec<f64>) -> Optimum {
        duals.clear();
        duals.resize(rows.len(), 0.0);
        self.x.clear();
        self.x.resize(reduced.len(), 0.0);
        self.vars.clear();
        self.vars.extend((0..reduced.len()).filter(|&i| reduced[i] > EPS));
        let n = self.vars.len();
        if n == 0 {
            return Optimum { value: 0.0, cap_price: 0.0 };
        }
        // Column of each candidate (None: fixed at 0).
        let column = |i: usize, vars: &[usize]| vars.binary_search(&i).ok();
        self.origin.clear();
        if (cap as usize) < n {
            self.origin.push(Some(usize::MAX));
        }
        for r in rows.clone() {
            if policy.members(r).iter().any(|&i| column(i as usize, &self.vars).is_some()) {
                self.origin.push(Some(r));
            }
        }
        let constrained = self.origin.len();
        self.origin.extend(std::iter::repeat_n(None, n));
        let m = self.origin.len();
        let width = n + m + 1;
        self.tableau.clear();
        self.tableau.resize((m + 1) * width, 0.0);
        let t = &mut self.tableau;
        for (row, origin) in self.origin.iter().enumerate() {
            let line = &mut t[row * width..(row + 1) * width];
            match *origin {
                Some(usize::MAX) => {
                    line[..n].fill(1.0);
                    line[width - 1] = f64::from(cap);
                }
                Some(r) => {
                    for &i in policy.members(r) {
                        if let Some(j) = column(i as usize, &self.vars) {
                            line[j] = 1.0;
                        }
                    }
                    line[width - 1] = policy.rhs[r];
                }
                None => {
                    line[row - constrained] = 1.0;
                    line[width - 1] = 1.0;
                }
            }
            line[n + row] = 1.0;
        }
        for (j, &i) in self.vars.iter().enumerate() {
            t[m * width + j] = -reduced[i];
        }
        self.basis.clear();
        self.basis.extend(n..n + m);
        // Bland's rule: the first improving column, the first row among ties.
        for _ in 0..100 * width {
            let Some(enter) = (0..n + m).find(|&j| t[m * width + j] < -EPS) else { break };
            let mut leave: Option<(usize, f64)> = None;
            for row in 0..m {
                let a = t[row * width + enter];
                if a > EPS {
                    let ratio = t[row * width + width - 1] / a;
                    let better = match leave {
                        None => true,
                        Some((l, best)) => ratio < best - EPS || (ratio <= best + EPS && self.basis[row] < self.basis[l]),
                    };
                    if better {
                        leave = Some((row, ratio));
                    }
                }
            }
            // Every column is bounded by its bound row, so a leaving row always exists.
            let Some((leave, _)) = leave else { break };
            pivot(t, width, m + 1, leave, enter);
            self.basis[leave] = enter;
        }
        for (row, &b) in self.basis.iter().enumerate() {
            if b < n {
                self.x[self.vars[b]] = t[row * width + width - 1].clamp(0.0, 1.0);
            }
        }
        let mut cap_price = 0.0;
        for (row, origin) in self.origin[..constrained].iter().enumerate() {
            let dual = t[m * width + n + row].max(0.0);
            match *origin {
                Some(usize::MAX) => cap_price = dual,
                Some(r) => duals[r - rows.start] = dual,
                None => {}
            }
        }
        Optimum { value: t[m * width + width - 1], cap_price }
    }
}

/// Pivots the tableau (`rows` rows of `width`) on (`row`, `col`).
fn pivot(t: &mut [f64], width: usize, rows: usize, row: usize, col: usize) {
    let p = t[row * width + col];
    for v in &mut t[row * width..(row + 1) * width] {
        *v /= p;
    }
    for other in (0..rows).filter(|&r| r != row) {
        let f = t[other * width + col];
        if f != 0.0 {
            for j in 0..width {
                t[other * width + j] -= f * t[row * width + j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conflict, ContactRule, Horizon, Offer, Policy, Problem, Selector, Tier, Uptake, Zone, DEFAULT_CHANNEL};
    use good_lp::solvers::highs::highs;
    use good_lp::{variable, Expression, ProblemVariables, Solution, SolverModel};

    /// HiGHS's optimum of the same LP.
    fn highs_value(r: &[f64], cap: u32, rows: &[(Vec<u32>, f64)]) -> f64 {
        let mut vars = ProblemVariables::new();
        let x: Vec<_> = r.iter().map(|_| vars.add(variable().min(0.0).max(1.0))).collect();
        let objective: Expression = r.iter().zip(&x).map(|(&ri, &xi)| ri * xi).sum();
        let mut model = vars.maximise(objective.clone()).using(highs);
        model.set_verbose(false);
        let all: Expression = x.iter().copied().sum();
        model.add_constraint(all.leq(f64::from(cap)));
        for (members, rhs) in rows {
            let e: Expression = members.iter().map(|&i| x[i as usize]).sum();
            model.add_constraint(e.leq(*rhs));
        }
        let solution = model.solve().expect("feasible");
        solution.eval(&objective)
    }

    /// Uniform draws in `[0, 1)` from `seed` (a linear congruential generator):
    /// the random tests' cases, the same on every run.
    fn uniform(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random customer: 2 to 10 candidates (offers `0..m`), `min_rules` to
    /// `min_rules + 2` rules over random subsets with bounds 0 to 2, and up to
    /// three conflicts; its `m` and policy rows.
    fn random_customer(next: &mut impl FnMut() -> f64, min_rules: usize) -> (usize, CustomerRows) {
        let m = 2 + (next() * 9.0) as usize;
        let rules: Vec<(Vec<u32>, f64)> = (0..min_rules + (next() * 3.0) as usize)
            .map(|_| ((0..m as u32).filter(|_| next() < 0.5).collect(), (next() * 3.0).floor()))
            .collect();
        let conflicts: Vec<(u32, u32)> = (0..(next() * 4.0) as usize)
            .map(|_| ((next() * m as f64) as u32, (next() * m as f64) as u32))
            .filter(|(a, b)| a < b)
            .collect();
        let problem = problem(m, &rules, &conflicts);
        let offers: Vec<u32> = (0..m as u32).collect();
        (m, CustomerRows::build(&problem, &[0, m as u32], &offers))
    }

    /// A problem of one customer with `m` offers, each on its own day, and the
    /// given rules (on offer lists) and conflicts (offer a then b, within 1000 days).
    fn problem(m: usize, rules: &[(Vec<u32>, f64)], conflicts: &[(u32, u32)]) -> Problem {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let offer = |i: usize| Offer {
            id: format!("o{i}"),
            margin: 1.0,
            discount_cost: 0.0,
            max_redemptions: None,
            min_tier: None,
            custom: false,
            start_date: None,
            end_date: None,
            fair: false,
            items: Vec::new(),
            channel: 0,
            tags: Vec::new(),
            contact_date: Some(start + chrono::Duration::days(i as i64)),
            cost_per_contact: 0.0,
        };
        Problem {
            horizon: Horizon { start, days: 60 },
            policy: Policy::default(),
            tiers: vec![Tier { name: "t".into(), weight: 1.0 }],
            zones: vec![Zone { id: "z".into(), delivery_capacity: None }],
            skus: Vec::new(),
            warehouses: Vec::new(),
            groups: Vec::new(),
            customers: crate::model::Customers {
                id: vec!["c".into()],
                zone: vec![0],
                tier: vec![0],
                consent: vec![true],
                suppressed: vec![false],
                group: vec![None],
                max_offers: vec![None],
            },
            offers: (0..m).map(offer).collect(),
            uptake: (0..m as u32).map(|o| Uptake { customer: 0, offer: o, p: 0.5 }).collect(),
            uptake_value: None,
            channels: vec![DEFAULT_CHANNEL.into()],
            tags: Vec::new(),
            rules: Vec::new(),
            contact_rules: rules
                .iter()
                .enumerate()
                .map(|(i, (offers, bound))| ContactRule { id: format!("r{i}"), bound: *bound, selector: Selector { offers: offers.clone(), ..Selector::default() } })
                .collect(),
            conflicts: conflicts
                .iter()
                .enumerate()
                .map(|(i, &(a, b))| Conflict {
                    id: format!("f{i}"),
                    within_days: 1000,
                    a: Selector { offers: vec![a], ..Selector::default() },
                    b: Selector { offers: vec![b], ..Selector::default() },
                })
                .collect(),
            history: Vec::new(),
            stock: Vec::new(),
            lanes: Vec::new(),
            baseline: Vec::new(),
        }
    }

    /// The ridge response kept within the rows
    /// ([`crate::decomposed::kernel::respond_within_policy`]): cap 2, a rule
    /// of at most one of offers 0 and 1, offer 2 outside it. The ridge takes
    /// 0 and 1 (the best two); the rule cuts 1, and the slot that frees goes
    /// to 2, as in the customer's exact LP (without the refill it stayed empty).
    #[test]
    fn a_slot_a_rule_frees_is_refilled_outside_the_rule() {
        use crate::decomposed::kernel::{respond_within_policy, smoothed_response, KernelInput};
        let problem = problem(3, &[(vec![0, 1], 1.0)], &[]);
        let starts = [0u32, 3];
        let offers: Vec<u32> = vec![0, 1, 2];
        let policy = CustomerRows::build(&problem, &starts, &offers);
        let input = KernelInput {
            customer_start: &starts,
            offer: &offers,
            p: &[0.5; 3],
            zone: &[0],
            slot: &[0],
            weight: &[1.0],
            cap: &[2],
            margin: &[1.0; 3],
            contact_cost: &[0.0; 3],
            accept_value: None,
            zones: 1,
            slots: 1,
            policy: Some(&policy),
        };
        // x = clip(r - theta, 0, 1): the cap puts theta at 5.
        let (reduced, inv_gamma) = ([10.0, 9.0, 5.0], [1.0; 3]);
        let mut x = Vec::new();
        smoothed_response(&reduced, &inv_gamma, 2, &mut Vec::new(), &mut x);
        assert_eq!(x, [1.0, 1.0, 0.0]);
        respond_within_policy(&input, 0, &reduced, &inv_gamma, &mut Vec::new(), &mut x);
        assert_eq!(x, [1.0, 0.0, 1.0]);
    }

    /// On random customers (rules, conflicts, caps, ridge weights), the
    /// response within the rows keeps its bounds, the cap and every row
    /// (and some cases do refill a slot the cut freed).
    #[test]
    fn the_response_within_the_rows_keeps_every_rule() {
        use crate::decomposed::kernel::{keep_policy, respond_within_policy, smoothed_response, KernelInput};
        let mut next = uniform(7);
        let mut refilled = 0;
        for case in 0..500 {
            let (m, policy) = random_customer(&mut next, 1);
            let starts = [0u32, m as u32];
            let offers: Vec<u32> = (0..m as u32).collect();
            let cap = [1 + (next() * m as f64) as u32];
            let (p, margin, cost) = (vec![0.5; m], vec![1.0; m], vec![0.0; m]);
            let input = KernelInput {
                customer_start: &starts,
                offer: &offers,
                p: &p,
                zone: &[0],
                slot: &[0],
                weight: &[1.0],
                cap: &cap,
                margin: &margin,
                contact_cost: &cost,
                accept_value: None,
                zones: 1,
                slots: 1,
                policy: Some(&policy),
            };
            let reduced: Vec<f64> = (0..m).map(|_| 2.0 * next() - 0.5).collect();
            let inv_gamma: Vec<f64> = (0..m).map(|_| 0.5 + 100.0 * next()).collect();
            let mut x = Vec::new();
            smoothed_response(&reduced, &inv_gamma, cap[0], &mut Vec::new(), &mut x);
            let mut cut = x.clone();
            keep_policy(&input, 0, &reduced, &mut Vec::new(), &mut cut);
            respond_within_policy(&input, 0, &reduced, &inv_gamma, &mut Vec::new(), &mut x);
            assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)), "case {case}: {x:?}");
            assert!(x.iter().sum::<f64>() <= f64::from(cap[0]) + 1e-9, "case {case}: {x:?} over the cap {}", cap[0]);
            for r in policy.of_customer(0) {
                let sum: f64 = policy.members(r).iter().map(|&i| x[i as usize]).sum();
                assert!(sum <= policy.rhs[r] + 1e-9, "case {case}: row {r} holds {sum} > {}", policy.rhs[r]);
            }
            let (total, cut_total) = (x.iter().sum::<f64>(), cut.iter().sum::<f64>());
            refilled += usize::from(total > cut_total + 1e-6);
        }
        assert!(refilled > 0, "no case refilled a slot");
    }

    #[test]
    fn matches_highs_on_random_subproblems() {
        let mut next = uniform(99);
        let mut lp = CustomerLp::default();
        let mut duals = Vec::new();
        for case in 0..300 {
            let (m, policy) = random_customer(&mut next, 0);
            let reduced: Vec<f64> = (0..m).map(|_| 2.0 * next() - 0.5).collect();
            let cap = 1 + (next() * m as f64) as u32;
            let got = lp.solve(&reduced, cap, &policy, policy.of_customer(0), &mut duals);
            let rows: Vec<(Vec<u32>, f64)> = policy.of_customer(0).map(|r| (policy.members(r).to_vec(), policy.rhs[r])).collect();
            let want = highs_value(&reduced, cap, &rows);
            assert!((got.value - want).abs() < 1e-7, "case {case}: {} vs HiGHS {want}", got.value);
            // The exposures reach the value and keep every row.
            let at: f64 = reduced.iter().zip(&lp.x).map(|(r, x)| r * x).sum();
            assert!((at - want).abs() < 1e-7, "case {case}: x {:?} is worth {at}", lp.x);
            assert!(lp.x.iter().sum::<f64>() <= f64::from(cap) + 1e-9);
            for (members, rhs) in &rows {
                assert!(members.iter().map(|&i| lp.x[i as usize]).sum::<f64>() <= rhs + 1e-9);
            }
            // Strong duality: the value equals the duals' bound.
            let bound = got.cap_price * f64::from(cap)
                + duals.iter().zip(&rows).map(|(d, (_, rhs))| d * rhs).sum::<f64>()
                + (0..m)
                    .map(|i| {
                        let charged: f64 = duals.iter().zip(&rows).filter(|(_, (mem, _))| mem.contains(&(i as u32))).map(|(d, _)| d).sum();
                        (reduced[i] - got.cap_price - charged).max(0.0)
                    })
                    .sum::<f64>();
            assert!((bound - want).abs() < 1e-7, "case {case}: dual bound {bound} vs {want}");
        }
    }
}
