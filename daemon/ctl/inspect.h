/*
 * inspect — collectorctl's offline path: summarize a local file (pprof, trace, goroutine dump,
 * gops text) without a daemon, with the same parsers the daemon uses. collectorctl's thread.
 */
#ifndef CD_CTL_INSPECT_H
#define CD_CTL_INSPECT_H

#include "err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Largest file inspect reads (the daemon's parser input limit). */
#define CD_CTL_INSPECT_MAX_BYTES (256u << 20)

/* What the bytes look like, by their first bytes alone: "pprof", "trace", "goroutine_text",
 * "heap_text", "text" or "unknown". */
const char *cd_ctl_inspect_sniff(const uint8_t *data, size_t len);

/* The summary of data as a JSON object (a new reference), its "format" member set. top_n rows per
 * table. -ENOSYS while this build has no offline summarizer (see inspect.c). */
int cd_ctl_inspect(const uint8_t *data, size_t len, size_t top_n, json_t **summary,
                   struct cd_err *err);

#endif
