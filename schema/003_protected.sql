-- 003_protected: protected snapshots (pinned by hand or held by an incident) are a handful among
-- millions. A partial index of just them keeps counting them (the status route) and listing them
-- (pinned=1) an index walk instead of a scan of the whole snapshots table.
CREATE INDEX snapshots_protected ON snapshots (start_ms) WHERE pinned <> 0 OR incidents > 0;
