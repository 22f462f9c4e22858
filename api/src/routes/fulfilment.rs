//! Routes for fulfilment: what a warehouse should pick first, from the plan's
//! pick priorities or from an on-demand pick plan over a backlog of orders,
//! both against live stock.

use std::collections::{BTreeSet, HashMap};

use allot_optimizer::picking::{plan_picks, PickLine, PickOrder, PickPlan, PickProblem, PickWave, DEFAULT_LATE_VALUE};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::errors::{ApiError, JsonBody};
use crate::routes::extract::{Deadline, PathId};
use crate::state::AppState;

/// Body of `GET /v1/warehouses/{id}/pick-priorities`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickPriorities {
    /// The warehouse.
    pub warehouse_id: String,
    /// The plan version the priorities come from.
    pub plan_version: String,
    /// Whether the plan is not trusted (stale, not active, store error).
    pub fallback: bool,
    /// The plan's priorities at this warehouse, best first.
    pub priorities: Vec<PickPriorityLine>,
}

/// One planned pick, capped by live stock.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickPriorityLine {
    /// 1 = pick first.
    pub rank: u32,
    /// The offer the units serve.
    pub offer_id: String,
    /// The SKU.
    pub sku: String,
    /// Units the plan reserved.
    pub planned_units: f64,
    /// Units to pick now: the planned units, capped by live stock.
    pub units: f64,
    /// Live stock of the SKU at the warehouse.
    pub live_stock: f64,
    /// Whether live stock is below the planned units.
    pub short: bool,
    /// The plan's priority score (higher first).
    pub priority_score: f64,
}

/// Body of `POST /v1/warehouses/{id}/pick-plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PickPlanRequest {
    /// The backlog.
    orders: Vec<PickOrderBody>,
    /// The waves, at least one.
    #[schema(min_items = 1)]
    waves: Vec<PickWaveBody>,
    /// Value of a late pick relative to an on-time one, in [0, 1] [default 0.5].
    #[schema(minimum = 0.0, maximum = 1.0)]
    late_value: Option<f64>,
}

/// An order waiting at the warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PickOrderBody {
    /// Unique within the request.
    #[schema(min_length = 1)]
    order_id: String,
    /// The customer's tier (weights the order like the plan weights margin).
    #[schema(min_length = 1)]
    tier: String,
    /// When the order is promised to leave.
    promised_by: DateTime<Utc>,
    /// What to pick, at least one line; lines of one SKU are added up.
    #[schema(min_items = 1)]
    lines: Vec<PickLineBody>,
}

/// One order line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PickLineBody {
    /// A SKU the warehouse stocks in the plan.
    #[schema(min_length = 1)]
    sku: String,
    /// Units, a positive number.
    #[schema(exclusive_minimum = 0.0)]
    qty: f64,
}

/// A pick wave.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PickWaveBody {
    /// Unique within the request.
    #[schema(min_length = 1)]
    wave_id: String,
    /// When the wave's picks are done.
    ends_at: DateTime<Utc>,
    /// Units the wave can pick.
    #[schema(minimum = 0.0)]
    capacity: f64,
}

/// Body of `POST /v1/warehouses/{id}/pick-plan`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickPlanReply {
    /// The warehouse.
    pub warehouse_id: String,
    /// The plan version whose live stock and tiers were used.
    pub plan_version: String,
    /// Wave assignments and deferred orders, with the method's certificate.
    pub pick_plan: PickPlan,
}

fn no_plan() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_plan", "no plan version is loaded")
}

fn unknown_warehouse(id: &str, version: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_warehouse", format!("warehouse {id:?} is not in plan {version}"))
}

pub(crate) async fn pick_priorities(State(state): State<AppState>, PathId(id): PathId) -> Result<Json<PickPriorities>, ApiError> {
    let s = state.current().ok_or_else(no_plan)?;
    let plan = &s.plan;
    if !plan.context.stock.iter().any(|p| p.warehouse_id == id) {
        return Err(unknown_warehouse(&id, plan.version()));
    }
    let priorities = plan
        .context
        .pick_priorities
        .iter()
        .filter(|p| p.warehouse_id == id)
        .map(|p| {
            let live = plan.point_ix.get(&(p.warehouse_id.clone(), p.sku.clone())).map_or(0.0, |&i| s.supply.live[i].max(0.0));
            PickPriorityLine {
                rank: p.rank,
                offer_id: p.offer_id.clone(),
                sku: p.sku.clone(),
                planned_units: p.units,
                units: p.units.min(live),
                live_stock: live,
                short: live < p.units,
                priority_score: p.priority_score,
            }
        })
        .collect();
    let fallback = state.fallback_reason(&s).is_some();
    Ok(Json(PickPriorities { warehouse_id: id, plan_version: plan.version().to_string(), fallback, priorities }))
}

/// An order's lines with those of one SKU added up (a hash map: a body of
/// 16 MB of lines stays linear), or the SKUs the warehouse does not stock.
fn merge_lines(lines: Vec<PickLineBody>, stock: &HashMap<String, f64>, unknown: &mut BTreeSet<String>) -> Vec<PickLine> {
    let mut at: HashMap<String, usize> = HashMap::with_capacity(lines.len());
    let mut merged: Vec<PickLine> = Vec::with_capacity(lines.len());
    for l in lines {
        if !stock.contains_key(&l.sku) {
            unknown.insert(l.sku);
            continue;
        }
        match at.get(&l.sku) {
            Some(&i) => merged[i].qty += l.qty,
            None => {
                at.insert(l.sku.clone(), merged.len());
                merged.push(PickLine { sku: l.sku, qty: l.qty });
            }
        }
    }
    merged
}

pub(crate) async fn pick_plan(State(state): State<AppState>, deadline: Deadline, PathId(id): PathId, body: JsonBody<PickPlanRequest>) -> Result<Json<PickPlanReply>, ApiError> {
    let Json(req) = body?;
    let s = state.current().ok_or_else(no_plan)?;
    let plan = &s.plan;
    let stock: HashMap<String, f64> =
        plan.context.stock.iter().enumerate().filter(|(_, p)| p.warehouse_id == id).map(|(i, p)| (p.sku.clone(), s.supply.live[i].max(0.0))).collect();
    if stock.is_empty() {
        return Err(unknown_warehouse(&id, plan.version()));
    }
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_pick_request", m);
    if let Some(i) = req.waves.iter().position(|w| w.wave_id.is_empty()) {
        return Err(invalid(format!("waves[{i}]: wave_id is empty")));
    }
    if let Some(i) = req.orders.iter().position(|o| o.order_id.is_empty()) {
        return Err(invalid(format!("orders[{i}]: order_id is empty")));
    }
    let mut orders = Vec::with_capacity(req.orders.len());
    let mut unknown = BTreeSet::new();
    for o in req.orders {
        let tier = plan.context.tiers.iter().find(|t| t.name == o.tier).ok_or_else(|| {
            let known: Vec<&str> = plan.context.tiers.iter().map(|t| t.name.as_str()).collect();
            invalid(format!("order {:?}: unknown tier {:?} (plan tiers: {})", o.order_id, o.tier, known.join(", ")))
        })?;
        if let Some(l) = o.lines.iter().find(|l| !(l.qty.is_finite() && l.qty > 0.0)) {
            return Err(invalid(format!("order {:?}, SKU {:?}: qty must be a positive number, got {}", o.order_id, l.sku, l.qty)));
        }
        let lines = merge_lines(o.lines, &stock, &mut unknown);
        orders.push(PickOrder { order_id: o.order_id, tier_weight: tier.weight, promised_by: o.promised_by.timestamp(), lines });
    }
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(20).map(String::as_str).collect();
        let more = if unknown.len() > shown.len() { format!(" and {} more", unknown.len() - shown.len()) } else { String::new() };
        return Err(invalid(format!("SKUs not stocked at warehouse {id:?} in plan {}: {}{more}", plan.version(), shown.join(", "))));
    }
    let waves = req.waves.into_iter().map(|w| PickWave { wave_id: w.wave_id, ends_at: w.ends_at.timestamp(), capacity: w.capacity }).collect();
    let problem = PickProblem { orders, waves, stock, late_value: req.late_value.unwrap_or(DEFAULT_LATE_VALUE) };
    let pick_plan = deadline.blocking(move || plan_picks(&problem).map_err(|e| invalid(e.to_string()))).await?;
    Ok(Json(PickPlanReply { warehouse_id: id, plan_version: plan.version().to_string(), pick_plan }))
}
