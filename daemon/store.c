/*
 * store — see store.h for the contract. This file: opening and migrating the database, preparing
 * snapshots (any thread), the submit queue, the writer thread (batches, disk-full fallback,
 * requests, retention schedule) and the read side (readers, listings, raw bytes, stats).
 *
 * Owns: the writer connection and its statements (writer thread only once started), the queue
 * and request list (under `mu`), the reader pool (under `mu`), the retention module.
 */
#include "store.h"

#include "buf.h"
#include "hash.h"
#include "kind.h"
#include "str.h"
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* "cold" — collectord's mark in the SQLite header (PRAGMA application_id). */
#define STORE_APPLICATION_ID 0x636f6c64
/* 16 KiB pages. Large blobs are chains of overflow pages and every page costs a WAL frame write
 * and a checkpoint copy: 16 KiB pages ingest 8-64 MiB blobs about twice as fast as 4 KiB ones
 * (tests/store/bench_store.c measures 4/16/64 KiB side by side). Larger pages stop paying: the
 * random-access b-trees (hash index, per-target indexes, series) dirty a whole page per insert
 * and small-snapshot ingest falls off at 64 KiB. */
#define STORE_PAGE_SIZE      16384
#define STORE_WAL_LIMIT      (64 * 1024 * 1024) /* WAL truncated back to this after a checkpoint */
#define STORE_AUTOCHECKPOINT 1000               /* WAL pages (SQLite's default) */
#define STORE_BUSY_MS        5000  /* another process holding the write lock (a second daemon) */
#define READER_BUSY_MS       2000  /* readers only meet transient locks (WAL recovery) */
#define READER_WAIT_MS       10000 /* a query waits this long for a pooled reader */
#define NAME_CACHE           256
#define INCIDENT_MAX         128
#define INCIDENT_ROWS        10000

static const struct cd_clock *real_clock_for(struct cd_clock *c)
{
    cd_clock_init_real(c);
    return c;
}

/* ---- errors ---------------------------------------------------------------------------------- */

int cd_store_sqlite_errno(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR:
        return -EIO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    default:
        return -EIO;
    }
}

int cd_store_sqlite_err(struct cd_err *err, sqlite3 *db, const char *path, int sqlite_rc,
                        const char *what)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc);
    return cd_err_set(err, cd_store_sqlite_errno(sqlite_rc), "store '%s': %s: %s", path, what, msg);
}

/* ---- the store ------------------------------------------------------------------------------- */

enum wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_TARGET,
    W_BLOB_INSERT,
    W_BLOB_FIND,
    W_SNAP_INSERT,
    W_SUMMARY,
    W_NAME_INSERT,
    W_NAME_FIND,
    W_SERIES,
    W_INCIDENT_INSERT,
    W_INCIDENT_FIND,
    W_MEMBER_ADD,
    W_MEMBER_DEL,
    W_MEMBER_DEL_ALL,
    W_PIN_SET,
    W_PROTECTED,
    W_COUNT
};

static const char *const wsql[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_TARGET] =
        "INSERT INTO targets (job, scheme, address, instance, labels, first_seen_ms, "
        "last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) "
        "ON CONFLICT (job, scheme, address) DO UPDATE SET instance = excluded.instance, "
        "labels = excluded.labels, last_seen_ms = max(last_seen_ms, excluded.last_seen_ms) "
        "RETURNING id",
    [W_BLOB_INSERT] =
        "INSERT INTO blobs (sha256, encoding, raw_len, stored_len, created_ms, data) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sha256) DO NOTHING RETURNING id",
    [W_BLOB_FIND] = "SELECT id, encoding, stored_len FROM blobs WHERE sha256 = ?1",
    [W_SNAP_INSERT] =
        "INSERT INTO snapshots (target_id, kind, start_ms, duration_ms, scheduled_ms, "
        "committed_ms, status, http_status, error, parse_error, request, format, "
        "content_type, raw_bytes, stored_bytes, encoding, sha256, blob_id, dropped, "
        "pinned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    [W_SUMMARY] = "INSERT INTO summaries (snapshot_id, json) VALUES (?1, ?2)",
    [W_NAME_INSERT] = "INSERT INTO series_names (name) VALUES (?1) ON CONFLICT (name) DO NOTHING "
                      "RETURNING id",
    [W_NAME_FIND] = "SELECT id FROM series_names WHERE name = ?1",
    [W_SERIES] = "INSERT OR IGNORE INTO series (target_id, name_id, time_ms, snapshot_id, value) "
                 "VALUES (?1, ?2, ?3, ?4, ?5)",
    [W_INCIDENT_INSERT] = "INSERT INTO incidents (name, created_ms) VALUES (?1, ?2) "
                          "ON CONFLICT (name) DO NOTHING RETURNING id",
    [W_INCIDENT_FIND] = "SELECT id FROM incidents WHERE name = ?1",
    [W_MEMBER_ADD] = "INSERT OR IGNORE INTO incident_snapshots (incident_id, snapshot_id, "
                     "added_ms) VALUES (?1, ?2, ?3)",
    [W_MEMBER_DEL] = "DELETE FROM incident_snapshots WHERE incident_id = ?1 AND snapshot_id = ?2",
    [W_MEMBER_DEL_ALL] = "DELETE FROM incident_snapshots WHERE snapshot_id = ?1",
    [W_PIN_SET] = "UPDATE snapshots SET pinned = ?2 WHERE id = ?1",
    [W_PROTECTED] = "SELECT pinned, incidents FROM snapshots WHERE id = ?1",
};

struct name_slot {
    int64_t id; /* 0: empty */
    char name[CD_SERIES_NAME_MAX];
};

struct queued {
    struct cd_snapshot *s;
    size_t bytes; /* what submit accounted for it */
};

enum req_type { REQ_PIN, REQ_UNPIN, REQ_RETENTION };
enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_DONE, REQ_ABANDONED };

struct store_req {
    enum req_type type;
    enum req_state state;
    int64_t id;
    char incident[INCIDENT_MAX + 1];
    bool dry_run;
    int rc;
    bool left_pinned;
    struct cd_err err;
    struct cd_retention_report report;
    struct store_req *next;
};

#define READER_STMTS 16

struct cd_store_reader {
    struct cd_store *st;
    sqlite3 *db;
    /* Prepared statements kept for the next query with the same text: compiling a listing
     * query cost as much as running it. Oldest first. */
    sqlite3_stmt *stmts[READER_STMTS];
    size_t n_stmts;
};

struct cd_store {
    char *path;
    struct cd_store_opts opts; /* opts.path points at `path` */
    struct cd_clock real_clock;
    const struct cd_clock *clock;

    /* writer thread only (after open) */
    sqlite3 *db;
    sqlite3_stmt *w[W_COUNT];
    struct cd_retention *ret;
    struct name_slot names[NAME_CACHE];
    int64_t next_retention_mono;
    int64_t last_full_try_mono;
    char *reserve_path;

    pthread_t thread;
    bool thread_started;
    bool mu_ready, cond_ready, req_cond_ready, reader_cond_ready;
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* wakes the writer */
    pthread_cond_t req_cond;    /* a request finished */
    pthread_cond_t reader_cond; /* a pooled reader came back */

    /* under mu */
    struct queued *ring;
    size_t cap, head, count;
    size_t queued_bytes;  /* in the ring */
    size_t held_bytes;    /* in the ring or in the batch being written */
    struct queued *batch; /* writer thread: the batch being written */
    int *batch_rcs;
    int64_t first_enqueued_ns;
    struct store_req *req_head, *req_tail;
    bool stopping;
    int64_t stop_deadline_ns;
    uint64_t n_batches, n_committed, n_meta_only, n_failed, n_rejected, n_bytes;
    bool disk_full;
    char last_error[CD_ERR_MSG_MAX];
    int64_t last_error_ms;
    bool have_report;
    struct cd_retention_report last_report;
    bool retention_pending; /* cd_store_set_retention: the writer adopts `next_policy` */
    struct cd_retention_policy next_policy;
    struct cd_store_reader **idle;
    size_t n_idle;
    size_t n_pooled; /* pooled readers open: idle ones and those handed out */
};

/* ---- opening and migrating ------------------------------------------------------------------- */

int cd_store_schema_version(void)
{
    return cd_store_migrations[cd_store_n_migrations - 1].version;
}

static int exec_sql(sqlite3 *db, const char *path, const char *sql, const char *what,
                    struct cd_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return cd_store_sqlite_err(err, db, path, rc, what);
    return 0;
}

/* One integer from a one-row query (PRAGMAs, counts). */
static int query_i64(sqlite3 *db, const char *path, const char *sql, int64_t *out,
                     struct cd_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        int code = cd_store_sqlite_err(err, db, path, rc, sql);
        sqlite3_finalize(st);
        return code;
    }
    sqlite3_finalize(st);
    return 0;
}

static int open_conn(const char *path, int flags, int busy_ms, sqlite3 **out, struct cd_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int code = cd_store_sqlite_err(err, db, path, rc, "open");
        sqlite3_close(db);
        return code;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_ms);
    /* Closing must not checkpoint a WAL we have not vouched for (a newer collectord's, left by a
     * crash): the writer turns this back on once the database passed migrate(). Without one,
     * closing only removes the empty WAL opening created. */
    char wal[4096];
    struct stat sb;
    snprintf(wal, sizeof(wal), "%s-wal", path);
    if (stat(wal, &sb) == 0 && sb.st_size > 0)
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    *out = db;
    return 0;
}

static int apply_migration(sqlite3 *db, const char *path, const struct cd_store_migration *m,
                           struct cd_err *err)
{
    char what[96];
    snprintf(what, sizeof(what), "migration %s", m->name);
    int rc = exec_sql(db, path, "BEGIN IMMEDIATE", what, err);
    if (rc < 0)
        return rc;
    /* Another process may have migrated while we waited for the lock. */
    int64_t now_v = 0;
    rc = query_i64(db, path, "PRAGMA user_version", &now_v, err);
    if (rc < 0)
        goto fail;
    if (now_v >= m->version)
        return exec_sql(db, path, "COMMIT", what, err);
    rc = exec_sql(db, path, m->sql, what, err);
    if (rc < 0)
        goto fail;
    char pragma[96];
    if (m->version == 1) {
        snprintf(pragma, sizeof(pragma), "PRAGMA application_id = %d", STORE_APPLICATION_ID);
        rc = exec_sql(db, path, pragma, what, err);
        if (rc < 0)
            goto fail;
    }
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
    rc = exec_sql(db, path, pragma, what, err);
    if (rc < 0)
        goto fail;
    rc = exec_sql(db, path, "COMMIT", what, err);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/*
 * Brings db up to up_to. Nothing is written before the version and owner checks pass, so a
 * database we must refuse is never modified (not even switched to WAL).
 */
static int migrate(sqlite3 *db, const char *path, int up_to, int page_size, struct cd_err *err)
{
    int latest = cd_store_schema_version();
    int64_t version = 0, app = 0, tables = 0;
    int rc = query_i64(db, path, "PRAGMA user_version", &version, err);
    if (rc < 0)
        return rc;
    rc = query_i64(db, path, "PRAGMA application_id", &app, err);
    if (rc < 0)
        return rc;
    rc = query_i64(db, path, "SELECT count(*) FROM sqlite_schema", &tables, err);
    if (rc < 0)
        return rc;
    if (version > latest)
        return cd_err_set(err, -EPROTO,
                          "store '%s': schema version %" PRId64 " is newer than this collectord's "
                          "(%d): refusing to open it (nothing was changed); run the newer "
                          "collectord or point storage.path elsewhere",
                          path, version, latest);
    if ((version > 0 && app != STORE_APPLICATION_ID) || (version == 0 && tables > 0))
        return cd_err_set(err, -EINVAL,
                          "store '%s': an SQLite database that is not collectord's (application_id "
                          "%" PRId64 ", user_version %" PRId64 "): refusing to touch it",
                          path, app, version);
    if (version == 0) {
        /* Both only take effect before the first table exists. */
        char sql[96];
        snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", page_size);
        rc = exec_sql(db, path, sql, "set page size", err);
        if (rc < 0)
            return rc;
        rc = exec_sql(db, path, "PRAGMA auto_vacuum = INCREMENTAL", "set auto_vacuum", err);
        if (rc < 0)
            return rc;
    }
    sqlite3_stmt *jm = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &jm, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(jm);
    if (rc != SQLITE_ROW) {
        int code = cd_store_sqlite_err(err, db, path, rc, "switch to WAL");
        sqlite3_finalize(jm);
        return code;
    }
    const char *mode = (const char *)sqlite3_column_text(jm, 0);
    bool wal = mode != NULL && strcmp(mode, "wal") == 0;
    sqlite3_finalize(jm);
    if (!wal)
        return cd_err_set(err, -ENOTSUP,
                          "store '%s': cannot use WAL mode here (the filesystem lacks shared "
                          "memory support?)",
                          path);
    for (size_t i = 0; i < cd_store_n_migrations; i++) {
        const struct cd_store_migration *m = &cd_store_migrations[i];
        if (m->version <= version || m->version > up_to)
            continue;
        rc = apply_migration(db, path, m, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int cd_store_migrate(const char *path, int up_to_version, struct cd_err *err)
{
    if (path == NULL || up_to_version < 1 || up_to_version > cd_store_schema_version())
        return cd_err_set(err, -EINVAL, "store: migrate: bad version %d (1..%d)", up_to_version,
                          cd_store_schema_version());
    sqlite3 *db = NULL;
    int rc = open_conn(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, STORE_BUSY_MS, &db, err);
    if (rc < 0)
        return rc;
    rc = migrate(db, path, up_to_version, STORE_PAGE_SIZE, err);
    if (rc == 0)
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
    sqlite3_close(db);
    return rc;
}

/* ---- preparing a snapshot (any thread) ------------------------------------------------------- */

static bool arrived_compressed(const uint8_t *p, size_t n)
{
    if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
        return true; /* gzip: pprof profiles */
    if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
        return true; /* zstd */
    return false;
}

/* Summaries are JSON with long repeated names (function names, files): big ones are stored
 * compressed when that saves at least an eighth. Failing here only means storing text. */
static void summary_compress(struct cd_snapshot *s)
{
    if (s->summary_json == NULL || s->summary_zstd != NULL)
        return;
    size_t len = strlen(s->summary_json);
    if (len < CD_STORE_SUMMARY_MIN_ZSTD)
        return;
    size_t bound = ZSTD_compressBound(len);
    uint8_t *z = malloc(bound);
    if (z == NULL)
        return;
    /* Level 1: summaries are small and many; the higher levels cost more CPU than they save. */
    size_t n = ZSTD_compress(z, bound, s->summary_json, len, 1);
    if (ZSTD_isError(n) || n > len - len / 8) {
        free(z);
        return;
    }
    uint8_t *shrunk = realloc(z, n);
    s->summary_zstd = shrunk != NULL ? shrunk : z;
    s->summary_zstd_len = n;
}

int cd_store_prepare(struct cd_snapshot *s, struct cd_err *err)
{
    if (s->prepared)
        return 0;
    if (s->raw == NULL || s->raw_len == 0) {
        summary_compress(s);
        s->prepared = 1;
        return 0;
    }
    uint8_t hash[CD_HASH_SHA256_LEN];
    int rc = cd_hash_sha256(s->raw, s->raw_len, hash);
    if (rc < 0)
        return cd_err_set(err, rc, "store: SHA-256 of %zu bytes failed", s->raw_len);
    uint8_t *stored = NULL;
    size_t stored_len = 0;
    if (!arrived_compressed(s->raw, s->raw_len) && s->raw_len >= 64) {
        size_t bound = ZSTD_compressBound(s->raw_len);
        stored = malloc(bound);
        if (stored == NULL)
            return cd_err_set(err, -ENOMEM, "store: no memory to compress %zu bytes", s->raw_len);
        int level = s->raw_len > CD_STORE_ZSTD_BIG ? CD_STORE_ZSTD_LEVEL_BIG : CD_STORE_ZSTD_LEVEL;
        size_t n = ZSTD_compress(stored, bound, s->raw, s->raw_len, level);
        if (ZSTD_isError(n) || n >= s->raw_len - s->raw_len / 32) {
            /* Incompressible (or zstd refused): keeping the bytes as they came is cheaper. */
            free(stored);
            stored = NULL;
        } else {
            uint8_t *shrunk = realloc(stored, n);
            if (shrunk != NULL)
                stored = shrunk;
            stored_len = n;
        }
    }
    summary_compress(s);
    memcpy(s->content_hash, hash, sizeof(hash));
    free(s->stored);
    s->stored = stored;
    s->stored_len = stored_len;
    s->stored_encoding = stored != NULL ? CD_STORE_ENC_ZSTD : CD_STORE_ENC_IDENTITY;
    s->prepared = 1;
    return 0;
}

/* ---- submit queue ---------------------------------------------------------------------------- */

static size_t snapshot_bytes(const struct cd_snapshot *s)
{
    size_t n = sizeof(*s) + 512 + s->raw_len + s->stored_len;
    /* unprepared: the writer's compression may need up to as much again */
    if (!s->prepared && s->raw != NULL && !arrived_compressed(s->raw, s->raw_len))
        n += s->raw_len;
    if (s->summary_json != NULL)
        n += strlen(s->summary_json);
    n += s->summary_zstd_len;
    n += s->n_series * sizeof(struct cd_series_point);
    if (s->labels_json != NULL)
        n += strlen(s->labels_json);
    if (s->error != NULL)
        n += strlen(s->error);
    return n;
}

static bool incident_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > INCIDENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int64_t mono_ns(void)
{
    return cd_clock_now_mono_ns();
}

int cd_store_submit(struct cd_store *st, struct cd_snapshot **sp)
{
    struct cd_snapshot *s = *sp;
    if (s == NULL || s->job == NULL || s->scheme == NULL || s->address == NULL || s->kind == NULL ||
        !cd_kind_name_valid(s->kind))
        return -EINVAL;
    if (s->incident != NULL && !incident_name_valid(s->incident))
        return -EINVAL;
    size_t bytes = snapshot_bytes(s);
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (st->stopping) {
        rc = -ESHUTDOWN;
    } else if (st->count == st->cap ||
               (st->held_bytes > 0 && st->held_bytes + bytes > st->opts.queue_max_bytes)) {
        st->n_rejected++;
        rc = -EAGAIN;
    } else {
        st->ring[(st->head + st->count) % st->cap] = (struct queued){s, bytes};
        if (st->count == 0)
            st->first_enqueued_ns = mono_ns();
        st->count++;
        st->queued_bytes += bytes;
        st->held_bytes += bytes;
        pthread_cond_signal(&st->cond);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc == 0)
        *sp = NULL;
    return rc;
}

/* ---- writer: one snapshot -------------------------------------------------------------------- */

static int wfail(struct cd_store *st, int rc, const char *what, struct cd_err *err)
{
    return cd_store_sqlite_err(err, st->db, st->path, rc, what);
}

/* Runs a statement that returns at most one row whose first column is an id. *id = 0 when none. */
static int step_id(struct cd_store *st, sqlite3_stmt *q, int64_t *id, const char *what,
                   struct cd_err *err)
{
    int rc = sqlite3_step(q);
    *id = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        rc = sqlite3_step(q);
    }
    int code = 0;
    if (rc != SQLITE_DONE)
        code = wfail(st, rc, what, err);
    sqlite3_reset(q);
    return code;
}

static int step_done(struct cd_store *st, sqlite3_stmt *q, const char *what, struct cd_err *err)
{
    int rc = sqlite3_step(q);
    int code = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        code = wfail(st, rc, what, err);
    sqlite3_reset(q);
    return code;
}

static int bind_text_or_null(sqlite3_stmt *q, int i, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(q, i);
    return sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

static void names_forget(struct cd_store *st)
{
    memset(st->names, 0, sizeof(st->names));
}

static int series_name_id(struct cd_store *st, const char *name, int64_t *id, struct cd_err *err)
{
    struct name_slot *slot = &st->names[cd_hash_fnv1a64_str(name) % NAME_CACHE];
    if (slot->id != 0 && strcmp(slot->name, name) == 0) {
        *id = slot->id;
        return 0;
    }
    sqlite3_stmt *q = st->w[W_NAME_INSERT];
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = step_id(st, q, id, "insert series name", err);
    if (rc == 0 && *id == 0) {
        q = st->w[W_NAME_FIND];
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        rc = step_id(st, q, id, "find series name", err);
    }
    if (rc < 0)
        return rc;
    if (*id == 0)
        return cd_err_set(err, -EIO, "store '%s': series name '%s' vanished", st->path, name);
    slot->id = *id;
    cd_str_copy(slot->name, name, sizeof(slot->name));
    return 0;
}

static int incident_id(struct cd_store *st, const char *name, bool create, int64_t *id,
                       struct cd_err *err)
{
    int rc = 0;
    *id = 0;
    if (create) {
        sqlite3_stmt *q = st->w[W_INCIDENT_INSERT];
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, cd_clock_wall_ms(st->clock));
        rc = step_id(st, q, id, "create incident", err);
    }
    if (rc == 0 && *id == 0) {
        sqlite3_stmt *q = st->w[W_INCIDENT_FIND];
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        rc = step_id(st, q, id, "find incident", err);
    }
    return rc;
}

static int add_to_incident(struct cd_store *st, int64_t snap_id, const char *name,
                           struct cd_err *err)
{
    int64_t iid = 0;
    int rc = incident_id(st, name, true, &iid, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q = st->w[W_MEMBER_ADD];
    sqlite3_bind_int64(q, 1, iid);
    sqlite3_bind_int64(q, 2, snap_id);
    sqlite3_bind_int64(q, 3, cd_clock_wall_ms(st->clock));
    return step_done(st, q, "add to incident", err);
}

/* The blob row for s's bytes: found by hash or inserted. */
static int write_blob(struct cd_store *st, const struct cd_snapshot *s, int64_t *blob_id,
                      int64_t *stored_bytes, int *encoding, struct cd_err *err)
{
    const uint8_t *data = s->stored != NULL ? s->stored : s->raw;
    size_t len = s->stored != NULL ? s->stored_len : s->raw_len;
    int enc = s->stored != NULL ? s->stored_encoding : CD_STORE_ENC_IDENTITY;
    sqlite3_stmt *q = st->w[W_BLOB_INSERT];
    sqlite3_bind_blob(q, 1, s->content_hash, CD_HASH_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, enc);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)s->raw_len);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)len);
    sqlite3_bind_int64(q, 5, cd_clock_wall_ms(st->clock));
    sqlite3_bind_blob64(q, 6, data, len, SQLITE_STATIC);
    int rc = step_id(st, q, blob_id, "insert blob", err);
    sqlite3_clear_bindings(q);
    if (rc < 0)
        return rc;
    if (*blob_id != 0) {
        *stored_bytes = (int64_t)len;
        *encoding = enc;
        return 0;
    }
    /* Already stored by an earlier snapshot: share it, with its encoding and size. */
    q = st->w[W_BLOB_FIND];
    sqlite3_bind_blob(q, 1, s->content_hash, CD_HASH_SHA256_LEN, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *blob_id = sqlite3_column_int64(q, 0);
        *encoding = sqlite3_column_int(q, 1);
        *stored_bytes = sqlite3_column_int64(q, 2);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? cd_err_set(err, -EIO, "store '%s': blob vanished", st->path)
                               : wfail(st, rc, "find blob", err);
    }
    sqlite3_reset(q);
    return rc;
}

static const char DROPPED_DISK_FULL[] = "raw bytes, summary and series not stored: disk full";

static int write_snapshot(struct cd_store *st, struct cd_snapshot *s, bool meta_only,
                          struct cd_err *err)
{
    int64_t now = cd_clock_wall_ms(st->clock);
    int64_t tid = 0;
    sqlite3_stmt *q = st->w[W_TARGET];
    sqlite3_bind_text(q, 1, s->job, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, s->scheme, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, s->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, s->instance != NULL ? s->instance : s->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, s->labels_json != NULL ? s->labels_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 6, s->start_ms);
    int rc = step_id(st, q, &tid, "upsert target", err);
    if (rc < 0)
        return rc;

    bool has_raw = s->raw != NULL && s->raw_len > 0;
    int64_t blob_id = 0, stored_bytes = 0;
    int encoding = 0;
    if (has_raw && !meta_only) {
        rc = write_blob(st, s, &blob_id, &stored_bytes, &encoding, err);
        if (rc < 0)
            return rc;
    }
    bool dropped = meta_only && (has_raw || s->summary_json != NULL || s->n_series > 0);

    q = st->w[W_SNAP_INSERT];
    sqlite3_bind_int64(q, 1, tid);
    sqlite3_bind_text(q, 2, s->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, s->start_ms);
    sqlite3_bind_int64(q, 4, s->duration_ms);
    sqlite3_bind_int64(q, 5, s->scheduled_ms);
    sqlite3_bind_int64(q, 6, now);
    sqlite3_bind_text(q, 7, cd_snap_status_name(s->status), -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 8, s->http_status);
    bind_text_or_null(q, 9, s->error);
    bind_text_or_null(q, 10, s->parse_error);
    bind_text_or_null(q, 11, s->request);
    bind_text_or_null(q, 12, s->format != CD_FORMAT_UNKNOWN ? cd_format_name(s->format) : NULL);
    bind_text_or_null(q, 13, s->content_type);
    sqlite3_bind_int64(q, 14, (sqlite3_int64)(has_raw ? s->raw_len : 0));
    sqlite3_bind_int64(q, 15, stored_bytes);
    sqlite3_bind_int(q, 16, encoding);
    if (has_raw)
        sqlite3_bind_blob(q, 17, s->content_hash, CD_HASH_SHA256_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, 17);
    if (blob_id != 0)
        sqlite3_bind_int64(q, 18, blob_id);
    else
        sqlite3_bind_null(q, 18);
    bind_text_or_null(q, 19, dropped ? DROPPED_DISK_FULL : NULL);
    sqlite3_bind_int(q, 20, s->pinned ? 1 : 0);
    rc = step_done(st, q, "insert snapshot", err);
    if (rc < 0)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(st->db);

    if (!meta_only && s->summary_json != NULL) {
        q = st->w[W_SUMMARY];
        sqlite3_bind_int64(q, 1, id);
        if (s->summary_zstd != NULL)
            sqlite3_bind_blob(q, 2, s->summary_zstd, (int)s->summary_zstd_len, SQLITE_STATIC);
        else
            sqlite3_bind_text(q, 2, s->summary_json, -1, SQLITE_STATIC);
        rc = step_done(st, q, "insert summary", err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; !meta_only && i < s->n_series; i++) {
        const struct cd_series_point *p = &s->series[i];
        if (!isfinite(p->value) || p->name[0] == '\0')
            continue; /* SQLite would store NaN as NULL; a point without a number is no point */
        int64_t nid = 0;
        rc = series_name_id(st, p->name, &nid, err);
        if (rc < 0)
            return rc;
        q = st->w[W_SERIES];
        sqlite3_bind_int64(q, 1, tid);
        sqlite3_bind_int64(q, 2, nid);
        sqlite3_bind_int64(q, 3, s->start_ms);
        sqlite3_bind_int64(q, 4, id);
        sqlite3_bind_double(q, 5, p->value);
        rc = step_done(st, q, "insert series point", err);
        if (rc < 0)
            return rc;
    }
    if (s->incident != NULL) {
        rc = add_to_incident(st, id, s->incident, err);
        if (rc < 0)
            return rc;
    }
    s->id = id;
    return 0;
}

/* ---- writer: batches ------------------------------------------------------------------------- */

static void rollback(struct cd_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        step_done(st, st->w[W_ROLLBACK], "rollback", NULL);
    /* Ids cached during the failed transaction may not exist any more. */
    names_forget(st);
}

/* One transaction: every snapshot of b[0..n) whose rcs[i] is 0, or none of them. */
static int commit_batch(struct cd_store *st, struct queued *b, const int *rcs, size_t n,
                        bool meta_only, struct cd_err *err)
{
    int rc = step_done(st, st->w[W_BEGIN], "begin", err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] != 0)
            continue;
        rc = write_snapshot(st, b[i].s, meta_only, err);
        if (rc < 0)
            goto fail;
    }
    rc = step_done(st, st->w[W_COMMIT], "commit", err);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    rollback(st);
    for (size_t i = 0; i < n; i++)
        b[i].s->id = 0;
    return rc;
}

static void emit(struct cd_store *st, enum cd_store_event_type type, int code, const char *msg,
                 const struct cd_retention_report *report)
{
    if (st->opts.on_event == NULL)
        return;
    struct cd_store_event ev = {type, code, msg, report};
    st->opts.on_event(&ev, st->opts.event_ctx);
}

static void note_error(struct cd_store *st, const char *msg)
{
    pthread_mutex_lock(&st->mu);
    cd_str_copy(st->last_error, msg, sizeof(st->last_error));
    st->last_error_ms = cd_clock_wall_ms(st->clock);
    pthread_mutex_unlock(&st->mu);
}

/* Errors one snapshot can cause on its own (the rest of its batch is fine). */
static bool snapshot_specific(int rc)
{
    return rc == -EINVAL || rc == -E2BIG;
}

/*
 * Headroom for a full disk: a file of disk_reserve_bytes next to the database, allocated while
 * there is space. When the disk fills it is deleted, so metadata records still fit; it doubles
 * as the probe for "space is back": a full snapshot is tried again only once it can be
 * allocated anew.
 */
static int reserve_make(struct cd_store *st)
{
    if (st->opts.disk_reserve_bytes <= 0)
        return 0;
    int fd = open(st->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = posix_fallocate(fd, 0, (off_t)st->opts.disk_reserve_bytes);
    close(fd);
    if (rc != 0) {
        unlink(st->reserve_path);
        return -rc;
    }
    return 0;
}

/* Reports the transitions only: "full" once, "recovered" once. While full, the WAL is not
 * checkpointed: a checkpoint grows the database file and would eat the headroom. */
static void set_disk_full(struct cd_store *st, bool full, const struct cd_err *cause)
{
    pthread_mutex_lock(&st->mu);
    bool was = st->disk_full;
    st->disk_full = full;
    pthread_mutex_unlock(&st->mu);
    char msg[CD_ERR_MSG_MAX + 128];
    if (full && !was) {
        unlink(st->reserve_path);
        sqlite3_wal_autocheckpoint(st->db, 0);
        snprintf(msg, sizeof(msg), "%s; storing metadata only until space is freed",
                 cd_err_msg(cause));
        note_error(st, msg);
        emit(st, CD_STORE_EV_DISK_FULL, cause->code, msg, NULL);
    } else if (!full && was) {
        sqlite3_wal_autocheckpoint(st->db, STORE_AUTOCHECKPOINT);
        snprintf(msg, sizeof(msg), "store '%s': disk space is back, storing raw bytes again",
                 st->path);
        emit(st, CD_STORE_EV_DISK_RECOVERED, 0, msg, NULL);
    }
}

/*
 * Writes a batch and sets each snapshot's outcome in rcs[]: the whole batch in one transaction;
 * on a full disk its metadata alone; after an error one snapshot can cause, each one on its own.
 */
static void write_batch(struct cd_store *st, struct queued *b, int *rcs, size_t n)
{
    struct cd_err err;
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        cd_err_init(&err);
        rcs[i] = cd_store_prepare(b[i].s, &err);
        if (rcs[i] == 0)
            live++;
    }
    if (live == 0)
        return;
    pthread_mutex_lock(&st->mu);
    bool disk_full = st->disk_full;
    pthread_mutex_unlock(&st->mu);
    int64_t now = cd_clock_now_mono_ms();
    bool try_full = !disk_full;
    if (disk_full && now - st->last_full_try_mono >= st->opts.disk_full_retry_ms) {
        st->last_full_try_mono = now;
        try_full = reserve_make(st) == 0;
    }
    cd_err_init(&err);
    int rc = -ENOSPC;
    if (try_full) {
        rc = commit_batch(st, b, rcs, n, false, &err);
        if (rc == 0) {
            set_disk_full(st, false, NULL);
            return;
        }
    }
    if (rc == -ENOSPC) {
        if (!disk_full)
            set_disk_full(st, true, &err);
        else if (try_full)
            unlink(st->reserve_path); /* the probe was wrong: headroom again */
        struct cd_err merr;
        cd_err_init(&merr);
        int mrc = commit_batch(st, b, rcs, n, true, &merr);
        if (mrc < 0 && mrc != -ENOSPC) {
            note_error(st, cd_err_msg(&merr));
            emit(st, CD_STORE_EV_WRITE_ERROR, mrc, cd_err_msg(&merr), NULL);
        }
        for (size_t i = 0; i < n; i++) {
            if (rcs[i] == 0)
                rcs[i] = mrc == 0 ? -ENOSPC : mrc;
        }
        return;
    }
    note_error(st, cd_err_msg(&err));
    emit(st, CD_STORE_EV_WRITE_ERROR, rc, cd_err_msg(&err), NULL);
    bool alone = snapshot_specific(rc) && live > 1;
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] != 0)
            continue;
        if (alone) {
            struct cd_err one;
            cd_err_init(&one);
            rcs[i] = commit_batch(st, &b[i], &rcs[i], 1, false, &one);
        } else {
            rcs[i] = rc;
        }
    }
}

/* Updates the figures, calls the done callbacks (after COMMIT returned: a callback may rely on
 * the figures and the database agreeing), frees the snapshots and their queue bytes. */
static void finish(struct cd_store *st, struct queued *b, const int *rcs, size_t n)
{
    size_t bytes = 0;
    uint64_t ok = 0, meta = 0, failed = 0, stored = 0;
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == 0) {
            ok++;
            stored += b[i].s->raw_len;
        } else if (b[i].s->id > 0) {
            meta++;
        } else {
            failed++;
        }
        bytes += b[i].bytes;
    }
    pthread_mutex_lock(&st->mu);
    st->n_batches += (ok + meta > 0);
    st->n_committed += ok;
    st->n_meta_only += meta;
    st->n_failed += failed;
    st->n_bytes += stored;
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        struct cd_snapshot *s = b[i].s;
        if (s->done != NULL)
            s->done(s, rcs[i], s->done_ctx);
        cd_snapshot_free(s);
        b[i].s = NULL;
    }
    pthread_mutex_lock(&st->mu);
    st->held_bytes -= bytes;
    pthread_mutex_unlock(&st->mu);
}

/* Under mu: moves up to one batch from the ring into st->batch. */
static size_t take_batch(struct cd_store *st)
{
    size_t n = 0, bytes = 0;
    while (st->count > 0 && n < st->opts.batch_max_snapshots) {
        struct queued *q = &st->ring[st->head];
        if (n > 0 && bytes + q->bytes > st->opts.batch_max_bytes)
            break;
        st->batch[n++] = *q;
        bytes += q->bytes;
        st->head = (st->head + 1) % st->cap;
        st->count--;
        st->queued_bytes -= q->bytes;
    }
    if (st->count > 0)
        st->first_enqueued_ns = mono_ns();
    return n;
}

/* Writes one batch if anything is queued; returns whether it did. Writer thread, mu not held. */
static bool write_one_batch(struct cd_store *st)
{
    pthread_mutex_lock(&st->mu);
    size_t n = take_batch(st);
    pthread_mutex_unlock(&st->mu);
    if (n == 0)
        return false;
    write_batch(st, st->batch, st->batch_rcs, n);
    finish(st, st->batch, st->batch_rcs, n);
    return true;
}

/* ---- writer: requests ------------------------------------------------------------------------ */

static int snapshot_protection(struct cd_store *st, int64_t id, bool *exists, bool *protected_,
                               struct cd_err *err)
{
    sqlite3_stmt *q = st->w[W_PROTECTED];
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    *exists = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        *protected_ = sqlite3_column_int64(q, 0) != 0 || sqlite3_column_int64(q, 1) > 0;
        rc = SQLITE_DONE;
    }
    int code = rc == SQLITE_DONE ? 0 : wfail(st, rc, "look up snapshot", err);
    sqlite3_reset(q);
    return code;
}

static int do_pin(struct cd_store *st, struct store_req *r, struct cd_err *err)
{
    int rc = step_done(st, st->w[W_BEGIN], "begin", err);
    if (rc < 0)
        return rc;
    bool exists = false, prot = false;
    rc = snapshot_protection(st, r->id, &exists, &prot, err);
    if (rc == 0 && !exists)
        rc = cd_err_set(err, -ENOENT, "no snapshot %" PRId64, r->id);
    if (rc < 0)
        goto fail;
    if (r->type == REQ_PIN && r->incident[0] != '\0') {
        rc = add_to_incident(st, r->id, r->incident, err);
    } else if (r->type == REQ_PIN) {
        sqlite3_bind_int64(st->w[W_PIN_SET], 1, r->id);
        sqlite3_bind_int(st->w[W_PIN_SET], 2, 1);
        rc = step_done(st, st->w[W_PIN_SET], "pin", err);
    } else if (r->incident[0] != '\0') {
        int64_t iid = 0;
        rc = incident_id(st, r->incident, false, &iid, err);
        if (rc == 0 && iid == 0)
            rc = cd_err_set(err, -ENOENT, "no incident '%s'", r->incident);
        if (rc == 0) {
            sqlite3_bind_int64(st->w[W_MEMBER_DEL], 1, iid);
            sqlite3_bind_int64(st->w[W_MEMBER_DEL], 2, r->id);
            rc = step_done(st, st->w[W_MEMBER_DEL], "remove from incident", err);
        }
        if (rc == 0 && sqlite3_changes(st->db) == 0)
            rc = cd_err_set(err, -ENOENT, "snapshot %" PRId64 " is not in incident '%s'", r->id,
                            r->incident);
    } else {
        sqlite3_bind_int64(st->w[W_PIN_SET], 1, r->id);
        sqlite3_bind_int(st->w[W_PIN_SET], 2, 0);
        rc = step_done(st, st->w[W_PIN_SET], "unpin", err);
        if (rc == 0) {
            sqlite3_bind_int64(st->w[W_MEMBER_DEL_ALL], 1, r->id);
            rc = step_done(st, st->w[W_MEMBER_DEL_ALL], "remove from incidents", err);
        }
    }
    if (rc < 0)
        goto fail;
    rc = snapshot_protection(st, r->id, &exists, &prot, err);
    if (rc < 0)
        goto fail;
    rc = step_done(st, st->w[W_COMMIT], "commit", err);
    if (rc < 0)
        goto fail;
    r->left_pinned = prot;
    return 0;
fail:
    rollback(st);
    return rc;
}

static bool retention_is_due(struct cd_store *st)
{
    const struct cd_retention_policy *p = &st->opts.retention;
    return p->interval_ms > 0 && cd_retention_policy_active(p) &&
           cd_clock_mono_ms(st->clock) >= st->next_retention_mono;
}

static void service(struct cd_store *st, bool retention_ok);

static bool retention_yield(void *ctx)
{
    struct cd_store *st = ctx;
    service(st, false);
    write_one_batch(st);
    pthread_mutex_lock(&st->mu);
    bool go_on = !st->stopping;
    pthread_mutex_unlock(&st->mu);
    return go_on;
}

static void do_retention(struct cd_store *st, bool dry_run, struct cd_retention_report *rep)
{
    struct cd_err err;
    cd_err_init(&err);
    cd_retention_run(st->ret, &st->opts.retention, cd_clock_wall_ms(st->clock), dry_run,
                     retention_yield, st, rep, &err);
    pthread_mutex_lock(&st->mu);
    st->last_report = *rep;
    st->have_report = true;
    pthread_mutex_unlock(&st->mu);
    if (rep->rc < 0)
        note_error(st, rep->error);
    emit(st, CD_STORE_EV_RETENTION, rep->rc,
         rep->rc < 0 ? rep->error : (dry_run ? "retention dry run finished" : "retention finished"),
         rep);
}

/* Under mu: the oldest request, skipping retention runs when they are not allowed (inside one). */
static struct store_req *take_request(struct cd_store *st, bool retention_ok)
{
    struct store_req *prev = NULL;
    for (struct store_req *r = st->req_head; r != NULL; prev = r, r = r->next) {
        if (!retention_ok && r->type == REQ_RETENTION)
            continue;
        if (prev == NULL)
            st->req_head = r->next;
        else
            prev->next = r->next;
        if (st->req_tail == r)
            st->req_tail = prev;
        r->next = NULL;
        r->state = REQ_RUNNING;
        return r;
    }
    return NULL;
}

/* Runs the waiting requests (pins first come, first served). Writer thread, mu not held. */
static void service(struct cd_store *st, bool retention_ok)
{
    for (;;) {
        pthread_mutex_lock(&st->mu);
        struct store_req *r = take_request(st, retention_ok);
        pthread_mutex_unlock(&st->mu);
        if (r == NULL)
            return;
        cd_err_init(&r->err);
        if (r->type == REQ_RETENTION) {
            do_retention(st, r->dry_run, &r->report);
            r->rc = r->report.rc;
            if (r->rc < 0)
                cd_err_set(&r->err, r->rc, "%s", r->report.error);
        } else {
            r->rc = do_pin(st, r, &r->err);
        }
        pthread_mutex_lock(&st->mu);
        if (r->state == REQ_ABANDONED) {
            free(r);
        } else {
            r->state = REQ_DONE;
            pthread_cond_broadcast(&st->req_cond);
        }
        pthread_mutex_unlock(&st->mu);
    }
}

/* ---- writer thread --------------------------------------------------------------------------- */

static void wait_until_ns(struct cd_store *st, int64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    pthread_cond_timedwait(&st->cond, &st->mu, &ts);
}

/* Under mu. What the writer should do next; false when it should exit. */
static bool wait_for_work(struct cd_store *st)
{
    for (;;) {
        if (st->retention_pending) {
            /* Only the writer reads opts.retention outside mu, so only the writer changes it. */
            st->opts.retention = st->next_policy;
            st->retention_pending = false;
            st->next_retention_mono = cd_clock_mono_ms(st->clock) + st->opts.retention.interval_ms;
        }
        if (st->req_head != NULL)
            return true;
        int64_t now = mono_ns();
        if (st->count > 0) {
            if (st->stopping || st->count >= st->opts.batch_max_snapshots ||
                st->queued_bytes >= st->opts.batch_max_bytes || st->opts.batch_linger_ms <= 0)
                return true;
            int64_t due = st->first_enqueued_ns + (int64_t)st->opts.batch_linger_ms * 1000000;
            if (now >= due)
                return true;
            wait_until_ns(st, due);
            continue;
        }
        if (st->stopping)
            return false;
        if (retention_is_due(st))
            return true;
        /* Wakes for the next retention run, and at least twice a second to look at the clock
         * (a fake one in tests moves by itself). */
        int64_t wait_ms = 500;
        if (st->opts.retention.interval_ms > 0) {
            int64_t left = st->next_retention_mono - cd_clock_mono_ms(st->clock);
            wait_ms = left < 1 ? 1 : left < wait_ms ? left : wait_ms;
        }
        wait_until_ns(st, now + wait_ms * 1000000LL);
    }
}

/* Under mu, at close after the deadline: everything still queued is dropped. */
static void cancel_queue(struct cd_store *st)
{
    while (st->count > 0) {
        size_t n = take_batch(st);
        pthread_mutex_unlock(&st->mu);
        for (size_t i = 0; i < n; i++)
            st->batch_rcs[i] = -ECANCELED;
        finish(st, st->batch, st->batch_rcs, n);
        pthread_mutex_lock(&st->mu);
    }
}

static void *writer_main(void *arg)
{
    struct cd_store *st = arg;
    pthread_mutex_lock(&st->mu);
    while (wait_for_work(st)) {
        pthread_mutex_unlock(&st->mu);
        service(st, true);
        write_one_batch(st);
        pthread_mutex_lock(&st->mu);
        bool stopping = st->stopping;
        pthread_mutex_unlock(&st->mu);
        if (!stopping && retention_is_due(st)) {
            struct cd_retention_report rep;
            do_retention(st, false, &rep);
            /* Under mu: the status route reads it. */
            pthread_mutex_lock(&st->mu);
            st->next_retention_mono = cd_clock_mono_ms(st->clock) + st->opts.retention.interval_ms;
            pthread_mutex_unlock(&st->mu);
        }
        pthread_mutex_lock(&st->mu);
        if (st->stopping && mono_ns() > st->stop_deadline_ns)
            cancel_queue(st);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---- open / close ---------------------------------------------------------------------------- */

void cd_store_opts_default(struct cd_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->queue_max_snapshots = 1024;
    o->queue_max_bytes = 256u << 20;
    o->batch_max_snapshots = 256;
    o->batch_max_bytes = 64u << 20;
    o->batch_linger_ms = 10;
    o->close_timeout_ms = 10000;
    o->disk_full_retry_ms = 1000;
    o->disk_reserve_bytes = 4 << 20;
    o->cache_bytes = 8 << 20;
    o->reader_pool = 4;
    o->page_size = STORE_PAGE_SIZE;
    cd_retention_policy_default(&o->retention);
}

/* Zero fields take their defaults; batch bounds never exceed the queue's. */
static void opts_fill(struct cd_store_opts *o)
{
    struct cd_store_opts d;
    cd_store_opts_default(&d);
    if (o->queue_max_snapshots == 0)
        o->queue_max_snapshots = d.queue_max_snapshots;
    if (o->queue_max_bytes == 0)
        o->queue_max_bytes = d.queue_max_bytes;
    if (o->batch_max_snapshots == 0)
        o->batch_max_snapshots = d.batch_max_snapshots;
    if (o->batch_max_snapshots > o->queue_max_snapshots)
        o->batch_max_snapshots = o->queue_max_snapshots;
    if (o->batch_max_bytes == 0)
        o->batch_max_bytes = d.batch_max_bytes;
    if (o->batch_linger_ms < 0)
        o->batch_linger_ms = 0;
    if (o->close_timeout_ms <= 0)
        o->close_timeout_ms = d.close_timeout_ms;
    if (o->disk_full_retry_ms < 0)
        o->disk_full_retry_ms = 0;
    if (o->disk_reserve_bytes == 0)
        o->disk_reserve_bytes = d.disk_reserve_bytes;
    if (o->page_size == 0)
        o->page_size = d.page_size;
    if (o->cache_bytes <= 0)
        o->cache_bytes = d.cache_bytes;
    if (o->retention.chunk == 0)
        o->retention.chunk = d.retention.chunk;
}

static int writer_setup(struct cd_store *st, struct cd_err *err)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; "
             "PRAGMA cache_size = -%" PRId64 "; PRAGMA journal_size_limit = %d",
             st->opts.cache_bytes / 1024, STORE_WAL_LIMIT);
    int rc = exec_sql(st->db, st->path, sql, "configure the connection", err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < W_COUNT; i++) {
        int src =
            sqlite3_prepare_v3(st->db, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->w[i], NULL);
        if (src != SQLITE_OK)
            return cd_store_sqlite_err(err, st->db, st->path, src, wsql[i]);
    }
    return cd_retention_new(st->db, st->path, &st->ret, err);
}

static void reader_free(struct cd_store_reader *r);

static void store_free(struct cd_store *st)
{
    for (size_t i = 0; i < st->n_idle; i++)
        reader_free(st->idle[i]);
    free(st->idle);
    cd_retention_free(st->ret);
    for (int i = 0; i < W_COUNT; i++)
        sqlite3_finalize(st->w[i]);
    if (st->db != NULL) {
        /* The last connection's close checkpoints and removes the WAL. (No PRAGMA optimize:
         * statistics could steer the planner away from the indexes the queries are built for.) */
        sqlite3_close(st->db);
    }
    free(st->ring);
    free(st->batch);
    free(st->batch_rcs);
    if (st->req_cond_ready)
        pthread_cond_destroy(&st->req_cond);
    if (st->reader_cond_ready)
        pthread_cond_destroy(&st->reader_cond);
    if (st->cond_ready)
        pthread_cond_destroy(&st->cond);
    if (st->mu_ready)
        pthread_mutex_destroy(&st->mu);
    free(st->reserve_path);
    free(st->path);
    free(st);
}

static int cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -ENOMEM;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc == 0 ? 0 : -rc;
}

int cd_store_open(const struct cd_store_opts *opts, struct cd_store **out, struct cd_err *err)
{
    if (opts == NULL || opts->path == NULL || opts->path[0] == '\0')
        return cd_err_set(err, -EINVAL, "store: no database path");
    int rc = cd_retention_policy_validate(&opts->retention, err);
    if (rc < 0)
        return rc;
    int ps = opts->page_size;
    if (ps != 0 && (ps < 512 || ps > 65536 || (ps & (ps - 1)) != 0))
        return cd_err_set(err, -EINVAL, "store: page size %d: a power of two, 512..65536", ps);
    struct cd_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return cd_err_set(err, -ENOMEM, "store: out of memory");
    st->opts = *opts;
    opts_fill(&st->opts);
    st->path = cd_str_dup(opts->path);
    st->opts.path = st->path;
    st->reserve_path = cd_str_printf("%s-reserve", opts->path);
    st->clock = opts->clock != NULL ? opts->clock : real_clock_for(&st->real_clock);
    st->cap = st->opts.queue_max_snapshots;
    st->ring = calloc(st->cap, sizeof(*st->ring));
    st->batch = calloc(st->opts.batch_max_snapshots, sizeof(*st->batch));
    st->batch_rcs = calloc(st->opts.batch_max_snapshots, sizeof(*st->batch_rcs));
    st->idle = calloc(st->opts.reader_pool + 1, sizeof(*st->idle));
    if (st->path == NULL || st->reserve_path == NULL || st->ring == NULL || st->batch == NULL ||
        st->batch_rcs == NULL || st->idle == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        rc = cd_err_set(err, -ENOMEM, "store: mutex");
        goto fail;
    }
    st->mu_ready = true;
    if (cond_init_mono(&st->cond) < 0) {
        rc = cd_err_set(err, -ENOMEM, "store: condition variable");
        goto fail;
    }
    st->cond_ready = true;
    if (cond_init_mono(&st->reader_cond) < 0) {
        rc = cd_err_set(err, -ENOMEM, "store: condition variable");
        goto fail;
    }
    st->reader_cond_ready = true;
    if (cond_init_mono(&st->req_cond) < 0) {
        rc = cd_err_set(err, -ENOMEM, "store: condition variable");
        goto fail;
    }
    st->req_cond_ready = true;

    rc = open_conn(st->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, STORE_BUSY_MS, &st->db,
                   err);
    if (rc < 0)
        goto fail;
    rc = migrate(st->db, st->path, cd_store_schema_version(), st->opts.page_size, err);
    if (rc < 0)
        goto fail;
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
    rc = writer_setup(st, err);
    if (rc < 0)
        goto fail;
    /* Without room for it now, the store runs without headroom until space returns. */
    reserve_make(st);
    st->next_retention_mono = cd_clock_mono_ms(st->clock) + st->opts.retention.interval_ms;
    st->last_full_try_mono = cd_clock_now_mono_ms();
    int prc = pthread_create(&st->thread, NULL, writer_main, st);
    if (prc != 0) {
        rc = cd_err_set(err, -prc, "store: cannot start the writer thread: %s", strerror(prc));
        goto fail;
    }
    st->thread_started = true;
    *out = st;
    return 0;
fail:
    store_free(st);
    return rc;
}

void cd_store_close(struct cd_store *st)
{
    if (st == NULL)
        return;
    if (st->thread_started) {
        pthread_mutex_lock(&st->mu);
        st->stopping = true;
        st->stop_deadline_ns = mono_ns() + (int64_t)st->opts.close_timeout_ms * 1000000;
        pthread_cond_signal(&st->cond);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->thread, NULL);
    }
    /* The writer serves every request before it exits and none is taken once stopping is set;
     * anything left here was abandoned by its caller. */
    while (st->req_head != NULL) {
        struct store_req *next = st->req_head->next;
        free(st->req_head);
        st->req_head = next;
    }
    st->req_head = st->req_tail = NULL;
    store_free(st);
}

/* ---- requests: the callers' side ------------------------------------------------------------- */

/* Hands r to the writer and waits up to timeout_ms. Takes ownership of r. */
static int request(struct cd_store *st, struct store_req *r, int timeout_ms, bool *left_pinned,
                   struct cd_retention_report *report, struct cd_err *err)
{
    int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        pthread_mutex_unlock(&st->mu);
        free(r);
        return cd_err_set(err, -ESHUTDOWN, "store '%s': closing", st->path);
    }
    if (st->req_tail != NULL)
        st->req_tail->next = r;
    else
        st->req_head = r;
    st->req_tail = r;
    pthread_cond_signal(&st->cond);
    while (r->state != REQ_DONE) {
        if (pthread_cond_timedwait(&st->req_cond, &st->mu, &ts) == ETIMEDOUT)
            break;
    }
    int rc = 0;
    if (r->state == REQ_DONE) {
        rc = r->rc;
        if (rc < 0)
            cd_err_copy(err, &r->err);
        if (left_pinned != NULL)
            *left_pinned = r->left_pinned;
        if (report != NULL)
            *report = r->report;
        free(r);
    } else if (r->state == REQ_QUEUED) {
        /* Withdrawn before the writer saw it: nothing happened. */
        struct store_req *prev = NULL;
        for (struct store_req *x = st->req_head; x != NULL; prev = x, x = x->next) {
            if (x != r)
                continue;
            if (prev == NULL)
                st->req_head = r->next;
            else
                prev->next = r->next;
            if (st->req_tail == r)
                st->req_tail = prev;
            break;
        }
        free(r);
        rc = cd_err_set(err, -ETIMEDOUT,
                        "store '%s': the writer did not get to the request within %d ms", st->path,
                        timeout_ms);
    } else {
        /* Running: the writer completes it and frees it; its outcome is unknown here. */
        r->state = REQ_ABANDONED;
        rc = cd_err_set(err, -ETIMEDOUT,
                        "store '%s': the request is still running after %d ms (it will complete)",
                        st->path, timeout_ms);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int req_new(enum req_type type, int64_t id, const char *incident, struct store_req **out,
                   struct cd_err *err)
{
    if (incident != NULL && !incident_name_valid(incident))
        return cd_err_set(err, -EINVAL,
                          "incident name '%s': use 1 to %d letters, digits, '.', '_' or '-'",
                          incident, INCIDENT_MAX);
    struct store_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return cd_err_set(err, -ENOMEM, "store: out of memory");
    r->type = type;
    r->id = id;
    if (incident != NULL)
        cd_str_copy(r->incident, incident, sizeof(r->incident));
    *out = r;
    return 0;
}

int cd_store_pin(struct cd_store *st, int64_t id, const char *incident, int timeout_ms,
                 struct cd_err *err)
{
    struct store_req *r = NULL;
    int rc = req_new(REQ_PIN, id, incident, &r, err);
    if (rc < 0)
        return rc;
    return request(st, r, timeout_ms > 0 ? timeout_ms : 10000, NULL, NULL, err);
}

int cd_store_unpin(struct cd_store *st, int64_t id, const char *incident, int timeout_ms,
                   bool *left_pinned, struct cd_err *err)
{
    struct store_req *r = NULL;
    int rc = req_new(REQ_UNPIN, id, incident, &r, err);
    if (rc < 0)
        return rc;
    return request(st, r, timeout_ms > 0 ? timeout_ms : 10000, left_pinned, NULL, err);
}

int cd_store_set_retention(struct cd_store *st, const struct cd_retention_policy *p,
                           struct cd_err *err)
{
    struct cd_retention_policy next = *p;
    if (next.chunk == 0)
        next.chunk = st->opts.retention.chunk;
    int rc = cd_retention_policy_validate(&next, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&st->mu);
    st->next_policy = next;
    st->retention_pending = true;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int cd_store_retention_run(struct cd_store *st, bool dry_run, int timeout_ms,
                           struct cd_retention_report *out, struct cd_err *err)
{
    struct store_req *r = NULL;
    int rc = req_new(REQ_RETENTION, 0, NULL, &r, err);
    if (rc < 0)
        return rc;
    r->dry_run = dry_run;
    return request(st, r, timeout_ms > 0 ? timeout_ms : 60000, NULL, out, err);
}

/* ---- readers --------------------------------------------------------------------------------- */

static void reader_free(struct cd_store_reader *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_stmts; i++)
        sqlite3_finalize(r->stmts[i]);
    sqlite3_close(r->db);
    free(r);
}

int cd_store_reader_open(struct cd_store *st, struct cd_store_reader **out, struct cd_err *err)
{
    struct cd_store_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return cd_err_set(err, -ENOMEM, "store: out of memory");
    r->st = st;
    int rc = open_conn(st->path, SQLITE_OPEN_READONLY, READER_BUSY_MS, &r->db, err);
    if (rc < 0)
        goto fail;
    rc = exec_sql(r->db, st->path, "PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY",
                  "configure a reader", err);
    if (rc < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    reader_free(r);
    return rc;
}

void cd_store_reader_close(struct cd_store_reader *r)
{
    reader_free(r);
}

int cd_store_reader_get(struct cd_store *st, struct cd_store_reader **out, struct cd_err *err)
{
    int64_t deadline = mono_ns() + (int64_t)READER_WAIT_MS * 1000000;
    pthread_mutex_lock(&st->mu);
    while (st->n_idle == 0 && st->n_pooled >= st->opts.reader_pool) {
        struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
        if (pthread_cond_timedwait(&st->reader_cond, &st->mu, &ts) == ETIMEDOUT &&
            st->n_idle == 0) {
            pthread_mutex_unlock(&st->mu);
            return cd_err_set(err, -EBUSY,
                              "store: all %zu readers stayed busy for %d s; retry shortly",
                              st->opts.reader_pool, READER_WAIT_MS / 1000);
        }
    }
    struct cd_store_reader *r = NULL;
    if (st->n_idle > 0)
        r = st->idle[--st->n_idle];
    else
        st->n_pooled++;
    pthread_mutex_unlock(&st->mu);
    if (r != NULL) {
        *out = r;
        return 0;
    }
    int rc = cd_store_reader_open(st, out, err);
    if (rc < 0) {
        pthread_mutex_lock(&st->mu);
        st->n_pooled--;
        pthread_cond_signal(&st->reader_cond);
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

void cd_store_reader_put(struct cd_store *st, struct cd_store_reader *r)
{
    if (r == NULL)
        return;
    /* A reader handed back mid-transaction (an error path) must not pin an old snapshot. */
    if (!sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&st->mu);
    if (st->n_idle < st->opts.reader_pool) {
        st->idle[st->n_idle++] = r;
        r = NULL;
    } else {
        st->n_pooled--; /* cannot happen while every get is paired with a put; stay sound */
    }
    pthread_cond_signal(&st->reader_cond);
    pthread_mutex_unlock(&st->mu);
    reader_free(r);
}

static int rfail(struct cd_store_reader *r, int rc, const char *what, struct cd_err *err)
{
    return cd_store_sqlite_err(err, r->db, r->st->path, rc, what);
}

/* A statement for sql: a kept one (taken out of the cache while in use) or a new one. Hand it
 * back with rrelease(). */
static int rprepare(struct cd_store_reader *r, const char *sql, sqlite3_stmt **q,
                    struct cd_err *err)
{
    for (size_t i = r->n_stmts; i-- > 0;) {
        if (strcmp(sqlite3_sql(r->stmts[i]), sql) == 0) {
            *q = r->stmts[i];
            memmove(&r->stmts[i], &r->stmts[i + 1], (r->n_stmts - i - 1) * sizeof(*r->stmts));
            r->n_stmts--;
            return 0;
        }
    }
    int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, q, NULL);
    if (rc != SQLITE_OK)
        return rfail(r, rc, "prepare a query", err);
    return 0;
}

/* Back to the cache, reset (no read transaction held) and unbound (no pointer kept). */
static void rrelease(struct cd_store_reader *r, sqlite3_stmt *q)
{
    if (q == NULL)
        return;
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (r->n_stmts == READER_STMTS) {
        sqlite3_finalize(r->stmts[0]);
        memmove(&r->stmts[0], &r->stmts[1], (READER_STMTS - 1) * sizeof(*r->stmts));
        r->n_stmts--;
    }
    r->stmts[r->n_stmts++] = q;
}

/* Several queries that must see one state of the database: a read transaction. */
static int rbegin(struct cd_store_reader *r, struct cd_err *err)
{
    return exec_sql(r->db, r->st->path, "BEGIN", "begin reading", err);
}

static void rend(struct cd_store_reader *r)
{
    if (!sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
}

/* ---- JSON helpers ---------------------------------------------------------------------------- */

/* A JSON string of text that came from outside (error texts): invalid UTF-8 becomes '?'. */
static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char *copy = cd_str_dup(s);
    if (copy == NULL)
        return NULL;
    for (char *p = copy; *p != '\0'; p++) {
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    }
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *jcol_text(sqlite3_stmt *q, int col)
{
    if (sqlite3_column_type(q, col) == SQLITE_NULL)
        return json_null();
    return jstr((const char *)sqlite3_column_text(q, col));
}

static json_t *jcol_int(sqlite3_stmt *q, int col)
{
    return json_integer(sqlite3_column_int64(q, col));
}

/* Sets o[k] = v (v consumed, NULL allowed): -ENOMEM when either is missing. */
static int jset(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v) == 0 ? 0 : -ENOMEM;
}

static int jappend(json_t *a, json_t *v)
{
    return json_array_append_new(a, v) == 0 ? 0 : -ENOMEM;
}

static json_t *jtime(int64_t ms)
{
    char buf[48];
    return json_string(cd_units_fmt_rfc3339(buf, sizeof(buf), ms));
}

/* Parses JSON text we stored ourselves; text that fails to parse comes back as a string. */
static json_t *jparse(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j != NULL ? j : jstr(text);
}

/* A summaries.json column: text, or (schema 4) a zstd frame of the text. A frame that does not
 * decode is reported in place of the summary rather than failing the whole snapshot. */
static json_t *summary_column(sqlite3_stmt *q, int col)
{
    if (sqlite3_column_type(q, col) != SQLITE_BLOB)
        return jparse((const char *)sqlite3_column_text(q, col));
    const void *z = sqlite3_column_blob(q, col);
    size_t zlen = (size_t)sqlite3_column_bytes(q, col);
    unsigned long long n = ZSTD_getFrameContentSize(z, zlen);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN ||
        n > CD_STORE_SUMMARY_MAX_BYTES)
        return json_pack("{s:s}", "error", "stored summary is damaged");
    char *text = malloc((size_t)n + 1);
    if (text == NULL)
        return NULL;
    size_t got = ZSTD_decompress(text, (size_t)n, z, zlen);
    if (ZSTD_isError(got) || got != n) {
        free(text);
        return json_pack("{s:s}", "error", "stored summary is damaged");
    }
    text[n] = '\0';
    json_t *j = jparse(text);
    free(text);
    return j;
}

/* How a result column becomes a JSON member. */
enum jkind { J_SKIP, J_INT, J_TEXT, J_JSON, J_INT_OR_NULL };

struct jcol {
    const char *key;
    enum jkind kind;
};

/* Adds columns [0, n) of the current row of q to object o as cols[] says. -ENOMEM. */
static int jcols(json_t *o, sqlite3_stmt *q, const struct jcol *cols, size_t n)
{
    int bad = o == NULL;
    for (int i = 0; i < (int)n && !bad; i++) {
        json_t *v = NULL;
        bool null = sqlite3_column_type(q, i) == SQLITE_NULL;
        switch (cols[i].kind) {
        case J_SKIP:
            continue;
        case J_INT:
            v = jcol_int(q, i);
            break;
        case J_TEXT:
            v = jcol_text(q, i);
            break;
        case J_JSON:
            v = jparse((const char *)sqlite3_column_text(q, i));
            break;
        case J_INT_OR_NULL:
            v = null ? json_null() : jcol_int(q, i);
            break;
        }
        bad |= jset(o, cols[i].key, v) < 0;
    }
    return bad ? -ENOMEM : 0;
}

/* ---- snapshot rows --------------------------------------------------------------------------- */

#define SNAP_COLS                                                                                  \
    "s.id, s.target_id, t.job, t.scheme, t.address, t.instance, s.kind, s.start_ms, "              \
    "s.duration_ms, s.scheduled_ms, s.status, s.http_status, s.error, s.parse_error, s.format, "   \
    "s.content_type, s.raw_bytes, s.stored_bytes, s.encoding, s.sha256, s.blob_id, s.dropped, "    \
    "s.pinned, s.incidents, t.labels, s.request, "                                                 \
    "(SELECT i.name FROM incident_snapshots x JOIN incidents i ON i.id = x.incident_id "           \
    "WHERE x.snapshot_id = s.id ORDER BY i.created_ms, i.id LIMIT 1)"
#define SNAP_FROM  " FROM snapshots s JOIN targets t ON t.id = s.target_id"
#define SNAP_NCOLS 27

static const struct jcol snap_cols[SNAP_NCOLS] = {
    {"id", J_INT},
    {"target_id", J_INT},
    {"job", J_TEXT},
    {"scheme", J_TEXT},
    {"address", J_TEXT},
    {"instance", J_TEXT},
    {"kind", J_TEXT},
    {"start_ms", J_INT},
    {"duration_ms", J_INT},
    {"scheduled_ms", J_INT},
    {"status", J_TEXT},
    {"http_status", J_INT},
    {"error", J_TEXT},
    {"parse_error", J_TEXT},
    {"format", J_TEXT},
    {"content_type", J_TEXT},
    {"raw_bytes", J_INT},
    {"stored_bytes", J_INT},
    {NULL, J_SKIP} /* encoding */,
    {NULL, J_SKIP} /* sha256 */,
    {NULL, J_SKIP} /* blob_id */,
    {"dropped", J_TEXT},
    {"pinned", J_SKIP},
    {"incidents", J_INT},
    {NULL, J_SKIP} /* labels: parsed below */,
    {"request", J_TEXT},
    {"incident", J_TEXT} /* the first incident it joined */,
};

/* The labels of the previous row's target: a page of one target's snapshots parses them once
 * (shared by every row: nothing modifies a listing's labels in place). */
struct label_memo {
    int64_t target_id;
    json_t *labels;
};

static json_t *row_labels(sqlite3_stmt *q, struct label_memo *m)
{
    int64_t tid = sqlite3_column_int64(q, 1);
    if (m != NULL && m->labels != NULL && m->target_id == tid)
        return json_incref(m->labels);
    json_t *labels = jparse((const char *)sqlite3_column_text(q, 24));
    if (labels != NULL && !json_is_object(labels)) {
        json_decref(labels);
        labels = NULL;
    }
    if (labels == NULL)
        labels = json_object();
    if (m != NULL && labels != NULL) {
        json_decref(m->labels);
        m->target_id = tid;
        m->labels = json_incref(labels);
    }
    return labels;
}

static json_t *snap_row(sqlite3_stmt *q, struct label_memo *memo)
{
    json_t *o = json_object();
    char hex[CD_HASH_SHA256_HEX] = "";
    if (sqlite3_column_bytes(q, 19) == CD_HASH_SHA256_LEN)
        cd_hash_hex(sqlite3_column_blob(q, 19), CD_HASH_SHA256_LEN, hex);
    int64_t pinned = sqlite3_column_int64(q, 22), incidents = sqlite3_column_int64(q, 23);
    int bad = jcols(o, q, snap_cols, SNAP_NCOLS);
    if (!bad) {
        bad |= jset(o, "time", jtime(sqlite3_column_int64(q, 7)));
        bad |=
            jset(o, "encoding",
                 json_string(sqlite3_column_int(q, 18) == CD_STORE_ENC_ZSTD ? "zstd" : "identity"));
        bad |= jset(o, "sha256", hex[0] != '\0' ? json_string(hex) : json_null());
        bad |= jset(o, "has_raw", json_boolean(sqlite3_column_type(q, 20) != SQLITE_NULL));
        bad |= jset(o, "pinned", json_boolean(pinned != 0));
        bad |= jset(o, "protected", json_boolean(pinned != 0 || incidents > 0));
        bad |= jset(o, "labels", row_labels(q, memo));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Steps q to the end (or `max` rows), appending a row object per row to array a. */
static int snap_rows(struct cd_store_reader *r, sqlite3_stmt *q, json_t *a, size_t max,
                     size_t *n_out, int64_t *last_ms, int64_t *last_id, struct cd_err *err)
{
    size_t n = 0;
    int rc;
    struct label_memo memo = {0, NULL};
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == max) {
            *n_out = n + 1; /* one more exists */
            json_decref(memo.labels);
            return 0;
        }
        json_t *row = snap_row(q, &memo);
        if (row == NULL || jappend(a, row) < 0) {
            json_decref(memo.labels);
            return cd_err_set(err, -ENOMEM, "store: out of memory");
        }
        if (last_ms != NULL)
            *last_ms = sqlite3_column_int64(q, 7);
        if (last_id != NULL)
            *last_id = sqlite3_column_int64(q, 0);
        n++;
    }
    json_decref(memo.labels);
    if (rc != SQLITE_DONE)
        return rfail(r, rc, "read snapshots", err);
    *n_out = n;
    return 0;
}

/* ---- listing --------------------------------------------------------------------------------- */

#define TARGETS_INLINE 1000

enum tsel { TSEL_ALL, TSEL_LIST, TSEL_SUBQUERY };

struct bindv {
    bool is_text;
    int64_t i;
    const char *s;
};

struct sqlq {
    struct cd_buf sql;
    struct bindv *v;
    size_t n, cap;
    int bad;
};

static void sqlq_init(struct sqlq *b)
{
    memset(b, 0, sizeof(*b));
    cd_buf_init(&b->sql, 1 << 20);
}

static void sqlq_free(struct sqlq *b)
{
    cd_buf_free(&b->sql);
    free(b->v);
}

static void sqlq_add(struct sqlq *b, const char *text)
{
    if (cd_buf_append_str(&b->sql, text) < 0)
        b->bad = 1;
}

static void sqlq_bind(struct sqlq *b, bool is_text, int64_t i, const char *s)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct bindv *v = realloc(b->v, cap * sizeof(*v));
        if (v == NULL) {
            b->bad = 1;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = (struct bindv){is_text, i, s};
}

static void sqlq_int(struct sqlq *b, const char *text, int64_t i)
{
    sqlq_add(b, text);
    sqlq_bind(b, false, i, NULL);
}

static void sqlq_text(struct sqlq *b, const char *text, const char *s)
{
    sqlq_add(b, text);
    sqlq_bind(b, true, 0, s);
}

static int sqlq_prepare(struct cd_store_reader *r, struct sqlq *b, sqlite3_stmt **q,
                        struct cd_err *err)
{
    if (b->bad || cd_buf_terminate(&b->sql) < 0)
        return cd_err_set(err, -ENOMEM, "store: out of memory");
    int rc = rprepare(r, (const char *)b->sql.data, q, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i].is_text)
            sqlite3_bind_text(*q, (int)i + 1, b->v[i].s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(*q, (int)i + 1, b->v[i].i);
    }
    return 0;
}

/* The targets a query selects. TSEL_LIST with n == 0: none matches. */
struct tset {
    enum tsel mode;
    int64_t ids[TARGETS_INLINE];
    size_t n;
};

static int resolve_targets(struct cd_store_reader *r, const struct cd_store_query *q,
                           struct tset *ts, struct cd_err *err)
{
    ts->n = 0;
    if (q->target_id == 0 && q->job == NULL && q->address == NULL) {
        ts->mode = TSEL_ALL;
        return 0;
    }
    ts->mode = TSEL_LIST;
    sqlite3_stmt *st = NULL;
    int rc = rprepare(r,
                      "SELECT id FROM targets WHERE (?1 = 0 OR id = ?1) AND (?2 IS NULL OR "
                      "job = ?2) AND (?3 IS NULL OR address = ?3) ORDER BY id",
                      &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, q->target_id);
    bind_text_or_null(st, 2, q->job);
    bind_text_or_null(st, 3, q->address);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ts->n == TARGETS_INLINE) {
            ts->mode = TSEL_SUBQUERY;
            break;
        }
        ts->ids[ts->n++] = sqlite3_column_int64(st, 0);
    }
    int code = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        code = rfail(r, rc, "find targets", err);
    rrelease(r, st);
    return code;
}

static void sqlq_targets(struct sqlq *b, const struct tset *ts, const struct cd_store_query *q,
                         const char *col)
{
    char buf[96];
    if (ts->mode == TSEL_LIST && ts->n == 1) {
        snprintf(buf, sizeof(buf), " AND %s = ?", col);
        sqlq_int(b, buf, ts->ids[0]);
    } else if (ts->mode == TSEL_LIST) {
        /* Several targets: the unary + keeps SQLite off the per-target index, which would have
         * to sort every snapshot of those targets; walking the time index newest first stops
         * after `limit` matches. */
        snprintf(buf, sizeof(buf), " AND +%s IN (", col);
        sqlq_add(b, buf);
        for (size_t i = 0; i < ts->n; i++)
            sqlq_int(b, i == 0 ? "?" : ", ?", ts->ids[i]);
        sqlq_add(b, ")");
    } else if (ts->mode == TSEL_SUBQUERY) {
        snprintf(buf, sizeof(buf), " AND +%s IN (SELECT id FROM targets WHERE (? = 0 OR id = ?)",
                 col);
        sqlq_int(b, buf, q->target_id);
        sqlq_bind(b, false, q->target_id, NULL);
        if (q->job != NULL)
            sqlq_text(b, " AND job = ?", q->job);
        if (q->address != NULL)
            sqlq_text(b, " AND address = ?", q->address);
        sqlq_add(b, ")");
    }
}

static int parse_cursor(const char *c, int64_t *ms, int64_t *id)
{
    /* "v1.<start_ms>.<id>" */
    if (!cd_str_has_prefix(c, "v1."))
        return -EINVAL;
    const char *a = c + 3;
    const char *dot = strchr(a, '.');
    if (dot == NULL || dot == a || dot - a > 24)
        return -EINVAL;
    char first[32];
    memcpy(first, a, (size_t)(dot - a));
    first[dot - a] = '\0';
    if (cd_str_to_i64(first, ms) < 0 || cd_str_to_i64(dot + 1, id) < 0 || *id <= 0)
        return -EINVAL;
    return 0;
}

/* A lookup by name that makes the whole answer empty when the name does not exist. */
static int lookup_id(struct cd_store_reader *r, const char *sql, const char *name, int64_t *id,
                     struct cd_err *err)
{
    sqlite3_stmt *q = NULL;
    int rc = rprepare(r, sql, &q, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    *id = 0;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        rc = SQLITE_DONE;
    }
    int code = rc == SQLITE_DONE ? 0 : rfail(r, rc, "look up a name", err);
    rrelease(r, q);
    return code;
}

int cd_store_list(struct cd_store_reader *r, const struct cd_store_query *q, json_t **out,
                  struct cd_err *err)
{
    int limit = q->limit == 0 ? CD_STORE_LIST_DEFAULT : q->limit;
    if (limit < 1 || limit > CD_STORE_LIST_MAX)
        return cd_err_set(err, -EINVAL, "limit %d: must be 1..%d", q->limit, CD_STORE_LIST_MAX);
    enum cd_snap_status status;
    if (q->status != NULL && cd_snap_status_parse(q->status, &status) < 0)
        return cd_err_set(err, -EINVAL, "status '%s': unknown", q->status);
    int64_t cur_ms = 0, cur_id = 0;
    if (q->cursor != NULL && parse_cursor(q->cursor, &cur_ms, &cur_id) < 0)
        return cd_err_set(err, -EINVAL, "cursor '%s': not one this store handed out", q->cursor);

    struct tset *ts = malloc(sizeof(*ts));
    json_t *res = json_object(), *rows = json_array();
    sqlite3_stmt *st = NULL;
    struct sqlq b;
    sqlq_init(&b);
    int rc = 0;
    if (ts == NULL || res == NULL || rows == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rc = rbegin(r, err);
    if (rc < 0)
        goto fail;
    rc = resolve_targets(r, q, ts, err);
    if (rc < 0)
        goto fail;
    int64_t iid = 0;
    if (q->incident != NULL) {
        rc = lookup_id(r, "SELECT id FROM incidents WHERE name = ?1", q->incident, &iid, err);
        if (rc < 0)
            goto fail;
    }
    bool empty = (ts->mode == TSEL_LIST && ts->n == 0) || (q->incident != NULL && iid == 0);
    size_t n = 0;
    int64_t last_ms = 0, last_id = 0;
    if (!empty) {
        sqlq_add(&b, "SELECT " SNAP_COLS SNAP_FROM " WHERE 1");
        sqlq_targets(&b, ts, q, "s.target_id");
        if (q->kind != NULL)
            sqlq_text(&b, " AND s.kind = ?", q->kind);
        if (q->status != NULL)
            sqlq_text(&b, " AND s.status = ?", q->status);
        if (q->since_ms > 0)
            sqlq_int(&b, " AND s.start_ms >= ?", q->since_ms);
        if (q->until_ms > 0)
            sqlq_int(&b, " AND s.start_ms < ?", q->until_ms);
        if (iid != 0)
            sqlq_int(&b,
                     " AND s.id IN (SELECT snapshot_id FROM incident_snapshots WHERE "
                     "incident_id = ?)",
                     iid);
        if (q->pinned > 0)
            sqlq_add(&b, " AND (s.pinned <> 0 OR s.incidents > 0)");
        else if (q->pinned < 0)
            sqlq_add(&b, " AND s.pinned = 0 AND s.incidents = 0");
        if (q->cursor != NULL) {
            sqlq_int(&b, " AND (s.start_ms, s.id) < (?", cur_ms);
            sqlq_int(&b, ", ?)", cur_id);
        }
        sqlq_int(&b, " ORDER BY s.start_ms DESC, s.id DESC LIMIT ?", limit + 1);
        rc = sqlq_prepare(r, &b, &st, err);
        if (rc < 0)
            goto fail;
        rc = snap_rows(r, st, rows, (size_t)limit, &n, &last_ms, &last_id, err);
        if (rc < 0)
            goto fail;
    }
    rend(r);
    json_t *next = json_null();
    if (n > (size_t)limit) {
        char cur[64];
        snprintf(cur, sizeof(cur), "v1.%" PRId64 ".%" PRId64, last_ms, last_id);
        json_decref(next);
        next = json_string(cur);
    }
    if (jset(res, "snapshots", rows) < 0 || jset(res, "next_cursor", next) < 0) {
        rows = NULL;
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, st);
    sqlq_free(&b);
    free(ts);
    *out = res;
    return 0;
fail:
    rend(r);
    rrelease(r, st);
    sqlq_free(&b);
    free(ts);
    json_decref(rows);
    json_decref(res);
    return rc;
}

/* Prepares sql (one snapshot by ?1) and steps to its row: -ENOENT when there is none. *q is set
 * whatever happens; the caller finalizes it. */
static int snapshot_row(struct cd_store_reader *r, const char *sql, int64_t id, sqlite3_stmt **q,
                        struct cd_err *err)
{
    int rc = rprepare(r, sql, q, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(*q, 1, id);
    rc = sqlite3_step(*q);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return cd_err_set(err, -ENOENT, "no snapshot %" PRId64, id);
    return rfail(r, rc, "read a snapshot", err);
}

/* ---- one snapshot ---------------------------------------------------------------------------- */

int cd_store_snapshot(struct cd_store_reader *r, int64_t id, json_t **out, struct cd_err *err)
{
    sqlite3_stmt *q = NULL;
    json_t *row = NULL, *names = NULL, *series = NULL;
    int rc = rbegin(r, err);
    if (rc < 0)
        return rc;
    rc = snapshot_row(r,
                      "SELECT " SNAP_COLS ", m.json" SNAP_FROM
                      " LEFT JOIN summaries m ON m.snapshot_id = s.id WHERE s.id = ?1",
                      id, &q, err);
    if (rc < 0)
        goto fail;
    row = snap_row(q, NULL);
    if (row == NULL || jset(row, "summary", summary_column(q, SNAP_NCOLS)) < 0) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, q);
    q = NULL;
    names = json_array();
    rc = rprepare(r,
                  "SELECT i.name FROM incident_snapshots x JOIN incidents i ON i.id = "
                  "x.incident_id WHERE x.snapshot_id = ?1 ORDER BY i.name",
                  &q, err);
    if (rc < 0)
        goto fail;
    sqlite3_bind_int64(q, 1, id);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (jappend(names, jcol_text(q, 0)) < 0) {
            rc = cd_err_set(err, -ENOMEM, "store: out of memory");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = rfail(r, rc, "read incidents", err);
        goto fail;
    }
    rc = jset(row, "incident_names", names);
    names = NULL;
    if (rc < 0) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, q);
    q = NULL;
    /* The numbers taken from its summary (series_by_snapshot). */
    series = json_array();
    rc = rprepare(r,
                  "SELECT n.name, x.value FROM series x JOIN series_names n ON n.id = x.name_id "
                  "WHERE x.snapshot_id = ?1 ORDER BY n.name",
                  &q, err);
    if (rc < 0)
        goto fail;
    sqlite3_bind_int64(q, 1, id);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (jappend(series, json_pack("{s:o,s:f}", "name", jcol_text(q, 0), "value",
                                      sqlite3_column_double(q, 1))) < 0) {
            rc = cd_err_set(err, -ENOMEM, "store: out of memory");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = rfail(r, rc, "read series", err);
        goto fail;
    }
    rc = jset(row, "series", series);
    series = NULL;
    if (rc < 0) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, q);
    rend(r);
    *out = row;
    return 0;
fail:
    rrelease(r, q);
    rend(r);
    json_decref(names);
    json_decref(series);
    json_decref(row);
    return rc;
}

/* ---- raw bytes ------------------------------------------------------------------------------- */

void cd_store_raw_free(struct cd_store_raw *raw)
{
    if (raw == NULL)
        return;
    free(raw->data);
    free(raw->content_type);
    free(raw->filename);
    memset(raw, 0, sizeof(*raw));
}

static void sanitize_into(char *dst, size_t size, const char *src)
{
    size_t n = 0;
    for (const char *p = src != NULL ? src : ""; *p != '\0' && n + 1 < size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        dst[n++] = ok ? c : '_';
    }
    dst[n] = '\0';
    /* no hidden files, no ".." */
    for (size_t i = 0; i < n && dst[i] == '.'; i++)
        dst[i] = '_';
}

static const char *file_ext(const char *kind, const char *status, const uint8_t *data, size_t len)
{
    if (status != NULL && strcmp(status, "http_error") == 0)
        return ".txt"; /* Go's pprof errors are text */
    const struct cd_kind_info *k = cd_kind_lookup(kind);
    bool gz = len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (k == NULL || k->format == CD_FORMAT_PPROF)
        return gz ? ".pb.gz" : ".pb";
    return k->file_ext;
}

static char *raw_filename(const char *job, const char *instance, const char *kind, int64_t start_ms,
                          const char *ext)
{
    char j[65], in[65], kd[49], when[32];
    sanitize_into(j, sizeof(j), job);
    sanitize_into(in, sizeof(in), instance);
    sanitize_into(kd, sizeof(kd), kind);
    time_t t = (time_t)(start_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm) == 0)
        cd_str_copy(when, "unknown", sizeof(when));
    return cd_str_printf("%s-%s-%s-%s%s", j, in, kd, when, ext);
}

/* Reads a stored blob into a fresh buffer: the bytes as received. */
static int read_blob(struct cd_store_reader *r, int64_t blob_id, int encoding, size_t raw_len,
                     size_t stored_len, uint8_t **out, struct cd_err *err)
{
    sqlite3_blob *h = NULL;
    uint8_t *stored = NULL, *data = NULL;
    int rc = sqlite3_blob_open(r->db, "main", "blobs", "data", blob_id, 0, &h);
    if (rc != SQLITE_OK) {
        rc = rfail(r, rc, "open a blob", err);
        goto fail;
    }
    if ((size_t)sqlite3_blob_bytes(h) != stored_len) {
        rc = cd_err_set(err, -EBADMSG, "store '%s': blob %" PRId64 " has %d bytes, expected %zu",
                        r->st->path, blob_id, sqlite3_blob_bytes(h), stored_len);
        goto fail;
    }
    data = malloc(raw_len > 0 ? raw_len : 1);
    stored = encoding == CD_STORE_ENC_ZSTD ? malloc(stored_len > 0 ? stored_len : 1) : data;
    if (data == NULL || stored == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: no memory for %zu bytes", raw_len);
        goto fail;
    }
    if (encoding == CD_STORE_ENC_IDENTITY && stored_len != raw_len) {
        rc = cd_err_set(err, -EBADMSG, "store '%s': blob %" PRId64 " length mismatch", r->st->path,
                        blob_id);
        goto fail;
    }
    /* In pieces: sqlite3_blob_read takes an int. */
    for (size_t off = 0; off < stored_len;) {
        size_t n = stored_len - off < (1u << 30) ? stored_len - off : (1u << 30);
        rc = sqlite3_blob_read(h, stored + off, (int)n, (int)off);
        if (rc != SQLITE_OK) {
            rc = rfail(r, rc, "read a blob", err);
            goto fail;
        }
        off += n;
    }
    if (encoding == CD_STORE_ENC_ZSTD) {
        size_t n = ZSTD_decompress(data, raw_len, stored, stored_len);
        if (ZSTD_isError(n) || n != raw_len) {
            rc = cd_err_set(err, -EBADMSG,
                            "store '%s': blob %" PRId64 " does not decompress to %zu bytes: %s",
                            r->st->path, blob_id, raw_len,
                            ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
            goto fail;
        }
        free(stored);
    }
    stored = NULL;
    sqlite3_blob_close(h);
    *out = data;
    return 0;
fail:
    if (stored != data)
        free(stored);
    free(data);
    sqlite3_blob_close(h);
    return rc;
}

int cd_store_raw(struct cd_store_reader *r, int64_t id, size_t max_len, struct cd_store_raw *out,
                 struct cd_err *err)
{
    sqlite3_stmt *q = NULL;
    struct cd_store_raw res;
    memset(&res, 0, sizeof(res));
    int rc = rbegin(r, err);
    if (rc < 0)
        return rc;
    rc = snapshot_row(r,
                      "SELECT s.blob_id, b.encoding, b.raw_len, b.stored_len, s.sha256, s.kind, "
                      "s.start_ms, s.content_type, s.status, s.dropped, t.job, t.instance"
                      " FROM snapshots s JOIN targets t ON t.id = s.target_id"
                      " LEFT JOIN blobs b ON b.id = s.blob_id WHERE s.id = ?1",
                      id, &q, err);
    if (rc < 0)
        goto fail;
    const char *status = (const char *)sqlite3_column_text(q, 8);
    if (sqlite3_column_type(q, 0) == SQLITE_NULL || sqlite3_column_type(q, 2) == SQLITE_NULL) {
        const char *why = (const char *)sqlite3_column_text(q, 9);
        rc = cd_err_set(err, -ENOENT, "snapshot %" PRId64 " has no raw bytes (%s)", id,
                        why != NULL      ? why
                        : status != NULL ? status
                                         : "none");
        goto fail;
    }
    int64_t raw_len = sqlite3_column_int64(q, 2), stored_len = sqlite3_column_int64(q, 3);
    if (raw_len < 0 || stored_len < 0 || (uint64_t)raw_len > SIZE_MAX / 2) {
        rc = cd_err_set(err, -EBADMSG, "store '%s': snapshot %" PRId64 ": bad sizes", r->st->path,
                        id);
        goto fail;
    }
    if (max_len > 0 && (size_t)raw_len > max_len) {
        rc = cd_err_set(err, -EFBIG, "snapshot %" PRId64 " has %" PRId64 " bytes, over %zu", id,
                        raw_len, max_len);
        goto fail;
    }
    rc = read_blob(r, sqlite3_column_int64(q, 0), sqlite3_column_int(q, 1), (size_t)raw_len,
                   (size_t)stored_len, &res.data, err);
    if (rc < 0)
        goto fail;
    res.len = (size_t)raw_len;
    if (sqlite3_column_bytes(q, 4) == CD_HASH_SHA256_LEN)
        cd_hash_hex(sqlite3_column_blob(q, 4), CD_HASH_SHA256_LEN, res.sha256);
    const char *kind = (const char *)sqlite3_column_text(q, 5);
    const char *ctype = (const char *)sqlite3_column_text(q, 7);
    const struct cd_kind_info *ki = cd_kind_lookup(kind != NULL ? kind : "");
    if (ctype == NULL || ctype[0] == '\0')
        ctype = ki != NULL ? ki->content_type : "application/octet-stream";
    res.content_type = cd_str_dup(ctype);
    res.filename = raw_filename(
        (const char *)sqlite3_column_text(q, 10), (const char *)sqlite3_column_text(q, 11), kind,
        sqlite3_column_int64(q, 6), file_ext(kind != NULL ? kind : "", status, res.data, res.len));
    if (res.content_type == NULL || res.filename == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, q);
    rend(r);
    *out = res;
    return 0;
fail:
    rrelease(r, q);
    rend(r);
    cd_store_raw_free(&res);
    return rc;
}

/* ---- targets --------------------------------------------------------------------------------- */

int cd_store_targets(struct cd_store_reader *r, json_t **out, struct cd_err *err)
{
    sqlite3_stmt *q = NULL;
    json_t *byid = json_object(), *list = json_array();
    int rc = 0;
    if (byid == NULL || list == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rc = rbegin(r, err);
    if (rc < 0)
        goto fail;
    rc = rprepare(r,
                  "SELECT id, job, scheme, address, instance, labels, first_seen_ms, "
                  "last_seen_ms FROM targets ORDER BY job, address, scheme",
                  &q, err);
    if (rc < 0)
        goto fail;
    static const struct jcol target_cols[] = {
        {"id", J_INT},        {"job", J_TEXT},    {"scheme", J_TEXT},       {"address", J_TEXT},
        {"instance", J_TEXT}, {"labels", J_JSON}, {"first_seen_ms", J_INT}, {"last_seen_ms", J_INT},
    };
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *t = json_object();
        int bad = jcols(t, q, target_cols, sizeof(target_cols) / sizeof(target_cols[0]));
        bad |= jset(t, "snapshots", json_integer(0));
        bad |= jset(t, "bytes", json_integer(0));
        bad |= jset(t, "kinds", json_object());
        char key[32];
        snprintf(key, sizeof(key), "%" PRId64, (int64_t)sqlite3_column_int64(q, 0));
        if (!bad)
            bad |= json_object_set(byid, key, t) != 0;
        if (bad || jappend(list, t) < 0) {
            if (bad)
                json_decref(t);
            rc = cd_err_set(err, -ENOMEM, "store: out of memory");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = rfail(r, rc, "read targets", err);
        goto fail;
    }
    rrelease(r, q);
    q = NULL;
    rc = rprepare(r,
                  "SELECT target_id, kind, snapshots, bytes, first_ms, last_ms, last_id, "
                  "last_status FROM target_kinds",
                  &q, err);
    if (rc < 0)
        goto fail;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char key[32];
        snprintf(key, sizeof(key), "%" PRId64, (int64_t)sqlite3_column_int64(q, 0));
        json_t *t = json_object_get(byid, key);
        if (t == NULL)
            continue;
        static const struct jcol kind_cols[] = {
            {NULL, J_SKIP},   {NULL, J_SKIP},      {"snapshots", J_INT},
            {"bytes", J_INT}, {"first_ms", J_INT}, {"last_ms", J_INT},
        };
        json_t *k = json_object();
        int bad = jcols(k, q, kind_cols, sizeof(kind_cols) / sizeof(kind_cols[0]));
        bad |= jset(k, "last",
                    json_pack("{sIsIso}", "id", (json_int_t)sqlite3_column_int64(q, 6), "start_ms",
                              (json_int_t)sqlite3_column_int64(q, 5), "status", jcol_text(q, 7)));
        const char *kind = (const char *)sqlite3_column_text(q, 1);
        bad |= jset(json_object_get(t, "kinds"), kind != NULL ? kind : "", k);
        json_t *tn = json_object_get(t, "snapshots"), *tb = json_object_get(t, "bytes");
        json_integer_set(tn, json_integer_value(tn) + sqlite3_column_int64(q, 2));
        json_integer_set(tb, json_integer_value(tb) + sqlite3_column_int64(q, 3));
        if (bad) {
            rc = cd_err_set(err, -ENOMEM, "store: out of memory");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = rfail(r, rc, "read target figures", err);
        goto fail;
    }
    rrelease(r, q);
    rend(r);
    json_decref(byid);
    *out = list;
    return 0;
fail:
    rrelease(r, q);
    rend(r);
    json_decref(byid);
    json_decref(list);
    return rc;
}

/* ---- series ---------------------------------------------------------------------------------- */

int cd_store_series(struct cd_store_reader *r, const struct cd_store_query *q, const char *name,
                    int limit, json_t **out, struct cd_err *err)
{
    if (name == NULL || name[0] == '\0')
        return cd_err_set(err, -EINVAL, "series: a name is required");
    if (limit == 0)
        limit = CD_STORE_SERIES_DEFAULT;
    if (limit < 1 || limit > CD_STORE_SERIES_MAX)
        return cd_err_set(err, -EINVAL, "limit %d: must be 1..%d", limit, CD_STORE_SERIES_MAX);
    struct tset *ts = malloc(sizeof(*ts));
    sqlite3_stmt *tq = NULL, *pq = NULL;
    json_t *res = json_object(), *list = json_array();
    struct sqlq b;
    sqlq_init(&b);
    bool truncated = false;
    int rc = 0;
    if (ts == NULL || res == NULL || list == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rc = rbegin(r, err);
    if (rc < 0)
        goto fail;
    int64_t nid = 0;
    rc = lookup_id(r, "SELECT id FROM series_names WHERE name = ?1", name, &nid, err);
    if (rc < 0)
        goto fail;
    rc = resolve_targets(r, q, ts, err);
    if (rc < 0)
        goto fail;
    if (nid != 0 && !(ts->mode == TSEL_LIST && ts->n == 0)) {
        sqlq_add(&b, "SELECT id, job, scheme, address, instance FROM targets t WHERE 1");
        sqlq_targets(&b, ts, q, "t.id");
        sqlq_add(&b, " ORDER BY job, address, scheme");
        rc = sqlq_prepare(r, &b, &tq, err);
        if (rc < 0)
            goto fail;
        rc = rprepare(r,
                      "SELECT time_ms, value FROM series WHERE target_id = ?1 AND name_id = ?2 "
                      "AND time_ms >= ?3 AND time_ms < ?4 ORDER BY time_ms LIMIT ?5",
                      &pq, err);
        if (rc < 0)
            goto fail;
        int64_t left = limit;
        while (!truncated && (rc = sqlite3_step(tq)) == SQLITE_ROW) {
            sqlite3_reset(pq);
            sqlite3_bind_int64(pq, 1, sqlite3_column_int64(tq, 0));
            sqlite3_bind_int64(pq, 2, nid);
            sqlite3_bind_int64(pq, 3, q->since_ms > 0 ? q->since_ms : INT64_MIN);
            sqlite3_bind_int64(pq, 4, q->until_ms > 0 ? q->until_ms : INT64_MAX);
            sqlite3_bind_int64(pq, 5, left + 1);
            json_t *points = json_array();
            int prc = SQLITE_DONE;
            int bad = points == NULL;
            while (!bad && (prc = sqlite3_step(pq)) == SQLITE_ROW) {
                if (left == 0) {
                    truncated = true;
                    break;
                }
                json_t *pt = json_pack("[If]", (json_int_t)sqlite3_column_int64(pq, 0),
                                       sqlite3_column_double(pq, 1));
                bad |= jappend(points, pt) < 0;
                left--;
            }
            if (!bad && !truncated && prc != SQLITE_DONE) {
                json_decref(points);
                rc = rfail(r, prc, "read series", err);
                goto fail;
            }
            if (!bad && json_array_size(points) > 0) {
                static const struct jcol cols[] = {
                    {"target_id", J_INT}, {"job", J_TEXT},      {"scheme", J_TEXT},
                    {"address", J_TEXT},  {"instance", J_TEXT},
                };
                json_t *o = json_object();
                bad |= jcols(o, tq, cols, sizeof(cols) / sizeof(cols[0]));
                bad |= jset(o, "points", json_incref(points));
                bad |= jappend(list, o) < 0;
            }
            json_decref(points);
            if (bad) {
                rc = cd_err_set(err, -ENOMEM, "store: out of memory");
                goto fail;
            }
        }
        if (!truncated && rc != SQLITE_DONE) {
            rc = rfail(r, rc, "read targets", err);
            goto fail;
        }
    }
    rend(r);
    if (jset(res, "name", json_string(name)) < 0 ||
        jset(res, "truncated", json_boolean(truncated)) || jset(res, "series", list) < 0) {
        list = NULL;
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, tq);
    rrelease(r, pq);
    sqlq_free(&b);
    free(ts);
    *out = res;
    return 0;
fail:
    rend(r);
    rrelease(r, tq);
    rrelease(r, pq);
    sqlq_free(&b);
    free(ts);
    json_decref(list);
    json_decref(res);
    return rc;
}

/* ---- incidents ------------------------------------------------------------------------------- */

int cd_store_incidents(struct cd_store_reader *r, json_t **out, struct cd_err *err)
{
    sqlite3_stmt *q = NULL;
    json_t *list = json_array();
    if (list == NULL)
        return cd_err_set(err, -ENOMEM, "store: out of memory");
    int rc = rprepare(r,
                      "SELECT i.name, i.created_ms, count(s.id), total(s.stored_bytes), "
                      "min(s.start_ms), max(s.start_ms), total(s.raw_bytes), "
                      "count(DISTINCT s.target_id) FROM incidents i "
                      "LEFT JOIN incident_snapshots x ON x.incident_id = i.id "
                      "LEFT JOIN snapshots s ON s.id = x.snapshot_id "
                      "GROUP BY i.id ORDER BY i.created_ms DESC, i.id DESC",
                      &q, err);
    if (rc < 0)
        goto fail;
    static const struct jcol cols[] = {
        {"name", J_TEXT},     {"created_ms", J_INT},       {"snapshots", J_INT},
        {"bytes", J_INT},     {"first_ms", J_INT_OR_NULL}, {"last_ms", J_INT_OR_NULL},
        {"raw_bytes", J_INT}, {"targets", J_INT},
    };
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *o = json_object();
        int bad = jcols(o, q, cols, sizeof(cols) / sizeof(cols[0]));
        if (bad || jappend(list, o) < 0) {
            if (bad)
                json_decref(o);
            rc = cd_err_set(err, -ENOMEM, "store: out of memory");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = rfail(r, rc, "read incidents", err);
        goto fail;
    }
    rrelease(r, q);
    *out = list;
    return 0;
fail:
    rrelease(r, q);
    json_decref(list);
    return rc;
}

int cd_store_incident_snapshots(struct cd_store_reader *r, const char *name, json_t **out,
                                struct cd_err *err)
{
    sqlite3_stmt *q = NULL;
    json_t *res = json_object(), *rows = json_array();
    int rc = 0;
    if (res == NULL || rows == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rc = rbegin(r, err);
    if (rc < 0)
        goto fail;
    rc = rprepare(r, "SELECT id, created_ms FROM incidents WHERE name = ?1", &q, err);
    if (rc < 0)
        goto fail;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        rc = cd_err_set(err, -ENOENT, "no incident '%s'", name);
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        rc = rfail(r, rc, "read an incident", err);
        goto fail;
    }
    int64_t iid = sqlite3_column_int64(q, 0);
    int bad = jset(res, "name", jstr(name));
    bad |= jset(res, "created_ms", jcol_int(q, 1));
    rrelease(r, q);
    q = NULL;
    rc = rprepare(r,
                  "SELECT " SNAP_COLS " FROM incident_snapshots x JOIN snapshots s ON s.id = "
                  "x.snapshot_id JOIN targets t ON t.id = s.target_id WHERE x.incident_id = ?1 "
                  "ORDER BY s.start_ms, s.id",
                  &q, err);
    if (rc < 0)
        goto fail;
    sqlite3_bind_int64(q, 1, iid);
    size_t n = 0;
    rc = snap_rows(r, q, rows, INCIDENT_ROWS, &n, NULL, NULL, err);
    if (rc < 0)
        goto fail;
    bad |= jset(res, "truncated", json_boolean(n > INCIDENT_ROWS));
    bad |= jset(res, "snapshots", rows);
    rows = NULL;
    if (bad) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rrelease(r, q);
    rend(r);
    *out = res;
    return 0;
fail:
    rrelease(r, q);
    rend(r);
    json_decref(rows);
    json_decref(res);
    return rc;
}

/* ---- stats ----------------------------------------------------------------------------------- */

static json_t *policy_json(const struct cd_retention_policy *p)
{
    json_t *tiers = json_array();
    for (size_t i = 0; tiers != NULL && i < p->n_tiers; i++)
        jappend(tiers, json_pack("{sIsI}", "after_ms", (json_int_t)p->tiers[i].after_ms,
                                 "keep_one_per_ms", (json_int_t)p->tiers[i].keep_one_per_ms));
    return json_pack("{sIsIsIsosIsI}", "max_age_ms", (json_int_t)p->max_age_ms, "max_bytes",
                     (json_int_t)p->max_bytes, "max_snapshots_per_target",
                     (json_int_t)p->max_snapshots_per_target, "downsample", tiers, "interval_ms",
                     (json_int_t)p->interval_ms, "chunk", (json_int_t)p->chunk);
}

static int64_t file_size(const char *path, const char *suffix)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s%s", path, suffix);
    struct stat sb;
    return stat(buf, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

int cd_store_stats(struct cd_store_reader *r, json_t **out, struct cd_err *err)
{
    struct cd_store *st = r->st;
    sqlite3_stmt *q = NULL;
    json_t *res = json_object(), *by_status = json_object();
    int rc = 0;
    if (res == NULL || by_status == NULL) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    rc = rbegin(r, err);
    if (rc < 0)
        goto fail;
    int64_t page_size = 0, pages = 0, freelist = 0, version = 0, targets = 0, incidents = 0;
    int64_t blobs = 0, blob_bytes = 0, blob_raw = 0, total = 0, pinned = 0, oldest = 0, newest = 0;
    struct {
        const char *sql;
        int64_t *v;
    } ones[] = {
        {"PRAGMA page_size", &page_size},
        {"PRAGMA page_count", &pages},
        {"PRAGMA freelist_count", &freelist},
        {"PRAGMA user_version", &version},
        {"SELECT count(*) FROM targets", &targets},
        {"SELECT count(*) FROM incidents", &incidents},
        {"SELECT blobs FROM blob_totals", &blobs},
        {"SELECT stored_bytes FROM blob_totals", &blob_bytes},
        {"SELECT raw_bytes FROM blob_totals", &blob_raw},
        /* Index walks: snapshots_protected (partial) and snapshots_by_time. */
        {"SELECT count(*) FROM snapshots WHERE pinned <> 0 OR incidents > 0", &pinned},
        {"SELECT min(start_ms) FROM snapshots", &oldest},
        {"SELECT max(start_ms) FROM snapshots", &newest},
    };
    for (size_t i = 0; i < sizeof(ones) / sizeof(ones[0]); i++) {
        rc = query_i64(r->db, st->path, ones[i].sql, ones[i].v, err);
        if (rc < 0)
            goto fail;
    }
    rc = rprepare(r, "SELECT status, snapshots, bytes FROM status_counts WHERE snapshots > 0", &q,
                  err);
    if (rc < 0)
        goto fail;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        total += sqlite3_column_int64(q, 1);
        if (jset(by_status, name != NULL ? name : "",
                 json_pack("{sIsI}", "snapshots", (json_int_t)sqlite3_column_int64(q, 1), "bytes",
                           (json_int_t)sqlite3_column_int64(q, 2))) < 0) {
            rc = cd_err_set(err, -ENOMEM, "store: out of memory");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        rc = rfail(r, rc, "read status counts", err);
        goto fail;
    }
    rrelease(r, q);
    q = NULL;
    rend(r);

    pthread_mutex_lock(&st->mu);
    json_t *queue =
        json_pack("{sIsIsIsIsI}", "snapshots", (json_int_t)st->count, "bytes",
                  (json_int_t)st->held_bytes, "max_snapshots", (json_int_t)st->cap, "max_bytes",
                  (json_int_t)st->opts.queue_max_bytes, "rejected", (json_int_t)st->n_rejected);
    json_t *writer = json_pack(
        "{sIsIsIsIsIsbsoso}", "batches", (json_int_t)st->n_batches, "committed",
        (json_int_t)st->n_committed, "metadata_only", (json_int_t)st->n_meta_only, "failed",
        (json_int_t)st->n_failed, "bytes", (json_int_t)st->n_bytes, "disk_full", st->disk_full,
        "last_error", st->last_error[0] != '\0' ? jstr(st->last_error) : json_null(),
        "last_error_ms", st->last_error[0] != '\0' ? json_integer(st->last_error_ms) : json_null());
    json_t *last = st->have_report ? cd_retention_report_json(&st->last_report) : json_null();
    int64_t next_run = 0;
    if (st->opts.retention.interval_ms > 0 && cd_retention_policy_active(&st->opts.retention))
        next_run =
            cd_clock_wall_ms(st->clock) + (st->next_retention_mono - cd_clock_mono_ms(st->clock));
    pthread_mutex_unlock(&st->mu);
    json_t *retention = policy_json(&st->opts.retention);
    int bad = queue == NULL || writer == NULL || last == NULL || retention == NULL;
    if (!bad) {
        bad |= jset(retention, "last_run", json_incref(last));
        bad |= jset(retention, "next_run_ms", next_run > 0 ? json_integer(next_run) : json_null());
    }
    json_decref(last);
    bad |= jset(res, "path", json_string(st->path));
    bad |= jset(res, "file_bytes", json_integer(file_size(st->path, "")));
    bad |= jset(res, "wal_bytes", json_integer(file_size(st->path, "-wal")));
    bad |= jset(res, "page_size", json_integer(page_size));
    bad |= jset(res, "pages", json_integer(pages));
    bad |= jset(res, "freelist_pages", json_integer(freelist));
    bad |= jset(res, "schema_version", json_integer(version));
    bad |= jset(res, "snapshots", json_integer(total));
    bad |= jset(res, "pinned", json_integer(pinned));
    bad |= jset(res, "oldest_ms", oldest > 0 ? json_integer(oldest) : json_null());
    bad |= jset(res, "newest_ms", newest > 0 ? json_integer(newest) : json_null());
    bad |= jset(res, "by_status", by_status);
    by_status = NULL;
    bad |= jset(res, "targets", json_integer(targets));
    bad |= jset(res, "incidents", json_integer(incidents));
    bad |= jset(res, "blobs", json_integer(blobs));
    bad |= jset(res, "blob_bytes", json_integer(blob_bytes));
    bad |= jset(res, "blob_raw_bytes", json_integer(blob_raw));
    bad |= jset(res, "queue", queue);
    bad |= jset(res, "writer", writer);
    bad |= jset(res, "retention", retention);
    if (bad) {
        rc = cd_err_set(err, -ENOMEM, "store: out of memory");
        goto fail;
    }
    *out = res;
    return 0;
fail:
    rrelease(r, q);
    rend(r);
    json_decref(by_status);
    json_decref(res);
    return rc;
}
