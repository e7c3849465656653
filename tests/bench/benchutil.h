/*
 * benchutil — what the daemon benchmarks share: a process's CPU time and memory from /proc, a
 * thread sampling its RSS, HTTP GETs over the daemon's Unix socket (libcurl, as collectorctl
 * does), the scrape lateness histogram of its /metrics, the fleet's arrival log, percentiles,
 * and the cron peers that fetch the same URLs with curl. Benchmark-only code.
 */
#ifndef CD_BENCHUTIL_H
#define CD_BENCHUTIL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* utime + stime of pid in seconds (/proc/<pid>/stat), or -1. */
double bu_proc_cpu_s(pid_t pid);
/* Sum of bu_proc_cpu_s over the distinct pids of a fleet's targets. */
struct cdt_fleet;
double bu_fleet_cpu_s(const struct cdt_fleet *f);
/* Busy and total CPU time of the whole machine in seconds (/proc/stat, all cores). */
void bu_machine_cpu_s(double *busy, double *total);
/* Seconds a thread of pid spent waiting on a run queue (/proc/<pid>/task/<tid>/schedstat);
 * tid = pid is the main (loop) thread. -1 when unavailable. */
double bu_thread_runq_wait_s(pid_t pid, pid_t tid);
/* A "Key: N kB" line of /proc/<pid>/status (VmRSS, VmHWM), or -1. */
long bu_proc_status_kib(pid_t pid, const char *key);

/* Samples VmRSS of pid every period_ms on a thread of its own; max_kib is the largest seen. */
struct bu_rss {
    pid_t pid;
    int period_ms;
    atomic_bool stop;
    atomic_long max_kib;
    atomic_long samples;
    pthread_t thread;
};
void bu_rss_start(struct bu_rss *r, pid_t pid, int period_ms);
void bu_rss_stop(struct bu_rss *r);

/* One keep-alive connection to the daemon's Unix socket. */
struct bu_client {
    CURL *c;
    char *base; /* "http://localhost" */
    char *body;
    size_t len, cap;
};
int bu_client_init(struct bu_client *k, const char *socket_path);
void bu_client_free(struct bu_client *k);
/* GET path_and_query; the body stays in k->body (NUL-terminated) until the next call. Returns
 * the HTTP status, or -1 on a transport error. */
long bu_client_get(struct bu_client *k, const char *path_and_query);

/* The daemon's collectord_scrape_start_lateness_seconds histogram (cumulative buckets). */
#define BU_MAX_BUCKETS 16
struct bu_lateness {
    size_t n;
    double le[BU_MAX_BUCKETS]; /* upper bounds, seconds; the last is +Inf */
    uint64_t cum[BU_MAX_BUCKETS];
    uint64_t count;
    double sum_s;
};
/* Reads /metrics; 0 or -1. */
int bu_lateness_read(struct bu_client *k, struct bu_lateness *out);
/* b - a, bucket by bucket (same bounds). */
void bu_lateness_delta(const struct bu_lateness *a, const struct bu_lateness *b,
                       struct bu_lateness *out);
/* Observations in buckets whose upper bound is <= bound_s (an exact figure when bound_s is a
 * bucket bound, as 0.1 is). */
uint64_t bu_lateness_within(const struct bu_lateness *h, double bound_s);
/* One metric's value from the /metrics text (first sample of that name), or -1. */
double bu_metric(const char *text, const char *name);

/* Sorts v and returns the p-th percentile (0..100) by nearest rank; 0 for n == 0. */
double bu_percentile(double *v, size_t n, double p);

/* Monotonic and wall clocks in ms. */
int64_t bu_now_ms(void);
int64_t bu_wall_ms(void);

/*
 * The cron peer: every interval_ms a new run over the same URLs, each body written to a file
 * under dir/<tick>/. style "xargs": `xargs -P 64 -n 2 curl -s -o FILE URL` (one curl per URL);
 * "parallel": one `curl -s -Z --parallel-max 64 -K list` per tick (one process, all URLs).
 * A tick starts on time even when the previous one is still running, as cron does. Each URL gets
 * "?tick=N" so the fleet's arrival log tells which tick a request belongs to.
 */
struct bu_peer_result {
    int ticks;
    uint64_t urls_per_tick;
    double cpu_s;          /* the peer's children: sh, xargs, curl */
    double wall_s;         /* first tick to last child reaped */
    double last_finish_s;  /* the slowest tick: start to its last byte written */
    uint64_t arrived;      /* requests the targets saw */
    uint64_t within_100ms; /* of them, arrived within 100 ms of their tick */
    double mean_late_ms, p99_late_ms, max_late_ms;
    uint64_t files;      /* files written with a non-empty body */
    uint64_t file_bytes; /* their bytes */
};
int bu_peer_run(const char *style, const char *dir, const char *const *urls, size_t n_urls,
                int ticks, int interval_ms, const char *arrivals_log, struct bu_peer_result *out);

#endif
