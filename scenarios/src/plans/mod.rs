//! Plans: the planning pipeline, what a plan writes (tables, KPIs, demand plan,
//! forecasts, the serving context) and the versioned store that keeps them.
//! Reads scenarios through [`crate::scenario`] and variants through
//! [`crate::whatif`]; the store saves and reads, it never solves.

pub mod demand_plan;
pub mod forecast_output;
pub mod output;
pub mod pipeline;
pub mod serving;
pub mod store;
