/*
 * store_ingest — a test-only program that feeds cd_store the way the daemon does, until it is
 * killed: a submitter thread builds snapshots (gzip-like, text-like, repeated bytes, failures
 * without bytes, a few into an incident), prepares them and submits them; the writer's done
 * callback prints "committed <id> <sha256-hex or ->" line-buffered on stdout, only after COMMIT
 * returned. test_store_crash SIGKILLs it at random moments and checks what it printed.
 *
 * Usage: store_ingest DB SEED
 */
#include "snapshot.h"
#include "store.h"
#include "str.h"

#include "hash.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ingest {
    struct cd_store *st;
    uint64_t seed;
};

static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void on_done(struct cd_snapshot *s, int rc, void *ctx)
{
    (void)ctx;
    if (rc != 0)
        return;
    char hex[CD_HASH_SHA256_HEX] = "-";
    if (s->raw_len > 0)
        cd_hash_hex(s->content_hash, CD_HASH_SHA256_LEN, hex);
    printf("committed %" PRId64 " %s\n", s->id, hex);
}

static void fill(uint8_t *p, size_t n, uint64_t *x, int how)
{
    static const char *const words[] = {"goroutine ", "[running]:\n", "main.work(0xc000",
                                        ")\n\t/src/", "main.go:42 ",  "+0x1d\n",
                                        "runtime.",   "gopark(",      "[select]\n\n"};
    size_t i = 0;
    if (how == 0) {
        for (; i < n; i++)
            p[i] = (uint8_t)rnd(x);
        if (n >= 2) {
            p[0] = 0x1f;
            p[1] = 0x8b;
        }
        return;
    }
    while (i < n) {
        const char *w = words[rnd(x) % (sizeof(words) / sizeof(words[0]))];
        size_t len = strlen(w);
        if (len > n - i)
            len = n - i;
        memcpy(p + i, w, len);
        i += len;
        if (i < n)
            p[i++] = (uint8_t)('0' + rnd(x) % 10);
    }
}

static struct cd_snapshot *make(uint64_t *x, uint64_t n)
{
    struct cd_snapshot *s = cd_snapshot_new();
    if (s == NULL)
        return NULL;
    static const char *const kinds[] = {"heap", "cpu", "goroutine_dump", "trace", "allocs"};
    unsigned t = (unsigned)(rnd(x) % 8);
    s->job = cd_str_dup("crash");
    s->scheme = cd_str_dup("http");
    s->address = cd_str_printf("10.0.0.%u:6060", t);
    s->instance = cd_str_dup(s->address);
    s->labels_json = cd_str_dup("{\"test\":\"crash\"}");
    s->kind = cd_str_dup(kinds[rnd(x) % 5]);
    s->start_ms = 1700000000000LL + (int64_t)n * 10;
    s->duration_ms = 5;
    unsigned what = (unsigned)(rnd(x) % 20);
    if (what == 0) {
        s->status = CD_SNAP_TIMEOUT;
        s->error = cd_str_dup("no answer in time");
    } else {
        s->status = CD_SNAP_OK;
        s->http_status = 200;
        /* what == 1: the same bytes as many others (deduplicated) */
        uint64_t bytes_seed = what == 1 ? 12345 : rnd(x);
        size_t len = what == 1 ? 4096 : 100 + (size_t)(rnd(x) % (32 * 1024));
        s->raw = malloc(len);
        if (s->raw == NULL) {
            cd_snapshot_free(s);
            return NULL;
        }
        s->raw_len = len;
        fill(s->raw, len, &bytes_seed, what % 2);
        s->summary_json = cd_str_printf("{\"n\":%" PRIu64 ",\"len\":%zu}", n, len);
        s->series = calloc(3, sizeof(*s->series));
        if (s->series != NULL) {
            s->n_series = 3;
            for (int i = 0; i < 3; i++) {
                snprintf(s->series[i].name, sizeof(s->series[i].name), "%s.v%d", s->kind, i);
                s->series[i].value = (double)(n * 3 + (uint64_t)i);
            }
        }
    }
    if (rnd(x) % 50 == 0)
        s->incident = cd_str_dup("crash-incident");
    s->done = on_done;
    return s;
}

static void *submitter(void *arg)
{
    struct ingest *in = arg;
    uint64_t x = in->seed;
    for (uint64_t n = 0;; n++) {
        struct cd_snapshot *s = make(&x, n);
        if (s == NULL)
            continue;
        struct cd_err err;
        cd_err_init(&err);
        /* as a parser worker does: hashing and compression off the writer thread */
        cd_store_prepare(s, &err);
        while (cd_store_submit(in->st, &s) == -EAGAIN) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL); /* the queue is full: the daemon would drop; we wait */
        }
        cd_snapshot_free(s); /* NULL unless refused for good */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: store_ingest DB SEED\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t seed = 0;
    if (cd_str_to_u64(argv[2], &seed) < 0) {
        fprintf(stderr, "store_ingest: bad seed '%s'\n", argv[2]);
        return 2;
    }
    struct cd_store_opts o;
    cd_store_opts_default(&o);
    o.path = argv[1];
    o.batch_max_snapshots = 32;
    o.batch_linger_ms = 2;
    o.queue_max_snapshots = 256;
    struct ingest in = {NULL, seed};
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(&o, &in.st, &err) != 0) {
        fprintf(stderr, "store_ingest: %s\n", cd_err_msg(&err));
        return 1;
    }
    printf("open\n");
    pthread_t t;
    if (pthread_create(&t, NULL, submitter, &in) != 0)
        return 1;
    pthread_join(t, NULL); /* never returns: the test kills us */
    cd_store_close(in.st);
    return 0;
}
