//! The exact planner: the spec's model built with good_lp and solved by HiGHS.
//!
//! HiGHS runs through `lp_backend`. The model is a pure LP unless
//! `max_custom_offers` can bind (fewer than the custom offers), in which case
//! it is a MIP with one binary per custom offer; the MIP is then re-solved as an LP with those binaries fixed so that
//! duals (bid prices, eligibility reasons) exist for every plan.
//!
//! Variables and rows are created in a deterministic order: candidates in
//! (customer, offer) order, then shipments by (zone, SKU, lane), then unmet
//! baseline, then fairness rates, then custom-offer binaries.

use std::time::Instant;

use good_lp::solvers::highs::{highs, HighsProblem};

use crate::contact_policy::PolicyRow;
use crate::families::rules;
use crate::infeasibility::{group_bounds, Contradiction, Culprit};
use crate::lp_backend::{self, IisBound, RawIis, Settings, Solved};
use good_lp::{variable, Expression, ProblemVariables, SolverModel, Variable};

use crate::allocation::{Allocation, ShadowPrices, SolveReport};
use crate::candidates::{Candidates, Network};
use crate::families::{no_extra, Arc, CustomLimitMode, ExactColumn, ExtraFamilies, Layout, Scope, Sense};
use crate::model::{Problem, Rule, RuleKind};

/// Knobs of the exact solver.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactOptions {
    /// Solver threads; `None` lets HiGHS choose.
    pub threads: Option<u32>,
    /// Wall-clock limit in seconds for the whole solve.
    pub time_limit: Option<f64>,
    /// Relative MIP gap at which branch-and-bound stops.
    pub mip_rel_gap: f64,
    /// Print HiGHS's log to stdout.
    pub verbose: bool,
    /// Further HiGHS options by name (value parsed as bool, integer, float, else text),
    /// applied last so they override the above.
    pub highs_options: Vec<(String, String)>,
    /// Name the contradiction of an infeasible model (HiGHS's irreducible
    /// infeasible subset). Off where infeasibility is an expected answer
    /// (the served plan's search, [`solve_pinned`]): on a large model the
    /// subset can take far longer than the solve.
    pub explain_infeasible: bool,
    /// Once set, an LP's simplex stops and the solve fails with
    /// [`SolveError::Interrupted`] (see [`lp_backend::Settings::interrupt`]).
    /// Why: a sample solved ahead of need is given up.
    pub cancel: Option<lp_backend::Interrupt>,
}

impl Default for ExactOptions {
    fn default() -> Self {
        ExactOptions { threads: None, time_limit: None, mip_rel_gap: 1e-6, verbose: false, highs_options: Vec::new(), explain_infeasible: true, cancel: None }
    }
}

pub use crate::lp_backend::SolveError;

/// What one row of the model constrains; index = HiGHS row index.
#[derive(Debug, Clone, Copy)]
enum Row {
    ContactCap(u32),
    /// A contact-policy row (index in `CustomerRows`).
    Policy(usize),
    /// A coupling family's row (global row of the [`Layout`]).
    Family(usize),
    /// A row a family adds for its own columns (no price of its own); the
    /// family's index in layout order.
    Auxiliary(usize),
}

/// A model ready for HiGHS, with the maps back to the spec's variables.
struct BuiltModel {
    problem: HighsProblem,
    maps: ModelMaps,
}

/// What the LP re-solve after a MIP fixes, so that duals exist: the open
/// custom offers and, with binary decisions, every `x` at its 0/1 value.
#[derive(Clone, Copy)]
struct Fixed<'a> {
    open: &'a [bool],
    x: Option<&'a [f64]>,
}

/// What a solve takes as given instead of deciding it.
#[derive(Clone, Copy, Default)]
struct Given<'a> {
    /// The open offers (the custom offers chosen: an LP).
    open: Option<&'a [bool]>,
    /// With binary decisions, pairs held at 0 or 1 (`Some`); the MIP decides the rest.
    pinned: Option<&'a [Option<bool>]>,
    /// With binary decisions, a plan's decisions (`x` per pair) to start the MIP from.
    start: Option<&'a [f64]>,
}

fn build(problem: &Problem, network: &Network, cands: &Candidates, fixed: Option<Fixed>, pinned: Option<&[Option<bool>]>, extra: &ExtraFamilies) -> BuiltModel {
    let mode = if fixed.is_some() { CustomLimitMode::Off } else { CustomLimitMode::Binaries };
    let scope = Scope::new(problem, network, cands, mode);
    let layout = Layout::new(&scope, extra(&scope));
    let mut vars = ProblemVariables::new();
    let mut objective = Expression::with_capacity(cands.len() + 1024);

    // x[c,o]: in [0, 1], or {0, 1} with binary decisions (fixed after the MIP).
    let binary_x = problem.policy.binary_decisions;
    let x: Vec<Variable> = (0..cands.len())
        .map(|k| {
            let v = match fixed {
                // At the MIP's own values (not rounded, which could push a tight row over).
                Some(Fixed { x: Some(xs), .. }) => vars.add(variable().min(xs[k]).max(xs[k])),
                Some(Fixed { open, .. }) => vars.add(variable().min(0.0).max(if open[cands.offer[k] as usize] { 1.0 } else { 0.0 })),
                None if binary_x => match pinned.and_then(|p| p[k]) {
                    Some(served) => {
                        let at = if served { 1.0 } else { 0.0 };
                        vars.add(variable().min(at).max(at))
                    }
                    None => vars.add(variable().binary()),
                },
                None => vars.add(variable().min(0.0).max(1.0)),
            };
            objective.add_mul(cands.value(problem, k), v);
            v
        })
        .collect();
    // f[lane, sku]: one per arc of the network.
    let flows: Vec<Variable> = layout
        .arcs
        .iter()
        .map(|a| {
            let v = vars.add(variable().min(0.0));
            objective.add_mul(-a.cost, v);
            v
        })
        .collect();
    // u in [0, b]: one per baseline row.
    let mut unmet = Vec::new();
    for (i, b) in problem.baseline.iter().enumerate() {
        if b.units > 0.0 {
            let u = vars.add(variable().min(0.0).max(b.units));
            objective.add_mul(-problem.policy.unmet_baseline_penalty, u);
            unmet.push((i, layout.balance.baseline_row(b).expect("a baseline row with units has a balance row"), u));
        }
    }
    // The families' own columns (the custom-offer binaries of the MIP).
    let mut family_columns = Vec::new();
    let mut own: Vec<Vec<Variable>> = Vec::new();
    for (i, (_, family)) in layout.families().enumerate() {
        let columns = family.exact_columns(problem, cands);
        let first = vars.len();
        own.push(columns.iter().map(|c| match c {
            ExactColumn::Binary => vars.add(variable().binary()),
            &ExactColumn::Continuous { lower, upper } => vars.add(variable().min(lower).max(upper)),
        }).collect());
        // Only integer columns make a MIP (and its LP re-solve for duals); the
        // continuous ones (fairness rates) are part of the LP itself.
        if columns.iter().any(|c| matches!(c, ExactColumn::Binary)) {
            family_columns.push((i, first, columns.len()));
        }
    }

    // Every family's rows from its coefficients by cell, then the network's columns.
    let mut rows_expr: Vec<Expression> = (0..layout.total()).map(|_| Expression::default()).collect();
    let mut used = vec![false; layout.total()];
    // Families that build their own exact rows get no generic expressions.
    let mut generic = vec![true; layout.total()];
    for (at, family) in layout.families().filter(|(_, f)| !f.exact_generic_rows()) {
        generic[at..at + family.rows()].fill(false);
    }
    let groups = problem.groups.len();
    for (k, &xk) in x.iter().enumerate() {
        let c = cands.customer[k] as usize;
        let o = cands.offer[k] as usize;
        let zone = problem.customers.zone[c] as usize;
        let slot = problem.customers.group[c].map_or(groups, |g| g as usize);
        for (r, a) in layout.pair_coefs(o, zone, slot, cands.p[k], cands.accept_value_of(problem, k)).filter(|&(r, _)| generic[r]) {
            rows_expr[r].add_mul(a, xk);
            used[r] = true;
        }
    }
    for (a, &f) in layout.arcs.iter().zip(&flows) {
        rows_expr[a.balance].add_mul(-1.0, f);
        used[a.balance] = true;
        for r in a.stock_rows() {
            rows_expr[r].add_mul(1.0, f);
            used[r] = true;
        }
        if let Some(l) = a.lane_row {
            rows_expr[l].add_mul(1.0, f);
            used[l] = true;
        }
    }
    for &(_, row, u) in &unmet {
        rows_expr[row].add_mul(-1.0, u);
        used[row] = true;
    }
    // A soft row's slack, paid at its penalty (created last: the solution maps
    // read the columns before them by position).
    for (row, penalty) in layout.soft_rows() {
        let s = vars.add(variable().min(0.0));
        objective.add_mul(-penalty, s);
        rows_expr[row].add_mul(-1.0, s);
        used[row] = true;
    }

    let variables = vars.len();
    let mut model = vars.maximise(objective).using(highs);
    let mut rows = Vec::new();
    let mut add = |model: &mut HighsProblem, row: Row, c: good_lp::Constraint| {
        model.add_constraint(c);
        rows.push(row);
    };

    // Contact cap (only where it can bind).
    for c in 0..problem.customers.len() as u32 {
        let range = cands.of_customer(c);
        if let Some(cap) = problem.contact_cap_of(c) {
            if (cap as usize) < range.len() {
                let e: Expression = range.map(|k| x[k]).sum();
                add(&mut model, Row::ContactCap(c), e.leq(cap as f64));
            }
        }
    }
    // Contact policies (`max_per_customer` rules, conflicts), only where they can bind.
    let policy = cands.customer_rows(problem);
    for c in 0..problem.customers.len() {
        let first = cands.customer_start[c] as usize;
        for row in policy.of_customer(c) {
            let e: Expression = policy.members(row).iter().map(|&i| x[first + i as usize]).sum();
            add(&mut model, Row::Policy(row), e.leq(policy.rhs[row]));
        }
    }
    // The coupling families, in layout order.
    let mut exprs = rows_expr.into_iter();
    for (i, (at, family)) in layout.families().enumerate() {
        for r in 0..family.rows() {
            let e = exprs.next().expect("one expression per row");
            let rhs = family.rhs(r);
            // A row no column enters holds by itself unless its right-hand side
            // is negative (a lower bound nothing can meet): that one must make
            // the model infeasible, not vanish.
            if !generic[at + r] || (!used[at + r] && rhs >= 0.0) || !rhs.is_finite() {
                continue;
            }
            let c = match family.sense() {
                Sense::Eq => e.eq(rhs),
                Sense::Le => e.leq(rhs),
            };
            add(&mut model, Row::Family(at + r), c);
        }
        for row in family.exact_rows(problem, cands) {
            let mut e = Expression::with_capacity(row.exposures.len() + row.own.len());
            for &(k, a) in &row.exposures {
                e.add_mul(a, x[k]);
            }
            for &(j, a) in &row.own {
                e.add_mul(a, own[i][j]);
            }
            let c = match row.sense {
                Sense::Eq => e.eq(row.rhs),
                Sense::Le => e.leq(row.rhs),
            };
            add(&mut model, row.price_of.map_or(Row::Auxiliary(i), |r| Row::Family(at + r)), c);
        }
    }

    let flow_keys = layout.arcs.clone();
    let unmet_rows = unmet.iter().map(|&(i, _, _)| i).collect();
    let mip = !family_columns.is_empty() || (binary_x && fixed.is_none() && !cands.is_empty());
    BuiltModel { problem: model, maps: ModelMaps { rows, flow_keys, unmet_rows, family_columns, mip, variables, layout } }
}

/// Runs a built model; an infeasible one comes back as a
/// [`SolveError::Contradiction`] naming HiGHS's irreducible infeasible subset.
fn run_highs(
    built: BuiltModel,
    opts: &ExactOptions,
    time_limit: Option<f64>,
    mip_start: &[f64],
    (problem, cands): (&Problem, &Candidates),
) -> Result<(Solved, ModelMaps), SolveError> {
    let BuiltModel { problem: model, maps } = built;
    let settings = Settings {
        threads: opts.threads,
        time_limit,
        mip_rel_gap: maps.mip.then_some(opts.mip_rel_gap),
        verbose: opts.verbose,
        options: &opts.highs_options,
        explain_infeasible: opts.explain_infeasible,
        interrupt: opts.cancel.as_ref(),
        mip_start,
        ..Settings::default()
    };
    match lp_backend::run(model, maps.variables, maps.rows.len(), &settings) {
        Ok(solved) => Ok((solved, maps)),
        Err(SolveError::Infeasible(raw)) => {
            Err(SolveError::Contradiction(Box::new(name_subset(problem, cands, &maps, &raw.unwrap_or_default()))))
        }
        Err(e) => Err(e),
    }
}

/// Names the rows and column bounds of an irreducible infeasible subset.
fn name_subset(problem: &Problem, cands: &Candidates, maps: &ModelMaps, raw: &RawIis) -> Contradiction {
    let customer = |c: usize| problem.customers.id[c].as_str();
    let families: Vec<_> = maps.layout.families().collect();
    let policy = raw.rows.iter().any(|&r| matches!(maps.rows[r], Row::Policy(_))).then(|| cands.customer_rows(problem));
    let constraints = raw
        .rows
        .iter()
        .map(|&r| match maps.rows[r] {
            Row::ContactCap(c) => Culprit {
                family: "contact_cap".into(),
                key: customer(c as usize).into(),
                limit: format!("at most {} offers", problem.contact_cap_of(c).unwrap_or(0)),
            },
            Row::Policy(row) => {
                let rows = policy.as_ref().expect("built when a policy row is in the subset");
                let who = customer(rows.customer_of(row));
                match rows.kind[row] {
                    PolicyRow::Rule(i) => Culprit {
                        family: "rule".into(),
                        key: format!("{} for {who}", problem.contact_rules[i as usize].id),
                        limit: format!("max_per_customer: at most {} more contacts after the history", rows.rhs[row]),
                    },
                    PolicyRow::Conflict(i) => Culprit {
                        family: "conflict".into(),
                        key: format!("{} for {who}", problem.conflicts[i as usize].id),
                        limit: "at most one of the two offers".into(),
                    },
                }
            }
            Row::Family(global) => {
                let (at, family) = families[maps.layout.family_of(global)];
                let row = global - at;
                let limit = if family.name() == rules::NAME {
                    let rule = &problem.rules[row];
                    let (kind, sign) = match rule.kind {
                        RuleKind::MaxTotal => ("max_total", "<="),
                        RuleKind::MinTotal => ("min_total", ">="),
                    };
                    format!("{kind} of {} {sign} {} (hard)", rule.measure.name(), rule.bound)
                } else {
                    match family.sense() {
                        // `+ 0.0`: no "-0" in the message.
                        Sense::Le => format!("at most {}", family.rhs(row) + 0.0),
                        Sense::Eq => format!("what arrives equals what is accepted and kept (= {})", family.rhs(row) + 0.0),
                    }
                };
                Culprit { family: family.name().into(), key: family.row_key(problem, row), limit }
            }
            Row::Auxiliary(i) => Culprit { family: families[i].1.name().into(), key: "(its own columns)".into(), limit: "a defining row".into() },
        })
        .collect::<Vec<_>>();
    // Columns in creation order: x, the arcs' flows, the unmet baseline, the
    // families' own columns, then the soft rows' slacks.
    let n = cands.len();
    let flows = n + maps.flow_keys.len();
    let unmet = flows + maps.unmet_rows.len();
    let bounds = group_bounds(raw.columns.iter().map(|&(j, bound)| {
        let side = if bound == IisBound::Lower { "lower" } else { "upper" };
        if j < n {
            let pair = format!("{}/{}", customer(cands.customer[j] as usize), problem.offers[cands.offer[j] as usize].id);
            let what = if bound == IisBound::Lower { "x >= 0" } else { "x <= 1 (each offer shown to a customer at most once)" };
            (what.to_string(), pair)
        } else if j < flows {
            let a = maps.flow_keys[j - n];
            let l = &problem.lanes[a.lane as usize];
            let arc = format!("{}->{} {}", problem.warehouses[l.warehouse as usize], problem.zones[l.zone as usize].id, problem.skus[a.sku as usize]);
            ("shipments >= 0".to_string(), arc)
        } else if j < unmet {
            let b = &problem.baseline[maps.unmet_rows[j - flows]];
            let cell = format!("{}/{}", problem.zones[b.zone as usize].id, problem.skus[b.sku as usize]);
            (format!("unmet baseline's {side} bound (0 to the baseline demand)"), cell)
        } else {
            (format!("the {side} bound of a family's own column"), format!("column {j}"))
        }
    }));
    let named_nothing = constraints.is_empty() && bounds.is_empty();
    let constraints = if maps.mip && named_nothing { hard_minimums(problem, &maps.layout) } else { constraints };
    Contradiction { constraints, bounds, integer_decisions: maps.mip, irreducible: raw.irreducible && !maps.mip }.sorted()
}

/// The hard `min_total` rules, named (what a MIP whose relaxation is feasible
/// can still not meet).
fn hard_minimums(problem: &Problem, layout: &Layout) -> Vec<Culprit> {
    let rows = layout.rows_of(rules::NAME);
    problem
        .rules
        .iter()
        .take(rows.len())
        .filter_map(hard_minimum)
        .collect()
}

/// `r` named as a culprit when it is a hard `min_total` rule.
fn hard_minimum(r: &Rule) -> Option<Culprit> {
    (r.kind == RuleKind::MinTotal && r.penalty.is_none())
        .then(|| Culprit { family: rules::NAME.into(), key: r.id.clone(), limit: format!("min_total of {} >= {} (hard)", r.measure.name(), r.bound) })
}

/// Relative gap of a maximisation: `(bound - objective) / max(1, |objective|)`.
pub fn relative_gap(objective: f64, bound: f64) -> f64 {
    without_noise((bound - objective) / objective.abs().max(1.0))
}

/// Gap of a maximisation on the offers' own value (the spec's reported gap):
/// `(bound - objective) / max(1, |bound - without|)`, `without` being
/// [`objective_without_offers`].
pub fn offers_gap(objective: f64, bound: f64, without: f64) -> f64 {
    without_noise((bound - objective) / (bound - without).abs().max(1.0))
}

/// Below 1e-12 a gap is floating-point noise of an optimal solve.
fn without_noise(gap: f64) -> f64 {
    if gap < 1e-12 {
        0.0
    } else {
        gap
    }
}

/// The spec's optimum with no candidate pairs: baseline shipping and unmet
/// penalties only, a small LP over the network. The zero of the offers' value.
pub fn objective_without_offers(problem: &Problem, network: &Network) -> Result<f64, SolveError> {
    let none = Candidates { customer_start: vec![0; problem.customers.len() + 1], ..Candidates::default() };
    // Not `solve`: its hard minimums, which no plan without offers meets, are left out here.
    Ok(solve_model(problem, network, &none, &ExactOptions::default(), &no_extra, None, Given::default())?.report.objective)
}

/// A problem whose candidate set is empty (an empty uptake table, or every
/// pair excluded by a hard rule) cannot meet a hard `min_total` above 0:
/// every measure is 0 without exposures. Every solver asks this first. Why
/// here and not in the model: the rules family leaves such a row out of a
/// model without candidates, which is also the optimum without offers of
/// the spec's gap ([`objective_without_offers`]); without this check the
/// solvers reported that model's optimum as the plan.
pub fn minimums_reachable(problem: &Problem, cands: &Candidates) -> Result<(), SolveError> {
    if !cands.is_empty() {
        return Ok(());
    }
    let constraints: Vec<Culprit> = problem
        .rules
        .iter()
        .filter(|r| r.bound > 0.0)
        .filter_map(hard_minimum)
        .map(|mut c| {
            c.limit.push_str(", and no customer has a candidate offer (the uptake table is empty, or hard rules exclude every pair)");
            c
        })
        .collect();
    if constraints.is_empty() {
        return Ok(());
    }
    let irreducible = constraints.len() == 1;
    Err(SolveError::Contradiction(Box::new(Contradiction { constraints, bounds: Vec::new(), irreducible, integer_decisions: false }.sorted())))
}

struct ModelMaps {
    rows: Vec<Row>,
    flow_keys: Vec<Arc>,
    unmet_rows: Vec<usize>,
    /// (family index in layout order, first column, number of columns) of the
    /// families whose own columns include binaries: non-empty means a MIP.
    family_columns: Vec<(usize, usize, usize)>,
    /// Whether the model has integer columns (custom-offer binaries or binary decisions).
    mip: bool,
    variables: usize,
    layout: Layout,
}

/// Solves the spec's model exactly.
///
/// Returns the optimal allocation with shadow prices; with a time limit, the
/// best feasible one found and its proven bound.
pub fn solve(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions) -> Result<Allocation, SolveError> {
    solve_with_families(problem, network, cands, opts, &no_extra)
}

/// [`solve`] with coupling families beyond the standard ones.
pub fn solve_with_families(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    opts: &ExactOptions,
    extra: &ExtraFamilies,
) -> Result<Allocation, SolveError> {
    solve_whole(problem, network, cands, opts, extra, Given::default())
}

/// [`solve`] on an all-or-nothing model (`binary_decisions`, which
/// `problem` must have) started from a plan's decisions (`start`, 0/1 per
/// pair: HiGHS's first incumbent when they keep every limit). Why: `auto`'s
/// whole MIP after a support MIP that missed the target
/// (`support_then_whole_mip` in the crate root) then improves on that plan
/// from the start instead of searching for one as good.
pub fn solve_from(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions, start: &[f64]) -> Result<Allocation, SolveError> {
    assert!(problem.policy.binary_decisions && start.len() == cands.len(), "a start is the decisions of the all-or-nothing model, one per pair");
    solve_whole(problem, network, cands, opts, &no_extra, Given { start: Some(start), ..Given::default() })
}

/// The whole model with `given` (nothing held), its report against the
/// optimum without offers.
fn solve_whole(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions, extra: &ExtraFamilies, given: Given) -> Result<Allocation, SolveError> {
    minimums_reachable(problem, cands)?;
    // With no candidates this solve is itself the optimum without offers.
    let without = if cands.is_empty() { None } else { Some(objective_without_offers(problem, network)?) };
    solve_model(problem, network, cands, opts, extra, without, given)
}

/// The all-or-nothing model (`binary_decisions`, which `problem` must have)
/// with the decisions of some pairs held: `pinned[k] = Some(served)` holds
/// pair `k` at 1 or 0, `None` leaves it to the MIP. Why: the served plan of
/// a scenario too large for the whole MIP keeps a binding hard minimum by
/// deciding again only the pairs near it ([`crate::served::all_or_nothing`]);
/// HiGHS's presolve drops the held columns. `start`: a plan's decisions
/// (`x`, 0/1 per pair) that HiGHS starts from when they keep every limit.
/// The report's objective without offers is not computed (it reads as the
/// objective).
pub fn solve_pinned(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions, pinned: &[Option<bool>], start: Option<&[f64]>) -> Result<Allocation, SolveError> {
    assert!(problem.policy.binary_decisions && pinned.len() == cands.len(), "pins are decisions of the all-or-nothing model, one per pair");
    solve_model(problem, network, cands, opts, &no_extra, None, Given { pinned: Some(pinned), start, ..Given::default() })
}

/// The linear program left once the custom offers are chosen: `open` says
/// which offers may be exposed (the custom-offer limit is then met by
/// construction and left out). Why: the decomposition picks the open offers
/// of a large MIP well, but its plan for them can stall short of their LP
/// optimum, which HiGHS proves quickly at sizes `auto` meets
/// ([`crate::AUTO_FIXED_OFFERS_LP_MAX_CANDIDATES`]). The report's bound is
/// this LP's, not the MIP's: the caller keeps the relaxation's.
pub fn solve_with_open_offers(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions, open: &[bool]) -> Result<Allocation, SolveError> {
    let without = if cands.is_empty() { None } else { Some(objective_without_offers(problem, network)?) };
    solve_model(problem, network, cands, opts, &no_extra, without, Given { open: Some(open), ..Given::default() })
}

/// The exact model's shadow prices alone (the decomposition's warm start from
/// a sample): no report is read, so the LP without offers is not solved.
pub(crate) fn prices(problem: &Problem, network: &Network, cands: &Candidates, opts: &ExactOptions) -> Result<crate::allocation::ShadowPrices, SolveError> {
    Ok(solve_model(problem, network, cands, opts, &no_extra, None, Given::default())?.prices)
}

/// Solves the model; `without` is the optimum without offers, `None` when
/// this solve is that optimum (no candidates) or its report is not read;
/// `given`: what is held rather than decided here.
fn solve_model(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    opts: &ExactOptions,
    extra: &ExtraFamilies,
    without: Option<f64>,
    given: Given,
) -> Result<Allocation, SolveError> {
    let open = given.open;
    let started = Instant::now();
    let remaining = |t: Option<f64>| t.map(|t| t - started.elapsed().as_secs_f64());

    let t0 = Instant::now();
    let built = build(problem, network, cands, open.map(|open| Fixed { open, x: None }), given.pinned, extra);
    let mut build_seconds = t0.elapsed().as_secs_f64();
    let constraints = built.maps.rows.len();
    debug_assert!(given.start.zip(given.pinned).is_none_or(|(x, pinned)| x.iter().zip(pinned).all(|(&x, pin)| pin.is_none_or(|on| (x > 0.5) == on))), "a start keeps the pins");
    // The decisions' columns come first, one per pair: the start's values are theirs.
    let (raw, maps) = run_highs(built, opts, remaining(opts.time_limit), given.start.unwrap_or_default(), (problem, cands))?;
    let mut solve_seconds = raw.seconds;
    let variables = maps.variables;

    // A MIP: fix the families' binaries (the open custom offers) and the
    // binary decisions, and re-solve as an LP for duals.
    let mut offer_open = open.map_or_else(|| vec![true; problem.offers.len()], <[bool]>::to_vec);
    let (lp, lp_maps, mip) = if !maps.mip {
        (raw, maps, None)
    } else {
        let families: Vec<_> = maps.layout.families().collect();
        for &(i, first, n) in &maps.family_columns {
            for (o, open) in families[i].1.open_offers(&raw.columns[first..first + n]) {
                offer_open[o as usize] = open;
            }
        }
        let t1 = Instant::now();
        let decisions = problem.policy.binary_decisions.then(|| raw.columns[..cands.len()].to_vec());
        let fixed = build(problem, network, cands, Some(Fixed { open: &offer_open, x: decisions.as_deref() }), None, extra);
        build_seconds += t1.elapsed().as_secs_f64();
        let (lp, lp_maps) = run_highs(fixed, opts, remaining(opts.time_limit).map(|t| t.max(1.0)), &[], (problem, cands))?;
        solve_seconds += lp.seconds;
        (lp, lp_maps, Some((raw.status, raw.bound)))
    };

    let x = lp.columns[..cands.len()].to_vec();
    let mut flows = Vec::new();
    for (i, a) in lp_maps.flow_keys.iter().enumerate() {
        let units = lp.columns[cands.len() + i];
        if units > 1e-9 {
            flows.push(a.flow(units));
        }
    }
    let mut unmet = vec![0.0; problem.baseline.len()];
    let first_u = cands.len() + lp_maps.flow_keys.len();
    for (i, &row) in lp_maps.unmet_rows.iter().enumerate() {
        unmet[row] = lp.columns[first_u + i].max(0.0);
    }
    let prices = shadow_prices(problem, &lp_maps, &lp.row_duals);
    let (status, bound) = match mip {
        Some((status, bound)) => (status, bound.max(lp.objective)),
        None => (lp.status, lp.bound),
    };
    let solver = "exact".to_string();
    let report = SolveReport {
        solver,
        status,
        objective: lp.objective,
        bound,
        gap: relative_gap(lp.objective, bound),
        objective_without_offers: without.unwrap_or(lp.objective),
        offers_gap: offers_gap(lp.objective, bound, without.unwrap_or(lp.objective)),
        build_seconds,
        solve_seconds,
        variables,
        constraints,
        iterations: None,
        warm_from: None,
    };
    Ok(Allocation { x, flows, unmet, offer_open, prices, report })
}

/// Converts HiGHS row duals into [`ShadowPrices`].
///
/// HiGHS reports `d(objective)/d(rhs)` for a maximisation. Every row is written
/// as `A x <= rhs` (or `=`), so the dual is the objective lost per unit of
/// tightening as it stands; the families store it.
fn shadow_prices(problem: &Problem, maps: &ModelMaps, duals: &[f64]) -> ShadowPrices {
    let mut contact_cap = vec![0.0; problem.customers.len()];
    let mut policy = vec![0.0; maps.rows.iter().filter(|r| matches!(r, Row::Policy(_))).count()];
    let mut prices = vec![0.0; maps.layout.total()];
    for (row, &d) in maps.rows.iter().zip(duals) {
        match *row {
            Row::ContactCap(c) => contact_cap[c as usize] = d,
            Row::Policy(r) => policy[r] = d,
            Row::Family(r) => prices[r] = d,
            Row::Auxiliary(_) => {}
        }
    }
    ShadowPrices { customer_rows: policy, ..maps.layout.shadow_prices(problem, &prices, contact_cap) }
}
