/*
 * bench_store — sustained ingest and listing speed of the store, each figure next to the peer
 * measured in the same run: what people do without collectord, a cron job with curl writing one
 * file per snapshot into <root>/<job>/<instance>/<kind>/<time>.pb.gz, and listing by scanning
 * that directory tree (readdir + stat + sort by mtime, newest 100).
 *
 *  1. small snapshots: 2-20 KiB gzip-like (incompressible) blobs, a summary and 4 series each,
 *     submitted by 2 threads that prepare them (hash, compression) as parser workers do;
 *  2. large blobs, 8-64 MiB: incompressible gzip-like, and trace-like (made of real Go traces
 *     from ../shared when present — they compress ~1.7x — or synthetic bytes of that ratio);
 *  3. listing the newest 100 of one target among 1,000,000 snapshots.
 *
 * The peers run in this process (no fork/exec per file, so they are faster than a real script).
 * Usage: bench_store [SMALL_COUNT [LARGE_MIB [LIST_ROWS]]]   (defaults 20000 1024 1000000)
 */
#include "storetest.h"

#include "cdtest.h"
#include "hash.h"
#include "str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define MIB (1024.0 * 1024.0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, detail);
    exit(1);
}

/* ---- feeding the store ---------------------------------------------------------------------- */

struct feed {
    struct cd_store *st;
    struct cd_snapshot **snaps;
    size_t n;
    int threads;
    bool prepare;
    atomic_size_t next;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t done, failed;
};

static void feed_done(struct cd_snapshot *s, int rc, void *ctx)
{
    (void)s;
    struct feed *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->done++;
    f->failed += rc != 0;
    if (f->done == f->n)
        pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static void *feeder(void *arg)
{
    struct feed *f = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        if (i >= f->n)
            return NULL;
        struct cd_snapshot *s = f->snaps[i];
        f->snaps[i] = NULL;
        s->done = feed_done;
        s->done_ctx = f;
        struct cd_err err;
        cd_err_init(&err);
        if (f->prepare && cd_store_prepare(s, &err) != 0)
            die("prepare", cd_err_msg(&err));
        int rc;
        while ((rc = cd_store_submit(f->st, &s)) == -EAGAIN) {
            struct timespec ts = {0, 100000}; /* the queue is full: wait for the writer */
            nanosleep(&ts, NULL);
        }
        if (rc != 0)
            die("submit", strerror(-rc));
    }
}

/* Ingests snaps[0..n) (consumed) with `threads` submitters; returns seconds until the last
 * done callback. */
static double ingest(const char *path, int page_size, struct cd_snapshot **snaps, size_t n,
                     int threads, bool prepare)
{
    struct cd_store_opts o;
    cd_store_opts_default(&o);
    o.path = path;
    o.page_size = page_size;
    o.disk_reserve_bytes = -1;
    struct feed f;
    memset(&f, 0, sizeof(f));
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cond, NULL);
    f.snaps = snaps;
    f.n = n;
    f.prepare = prepare;
    atomic_init(&f.next, 0);
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(&o, &f.st, &err) != 0)
        die("open", cd_err_msg(&err));
    /* earlier runs' dirty pages and deleted files must not slow this one down */
    sync();
    double t0 = now_s();
    pthread_t th[8];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, feeder, &f);
    pthread_mutex_lock(&f.mu);
    while (f.done < f.n)
        pthread_cond_wait(&f.cond, &f.mu);
    pthread_mutex_unlock(&f.mu);
    double secs = now_s() - t0;
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    cd_store_close(f.st);
    if (f.failed > 0)
        die("ingest", "snapshots failed");
    pthread_cond_destroy(&f.cond);
    pthread_mutex_destroy(&f.mu);
    return secs;
}

/* ---- the peer: one file per snapshot -------------------------------------------------------- */

struct peer {
    const char *root;
    struct cd_snapshot **snaps;
    size_t n;
    bool fsync_each;
    atomic_size_t next;
};

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("peer write", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void *peer_worker(void *arg)
{
    struct peer *p = arg;
    char dir[512], path[640], tmp[660];
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n)
            return NULL;
        const struct cd_snapshot *s = p->snaps[i];
        snprintf(dir, sizeof(dir), "%s/%s/%s/%s", p->root, s->job, s->instance, s->kind);
        snprintf(path, sizeof(path), "%s/%" PRId64 ".pb.gz", dir, s->start_ms);
        if (p->fsync_each) {
            /* curl -o tmp && sync tmp && mv tmp final: a careful script */
            snprintf(tmp, sizeof(tmp), "%s.tmp", path);
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0)
                die("peer open", strerror(errno));
            write_all(fd, s->raw, s->raw_len);
            if (fsync(fd) != 0)
                die("peer fsync", strerror(errno));
            close(fd);
            if (rename(tmp, path) != 0)
                die("peer rename", strerror(errno));
        } else {
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0)
                die("peer open", strerror(errno));
            write_all(fd, s->raw, s->raw_len);
            close(fd);
        }
    }
}

static void mkdirs(const char *root, struct cd_snapshot **snaps, size_t n)
{
    char dir[512];
    for (size_t i = 0; i < n; i++) {
        const struct cd_snapshot *s = snaps[i];
        snprintf(dir, sizeof(dir), "%s/%s", root, s->job);
        mkdir(dir, 0755);
        snprintf(dir, sizeof(dir), "%s/%s/%s", root, s->job, s->instance);
        mkdir(dir, 0755);
        snprintf(dir, sizeof(dir), "%s/%s/%s/%s", root, s->job, s->instance, s->kind);
        mkdir(dir, 0755);
    }
}

/* Writes the snapshots as files (not consumed); the directories exist beforehand, as they would
 * after the first cron run. */
static double peer_write(const char *root, struct cd_snapshot **snaps, size_t n, bool fsync_each,
                         int threads)
{
    mkdir(root, 0755);
    mkdirs(root, snaps, n);
    sync(); /* as for the store: start clean */
    struct peer p = {root, snaps, n, fsync_each, 0};
    atomic_init(&p.next, 0);
    double t0 = now_s();
    pthread_t th[8];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, peer_worker, &p);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    return now_s() - t0;
}

/* ---- data ------------------------------------------------------------------------------------ */

static struct cd_snapshot *snap_of(uint64_t i, int targets, const char *kind, uint8_t *raw,
                                   size_t len, bool summary)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "10.1.%d.%d:6060", (int)(i % (uint64_t)targets) / 250,
             (int)(i % (uint64_t)targets) % 250);
    struct cd_snapshot *s = cd_snapshot_new();
    s->job = cd_str_dup("bench");
    s->scheme = cd_str_dup("http");
    s->address = cd_str_dup(addr);
    s->instance = cd_str_dup(addr);
    s->labels_json = cd_str_dup("{\"env\":\"bench\",\"team\":\"store\"}");
    s->kind = cd_str_dup(kind);
    s->request = cd_str_printf("http://%s/debug/pprof/%s", addr, kind);
    s->start_ms = 1700000000000LL + (int64_t)i * 7;
    s->duration_ms = 30;
    s->status = CD_SNAP_OK;
    s->http_status = 200;
    s->content_type = cd_str_dup("application/octet-stream");
    s->raw = raw;
    s->raw_len = len;
    if (summary) {
        s->format = CD_FORMAT_PPROF;
        s->summary_json = cd_str_printf(
            "{\"sample_types\":[\"alloc_objects\",\"alloc_space\",\"inuse_objects\","
            "\"inuse_space\"],\"total\":%" PRIu64 ",\"top\":[{\"fn\":\"main.handler\","
            "\"flat\":%" PRIu64 ",\"cum\":%" PRIu64 "},{\"fn\":\"encoding/json.Marshal\","
            "\"flat\":1234,\"cum\":5678},{\"fn\":\"runtime.mallocgc\",\"flat\":99,\"cum\":"
            "4242},{\"fn\":\"net/http.(*conn).serve\",\"flat\":1,\"cum\":77777}],"
            "\"duration_ns\":0,\"period\":524288}",
            i * 13, i % 1000, i % 5000);
        s->series = calloc(4, sizeof(*s->series));
        s->n_series = 4;
        static const char *const names[] = {"inuse_space", "inuse_objects", "alloc_space",
                                            "alloc_objects"};
        for (int k = 0; k < 4; k++) {
            snprintf(s->series[k].name, sizeof(s->series[k].name), "%s.%s", kind, names[k]);
            s->series[k].value = (double)(i * (uint64_t)(k + 1));
        }
    }
    return s;
}

static struct cd_snapshot **make_small(size_t n, uint64_t seed, size_t *bytes)
{
    static const char *const kinds[] = {"heap", "allocs", "goroutine", "mutex"};
    struct cd_snapshot **v = calloc(n, sizeof(*v));
    uint64_t x = seed;
    *bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 2048 + (size_t)(rnd(&x) % (18 * 1024));
        uint8_t *raw = malloc(len);
        st_fill_gzipish(raw, len, rnd(&x));
        v[i] = snap_of(i, 200, kinds[i % 4], raw, len, true);
        *bytes += len;
    }
    return v;
}

/* Trace-like bytes: slices of real Go traces when ../shared has them, else synthetic varint
 * event streams; either way about 1.7x compressible by zstd. */
struct tracesrc {
    uint8_t *data;
    size_t len;
    const char *what;
};

static void trace_source(struct tracesrc *t)
{
    static const char *const files[] = {"go1.19_traceutils_staticcheck.trace",
                                        "go1.19_gen_with_cpu.trace",
                                        "go1.20_gotraceui_stress.trace", "go1.19_gen_small.trace",
                                        "go1.19_traceutils_test-encoding-json.trace"};
    const char *shared = cdt_shared_dir();
    t->data = NULL;
    t->len = 0;
    t->what = "synthetic varint event streams";
    for (size_t i = 0; shared != NULL && i < sizeof(files) / sizeof(files[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/testdata/go-traces/%s", shared, files[i]);
        uint8_t *d = NULL;
        size_t n = 0;
        if (cdt_read_file(path, &d, &n) != 0)
            continue;
        t->data = realloc(t->data, t->len + n);
        memcpy(t->data + t->len, d, n);
        t->len += n;
        free(d);
        t->what = "slices of real Go 1.19/1.20 traces from ../shared";
    }
    if (t->len > 0)
        return;
    t->len = 8 << 20;
    t->data = malloc(t->len);
    uint64_t x = 99;
    size_t i = 0;
    while (i + 16 < t->len) {
        t->data[i++] = (uint8_t)(rnd(&x) % 48); /* event type */
        int args = 1 + (int)(rnd(&x) % 4);
        for (int a = 0; a < args; a++) {
            uint64_t v = rnd(&x) % (a == 0 ? 4096 : 1u << 21); /* time delta, ids */
            do {
                t->data[i++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
            } while (v > 0 && i < t->len);
        }
    }
    t->len = i;
}

static struct cd_snapshot **make_large(size_t total_mib, bool trace, const struct tracesrc *src,
                                       size_t *n_out, size_t *bytes)
{
    size_t cap = total_mib / 8 + 2, n = 0;
    struct cd_snapshot **v = calloc(cap, sizeof(*v));
    uint64_t x = trace ? 7 : 8;
    *bytes = 0;
    while (*bytes < total_mib * (size_t)MIB && n < cap) {
        size_t len = (8 + (size_t)(rnd(&x) % 57)) << 20;
        uint8_t *raw = malloc(len);
        if (!trace) {
            st_fill_gzipish(raw, len, rnd(&x));
        } else {
            /* the real traces, taken from a random offset each time, round and round */
            size_t off = (size_t)(rnd(&x) % src->len);
            for (size_t i = 0; i < len;) {
                size_t k = src->len - off < len - i ? src->len - off : len - i;
                memcpy(raw + i, src->data + off, k);
                i += k;
                off = (off + k) % src->len;
            }
            memcpy(raw, &n, sizeof(n)); /* unique: no deduplication between blobs */
            raw[0] = 'T';               /* no gzip magic: arrives uncompressed */
        }
        v[n] = snap_of(n, 20, "trace", raw, len, false);
        n++;
        *bytes += len;
    }
    *n_out = n;
    return v;
}

static void free_snaps(struct cd_snapshot **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cd_snapshot_free(v[i]);
    free(v);
}

static struct cd_snapshot **clone_all(struct cd_snapshot **v, size_t n)
{
    struct cd_snapshot **c = calloc(n, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        uint8_t *raw = malloc(v[i]->raw_len);
        memcpy(raw, v[i]->raw, v[i]->raw_len);
        c[i] = snap_of(0, 1, v[i]->kind, raw, v[i]->raw_len, v[i]->summary_json != NULL);
        free(c[i]->address);
        free(c[i]->instance);
        c[i]->address = cd_str_dup(v[i]->address);
        c[i]->instance = cd_str_dup(v[i]->instance);
        c[i]->start_ms = v[i]->start_ms;
    }
    return c;
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

/* ---- benchmarks ------------------------------------------------------------------------------ */

static void bench_small(const char *dir, size_t n)
{
    size_t bytes = 0;
    struct cd_snapshot **base = make_small(n, 1, &bytes);
    printf("\n[1] small snapshots: %zu x 2-20 KiB gzip-like (incompressible) blobs, avg %.1f KiB, "
           "summary ~0.4 KiB + 4 series each, 200 targets x 4 kinds; 2 submitter threads "
           "hash+submit, the writer commits\n",
           n, (double)bytes / (double)n / 1024.0);
    static const int page_sizes[] = {16384, 4096, 65536};
    double ours = 0;
    for (size_t k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof(name), "small-%d.db", page_sizes[k]);
        char *path = cdt_path(dir, name);
        struct cd_snapshot **v = clone_all(base, n);
        double s = ingest(path, page_sizes[k], v, n, 2, true);
        free(v);
        int64_t fsz = file_size(path);
        unlink(path);
        printf("  collectord store, page %5d: %6zu in %6.2f s = %8.0f snapshots/s (%6.1f MiB/s), "
               "file %.0f MiB%s\n",
               page_sizes[k], n, s, (double)n / s, (double)bytes / MIB / s, (double)fsz / MIB,
               k == 0 ? "   <- the default" : "");
        if (k == 0)
            ours = (double)n / s;
        free(path);
    }
    for (int fs = 1; fs >= 0; fs--) {
        char *root = cdt_path(dir, fs ? "peer-small-fsync" : "peer-small-plain");
        double s = peer_write(root, base, n, fs, 2);
        double rate = (double)n / s;
        printf("  peer: file per snapshot, %-26s %6zu in %6.2f s = %8.0f snapshots/s  -> "
               "store/peer = %.2fx\n",
               fs ? "write+fsync+rename (2 thr):" : "plain write (2 thr):", n, s, rate,
               ours / rate);
        cdt_rmrf(root);
        free(root);
    }
    printf("  target >= 2000 snapshots/s: %s (%.0f)\n", ours >= 2000 ? "met" : "NOT MET", ours);
    free_snaps(base, n);
}

static void bench_large(const char *dir, size_t mib)
{
    struct tracesrc src;
    trace_source(&src);
    for (int trace = 0; trace <= 1; trace++) {
        size_t n = 0, bytes = 0;
        struct cd_snapshot **base = make_large(mib, trace, &src, &n, &bytes);
        printf("\n[2%c] large blobs, %s: %zu blobs of 8-64 MiB, %.0f MiB in all\n",
               trace ? 'b' : 'a',
               trace ? "trace-like, compressible (stored zstd)"
                     : "gzip-like, incompressible (stored as received)",
               n, (double)bytes / MIB);
        if (trace)
            printf("  trace bytes: %s\n", src.what);
        static const int page_sizes[] = {16384, 4096, 65536};
        double ours = 0;
        for (size_t k = 0; k < 3; k++) {
            for (int prepared = 0; prepared <= 1; prepared++) {
                if (k > 0 && prepared)
                    continue;
                char name[64];
                snprintf(name, sizeof(name), "large-%d-%d-%d.db", trace, page_sizes[k], prepared);
                char *path = cdt_path(dir, name);
                struct cd_snapshot **v = clone_all(base, n);
                if (prepared) {
                    for (size_t i = 0; i < n; i++) {
                        struct cd_err err;
                        cd_err_init(&err);
                        cd_store_prepare(v[i], &err);
                    }
                }
                double s = ingest(path, page_sizes[k], v, n, 2, true);
                free(v);
                double rate = (double)bytes / MIB / s;
                printf("  collectord store, page %5d, %s: %6.0f MiB in %5.2f s = %6.1f MiB/s, "
                       "file %.0f MiB%s\n",
                       page_sizes[k],
                       prepared ? "writer only (hashed+compressed before)"
                                : "end to end (2 threads hash+compress)",
                       (double)bytes / MIB, s, rate, (double)file_size(path) / MIB,
                       k == 0 && !prepared ? "   <- the default" : "");
                if (k == 0 && !prepared)
                    ours = rate;
                unlink(path);
                free(path);
            }
        }
        for (int fs = 1; fs >= 0; fs--) {
            char *root = cdt_path(dir, fs ? "peer-large-fsync" : "peer-large-plain");
            double s = peer_write(root, base, n, fs, 2);
            double rate = (double)bytes / MIB / s;
            printf("  peer: file per snapshot, %-26s %6.0f MiB in %5.2f s = %6.1f MiB/s  -> "
                   "store/peer = %.2fx\n",
                   fs ? "write+fsync+rename (2 thr):" : "plain write (2 thr):", (double)bytes / MIB,
                   s, rate, ours / rate);
            cdt_rmrf(root);
            free(root);
        }
        printf("  target >= 200 MiB/s: %s (%.1f)\n", ours >= 200 ? "met" : "NOT MET", ours);
        free_snaps(base, n);
    }
    free(src.data);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct mfile {
    char name[64];
    struct timespec mtime;
};

static int cmp_mtime_desc(const void *a, const void *b)
{
    const struct mfile *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
    return strcmp(y->name, x->name);
}

/* The peer's listing: every kind directory of one target, stat each file, newest 100. */
static size_t peer_list(const char *target_dir, struct mfile *buf, size_t cap)
{
    static const char *const kinds[] = {"heap", "allocs", "goroutine", "cpu"};
    size_t n = 0;
    char path[1024];
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof(path), "%s/%s", target_dir, kinds[k]);
        DIR *d = opendir(path);
        if (d == NULL)
            continue;
        int dfd = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < cap) {
            if (e->d_name[0] == '.')
                continue;
            struct stat sb;
            if (fstatat(dfd, e->d_name, &sb, 0) != 0)
                continue;
            cd_str_copy(buf[n].name, e->d_name, sizeof(buf[n].name));
            buf[n].mtime = sb.st_mtim;
            n++;
        }
        closedir(d);
    }
    qsort(buf, n, sizeof(*buf), cmp_mtime_desc);
    return n < 100 ? n : 100;
}

static void bench_list(const char *dir, size_t rows)
{
    const int targets = 100;
    static const char *const kinds[] = {"heap", "allocs", "goroutine", "cpu"};
    char *path = cdt_path(dir, "list.db");
    printf("\n[3] listing: %zu snapshots, %d targets x 4 kinds; newest 100 of one target\n", rows,
           targets);
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_migrate(path, cd_store_schema_version(), &err) != 0)
        die("migrate", cd_err_msg(&err));
    /* generated with plain SQL in one transaction (triggers and indexes as in production) */
    double t0 = now_s();
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; BEGIN", NULL, NULL,
                 NULL);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db,
                       "INSERT INTO targets (id, job, scheme, address, instance, first_seen_ms, "
                       "last_seen_ms) VALUES (?1, 'bench', 'http', ?2, ?2, 0, 0)",
                       -1, &q, NULL);
    for (int t = 1; t <= targets; t++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "10.2.0.%d:6060", t);
        sqlite3_bind_int(q, 1, t);
        sqlite3_bind_text(q, 2, addr, -1, SQLITE_TRANSIENT);
        sqlite3_step(q);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_prepare_v2(db,
                       "INSERT INTO snapshots (target_id, kind, start_ms, duration_ms, "
                       "committed_ms, status, http_status, raw_bytes, stored_bytes, sha256) "
                       "VALUES (?1, ?2, ?3, 30, ?3, ?4, 200, 12000, 12000, randomblob(32))",
                       -1, &q, NULL);
    uint64_t x = 5;
    for (size_t i = 0; i < rows; i++) {
        sqlite3_bind_int(q, 1, (int)(rnd(&x) % (uint64_t)targets) + 1);
        sqlite3_bind_text(q, 2, kinds[i % 4], -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, 1700000000000LL + (int64_t)i * 100);
        sqlite3_bind_text(q, 4, i % 50 == 0 ? "timeout" : "ok", -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            die("generate", sqlite3_errmsg(db));
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die("generate", sqlite3_errmsg(db));
    sqlite3_close(db);
    printf("  generated in %.1f s, file %.0f MiB\n", now_s() - t0, (double)file_size(path) / MIB);

    struct cd_store_opts o;
    cd_store_opts_default(&o);
    o.path = path;
    struct cd_store *st = NULL;
    if (cd_store_open(&o, &st, &err) != 0)
        die("open", cd_err_msg(&err));
    struct cd_store_reader *r = NULL;
    if (cd_store_reader_get(st, &r, &err) != 0)
        die("reader", cd_err_msg(&err));
    enum { RUNS = 300 };
    static double ms[RUNS];
    struct {
        const char *what;
        int mode;
    } cases[] = {
        {"one target by id", 0},          {"one target by job+address", 1},
        {"one target and kind", 2},       {"whole fleet (no filter)", 3},
        {"one target, 20th page", 4},     {"status=timeout, fleet", 5},
        {"one job (all 100 targets)", 6},
    };
    double ours = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (int i = 0; i < RUNS; i++) {
            struct cd_store_query qq = {0};
            char addr[32];
            int t = 1 + i % targets;
            snprintf(addr, sizeof(addr), "10.2.0.%d:6060", t);
            if (cases[c].mode == 1) {
                qq.job = "bench";
                qq.address = addr;
            } else if (cases[c].mode == 6) {
                qq.job = "bench";
            } else if (cases[c].mode != 3 && cases[c].mode != 5) {
                qq.target_id = t;
            }
            if (cases[c].mode == 2)
                qq.kind = kinds[i % 4];
            if (cases[c].mode == 5)
                qq.status = "timeout";
            char cursor[64];
            if (cases[c].mode == 4) {
                /* 19 pages deep: a cursor at the 1900th newest snapshot of the fleet per target */
                size_t back = 1900 * (size_t)targets < rows / 2 ? 1900 * (size_t)targets : rows / 2;
                snprintf(cursor, sizeof(cursor), "v1.%" PRId64 ".%zu",
                         (int64_t)(1700000000000LL + (int64_t)(rows - back) * 100),
                         rows - back + 1);
                qq.cursor = cursor;
            }
            json_t *j = NULL;
            double a = now_s();
            if (cd_store_list(r, &qq, &j, &err) != 0)
                die("list", cd_err_msg(&err));
            ms[i] = (now_s() - a) * 1000.0;
            if (json_array_size(json_object_get(j, "snapshots")) != 100)
                die("list", "not 100 rows");
            json_decref(j);
        }
        qsort(ms, RUNS, sizeof(ms[0]), cmp_double);
        printf("  collectord store, %-27s median %6.3f ms, p99 %6.3f ms, max %6.3f ms (%d runs, "
               "JSON built)\n",
               cases[c].what, ms[RUNS / 2], ms[RUNS * 99 / 100], ms[RUNS - 1], RUNS);
        if (c == 0)
            ours = ms[RUNS / 2];
    }
    cd_store_reader_put(st, r);
    cd_store_close(st);

    /* the peer: one target's files (rows / targets of them) in its kind directories */
    char *root = cdt_path(dir, "peer-list");
    char tdir[1024], fpath[1200];
    mkdir(root, 0755);
    snprintf(tdir, sizeof(tdir), "%s/10.2.0.1:6060", root);
    mkdir(tdir, 0755);
    size_t per_target = rows / (size_t)targets;
    for (int k = 0; k < 4; k++) {
        snprintf(fpath, sizeof(fpath), "%s/%s", tdir, kinds[k]);
        mkdir(fpath, 0755);
    }
    static uint8_t body[12000];
    for (size_t i = 0; i < per_target; i++) {
        snprintf(fpath, sizeof(fpath), "%s/%s/%" PRId64 ".pb.gz", tdir, kinds[i % 4],
                 (int64_t)(1700000000000LL + (int64_t)i * 100));
        int fd = open(fpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        write_all(fd, body, sizeof(body));
        close(fd);
    }
    struct mfile *buf = calloc(per_target + 16, sizeof(*buf));
    enum { PRUNS = 30 };
    double pms[PRUNS];
    for (int i = 0; i < PRUNS; i++) {
        double a = now_s();
        size_t got = peer_list(tdir, buf, per_target + 16);
        pms[i] = (now_s() - a) * 1000.0;
        if (got != 100)
            die("peer list", "not 100 files");
    }
    qsort(pms, PRUNS, sizeof(pms[0]), cmp_double);
    printf("  peer: readdir+stat+sort of one target's %zu files (4 kind dirs, warm cache): median "
           "%.3f ms  -> peer/store = %.1fx\n",
           per_target, pms[PRUNS / 2], pms[PRUNS / 2] / ours);
    printf("  target < 10 ms: %s (%.3f ms)\n", ours < 10 ? "met" : "NOT MET", ours);
    free(buf);
    cdt_rmrf(root);
    free(root);
    free(path);
}

int main(int argc, char **argv)
{
    size_t small = 20000, large_mib = 1024, list_rows = 1000000;
    uint64_t v = 0;
    if (argc > 1 && cd_str_to_u64(argv[1], &v) == 0)
        small = (size_t)v;
    if (argc > 2 && cd_str_to_u64(argv[2], &v) == 0)
        large_mib = (size_t)v;
    if (argc > 3 && cd_str_to_u64(argv[3], &v) == 0)
        list_rows = (size_t)v;
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *base = getenv("CD_BENCH_DIR");
    char *dir = NULL;
    if (base != NULL && *base != '\0') {
        dir = cd_str_printf("%s/bench_store-%d", base, (int)getpid());
        mkdir(dir, 0755);
    } else {
        dir = cdt_tmpdir("bench-store");
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    printf("bench_store: SQLite %s, zstd %s, %ld CPUs (load average %.2f when starting), files in "
           "%s (set CD_BENCH_DIR to move them)\n",
           sqlite3_libversion(), ZSTD_versionString(), cpus, load[0], dir);
    if (small > 0)
        bench_small(dir, small);
    if (large_mib > 0)
        bench_large(dir, large_mib);
    if (list_rows > 0)
        bench_list(dir, list_rows);
    const char *keep = getenv("CD_BENCH_KEEP"); /* keep the listing database to poke at */
    if (keep == NULL || strcmp(keep, "1") != 0)
        cdt_rmrf(dir);
    free(dir);
    return 0;
}
