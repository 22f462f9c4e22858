-- Event ids are scoped per kind: a fulfilment system and a consent channel
-- may both use "e-1" without one becoming a duplicate of the other. The table
-- is rebuilt (neither dialect can drop a column's UNIQUE the same way) and the
-- kind taken from the stored body.
CREATE TABLE allot_events_v2 (
    seq         {{SERIAL}},
    kind        TEXT NOT NULL CHECK (kind IN ('inventory', 'consent')),
    event_id    TEXT NOT NULL,
    body        {{JSON}} NOT NULL,
    replica     TEXT NOT NULL,
    recorded_at {{TIME}} NOT NULL DEFAULT {{NOW}},
    UNIQUE (kind, event_id)
);
INSERT INTO allot_events_v2 (seq, kind, event_id, body, replica, recorded_at)
    SELECT seq, body->>'type', event_id, body, replica, recorded_at FROM allot_events ORDER BY seq;
DROP TABLE allot_events;
ALTER TABLE allot_events_v2 RENAME TO allot_events;
--@postgres SELECT setval(pg_get_serial_sequence('allot_events', 'seq'), COALESCE((SELECT MAX(seq) FROM allot_events), 0) + 1, false);

-- Planning jobs (`POST /v1/plans`), so the job list survives a restart.
CREATE TABLE allot_jobs (
    job_id     TEXT PRIMARY KEY,
    body       {{JSON}} NOT NULL,
    updated_at {{TIME}} NOT NULL DEFAULT {{NOW}}
);

-- Files of the old file mode (events.jsonl, audit.jsonl) imported into this
-- database, recorded in the import's own transaction, so a crash before the
-- files are renamed aside never imports them twice.
CREATE TABLE allot_imports (
    file        TEXT PRIMARY KEY,
    rows        BIGINT NOT NULL,
    imported_at {{TIME}} NOT NULL DEFAULT {{NOW}}
);
