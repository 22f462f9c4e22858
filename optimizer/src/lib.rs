//! allot's planning model and its solvers.
//!
//! This crate owns the in-memory types of `shared/spec/model.md` ([`Problem`]),
//! the candidate set with its hard rules ([`Candidates`]), the solvers (today the
//! [`exact`] one), the derivation of plan outputs ([`plan`]) and an independent
//! [`feasibility`] checker. It never does I/O: loading and writing belong to
//! `allot-scenarios`.

pub mod allocation;
pub mod candidates;
pub mod exact;
pub mod feasibility;
pub mod model;
pub mod plan;

pub use allocation::{Allocation, Flow, ShadowPrices, SolveReport, SolveStatus};
pub use candidates::{Candidates, ExclusionRule, Network};
pub use model::*;
pub use plan::{derive_plan, Plan};

/// Everything a solve produces, from a problem to plan outputs, in one call.
///
/// Why: callers (CLI, what-if runs, the service's background jobs) should not
/// have to know the order of candidate building, solving and plan derivation.
pub fn plan_exact(problem: &Problem, opts: &exact::ExactOptions) -> Result<(Candidates, Allocation, Plan), exact::SolveError> {
    let network = Network::new(problem);
    let cands = Candidates::build(problem, &network);
    let alloc = exact::solve(problem, &network, &cands, opts)?;
    let plan = derive_plan(problem, &network, &cands, &alloc);
    Ok((cands, alloc, plan))
}
