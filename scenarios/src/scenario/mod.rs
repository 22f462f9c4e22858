//! Scenario input: `scenario.toml` and the tables of a scenario directory read,
//! typed and validated into an [`allot_optimizer::Problem`]; the uptake model
//! fitted from offer history; synthetic scenarios; the partition files remote
//! workers load. Nothing here knows about plans or variants.

pub mod config;
pub mod customer_features;
pub mod generate;
pub mod load;
pub mod partitions;
pub mod table;
pub mod uptake_history;
