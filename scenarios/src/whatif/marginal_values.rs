//! "What one more unit is worth": the marginal value of each scarce resource
//! from a plan's duals, written next to the plan for the what-if comparison.

use std::path::{Path, PathBuf};

use allot_optimizer::allocation::ShadowPrices;
use allot_optimizer::families::{no_extra, CustomLimitMode, Layout, Scope};
use allot_optimizer::{Candidates, Network, Problem};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::files::write_versioned_list;
use crate::schema;

/// File name of the marginal values in a run's output directory.
pub const SHADOW_PRICES_FILE: &str = "shadow_prices.json";

/// What one more unit of a constraint's capacity is worth to the objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginalValue {
    /// The family's name: `stock`, `lane_capacity`, `delivery_capacity`, `budget`, `redemptions`, ...
    pub constraint: String,
    /// What it is about (`W00/SKU00003`, `W01->Z002`, `Z001`, `budget`, an offer id).
    pub key: String,
    /// Objective gained per unit of extra capacity (the dual value).
    pub value_per_unit: f64,
    /// Today's capacity, in the constraint's units (`None`: unlimited).
    pub capacity: Option<f64>,
}

/// The coupling rows of a plan's problem (the custom-offer limit left out:
/// its offers are chosen), on which its prices are read.
pub fn plan_layout(problem: &Problem, cands: &Candidates) -> Layout {
    let network = Network::new(problem);
    let scope = Scope::new(problem, &network, cands, CustomLimitMode::Off);
    Layout::new(&scope, no_extra(&scope))
}

/// Every binding capacity with a positive marginal value, most valuable first:
/// the capacity increase that would pay off most is the first line. Every
/// coupling family of `layout` (see [`plan_layout`]) that is a capacity
/// ([`Family::is_capacity`]) is listed.
pub fn marginal_values(problem: &Problem, layout: &Layout, prices: &ShadowPrices) -> Vec<MarginalValue> {
    let row_prices = layout.prices_from(problem, prices);
    let mut out = Vec::new();
    for (at, family) in layout.families().filter(|(_, f)| f.is_capacity()) {
        for row in 0..family.rows() {
            let value = row_prices[at + row];
            if value > 1e-9 {
                let capacity = Some(family.rhs(row)).filter(|c| c.is_finite());
                out.push(MarginalValue { constraint: family.name().to_string(), key: family.row_key(problem, row), value_per_unit: value, capacity });
            }
        }
    }
    out.sort_by(|a, b| b.value_per_unit.total_cmp(&a.value_per_unit).then(a.key.cmp(&b.key)));
    out
}

/// Writes the marginal values as `shadow_prices.json` (`{"schema_version",
/// "values"}`) into a run's output directory.
pub fn write_marginal_values(dir: &Path, values: &[MarginalValue]) -> Result<PathBuf, StoreError> {
    let path = dir.join(SHADOW_PRICES_FILE);
    write_versioned_list(&path, values)?;
    Ok(path)
}

/// Reads `shadow_prices.json` of any supported schema version (version 1 is a
/// bare array); none when the run has no such file.
pub fn read_marginal_values(dir: &Path) -> Result<Vec<MarginalValue>, StoreError> {
    let path = dir.join(SHADOW_PRICES_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(schema::list_from_str(&text, &path)?.1),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io("cannot read", &path, e)),
    }
}
