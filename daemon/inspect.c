/* inspect — see inspect.h. */
#include "inspect.h"

#include "goroutine.h"
#include "gopsfmt.h"
#include "heaptext.h"
#include "pprof.h"
#include "trace.h"

#include <errno.h>

static bool looks_like(enum cd_format f, const uint8_t *data, size_t len)
{
    switch (f) {
    case CD_FORMAT_PPROF:
        return cd_pprof_sniff(data, len);
    case CD_FORMAT_TRACE:
        return cd_trace_sniff(data, len);
    case CD_FORMAT_GOROUTINE_TEXT:
        return cd_goroutine_sniff(data, len);
    case CD_FORMAT_HEAP_TEXT:
        return cd_heaptext_sniff(data, len);
    case CD_FORMAT_GOPS_MEMSTATS:
    case CD_FORMAT_GOPS_STATS:
    case CD_FORMAT_GOPS_VERSION:
        return cd_gopsfmt_sniff(data, len) == f;
    default:
        return false;
    }
}

enum cd_format cd_inspect_detect(const uint8_t *data, size_t len)
{
    /* Binary formats first: their magic numbers are exact; text sniffers are heuristics. */
    static const enum cd_format order[] = {
        CD_FORMAT_TRACE,          CD_FORMAT_PPROF,         CD_FORMAT_HEAP_TEXT,
        CD_FORMAT_GOROUTINE_TEXT, CD_FORMAT_GOPS_MEMSTATS, CD_FORMAT_GOPS_STATS,
        CD_FORMAT_GOPS_VERSION,
    };
    if (data == NULL || len == 0)
        return CD_FORMAT_UNKNOWN;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (looks_like(order[i], data, len))
            return order[i];
    }
    return CD_FORMAT_UNKNOWN;
}

enum cd_format cd_inspect_kind_format(const char *kind)
{
    const struct cd_kind_info *k = kind != NULL ? cd_kind_lookup(kind) : NULL;
    return k != NULL ? k->format : CD_FORMAT_PPROF;
}

int cd_inspect_summarize(enum cd_format hint, const uint8_t *data, size_t len,
                         const struct cd_parse_limits *lim, struct cd_summary *out,
                         struct cd_err *err)
{
    enum cd_format f = hint;
    if (f == CD_FORMAT_UNKNOWN || !looks_like(f, data, len))
        f = cd_inspect_detect(data, len);
    switch (f) {
    case CD_FORMAT_PPROF:
        return cd_pprof_summarize(data, len, lim, out, err);
    case CD_FORMAT_TRACE:
        return cd_trace_summarize(data, len, lim, out, err);
    case CD_FORMAT_GOROUTINE_TEXT:
        return cd_goroutine_summarize(data, len, lim, out, err);
    case CD_FORMAT_HEAP_TEXT:
        return cd_heaptext_summarize(data, len, lim, out, err);
    case CD_FORMAT_GOPS_MEMSTATS:
    case CD_FORMAT_GOPS_STATS:
    case CD_FORMAT_GOPS_VERSION:
        return cd_gopsfmt_summarize(f, data, len, lim, out, err);
    default:
        break;
    }
    if (len == 0)
        return cd_err_set(err, -ENODATA, "inspect: empty input");
    return cd_err_set(err, -EMEDIUMTYPE,
                      "inspect: not a pprof profile, execution trace, goroutine dump, heap text "
                      "or gops text (%zu bytes, first byte 0x%02x)",
                      len, data[0]);
}
