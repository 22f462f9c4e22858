//! Why the decomposed solver returned no plan.

use thiserror::Error;

/// Why the decomposed solver returned no plan.
#[derive(Debug, Error)]
pub enum DecomposedError {
    /// The repair LP failed (it is always feasible, so this is a solver failure).
    #[error("the repair step failed: {0}")]
    Repair(String),
    /// The worker pool could not be built.
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
    /// The LP without offers (the zero of the offers' value) failed.
    #[error("the model without offers could not be solved: {0}")]
    WithoutOffers(#[from] crate::exact::SolveError),
    /// No repaired plan met the hard `min_total` rules: they may contradict the
    /// limits (the exact model then names the rules and limits involved), or
    /// ask for more than the dual iterations reached.
    #[error("no repaired plan met the hard lower bounds (min_total rules) within the iterations; `--solver exact` names the rules and limits that contradict, if they do")]
    HardMinimumsUnmet,
    /// The customers' side failed: a worker died, or answered out of turn. No
    /// plan comes from a solve that lost part of its customers.
    #[error("the customers' side failed: {0}")]
    Workers(String),
}

