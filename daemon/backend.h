/*
 * backend — the query API's backend (struct cd_api_backend) on top of the daemon's parts: the
 * store's read-only connections for listings, snapshots, raw bytes, series and incidents; the
 * store writer for pins and retention runs; the scrape engine for target health, metrics and
 * "capture now". It adapts their output to the shapes of include/collectord/api.h. Target health
 * is the engine's, except that a kind whose newest stored snapshot is that same scrape found
 * invalid by the parser reports "invalid" (and the target's last_error says why): the engine
 * hands complete answers over before they are parsed, so only the store knows.
 *
 * Threads: every cd_api_backend function runs on a query-server thread and may block on SQLite
 * (read-only connections from the store's pool) or on the store writer (pin, retention: with a
 * deadline), never on the loop; a capture is queued to the loop (cd_scrape_capture is
 * thread-safe) and completed from the store writer thread once its snapshots are committed.
 * Owns: its counters and copies of the strings it reports; not the parts it talks to.
 */
#ifndef CD_BACKEND_H
#define CD_BACKEND_H

#include "api.h"
#include "err.h"
#include "ingest.h"
#include "retention.h"
#include "scrape.h"
#include "store.h"
#include "worker.h"

#include <stdint.h>

struct cd_backend_deps {
    struct cd_store *store;
    struct cd_scrape *scrape;
    struct cd_ingest *ingest;
    struct cd_worker *worker;
    const struct cd_clock *clock; /* NULL: real */
    int64_t started_ms;           /* wall ms the daemon started */
    int writer_timeout_ms;        /* pins and retention runs wait this long (default 30 s) */
    size_t parse_queue_capacity;  /* the worker pool's max_jobs, for /status and /metrics */
};

struct cd_backend;

int cd_backend_new(const struct cd_backend_deps *deps, struct cd_backend **out, struct cd_err *err);
void cd_backend_free(struct cd_backend *b);

/* The function table for cd_api_start (ctx = b). */
void cd_backend_api(struct cd_backend *b, struct cd_api_backend *out);

/* Any thread: the config file in force and when it was loaded (start and every reload). */
int cd_backend_set_config(struct cd_backend *b, const char *file, int64_t loaded_ms);
/* Any thread: a retention run finished (totals for /metrics, last run for /status). */
void cd_backend_note_retention(struct cd_backend *b, const struct cd_retention_report *rep);

#endif
