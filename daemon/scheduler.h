/*
 * scheduler — when each (target, kind) scrape may start: pure scheduling logic on an injectable
 * clock, no I/O, so every rule is tested on a fake clock without sleeping.
 *
 * Rules:
 *  - Absolute deadlines: an entry's slots are offset + k * interval on the wall clock, where the
 *    offset is a hash of (target id, kind) modulo the interval, so a fleet is spread over the
 *    interval instead of scraped in lockstep, and a restart keeps the phase. The next deadline is
 *    computed from the previous deadline, never from when a scrape ended: no drift.
 *  - No overlap: while an entry runs, the slots it passes are skipped (counted as overlap).
 *  - A due entry that cannot start yet (global concurrency limit, its process's CPU or trace
 *    singleton, its serial group busy, or the caller holding back) waits in a ready list; when it
 *    finally starts, the slots it missed meanwhile are skipped and counted under the reason it was
 *    waiting. Nothing piles up.
 *  - Per-process exclusivity: at most one CD_EXCL_CPU and one CD_EXCL_TRACE entry of one
 *    process_key run at a time, whatever the scheme (HTTP and gops endpoints of one process).
 *  - Serial groups: entries with the same serial key run one at a time (a gops agent serves one
 *    connection at a time).
 *  - Backoff: after n consecutive failures the next start is the first slot at or after
 *    last deadline + min(interval * 2^(n-1), max(interval, backoff_max)); a success resets it.
 *    BUSY (profiler already in use) is neither a success nor a failure: next slot as usual.
 *  - Captures bypass interval and backoff, but not overlap, exclusivity, serial groups or the
 *    concurrency limit: a capture of a running entry waits for it to finish.
 *
 * Loop thread only (not thread-safe). Owns its entries, group records and the capture tokens'
 * bookkeeping (not what the tokens point to).
 */
#ifndef CD_SCHEDULER_H
#define CD_SCHEDULER_H

#include "clock.h"
#include "err.h"
#include "kind.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cd_scheduler;
struct cd_scheduler_entry;

struct cd_scheduler_opts {
    int max_concurrent;     /* default 256 */
    int64_t backoff_max_ms; /* default 300000 (5 min); never shorter than the entry's interval */
    int max_captures;       /* pending captures per entry, default 16 */
};

/* What an entry is. Strings are copied. */
struct cd_scheduler_spec {
    const char *target_id;
    const char *kind;
    const char *process_key; /* NULL: no exclusivity group */
    const char *serial_key;  /* NULL: runs in parallel with the target's other entries */
    int64_t interval_ms;     /* <= 0: never scheduled, captures only */
    enum cd_exclusive exclusive;
};

enum cd_scheduler_result {
    CD_SCHED_OK = 0,
    CD_SCHED_FAIL,
    CD_SCHED_BUSY,
    CD_SCHED_CANCELLED, /* did not run to an answer (stop, removal): no health change */
};

/* Why slots were skipped. */
enum cd_scheduler_skip {
    CD_SKIP_OVERLAP = 0, /* its previous run was still going */
    CD_SKIP_CONCURRENCY, /* the global limit held it back */
    CD_SKIP_EXCLUSIVE,   /* its process's CPU/trace singleton or serial group was busy */
    CD_SKIP_HELD,        /* the caller held starts back (e.g. byte budget, queue full) */
    CD_SKIP_N,
};

struct cd_scheduler_stats {
    uint64_t started;
    uint64_t captures_started;
    uint64_t skipped[CD_SKIP_N];
    int running;
    size_t entries;
    size_t ready; /* due, waiting to start */
};

/* What cd_scheduler_poll() hands out: one entry to start now. */
struct cd_scheduler_start {
    struct cd_scheduler_entry *entry;
    void *udata;
    int64_t due_mono_ms; /* its deadline (for a capture: when it was requested) */
    int64_t lateness_ms; /* now - due */
    bool capture;
    void *capture_token; /* as given to cd_scheduler_capture() */
};

int cd_scheduler_new(const struct cd_clock *clock, const struct cd_scheduler_opts *opts,
                     struct cd_scheduler **out, struct cd_err *err);
/* Frees everything, running entries included (the caller has cancelled their work). */
void cd_scheduler_free(struct cd_scheduler *s);

/* Adds an entry due at its first hashed slot from now. udata is the caller's. */
int cd_scheduler_add(struct cd_scheduler *s, const struct cd_scheduler_spec *spec, void *udata,
                     struct cd_scheduler_entry **out, struct cd_err *err);
/*
 * Changes interval, exclusivity, process and serial key. A running entry keeps holding what it
 * took at start until cd_scheduler_done(). The deadline is kept when the interval is unchanged,
 * else moved to the first slot of the new grid from now.
 */
int cd_scheduler_update(struct cd_scheduler *s, struct cd_scheduler_entry *e,
                        const struct cd_scheduler_spec *spec, struct cd_err *err);
/* Removes an entry. A running one is only marked: it is freed at its cd_scheduler_done(). Pending
 * captures are handed back through `drop` (may be NULL) so the caller can report them. */
void cd_scheduler_remove(struct cd_scheduler *s, struct cd_scheduler_entry *e,
                         void (*drop)(void *ctx, void *token), void *ctx);

void cd_scheduler_set_udata(struct cd_scheduler_entry *e, void *udata);
void *cd_scheduler_udata(const struct cd_scheduler_entry *e);
bool cd_scheduler_running(const struct cd_scheduler_entry *e);
int cd_scheduler_failures(const struct cd_scheduler_entry *e);
/* Next deadline (mono ms), or -1 when the entry is never scheduled. */
int64_t cd_scheduler_due(const struct cd_scheduler_entry *e);

/* Queues a one-off run. -EBUSY when max_captures are already pending for this entry. */
int cd_scheduler_capture(struct cd_scheduler *s, struct cd_scheduler_entry *e, void *token);

/*
 * The next entry to start now, if any (returns 1 and fills *out, marking it running), else 0.
 * hold = true: nothing may start now (the caller is out of a resource); due entries keep waiting
 * and are counted as CD_SKIP_HELD when they finally start late.
 */
int cd_scheduler_poll(struct cd_scheduler *s, bool hold, struct cd_scheduler_start *out);

/* The run of e (started by poll) has ended. */
void cd_scheduler_done(struct cd_scheduler *s, struct cd_scheduler_entry *e,
                       enum cd_scheduler_result r);

/* Mono ms of the earliest deadline in the future, or -1 when none. Entries already due and
 * waiting are not counted: they start on the next cd_scheduler_done() or poll. */
int64_t cd_scheduler_next_wake(struct cd_scheduler *s);

/* The wall time (Unix ms) of a mono deadline, on the scheduler's fixed grid (exact, no jitter
 * between two clock readings). */
int64_t cd_scheduler_to_wall(const struct cd_scheduler *s, int64_t mono_ms);

void cd_scheduler_stats(const struct cd_scheduler *s, struct cd_scheduler_stats *out);

/* The hashed offset of (target, kind) within an interval (exposed for tests). */
int64_t cd_scheduler_offset(const char *target_id, const char *kind, int64_t interval_ms);

#endif
