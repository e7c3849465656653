/*
 * testbackend — an in-memory struct cd_api_backend for the query API's tests: a handful of
 * targets and snapshots (with raw bytes and summaries), incidents derived from pins, a capture
 * completed from another thread (as the daemon's loop would), and scrape credentials planted in
 * places the server must scrub. Thread-safe (the server calls it from its connection threads).
 */
#ifndef CD_TESTBACKEND_H
#define CD_TESTBACKEND_H

#include "api.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TB_SECRET     "hunter2-s3cret"
#define TB_MAX_SNAPS  64
#define TB_MAX_THREAD 32

enum tb_capture_mode {
    TB_CAPTURE_NOW = 0, /* a worker thread completes the call at once */
    TB_CAPTURE_HOLD,    /* it waits for tb_release() (or tb_free) */
};

struct tb_snap {
    int64_t id;
    char job[32];
    char instance[64];
    char kind[32];
    char status[16];
    int64_t time_ms;
    uint8_t *raw;
    size_t raw_len;
    json_t *summary;
    bool pinned;
    char incident[72];
    bool raw_fails; /* the reader errors half-way */
};

struct tb {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct tb_snap snaps[TB_MAX_SNAPS];
    size_t n;
    int64_t next_id;
    int64_t now_ms;
    enum tb_capture_mode capture_mode;
    bool released;
    bool retention_busy;
    pthread_t threads[TB_MAX_THREAD];
    size_t n_threads;
    int captures_started;
    int captures_finished;
};

void tb_init(struct tb *tb);
void tb_free(struct tb *tb);
struct cd_api_backend tb_backend(struct tb *tb);
/* Adds a snapshot; raw copied (may be NULL), summary taken. Returns its id. */
int64_t tb_add(struct tb *tb, const char *job, const char *instance, const char *kind,
               const char *status, int64_t time_ms, const void *raw, size_t raw_len,
               json_t *summary);
/* Lets held captures complete. */
void tb_release(struct tb *tb);
int tb_captures_started(struct tb *tb);
/* A goroutine dump (debug=2 text) in which 8 goroutines wait 3 minutes on a mutex, and its summary
 * by the real parser (goroutine.h). */
const char *tb_dump_text(void);
json_t *tb_goroutine_summary(void);
/* A pprof summary in the parser's shape (pprof.h) with samples and cpu top tables. */
json_t *tb_pprof_summary(void);

#endif
