/*
 * storetest — helpers shared by the store's tests and benchmark: building snapshots, collecting
 * done callbacks, and looking into the database file with a connection of the test's own.
 * Test-only; the collector is thread-safe (done callbacks run on the writer thread).
 */
#ifndef STORETEST_H
#define STORETEST_H

#include "snapshot.h"
#include "store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A snapshot of `kind` from job/address (scheme http) that started at start_ms, holding a copy
 * of raw (NULL: none) and, when summary is set, that JSON and one series point "<kind>.value". */
struct cd_snapshot *st_snap(const char *job, const char *address, const char *kind,
                            int64_t start_ms, const void *raw, size_t raw_len, const char *summary);

/* Deterministic bytes: gzip-looking and incompressible, or text-like and compressible. */
void st_fill_random(uint8_t *p, size_t n, uint64_t seed);
void st_fill_gzipish(uint8_t *p, size_t n, uint64_t seed);
void st_fill_text(uint8_t *p, size_t n, uint64_t seed);

struct st_done {
    pthread_mutex_t mu;
    size_t n;    /* callbacks seen */
    size_t n_ok; /* rc 0 */
    size_t cap;
    int64_t *ids; /* ids[i] of the i-th callback (0 when not committed) */
    int *rcs;
    int block;      /* while set, callbacks wait (to fill the queue) */
    size_t entered; /* callbacks entered (blocked ones included) */
    pthread_cond_t cond;
};

void st_done_init(struct st_done *d, size_t cap);
void st_done_free(struct st_done *d);
void st_done_cb(struct cd_snapshot *s, int rc, void *ctx);
void st_done_block(struct st_done *d, bool block);
size_t st_done_count(struct st_done *d);
size_t st_done_entered(struct st_done *d);
/* Waits until the writer has entered its n-th done callback (blocked or not). */
void st_done_wait_entered(struct st_done *d, size_t n);
/* Waits (with a deadline, asserting) until n callbacks have been seen. */
void st_done_wait(struct st_done *d, size_t n);

/* Submits, asserting success; sets the done callback to d. */
void st_submit(struct cd_store *st, struct cd_snapshot *s, struct st_done *d);

/* One integer from SQL run on a connection of the test's own. */
int64_t st_sql_i64(const char *path, const char *sql);
/* Runs SQL on a connection of the test's own, asserting success. */
void st_sql_exec(const char *path, const char *sql);

/* Store options for tests: path, no linger, retention off, the given clock. */
void st_opts(struct cd_store_opts *o, const char *path, const struct cd_clock *clock);

#endif
