//! The decomposed planner: the spec's model solved by Lagrangian dual
//! decomposition, for scenarios with millions of customers.
//!
//! # Method
//!
//! Only a few thousand constraints couple customers: zone balance, stock, lane
//! capacity, budget, redemptions, delivery capacity, fairness (and, in the MIP's
//! relaxation, the custom-offer limit). They are dualized with multipliers `nu`;
//! what remains separates into one tiny problem per customer (a capped simplex:
//! at most `max_offers` exposures in `[0, 1]`) and one per shipment arc and unmet
//! baseline (a box), each solved in closed form ([`kernel`]).
//!
//! * **Smoothing.** As in DuaLip (Basu, Ghoting, Mazumder, Pan: "ECLIPSE: An
//!   Extreme-Scale Linear Program Solver for Web-Applications", ICML 2020), a ridge
//!   term `-gamma_j/2 x_j^2` is added to the primal, which makes the dual function
//!   smooth with gradient `rhs - A x(nu)`. Here `gamma_k = epsilon * value_k` for an
//!   exposure, so the response depends on the *relative* margin of a candidate and
//!   the regularization bias is at most `epsilon/2` of the objective; `epsilon` is
//!   decreased in stages (continuation), as ECLIPSE does.
//! * **Accelerated dual ascent.** Projected accelerated gradient (FISTA: Beck and
//!   Teboulle 2009) on the multipliers, with a diagonal preconditioner
//!   `L_i = sum_j |a_ij| (sum_i' |a_i'j|) / gamma_j`, which majorizes
//!   `A Gamma^-1 A^T` (a Schur-type bound), and adaptive restart when momentum
//!   points uphill (O'Donoghue and Candès 2015). The step is [`LONG_STEP`]
//!   times the bound's safe one: the bound counts every candidate as
//!   responding, at a small ridge only the marginal ones do, and with the
//!   safe step the prices stayed where the sample put them.
//! * **Warm start** ([`sample`]): the exact prices of a 4,000-customer sample with
//!   every capacity scaled to its share (several disjoint samples above 250,000
//!   customers; a problem of at most 8,000 customers is its own sample). Learning prices from a sample is the idea of Devanur and Hayes
//!   (EC 2009) and Agrawal, Wang and Ye (Operations Research 2014); here it puts
//!   the ascent within a fraction of a percent of the optimum before its first
//!   iteration. Measured: cold-started FISTA stalled 0.5-3% away after thousands
//!   of iterations on the same scenarios. A window that ends short of the
//!   target without lowering the bound **escalates** to a sample four times
//!   larger (up to 32,000 customers, under half of them; then once a second
//!   sample of that size, averaged with it; last, once, the whole problem
//!   when it has at most 32,000 customers; [`sample::Escalation`]) and restarts the ascent from its prices when they
//!   certify a lower bound: the ascent hardly moves the zone-balance prices
//!   (their preconditioner counts every arc into the zone), and that is where
//!   a small sample's prices are off.
//! * **Certificates, not hopes.** At any `nu >= 0` the *unsmoothed* Lagrangian dual
//!   function is an upper bound on the optimum (weak duality); it is computed in the
//!   same pass as the gradient, and the best one is kept. A primal feasible plan comes
//!   from [`repair`]: the smoothed response is scaled per cell (offer, zone, tier,
//!   group) by a small LP that also routes the shipments, so every constraint holds.
//!   The LP mixes the window's averaged response, a generous one and the best
//!   plan so far (each customer's exposures below a convex combination of
//!   plans that keep its own rules, with weights per customer group: zone and
//!   fairness slot), so the plan only improves and a contact
//!   slot freed by one scaled-down offer is refilled from another response:
//!   a Dantzig-Wolfe master whose columns are cells of whole responses.
//!   The stopping rule uses the gap on the offers' own value, `(best bound -
//!   plan objective) / max(1, |best bound - objective without offers|)` (the
//!   latter a small LP, baseline shipping only); the gap relative to the whole
//!   objective is reported beside it. A run stops as `stalled` only when the
//!   certified gap stops moving ([`STALL_WINDOWS`] windows in a row narrow it
//!   by less than [`STALL_PROGRESS`] of itself).
//!
//!   Where each side stands (issue 17, `allot generate` families, 10,000 to
//!   100,000 customers): the plan was the weak side (0.2-0.8% below the
//!   optimum on the offers' value before the mixed repair and the long step).
//!   The bound is a sample's, which the ascent rarely lowers: within 2e-5
//!   to 1e-4 of the optimum at the generator's defaults, about 4.5e-4 at
//!   `allot bench`'s (40 offers, 300 SKUs), and with tight stock about 1e-2
//!   from the first sample, 1.2e-3 at 20,000 customers after escalation.
//!   A proximal bundle method on the unsmoothed dual (cuts from the
//!   unsmoothed responses) was tried from the first sample's prices and
//!   found no descent step in 150 evaluations; a larger sample did.
//! * **Warm re-plans** ([`WarmStart`]): a re-plan of a scenario after a small
//!   change (a receipt, a demand shock) starts from the earlier plan's row
//!   prices (those of its best bound), matched by family and row key, and
//!   stops once it certifies the earlier plan's gap (or the target, if
//!   tighter). First the earlier plan itself, scaled per cell to the changed
//!   limits by one small LP, against the dual bound at those prices
//!   ([`earlier_plan_certified`]); then, when that came near, an iteration
//!   and a repair at those prices, whose hull mixes the earlier plan with
//!   the new responses and starts from it; else the prices compete with the
//!   samples' (and their mean) as a cold start's do, and the earlier plan is
//!   let go.
//! * **The custom-offer limit** (the MIP) is a branch over the choices of open
//!   custom offers ([`branch_on_custom_offers`]): the relaxation (the limit
//!   dualized through `sum_o sum_c x[c,o] / n[o] <= K`, solved to a looser
//!   target) ranks the offers; the `K` with the largest net value at its
//!   prices are opened and that fixed problem solved from its own samples'
//!   prices; every other choice of `K` is bounded by the dual function at the
//!   first choice's prices (a sample's, or the lowest of several, when those
//!   do not suffice), and a choice whose
//!   bound leaves more than the target above the plan is solved in turn, its
//!   plan kept when better. The bound is the highest of the choices' (the
//!   relaxation's when lower, or when there are more than
//!   [`MAX_OTHER_CHOICES`] choices). A warm re-plan starts the branch from
//!   the earlier version's choice, without the relaxation. Measured at 1M customers (5 custom
//!   offers, 2 open): the ranking's choice was 0.65% of the offers' value
//!   short; the branch solved the one other choice whose bound was above it
//!   and certified 9.5e-4 in 46 s, where the relaxation's bound had left the
//!   ranking alone `stalled` at 3.7e-2 after 144 s.
//!
//! The zone-balance multipliers are the plan's bid prices.

mod attributes;
pub mod cells;
mod context;
pub mod customer_lp;
pub mod customers;
mod error;
pub mod kernel;
mod repair;
pub mod sample;
mod warm;

use std::time::Instant;

pub use attributes::CustomerAttributes;
pub use cells::CellSums;
pub use error::DecomposedError;
pub use repair::Repaired;
pub use warm::{KeyedExposures, WarmStart};

use crate::allocation::{Allocation, ShadowPrices, SolveReport, SolveStatus};
use crate::candidates::{Candidates, Network};
use crate::exact::{objective_without_offers, offers_gap, relative_gap};
use crate::families::{no_extra, CustomLimitMode, ExtraFamilies};
use crate::contact_policy::CustomerRows;
use crate::model::Problem;
use context::Context;
use customers::{CustomerSide, LocalCustomers, MapReply, MapRequest, Mix, OwnedPartition};
use kernel::CellPrices;

/// Knobs of the decomposed solver.
#[derive(Debug, Clone, PartialEq)]
pub struct DecomposedOptions {
    /// Stop once the certified gap on the offers' value
    /// ([`crate::exact::offers_gap`]) is at most this.
    pub gap: f64,
    /// Wall-clock limit in seconds; the best certified plan so far is returned.
    pub time_limit: Option<f64>,
    /// Limit on dual iterations (per phase for a MIP: the relaxation's and each choice's).
    pub max_iterations: usize,
    /// Worker threads; `None` uses rayon's default (all cores).
    pub threads: Option<usize>,
    /// Print progress (iteration, bound, plan objective, gap) to stderr.
    pub verbose: bool,
    /// Start from an earlier plan's prices instead of a sample's.
    pub warm: Option<std::sync::Arc<WarmStart>>,
}

impl Default for DecomposedOptions {
    fn default() -> Self {
        DecomposedOptions { gap: 1e-3, time_limit: None, max_iterations: 1000, threads: None, verbose: false, warm: None }
    }
}

impl DecomposedOptions {
    /// The plan version the warm start came from (none for a cold start).
    pub fn warm_source(&self) -> Option<&str> {
        self.warm.as_ref().and_then(|w| w.source.as_deref())
    }
}

/// Splits the customers into `n` partitions by `partition_of(customer)` (for
/// workers that each hold one; see [`customers::PartitionWorker`]).
pub fn partitions(problem: &Problem, cands: &Candidates, n: usize, partition_of: impl Fn(usize) -> usize) -> Vec<OwnedPartition> {
    let attrs = CustomerAttributes::new(problem, cands);
    OwnedPartition::split(&attrs.input(problem, cands), n, partition_of)
}

/// The outcome of one decomposition run (one phase).
struct Phase {
    /// The prices of the best bound. Why these and not where the ascent
    /// stopped: with the long step the last prices can be far from the
    /// best dual; a re-plan started from them (the plan's shadow prices)
    /// would begin with a worse certificate than the plan had.
    nu: Vec<f64>,
    best_bound: f64,
    plan: repair::Repaired,
    iterations: usize,
    epsilon: f64,
    status: SolveStatus,
}

/// Continuation: the ridge starts at `EPSILON_START` of each value (or
/// `EPSILON_WARM` after a warm start) and shrinks by `EPSILON_SHRINK` after every
/// window of [`window_length`] iterations, down to `EPSILON_MIN`. Each window ends with a
/// repair of the window's averaged response.
const EPSILON_START: f64 = 0.5;
const EPSILON_WARM: f64 = 0.005;
const EPSILON_SHRINK: f64 = 0.5;
const EPSILON_MIN: f64 = 2e-3;
const WINDOW: usize = 40;
/// The shortest window, however many candidate pairs.
const MIN_WINDOW: usize = 5;
/// Candidate-pair evaluations a window may spend: [`WINDOW`] iterations up
/// to 1.5M pairs, fewer above (at least [`MIN_WINDOW`]).
const WINDOW_PAIR_BUDGET: usize = 60_000_000;

/// Iterations in a window over `pairs` candidate pairs. Why fewer at scale:
/// an iteration costs time in proportion to the pairs, while the repair
/// that ends a window is an LP over cells, about as long at every size (3
/// to 5 s at `allot bench`'s settings). At 1M customers (6.3M pairs) 40
/// iterations cost as much as a repair and bought the repair little: the
/// second window's plan was 7.2537e6 after 40 iterations, 7.2534e6 after
/// 10 and after 5, each certified within 1e-3 with the same escalated
/// bound, and the solve took 13.6-14.0 s instead of 17.0 s. At 100,000
/// customers (630,000 pairs) iterations are cheap and 40 gave the better
/// plan (the repair after 10 missed the target, and escalation cost 3 s).
fn window_length(pairs: usize) -> usize {
    (WINDOW_PAIR_BUDGET / pairs.max(1)).clamp(MIN_WINDOW, WINDOW)
}
/// A first repair that leaves more than this multiple of the target, with
/// a window shorter than [`WINDOW`] to follow, has the next escalated
/// sample solved ahead ([`sample::Escalation::solve_ahead`]). Why both:
/// in four of five runs measured the window's repair narrowed the gap by
/// 20-40% at the first samples' bound (`allot generate`'s LP: 1.53e-3 to
/// 1.22e-3 at 1M customers, 2.12e-3 to 1.40e-3 at 10M, 1.01e-3 to 7.8e-4
/// at 300,000, 1.51e-3 to 9.0e-4 with a full window at 100,000), so a gap
/// that close is often closed without escalating (not always: after a
/// large stock receipt at 1M, 1.14e-3 narrowed by 2% and the run
/// escalated without the sample solved ahead), and a sample solved then for
/// nothing shares the cores with the window: 300,000 customers took 7.0-7.6
/// s against 5.4 s when it was solved from every first repair, 100,000
/// customers 1.4 s more. Started after the first repair, not beside it:
/// at 1M customers beside it was faster still (0.78 of the solve against
/// 0.91), but where that repair certifies (a demand shock solved cold) the
/// sample took the cores from its hull LPs for nothing (0.5-0.9 s more).
const AHEAD_GAP: f64 = 1.25;

/// Consecutive windows without progress after which a run stops as stalled:
/// a window progresses when it lowers the certified gap by `STALL_PROGRESS`
/// of itself. Several, because the mixed repair keeps improving the plan
/// over windows whose first repair gained little.
const STALL_WINDOWS: usize = 3;
const STALL_PROGRESS: f64 = 0.01;

/// The ascent's step as a multiple of the preconditioner's safe step
/// `1 / L_i`. Why longer than safe: the Schur-type bound `L` (see the module
/// docs) counts every candidate of a row as responding to its price, while at
/// a small ridge only the marginal ones do. Measured (30,000 customers, the
/// secant curvature between consecutive evaluations in the preconditioner's
/// metric): the curvature along the path is 1/35 to 1/1.5 of the bound, and
/// the safe step left the prices where the sample put them (the repairs of
/// 40 iterations later gave the same plan). Of 1, 10, 30, 100, 300 and 1000,
/// 30 reached the target on the most generated families; 300 and more
/// diverge. Momentum restarts (below) catch an overshoot.
const LONG_STEP: f64 = 30.0;

/// A first repair with no kept plan, followed by a full window
/// ([`WINDOW`] iterations), runs its hull LPs only when the best response
/// alone is within this much of the target gap on the offers' value (see
/// [`repair::repair`]). Why: the hull improved a first repair's gap over the
/// best response alone by 0.6e-4 to 1.8e-4 (`allot bench`'s scenario at
/// 100,000 and 1,000,000 customers, with a demand shock and with a
/// receipt), so beyond this it cannot certify; at 100,000 customers
/// skipping it saved a third of the solve (the plan after the window's 40
/// iterations certified in one hull). Not with shorter windows: at 1M
/// customers (9 iterations) the plan after the window and an escalated
/// sample was worse without the first hull's plan to mix with (8.4e-4
/// against 7.9e-4 of the offers' value), and the `no-budget` family and
/// the MIP took 7-9 s longer. Never when the problem was its own sample
/// (`Context::sample_is_whole`): the start's prices are then the
/// optimal ones, the windows only move away from them, and the first
/// hull is the best repair the run will see (`allot generate`'s `no-budget`
/// family, 8,000 customers, 40 offers, 300 SKUs, 20 zones, seed 43: the
/// response alone 4.0e-3 short, the hull 6.4e-4, in 3.3 s; skipped, the
/// run stalled at 2.0e-3 after 201 iterations and 40 s).
const HULL_REACH: f64 = 3e-4;

/// Dual ascent from `start_nu` until the gap on the offers' value (measured
/// against `without`, the optimum with no offers) reaches the target, the run
/// stalls, or a limit is hit. Each repair may mix in the best plan so far
/// (the exposures the customers' side keeps; see `repair`). A window that
/// ends short of the target without lowering the bound escalates to a larger
/// sample ([`sample::Escalation`]): when its prices certify a lower bound, the
/// ascent restarts from them (the plan so far is kept). With `incumbent`
/// (the objective of a plan found elsewhere) it also stops, `within_gap`,
/// once a plan is repaired and its bound is within the target above that
/// plan: it can no longer beat it by more (its plan, if better, is then
/// within the target of its own bound).
#[allow(clippy::too_many_arguments)]
fn run_phase(
    ctx: &Context,
    side: &mut dyn CustomerSide,
    start_nu: Option<Vec<f64>>,
    start_epsilon: f64,
    opts: &DecomposedOptions,
    started: Instant,
    without: f64,
    escalation: &mut sample::Escalation,
    incumbent: Option<f64>,
) -> Result<Phase, DecomposedError> {
    let n = ctx.layout.total();
    let window = window_length(ctx.cands.len());
    let mut nu = start_nu.unwrap_or_else(|| vec![0.0; n]);
    nu.resize(n, 0.0);
    // A soft row's multiplier stays at or below its penalty (see `families::rules`).
    let cap = ctx.layout.price_caps();
    within_caps(&mut nu, &cap);
    let mut prev = nu.clone();
    let mut y = nu.clone();
    let mut t = 1.0_f64;
    let mut epsilon = start_epsilon;
    let mut best_bound = f64::INFINITY;
    let mut best_nu = nu.clone();
    // The best repaired plan; its exposures are kept by the customers' side.
    let mut best: Option<repair::Repaired> = None;
    let mut iterations = 0;
    let status;
    let out_of_time = || opts.time_limit.is_some_and(|t| started.elapsed().as_secs_f64() >= t);
    let beaten = |bound: f64| incumbent.is_some_and(|plan| offers_gap(plan, bound, without) <= opts.gap);
    // Primal recovery: a running average of the responses within the window, with
    // weights growing linearly so that early iterates fade.
    let mut in_window = 0usize;
    let mut window_start = 0usize;
    let (mut last_gap, mut stalled_windows) = (f64::INFINITY, 0);
    // For the progress lines: where the window's prices started.
    let mut window_nu = nu.clone();
    // The best bound when the window began (escalation looks at its progress).
    let mut window_bound = f64::INFINITY;
    // The last escalated sample's prices (a second one of its size is averaged with them).
    let mut escalated: Option<Vec<f64>> = None;
    loop {
        in_window += 1;
        let mix = 2.0 / (in_window as f64 + 1.0);
        let eval = ctx.evaluate(side, &y, epsilon, Some(mix))?;
        if eval.bound < best_bound {
            best_bound = eval.bound;
            best_nu.clone_from(&y);
        }
        if best.is_some() && beaten(best_bound) {
            status = SolveStatus::WithinGap;
            break;
        }
        // The first step is the safe one: the first repair is then at about the
        // start's prices (a warm re-plan certifies the earlier plan there).
        let step = if iterations == 0 { 1.0 } else { LONG_STEP };
        let mut next = vec![0.0; n];
        let mut uphill = 0.0;
        for i in 0..n {
            let l = ctx.curvature[i] / epsilon / step;
            // A row with no variables keeps its price at 0.
            next[i] = if l > 0.0 { (y[i] - eval.slack[i] / l).clamp(0.0, cap[i]) } else { 0.0 };
            uphill += eval.slack[i] * (next[i] - nu[i]);
        }
        iterations += 1;
        // Adaptive restart: momentum that increases the dual is dropped.
        if uphill < 0.0 {
            t = 1.0;
        }
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = (t - 1.0) / t_next;
        std::mem::swap(&mut prev, &mut nu);
        nu = next;
        for i in 0..n {
            y[i] = (nu[i] + beta * (nu[i] - prev[i])).clamp(0.0, cap[i]);
        }
        t = t_next;
        let last = iterations >= opts.max_iterations || out_of_time();
        // The first repair comes after one iteration (a warm start is often already
        // within reach of the target); later ones at the end of each window.
        if iterations > 1 && iterations - window_start < window && !last {
            continue;
        }
        // At a first repair with a full window to follow: the plan's
        // objective below which the hull cannot certify.
        let screen = iterations == 1 && !last && window == WINDOW && !ctx.sample_is_whole;
        let hull_from = screen.then(|| best_bound - (opts.gap + HULL_REACH) * (best_bound - without).abs().max(1.0));
        // A first repair with a short window to follow (at scale) solves one
        // margin's hull (see `repair::repair`), and may have the next sample
        // solved ahead (below).
        let first_at_scale = iterations == 1 && !last && window < WINDOW;
        // The plan objective from which the target is certified at the bound so far.
        let certifies_from = best_bound - opts.gap * (best_bound - without).abs().max(1.0);
        if let Some((plan, mix)) = repair::repair(ctx, side, &nu, epsilon, hull_from, first_at_scale, certifies_from)? {
            if best.as_ref().is_none_or(|b| plan.objective > b.objective) {
                keep(side, mix)?;
                best = Some(plan);
            }
        }
        let best_obj = best.as_ref().map_or(f64::NEG_INFINITY, |b| b.objective);
        let mut gap = offers_gap(best_obj, best_bound.max(best_obj), without);
        // A first repair far short of the target, with a short window to
        // follow (at scale), is followed by an escalation one window later
        // unless the window lowers the bound: the next sample is solved from
        // now on, beside the window's iterations and in the core its
        // repair's hull LPs leave idle (see `AHEAD_GAP`); not when the solve
        // was given one thread (`--threads 1`).
        let second_core = opts.threads.is_none_or(|threads| threads > 1);
        if first_at_scale && gap > AHEAD_GAP * opts.gap && second_core {
            escalation.solve_ahead(ctx.problem, &ctx.closed);
        }
        let bound_held = best_bound >= window_bound - STALL_PROGRESS * (window_bound - best_obj).abs();
        // Not once the time limit has passed (during the repair, say): a
        // sample started then ran seconds past it.
        let escalate = gap > opts.gap && !last && !out_of_time() && iterations > 1 && bound_held && best_obj.is_finite() && !beaten(best_bound);
        if let Some((sample, start, bound)) = if escalate { escalated_start(ctx, side, escalation, &mut escalated, &cap, epsilon)? } else { None } {
            if opts.verbose {
                let kind = if sample.repeat { "a second sample" } else { "sample" };
                let ahead = if sample.solved_ahead { " (solved ahead)" } else { "" };
                eprintln!("decomposed: {kind} of {} customers{ahead}: bound {bound:.6e} (best {best_bound:.6e})  {:.2}s", sample.customers, started.elapsed().as_secs_f64());
            }
            if bound < best_bound {
                best_bound = bound;
                best_nu.clone_from(&start);
                gap = offers_gap(best_obj, best_bound.max(best_obj), without);
                // The ascent restarts there: momentum and average too.
                prev.clone_from(&start);
                y.clone_from(&start);
                nu = start;
                t = 1.0;
                in_window = 0;
                stalled_windows = 0;
                last_gap = f64::INFINITY;
            }
        }
        window_bound = best_bound;
        window_start = iterations;
        if opts.verbose {
            // This evaluation's own bound, how far the smoothed response breaks
            // its rows (their total excess) and how far the prices moved.
            let (last_bound, violation) = (eval.bound, eval.slack.iter().map(|s| (-s).max(0.0)).sum::<f64>());
            let moved = nu.iter().zip(&window_nu).map(|(a, b)| (a - b).abs()).sum::<f64>() / window_nu.iter().map(|v| v.abs()).sum::<f64>().max(1e-12);
            eprintln!(
                "decomposed: iteration {iterations:5}  epsilon {epsilon:.1e}  bound {best_bound:.6e} (last {last_bound:.6e})  plan {best_obj:.6e}  gap {gap:.2e}  violation {violation:.3e}  prices moved {moved:.2e}  {:.2}s",
                started.elapsed().as_secs_f64()
            );
            window_nu.clone_from(&nu);
        }
        if gap <= opts.gap || (best.is_some() && beaten(best_bound)) {
            status = SolveStatus::WithinGap;
            break;
        }
        // The time limit passed during this repair: the plan stands (one more
        // iteration would end in another repair, seconds at scale).
        let timed_out = out_of_time();
        if last || timed_out {
            status = if timed_out { SolveStatus::TimeLimit } else { SolveStatus::IterationLimit };
            break;
        }
        // Stall: only when the certified gap stops moving for several windows.
        if gap > last_gap * (1.0 - STALL_PROGRESS) {
            stalled_windows += 1;
            if stalled_windows >= STALL_WINDOWS {
                status = SolveStatus::Stalled;
                break;
            }
        } else {
            stalled_windows = 0;
        }
        last_gap = gap;
        // Next window: a smaller ridge with momentum and average restarted; once the
        // ridge is at its floor, the average keeps growing (primal recovery
        // converges with the number of iterates averaged).
        if epsilon > EPSILON_MIN {
            in_window = 0;
            window_start = iterations;
            epsilon = (epsilon * EPSILON_SHRINK).max(EPSILON_MIN);
            t = 1.0;
            y.clone_from(&nu);
        }
    }
    let plan = best.ok_or(DecomposedError::HardMinimumsUnmet)?;
    Ok(Phase { nu: best_nu, best_bound, plan, iterations, epsilon, status })
}

/// Caps every multiplier at its row's price cap (a soft row's penalty).
fn within_caps(nu: &mut [f64], cap: &[f64]) {
    for (v, c) in nu.iter_mut().zip(cap) {
        *v = v.min(*c);
    }
}

/// The next escalated sample, its prices within their caps and their dual
/// bound; `None` once no further sample is solved. A second sample of the
/// same size gives the better of its own prices and the mean with the last
/// escalated sample's (`escalated`, which this updates).
fn escalated_start(
    ctx: &Context,
    side: &mut dyn CustomerSide,
    escalation: &mut sample::Escalation,
    escalated: &mut Option<Vec<f64>>,
    cap: &[f64],
    epsilon: f64,
) -> Result<Option<(sample::EscalatedSample, Vec<f64>, f64)>, DecomposedError> {
    let Some((sample, prices)) = escalation.next(ctx.problem, &ctx.closed) else { return Ok(None) };
    let mut start = ctx.multipliers_from(&prices);
    within_caps(&mut start, cap);
    let mut bound = ctx.evaluate(side, &start, epsilon, None)?.bound;
    if let Some(last) = escalated.as_ref().filter(|_| sample.repeat) {
        let mean: Vec<f64> = start.iter().zip(last).map(|(a, b)| 0.5 * (a + b)).collect();
        let mean_bound = ctx.evaluate(side, &mean, epsilon, None)?.bound;
        if mean_bound < bound {
            (start, bound) = (mean, mean_bound);
        }
    }
    *escalated = Some(start.clone());
    Ok(Some((sample, start, bound)))
}

/// Solves the spec's model by dual decomposition; see the module docs. The
/// customers are held in this process and priced by rayon.
pub fn solve(problem: &Problem, network: &Network, cands: &Candidates, opts: &DecomposedOptions) -> Result<Allocation, DecomposedError> {
    solve_with_families(problem, network, cands, opts, &no_extra)
}

/// [`solve`] with coupling families beyond the standard ones.
pub fn solve_with_families(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    opts: &DecomposedOptions,
    extra: &ExtraFamilies,
) -> Result<Allocation, DecomposedError> {
    let in_pool = || {
        let attrs = CustomerAttributes::new(problem, cands);
        let mut side = LocalCustomers::new(attrs.input(problem, cands));
        solve_driver(problem, network, cands, &attrs, opts, &mut side, extra)
    };
    match opts.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| DecomposedError::Threads(n, e.to_string()))?
            .install(in_pool),
        None => in_pool(),
    }
}

/// Every candidate pair's reduced value at `prices` (a relaxation's shadow
/// prices, as [`solve`] returns them, with the offers `open` it leaves
/// open), in pair order: its value less what its acceptances and exposure
/// cost at those prices and less its customer's contact-cap price (the
/// prices of the customer's policy rows left out); a closed offer's pairs
/// `-inf`. Why: an all-or-nothing plan fills what rounding the relaxation
/// leaves of a binding limit with pairs the relaxation did not use, and
/// the ones it can use at the least loss are those whose reduced value is
/// nearest zero from below (see `with_support_mip` in the crate root).
pub fn reduced_values_at(problem: &Problem, network: &Network, cands: &Candidates, prices: &ShadowPrices, open: &[bool]) -> Vec<f64> {
    let attrs = CustomerAttributes::new(problem, cands);
    // The relaxation's prices are an LP's over the open offers (the branch's
    // choice, when there is a custom-offer limit): no row of the limit.
    let closed = open.iter().map(|&open| !open).collect();
    let ctx = Context::new(problem, network, cands, &attrs, CustomLimitMode::Off, closed, &no_extra);
    let cell_prices = ctx.cell_prices(&ctx.multipliers_from(prices), 1.0);
    let input = attrs.input(problem, cands);
    let (mut reduced, mut inv_gamma, mut all) = (Vec::new(), Vec::new(), Vec::with_capacity(cands.len()));
    for c in 0..problem.customers.len() {
        kernel::reduced_values(&input, &cell_prices, c, &mut reduced, &mut inv_gamma);
        let cap_price = prices.contact_cap.get(c).copied().unwrap_or(0.0);
        all.extend(reduced.iter().map(|r| r - cap_price));
    }
    all
}

/// Solves by dual decomposition with the customers held by `side` (in this
/// process or by remote workers): the driver (multipliers, network side, repair
/// LP, the branch over custom offers) is the same code either way.
pub fn solve_with(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    opts: &DecomposedOptions,
    side: &mut dyn CustomerSide,
) -> Result<Allocation, DecomposedError> {
    solve_driver(problem, network, cands, &CustomerAttributes::new(problem, cands), opts, side, &no_extra)
}

/// The driver, with the customers' attributes computed once by the caller.
fn solve_driver(
    problem: &Problem,
    network: &Network,
    cands: &Candidates,
    attrs: &CustomerAttributes,
    opts: &DecomposedOptions,
    side: &mut dyn CustomerSide,
    extra: &ExtraFamilies,
) -> Result<Allocation, DecomposedError> {
    let started = Instant::now();
    let without = objective_without_offers(problem, network)?;
    let n_o = problem.offers.len();
    let mip = problem.has_custom_limit();
    let mode = if mip { CustomLimitMode::Relaxed } else { CustomLimitMode::Off };
    let ctx = Context::new(problem, network, cands, attrs, mode, vec![false; n_o], extra);
    let build_seconds = started.elapsed().as_secs_f64();
    let warm_from = opts.warm_source();
    let run = Run { problem, network, cands, attrs, extra, started, without, build_seconds, warm_from };
    // A warm re-plan: the earlier plan's exposures seed the kept plan, which,
    // scaled to the changed limits, is the plan when the earlier prices
    // certify it within the earlier plan's gap (or the target). Else, when
    // it came near ([`NEAR_EARLIER_PLAN`]), one iteration and a repair at the
    // earlier prices, and that plan when it certifies; otherwise the ascent
    // goes on from the best start of those prices, the samples' and their
    // mean (as a cold start), keeping the bound it found; far from the
    // earlier plan, that plan is let go.
    let mut warm_tried: Option<Phase> = None;
    let mut warm_prices: Option<Vec<f64>> = None;
    let requested_gap = opts.gap;
    let warm_opts;
    let opts = match &opts.warm {
        Some(warm) => {
            warm_opts = DecomposedOptions { gap: opts.gap.max(warm.offers_gap), ..opts.clone() };
            &warm_opts
        }
        None => opts,
    };
    if let Some(warm) = &opts.warm {
        let nu = ctx.layout.prices_from_keyed(problem, &warm.prices);
        if opts.verbose {
            let keyed: usize = warm.prices.values().map(|rows| rows.len()).sum();
            let matched = nu.iter().filter(|&&v| v > 0.0).count();
            eprintln!("decomposed: warm start from an earlier plan ({matched} of {keyed} priced rows matched, its offers gap {:.2e})", warm.offers_gap);
        }
        if let Some(exposures) = &warm.exposures {
            if MapReply::merge(side.map(&MapRequest::Seed(exposures.seed(problem)))?)? != MapReply::Kept {
                return Err(DecomposedError::Workers("a partition did not take the earlier plan's exposures".into()));
            }
        }
        let earlier_open = warm.open_offers(problem).filter(|_| mip);
        // A MIP with the earlier choice: the relaxation's bound at the earlier prices bounds it.
        let relaxation_bound = if earlier_open.is_some() { ctx.evaluate(side, &nu, EPSILON_WARM, None)?.bound } else { f64::INFINITY };
        // How far the earlier plan, scaled, is from its bound at the earlier
        // prices (unknown without its exposures).
        let mut earlier_gap = 0.0;
        if warm.exposures.is_some() {
            match earlier_plan_certified(&run, opts, side, &ctx, &nu, earlier_open.as_deref(), relaxation_bound)? {
                EarlierPlan::Certified(alloc) => return Ok(matched_earlier(*alloc, requested_gap)),
                EarlierPlan::Short(gap) => earlier_gap = gap,
            }
        }
        let near = earlier_gap <= NEAR_EARLIER_PLAN * opts.gap;
        let one_iteration = DecomposedOptions { max_iterations: 1, ..opts.clone() };
        if let Some(open) = earlier_open {
            // A MIP whose earlier open offers still keep the limit: the phase
            // with those offers fixed starts at once, and when it is within
            // reach, the other choices' bounds certify it as the MIP's plan
            // (the relaxation's dual function at the earlier prices bounds
            // it too). Else the branch starts from that choice, the
            // relaxation's phase skipped (the earlier choice stands for its
            // ranking).
            let mut tried = 0;
            if near {
                // A repair that cannot keep a hard minimum leaves the choice
                // to the branch.
                let tried_phase = match restricted_phase(&run, &one_iteration, side, &ctx, &nu, EPSILON_WARM, &open, false, None) {
                    Ok(tried_phase) => Some(tried_phase),
                    Err(DecomposedError::HardMinimumsUnmet) => None,
                    Err(e) => return Err(e),
                };
                tried = tried_phase.as_ref().map_or(0, |(_, phase)| phase.iterations);
                if let Some((mut restricted, phase)) = tried_phase.filter(|(_, phase)| phase.status == SolveStatus::WithinGap) {
                    let bound = mip_bound(&run, opts, side, &mut restricted, SolvedChoice { nu: &phase.nu, bound: phase.best_bound, plan: phase.plan.objective }, relaxation_bound)?;
                    let (status, iterations) = (phase.status, phase.iterations);
                    let alloc = certified(&run, gather(&run, side, &restricted, phase, open.clone(), iterations)?, bound, status, opts.gap, iterations);
                    if alloc.report.offers_gap <= opts.gap {
                        return Ok(matched_earlier(alloc, requested_gap));
                    }
                }
            }
            let start = ChoiceStart { nu: &nu, epsilon: EPSILON_WARM, relaxation_bound, iterations: tried };
            return Ok(matched_earlier(branch_from_choice(&run, opts, side, &ctx, start, open)?, requested_gap));
        }
        if !near {
            // The earlier prices are far from the changed problem's: they
            // compete with the samples' (and their mean) as a start, no
            // iteration of their own, and the earlier plan is let go, so the
            // run takes the cold one's path unless those prices bound lower
            // (it still stops at the earlier plan's gap when that is looser
            // than the target). Why let go: kept, it was a third response in
            // every hull LP; after a receipt as large as the stock of the row
            // priced highest (1M customers) the first repair took 5.2 s where
            // the cold run's took 3.2 s, for a worse plan, and the re-plan
            // 1.08-1.38 times the cold one (1.03-1.19 since; let go without
            // the mean as a start, the first plan was worse still). A MIP
            // comes here only when its earlier choice of open offers no
            // longer keeps the limit (or there was none): the seeded plan,
            // which may break the limit, then stays out of the relaxation's
            // repairs too.
            keep(side, Mix::default())?;
            warm_prices = Some(nu);
        } else {
            match run_phase(&ctx, side, Some(nu.clone()), EPSILON_WARM, &one_iteration, started, without, &mut sample::Escalation::none(), None) {
                Ok(phase) if phase.status == SolveStatus::WithinGap => {
                    let alloc = finish_driver(&run, opts, side, ctx, phase)?;
                    return Ok(matched_earlier(alloc, requested_gap));
                }
                Ok(phase) => {
                    warm_prices = Some(phase.nu.clone());
                    warm_tried = Some(phase);
                }
                // Its repair could not keep a hard minimum: the prices
                // start the cold path instead.
                Err(DecomposedError::HardMinimumsUnmet) => warm_prices = Some(nu),
                Err(e) => return Err(e),
            }
        }
    }
    let samples: Vec<Vec<f64>> = sample::sample_prices(problem, &ctx.closed).iter().map(|p| ctx.multipliers_from(p)).collect();
    // The starts: the earlier plan's prices (after their iteration, when
    // they had one) on a warm re-plan, the samples' mean when there are
    // several, then each sample's.
    let warm = lowest_bound_start(&ctx, side, starts_with_samples(warm_prices, &samples))?;
    let start_epsilon = if warm.is_some() { EPSILON_WARM } else { EPSILON_START };
    if opts.verbose {
        eprintln!("decomposed: warm start from {} samples at {:.2}s", samples.len(), started.elapsed().as_secs_f64());
    }
    // Escalation starts from the first samples' size (none when no sample solved).
    let mut escalation = if samples.is_empty() { sample::Escalation::none() } else { sample::Escalation::new(problem.customers.len()) };
    let relaxation_opts;
    let first_opts = if mip && custom_choices_counted(problem) {
        relaxation_opts = DecomposedOptions { gap: opts.gap * RELAXATION_GAP_FACTOR, ..opts.clone() };
        &relaxation_opts
    } else {
        opts
    };
    let mut phase = run_phase(&ctx, side, warm, start_epsilon, first_opts, started, without, &mut escalation, None)?;
    // A sample solved ahead and never asked for stops now, not after the plan is gathered.
    drop(escalation);
    if opts.warm.is_none() {
        return finish_driver(&run, opts, side, ctx, phase);
    }
    if let Some(tried) = warm_tried {
        // Its bound is as valid as any (the plan it repaired was not kept).
        phase.best_bound = phase.best_bound.min(tried.best_bound);
        phase.iterations += tried.iterations;
    }
    let alloc = finish_driver(&run, opts, side, ctx, phase)?;
    Ok(matched_earlier(alloc, requested_gap))
}

/// What [`earlier_plan_certified`] found.
enum EarlierPlan {
    /// The earlier plan, scaled, certified within the target.
    Certified(Box<Allocation>),
    /// Not within the target: the gap it certifies (infinite when it was
    /// not tried or no scaling keeps the hard limits).
    Short(f64),
}

/// A warm re-plan whose earlier plan, scaled to the changed limits,
/// certifies at most this multiple of the target at the earlier prices
/// spends an iteration and a repair there before the samples are solved;
/// beyond it the earlier prices only compete with the samples' as a start,
/// and the earlier plan is not kept.
/// Why: near the target, a repair that mixes new responses in usually
/// closes the rest (1M customers, 5% demand shock: 1.3e-3 at the earlier
/// prices, 9.1e-4 after their repair); far from it (a receipt as large as
/// the stock of the row priced highest: 1.0e-2) the earlier prices price
/// the changed rows wrongly, and their repair is seconds spent before the
/// samples' prices take over.
const NEAR_EARLIER_PLAN: f64 = 2.0;

/// Has the customers' side keep `mix` of its responses as its plan.
fn keep(side: &mut dyn CustomerSide, mix: Mix) -> Result<(), DecomposedError> {
    if MapReply::merge(side.map(&MapRequest::Keep(mix))?)? != MapReply::Kept {
        return Err(DecomposedError::Workers("a partition did not keep the plan it was sent".into()));
    }
    Ok(())
}

/// The cheapest warm re-plan: the earlier plan itself (the kept plan the
/// warm start seeded), scaled per repair cell to the changed limits by one
/// small LP ([`repair::repair_kept`]), certified by the dual bound at the
/// earlier prices `nu` (of `ctx`'s layout). A MIP whose earlier choice of
/// custom offers `open` still keeps the limit is bounded as the branch
/// bounds it ([`mip_bound`]; `relaxation_bound` is the relaxation's at
/// `nu`). Why first: after a small change this often
/// certifies the target at the cost of a few passes over the customers and
/// an LP of a fraction of a second, where an iteration's repair mixes three
/// responses in LPs of seconds at scale. Short of the target (the kept plan
/// is then left as seeded) it says by how much; infinitely short when a
/// MIP's earlier choice breaks the limit or no scaling keeps the hard limits.
#[allow(clippy::too_many_arguments)]
fn earlier_plan_certified(
    run: &Run,
    opts: &DecomposedOptions,
    side: &mut dyn CustomerSide,
    ctx: &Context,
    nu: &[f64],
    open: Option<&[bool]>,
    relaxation_bound: f64,
) -> Result<EarlierPlan, DecomposedError> {
    let problem = run.problem;
    // A MIP's fixed problem: the earlier choice's offers open.
    let mut restricted = match open {
        Some(open) => Some(Context::new(problem, run.network, run.cands, run.attrs, CustomLimitMode::Off, open.iter().map(|o| !o).collect(), run.extra)),
        None if problem.has_custom_limit() => return Ok(EarlierPlan::Short(f64::INFINITY)),
        None => None,
    };
    let nu_final = restricted.as_ref().map_or_else(|| nu.to_vec(), |r| r.layout.carry(&ctx.layout, nu));
    let own = restricted.as_ref().unwrap_or(ctx).evaluate(side, &nu_final, EPSILON_WARM, None)?.bound;
    let Some((plan, mix)) = repair::repair_kept(restricted.as_ref().unwrap_or(ctx), side, &nu_final, EPSILON_WARM)? else { return Ok(EarlierPlan::Short(f64::INFINITY)) };
    let gap = |bound: f64| offers_gap(plan.objective, bound.max(plan.objective), run.without);
    if opts.verbose {
        eprintln!("decomposed: the earlier plan scaled to the changed limits: {:.6e}, bound {own:.6e} at its prices  {:.2}s", plan.objective, run.started.elapsed().as_secs_f64());
    }
    if gap(own) > opts.gap {
        return Ok(EarlierPlan::Short(gap(own)));
    }
    let mut bound = own;
    if let Some(restricted) = restricted.as_mut() {
        bound = mip_bound(run, opts, side, restricted, SolvedChoice { nu: &nu_final, bound: own, plan: plan.objective }, relaxation_bound)?;
        if gap(bound) > opts.gap {
            return Ok(EarlierPlan::Short(gap(bound)));
        }
    }
    keep(side, mix)?;
    let phase = Phase { nu: nu_final, best_bound: bound, plan, iterations: 1, epsilon: EPSILON_WARM, status: SolveStatus::WithinGap };
    let offer_open = open.map_or_else(|| vec![true; problem.offers.len()], <[bool]>::to_vec);
    let alloc = certified(run, gather(run, side, restricted.as_ref().unwrap_or(ctx), phase, offer_open, 1)?, bound, SolveStatus::WithinGap, opts.gap, 1);
    // The gathered plan's objective is the spec's, recomputed: it decides.
    if alloc.report.offers_gap > opts.gap {
        return Ok(EarlierPlan::Short(alloc.report.offers_gap));
    }
    Ok(EarlierPlan::Certified(Box::new(alloc)))
}

/// The samples' mean when there are several (a start of its own).
fn mean_of_several(samples: &[Vec<f64>]) -> Option<Vec<f64>> {
    let first = samples.first().filter(|_| samples.len() > 1)?;
    let mut mean = vec![0.0; first.len()];
    for nu in samples {
        for (m, v) in mean.iter_mut().zip(nu) {
            *m += v / samples.len() as f64;
        }
    }
    Some(mean)
}

/// The starts an ascent chooses from: `first` (prices carried from an
/// earlier plan or phase), the samples' mean when there are several, then
/// each sample's.
fn starts_with_samples(first: Option<Vec<f64>>, samples: &[Vec<f64>]) -> Vec<Vec<f64>> {
    first.into_iter().chain(mean_of_several(samples)).chain(samples.iter().cloned()).collect()
}

/// Of several starts, the one with the lowest dual bound (the certificate
/// itself decides; the first wins a tie); a single start is taken as it is.
fn lowest_bound_start(ctx: &Context, side: &mut dyn CustomerSide, mut starts: Vec<Vec<f64>>) -> Result<Option<Vec<f64>>, DecomposedError> {
    if starts.len() <= 1 {
        return Ok(starts.pop());
    }
    Ok(lowest_bound(ctx, side, starts)?.map(|(_, nu)| nu))
}

/// The lowest dual bound of `starts` (each evaluated), with its prices.
fn lowest_bound(ctx: &Context, side: &mut dyn CustomerSide, starts: Vec<Vec<f64>>) -> Result<Option<(f64, Vec<f64>)>, DecomposedError> {
    let mut scored = Vec::with_capacity(starts.len());
    for nu in starts {
        scored.push((ctx.evaluate(side, &nu, EPSILON_WARM, None)?.bound, nu));
    }
    Ok(scored.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)))
}

/// A warm re-plan that stopped at the earlier plan's gap, looser than the
/// requested one, says so rather than `within_gap`.
fn matched_earlier(mut alloc: Allocation, requested_gap: f64) -> Allocation {
    if alloc.report.status == SolveStatus::WithinGap && alloc.report.offers_gap > requested_gap {
        alloc.report.status = SolveStatus::MatchedEarlierPlan;
    }
    alloc
}

/// What every step of one solve reads: the problem and its candidates, the
/// optimum without offers (the zero of the offers' gap) and the clock.
struct Run<'a> {
    problem: &'a Problem,
    network: &'a Network,
    cands: &'a Candidates,
    attrs: &'a CustomerAttributes,
    extra: &'a ExtraFamilies,
    started: Instant,
    without: f64,
    build_seconds: f64,
    /// The version a warm start came from, for the report.
    warm_from: Option<&'a str>,
}

/// After the first phase: for a MIP, the branch over the custom offers'
/// choices ([`branch_on_custom_offers`]); else the plan gathered from the
/// customers' side.
fn finish_driver(run: &Run, opts: &DecomposedOptions, side: &mut dyn CustomerSide, ctx: Context, phase: Phase) -> Result<Allocation, DecomposedError> {
    if run.problem.has_custom_limit() {
        return branch_on_custom_offers(run, opts, side, &ctx, phase);
    }
    let iterations = phase.iterations;
    gather(run, side, &ctx, phase, vec![true; run.problem.offers.len()], iterations)
}

/// The custom-offer limit (the MIP), after the relaxation's phase: its
/// optimum is the best of the fixed problems, one per choice of open custom
/// offers. The relaxation's prices rank the offers, the `K` with the largest
/// net value are opened, and [`branch_from_choice`] goes on from there.
fn branch_on_custom_offers(run: &Run, opts: &DecomposedOptions, side: &mut dyn CustomerSide, relaxed: &Context, relaxation: Phase) -> Result<Allocation, DecomposedError> {
    let problem = run.problem;
    let n_o = problem.offers.len();
    let limit = problem.policy.max_custom_offers.unwrap_or(0) as usize;
    let net = custom_offer_values(side, relaxed.cell_prices(&relaxation.nu, relaxation.epsilon), n_o)?;
    let mut custom: Vec<usize> = (0..n_o).filter(|&o| problem.offers[o].custom).collect();
    custom.sort_by(|&a, &b| net[b].total_cmp(&net[a]).then(a.cmp(&b)));
    let mut offer_open = vec![true; n_o];
    for (rank, &o) in custom.iter().enumerate() {
        offer_open[o] = rank < limit && net[o] > 0.0;
    }
    let start = ChoiceStart { nu: &relaxation.nu, epsilon: relaxation.epsilon, relaxation_bound: relaxation.best_bound, iterations: relaxation.iterations };
    branch_from_choice(run, opts, side, relaxed, start, offer_open)
}

/// Where [`branch_from_choice`] starts: prices of `relaxed`'s layout, their
/// ridge, a bound of the relaxation (which bounds the MIP) and the
/// iterations so far.
struct ChoiceStart<'n> {
    nu: &'n [f64],
    epsilon: f64,
    relaxation_bound: f64,
    iterations: usize,
}

/// A Lagrangian branch and bound whose leaves are the choices of open custom
/// offers: the choice `offer_open` is solved (from the lowest bound of the
/// start's prices and its own samples'); every other choice of `K` is
/// bounded ([`choices_bounds`]); a choice whose bound leaves more than the
/// target above the best plan so far is solved in turn, highest bound first,
/// until its bound is within the target above the best plan (it cannot beat
/// that by more), and its plan kept when better. The bound reported is the highest of the
/// choices' bounds, or the relaxation's when that is lower or when the
/// choices are too many to count. A choice with no plan within the hard
/// limits keeps its bound and gives no plan; the time limit leaves the
/// remaining choices at their bounds.
fn branch_from_choice(run: &Run, opts: &DecomposedOptions, side: &mut dyn CustomerSide, relaxed: &Context, start: ChoiceStart, offer_open: Vec<bool>) -> Result<Allocation, DecomposedError> {
    let out_of_time = || opts.time_limit.is_some_and(|t| run.started.elapsed().as_secs_f64() >= t);
    let mut iterations = start.iterations;
    let (mut ctx, first) = restricted_phase(run, opts, side, relaxed, start.nu, start.epsilon, &offer_open, true, None)?;
    iterations += first.iterations;
    let mut highest = first.best_bound;
    let (first_nu, first_epsilon) = (first.nu.clone(), first.epsilon);
    let others = choices_bounds(run, opts, side, &mut ctx, SolvedChoice { nu: &first_nu, bound: first.best_bound, plan: first.plan.objective })?;
    let mut status = first.status;
    let mut best = gather(run, side, &ctx, first, offer_open, iterations)?;
    let Some(mut others) = others else {
        if out_of_time() {
            status = SolveStatus::TimeLimit;
        }
        return Ok(certified(run, best, start.relaxation_bound, status, opts.gap, iterations));
    };
    others.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (bound, closed) in others {
        if offers_gap(best.report.objective, bound, run.without) <= opts.gap {
            highest = highest.max(bound);
            continue;
        }
        if out_of_time() {
            highest = highest.max(bound);
            status = SolveStatus::TimeLimit;
            continue;
        }
        let open: Vec<bool> = closed.iter().map(|c| !c).collect();
        let (choice_ctx, phase) = match restricted_phase(run, opts, side, &ctx, &first_nu, first_epsilon, &open, true, Some(best.report.objective)) {
            Ok(solved) => solved,
            // Its fixed problem cannot keep a hard minimum: no plan, the bound stands.
            Err(DecomposedError::HardMinimumsUnmet) => {
                highest = highest.max(bound);
                continue;
            }
            Err(e) => return Err(e),
        };
        iterations += phase.iterations;
        highest = highest.max(bound.min(phase.best_bound));
        if opts.verbose {
            eprintln!("decomposed: the choice with bound {bound:.6e} solved: plan {:.6e}, bound {:.6e}  {:.2}s", phase.plan.objective, phase.best_bound, run.started.elapsed().as_secs_f64());
        }
        if phase.plan.objective > best.report.objective {
            let phase_status = phase.status;
            let solved = gather(run, side, &choice_ctx, phase, open, iterations)?;
            if solved.report.objective > best.report.objective {
                (best, status) = (solved, phase_status);
            }
        }
    }
    Ok(certified(run, best, start.relaxation_bound.min(highest), status, opts.gap, iterations))
}

/// `alloc` certified against `bound`, with the iterations of every phase and
/// the time to here; within the target it says so, else it keeps the status
/// of the phase that found its plan (`stalled` if that phase met its own target).
fn certified(run: &Run, mut alloc: Allocation, bound: f64, phase_status: SolveStatus, target: f64, iterations: usize) -> Allocation {
    let r = &mut alloc.report;
    r.bound = bound.max(r.objective);
    r.gap = relative_gap(r.objective, r.bound);
    r.offers_gap = offers_gap(r.objective, r.bound, run.without);
    r.status = match phase_status {
        _ if r.offers_gap <= target => SolveStatus::WithinGap,
        SolveStatus::WithinGap => SolveStatus::Stalled,
        other => other,
    };
    r.iterations = Some(iterations);
    r.solve_seconds = run.started.elapsed().as_secs_f64() - run.build_seconds;
    alloc
}

/// The MIP's second phase: the ascent with the custom offers `open` fixed
/// (the limit then holds by construction), from the relaxation's prices `nu`
/// or, with `samples`, from the lowest bound of those and the prices of
/// samples of the fixed problem (closing offers moves the prices of the
/// rows the closed offers' customers turn to, and the relaxation's prices
/// rarely price that: at 20,000 customers the ascent from them never
/// lowered the fixed problem's bound), escalating as a cold start does.
/// Its bound is the fixed problem's own (the caller bounds the MIP). With
/// `incumbent`, the best plan of other choices, it stops once it cannot beat
/// that by more than the target ([`run_phase`]).
#[allow(clippy::too_many_arguments)]
fn restricted_phase<'a>(
    run: &Run<'a>,
    opts: &DecomposedOptions,
    side: &mut dyn CustomerSide,
    relaxed: &Context<'a>,
    nu: &[f64],
    epsilon: f64,
    open: &[bool],
    samples: bool,
    incumbent: Option<f64>,
) -> Result<(Context<'a>, Phase), DecomposedError> {
    let closed: Vec<bool> = open.iter().map(|o| !o).collect();
    let ctx = Context::new(run.problem, run.network, run.cands, run.attrs, CustomLimitMode::Off, closed, run.extra);
    let carried = ctx.layout.carry(&relaxed.layout, nu);
    // Past the time limit the carried prices start it alone: its samples are
    // exact LPs (at 5,000 customers, 2.8 s of a run limited to 1 s), while
    // one iteration and a repair from the carried prices give the plan.
    let samples = samples && opts.time_limit.is_none_or(|limit| run.started.elapsed().as_secs_f64() < limit);
    let (start, mut escalation) = if samples {
        let sampled: Vec<Vec<f64>> = sample::sample_prices(run.problem, &ctx.closed).iter().map(|p| ctx.multipliers_from(p)).collect();
        let escalation = if sampled.is_empty() { sample::Escalation::none() } else { sample::Escalation::new(run.problem.customers.len()) };
        (lowest_bound_start(&ctx, side, starts_with_samples(Some(carried), &sampled))?, escalation)
    } else {
        (Some(carried), sample::Escalation::none())
    };
    let phase = run_phase(&ctx, side, start, epsilon, opts, run.started, run.without, &mut escalation, incumbent)?;
    Ok((ctx, phase))
}

/// The choice of open custom offers a context holds, as solved: its prices
/// `nu` (of that context's layout), its bound, and its plan's objective.
#[derive(Clone, Copy)]
struct SolvedChoice<'n> {
    nu: &'n [f64],
    bound: f64,
    plan: f64,
}

/// The MIP's bound when `ctx` holds the `solved` choice: the highest of
/// every choice's bound ([`choices_bounds`]), or `relaxation_bound` when
/// lower or when the choices are too many to count.
fn mip_bound(run: &Run, opts: &DecomposedOptions, side: &mut dyn CustomerSide, ctx: &mut Context, solved: SolvedChoice, relaxation_bound: f64) -> Result<f64, DecomposedError> {
    Ok(match choices_bounds(run, opts, side, ctx, solved)? {
        Some(others) => relaxation_bound.min(others.iter().fold(solved.bound, |highest, (bound, _)| highest.max(*bound))),
        None => relaxation_bound,
    })
}

/// The most choices of open custom offers (`C choose K`) whose fixed
/// problems [`choices_bounds`] bounds one by one; beyond it the
/// relaxation's bound stands for the MIP. Why 256: `allot generate` draws
/// about 12% of the offers custom and opens half of them, so 40 offers
/// often give 8 or 9 custom offers and 70 or 126 choices. Measured (9
/// custom, 4 open, 2 cores, `auto`): at 64 the relaxation's bound left
/// 2.2e-3 at 5,000 customers (6 s) and 6.2e-3 at 50,000 (27 s); counted,
/// the choices' bounds certify 3.7e-4 at both (9 s, 65 s: at 5,000 the
/// bound is the exact optimum) and at 50,000 the branch's plan is 0.4% of
/// the offers' value better. A choice costs a pass over the customers, and
/// a sample LP or two when that pass leaves it within reach of the plan.
const MAX_OTHER_CHOICES: usize = 256;

/// How many prices of samples solved for other choices [`choices_bounds`]
/// tries on a choice that the solved choice's prices leave unsettled, before
/// it solves a sample of its own. Why: choices that share most of their open
/// offers have about the same prices, a try is a pass over the customers
/// and a sample is an LP (30,000 customers, 60 offers, 30 zones: a few
/// milliseconds against 1.5 s).
const SOLVED_PRICES_TRIED: usize = 4;

/// An upper bound on the fixed problem of every choice of open custom offers
/// other than `ctx`'s, with the choice (its closed offers). Why these
/// choices only: the MIP's optimum is the best of the fixed problems, and
/// opening one more offer never lowers a fixed problem's optimum (its pairs
/// may stay unused), so choices of `K` offers are enough ([`custom_choices`]). A choice's
/// bound is the dual bound at the `solved` choice's prices when that is at
/// most its bound (which the MIP's bound is at least) and within the target
/// above its plan (the choice then needs no solving); else, when the prices
/// of samples solved for earlier choices settle it so
/// ([`SOLVED_PRICES_TRIED`] of them), the lowest of those; else the lowest of
/// those and the bound at the prices of one sample of that choice when that is at
/// most the solved choice's bound; else the lowest
/// of those and more samples'. Why `nu` first: a pass over the customers
/// where a sample costs an LP (1M customers: 0.07 s against 0.5 s), and it
/// is enough for most choices far below the plan. `None` when the choices
/// are more than [`MAX_OTHER_CHOICES`].
fn choices_bounds(run: &Run, opts: &DecomposedOptions, side: &mut dyn CustomerSide, ctx: &mut Context, solved: SolvedChoice) -> Result<Option<Vec<(f64, Vec<bool>)>>, DecomposedError> {
    let SolvedChoice { nu, bound: own, plan } = solved;
    let problem = run.problem;
    let (custom, choices) = custom_choices(problem);
    let Some(choices) = choices else { return Ok(None) };
    let own_closed = ctx.closed.clone();
    // Prices of the samples solved for choices bounded so far, the newest
    // (a sample's, or the prices that last settled a choice) at the end; only
    // the last SOLVED_PRICES_TRIED are ever tried, so only those are kept.
    let mut solved_prices: Vec<Vec<f64>> = Vec::new();
    let out_of_time = || opts.time_limit.is_some_and(|t| run.started.elapsed().as_secs_f64() >= t);
    let mut bound_of_choice = |ctx: &mut Context, chosen: &[usize]| -> Result<Option<(f64, Vec<bool>)>, DecomposedError> {
        ctx.closed = problem.offers.iter().map(|o| o.custom).collect();
        for &i in chosen {
            ctx.closed[custom[i]] = false;
        }
        if ctx.closed == own_closed {
            return Ok(None);
        }
        // At `nu` first: one pass over the customers, where a sample costs
        // an LP. Enough when it neither raises the MIP's bound nor leaves
        // the choice to be solved.
        let mut bound = ctx.evaluate(side, nu, EPSILON_WARM, None)?.bound;
        // (Written so that a NaN bound is not taken.)
        let settled = |bound: f64| bound <= own && offers_gap(plan, bound, run.without) <= opts.gap;
        // Then at the prices of samples solved for other choices, newest
        // first.
        let mut tried = 0;
        while !settled(bound) && tried < SOLVED_PRICES_TRIED.min(solved_prices.len()) {
            let at = solved_prices.len() - 1 - tried;
            let there = ctx.evaluate(side, &solved_prices[at], EPSILON_WARM, None)?.bound;
            if there < bound || bound.is_nan() {
                bound = there;
                if settled(bound) {
                    let settling = solved_prices.remove(at);
                    solved_prices.push(settling);
                }
            }
            tried += 1;
        }
        if !settled(bound) {
            let mut sampled: Vec<Vec<f64>> = sample::first_sample_prices(problem, &ctx.closed).iter().map(|p| ctx.multipliers_from(p)).collect();
            bound = bound.min(lowest_bound(ctx, side, sampled.clone())?.map_or(f64::INFINITY, |(bound, _)| bound));
            solved_prices.extend(sampled.iter().cloned());
            if bound > own {
                // The first sample's prices (when it solved) are evaluated already.
                let evaluated = sampled.len();
                sampled.extend(sample::further_sample_prices(problem, &ctx.closed).iter().map(|p| ctx.multipliers_from(p)));
                solved_prices.extend(sampled.iter().skip(evaluated).cloned());
                let mut starts: Vec<Vec<f64>> = mean_of_several(&sampled).into_iter().collect();
                starts.extend(sampled.into_iter().skip(evaluated));
                bound = bound.min(lowest_bound(ctx, side, starts)?.map_or(f64::INFINITY, |(bound, _)| bound));
            }
        }
        if opts.verbose {
            let names: Vec<&str> = chosen.iter().map(|&i| problem.offers[custom[i]].id.as_str()).collect();
            eprintln!("decomposed: custom offers {} open: bound {bound:.6e}  {:.2}s", names.join(", "), run.started.elapsed().as_secs_f64());
        }
        let never_tried = solved_prices.len().saturating_sub(SOLVED_PRICES_TRIED);
        solved_prices.drain(..never_tried);
        Ok(Some((bound, ctx.closed.clone())))
    };
    let mut bounds = Vec::with_capacity(choices.len());
    let mut failed = None;
    for chosen in &choices {
        if out_of_time() {
            // The relaxation's bound stands (see the caller).
            ctx.closed = own_closed;
            return Ok(None);
        }
        match bound_of_choice(ctx, chosen) {
            Ok(bound) => bounds.extend(bound),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    ctx.closed = own_closed;
    match failed {
        Some(e) => Err(e),
        None => Ok(Some(bounds)),
    }
}

/// The relaxation's phase of a MIP whose choices of open custom offers are
/// counted ([`custom_choices_counted`]) stops at this multiple of the
/// target: its prices only rank the offers, and the choices' bounds, not
/// its own, certify the plan. Measured (1M customers, 5 custom offers, 2
/// open): run to the target it stalled at 2.8e-3 after 240 iterations and
/// 99 s, and chose the same offers as after its first iteration.
const RELAXATION_GAP_FACTOR: f64 = 10.0;

/// Whether [`branch_on_custom_offers`] counts every choice of open custom
/// offers (at most [`MAX_OTHER_CHOICES`] of them).
fn custom_choices_counted(problem: &Problem) -> bool {
    custom_choices(problem).1.is_some()
}

/// The custom offers (by offer index) and every choice of `min(K, C)` of
/// them (as indices into that list), `K` the limit and `C` their number;
/// `None` for the choices when they are more than [`MAX_OTHER_CHOICES`].
fn custom_choices(problem: &Problem) -> (Vec<usize>, Option<Vec<Vec<usize>>>) {
    let custom: Vec<usize> = (0..problem.offers.len()).filter(|&o| problem.offers[o].custom).collect();
    let limit = problem.policy.max_custom_offers.unwrap_or(0) as usize;
    let choices = choices_of(custom.len(), limit.min(custom.len()), MAX_OTHER_CHOICES);
    (custom, choices)
}

/// Every choice of `k` of `n` items (as sorted indices), in lexicographic
/// order; `None` when there are more than `most`.
fn choices_of(n: usize, k: usize, most: usize) -> Option<Vec<Vec<usize>>> {
    debug_assert!(k <= n, "{k} of {n}");
    let mut count = 1usize;
    // C(n, k) = C(n, n - k), counted up the shorter way;
    // C(n, i + 1) = C(n, i) * (n - i) / (i + 1), exact at every step.
    for i in 0..k.min(n - k) {
        count = count.checked_mul(n - i)? / (i + 1);
        if count > most {
            return None;
        }
    }
    let mut out = Vec::with_capacity(count);
    let mut chosen: Vec<usize> = (0..k).collect();
    loop {
        out.push(chosen.clone());
        // The rightmost index that can still move right, then the rest packed after it.
        let Some(i) = (0..k).rev().find(|&i| chosen[i] < n - k + i) else { return Some(out) };
        chosen[i] += 1;
        for j in i + 1..k {
            chosen[j] = chosen[j - 1] + 1;
        }
    }
}

/// The plan gathered from the customers' side at the last phase's prices.
fn gather(run: &Run, side: &mut dyn CustomerSide, ctx_final: &Context, phase: Phase, offer_open: Vec<bool>, iterations: usize) -> Result<Allocation, DecomposedError> {
    let Run { problem, cands, attrs, started, without, build_seconds, warm_from, .. } = *run;
    let Finished { x, cap_price: contact_cap, row_price: customer_rows } = finish(side, ctx_final.cell_prices(&phase.nu, phase.epsilon), cands, &attrs.policy)?;
    let prices = ShadowPrices { customer_rows, ..shadow_prices(ctx_final, &phase.nu, contact_cap) };
    let Phase { plan, best_bound, status, .. } = phase;
    let flows = plan.flows.iter().filter(|f| f.units > 1e-9).copied().collect();
    let mut allocation = Allocation {
        x,
        flows,
        unmet: plan.unmet,
        offer_open,
        prices,
        report: SolveReport {
            solver: "decomposed".to_string(),
            status,
            objective: 0.0,
            bound: best_bound,
            gap: 0.0,
            objective_without_offers: without,
            offers_gap: 0.0,
            build_seconds,
            solve_seconds: started.elapsed().as_secs_f64() - build_seconds,
            variables: cands.len() + ctx_final.layout.arcs.len() + ctx_final.layout.balance.rows.len(),
            constraints: ctx_final.layout.total() + problem.customers.len(),
            iterations: Some(iterations),
            warm_from: warm_from.map(str::to_string),
        },
    };
    let objective = crate::feasibility::objective(problem, cands, &allocation);
    allocation.report.objective = objective;
    allocation.report.bound = best_bound.max(objective);
    allocation.report.gap = relative_gap(objective, allocation.report.bound);
    allocation.report.offers_gap = offers_gap(objective, allocation.report.bound, without);
    Ok(allocation)
}

/// Net value of each offer's kept exposures at the given prices (value minus the
/// resources they consume): how the relaxation ranks custom offers.
fn custom_offer_values(side: &mut dyn CustomerSide, prices: CellPrices, offers: usize) -> Result<Vec<f64>, DecomposedError> {
    match MapReply::merge(side.map(&MapRequest::OfferValues { prices })?)? {
        MapReply::OfferValues(net) if net.len() == offers => Ok(net),
        _ => Err(DecomposedError::Workers("a partition answered the offer values with another reply".into())),
    }
}

/// The plan gathered from the customers' side, by global index.
struct Finished {
    /// Every candidate's kept exposure.
    x: Vec<f64>,
    /// Every customer's contact-cap price.
    cap_price: Vec<f64>,
    /// Every contact-policy row's price.
    row_price: Vec<f64>,
}

/// Gathers the plan from the customers' side. Every customer must be answered
/// for exactly once.
fn finish(side: &mut dyn CustomerSide, prices: CellPrices, cands: &Candidates, policy: &CustomerRows) -> Result<Finished, DecomposedError> {
    let n = cands.customer_start.len() - 1;
    let mut x = vec![0.0; cands.len()];
    let mut cap_price = vec![0.0; n];
    let mut row_price = vec![0.0; policy.len()];
    let mut answered = vec![false; n];
    for reply in side.map(&MapRequest::Finish { prices })? {
        let MapReply::Finish { customers, cap_price: part_price, policy_price, x: part_x } = reply else {
            return Err(DecomposedError::Workers("a partition answered the plan request with another reply".into()));
        };
        let mut rows_at = 0usize;
        for &c in &customers {
            if c as usize >= n {
                return Err(DecomposedError::Workers(format!("customer {c} does not exist")));
            }
            let rows = policy.of_customer(c as usize);
            let Some(prices) = policy_price.get(rows_at..rows_at + rows.len()) else {
                return Err(DecomposedError::Workers(format!("a partition sent too few contact-policy prices (customer {c})")));
            };
            row_price[rows].copy_from_slice(prices);
            rows_at += prices.len();
        }
        let mut at = 0usize;
        for (&c, &price) in customers.iter().zip(&part_price) {
            let c = c as usize;
            if c >= n || std::mem::replace(&mut answered[c], true) {
                return Err(DecomposedError::Workers(format!("customer {c} was answered for twice or does not exist")));
            }
            let (lo, hi) = (cands.customer_start[c] as usize, cands.customer_start[c + 1] as usize);
            let Some(values) = part_x.get(at..at + hi - lo) else {
                return Err(DecomposedError::Workers(format!("a partition sent too few exposures (customer {c})")));
            };
            x[lo..hi].copy_from_slice(values);
            cap_price[c] = price;
            at += hi - lo;
        }
        if at != part_x.len() || customers.len() != part_price.len() {
            return Err(DecomposedError::Workers("a partition sent more exposures than its customers have candidates".into()));
        }
    }
    let missing = answered.iter().filter(|a| !**a).count();
    if missing > 0 {
        return Err(DecomposedError::Workers(format!("{missing} of {n} customers were not answered for")));
    }
    Ok(Finished { x, cap_price, row_price })
}

/// The multipliers as [`ShadowPrices`] (objective lost per unit of tightening).
fn shadow_prices(ctx: &Context, nu: &[f64], contact_cap: Vec<f64>) -> ShadowPrices {
    ctx.layout.shadow_prices(ctx.problem, nu, contact_cap)
}


#[cfg(test)]
mod tests {
    use super::{choices_of, window_length, MIN_WINDOW, WINDOW};

    #[test]
    fn choices_of_counts_every_choice_once_and_refuses_too_many() {
        assert_eq!(choices_of(4, 2, 64), Some(vec![vec![0, 1], vec![0, 2], vec![0, 3], vec![1, 2], vec![1, 3], vec![2, 3]]));
        assert_eq!(choices_of(3, 0, 64), Some(vec![vec![]]));
        assert_eq!(choices_of(3, 3, 64), Some(vec![vec![0, 1, 2]]));
        assert_eq!(choices_of(0, 0, 64), Some(vec![vec![]]));
        // C(20, 19) = 20 is counted the short way (C(20, 10) would exceed 64).
        assert_eq!(choices_of(20, 19, 64).map(|c| c.len()), Some(20));
        assert_eq!(choices_of(10, 3, 64), None, "C(10, 3) = 120");
        assert_eq!(choices_of(10, 3, 120).map(|c| c.len()), Some(120));
    }

    #[test]
    fn windows_shorten_with_the_pairs_down_to_their_floor() {
        assert_eq!(window_length(0), WINDOW);
        assert_eq!(window_length(630_000), WINDOW, "100,000 customers of allot bench");
        assert_eq!(window_length(6_300_000), 9, "1M customers");
        assert_eq!(window_length(63_000_000), MIN_WINDOW, "10M customers");
    }
}
