//! How the audit is stored, the same for both databases (migration 0004).
//!
//! Why chunks and postings, not a row per decision with an index on
//! customer: the service writes tens of thousands of decisions a second, and
//! each row inserted into a per-customer index rewrites a random index page
//! (4 KiB written, and written again at checkpoint, per decision: a quarter of
//! the service's CPU, measured). Here a writer's flush becomes a few chunk rows
//! (records back to back, at most [`CHUNK_BYTES`] each) whose `lines` column
//! says, per record, its customer's hash and where it is. The chunk ids go to
//! `allot_audit_unindexed`; once [`MERGE_AT`] chunks wait there, a merge reads
//! their `lines` and writes one postings row per bucket of customer hashes,
//! so the per-customer index is built in bulk, a few rows per thousand
//! decisions. A customer's records are then: the postings rows of their
//! bucket, plus the `lines` of the chunks not merged yet, then only the chunks
//! that hold their records.
//!
//! Invariants: a record is in exactly one chunk, listed either by
//! `allot_audit_unindexed` (its chunk) or by one postings row, never both (the
//! merge moves them in one transaction); offsets never move (an erasure blanks
//! a record's bytes with spaces in place); a hash only narrows the search, a
//! record is a customer's when its own `customer_id` says so.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};

use super::error::LiveError;
use super::rows::{consent_snapshot_text, parse_consent_snapshot, Erased};
use super::schema::{Dialect, ERASED_ACCEPTANCES, ERASE_CONSENT, ERASE_CONSENT_EVENTS_RETURNING, ERASE_CONSENT_SNAPSHOT_RETURNING, KEEP_OBJECTION};
use crate::decide::CustomerOverride;
use super::sql::{Cell, Param, Sql};

/// Most bytes of records in one chunk (a chunk holds at least one record):
/// an access request reads whole chunks, so they stay small.
pub const CHUNK_BYTES: usize = 64 << 10;

/// Chunks waiting for the merge that start one: bounds what an access request
/// reads besides the postings (their `lines`, 12 bytes per record).
pub const MERGE_AT: i64 = 256;

/// Buckets of customer hashes: an access request reads the postings of one,
/// about 1/1024 of the audit's entries (20 bytes each).
pub const BUCKETS: u32 = 1024;

/// Chunks moved per merge transaction.
const MERGE_BATCH: i64 = 4096;

/// Chunks (and postings rows) deleted per statement by retention.
pub const RETENTION_BATCH: i64 = 10_000;

/// zstd's level for chunk bodies. Why compress: the records of a chunk
/// repeat their field names, offer ids and reasons, and a stored byte is
/// written twice (the WAL, then the checkpoint) and kept for the retention
/// period; at level 1 a chunk of `allot generate`'s decisions shrinks 5.7
/// times, compressed at about 680 MB/s (zstd's own benchmark, this
/// machine), off the request path, before the writer's transaction.
const CHUNK_ZSTD_LEVEL: i32 = 1;

/// The first bytes of a zstd frame. A stored body that starts with them is
/// compressed; one that does not was stored plain (by a build before
/// compression, or when compressing failed): a plain body starts with a
/// record's `{` or an erased record's blank, never with these.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Bytes per record in a chunk's `lines`: hash, offset, length.
const LINE_BYTES: usize = 12;
/// Bytes per entry of a postings row: hash, chunk, offset, length.
const ENTRY_BYTES: usize = 20;

/// The hash under which a customer's records are filed: the low 32 bits of
/// the same FNV-1a that partitions customers.
pub fn customer_hash(customer_id: &str) -> u32 {
    allot_scenarios::scenario::partitions::customer_hash(customer_id) as u32
}

/// Audit records ready to store: compact JSON lines back to back, with each
/// line's customer hash, place and time.
#[derive(Debug, Default, Clone)]
pub struct AuditBatch {
    body: Vec<u8>,
    lines: Vec<Line>,
}

#[derive(Debug, Clone, Copy)]
struct Line {
    hash: u32,
    offset: u32,
    len: u32,
    /// Microseconds since the epoch, for the chunk's `newest_at`.
    at: i64,
}

impl AuditBatch {
    /// Appends one record (one line of JSON, no newline) of `customer_id`, served `at`.
    pub fn push(&mut self, customer_id: &str, at: DateTime<Utc>, record: &[u8]) {
        self.push_hashed(customer_hash(customer_id), at, record);
    }

    /// [`AuditBatch::push`] with the customer's hash already computed (outside a lock).
    pub fn push_hashed(&mut self, hash: u32, at: DateTime<Utc>, record: &[u8]) {
        let offset = self.body.len() as u32;
        self.body.extend_from_slice(record);
        self.body.push(b'\n');
        self.lines.push(Line { hash, offset, len: record.len() as u32, at: at.timestamp_micros() });
    }

    /// Empties the batch, keeping its buffers (see [`crate::audit::AuditLog`]'s
    /// spare batch) unless they grew past `max_bytes` (after an outage).
    pub fn clear(&mut self, max_bytes: usize) {
        if self.body.capacity() > max_bytes {
            *self = AuditBatch::default();
        } else {
            self.body.clear();
            self.lines.clear();
        }
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Appends `newer`'s records after this batch's.
    pub fn extend(&mut self, newer: &AuditBatch) {
        let base = self.body.len() as u32;
        self.body.extend_from_slice(&newer.body);
        self.lines.extend(newer.lines.iter().map(|l| Line { offset: l.offset + base, ..*l }));
    }

    /// Drops the oldest records until at most `max_bytes` remain; returns how many went.
    pub fn keep_newest(&mut self, max_bytes: usize) -> usize {
        let mut cut = 0;
        while cut < self.lines.len() && self.body.len() - self.lines[cut].offset as usize > max_bytes {
            cut += 1;
        }
        if cut == 0 {
            return 0;
        }
        let start = self.lines.get(cut).map_or(self.body.len(), |l| l.offset as usize);
        self.body.drain(..start);
        self.lines.drain(..cut);
        for l in &mut self.lines {
            l.offset -= start as u32;
        }
        cut
    }

    /// The batch cut into chunks at record boundaries.
    fn chunks(&self) -> impl Iterator<Item = Chunk<'_>> {
        let mut first = 0;
        std::iter::from_fn(move || {
            if first == self.lines.len() {
                return None;
            }
            let start = self.lines[first].offset as usize;
            let mut end = first + 1;
            while end < self.lines.len() && self.lines[end].offset as usize + self.lines[end].len as usize + 1 - start <= CHUNK_BYTES {
                end += 1;
            }
            let lines = &self.lines[first..end];
            first = end;
            let stop = lines.last().map_or(start, |l| l.offset as usize + l.len as usize + 1);
            let mut index = Vec::with_capacity(lines.len() * LINE_BYTES);
            for l in lines {
                index.extend_from_slice(&l.hash.to_le_bytes());
                index.extend_from_slice(&(l.offset - start as u32).to_le_bytes());
                index.extend_from_slice(&l.len.to_le_bytes());
            }
            let newest = lines.iter().map(|l| l.at).max().unwrap_or(0);
            Some(Chunk { newest_at: micros_text(newest), records: lines.len() as i64, lines: index, body: &self.body[start..stop] })
        })
    }
}

struct Chunk<'a> {
    newest_at: String,
    records: i64,
    lines: Vec<u8>,
    body: &'a [u8],
}

/// A chunk as it is stored: its body compressed ([`stored_body`]).
pub(crate) struct StoredChunk {
    newest_at: String,
    records: i64,
    lines: Vec<u8>,
    body: Vec<u8>,
}

/// The batch's chunks as stored. Why apart from [`insert_chunks`]: the
/// writer compresses before its transaction, not while it holds the
/// database (which a consent event may be waiting for). It yields its core
/// after each chunk (about 0.1 ms of zstd): a flush is about a millisecond
/// of compression, which in one piece delayed the requests queued behind it.
pub(crate) fn stored_chunks(batch: &AuditBatch) -> Vec<StoredChunk> {
    batch
        .chunks()
        .map(|c| {
            let body = stored_body(c.body);
            std::thread::yield_now();
            StoredChunk { newest_at: c.newest_at, records: c.records, lines: c.lines, body }
        })
        .collect()
}

/// A chunk body as stored: `plain` compressed, or `plain` itself in the
/// unlikely case zstd refuses it (readers take both: [`plain_body`]).
fn stored_body(plain: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(plain, CHUNK_ZSTD_LEVEL).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "an audit chunk is stored uncompressed");
        plain.to_vec()
    })
}

/// The records of chunk `chunk` from its stored body: decompressed, or as
/// stored when it was stored plain.
fn plain_body(chunk: i64, stored: Vec<u8>) -> Result<Vec<u8>, LiveError> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Ok(stored);
    }
    zstd::stream::decode_all(stored.as_slice()).map_err(|e| LiveError::Corrupt { table: "allot_audit_chunks", reason: format!("chunk {chunk}: its body does not decompress: {e}") })
}

/// A time as the audit tables compare it: RFC 3339, UTC, always six decimals,
/// so text order is time order.
pub fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn micros_text(micros: i64) -> String {
    time_text(DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// Stores a batch as chunks ([`insert_chunks`]).
pub(crate) fn insert_batch(sql: &mut dyn Sql, batch: &AuditBatch, replica: &str) -> Result<i64, LiveError> {
    insert_chunks(sql, &stored_chunks(batch), replica)
}

/// Stores chunks, each listed as waiting for the merge; returns how many
/// chunks now wait (this writer's and others').
pub(crate) fn insert_chunks(sql: &mut dyn Sql, chunks: &[StoredChunk], replica: &str) -> Result<i64, LiveError> {
    for chunk in chunks {
        let id = sql.rows(
            "INSERT INTO allot_audit_chunks (newest_at, records, lines, body, replica) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[Param::Text(&chunk.newest_at), Param::Int(chunk.records), Param::Bytes(&chunk.lines), Param::Bytes(&chunk.body), Param::Text(replica)],
        )?;
        let id = first_int(&id);
        sql.exec("INSERT INTO allot_audit_unindexed (chunk) VALUES ($1)", &[Param::Int(id)])?;
    }
    Ok(first_int(&sql.rows("SELECT count(*) FROM allot_audit_unindexed", &[])?))
}

/// The first column of the first row, as an integer (0 when there is none).
fn first_int(rows: &[Vec<Cell>]) -> i64 {
    rows.first().and_then(|r| r.first()).map_or(0, Cell::int)
}

/// Moves up to [`MERGE_BATCH`] waiting chunks into postings rows; returns how
/// many chunks it took (0: none waited). Taking them is a `DELETE ...
/// RETURNING`, so two replicas merging at once never list a record twice.
pub(crate) fn merge(sql: &mut dyn Sql) -> Result<usize, LiveError> {
    sql.lock_maintenance()?;
    let taken = sql.rows(
        "DELETE FROM allot_audit_unindexed WHERE chunk IN (SELECT chunk FROM allot_audit_unindexed ORDER BY chunk LIMIT $1) RETURNING chunk",
        &[Param::Int(MERGE_BATCH)],
    )?;
    let mut ids: Vec<i64> = taken.iter().filter_map(|r| r.first()).map(Cell::int).collect();
    ids.sort_unstable();
    let mut buckets: Vec<(Vec<u8>, String)> = vec![(Vec::new(), String::new()); BUCKETS as usize];
    for &id in &ids {
        let Some(row) = sql.rows("SELECT lines, newest_at FROM allot_audit_chunks WHERE id = $1", &[Param::Int(id)])?.pop() else {
            continue; // deleted by retention meanwhile
        };
        let mut row = row.into_iter();
        let lines = row.next().map(Cell::into_bytes).unwrap_or_default();
        let newest = row.next().map(Cell::into_text).unwrap_or_default();
        for (hash, offset, len) in decode_lines(&lines) {
            let (entries, bucket_newest) = &mut buckets[(hash % BUCKETS) as usize];
            entries.extend_from_slice(&hash.to_le_bytes());
            entries.extend_from_slice(&id.to_le_bytes());
            entries.extend_from_slice(&offset.to_le_bytes());
            entries.extend_from_slice(&len.to_le_bytes());
            if *bucket_newest < newest {
                bucket_newest.clone_from(&newest);
            }
        }
    }
    for (bucket, (entries, newest)) in buckets.iter().enumerate() {
        if !entries.is_empty() {
            sql.exec(
                "INSERT INTO allot_audit_postings (bucket, newest_at, entries) VALUES ($1, $2, $3)",
                &[Param::Int(bucket as i64), Param::Text(newest), Param::Bytes(entries)],
            )?;
        }
    }
    Ok(ids.len())
}

fn decode_lines(lines: &[u8]) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
    lines.chunks_exact(LINE_BYTES).map(|c| (u32_at(c, 0), u32_at(c, 4), u32_at(c, 8)))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The line index of every chunk waiting for the merge. Why `IN` and not a
/// join: a join ordered by chunk id let SQLite scan every chunk (linear in the
/// audit's size) and probe the small waiting list for each.
pub(crate) const UNINDEXED_LINES: &str = "SELECT id, lines FROM allot_audit_chunks WHERE id IN (SELECT chunk FROM allot_audit_unindexed) ORDER BY id";

/// Where a record is: chunk id, byte offset, length.
type Place = (i64, u32, u32);

/// The places of every record whose hash is `hash`, in storage order.
fn places(sql: &mut dyn Sql, hash: u32) -> Result<Vec<Place>, LiveError> {
    let mut out = Vec::new();
    for row in sql.rows("SELECT entries FROM allot_audit_postings WHERE bucket = $1 ORDER BY id", &[Param::Int(i64::from(hash % BUCKETS))])? {
        let entries = row.into_iter().next().map(Cell::into_bytes).unwrap_or_default();
        for e in entries.chunks_exact(ENTRY_BYTES) {
            if u32_at(e, 0) == hash {
                let chunk = i64::from_le_bytes(e[4..12].try_into().unwrap_or_default());
                out.push((chunk, u32_at(e, 12), u32_at(e, 16)));
            }
        }
    }
    for row in sql.rows(UNINDEXED_LINES, &[])? {
        let mut row = row.into_iter();
        let chunk = row.next().map_or(0, |c| c.int());
        let lines = row.next().map(Cell::into_bytes).unwrap_or_default();
        out.extend(decode_lines(&lines).filter(|l| l.0 == hash).map(|(_, offset, len)| (chunk, offset, len)));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One of a customer's records as found: its chunk, its place there, its text.
struct Found {
    chunk: i64,
    offset: u32,
    text: String,
}

/// The record at `offset` (`len` bytes) of chunk `chunk`'s `body`, with its
/// own `customer_id` (none for a record of no customer, an erasure's);
/// `None` when it was erased (blanked). The one reading of a stored record:
/// a place past the chunk's end or a record that does not parse is an error.
fn record_at<'b>(chunk: i64, body: &'b [u8], offset: u32, len: u32) -> Result<Option<(&'b [u8], Option<Cow<'b, str>>)>, LiveError> {
    #[derive(serde::Deserialize)]
    struct Whose<'a> {
        #[serde(borrow)]
        customer_id: Option<Cow<'a, str>>,
    }
    let Some(bytes) = body.get(offset as usize..offset as usize + len as usize) else {
        return Err(LiveError::Corrupt { table: "allot_audit_chunks", reason: format!("chunk {chunk}: a record at {offset}+{len} is past its end") });
    };
    if bytes.first().is_none_or(|&b| b == b' ') {
        return Ok(None);
    }
    let whose: Whose<'b> = serde_json::from_slice(bytes).map_err(|e| LiveError::Corrupt { table: "allot_audit_chunks", reason: format!("chunk {chunk}, byte {offset}: {e}") })?;
    Ok(Some((bytes, whose.customer_id)))
}

/// The records of `customer_id` (hash matched, then the record's own
/// `customer_id` checked), grouped by chunk, each chunk read once.
fn find(sql: &mut dyn Sql, customer_id: &str) -> Result<(Vec<Found>, Vec<(i64, Vec<u8>)>), LiveError> {
    sql.lock_maintenance()?;
    let mut found = Vec::new();
    let mut bodies = Vec::new();
    let places = places(sql, customer_hash(customer_id))?;
    let mut i = 0;
    while i < places.len() {
        let chunk = places[i].0;
        let end = places[i..].iter().position(|p| p.0 != chunk).map_or(places.len(), |k| i + k);
        if let Some(row) = sql.rows("SELECT body FROM allot_audit_chunks WHERE id = $1", &[Param::Int(chunk)])?.pop() {
            let body = plain_body(chunk, row.into_iter().next().map(Cell::into_bytes).unwrap_or_default())?;
            for &(_, offset, len) in &places[i..end] {
                if let Some((bytes, Some(whose))) = record_at(chunk, &body, offset, len)? {
                    if whose == customer_id {
                        found.push(Found { chunk, offset, text: String::from_utf8_lossy(bytes).into_owned() });
                    }
                }
            }
            bodies.push((chunk, body));
        }
        i = end;
    }
    Ok((found, bodies))
}

/// Every record of `customer_id`, oldest first (as stored: a writer's records
/// in the order served; across replicas, in chunk order).
pub(crate) fn records_of(sql: &mut dyn Sql, customer_id: &str) -> Result<Vec<String>, LiveError> {
    Ok(find(sql, customer_id)?.0.into_iter().map(|f| f.text).collect())
}

/// Erases a customer's records (their bytes blanked in place, so no other
/// record moves) and consent events, keeping their objection (a withdrawn
/// consent, a suppression) as their only snapshot row, then stores
/// `record(what was erased)` as an audit record of no customer; the caller
/// commits.
pub(crate) fn erase(sql: &mut dyn Sql, customer_id: &str, replica: &str, record: impl FnOnce(Erased) -> String) -> Result<Erased, LiveError> {
    let (found, bodies) = find(sql, customer_id)?;
    for (chunk, mut body) in bodies {
        let mine: Vec<&Found> = found.iter().filter(|f| f.chunk == chunk).collect();
        if mine.is_empty() {
            continue;
        }
        for f in mine {
            body[f.offset as usize..f.offset as usize + f.text.len()].fill(b' ');
        }
        sql.exec("UPDATE allot_audit_chunks SET body = $1 WHERE id = $2", &[Param::Bytes(&stored_body(&body)), Param::Int(chunk)])?;
    }
    // Their acceptances stay, without who or which order (what they burnt of
    // the plan's caps and budget stays burnt); then their consent, contact and
    // other outcome events go, and their consent folded by compaction.
    anonymise_acceptances(sql, customer_id)?;
    // Folded from what is deleted, not from this replica's memory: another
    // replica's withdrawal it has not caught up with counts too.
    let erased_consent = erase_consent(sql, customer_id)?;
    let others = sql.exec(ERASE_CONSENT, &[Param::Text(customer_id)])?;
    let objection = erased_consent.folded.objection();
    if let Some(o) = &objection {
        let text = consent_snapshot_text(o)?;
        sql.exec(KEEP_OBJECTION, &[Param::Text(customer_id), Param::Text(&text), Param::Int(erased_consent.upto)])?;
    }
    // A snapshot row that held exactly the objection kept is not counted (an
    // erasure repeated erases nothing).
    let snapshot_erased = erased_consent.snapshot.is_some_and(|s| Some(s) != objection);
    let consent_events = erased_consent.events + others + u64::from(snapshot_erased);
    let erased = Erased { audit_records: found.len() as u64, consent_events, objection };
    let mut batch = AuditBatch::default();
    batch.push("", Utc::now(), record(erased).as_bytes());
    insert_batch(sql, &batch, replica)?;
    Ok(erased)
}

/// What an erasure deleted of a customer's consent.
struct ErasedConsent {
    /// The compacted snapshot, then the consent events after it, folded in order.
    folded: CustomerOverride,
    /// The last sequence number folded.
    upto: i64,
    /// The snapshot row's override, when there was one.
    snapshot: Option<CustomerOverride>,
    /// Consent events deleted.
    events: u64,
}

/// Deletes a customer's consent (their snapshot row and consent events) and
/// folds what it deleted.
fn erase_consent(sql: &mut dyn Sql, customer_id: &str) -> Result<ErasedConsent, LiveError> {
    let corrupt = |table: &'static str, reason: String| LiveError::Corrupt { table, reason };
    let mut erased = ErasedConsent { folded: CustomerOverride::default(), upto: 0, snapshot: None, events: 0 };
    if let Some(row) = sql.rows(ERASE_CONSENT_SNAPSHOT_RETURNING, &[Param::Text(customer_id)])?.into_iter().next() {
        let mut row = row.into_iter();
        let text = row.next().map(Cell::into_text).unwrap_or_default();
        let snapshot = parse_consent_snapshot(customer_id, &text)?;
        (erased.folded, erased.snapshot, erased.upto) = (snapshot, Some(snapshot), row.next().map_or(0, |c| c.int()));
    }
    let mut events = Vec::new();
    for row in sql.rows(ERASE_CONSENT_EVENTS_RETURNING, &[Param::Text(customer_id)])? {
        let mut row = row.into_iter();
        let seq = row.next().map_or(0, |c| c.int());
        let mut setting = || -> Result<Option<bool>, LiveError> {
            match row.next().map(Cell::into_text).as_deref() {
                None | Some("") | Some("null") => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(other) => Err(corrupt("allot_events", format!("seq {seq}: a consent setting of {other:?}, not true, false or null"))),
            }
        };
        let (consent, suppressed) = (setting()?, setting()?);
        events.push((seq, consent, suppressed));
    }
    // RETURNING gives no order: the events fold in the order recorded.
    events.sort_by_key(|&(seq, ..)| seq);
    for (seq, consent, suppressed) in events {
        erased.folded.update(consent, suppressed);
        erased.upto = erased.upto.max(seq);
        erased.events += 1;
    }
    Ok(erased)
}

/// Rewrites a customer's accepted outcome events without their customer,
/// order and warehouse (the customer id becomes empty, which no plan knows).
fn anonymise_acceptances(sql: &mut dyn Sql, customer_id: &str) -> Result<(), LiveError> {
    let update = match sql.dialect() {
        Dialect::Sqlite => "UPDATE allot_events SET body = $1 WHERE seq = $2",
        Dialect::Postgres => "UPDATE allot_events SET body = CAST($1::text AS jsonb) WHERE seq = $2",
    };
    for row in sql.rows(ERASED_ACCEPTANCES, &[Param::Text(customer_id)])? {
        let mut row = row.into_iter();
        let seq = row.next().map_or(0, |c| c.int());
        let mut body: serde_json::Value = serde_json::from_str(&row.next().map(Cell::into_text).unwrap_or_default())
            .map_err(|e| LiveError::Corrupt { table: "allot_events", reason: format!("seq {seq}: {e}") })?;
        if let Some(event) = body.get_mut("event").and_then(serde_json::Value::as_object_mut) {
            event.insert("customer_id".into(), serde_json::Value::String(String::new()));
            event.remove("order_id");
            event.remove("warehouse_id");
        }
        if let Some(outer) = body.as_object_mut() {
            outer.remove("arms");
        }
        sql.exec(update, &[Param::Text(&body.to_string()), Param::Int(seq)])?;
    }
    Ok(())
}

/// Deletes one batch of chunks whose newest record was served before
/// `cutoff`, and one of postings rows that list only such chunks; returns
/// (the larger count of rows deleted, records in the chunks deleted).
pub(crate) fn delete_before(sql: &mut dyn Sql, cutoff: &str, batch: i64) -> Result<(i64, i64), LiveError> {
    let gone = sql.rows(
        "DELETE FROM allot_audit_chunks WHERE id IN (SELECT id FROM allot_audit_chunks WHERE newest_at < $1 LIMIT $2) RETURNING records",
        &[Param::Text(cutoff), Param::Int(batch)],
    )?;
    let postings = sql.exec(
        "DELETE FROM allot_audit_postings WHERE id IN (SELECT id FROM allot_audit_postings WHERE newest_at < $1 LIMIT $2)",
        &[Param::Text(cutoff), Param::Int(batch)],
    )?;
    Ok(((gone.len() as i64).max(postings as i64), gone.iter().filter_map(|r| r.first()).map(Cell::int).sum()))
}

/// Every record with its customer, oldest first (what moves when a store
/// switches to a shared database); erased records are left out.
pub(crate) fn all_records(sql: &mut dyn Sql) -> Result<Vec<(String, String)>, LiveError> {
    records_since(sql, "")
}

/// Every record of the chunks whose newest record was served at or after
/// `since` (RFC 3339 text, see [`time_text`]; `""`: all) with its customer,
/// oldest chunk first; erased records are left out.
pub(crate) fn records_since(sql: &mut dyn Sql, since: &str) -> Result<Vec<(String, String)>, LiveError> {
    let mut out = Vec::new();
    for row in sql.rows("SELECT id, lines, body FROM allot_audit_chunks WHERE newest_at >= $1 ORDER BY id", &[Param::Text(since)])? {
        let mut row = row.into_iter();
        let chunk = row.next().map_or(0, |c| c.int());
        let lines = row.next().map(Cell::into_bytes).unwrap_or_default();
        let body = plain_body(chunk, row.next().map(Cell::into_bytes).unwrap_or_default())?;
        for (_, offset, len) in decode_lines(&lines) {
            if let Some((bytes, whose)) = record_at(chunk, &body, offset, len)? {
                out.push((whose.unwrap_or_default().into_owned(), String::from_utf8_lossy(bytes).into_owned()));
            }
        }
    }
    Ok(out)
}

/// A batch of (customer, record) pairs read back from an old log or table,
/// each record's time taken from its own `at`.
pub(crate) fn batch_of(records: &[(String, String)]) -> AuditBatch {
    #[derive(serde::Deserialize)]
    struct When {
        #[serde(default, with = "crate::audit::served_at::optional")]
        at: Option<DateTime<Utc>>,
    }
    let mut batch = AuditBatch::default();
    for (customer, text) in records {
        let at = serde_json::from_str::<When>(text).ok().and_then(|w| w.at).unwrap_or(DateTime::<Utc>::MIN_UTC);
        batch.push(customer, at, text.as_bytes());
    }
    batch
}

/// The name under which moving the rows of 0001's `allot_audit` table into
/// chunks is recorded in `allot_imports`.
pub(crate) const LEGACY_TABLE: &str = "allot_audit";

/// Moves [`RETENTION_BATCH`] rows of the old one-row-per-record table into
/// chunks; returns how many it moved (0: none left, and then the table is
/// dropped and the move recorded as done, once). Taking them is a
/// `DELETE ... RETURNING`, so a crash or a second replica never moves a row twice.
pub(crate) fn move_legacy_rows(sql: &mut dyn Sql, replica: &str) -> Result<usize, LiveError> {
    sql.lock_maintenance()?;
    if !sql.rows("SELECT 1 FROM allot_imports WHERE file = $1", &[Param::Text(LEGACY_TABLE)])?.is_empty() {
        return Ok(0);
    }
    let body = match sql.dialect() {
        Dialect::Sqlite => "body",
        Dialect::Postgres => "body::text",
    };
    let mut rows = sql.rows(
        &format!("DELETE FROM allot_audit WHERE id IN (SELECT id FROM allot_audit ORDER BY id LIMIT $1) RETURNING id, customer_id, {body}"),
        &[Param::Int(RETENTION_BATCH)],
    )?;
    rows.sort_by_key(|r| r.first().map_or(0, Cell::int));
    let text = |cell: Option<&Cell>| match cell {
        Some(Cell::Text(t)) => t.clone(),
        _ => String::new(),
    };
    let records: Vec<(String, String)> = rows.iter().map(|r| (text(r.get(1)), text(r.get(2)))).collect();
    if records.is_empty() {
        // All moved: the old table goes, and the move is recorded as done.
        sql.exec("DROP TABLE IF EXISTS allot_audit", &[])?;
        sql.exec("INSERT INTO allot_imports (file, rows) VALUES ($1, 0)", &[Param::Text(LEGACY_TABLE)])?;
        return Ok(0);
    }
    insert_batch(sql, &batch_of(&records), replica)?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store moving to another database reads each record's time back:
    /// the numeric form of today's records and the text of older ones (a
    /// time not read falls back to the earliest, which retention deletes first).
    #[test]
    fn a_record_read_back_whole_keeps_its_time_in_either_form() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T21:47:11.123456789Z").unwrap().to_utc();
        let numeric = format!(r#"{{"at":{},"customer_id":"C1","v":"000001","o":[]}}"#, at.timestamp_nanos_opt().unwrap());
        let text = r#"{"at":"2026-12-06T21:47:11.123456789Z","customer_id":"C2","v":"000001","o":[]}"#.to_string();
        let batch = batch_of(&[("C1".into(), numeric), ("C2".into(), text)]);
        assert_eq!(batch.lines.iter().map(|l| l.at).collect::<Vec<_>>(), [at.timestamp_micros(); 2]);
    }

    fn batch(records: &[(&str, &str)]) -> AuditBatch {
        let mut b = AuditBatch::default();
        for (customer, text) in records {
            b.push(customer, Utc::now(), text.as_bytes());
        }
        b
    }

    #[test]
    fn chunks_cut_at_record_boundaries_within_the_size() {
        let big = "x".repeat(CHUNK_BYTES / 3);
        let b = batch(&[("a", &big), ("b", &big), ("c", &big), ("d", "{}")]);
        let chunks: Vec<_> = b.chunks().collect();
        assert_eq!(chunks.iter().map(|c| c.records).collect::<Vec<_>>(), [2, 2]);
        for c in &chunks {
            assert!(c.body.len() <= CHUNK_BYTES);
            for (_, offset, len) in decode_lines(&c.lines) {
                assert_eq!(c.body[(offset + len) as usize], b'\n', "each line ends where its length says");
            }
        }
        // A record larger than a chunk still gets one.
        let huge = "y".repeat(CHUNK_BYTES * 2);
        assert_eq!(batch(&[("a", &huge)]).chunks().count(), 1);
    }

    #[test]
    fn keep_newest_drops_whole_records_from_the_front() {
        let mut b = batch(&[("a", "1111"), ("b", "2222"), ("c", "3333")]);
        assert_eq!(b.keep_newest(10), 1);
        assert_eq!(b.len(), 2);
        let chunk = b.chunks().next().unwrap();
        assert_eq!(chunk.body, b"2222\n3333\n");
        let mut older = batch(&[("z", "0")]);
        older.extend(&b);
        assert_eq!(older.chunks().next().unwrap().body, b"0\n2222\n3333\n");
        let offsets: Vec<u32> = decode_lines(&older.chunks().next().unwrap().lines).map(|l| l.1).collect();
        assert_eq!(offsets, [0, 2, 7]);
    }
}
