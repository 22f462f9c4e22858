-- Contact events (`POST /v1/events/contact`, model version 2) join inventory
-- and consent. Neither dialect widens a CHECK the same way, so the table is
-- rebuilt as in 0002, and the customer index of 0003 made again. No event may
-- commit between the copy and the drop (PostgreSQL: the table is locked), and
-- sequence numbers never go back: the new table's counter starts past the old
-- one's, not past the largest row left (compaction and erasure may have
-- deleted the newest events; replicas have applied up to them).
--@postgres LOCK TABLE allot_events IN ACCESS EXCLUSIVE MODE;
CREATE TABLE allot_events_v3 (
    seq         {{SERIAL}},
    kind        TEXT NOT NULL CHECK (kind IN ('inventory', 'consent', 'contact')),
    event_id    TEXT NOT NULL,
    body        {{JSON}} NOT NULL,
    replica     TEXT NOT NULL,
    recorded_at {{TIME}} NOT NULL DEFAULT {{NOW}},
    UNIQUE (kind, event_id)
);
INSERT INTO allot_events_v3 (seq, kind, event_id, body, replica, recorded_at)
    SELECT seq, kind, event_id, body, replica, recorded_at FROM allot_events ORDER BY seq;
--@postgres SELECT setval(pg_get_serial_sequence('allot_events_v3', 'seq'), GREATEST(COALESCE((SELECT MAX(seq) FROM allot_events), 0), COALESCE(pg_sequence_last_value(pg_get_serial_sequence('allot_events', 'seq')::regclass), 0)) + 1, false);
--@sqlite INSERT INTO sqlite_sequence (name, seq) SELECT 'allot_events_v3', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'allot_events_v3');
--@sqlite UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT s.seq FROM sqlite_sequence AS s WHERE s.name = 'allot_events'), 0)) WHERE name = 'allot_events_v3';
DROP TABLE allot_events;
ALTER TABLE allot_events_v3 RENAME TO allot_events;
CREATE INDEX allot_events_customer ON allot_events ((body->'event'->>'customer_id'));
