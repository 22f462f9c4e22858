-- How far compaction has deleted inventory events: every one received at or
-- before `upto` (RFC 3339, UTC) may be gone. A plan version saved before it
-- cannot know its live stock (the moves since it was saved are incomplete),
-- so activating it, or rolling back to it, is refused.
CREATE TABLE allot_inventory_compacted (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto TEXT NOT NULL
);
