/* Fuzz target: pprof on arbitrary bytes (gzip or raw). Must never crash, read out of bounds or
 * leak; an error must say what went wrong; a summary must serialize. */
#include "pprof.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    /* keep a run far below libFuzzer's -rss_limit_mb */
    lim.max_decompressed = (size_t)64 << 20;
    lim.max_memory = (size_t)256 << 20;
    struct cd_summary s;
    struct cd_err err;
    cd_summary_init(&s);
    cd_err_init(&err);
    (void)cd_pprof_sniff(data, size);
    int rc = cd_pprof_summarize(data, size, &lim, &s, &err);
    if (rc == 0) {
        if (s.json == NULL)
            __builtin_trap();
        free(json_dumps(s.json, JSON_COMPACT));
    } else if (err.code != rc || err.msg[0] == '\0' || s.json != NULL) {
        __builtin_trap();
    }
    cd_summary_free(&s);
    return 0;
}
