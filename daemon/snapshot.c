/* snapshot — see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *status_names[] = {
    [CD_SNAP_OK] = "ok",
    [CD_SNAP_INVALID] = "invalid",
    [CD_SNAP_HTTP_ERROR] = "http_error",
    [CD_SNAP_BUSY] = "busy",
    [CD_SNAP_TIMEOUT] = "timeout",
    [CD_SNAP_CONNECT_ERROR] = "connect_error",
    [CD_SNAP_TOO_LARGE] = "too_large",
    [CD_SNAP_ERROR] = "error",
};

const char *cd_snap_status_name(enum cd_snap_status st)
{
    if ((unsigned)st < sizeof(status_names) / sizeof(status_names[0]))
        return status_names[st];
    return "error";
}

int cd_snap_status_parse(const char *name, enum cd_snap_status *st)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *st = (enum cd_snap_status)i;
            return 0;
        }
    }
    return -EINVAL;
}

struct cd_snapshot *cd_snapshot_new(void)
{
    return calloc(1, sizeof(struct cd_snapshot));
}

void cd_snapshot_free(struct cd_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->job);
    free(s->scheme);
    free(s->address);
    free(s->instance);
    free(s->labels_json);
    free(s->kind);
    free(s->request);
    free(s->error);
    free(s->content_type);
    free(s->raw);
    free(s->stored);
    free(s->summary_json);
    free(s->series);
    free(s->parse_error);
    free(s->incident);
    free(s);
}

int cd_snapshot_take_summary(struct cd_snapshot *s, struct cd_summary *sum)
{
    char *text = NULL;
    if (sum->json != NULL) {
        text = json_dumps(sum->json, JSON_COMPACT | JSON_REAL_PRECISION(12));
        if (text == NULL)
            return -ENOMEM;
    }
    struct cd_series_point *series = NULL;
    if (sum->n_series > 0) {
        series = calloc(sum->n_series, sizeof(*series));
        if (series == NULL) {
            free(text);
            return -ENOMEM;
        }
        for (size_t i = 0; i < sum->n_series; i++) {
            snprintf(series[i].name, sizeof(series[i].name), "%s.%s", s->kind ? s->kind : "",
                     sum->series[i].name);
            series[i].value = sum->series[i].value;
        }
    }
    free(s->summary_json);
    free(s->series);
    s->summary_json = text;
    s->series = series;
    s->n_series = sum->n_series;
    s->format = sum->format;
    cd_summary_free(sum);
    return 0;
}
