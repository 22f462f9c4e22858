-- Compaction of live events (issue 16, item 9): consent events older than
-- the event window (`allot serve --event-window-days`) are folded into one
-- row per customer here and deleted; inventory events that old, and older
-- than every plan that could still be served, are deleted. A replica starts
-- from this table, then folds the events left, in sequence order (every
-- event folded here precedes every consent event left).
CREATE TABLE allot_consent_snapshot (
    customer_id TEXT PRIMARY KEY,
    -- The folded override: {"consent": bool|null, "suppressed": bool|null}.
    override    TEXT NOT NULL,
    -- The last event folded in.
    upto_seq    BIGINT NOT NULL
);
