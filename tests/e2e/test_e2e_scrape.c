/*
 * End to end, the scrape engine: the real collectord scrapes one fleet process (the mixed
 * workload: CPU, allocations, leaks, lock contention) over net/http/pprof and over its gops
 * agent, every kind of DESIGN.md §2 enabled on a 2 s interval. Each (scheme, kind) must be
 * scraped on its schedule (every start on the same phase of the interval, consecutive starts one
 * interval apart), stored with status ok and sane timings, and `collectorctl fetch` must return
 * exactly the bytes the snapshot's sha256 and size describe; the gops version snapshot must equal
 * a direct 0x04 to the agent.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define INTERVAL_MS 2000
/* Slots are exact on the wall clock but for millisecond rounding. How late a start may follow
 * its slot: loop latency on a loaded two-core CI box under sanitizers (a slot waiting for the
 * process's CPU singleton starts when the other kind's second is over). */
#define SLOT_TOLERANCE_MS 5
#define LATE_BOUND_MS     3000

static const char job_yaml[] = "    profiling_config:\n"
                               "      pprof_config:\n"
                               "        cpu: {enabled: true, seconds: 1}\n"
                               "        heap: {enabled: true}\n"
                               "        allocs: {enabled: true}\n"
                               "        goroutine: {enabled: true}\n"
                               "        goroutine_dump: {enabled: true}\n"
                               "        mutex: {enabled: true}\n"
                               "        block: {enabled: true}\n"
                               "        threadcreate: {enabled: true}\n"
                               "        trace: {enabled: true, seconds: 1}\n"
                               "    gops_config:\n"
                               "      goroutine_dump: {enabled: true}\n"
                               "      memstats: {enabled: true}\n"
                               "      stats: {enabled: true}\n"
                               "      version: {enabled: true}\n"
                               "      heap: {enabled: true}\n";

struct expect {
    const char *scheme;
    const char *kind;
    const char *format;
    int64_t min_duration_ms; /* CPU profiles and traces last their seconds */
};

static const struct expect expected[] = {
    {"http", "cpu", "pprof", 900},
    {"http", "heap", "pprof", 0},
    {"http", "allocs", "pprof", 0},
    {"http", "goroutine", "pprof", 0},
    {"http", "goroutine_dump", "goroutine_text", 0},
    {"http", "mutex", "pprof", 0},
    {"http", "block", "pprof", 0},
    {"http", "threadcreate", "pprof", 0},
    {"http", "trace", "trace", 900},
    {"gops", "goroutine_dump", "goroutine_text", 0},
    {"gops", "memstats", "gops_memstats", 0},
    {"gops", "stats", "gops_stats", 0},
    {"gops", "version", "gops_version", 0},
    {"gops", "heap", "pprof", 0},
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

struct state {
    struct cdt_fleet fleet;
    struct cdt_daemon d;
    int64_t t0_ms; /* wall clock when the daemon started */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    const char *args[] = {"-workload", "mixed", NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 30000), 0);
    cdt_daemon_init(&s->d, "e2e-scrape");
    char *yaml = cdt_daemon_default_config("2s", job_yaml);
    cdt_daemon_write_config(&s->d, yaml);
    free(yaml);
    cdt_daemon_write_targets(&s->d, &s->fleet, true);
    s->t0_ms = wall_ms();
    cdt_daemon_start(&s->d, NULL, 30000);
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    struct state *s = *st;
    int ws;
    e2e_stop_clean(&s->d, 15000, &ws);
    cdt_daemon_cleanup(&s->d);
    cdt_fleet_stop(&s->fleet);
    free(s);
    return 0;
}

/* Every expected (scheme, kind) has at least `need` snapshots and its last one is ok. */
static bool enough(const json_t *list, void *ctx)
{
    int need = *(int *)ctx;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const json_t *t = e2e_find_target(list, expected[i].scheme, "workload", "mixed");
        const json_t *k = e2e_target_kind(t, expected[i].kind);
        if (k == NULL || e2e_jint(k, "snapshots", 0) < need)
            return false;
    }
    return true;
}

static int cmp_time(const void *a, const void *b)
{
    int64_t x = e2e_jint(*(const json_t *const *)a, "time_unix_ms", 0);
    int64_t y = e2e_jint(*(const json_t *const *)b, "time_unix_ms", 0);
    return x < y ? -1 : x > y;
}

/* Distance of two phases on the interval's circle. */
static int64_t phase_distance(int64_t a, int64_t b)
{
    int64_t d = a > b ? a - b : b - a;
    return d > INTERVAL_MS / 2 ? INTERVAL_MS - d : d;
}

/* Slots (scheduled_unix_ms) are offset + k * interval on the wall clock: one phase for all of
 * an entry's slots, consecutive slots taken one interval apart; starts follow their slot,
 * late only by the loop's latency. */
static void check_schedule(const struct expect *e, const json_t **v, size_t n)
{
    assert_true(n >= 3);
    int64_t phase0 = e2e_jint(v[0], "scheduled_unix_ms", 0) % INTERVAL_MS;
    size_t one_interval = 0;
    int64_t late_max = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t slot = e2e_jint(v[i], "scheduled_unix_ms", 0);
        int64_t start = e2e_jint(v[i], "time_unix_ms", 0);
        assert_true(slot > 0);
        int64_t dist = phase_distance(slot % INTERVAL_MS, phase0);
        if (dist > SLOT_TOLERANCE_MS)
            fail_msg("%s %s: snapshot %lld's slot is %lld ms off the entry's phase", e->scheme,
                     e->kind, (long long)e2e_jint(v[i], "id", 0), (long long)dist);
        int64_t late = start - slot;
        if (late < -SLOT_TOLERANCE_MS || late > LATE_BOUND_MS + e->min_duration_ms)
            fail_msg("%s %s: snapshot %lld started %lld ms after its slot", e->scheme, e->kind,
                     (long long)e2e_jint(v[i], "id", 0), (long long)late);
        if (late > late_max)
            late_max = late;
        if (i > 0) {
            int64_t gap = slot - e2e_jint(v[i - 1], "scheduled_unix_ms", 0);
            /* Never two starts in one slot. */
            assert_true(gap >= INTERVAL_MS - SLOT_TOLERANCE_MS);
            int64_t slots = (gap + INTERVAL_MS / 2) / INTERVAL_MS;
            if (llabs(gap - slots * INTERVAL_MS) > SLOT_TOLERANCE_MS)
                fail_msg("%s %s: slots %lld ms apart, not a multiple of the interval", e->scheme,
                         e->kind, (long long)gap);
            if (slots == 1)
                one_interval++;
        }
    }
    /* Instant kinds take every slot; CPU profiles and traces may lose one to the process's
     * singleton (a gops heap profile or the other kind's run). */
    size_t gaps = n - 1;
    if (e->min_duration_ms == 0 && one_interval + 1 < gaps)
        fail_msg("%s %s: only %zu of %zu consecutive slots were taken", e->scheme, e->kind,
                 one_interval, gaps);
    if (one_interval == 0)
        fail_msg("%s %s: no two consecutive slots taken", e->scheme, e->kind);
    print_message("%-5s %-15s latest start %lld ms after its slot\n", e->scheme, e->kind,
                  (long long)late_max);
}

static void check_bytes(struct state *s, const struct expect *e, const json_t *snap,
                        const char *version)
{
    int64_t id = e2e_jint(snap, "id", 0);
    uint8_t *data = NULL;
    size_t len = 0;
    e2e_fetch(&s->d, id, &data, &len);
    char hex[E2E_SHA_HEX];
    e2e_sha_hex(data, len, hex);
    const char *want = e2e_jstr(snap, "sha256");
    assert_non_null(want);
    if (strcmp(hex, want) != 0)
        fail_msg("%s %s snapshot %lld: fetched bytes hash to %s, the snapshot says %s", e->scheme,
                 e->kind, (long long)id, hex, want);
    assert_int_equal((int64_t)len, e2e_jint(snap, "size_bytes", -1));
    assert_true(len > 0);
    /* The bytes are what the kind's endpoint sends. */
    if (strcmp(e->format, "pprof") == 0) {
        assert_true(len > 2 && data[0] == 0x1f && data[1] == 0x8b);
    } else if (strcmp(e->format, "trace") == 0) {
        assert_true(len > 16 && memcmp(data, "go 1.", 5) == 0);
    } else if (strcmp(e->format, "goroutine_text") == 0) {
        assert_true(memcmp(data, "goroutine ", 10) == 0);
    } else if (strcmp(e->format, "gops_memstats") == 0) {
        assert_non_null(memmem(data, len, "alloc:", 6));
    } else if (strcmp(e->format, "gops_stats") == 0) {
        assert_non_null(memmem(data, len, "goroutines:", 11));
    } else if (strcmp(e->format, "gops_version") == 0) {
        if (len != strlen(version) || memcmp(data, version, len) != 0)
            fail_msg("gops version snapshot holds '%.*s', a direct 0x04 answers '%s'", (int)len,
                     (const char *)data, version);
    }
    free(data);
}

static void test_every_kind_on_schedule(void **st)
{
    struct state *s = *st;
    const char *list_args[] = {"list", NULL};
    int need = 3;
    json_t *list = cdt_ctl_wait(&s->d, list_args, enough, &need, 60000);
    if (list == NULL) {
        cdt_daemon_print_log(&s->d, 40);
        json_t *last = cdt_ctl_json(&s->d, 10000, list_args);
        char *text = last != NULL ? json_dumps(last, JSON_INDENT(1)) : NULL;
        fail_msg("not every kind was scraped %d times within 60 s; last list: %s", need,
                 text != NULL ? text : "(none)");
    }
    /* Both targets are up and every kind is on its schedule. */
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const json_t *t = e2e_find_target(list, expected[i].scheme, "workload", "mixed");
        assert_string_equal(e2e_jstr(t, "health"), "up");
        const json_t *k = e2e_target_kind(t, expected[i].kind);
        assert_true(json_is_true(json_object_get(k, "scheduled")));
        assert_int_equal(e2e_jint(k, "interval_ms", 0), INTERVAL_MS);
        assert_int_equal(e2e_jint(k, "seconds", -1), expected[i].min_duration_ms > 0 ? 1 : 0);
        assert_string_equal(e2e_jstr(k, "last_status"), "ok");
        assert_true(e2e_jint(k, "last_size_bytes", 0) > 0);
        assert_true(e2e_jint(k, "next_scrape_unix_ms", 0) > s->t0_ms);
    }
    json_decref(list);

    uint8_t *ver = NULL;
    size_t ver_len = 0;
    assert_int_equal(cdt_gops_cmd(s->fleet.targets[0].gops_port, 0x04, &ver, &ver_len, 10000), 0);

    json_t *all = e2e_snapshots(&s->d, NULL, 10);
    int64_t now = wall_ms();
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const struct expect *e = &expected[i];
        const json_t **v = calloc(json_array_size(all) + 1, sizeof(*v));
        assert_non_null(v);
        size_t n = 0;
        size_t j;
        const json_t *snap;
        json_array_foreach(all, j, snap)
        {
            if (strcmp(e2e_jstr(snap, "scheme"), e->scheme) != 0 ||
                strcmp(e2e_jstr(snap, "kind"), e->kind) != 0)
                continue;
            const char *status = e2e_jstr(snap, "status");
            if (strcmp(status, "ok") != 0)
                fail_msg("%s %s snapshot %lld: status %s (%s)", e->scheme, e->kind,
                         (long long)e2e_jint(snap, "id", 0), status,
                         e2e_jstr(snap, "error") != NULL ? e2e_jstr(snap, "error") : "");
            /* Metadata of a scheduled scrape. */
            assert_string_equal(e2e_jstr(snap, "format"), e->format);
            assert_false(json_is_true(json_object_get(snap, "on_demand")));
            assert_true(json_is_null(json_object_get(snap, "parse_error")));
            int64_t t = e2e_jint(snap, "time_unix_ms", 0);
            assert_true(t >= s->t0_ms - 1000 && t <= now);
            int64_t dur = e2e_jint(snap, "duration_ms", -1);
            if (dur < e->min_duration_ms || dur > e->min_duration_ms + 10000)
                fail_msg("%s %s snapshot %lld took %lld ms", e->scheme, e->kind,
                         (long long)e2e_jint(snap, "id", 0), (long long)dur);
            if (strcmp(e->scheme, "http") == 0) {
                assert_int_equal(e2e_jint(snap, "http_status", 0), 200);
                assert_non_null(strstr(e2e_jstr(snap, "request"), "/debug/pprof/"));
            } else {
                assert_true(json_is_null(json_object_get(snap, "http_status")));
                assert_true(strncmp(e2e_jstr(snap, "request"), "gops://", 7) == 0);
            }
            v[n++] = snap;
        }
        qsort(v, n, sizeof(*v), cmp_time);
        check_schedule(e, v, n);
        check_bytes(s, e, v[n - 1], (const char *)ver);
        print_message("%-5s %-15s %zu snapshots on schedule, bytes verified\n", e->scheme, e->kind,
                      n);
        free(v);
    }
    free(ver);
    json_decref(all);

    /* The summaries made it too: a CPU profile of the mixed workload names its burners. */
    const char *show_args[] = {"snapshots", "--kind", "cpu", "-n", "1", NULL};
    json_t *cpu = cdt_ctl_json(&s->d, 10000, show_args);
    assert_non_null(cpu);
    int64_t cpu_id = e2e_jint(json_array_get(json_object_get(cpu, "snapshots"), 0), "id", 0);
    json_decref(cpu);
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)cpu_id);
    const char *top_args[] = {"show", ids, NULL};
    json_t *detail = cdt_ctl_json(&s->d, 10000, top_args);
    assert_non_null(detail);
    char *text = json_dumps(json_object_get(detail, "summary"), 0);
    assert_non_null(text);
    if (strstr(text, "main.burn") == NULL)
        fail_msg("the CPU profile's summary does not name main.burn*: %.400s", text);
    free(text);
    json_decref(detail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_kind_on_schedule, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
