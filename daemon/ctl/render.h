/*
 * render — how collectorctl prints what the API returns: times (local, and relative: "3m ago"),
 * sizes, durations, and the parsers' snapshot summaries, one layout per format (the shapes are
 * documented in daemon/pprof.h, goroutine.h, heaptext.h, gopsfmt.h and trace.h):
 *   pprof          the profile's type, time, duration and contents, then per sample type the
 *                  total and the top functions by flat (or cum) like `go tool pprof -top`
 *   goroutine_text FINDINGS first (stuck goroutines), then states, wait times, the groups of
 *                  identical stacks, the longest waiting goroutines and where they were created
 *   heap_text      totals, the largest allocation sites, and the runtime.MemStats block
 *   gops_*         memstats in human units, stats, the Go version
 *   trace          duration, goroutines, GC, stop-the-world pauses, blocking by reason,
 *                  syscalls, user tasks, regions and logs
 * Members a layout does not know (a parser may add some) are printed after it as "key: value"
 * lines, units by their suffix. Everything fits the given width; text from targets is
 * sanitized (no terminal escapes). Shared by show, top and inspect. collectorctl's thread;
 * owns nothing.
 */
#ifndef CD_RENDER_H
#define CD_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cd_render_opts {
    int width;               /* terminal columns */
    size_t top_n;            /* rows per table (default 20) */
    const char *sample_type; /* pprof: the sample type to show; NULL = the profile's default
                              * (as go tool pprof picks it), "all" = every type */
    bool cum;                /* pprof: sort by cumulative value (the summary's top_cum) */
    int64_t now_ms;          /* wall clock, for "3m ago" */
};

void cd_render_opts_default(struct cd_render_opts *o);

/* "2026-11-21 22:04:35 CET (3m ago)". Returns dst. */
char *cd_render_time(char *dst, size_t size, int64_t unix_ms, int64_t now_ms);
/* Short, for tables: "3m ago". */
char *cd_render_ago(char *dst, size_t size, int64_t unix_ms, int64_t now_ms);
/* Local time alone: "22:04:35" today, "Nov 19 22:04" before. */
char *cd_render_clock(char *dst, size_t size, int64_t unix_ms, int64_t now_ms);
/* Nanoseconds for people: "0", "850ns", "12.3us", "1.52ms", "4.2s", "4m10s". Returns dst. */
char *cd_render_ns(char *dst, size_t size, double ns);

/* A value shown by its key's unit suffix: _bytes sizes, _ns/_us/_ms/_seconds durations,
 * _unix_ms/_unix_ns times, _pct/_percent percentages; other numbers as they are; strings
 * sanitized. Returns dst. */
char *cd_render_value(char *dst, size_t size, const char *key, const json_t *v, int64_t now_ms);

/* Prints text word-wrapped to width: the first line after the prefix first, the others after
 * cont (ASCII prefixes). Words longer than a line are cut. */
void cd_render_wrapped(FILE *f, const char *first, const char *cont, const char *text, int width);

/* What a format is called in a heading: "pprof profile", "goroutine dump", "execution trace"...
 * (format as the API names it; NULL or unknown names are returned as given, or "data"). */
const char *cd_render_format_title(const char *format);

/* The whole summary (everything show prints below the metadata). format: the SNAPSHOT's
 * "format" ("pprof", "goroutine_text", ...); NULL = guess from the summary's members. */
void cd_render_summary(FILE *f, const char *format, const json_t *summary,
                       const struct cd_render_opts *o);
/* Only the tables: a profile's top functions (per the sample type option), or a goroutine
 * dump's findings and groups, or a heap text's largest records. Returns how many tables it
 * printed (0: the summary has none, or the sample type asked for is not there, which it says). */
int cd_render_top(FILE *f, const char *format, const json_t *summary,
                  const struct cd_render_opts *o);

/* The findings of a goroutine summary as one-line messages: a JSON array of strings (a new
 * reference; empty when there are none). */
json_t *cd_render_goroutine_findings(const json_t *summary);

#endif
