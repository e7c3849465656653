/*
 * The parsers on what real Go programs send: the test fleet's targets (cpu, alloc, deadlock, leak
 * and mixed workloads) are scraped over loopback — every net/http/pprof profile, the debug=1 and
 * debug=2 texts, the gops agent's stack dump, memstats, stats and version — and each reply is
 * summarized. Profiles are compared with `go tool pprof -top` function by function; the
 * workloads' known shapes must show (the deadlock as one mutex pile-up finding of 8 goroutines
 * in main.deadlockWaiter, the leak as a group of leakyWorker receivers, allocRetain owning the
 * heap, burnDouble outburning burnSingle).
 */
#include "goroutine.h"
#include "gopsfmt.h"
#include "heaptext.h"
#include "pprof.h"

#include "cdtest.h"
#include "fleet.h"
#include "ptest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TARGETS 5

struct fixture {
    struct cdt_fleet fleet;
    char *dir;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    *state = f; /* teardown frees it whatever happens next */
    const char *args[] = {"-n", "5", "-workloads", "cpu,alloc,deadlock,leak,mixed", NULL};
    assert_int_equal(cdt_fleet_start(&f->fleet, args, 60000), 0);
    assert_int_equal(f->fleet.n, N_TARGETS);
    f->dir = cdt_tmpdir("parsers-fleet");
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f == NULL)
        return 0;
    cdt_fleet_stop(&f->fleet);
    if (f->dir != NULL)
        cdt_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static const struct cdt_fleet_target *target(struct fixture *f, const char *workload)
{
    for (size_t i = 0; i < f->fleet.n; i++)
        if (strcmp(f->fleet.targets[i].workload, workload) == 0)
            return &f->fleet.targets[i];
    fail_msg("no %s target", workload);
    return NULL;
}

static void get(const struct cdt_fleet_target *t, const char *path, uint8_t **body, size_t *len)
{
    int status = 0;
    int rc = cdt_http_get(t->pprof_port, path, &status, body, len, 60000);
    if (rc != 0 || status != 200)
        fail_msg("GET %s from %s: rc %d status %d", path, t->workload, rc, status);
}

static void summarize_pprof(const uint8_t *data, size_t len, size_t top_n, struct cd_summary *s)
{
    struct cd_parse_limits lim;
    cd_parse_limits_default(&lim);
    lim.top_n = top_n;
    struct cd_err err;
    cd_summary_init(s);
    cd_err_init(&err);
    if (cd_pprof_summarize(data, len, &lim, s, &err) != 0)
        fail_msg("pprof: %s", cd_err_msg(&err));
}

static void summarize_dump(const uint8_t *data, size_t len, struct cd_summary *s)
{
    struct cd_err err;
    cd_summary_init(s);
    cd_err_init(&err);
    if (cd_goroutine_summarize(data, len, NULL, s, &err) != 0)
        fail_msg("goroutine: %s", cd_err_msg(&err));
}

static json_t *finding(const struct cd_summary *s, const char *kind)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(s->json, "findings"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "kind")), kind) == 0)
            return f;
    }
    return NULL;
}

/* Every profile of every target, against go tool pprof. */
static void test_profiles_match_go_tool_pprof(void **state)
{
    struct fixture *f = *state;
    static const char *const paths[] = {"heap",  "allocs", "goroutine",
                                        "mutex", "block",  "threadcreate"};
    size_t rows = 0, profiles = 0;
    for (size_t t = 0; t < f->fleet.n; t++) {
        const struct cdt_fleet_target *tg = &f->fleet.targets[t];
        bool cpu = strcmp(tg->workload, "cpu") == 0;
        for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]) + cpu; p++) {
            char url[128], file[4096];
            const char *name = p < 6 ? paths[p] : "profile";
            snprintf(url, sizeof(url), "/debug/pprof/%s%s", name, p < 6 ? "" : "?seconds=2");
            snprintf(file, sizeof(file), "%s/%s-%s.pb.gz", f->dir, tg->workload, name);
            uint8_t *body;
            size_t len;
            get(tg, url, &body, &len);
            assert_true(cd_pprof_sniff(body, len));
            assert_int_equal(cdt_write_file(file, body, len), 0);
            struct cd_summary s;
            summarize_pprof(body, len, 1u << 30, &s);
            rows += ptest_pprof_matches(file, file, &s);
            profiles++;
            cd_summary_free(&s);
            free(body);
        }
    }
    print_message("%zu fleet profiles, %zu function rows equal to go tool pprof's\n", profiles,
                  rows);
}

static void test_workload_shapes(void **state)
{
    struct fixture *f = *state;
    uint8_t *body;
    size_t len;
    struct cd_summary s;

    /* cpu: burnDouble runs the loop twice as long as burnSingle */
    get(target(f, "cpu"), "/debug/pprof/profile?seconds=2", &body, &len);
    summarize_pprof(body, len, 50, &s);
    json_t *flat = json_object_get(ptest_sample_type(s.json, "cpu"), "top_flat");
    json_t *single = ptest_table_row(flat, "main.burnSingle");
    json_t *dbl = ptest_table_row(flat, "main.burnDouble");
    assert_non_null(single);
    assert_non_null(dbl);
    assert_true(json_integer_value(json_object_get(dbl, "flat")) >
                json_integer_value(json_object_get(single, "flat")));
    assert_true(ptest_series(&s, "cpu") > 0);
    cd_summary_free(&s);
    free(body);

    /* alloc: allocRetain holds most of the heap */
    get(target(f, "alloc"), "/debug/pprof/heap", &body, &len);
    summarize_pprof(body, len, 50, &s);
    json_t *inuse = ptest_sample_type(s.json, "inuse_space");
    json_t *r = ptest_table_row(json_object_get(inuse, "top_flat"), "main.allocRetain");
    assert_non_null(r);
    assert_true(json_integer_value(json_object_get(r, "flat")) * 2 >
                json_integer_value(json_object_get(inuse, "total_abs")));
    assert_true(ptest_series(&s, "inuse_space") > 32 << 20);
    cd_summary_free(&s);
    free(body);

    /* the same heap as debug=1 text, scaled like the protobuf */
    get(target(f, "alloc"), "/debug/pprof/heap?debug=1", &body, &len);
    assert_true(cd_heaptext_sniff(body, len));
    struct cd_err err;
    cd_summary_init(&s);
    cd_err_init(&err);
    assert_int_equal(cd_heaptext_summarize(body, len, NULL, &s, &err), 0);
    assert_true(ptest_series(&s, "inuse_space") > 32 << 20);
    assert_true(ptest_series(&s, "heap_alloc") > 32 << 20);
    json_t *f0 = json_array_get(
        json_object_get(json_array_get(json_object_get(s.json, "top_records"), 0), "frames"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "function")), "main.allocRetain");
    cd_summary_free(&s);
    free(body);

    /* mixed: two goroutines contend on one mutex */
    get(target(f, "mixed"), "/debug/pprof/mutex", &body, &len);
    summarize_pprof(body, len, 50, &s);
    json_t *cont = ptest_sample_type(s.json, "contentions");
    assert_non_null(ptest_table_row(json_object_get(cont, "top_cum"), "main.contendLock"));
    cd_summary_free(&s);
    free(body);
}

static void check_deadlock(const struct cd_summary *s)
{
    json_t *p = finding(s, "mutex_pileup");
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "count")), 8);
    assert_string_equal(json_string_value(json_object_get(p, "blocked_in")), "main.deadlockWaiter");
    assert_string_equal(json_string_value(json_object_get(p, "lock")), "sync.(*Mutex).Lock");
}

static void test_deadlock(void **state)
{
    struct fixture *f = *state;
    const struct cdt_fleet_target *t = target(f, "deadlock");
    uint8_t *body;
    size_t len;
    struct cd_summary s;
    /* debug=2 over HTTP and the gops stack dump: the same text */
    get(t, "/debug/pprof/goroutine?debug=2", &body, &len);
    assert_true(cd_goroutine_sniff(body, len));
    summarize_dump(body, len, &s);
    check_deadlock(&s);
    assert_true(ptest_series(&s, "blocked") >= 8);
    cd_summary_free(&s);
    free(body);
    assert_int_equal(cdt_gops_cmd(t->gops_port, CD_GOPS_STACK, &body, &len, 20000), 0);
    summarize_dump(body, len, &s);
    check_deadlock(&s);
    cd_summary_free(&s);
    free(body);
    /* debug=1: no states, the frames tell */
    get(t, "/debug/pprof/goroutine?debug=1", &body, &len);
    summarize_dump(body, len, &s);
    assert_string_equal(json_string_value(json_object_get(s.json, "variant")), "debug1");
    check_deadlock(&s);
    cd_summary_free(&s);
    free(body);
    /* and the protobuf goroutine profile counts them */
    get(t, "/debug/pprof/goroutine", &body, &len);
    summarize_pprof(body, len, 50, &s);
    assert_true(ptest_series(&s, "count") >= 9);
    cd_summary_free(&s);
    free(body);
}

struct leak_wait {
    int port;
    double count;
};

static bool leaked_enough(void *ctx)
{
    struct leak_wait *w = ctx;
    uint8_t *body;
    size_t len;
    int status;
    if (cdt_http_get(w->port, "/debug/pprof/goroutine?debug=1", &status, &body, &len, 10000) != 0)
        return false;
    struct cd_summary s;
    struct cd_err err;
    cd_summary_init(&s);
    cd_err_init(&err);
    bool ok = cd_goroutine_summarize(body, len, NULL, &s, &err) == 0;
    if (ok)
        w->count = ptest_series(&s, "count");
    cd_summary_free(&s);
    free(body);
    return ok && w->count >= 30;
}

static void test_leak(void **state)
{
    struct fixture *f = *state;
    const struct cdt_fleet_target *t = target(f, "leak");
    struct leak_wait w = {t->pprof_port, 0};
    assert_int_equal(cdt_wait_until(leaked_enough, &w, 20000), 0);
    uint8_t *body;
    size_t len;
    struct cd_summary s;
    get(t, "/debug/pprof/goroutine?debug=2", &body, &len);
    summarize_dump(body, len, &s);
    json_t *g0 = json_array_get(json_object_get(s.json, "groups"), 0);
    assert_true(json_integer_value(json_object_get(g0, "count")) >= 20);
    json_t *st = json_array_get(json_object_get(g0, "states"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "state")), "chan receive");
    bool in_worker = false;
    size_t i;
    json_t *fr;
    json_array_foreach(json_object_get(g0, "frames"), i, fr)
    {
        in_worker |=
            strcmp(json_string_value(json_object_get(fr, "function")), "main.leakyWorker") == 0;
    }
    assert_true(in_worker);
    /* parked for less than a minute: no leak finding yet (CD_GOROUTINE_LEAK_MINUTES) */
    assert_null(finding(&s, "goroutine_leak"));
    cd_summary_free(&s);
    free(body);
}

static void test_gops_text(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < f->fleet.n; i++) {
        int port = f->fleet.targets[i].gops_port;
        static const struct {
            int cmd;
            enum cd_format fmt;
            const char *series;
        } cmds[] = {{CD_GOPS_MEMSTATS, CD_FORMAT_GOPS_MEMSTATS, "heap_alloc"},
                    {CD_GOPS_STATS, CD_FORMAT_GOPS_STATS, "goroutines"},
                    {CD_GOPS_VERSION, CD_FORMAT_GOPS_VERSION, "go_minor"}};
        for (size_t c = 0; c < 3; c++) {
            uint8_t *body;
            size_t len;
            assert_int_equal(cdt_gops_cmd(port, cmds[c].cmd, &body, &len, 20000), 0);
            assert_int_equal(cd_gopsfmt_sniff(body, len), cmds[c].fmt);
            struct cd_summary s;
            struct cd_err err;
            cd_summary_init(&s);
            cd_err_init(&err);
            if (cd_gopsfmt_summarize(CD_FORMAT_UNKNOWN, body, len, NULL, &s, &err) != 0)
                fail_msg("gops %d: %s", cmds[c].cmd, cd_err_msg(&err));
            assert_true(ptest_series(&s, cmds[c].series) > 0);
            if (cmds[c].cmd == CD_GOPS_MEMSTATS) {
                assert_int_equal(json_array_size(json_object_get(s.json, "unknown_keys")), 0);
                assert_int_equal(json_integer_value(json_object_get(s.json, "unparsed_lines")), 0);
            }
            if (cmds[c].cmd == CD_GOPS_VERSION)
                assert_true(ptest_series(&s, "go_minor") >= 19);
            cd_summary_free(&s);
            free(body);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_match_go_tool_pprof),
        cmocka_unit_test(test_workload_shapes),
        cmocka_unit_test(test_deadlock),
        cmocka_unit_test(test_leak),
        cmocka_unit_test(test_gops_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
