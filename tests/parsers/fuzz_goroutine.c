/* Fuzz target: goroutine dumps, count profiles and heap text on arbitrary bytes. Must never
 * crash, read out of bounds or leak; an error must say what went wrong. */
#include "goroutine.h"
#include "heaptext.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, struct cd_summary *s, const struct cd_err *err)
{
    if (rc == 0) {
        if (s->json == NULL)
            __builtin_trap();
        free(json_dumps(s->json, JSON_COMPACT));
    } else if (err->code != rc || err->msg[0] == '\0' || s->json != NULL) {
        __builtin_trap();
    }
    cd_summary_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    lim.max_groups = 64; /* reach the "other" paths too */
    lim.top_n = 8;
    struct cd_summary s;
    struct cd_err err;
    cd_summary_init(&s);
    cd_err_init(&err);
    (void)cd_goroutine_sniff(data, size);
    (void)cd_heaptext_sniff(data, size);
    check(cd_goroutine_summarize(data, size, &lim, &s, &err), &s, &err);
    cd_err_init(&err);
    check(cd_heaptext_summarize(data, size, &lim, &s, &err), &s, &err);
    struct cd_goroutine_header h;
    (void)cd_goroutine_parse_header((const char *)data, size, &h);
    return 0;
}
