//! Scenario directories, plan outputs on disk, and the versioned plan store.
//!
//! This crate owns every file format of allot: it reads and validates scenario
//! tables (CSV or Parquet, through polars) into an [`allot_optimizer::Problem`],
//! writes plan outputs atomically, keeps plan versions, and generates synthetic
//! scenarios. Solvers never see polars types. [`pipeline`] is the one way a
//! scenario is planned into a version; every saved JSON file carries a
//! [`schema`] version.

pub mod compare;
pub mod config;
pub mod demand_plan;
pub mod error;
pub mod forecast_output;
pub mod generate;
pub mod load;
pub mod output;
pub mod partitions;
pub mod pipeline;
pub mod report;
pub mod schema;
pub mod store;
pub mod serving;
pub mod table;
pub mod uptake_history;
pub mod variants;
pub mod whatif;

pub use error::{LoadError, PipelineError, StoreError};
pub use load::{DemandForecast, InboundDelay, LoadOptions, LoadedScenario};
pub use variants::{load_scenario, load_scenario_with};
pub use output::{convert_scenario_to_parquet, write_plan_outputs, Format};
pub use serving::{CustomerRecord, EligibilityRecord, ServingContext};
pub use pipeline::{plan_scenario, plan_scenario_with, PlanRun, PlanSolver, OutputDir};
pub use store::{Manifest, PlanStore, VersionMeta};
pub use generate::{generate, GenerateSpec};
