//! Criterion benches for the decomposition's inner kernels: pricing a partition of
//! customers (the per-iteration "map") and the capped-simplex projection.
//!
//! Run with `cargo bench --bench kernel`. The input is synthetic but shaped like
//! `allot generate`'s: 8 candidates per customer, cap 3, 40 offers, 20 zones.

use allot_optimizer::decomposed::kernel::{price_customers, smoothed_response, CellPrices, KernelInput, Scratch};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const CUSTOMERS: usize = 100_000;
const PER_CUSTOMER: usize = 8;
const OFFERS: usize = 40;
const ZONES: usize = 20;
const SLOTS: usize = 4;

/// A deterministic pseudo-random stream (SplitMix64), so runs compare.
struct Stream(u64);
impl Stream {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Data {
    customer_start: Vec<u32>,
    offer: Vec<u32>,
    p: Vec<f64>,
    zone: Vec<u32>,
    slot: Vec<u32>,
    weight: Vec<f64>,
    cap: Vec<u32>,
    margin: Vec<f64>,
    prices: CellPrices,
}

fn data() -> Data {
    let mut s = Stream(7);
    let n = CUSTOMERS * PER_CUSTOMER;
    let customer_start = (0..=CUSTOMERS as u32).map(|c| c * PER_CUSTOMER as u32).collect();
    let offer = (0..n).map(|_| (s.next() * OFFERS as f64) as u32).collect();
    let p = (0..n).map(|_| 0.02 + 0.4 * s.next()).collect();
    let zone = (0..CUSTOMERS).map(|_| (s.next() * ZONES as f64) as u32).collect();
    let slot = (0..CUSTOMERS).map(|_| (s.next() * SLOTS as f64) as u32).collect();
    let weight = (0..CUSTOMERS).map(|_| 1.0 + 0.5 * s.next()).collect();
    let cap = vec![3; CUSTOMERS];
    let margin = (0..OFFERS).map(|_| 5.0 + 60.0 * s.next()).collect();
    let per_accept = (0..OFFERS * ZONES).map(|_| 40.0 * s.next()).collect();
    let per_exposure = (0..OFFERS * SLOTS).map(|_| 0.1 * (s.next() - 0.5)).collect();
    let prices = CellPrices { per_accept, per_exposure, per_value: Vec::new(), epsilon: 2e-3 };
    Data { customer_start, offer, p, zone, slot, weight, cap, margin, prices }
}

fn kernels(c: &mut Criterion) {
    let d = data();
    let no_contact_cost = vec![0.0; OFFERS];
    let input = KernelInput {
        customer_start: &d.customer_start,
        offer: &d.offer,
        p: &d.p,
        zone: &d.zone,
        slot: &d.slot,
        weight: &d.weight,
        cap: &d.cap,
        margin: &d.margin,
        contact_cost: &no_contact_cost,
        accept_value: None,
        zones: ZONES,
        slots: SLOTS,
        policy: None,
    };
    let mut group = c.benchmark_group("decomposition");
    group.throughput(Throughput::Elements((CUSTOMERS * PER_CUSTOMER) as u64));
    group.sample_size(20);
    group.bench_function("price_customers/100k x 8 (one thread)", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| price_customers(&input, &d.prices, 0..CUSTOMERS, &mut scratch, None))
    });
    group.bench_function("price_customers+average/100k x 8 (one thread)", |b| {
        let mut scratch = Scratch::default();
        b.iter_batched_ref(
            || vec![0f32; CUSTOMERS * PER_CUSTOMER],
            |avg| price_customers(&input, &d.prices, 0..CUSTOMERS, &mut scratch, Some((avg.as_mut_slice(), 0.5))),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut s = Stream(11);
    let reduced: Vec<f64> = (0..PER_CUSTOMER).map(|_| s.next() - 0.3).collect();
    let inv_gamma = vec![100.0; PER_CUSTOMER];
    c.bench_function("smoothed_response/8 candidates, cap 3", |b| {
        let (mut breaks, mut x) = (Vec::new(), Vec::new());
        b.iter(|| smoothed_response(std::hint::black_box(&reduced), &inv_gamma, 3, &mut breaks, &mut x))
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
