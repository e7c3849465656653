-- 002_aggregates: running totals kept by triggers, so that the targets list and the status
-- API answer from a few rows instead of scanning millions of snapshots. Backfilled from what a
-- version-1 database already holds.

-- Per target and kind: count, bytes (stored bytes of the snapshots' blobs, a blob shared by two
-- snapshots counted twice), first/last start time and the newest snapshot.
CREATE TABLE target_kinds (
    target_id   INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    snapshots   INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    last_id     INTEGER NOT NULL,
    last_status TEXT    NOT NULL,
    PRIMARY KEY (target_id, kind)
) WITHOUT ROWID;

CREATE TABLE status_counts (
    status    TEXT    PRIMARY KEY,
    snapshots INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;

-- One row: blobs as actually stored (each counted once).
CREATE TABLE blob_totals (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    blobs        INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL,
    raw_bytes    INTEGER NOT NULL
);

INSERT INTO target_kinds (target_id, kind, snapshots, bytes, first_ms, last_ms, last_id,
                          last_status)
SELECT target_id, kind, count(*), total(stored_bytes), min(start_ms), max(start_ms), 0, ''
FROM snapshots GROUP BY target_id, kind;

UPDATE target_kinds SET (last_id, last_status) = (
    SELECT s.id, s.status FROM snapshots s
    WHERE s.target_id = target_kinds.target_id AND s.kind = target_kinds.kind
    ORDER BY s.start_ms DESC, s.id DESC LIMIT 1);

INSERT INTO status_counts (status, snapshots, bytes)
SELECT status, count(*), total(stored_bytes) FROM snapshots GROUP BY status;

INSERT INTO blob_totals (id, blobs, stored_bytes, raw_bytes)
SELECT 1, count(*), total(stored_len), total(raw_len) FROM blobs;

CREATE TRIGGER snapshots_added AFTER INSERT ON snapshots
BEGIN
    INSERT INTO target_kinds (target_id, kind, snapshots, bytes, first_ms, last_ms, last_id,
                              last_status)
    VALUES (NEW.target_id, NEW.kind, 1, NEW.stored_bytes, NEW.start_ms, NEW.start_ms, NEW.id,
            NEW.status)
    ON CONFLICT (target_id, kind) DO UPDATE SET
        snapshots = snapshots + 1,
        bytes = bytes + excluded.bytes,
        first_ms = min(first_ms, excluded.first_ms),
        last_id = CASE WHEN excluded.last_ms >= last_ms THEN excluded.last_id ELSE last_id END,
        last_status = CASE WHEN excluded.last_ms >= last_ms THEN excluded.last_status
                           ELSE last_status END,
        last_ms = max(last_ms, excluded.last_ms);
    INSERT INTO status_counts (status, snapshots, bytes)
    VALUES (NEW.status, 1, NEW.stored_bytes)
    ON CONFLICT (status) DO UPDATE SET
        snapshots = snapshots + 1,
        bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER snapshots_removed AFTER DELETE ON snapshots
BEGIN
    UPDATE target_kinds SET snapshots = snapshots - 1, bytes = bytes - OLD.stored_bytes
    WHERE target_id = OLD.target_id AND kind = OLD.kind;
    DELETE FROM target_kinds
    WHERE target_id = OLD.target_id AND kind = OLD.kind AND snapshots <= 0;
    UPDATE target_kinds SET (last_id, last_ms, last_status) = (
        SELECT s.id, s.start_ms, s.status FROM snapshots s
        WHERE s.target_id = OLD.target_id AND s.kind = OLD.kind
        ORDER BY s.start_ms DESC, s.id DESC LIMIT 1)
    WHERE target_id = OLD.target_id AND kind = OLD.kind AND last_id = OLD.id;
    UPDATE target_kinds SET first_ms = (
        SELECT min(s.start_ms) FROM snapshots s
        WHERE s.target_id = OLD.target_id AND s.kind = OLD.kind)
    WHERE target_id = OLD.target_id AND kind = OLD.kind AND first_ms = OLD.start_ms;
    UPDATE status_counts SET snapshots = snapshots - 1, bytes = bytes - OLD.stored_bytes
    WHERE status = OLD.status;
END;

CREATE TRIGGER blobs_added AFTER INSERT ON blobs
BEGIN
    UPDATE blob_totals SET blobs = blobs + 1, stored_bytes = stored_bytes + NEW.stored_len,
                           raw_bytes = raw_bytes + NEW.raw_len
    WHERE id = 1;
END;

CREATE TRIGGER blobs_removed AFTER DELETE ON blobs
BEGIN
    UPDATE blob_totals SET blobs = blobs - 1, stored_bytes = stored_bytes - OLD.stored_len,
                           raw_bytes = raw_bytes - OLD.raw_len
    WHERE id = 1;
END;
