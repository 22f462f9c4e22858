//! `scenario.toml`: horizon, policy, tiers and the forecast's settings.

use std::path::Path;

use allot_forecasting::demand::frequency::Frequency;
use allot_optimizer::{Horizon, Policy, Tier, DEFAULT_UNMET_BASELINE_PENALTY};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::LoadError;
use crate::scenario::table::{is_non_negative_input, NON_NEGATIVE_WORDS};

/// The file name of a scenario's settings.
pub const SCENARIO_FILE: &str = "scenario.toml";

/// The longest planning horizon, in days (ten years), and the most periods
/// a forecast looks ahead. Why a limit: the model has rows per day and
/// bucket, so a horizon of a million days ran out of memory and one of 10^8
/// overflowed the calendar (a forecast of 10^8 periods was killed for its
/// memory); a plan of offers and stock looks weeks or months ahead.
pub const MAX_HORIZON_DAYS: u32 = 3660;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    horizon: RawHorizon,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    tiers: toml::Table,
    #[serde(default)]
    forecast: RawForecast,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForecast {
    frequency: Option<String>,
    fill_missing: Option<String>,
    holdout: Option<usize>,
    horizon: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHorizon {
    /// A quoted `"YYYY-MM-DD"` or a TOML date literal.
    start: toml::Value,
    days: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    contact_cap: Option<u32>,
    budget: Option<f64>,
    promise_days: Option<u32>,
    fairness_min_ratio: Option<f64>,
    max_custom_offers: Option<u32>,
    unmet_baseline_penalty: Option<f64>,
    #[serde(default)]
    binary_decisions: bool,
    bucket_days: Option<u32>,
}

/// The validated settings of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    /// The planning horizon.
    pub horizon: Horizon,
    /// Policy limits.
    pub policy: Policy,
    /// Tiers, highest priority first.
    pub tiers: Vec<Tier>,
    /// How `sales_history` is forecast.
    pub forecast: ForecastSettings,
}

/// The `[forecast]` table: how `sales_history` is read and forecast.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ForecastSettings {
    /// The history's period; `None`: inferred from its dates.
    pub frequency: Option<Frequency>,
    /// Missing periods inside a weekly, monthly, quarterly or yearly series
    /// are zero sales (`fill_missing = "zero"`) instead of an error; daily
    /// histories always read a missing day as zero.
    pub fill_missing_zero: bool,
    /// Periods held out for the accuracy report [default: by frequency].
    pub holdout: Option<usize>,
    /// Periods to forecast at least [default: up to the horizon's end].
    pub horizon: Option<usize>,
}

/// Reads a frequency setting: `auto` (`None`) or a code or word (`M`, `monthly`).
pub fn parse_frequency(text: &str) -> Result<Option<Frequency>, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    Frequency::parse(text).map(Some).ok_or_else(|| format!("got {text:?}, expected auto, D, W, M, Q or Y (or daily, weekly, monthly, quarterly, yearly)"))
}

/// The tier list used when `[tiers]` is absent: one tier, weight 1.
pub fn default_tiers() -> Vec<Tier> {
    vec![Tier { name: "standard".to_string(), weight: 1.0 }]
}

/// Reads and validates `scenario.toml` from a scenario directory.
pub fn read_config(dir: &Path) -> Result<ScenarioConfig, LoadError> {
    let path = dir.join(SCENARIO_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| LoadError::io(&path, e))?;
    parse_config(&text).map_err(|reason| LoadError::Unreadable { path, reason })
}

/// Parses the text of `scenario.toml`; the error names the line and what was expected.
pub fn parse_config(text: &str) -> Result<ScenarioConfig, String> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    let start = match &raw.horizon.start {
        toml::Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
        toml::Value::Datetime(d) => NaiveDate::parse_from_str(&d.to_string(), "%Y-%m-%d").ok(),
        _ => None,
    }
    // A year of four digits: chrono also reads `+262143-12-25`, whose horizon
    // overflowed the calendar.
    .filter(|d| (1000..=9999).contains(&chrono::Datelike::year(d)))
    .ok_or_else(|| format!("[horizon] start: got {}, expected a date \"YYYY-MM-DD\"", raw.horizon.start))?;
    if !(1..=MAX_HORIZON_DAYS).contains(&raw.horizon.days) {
        return Err(format!("[horizon] days: got {}, expected 1 to {MAX_HORIZON_DAYS}", raw.horizon.days));
    }
    let p = raw.policy;
    let non_negative = |name: &str, v: Option<f64>| match v {
        Some(x) if !is_non_negative_input(x) => Err(format!("[policy] {name}: got {x}, expected {NON_NEGATIVE_WORDS}")),
        _ => Ok(v),
    };
    let fairness = non_negative("fairness_min_ratio", p.fairness_min_ratio)?;
    if fairness.is_some_and(|r| r > 1.0) {
        return Err(format!("[policy] fairness_min_ratio: got {}, expected a ratio in [0, 1]", fairness.unwrap_or_default()));
    }
    let policy = Policy {
        contact_cap: p.contact_cap,
        budget: non_negative("budget", p.budget)?,
        promise_days: p.promise_days,
        fairness_min_ratio: fairness,
        max_custom_offers: p.max_custom_offers,
        unmet_baseline_penalty: non_negative("unmet_baseline_penalty", p.unmet_baseline_penalty)?
            .unwrap_or(DEFAULT_UNMET_BASELINE_PENALTY),
        binary_decisions: p.binary_decisions,
        bucket_days: match p.bucket_days {
            Some(0) => return Err("[policy] bucket_days: got 0, expected a number of days >= 1".to_string()),
            b => b,
        },
    };
    let mut tiers = Vec::new();
    for (name, value) in &raw.tiers {
        let weight = value
            .as_float()
            .or_else(|| value.as_integer().map(|i| i as f64))
            .filter(|w| is_non_negative_input(*w))
            .ok_or_else(|| format!("[tiers] {name}: got {value}, expected a weight >= 0 and <= 1e12"))?;
        tiers.push(Tier { name: name.clone(), weight });
    }
    if tiers.is_empty() {
        tiers = default_tiers();
    }
    let f = raw.forecast;
    let forecast = ForecastSettings {
        frequency: match &f.frequency {
            Some(text) => parse_frequency(text).map_err(|e| format!("[forecast] frequency: {e}"))?,
            None => None,
        },
        fill_missing_zero: match f.fill_missing.as_deref().map(str::trim) {
            None | Some("error") => false,
            Some("zero") => true,
            Some(other) => return Err(format!("[forecast] fill_missing: got {other:?}, expected \"zero\" or \"error\"")),
        },
        holdout: f.holdout,
        horizon: match f.horizon {
            Some(h) if !(1..=MAX_HORIZON_DAYS as usize).contains(&h) => return Err(format!("[forecast] horizon: got {h}, expected a number of periods, 1 to {MAX_HORIZON_DAYS}")),
            h => h,
        },
    };
    Ok(ScenarioConfig { horizon: Horizon { start, days: raw.horizon.days }, policy, tiers, forecast })
}
