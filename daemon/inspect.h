/*
 * inspect — recognises what a blob of bytes is (pprof, goroutine dump, heap text, gops text,
 * execution trace) and hands it to the right summarizer. Used by ingest workers on every scrape
 * and by `collectorctl inspect` on local files. Pure; any thread.
 */
#ifndef CD_INSPECT_H
#define CD_INSPECT_H

#include "err.h"
#include "kind.h"
#include "summary.h"

#include <stddef.h>
#include <stdint.h>

/* From the content alone; CD_FORMAT_UNKNOWN when nothing recognises it. */
enum cd_format cd_inspect_detect(const uint8_t *data, size_t len);

/* What a kind is expected to hold (custom kinds are pprof profiles). */
enum cd_format cd_inspect_kind_format(const char *kind);

/*
 * Summarizes data. hint is what the source should have sent (CD_FORMAT_UNKNOWN: detect); when
 * the content does not look like the hint, detection decides, so a target answering a pprof
 * path with a text error page still gets a summary of what it really sent. Returns the
 * summarizer's result: 0 with out filled, or a negative errno with err set — out may then hold a
 * partial summary (truncated traces), which the caller keeps with the error. -EMEDIUMTYPE when
 * the format is not recognised.
 */
int cd_inspect_summarize(enum cd_format hint, const uint8_t *data, size_t len,
                         const struct cd_parse_limits *lim, struct cd_summary *out,
                         struct cd_err *err);

#endif
