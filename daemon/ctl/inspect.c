/* inspect — see inspect.h. */
#include "ctl/inspect.h"

#include <errno.h>
#include <string.h>

const char *cd_ctl_inspect_sniff(const uint8_t *data, size_t len)
{
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b)
        return "pprof";
    /* "go 1.19 trace\0\0\0" and alike: a 16-byte header. */
    if (len >= 16 && memcmp(data, "go 1.", 5) == 0 && memmem(data, 16, " trace", 6) != NULL)
        return "trace";
    if (len >= 10 && memcmp(data, "goroutine ", 10) == 0)
        return "goroutine_text";
    if (len >= 13 && memcmp(data, "heap profile:", 13) == 0)
        return "heap_text";
    if (len >= 18 && memcmp(data, "goroutine profile:", 18) == 0)
        return "goroutine_text";
    /* An uncompressed profile.proto starts with field 1 (sample_type), wire type 2. */
    if (len >= 2 && data[0] == 0x0a)
        return "pprof";
    size_t n = len < 256 ? len : 256;
    for (size_t i = 0; i < n; i++) {
        if (data[i] < 0x09 || (data[i] > 0x0d && data[i] < 0x20))
            return "unknown";
    }
    return n > 0 ? "text" : "unknown";
}

int cd_ctl_inspect(const uint8_t *data, size_t len, size_t top_n, json_t **summary,
                   struct cd_err *err)
{
    (void)top_n;
    /*
     * LEFT FOR THE LEAD (daemon/inspect.{c,h}): replace the body with
     *
     *     struct cd_parse_limits lim;
     *     cd_parse_limits_default(&lim);
     *     lim.top_n = top_n;
     *     struct cd_summary sum;
     *     cd_summary_init(&sum);
     *     int rc = cd_inspect_summarize(cd_inspect_detect(data, len), data, len, &lim, &sum, err);
     *     if (rc == 0) {
     *         if (json_object_get(sum.json, "format") == NULL)
     *             json_object_set_new(sum.json, "format", json_string(cd_format_name(sum.format)));
     *         *summary = json_incref(sum.json);
     *     }
     *     cd_summary_free(&sum);
     *     return rc;
     *
     * and include "inspect.h" and "summary.h". Until then: detection only.
     */
    (void)summary;
    return cd_err_set(err, -ENOSYS,
                      "this collectorctl has no offline summarizer yet; the file looks like %s "
                      "(%zu bytes)",
                      cd_ctl_inspect_sniff(data, len), len);
}
