/* trace — see trace.h. */
#include "trace.h"

#include "tracesum.h"
#include "tracev1.h"
#include "tracev2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN 16

/* "go 1." minor " trace" then NULs to byte 16 (trace-format.md §1). Returns the minor or -1. */
static int header_minor(const uint8_t *d, size_t len)
{
    if (d == NULL || len < HEADER_LEN || memcmp(d, "go 1.", 5) != 0)
        return -1;
    size_t i = 5;
    int minor = 0;
    while (i < 8 && d[i] >= '0' && d[i] <= '9')
        minor = minor * 10 + (d[i++] - '0');
    if (i == 5 || i + 6 > HEADER_LEN || memcmp(d + i, " trace", 6) != 0)
        return -1;
    for (i += 6; i < HEADER_LEN; i++)
        if (d[i] != 0)
            return -1;
    return minor;
}

bool cd_trace_sniff(const uint8_t *data, size_t len)
{
    return header_minor(data, len) >= 0;
}

int cd_trace_summarize(const uint8_t *data, size_t len, const struct cd_parse_limits *lim,
                       struct cd_summary *out, struct cd_err *err)
{
    struct cd_parse_limits deflim;
    if (lim == NULL) {
        cd_parse_limits_default(&deflim);
        lim = &deflim;
    }
    if (len > lim->max_input)
        return cd_err_set(err, -EFBIG, "trace: %zu bytes exceed the input limit of %zu", len,
                          lim->max_input);
    int minor = header_minor(data, len);
    if (minor < 0)
        return cd_err_set(err, -EINVAL, "trace: not a Go execution trace (bad header)");
    if (minor < 11)
        return cd_err_set(err, -ENOTSUP,
                          "trace: Go 1.%d trace format (before Go 1.11) is not supported", minor);

    struct cd_tracesum *ts = malloc(sizeof(*ts));
    if (ts == NULL)
        return cd_err_set(err, -ENOMEM, "trace: out of memory");
    cd_tracesum_init(ts, lim, len);
    struct cd_err perr;
    cd_err_init(&perr);
    /* Unknown future versions are tried as the newest known v2 format: a new event type then
     * stops the decoder with an error and a partial summary rather than nothing at all. */
    int rc = minor <= 21 ? cd_tracev1_parse(data, len, minor, ts, &perr)
                         : cd_tracev2_parse(data, len, minor, ts, &perr);
    char msg[CD_ERR_MSG_MAX];
    if (rc < 0)
        snprintf(msg, sizeof(msg), "trace: %s", cd_err_msg(&perr));
    json_t *j = NULL;
    struct cd_err jerr;
    cd_err_init(&jerr);
    int jrc = cd_tracesum_json(ts, rc < 0 ? msg : NULL, &j, &jerr);
    int src = 0;
    if (rc == 0 && jrc == 0)
        src = cd_tracesum_series(ts, out, err);
    cd_tracesum_free(ts);
    free(ts);
    if (j != NULL) {
        json_decref(out->json);
        out->json = j;
        out->format = CD_FORMAT_TRACE;
    }
    if (rc < 0)
        return cd_err_set(err, rc, "%s", msg);
    if (jrc < 0) {
        cd_err_copy(err, &jerr);
        return jrc;
    }
    return src;
}
