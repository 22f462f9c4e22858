//! A data-subject access request's cost against the size of the audit (issue
//! 16, item 9): with N decision records kept (ten per customer, interleaved as
//! a live service writes them, through its own write path), the cost of
//! writing a record, and the p50 and p99 of `decisions_of` (what
//! `GET /v1/customers/{id}/decisions` runs: queued records flushed, the
//! customer's bucket of postings and the chunks not merged yet read, then
//! only the chunks holding their records, each record expanded) for random
//! customers. Near flat is right: a request reads its bucket's postings
//! (1/1024 of the entries) and its own records' chunks.
//!
//! Run with `cargo bench --workspace --profile dev --bench audit_access --
//! 100000 1000000 10000000` (the default sizes; 10M records take about 3 GB
//! of disk). Figures are reported as ratios to the first size, measured in
//! the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use allot_api::live::AuditBatch;
use allot_api::{AuditLog, LiveDb};

/// Records per customer.
const PER_CUSTOMER: usize = 10;
/// Records per write, as the audit writer flushes them at 50,000 decisions
/// a second (one flush per 50 ms).
const FLUSH_RECORDS: usize = 2500;
/// Access requests timed per size.
const REQUESTS: usize = 2000;

/// A compact record as the service writes it: two offers shown, five excluded
/// for two reasons.
fn record(at: &str, customer: &str) -> String {
    format!(
        r#"{{"at":"{at}","customer_id":"{customer}","v":"000007","ch":"web","o":[["O01",2.5,0.25],["O02",1.75,0.2]],"r":["not_selected:stock","live:bid_price"],"x":[["O03",0],["O04",0],["O05",0],["O06",0],["O07",1]]}}"#
    )
}

/// Writes `n` records through the service's own write path
/// ([`LiveDb::append_audit`], merges included), in batches of
/// [`FLUSH_RECORDS`] as the audit writer flushes them under load.
fn fill(dir: &std::path::Path, n: usize) {
    let db = LiveDb::open_file(dir).unwrap();
    let customers = n / PER_CUSTOMER;
    let start = chrono::Utc::now() - chrono::Duration::days(300);
    let mut batch = AuditBatch::default();
    for i in 0..n {
        let customer = format!("C{:08}", i % customers);
        let at = start + chrono::Duration::seconds(i as i64 * 2);
        let text = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        batch.push(&customer, at, record(&text, &customer).as_bytes());
        if batch.len() == FLUSH_RECORDS {
            db.append_audit(&std::mem::take(&mut batch)).unwrap();
        }
    }
    db.append_audit(&batch).unwrap();
}

struct Row {
    records: usize,
    fill: Duration,
    bytes: u64,
    p50: Duration,
    p99: Duration,
}

fn measure(n: usize) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    fill(dir.path(), n);
    let fill_time = started.elapsed();
    let bytes = std::fs::metadata(dir.path().join(allot_api::live::LIVE_DB_FILE)).unwrap().len();
    let audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
    let customers = n / PER_CUSTOMER;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let customer = format!("C{:08}", state as usize % customers);
        let t = Instant::now();
        let records = audit.decisions_of(&customer).unwrap();
        times.push(t.elapsed());
        assert_eq!(records.len(), PER_CUSTOMER, "{customer}");
    }
    times.sort();
    Row { records: n, fill: fill_time, bytes, p50: times[REQUESTS / 2], p99: times[REQUESTS * 99 / 100] }
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100_000, 1_000_000, 10_000_000] } else { sizes };
    let rows: Vec<Row> = sizes.iter().map(|&n| measure(n)).collect();
    let base = &rows[0];
    println!("| audit records | customers | write per record | database | access p50 (ratio) | access p99 (ratio) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} µs | {} MB | {:.0} µs ({:.2}) | {:.0} µs ({:.2}) |",
            r.records,
            r.records / PER_CUSTOMER,
            r.fill.as_secs_f64() * 1e6 / r.records as f64,
            r.bytes >> 20,
            r.p50.as_secs_f64() * 1e6,
            r.p50.as_secs_f64() / base.p50.as_secs_f64(),
            r.p99.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() / base.p99.as_secs_f64()
        );
    }
}
