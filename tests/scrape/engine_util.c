/* engine_util — see engine_util.h. */
#include "engine_util.h"

#include "cdtest.h"
#include "str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void eu_add_target(struct cd_target_set *set, const char *job, enum cd_scheme scheme,
                   const char *address, const char *pid, const struct eu_kind *kinds, size_t n,
                   uint64_t max_body)
{
    struct cd_target *t = cd_target_set_add(set);
    assert_non_null(t);
    t->job = cd_str_dup(job);
    t->scheme = scheme;
    t->address = cd_str_dup(address);
    assert_int_equal(cd_labels_set(&t->labels, "job", job), 0);
    assert_int_equal(cd_labels_set(&t->labels, "instance", address), 0);
    if (pid != NULL)
        assert_int_equal(cd_labels_set(&t->labels, "pid", pid), 0);
    t->kinds = calloc(n, sizeof(*t->kinds));
    assert_non_null(t->kinds);
    for (size_t i = 0; i < n; i++) {
        struct cd_kind_spec *k = &t->kinds[i];
        const struct cd_kind_info *ki = cd_kind_lookup(kinds[i].name);
        k->name = cd_str_dup(kinds[i].name);
        k->path = cd_str_dup(kinds[i].path);
        k->query = cd_str_dup(kinds[i].query);
        k->gops_cmd = kinds[i].gops_cmd;
        k->seconds = kinds[i].seconds;
        k->interval_ms = kinds[i].interval_ms;
        k->timeout_ms = kinds[i].timeout_ms;
        k->exclusive = ki != NULL ? ki->exclusive : CD_EXCL_NONE;
        t->n_kinds++;
    }
    t->max_body_bytes = max_body;
    assert_int_equal(cd_target_finish(t), 0);
}

int eu_sink_fn(void *ctx, struct cd_snapshot *s)
{
    struct eu_sink *k = ctx;
    if (k->refuse)
        return -EAGAIN;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->v = realloc(k->v, k->cap * sizeof(*k->v));
        assert_non_null(k->v);
    }
    k->v[k->n++] = s;
    return 0;
}

void eu_event_fn(void *ctx, int level, const char *target_id, const char *msg)
{
    (void)level;
    struct eu_sink *k = ctx;
    k->events++;
    snprintf(k->last_event, sizeof(k->last_event), "%s: %s", target_id, msg);
}

void eu_sink_free(struct eu_sink *k)
{
    for (size_t i = 0; i < k->n; i++)
        cd_snapshot_free(k->v[i]);
    free(k->v);
    memset(k, 0, sizeof(*k));
}

size_t eu_count(const struct eu_sink *k, const char *address, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->v[i]->address, address) == 0 && strcmp(k->v[i]->kind, kind) == 0)
            n++;
    }
    return n;
}

const struct cd_snapshot *eu_find(const struct eu_sink *k, const char *address, const char *kind,
                                  size_t nth)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->v[i]->address, address) == 0 && strcmp(k->v[i]->kind, kind) == 0) {
            if (nth == 0)
                return k->v[i];
            nth--;
        }
    }
    return NULL;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

bool eu_run_until(uv_loop_t *loop, bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    /* A ticking timer so UV_RUN_ONCE returns at least every 20 ms to check the condition. */
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    int64_t end = cdt_now_ms() + timeout_ms;
    bool ok;
    while (!(ok = cond(ctx)) && cdt_now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static void on_stopped(struct cd_scrape *sc, void *ctx)
{
    (void)sc;
    *(bool *)ctx = true;
}

static bool flag_set(void *ctx)
{
    return *(bool *)ctx;
}

void eu_stop_and_close(uv_loop_t *loop, struct cd_scrape *sc, int64_t deadline_ms)
{
    bool stopped = false;
    cd_scrape_stop(sc, deadline_ms, on_stopped, &stopped);
    assert_true(eu_run_until(loop, flag_set, &stopped, (int)deadline_ms + 10000));
    cd_scrape_free(sc);
    /* Cancelled gops connections finish closing on the next iterations. */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}
