-- A replica catching up after a lapse reads the snapshot rows that fold
-- events past what it applied (`EventLog::catch_up`): by `upto_seq`, without
-- a scan of every customer's row.
CREATE INDEX allot_consent_snapshot_upto ON allot_consent_snapshot (upto_seq);
