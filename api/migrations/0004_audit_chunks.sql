-- The audit in chunks (issue 16: eligibility throughput). One row per decision
-- cost the service a quarter of its throughput: every insert rewrote a random
-- page of the per-customer index. Now a writer's flush is stored as chunks of
-- records (at most 64 KiB each, one compact JSON record per line), and a
-- customer's records are found through postings built in bulk by a merge
-- (`live/audit_store.rs` holds the format and the rules). The records of the
-- table `allot_audit` of 0001 are moved into chunks by the service at start,
-- and that table dropped.

-- Records as served. `lines` says where each record is in `body`: per record
-- its customer's hash (FNV-1a of the id, low 32 bits), byte offset and length
-- (three little-endian u32). `newest_at` is the time of its newest record
-- (RFC 3339, UTC, microseconds: text order is time order): retention deletes
-- whole chunks.
CREATE TABLE allot_audit_chunks (
    id        {{SERIAL}},
    newest_at TEXT NOT NULL,
    records   BIGINT NOT NULL,
    lines     {{BLOB}} NOT NULL,
    body      {{BLOB}} NOT NULL,
    replica   TEXT NOT NULL
);
CREATE INDEX allot_audit_chunks_newest ON allot_audit_chunks (newest_at);

-- Chunks whose records the postings do not list yet (a reader looks at their
-- `lines` directly; the merge empties this table).
CREATE TABLE allot_audit_unindexed (
    chunk BIGINT PRIMARY KEY
);

-- Where the records of one bucket of customer hashes are: per record its hash,
-- chunk id, byte offset and length (u32, i64, u32, u32, little-endian). One row
-- per bucket per merge, read through (bucket, id).
CREATE TABLE allot_audit_postings (
    id        {{SERIAL}},
    bucket    BIGINT NOT NULL,
    newest_at TEXT NOT NULL,
    entries   {{BLOB}} NOT NULL
);
CREATE INDEX allot_audit_postings_bucket ON allot_audit_postings (bucket, id);
CREATE INDEX allot_audit_postings_newest ON allot_audit_postings (newest_at);
