/* storetest — see storetest.h. */
#include "storetest.h"

#include "cdtest.h"
#include "str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cd_snapshot *st_snap(const char *job, const char *address, const char *kind,
                            int64_t start_ms, const void *raw, size_t raw_len, const char *summary)
{
    struct cd_snapshot *s = cd_snapshot_new();
    assert_non_null(s);
    s->job = cd_str_dup(job);
    s->scheme = cd_str_dup("http");
    s->address = cd_str_dup(address);
    s->instance = cd_str_dup(address);
    s->labels_json = cd_str_dup("{\"team\":\"store\"}");
    s->kind = cd_str_dup(kind);
    s->request = cd_str_printf("http://%s/debug/pprof/%s", address, kind);
    s->start_ms = start_ms;
    s->duration_ms = 12;
    s->status = CD_SNAP_OK;
    s->http_status = 200;
    if (raw != NULL) {
        s->raw = malloc(raw_len);
        assert_non_null(s->raw);
        memcpy(s->raw, raw, raw_len);
        s->raw_len = raw_len;
    }
    if (summary != NULL) {
        s->summary_json = cd_str_dup(summary);
        s->format = CD_FORMAT_PPROF;
        s->series = calloc(1, sizeof(*s->series));
        assert_non_null(s->series);
        snprintf(s->series[0].name, sizeof(s->series[0].name), "%s.value", kind);
        s->series[0].value = (double)(start_ms % 1000);
        s->n_series = 1;
    }
    assert_non_null(s->job);
    assert_non_null(s->kind);
    return s;
}

static uint64_t next_rand(uint64_t *x)
{
    /* splitmix64 */
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void st_fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = next_rand(&x);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)next_rand(&x);
}

void st_fill_gzipish(uint8_t *p, size_t n, uint64_t seed)
{
    st_fill_random(p, n, seed);
    if (n >= 3) {
        p[0] = 0x1f;
        p[1] = 0x8b;
        p[2] = 0x08;
    }
}

void st_fill_text(uint8_t *p, size_t n, uint64_t seed)
{
    static const char *const words[] = {
        "goroutine ",      "[running]:\n",
        "main.work(",      "0xc000012345",
        ")\n\t",           "/src/app/main.go:42 +0x1d\n",
        "runtime.gopark(", "sync.(*Mutex).Lock",
        "[chan receive]",  "net/http.(*conn).serve",
        "created by ",     "\n\n",
    };
    uint64_t x = seed;
    size_t i = 0;
    while (i < n) {
        const char *w = words[next_rand(&x) % (sizeof(words) / sizeof(words[0]))];
        size_t len = strlen(w);
        if (len > n - i)
            len = n - i;
        memcpy(p + i, w, len);
        i += len;
        if (i < n && next_rand(&x) % 8 == 0)
            p[i++] = (uint8_t)('0' + next_rand(&x) % 10);
    }
}

void st_done_init(struct st_done *d, size_t cap)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->cap = cap;
    d->ids = calloc(cap, sizeof(*d->ids));
    d->rcs = calloc(cap, sizeof(*d->rcs));
    assert_non_null(d->ids);
    assert_non_null(d->rcs);
}

void st_done_free(struct st_done *d)
{
    free(d->ids);
    free(d->rcs);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
}

void st_done_cb(struct cd_snapshot *s, int rc, void *ctx)
{
    struct st_done *d = ctx;
    pthread_mutex_lock(&d->mu);
    d->entered++;
    while (d->block)
        pthread_cond_wait(&d->cond, &d->mu);
    if (d->n < d->cap) {
        d->ids[d->n] = s->id;
        d->rcs[d->n] = rc;
    }
    d->n++;
    if (rc == 0)
        d->n_ok++;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

void st_done_block(struct st_done *d, bool block)
{
    pthread_mutex_lock(&d->mu);
    d->block = block;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

size_t st_done_entered(struct st_done *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->entered;
    pthread_mutex_unlock(&d->mu);
    return n;
}

size_t st_done_count(struct st_done *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->n;
    pthread_mutex_unlock(&d->mu);
    return n;
}

struct wait_ctx {
    struct st_done *d;
    size_t n;
};

static bool entered_enough(void *ctx)
{
    struct wait_ctx *w = ctx;
    return st_done_entered(w->d) >= w->n;
}

void st_done_wait_entered(struct st_done *d, size_t n)
{
    struct wait_ctx w = {d, n};
    if (cdt_wait_until(entered_enough, &w, 30000) != 0)
        fail_msg("the writer did not reach done callback %zu", n);
}

void st_done_wait(struct st_done *d, size_t n)
{
    /* woken by each callback; the deadline only guards against a hang */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&d->mu);
    int rc = 0;
    while (d->n < n && rc == 0)
        rc = pthread_cond_timedwait(&d->cond, &d->mu, &ts);
    size_t seen = d->n;
    pthread_mutex_unlock(&d->mu);
    if (seen < n)
        fail_msg("only %zu of %zu snapshots were committed in time", seen, n);
}

void st_submit(struct cd_store *st, struct cd_snapshot *s, struct st_done *d)
{
    s->done = st_done_cb;
    s->done_ctx = d;
    int rc = cd_store_submit(st, &s);
    if (rc != 0) {
        cd_snapshot_free(s);
        fail_msg("submit: %d", rc);
    }
    assert_null(s);
}

static sqlite3 *own_conn(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        fail_msg("open %s: %s", path, sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    return db;
}

int64_t st_sql_i64(const char *path, const char *sql)
{
    sqlite3 *db = own_conn(path);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(q);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

void st_sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = own_conn(path);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

void st_opts(struct cd_store_opts *o, const char *path, const struct cd_clock *clock)
{
    cd_store_opts_default(o);
    o->path = path;
    o->batch_linger_ms = 0;
    o->retention.interval_ms = 0;
    o->clock = clock;
}
