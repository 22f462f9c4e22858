//! The customers' side of the repair: each candidate's cell (offer, zone, slot,
//! band of reduced value), the generous response, and the sums per cell that are
//! all the repair LP needs of the customers.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::kernel::{CellPrices, KernelInput};

/// Sums of a response over one cell: all the repair LP needs of the customers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CellSums {
    /// Objective `sum gain x`.
    pub(super) value: f64,
    /// Expected acceptances `sum p x`.
    pub(super) accepts: f64,
    /// Exposures `sum x`.
    pub(super) exposure: f64,
    /// Expected acceptance value `sum value p x` (what `value` rules count).
    pub(super) values: f64,
}

impl CellSums {
    pub fn add(&mut self, other: &CellSums) {
        self.value += other.value;
        self.accepts += other.accepts;
        self.exposure += other.exposure;
        self.values += other.values;
    }
}

/// Bands of a candidate's reduced value relative to its value at the current
/// prices: cells split by band let the repair drop the marginal customers of an
/// offer first, as the exact optimum would, instead of scaling all of them.
const BAND_EDGES: [f64; 13] = [-0.5, -0.2, -0.05, -0.02, -0.01, -0.005, 0.0, 0.005, 0.01, 0.02, 0.05, 0.2, 0.5];
pub(super) const BANDS: usize = BAND_EDGES.len() + 1;

fn band(reduced: f64, inv_gamma: f64, epsilon: f64) -> usize {
    // gamma = epsilon * value, so reduced / value = reduced * epsilon / gamma.
    let relative = reduced * epsilon * inv_gamma;
    BAND_EDGES.iter().take_while(|&&e| relative > e).count()
}

/// How far below zero (relative to its value) a candidate's reduced value may be
/// and still be offered in full by a generous response: the repair tries each
/// and keeps the best plan. Why several: a narrow margin suits plans whose
/// limits bind on few offers (version 1: 0.26% from the optimum on the offers'
/// value where 0.2 gives 1.2%, 20k customers); channel capacities and budgets
/// over many near-marginal pairs need the wide one to fill (3.7% where the
/// narrow one gives 8.8%, 20k customers with version-2 rules and policies).
pub(super) const GENEROUS_MARGINS: [f64; 2] = [0.01, 0.2];

/// The repair cell of a candidate of `offer` for a customer in `zone` and
/// fairness `slot`, in reduced-value band `band`: the one numbering of cells.
fn cell_index(offer: usize, zone: usize, slot: usize, band: usize, zones: usize, slots: usize) -> usize {
    ((offer * zones + zone) * slots + slot) * BANDS + band
}

/// A repair cell's parts: its offer, and its customer group (zone and
/// fairness slot) as `zone * slots + slot`. The inverse of [`cell_index`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CellParts {
    pub offer: usize,
    pub zone: usize,
    pub slot: usize,
    pub group: usize,
}

impl CellParts {
    pub(super) fn of(cell: usize, zones: usize, slots: usize) -> Self {
        let group_of_offer = cell / BANDS;
        let group = group_of_offer % (zones * slots);
        CellParts { offer: group_of_offer / (zones * slots), zone: group / slots, slot: group % slots, group }
    }
}

/// Number of cells (offer, zone, slot, band) at these prices.
pub(super) fn cell_count(input: &KernelInput, prices: &CellPrices) -> usize {
    prices.per_exposure.len() * input.zones * BANDS
}

/// Reusable buffers of [`cells_and_generous`].
#[derive(Debug, Default)]
pub(super) struct RepairScratch {
    reduced: Vec<f64>,
    gamma: Vec<f64>,
    shifted: Vec<f64>,
    ridge: Vec<f64>,
    breaks: Vec<f64>,
    x: Vec<f64>,
    order: Vec<u32>,
}

/// Customer `c`'s candidates: their cells (offer, zone, slot, band) and the
/// *generous* response at each margin of [`GENEROUS_MARGINS`] (every
/// candidate whose reduced value is above `-margin` of its value, up to the
/// cap and within its contact-policy rows), which the banded cells can only
/// trim, so the LP places the threshold where the exact optimum would.
/// `generous` holds the responses candidate by candidate, a value per margin
/// (`generous[i * GENEROUS_MARGINS.len() + m]`). Why every margin at once:
/// the reduced values and the cells are the same for each, and a repair
/// mixes the best margin's response, which its LPs choose only afterwards.
pub(super) fn cells_and_generous(input: &KernelInput, prices: &CellPrices, c: usize, cell: &mut [u32], generous: &mut [f32], s: &mut RepairScratch) {
    let (zones, slots) = (input.zones, input.slots);
    super::kernel::reduced_values(input, prices, c, &mut s.reduced, &mut s.gamma);
    let epsilon = prices.epsilon;
    let first = input.customer_start[c] as usize;
    for (i, (&r, &g)) in s.reduced.iter().zip(&s.gamma).enumerate() {
        let o = input.offer[first + i] as usize;
        cell[i] = cell_index(o, input.zone[c] as usize, input.slot[c] as usize, band(r, g, epsilon), zones, slots) as u32;
    }
    for (m, &margin) in GENEROUS_MARGINS.iter().enumerate() {
        // Shift by the margin, with a ridge far below it: nearly 0/1, up to the cap.
        s.shifted.clear();
        s.ridge.clear();
        for (&r, &ig) in s.reduced.iter().zip(&s.gamma) {
            let value = 1.0 / (ig * epsilon);
            s.shifted.push(r + margin * value);
            s.ridge.push(1.0 / (1e-3 * margin * value.max(1e-9)));
        }
        super::kernel::smoothed_response(&s.shifted, &s.ridge, input.cap[c], &mut s.breaks, &mut s.x);
        super::kernel::respond_within_policy(input, c, &s.shifted, &s.ridge, &mut s.order, &mut s.x);
        for (i, &x) in s.x.iter().enumerate() {
            generous[i * GENEROUS_MARGINS.len() + m] = x as f32;
        }
    }
}

/// Sums of a response over the cells of `customers`' candidates: `x(i)` is
/// candidate `first + i`'s exposure.
pub(super) fn cell_sums(input: &KernelInput, customers: Range<usize>, first: usize, x: impl Fn(usize) -> f64, cell: &[u32], n_cells: usize) -> Vec<CellSums> {
    let mut sums = vec![CellSums::default(); n_cells];
    for c in customers {
        for k in input.customer_start[c] as usize..input.customer_start[c + 1] as usize {
            let x = x(k - first);
            if x > 0.0 {
                let p = input.p[k];
                let cell = &mut sums[cell[k - first] as usize];
                cell.value += input.gain(c, k).0 * x;
                cell.accepts += p * x;
                cell.exposure += x;
                cell.values += input.accept_value(k) * p * x;
            }
        }
    }
    sums
}


#[cfg(test)]
mod tests {
    use super::*;

    /// `CellParts::of` inverts `cell_index`.
    #[test]
    fn cell_parts_invert_the_cell_numbering() {
        let (zones, slots) = (3, 2);
        for (offer, zone, slot, band) in [(0, 0, 0, 0), (4, 2, 1, BANDS - 1), (1, 1, 0, 7)] {
            let cell = cell_index(offer, zone, slot, band, zones, slots);
            assert_eq!(CellParts::of(cell, zones, slots), CellParts { offer, zone, slot, group: zone * slots + slot });
        }
    }
}
