//! allot's planning model and its solvers.
//!
//! This crate owns the in-memory types of `shared/spec/model.md` ([`Problem`]),
//! the candidate set with its hard rules ([`Candidates`]), the solvers (today the
//! [`exact`] one), the derivation of plan outputs ([`plan`]) and an independent
//! [`feasibility`] checker. It never does I/O: loading and writing belong to
//! `allot-scenarios`.

pub mod allocation;
pub mod candidates;
pub mod contact_policy;
pub mod decomposed;
pub mod exact;
pub mod families;
pub mod feasibility;
pub mod infeasibility;
pub mod lp_backend;
pub mod model;
pub mod picking;
pub mod plan;
pub mod served;

pub use allocation::{Allocation, Flow, ShadowPrices, SolveReport, SolveStatus};
pub use candidates::{Candidates, ExclusionRule, Network};
pub use model::*;
pub use plan::{derive_plan, Plan};

/// Which solver plans a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum SolverChoice {
    /// The full model in HiGHS ([`exact`]).
    Exact(exact::ExactOptions),
    /// Dual decomposition ([`decomposed`]).
    Decomposed(decomposed::DecomposedOptions),
    /// Exact below [`AUTO_EXACT_MAX_CANDIDATES`] candidates (or its MIP
    /// limit) and for an LP the decomposition would sample whole, decomposed
    /// above ([`SolverChoice::resolve`]).
    Auto(exact::ExactOptions, decomposed::DecomposedOptions),
}

/// Largest LP (in candidate pairs) that `auto` gives to the exact solver. Measured
/// on 2 cores: up to about this size HiGHS proves the optimum in a few
/// seconds; beyond it the exact solve grows faster than linearly (800k pairs:
/// 140 s) while the decomposition stays linear. Why not lower (it was
/// 40,000): on held-out draws of `allot generate` (40 offers, 300 SKUs, 20
/// zones, 8 candidates) at 12,000 customers (96,000 pairs) exact proved the
/// optimum in 2.3-3.3 s (7.1 s with contact policies) where the
/// decomposition took 3.5-27 s, 79 s with contact policies, and stalled on
/// two of seven families (tight stock 6.0e-3, contact policies 3.0e-2); at
/// 20,000 customers (160,000 pairs, no budget) 6.7 s against 12.8 s. (An LP
/// of at most 8,000 customers goes to exact at any size:
/// [`SolverChoice::resolve`].)
pub const AUTO_EXACT_MAX_CANDIDATES: usize = 160_000;

/// Largest MIP (in candidate pairs) that `auto` gives to the exact solver: HiGHS's
/// branch-and-cut grows much faster than the LP (160k pairs: 78 s).
pub const AUTO_EXACT_MAX_MIP_CANDIDATES: usize = 10_000;

/// Largest MIP with the custom-offer limit (in candidate pairs) on which
/// `auto`, after the decomposition chose the open custom offers, solves the
/// linear program left with HiGHS and keeps the better plan. Why: with the
/// offers chosen the rest is an LP, which HiGHS proves in well under the
/// MIP's time up to about this size, and its plan is the fixed problem's
/// optimum where the decomposition's is within its target of it. Measured on
/// 2 cores (issue 17's generator, `max_custom_offers = 1`), before the
/// decomposition solved the fixed problem from its own samples' prices:
/// 5,000 customers, `auto` the optimum in 8 s (exact 11 s); 20,000
/// customers, in 14 s (exact 47 s); 50,000 customers (330,000 pairs), in
/// 36 s (exact 143 s).
pub const AUTO_FIXED_OFFERS_LP_MAX_CANDIDATES: usize = 400_000;

impl SolverChoice {
    /// This choice with the decomposition started from `warm` (an earlier
    /// plan's prices); the exact solver solves from scratch and is unchanged.
    pub fn with_warm_start(self, warm: std::sync::Arc<decomposed::WarmStart>) -> SolverChoice {
        let warmed = |d: decomposed::DecomposedOptions| decomposed::DecomposedOptions { warm: Some(warm.clone()), ..d };
        match self {
            SolverChoice::Decomposed(d) => SolverChoice::Decomposed(warmed(d)),
            SolverChoice::Auto(e, d) => SolverChoice::Auto(e, warmed(d)),
            exact @ SolverChoice::Exact(_) => exact,
        }
    }

    /// The plan version a warm start was read from, when this choice carries one.
    pub fn warm_source(&self) -> Option<&str> {
        match self {
            SolverChoice::Decomposed(d) | SolverChoice::Auto(_, d) => d.warm_source(),
            SolverChoice::Exact(_) => None,
        }
    }

    /// The solver that will actually run on `cands`. An LP small enough in
    /// customers to be the decomposition's own first sample goes to `exact`
    /// whatever its pairs (the decomposition would start by solving that
    /// very LP, only to keep its prices), unless the decomposition has a
    /// warm start to check first (an unchanged scenario gets its earlier plan
    /// back at the cost of one small LP) or a time limit (a decomposition
    /// stopped by it still returns a plan, an exact LP may not).
    pub fn resolve(&self, problem: &Problem, cands: &Candidates) -> SolverChoice {
        match self {
            SolverChoice::Auto(exact, decomposed) => {
                let limit = if problem.is_mip() { AUTO_EXACT_MAX_MIP_CANDIDATES } else { AUTO_EXACT_MAX_CANDIDATES };
                let own_sample = !problem.is_mip()
                    && decomposed.warm.is_none()
                    && decomposed.time_limit.is_none()
                    && decomposed::sample::whole_problem_is_sampled(problem.customers.len());
                if cands.len() <= limit || own_sample {
                    SolverChoice::Exact(exact.clone())
                } else {
                    SolverChoice::Decomposed(decomposed.clone())
                }
            }
            other => other.clone(),
        }
    }
}

/// How long `auto` lets HiGHS try the linear program left once the
/// decomposition chose the open custom offers: this many times the
/// decomposition's own solve time, and at least
/// [`AUTO_FIXED_OFFERS_LP_MIN_SECONDS`]. Why a limit: the decomposition's plan
/// is already certified within the target, the LP only polishes it, and on
/// some scenarios it is far slower than the decomposition (a held-out draw
/// with category contact policies, 50,000 customers, 400,000 pairs: the
/// decomposition certified 6.1e-4 in 93 s, the LP had not finished after 300
/// s more). Why twice: on `allot generate`'s seed 23 at 50,000 customers the
/// LP takes about 16 s after a 13 s decomposition, and finds the fixed
/// problem's optimum, 4.5e-4 of the offers' value above the decomposition's plan.
pub const AUTO_FIXED_OFFERS_LP_TIME_FACTOR: f64 = 2.0;

/// The least time `auto`'s fixed-offers LP gets (see
/// [`AUTO_FIXED_OFFERS_LP_TIME_FACTOR`]).
pub const AUTO_FIXED_OFFERS_LP_MIN_SECONDS: f64 = 10.0;

/// The time limit of `auto`'s fixed-offers LP (and of each support MIP of
/// an all-or-nothing model) after a decomposition of
/// `decomposition_seconds` (its build and solve), within what the run's own `limit` leaves;
/// `None` when the decomposition spent it (no polish then). Why the time
/// left: given the whole limit again, a run with `--time-limit 3` took 9.8 s.
fn fixed_offers_lp_time_limit(decomposition_seconds: f64, limit: Option<f64>) -> Option<f64> {
    let budget = (decomposition_seconds * AUTO_FIXED_OFFERS_LP_TIME_FACTOR).max(AUTO_FIXED_OFFERS_LP_MIN_SECONDS);
    match limit {
        None => Some(budget),
        Some(limit) => Some((limit - decomposition_seconds).min(budget)).filter(|&left| left > 0.0),
    }
}

/// `auto` on a mid-sized MIP with the custom-offer limit: the decomposition's
/// plan, or the exact LP over the offers it opened when that is better (see
/// [`AUTO_FIXED_OFFERS_LP_MAX_CANDIDATES`]), within its own time limit and
/// [`AUTO_FIXED_OFFERS_LP_TIME_FACTOR`] times the decomposition's time. The
/// bound stays the relaxation's (it bounds the MIP); the exact LP failing (a
/// time limit) keeps the decomposition's plan, its solve time counting the
/// LP's too.
fn with_open_offers_exact(problem: &Problem, network: &Network, cands: &Candidates, opts: &exact::ExactOptions, decomposed: Allocation, target: f64) -> Allocation {
    let Some(time_limit) = fixed_offers_lp_time_limit(decomposed.report.build_seconds + decomposed.report.solve_seconds, opts.time_limit) else { return decomposed };
    let opts = exact::ExactOptions { time_limit: Some(time_limit), ..opts.clone() };
    let started = std::time::Instant::now();
    let solved = exact::solve_with_open_offers(problem, network, cands, &opts, &decomposed.offer_open);
    better_of(decomposed, solved, &[SolveStatus::Optimal], started, target)
}

/// `polished` (HiGHS on what the decomposition left, started at `started`)
/// when it is a better plan with one of the `accepted` statuses: named
/// `decomposed+exact`, with the decomposition's bound (it bounds the whole
/// problem; the polish's bounds a restriction), objective without offers,
/// times and iterations added; else `decomposed`, whose solve time then
/// counts the polish's too.
fn better_of(mut decomposed: Allocation, polished: Result<Allocation, exact::SolveError>, accepted: &[SolveStatus], started: std::time::Instant, target: f64) -> Allocation {
    let mut better = match polished {
        Ok(p) if accepted.contains(&p.report.status) && p.report.objective > decomposed.report.objective => p,
        _ => {
            decomposed.report.solve_seconds += started.elapsed().as_secs_f64();
            return decomposed;
        }
    };
    let d = &decomposed.report;
    let r = &mut better.report;
    r.solver = "decomposed+exact".to_string();
    r.bound = d.bound.max(r.objective);
    r.objective_without_offers = d.objective_without_offers;
    r.gap = exact::relative_gap(r.objective, r.bound);
    r.offers_gap = exact::offers_gap(r.objective, r.bound, r.objective_without_offers);
    r.status = if r.offers_gap <= target { SolveStatus::WithinGap } else { SolveStatus::Stalled };
    r.build_seconds += d.build_seconds;
    r.solve_seconds += d.solve_seconds;
    r.iterations = d.iterations;
    r.warm_from = d.warm_from.clone();
    better
}

/// The share of the target (on the offers' value) within which HiGHS stops
/// the support MIP ([`with_support_mip`]).
const SUPPORT_MIP_GAP_SHARE: f64 = 0.1;

/// The share of the support MIP's pairs that its second attempt adds
/// ([`with_support_mip`]): this many of the pairs the relaxation left at 0,
/// those whose reduced value at its prices, the customer's contact-cap
/// price included, is nearest zero from below
/// ([`decomposed::reduced_values_at`]). Why a quarter: on the held-out draw
/// that needed it (2,000 customers, 10,422 pairs; measured as the only
/// attempt, without a start, ranked before the cap's price), a quarter
/// certified 1.2e-4 in 6.6 s, half 1.4e-4 in 9.4 s and as many as the
/// support 3.2e-4 in 10.3 s; HiGHS finds good plans more slowly the more
/// pairs it decides.
const SUPPORT_WIDENING_SHARE: f64 = 0.25;

/// `auto` on an all-or-nothing model too large for the whole MIP: the
/// decomposition's relaxation rounded to decisions
/// ([`served::binary_allocation`]), or, when that plan misses the target,
/// the MIP over the pairs the relaxation uses (every other pair held at 0:
/// [`exact::solve_pinned`]) when it finds a better plan within
/// [`fixed_offers_lp_time_limit`]'s budget, started from the rounding's
/// decisions (the pairs they use freed too); when that plan misses the
/// target too, the MIP again with the support widened
/// ([`SUPPORT_WIDENING_SHARE`]), from that plan, in a budget of its own
/// (each the decomposition's time's, within what `--time-limit` leaves on
/// the clock). Why: the rounding
/// keeps every limit but can give back more than the target (a held-out
/// draw, 5,000 customers, 20 offers, 15,363 pairs: the relaxation's plan
/// 4.6e-4 of the offers' value from its bound, rounded 1.03e-3; the
/// relaxation certified tighter, 1.7e-4, rounded 3.75e-3), while the whole
/// MIP found a worse plan than the rounding in 10 s and proved the optimum
/// in 124 s. Why the start: without it HiGHS's own plans can stay worse
/// than the rounding's for the whole budget (5,000 customers, 25,088 pairs:
/// the rounding's 2.7e-3 kept after 45 s; from it, 4.2e-4 in 10.6 s). Why
/// the second attempt: the relaxation fills a binding stock
/// row with fractions of the pairs it uses; 0/1 decisions fill it with
/// other pairs, ones it left at 0 (a held-out draw, 2,000 customers,
/// 10,422 pairs: the support MIP's optimum 4.6e-3 of the offers' value
/// below the relaxation's bound, the whole MIP's 9e-5; widened, 1.2e-4).
/// Not first: on other draws the wider MIP is slower to find a plan than
/// the support's (2,000 customers, 9,109 pairs: 1.5e-2 in its budget,
/// where the support MIP certifies 7.5e-4). The bound stays the relaxation's.
fn with_support_mip(problem: &Problem, network: &Network, cands: &Candidates, opts: &exact::ExactOptions, relaxed: Allocation, target: f64) -> Allocation {
    if cands.len() > AUTO_FIXED_OFFERS_LP_MAX_CANDIDATES {
        return served::binary_allocation(problem, network, cands, relaxed, target);
    }
    // Each MIP's budget is the decomposition's time's (not the time spent
    // since, which would compound), within what the run's limit leaves on
    // the clock from here (the rounding included).
    let started = std::time::Instant::now();
    let decomposition = relaxed.report.build_seconds + relaxed.report.solve_seconds;
    let time_left = || fixed_offers_lp_time_limit(decomposition, opts.time_limit.map(|limit| limit - started.elapsed().as_secs_f64()));
    let mut pinned: Vec<Option<bool>> = relaxed.x.iter().map(|&x| (x <= 0.0).then_some(false)).collect();
    let (prices, open) = (relaxed.prices.clone(), relaxed.offer_open.clone());
    let rounded = served::binary_allocation(problem, network, cands, relaxed, target);
    if rounded.report.offers_gap <= target {
        return rounded;
    }
    let Some(time_limit) = time_left() else { return rounded };
    let supported = support_mip(problem, network, cands, opts, rounded, &mut pinned, target, time_limit);
    if supported.report.offers_gap <= target {
        return supported;
    }
    let Some(time_limit) = time_left() else { return supported };
    let reduced = decomposed::reduced_values_at(problem, network, cands, &prices, &open);
    let mut left_out: Vec<usize> = (0..pinned.len()).filter(|&k| pinned[k].is_some() && reduced[k].is_finite()).collect();
    left_out.sort_by(|&a, &b| reduced[b].total_cmp(&reduced[a]));
    let support = pinned.len() - pinned.iter().filter(|p| p.is_some()).count();
    left_out.truncate((SUPPORT_WIDENING_SHARE * support as f64).ceil() as usize);
    if left_out.is_empty() {
        return supported;
    }
    for k in left_out {
        pinned[k] = None;
    }
    support_mip(problem, network, cands, opts, supported, &mut pinned, target, time_limit)
}

/// The MIP over the pairs `pinned` leaves free ([`exact::solve_pinned`])
/// and those `plan` uses (freed here), started from `plan`'s decisions, in
/// `time_limit` seconds: its plan when better than `plan`'s ([`better_of`]),
/// else `plan`.
#[allow(clippy::too_many_arguments)]
fn support_mip(problem: &Problem, network: &Network, cands: &Candidates, opts: &exact::ExactOptions, plan: Allocation, pinned: &mut [Option<bool>], target: f64, time_limit: f64) -> Allocation {
    // The start must keep the pins: the rounding's fill may use pairs the relaxation left at 0.
    for (pin, &x) in pinned.iter_mut().zip(&plan.x) {
        if x > 0.5 {
            *pin = None;
        }
    }
    // HiGHS stops once its plan is within a tenth of the target of its own
    // bound (the held MIP's, at most the relaxation's), as a share of the
    // whole objective. Why a tenth: at the target itself it stopped on
    // plans worse than the rounding's.
    let r = &plan.report;
    let mip_rel_gap = SUPPORT_MIP_GAP_SHARE * target * (r.bound - r.objective_without_offers).abs() / r.bound.abs().max(1.0);
    let opts = exact::ExactOptions { time_limit: Some(time_limit), mip_rel_gap, explain_infeasible: false, ..opts.clone() };
    if opts.verbose {
        eprintln!("decomposed+exact: the MIP over {} of {} pairs from a plan {:.2e} short, in {time_limit:.1} s", pinned.iter().filter(|p| p.is_none()).count(), pinned.len(), r.offers_gap);
    }
    let started = std::time::Instant::now();
    // From `plan`'s decisions: HiGHS's first incumbent is then at least as good.
    let solved = exact::solve_pinned(problem, network, cands, &opts, pinned, Some(&plan.x));
    // A MIP stopped by its time limit (or a node limit of the user's HiGHS
    // options) still has a plan that keeps every limit.
    better_of(plan, solved, &[SolveStatus::Optimal, SolveStatus::TimeLimit, SolveStatus::IterationLimit], started, target)
}

/// Smallest all-or-nothing model (in candidate pairs) on which `auto`, below
/// [`AUTO_EXACT_MAX_MIP_CANDIDATES`], first tries the relaxation and its
/// support MIP ([`with_support_mip`]) and solves the whole MIP only when
/// that plan misses `--gap`. Why: HiGHS's branch and cut on the whole
/// model is slow well below the exact solver's size (held-out draws of
/// `allot generate --binary-decisions`, 20 offers, 6 candidates, 2 cores:
/// 2,000 customers and 9,109 pairs, the optimum in 65 s; 1,000 customers
/// and 3,444 pairs, no optimum after 120 s), while the support MIP
/// certified 1e-4 of the offers' value in 5-7 s at 10,000 pairs. Below this
/// size the whole MIP is quick and proves the optimum.
pub const AUTO_BINARY_SUPPORT_FIRST_MIN_CANDIDATES: usize = 2_000;

/// `auto` on an all-or-nothing model of the exact solver's size (see
/// [`AUTO_BINARY_SUPPORT_FIRST_MIN_CANDIDATES`]): the relaxation's support
/// MIP when it certifies the target; else the whole MIP, started from that
/// plan, in what the run's time limit leaves, whose plan is kept when it is
/// at least as good (its
/// solve time counting the first attempt's). The first attempt failing
/// (a hard minimum the relaxation cannot reach, say) leaves the whole MIP
/// to answer, as it did alone, in what the limit leaves (the first
/// attempt's error once it is spent).
fn support_then_whole_mip(problem: &Problem, network: &Network, cands: &Candidates, exact_opts: &exact::ExactOptions, decomposed_opts: &decomposed::DecomposedOptions) -> Result<Allocation, PlanError> {
    let started = std::time::Instant::now();
    let first = decomposed::solve(problem, network, cands, decomposed_opts).map(|relaxed| with_support_mip(problem, network, cands, exact_opts, relaxed, decomposed_opts.gap));
    let spent = started.elapsed().as_secs_f64();
    // What the run's time limit leaves for the whole MIP (the first attempt's answer, or its error, once spent).
    let time_limit = exact_opts.time_limit.map(|limit| limit - spent);
    let out_of_time = time_limit.is_some_and(|left| left <= 0.0);
    let supported = match first {
        Ok(supported) if supported.report.status == SolveStatus::WithinGap || out_of_time => return Ok(supported),
        Err(e) if out_of_time => return Err(e.into()),
        Err(_) => None,
        Ok(supported) => Some(supported),
    };
    let whole_opts = exact::ExactOptions { time_limit, ..exact_opts.clone() };
    let Some(supported) = supported else { return Ok(exact::solve(problem, network, cands, &whole_opts)?) };
    Ok(match exact::solve_from(problem, network, cands, &whole_opts, &supported.x) {
        Ok(mut whole) if whole.report.objective >= supported.report.objective => {
            whole.report.solve_seconds += spent;
            whole
        }
        _ => supported,
    })
}

/// Why a solve returned no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// From the exact solver.
    #[error(transparent)]
    Exact(#[from] exact::SolveError),
    /// From the decomposed solver.
    #[error(transparent)]
    Decomposed(#[from] decomposed::DecomposedError),
}

/// Everything a solve produces, from a problem to plan outputs, in one call.
///
/// Why: callers (CLI, what-if runs, the service's background jobs) should not
/// have to know the order of candidate building, solving and plan derivation.
pub fn plan(problem: &Problem, solver: &SolverChoice) -> Result<(Candidates, Allocation, Plan), PlanError> {
    let network = Network::new(problem);
    let cands = Candidates::build(problem, &network);
    let alloc = solve(problem, &network, &cands, solver)?;
    let plan = derive_plan(problem, &network, &cands, &alloc);
    Ok((cands, alloc, plan))
}

/// [`plan`] with the decomposition's customers held elsewhere: `connect` gets the
/// candidates and returns the [`decomposed::customers::CustomerSide`] that holds
/// them (e.g. remote workers that loaded them from partition files). The driver
/// is the same code as the single-machine solver's; `solver` names the run in
/// the plan's report.
pub fn plan_with_side(
    problem: &Problem,
    opts: &decomposed::DecomposedOptions,
    solver: &str,
    connect: impl FnOnce(&Candidates) -> Result<Box<dyn decomposed::customers::CustomerSide>, decomposed::DecomposedError>,
) -> Result<(Candidates, Allocation, Plan), PlanError> {
    let network = Network::new(problem);
    let cands = Candidates::build(problem, &network);
    exact::minimums_reachable(problem, &cands)?;
    let mut side = connect(&cands)?;
    let mut alloc = decomposed::solve_with(problem, &network, &cands, opts, side.as_mut())?;
    drop(side);
    if problem.policy.binary_decisions {
        alloc = served::binary_allocation(problem, &network, &cands, alloc, opts.gap);
    }
    alloc.report.solver = solver.to_string();
    let plan = derive_plan(problem, &network, &cands, &alloc);
    Ok((cands, alloc, plan))
}

/// Solves with the chosen solver (resolving `auto` by [`SolverChoice::resolve`]).
pub fn solve(problem: &Problem, network: &Network, cands: &Candidates, solver: &SolverChoice) -> Result<Allocation, PlanError> {
    exact::minimums_reachable(problem, cands)?;
    if let SolverChoice::Auto(exact_opts, decomposed_opts) = solver {
        let n = cands.len();
        if problem.has_custom_limit() && !problem.policy.binary_decisions && n > AUTO_EXACT_MAX_MIP_CANDIDATES && n <= AUTO_FIXED_OFFERS_LP_MAX_CANDIDATES {
            let decomposed = solve(problem, network, cands, &SolverChoice::Decomposed(decomposed_opts.clone()))?;
            return Ok(with_open_offers_exact(problem, network, cands, exact_opts, decomposed, decomposed_opts.gap));
        }
        if problem.policy.binary_decisions {
            match solver.resolve(problem, cands) {
                SolverChoice::Decomposed(_) => {
                    let relaxed = decomposed::solve(problem, network, cands, decomposed_opts)?;
                    return Ok(with_support_mip(problem, network, cands, exact_opts, relaxed, decomposed_opts.gap));
                }
                SolverChoice::Exact(_) if n >= AUTO_BINARY_SUPPORT_FIRST_MIN_CANDIDATES => {
                    return support_then_whole_mip(problem, network, cands, exact_opts, decomposed_opts);
                }
                _ => {}
            }
        }
    }
    Ok(match solver.resolve(problem, cands) {
        SolverChoice::Exact(opts) => exact::solve(problem, network, cands, &opts)?,
        SolverChoice::Decomposed(opts) => {
            let started = std::time::Instant::now();
            // What the run's time limit leaves (`None`: no limit; not positive: spent).
            let time_left = || opts.time_limit.map(|limit| limit - started.elapsed().as_secs_f64());
            let alloc = match decomposed::solve(problem, network, cands, &opts) {
                // Small enough (as `auto` sizes the exact solver) for the exact
                // model to say why, or to find the plan the iterations missed,
                // in the time the limit leaves.
                Err(decomposed::DecomposedError::HardMinimumsUnmet)
                    if cands.len() <= if problem.is_mip() { AUTO_EXACT_MAX_MIP_CANDIDATES } else { AUTO_EXACT_MAX_CANDIDATES }
                        && time_left().is_none_or(|left| left > 0.0) =>
                {
                    let exact_opts = exact::ExactOptions { threads: opts.threads.and_then(|t| u32::try_from(t).ok()), time_limit: time_left(), ..exact::ExactOptions::default() };
                    return match exact::solve(problem, network, cands, &exact_opts) {
                        Ok(alloc) => Ok(alloc),
                        Err(contradiction @ exact::SolveError::Contradiction(_)) => Err(contradiction.into()),
                        Err(_) => Err(decomposed::DecomposedError::HardMinimumsUnmet.into()),
                    };
                }
                other => other?,
            };
            if problem.policy.binary_decisions {
                served::binary_allocation(problem, network, cands, alloc, opts.gap)
            } else {
                alloc
            }
        }
        SolverChoice::Auto(..) => unreachable!("resolve never returns auto"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_offers_lp_gets_twice_the_decomposition_within_its_own_limit() {
        assert_eq!(fixed_offers_lp_time_limit(93.0, None), Some(186.0));
        assert_eq!(fixed_offers_lp_time_limit(2.0, None), Some(AUTO_FIXED_OFFERS_LP_MIN_SECONDS));
        assert_eq!(fixed_offers_lp_time_limit(20.0, Some(600.0)), Some(40.0));
        // Within the time the run's limit leaves; none once it is spent.
        assert_eq!(fixed_offers_lp_time_limit(20.0, Some(30.0)), Some(10.0));
        assert_eq!(fixed_offers_lp_time_limit(93.0, Some(50.0)), None);
    }
}
