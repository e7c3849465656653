/*
 * retention — what collectord deletes to keep its history bounded, and the deleting itself.
 *
 * Policies (all optional, combined): max_age, max_snapshots_per_target (per target AND kind),
 * tiered downsampling, and max_bytes for the whole database (oldest first). Pinned snapshots and
 * snapshots in an incident are never deleted by any policy. A run works in small chunks (one
 * short write transaction each, cd_retention_opts.chunk snapshots at most) and calls back between
 * chunks so the store writer can commit waiting snapshots; at the end it hands freed pages back to
 * the filesystem (incremental vacuum). A dry run walks the same way and reports what it would
 * delete without deleting anything.
 *
 * Runs on the store's writer thread, on the writer's connection; owns its prepared statements and
 * two TEMP tables (what a dry run would delete). Not thread-safe.
 */
#ifndef CD_RETENTION_H
#define CD_RETENTION_H

#include "err.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CD_RETENTION_MAX_TIERS 8

/* Older than `after_ms`, keep per target and kind only the snapshot nearest each multiple of
 * `keep_one_per_ms` (Unix time). Only whole periods older than `after_ms` are thinned, so a
 * period is decided once, with all its snapshots present. */
struct cd_retention_tier {
    int64_t after_ms;
    int64_t keep_one_per_ms;
};

/* Filled by the config module from storage.retention; zero means "no such limit". */
struct cd_retention_policy {
    int64_t max_age_ms;                /* delete snapshots that started longer ago than this */
    uint64_t max_bytes;                /* whole database file (used pages); oldest deleted first */
    uint64_t max_snapshots_per_target; /* per target and kind: keep the newest N */
    struct cd_retention_tier tiers[CD_RETENTION_MAX_TIERS];
    size_t n_tiers;
    int64_t interval_ms; /* how often the writer runs it (default 5 min); 0 = only on demand */
    size_t chunk;        /* snapshots deleted per transaction (default 256, 1..10000) */
};

/* No limits, interval 5 minutes, chunk 256. */
void cd_retention_policy_default(struct cd_retention_policy *p);
/* Tiers: 1..CD_RETENTION_MAX_TIERS, after_ms > 0 and distinct, keep_one_per_ms > 0. Limits
 * non-negative. -EINVAL with a message naming the field. */
int cd_retention_policy_validate(const struct cd_retention_policy *p, struct cd_err *err);
/* Whether any limit is set (otherwise a run has nothing to do). */
bool cd_retention_policy_active(const struct cd_retention_policy *p);

struct cd_retention_count {
    uint64_t snapshots;
    uint64_t bytes; /* stored bytes of their blobs (a shared blob counted per snapshot) */
};

/* What one run deleted (or, dry, would delete). Kept by the store for its status API. */
struct cd_retention_report {
    int64_t started_ms; /* wall clock */
    int64_t duration_ms;
    bool dry_run;
    bool complete;        /* every policy ran to its end (false after an error) */
    bool max_bytes_unmet; /* still above max_bytes: everything left is pinned or in incidents */
    struct cd_retention_count max_age;
    struct cd_retention_count max_snapshots;
    struct cd_retention_count downsample;
    struct cd_retention_count max_bytes;
    uint64_t blobs_deleted;    /* blobs no snapshot referenced any more */
    uint64_t blob_bytes_freed; /* their stored bytes */
    uint64_t pages_vacuumed;   /* pages handed back to the filesystem */
    uint64_t chunks;           /* write transactions (dry: chunks walked) */
    uint64_t db_bytes_before;  /* used pages x page size */
    uint64_t db_bytes_after;   /* dry run: an estimate */
    int rc;
    char error[CD_ERR_MSG_MAX];
};

/* A JSON object with every field above ("error" only when set); NULL on allocation failure. */
json_t *cd_retention_report_json(const struct cd_retention_report *r);

/* Called between chunks, outside any transaction: the writer commits waiting snapshots there.
 * Returning false stops the run there (rc -ECANCELED): the store is closing. */
typedef bool (*cd_retention_yield_fn)(void *ctx);

struct cd_retention;

/* Prepares statements on the writer's connection `db` (schema at the latest version). db_path is
 * for error messages. */
int cd_retention_new(sqlite3 *db, const char *db_path, struct cd_retention **out,
                     struct cd_err *err);
void cd_retention_free(struct cd_retention *r);

/*
 * One run at `now_ms` (wall clock): max_age, max_snapshots_per_target, downsampling (coarsest
 * tier first), then max_bytes, then incremental vacuum. Fills *rep whatever happens (rep->rc,
 * rep->error); returns rep->rc. A failed chunk is rolled back; what earlier chunks deleted stays
 * deleted. `yield` may be NULL.
 */
int cd_retention_run(struct cd_retention *r, const struct cd_retention_policy *p, int64_t now_ms,
                     bool dry_run, cd_retention_yield_fn yield, void *yield_ctx,
                     struct cd_retention_report *rep, struct cd_err *err);

#endif
