/*
 * goroutine — summarizes goroutine dumps: `goroutine?debug=2` / gops stack text (one block per
 * goroutine, protocols.md §2.8) and the `debug=1` count-profile text (`goroutine profile: total
 * N`, records of identical stacks, §2.7; any `<name> profile: total N` text such as threadcreate's
 * is read the same way).
 *
 * Pure functions: any thread, no logging, no global state. One pass over the lines, no per-line
 * allocation: names and frames point into the input; groups, counters and hash tables live in an
 * arena capped by lim->max_memory and freed before returning.
 *
 * The grammar is read tolerantly, as protocols.md advises: the status is free text up to the
 * first ']' (", N minutes", ", locked to thread" and " (scan)" are recognised and taken off), text
 * between the id and '[' and after ']' (Go 1.27 labels) is accepted, both "created by X" and
 * "created by X in goroutine N", both elision messages, "goroutine running on other thread; stack
 * unavailable", and ancestor sections ("[originating from goroutine N]:", not part of the stack).
 * Lines that fit nothing are counted in "unparsed_lines". Go truncates dumps at 64 MiB: a dump
 * that ends inside a block is reported ("truncated": true and a finding).
 *
 * Limits: lim->max_goroutines blocks (debug=1: records) are examined (the rest of a debug=2
 * dump is only counted: "examined" < "total"), lim->max_groups distinct stacks are kept (further
 * goroutines with new stacks count as "groups_other"), lim->max_stack_depth frames per goroutine
 * are kept (the stack's identity is its first max_stack_depth functions), lim->top_n rows per
 * table.
 *
 * Summary JSON (out->format = CD_FORMAT_GOROUTINE_TEXT), every key always present:
 *   {
 *     "variant": "debug2" | "debug1",
 *     "profile": "goroutine",            // debug1: the name in the header ("threadcreate", ...)
 *     "total": N,                        // debug1: the header's total
 *     "examined": n,                     // goroutines read (debug1: covered by the records read)
 *     "truncated": bool, "unparsed_lines": n,
 *     "states": {"chan receive": n, "running": n},  // by count, largest first; debug1: {}
 *     "classes": {"running", "runnable", "syscall", "blocked", "other"},  // debug1: null
 *     "wait_minutes": [{"bucket": "<1" | "1-4" | "5-14" | "15-59" | "60-239" | "240+",
 *                       "count": n}],    // all six buckets, in this order
 *     "max_wait_minutes": n,
 *     "locked_to_thread": n,
 *     "groups_total": n, "groups_other": n,
 *     "groups": [{"count": n, "state": "chan receive" | null (debug1),  // the commonest
 *                 "states": [{"state", "count"}], "wait_minutes_min": n,
 *                 "wait_minutes_max": n, "locked": n, "depth": n, "elided": bool,
 *                 "frames": [{"function", "file", "line"}],       // up to 10, innermost first
 *                 "created_by": {"function", "file", "line"} | null,
 *                 "example_id": id | null, "labels": "..." | null}],  // top_n, largest first
 *     "longest_waiting": [{"id", "state", "minutes", "function", "file", "line"}],
 *                                        // top_n goroutines waiting >= 1 minute, longest first
 *     "created_by": [{"function": "main.main", "count": n}],        // top_n sites by count
 *     "findings": [FINDING]
 *   }
 * Classes: running = "running"; runnable = "runnable", "preempted"; syscall = "syscall"; other =
 * "idle", "dead", "copystack"; blocked = every other status (waiting and all wait reasons).
 * Buckets count minutes as Go prints them (whole minutes; no ", N minutes" = "<1").
 *
 * Findings:
 *  - "mutex_pileup": >= CD_GOROUTINE_PILEUP_MIN goroutines waiting for the same lock from the same
 *    function. A goroutine counts when its status is semacquire / sync.Mutex.Lock /
 *    sync.RWMutex.Lock / sync.RWMutex.RLock (debug1: when its top frame is
 *    sync.runtime_SemacquireMutex / SemacquireRWMutex*), and the outermost sync frame of its stack
 *    (runtime.*, sync.* and internal/sync.* frames skipped) is a Mutex or RWMutex Lock/RLock:
 *      {"kind": "mutex_pileup", "severity": "warning" (someone waits >= 1 minute) | "info",
 *       "count": 8, "blocked_in": "main.deadlockWaiter", "location": "main.go:42",
 *       "lock": "sync.(*Mutex).Lock", "state": "sync.Mutex.Lock",
 *       "wait_minutes_min": 0, "wait_minutes_max": 3,
 *       "message": "8 goroutines blocked in sync.(*Mutex).Lock called from main.deadlockWaiter
 *                   (up to 3 minutes)"}
 *  - "goroutine_leak": >= CD_GOROUTINE_LEAK_MIN goroutines of one group (identical stacks)
 *    waiting >= CD_GOROUTINE_LEAK_MINUTES minute(s) in a channel receive/send or select:
 *      {"kind": "goroutine_leak", "severity": "warning", "count", "blocked_in", "location",
 *       "state", "wait_minutes_min", "wait_minutes_max", "message"}
 *  - "truncated_dump": {"kind", "severity": "warning", "message"} when the text ends inside a
 *    goroutine (Go cuts dumps at 64 MiB) or lim->max_goroutines stopped the examination.
 *
 * Series: "count" (total), "running", "runnable", "syscall", "blocked", "max_wait_minutes"
 * (debug2); "count" only for debug1.
 */
#ifndef CD_GOROUTINE_H
#define CD_GOROUTINE_H

#include "err.h"
#include "summary.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CD_GOROUTINE_PILEUP_MIN   5   /* goroutines on one lock from one caller */
#define CD_GOROUTINE_LEAK_MIN     10  /* goroutines of one stack parked in chan/select ... */
#define CD_GOROUTINE_LEAK_MINUTES 1   /* ... for at least this many minutes */
#define CD_GOROUTINE_GROUP_FRAMES 10  /* frames shown per group */
#define CD_GOROUTINE_MAX_STATES   256 /* distinct status texts counted; more go to "other" */
#define CD_GOROUTINE_MAX_PILEUPS  1024

/* 0, or a negative errno with err saying what and where: -EBADMSG when the text is not a
 * goroutine dump (no goroutine header / count-profile header), -EFBIG past lim->max_input,
 * -ENOMEM past lim->max_memory. lim NULL = defaults. `out` must have been initialised; on success
 * its old contents are replaced, on failure it is left as it was. */
int cd_goroutine_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                           struct cd_summary *out, struct cd_err *err);

/* Cheap: the text opens with "goroutine <digit>" (debug=2, gops) or "<name> profile: total "
 * (debug=1 count profile). */
bool cd_goroutine_sniff(const uint8_t *data, size_t len);

/* One parsed header line "goroutine N [status...]...:" (exposed for tests). Spans point into the
 * line. */
struct cd_goroutine_header {
    uint64_t id;
    const char *status; /* without ", N minutes", ", locked to thread" and " (scan)" */
    size_t status_len;
    int64_t minutes; /* 0 when not shown */
    bool locked;
    bool scan;
    const char *extra; /* text after ']' and before the final ':' (Go 1.27 labels), or empty */
    size_t extra_len;
};
/* 0, or -EINVAL when the line is not a goroutine header. */
int cd_goroutine_parse_header(const char *line, size_t len, struct cd_goroutine_header *h);

#endif
