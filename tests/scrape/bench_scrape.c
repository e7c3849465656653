/*
 * bench_scrape — the scrape engine at fleet scale: T HTTP targets x 3 kinds (heap, goroutine,
 * allocs) every 10 s, measured on the collector side only: CPU of this process (loop + worker
 * threads) as a share of one core, peak RSS, and how late scrapes start against their deadline.
 *
 * Until the daemon exists the engine runs here with a worker pool and a sink that hashes each
 * snapshot's bytes (SHA-256) on a worker and drops it: scrape + hand-off + a pass over the bytes,
 * no parsing, no SQLite (tests/bench/bench_daemon_scrape measures the real daemon). The targets
 * are real net/http/pprof endpoints: P Go processes of the test fleet (-ports) with T/P listeners
 * each, since a thousand Go processes do not fit this 2-core machine next to the collector.
 *
 * The peer, measured in the same run against the same endpoints: the "cron job with curl" way,
 * every 10 s `xargs -P 64 curl` over the same 3T URLs. Its CPU is its children's rusage; its
 * lateness is when each request reached the target (logged by the target) minus the tick.
 *
 * Usage: bench_scrape [--seconds 300] [--targets 1000] [--procs 10] [--peer-ticks 3]
 */
#include "cdtest.h"
#include "fleet.h"

#include "hash.h"
#include "scrape.h"
#include "str.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS   256
#define INTERVAL_MS 10000

static int opt_seconds = 300, opt_targets = 1000, opt_procs = 10, opt_peer_ticks = 3;

static char *read_text(const char *path)
{
    uint8_t *d = NULL;
    size_t n = 0;
    if (cdt_read_file(path, &d, &n) < 0)
        return NULL;
    char *s = cd_str_ndup(d != NULL ? (const char *)d : "", n);
    free(d);
    return s;
}

/* ---- the sink: hash on a worker, drop ------------------------------------------------------ */

struct hash_job {
    struct cd_snapshot *s;
};

static void hash_run(void *arg)
{
    struct hash_job *j = arg;
    if (j->s->raw != NULL)
        cd_hash_sha256(j->s->raw, j->s->raw_len, j->s->content_hash);
}

static void hash_done(void *arg, int cancelled)
{
    (void)cancelled;
    struct hash_job *j = arg;
    cd_snapshot_free(j->s);
    free(j);
}

static int sink(void *ctx, struct cd_snapshot *s)
{
    struct cd_worker *w = ctx;
    struct hash_job *j = malloc(sizeof(*j));
    if (j == NULL)
        return -EAGAIN;
    j->s = s;
    int rc = cd_worker_submit(w, hash_run, hash_done, j, s->raw_len + 1024);
    if (rc < 0) {
        free(j);
        return -EAGAIN;
    }
    return 0;
}

static bool sink_full(void *ctx)
{
    return !cd_worker_has_room(ctx, 65536);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

/* A "Key:   N kB" line of /proc/self/status (procfs files report size 0: read by line). */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    long v = -1;
    char line[256];
    size_t kl = strlen(key);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            sscanf(line + kl + 1, "%ld", &v);
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    return v;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_end(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void on_scrape_stopped(struct cd_scrape *sc, void *ctx)
{
    (void)sc;
    *(bool *)ctx = true;
}

static void on_worker_stopped(struct cd_worker *w, void *ctx)
{
    (void)w;
    *(bool *)ctx = true;
}

static void run_until_flag(uv_loop_t *loop, bool *flag)
{
    while (!*flag)
        uv_run(loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = 0;
        if (cd_str_to_int(argv[i + 1], 1, 1000000, &v) < 0) {
            fprintf(stderr, "bench_scrape: bad value for %s\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--seconds") == 0)
            opt_seconds = v;
        else if (strcmp(argv[i], "--targets") == 0)
            opt_targets = v;
        else if (strcmp(argv[i], "--procs") == 0)
            opt_procs = v > MAX_PROCS ? MAX_PROCS : v;
        else if (strcmp(argv[i], "--peer-ticks") == 0)
            opt_peer_ticks = v;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getenv("CD_FLEET") == NULL) {
        fprintf(stderr, "bench_scrape: run through ctest (CD_FLEET unset)\n");
        return 2;
    }
    char *dir = cdt_tmpdir("bench-scrape");
    char *arrivals = cdt_path(dir, "arrivals.log");
    int per = (opt_targets + opt_procs - 1) / opt_procs;
    char nprocs[16], nports[16];
    snprintf(nprocs, sizeof(nprocs), "%d", opt_procs);
    snprintf(nports, sizeof(nports), "%d", per);
    const char *fargs[] = {"-n",        nprocs, "-ports",    nports,   "-no-gops",
                           "-workload", "idle", "-arrivals", arrivals, NULL};
    struct cdt_fleet fleet;
    if (cdt_fleet_start(&fleet, fargs, 120000) != 0) {
        fprintf(stderr, "bench_scrape: the fleet did not start\n");
        return 1;
    }
    int n_targets = (int)fleet.n < opt_targets ? (int)fleet.n : opt_targets;
    printf("setup: %d HTTP targets (real net/http/pprof, %d Go processes of the test fleet) x 3 "
           "kinds (heap, goroutine, allocs) every %d s\n",
           n_targets, opt_procs, INTERVAL_MS / 1000);

    /* ---- engine phase ---- */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cd_err err;
    cd_err_init(&err);
    struct cd_worker *w = NULL;
    struct cd_worker_opts wo = {.threads = 2, .max_jobs = 1024, .max_bytes = 64ULL << 20};
    if (cd_worker_new(&loop, &wo, &w, &err) < 0)
        return 1;
    struct cd_scrape_opts so = {.sink = sink,
                                .sink_full = sink_full,
                                .sink_ctx = w,
                                .max_idle_connections = n_targets + 64};
    struct cd_scrape *sc = NULL;
    if (cd_scrape_new(&loop, &so, &sc, &err) < 0)
        return 1;
    struct cd_target_set set = {0};
    static const char *kinds[] = {"heap", "goroutine", "allocs"};
    for (int i = 0; i < n_targets; i++) {
        struct cd_target *t = cd_target_set_add(&set);
        t->job = cd_str_dup("bench");
        t->scheme = CD_SCHEME_HTTP;
        t->address = cd_str_printf("127.0.0.1:%d", fleet.targets[i].pprof_port);
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", fleet.targets[i].pid);
        cd_labels_set(&t->labels, "job", "bench");
        cd_labels_set(&t->labels, "instance", t->address);
        cd_labels_set(&t->labels, "pid", pid);
        t->kinds = calloc(3, sizeof(*t->kinds));
        for (int j = 0; j < 3; j++) {
            t->kinds[j].name = cd_str_dup(kinds[j]);
            t->kinds[j].path = cd_str_printf("/debug/pprof/%s", kinds[j]);
            t->kinds[j].interval_ms = INTERVAL_MS;
            t->kinds[j].timeout_ms = 5000;
            t->n_kinds++;
        }
        t->max_body_bytes = 64 << 20;
        cd_target_finish(t);
    }
    double cpu0 = cpu_s(RUSAGE_SELF);
    int64_t t0 = cdt_now_ms();
    cd_scrape_set_targets(sc, &set, &err);
    cd_target_set_free(&set);
    bool end = false;
    uv_timer_t end_timer, tick;
    uv_timer_init(&loop, &end_timer);
    uv_timer_init(&loop, &tick);
    end_timer.data = &end;
    uv_timer_start(&end_timer, on_end, (uint64_t)opt_seconds * 1000, 0);
    uv_timer_start(&tick, on_tick, 1000, 1000);
    run_until_flag(&loop, &end);
    double cpu1 = cpu_s(RUSAGE_SELF);
    int64_t t1 = cdt_now_ms();
    long hwm = status_kib("VmHWM"), rss = status_kib("VmRSS");
    struct cd_scrape_metrics *m = NULL;
    cd_scrape_metrics(sc, &m);
    uint64_t ok = 0, failed = 0;
    for (size_t i = 0; i < m->n_results; i++) {
        if (strcmp(m->results[i].status, "ok") == 0)
            ok += m->results[i].count;
        else
            failed += m->results[i].count;
    }
    uint64_t late_total = 0, late_ok = 0;
    for (int b = 0; b < CD_SCRAPE_LATENESS_BUCKETS; b++) {
        late_total += m->lateness_counts[b];
        if (b < CD_SCRAPE_LATENESS_BUCKETS - 1 && cd_scrape_lateness_bounds_ms[b] <= 100)
            late_ok += m->lateness_counts[b];
    }
    double wall = (double)(t1 - t0) / 1000.0;
    double eng_cpu = cpu1 - cpu0;
    double eng_pct = 100.0 * eng_cpu / wall;
    double eng_within = late_total ? 100.0 * (double)late_ok / (double)late_total : 0;
    double eng_per = ok + failed ? eng_cpu / (double)(ok + failed) * 1000.0 : 0;
    printf("collectord engine: %.0f s, %llu scrapes started, %llu ok, %llu failed, %llu "
           "skipped (overlap %llu, concurrency %llu, queue full %llu), %llu dropped\n",
           wall, (unsigned long long)m->started, (unsigned long long)ok, (unsigned long long)failed,
           (unsigned long long)(m->skipped_overlap + m->skipped_concurrency +
                                m->skipped_queue_full + m->skipped_held),
           (unsigned long long)m->skipped_overlap, (unsigned long long)m->skipped_concurrency,
           (unsigned long long)m->skipped_queue_full, (unsigned long long)m->dropped_queue_full);
    printf("collectord engine: CPU %.2f s = %.1f%% of one core (%.3f ms per scrape); RSS peak "
           "%.1f MiB, now %.1f MiB; %.2f%% of scrapes started within 100 ms of their deadline "
           "(mean lateness %.1f ms); %.1f MiB received\n",
           eng_cpu, eng_pct, eng_per, (double)hwm / 1024.0, (double)rss / 1024.0, eng_within,
           late_total ? (double)m->lateness_sum_ms / (double)late_total : 0,
           (double)m->bytes_received / 1048576.0);
    cd_scrape_metrics_free(m);
    bool stopped = false, wstopped = false;
    uv_close((uv_handle_t *)&end_timer, NULL);
    cd_scrape_stop(sc, 6000, on_scrape_stopped, &stopped);
    run_until_flag(&loop, &stopped);
    cd_scrape_free(sc);
    cd_worker_stop(w, CD_WORKER_DRAIN, on_worker_stopped, &wstopped);
    run_until_flag(&loop, &wstopped);
    cd_worker_free(w);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    /* ---- peer phase: cron + curl ---- */
    char *urls = cdt_path(dir, "urls.txt");
    FILE *uf = fopen(urls, "w");
    int n_urls = 0;
    for (int i = 0; i < n_targets; i++) {
        for (int j = 0; j < 3; j++, n_urls++)
            fprintf(uf, "http://127.0.0.1:%d/debug/pprof/%s\n", fleet.targets[i].pprof_port,
                    kinds[j]);
    }
    fclose(uf);
    /* Arrivals before this point belong to the engine phase. */
    int64_t peer_wall0 = cd_clock_now_wall_ms();
    double ccpu0 = cpu_s(RUSAGE_CHILDREN);
    int64_t p0 = cdt_now_ms();
    int64_t ticks_wall[64];
    pid_t kids[64];
    int nt = opt_peer_ticks > 64 ? 64 : opt_peer_ticks;
    for (int i = 0; i < nt; i++) {
        int64_t at = p0 + (int64_t)i * INTERVAL_MS;
        while (cdt_now_ms() < at) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL); /* the peer is a cron job: it is the one sleeping */
        }
        ticks_wall[i] = cd_clock_now_wall_ms();
        /* One curl per URL: -o applies to one URL only, and bodies must not reach our stdout. */
        char *cmd = cd_str_printf("xargs -a %s -P 64 -I{} curl -s -o /dev/null {}", urls);
        char *av[] = {"/bin/sh", "-c", cmd, NULL};
        kids[i] = cdt_spawn(av, "/dev/null");
        free(cmd);
    }
    for (int i = 0; i < nt; i++) {
        int st;
        waitpid(kids[i], &st, 0);
    }
    double peer_wall = (double)(cdt_now_ms() - p0) / 1000.0;
    if (peer_wall < (double)nt * INTERVAL_MS / 1000.0)
        peer_wall = (double)nt * INTERVAL_MS / 1000.0;
    double peer_cpu = cpu_s(RUSAGE_CHILDREN) - ccpu0;
    /* Lateness from the targets' arrival log. */
    char *arr = read_text(arrivals);
    uint64_t pa = 0, pa_ok = 0;
    double pa_sum = 0;
    for (char *line = arr; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        long long ns = 0;
        if (sscanf(line, "%lld", &ns) == 1) {
            int64_t ms = ns / 1000000;
            if (ms >= peer_wall0) {
                int64_t tick_ms = ticks_wall[0];
                for (int i = 0; i < nt; i++) {
                    if (ticks_wall[i] <= ms)
                        tick_ms = ticks_wall[i];
                }
                int64_t late = ms - tick_ms;
                pa++;
                pa_sum += (double)late;
                if (late <= 100)
                    pa_ok++;
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(arr);
    double peer_pct = 100.0 * peer_cpu / peer_wall;
    double peer_within = pa ? 100.0 * (double)pa_ok / (double)pa : 0;
    double peer_per = pa ? peer_cpu / (double)pa * 1000.0 : 0;
    printf("peer (cron + xargs -P 64 curl): %d ticks, %llu of %d requests arrived, CPU %.2f s = "
           "%.1f%% of one core (%.3f ms per scrape); %.2f%% started within 100 ms of the tick "
           "(mean lateness %.1f ms)\n",
           nt, (unsigned long long)pa, n_urls * nt, peer_cpu, peer_pct, peer_per, peer_within,
           pa ? pa_sum / (double)pa : 0);
    printf(
        "ratio: CPU per scrape, peer / collectord = %.1fx; within-100ms share, collectord %.2f%% "
        "vs peer %.2f%%\n",
        eng_per > 0 ? peer_per / eng_per : 0, eng_within, peer_within);
    bool pass_rss = hwm >= 0 && hwm <= 64 * 1024;
    bool pass_cpu = eng_pct <= 25.0;
    bool pass_late = eng_within >= 99.0;
    printf("targets: RSS <= 64 MiB %s, CPU <= 25%% of one core %s, >= 99%% within 100 ms %s\n",
           pass_rss ? "PASS" : "FAIL", pass_cpu ? "PASS" : "FAIL", pass_late ? "PASS" : "FAIL");

    cdt_fleet_stop(&fleet);
    cdt_rmrf(dir);
    free(dir);
    free(urls);
    free(arrivals);
    return pass_rss && pass_cpu && pass_late ? 0 : 1;
}
