-- Bounded growth (issue 16, item 9). A data-subject access request and an
-- erasure read a customer's audit records through `allot_audit_customer`
-- (customer_id, id) from 0001; these indexes keep the other two bounded
-- operations off a full scan:
--
-- retention (`allot serve --audit-retention-days`) deletes the records served
-- before a cutoff, by the time each record carries (`at`, RFC 3339 in UTC,
-- so text order is time order);
CREATE INDEX allot_audit_at ON allot_audit ((body->>'at'));
-- an erasure deletes a customer's consent events (their personal overrides).
CREATE INDEX allot_events_customer ON allot_events ((body->'event'->>'customer_id'));
