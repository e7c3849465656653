/*
 * ingest — what happens to a scrape between the scrape engine and the store: on a worker
 * thread, summarize the raw bytes (inspect), prepare them for storage (hash, recompression) and
 * submit the snapshot to the store writer.
 *
 * Threads: cd_ingest_sink and cd_ingest_full are the scrape engine's sink (loop thread); the
 * work runs on the worker pool's threads; counters are atomics readable from any thread.
 * Owns: nothing but its counters; the worker pool and the store belong to the daemon, each
 * snapshot to whoever holds it (the pool job, then the store).
 */
#ifndef CD_INGEST_H
#define CD_INGEST_H

#include "err.h"
#include "snapshot.h"
#include "store.h"
#include "summary.h"
#include "worker.h"

#include <stdbool.h>
#include <stdint.h>

struct cd_ingest;

struct cd_ingest_stats {
    uint64_t received;       /* handed over by the scrape engine */
    uint64_t refused;        /* the worker queue was full (the engine counts them dropped) */
    uint64_t summarized;     /* parsed into a summary */
    uint64_t invalid;        /* complete answers that did not parse */
    uint64_t store_rejected; /* the store's queue was full: dropped */
    uint64_t cancelled;      /* discarded at shutdown */
};

/* Neither w nor st is owned; both must outlive the ingest. lim is copied. */
int cd_ingest_new(struct cd_worker *w, struct cd_store *st, const struct cd_parse_limits *lim,
                  struct cd_ingest **out, struct cd_err *err);
void cd_ingest_free(struct cd_ingest *in);
/* Any thread: limits for snapshots parsed from now on (config reload). */
void cd_ingest_set_limits(struct cd_ingest *in, const struct cd_parse_limits *lim);

/* The scrape engine's sink (cd_scrape_sink_fn): 0 took s, -EAGAIN the pool is full. */
int cd_ingest_sink(void *ctx, struct cd_snapshot *s);
/* cd_scrape_sink_full_fn: true when a new scrape's result would be refused. */
bool cd_ingest_full(void *ctx);

void cd_ingest_get_stats(struct cd_ingest *in, struct cd_ingest_stats *out);

/* The parse step alone (any thread): fills the summary, or turns an OK snapshot whose bytes do
 * not parse into INVALID with parse_error. Returns true when a summary was kept. */
bool cd_ingest_summarize(struct cd_snapshot *s, const struct cd_parse_limits *lim);

#endif
