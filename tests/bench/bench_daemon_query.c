/*
 * bench_daemon_query — issue 6 on the real daemon: 50 concurrent list/snapshots clients against
 * a database of 1,000,000 snapshots while 1,000 targets are scraped. Targets: p99 under 50 ms,
 * and no scrape starts late because of the clients.
 *
 * The database is built before collectord starts, with plain SQL into a file that
 * cd_store_migrate() created (the current schema, its triggers keeping the aggregates): 1,000
 * targets, the fleet's real addresses under job "fleet", 1,000 snapshots each (heap, goroutine,
 * allocs in turn, the last 20 hours, 2% timeouts), metadata only (listing never reads blobs).
 * Then the real collectord opens it and scrapes the same 1,000 targets x 3 kinds every 10 s,
 * adding to it. Four windows of --seconds each, after a warm-up:
 *   quiet:   scraping only;
 *   (then one client alone for a quarter of a window: service times without queueing)
 *   paced:   50 threads, each a keep-alive libcurl connection to the Unix socket (as
 *            collectorctl does), each starting one interaction every --think-ms (1 s): 1 in 10
 *            is GET /api/v1/targets, the others GET /api/v1/snapshots?target=<address>&limit=100
 *            of a random target, followed half the time by 1-4 more pages (?cursor=next_cursor).
 *            Fifty people or dashboards at once, each asking every second: the acceptance figure;
 *   closed:  the same clients without any pause: saturation, what the socket serves at most
 *            and how long requests queue then (reported; no target);
 *   peer:    the same request sequence answered by the store layer in this process
 *            (cd_store_targets / cd_store_list through a dedicated reader per thread, JSON built
 *            but not serialized) on the same file while collectord goes on scraping: what the
 *            queries cost without HTTP, JSON text, the socket and the engine's health merge.
 *            A directory scan is not the peer here: bench_store already compares listing with
 *            the file-per-snapshot layout; this one isolates what the query socket adds.
 * Scrape lateness of each window comes from the daemon's /metrics histogram.
 *
 * Usage: bench_daemon_query [--seconds 60] [--clients 50] [--rows 1000000] [--targets 1000]
 *                           [--procs 10] [--warmup 20] [--think-ms 1000]
 */
#include "benchutil.h"
#include "cdtest.h"
#include "daemon.h"
#include "fleet.h"
#include "store.h"
#include "str.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const kinds[] = {"heap", "goroutine", "allocs"};

enum { REQ_TARGETS, REQ_FIRST, REQ_NEXT, REQ_TYPES };
static const char *const req_names[] = {"targets list", "snapshots, 1st page",
                                        "snapshots, next pages"};

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_daemon_query: %s: %s\n", what, detail);
    exit(1);
}

static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sleep_until(int64_t mono_ms)
{
    for (int64_t now = bu_now_ms(); now < mono_ms; now = bu_now_ms()) {
        int64_t d = mono_ms - now > 500 ? 500 : mono_ms - now;
        struct timespec ts = {d / 1000, (long)(d % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a measurement window is a duration, not a wait for an event */
    }
}

/* ---- the database ---------------------------------------------------------------------------- */

static void build_db(const char *path, const struct cdt_fleet *f, size_t rows)
{
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_migrate(path, cd_store_schema_version(), &err) != 0)
        die("migrate", cd_err_msg(&err));
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("open", sqlite3_errmsg(db));
    sqlite3_exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; BEGIN", NULL, NULL,
                 NULL);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db,
                       "INSERT INTO targets (id, job, scheme, address, instance, labels, "
                       "first_seen_ms, last_seen_ms) VALUES (?1, 'fleet', 'http', ?2, ?2, ?3, ?4, "
                       "?4)",
                       -1, &q, NULL);
    int64_t now = bu_wall_ms(), span = 20LL * 3600 * 1000;
    for (size_t t = 0; t < f->n; t++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->targets[t].pprof_port);
        char *labels = cd_str_printf("{\"hostile\":\"none\",\"instance\":\"%s\",\"job\":\"fleet\","
                                     "\"workload\":\"idle\"}",
                                     addr);
        sqlite3_bind_int64(q, 1, (int64_t)t + 1);
        sqlite3_bind_text(q, 2, addr, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 3, labels, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 4, now - span);
        if (sqlite3_step(q) != SQLITE_DONE)
            die("targets", sqlite3_errmsg(db));
        sqlite3_reset(q);
        free(labels);
    }
    sqlite3_finalize(q);
    sqlite3_prepare_v2(db,
                       "INSERT INTO snapshots (target_id, kind, start_ms, duration_ms, "
                       "scheduled_ms, committed_ms, status, http_status, error, request, format, "
                       "content_type, raw_bytes, stored_bytes, sha256) VALUES (?1, ?2, ?3, 7, ?3 "
                       "- 2, ?3 + 40, ?4, ?5, ?6, ?7, 'pprof', 'application/octet-stream', ?8, "
                       "?8, randomblob(32))",
                       -1, &q, NULL);
    uint64_t x = 6;
    size_t nt = f->n;
    for (size_t i = 0; i < rows; i++) {
        size_t t = i % nt;
        const char *kind = kinds[(i / nt) % 3];
        bool timeout = rnd(&x) % 50 == 0;
        char req[96];
        snprintf(req, sizeof(req), "http://127.0.0.1:%d/debug/pprof/%s", f->targets[t].pprof_port,
                 kind);
        sqlite3_bind_int64(q, 1, (int64_t)t + 1);
        sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, now - span + (int64_t)((double)i / (double)rows * (double)span));
        sqlite3_bind_text(q, 4, timeout ? "timeout" : "ok", -1, SQLITE_STATIC);
        if (timeout) {
            sqlite3_bind_int(q, 5, 0);
            sqlite3_bind_text(q, 6, "timeout after 10000 ms", -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_int(q, 5, 200);
            sqlite3_bind_null(q, 6);
        }
        sqlite3_bind_text(q, 7, req, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 8, timeout ? 0 : 2000 + (int)(rnd(&x) % 8000));
        if (sqlite3_step(q) != SQLITE_DONE)
            die("snapshots", sqlite3_errmsg(db));
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die("commit", sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* ---- the clients ------------------------------------------------------------------------------
 */

struct side {
    const char *socket;     /* HTTP clients; NULL for the store peer */
    struct cd_store *store; /* the peer */
    const struct cdt_fleet *fleet;
    int64_t end_ms;
    int think_ms; /* 0: closed loop; else one interaction per think_ms per client */
};

struct client {
    pthread_t th;
    const struct side *side;
    uint64_t seed;
    double *lat[REQ_TYPES];
    size_t n[REQ_TYPES], cap[REQ_TYPES];
    size_t errors;
    char last_error[256];
};

static void record(struct client *c, int type, double ms)
{
    if (c->n[type] == c->cap[type]) {
        size_t cap = c->cap[type] ? c->cap[type] * 2 : 4096;
        double *v = realloc(c->lat[type], cap * sizeof(*v));
        if (v == NULL)
            return;
        c->lat[type] = v;
        c->cap[type] = cap;
    }
    c->lat[type][c->n[type]++] = ms;
}

static double ms_since(int64_t t0_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - t0_ns) / 1e6;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail_once(struct client *c, const char *what, long code)
{
    if (c->errors++ == 0)
        snprintf(c->last_error, sizeof(c->last_error), "%s: %ld", what, code);
}

/* Paced clients start each interaction on their own beat (a random phase within the first
 * period), as people and dashboards do; closed-loop clients never pause. */
static void pace(struct client *c, int64_t *next_ms)
{
    int think = c->side->think_ms;
    if (think <= 0)
        return;
    if (*next_ms == 0)
        *next_ms = bu_now_ms() + (int64_t)(rnd(&c->seed) % (uint64_t)think);
    else
        *next_ms += think;
    int64_t end = c->side->end_ms;
    sleep_until(*next_ms < end ? *next_ms : end);
}

/* The sequence of requests depends only on the seed: both sides ask the same questions. */
static void *http_client(void *arg)
{
    struct client *c = arg;
    struct bu_client k;
    if (bu_client_init(&k, c->side->socket) != 0)
        return NULL;
    const struct cdt_fleet *f = c->side->fleet;
    int64_t beat = 0;
    for (pace(c, &beat); bu_now_ms() < c->side->end_ms; pace(c, &beat)) {
        if (rnd(&c->seed) % 10 == 0) {
            int64_t t0 = now_ns();
            long st = bu_client_get(&k, "/api/v1/targets");
            record(c, REQ_TARGETS, ms_since(t0));
            if (st != 200)
                fail_once(c, "targets: HTTP status", st);
            continue;
        }
        size_t t = rnd(&c->seed) % f->n;
        int more = rnd(&c->seed) % 2 == 0 ? 1 + (int)(rnd(&c->seed) % 4) : 0;
        char *cursor = NULL;
        for (int page = 0; page <= more; page++) {
            char *esc = cursor != NULL ? curl_easy_escape(k.c, cursor, 0) : NULL;
            char *path =
                cd_str_printf("/api/v1/snapshots?target=127.0.0.1:%d&limit=100%s%s",
                              f->targets[t].pprof_port, esc ? "&cursor=" : "", esc ? esc : "");
            curl_free(esc);
            int64_t t0 = now_ns();
            long st = bu_client_get(&k, path);
            record(c, page == 0 ? REQ_FIRST : REQ_NEXT, ms_since(t0));
            free(path);
            free(cursor);
            cursor = NULL;
            if (st != 200) {
                fail_once(c, "snapshots: HTTP status", st);
                break;
            }
            json_t *j = json_loads(k.body, 0, NULL);
            const char *next = json_string_value(json_object_get(j, "next_cursor"));
            if (json_array_size(json_object_get(j, "snapshots")) != 100)
                fail_once(c, "snapshots: rows in a page, not 100",
                          (long)json_array_size(json_object_get(j, "snapshots")));
            cursor = next != NULL ? cd_str_dup(next) : NULL;
            json_decref(j);
            if (cursor == NULL)
                break;
        }
        free(cursor);
    }
    bu_client_free(&k);
    return NULL;
}

static void *store_client(void *arg)
{
    struct client *c = arg;
    struct cd_err err;
    cd_err_init(&err);
    struct cd_store_reader *r = NULL;
    if (cd_store_reader_open(c->side->store, &r, &err) != 0) {
        fail_once(c, "store reader", -1);
        return NULL;
    }
    const struct cdt_fleet *f = c->side->fleet;
    int64_t beat = 0;
    for (pace(c, &beat); bu_now_ms() < c->side->end_ms; pace(c, &beat)) {
        if (rnd(&c->seed) % 10 == 0) {
            json_t *j = NULL;
            int64_t t0 = now_ns();
            int rc = cd_store_targets(r, &j, &err);
            record(c, REQ_TARGETS, ms_since(t0));
            if (rc != 0)
                fail_once(c, "store targets", rc);
            json_decref(j);
            continue;
        }
        size_t t = rnd(&c->seed) % f->n;
        int more = rnd(&c->seed) % 2 == 0 ? 1 + (int)(rnd(&c->seed) % 4) : 0;
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->targets[t].pprof_port);
        char *cursor = NULL;
        for (int page = 0; page <= more; page++) {
            struct cd_store_query q = {.job = "fleet", .address = addr, .limit = 100};
            q.cursor = cursor;
            json_t *j = NULL;
            int64_t t0 = now_ns();
            int rc = cd_store_list(r, &q, &j, &err);
            record(c, page == 0 ? REQ_FIRST : REQ_NEXT, ms_since(t0));
            free(cursor);
            cursor = NULL;
            if (rc != 0) {
                fail_once(c, "store list", rc);
                break;
            }
            const char *next = json_string_value(json_object_get(j, "next_cursor"));
            cursor = next != NULL ? cd_str_dup(next) : NULL;
            json_decref(j);
            if (cursor == NULL)
                break;
        }
        free(cursor);
    }
    cd_store_reader_close(r);
    return NULL;
}

struct figures {
    size_t n[REQ_TYPES + 1];
    double p50[REQ_TYPES + 1], p90[REQ_TYPES + 1], p99[REQ_TYPES + 1], max[REQ_TYPES + 1];
    size_t errors;
};

static void run_clients(struct side *side, int n_clients, int seconds, bool http,
                        struct figures *fig, const char *label)
{
    struct client *cs = calloc((size_t)n_clients, sizeof(*cs));
    side->end_ms = bu_now_ms() + (int64_t)seconds * 1000;
    for (int i = 0; i < n_clients; i++) {
        cs[i].side = side;
        cs[i].seed = 1000 + (uint64_t)i;
        pthread_create(&cs[i].th, NULL, http ? http_client : store_client, &cs[i]);
    }
    for (int i = 0; i < n_clients; i++)
        pthread_join(cs[i].th, NULL);
    memset(fig, 0, sizeof(*fig));
    size_t total = 0;
    for (int t = 0; t < REQ_TYPES; t++)
        for (int i = 0; i < n_clients; i++)
            total += cs[i].n[t];
    double *all = calloc(total + 1, sizeof(*all));
    size_t na = 0;
    for (int t = 0; t <= REQ_TYPES; t++) {
        size_t n = 0;
        for (int i = 0; i < n_clients; i++)
            n += t < REQ_TYPES ? cs[i].n[t] : 0;
        double *v = t < REQ_TYPES ? calloc(n + 1, sizeof(*v)) : all;
        if (t < REQ_TYPES) {
            size_t m = 0;
            for (int i = 0; i < n_clients; i++) {
                memcpy(v + m, cs[i].lat[t], cs[i].n[t] * sizeof(*v));
                memcpy(all + na, cs[i].lat[t], cs[i].n[t] * sizeof(*v));
                m += cs[i].n[t];
                na += cs[i].n[t];
            }
        } else {
            n = na;
        }
        fig->n[t] = n;
        fig->p50[t] = bu_percentile(v, n, 50);
        fig->p90[t] = bu_percentile(v, n, 90);
        fig->p99[t] = bu_percentile(v, n, 99);
        fig->max[t] = n ? v[n - 1] : 0;
        if (t < REQ_TYPES)
            free(v);
    }
    free(all);
    for (int i = 0; i < n_clients; i++) {
        fig->errors += cs[i].errors;
        if (cs[i].errors > 0 && fig->errors == cs[i].errors)
            printf("%s: client %d: %zu errors, first: %s\n", label, i, cs[i].errors,
                   cs[i].last_error);
        for (int t = 0; t < REQ_TYPES; t++)
            free(cs[i].lat[t]);
    }
    free(cs);
    printf("%s: %zu requests in %d s (%.0f per s), %zu errors\n", label, fig->n[REQ_TYPES], seconds,
           (double)fig->n[REQ_TYPES] / seconds, fig->errors);
    for (int t = 0; t <= REQ_TYPES; t++)
        printf("%s:   %-22s n=%-7zu p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n",
               label, t < REQ_TYPES ? req_names[t] : "all requests", fig->n[t], fig->p50[t],
               fig->p90[t], fig->p99[t], fig->max[t]);
}

static void print_lateness(const char *label, const struct bu_lateness *l)
{
    uint64_t within = bu_lateness_within(l, 0.1);
    printf("%s: scrapes started %llu, within 100 ms of their deadline %.2f%% (%llu later), mean "
           "lateness %.1f ms\n",
           label, (unsigned long long)l->count,
           l->count ? 100.0 * (double)within / (double)l->count : 0,
           (unsigned long long)(l->count - within),
           l->count ? l->sum_s / (double)l->count * 1000.0 : 0);
}

static double late_share(const struct bu_lateness *l)
{
    return l->count ? (double)(l->count - bu_lateness_within(l, 0.1)) / (double)l->count : 0;
}

int main(int argc, char **argv)
{
    int seconds = 60, clients = 50, rows = 1000000, n_targets = 1000, procs = 10, warmup = 20;
    int think_ms = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = 0;
        if (cd_str_to_int(argv[i + 1], 1, 100000000, &v) < 0) {
            fprintf(stderr, "bench_daemon_query: bad value for %s\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = v;
        else if (strcmp(argv[i], "--clients") == 0)
            clients = v;
        else if (strcmp(argv[i], "--rows") == 0)
            rows = v;
        else if (strcmp(argv[i], "--targets") == 0)
            n_targets = v;
        else if (strcmp(argv[i], "--procs") == 0)
            procs = v;
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = v;
        else if (strcmp(argv[i], "--think-ms") == 0)
            think_ms = v;
        else {
            fprintf(stderr, "bench_daemon_query: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (getenv("CD_COLLECTORD") == NULL || getenv("CD_FLEET") == NULL) {
        fprintf(stderr, "bench_daemon_query: run through ctest (CD_COLLECTORD/CD_FLEET unset)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    struct cdt_daemon d;
    cdt_daemon_init(&d, "bench-daemon-query");
    char nprocs[16], nports[16];
    snprintf(nprocs, sizeof(nprocs), "%d", procs);
    snprintf(nports, sizeof(nports), "%d", (n_targets + procs - 1) / procs);
    const char *fargs[] = {"-n", nprocs, "-ports", nports, "-no-gops", "-workload", "idle", NULL};
    struct cdt_fleet fleet;
    if (cdt_fleet_start(&fleet, fargs, 120000) != 0)
        die("fleet", "did not start");
    if ((int)fleet.n > n_targets)
        fleet.n = (size_t)n_targets;

    int64_t b0 = bu_now_ms();
    build_db(d.db, &fleet, (size_t)rows);
    struct stat sb;
    stat(d.db, &sb);
    printf("database: %d snapshots of %zu targets (3 kinds, 20 hours), built with SQL into the "
           "current schema in %.1f s, %.0f MiB\n",
           rows, fleet.n, (double)(bu_now_ms() - b0) / 1000.0, (double)sb.st_size / 1048576.0);

    char *cfg = cdt_daemon_default_config("10s", "    profiling_config:\n"
                                                 "      pprof_config:\n"
                                                 "        cpu: {enabled: false}\n"
                                                 "        mutex: {enabled: false}\n"
                                                 "        block: {enabled: false}\n");
    cdt_daemon_write_config(&d, cfg);
    free(cfg);
    cdt_daemon_write_targets(&d, &fleet, false);
    printf("setup: the real collectord on it, scraping the same %zu targets (%d fleet processes x "
           "%s listeners, real net/http/pprof) x 3 kinds every 10 s; %d clients; windows of %d s "
           "after a %d s warm-up\n",
           fleet.n, procs, nports, clients, seconds, warmup);
    fflush(stdout);
    int64_t t_start = bu_now_ms();
    cdt_daemon_start(&d, NULL, 120000);
    struct bu_client k;
    bu_client_init(&k, d.socket);
    sleep_until(t_start + (int64_t)warmup * 1000);

    struct bu_lateness l0, l1, l2, l3, lp, quiet, busy, paced, peer;
    if (bu_lateness_read(&k, &l0) != 0)
        die("metrics", "no lateness histogram");
    sleep_until(bu_now_ms() + (int64_t)seconds * 1000);
    bu_lateness_read(&k, &l1);
    bu_lateness_delta(&l0, &l1, &quiet);
    print_lateness("quiet (scraping only)", &quiet);
    fflush(stdout);

    struct side http = {.socket = d.socket, .fleet = &fleet};
    struct figures fh, fs, f1, fp;
    /* Service times without queueing first: one client, a quarter of a window. */
    run_clients(&http, 1, seconds / 4 > 0 ? seconds / 4 : 1, true, &f1, "collectord API, 1 client");
    /* Then the clients as people and dashboards are: each one interaction (a targets list, or a
     * target's snapshots, 1 to 5 pages) every think_ms. */
    char plabel[96];
    snprintf(plabel, sizeof(plabel), "collectord API, %d clients, one interaction per %d ms each",
             clients, think_ms);
    struct side paced_side = http;
    paced_side.think_ms = think_ms;
    bu_lateness_read(&k, &l1);
    run_clients(&paced_side, clients, seconds, true, &fp, plabel);
    bu_lateness_read(&k, &lp);
    bu_lateness_delta(&l1, &lp, &paced);
    print_lateness("with the paced clients", &paced);
    fflush(stdout);
    /* Then saturation: the same clients in a closed loop, no pause at all. */
    bu_lateness_read(&k, &l1);
    double cpu0 = bu_proc_cpu_s(d.pid);
    run_clients(&http, clients, seconds, true, &fh, "collectord API, closed loop");
    double cpu1 = bu_proc_cpu_s(d.pid);
    bu_lateness_read(&k, &l2);
    bu_lateness_delta(&l1, &l2, &busy);
    printf("collectord API, closed loop: collectord CPU %.1f%% of one core during the window\n",
           100.0 * (cpu1 - cpu0) / seconds);
    print_lateness("with the closed-loop clients", &busy);
    fflush(stdout);

    struct cd_store_opts so;
    cd_store_opts_default(&so);
    so.path = d.db;
    so.disk_reserve_bytes = -1;
    struct cd_store *st = NULL;
    struct cd_err err;
    cd_err_init(&err);
    if (cd_store_open(&so, &st, &err) != 0)
        die("store", cd_err_msg(&err));
    struct side store = {.store = st, .fleet = &fleet};
    run_clients(&store, clients, seconds, false, &fs, "peer (store layer)");
    cd_store_close(st);
    bu_lateness_read(&k, &l3);
    bu_lateness_delta(&l2, &l3, &peer);
    print_lateness("with the store-level peer", &peer);
    bu_client_free(&k);
    cdt_daemon_stop(&d, SIGTERM, 30000);

    printf("ratio: p99 collectord API / store layer = %.1fx (all requests), p50 %.1fx\n",
           fs.p99[REQ_TYPES] > 0 ? fh.p99[REQ_TYPES] / fs.p99[REQ_TYPES] : 0,
           fs.p50[REQ_TYPES] > 0 ? fh.p50[REQ_TYPES] / fs.p50[REQ_TYPES] : 0);
    printf("ratio: p99 paced / one client alone = %.1fx\n",
           f1.p99[REQ_TYPES] > 0 ? fp.p99[REQ_TYPES] / f1.p99[REQ_TYPES] : 0);
    double lq = late_share(&quiet), lb = late_share(&busy), lpc = late_share(&paced);
    printf("ratio: scrapes later than 100 ms, paced / closed loop / quiet = %.2f%% / %.2f%% / "
           "%.2f%%\n",
           100 * lpc, 100 * lb, 100 * lq);
    bool pass_p99 = fp.p99[REQ_TYPES] < 50.0 && fp.errors == 0 && fh.errors == 0;
    /* "Because of them": the share of late starts does not grow with the clients (a tenth of a
     * percent of slack: both windows are samples), paced or saturating. */
    bool pass_late = lb <= lq + 0.001 && lpc <= lq + 0.001;
    printf("targets: p99 < 50 ms with %d clients %s (%.2f ms); closed loop, no target: p99 %.2f "
           "ms at %.0f requests/s; no scrape late because of the clients %s (%.2f%% / %.2f%% "
           "late vs %.2f%% quiet)\n",
           clients, pass_p99 ? "PASS" : "FAIL", fp.p99[REQ_TYPES], fh.p99[REQ_TYPES],
           (double)fh.n[REQ_TYPES] / seconds, pass_late ? "PASS" : "FAIL", 100 * lpc, 100 * lb,
           100 * lq);
    cdt_fleet_stop(&fleet);
    cdt_daemon_cleanup(&d);
    curl_global_cleanup();
    return pass_p99 && pass_late ? 0 : 1;
}
