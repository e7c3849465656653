/*
 * inspect — collectorctl's offline path: summarizes a local file (pprof profile, execution
 * trace, goroutine dump, heap text, gops text) without a daemon, with the summarizers the daemon
 * runs on every scrape (daemon/inspect.h) and their default limits (struct cd_parse_limits).
 * collectorctl's thread; the report it returns is the caller's.
 */
#ifndef CD_CTL_INSPECT_H
#define CD_CTL_INSPECT_H

#include "err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Largest file inspect reads: the parsers' own input limit (cd_parse_limits.max_input). */
#define CD_CTL_INSPECT_MAX_BYTES (256u << 20)

/*
 * A report on data, as a JSON object (a new reference in *out):
 *   {"format": "pprof" | "goroutine_text" | "heap_text" | "gops_memstats" | "gops_stats"
 *              | "gops_version" | "trace" | "unknown",    what the content looks like
 *    "size_bytes": n,
 *    "summary": {...} | null,     the summarizer's JSON (partial for a cut trace), null when it
 *                                 produced none
 *    "series": [{"name", "value"}],   what the daemon would record, names relative to the kind
 *    "error": null | "..."}       why the file could not be (fully) summarized
 * top_n: rows per table (0 = the parsers' default). Returns 0 whenever a report was made — a
 * file that is not recognised or does not parse is a report with "error" set — and a negative
 * errno (-ENOMEM) only when none could be.
 */
int cd_ctl_inspect(const uint8_t *data, size_t len, size_t top_n, json_t **out, struct cd_err *err);

#endif
