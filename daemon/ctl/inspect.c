/* inspect — see inspect.h. */
#include "ctl/inspect.h"

#include "ctl/table.h"
#include "../inspect.h" /* the daemon's format detection and dispatch */
#include "kind.h"
#include "summary.h"

#include <errno.h>
#include <stdlib.h>

int cd_ctl_inspect(const uint8_t *data, size_t len, size_t top_n, json_t **out, struct cd_err *err)
{
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    if (top_n > 0)
        lim.top_n = top_n;
    struct cd_summary sum;
    cd_summary_init(&sum);
    struct cd_err perr;
    cd_err_init(&perr);
    int prc = cd_inspect_summarize(CD_FORMAT_UNKNOWN, data, len, &lim, &sum, &perr);
    /* A failed summarizer may leave no format behind; the content still says what it is. */
    enum cd_format fmt =
        sum.format != CD_FORMAT_UNKNOWN ? sum.format : cd_inspect_detect(data, len);
    int rc = -ENOMEM;
    json_t *series = json_array();
    json_t *doc = json_object();
    if (series == NULL || doc == NULL)
        goto fail;
    for (size_t i = 0; i < sum.n_series; i++) {
        json_t *p =
            json_pack("{s:s, s:f}", "name", sum.series[i].name, "value", sum.series[i].value);
        if (p == NULL || json_array_append_new(series, p) != 0)
            goto fail;
    }
    /* Parser messages may quote the file's bytes: JSON wants valid UTF-8. */
    char *msg = NULL;
    if (prc != 0 && (msg = cd_table_sanitize(cd_err_msg(&perr))) == NULL)
        goto fail;
    /* json_object_set_new takes its value's reference also when it fails. */
    int bad = json_object_set_new(doc, "format", json_string(cd_format_name(fmt)));
    bad |= json_object_set_new(doc, "size_bytes", json_integer((json_int_t)len));
    bad |=
        json_object_set_new(doc, "summary", sum.json != NULL ? json_incref(sum.json) : json_null());
    bad |= json_object_set(doc, "series", series);
    bad |= json_object_set_new(doc, "error", msg != NULL ? json_string(msg) : json_null());
    free(msg);
    if (bad != 0)
        goto fail;
    json_decref(series);
    cd_summary_free(&sum);
    *out = doc;
    return 0;
fail:
    json_decref(series);
    json_decref(doc);
    cd_summary_free(&sum);
    return cd_err_set(err, rc, "inspect: out of memory");
}
