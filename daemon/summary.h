/*
 * summary — what a parser returns: a JSON document describing one snapshot plus numeric series
 * points (goroutine count, heap in use, GC pauses, ...) for the narrow series table.
 *
 * Parsers fill a struct cd_summary from bytes under struct cd_parse_limits. Series names are
 * relative to the snapshot's kind ("inuse_space", "count"); ingest prefixes them with the kind
 * ("heap.inuse_space"). Owned by whoever initialised it; not thread-safe.
 */
#ifndef CD_SUMMARY_H
#define CD_SUMMARY_H

#include "kind.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CD_SERIES_NAME_MAX 96

struct cd_series_point {
    char name[CD_SERIES_NAME_MAX];
    double value;
};

struct cd_summary {
    enum cd_format format;
    json_t *json; /* a JSON object, owned; NULL until a parser sets it */
    struct cd_series_point *series;
    size_t n_series;
    size_t cap_series;
};

/* Limits on everything a parser allocates or walks because an outsider said so. */
struct cd_parse_limits {
    size_t max_input;        /* bytes handed to a parser (default 256 MiB) */
    size_t max_decompressed; /* gunzipped size of a profile: gzip bombs stop here (256 MiB) */
    size_t max_goroutines;   /* goroutine blocks examined in one dump (1,000,000) */
    size_t max_groups;       /* distinct stacks kept while grouping a dump (10,000) */
    size_t max_stack_depth;  /* frames kept per stack (256) */
    size_t top_n;            /* rows in function/group tables (50) */
    size_t max_memory;       /* parser working memory beyond the input (512 MiB) */
};

void cd_parse_limits_default(struct cd_parse_limits *lim);

void cd_summary_init(struct cd_summary *s);
void cd_summary_free(struct cd_summary *s); /* accepts half-built summaries */
int cd_summary_add_series(struct cd_summary *s, const char *name, double value);

#endif
