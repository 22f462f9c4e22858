//! Demand and uptake forecasting for allot: pure numerics on plain slices.
//!
//! This crate knows nothing of the planning model or of files; `allot-scenarios`
//! feeds it series and feature rows read from history files and turns its
//! forecasts into model inputs.
//!
//! - [`demand`]: baseline demand per daily series (seasonal naive, the ETS
//!   family, Croston SBA, TSB), chosen per series by a rolling-origin backtest;
//! - [`uptake`]: offer-uptake probabilities (L2 logistic regression by IRLS,
//!   L2 strength by cross-validation, Platt calibration, accuracy measures);
//! - [`attributes`]: customer attributes as features (numeric standardised,
//!   categorical one-hot with rare levels pooled), learned from fitting rows;
//! - [`synthetic`]: histories with known structure for generators and tests.

pub mod attributes;
pub mod demand;
pub mod synthetic;
pub mod uptake;
