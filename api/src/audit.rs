//! The decision audit: every decision served, kept in the live-state database
//! ([`crate::live::LiveDb`]) in a compact form, read back whole for a
//! data-subject access request.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::decide::{Decision, DecisionView, Exclusion, OfferDecision};
use crate::experiments::ArmLabel;
use crate::live::audit_store::customer_hash;
use crate::live::{AuditBatch, Erased, LiveDb, LiveError};

/// One line of the audit log: what a customer was shown and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// When it was served.
    pub at: DateTime<Utc>,
    /// The decision as served (customer, plan version, fallback flag, offers and exclusions).
    #[serde(flatten)]
    pub decision: Decision,
}

/// A decision as the audit stores it. Why: the full answer repeats field
/// names per offer and a reason string per excluded offer (the same few
/// plan-wide reasons, decision after decision); this keeps each distinct
/// reason once per record, offers as rows (their rank is their position), and
/// the fallback flag as its reason. `customer_id` keeps its name: both
/// databases index records by it. [`Compact::expand`] gives back the answer
/// exactly as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compact<'a> {
    /// When it was served, in nanoseconds since the epoch (records written
    /// before this form carry RFC 3339 text: both read back).
    #[serde(with = "served_at")]
    at: DateTime<Utc>,
    customer_id: Cow<'a, str>,
    /// Plan version.
    v: Cow<'a, str>,
    /// Fallback reason (the fallback answered when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fb: Option<Cow<'a, str>>,
    /// Channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ch: Option<Cow<'a, str>>,
    /// Offers shown, best first: (offer, expected value, uptake).
    o: Vec<(Cow<'a, str>, f32, f32)>,
    /// The distinct exclusion reasons of this record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    r: Vec<Cow<'a, str>>,
    /// Offers excluded, in the answer's order: (offer, index into `r`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    x: Vec<(Cow<'a, str>, u16)>,
    /// Arms in running experiments: (experiment, arm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    e: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Compact<'a> {
    /// The compact form of `d`, served at `at`, borrowing its text (a
    /// decision is audited on the request's path: no copies).
    pub fn of(at: DateTime<Utc>, d: &'a DecisionView<'a>) -> Self {
        let mut r: Vec<Cow<'a, str>> = Vec::new();
        let x = d
            .excluded
            .iter()
            .map(|e| {
                let ix = r.iter().position(|known| *known == e.reason).unwrap_or_else(|| {
                    r.push(Cow::Borrowed(&*e.reason));
                    r.len() - 1
                });
                (Cow::Borrowed(e.offer_id), ix as u16)
            })
            .collect();
        Compact {
            at,
            customer_id: Cow::Borrowed(d.customer_id),
            v: Cow::Borrowed(d.plan_version),
            fb: d.fallback_reason.map(Cow::Borrowed).or_else(|| d.fallback.then_some(Cow::Borrowed(""))),
            ch: d.channel.map(Cow::Borrowed),
            o: d.offers.iter().map(|o| (Cow::Borrowed(o.offer_id), o.expected_value, o.uptake)).collect(),
            r,
            x,
            e: d.experiments.iter().map(|a| (Cow::Borrowed(a.experiment_id.as_str()), Cow::Borrowed(a.arm.as_str()))).collect(),
        }
    }

    /// The record as served.
    pub fn expand(self) -> AuditRecord {
        let reasons = self.r;
        let decision = Decision {
            customer_id: self.customer_id.into_owned(),
            plan_version: self.v.into_owned(),
            fallback: self.fb.is_some(),
            fallback_reason: self.fb.filter(|r| !r.is_empty()).map(Cow::into_owned),
            channel: self.ch.map(Cow::into_owned),
            offers: self
                .o
                .into_iter()
                .enumerate()
                .map(|(i, (offer_id, expected_value, uptake))| OfferDecision { offer_id: offer_id.into_owned(), rank: i as u32 + 1, expected_value, uptake })
                .collect(),
            excluded: self
                .x
                .into_iter()
                .map(|(offer_id, ix)| Exclusion { offer_id: offer_id.into_owned(), reason: reasons.get(ix as usize).map(|r| r.to_string()).unwrap_or_default() })
                .collect(),
            experiments: self.e.into_iter().map(|(experiment_id, arm)| ArmLabel { experiment_id: experiment_id.into_owned(), arm: arm.into_owned() }).collect(),
        };
        AuditRecord { at: self.at, decision }
    }
}

/// A compact record's `at`. Why a number: formatting the time as text was
/// a third of writing the record on the request's path (measured).
/// Nanoseconds, the clock's own precision, so that a record compares with
/// an experiment's start or stop exactly as the time it was served; a time
/// beyond what 64 bits of nanoseconds hold (after 2262) is written as text.
pub(crate) mod served_at {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        match at.timestamp_nanos_opt() {
            Some(ns) => s.serialize_i64(ns),
            None => at.serialize(s),
        }
    }

    /// Either form, as stored.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Nanos(i64),
        Text(DateTime<Utc>),
    }

    impl Stored {
        fn time(self) -> DateTime<Utc> {
            match self {
                Stored::Nanos(ns) => DateTime::from_timestamp_nanos(ns),
                Stored::Text(at) => at,
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        Stored::deserialize(d).map(Stored::time)
    }

    /// The same for a time that may be absent (a record read back whole
    /// when a store moves to another database).
    pub mod optional {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<Stored>::deserialize(d).map(|s| s.map(Stored::time))
        }
    }
}

/// The audit log. Why a shared buffer and a timer: a decision must never wait
/// on the disk, and waking a writer per decision costs a system call each (a
/// quarter of the service's CPU under load, measured). Requests append their
/// serialized record to an in-memory batch; a writer thread moves the batch to
/// the database (as chunks: [`crate::live::audit_store`]), one transaction per
/// [`AUDIT_FLUSH_INTERVAL`], and on drop. A crash can lose at most that
/// interval of audit records (never an event: those are committed before
/// they are acknowledged).
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<AuditShared>,
}

#[derive(Debug)]
struct AuditShared {
    pending: Mutex<AuditBatch>,
    /// An empty batch that keeps its buffers from one flush to the next. Why:
    /// a new batch per flush grows to about a megabyte by reallocations and
    /// is freed whole every interval (measured: copying and the allocator's
    /// consolidation of the freed megabyte, a few percent of the service's CPU).
    spare: Mutex<AuditBatch>,
    db: Arc<LiveDb>,
    stop: AtomicBool,
    /// Records given up: over the queue's bound while the database refused them.
    dropped: AtomicU64,
    /// Records of the batches flushes are writing now (out of `pending`).
    in_flight: AtomicUsize,
    /// Held for a whole flush. Why: a reader flushes before it reads (an
    /// access request, an experiment report, an erasure), and without it
    /// found the queue empty while the writer thread's batch, taken from
    /// it, was not committed yet: the reader missed those records (an
    /// experiment report counted no decisions, seen in a test under load);
    /// a refused batch re-queued by one flush could also land behind
    /// another's newer records.
    flushing: Mutex<()>,
    /// How long records are kept (none: forever), and when retention last ran.
    retention: Mutex<(Option<Duration>, Option<Instant>)>,
}

/// Default of `allot serve --audit-retention-days`: a little over a year, so a
/// yearly access request still sees every decision of the year before it.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;

/// How often the writer deletes records older than the retention (also once
/// as soon as a retention is set, at start).
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// How often buffered audit lines are written to the database.
pub const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Most bytes of audit records kept for a retry while the database refuses
/// them (about 250,000 decisions); beyond it the oldest are given up and counted.
pub const AUDIT_MAX_PENDING: usize = 64 << 20;

/// Niceness the writer thread adds to the service's (Linux). Why:
/// a flush is a millisecond or two of CPU every [`AUDIT_FLUSH_INTERVAL`];
/// at the workers' priority the writer, waking, takes the CPU from a worker
/// in the middle of its requests, which then wait out the whole flush (the
/// service's p99 at one connection: 0.69 ms, against 0.24 ms at niceness
/// 10, measured). 10 lower, it still gets about a tenth of a CPU a busy worker
/// shares with it, above what it needs at full load (under a tenth of one
/// core, measured); `allot_audit_pending_records` shows how far it is behind.
pub const AUDIT_WRITER_NICE: i32 = 10;

/// Largest buffer the spare batch keeps between flushes (a few intervals at
/// full load); a batch grown past it by an outage is let go.
const SPARE_MAX_BYTES: usize = 8 << 20;

impl AuditShared {
    fn pending(&self) -> std::sync::MutexGuard<'_, AuditBatch> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the queued records. When the database refuses them (it is away,
    /// or full), they are kept for the next flush, ahead of newer ones, within
    /// [`AUDIT_MAX_PENDING`] bytes; beyond it the oldest are given up and
    /// counted. Nothing in a record can make the database refuse it alone:
    /// records are stored as bytes.
    fn flush(&self) -> Result<(), LiveError> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = std::mem::take(&mut *self.spare.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut pending = self.pending();
            std::mem::swap(&mut *pending, &mut batch);
            self.in_flight.fetch_add(batch.len(), Ordering::Relaxed);
        }
        let written = self.db.append_audit(&batch);
        self.in_flight.fetch_sub(batch.len(), Ordering::Relaxed);
        let Err(e) = written else {
            batch.clear(SPARE_MAX_BYTES);
            *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = batch;
            return Ok(());
        };
        let mut pending = self.pending();
        let newer = std::mem::replace(&mut *pending, batch);
        pending.extend(&newer);
        let given_up = pending.keep_newest(AUDIT_MAX_PENDING);
        self.dropped.fetch_add(given_up as u64, Ordering::Relaxed);
        Err(e)
    }
}

impl AuditShared {
    fn retention(&self) -> std::sync::MutexGuard<'_, (Option<Duration>, Option<Instant>)> {
        self.retention.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a retention is set and has not run for [`RETENTION_INTERVAL`].
    fn retention_due(&self) -> bool {
        let (keep, last) = *self.retention();
        keep.is_some() && last.is_none_or(|t| t.elapsed() >= RETENTION_INTERVAL)
    }

    /// Deletes the records served before `now` less the retention.
    fn apply_retention(&self, now: DateTime<Utc>) -> Result<u64, LiveError> {
        let keep = {
            let mut r = self.retention();
            r.1 = Some(Instant::now());
            r.0
        };
        let Some(keep) = keep else { return Ok(0) };
        self.db.delete_audit_before(crate::live::time_before(now, keep))
    }
}

impl AuditLog {
    /// The audit log in `db`, with its writer thread started.
    pub fn open(db: Arc<LiveDb>) -> std::io::Result<Self> {
        let shared = Arc::new(AuditShared { pending: Mutex::new(AuditBatch::default()), spare: Mutex::new(AuditBatch::default()), db, stop: AtomicBool::new(false), dropped: AtomicU64::new(0), in_flight: AtomicUsize::new(0), flushing: Mutex::new(()), retention: Mutex::new((None, None)) });
        let writer = shared.clone();
        std::thread::Builder::new().name("allot-audit".to_string()).spawn(move || {
            lower_this_threads_priority(AUDIT_WRITER_NICE);
            while !writer.stop.load(Ordering::Relaxed) {
                std::thread::sleep(AUDIT_FLUSH_INTERVAL);
                if let Err(e) = writer.flush() {
                    tracing::warn!(error = %e, "audit log {}", writer.db.location());
                }
                if writer.retention_due() {
                    match writer.apply_retention(Utc::now()) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!("audit retention: deleted {n} records"),
                        Err(e) => tracing::warn!(error = %e, "audit retention in {}", writer.db.location()),
                    }
                }
            }
        })?;
        Ok(AuditLog { shared })
    }

    /// Queues a served decision, in the compact form ([`Compact`]). Why a
    /// buffer per thread: the record is written and its customer hashed
    /// before the shared batch's lock is taken, so requests hold it only for a copy.
    pub fn record(&self, decision: &DecisionView<'_>) {
        thread_local! {
            static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
        }
        let at = Utc::now();
        LINE.with_borrow_mut(|line| {
            line.clear();
            if serde_json::to_writer(&mut *line, &Compact::of(at, decision)).is_ok() {
                let hash = customer_hash(decision.customer_id);
                self.shared.pending().push_hashed(hash, at, line);
            }
        });
    }

    /// Audit records given up so far (beyond the retry queue's bound while
    /// the database refused them), for `/metrics`.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Records not yet in the database, queued or being written (the
    /// writer's lag; what a crash would lose), for `/metrics`.
    pub fn pending(&self) -> usize {
        self.shared.pending().len() + self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Writes what is queued now (the writer thread does it every interval).
    pub fn flush(&self) -> Result<(), LiveError> {
        self.shared.flush()
    }

    /// Every decision served (or logged by a shadow) from `since` on, oldest
    /// chunk first: what an experiment report counts. Reads every chunk
    /// whose newest record is that recent.
    pub fn records_since(&self, since: DateTime<Utc>) -> std::io::Result<Vec<AuditRecord>> {
        self.shared.flush()?;
        let mut out = Vec::new();
        // A record of no customer is an erasure's, not a decision.
        for (_, line) in self.shared.db.audit_since(since)?.into_iter().filter(|(customer, _)| !customer.is_empty()) {
            let record = serde_json::from_str::<Compact>(&line).map_err(|e| std::io::Error::other(format!("an audit record does not parse: {e}")))?.expand();
            if record.at >= since {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Every decision served to one customer, oldest first (a data-subject
    /// access request: read through the index on customer).
    pub fn decisions_of(&self, customer_id: &str) -> std::io::Result<Vec<AuditRecord>> {
        self.shared.flush()?;
        let mut out = Vec::new();
        for line in self.shared.db.audit_of(customer_id)? {
            let record = serde_json::from_str::<Compact<'static>>(&line)
                .map(Compact::expand)
                .or_else(|_| serde_json::from_str::<AuditRecord>(&line))
                .map_err(|e| LiveError::Corrupt { table: "allot_audit", reason: format!("a record of customer {customer_id:?}: {e}") })?;
            out.push(record);
        }
        Ok(out)
    }
}

impl AuditLog {
    /// Keeps records for `keep` from now on: the writer deletes older ones at
    /// once and then every [`RETENTION_INTERVAL`]. Without it nothing is deleted.
    pub fn set_retention(&self, keep: Duration) {
        *self.shared.retention() = (Some(keep), None);
    }

    /// Deletes the records older than the retention as of `now` (what the
    /// writer does on its schedule); returns how many.
    pub fn apply_retention(&self, now: DateTime<Utc>) -> Result<u64, LiveError> {
        self.shared.apply_retention(now)
    }

    /// Erases a customer's audit records and consent events (right to
    /// erasure), queued records included, and records that an erasure took
    /// place: when and how many records, never whom.
    pub fn erase(&self, customer_id: &str) -> Result<Erased, LiveError> {
        self.shared.flush()?;
        let record = |erased: Erased| serde_json::json!({ "at": Utc::now(), "erasure": erased }).to_string();
        self.shared.db.erase_customer(customer_id, record)
    }
}

/// Adds `increment` to the calling thread's niceness (Linux keeps niceness
/// per thread, and `nice` changes the caller's; elsewhere it stays as it is:
/// only the latency of requests depends on it).
fn lower_this_threads_priority(increment: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: `nice` has no preconditions; it only changes the calling
    // thread's niceness (capped at 19; a failure leaves it as it was).
    unsafe {
        libc::nice(increment);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = increment;
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renames the chunks table away (the database then refuses every
    /// batch) or back, from a second connection.
    fn chunks_table(dir: &std::path::Path, from: &str, to: &str) {
        let conn = rusqlite::Connection::open(dir.join(crate::live::LIVE_DB_FILE)).unwrap();
        conn.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}")).unwrap();
    }

    #[test]
    fn records_the_database_refuses_are_kept_for_the_next_flush_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
        audit.shared.stop.store(true, Ordering::Relaxed); // this test flushes by itself
        audit.record(&served("C1").view());
        audit.flush().unwrap();
        chunks_table(dir.path(), "allot_audit_chunks", "away");
        audit.record(&served("C1").view());
        audit.record(&served("C2").view());
        assert!(audit.flush().is_err());
        audit.record(&served("C1").view());
        assert_eq!(audit.pending(), 3, "the refused records wait, ahead of the newer one");
        chunks_table(dir.path(), "away", "allot_audit_chunks");
        audit.flush().unwrap();
        assert_eq!((audit.decisions_of("C1").unwrap().len(), audit.decisions_of("C2").unwrap().len(), audit.dropped()), (3, 1, 0));
    }

    /// The writer thread runs below the request workers' priority: its
    /// niceness, as the kernel reports it for the threads named
    /// `allot-audit` (other tests' writers included), is this thread's plus
    /// [`AUDIT_WRITER_NICE`], within the kernel's cap of 19.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_writer_thread_runs_below_the_request_workers_priority() {
        // Field 19 of a task's stat is its niceness; the name in parentheses may hold spaces.
        let nice_of = |stat: &str| stat.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap().parse::<i32>().unwrap();
        let ours = nice_of(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
        let expected = (ours + AUDIT_WRITER_NICE).min(19);
        let dir = tempfile::tempdir().unwrap();
        let _audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
        let writers = || -> Vec<i32> {
            std::fs::read_dir("/proc/thread-self/..")
                .unwrap()
                .flatten()
                .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "allot-audit"))
                .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok().map(|s| nice_of(&s)))
                .collect()
        };
        // A writer just started may not have lowered itself yet.
        let started = Instant::now();
        let mut seen = writers();
        while (seen.is_empty() || seen.iter().any(|&n| n != expected)) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
            seen = writers();
        }
        assert!(!seen.is_empty() && seen.iter().all(|&n| n == expected), "writers' niceness {seen:?}, expected {expected}");
    }

    /// Enough records for several merges, of customers whose hashes collide
    /// (C0052881 and C0624990 share all 32 bits) and of many others: each
    /// customer gets exactly their own records, in order, merged or not.
    #[test]
    fn every_customer_gets_exactly_their_records_across_merges_and_hash_collisions() {
        use crate::live::audit_store::MERGE_AT;
        assert_eq!(customer_hash("C0052881"), customer_hash("C0624990"));
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let audit = AuditLog::open(db.clone()).unwrap();
        audit.shared.stop.store(true, Ordering::Relaxed);
        let customers: Vec<String> = ["C0052881", "C0624990"].iter().map(|c| c.to_string()).chain((0..50).map(|i| format!("K{i}"))).collect();
        let mut expected: std::collections::HashMap<&str, Vec<String>> = Default::default();
        let flushes = MERGE_AT as usize * 2 + 7;
        for f in 0..flushes {
            for (i, c) in customers.iter().enumerate().filter(|(i, _)| (i + f) % 3 == 0) {
                let d = Decision { plan_version: format!("{f:06}"), channel: Some(format!("n{i}")), ..served(c) };
                audit.record(&d.view());
                expected.entry(c.as_str()).or_default().push(d.plan_version);
            }
            audit.flush().unwrap();
        }
        let waiting: i64 = rusqlite::Connection::open(dir.path().join(crate::live::LIVE_DB_FILE))
            .unwrap()
            .query_row("SELECT count(*) FROM allot_audit_unindexed", [], |r| r.get(0))
            .unwrap();
        assert!(waiting < MERGE_AT, "merges ran: {waiting} chunks wait");
        for c in &customers {
            let got: Vec<String> = audit.decisions_of(c).unwrap().into_iter().map(|r| r.decision.plan_version).collect();
            assert_eq!(&got, &expected[c.as_str()], "{c}");
        }
    }

    #[test]
    fn the_compact_record_expands_to_the_answer_as_served_in_fewer_bytes() {
        let offer = |id: &str, rank| OfferDecision { offer_id: id.into(), rank, expected_value: 2.5, uptake: 0.25 };
        let excluded = |id: &str, reason: &str| Exclusion { offer_id: id.into(), reason: reason.into() };
        let decision = Decision {
            customer_id: "C0000042".into(),
            plan_version: "000007".into(),
            fallback: false,
            fallback_reason: None,
            channel: Some("web".into()),
            offers: vec![offer("O01", 1), offer("O02", 2)],
            excluded: ["O03", "O04", "O05", "O06"].iter().map(|o| excluded(o, "not_selected:stock")).chain([excluded("O07", "live:bid_price")]).collect(),
            experiments: vec![ArmLabel { experiment_id: "canary-7".into(), arm: "canary".into() }],
        };
        let at = DateTime::parse_from_rfc3339("2026-12-06T21:47:11.123456Z").unwrap().to_utc();
        let full = serde_json::to_string(&AuditRecord { at, decision: decision.clone() }).unwrap();
        let compact = serde_json::to_string(&Compact::of(at, &decision.view())).unwrap();
        assert!(compact.starts_with(r#"{"at":1796593631123456000,"#), "{compact}");
        let back: Compact<'static> = serde_json::from_str(&compact).unwrap();
        assert_eq!(back.expand(), AuditRecord { at, decision: decision.clone() });
        assert!(compact.len() * 10 < full.len() * 6, "compact {} bytes, full {}", compact.len(), full.len());
        // The fallback flag survives without a reason too.
        let fallback = Decision { fallback: true, fallback_reason: Some("plan_stale".into()), ..decision };
        assert_eq!(Compact::of(at, &fallback.view()).expand().decision, fallback);
    }

    /// Records stored before the figures were single precision carry them
    /// widened to double (`0.04749999940395355`): they read back as the same
    /// values, which are now written in their shortest form.
    #[test]
    fn records_with_double_precision_figures_read_back_as_the_values_served() {
        let stored = r#"{"at":"2026-12-01T10:00:00Z","customer_id":"C1","v":"000001","o":[["O1",1.020300030708313,0.04749999940395355]]}"#;
        let record = serde_json::from_str::<Compact<'static>>(stored).unwrap().expand();
        let offer = &record.decision.offers[0];
        assert_eq!((offer.expected_value, offer.uptake), (1.0203_f32, 0.0475_f32));
        let written = serde_json::to_string(&Compact::of(record.at, &record.decision.view())).unwrap();
        assert!(written.contains(r#"["O1",1.0203,0.0475]"#), "{written}");
    }

    fn served(customer: &str) -> Decision {
        Decision {
            customer_id: customer.into(),
            plan_version: "000001".into(),
            fallback: false,
            fallback_reason: None,
            channel: None,
            offers: Vec::new(),
            excluded: Vec::new(),
            experiments: Vec::new(),
        }
    }

    /// A record as served at `at` (the writer stamps the time of serving).
    fn queue_at(audit: &AuditLog, at: DateTime<Utc>, customer: &str) {
        let decision = served(customer);
        audit.shared.pending().push(customer, at, &serde_json::to_vec(&Compact::of(at, &decision.view())).unwrap());
    }

    #[test]
    fn retention_deletes_only_records_older_than_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
        let now = Utc::now();
        for days in [500, 401, 399, 1, 0] {
            queue_at(&audit, now - chrono::Duration::days(days), "C1");
            audit.flush().unwrap(); // records served days apart are never in one flush
        }
        assert_eq!(audit.apply_retention(now).unwrap(), 0, "no retention set: nothing deleted");
        audit.set_retention(Duration::from_secs(400 * 86_400));
        assert!(audit.shared.retention_due(), "a new setting runs at once");
        assert_eq!(audit.apply_retention(now).unwrap(), 2);
        assert!(!audit.shared.retention_due(), "then once per interval");
        let kept: Vec<i64> = audit.decisions_of("C1").unwrap().iter().map(|r| (now - r.at).num_days()).collect();
        assert_eq!(kept, vec![399, 1, 0]);
    }

    /// What `allot serve` relies on: setting the retention at start is enough,
    /// the writer thread deletes on its own.
    #[test]
    fn the_writer_applies_a_new_retention_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
        queue_at(&audit, Utc::now() - chrono::Duration::days(10), "C1");
        audit.flush().unwrap();
        queue_at(&audit, Utc::now(), "C1");
        audit.flush().unwrap();
        audit.set_retention(Duration::from_secs(86_400));
        let deadline = Instant::now() + Duration::from_secs(30);
        while audit.decisions_of("C1").unwrap().len() != 1 {
            assert!(Instant::now() < deadline, "the writer never applied the retention");
            std::thread::sleep(AUDIT_FLUSH_INTERVAL);
        }
    }

    #[test]
    fn retention_deletes_in_batches_past_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let audit = AuditLog::open(db.clone()).unwrap();
        let old = Utc::now() - chrono::Duration::days(30);
        for i in 0..5 {
            queue_at(&audit, old, if i % 2 == 0 { "C1" } else { "C2" });
            audit.flush().unwrap(); // a chunk each
        }
        queue_at(&audit, Utc::now(), "C1");
        audit.flush().unwrap();
        assert_eq!(db.delete_audit_in_batches(Utc::now() - chrono::Duration::days(1), 2).unwrap(), 5);
        assert_eq!(audit.decisions_of("C1").unwrap().len() + audit.decisions_of("C2").unwrap().len(), 1);
    }

    /// A read's flush waits for a flush already writing: caught while the
    /// other flush's batch is out of the queue and not yet committed, the
    /// read still sees its record.
    #[test]
    fn a_read_sees_the_records_another_flush_is_writing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let audit = Arc::new(AuditLog::open(db).unwrap());
        let (mut caught, mut served_so_far) = (0, 0);
        while caught < 10 && served_so_far < 2000 {
            audit.record(&served("C1").view());
            served_so_far += 1;
            let writer = {
                let audit = audit.clone();
                std::thread::spawn(move || audit.flush().unwrap())
            };
            while audit.shared.in_flight.load(Ordering::Relaxed) == 0 && !writer.is_finished() {
                std::hint::spin_loop();
            }
            if audit.shared.in_flight.load(Ordering::Relaxed) > 0 {
                caught += 1;
                assert_eq!(audit.decisions_of("C1").unwrap().len(), served_so_far, "a record being written was missed");
            }
            writer.join().unwrap();
        }
        assert!(caught > 0, "no flush was caught writing");
    }

    #[test]
    fn erasure_removes_the_customers_records_queued_ones_included_and_records_itself_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let audit = AuditLog::open(db.clone()).unwrap();
        audit.record(&served("C1").view());
        audit.record(&served("C2").view());
        audit.record(&served("C1").view());
        audit.flush().unwrap();
        audit.record(&served("C1").view()); // still queued
        let erased = audit.erase("C1").unwrap();
        assert_eq!(erased, Erased { audit_records: 3, consent_events: 0, objection: None });
        assert!(audit.decisions_of("C1").unwrap().is_empty());
        assert_eq!(audit.decisions_of("C2").unwrap().len(), 1, "other customers keep theirs, between the erased ones in the same chunk");
        let all = db.all_audit().unwrap();
        let (who, record) = all.last().unwrap();
        assert!(who.is_empty() && !record.contains("C1"), "the erasure's record names no one: {record}");
        assert!(record.contains(r#""erasure":{"audit_records":3,"consent_events":0,"objection":null}"#), "{record}");
    }
}
