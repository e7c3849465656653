-- 004_compressed_summaries: from this version on, summaries.json holds either the summary's JSON
-- text or, when that is large, the same text compressed as one zstd frame (a BLOB). A summary of
-- a heap profile is several times the size of the profile itself; compressed it is a fraction.
-- Nothing in the tables changes, but a collectord that predates this version would read the
-- compressed summaries as garbage, so the version moves and such a collectord refuses the file.
CREATE TABLE IF NOT EXISTS schema_notes (
    version INTEGER PRIMARY KEY,
    note    TEXT NOT NULL
);
INSERT OR REPLACE INTO schema_notes (version, note)
VALUES (4, 'summaries.json may be a zstd-compressed BLOB of the JSON text');
