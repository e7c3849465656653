/*
 * worker — a fixed pool of threads running jobs from one bounded queue, reporting each finished
 * job back on the libuv loop thread.
 *
 * Any thread may submit; `run` executes on a pool thread, `done` on the loop thread (from a
 * uv_async callback that drains every finished job at once, since async sends coalesce). The pool
 * owns its threads, the queue nodes and the uv_async handle; a job's argument stays the caller's
 * (handed back in `done`).
 *
 * Bounds: a job counts against max_jobs and max_bytes from submit until its `done` has returned
 * (queued, running, or finished and waiting for the loop), so memory held through the pool never
 * exceeds them; a submit that would pass either gets -EAGAIN and the caller keeps its argument.
 *
 * Shutdown (cd_worker_stop): no new submits (-ESHUTDOWN). In DRAIN mode the queued jobs still
 * run; in DISCARD mode they never run and get `done` with cancelled = 1. Running jobs always
 * finish (a job is never interrupted). Then the threads exit, every `done` has been called, the
 * async handle closes, and stop_cb fires on the loop thread; only then may cd_worker_free() run.
 * The loop thread never joins a thread that is still working: threads are joined after they have
 * signalled that they left.
 */
#ifndef CD_WORKER_H
#define CD_WORKER_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct cd_worker;

typedef void (*cd_worker_run_fn)(void *arg);
/* On the loop thread. cancelled = 1 when the job was discarded at shutdown without running. */
typedef void (*cd_worker_done_fn)(void *arg, int cancelled);
typedef void (*cd_worker_stop_fn)(struct cd_worker *w, void *ctx);

enum cd_worker_stop_mode {
    CD_WORKER_DRAIN = 0, /* run what is queued, then stop */
    CD_WORKER_DISCARD,   /* drop what is queued (done with cancelled = 1), then stop */
};

struct cd_worker_opts {
    int threads;        /* default 2, 1..64 */
    size_t max_jobs;    /* default 256: queued + running + awaiting done */
    uint64_t max_bytes; /* default 256 MiB: sum of the submitters' byte estimates */
};

struct cd_worker_stats {
    size_t queued;  /* waiting for a thread */
    size_t running; /* on a thread now */
    size_t jobs;    /* counted against max_jobs */
    uint64_t bytes; /* counted against max_bytes */
    uint64_t submitted;
    uint64_t rejected; /* -EAGAIN */
    uint64_t completed;
    uint64_t discarded;
};

/* Starts the threads. The loop must outlive the pool. */
int cd_worker_new(uv_loop_t *loop, const struct cd_worker_opts *opts, struct cd_worker **out,
                  struct cd_err *err);

/* Queues run(arg) then done(arg, 0). `bytes` is what the job holds in memory (its estimate).
 * -EAGAIN when full, -ESHUTDOWN after stop, -ENOMEM. On error nothing is called later. */
int cd_worker_submit(struct cd_worker *w, cd_worker_run_fn run, cd_worker_done_fn done, void *arg,
                     uint64_t bytes);

/* Would a job of `bytes` be accepted now? (A hint: another thread may submit in between.) */
int cd_worker_has_room(struct cd_worker *w, uint64_t bytes);

void cd_worker_stats(struct cd_worker *w, struct cd_worker_stats *out);

/* Loop thread. See the module comment. Calling it twice is a no-op for the second call. */
void cd_worker_stop(struct cd_worker *w, enum cd_worker_stop_mode mode, cd_worker_stop_fn cb,
                    void *ctx);

/* After stop_cb (or when cd_worker_new failed half-way: accepts NULL). */
void cd_worker_free(struct cd_worker *w);

#endif
