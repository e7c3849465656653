/* kind — see kind.h. */
#include "kind.h"

#include <string.h>

static const struct cd_kind_info kinds[] = {
    {"cpu", "/profile", NULL, true, 10, true, CD_GOPS_CPU, 30, false, CD_EXCL_CPU, CD_FORMAT_PPROF,
     ".pb.gz", "application/octet-stream"},
    {"heap", "/heap", NULL, false, 0, true, CD_GOPS_HEAP, 0, true, CD_EXCL_NONE, CD_FORMAT_PPROF,
     ".pb.gz", "application/octet-stream"},
    {"allocs", "/allocs", NULL, false, 0, true, 0, 0, false, CD_EXCL_NONE, CD_FORMAT_PPROF,
     ".pb.gz", "application/octet-stream"},
    {"goroutine", "/goroutine", NULL, false, 0, true, 0, 0, false, CD_EXCL_NONE, CD_FORMAT_PPROF,
     ".pb.gz", "application/octet-stream"},
    /* debug=2 stops the world for the whole dump: on demand by default (anchors.md §4F). */
    {"goroutine_dump", "/goroutine", "debug=2", false, 0, false, CD_GOPS_STACK, 0, true,
     CD_EXCL_NONE, CD_FORMAT_GOROUTINE_TEXT, ".txt", "text/plain; charset=utf-8"},
    {"mutex", "/mutex", NULL, false, 0, true, 0, 0, false, CD_EXCL_NONE, CD_FORMAT_PPROF, ".pb.gz",
     "application/octet-stream"},
    {"block", "/block", NULL, false, 0, true, 0, 0, false, CD_EXCL_NONE, CD_FORMAT_PPROF, ".pb.gz",
     "application/octet-stream"},
    {"threadcreate", "/threadcreate", NULL, false, 0, false, 0, 0, false, CD_EXCL_NONE,
     CD_FORMAT_PPROF, ".pb.gz", "application/octet-stream"},
    {"trace", "/trace", NULL, true, 1, false, CD_GOPS_TRACE, 5, false, CD_EXCL_TRACE,
     CD_FORMAT_TRACE, ".trace", "application/octet-stream"},
    {"memstats", NULL, NULL, false, 0, false, CD_GOPS_MEMSTATS, 0, true, CD_EXCL_NONE,
     CD_FORMAT_GOPS_MEMSTATS, ".txt", "text/plain; charset=utf-8"},
    {"stats", NULL, NULL, false, 0, false, CD_GOPS_STATS, 0, true, CD_EXCL_NONE,
     CD_FORMAT_GOPS_STATS, ".txt", "text/plain; charset=utf-8"},
    {"version", NULL, NULL, false, 0, false, CD_GOPS_VERSION, 0, true, CD_EXCL_NONE,
     CD_FORMAT_GOPS_VERSION, ".txt", "text/plain; charset=utf-8"},
};

static const struct {
    const char *alias;
    const char *name;
} aliases[] = {
    {"process_cpu", "cpu"},
    {"memory", "allocs"},
};

const char *cd_format_name(enum cd_format f)
{
    switch (f) {
    case CD_FORMAT_PPROF:
        return "pprof";
    case CD_FORMAT_GOROUTINE_TEXT:
        return "goroutine_text";
    case CD_FORMAT_GOPS_MEMSTATS:
        return "gops_memstats";
    case CD_FORMAT_GOPS_STATS:
        return "gops_stats";
    case CD_FORMAT_GOPS_VERSION:
        return "gops_version";
    case CD_FORMAT_TRACE:
        return "trace";
    case CD_FORMAT_HEAP_TEXT:
        return "heap_text";
    default:
        return "unknown";
    }
}

const char *cd_kind_canonical(const char *name)
{
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcmp(name, aliases[i].alias) == 0)
            return aliases[i].name;
    }
    return name;
}

const struct cd_kind_info *cd_kind_lookup(const char *name)
{
    const char *canon = cd_kind_canonical(name);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(canon, kinds[i].name) == 0)
            return &kinds[i];
    }
    return NULL;
}

const struct cd_kind_info *cd_kind_all(int *n)
{
    *n = (int)(sizeof(kinds) / sizeof(kinds[0]));
    return kinds;
}

bool cd_kind_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 48)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}
