//! A plan version in memory, indexed by customer, and the live view of supply
//! that decisions are checked against.
//!
//! Why this shape: the decision service answers thousands of requests a second
//! from millions of eligibility rows, so a version is loaded once into flat arrays
//! (offer, tier, zone and SKU names interned to small integers; one CSR array of
//! entries by customer). Everything that depends on live inventory is folded into
//! [`LiveSupply`], a few small arrays per (zone, SKU); an inventory event changes
//! only the cells its stock point serves (O(1) in the number of events since the
//! plan), so a decision is a hash lookup plus a scan of that customer's offers.

use std::collections::{HashMap, HashSet};

use allot_scenarios::{PlanStore, ServingContext, StoreError};
use chrono::{DateTime, Utc};

/// One (customer, offer) row of the plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub offer: u32,
    pub expected_value: f32,
    /// Acceptance probability of the pair.
    pub p: f32,
    /// Rank among the plan's eligible offers (1 = best); 0 when not eligible.
    pub rank: u32,
    pub reason: u16,
}

/// A customer as the plan saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomerFacts {
    pub zone: u32,
    pub tier: u32,
    pub consent: bool,
    pub suppressed: bool,
    pub max_offers: Option<u32>,
}

/// A plan's customers by id. Why foldhash, not std's SipHash: every decision
/// looks its customer up here, and the ids are the plan's own (a request
/// only reads the map, so there is nothing for it to flood); the seed is
/// still random per process.
pub(crate) type CustomerIx = foldhash::HashMap<Box<str>, u32>;

/// A plan version indexed for serving: read-only once built.
#[derive(Debug)]
pub struct PlanIndex {
    pub(crate) version: String,
    /// Whether the plan's offers name channels (model version 2): then a
    /// request's `channel` selects its offers; otherwise it is only echoed.
    pub(crate) channels_named: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) context: ServingContext,
    pub(crate) reasons: Vec<String>,
    pub(crate) customer_ix: CustomerIx,
    /// Bytes of `customer_ix`'s entries, counted once as it is built: summing
    /// them on each `/metrics` scrape held a worker for 6 ms at 1M customers.
    pub(crate) customer_ix_bytes: usize,
    pub(crate) customers: Vec<CustomerFacts>,
    pub(crate) start: Vec<u32>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) tier_ix: HashMap<String, u32>,
    pub(crate) skus: Vec<String>,
    pub(crate) sku_ix: HashMap<String, u32>,
    /// Warehouses with stock or a lane.
    pub(crate) warehouses: HashSet<String>,
    /// Offer -> (SKU, qty) of one acceptance.
    pub(crate) offer_items: Vec<Vec<(u32, f64)>>,
    /// Offer -> its lowest tier index allowed (tiers are numbered highest first).
    pub(crate) offer_min_tier: Vec<Option<u32>>,
    /// Stock points (warehouse, SKU) as in `context.stock`; (warehouse, SKU) -> point.
    pub(crate) point_ix: HashMap<(String, String), usize>,
    /// (zone * skus + sku) -> points whose warehouse has a usable lane to the zone.
    pub(crate) zone_points: Vec<Vec<usize>>,
    /// Point -> the (zone * skus + sku) cells it serves (the inverse of `zone_points`).
    pub(crate) point_cells: Vec<Vec<usize>>,
    /// (point * tiers + tier) -> units the plan reserved.
    pub(crate) reserved: Vec<f64>,
    /// (zone * skus + sku) * buckets + bucket -> the plan's bid price.
    pub(crate) bid: Vec<f64>,
    /// Number of time buckets of the plan's bid prices (1 without `bucket_days`).
    pub(crate) buckets: usize,
    /// Offer -> the bucket whose bid prices its items pay.
    pub(crate) offer_bucket: Vec<u32>,
    /// The contact policies indexed, when the plan has any.
    pub(crate) policy_index: Option<crate::contacts::PolicyIndex>,
    /// The version's demand plan (zone × SKU × day), live demand's yardstick.
    pub(crate) demand: Vec<allot_scenarios::plans::demand_plan::DemandPlanLine>,
}

/// Why an index could not be built from a stored version.
fn corrupt(store: &PlanStore, id: &str, reason: String) -> StoreError {
    StoreError::Corrupt { path: store.plan_dir(id), reason }
}

fn intern(names: &mut Vec<String>, ix: &mut HashMap<String, u32>, name: &str) -> u32 {
    if let Some(&i) = ix.get(name) {
        return i;
    }
    names.push(name.to_string());
    ix.insert(name.to_string(), names.len() as u32 - 1);
    names.len() as u32 - 1
}

impl PlanIndex {
    /// The value of one acceptance of a row's pair (unweighted): from its
    /// expected value `value × p - cost_per_contact`, else the offer's margin.
    pub(crate) fn accept_value(&self, e: &Entry) -> f64 {
        let offer = &self.context.offers[e.offer as usize];
        if e.p > 0.0 {
            (f64::from(e.expected_value) + offer.cost_per_contact) / f64::from(e.p)
        } else {
            offer.margin
        }
    }

    /// The cost of the contact a row's pair takes, per expected acceptance
    /// (`cost_per_contact / p`; 0 without a cost).
    pub(crate) fn contact_per_accept(&self, e: &Entry) -> f64 {
        let cost = self.context.offers[e.offer as usize].cost_per_contact;
        if cost > 0.0 && e.p > 0.0 {
            cost / f64::from(e.p)
        } else {
            0.0
        }
    }

    /// Loads and indexes one stored plan version.
    pub fn load(store: &PlanStore, id: &str) -> Result<Self, StoreError> {
        let manifest = store.manifest(id)?;
        let context = store.serving(id)?;
        let demand = allot_scenarios::plans::demand_plan::read_demand_plan(&store.plan_dir(id))?;
        let tier_ix: HashMap<String, u32> = context.tiers.iter().enumerate().map(|(i, t)| (t.name.clone(), i as u32)).collect();
        let offer_ix: HashMap<&str, u32> = context.offers.iter().enumerate().map(|(i, o)| (o.offer_id.as_str(), i as u32)).collect();
        let (mut zones, mut zone_ix) = (Vec::new(), HashMap::new());
        let (mut skus, mut sku_ix) = (Vec::new(), HashMap::new());
        for lane in &context.lanes {
            intern(&mut zones, &mut zone_ix, &lane.zone);
        }
        for b in &context.bid_prices {
            intern(&mut zones, &mut zone_ix, &b.zone);
        }
        let offer_items: Vec<Vec<(u32, f64)>> =
            context.offers.iter().map(|o| o.items.iter().map(|i| (intern(&mut skus, &mut sku_ix, &i.sku), i.qty)).collect()).collect();
        let mut offer_min_tier = Vec::with_capacity(context.offers.len());
        for o in &context.offers {
            let min = match &o.min_tier {
                Some(t) => Some(*tier_ix.get(t).ok_or_else(|| corrupt(store, id, format!("offer {} names unknown tier {t}", o.offer_id)))?),
                None => None,
            };
            offer_min_tier.push(min);
        }

        // Customers first (every customer of the scenario, with or without rows).
        let mut customer_ix = CustomerIx::default();
        let mut customer_ix_bytes = 0;
        let mut customers = Vec::new();
        let mut bad = None;
        store.for_each_customer(id, |r| {
            let Some(&tier) = tier_ix.get(r.tier) else {
                bad.get_or_insert_with(|| format!("customer {} has unknown tier {}", r.customer_id, r.tier));
                return;
            };
            let zone = intern(&mut zones, &mut zone_ix, r.zone);
            if customer_ix.insert(r.customer_id.into(), customers.len() as u32).is_none() {
                customer_ix_bytes += r.customer_id.len() + 16 + 4 + 8;
            }
            customers.push(CustomerFacts { zone, tier, consent: r.consent, suppressed: r.suppressed, max_offers: r.max_offers });
        })?;
        if let Some(reason) = bad {
            return Err(corrupt(store, id, reason));
        }

        // Eligibility rows, grouped by customer (counting sort, stable).
        let (mut reasons, mut reason_ix) = (Vec::new(), HashMap::new());
        let mut rows: Vec<(u32, Entry)> = Vec::new();
        store.for_each_eligibility(id, |r| {
            let (Some(&c), Some(&offer)) = (customer_ix.get(r.customer_id), offer_ix.get(r.offer_id)) else {
                bad.get_or_insert_with(|| format!("eligibility row ({}, {}) names an unknown customer or offer", r.customer_id, r.offer_id));
                return;
            };
            let reason = intern(&mut reasons, &mut reason_ix, r.reason) as u16;
            let rank = if r.eligible { r.rank.unwrap_or(u32::MAX) } else { 0 };
            // Plans saved before the `p` column: the margin was the only value and no contact was paid.
            let margin = context.offers[offer as usize].margin;
            let p = r.p.unwrap_or(if margin > 0.0 { r.expected_value / margin } else { 0.0 });
            rows.push((c, Entry { offer, expected_value: r.expected_value as f32, p: p as f32, rank, reason }));
        })?;
        if let Some(reason) = bad {
            return Err(corrupt(store, id, reason));
        }
        let mut start = vec![0u32; customers.len() + 1];
        for (c, _) in &rows {
            start[*c as usize + 1] += 1;
        }
        for c in 0..customers.len() {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut entries = vec![Entry { offer: 0, expected_value: 0.0, p: 0.0, rank: 0, reason: 0 }; rows.len()];
        for (c, e) in rows {
            entries[fill[c as usize] as usize] = e;
            fill[c as usize] += 1;
        }
        for c in 0..customers.len() {
            // Eligible first by rank, then excluded in offer order.
            entries[start[c] as usize..start[c + 1] as usize].sort_by_key(|e| (e.rank == 0, e.rank, e.offer));
        }

        // Supply: stock points, which zone each serves, reservations, bid prices.
        let mut point_ix = HashMap::new();
        let mut point_sku = Vec::new();
        for s in &context.stock {
            point_ix.insert((s.warehouse_id.clone(), s.sku.clone()), point_sku.len());
            point_sku.push(intern(&mut skus, &mut sku_ix, &s.sku));
        }
        let n_tiers = context.tiers.len();
        let mut reserved = vec![0.0; point_sku.len() * n_tiers];
        for r in &context.reservations {
            if let (Some(&p), Some(&t)) = (point_ix.get(&(r.warehouse_id.clone(), r.sku.clone())), tier_ix.get(&r.tier)) {
                reserved[p * n_tiers + t as usize] += r.units;
            }
        }
        let (n_zones, n_skus) = (zones.len(), skus.len());
        let mut zone_points = vec![Vec::new(); n_zones * n_skus];
        let mut points_at: HashMap<&str, Vec<usize>> = HashMap::new();
        for (p, s) in context.stock.iter().enumerate() {
            points_at.entry(s.warehouse_id.as_str()).or_default().push(p);
        }
        for lane in &context.lanes {
            let z = zone_ix[&lane.zone] as usize;
            for &p in points_at.get(lane.warehouse_id.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                zone_points[z * n_skus + point_sku[p] as usize].push(p);
            }
        }
        let mut point_cells = vec![Vec::new(); point_sku.len()];
        for (cell, points) in zone_points.iter().enumerate() {
            for &p in points {
                point_cells[p].push(cell);
            }
        }
        let warehouses = context.stock.iter().map(|s| s.warehouse_id.clone()).chain(context.lanes.iter().map(|l| l.warehouse_id.clone())).collect();
        let offer_bucket: Vec<u32> = context.offers.iter().map(|o| o.bucket).collect();
        let buckets = context.bid_prices.iter().map(|b| b.bucket).chain(offer_bucket.iter().copied()).max().map_or(1, |b| b as usize + 1);
        let mut bid = vec![0.0; n_zones * n_skus * buckets];
        for b in &context.bid_prices {
            if let (Some(&z), Some(&s)) = (zone_ix.get(&b.zone), sku_ix.get(&b.sku)) {
                bid[(z as usize * n_skus + s as usize) * buckets + b.bucket as usize] = b.price;
            }
        }
        let policy_index = match &context.contact_policies {
            Some(policies) => {
                let offers = context.offers.iter().map(|o| o.offer_id.clone());
                let index = crate::contacts::PolicyIndex::new(policies, offers, &customer_ix, |visit| store.for_each_contact(id, visit))?;
                Some(index.map_err(|reason| corrupt(store, id, reason))?)
            }
            None => None,
        };
        Ok(PlanIndex {
            version: id.to_string(),
            channels_named: context.offers.iter().any(|o| o.channel != allot_optimizer::DEFAULT_CHANNEL),
            created_at: manifest.created_at,
            context,
            reasons,
            customer_ix,
            customer_ix_bytes,
            customers,
            start,
            entries,
            tier_ix,
            skus,
            sku_ix,
            warehouses,
            offer_items,
            offer_min_tier,
            point_ix,
            zone_points,
            point_cells,
            reserved,
            bid,
            buckets,
            offer_bucket,
            policy_index,
            demand,
        })
    }

    /// The plan version this index serves.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of customers indexed.
    pub fn customers(&self) -> usize {
        self.customers.len()
    }

    /// When the version was saved.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Bytes held by the index's large arrays (entries, customers, the id map):
    /// the figure that grows with the plan.
    pub fn approx_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>() + self.customers.len() * std::mem::size_of::<CustomerFacts>() + self.start.len() * 4 + self.customer_ix_bytes
    }

    /// Whether the plan stocks or ships from this warehouse.
    pub fn has_warehouse(&self, id: &str) -> bool {
        self.warehouses.contains(id)
    }

    /// Whether the plan knows this SKU (in an offer or in stock).
    pub fn has_sku(&self, sku: &str) -> bool {
        self.sku_ix.contains_key(sku)
    }

    pub(crate) fn rows(&self, c: u32) -> &[Entry] {
        &self.entries[self.start[c as usize] as usize..self.start[c as usize + 1] as usize]
    }

    pub(crate) fn offer_id(&self, o: u32) -> &str {
        &self.context.offers[o as usize].offer_id
    }

    /// The day of the plan's horizon `date` falls on (0 = its first), if it
    /// does: what live contacts, acceptances and orders count against.
    pub(crate) fn horizon_day(&self, date: chrono::NaiveDate) -> Option<usize> {
        let d = (date - self.context.horizon_start).num_days();
        (0..i64::from(self.context.horizon_days)).contains(&d).then_some(d as usize)
    }

    /// The index of an offer by id (events name offers; a plan has tens to
    /// hundreds, so a scan is cheaper than a map to keep).
    pub(crate) fn offer_index(&self, offer_id: &str) -> Option<u32> {
        self.context.offers.iter().position(|o| o.offer_id == offer_id).map(|o| o as u32)
    }

    fn tiers(&self) -> usize {
        self.context.tiers.len()
    }
}

/// An inventory movement folded into live stock.
#[derive(Debug, Clone)]
pub(crate) struct StockMove {
    pub warehouse_id: String,
    pub sku: String,
    /// Signed units: negative for orders.
    pub delta: f64,
    /// Tier of the customer an order was for, if known.
    pub tier: Option<String>,
    /// A receipt (units arrived), which the plan's expected inbound absorbs first.
    pub receipt: bool,
}

/// Live supply for one plan: the plan's stock plus every inventory event since the
/// plan was saved, and what follows for decisions.
///
/// The two live rules, per (zone, SKU) of the customer's zone:
/// - **tier protection**: at each stock point, units reserved for tiers above the
///   customer's and not yet consumed by those tiers' orders are off limits; a
///   customer's tier may use `sum over points of max(0, live - protected_above)`;
/// - **bid-price control**: the plan's bid price is divided by the fraction of
///   planned stock still there, `rho = live / planned` (over the points serving
///   the zone), so it rises as stock falls below plan and is infinite at zero.
///
/// Why incremental: a move changes one stock point, so only the cells that point
/// serves are recomputed ([`LiveSupply::apply`]); the cost of an event does not
/// grow with the number of events since the plan.
#[derive(Debug, Clone, Default)]
pub struct LiveSupply {
    /// Point -> live shippable units.
    pub(crate) live: Vec<f64>,
    /// (point * tiers + tier) -> units that tier's orders took.
    pub(crate) consumed: Vec<f64>,
    /// (zone * skus + sku) * tiers + tier -> units that tier may still promise.
    pub(crate) usable: Vec<f64>,
    /// (zone * skus + sku) * buckets + bucket -> live bid price.
    pub(crate) price: Vec<f64>,
    /// (zone * skus + sku) -> live units above safety stock, ignoring tiers (fallback rule).
    pub(crate) total: Vec<f64>,
    /// Events that named a warehouse and SKU the plan does not stock.
    pub(crate) unmatched: usize,
    /// Point -> units of the plan's inbound not received yet. Why: the
    /// plan's stock counts its inbound, so a receipt of that inbound adds
    /// nothing; a receipt is taken as its arrival first, and only the rest
    /// adds. When a receipt was in fact something else (a return, a
    /// transfer), live stock is low until the inbound itself arrives and
    /// adds in full: it never promises a unit twice.
    pub(crate) inbound_left: Vec<f64>,
}

impl LiveSupply {
    /// The plan's stock with `moves` folded in.
    pub(crate) fn compute<'a>(plan: &PlanIndex, moves: impl IntoIterator<Item = &'a StockMove>) -> Self {
        let n_tiers = plan.tiers();
        // Below safety stock a point starts negative: live moves fill the
        // shortfall first (only a positive level is promised, in `refresh_cell`).
        let live: Vec<f64> = plan.context.stock.iter().map(|s| s.available - s.short_of_safety).collect();
        let cells = plan.zone_points.len();
        let mut supply = LiveSupply {
            inbound_left: plan.context.stock.iter().map(|s| s.inbound).collect(),
            consumed: vec![0.0; live.len() * n_tiers],
            live,
            usable: vec![0.0; cells * n_tiers],
            price: vec![0.0; cells * plan.buckets],
            total: vec![0.0; cells],
            unmatched: 0,
        };
        for m in moves {
            supply.move_point(plan, m);
        }
        for cell in 0..cells {
            supply.refresh_cell(plan, cell);
        }
        supply
    }

    /// Folds one more move in: its stock point is looked up once, and only the
    /// cells that point serves are recomputed.
    pub(crate) fn apply(&mut self, plan: &PlanIndex, m: &StockMove) {
        if let Some(p) = self.move_point(plan, m) {
            for &cell in &plan.point_cells[p] {
                self.refresh_cell(plan, cell);
            }
        }
    }

    /// Changes the move's stock point (not the cells); returns the point.
    fn move_point(&mut self, plan: &PlanIndex, m: &StockMove) -> Option<usize> {
        let n_tiers = plan.tiers();
        let Some(&p) = plan.point_ix.get(&(m.warehouse_id.clone(), m.sku.clone())) else {
            self.unmatched += 1;
            return None;
        };
        let mut delta = m.delta;
        if m.receipt && delta > 0.0 {
            let arrived = delta.min(self.inbound_left[p]);
            self.inbound_left[p] -= arrived;
            delta -= arrived;
        }
        self.live[p] += delta;
        if let (true, Some(&t)) = (m.delta < 0.0, m.tier.as_ref().and_then(|t| plan.tier_ix.get(t))) {
            self.consumed[p * n_tiers + t as usize] -= m.delta;
        }
        Some(p)
    }

    fn refresh_cell(&mut self, plan: &PlanIndex, cell: usize) {
        let n_tiers = plan.tiers();
        let points = &plan.zone_points[cell];
        // Units still held for tiers strictly above `tier` at point `p`.
        let protected_above = |p: usize, tier: usize| -> f64 {
            (0..tier).map(|t| (plan.reserved[p * n_tiers + t] - self.consumed[p * n_tiers + t]).max(0.0)).sum()
        };
        let planned: f64 = points.iter().map(|&p| plan.context.stock[p].available).sum();
        let now: f64 = points.iter().map(|&p| self.live[p].max(0.0)).sum();
        let usable: Vec<f64> = (0..n_tiers).map(|t| points.iter().map(|&p| (self.live[p] - protected_above(p, t)).max(0.0)).sum()).collect();
        self.usable[cell * n_tiers..(cell + 1) * n_tiers].copy_from_slice(&usable);
        self.total[cell] = now;
        let buckets = plan.buckets;
        for (price, &bid) in self.price[cell * buckets..(cell + 1) * buckets].iter_mut().zip(&plan.bid[cell * buckets..(cell + 1) * buckets]) {
            *price = if now >= planned || planned <= 0.0 {
                bid
            } else if now <= 0.0 {
                f64::INFINITY
            } else {
                bid * planned / now
            };
        }
    }
}
