-- Contact events (`POST /v1/events/contact`, model version 2) join inventory
-- and consent. Neither dialect widens a CHECK the same way, so the table is
-- rebuilt as in 0002, and the customer index of 0003 made again.
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
DROP TABLE allot_events;
ALTER TABLE allot_events_v3 RENAME TO allot_events;
--@postgres SELECT setval(pg_get_serial_sequence('allot_events', 'seq'), COALESCE((SELECT MAX(seq) FROM allot_events), 0) + 1, false);
CREATE INDEX allot_events_customer ON allot_events ((body->'event'->>'customer_id'));
