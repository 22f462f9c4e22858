-- The service's live state: events, plan activations, the audit and the
-- replicas' progress. The same files build the embedded SQLite database of
-- file mode and the PostgreSQL database replicas share (`allot serve
-- --database`); `live/schema.rs` renders the few type names that differ
-- ({{SERIAL}}, {{JSON}}, {{TIME}}, {{NOW}}) and keeps lines marked
-- `--@postgres` or `--@sqlite` for that dialect only.

-- Every accepted event, in the order replicas apply it. Inserts take an
-- advisory lock, so sequence numbers commit in order and a replica reading
-- "seq > last applied" never skips one that commits later.
CREATE TABLE allot_events (
    seq         {{SERIAL}},
    event_id    TEXT NOT NULL UNIQUE,
    body        {{JSON}} NOT NULL,
    replica     TEXT NOT NULL,
    recorded_at {{TIME}} NOT NULL DEFAULT {{NOW}}
);

-- The plan index: every activation (and rollback) of a plan version, newest
-- last. The active plan is the newest row.
CREATE TABLE allot_plan_activations (
    seq          {{SERIAL}},
    version      TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('activate', 'rollback')),
    replica      TEXT NOT NULL,
    activated_at {{TIME}} NOT NULL DEFAULT {{NOW}}
);

-- Every decision served, by any replica.
CREATE TABLE allot_audit (
    id          {{SERIAL}},
    customer_id TEXT NOT NULL,
    body        {{JSON}} NOT NULL,
    replica     TEXT NOT NULL
);
CREATE INDEX allot_audit_customer ON allot_audit (customer_id, id);

-- The replicas alive, and how far each has applied the events: a consent
-- change is acknowledged once every live replica has applied it.
CREATE TABLE allot_replicas (
    name         TEXT PRIMARY KEY,
    applied_seq  BIGINT NOT NULL,
    heartbeat_at {{TIME}} NOT NULL
);
