/*
 * retention — see retention.h. Every policy walks candidates in a fixed order with a cursor
 * (start_ms, id), collects up to `chunk` of them, and deletes them in one short transaction
 * ("dooms" them: a dry run records them in TEMP tables instead, and every candidate query skips
 * what is recorded there, so a dry run sees what a real run would have left). Writer thread only.
 */
#include "retention.h"

#include "store.h"
#include "str.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_DEFAULT    256
#define CHUNK_MAX        10000
#define ROW_OVERHEAD     256 /* metadata, summary and index bytes a snapshot frees, roughly */
#define INTERVAL_DEFAULT (5 * 60 * 1000)

void cd_retention_policy_default(struct cd_retention_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->interval_ms = INTERVAL_DEFAULT;
    p->chunk = CHUNK_DEFAULT;
}

int cd_retention_policy_validate(const struct cd_retention_policy *p, struct cd_err *err)
{
    if (p->max_age_ms < 0)
        return cd_err_set(err, -EINVAL, "retention: max_age must not be negative");
    if (p->interval_ms < 0)
        return cd_err_set(err, -EINVAL, "retention: interval must not be negative");
    if (p->chunk > CHUNK_MAX)
        return cd_err_set(err, -EINVAL, "retention: chunk %zu: at most %d", p->chunk, CHUNK_MAX);
    if (p->n_tiers > CD_RETENTION_MAX_TIERS)
        return cd_err_set(err, -EINVAL, "retention: downsample: at most %d tiers",
                          CD_RETENTION_MAX_TIERS);
    for (size_t i = 0; i < p->n_tiers; i++) {
        const struct cd_retention_tier *t = &p->tiers[i];
        if (t->after_ms <= 0)
            return cd_err_set(err, -EINVAL, "retention: downsample[%zu]: after must be > 0", i);
        if (t->keep_one_per_ms <= 0)
            return cd_err_set(err, -EINVAL, "retention: downsample[%zu]: keep_one_per must be > 0",
                              i);
        for (size_t j = 0; j < i; j++) {
            if (p->tiers[j].after_ms == t->after_ms)
                return cd_err_set(err, -EINVAL,
                                  "retention: downsample[%zu] and [%zu] have the same after", j, i);
        }
    }
    return 0;
}

bool cd_retention_policy_active(const struct cd_retention_policy *p)
{
    return p->max_age_ms > 0 || p->max_bytes > 0 || p->max_snapshots_per_target > 0 ||
           p->n_tiers > 0;
}

static json_t *count_json(const struct cd_retention_count *c)
{
    return json_pack("{sIsI}", "snapshots", (json_int_t)c->snapshots, "bytes",
                     (json_int_t)c->bytes);
}

json_t *cd_retention_report_json(const struct cd_retention_report *r)
{
    json_t *o = json_pack(
        "{sIsIsbsbsbsososososIsIsIsIsIsI}", "started_ms", (json_int_t)r->started_ms, "duration_ms",
        (json_int_t)r->duration_ms, "dry_run", r->dry_run, "complete", r->complete,
        "max_bytes_unmet", r->max_bytes_unmet, "max_age", count_json(&r->max_age), "max_snapshots",
        count_json(&r->max_snapshots), "downsample", count_json(&r->downsample), "max_bytes",
        count_json(&r->max_bytes), "blobs_deleted", (json_int_t)r->blobs_deleted,
        "blob_bytes_freed", (json_int_t)r->blob_bytes_freed, "pages_vacuumed",
        (json_int_t)r->pages_vacuumed, "chunks", (json_int_t)r->chunks, "db_bytes_before",
        (json_int_t)r->db_bytes_before, "db_bytes_after", (json_int_t)r->db_bytes_after);
    if (o == NULL)
        return NULL;
    uint64_t n = r->max_age.snapshots + r->max_snapshots.snapshots + r->downsample.snapshots +
                 r->max_bytes.snapshots;
    if (json_object_set_new(o, "snapshots", json_integer((json_int_t)n)) != 0 ||
        (r->error[0] != '\0' && json_object_set_new(o, "error", json_string(r->error)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- statements ------------------------------------------------------------------------------ */

enum rstmt {
    R_BEGIN_WRITE,
    R_BEGIN_DRY,
    R_COMMIT,
    R_ROLLBACK,
    R_AGE,
    R_PAIRS,
    R_NTH,
    R_OLDER,
    R_BUCKETS,
    R_OLDEST,
    R_INFO,
    R_DEL_SERIES,
    R_DEL_SUMMARY,
    R_DEL_SNAP,
    R_DOOM,
    R_BLOB_ORPHAN,
    R_DEL_BLOB,
    R_DOOM_BLOB,
    R_CLEAR,
    R_CLEAR_BLOBS,
    R_PAGE_SIZE,
    R_PAGE_COUNT,
    R_FREELIST,
    R_VACUUM,
    R_CHECKPOINT,
    R_COUNT
};

static const char *const rsql[R_COUNT] = {
    [R_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    /* a dry run only writes its TEMP tables: no lock on the database */
    [R_BEGIN_DRY] = "BEGIN",
    [R_COMMIT] = "COMMIT",
    [R_ROLLBACK] = "ROLLBACK",
    [R_AGE] =
        "SELECT id, start_ms FROM snapshots WHERE start_ms < ?1 AND (start_ms, id) > (?2, ?3) "
        "AND pinned = 0 AND incidents = 0 AND id NOT IN temp.cd_doomed "
        "ORDER BY start_ms, id LIMIT ?4",
    [R_PAIRS] = "SELECT target_id, kind FROM target_kinds WHERE snapshots > ?1 "
                "ORDER BY target_id, kind",
    [R_NTH] = "SELECT start_ms, id FROM snapshots WHERE target_id = ?1 AND kind = ?2 "
              "AND id NOT IN temp.cd_doomed ORDER BY start_ms DESC, id DESC LIMIT 1 OFFSET ?3",
    [R_OLDER] = "SELECT id, start_ms FROM snapshots WHERE target_id = ?1 AND kind = ?2 "
                "AND (start_ms, id) <= (?3, ?4) AND (start_ms, id) > (?5, ?6) AND pinned = 0 "
                "AND incidents = 0 AND id NOT IN temp.cd_doomed ORDER BY start_ms, id LIMIT ?7",
    [R_BUCKETS] = "SELECT id, start_ms, pinned <> 0 OR incidents > 0 FROM snapshots "
                  "WHERE target_id = ?1 AND kind = ?2 AND start_ms >= ?3 AND start_ms < ?4 "
                  "AND id NOT IN temp.cd_doomed ORDER BY start_ms, id",
    [R_OLDEST] = "SELECT id, start_ms, stored_bytes FROM snapshots WHERE (start_ms, id) > (?1, ?2) "
                 "AND pinned = 0 AND incidents = 0 AND id NOT IN temp.cd_doomed "
                 "ORDER BY start_ms, id LIMIT ?3",
    [R_INFO] = "SELECT blob_id, stored_bytes FROM snapshots WHERE id = ?1",
    [R_DEL_SERIES] = "DELETE FROM series WHERE snapshot_id = ?1",
    [R_DEL_SUMMARY] = "DELETE FROM summaries WHERE snapshot_id = ?1",
    [R_DEL_SNAP] = "DELETE FROM snapshots WHERE id = ?1",
    [R_DOOM] = "INSERT OR IGNORE INTO temp.cd_doomed (id) VALUES (?1)",
    [R_BLOB_ORPHAN] = "SELECT stored_len FROM blobs WHERE id = ?1 AND id NOT IN "
                      "temp.cd_doomed_blobs AND NOT EXISTS (SELECT 1 FROM snapshots WHERE "
                      "blob_id = ?1 AND id NOT IN temp.cd_doomed)",
    [R_DEL_BLOB] = "DELETE FROM blobs WHERE id = ?1",
    [R_DOOM_BLOB] = "INSERT OR IGNORE INTO temp.cd_doomed_blobs (id) VALUES (?1)",
    [R_CLEAR] = "DELETE FROM temp.cd_doomed",
    [R_CLEAR_BLOBS] = "DELETE FROM temp.cd_doomed_blobs",
    [R_PAGE_SIZE] = "PRAGMA page_size",
    [R_PAGE_COUNT] = "PRAGMA page_count",
    [R_FREELIST] = "PRAGMA freelist_count",
    [R_VACUUM] = "PRAGMA incremental_vacuum(4096)", /* pages per step */
    [R_CHECKPOINT] = "PRAGMA wal_checkpoint(PASSIVE)",
};

struct cd_retention {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *s[R_COUNT];
};

void cd_retention_free(struct cd_retention *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < R_COUNT; i++)
        sqlite3_finalize(r->s[i]);
    free(r->path);
    free(r);
}

int cd_retention_new(sqlite3 *db, const char *db_path, struct cd_retention **out,
                     struct cd_err *err)
{
    struct cd_retention *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return cd_err_set(err, -ENOMEM, "retention: out of memory");
    int rc = 0;
    r->db = db;
    r->path = cd_str_dup(db_path);
    if (r->path == NULL) {
        rc = cd_err_set(err, -ENOMEM, "retention: out of memory");
        goto fail;
    }
    int src = sqlite3_exec(db,
                           "CREATE TEMP TABLE IF NOT EXISTS cd_doomed (id INTEGER PRIMARY KEY); "
                           "CREATE TEMP TABLE IF NOT EXISTS cd_doomed_blobs "
                           "(id INTEGER PRIMARY KEY)",
                           NULL, NULL, NULL);
    if (src != SQLITE_OK) {
        rc = cd_store_sqlite_err(err, db, db_path, src, "retention: temp tables");
        goto fail;
    }
    for (int i = 0; i < R_COUNT; i++) {
        src = sqlite3_prepare_v3(db, rsql[i], -1, SQLITE_PREPARE_PERSISTENT, &r->s[i], NULL);
        if (src != SQLITE_OK) {
            rc = cd_store_sqlite_err(err, db, db_path, src, rsql[i]);
            goto fail;
        }
    }
    *out = r;
    return 0;
fail:
    cd_retention_free(r);
    return rc;
}

/* ---- one run --------------------------------------------------------------------------------- */

struct idvec {
    int64_t *v;
    size_t n, cap;
};

static int idvec_push(struct idvec *x, int64_t id)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        int64_t *v = realloc(x->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    x->v[x->n++] = id;
    return 0;
}

struct pair {
    int64_t target_id;
    char *kind;
};

/* The state of one run. */
struct run {
    struct cd_retention *r;
    const struct cd_retention_policy *p;
    bool dry;
    size_t chunk;
    cd_retention_yield_fn yield;
    void *yield_ctx;
    struct cd_retention_report *rep;
    struct cd_err *err;
    struct idvec pend;  /* candidates not yet deleted */
    uint64_t est_freed; /* dry run: what the dooming would have freed, roughly */
};

static int fail_sql(struct run *x, int rc, const char *what)
{
    return cd_store_sqlite_err(x->err, x->r->db, x->r->path, rc, what);
}

static int step_done(struct run *x, enum rstmt which, const char *what)
{
    sqlite3_stmt *q = x->r->s[which];
    int rc = sqlite3_step(q);
    int code = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        code = fail_sql(x, rc, what);
    sqlite3_reset(q);
    return code;
}

static int pragma_i64(struct run *x, enum rstmt which, int64_t *out)
{
    sqlite3_stmt *q = x->r->s[which];
    int rc = sqlite3_step(q);
    int code = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    else
        code = fail_sql(x, rc, rsql[which]);
    sqlite3_reset(q);
    return code;
}

static int used_bytes(struct run *x, uint64_t *out)
{
    int64_t size = 0, pages = 0, free_pages = 0;
    int rc = pragma_i64(x, R_PAGE_SIZE, &size);
    if (rc == 0)
        rc = pragma_i64(x, R_PAGE_COUNT, &pages);
    if (rc == 0)
        rc = pragma_i64(x, R_FREELIST, &free_pages);
    if (rc == 0)
        *out = (uint64_t)((pages - free_pages) * size);
    return rc;
}

/* Deletes (dry: records) one snapshot and its blob when nothing else references it. */
static int doom_one(struct run *x, int64_t id, struct cd_retention_count *count)
{
    sqlite3_stmt *q = x->r->s[R_INFO];
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? 0 : fail_sql(x, rc, "read a snapshot");
    }
    int64_t blob_id = sqlite3_column_int64(q, 0); /* 0 for NULL */
    int64_t stored = sqlite3_column_int64(q, 1);
    sqlite3_reset(q);
    static const enum rstmt real_steps[] = {R_DEL_SERIES, R_DEL_SUMMARY, R_DEL_SNAP};
    static const enum rstmt dry_steps[] = {R_DOOM};
    const enum rstmt *steps = x->dry ? dry_steps : real_steps;
    size_t n = x->dry ? 1 : 3;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(x->r->s[steps[i]], 1, id);
        rc = step_done(x, steps[i], "delete a snapshot");
        if (rc < 0)
            return rc;
    }
    count->snapshots++;
    count->bytes += (uint64_t)stored;
    x->est_freed += ROW_OVERHEAD;
    if (blob_id == 0)
        return 0;
    q = x->r->s[R_BLOB_ORPHAN];
    sqlite3_bind_int64(q, 1, blob_id);
    rc = sqlite3_step(q);
    int64_t len = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail_sql(x, rc, "check a blob");
    if (len < 0)
        return 0; /* still referenced */
    enum rstmt del = x->dry ? R_DOOM_BLOB : R_DEL_BLOB;
    sqlite3_bind_int64(x->r->s[del], 1, blob_id);
    rc = step_done(x, del, "delete a blob");
    if (rc < 0)
        return rc;
    x->rep->blobs_deleted++;
    x->rep->blob_bytes_freed += (uint64_t)len;
    x->est_freed += (uint64_t)len;
    return 0;
}

/* Between chunks: the writer's turn. */
static int breathe(struct run *x)
{
    if (x->yield != NULL && !x->yield(x->yield_ctx))
        return cd_err_set(x->err, -ECANCELED, "retention: stopped, the store is closing");
    return 0;
}

/* Deletes the pending candidates, at most `chunk` per transaction, letting the writer commit
 * waiting snapshots after each. */
static int flush(struct run *x, struct cd_retention_count *count)
{
    int rc = 0;
    size_t done = 0;
    while (done < x->pend.n) {
        size_t end = x->pend.n - done > x->chunk ? done + x->chunk : x->pend.n;
        rc = step_done(x, x->dry ? R_BEGIN_DRY : R_BEGIN_WRITE, "begin");
        if (rc < 0)
            break;
        for (size_t i = done; i < end && rc == 0; i++)
            rc = doom_one(x, x->pend.v[i], count);
        if (rc == 0)
            rc = step_done(x, R_COMMIT, "commit");
        if (rc < 0) {
            if (!sqlite3_get_autocommit(x->r->db))
                sqlite3_step(x->r->s[R_ROLLBACK]);
            sqlite3_reset(x->r->s[R_ROLLBACK]);
            break;
        }
        done = end;
        x->rep->chunks++;
        rc = breathe(x);
        if (rc < 0)
            break;
    }
    x->pend.n = 0;
    return rc;
}

static int push(struct run *x, int64_t id)
{
    if (idvec_push(&x->pend, id) < 0)
        return cd_err_set(x->err, -ENOMEM, "retention: out of memory");
    return 0;
}

/* Collects rows (id, start_ms) of a cursor query into pend; *got = rows seen. */
static int collect(struct run *x, sqlite3_stmt *q, int64_t *cur_ms, int64_t *cur_id, size_t *got)
{
    int rc;
    *got = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *cur_id = sqlite3_column_int64(q, 0);
        *cur_ms = sqlite3_column_int64(q, 1);
        (*got)++;
        if (push(x, *cur_id) < 0) {
            sqlite3_reset(q);
            return x->err->code;
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return fail_sql(x, rc, "find candidates");
    return 0;
}

static int run_max_age(struct run *x, int64_t now_ms)
{
    int64_t cutoff = now_ms - x->p->max_age_ms;
    int64_t cur_ms = INT64_MIN, cur_id = 0;
    for (;;) {
        sqlite3_stmt *q = x->r->s[R_AGE];
        sqlite3_bind_int64(q, 1, cutoff);
        sqlite3_bind_int64(q, 2, cur_ms);
        sqlite3_bind_int64(q, 3, cur_id);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)x->chunk);
        size_t got = 0;
        int rc = collect(x, q, &cur_ms, &cur_id, &got);
        if (rc == 0)
            rc = flush(x, &x->rep->max_age);
        if (rc < 0 || got < x->chunk)
            return rc;
    }
}

static void pairs_free(struct pair *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].kind);
    free(v);
}

/* The (target, kind) pairs holding more than min_count snapshots. */
static int load_pairs(struct run *x, uint64_t min_count, struct pair **out, size_t *n_out)
{
    struct pair *v = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *q = x->r->s[R_PAIRS];
    sqlite3_bind_int64(q, 1, (sqlite3_int64)min_count);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct pair *nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL)
                goto nomem;
            v = nv;
            cap = ncap;
        }
        v[n].target_id = sqlite3_column_int64(q, 0);
        v[n].kind = cd_str_dup((const char *)sqlite3_column_text(q, 1));
        if (v[n].kind == NULL)
            goto nomem;
        n++;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        pairs_free(v, n);
        return fail_sql(x, rc, "list targets and kinds");
    }
    *out = v;
    *n_out = n;
    return 0;
nomem:
    sqlite3_reset(q);
    pairs_free(v, n);
    return cd_err_set(x->err, -ENOMEM, "retention: out of memory");
}

static int run_max_snapshots(struct run *x)
{
    uint64_t keep = x->p->max_snapshots_per_target;
    struct pair *pairs = NULL;
    size_t n_pairs = 0;
    int rc = load_pairs(x, keep, &pairs, &n_pairs);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n_pairs && rc == 0; i++) {
        /* The newest `keep` stay; the (keep+1)-th newest and everything older are candidates. */
        sqlite3_stmt *q = x->r->s[R_NTH];
        sqlite3_bind_int64(q, 1, pairs[i].target_id);
        sqlite3_bind_text(q, 2, pairs[i].kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)keep);
        int src = sqlite3_step(q);
        int64_t b_ms = 0, b_id = 0;
        if (src == SQLITE_ROW) {
            b_ms = sqlite3_column_int64(q, 0);
            b_id = sqlite3_column_int64(q, 1);
        }
        sqlite3_reset(q);
        if (src == SQLITE_DONE)
            continue;
        if (src != SQLITE_ROW) {
            rc = fail_sql(x, src, "find the newest snapshots");
            break;
        }
        int64_t cur_ms = INT64_MIN, cur_id = 0;
        for (;;) {
            q = x->r->s[R_OLDER];
            sqlite3_bind_int64(q, 1, pairs[i].target_id);
            sqlite3_bind_text(q, 2, pairs[i].kind, -1, SQLITE_STATIC);
            sqlite3_bind_int64(q, 3, b_ms);
            sqlite3_bind_int64(q, 4, b_id);
            sqlite3_bind_int64(q, 5, cur_ms);
            sqlite3_bind_int64(q, 6, cur_id);
            sqlite3_bind_int64(q, 7, (sqlite3_int64)x->chunk);
            size_t got = 0;
            rc = collect(x, q, &cur_ms, &cur_id, &got);
            if (rc == 0 && x->pend.n >= x->chunk)
                rc = flush(x, &x->rep->max_snapshots);
            if (rc < 0 || got < x->chunk)
                break;
        }
    }
    if (rc == 0)
        rc = flush(x, &x->rep->max_snapshots);
    pairs_free(pairs, n_pairs);
    return rc;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/*
 * Thins one (target, kind) for one tier: buckets [k*P - P/2, (k+1)*P - P/2) entirely before
 * `hi`; in each, the snapshot nearest k*P stays (ties: the earlier), every other unprotected one
 * goes. Resumes at bucket edges when a chunk fills.
 */
static int thin_pair(struct run *x, const struct pair *pr, int64_t period, int64_t hi)
{
    int64_t half = period / 2;
    int64_t lo = INT64_MIN;
    struct idvec bucket = {0};
    int rc = 0;
    for (;;) {
        sqlite3_stmt *q = x->r->s[R_BUCKETS];
        sqlite3_bind_int64(q, 1, pr->target_id);
        sqlite3_bind_text(q, 2, pr->kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, lo);
        sqlite3_bind_int64(q, 4, hi);
        int64_t cur_k = 0, best_id = 0, best_d = 0;
        bool in_bucket = false, resume = false;
        bucket.n = 0;
        int src;
        while ((src = sqlite3_step(q)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(q, 0), t = sqlite3_column_int64(q, 1);
            bool prot = sqlite3_column_int(q, 2) != 0;
            int64_t k = floor_div(t + half, period);
            if (in_bucket && k != cur_k) {
                /* bucket cur_k is complete: all but its best go */
                for (size_t i = 0; i < bucket.n && rc == 0; i++) {
                    if (bucket.v[i] != best_id)
                        rc = push(x, bucket.v[i]);
                }
                bucket.n = 0;
                in_bucket = false;
                if (rc == 0 && x->pend.n >= x->chunk) {
                    lo = k * period - half;
                    resume = true;
                }
                if (rc < 0 || resume)
                    break;
            }
            int64_t d = abs64(t - k * period);
            if (!in_bucket || d < best_d) {
                best_id = id;
                best_d = d;
            }
            in_bucket = true;
            cur_k = k;
            /* protected snapshots may be the best, but are never deleted */
            if (!prot && idvec_push(&bucket, id) < 0) {
                rc = cd_err_set(x->err, -ENOMEM, "retention: out of memory");
                break;
            }
        }
        sqlite3_reset(q);
        if (rc == 0 && !resume && src != SQLITE_DONE)
            rc = fail_sql(x, src, "read snapshots to thin");
        if (rc == 0 && !resume && in_bucket) {
            for (size_t i = 0; i < bucket.n && rc == 0; i++) {
                if (bucket.v[i] != best_id)
                    rc = push(x, bucket.v[i]);
            }
        }
        if (rc == 0 && x->pend.n >= x->chunk)
            rc = flush(x, &x->rep->downsample);
        if (rc < 0 || !resume)
            break;
    }
    free(bucket.v);
    return rc;
}

static int run_downsample(struct run *x, int64_t now_ms)
{
    /* Coarsest (largest `after`) first: finer tiers then see what it left. */
    size_t order[CD_RETENTION_MAX_TIERS];
    size_t n = x->p->n_tiers;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i;
             j > 0 && x->p->tiers[order[j]].after_ms > x->p->tiers[order[j - 1]].after_ms; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    struct pair *pairs = NULL;
    size_t n_pairs = 0;
    int rc = load_pairs(x, 1, &pairs, &n_pairs);
    for (size_t ti = 0; ti < n && rc == 0; ti++) {
        const struct cd_retention_tier *t = &x->p->tiers[order[ti]];
        int64_t period = t->keep_one_per_ms, half = period / 2;
        int64_t hi = floor_div(now_ms - t->after_ms + half, period) * period - half;
        for (size_t i = 0; i < n_pairs && rc == 0; i++)
            rc = thin_pair(x, &pairs[i], period, hi);
        if (rc == 0)
            rc = flush(x, &x->rep->downsample);
    }
    pairs_free(pairs, n_pairs);
    return rc;
}

static int run_max_bytes(struct run *x, uint64_t used)
{
    uint64_t limit = x->p->max_bytes;
    int64_t cur_ms = INT64_MIN, cur_id = 0;
    while (used > limit) {
        uint64_t excess = used - limit, planned = 0;
        sqlite3_stmt *q = x->r->s[R_OLDEST];
        sqlite3_bind_int64(q, 1, cur_ms);
        sqlite3_bind_int64(q, 2, cur_id);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)x->chunk);
        int src = SQLITE_DONE;
        size_t got = 0;
        while (planned < excess && (src = sqlite3_step(q)) == SQLITE_ROW) {
            cur_id = sqlite3_column_int64(q, 0);
            cur_ms = sqlite3_column_int64(q, 1);
            planned += (uint64_t)sqlite3_column_int64(q, 2) + ROW_OVERHEAD;
            got++;
            if (push(x, cur_id) < 0) {
                sqlite3_reset(q);
                return x->err->code;
            }
        }
        sqlite3_reset(q);
        if (got == 0) {
            if (src != SQLITE_DONE)
                return fail_sql(x, src, "find the oldest snapshots");
            x->rep->max_bytes_unmet = true;
            return 0;
        }
        uint64_t before = x->est_freed;
        int rc = flush(x, &x->rep->max_bytes);
        if (rc < 0)
            return rc;
        if (x->dry) {
            uint64_t freed = x->est_freed - before;
            used = freed < used ? used - freed : 0;
        } else {
            rc = used_bytes(x, &used);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int vacuum(struct run *x)
{
    for (;;) {
        int64_t before = 0, after = 0;
        int rc = pragma_i64(x, R_FREELIST, &before);
        if (rc < 0 || before == 0)
            return rc;
        sqlite3_stmt *q = x->r->s[R_VACUUM];
        int src;
        while ((src = sqlite3_step(q)) == SQLITE_ROW)
            ;
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            return fail_sql(x, src, "incremental vacuum");
        rc = pragma_i64(x, R_FREELIST, &after);
        if (rc < 0)
            return rc;
        if (after >= before)
            return 0;
        x->rep->pages_vacuumed += (uint64_t)(before - after);
        rc = breathe(x);
        if (rc < 0)
            return rc;
    }
}

int cd_retention_run(struct cd_retention *r, const struct cd_retention_policy *p, int64_t now_ms,
                     bool dry_run, cd_retention_yield_fn yield, void *yield_ctx,
                     struct cd_retention_report *rep, struct cd_err *err)
{
    struct cd_err local;
    cd_err_init(&local);
    if (err == NULL)
        err = &local;
    memset(rep, 0, sizeof(*rep));
    rep->started_ms = now_ms;
    rep->dry_run = dry_run;
    int64_t t0 = cd_clock_now_mono_ms();
    struct run x = {
        r, p, dry_run, p->chunk > 0 ? p->chunk : CHUNK_DEFAULT, yield, yield_ctx, rep, err, {0}, 0};
    int rc = step_done(&x, R_CLEAR, "clear the dry-run table");
    if (rc == 0)
        rc = step_done(&x, R_CLEAR_BLOBS, "clear the dry-run table");
    uint64_t used = 0;
    if (rc == 0)
        rc = used_bytes(&x, &used);
    rep->db_bytes_before = used;
    if (rc == 0 && p->max_age_ms > 0)
        rc = run_max_age(&x, now_ms);
    if (rc == 0 && p->max_snapshots_per_target > 0)
        rc = run_max_snapshots(&x);
    if (rc == 0 && p->n_tiers > 0)
        rc = run_downsample(&x, now_ms);
    if (rc == 0 && p->max_bytes > 0) {
        if (dry_run)
            used = x.est_freed < used ? used - x.est_freed : 0;
        else
            rc = used_bytes(&x, &used);
        if (rc == 0)
            rc = run_max_bytes(&x, used);
    }
    if (rc == 0 && !dry_run) {
        rc = vacuum(&x);
        if (rc == 0 && rep->pages_vacuumed > 0) {
            /* Hand the truncated file back now, not at the next automatic checkpoint; PASSIVE
             * never waits for readers. */
            rc = step_done(&x, R_CHECKPOINT, "checkpoint");
        }
    }
    if (rc == 0 && !dry_run)
        rc = used_bytes(&x, &rep->db_bytes_after);
    else if (rc == 0)
        rep->db_bytes_after =
            x.est_freed < rep->db_bytes_before ? rep->db_bytes_before - x.est_freed : 0;
    /* A dry run leaves nothing behind. */
    step_done(&x, R_CLEAR, "clear the dry-run table");
    step_done(&x, R_CLEAR_BLOBS, "clear the dry-run table");
    free(x.pend.v);
    rep->duration_ms = cd_clock_now_mono_ms() - t0;
    rep->rc = rc;
    rep->complete = rc == 0;
    if (rc < 0)
        cd_str_copy(rep->error, cd_err_msg(err), sizeof(rep->error));
    return rc;
}
