//! The customers' side of the decomposition, as messages: everything the driver
//! asks of the customers is one [`MapRequest`], answered by every partition with
//! one [`MapReply`] that the driver reduces in partition order.
//!
//! Why messages: the same driver (multiplier update, network side, repair LP)
//! runs over customers held in this process ([`LocalCustomers`], rayon over
//! ranges of one candidate array) or held by long-lived workers elsewhere (the
//! Ray path: each worker owns an [`OwnedPartition`] and answers encoded
//! requests). [`handle`] is the one piece of code that serves a request in both.
//!
//! A partition keeps its own state between requests, so that nothing per
//! candidate ever crosses the wire except the final plan: the running average of
//! responses (primal recovery), the repair's cells and generous response, and
//! the best plan's exposures so far.

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::contact_policy::CustomerRows;
use super::kernel::{self, price_customers, CellPrices, KernelInput, PartitionSums, Scratch};
use super::cells::{self, CellSums, GENEROUS_MARGINS};
use super::error::DecomposedError;

/// What the driver asks of every partition of customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MapRequest {
    /// Price the customers; with `mix`, blend the response into the running
    /// average (`average += mix * (x - average)`).
    Price { prices: CellPrices, mix: Option<f64> },
    /// The repair's map: assign every candidate its cell at these prices, compute
    /// the generous response at every margin of `GENEROUS_MARGINS`, and return
    /// the cell sums of the averaged, generous and kept responses.
    RepairCells { prices: CellPrices },
    /// Keep the mix of responses the repair LP chose as the partition's best
    /// exposures (see [`Mix`]).
    Keep(Mix),
    /// Net value per offer of the kept exposures (how the relaxation ranks custom offers).
    OfferValues { prices: CellPrices },
    /// The kept exposures and every customer's contact-cap price: the plan.
    Finish { prices: CellPrices },
    /// Start the kept exposures from an earlier plan's (a warm re-plan), so
    /// the first repair can keep what that plan found. A customer whose
    /// seeded exposures break one of its own rules (the cap or a contact
    /// policy changed since) starts at 0.
    Seed(SeedPlan),
}

/// Exposures per (customer, offer), sorted by customer then offer; customers
/// by index in the receiving side's numbering (global from the driver, local
/// inside a [`PartitionWorker`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedPlan {
    pub customer: Vec<u32>,
    pub offer: Vec<u32>,
    pub x: Vec<f32>,
}

impl SeedPlan {
    /// The pairs of `customers` (ascending global indices), renumbered to
    /// their positions there.
    fn local_to(&self, customers: &[u32]) -> SeedPlan {
        let mut out = SeedPlan::default();
        for ((&c, &o), &x) in self.customer.iter().zip(&self.offer).zip(&self.x) {
            if let Ok(local) = customers.binary_search(&c) {
                out.customer.push(local as u32);
                out.offer.push(o);
                out.x.push(x);
            }
        }
        out
    }
}

/// A partition's answer to one [`MapRequest`] (same variant order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MapReply {
    /// Sums of the smoothed response and the dual value.
    Price(PartitionSums),
    /// Cell sums of the averaged response, of the generous one at each
    /// margin and of the kept exposures (the best plan so far), at the new cells.
    RepairCells { average: Vec<CellSums>, generous: Vec<Vec<CellSums>>, kept: Vec<CellSums> },
    /// The exposures are kept.
    Kept,
    /// Net value per offer.
    OfferValues(Vec<f64>),
    /// Per customer of the partition (global index), in order: its contact-cap
    /// price; the prices of its contact-policy rows, in row order; and the
    /// kept exposure of each of its candidates, in candidate order.
    Finish { customers: Vec<u32>, cap_price: Vec<f64>, policy_price: Vec<f64>, x: Vec<f64> },
}

/// Per-cell scales of the three responses a partition holds, as the repair
/// LP chose them: the new kept exposures are
/// `average * average[cell] + generous * generous[cell] + kept * kept[cell]`.
/// An empty vector means that response is not used. Why the kept plan is a
/// column: the next plan can only improve on it, and mixing it with a new
/// response refills a customer's contact slot that one scaled-down offer
/// freed (see `repair.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    pub average: Vec<f64>,
    pub generous: Vec<f64>,
    pub kept: Vec<f64>,
    /// Which margin's generous response (of `GENEROUS_MARGINS`) `generous` scales.
    pub margin: usize,
}

/// Per-candidate state a partition keeps between requests.
#[derive(Debug, Clone, Default)]
pub struct PartitionState {
    /// Running average of the smoothed responses (primal recovery).
    pub average: Vec<f32>,
    /// Repair cell of each candidate at the last `RepairCells` prices.
    pub cell: Vec<u32>,
    /// The generous responses at the last `RepairCells` prices, a value per
    /// margin of `GENEROUS_MARGINS` for each candidate in turn.
    pub generous: Vec<f32>,
    /// Exposures of the best repaired plan so far.
    pub kept: Vec<f64>,
}

/// A mutable view of the state of a range of candidates.
#[derive(Debug)]
pub struct StateSlice<'a> {
    average: &'a mut [f32],
    cell: &'a mut [u32],
    generous: &'a mut [f32],
    kept: &'a mut [f64],
}

impl PartitionState {
    /// Zeroed state for `candidates` candidates.
    pub fn new(candidates: usize) -> Self {
        PartitionState {
            average: vec![0.0; candidates],
            cell: vec![0; candidates],
            generous: vec![0.0; candidates * GENEROUS_MARGINS.len()],
            kept: vec![0.0; candidates],
        }
    }

    /// The whole state as one slice.
    pub fn all(&mut self) -> StateSlice<'_> {
        StateSlice { average: &mut self.average, cell: &mut self.cell, generous: &mut self.generous, kept: &mut self.kept }
    }

    /// Disjoint slices of `lengths` candidates each, in order.
    fn split(&mut self, lengths: impl Iterator<Item = usize>) -> Vec<StateSlice<'_>> {
        let mut rest = self.all();
        let mut out = Vec::new();
        for len in lengths {
            let (average, a) = std::mem::take(&mut rest.average).split_at_mut(len);
            let (cell, c) = std::mem::take(&mut rest.cell).split_at_mut(len);
            let (generous, g) = std::mem::take(&mut rest.generous).split_at_mut(len * GENEROUS_MARGINS.len());
            let (kept, k) = std::mem::take(&mut rest.kept).split_at_mut(len);
            out.push(StateSlice { average, cell, generous, kept });
            rest = StateSlice { average: a, cell: c, generous: g, kept: k };
        }
        out
    }
}

/// Serves one request for the customers `customers` of `input`, whose state
/// (indexed from the range's first candidate) is `state`. The one implementation
/// of the customers' side, wherever they are held.
pub fn handle(input: &KernelInput, customers: Range<usize>, state: StateSlice, scratch: &mut Scratch, request: &MapRequest) -> MapReply {
    let first = input.customer_start[customers.start] as usize;
    match request {
        MapRequest::Price { prices, mix } => {
            let blend = mix.map(|mix| (&mut *state.average, mix));
            MapReply::Price(price_customers(input, prices, customers, scratch, blend))
        }
        MapRequest::RepairCells { prices } => {
            let mut repair_scratch = cells::RepairScratch::default();
            let margins = GENEROUS_MARGINS.len();
            for c in customers.clone() {
                let range = input.customer_start[c] as usize - first..input.customer_start[c + 1] as usize - first;
                let generous = &mut state.generous[range.start * margins..range.end * margins];
                cells::cells_and_generous(input, prices, c, &mut state.cell[range], generous, &mut repair_scratch);
            }
            let n_cells = cells::cell_count(input, prices);
            let (average, kept) = (&*state.average, &*state.kept);
            let average = cells::cell_sums(input, customers.clone(), first, |i| f64::from(average[i]), state.cell, n_cells);
            let generous_at = |m: usize| {
                let generous = &*state.generous;
                cells::cell_sums(input, customers.clone(), first, |i| f64::from(generous[i * margins + m]), state.cell, n_cells)
            };
            let generous = (0..margins).map(generous_at).collect();
            let kept = cells::cell_sums(input, customers, first, |i| kept[i], state.cell, n_cells);
            MapReply::RepairCells { average, generous, kept }
        }
        MapRequest::Keep(mix) => {
            let scale = |scales: &[f64], i: usize| scales.get(state.cell[i] as usize).copied().unwrap_or(0.0);
            assert!(mix.margin < GENEROUS_MARGINS.len(), "a kept mix names margin {} of {}", mix.margin, GENEROUS_MARGINS.len());
            let generous_at = |i: usize| state.generous[i * GENEROUS_MARGINS.len() + mix.margin];
            for (i, kept) in state.kept.iter_mut().enumerate() {
                let (a, g) = (f64::from(state.average[i]), f64::from(generous_at(i)));
                *kept = a * scale(&mix.average, i) + g * scale(&mix.generous, i) + *kept * scale(&mix.kept, i);
            }
            MapReply::Kept
        }
        MapRequest::OfferValues { prices } => {
            let mut net = vec![0.0; input.margin.len()];
            for c in customers {
                let zone = input.zone[c] as usize;
                for k in input.customer_start[c] as usize..input.customer_start[c + 1] as usize {
                    let x = state.kept[k - first];
                    if x > 0.0 {
                        net[input.offer[k] as usize] += x * (input.gain(c, k).0 - prices.accept_charge(input, zone, k));
                    }
                }
            }
            MapReply::OfferValues(net)
        }
        MapRequest::Finish { prices } => {
            let (mut reduced, mut gamma, mut row_prices) = (Vec::new(), Vec::new(), Vec::new());
            let mut policy_price = Vec::new();
            let cap_price = customers
                .clone()
                .map(|c| {
                    kernel::reduced_values(input, prices, c, &mut reduced, &mut gamma);
                    let cap = kernel::customer_prices(input, c, &reduced, scratch, &mut row_prices);
                    policy_price.extend_from_slice(&row_prices);
                    cap
                })
                .collect();
            MapReply::Finish { customers: customers.map(|c| c as u32).collect(), cap_price, policy_price, x: state.kept.to_vec() }
        }
        MapRequest::Seed(seed) => {
            let mut at = seed.customer.partition_point(|&c| (c as usize) < customers.start);
            for c in customers {
                let (lo, hi) = (input.customer_start[c] as usize, input.customer_start[c + 1] as usize);
                let kept = &mut state.kept[lo - first..hi - first];
                kept.fill(0.0);
                while at < seed.customer.len() && seed.customer[at] as usize == c {
                    if let Some(k) = (lo..hi).find(|&k| input.offer[k] == seed.offer[at]) {
                        kept[k - lo] = f64::from(seed.x[at]);
                    }
                    at += 1;
                }
                if !keeps_own_rules(input, c, kept) {
                    kept.fill(0.0);
                }
            }
            MapReply::Kept
        }
    }
}

/// Whether exposures `x` of customer `c`'s candidates keep its own rules:
/// bounds, contact cap and contact-policy rows (with a float tolerance).
fn keeps_own_rules(input: &KernelInput, c: usize, x: &[f64]) -> bool {
    const TOL: f64 = 1e-6;
    let within_bounds = x.iter().all(|&v| (0.0..=1.0 + TOL).contains(&v));
    let within_cap = x.iter().sum::<f64>() <= f64::from(input.cap[c]) + TOL;
    let within_policy = input.policy.is_none_or(|policy| {
        policy.of_customer(c).all(|row| policy.members(row).iter().map(|&m| x[m as usize]).sum::<f64>() <= policy.rhs[row] + TOL)
    });
    within_bounds && within_cap && within_policy
}

/// Where the customers are held, as the driver sees them: something that
/// answers a request with one reply per partition, in a fixed order.
pub trait CustomerSide {
    /// Sends `request` to every partition and returns their replies in partition order.
    fn map(&mut self, request: &MapRequest) -> Result<Vec<MapReply>, DecomposedError>;
}

/// Customers per unit of parallel work for pricing: large enough to amortize the
/// per-partition sums, small enough to balance two to sixteen cores.
const CUSTOMERS_PER_PARTITION: usize = 8192;

/// Most blocks of customers whose repair cell sums are kept apart before the
/// reduction: the cell sums are large, so a fixed count keeps memory bounded
/// (and the order of the sums, hence the result, fixed).
const REDUCE_BLOCKS: usize = 64;

/// How one set of customers is cut for rayon: many small ranges for pricing,
/// at most [`REDUCE_BLOCKS`] for the requests with large replies.
#[derive(Debug, Clone)]
struct Ranges {
    price: Vec<Range<usize>>,
    block: Vec<Range<usize>>,
}

impl Ranges {
    fn new(customers: usize) -> Self {
        let n = customers;
        // At least one range, empty when there are no customers: every request
        // gets a reply of the right shape.
        let ranges = |size: usize| (0..n.div_ceil(size).max(1)).map(|i| (i * size).min(n)..((i + 1) * size).min(n)).collect::<Vec<_>>();
        Ranges { price: ranges(CUSTOMERS_PER_PARTITION), block: ranges(n.div_ceil(REDUCE_BLOCKS).max(CUSTOMERS_PER_PARTITION)) }
    }

    /// Serves `request` over every range in parallel; replies in range
    /// order, except the repair's cell sums: those come merged into one
    /// reply ([`MapReply::merge`], the same sums in the same order), a few
    /// blocks at a time ([`REPAIR_WAVE_PER_THREAD`]).
    fn map(&self, input: &KernelInput, state: &mut PartitionState, request: &MapRequest) -> Result<Vec<MapReply>, DecomposedError> {
        let ranges = match request {
            MapRequest::Price { .. } => &self.price,
            _ => &self.block,
        };
        let starts = input.customer_start;
        let slices = state.split(ranges.iter().map(|r| (starts[r.end] - starts[r.start]) as usize));
        let serve = |scratch: &mut Scratch, (range, state): (&Range<usize>, StateSlice)| handle(input, range.clone(), state, scratch, request);
        if !matches!(request, MapRequest::RepairCells { .. }) {
            return Ok(ranges.par_iter().zip(slices).map_init(Scratch::default, serve).collect());
        }
        let wave = REPAIR_WAVE_PER_THREAD * rayon::current_num_threads().max(1);
        let mut blocks = ranges.iter().zip(slices);
        let mut merged: Option<MapReply> = None;
        loop {
            let this_wave: Vec<_> = blocks.by_ref().take(wave).collect();
            if this_wave.is_empty() {
                break;
            }
            let replies: Vec<MapReply> = this_wave.into_par_iter().map_init(Scratch::default, serve).collect();
            merged = Some(MapReply::merge(merged.into_iter().chain(replies).collect())?);
        }
        Ok(merged.into_iter().collect())
    }
}

/// Blocks per thread whose repair cell sums are computed at once before they
/// are added to the running total. Why not all [`REDUCE_BLOCKS`] at once:
/// each block's sums are about 1.4 MB a kind (`allot generate`'s
/// defaults: 40 offers, 20 zones, 4 slots, 14 bands), four kinds (the
/// average, the kept plan, two margins' generous responses), so 64 blocks
/// held 370 MB at once, at every repair: the peak of a 1M-customer plan
/// was 1,164 MiB, 898 MiB with waves (the same plan). The sums are added
/// in block order either way.
const REPAIR_WAVE_PER_THREAD: usize = 2;

/// The customers held in this process: the candidate arrays of the whole
/// scenario, cut into ranges that rayon prices in parallel.
pub struct LocalCustomers<'a> {
    input: KernelInput<'a>,
    state: PartitionState,
    ranges: Ranges,
}

impl<'a> LocalCustomers<'a> {
    /// All of `input`'s customers, with zeroed state.
    pub fn new(input: KernelInput<'a>) -> Self {
        let n = input.zone.len();
        let state = PartitionState::new(input.customer_start[n] as usize);
        LocalCustomers { input, state, ranges: Ranges::new(n) }
    }
}

impl CustomerSide for LocalCustomers<'_> {
    fn map(&mut self, request: &MapRequest) -> Result<Vec<MapReply>, DecomposedError> {
        self.ranges.map(&self.input, &mut self.state, request)
    }
}

impl MapReply {
    /// Merges the replies to one request into one: sums add up, in reply order
    /// (so the result does not depend on scheduling), and kept exposures
    /// concatenate. The driver reduces its partitions' replies with it, a
    /// worker its ranges'. Replies of different kinds or sizes are an error.
    pub fn merge(replies: Vec<MapReply>) -> Result<MapReply, DecomposedError> {
        let mut replies = replies.into_iter();
        let mut merged = replies.next().ok_or_else(|| DecomposedError::Workers("no partition answered".into()))?;
        for reply in replies {
            match (&mut merged, reply) {
                (MapReply::Price(total), MapReply::Price(part)) if total.same_shape(&part) => total.add(&part),
                (MapReply::RepairCells { average, generous, kept }, MapReply::RepairCells { average: a, generous: g, kept: k })
                    if average.len() == a.len() && kept.len() == k.len() && generous.len() == g.len() && generous.iter().zip(&g).all(|(t, p)| t.len() == p.len()) =>
                {
                    for (total, part) in [(average, a), (kept, k)].into_iter().chain(generous.iter_mut().zip(g)) {
                        total.iter_mut().zip(&part).for_each(|(t, s)| t.add(s));
                    }
                }
                (MapReply::OfferValues(total), MapReply::OfferValues(part)) if total.len() == part.len() => {
                    total.iter_mut().zip(&part).for_each(|(t, p)| *t += p)
                }
                (MapReply::Finish { customers, cap_price, policy_price, x }, MapReply::Finish { customers: c, cap_price: p, policy_price: r, x: v }) => {
                    customers.extend(c);
                    cap_price.extend(p);
                    policy_price.extend(r);
                    x.extend(v);
                }
                (MapReply::Kept, MapReply::Kept) => {}
                _ => return Err(DecomposedError::Workers("partitions answered one request with replies of different kinds or sizes".into())),
            }
        }
        Ok(merged)
    }
}

/// One partition's customers owned outright, with global customer indices: what
/// a remote worker loads and keeps in memory across iterations.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnedPartition {
    /// Global index of each customer of the partition, ascending.
    pub customers: Vec<u32>,
    /// `customer_start[i]..customer_start[i+1]` are local customer `i`'s candidates.
    pub customer_start: Vec<u32>,
    /// Offer of each candidate.
    pub offer: Vec<u32>,
    /// Acceptance probability of each candidate.
    pub p: Vec<f64>,
    /// Zone of each customer.
    pub zone: Vec<u32>,
    /// Fairness slot of each customer.
    pub slot: Vec<u32>,
    /// Objective weight of each customer.
    pub weight: Vec<f64>,
    /// Contact cap of each customer.
    pub cap: Vec<u32>,
    /// Margin of each offer (global).
    pub margin: Vec<f64>,
    /// Cost per contact of each offer (global).
    pub contact_cost: Vec<f64>,
    /// Value of one acceptance of each candidate, when the scenario gives per-pair values.
    pub accept_value: Option<Vec<f64>>,
    /// Number of zones.
    pub zones: usize,
    /// Fairness slots per offer.
    pub slots: usize,
    /// The customers' contact-policy rows (local customer indices).
    pub policy: CustomerRows,
}

impl OwnedPartition {
    /// Splits `input`'s customers into `n` partitions by `partition_of(customer)`.
    pub fn split(input: &KernelInput, n: usize, partition_of: impl Fn(usize) -> usize) -> Vec<OwnedPartition> {
        let mut parts: Vec<OwnedPartition> = (0..n)
            .map(|_| OwnedPartition {
                customer_start: vec![0],
                margin: input.margin.to_vec(),
                contact_cost: input.contact_cost.to_vec(),
                accept_value: input.accept_value.map(|_| Vec::new()),
                zones: input.zones,
                slots: input.slots,
                ..OwnedPartition::default()
            })
            .collect();
        for c in 0..input.zone.len() {
            let part = &mut parts[partition_of(c) % n];
            part.customers.push(c as u32);
            let range = input.customer_start[c] as usize..input.customer_start[c + 1] as usize;
            part.offer.extend_from_slice(&input.offer[range.clone()]);
            if let (Some(out), Some(all)) = (part.accept_value.as_mut(), input.accept_value) {
                out.extend_from_slice(&all[range.clone()]);
            }
            part.p.extend_from_slice(&input.p[range]);
            part.customer_start.push(part.offer.len() as u32);
            part.zone.push(input.zone[c]);
            part.slot.push(input.slot[c]);
            part.weight.push(input.weight[c]);
            part.cap.push(input.cap[c]);
            if let Some(policy) = input.policy {
                part.policy.push_customer_of(policy, c);
            }
        }
        parts
    }

    /// The kernel's view of this partition (local customer indices).
    pub fn input(&self) -> KernelInput<'_> {
        KernelInput {
            customer_start: &self.customer_start,
            offer: &self.offer,
            p: &self.p,
            zone: &self.zone,
            slot: &self.slot,
            weight: &self.weight,
            cap: &self.cap,
            margin: &self.margin,
            contact_cost: &self.contact_cost,
            accept_value: self.accept_value.as_deref(),
            zones: self.zones,
            slots: self.slots,
            policy: (!self.policy.is_empty()).then_some(&self.policy),
        }
    }
}

/// A worker's partition with its state: serves encoded requests, with rayon
/// over ranges of the partition (as many threads as the worker's pool has:
/// `RAYON_NUM_THREADS` in a Ray actor).
pub struct PartitionWorker {
    partition: OwnedPartition,
    state: PartitionState,
    ranges: Ranges,
}

impl PartitionWorker {
    /// A worker for `partition`, with zeroed state.
    pub fn new(partition: OwnedPartition) -> Self {
        let state = PartitionState::new(partition.offer.len());
        let ranges = Ranges::new(partition.customers.len());
        PartitionWorker { partition, state, ranges }
    }

    /// Customers and candidates held.
    pub fn size(&self) -> (usize, usize) {
        (self.partition.customers.len(), self.partition.offer.len())
    }

    /// Serves one request: [`handle`] over the whole partition, with customer
    /// indices in the reply made global.
    pub fn serve(&mut self, request: &MapRequest) -> Result<MapReply, DecomposedError> {
        let input = self.partition.input();
        let local;
        let request = match request {
            MapRequest::Seed(seed) => {
                local = MapRequest::Seed(seed.local_to(&self.partition.customers));
                &local
            }
            other => other,
        };
        let mut reply = MapReply::merge(self.ranges.map(&input, &mut self.state, request)?)?;
        if let MapReply::Finish { customers, .. } = &mut reply {
            for c in customers.iter_mut() {
                *c = self.partition.customers[*c as usize];
            }
        }
        Ok(reply)
    }

    /// Decodes a request, serves it and encodes the reply: the whole job of a
    /// remote worker.
    pub fn serve_bytes(&mut self, request: &[u8]) -> Result<Vec<u8>, DecomposedError> {
        let request = decode::<MapRequest>(request)?;
        encode(&self.serve(&request)?)
    }
}

/// Encodes a message for the wire (bincode: compact, and exact for floats).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, DecomposedError> {
    bincode::serialize(message).map_err(|e| DecomposedError::Workers(format!("cannot encode a message: {e}")))
}

/// Decodes a message from the wire.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecomposedError> {
    bincode::deserialize(bytes).map_err(|e| DecomposedError::Workers(format!("a malformed message ({} bytes): {e}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three customers (caps 1, 2, 2) with two candidates each (offers 0 and
    /// 1), one zone, no fairness.
    fn input<'a>(start: &'a [u32], offer: &'a [u32], p: &'a [f64], zone: &'a [u32], weight: &'a [f64], cap: &'a [u32], margin: &'a [f64]) -> KernelInput<'a> {
        KernelInput { customer_start: start, offer, p, zone, slot: zone, weight, cap, margin, contact_cost: &[0.0, 0.0], accept_value: None, zones: 1, slots: 1, policy: None }
    }

    fn finish_x(replies: Vec<MapReply>) -> Vec<(u32, f64)> {
        let mut out = Vec::new();
        for reply in replies {
            let MapReply::Finish { customers, x, .. } = reply else { panic!("{reply:?}") };
            // Two candidates per customer.
            out.extend(customers.iter().flat_map(|&c| [c, c]).zip(x));
        }
        out.sort_by_key(|a| a.0);
        out
    }

    /// A seed sets the kept plan by (global customer, offer); a customer whose
    /// seed breaks its cap starts at 0; a pair with no candidate is ignored.
    /// Partition workers get the same plan as the local side.
    #[test]
    fn a_seed_keeps_each_customers_rules_wherever_it_is_held() {
        let (start, offer, p) = ([0, 2, 4, 6], [0, 1, 0, 1, 0, 1], [0.5; 6]);
        let (zone, weight, cap, margin) = ([0, 0, 0], [1.0; 3], [1, 2, 2], [1.0, 1.0]);
        let input = input(&start, &offer, &p, &zone, &weight, &cap, &margin);
        // Customer 0 over its cap of 1; customer 1 fine; customer 2 names offer 7, which it has no candidate for.
        let seed = SeedPlan { customer: vec![0, 0, 1, 1, 2, 2], offer: vec![0, 1, 0, 1, 0, 7], x: vec![1.0, 0.5, 0.25, 1.0, 0.75, 1.0] };
        let expected = vec![(0, 0.0), (0, 0.0), (1, 0.25), (1, 1.0), (2, 0.75), (2, 0.0)];
        let prices = CellPrices { per_accept: vec![0.0; 2], per_exposure: vec![0.0; 2], per_value: vec![], epsilon: 0.01 };

        let mut local = LocalCustomers::new(input);
        assert_eq!(MapReply::merge(local.map(&MapRequest::Seed(seed.clone())).unwrap()).unwrap(), MapReply::Kept);
        assert_eq!(finish_x(local.map(&MapRequest::Finish { prices: prices.clone() }).unwrap()), expected);

        // Customers 0 and 2 in one partition, 1 in the other.
        let mut workers: Vec<PartitionWorker> = OwnedPartition::split(&input, 2, |c| c % 2).into_iter().map(PartitionWorker::new).collect();
        let replies: Vec<MapReply> = workers.iter_mut().map(|w| w.serve(&MapRequest::Seed(seed.clone())).unwrap()).collect();
        assert!(replies.iter().all(|r| *r == MapReply::Kept));
        let finished = workers.iter_mut().map(|w| w.serve(&MapRequest::Finish { prices: prices.clone() }).unwrap()).collect();
        assert_eq!(finish_x(finished), expected);
    }

    /// The repair's cell sums, computed a wave of blocks at a time, are the
    /// sums of every block added in block order: 100,000 customers make 13
    /// blocks, four waves of four on two threads (a pool of its own, so on
    /// any machine).
    #[test]
    fn the_repair_cell_sums_add_every_block_in_order() {
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(repair_cell_sums_add_every_block_in_order);
    }

    fn repair_cell_sums_add_every_block_in_order() {
        let n = 100_000;
        let start: Vec<u32> = (0..=n as u32).map(|c| 2 * c).collect();
        let offer: Vec<u32> = (0..2 * n as u32).map(|k| k % 3).collect();
        let p: Vec<f64> = (0..2 * n).map(|k| 0.05 + (k * 7919 % 1000) as f64 / 2500.0).collect();
        let (zone, weight, cap) = (vec![0; n], vec![1.0; n], vec![1; n]);
        let margin = [1.0, 2.0, 3.0];
        let input = KernelInput { customer_start: &start, offer: &offer, p: &p, zone: &zone, slot: &zone, weight: &weight, cap: &cap, margin: &margin, contact_cost: &[0.0; 3], accept_value: None, zones: 1, slots: 1, policy: None };
        let prices = CellPrices { per_accept: vec![0.9, 1.5, 2.0], per_exposure: vec![0.0; 3], per_value: vec![], epsilon: 0.01 };
        let mut local = LocalCustomers::new(input);
        // An averaged response to sum.
        local.map(&MapRequest::Price { prices: prices.clone(), mix: Some(1.0) }).unwrap();
        let request = MapRequest::RepairCells { prices };
        assert!(local.ranges.block.len() > 2 * REPAIR_WAVE_PER_THREAD * rayon::current_num_threads(), "{} blocks", local.ranges.block.len());
        let waves = MapReply::merge(local.map(&request).unwrap()).unwrap();

        // Each block alone, one after another, then added in order.
        let blocks = &local.ranges.block;
        let slices = local.state.split(blocks.iter().map(|r| (start[r.end] - start[r.start]) as usize));
        let one_by_one: Vec<MapReply> = blocks.iter().zip(slices).map(|(range, slice)| handle(&input, range.clone(), slice, &mut Scratch::default(), &request)).collect();
        let MapReply::RepairCells { average, .. } = &waves else { panic!("{waves:?}") };
        assert!(average.iter().map(|c| c.exposure).sum::<f64>() > 1000.0, "the averaged response is empty: nothing is tested");
        assert_eq!(waves, MapReply::merge(one_by_one).unwrap());
    }

    /// One repair pass answers every margin's generous response, and a kept
    /// mix takes the response of the margin it names. One customer, one
    /// candidate priced at 10% of its value below zero: the narrow margin
    /// (1%) leaves it out, the wide one (20%) offers it.
    #[test]
    fn a_kept_mix_takes_the_generous_response_of_its_margin() {
        let (start, offer, p) = ([0, 1], [0], [0.5]);
        let (zone, weight, cap, margin) = ([0], [1.0], [1], [1.0, 1.0]);
        let input = input(&start, &offer, &p, &zone, &weight, &cap, &margin);
        // Value 0.5, charged 0.5 * 1.1: reduced value -0.05.
        let prices = CellPrices { per_accept: vec![1.1, 0.0], per_exposure: vec![0.0; 2], per_value: vec![], epsilon: 0.01 };
        let mut local = LocalCustomers::new(input);
        let exposure = |sums: &[CellSums]| sums.iter().map(|c| c.exposure).sum::<f64>();
        let MapReply::RepairCells { generous, .. } = MapReply::merge(local.map(&MapRequest::RepairCells { prices: prices.clone() }).unwrap()).unwrap() else { panic!() };
        assert_eq!(generous.len(), GENEROUS_MARGINS.len());
        let (narrow, wide) = (exposure(&generous[0]), exposure(&generous[1]));
        assert!(narrow < 0.01 && wide > 0.99, "narrow {narrow}, wide {wide}");
        let cells = generous[0].len();
        for (m, expected) in [(1, wide), (0, narrow)] {
            let mix = Mix { generous: vec![1.0; cells], margin: m, ..Mix::default() };
            assert_eq!(MapReply::merge(local.map(&MapRequest::Keep(mix)).unwrap()).unwrap(), MapReply::Kept);
            let MapReply::RepairCells { kept, .. } = MapReply::merge(local.map(&MapRequest::RepairCells { prices: prices.clone() }).unwrap()).unwrap() else { panic!() };
            assert!((exposure(&kept) - expected).abs() < 1e-6, "margin {m}: kept {} against {expected}", exposure(&kept));
        }
    }
}
