-- 001_initial: collectord's core tables.
--
-- Applied by daemon/store.c in one transaction, after it has set page_size and
-- auto_vacuum = INCREMENTAL on the empty file (both must precede the first table) and before
-- PRAGMA user_version = 1. Times are Unix milliseconds; sizes are bytes.
--
-- Listing never reads a blob: snapshot metadata, raw bytes (blobs) and parsed summaries live in
-- separate tables, and every figure a listing shows (sizes, hash, encoding) is copied into the
-- snapshot row.

-- One endpoint of one process. Identity = job + scheme + address; the rest is refreshed by every
-- snapshot the target sends.
CREATE TABLE targets (
    id            INTEGER PRIMARY KEY,
    job           TEXT    NOT NULL,
    scheme        TEXT    NOT NULL,           -- http, https, gops
    address       TEXT    NOT NULL,           -- host:port
    instance      TEXT    NOT NULL DEFAULT '',
    labels        TEXT    NOT NULL DEFAULT '{}', -- a JSON object's text
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    UNIQUE (job, scheme, address)
);

-- Raw bytes exactly as received, stored once however many snapshots share them (keyed by the
-- SHA-256 of the bytes as received). encoding 0: data is the bytes as received (gzip profiles);
-- 1: data is a zstd frame of them (traces, text dumps), served back decompressed. data is the
-- last column so reading the others never walks its overflow pages.
CREATE TABLE blobs (
    id         INTEGER PRIMARY KEY,
    sha256     BLOB    NOT NULL UNIQUE,
    encoding   INTEGER NOT NULL,
    raw_len    INTEGER NOT NULL,
    stored_len INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    data       BLOB    NOT NULL
);

CREATE TABLE incidents (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);

-- One scrape of one kind from one target at one time, whatever its outcome.
CREATE TABLE snapshots (
    id           INTEGER PRIMARY KEY,
    target_id    INTEGER NOT NULL REFERENCES targets (id),
    kind         TEXT    NOT NULL,
    start_ms     INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    scheduled_ms INTEGER NOT NULL DEFAULT 0,  -- 0: captured on demand
    committed_ms INTEGER NOT NULL,
    status       TEXT    NOT NULL,            -- ok, invalid, http_error, busy, timeout, ...
    http_status  INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    parse_error  TEXT,
    request      TEXT,
    format       TEXT,
    content_type TEXT,
    raw_bytes    INTEGER NOT NULL DEFAULT 0,  -- as received
    stored_bytes INTEGER NOT NULL DEFAULT 0,  -- of the blob as stored; 0 without a blob
    encoding     INTEGER NOT NULL DEFAULT 0,
    sha256       BLOB,
    blob_id      INTEGER REFERENCES blobs (id),
    dropped      TEXT,                        -- what was not kept, and why (a full disk)
    pinned       INTEGER NOT NULL DEFAULT 0,  -- pinned by hand
    incidents    INTEGER NOT NULL DEFAULT 0   -- incidents holding it (kept by triggers below)
);
-- Listing per target, newest first (the rowid rides at the end of every index, so
-- ORDER BY start_ms DESC, id DESC is an index walk).
CREATE INDEX snapshots_by_target ON snapshots (target_id, start_ms);
-- Per target and kind: listing, downsampling, max_snapshots_per_target, last snapshot per kind.
CREATE INDEX snapshots_by_target_kind ON snapshots (target_id, kind, start_ms);
-- The whole history by time: fleet-wide listing, max_age, max_bytes (oldest first).
CREATE INDEX snapshots_by_time ON snapshots (start_ms);
-- Is a blob still referenced? (blob garbage collection after retention deletes snapshots)
CREATE INDEX snapshots_by_blob ON snapshots (blob_id) WHERE blob_id IS NOT NULL;

CREATE TABLE summaries (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (id),
    json        TEXT NOT NULL
);

-- Series names are interned: the series table holds millions of rows.
CREATE TABLE series_names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- Numbers taken from summaries, one index range scan per (target, name, time range). A point
-- lives and dies with the snapshot it came from.
CREATE TABLE series (
    target_id   INTEGER NOT NULL,
    name_id     INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id),
    value       REAL    NOT NULL,
    PRIMARY KEY (target_id, name_id, time_ms, snapshot_id)
) WITHOUT ROWID;
CREATE INDEX series_by_snapshot ON series (snapshot_id);

-- A snapshot in any incident is exempt from retention, like a pinned one.
CREATE TABLE incident_snapshots (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (id),
    added_ms    INTEGER NOT NULL,
    PRIMARY KEY (incident_id, snapshot_id)
) WITHOUT ROWID;
CREATE INDEX incident_snapshots_by_snapshot ON incident_snapshots (snapshot_id);

CREATE TRIGGER incident_snapshots_added AFTER INSERT ON incident_snapshots
BEGIN
    UPDATE snapshots SET incidents = incidents + 1 WHERE id = NEW.snapshot_id;
END;

CREATE TRIGGER incident_snapshots_removed AFTER DELETE ON incident_snapshots
BEGIN
    UPDATE snapshots SET incidents = incidents - 1 WHERE id = OLD.snapshot_id;
END;
