/*
 * scrape — the scrape engine: takes resolved target sets, runs every (target, kind) on its own
 * schedule (scheduler), dispatches each scrape to the HTTP client (http) or the gops client (gops),
 * turns each finished scrape into a struct cd_snapshot and hands it to a sink (the ingest queue).
 *
 * Threads: everything runs on the libuv loop thread except cd_scrape_capture(),
 * cd_scrape_health() and cd_scrape_metrics(), which any thread may call (a capture is queued and
 * the loop woken with uv_async_send; health and metrics are copied under a mutex the loop holds
 * for microseconds while it updates them).
 *
 * Owns: the targets (taken over from each set), the scheduler, the HTTP client, every scrape in
 * flight and its snapshot until the sink takes it, the queued capture requests.
 *
 * Edges, decided here:
 *  - Body bytes: each scrape is cut at its target's max_body_bytes (too_large, nothing kept).
 *    Across all scrapes in flight, the bytes received so far are counted against
 *    max_inflight_bytes: once three quarters of it are in use no new scrape starts (due ones
 *    wait, and are counted as held when they start late), and a chunk that would pass the whole
 *    budget cuts the scrape that received it (too_large, "in-flight byte budget exhausted"). So
 *    bodies being received never hold more than max_inflight_bytes, whatever the concurrency.
 *  - Sink: 0 = it took the snapshot; -EAGAIN = full: the snapshot is freed and counted as
 *    dropped (a capture's done callback gets rc -EAGAIN first). When sink_full says the queue is
 *    full at start time, a scheduled scrape is skipped and counted (captures still run).
 *  - Reconciling a new set: same id and fingerprint = untouched; same id, new fingerprint = the
 *    target's kinds are updated in place (schedules kept where the interval is unchanged, scrapes
 *    in flight finish with the request they started with); removed targets stop scheduling and
 *    their scrapes in flight are allowed to finish and are delivered (bounded by their timeout),
 *    their health is dropped; new targets start at their hashed offset.
 *  - Stop: scheduling stops at once, queued captures are refused; scrapes in flight may finish
 *    until the deadline, then are cancelled. A cancelled scrape produces no snapshot (a capture's
 *    done callback gets rc -ECANCELED with a snapshot holding only metadata).
 *  - Events: a failing (target, kind) is reported once when it starts failing and when its error
 *    changes, then once as recovered (cd_complaint semantics), through on_event.
 */
#ifndef CD_SCRAPE_H
#define CD_SCRAPE_H

#include "clock.h"
#include "err.h"
#include "snapshot.h"
#include "target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cd_scrape;

/* 0: took ownership of s. -EAGAIN: full (the engine frees s and counts a drop). */
typedef int (*cd_scrape_sink_fn)(void *ctx, struct cd_snapshot *s);
/* Optional: true when the sink would refuse now (checked before a scheduled scrape starts). */
typedef bool (*cd_scrape_sink_full_fn)(void *ctx);
/* level is a syslog level (log.h CD_LOG_*); message without the target id. */
typedef void (*cd_scrape_event_fn)(void *ctx, int level, const char *target_id, const char *msg);
typedef void (*cd_scrape_stop_fn)(struct cd_scrape *sc, void *ctx);

struct cd_scrape_opts {
    const struct cd_clock *clock; /* NULL: the real clock */
    int max_concurrent;           /* default 256 (limits.max_concurrent_scrapes) */
    uint64_t max_inflight_bytes;  /* default 256 MiB */
    int64_t connect_timeout_ms;   /* default 5000 (capped by each kind's timeout) */
    int64_t backoff_max_ms;       /* default 300000 */
    long max_idle_connections;    /* HTTP connection cache, default 256 */
    size_t max_pending_captures;  /* queued capture requests, default 64 */
    const char *user_agent;       /* default "collectord/<version>" */
    cd_scrape_sink_fn sink;       /* NULL: snapshots are freed (counted as delivered) */
    cd_scrape_sink_full_fn sink_full;
    void *sink_ctx;
    cd_scrape_event_fn on_event;
    void *event_ctx;
};

int cd_scrape_new(uv_loop_t *loop, const struct cd_scrape_opts *opts, struct cd_scrape **out,
                  struct cd_err *err);

/* Loop thread. Takes ownership of the set's targets (the set is left empty; the caller still
 * frees it). Targets must have been through cd_target_finish(); duplicate ids keep the first. */
int cd_scrape_set_targets(struct cd_scrape *sc, struct cd_target_set *set, struct cd_err *err);

/* ---- capture now ------------------------------------------------------------------------- */

struct cd_capture_selector {
    const char *job;                /* NULL: any */
    const char *target;             /* target id or address; NULL: any */
    const struct cd_labels *labels; /* every label must be equal; NULL or empty: any */
};

struct cd_capture_item {
    const char *target_id;
    const char *kind;
    const char *reason; /* refused ones only */
};

struct cd_capture_report {
    int status; /* 0, or -ESHUTDOWN when the engine stopped before the request was looked at */
    const struct cd_capture_item *started;
    size_t n_started;
    const struct cd_capture_item *refused;
    size_t n_refused;
};

struct cd_capture_req {
    struct cd_capture_selector selector;
    const char *const *kinds; /* NULL/0: the defaults for each target's scheme (see below) */
    size_t n_kinds;
    const char *incident;     /* NULL: none; else set on every snapshot (pinned) */
    cd_snapshot_done_fn done; /* attached to every snapshot produced (the store calls it) */
    void *done_ctx;
    /* On the loop thread, once, with what was started and refused (valid during the call). */
    void (*on_report)(void *ctx, const struct cd_capture_report *r);
    void *report_ctx;
};

/*
 * Any thread: queues a copy of req and wakes the loop. Default kinds: pprof targets cpu, heap,
 * allocs, goroutine, goroutine_dump, mutex, block, trace; gops targets goroutine_dump, memstats,
 * stats, version, heap. Kinds a target does not schedule are requested with the built-in path
 * under the target's pprof base and the job's scrape timeout. Captures bypass intervals and
 * backoff but wait for a running scrape of the same kind and for the process's CPU/trace
 * singletons. -EAGAIN when max_pending_captures are queued, -ESHUTDOWN after stop, -ENOMEM.
 */
int cd_scrape_capture(struct cd_scrape *sc, const struct cd_capture_req *req);

/* ---- health and metrics (any thread) ------------------------------------------------------ */

struct cd_scrape_kind_health {
    char *kind;
    bool scheduled;
    int64_t interval_ms;
    int64_t last_ms; /* wall ms of the last finished scrape's start, 0 = never */
    int64_t last_duration_ms;
    int64_t last_size_bytes; /* bytes the last finished scrape kept (its size_bytes) */
    int seconds;             /* how long the target takes (CPU profile, trace); 0 = instant */
    char *last_status;       /* cd_snap_status_name, NULL = never */
    char *last_error;
    int consecutive_failures;
    int64_t next_ms; /* wall ms of the next slot, 0 = not scheduled */
};

struct cd_scrape_target_health {
    char *id, *job, *scheme, *address, *labels_json;
    const char *health; /* "up", "down", "unknown" (static) */
    char *last_error;
    int64_t last_error_ms;
    int64_t last_scrape_ms;
    int64_t last_duration_ms;
    int consecutive_failures;
    struct cd_scrape_kind_health *kinds;
    size_t n_kinds;
};

struct cd_scrape_health {
    struct cd_scrape_target_health *targets;
    size_t n;
};

int cd_scrape_health(struct cd_scrape *sc, struct cd_scrape_health **out);
void cd_scrape_health_free(struct cd_scrape_health *h);

#define CD_SCRAPE_DURATION_BUCKETS 11
#define CD_SCRAPE_LATENESS_BUCKETS 9
/* Upper bounds; the last bucket is +Inf. Counts are per bucket (not cumulative). */
extern const double cd_scrape_duration_bounds_s[CD_SCRAPE_DURATION_BUCKETS - 1];
extern const int64_t cd_scrape_lateness_bounds_ms[CD_SCRAPE_LATENESS_BUCKETS - 1];

struct cd_scrape_result_count {
    char *job;
    char *kind;
    const char *status; /* static */
    uint64_t count;
};

struct cd_scrape_metrics {
    struct cd_scrape_result_count *results;
    size_t n_results;
    uint64_t duration_counts[CD_SCRAPE_DURATION_BUCKETS];
    double duration_sum_s;
    uint64_t lateness_counts[CD_SCRAPE_LATENESS_BUCKETS]; /* scheduled scrapes only */
    int64_t lateness_sum_ms;
    uint64_t bytes_received;
    uint64_t started;
    uint64_t captures_started;
    uint64_t skipped_overlap;
    uint64_t skipped_concurrency;
    uint64_t skipped_exclusive; /* waited for the process's CPU/trace or the agent */
    uint64_t skipped_held;      /* waited for the byte budget */
    uint64_t skipped_queue_full;
    uint64_t dropped_queue_full; /* the sink refused a finished snapshot */
    uint64_t delivered;
    uint64_t cut_budget; /* scrapes cut by the in-flight byte budget */
    size_t inflight;
    uint64_t inflight_bytes;
    uint64_t inflight_bytes_peak;
    size_t targets;
};

int cd_scrape_metrics(struct cd_scrape *sc, struct cd_scrape_metrics **out);
void cd_scrape_metrics_free(struct cd_scrape_metrics *m);

/* ---- lifecycle --------------------------------------------------------------------------- */

/* Loop thread. See the module comment; cb fires on the loop thread once every handle is closed,
 * after which cd_scrape_free() may run. */
void cd_scrape_stop(struct cd_scrape *sc, int64_t deadline_ms, cd_scrape_stop_fn cb, void *ctx);
/* Loop thread. A stop in progress stops waiting: in-flight scrapes are cancelled now, as at the
 * deadline (an operator's second SIGTERM or Ctrl-C). No-op unless stopping. */
void cd_scrape_hurry(struct cd_scrape *sc);
void cd_scrape_free(struct cd_scrape *sc);

#endif
