/*
 * store — collectord's history in one SQLite file: every snapshot's metadata, its raw bytes
 * exactly as received (deduplicated by SHA-256; uncompressed bytes zstd-compressed), its parsed
 * summary and the series numbers taken from it; targets; pins and incidents.
 *
 * Threads:
 *  - cd_store_prepare() runs on parser workers (any thread): hashing and compression happen there
 *    so the writer thread only writes.
 *  - cd_store_submit() is non-blocking (any thread; the daemon calls it from parser workers): it
 *    hands a snapshot to a bounded queue (count AND bytes) or refuses with -EAGAIN.
 *  - One writer thread, started by cd_store_open(), owns the only write connection (WAL,
 *    synchronous=NORMAL, prepared statements). It commits queued snapshots in batches, one
 *    transaction per batch, whole snapshots only, and calls each snapshot's done callback after
 *    COMMIT returned. Retention runs on it too, in small chunks between batches. Pins, unpins and
 *    retention-now are requests to it: the caller waits for the answer up to a deadline.
 *  - Readers (struct cd_store_reader) each own a read-only connection. WAL lets them read a
 *    consistent snapshot of the database while the writer writes: neither waits for the other. A
 *    reader is used by one thread at a time; the query server takes one from the store's pool
 *    (cd_store_reader_get/put) per request, or keeps one per server thread (cd_store_reader_open).
 *
 * Durability: WAL with synchronous=NORMAL. A kill -9 loses nothing committed (the WAL is in the
 * OS page cache); a power loss may lose the last transactions but never corrupts the file.
 *
 * Files: the database, SQLite's "-wal" and "-shm" beside it, and "-reserve" (disk_reserve_bytes
 * of headroom for a full disk; deleting it is harmless, the store makes it again).
 *
 * The store never logs: it reports through return codes, struct cd_err, and the optional event
 * callback (disk full / recovered, write errors, retention results), which the daemon logs.
 * Every SQLite error names the database path and carries sqlite3_errmsg().
 */
#ifndef CD_STORE_H
#define CD_STORE_H

#include "clock.h"
#include "err.h"
#include "retention.h"
#include "snapshot.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- events (writer thread -> daemon) ------------------------------------------------------ */

enum cd_store_event_type {
    CD_STORE_EV_DISK_FULL,      /* once when the disk fills: raw bytes are no longer stored */
    CD_STORE_EV_DISK_RECOVERED, /* once when a full snapshot could be stored again */
    /* a batch (or snapshot) failed: I/O error, corrupt file, locked by another process... One
     * event per failed batch: the daemon rate-limits them (cd_log_complain). */
    CD_STORE_EV_WRITE_ERROR,
    CD_STORE_EV_RETENTION, /* a retention run finished (periodic or requested) */
};

struct cd_store_event {
    enum cd_store_event_type type;
    int code;        /* negative errno-style (0 for RECOVERED and successful retention) */
    const char *msg; /* "store '/var/lib/collectord/collectord.db': database or disk is full" */
    const struct cd_retention_report *report; /* CD_STORE_EV_RETENTION only */
};

/* Called on the writer thread, without store locks held. Must not block or call the store. The
 * message names the database path and, for SQLite failures, carries SQLite's own message. */
typedef void (*cd_store_event_fn)(const struct cd_store_event *ev, void *ctx);

/* ---- open / close -------------------------------------------------------------------------- */

struct cd_store_opts {
    const char *path; /* the database file (created with its directory's permissions) */
    /* The submit queue refuses (-EAGAIN) beyond either bound. Bytes count everything a queued or
     * in-flight snapshot holds (raw, stored, summary, series). A snapshot bigger than the byte
     * bound alone is accepted only when the store holds nothing else. */
    size_t queue_max_snapshots; /* default 1024 */
    size_t queue_max_bytes;     /* default 256 MiB */
    /* A batch (one transaction) ends at this many snapshots or bytes, or when the first snapshot
     * has waited batch_linger_ms for company. */
    size_t batch_max_snapshots; /* default 256 */
    size_t batch_max_bytes;     /* default 64 MiB */
    int batch_linger_ms;        /* default 10; 0 = commit whatever is queued at once */
    int close_timeout_ms;       /* cd_store_close() flushes the queue this long (default 10 s) */
    int disk_full_retry_ms;     /* while the disk is full, probe for space this often (1 s) */
    /* Headroom kept in "<path>-reserve" (a preallocated file) and released when the disk fills,
     * so metadata records still fit (default 4 MiB; < 0: none). */
    int64_t disk_reserve_bytes;
    int64_t cache_bytes; /* the writer connection's page cache (default 8 MiB) */
    /* Readers the pool opens at most (default 4): more queries than that wait for one, as more
     * would only share the same cores, and each holds a page cache of its own. */
    size_t reader_pool;
    int page_size; /* for a new file only (default 16384; store.c says why) */
    struct cd_retention_policy retention;
    const struct cd_clock *clock; /* NULL: the real clock. Retention's "now" and schedule. */
    cd_store_event_fn on_event;   /* may be NULL */
    void *event_ctx;
};

/* Defaults as documented above; retention as cd_retention_policy_default(). Zero or unset size
 * and time fields also mean "default" when passed to cd_store_open(). */
void cd_store_opts_default(struct cd_store_opts *o);

struct cd_store;

/*
 * Opens (creating when absent) the database, applies pending migrations (each in its own
 * transaction), prepares the writer and starts the writer thread. Refuses, without modifying the
 * file: a database from a newer collectord (schema version above cd_store_schema_version()), a
 * SQLite file that is not collectord's, a file that is not a database. Errors name the path.
 */
int cd_store_open(const struct cd_store_opts *opts, struct cd_store **out, struct cd_err *err);

/*
 * Stops taking snapshots, commits what is queued (for at most close_timeout_ms; the rest is
 * dropped with done rc -ECANCELED), joins the writer, closes pooled readers and the database.
 * Readers taken with cd_store_reader_get/open must have been returned/closed before. Accepts NULL.
 */
void cd_store_close(struct cd_store *st);

/* The schema version this build writes (the highest schema/NNN_*.sql). */
int cd_store_schema_version(void);

/*
 * For tests and tools: creates (or upgrades) the database at `path` up to schema version
 * `up_to_version` (1..cd_store_schema_version()) exactly as cd_store_open() would, and closes it.
 * An upgrade test makes a version-N database with it, fills it with plain SQL, then opens it.
 */
int cd_store_migrate(const char *path, int up_to_version, struct cd_err *err);

/* The migrations compiled in from schema/NNN_name.sql (a generated source). */
struct cd_store_migration {
    int version;
    const char *name; /* "001_initial" */
    const char *sql;
};
extern const struct cd_store_migration cd_store_migrations[];
extern const size_t cd_store_n_migrations;

/* ---- ingest ---------------------------------------------------------------------------------- */

/* Content encodings of stored bytes (struct cd_snapshot.stored_encoding). */
#define CD_STORE_ENC_IDENTITY 0
#define CD_STORE_ENC_ZSTD     1
/* zstd level 3 for text dumps and small inputs; above 1 MiB (traces) level 1: on real Go traces
 * level 3 compresses ~108 MB/s per core for a 7% smaller result than level 1 at ~430 MB/s. */
#define CD_STORE_ZSTD_LEVEL     3
#define CD_STORE_ZSTD_BIG       (1u << 20)
#define CD_STORE_ZSTD_LEVEL_BIG 1
/* Summaries of at least this many bytes are stored zstd-compressed (schema 4); reading one back
 * refuses to inflate past CD_STORE_SUMMARY_MAX_BYTES. */
#define CD_STORE_SUMMARY_MIN_ZSTD  512
#define CD_STORE_SUMMARY_MAX_BYTES (64u << 20)

/*
 * Prepares s for storage, on the calling thread: content_hash = SHA-256 of raw; when raw did not
 * arrive compressed (no gzip or zstd magic: traces, text dumps, uncompressed protobuf) and zstd
 * makes it at least 1/32 smaller, stored/stored_len hold the zstd frame and stored_encoding is
 * CD_STORE_ENC_ZSTD; otherwise stored stays NULL (raw is stored as it is). Sets prepared = 1.
 * No-op when already prepared; a snapshot without raw bytes is simply marked prepared. The writer
 * calls it itself for snapshots submitted unprepared. Thread-safe.
 */
int cd_store_prepare(struct cd_snapshot *s, struct cd_err *err);

/*
 * Queues *sp for the writer, without blocking. On success the store owns it and *sp is NULL.
 * -EAGAIN: the queue is full (count or bytes); -ESHUTDOWN: the store is closing; -EINVAL: job,
 * scheme, address or kind is missing, or the kind name or incident name is invalid. On any error
 * the caller keeps the snapshot.
 *
 * After its transaction commits, the writer calls s->done(s, rc, s->done_ctx) (when set) and
 * frees s. rc 0: committed whole, s->id set. rc -ENOSPC with s->id > 0: the disk is full, only
 * the metadata was committed (the record says so in "dropped"). Other rc < 0 (s->id 0): nothing
 * was committed (-ENOSPC, -EIO, -EBADMSG for a corrupt file, -ECANCELED at close, ...).
 *
 * The target row (job + scheme + address) is created or refreshed (instance, labels, last seen).
 * s->pinned pins the snapshot; s->incident adds it to that incident (created if new).
 */
int cd_store_submit(struct cd_store *st, struct cd_snapshot **sp);

/* ---- requests to the writer (from query-server threads) -------------------------------------- */

/*
 * Pins snapshot `id`; with an incident name, adds it to that incident instead (created if new).
 * Either way retention will never delete it. Incident names: [A-Za-z0-9._-], 1..128 characters.
 * Waits up to timeout_ms (<= 0: 10 s) for the writer: -ETIMEDOUT then (the request is withdrawn
 * if the writer had not started it). -ENOENT when no such snapshot.
 */
int cd_store_pin(struct cd_store *st, int64_t id, const char *incident, int timeout_ms,
                 struct cd_err *err);

/*
 * Without an incident: clears the pin and takes the snapshot out of every incident (retention
 * may delete it again). With one: takes it out of that incident only (-ENOENT if it was not in
 * it). *left_pinned (may be NULL) tells whether it is still protected.
 */
int cd_store_unpin(struct cd_store *st, int64_t id, const char *incident, int timeout_ms,
                   bool *left_pinned, struct cd_err *err);

/* Runs retention now with the store's policy (dry run or real) and returns its report. Waits up
 * to timeout_ms (<= 0: 60 s). */
/* Any thread: a new retention policy (config reload), adopted by the writer before its next run;
 * the next periodic run is one interval from then. -EINVAL for an invalid policy. */
int cd_store_set_retention(struct cd_store *st, const struct cd_retention_policy *p,
                           struct cd_err *err);

int cd_store_retention_run(struct cd_store *st, bool dry_run, int timeout_ms,
                           struct cd_retention_report *out, struct cd_err *err);

/* ---- readers --------------------------------------------------------------------------------- */

struct cd_store_reader;

/* A reader from the store's pool: an idle one, a new one while fewer than reader_pool are
 * open, else the first handed back (-EBUSY after 10 s). Give it back with cd_store_reader_put()
 * as soon as the query is answered. */
int cd_store_reader_get(struct cd_store *st, struct cd_store_reader **out, struct cd_err *err);
/* Back to the pool. Accepts NULL. */
void cd_store_reader_put(struct cd_store *st, struct cd_store_reader *r);
/* A dedicated reader (e.g. one per server thread); close it before cd_store_close(). */
int cd_store_reader_open(struct cd_store *st, struct cd_store_reader **out, struct cd_err *err);
void cd_store_reader_close(struct cd_store_reader *r);

#define CD_STORE_LIST_DEFAULT 100
#define CD_STORE_LIST_MAX     1000

/* Snapshot listing filter. Zero/NULL fields do not filter. */
struct cd_store_query {
    int64_t target_id;    /* one target by id */
    const char *job;      /* targets of this job */
    const char *address;  /* targets at this address (with job: that job's target) */
    const char *kind;     /* canonical kind name */
    const char *status;   /* "ok", "timeout", ... (cd_snap_status_name) */
    int64_t since_ms;     /* start_ms >= since_ms (when > 0) */
    int64_t until_ms;     /* start_ms < until_ms (when > 0) */
    const char *incident; /* snapshots in this incident */
    int pinned;           /* 1: only protected (pinned or in an incident), -1: only unprotected */
    int limit;            /* 0: CD_STORE_LIST_DEFAULT; 1..CD_STORE_LIST_MAX */
    const char *cursor;   /* next_cursor of the previous page, or NULL for the first */
};

/*
 * Snapshots newest first (start time, then id). *out = {"snapshots": [row...], "next_cursor":
 * "..." or null}. A row: id, target_id, job, scheme, address, instance, kind, start_ms, time
 * (RFC 3339), duration_ms, scheduled_ms, status, http_status, error, parse_error, format,
 * content_type, raw_bytes, stored_bytes, encoding ("identity"|"zstd"), sha256 (hex), has_raw,
 * dropped, pinned (by hand), incidents (count), protected. The cursor names the last row's
 * position, so pages neither repeat nor skip rows while new snapshots arrive. -EINVAL for a bad
 * limit, status or cursor. Never reads a blob.
 */
int cd_store_list(struct cd_store_reader *r, const struct cd_store_query *q, json_t **out,
                  struct cd_err *err);

/* One snapshot: the listing row plus "request", "summary" (the parsed summary JSON, or null),
 * "incident_names" (array) and "series" ([{name, value}] taken from its summary). -ENOENT. */
int cd_store_snapshot(struct cd_store_reader *r, int64_t id, json_t **out, struct cd_err *err);

/* One snapshot's raw bytes, exactly as received. */
struct cd_store_raw {
    uint8_t *data;
    size_t len;
    char *content_type; /* as the target sent it, else the kind's, else application/octet-stream */
    char *filename;     /* "<job>-<instance>-<kind>-<YYYYmmddTHHMMSSZ><ext>", [A-Za-z0-9._-] only */
    char sha256[65];    /* hex */
};
void cd_store_raw_free(struct cd_store_raw *raw); /* frees the fields, not raw itself */

/* Fills *out (caller's struct, freed with cd_store_raw_free). Decompresses zstd-stored bytes
 * and checks their length. -ENOENT: no such snapshot, or it has no raw bytes (failed scrape,
 * dropped for a full disk). -EFBIG: longer than max_len (0 = no limit). -EBADMSG: stored bytes
 * damaged. */
int cd_store_raw(struct cd_store_reader *r, int64_t id, size_t max_len, struct cd_store_raw *out,
                 struct cd_err *err);

/* Targets with counts: [{id, job, scheme, address, instance, labels (object), first_seen_ms,
 * last_seen_ms, snapshots, bytes, kinds: {kind: {snapshots, bytes, first_ms, last_ms,
 * last: {id, start_ms, status}}}}], ordered by job, address. */
int cd_store_targets(struct cd_store_reader *r, json_t **out, struct cd_err *err);

#define CD_STORE_SERIES_DEFAULT 10000
#define CD_STORE_SERIES_MAX     100000

/* Series points of `name` (e.g. "goroutine.count") for the targets the query selects (target_id
 * or job/address; none: all targets), time ascending, since/until as in listings, at most
 * `limit` points in all (0: CD_STORE_SERIES_DEFAULT, max CD_STORE_SERIES_MAX). *out =
 * {"name", "series": [{target_id, job, scheme, address, instance, points: [[ms, value]...]}],
 * "truncated": bool}. */
int cd_store_series(struct cd_store_reader *r, const struct cd_store_query *q, const char *name,
                    int limit, json_t **out, struct cd_err *err);

/* [{name, created_ms, snapshots, bytes (stored), first_ms, last_ms, raw_bytes (as received),
 * targets (distinct)}], newest incident first. */
int cd_store_incidents(struct cd_store_reader *r, json_t **out, struct cd_err *err);

/* Every snapshot of an incident, for bundle export: *out = {name, created_ms, snapshots: [listing
 * rows, oldest first], truncated} with at most 10,000 rows. -ENOENT when no such incident. */
int cd_store_incident_snapshots(struct cd_store_reader *r, const char *name, json_t **out,
                                struct cd_err *err);

/* Database and writer figures: path, file_bytes, wal_bytes, page_size, pages, freelist_pages,
 * schema_version, snapshots, pinned (protected: by hand or in an incident), oldest_ms and
 * newest_ms (start times, null when empty), by_status {status: {snapshots, bytes}}, targets,
 * incidents, blobs,
 * blob_bytes, blob_raw_bytes, queue {snapshots, bytes, max_snapshots, max_bytes, rejected},
 * writer {batches, committed, metadata_only, failed, bytes, disk_full, last_error,
 * last_error_ms}, retention {policy..., last_run (report or null), next_run_ms (wall clock, null
 * when retention does not run on its own)}. */
int cd_store_stats(struct cd_store_reader *r, json_t **out, struct cd_err *err);

/* ---- helpers shared with retention.c --------------------------------------------------------- */

/* SQLite result code → negative errno: FULL -ENOSPC, IOERR -EIO, CORRUPT/NOTADB -EBADMSG,
 * BUSY/LOCKED -EBUSY, NOMEM -ENOMEM, READONLY -EROFS, CANTOPEN -ENOENT, TOOBIG -E2BIG,
 * CONSTRAINT -EINVAL, PERM/AUTH -EACCES, others -EIO. */
int cd_store_sqlite_errno(int sqlite_rc);
/* Records "store '<path>': <what>: <sqlite3_errmsg>" and returns the mapped code. */
int cd_store_sqlite_err(struct cd_err *err, sqlite3 *db, const char *path, int sqlite_rc,
                        const char *what);

#endif
