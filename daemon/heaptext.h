/*
 * heaptext — summarizes the heap profile text of `heap?debug=1` / `allocs?debug=1`
 * (protocols.md §2.9): the header's totals, the records (one per allocation stack) and the
 * runtime.MemStats block at the end. Go's pre-protobuf "legacy" heap files have the same header
 * and records without the frame comments; they read the same way, with addresses for frames.
 *
 * Pure functions: any thread, no logging. One pass over the lines; the only memory is the
 * lim->top_n largest records (pointing into the input) and the summary.
 *
 * Values are scaled the way Go's runtime scales heap samples when it writes the protobuf profile
 * (each record's count and bytes times 1/(1-exp(-avg_size/rate)), rate = MemProfileRate from
 * "@ heap/<2*rate>"), so "totals" and the series agree with the pprof summary of the same heap;
 * "header" keeps the raw sampled numbers as printed.
 *
 * Summary JSON (out->format = CD_FORMAT_HEAP_TEXT), every key always present:
 *   {"rate": 524288,                      // MemProfileRate; 0 when the header has none
 *    "header": {"inuse_objects", "inuse_space", "alloc_objects", "alloc_space"},   // raw
 *    "totals": {"inuse_objects", "inuse_space", "alloc_objects", "alloc_space"},   // scaled
 *    "records": n,
 *    "top_records": [{"inuse_objects", "inuse_space", "alloc_objects", "alloc_space", // scaled
 *                     "frames": [{"function", "file", "line"}]}],  // up to 10 frames; lim->top_n
 *                                                                  // records by inuse_space
 *    "memstats": {"alloc", "total_alloc", "sys", "lookups", "mallocs", "frees", "heap_alloc",
 *                 "heap_sys", "heap_idle", "heap_inuse", "heap_released", "heap_objects",
 *                 "stack_inuse", "stack_sys", "mspan_inuse", "mspan_sys", "mcache_inuse",
 *                 "mcache_sys", "buck_hash_sys", "gc_sys", "other_sys", "next_gc",
 *                 "last_gc_unix_ns", "num_gc", "num_forced_gc", "gc_cpu_fraction", "max_rss",
 *                 "gc_pause_last_ns"} | null,   // the keys present in the text
 *    "unparsed_lines": n}
 * Series: inuse_space, inuse_objects, alloc_space, alloc_objects (scaled totals) and every
 * number in "memstats" under its key (the names gopsfmt uses for the same figures).
 */
#ifndef CD_HEAPTEXT_H
#define CD_HEAPTEXT_H

#include "err.h"
#include "summary.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0, or a negative errno with err saying what: -EBADMSG when there is no "heap profile:" header,
 * -EFBIG past lim->max_input, -ENOMEM. lim NULL = defaults. `out` must have been initialised; on
 * success its old contents are replaced, on failure it is left as it was. */
int cd_heaptext_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                          struct cd_summary *out, struct cd_err *err);

/* Cheap: the text opens with "heap profile: ". */
bool cd_heaptext_sniff(const uint8_t *data, size_t len);

#endif
