//! The network's columns: one shipment arc per usable lane, SKU and zone-balance
//! row (so per time bucket), entering the zone balance, the warehouse's
//! cumulative stock rows and the lane's capacity. The stock and lane families
//! get their rows here, in the order the arcs first use them.

use std::collections::HashMap;
use std::ops::Range;

use super::balance::Balance;
use super::family::Scope;
use super::lane::Lane;
use super::stock::Stock;
use crate::allocation::Flow;
use crate::model::{BucketIx, LaneIx, Problem, SkuIx};

/// One shipment arc `f[lane, sku, bucket]` with the rows it enters (global row indices).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arc {
    /// The lane.
    pub lane: LaneIx,
    /// The SKU.
    pub sku: SkuIx,
    /// The time bucket the units are delivered in.
    pub bucket: BucketIx,
    /// Zone-balance row (coefficient -1).
    pub balance: usize,
    /// First cumulative stock row the arc enters (coefficient +1 on every row
    /// up to `stock_end`): the stock through its own bucket and every later one.
    pub stock: usize,
    /// End (exclusive) of the arc's stock rows.
    pub stock_end: usize,
    /// Lane-capacity row (coefficient +1), for capacitated lanes.
    pub lane_row: Option<usize>,
    /// Cost per unit shipped.
    pub cost: f64,
    /// Most units the arc can carry (stock through its bucket and lane capacity).
    pub upper: f64,
}

impl Arc {
    /// The cumulative stock rows the arc enters, each with coefficient +1.
    pub fn stock_rows(&self) -> Range<usize> {
        self.stock..self.stock_end
    }

    /// `units` shipped along this arc.
    pub fn flow(&self, units: f64) -> Flow {
        Flow { lane: self.lane, sku: self.sku, units, bucket: self.bucket }
    }

    /// Shifts the arc's family-local stock and lane rows to global rows.
    pub(super) fn shift(&mut self, stock_at: usize, lane_at: usize) {
        self.stock += stock_at;
        self.stock_end += stock_at;
        self.lane_row = self.lane_row.map(|l| l + lane_at);
    }
}

/// The buckets that get a cumulative stock row of their own for stock point
/// `si`: every bucket whose cumulative availability is below the whole
/// horizon's, then the last bucket. A later bucket with the horizon's
/// availability would repeat the last row over fewer arcs (implied by it), so
/// without receipts inside the horizon there is one row, as in version 1.
pub fn stock_buckets(problem: &Problem, si: usize) -> Vec<BucketIx> {
    let last = problem.buckets().count() as BucketIx - 1;
    let total = problem.available_through(si, last);
    let mut kept: Vec<BucketIx> = (0..last).take_while(|&t| problem.available_through(si, t) < total).collect();
    kept.push(last);
    kept
}

/// The arcs (with family-local stock and lane rows) and the two families they enter.
pub fn arcs(scope: &Scope, balance: &Balance) -> (Stock, Lane, Vec<Arc>) {
    let (problem, network) = (scope.problem, scope.network);
    // Per stock point: its first local row and its rows' buckets.
    let mut stock_rows: HashMap<usize, (usize, Vec<BucketIx>)> = HashMap::new();
    let mut lane_row: HashMap<LaneIx, usize> = HashMap::new();
    let (mut stock, mut lanes, mut arcs) = (Vec::new(), Vec::new(), Vec::new());
    for (b, &((zone, sku, bucket), _)) in balance.rows.iter().enumerate() {
        for &l in &network.lanes_into_zone[zone as usize] {
            let lane = &problem.lanes[l as usize];
            let Some(&si) = network.stock_index.get(&(lane.warehouse, sku)) else { continue };
            let (first, kept) = stock_rows.entry(si).or_insert_with(|| {
                let kept = stock_buckets(problem, si);
                let first = stock.len();
                stock.extend(kept.iter().map(|&t| (si, t)));
                (first, kept)
            });
            // The arc's own bucket's row, or the first kept one after it.
            let own = kept.partition_point(|&t| t < bucket);
            let l_row = lane.capacity.map(|_| {
                *lane_row.entry(l).or_insert_with(|| {
                    lanes.push(l);
                    lanes.len() - 1
                })
            });
            let avail = problem.available_through(si, kept[own]);
            let upper = lane.capacity.map_or(avail, |c| c.min(avail));
            let (stock, stock_end) = (*first + own, *first + kept.len());
            arcs.push(Arc { lane: l, sku, bucket, balance: b, stock, stock_end, lane_row: l_row, cost: lane.cost_per_unit, upper });
        }
    }
    (Stock::new(problem, stock), Lane::new(problem, lanes), arcs)
}
