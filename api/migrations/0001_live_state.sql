-- The service's live state, shared by every replica (allot serve --database).
-- Plan files stay in the plan store; this holds what replicas must agree on.

-- Every accepted event, in the order replicas apply it. Inserts take an
-- advisory lock, so sequence numbers commit in order and a replica reading
-- "seq > last applied" never skips one that commits later.
CREATE TABLE allot_events (
    seq         BIGSERIAL PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    body        JSONB NOT NULL,
    replica     TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The plan index: every activation (and rollback) of a plan version, newest
-- last. The active plan is the newest row.
CREATE TABLE allot_plan_activations (
    seq          BIGSERIAL PRIMARY KEY,
    version      TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('activate', 'rollback')),
    replica      TEXT NOT NULL,
    activated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every decision served, by any replica.
CREATE TABLE allot_audit (
    id          BIGSERIAL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    body        JSONB NOT NULL,
    replica     TEXT NOT NULL
);
CREATE INDEX allot_audit_customer ON allot_audit (customer_id, id);

-- The replicas alive, and how far each has applied the events: a consent
-- change is acknowledged once every live replica has applied it.
CREATE TABLE allot_replicas (
    name         TEXT PRIMARY KEY,
    applied_seq  BIGINT NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
