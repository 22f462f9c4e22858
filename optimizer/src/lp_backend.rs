//! The one adapter to HiGHS: options, solve, status handling and the raw
//! solution, shared by the exact solver, the decomposition's repair LP and the
//! pick-plan MIP. Models are built with good_lp; this module runs them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use good_lp::solvers::highs::HighsProblem;
use highs::HighsModelStatus;
use thiserror::Error;

use crate::allocation::SolveStatus;

/// Why the exact solver returned no plan.
#[derive(Debug, Error)]
pub enum SolveError {
    /// The constraints admit no solution: hard lower bounds (`min_total` rules)
    /// above what the limits allow (x = 0, u = b meets every other row). With
    /// [`Settings::explain_infeasible`], the raw irreducible infeasible subset.
    #[error("the model is infeasible")]
    Infeasible(Option<RawIis>),
    /// Infeasible, with the subset named in the scenario's words (the exact solver).
    #[error("{0}")]
    Contradiction(Box<crate::infeasibility::Contradiction>),
    /// The objective is unbounded (a malformed model).
    #[error("the model is unbounded")]
    Unbounded,
    /// The time limit passed before any feasible solution was found.
    #[error("no feasible solution was found within the time limit")]
    NoSolution,
    /// HiGHS reported an error.
    #[error("HiGHS failed: {0}")]
    Highs(String),
    /// Given up by [`Settings::interrupt`].
    #[error("the solve was given up")]
    Interrupted,
}

/// How to run one model.
#[derive(Debug, Clone, Default)]
pub struct Settings<'a> {
    /// Solver threads; `None` lets HiGHS choose.
    pub threads: Option<u32>,
    /// Wall-clock limit in seconds.
    pub time_limit: Option<f64>,
    /// Relative MIP gap, for models with integer columns.
    pub mip_rel_gap: Option<f64>,
    /// Print HiGHS's log to stdout.
    pub verbose: bool,
    /// Further HiGHS options by name (value parsed as bool, integer, float, else
    /// text), applied last so they override the above.
    pub options: &'a [(String, String)],
    /// Options for a second run, applied over `options`, when the first ends
    /// without an answer for another reason than the time limit (an iteration
    /// limit, or a failure HiGHS reports as a model status). A run HiGHS ends
    /// with an error status is not retried: the model is gone with it, and
    /// the error is returned. Empty: no second run. Why: an option that is
    /// faster on most models of a kind (the repair's hull LPs unscaled) can
    /// still fail on one that HiGHS's defaults solve.
    pub retry: &'a [(String, String)],
    /// Columns held at zero (both bounds) in a first run, whose optimal
    /// basis then starts HiGHS's primal simplex on the whole model (their
    /// bounds restored). Empty: one run, HiGHS's own choice. Why: when the
    /// held columns are what a small restriction of the model leaves out
    /// (the repair's hull LPs with one response alone, a plan known to be
    /// good), its optimum is a feasible basis close to the whole model's,
    /// and the primal simplex climbs from there in a fraction of the dual
    /// simplex's iterations from scratch (`allot bench`'s scenario at 1M
    /// customers: 3.3 s and 4.2 s, 20,600 iterations each, against 1.2 s
    /// and 0.85 s, the same optima). A first run that ends without an
    /// optimum (the held columns needed, say, by a hard minimum) is
    /// followed by the dual simplex on the whole model from scratch. Each
    /// run has the options' own iteration limit (a retry, a third).
    pub start_without: &'a [usize],
    /// A MIP's start: values of its first columns (integer ones), which
    /// HiGHS completes (the other columns solved with these fixed) into its
    /// first incumbent when they admit a feasible one, and otherwise drops.
    /// Empty: none. Why: on the support MIPs of large
    /// all-or-nothing models HiGHS's own heuristics can end the time budget
    /// on plans worse than the rounding it is meant to improve.
    pub mip_start: &'a [f64],
    /// On infeasibility, ask HiGHS for an irreducible infeasible subset (one
    /// LP per constraint of a first, elastic subset: only where an error
    /// message is the product, not in the repair loop).
    pub explain_infeasible: bool,
    /// Once set (from any thread), HiGHS's simplex stops at its next
    /// iteration and the run ends with [`SolveError::Interrupted`] (not
    /// retried). Why: a solve started ahead of need (the decomposition's
    /// next escalated sample) is given up when the run ends without it,
    /// rather than holding a core for seconds. Only the simplex looks at it:
    /// presolve runs to its end first, and a MIP or an interior-point run
    /// does not stop.
    pub interrupt: Option<&'a Interrupt>,
}

/// A flag that stops HiGHS runs from another thread ([`Settings::interrupt`]);
/// clones share it.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Stops every run given this flag (or a clone), now or later.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether it was set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for Interrupt {
    /// The same flag, not the same state.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// HiGHS's simplex callback for [`Settings::interrupt`]: asks HiGHS to stop
/// once the flag `user_data` points to is set.
unsafe extern "C" fn interrupt_when_set(
    _callback_type: std::os::raw::c_int,
    _message: *const std::os::raw::c_char,
    _data_out: *const highs_sys::HighsCallbackDataOut,
    data_in: *mut highs_sys::HighsCallbackDataIn,
    user_data: *mut std::os::raw::c_void,
) {
    // SAFETY: `user_data` is the flag of `Settings::interrupt`, which
    // outlives the run that installed this callback; `data_in` is
    // HiGHS's own (null-checked).
    unsafe {
        let stop = &*(user_data as *const AtomicBool);
        if !data_in.is_null() && stop.load(Ordering::Relaxed) {
            (*data_in).user_interrupt = 1;
        }
    }
}

/// Installs [`interrupt_when_set`] on `model` for `stop`.
fn stop_when_set(model: &mut highs::Model, stop: &Interrupt) -> Result<(), SolveError> {
    let data = Arc::as_ptr(&stop.0) as *mut std::os::raw::c_void;
    // SAFETY: a live Highs instance owned by `model`; `stop` outlives every
    // solve of it (`Settings::interrupt`'s lifetime), and the callback only reads it.
    let installed = unsafe {
        highs_sys::Highs_setCallback(model.as_mut_ptr(), Some(interrupt_when_set), data) != highs_sys::kHighsStatusError
            && highs_sys::Highs_startCallback(model.as_mut_ptr(), highs_sys::kHighsCallbackSimplexInterrupt) != highs_sys::kHighsStatusError
    };
    if installed {
        Ok(())
    } else {
        Err(SolveError::Highs("HiGHS refused the interrupt callback".into()))
    }
}

/// Whether a first run that ended with `status` is run again with
/// [`Settings::retry`]: not after an answer (optimal, infeasible, unbounded)
/// nor when the time limit or [`Settings::interrupt`] stopped it.
fn retried(status: HighsModelStatus) -> bool {
    !matches!(
        status,
        HighsModelStatus::Optimal
            | HighsModelStatus::Infeasible
            | HighsModelStatus::Unbounded
            | HighsModelStatus::UnboundedOrInfeasible
            | HighsModelStatus::ReachedTimeLimit
            | HighsModelStatus::ReachedInterrupt
            | HighsModelStatus::ModelEmpty
    )
}

/// HiGHS's `simplex_strategy` values: its dual simplex (the default's
/// choice for an LP) and its primal simplex.
const DUAL_SIMPLEX: i32 = 1;
const PRIMAL_SIMPLEX: i32 = 4;

/// Solves `model` with the columns `held` at zero first, then whole by the
/// primal simplex from the first run's optimal basis (see
/// [`Settings::start_without`]); when the first run ends without an
/// optimum, whole by the dual simplex from scratch.
fn solve_from_restriction(mut model: highs::Model, held: &[usize]) -> Result<Result<highs::SolvedModel, highs::HighsStatus>, SolveError> {
    use highs_sys::HighsInt;
    // HiGHS reads a set of columns in increasing order, each once.
    let mut set_of: Vec<HighsInt> = held.iter().map(|&c| c as HighsInt).collect();
    set_of.sort_unstable();
    set_of.dedup();
    let n = set_of.len();
    let (mut lower, mut upper) = (vec![0.0; n], vec![0.0; n]);
    let (mut n_col, mut n_nz): (HighsInt, HighsInt) = (0, 0);
    let zeros = vec![0.0; n];
    // SAFETY: a live Highs instance owned by `model`; `set_of`, `lower` and
    // `upper` hold `n` entries; HiGHS skips the null outputs.
    let status = unsafe {
        highs_sys::Highs_getColsBySet(
            model.as_mut_ptr(),
            n as HighsInt,
            set_of.as_ptr(),
            &mut n_col,
            std::ptr::null_mut(),
            lower.as_mut_ptr(),
            upper.as_mut_ptr(),
            &mut n_nz,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if status == highs_sys::kHighsStatusError || n_col as usize != n {
        return Err(SolveError::Highs("the columns to hold at zero are not the model's".into()));
    }
    let change_bounds = |model: &mut highs::Model, lower: &[f64], upper: &[f64]| {
        // SAFETY: as above; `lower` and `upper` hold `n` entries.
        let status = unsafe { highs_sys::Highs_changeColsBoundsBySet(model.as_mut_ptr(), n as HighsInt, set_of.as_ptr(), lower.as_ptr(), upper.as_ptr()) };
        if status == highs_sys::kHighsStatusError {
            Err(SolveError::Highs("HiGHS refused to change the held columns' bounds".into()))
        } else {
            Ok(())
        }
    };
    change_bounds(&mut model, &zeros, &zeros)?;
    let restricted = match model.try_solve() {
        Ok(solved) => solved,
        Err(e) => return Ok(Err(e)),
    };
    // Stopped during the restriction: the whole model is not started.
    if restricted.status() == HighsModelStatus::ReachedInterrupt {
        return Ok(Ok(restricted));
    }
    let optimal = restricted.status() == HighsModelStatus::Optimal;
    let mut model = highs::Model::from(restricted);
    change_bounds(&mut model, &lower, &upper)?;
    // A held column leaves the first run nonbasic at whichever bound its
    // reduced cost favours, and keeps that status when its bounds are
    // restored: one left "at its upper bound" would start at it, not at
    // zero, and the start would no longer be the restriction's optimum (nor
    // feasible). They start at their lower bound; when HiGHS will not take
    // that basis, the whole model is solved from scratch.
    if optimal && at_lower_bound(&mut model, &set_of).is_ok() {
        set(&mut model, "simplex_strategy", PRIMAL_SIMPLEX)?;
    } else {
        // SAFETY: a live Highs instance owned by `model`.
        unsafe { highs_sys::Highs_clearSolver(model.as_mut_ptr()) };
    }
    Ok(model.try_solve())
}

/// Sets the basis status of the nonbasic columns among `columns` to "at
/// the lower bound" (basic ones are left as they are); an error when HiGHS
/// has no basis or refuses the new one.
fn at_lower_bound(model: &mut highs::Model, columns: &[highs_sys::HighsInt]) -> Result<(), SolveError> {
    use highs_sys::HighsInt;
    let highs = model.as_mut_ptr();
    // SAFETY: a live Highs instance owned by `model`; the status arrays are
    // as long as its columns and rows.
    unsafe {
        let (n_col, n_row) = (highs_sys::Highs_getNumCol(highs) as usize, highs_sys::Highs_getNumRow(highs) as usize);
        let (mut col_status, mut row_status) = (vec![0 as HighsInt; n_col], vec![0 as HighsInt; n_row]);
        if highs_sys::Highs_getBasis(highs, col_status.as_mut_ptr(), row_status.as_mut_ptr()) == highs_sys::kHighsStatusError {
            return Err(SolveError::Highs("HiGHS has no basis after the restriction's optimum".into()));
        }
        let mut moved = false;
        for &c in columns {
            let status = &mut col_status[c as usize];
            if *status != highs_sys::kHighsBasisStatusBasic && *status != highs_sys::kHighsBasisStatusLower {
                *status = highs_sys::kHighsBasisStatusLower;
                moved = true;
            }
        }
        // A basis set from outside is checked and factorised anew: only when
        // a status moved.
        if moved && highs_sys::Highs_setBasis(highs, col_status.as_ptr(), row_status.as_ptr()) == highs_sys::kHighsStatusError {
            return Err(SolveError::Highs("HiGHS refused the restriction's basis".into()));
        }
    }
    Ok(())
}

/// An irreducible infeasible subset in HiGHS's indices: rows and column
/// bounds such that the rows, with those columns bounded as stated, admit no
/// solution, and dropping any one of them leaves a feasible system (when
/// `irreducible`). For a MIP HiGHS searches with the integrality and then
/// reduces on the relaxation, so the subset holds but may not be irreducible.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawIis {
    /// Whether HiGHS proved the subset irreducible (not when its time ran out
    /// or, for a MIP, when the deletion ran on the relaxation).
    pub irreducible: bool,
    /// Row indices, in creation order.
    pub rows: Vec<usize>,
    /// Column indices with the bound that takes part.
    pub columns: Vec<(usize, IisBound)>,
}

/// Which bound of a column (or side of a row) is in the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IisBound {
    /// The lower bound.
    Lower,
    /// The upper bound.
    Upper,
    /// Both (a fixed or boxed column).
    Both,
}

/// The raw result of one HiGHS run; columns and rows in creation order.
#[derive(Debug, Clone)]
pub struct Solved {
    /// Optimal, or stopped with a feasible solution: by the time or an
    /// iteration limit (`TimeLimit`), or by a node, leaf or solution limit of
    /// [`Settings::options`] (`IterationLimit`).
    pub status: SolveStatus,
    /// Objective of the returned solution.
    pub objective: f64,
    /// Proven bound: the MIP's dual bound, the objective of an optimal LP, else `+inf`.
    pub bound: f64,
    /// Column values.
    pub columns: Vec<f64>,
    /// Row duals (`d objective / d rhs`).
    pub row_duals: Vec<f64>,
    /// Seconds in HiGHS.
    pub seconds: f64,
    /// Simplex iterations of HiGHS's last run (0 when another method solved it).
    pub simplex_iterations: i64,
}

/// HiGHS's simplex without scaling (`simplex_scale_strategy` 0), for LPs
/// whose columns are already on one scale: the repair's hull LPs (cell
/// scales in `[0, 1]`). HiGHS's equilibration made the dual simplex slower
/// on every one measured (`allot bench`'s scenario at 1M customers: the
/// same optima in 0.54-0.67 of the time, 10-20% fewer iterations). Pair it
/// with [`SCALED`] as [`Settings::retry`]. Not for the exact model, nor
/// the decomposition's first sample LPs: solved unscaled they were faster
/// too (0.56-0.69 at 8,000 and 16,000 customers) but their optimal duals
/// differ, and those prices start every cold solve (its escalated samples
/// are solved unscaled: see `decomposed::sample`).
pub const UNSCALED: (&str, &str) = ("simplex_scale_strategy", "0");
/// HiGHS's own scaling (its default `simplex_scale_strategy`), to retry with.
pub const SCALED: (&str, &str) = ("simplex_scale_strategy", "1");

/// An option as [`Settings::options`] holds it.
pub fn option((key, value): (&str, &str)) -> (String, String) {
    (key.to_string(), value.to_string())
}

/// Runs a model with `columns` variables and `rows` constraints. The HiGHS
/// instance lives and dies inside this call (every return drops it): the
/// interrupt callback's pointer to [`Settings::interrupt`] relies on it.
pub fn run(problem: HighsProblem, columns: usize, rows: usize, settings: &Settings) -> Result<Solved, SolveError> {
    // HiGHS refuses a model with a coefficient or bound beyond its limits
    // (its `large_matrix_value`, 1e15): an error, not good_lp's panic.
    let mut model = problem.try_into_inner().map_err(|e| SolveError::Highs(format!("{e}; a coefficient or bound of the model is out of HiGHS's range (some input value is too large)")))?;
    if settings.verbose {
        set(&mut model, "output_flag", true)?;
        set(&mut model, "log_to_console", true)?;
    } else {
        model.make_quiet();
    }
    if let Some(t) = settings.threads {
        set(&mut model, "threads", t as i32)?;
    }
    if let Some(t) = settings.time_limit {
        set(&mut model, "time_limit", t.max(0.01))?;
    }
    if let Some(gap) = settings.mip_rel_gap {
        set(&mut model, "mip_rel_gap", gap)?;
    }
    for (key, value) in settings.options {
        set_any(&mut model, key, value)?;
    }
    if let Some(stop) = settings.interrupt {
        stop_when_set(&mut model, stop)?;
    }
    if !settings.mip_start.is_empty() {
        let index: Vec<highs_sys::HighsInt> = (0..settings.mip_start.len() as highs_sys::HighsInt).collect();
        // SAFETY: a live Highs instance owned by `model`; both arrays hold `index.len()` entries.
        let status = unsafe { highs_sys::Highs_setSparseSolution(model.as_mut_ptr(), index.len() as highs_sys::HighsInt, index.as_ptr(), settings.mip_start.as_ptr()) };
        // Advisory: refused (only for an index out of range), the MIP runs without it.
        debug_assert!(status != highs_sys::kHighsStatusError, "HiGHS refused the MIP start");
    }
    if columns == 0 {
        // Nothing to decide: the optimum is 0 and every row is slack.
        return Ok(Solved { status: SolveStatus::Optimal, objective: 0.0, bound: 0.0, columns: Vec::new(), row_duals: vec![0.0; rows], seconds: 0.0, simplex_iterations: 0 });
    }
    let start = Instant::now();
    let mut solved = if settings.start_without.is_empty() { model.try_solve() } else { solve_from_restriction(model, settings.start_without)? }
        .map_err(|e| SolveError::Highs(format!("{e:?}")));
    if !settings.retry.is_empty() && solved.as_ref().is_ok_and(|s| retried(s.status())) {
        let mut model = highs::Model::from(solved.expect("checked above"));
        if !settings.start_without.is_empty() {
            set(&mut model, "simplex_strategy", DUAL_SIMPLEX)?;
        }
        for (key, value) in settings.retry {
            set_any(&mut model, key, value)?;
        }
        // From scratch: the first run's basis may be what failed.
        // SAFETY: a live Highs instance owned by `model`.
        unsafe { highs_sys::Highs_clearSolver(model.as_mut_ptr()) };
        solved = model.try_solve().map_err(|e| SolveError::Highs(format!("{e:?}")));
    }
    let solved = solved?;
    let seconds = start.elapsed().as_secs_f64();
    let status = match solved.status() {
        HighsModelStatus::Optimal => SolveStatus::Optimal,
        HighsModelStatus::Infeasible => {
            let mut solved = solved;
            return Err(SolveError::Infeasible(settings.explain_infeasible.then(|| iis(&mut solved, columns, rows, settings.time_limit)).flatten()));
        }
        HighsModelStatus::Unbounded | HighsModelStatus::UnboundedOrInfeasible => return Err(SolveError::Unbounded),
        HighsModelStatus::ReachedInterrupt => return Err(SolveError::Interrupted),
        HighsModelStatus::ReachedTimeLimit | HighsModelStatus::ReachedIterationLimit => SolveStatus::TimeLimit,
        // A MIP stopped by a limit of the user's HiGHS options (nodes,
        // leaves, improving solutions): its plan, when it has one, as for
        // the time limit, under the name of a limit on the search's work
        // (HiGHS's iteration limit keeps the name it has always been
        // reported under, `TimeLimit`).
        HighsModelStatus::ReachedSolutionLimit => SolveStatus::IterationLimit,
        other => return Err(SolveError::Highs(format!("unexpected model status {other:?}"))),
    };
    if solved.primal_solution_status() != highs::HighsSolutionStatus::Feasible {
        return Err(SolveError::NoSolution);
    }
    let objective = solved.objective_value();
    let bound = if settings.mip_rel_gap.is_some() {
        solved.double_info_value(c"mip_dual_bound").unwrap_or(f64::INFINITY)
    } else if status == SolveStatus::Optimal {
        objective
    } else {
        f64::INFINITY
    };
    let simplex_iterations = solved.simplex_iteration_count();
    let solution = solved.get_solution();
    Ok(Solved { status, objective, bound, columns: solution.columns().to_vec(), row_duals: solution.dual_rows().to_vec(), seconds, simplex_iterations })
}

/// HiGHS's irreducible infeasible subset of a model it found infeasible
/// (`None` when HiGHS fails to compute one).
fn iis(solved: &mut highs::SolvedModel, columns: usize, rows: usize, time_limit: Option<f64>) -> Option<RawIis> {
    use highs_sys::HighsInt;
    let highs = solved.as_mut_ptr();
    // From the LP (an elastic LP finds a small infeasible set), then reduced to
    // an irreducible one by deletion; rows preferred over column bounds.
    const FROM_LP_IRREDUCIBLE_ROW_PRIORITY: HighsInt = 6;
    // SAFETY: `highs` is a live Highs instance owned by `solved`; the option
    // name is NUL-terminated; the arrays are as long as HiGHS may write
    // (at most every column and every row).
    unsafe {
        highs_sys::Highs_setIntOptionValue(highs, c"iis_strategy".as_ptr(), FROM_LP_IRREDUCIBLE_ROW_PRIORITY);
        // The solve's own limit, else none (HiGHS's default for the subset).
        if let Some(limit) = time_limit {
            highs_sys::Highs_setDoubleOptionValue(highs, c"iis_time_limit".as_ptr(), limit.max(1.0));
        }
        let (mut n_col, mut n_row): (HighsInt, HighsInt) = (0, 0);
        let mut col_index = vec![0 as HighsInt; columns.max(1)];
        let mut row_index = vec![0 as HighsInt; rows.max(1)];
        let mut col_bound = vec![0 as HighsInt; columns.max(1)];
        let mut row_bound = vec![0 as HighsInt; rows.max(1)];
        let status = highs_sys::Highs_getIis(
            highs,
            &mut n_col,
            &mut n_row,
            col_index.as_mut_ptr(),
            row_index.as_mut_ptr(),
            col_bound.as_mut_ptr(),
            row_bound.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        if status == highs_sys::kHighsStatusError {
            return None;
        }
        // A column of the subset's rows whose bounds take no part is "free".
        let bound = |b: HighsInt| match b {
            highs_sys::kHighsIisBoundLower => Some(IisBound::Lower),
            highs_sys::kHighsIisBoundUpper => Some(IisBound::Upper),
            highs_sys::kHighsIisBoundBoxed => Some(IisBound::Both),
            _ => None,
        };
        Some(RawIis {
            // A warning: only a reducible subset was found (time ran out).
            irreducible: status == highs_sys::kHighsStatusOk,
            rows: row_index[..n_row as usize].iter().map(|&r| r as usize).collect(),
            columns: col_index[..n_col as usize].iter().zip(&col_bound).filter_map(|(&c, &b)| Some((c as usize, bound(b)?))).collect(),
        })
    }
}

fn set<V: highs::HighsOptionValue>(model: &mut highs::Model, key: &str, value: V) -> Result<(), SolveError> {
    model.try_set_option(key, value).map_err(|e| SolveError::Highs(format!("option {key}: {e:?}")))
}

/// Sets an option given as text, trying the types HiGHS options can have.
fn set_any(model: &mut highs::Model, key: &str, value: &str) -> Result<(), SolveError> {
    // Text last: HiGHS has text options whose values look like booleans (`presolve=on`).
    let ok = value.parse::<bool>().is_ok_and(|v| model.try_set_option(key, v).is_ok())
        || value.parse::<i32>().is_ok_and(|v| model.try_set_option(key, v).is_ok())
        || value.parse::<f64>().is_ok_and(|v| model.try_set_option(key, v).is_ok())
        || model.try_set_option(key, value).is_ok();
    if ok {
        Ok(())
    } else {
        Err(SolveError::Highs(format!("HiGHS rejected option {key}={value}")))
    }
}

#[cfg(test)]
mod tests {
    use good_lp::solvers::highs::highs;
    use good_lp::{variable, Expression, ProblemVariables, SolverModel};

    use super::*;

    /// Maximise `sum (i + 1) x_i` over 20 columns in `[0, 1]` with
    /// `sum x_i <= 3`: the optimum takes the three last, 20 + 19 + 18 = 57.
    fn three_of_twenty() -> HighsProblem {
        let mut vars = ProblemVariables::new();
        let xs: Vec<_> = (0..20).map(|_| vars.add(variable().min(0.0).max(1.0))).collect();
        let objective: Expression = xs.iter().enumerate().map(|(i, &x)| (i as f64 + 1.0) * x).sum();
        let total: Expression = xs.iter().copied().sum();
        vars.maximise(objective).using(highs).with(total.leq(3.0))
    }

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().copied().map(option).collect()
    }

    #[test]
    fn a_set_interrupt_gives_the_run_up_and_an_unset_one_does_not() {
        // Without presolve, which alone would solve this model.
        let no_presolve = options(&[("presolve", "off")]);
        let stop = Interrupt::default();
        let solved = run(three_of_twenty(), 20, 1, &Settings { options: &no_presolve, interrupt: Some(&stop), ..Settings::default() }).expect("solved");
        assert!((solved.objective - 57.0).abs() < 1e-9, "objective {}", solved.objective);
        stop.clone().set();
        // A retry would fail on its option: an interrupted run is not retried.
        let given_up = run(three_of_twenty(), 20, 1, &Settings { options: &no_presolve, interrupt: Some(&stop), retry: &options(&[("no_such_option", "1")]), ..Settings::default() });
        assert!(matches!(given_up, Err(SolveError::Interrupted)), "{given_up:?}");
    }

    #[test]
    fn a_run_started_from_a_restriction_reaches_the_whole_models_optimum() {
        // Held at zero, the three best columns leave 17 + 16 + 15 = 48; the
        // whole model's optimum is 57 once their bounds are restored.
        let held = [17, 18, 19];
        let solved = run(three_of_twenty(), 20, 1, &Settings { start_without: &held, ..Settings::default() }).expect("solved");
        assert_eq!(solved.status, SolveStatus::Optimal);
        assert!((solved.objective - 57.0).abs() < 1e-9, "objective {}", solved.objective);
        assert!(held.iter().all(|&c| (solved.columns[c] - 1.0).abs() < 1e-9), "the held columns are taken: {:?}", solved.columns);

        // Held, three columns the optimum leaves at zero: the restriction's
        // optimum is the whole model's, and the primal simplex starts there
        // (no iteration: the held columns start at zero, not at the upper
        // bound their reduced cost would leave them at).
        let held = [0, 1, 2];
        let solved = run(three_of_twenty(), 20, 1, &Settings { start_without: &held, ..Settings::default() }).expect("solved");
        assert!((solved.objective - 57.0).abs() < 1e-9, "objective {}", solved.objective);
        assert_eq!(solved.simplex_iterations, 0, "the start is the restriction's optimum");

        // A restriction with no solution (column 19 must be 1): the whole
        // model is solved from scratch.
        let mut vars = ProblemVariables::new();
        let xs: Vec<_> = (0..20).map(|_| vars.add(variable().min(0.0).max(1.0))).collect();
        let objective: Expression = xs.iter().enumerate().map(|(i, &x)| (i as f64 + 1.0) * x).sum();
        let total: Expression = xs.iter().copied().sum();
        let model = vars.maximise(objective).using(highs).with(total.leq(3.0)).with(Expression::from(xs[19]).geq(1.0));
        let solved = run(model, 20, 2, &Settings { start_without: &[17, 18, 19], ..Settings::default() }).expect("solved");
        assert_eq!(solved.status, SolveStatus::Optimal);
        assert!((solved.objective - 57.0).abs() < 1e-9, "objective {}", solved.objective);
    }

    #[test]
    fn a_run_stopped_short_of_an_optimum_is_run_again_with_the_retry_options() {
        // No presolve (it would solve this alone) and no simplex iteration.
        let stopped = options(&[("presolve", "off"), ("simplex_iteration_limit", "0")]);
        let alone = run(three_of_twenty(), 20, 1, &Settings { options: &stopped, ..Settings::default() });
        assert!(!matches!(&alone, Ok(s) if s.status == SolveStatus::Optimal), "the first options alone must stop short: {alone:?}");

        let retry = options(&[("simplex_iteration_limit", "1000")]);
        let solved = run(three_of_twenty(), 20, 1, &Settings { options: &stopped, retry: &retry, ..Settings::default() }).expect("the retry solves it");
        assert_eq!(solved.status, SolveStatus::Optimal);
        assert!((solved.objective - 57.0).abs() < 1e-9, "objective {}", solved.objective);
    }
}
