/*
 * render — how collectorctl prints what the API returns: times (local, and relative: "3m ago"),
 * sizes, durations, and snapshot summaries (pprof top tables, goroutine dump findings and
 * groups, trace and gops figures). The summary shapes are the parsers' and may grow, so the
 * renderer prints the members it knows and falls back to compact JSON for the rest. Shared by
 * show, top and inspect. collectorctl's thread; owns nothing.
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
    const char *sample_type; /* pprof: only this sample type (NULL = all, "cpu" or "samples") */
    bool cum;                /* pprof: sort by cumulative */
    int64_t now_ms;          /* wall clock, for "3m ago" */
};

void cd_render_opts_default(struct cd_render_opts *o);

/* "2026-11-21 22:04:35 CET (3m ago)". Returns dst. */
char *cd_render_time(char *dst, size_t size, int64_t unix_ms, int64_t now_ms);
/* Short, for tables: "3m ago". */
char *cd_render_ago(char *dst, size_t size, int64_t unix_ms, int64_t now_ms);
/* Local time alone: "22:04:35" today, "Nov 19 22:04" before. */
char *cd_render_clock(char *dst, size_t size, int64_t unix_ms, int64_t now_ms);

/* A value shown by its key's unit suffix: _bytes sizes, _ns/_ms durations, _unix_ms times,
 * _pct percentages; other numbers as they are; strings sanitized. Returns dst. */
char *cd_render_value(char *dst, size_t size, const char *key, const json_t *v, int64_t now_ms);

/* Prints text word-wrapped to width: the first line after the prefix first, the others after
 * cont (ASCII prefixes). */
void cd_render_wrapped(FILE *f, const char *first, const char *cont, const char *text, int width);

/* The whole summary (everything show prints below the metadata). */
void cd_render_summary(FILE *f, const json_t *summary, const struct cd_render_opts *o);
/* Only the tables: pprof top-N, or goroutine groups. Returns how many tables it printed. */
int cd_render_top(FILE *f, const json_t *summary, const struct cd_render_opts *o);

/* The one-line finding for a goroutine group, when it looks stuck: "8 goroutines blocked in
 * sync.(*Mutex).Lock called from main.deadlockWaiter (up to 3 minutes)". NULL when the group
 * looks healthy. malloc'd. */
char *cd_render_group_finding(const json_t *group);
/* The findings of a goroutine summary: its own "findings" when present, else those derived
 * from its groups. A JSON array of strings (new reference). */
json_t *cd_render_goroutine_findings(const json_t *summary);

#endif
