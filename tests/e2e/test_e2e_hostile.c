/*
 * End to end, hostile targets: one fleet launcher runs a well-behaved process and one per hostile
 * mode (slow, garbage, truncated, huge, hang, reset, error, busy), each with net/http/pprof and a
 * gops agent, scraped every second with a 3 s timeout and limits.max_body_bytes 8 MiB. Over the
 * run collectord stays up and answers, its resident memory (sampled from /proc) stays under a
 * bound, every failure is recorded with the status its mode calls for (in the snapshot list and
 * in the target's last_error), busy answers do not mark a target down, and the well-behaved
 * process keeps being scraped fine next to them.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* How long the hostile run lasts at least (RSS is sampled throughout) and at most. */
#define RUN_MIN_MS 20000
#define RUN_MAX_MS 60000

#if defined(__SANITIZE_ADDRESS__)
#define CD_E2E_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CD_E2E_ASAN 1
#endif
#endif
/* A sane bound for this load: SQLite's caches (32 MiB writer, 8 MiB per reader), the in-flight
 * byte budget actually used by 8 MiB bodies, the parser pool. AddressSanitizer adds its shadow
 * memory and a 256 MiB quarantine of freed blocks. */
#ifdef CD_E2E_ASAN
#define RSS_BOUND_KIB (900L * 1024)
#else
#define RSS_BOUND_KIB (192L * 1024)
#endif

static const char config_yaml[] = "global:\n"
                                  "  scrape_interval: 1s\n"
                                  "  scrape_timeout: 3s\n"
                                  "storage:\n"
                                  "  path: @DIR@/collectord.db\n"
                                  "query:\n"
                                  "  socket: @DIR@/collectord.sock\n"
                                  "  socket_mode: \"0600\"\n"
                                  "limits:\n"
                                  "  max_body_bytes: 8MiB\n"
                                  "  shutdown_timeout: 10s\n"
                                  "scrape_configs:\n"
                                  "  - job_name: fleet\n"
                                  "    file_sd_configs:\n"
                                  "      - files: [@DIR@/targets.json]\n"
                                  "    profiling_config:\n"
                                  "      pprof_config:\n"
                                  "        cpu: {enabled: true, seconds: 1}\n"
                                  "        heap: {enabled: true}\n"
                                  "        allocs: {enabled: false}\n"
                                  "        goroutine: {enabled: true}\n"
                                  "        goroutine_dump: {enabled: true}\n"
                                  "        mutex: {enabled: false}\n"
                                  "        block: {enabled: false}\n"
                                  "        trace: {enabled: true, seconds: 1}\n"
                                  "    gops_config:\n"
                                  "      goroutine_dump: {enabled: true}\n"
                                  "      memstats: {enabled: true}\n"
                                  "      stats: {enabled: true}\n"
                                  "      version: {enabled: true}\n"
                                  "      heap: {enabled: true}\n";

/* The fleet's processes: a well-behaved one and one per hostile mode. */
#define N_MODES 9

/* What each (mode, scheme) must show: statuses that must appear among its snapshots, statuses
 * that must never appear, its health at the end (NULL: either, e.g. slow gops, whose 9-byte
 * version answer can finish within the timeout), and a word its target's last_error holds (""
 * means last_error must be null). */
struct expect {
    const char *mode, *scheme;
    const char *must[3];
    const char *never[3];
    const char *health;
    const char *error_word;
};

/* "never" lists what a mode cannot produce whatever the machine's load: a timeout can hit any
 * target on a starved CI box under sanitizers, so only the hostile modes that never answer in
 * time list "ok" as impossible, only well-formed answers rule out invalid, and a well-behaved
 * target's last_error is not required to stay empty (a starved scrape may have timed out). */
static const struct expect expected[] = {
    {"none", "http", {"ok"}, {"invalid", "connect_error", "too_large"}, "up", NULL},
    {"none", "gops", {"ok"}, {"invalid", "connect_error", "too_large"}, "up", NULL},
    {"slow", "http", {"timeout"}, {"invalid", "ok"}, "down", "timed out"},
    {"slow", "gops", {"timeout"}, {"invalid"}, NULL, NULL},
    {"garbage", "http", {"invalid"}, {"ok"}, "up", "invalid"},
    {"garbage", "gops", {"invalid"}, {"ok"}, "up", "invalid"},
    {"truncated", "http", {"invalid"}, {"connect_error", "too_large"}, "up", "invalid"},
    {"truncated", "gops", {"invalid"}, {"connect_error", "too_large"}, "up", "invalid"},
    {"huge", "http", {"too_large"}, {"ok"}, "up", "max_body_bytes"},
    {"huge", "gops", {"too_large"}, {"ok"}, "up", "max_body_bytes"},
    {"hang", "http", {"timeout"}, {"ok"}, "down", "timed out"},
    {"hang", "gops", {"timeout"}, {"ok"}, "down", "timeout"},
    {"reset", "http", {"connect_error"}, {"ok"}, "down", "reset"},
    {"reset", "gops", {"connect_error"}, {"ok"}, "down", "reset"},
    {"error", "http", {"http_error", "busy"}, {"ok"}, "up", "HTTP 500"},
    {"error", "gops", {"timeout"}, {"ok"}, "down", "timeout"},
    {"busy", "http", {"busy", "ok"}, {"invalid", "connect_error", "too_large"}, "up", "busy"},
    {"busy", "gops", {"ok"}, {"invalid", "connect_error", "too_large"}, "up", NULL},
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

struct state {
    struct cdt_fleet fleet;
    struct cdt_daemon d;
    json_t *seen; /* "mode/scheme/status" -> first snapshot id seen with it */
    long rss_max_kib;
    long rss_first_kib;
};

static int setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    const char *args[] = {"-n",        "9",
                          "-workload", "idle",
                          "-hostiles", "none,slow,garbage,truncated,huge,hang,reset,error,busy",
                          NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 60000), 0);
    assert_int_equal(s->fleet.n, N_MODES);
    cdt_daemon_init(&s->d, "e2e-hostile");
    cdt_daemon_write_config(&s->d, config_yaml);
    cdt_daemon_write_targets(&s->d, &s->fleet, true);
    cdt_daemon_start(&s->d, NULL, 30000);
    s->seen = json_object();
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    struct state *s = *st;
    int ws;
    if (!e2e_stop_clean(&s->d, 20000, &ws))
        fail_msg("collectord did not stop cleanly after the hostile run (status %d)", ws);
    cdt_daemon_cleanup(&s->d);
    cdt_fleet_stop(&s->fleet);
    json_decref(s->seen);
    free(s);
    return 0;
}

static void sample_rss(struct state *s)
{
    long kib = cdt_daemon_rss_kib(&s->d);
    if (kib < 0) {
        cdt_daemon_print_log(&s->d, 40);
        fail_msg("collectord (pid %d) is gone", (int)s->d.pid);
    }
    if (s->rss_first_kib == 0)
        s->rss_first_kib = kib;
    if (kib > s->rss_max_kib)
        s->rss_max_kib = kib;
    if (kib > RSS_BOUND_KIB) {
        cdt_daemon_print_log(&s->d, 20);
        fail_msg("collectord's RSS reached %ld KiB (bound %ld KiB)", kib, RSS_BOUND_KIB);
    }
}

/* Folds the snapshots of the last few seconds into s->seen, checking each on the way: failures
 * say why, invalid ones keep their bytes, too_large ones keep none. */
static void collect(struct state *s)
{
    const char *args[] = {"snapshots", "-n", "1000", "--since", "8s", NULL};
    json_t *j = cdt_ctl_json(&s->d, 20000, args);
    if (j == NULL) {
        cdt_daemon_print_log(&s->d, 40);
        fail_msg("collectorctl snapshots failed during the hostile run");
    }
    size_t i;
    const json_t *snap;
    json_array_foreach(json_object_get(j, "snapshots"), i, snap)
    {
        const char *mode = e2e_label(snap, "hostile");
        const char *scheme = e2e_jstr(snap, "scheme");
        const char *status = e2e_jstr(snap, "status");
        assert_non_null(mode);
        int64_t id = e2e_jint(snap, "id", 0);
        if (strcmp(status, "ok") != 0 && strcmp(status, "invalid") != 0 &&
            e2e_jstr(snap, "error") == NULL)
            fail_msg("snapshot %lld (%s %s) has status %s and no error", (long long)id, mode,
                     scheme, status);
        if (strcmp(status, "invalid") == 0) {
            assert_non_null(e2e_jstr(snap, "parse_error"));
            assert_true(e2e_jint(snap, "size_bytes", 0) > 0);
            assert_non_null(e2e_jstr(snap, "sha256"));
        }
        if (strcmp(status, "too_large") == 0)
            assert_int_equal(e2e_jint(snap, "size_bytes", -1), 0);
        if (strcmp(status, "http_error") == 0) {
            assert_int_equal(e2e_jint(snap, "http_status", 0), 500);
            assert_true(e2e_jint(snap, "size_bytes", 0) > 0); /* Go's error text, kept */
        }
        char key[96];
        snprintf(key, sizeof(key), "%s/%s/%s", mode, scheme, status);
        if (json_object_get(s->seen, key) == NULL)
            json_object_set_new(s->seen, key, json_integer(id));
    }
    json_decref(j);
}

static bool seen(const struct state *s, const struct expect *e, const char *status)
{
    char key[96];
    snprintf(key, sizeof(key), "%s/%s/%s", e->mode, e->scheme, status);
    return json_object_get(s->seen, key) != NULL;
}

static const json_t *target_of(const json_t *list, const struct expect *e)
{
    return e2e_find_target(list, e->scheme, "hostile", e->mode);
}

/* NULL when e holds now, else what is missing. */
static const char *unmet(const struct state *s, const json_t *list, const struct expect *e,
                         char *why, size_t n)
{
    for (int k = 0; k < 3 && e->must[k] != NULL; k++) {
        if (!seen(s, e, e->must[k])) {
            snprintf(why, n, "%s %s: no %s snapshot yet", e->mode, e->scheme, e->must[k]);
            return why;
        }
    }
    const json_t *t = target_of(list, e);
    if (t == NULL) {
        snprintf(why, n, "%s %s: not in the target list", e->mode, e->scheme);
        return why;
    }
    const char *health = e2e_jstr(t, "health");
    if (e->health != NULL && strcmp(health, e->health) != 0) {
        snprintf(why, n, "%s %s: health %s, expected %s", e->mode, e->scheme, health, e->health);
        return why;
    }
    const char *err = e2e_jstr(t, "last_error");
    if (e->error_word != NULL && e->error_word[0] == '\0' && err != NULL) {
        snprintf(why, n, "%s %s: last_error '%s', expected none", e->mode, e->scheme, err);
        return why;
    }
    if (e->error_word != NULL && e->error_word[0] != '\0' &&
        (err == NULL || strstr(err, e->error_word) == NULL)) {
        snprintf(why, n, "%s %s: last_error '%s' does not say '%s'", e->mode, e->scheme,
                 err != NULL ? err : "(null)", e->error_word);
        return why;
    }
    return NULL;
}

static void test_hostile_fleet(void **st)
{
    struct state *s = *st;
    int64_t t0 = cdt_now_ms();
    char why[512] = "";
    bool met = false;
    json_t *list = NULL;
    while (cdt_now_ms() - t0 < RUN_MAX_MS) {
        sample_rss(s);
        collect(s);
        json_decref(list);
        const char *args[] = {"list", NULL};
        list = cdt_ctl_json(&s->d, 20000, args);
        if (list == NULL) {
            cdt_daemon_print_log(&s->d, 40);
            fail_msg("collectorctl list failed during the hostile run");
        }
        met = true;
        for (size_t i = 0; i < N_EXPECTED && met; i++)
            met = unmet(s, list, &expected[i], why, sizeof(why)) == NULL;
        if (met && cdt_now_ms() - t0 >= RUN_MIN_MS)
            break;
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!met) {
        cdt_daemon_print_log(&s->d, 30);
        char *dump = json_dumps(s->seen, JSON_SORT_KEYS);
        fail_msg("after %d s: %s (statuses seen: %s)", RUN_MAX_MS / 1000, why, dump);
    }
    /* Statuses no mode may produce. */
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const struct expect *e = &expected[i];
        for (int k = 0; k < 3 && e->never[k] != NULL; k++) {
            if (seen(s, e, e->never[k]))
                fail_msg("%s %s: a snapshot with status %s", e->mode, e->scheme, e->never[k]);
        }
    }
    /* Busy is neither a success nor a failure: the busy target's CPU profile is refused every
     * time (the process holds its own), yet the target is up with no failures counted. */
    const json_t *busy = e2e_find_target(list, "http", "hostile", "busy");
    const json_t *cpu = e2e_target_kind(busy, "cpu");
    assert_string_equal(e2e_jstr(cpu, "last_status"), "busy");
    assert_int_equal(e2e_jint(cpu, "consecutive_failures", -1), 0);
    assert_string_equal(e2e_jstr(busy, "health"), "up");
    /* The well-behaved process was scraped all along. */
    const json_t *good = e2e_find_target(list, "http", "hostile", "none");
    const json_t *heap = e2e_target_kind(good, "heap");
    int64_t runs = (cdt_now_ms() - t0) / 1000;
    if (e2e_jint(heap, "snapshots", 0) < runs / 2)
        fail_msg("the well-behaved target has %lld heap snapshots after %lld s",
                 (long long)e2e_jint(heap, "snapshots", 0), (long long)runs);
    json_decref(list);

    /* Still answering, and says so. */
    const char *sargs[] = {"status", NULL};
    json_t *status = cdt_ctl_json(&s->d, 10000, sargs);
    assert_non_null(status);
    assert_int_equal(e2e_jint(json_object_get(status, "targets"), "total", 0), 2 * N_MODES);
    assert_true(e2e_jint(json_object_get(status, "scrapes"), "failed", 0) > 0);
    json_decref(status);
    sample_rss(s);
    print_message("hostile run: %lld s, RSS first %ld KiB, max %ld KiB (bound %ld KiB)\n",
                  (long long)((cdt_now_ms() - t0) / 1000), s->rss_first_kib, s->rss_max_kib,
                  RSS_BOUND_KIB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_fleet, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
