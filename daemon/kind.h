/*
 * kind — what a snapshot holds (cpu, heap, goroutine_dump, trace, memstats, ...), the same name
 * whatever the source, and the facts the scheduler, parsers and API need about each built-in
 * kind. Custom kinds (any other name, e.g. fgprof) are pprof profiles at a configured path.
 * Pure data; any thread.
 */
#ifndef CD_KIND_H
#define CD_KIND_H

#include <stdbool.h>

/* What bytes a kind produces; parsers are chosen by sniffing, this is the expectation. */
enum cd_format {
    CD_FORMAT_UNKNOWN = 0,
    CD_FORMAT_PPROF,          /* profile.proto, gzip-compressed or not */
    CD_FORMAT_GOROUTINE_TEXT, /* goroutine?debug=2 or gops stack dump (also debug=1 text) */
    CD_FORMAT_GOPS_MEMSTATS,  /* gops 0x03 */
    CD_FORMAT_GOPS_STATS,     /* gops 0x07 */
    CD_FORMAT_GOPS_VERSION,   /* gops 0x04 */
    CD_FORMAT_TRACE,          /* Go execution trace, v1 or v2 */
    CD_FORMAT_HEAP_TEXT,      /* heap?debug=1 */
};

const char *cd_format_name(enum cd_format f);

/* Process-wide singletons in the Go runtime: at most one of each per process at a time. */
enum cd_exclusive {
    CD_EXCL_NONE = 0,
    CD_EXCL_CPU,   /* StartCPUProfile: /debug/pprof/profile and gops 0x06 */
    CD_EXCL_TRACE, /* trace.Start: /debug/pprof/trace and gops 0x08 */
};

/* gops agent command bytes (protocols.md §1.3). */
enum cd_gops_cmd {
    CD_GOPS_STACK = 0x01,
    CD_GOPS_GC = 0x02,
    CD_GOPS_MEMSTATS = 0x03,
    CD_GOPS_VERSION = 0x04,
    CD_GOPS_HEAP = 0x05,
    CD_GOPS_CPU = 0x06,
    CD_GOPS_STATS = 0x07,
    CD_GOPS_TRACE = 0x08,
    CD_GOPS_BINARY = 0x09,
    CD_GOPS_SETGC = 0x10,
};

struct cd_kind_info {
    const char *name;
    /* HTTP: path relative to the pprof base (".../debug/pprof"), NULL when HTTP can't serve it */
    const char *http_path;
    const char *http_query;   /* fixed query parameters, e.g. "debug=2", or NULL */
    bool http_seconds;        /* takes seconds=N and runs that long (cpu, trace) */
    int http_default_seconds; /* when http_seconds */
    bool http_default_enabled;
    /* gops: command byte, 0 when gops can't serve it */
    int gops_cmd;
    int gops_fixed_seconds; /* the agent always runs this long (cpu 30, trace 5) */
    bool gops_default_enabled;
    enum cd_exclusive exclusive;
    enum cd_format format;
    const char *file_ext;     /* for downloads and bundles: ".pb.gz", ".trace", ".txt" */
    const char *content_type; /* what we serve the raw bytes as */
};

/* The built-in kind, after resolving Parca's aliases (process_cpu = cpu, memory = allocs);
 * NULL for a custom kind. */
const struct cd_kind_info *cd_kind_lookup(const char *name);
/* The canonical name: the alias resolved, or the name itself. */
const char *cd_kind_canonical(const char *name);
/* All built-in kinds, in a stable order (for defaults and help texts). */
const struct cd_kind_info *cd_kind_all(int *n);
/* Kind names are [a-z0-9_-]{1,48}: they end up in URLs, file names and metric labels. */
bool cd_kind_name_valid(const char *name);

#endif
