//! Scenario directories, plan outputs on disk, and the versioned plan store.
//!
//! This crate owns every file format of allot, in three parts by job:
//! - [`scenario`]: reads and validates scenario tables (CSV or Parquet, through
//!   polars) into an [`allot_optimizer::Problem`], and generates synthetic ones;
//! - [`whatif`]: variants of a scenario, marginal values and the comparison report;
//! - [`plans`]: the one pipeline that plans a scenario into a version, the plan's
//!   artefacts, and the versioned store.
//!
//! Dependencies run `plans -> whatif -> scenario`; all three write through
//! [`files`] (atomic writes) and tag JSON with a [`schema`] version. Solvers
//! never see polars types.

pub mod error;
pub mod files;
pub mod html;
pub mod plans;
pub mod scenario;
pub mod schema;
pub mod whatif;

pub use error::{LoadError, PipelineError, StoreError};
pub use files::{convert_scenario_to_parquet, Format, OutputFormat, PARQUET_FROM_CUSTOMERS};
pub use plans::output::write_plan_outputs;
pub use plans::pipeline::{plan_scenario, plan_scenario_with, OutputDir, PlanRun, PlanSolver};
pub use plans::serving::{burns_down_live, ContactRecord, CustomerRecord, EligibilityRecord, ServingContactPolicies, ServingContext, ServingOfferContact};
pub use plans::store::{Manifest, PlanStore, VersionMeta};
pub use scenario::generate::{generate, Family, GenerateSpec};
pub use scenario::load::{DemandForecast, ForecastOverride, InboundDelay, LoadOptions, LoadedScenario, OutcomeShowings};
pub use whatif::variants::{load_scenario, load_scenario_with};
