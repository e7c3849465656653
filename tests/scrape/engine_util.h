/*
 * Helpers for the scrape engine's tests: building targets by hand (no config module), a sink that
 * collects snapshots, and running the loop until a condition holds or a deadline passes.
 * Test-only; the loop thread.
 */
#ifndef CD_TEST_ENGINE_UTIL_H
#define CD_TEST_ENGINE_UTIL_H

#include "scrape.h"
#include "target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct eu_kind {
    const char *name;
    const char *path;  /* HTTP */
    const char *query; /* HTTP */
    int gops_cmd;
    int seconds;
    int64_t interval_ms;
    int64_t timeout_ms;
};

/* Appends a finished target to set. pid may be NULL. */
void eu_add_target(struct cd_target_set *set, const char *job, enum cd_scheme scheme,
                   const char *address, const char *pid, const struct eu_kind *kinds, size_t n,
                   uint64_t max_body);

struct eu_sink {
    struct cd_snapshot **v;
    size_t n, cap;
    bool refuse; /* return -EAGAIN */
    size_t events;
    char last_event[512];
};

int eu_sink_fn(void *ctx, struct cd_snapshot *s);
void eu_event_fn(void *ctx, int level, const char *target_id, const char *msg);
void eu_sink_free(struct eu_sink *k);
/* Snapshots of target address + kind, in arrival order. */
size_t eu_count(const struct eu_sink *k, const char *address, const char *kind);
const struct cd_snapshot *eu_find(const struct eu_sink *k, const char *address, const char *kind,
                                  size_t nth);

/* Runs the loop until cond(ctx) or timeout; returns cond's last value. */
bool eu_run_until(uv_loop_t *loop, bool (*cond)(void *ctx), void *ctx, int timeout_ms);
/* Stops the engine (deadline_ms), runs the loop until it is closed, frees it, and checks
 * uv_loop_close() == 0. */
void eu_stop_and_close(uv_loop_t *loop, struct cd_scrape *sc, int64_t deadline_ms);

#endif
