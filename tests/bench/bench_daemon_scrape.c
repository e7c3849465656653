/*
 * bench_daemon_scrape — issue 3 on the real daemon: 1,000 targets x 3 kinds (heap, goroutine,
 * allocs) every 10 s for 5 minutes on this 2-core machine. Targets: collectord RSS <= 64 MiB,
 * CPU <= 25% of one core, >= 99% of scrapes started within 100 ms of their deadline.
 *
 * collectord: the real binary on a temp config (file_sd from the fleet's list), doing all it does
 * in production: scrape, parse (pprof), store in SQLite (WAL, blobs deduplicated, summaries and
 * series). Measured after a warm-up, over the window:
 *   - CPU: utime + stime of the process from /proc/<pid>/stat (every thread);
 *   - RSS: the kernel's peak (VmHWM, from start) and the peak of VmRSS sampled every 100 ms;
 *   - lateness: the daemon's collectord_scrape_start_lateness_seconds histogram over the window
 *     (its 0.1 s bucket is exact), cross-checked with start_ms - scheduled_ms of the snapshots
 *     stored in the window (read from the database after the daemon stopped).
 * The targets: real net/http/pprof, 10 processes of the test fleet with 100 listeners each
 * (-ports), idle workload.
 *
 * The peer, measured afterwards against the same 3,000 URLs with the same 10 s interval: a cron
 * job with curl that writes every body to a file of its own (no parsing, no index, no database):
 *   xargs:    `xargs -P 64 -n 2 curl -s -o FILE URL`, one curl process per URL;
 *   parallel: one `curl -s -Z --parallel-max 64 -K LIST` per tick, all URLs in one process (the
 *             cheapest a script can do with curl).
 * Its CPU is the whole process tree's (sh, xargs, curl: rusage of reaped children); its
 * lateness is when each request reached its target (the fleet's -arrivals log) minus its tick.
 *
 * Usage: bench_daemon_scrape [--seconds 300] [--targets 1000] [--procs 10] [--peer-ticks 6]
 *                            [--warmup 20] [--peer xargs|parallel|both|none]
 *                            [--ingest-queue-bytes SIZE]   (limits.ingest_queue_bytes, e.g. 16MiB)
 */
#include "benchutil.h"
#include "cdtest.h"
#include "daemon.h"
#include "fleet.h"
#include "str.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define INTERVAL_MS 10000

static const char *const kinds[] = {"heap", "goroutine", "allocs"};

static void sleep_until(int64_t mono_ms)
{
    for (int64_t now = bu_now_ms(); now < mono_ms; now = bu_now_ms()) {
        int64_t d = mono_ms - now > 500 ? 500 : mono_ms - now;
        struct timespec ts = {d / 1000, (long)(d % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* the measurement window is a duration, not a wait for an event */
    }
}

struct db_late {
    int64_t n, within, ok, late_sum, late_max;
};

/* Snapshots scheduled in [from, to) (wall ms), from the database file. */
static int db_lateness(const char *path, int64_t from, int64_t to, struct db_late *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*), total(start_ms - scheduled_ms <= 100), "
                                "total(status = 'ok'), total(start_ms - scheduled_ms), "
                                "max(start_ms - scheduled_ms) FROM snapshots "
                                "WHERE scheduled_ms >= ?1 AND scheduled_ms < ?2",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, from);
        sqlite3_bind_int64(q, 2, to);
        if (sqlite3_step(q) == SQLITE_ROW) {
            out->n = sqlite3_column_int64(q, 0);
            out->within = (int64_t)sqlite3_column_double(q, 1);
            out->ok = (int64_t)sqlite3_column_double(q, 2);
            out->late_sum = (int64_t)sqlite3_column_double(q, 3);
            out->late_max = sqlite3_column_int64(q, 4);
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static void print_peer(const char *name, const struct bu_peer_result *p, double ours_ms)
{
    uint64_t n = (uint64_t)p->ticks * p->urls_per_tick;
    double per = p->arrived ? p->cpu_s / (double)p->arrived * 1000.0 : 0;
    printf("peer %-8s: %d ticks x %llu URLs: %llu of %llu requests reached the targets, %llu "
           "files (%.1f MiB) written; CPU %.2f s over %.0f s = %.1f%% of one core, %.3f ms per "
           "scrape; slowest tick took %.1f s; %.2f%% started within 100 ms of their tick "
           "(mean %.0f ms, p99 %.0f ms, max %.0f ms)\n",
           name, p->ticks, (unsigned long long)p->urls_per_tick, (unsigned long long)p->arrived,
           (unsigned long long)n, (unsigned long long)p->files, (double)p->file_bytes / 1048576.0,
           p->cpu_s, p->wall_s, 100.0 * p->cpu_s / p->wall_s, per, p->last_finish_s,
           p->arrived ? 100.0 * (double)p->within_100ms / (double)p->arrived : 0, p->mean_late_ms,
           p->p99_late_ms, p->max_late_ms);
    printf("ratio %-8s: CPU per scrape, peer / collectord = %.1fx\n", name,
           ours_ms > 0 ? per / ours_ms : 0);
}

int main(int argc, char **argv)
{
    int seconds = 300, n_targets = 1000, procs = 10, peer_ticks = 6, warmup = 20;
    const char *peer = "both", *queue_bytes = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = 0;
        if (strcmp(argv[i], "--peer") == 0) {
            peer = argv[i + 1];
            continue;
        }
        if (strcmp(argv[i], "--ingest-queue-bytes") == 0) {
            queue_bytes = argv[i + 1];
            continue;
        }
        if (cd_str_to_int(argv[i + 1], 0, 1000000, &v) < 0) {
            fprintf(stderr, "bench_daemon_scrape: bad value for %s\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = v;
        else if (strcmp(argv[i], "--targets") == 0)
            n_targets = v;
        else if (strcmp(argv[i], "--procs") == 0)
            procs = v;
        else if (strcmp(argv[i], "--peer-ticks") == 0)
            peer_ticks = v;
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = v;
        else {
            fprintf(stderr, "bench_daemon_scrape: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (getenv("CD_COLLECTORD") == NULL || getenv("CD_FLEET") == NULL) {
        fprintf(stderr, "bench_daemon_scrape: run through ctest (CD_COLLECTORD/CD_FLEET unset)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    /* ---- the targets ---- */
    struct cdt_daemon d;
    cdt_daemon_init(&d, "bench-daemon-scrape");
    char *arrivals = cdt_path(d.dir, "arrivals.log");
    char nprocs[16], nports[16];
    snprintf(nprocs, sizeof(nprocs), "%d", procs);
    snprintf(nports, sizeof(nports), "%d", (n_targets + procs - 1) / procs);
    const char *fargs[] = {"-n",        nprocs, "-ports",    nports,   "-no-gops",
                           "-workload", "idle", "-arrivals", arrivals, NULL};
    struct cdt_fleet fleet;
    if (cdt_fleet_start(&fleet, fargs, 120000) != 0) {
        fprintf(stderr, "bench_daemon_scrape: the fleet did not start\n");
        return 1;
    }
    if ((int)fleet.n > n_targets)
        fleet.n = (size_t)n_targets;
    n_targets = (int)fleet.n;

    /* ---- collectord ---- */
    char *cfg = cdt_daemon_default_config("10s", "    profiling_config:\n"
                                                 "      pprof_config:\n"
                                                 "        cpu: {enabled: false}\n"
                                                 "        mutex: {enabled: false}\n"
                                                 "        block: {enabled: false}\n");
    if (queue_bytes != NULL) {
        /* limits.ingest_queue_bytes: how much scraped data may wait for the parsers */
        char *at = strstr(cfg, "limits:\n");
        char *with = cd_str_printf("%.*slimits:\n  ingest_queue_bytes: %s\n%s", (int)(at - cfg),
                                   cfg, queue_bytes, at + strlen("limits:\n"));
        free(cfg);
        cfg = with;
    }
    cdt_daemon_write_config(&d, cfg);
    free(cfg);
    cdt_daemon_write_targets(&d, &fleet, false);
    printf("setup: %d HTTP targets (real net/http/pprof: %d fleet processes x %s listeners, idle "
           "workload) x 3 kinds (heap, goroutine, allocs) every 10 s; the real collectord "
           "(scrape + parse + SQLite); warm-up %d s, window %d s\n",
           n_targets, procs, nports, warmup, seconds);
    fflush(stdout);
    int64_t t_start = bu_now_ms();
    cdt_daemon_start(&d, NULL, 60000);
    struct bu_rss rss;
    bu_rss_start(&rss, d.pid, 100);
    struct bu_client k;
    bu_client_init(&k, d.socket);

    sleep_until(t_start + (int64_t)warmup * 1000);
    struct bu_lateness l0, l1, dl;
    double cpu0 = bu_proc_cpu_s(d.pid), fleet0 = bu_fleet_cpu_s(&fleet);
    double runq0 = bu_thread_runq_wait_s(d.pid, d.pid), mbusy0, mtotal0;
    bu_machine_cpu_s(&mbusy0, &mtotal0);
    int64_t w0 = bu_now_ms(), wall0 = bu_wall_ms();
    if (bu_lateness_read(&k, &l0) != 0) {
        fprintf(stderr, "bench_daemon_scrape: no lateness histogram in /metrics\n");
        return 1;
    }
    sleep_until(w0 + (int64_t)seconds * 1000);
    if (bu_lateness_read(&k, &l1) != 0)
        return 1;
    double cpu1 = bu_proc_cpu_s(d.pid), fleet1 = bu_fleet_cpu_s(&fleet);
    double runq1 = bu_thread_runq_wait_s(d.pid, d.pid), mbusy1, mtotal1;
    bu_machine_cpu_s(&mbusy1, &mtotal1);
    int64_t w1 = bu_now_ms(), wall1 = bu_wall_ms();
    long hwm = bu_proc_status_kib(d.pid, "VmHWM");
    bu_rss_stop(&rss);
    /* What the daemon itself says about the window's scrapes. */
    char *metrics = cd_str_dup(k.body);
    bu_client_get(&k, "/api/v1/status");
    json_t *status = json_loads(k.body, 0, NULL);
    bu_client_free(&k);
    cdt_daemon_stop(&d, SIGTERM, 30000);

    bu_lateness_delta(&l0, &l1, &dl);
    double wall = (double)(w1 - w0) / 1000.0;
    double cpu = cpu1 - cpu0;
    uint64_t within = bu_lateness_within(&dl, 0.1);
    double ours_ms = dl.count ? cpu / (double)dl.count * 1000.0 : 0;
    struct db_late dbl;
    db_lateness(d.db, wall0, wall1 - 10000, &dbl); /* the last 10 s may still have been running */
    printf("collectord: %.0f s window: %llu scrapes started, %.1f per s\n", wall,
           (unsigned long long)dl.count, (double)dl.count / wall);
    printf("collectord: CPU %.2f s = %.1f%% of one core (%.3f ms per scrape, scrape + parse + "
           "store)\n",
           cpu, 100.0 * cpu / wall, ours_ms);
    printf("collectord: RSS peak %.1f MiB (VmHWM, whole run), sampled peak %.1f MiB (%ld "
           "samples)\n",
           (double)hwm / 1024.0, (double)atomic_load(&rss.max_kib) / 1024.0,
           atomic_load(&rss.samples));
    printf("collectord: %.2f%% of scrapes started within 100 ms of their deadline (/metrics "
           "histogram: %llu of %llu, mean lateness %.1f ms)\n",
           dl.count ? 100.0 * (double)within / (double)dl.count : 0, (unsigned long long)within,
           (unsigned long long)dl.count, dl.count ? dl.sum_s / (double)dl.count * 1000.0 : 0);
    printf("collectord: database check: %lld snapshots scheduled in the window (%lld ok), %.2f%% "
           "with start - scheduled <= 100 ms (mean %.1f ms, max %lld ms)\n",
           (long long)dbl.n, (long long)dbl.ok,
           dbl.n ? 100.0 * (double)dbl.within / (double)dbl.n : 0,
           dbl.n ? (double)dbl.late_sum / (double)dbl.n : 0, (long long)dbl.late_max);
    printf("machine: %.1f%% busy over the window (both cores): collectord %.1f%%, the fleet's Go "
           "processes %.1f%% (serving the profiles), everything else %.1f%% of one core; "
           "collectord's loop thread waited %.2f s on the run queue\n",
           mtotal1 > mtotal0 ? 100.0 * (mbusy1 - mbusy0) / (mtotal1 - mtotal0) : 0,
           100.0 * cpu / wall, 100.0 * (fleet1 - fleet0) / wall,
           100.0 * ((mbusy1 - mbusy0) - cpu - (fleet1 - fleet0)) / wall, runq1 - runq0);
    size_t qi;
    json_t *qv;
    json_array_foreach(json_object_get(status, "queues"), qi, qv)
    {
        printf("collectord: queue %s: %lld of %lld at the end of the window\n",
               json_string_value(json_object_get(qv, "name")),
               (long long)json_integer_value(json_object_get(qv, "depth")),
               (long long)json_integer_value(json_object_get(qv, "capacity")));
    }
    json_t *db = json_object_get(status, "database");
    printf("collectord: database %.1f MiB, %lld snapshots in all\n",
           (double)json_integer_value(json_object_get(db, "size_bytes")) / 1048576.0,
           (long long)json_integer_value(json_object_get(db, "snapshots")));
    json_decref(status);
    free(metrics);
    fflush(stdout);

    /* ---- the peers ---- */
    const char **urls = calloc((size_t)n_targets * 3, sizeof(*urls));
    size_t n_urls = 0;
    for (int i = 0; i < n_targets; i++)
        for (int j = 0; j < 3; j++)
            urls[n_urls++] = cd_str_printf("http://127.0.0.1:%d/debug/pprof/%s",
                                           fleet.targets[i].pprof_port, kinds[j]);
    static const char *const styles[] = {"xargs", "parallel"};
    for (int s = 0; s < 2; s++) {
        if (strcmp(peer, "both") != 0 && strcmp(peer, styles[s]) != 0)
            continue;
        char *pdir = cdt_path(d.dir, styles[s]);
        mkdir(pdir, 0755);
        struct bu_peer_result pr;
        bu_peer_run(styles[s], pdir, urls, n_urls, peer_ticks, INTERVAL_MS, arrivals, &pr);
        print_peer(styles[s], &pr, ours_ms);
        fflush(stdout);
        cdt_rmrf(pdir);
        free(pdir);
    }

    bool pass_rss = hwm > 0 && hwm <= 64 * 1024;
    bool pass_cpu = 100.0 * cpu / wall <= 25.0;
    bool pass_late = dl.count > 0 && 100.0 * (double)within / (double)dl.count >= 99.0;
    printf("targets: RSS <= 64 MiB %s (%.1f MiB), CPU <= 25%% of one core %s (%.1f%%), >= 99%% "
           "within 100 ms %s (%.2f%%)\n",
           pass_rss ? "PASS" : "FAIL", (double)hwm / 1024.0, pass_cpu ? "PASS" : "FAIL",
           100.0 * cpu / wall, pass_late ? "PASS" : "FAIL",
           dl.count ? 100.0 * (double)within / (double)dl.count : 0);

    for (size_t i = 0; i < n_urls; i++)
        free((char *)urls[i]);
    free(urls);
    cdt_fleet_stop(&fleet);
    free(arrivals);
    cdt_daemon_cleanup(&d);
    curl_global_cleanup();
    return pass_rss && pass_cpu && pass_late ? 0 : 1;
}
