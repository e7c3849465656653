/*
 * trace — summarizes a Go execution trace (what runtime/trace writes and /debug/pprof/trace or
 * the gops 0x08 command serve): the v1 format of Go 1.11–1.21 and the generational v2 format of
 * Go 1.22–1.26. Recognises the header, picks the decoder (tracev1 / tracev2) and turns their
 * result (tracesum) into a struct cd_summary.
 *
 * Pure and re-entrant: runs on an ingest worker thread (any thread), never logs, holds no state
 * between calls. Memory is bounded by the limits whatever the input: input bytes (max_input),
 * working memory (max_memory), goroutines tracked (max_goroutines), distinct names per table
 * (max_groups), names listed (top_n); see tracesum.h for the fixed caps.
 *
 * The summary JSON (a stable shape; every key is always present unless marked):
 *
 *   go_version        "1.19"        from the header ("go 1.19 trace"); Go 1.20 writes 1.19, Go
 *                                   1.24 writes 1.23
 *   format            "v1" | "v2"
 *   partial           bool          true when the trace was cut or corrupt (then "error" holds
 *   error             string        the same message the call returned; absent when complete)
 *   bytes             input size
 *   bytes_parsed      bytes up to the end of the last complete event (v1) or batch (v2)
 *   frequency         ticks per second (v2: of the first generation), or null
 *   duration_ns       last − first timed event, or null when the frequency is unknown (a cut v1
 *                     trace loses its footer)
 *   wall_start_unix_ns  wall-clock time of the first event (v2 Go 1.25+, from ClockSnapshot) or
 *                     null
 *   events            events decoded (the sum of event_counts)
 *   event_counts      {"GoCreate": n, ...} by event type name (v1: all but Batch and String;
 *                     v2: batch-kind markers, table entries and timed events)
 *   batches, strings, stacks, cpu_samples, experimental_batches, clock_snapshots   counts
 *   generations       v2: generations read; v1: null
 *   first_generation  v2: number of the first one (not always 1); v1: null
 *   goroutines        {at_start, created, ended, max_live}: v1 at_start = GoCreate before the
 *                     first Gomaxprocs (the trace-start section), created = GoCreate after it;
 *                     v2 at_start = distinct goroutines with a status in the first generation,
 *                     created = GoCreate + GoCreateSyscall + GoCreateBlocked; ended = GoEnd /
 *                     GoDestroy + GoDestroySyscall + GoSwitchDestroy; max_live = the highest
 *                     at_start + created − ended so far, in time order
 *   gc                {count, total_ns, mark_assists, heap_alloc_max_bytes, heap_goal_max_bytes}
 *                     count = GCStart / GCBegin (a GC already running when the trace starts
 *                     is not counted, but its time is: v2 GCActive opens the interval at its
 *                     generation's start); total_ns = Σ start→end, null without frequency
 *   stw               {count, total_ns, by_kind: {"GC mark termination": {count, total_ns}}}
 *   procs             {max, last, seen}: GOMAXPROCS (Gomaxprocs / ProcsChange) highest and
 *                     last in time order; distinct P ids started (ids < 4096)
 *   blocking          {"chan receive": n, "sync": n, "sleep": n, ...}: v1 by event type
 *                     (GoBlockRecv → "chan receive", GoBlockSync → "sync", GoBlockCond →
 *                     "sync.Cond", GoBlockNet → "network", GoSleep → "sleep", GoBlockGC →
 *                     "GC assist", GoBlock → "unspecified", ...), v2 the GoBlock reason string
 *   stop_reasons      v2 GoStop reasons ("preempted", "runtime.Gosched"); v1: {}
 *   syscalls          {count, blocked}: GoSysCall / GoSyscallBegin; GoSysBlock /
 *                     GoSyscallEndBlocked
 *   user              {tasks, tasks_ended, regions, logs, task_names, region_names, log_keys}
 *                     the *_names/log_keys lists are [{"name": s, "count": n}] by count, top_n
 *   labels            goroutine labels (GC worker modes: "GC (dedicated)", ...)
 *   dropped           {strings, goroutines, ordered_events, string_ids, names}: what the limits
 *                     left out (all 0 normally)
 *
 * Name tables list at most top_n entries, the rest summed under "(other)". Names are cut to 256
 * bytes; bytes that are not valid UTF-8 become '?'.
 *
 * Series (relative to the kind): duration_ns, goroutines_max, goroutines_created,
 * goroutines_ended, gc_count, gc_total_ns, stw_count, stw_total_ns, syscalls, syscalls_blocked,
 * procs_max, cpu_samples, tasks, regions, logs, heap_alloc_max_bytes (the *_ns ones only when the
 * frequency is known). Series are added only for a complete trace.
 */
#ifndef CD_TRACE_H
#define CD_TRACE_H

#include "err.h"
#include "summary.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when data starts with a Go execution trace header: "go 1.NN trace" NUL-padded to 16
 * bytes (any minor version). */
bool cd_trace_sniff(const uint8_t *data, size_t len);

/* Summarizes a trace into out (which the caller initialised with cd_summary_init). On success:
 * 0, out->format = CD_FORMAT_TRACE, out->json the summary, series added. On failure: a negative
 * errno with err saying what and where ("trace: v2: batch at offset 12345: size 99999 exceeds
 * remaining 10"); -EFBIG over max_input, -EINVAL not a trace, -ENOTSUP before Go 1.11, -EPROTO
 * cut short, -EBADMSG corrupt. Unlike most functions here, a failure may still fill out: when
 * the header was valid, out->format and out->json hold a partial summary ("partial": true,
 * "error": ...) for the caller to store beside the error. lim may be NULL (defaults). data must
 * stay valid during the call only. Any previous out->json is replaced. */
int cd_trace_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                       struct cd_summary *out, struct cd_err *err);

#endif
