//! The network's columns: one shipment arc per usable lane, SKU and zone-balance
//! row, entering the zone balance, the warehouse's stock and the lane's capacity.
//! The stock and lane families get their rows here, in the order the arcs
//! first use them.

use std::collections::HashMap;

use super::balance::Balance;
use super::family::Scope;
use super::lane::Lane;
use super::stock::Stock;
use crate::model::{LaneIx, SkuIx};

/// One shipment arc `f[lane, sku]` with the rows it enters (global row indices).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arc {
    /// The lane.
    pub lane: LaneIx,
    /// The SKU.
    pub sku: SkuIx,
    /// Zone-balance row (coefficient -1).
    pub balance: usize,
    /// Stock row (coefficient +1).
    pub stock: usize,
    /// Lane-capacity row (coefficient +1), for capacitated lanes.
    pub lane_row: Option<usize>,
    /// Cost per unit shipped.
    pub cost: f64,
    /// Most units the arc can carry (stock and lane capacity).
    pub upper: f64,
}


/// The arcs (with family-local stock and lane rows) and the two families they enter.
pub fn arcs(scope: &Scope, balance: &Balance) -> (Stock, Lane, Vec<Arc>) {
    let (problem, network) = (scope.problem, scope.network);
    let mut stock_row: HashMap<usize, usize> = HashMap::new();
    let mut lane_row: HashMap<LaneIx, usize> = HashMap::new();
    let (mut stock, mut lanes, mut arcs) = (Vec::new(), Vec::new(), Vec::new());
    for (b, &(zone, sku, _)) in balance.rows.iter().enumerate() {
        for &l in &network.lanes_into_zone[zone as usize] {
            let lane = &problem.lanes[l as usize];
            let Some(&si) = network.stock_index.get(&(lane.warehouse, sku)) else { continue };
            let s_row = *stock_row.entry(si).or_insert_with(|| {
                stock.push(si);
                stock.len() - 1
            });
            let l_row = lane.capacity.map(|_| {
                *lane_row.entry(l).or_insert_with(|| {
                    lanes.push(l);
                    lanes.len() - 1
                })
            });
            let avail = problem.stock[si].available();
            let upper = lane.capacity.map_or(avail, |c| c.min(avail));
            arcs.push(Arc { lane: l, sku, balance: b, stock: s_row, lane_row: l_row, cost: lane.cost_per_unit, upper });
        }
    }
    (Stock::new(problem, stock), Lane::new(problem, lanes), arcs)
}
