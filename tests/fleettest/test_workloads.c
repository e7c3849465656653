/*
 * The fleet's workloads have the shapes other tests rely on: cpu (main.burnDouble ~2x
 * main.burnSingle, checked with the real `go tool pprof -top`), alloc (main.allocRetain dominates
 * inuse_space), deadlock (N goroutines in sync.(*Mutex).Lock under main.deadlockWaiter, over HTTP
 * and gops), leak (the goroutine count rises), mixed (a bit of everything, mutex profile too).
 */
#include "cdtest.h"
#include "fleet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *fetch(int port, const char *path, int timeout_ms)
{
    int status = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = cdt_http_get(port, path, &status, &body, &len, timeout_ms);
    if (rc != 0)
        fail_msg("GET %s: %s", path, strerror(-rc));
    if (status != 200)
        fail_msg("GET %s: status %d: %s", path, status, (char *)body);
    return (char *)body;
}

/* Fetches a binary profile into dir/name and runs `go tool pprof -top [extra] FILE`. */
static char *pprof_top(int port, const char *path, const char *dir, const char *name,
                       const char *extra, int timeout_ms)
{
    int status = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(cdt_http_get(port, path, &status, &body, &len, timeout_ms), 0);
    assert_int_equal(status, 200);
    char *file = cdt_path(dir, name);
    assert_int_equal(cdt_write_file(file, body, len), 0);
    free(body);
    char *argv[] = {(char *)cdt_env("CD_GO"), "tool", "pprof", "-top", (char *)extra, file, NULL};
    if (extra == NULL) {
        argv[4] = file;
        argv[5] = NULL;
    }
    char *out = NULL;
    int rc = cdt_run(argv, &out, 60000);
    if (rc != 0)
        fail_msg("go tool pprof -top %s: exit %d:\n%s", file, rc, out ? out : "");
    free(file);
    return out;
}

/* A duration or size as `pprof -top` prints it ("1.96s", "990ms", "10us", "44892.95kB"), in the
 * unit's base (seconds, bytes). */
static double top_value(const char *s)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6},    {"µs", 1e-6},        {"ms", 1e-3},
                 {"s", 1},     {"mins", 60},    {"hrs", 3600},       {"B", 1},
                 {"kB", 1024}, {"MB", 1048576}, {"GB", 1073741824.0}};
    char *end = NULL;
    double v = strtod(s, &end);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].unit) == 0)
            return v * units[i].scale;
    if (*end == '\0')
        return v;
    fail_msg("unexpected value '%s' in pprof -top output", s);
    return 0;
}

/* The flat value and flat% of fn in `pprof -top` output (row: flat flat% sum% cum cum% name). */
static bool top_row(const char *out, const char *fn, double *flat, double *flat_pct)
{
    const char *line = out;
    while (line != NULL && *line != '\0') {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char buf[512];
        if (n < sizeof(buf)) {
            memcpy(buf, line, n);
            buf[n] = 0;
            char f[64], fp[64], sp[64], c[64], cp[64], name[256];
            if (sscanf(buf, "%63s %63s %63s %63s %63s %255s", f, fp, sp, c, cp, name) == 6 &&
                strcmp(name, fn) == 0) {
                *flat = top_value(f);
                *flat_pct = strtod(fp, NULL);
                return true;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

/* The ratio is a ratio of sample counts, so its noise depends on how many samples there are, not
 * on time: profiles of 5 s are added up until the two burners hold 5 s of CPU (500 samples at
 * 100 Hz: the ratio's standard deviation is then about 0.2), however loaded the machine is. */
static void test_cpu_ratio(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-workload", "cpu", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    double d = 0, s = 0;
    int64_t deadline = cdt_now_ms() + 60000;
    int rounds = 0;
    while (d + s < 5.0 && cdt_now_ms() < deadline) {
        char *out = pprof_top(f.targets[0].pprof_port, "/debug/pprof/profile?seconds=5", f.dir,
                              "cpu.pb.gz", NULL, 20000);
        double rd = 0, rs = 0, pct = 0;
        if (!top_row(out, "main.burnDouble", &rd, &pct) ||
            !top_row(out, "main.burnSingle", &rs, &pct))
            fail_msg("burners missing from the profile:\n%s", out);
        free(out);
        d += rd;
        s += rs;
        rounds++;
    }
    print_message("burnDouble %.2fs, burnSingle %.2fs, ratio %.2f (%d profiles of 5 s)\n", d, s,
                  d / s, rounds);
    if (d + s < 1.0)
        fail_msg("only %.2fs of CPU samples in 60 s: the machine is too loaded to judge", d + s);
    assert_true(d > s);
    assert_true(d / s >= 1.4 && d / s <= 2.8);
    cdt_fleet_stop(&f);
}

static void test_alloc_heap(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-workload", "alloc", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    char *out = pprof_top(f.targets[0].pprof_port, "/debug/pprof/heap", f.dir, "heap.pb.gz",
                          "-sample_index=inuse_space", 20000);
    double v = 0, pct = 0;
    if (!top_row(out, "main.allocRetain", &v, &pct))
        fail_msg("main.allocRetain missing from the heap profile:\n%s", out);
    print_message("allocRetain in use: %.1f MiB, %.1f%%\n", v / 1048576, pct);
    assert_true(pct > 50);
    assert_true(v > 16.0 * 1048576 && v < 256.0 * 1048576);
    free(out);
    cdt_fleet_stop(&f);
}

/* Goroutine blocks of a debug=2 dump holding both needles. */
static int count_blocks(const char *dump, const char *a, const char *b)
{
    int n = 0;
    const char *p = dump;
    while (p != NULL && *p != '\0') {
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *ha = memmem(p, len, a, strlen(a));
        const char *hb = memmem(p, len, b, strlen(b));
        if (ha != NULL && hb != NULL)
            n++;
        p = end ? end + 2 : NULL;
    }
    return n;
}

static void expect_deadlock(const char *const args[], int want)
{
    struct cdt_fleet f;
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    char *dump = fetch(f.targets[0].pprof_port, "/debug/pprof/goroutine?debug=2", 10000);
    assert_int_equal(count_blocks(dump, "\nsync.(*Mutex).Lock(", "\nmain.deadlockWaiter("), want);
    free(dump);

    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_cmd(f.targets[0].gops_port, 0x01, &out, &len, 10000), 0);
    assert_int_equal(count_blocks((char *)out, "\nsync.(*Mutex).Lock(", "\nmain.deadlockWaiter("),
                     want);
    free(out);
    cdt_fleet_stop(&f);
}

static void test_deadlock(void **st)
{
    (void)st;
    const char *dflt[] = {"-workload", "deadlock", NULL};
    expect_deadlock(dflt, 8);
    const char *five[] = {"-workload", "deadlock", "-deadlock-n", "5", NULL};
    expect_deadlock(five, 5);
}

struct leak_wait {
    int port;
    long first, last;
};

static long goroutine_total(int port)
{
    char *t = fetch(port, "/debug/pprof/goroutine?debug=1", 10000);
    long n = -1;
    if (sscanf(t, "goroutine profile: total %ld\n", &n) != 1)
        fail_msg("no goroutine total in:\n%.200s", t);
    free(t);
    return n;
}

static bool leak_grew(void *ctx)
{
    struct leak_wait *w = ctx;
    w->last = goroutine_total(w->port);
    return w->last >= w->first + 10;
}

static void test_leak(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-workload", "leak", "-leak-rate", "50", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    struct leak_wait w = {.port = f.targets[0].pprof_port};
    w.first = goroutine_total(w.port);
    int64_t t0 = cdt_now_ms();
    assert_int_equal(cdt_wait_until(leak_grew, &w, 10000), 0);
    print_message("goroutines %ld -> %ld in %lld ms\n", w.first, w.last,
                  (long long)(cdt_now_ms() - t0));
    char *t = fetch(w.port, "/debug/pprof/goroutine?debug=1", 10000);
    assert_non_null(strstr(t, "main.leakyWorker+0x"));
    free(t);
    cdt_fleet_stop(&f);
}

static void test_mixed(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-workload", "mixed", NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    int port = f.targets[0].pprof_port;
    char *dump = fetch(port, "/debug/pprof/goroutine?debug=2", 10000);
    assert_int_equal(count_blocks(dump, "\nsync.(*Mutex).Lock(", "\nmain.deadlockWaiter("), 2);
    assert_non_null(strstr(dump, "\nmain.cpuBurner("));
    assert_non_null(strstr(dump, "\nmain.contendLock("));
    free(dump);

    char *heap = pprof_top(port, "/debug/pprof/heap", f.dir, "heap.pb.gz",
                           "-sample_index=inuse_space", 20000);
    assert_non_null(strstr(heap, " main.allocRetain\n"));
    free(heap);
    char *mutex = pprof_top(port, "/debug/pprof/mutex", f.dir, "mutex.pb.gz", NULL, 20000);
    if (strstr(mutex, " main.contendLock\n") == NULL)
        fail_msg("main.contendLock missing from the mutex profile:\n%s", mutex);
    free(mutex);
    char *block = pprof_top(port, "/debug/pprof/block", f.dir, "block.pb.gz", NULL, 20000);
    if (strstr(block, " main.contendLock\n") == NULL)
        fail_msg("main.contendLock missing from the block profile:\n%s", block);
    free(block);
    cdt_fleet_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_ratio), cmocka_unit_test(test_alloc_heap),
        cmocka_unit_test(test_deadlock),  cmocka_unit_test(test_leak),
        cmocka_unit_test(test_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
