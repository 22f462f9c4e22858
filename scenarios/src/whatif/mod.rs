//! What-if analysis: variants (a base scenario plus perturbations), the
//! marginal value of one more unit from a plan's duals, and the side-by-side
//! comparison of runs with its HTML report. Builds on [`crate::scenario`] only.

pub mod compare;
pub mod marginal_values;
pub mod report;
pub mod variants;
