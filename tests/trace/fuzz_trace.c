/*
 * Fuzz target for the Go execution trace summarizer: any bytes, default limits and a tight
 * memory budget. Besides "no crash, no leak, no out-of-bounds read", it checks the contract:
 * success gives a complete summary with series, failure gives an error message and, when there
 * is a summary, one marked partial that carries the same message.
 */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

static void run(const uint8_t *data, size_t size, const struct cd_parse_limits *lim)
{
    struct cd_summary s;
    cd_summary_init(&s);
    struct cd_err err;
    cd_err_init(&err);
    int rc = cd_trace_summarize(data, size, lim, &s, &err);
    if (rc == 0) {
        if (s.json == NULL || s.format != CD_FORMAT_TRACE || s.n_series == 0 ||
            !json_is_false(json_object_get(s.json, "partial")))
            abort();
    } else {
        if (rc > 0 || err.code != rc || s.n_series != 0)
            abort();
        if (s.json != NULL) {
            const char *e = json_string_value(json_object_get(s.json, "error"));
            if (!json_is_true(json_object_get(s.json, "partial")) || e == NULL ||
                strcmp(e, cd_err_msg(&err)) != 0)
                abort();
        }
    }
    if (s.json != NULL) {
        char *dump = json_dumps(s.json, JSON_COMPACT);
        if (dump == NULL)
            abort();
        free(dump);
    }
    cd_summary_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)cd_trace_sniff(data, size);
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    run(data, size, &lim);
    lim.max_memory = 64 << 10;
    lim.max_groups = 4;
    lim.top_n = 2;
    lim.max_goroutines = 8;
    run(data, size, &lim);
    return 0;
}
