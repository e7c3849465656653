/* Fuzz target: gops memstats / stats / version text, Go durations and times on arbitrary bytes.
 * Must never crash, read out of bounds or leak; an error must say what went wrong. */
#include "gopsfmt.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum cd_format fmts[] = {CD_FORMAT_UNKNOWN, CD_FORMAT_GOPS_MEMSTATS,
                                          CD_FORMAT_GOPS_STATS, CD_FORMAT_GOPS_VERSION};
    (void)cd_gopsfmt_sniff(data, size);
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        struct cd_summary s;
        struct cd_err err;
        cd_summary_init(&s);
        cd_err_init(&err);
        int rc = cd_gopsfmt_summarize(fmts[i], data, size, NULL, &s, &err);
        if (rc == 0) {
            if (s.json == NULL)
                __builtin_trap();
            free(json_dumps(s.json, JSON_COMPACT));
        } else if (err.code != rc || err.msg[0] == '\0' || s.json != NULL) {
            __builtin_trap();
        }
        cd_summary_free(&s);
    }
    int64_t ns;
    (void)cd_gopsfmt_parse_duration((const char *)data, size, &ns);
    (void)cd_gopsfmt_parse_time((const char *)data, size, &ns);
    return 0;
}
