/* summary — see summary.h. */
#include "summary.h"

#include "str.h"

#include <errno.h>
#include <stdlib.h>

void cd_parse_limits_default(struct cd_parse_limits *lim)
{
    lim->max_input = 256u << 20;
    lim->max_decompressed = 256u << 20;
    lim->max_goroutines = 1000000;
    lim->max_groups = 10000;
    lim->max_stack_depth = 256;
    lim->top_n = 50;
    lim->max_memory = 512u << 20;
}

void cd_summary_init(struct cd_summary *s)
{
    s->format = CD_FORMAT_UNKNOWN;
    s->json = NULL;
    s->series = NULL;
    s->n_series = 0;
    s->cap_series = 0;
}

void cd_summary_free(struct cd_summary *s)
{
    if (s == NULL)
        return;
    json_decref(s->json);
    free(s->series);
    cd_summary_init(s);
}

int cd_summary_add_series(struct cd_summary *s, const char *name, double value)
{
    if (s->n_series == s->cap_series) {
        size_t cap = s->cap_series ? s->cap_series * 2 : 16;
        struct cd_series_point *p = realloc(s->series, cap * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        s->series = p;
        s->cap_series = cap;
    }
    struct cd_series_point *pt = &s->series[s->n_series];
    if (cd_str_copy(pt->name, name, sizeof(pt->name)) >= sizeof(pt->name))
        return -ENAMETOOLONG;
    pt->value = value;
    s->n_series++;
    return 0;
}
