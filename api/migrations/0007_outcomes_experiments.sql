-- Outcome events (`POST /v1/events/outcome`: shown, accepted, declined,
-- ordered, delivered) and experiment changes (canary, shadow and holdout
-- started, their share changed, stopped: `/v1/experiments`) join the event
-- log, so replicas apply them in one order and a restart folds them again.
-- The table is rebuilt as in 0006 (a CHECK widens the same way in neither
-- dialect), with the same care for sequence numbers.
--@postgres LOCK TABLE allot_events IN ACCESS EXCLUSIVE MODE;
CREATE TABLE allot_events_v4 (
    seq         {{SERIAL}},
    kind        TEXT NOT NULL CHECK (kind IN ('inventory', 'consent', 'contact', 'outcome', 'experiment')),
    event_id    TEXT NOT NULL,
    body        {{JSON}} NOT NULL,
    replica     TEXT NOT NULL,
    recorded_at {{TIME}} NOT NULL DEFAULT {{NOW}},
    UNIQUE (kind, event_id)
);
INSERT INTO allot_events_v4 (seq, kind, event_id, body, replica, recorded_at)
    SELECT seq, kind, event_id, body, replica, recorded_at FROM allot_events ORDER BY seq;
--@postgres SELECT setval(pg_get_serial_sequence('allot_events_v4', 'seq'), GREATEST(COALESCE((SELECT MAX(seq) FROM allot_events), 0), COALESCE(pg_sequence_last_value(pg_get_serial_sequence('allot_events', 'seq')::regclass), 0)) + 1, false);
--@sqlite INSERT INTO sqlite_sequence (name, seq) SELECT 'allot_events_v4', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'allot_events_v4');
--@sqlite UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT s.seq FROM sqlite_sequence AS s WHERE s.name = 'allot_events'), 0)) WHERE name = 'allot_events_v4';
DROP TABLE allot_events;
ALTER TABLE allot_events_v4 RENAME TO allot_events;
CREATE INDEX allot_events_customer ON allot_events ((body->'event'->>'customer_id'));
