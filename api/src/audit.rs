//! The decision audit: every decision served, kept in the live-state database
//! ([`crate::live::LiveDb`]) in a compact form, read back whole for a
//! data-subject access request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::decide::{Decision, Exclusion, OfferDecision};
use crate::live::{Erased, LiveDb, LiveError};

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
pub struct Compact {
    at: DateTime<Utc>,
    customer_id: String,
    /// Plan version.
    v: String,
    /// Fallback reason (the fallback answered when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fb: Option<String>,
    /// Channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ch: Option<String>,
    /// Offers shown, best first: (offer, expected value, uptake).
    o: Vec<(String, f64, f64)>,
    /// The distinct exclusion reasons of this record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    r: Vec<String>,
    /// Offers excluded, in the answer's order: (offer, index into `r`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    x: Vec<(String, u16)>,
}

impl Compact {
    /// The compact form of `d`, served at `at`.
    pub fn of(at: DateTime<Utc>, d: &Decision) -> Self {
        let mut r: Vec<String> = Vec::new();
        let x = d
            .excluded
            .iter()
            .map(|e| {
                let ix = r.iter().position(|known| *known == e.reason).unwrap_or_else(|| {
                    r.push(e.reason.clone());
                    r.len() - 1
                });
                (e.offer_id.clone(), ix as u16)
            })
            .collect();
        Compact {
            at,
            customer_id: d.customer_id.clone(),
            v: d.plan_version.clone(),
            fb: d.fallback_reason.clone().or_else(|| d.fallback.then(String::new)),
            ch: d.channel.clone(),
            o: d.offers.iter().map(|o| (o.offer_id.clone(), o.expected_value, o.uptake)).collect(),
            r,
            x,
        }
    }

    /// The record as served.
    pub fn expand(self) -> AuditRecord {
        let reasons = self.r;
        let decision = Decision {
            customer_id: self.customer_id,
            plan_version: self.v,
            fallback: self.fb.is_some(),
            fallback_reason: self.fb.filter(|r| !r.is_empty()),
            channel: self.ch,
            offers: self.o.into_iter().enumerate().map(|(i, (offer_id, expected_value, uptake))| OfferDecision { offer_id, rank: i as u32 + 1, expected_value, uptake }).collect(),
            excluded: self.x.into_iter().map(|(offer_id, ix)| Exclusion { offer_id, reason: reasons.get(ix as usize).cloned().unwrap_or_default() }).collect(),
        };
        AuditRecord { at: self.at, decision }
    }
}

/// The audit log. Why a shared buffer and a timer: a decision must never wait
/// on the disk, and waking a writer per decision costs a system call each (a
/// quarter of the service's CPU under load, measured). Requests append their
/// serialized line to an in-memory buffer; a writer thread moves the buffer to
/// the database, one transaction per [`AUDIT_FLUSH_INTERVAL`], and on drop. A
/// crash can lose at most that interval of audit lines (never an event: those
/// are committed before they are acknowledged).
#[derive(Debug)]
pub struct AuditLog {
    shared: Arc<AuditShared>,
}

#[derive(Debug)]
struct AuditShared {
    pending: Mutex<Vec<u8>>,
    db: Arc<LiveDb>,
    stop: AtomicBool,
    /// Records given up: refused alone by the database, or over the queue's bound.
    dropped: AtomicU64,
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
/// them (about 200,000 decisions); beyond it the oldest are given up and counted.
pub const AUDIT_MAX_PENDING: usize = 64 << 20;

impl AuditShared {
    /// Writes the queued records. Why line by line after a failed batch: one
    /// record the database refuses (a NUL in a channel for PostgreSQL's jsonb)
    /// must not hold back every later one. A record refused alone while others
    /// are accepted is given up and counted; when every record is refused (the
    /// database is away) they are kept for the next flush, within
    /// [`AUDIT_MAX_PENDING`].
    fn flush(&self) -> Result<(), LiveError> {
        let bytes = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let Err(batch_error) = self.db.append_audit(&lines) else { return Ok(()) };
        let mut kept = Vec::new();
        let mut written = 0;
        for line in &lines {
            match self.db.append_audit(&[line]) {
                Ok(()) => written += 1,
                Err(e) => kept.push((line, e)),
            }
        }
        // Nothing accepted, from several records or over a lost connection: the
        // database is away, not the records at fault.
        let lost_connection = matches!(&batch_error, LiveError::Shared(crate::shared::SharedError::Postgres(e)) if e.is_closed());
        let database_away = written == 0 && (lines.len() > 1 || lost_connection);
        if !database_away {
            for (line, e) in &kept {
                tracing::warn!(error = %e, record = %line.chars().take(200).collect::<String>(), "audit record refused by the database; given up");
            }
            self.dropped.fetch_add(kept.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        // Keep what failed for the next flush, ahead of newer records, within the bound.
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let newer = std::mem::take(&mut *pending);
        for (line, _) in &kept {
            pending.extend_from_slice(line.as_bytes());
            pending.push(b'\n');
        }
        pending.extend_from_slice(&newer);
        if pending.len() > AUDIT_MAX_PENDING {
            let cut = pending.len() - AUDIT_MAX_PENDING;
            let cut = pending[cut..].iter().position(|&b| b == b'\n').map_or(pending.len(), |i| cut + i + 1);
            let given_up = pending[..cut].iter().filter(|&&b| b == b'\n').count();
            pending.drain(..cut);
            self.dropped.fetch_add(given_up as u64, Ordering::Relaxed);
        }
        Err(batch_error)
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
        let cutoff = chrono::Duration::from_std(keep).ok().and_then(|k| now.checked_sub_signed(k)).unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.db.delete_audit_before(cutoff)
    }
}

impl AuditLog {
    /// The audit log in `db`, with its writer thread started.
    pub fn open(db: Arc<LiveDb>) -> std::io::Result<Self> {
        let shared = Arc::new(AuditShared { pending: Mutex::new(Vec::new()), db, stop: AtomicBool::new(false), dropped: AtomicU64::new(0), retention: Mutex::new((None, None)) });
        let writer = shared.clone();
        std::thread::Builder::new().name("allot-audit".to_string()).spawn(move || {
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

    /// Queues a served decision, in the compact form ([`Compact`]).
    pub fn record(&self, decision: &Decision) {
        let mut line = Vec::with_capacity(256);
        if serde_json::to_writer(&mut line, &Compact::of(Utc::now(), decision)).is_err() {
            return;
        }
        self.queue(&line);
    }

    fn queue(&self, line: &[u8]) {
        let mut pending = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(line);
        pending.push(b'\n');
    }

    /// Audit records given up so far (refused by the database, or beyond the
    /// retry queue's bound), for `/metrics`.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued now (the writer thread does it every interval).
    pub fn flush(&self) -> Result<(), LiveError> {
        self.shared.flush()
    }

    /// Every decision served to one customer, oldest first (a data-subject
    /// access request: read through the index on customer).
    pub fn decisions_of(&self, customer_id: &str) -> std::io::Result<Vec<AuditRecord>> {
        self.shared.flush()?;
        let mut out = Vec::new();
        for line in self.shared.db.audit_of(customer_id)? {
            let record = serde_json::from_str::<Compact>(&line)
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

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_the_database_refuses_is_given_up_and_counted_not_retried_forever() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let audit = AuditLog::open(db.clone()).unwrap();
        let decision = Decision {
            customer_id: "C1".into(),
            plan_version: "000001".into(),
            fallback: false,
            fallback_reason: None,
            channel: None,
            offers: Vec::new(),
            excluded: Vec::new(),
        };
        audit.record(&decision);
        audit.queue(b"{not json");
        audit.record(&decision);
        audit.flush().unwrap();
        assert_eq!(audit.dropped(), 1);
        assert_eq!(audit.decisions_of("C1").unwrap().len(), 2, "the good records around the bad one are kept");
        audit.record(&decision);
        audit.flush().unwrap();
        assert_eq!((audit.dropped(), audit.decisions_of("C1").unwrap().len()), (1, 3));
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
        };
        let at = Utc::now();
        let full = serde_json::to_string(&AuditRecord { at, decision: decision.clone() }).unwrap();
        let compact = serde_json::to_string(&Compact::of(at, &decision)).unwrap();
        let back: Compact = serde_json::from_str(&compact).unwrap();
        assert_eq!(back.expand(), AuditRecord { at, decision: decision.clone() });
        assert!(compact.len() * 10 < full.len() * 6, "compact {} bytes, full {}", compact.len(), full.len());
        // The fallback flag survives without a reason too.
        let fallback = Decision { fallback: true, fallback_reason: Some("plan_stale".into()), ..decision };
        assert_eq!(Compact::of(at, &fallback).expand().decision, fallback);
    }

    fn served(customer: &str) -> Decision {
        Decision { customer_id: customer.into(), plan_version: "000001".into(), fallback: false, fallback_reason: None, channel: None, offers: Vec::new(), excluded: Vec::new() }
    }

    /// A record as served at `at` (the writer stamps the time of serving).
    fn queue_at(audit: &AuditLog, at: DateTime<Utc>, customer: &str) {
        audit.queue(&serde_json::to_vec(&Compact::of(at, &served(customer))).unwrap());
    }

    #[test]
    fn retention_deletes_only_records_older_than_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
        let now = Utc::now();
        for days in [500, 401, 399, 1, 0] {
            queue_at(&audit, now - chrono::Duration::days(days), "C1");
        }
        audit.flush().unwrap();
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
        let audit = AuditLog::open(Arc::new(LiveDb::open_file(dir.path()).unwrap())).unwrap();
        let old = Utc::now() - chrono::Duration::days(30);
        for i in 0..crate::live::RETENTION_BATCH + 5 {
            queue_at(&audit, old, if i % 2 == 0 { "C1" } else { "C2" });
        }
        queue_at(&audit, Utc::now(), "C1");
        audit.flush().unwrap();
        audit.set_retention(Duration::from_secs(86_400));
        assert_eq!(audit.apply_retention(Utc::now()).unwrap(), crate::live::RETENTION_BATCH + 5);
        assert_eq!(audit.decisions_of("C1").unwrap().len() + audit.decisions_of("C2").unwrap().len(), 1);
    }

    #[test]
    fn erasure_removes_the_customers_records_queued_ones_included_and_records_itself_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(LiveDb::open_file(dir.path()).unwrap());
        let audit = AuditLog::open(db.clone()).unwrap();
        audit.record(&served("C1"));
        audit.record(&served("C2"));
        audit.flush().unwrap();
        audit.record(&served("C1")); // still queued
        let erased = audit.erase("C1").unwrap();
        assert_eq!(erased, Erased { audit_records: 2, consent_events: 0 });
        assert!(audit.decisions_of("C1").unwrap().is_empty());
        assert_eq!(audit.decisions_of("C2").unwrap().len(), 1, "other customers keep theirs");
        let all = db.all_audit().unwrap();
        let (who, record) = all.last().unwrap();
        assert!(who.is_empty() && !record.contains("C1"), "the erasure's record names no one: {record}");
        assert!(record.contains(r#""erasure":{"audit_records":2,"consent_events":0}"#), "{record}");
    }
}
