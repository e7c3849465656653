/*
 * The fleet's gops agent answers every command byte like the real agent: shapes of the answers,
 * unknown bytes, serial handling, failure leaving the connection open. One fleet of two targets:
 * target 0 (idle) answers the quick commands while target 1 (cpu) runs the 30 s CPU profile in a
 * thread, so the whole program takes about 30 s. A fleet of its own checks the flags that shorten
 * the agent's CPU profile and trace.
 */
#include "cdtest.h"
#include "fleet.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct cpu_run {
    pthread_t thread;
    int port;
    int rc;
    uint8_t *out;
    size_t len;
    int64_t elapsed_ms;
};

struct state {
    struct cdt_fleet fleet;
    int port;     /* gops port of the idle target */
    int cpu_port; /* gops port of the cpu target */
    struct cpu_run cpu;
    bool cpu_started;
};

static void *cpu_profile(void *arg)
{
    struct cpu_run *r = arg;
    int64_t start = cdt_now_ms();
    uint8_t req = 0x06;
    r->rc = cdt_gops_exchange(r->port, &req, 1, CDT_FLEET_MAX_REPLY, &r->out, &r->len, 60000);
    r->elapsed_ms = cdt_now_ms() - start;
    return NULL;
}

static int setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    const char *args[] = {"-n", "2", "-workloads", "idle,cpu", NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 30000), 0);
    assert_int_equal(s->fleet.n, 2);
    s->port = s->fleet.targets[0].gops_port;
    s->cpu_port = s->fleet.targets[1].gops_port;
    assert_true(s->port > 0 && s->cpu_port > 0);
    s->cpu.port = s->cpu_port;
    assert_int_equal(pthread_create(&s->cpu.thread, NULL, cpu_profile, &s->cpu), 0);
    s->cpu_started = true;
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    struct state *s = *st;
    if (s->cpu_started)
        pthread_join(s->cpu.thread, NULL);
    free(s->cpu.out);
    cdt_fleet_stop(&s->fleet);
    free(s);
    return 0;
}

static char *cmd_text(int port, int cmd)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = cdt_gops_cmd(port, cmd, &out, &len, 10000);
    if (rc != 0)
        fail_msg("gops 0x%02x: %s", cmd, strerror(-rc));
    assert_int_equal(strlen((char *)out), len);
    return (char *)out;
}

static void test_stack(void **st)
{
    struct state *s = *st;
    char *t = cmd_text(s->port, 0x01);
    assert_true(strncmp(t, "goroutine ", 10) == 0);
    /* the agent's own goroutine first, the rest after an empty line */
    assert_non_null(strstr(t, "[running]:\n"));
    assert_non_null(strstr(t, "\n\ngoroutine "));
    assert_non_null(strstr(t, "runtime/pprof.writeGoroutineStacks"));
    free(t);
}

static void test_gc(void **st)
{
    struct state *s = *st;
    char *t = cmd_text(s->port, 0x02);
    assert_string_equal(t, "ok");
    free(t);
}

static void test_memstats(void **st)
{
    struct state *s = *st;
    char *t = cmd_text(s->port, 0x03);
    static const char *const keys[] = {
        "alloc",         "total-alloc",   "sys",           "lookups",         "mallocs",
        "frees",         "heap-alloc",    "heap-sys",      "heap-idle",       "heap-in-use",
        "heap-released", "heap-objects",  "stack-in-use",  "stack-sys",       "mspan-in-use",
        "mspan-sys",     "mcache-in-use", "mcache-sys",    "buck-hash-sys",   "other-sys",
        "gc-sys",        "next-gc",       "last-gc",       "gc-pause-total",  "gc-pause",
        "gc-pause-end",  "num-gc",        "num-forced-gc", "gc-cpu-fraction", "enable-gc",
        "debug-gc"};
    /* every line is "key: value", in the agent's order */
    char *save = NULL;
    size_t i = 0;
    for (char *line = strtok_r(t, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        assert_true(i < sizeof(keys) / sizeof(keys[0]));
        size_t k = strlen(keys[i]);
        if (strncmp(line, keys[i], k) != 0 || strncmp(line + k, ": ", 2) != 0)
            fail_msg("memstats line %zu: '%s', want key '%s'", i, line, keys[i]);
        i++;
    }
    assert_int_equal(i, sizeof(keys) / sizeof(keys[0]));
    free(t);

    t = cmd_text(s->port, 0x03);
    assert_true(strncmp(t, "alloc: ", 7) == 0);
    assert_non_null(strstr(t, " bytes)\n")); /* formatBytes above 1 KiB */
    assert_non_null(strstr(t, "\nnext-gc: when heap-alloc >= "));
    assert_non_null(strstr(t, "\nenable-gc: true\n"));
    free(t);
}

static void test_version(void **st)
{
    struct state *s = *st;
    char *t = cmd_text(s->port, 0x04);
    assert_true(strncmp(t, "go1.", 4) == 0);
    assert_true(strlen(t) > 5 && t[strlen(t) - 1] == '\n');
    assert_null(strchr(t, ' '));

    /* the fleet was built by $CD_GO: "go version go1.19.8 linux/amd64" */
    char *argv[] = {(char *)cdt_env("CD_GO"), "version", NULL};
    char *out = NULL;
    assert_int_equal(cdt_run(argv, &out, 30000), 0);
    t[strlen(t) - 1] = 0;
    char want[128];
    snprintf(want, sizeof(want), " %s ", t);
    if (strstr(out, want) == NULL)
        fail_msg("agent says %s, go says %s", t, out);
    free(out);
    free(t);
}

static void test_heap(void **st)
{
    struct state *s = *st;
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_cmd(s->port, 0x05, &out, &len, 10000), 0);
    assert_true(len > 20);
    assert_memory_equal(out, "\x1f\x8b\x08", 3);
    free(out);
}

static void test_stats(void **st)
{
    struct state *s = *st;
    char *t = cmd_text(s->port, 0x07);
    int g = 0, th = 0, mp = 0, ncpu = 0, used = 0;
    int n = sscanf(t, "goroutines: %d\nOS threads: %d\nGOMAXPROCS: %d\nnum CPU: %d\n%n", &g, &th,
                   &mp, &ncpu, &used);
    assert_int_equal(n, 4);
    assert_int_equal((size_t)used, strlen(t));
    assert_true(g > 0 && th > 0 && mp > 0 && ncpu > 0);
    assert_int_equal(ncpu, (int)sysconf(_SC_NPROCESSORS_ONLN));
    free(t);
}

static void test_binary(void **st)
{
    struct state *s = *st;
    uint8_t *out = NULL, *exe = NULL;
    size_t len = 0, exe_len = 0;
    assert_int_equal(cdt_gops_cmd(s->port, 0x09, &out, &len, 30000), 0);
    assert_int_equal(cdt_read_file(cdt_env("CD_FLEET"), &exe, &exe_len), 0);
    assert_memory_equal(out,
                        "\x7f"
                        "ELF",
                        4);
    assert_int_equal(len, exe_len);
    assert_memory_equal(out, exe, len);
    free(out);
    free(exe);
}

static void expect_setgc(int port, int64_t perc, const char *want)
{
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_setgc(port, perc, &out, &len, 10000), 0);
    assert_string_equal((char *)out, want);
    free(out);
}

static void test_setgc(void **st)
{
    struct state *s = *st;
    expect_setgc(s->port, 50, "New GC percent set to 50. Previous value was 100.\n");
    expect_setgc(s->port, -1, "New GC percent set to -1. Previous value was 50.\n");
    /* the gops CLI's form: the varint zero-padded to 10 bytes after the command byte */
    uint8_t req[11] = {0x10, 0xc8, 0x01};
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_exchange(s->port, req, sizeof(req), 4096, &out, &len, 10000), 0);
    assert_string_equal((char *)out, "New GC percent set to 100. Previous value was -1.\n");
    free(out);
}

static void test_unknown(void **st)
{
    struct state *s = *st;
    static const int bytes[] = {0x00, 0x0a, 0x0b, 0x0f, 0x11, 0xff};
    for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
        uint8_t *out = NULL;
        size_t len = 0;
        assert_int_equal(cdt_gops_cmd(s->port, bytes[i], &out, &len, 5000), 0);
        assert_int_equal(len, 0);
        free(out);
    }
}

/* 0x10 without its varint fails in the agent: no reply, no EOF, and the agent goes on. */
static void test_failure_left_open(void **st)
{
    struct state *s = *st;
    uint8_t req = 0x10;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, &req, 1, MSG_NOSIGNAL), 1);
    assert_int_equal(shutdown(fd, SHUT_WR), 0); /* the varint will never come */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 700), 0); /* neither data nor EOF */

    char *t = cmd_text(s->port, 0x04);
    assert_true(strncmp(t, "go1.", 4) == 0);
    free(t);
    close(fd);
}

struct trace_run {
    int fd;
    uint8_t *out;
    size_t len, cap;
    int64_t done_ms;
};

static void *read_trace(void *arg)
{
    struct trace_run *r = arg;
    for (;;) {
        if (r->len == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 65536;
            r->out = realloc(r->out, r->cap);
            if (r->out == NULL)
                break;
        }
        ssize_t n = recv(r->fd, r->out + r->len, r->cap - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->done_ms = cdt_now_ms();
    return NULL;
}

/* A 0x04 sent while a 0x08 trace runs is answered only after the trace's 5 s. */
static void test_trace_serial(void **st)
{
    struct state *s = *st;
    struct trace_run r = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    assert_true(r.fd >= 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int64_t start = cdt_now_ms();
    assert_int_equal(connect(r.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    uint8_t req = 0x08;
    assert_int_equal(send(r.fd, &req, 1, MSG_NOSIGNAL), 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_trace, &r), 0);

    /* connected after the trace's connection, so queued behind it in the accept backlog */
    uint8_t *out = NULL;
    size_t len = 0;
    int rc = cdt_gops_cmd(s->port, 0x04, &out, &len, 20000);
    int64_t version_ms = cdt_now_ms();
    pthread_join(th, NULL);
    close(r.fd);
    assert_int_equal(rc, 0);
    assert_true(strncmp((char *)out, "go1.", 4) == 0);
    free(out);

    print_message("trace: %zu bytes in %lld ms; version answered after %lld ms\n", r.len,
                  (long long)(r.done_ms - start), (long long)(version_ms - start));
    assert_true(r.len > 16);
    assert_memory_equal(r.out, "go 1.", 5);
    assert_non_null(memmem(r.out, 16, " trace\0", 7));
    assert_true(r.done_ms - start >= 4900);
    assert_true(version_ms - start >= 4900); /* queued behind the whole 5 s trace */
    free(r.out);
}

/* Runs last: the thread started by setup has been profiling target 1 for a while. While it does,
 * the target's HTTP CPU profile is busy; at the end, 30 s of gzip profile arrive. */
static void test_cpu_profile(void **st)
{
    struct state *s = *st;
    int status = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(cdt_http_get(s->fleet.targets[1].pprof_port, "/debug/pprof/profile?seconds=1",
                                  &status, &body, &len, 10000),
                     0);
    assert_int_equal(status, 500);
    assert_string_equal((char *)body,
                        "Could not enable CPU profiling: cpu profiling already in use\n");
    free(body);

    pthread_join(s->cpu.thread, NULL);
    s->cpu_started = false;
    print_message("cpu profile: %zu bytes in %lld ms\n", s->cpu.len, (long long)s->cpu.elapsed_ms);
    assert_int_equal(s->cpu.rc, 0);
    assert_true(s->cpu.len > 100);
    assert_memory_equal(s->cpu.out, "\x1f\x8b\x08", 3);
    assert_true(s->cpu.elapsed_ms >= 29500 && s->cpu.elapsed_ms < 45000);
}

/* -gops-cpu-duration / -gops-trace-duration: the same answers, shorter (for the engine's tests). */
static void test_short_durations(void **st)
{
    (void)st;
    struct cdt_fleet f;
    const char *args[] = {"-workload", "cpu", "-gops-cpu-duration", "1s", "-gops-trace-duration",
                          "500ms",     NULL};
    assert_int_equal(cdt_fleet_start(&f, args, 30000), 0);
    int port = f.targets[0].gops_port;
    uint8_t *out = NULL;
    size_t len = 0;
    int64_t t0 = cdt_now_ms();
    assert_int_equal(cdt_gops_cmd(port, 0x06, &out, &len, 20000), 0);
    int64_t cpu_ms = cdt_now_ms() - t0;
    assert_true(len > 100);
    assert_memory_equal(out, "\x1f\x8b\x08", 3);
    free(out);
    t0 = cdt_now_ms();
    assert_int_equal(cdt_gops_cmd(port, 0x08, &out, &len, 20000), 0);
    int64_t trace_ms = cdt_now_ms() - t0;
    assert_true(len > 16);
    assert_memory_equal(out, "go 1.", 5);
    free(out);
    print_message("short: cpu profile in %lld ms, trace in %lld ms\n", (long long)cpu_ms,
                  (long long)trace_ms);
    assert_true(cpu_ms >= 950 && cpu_ms < 10000);
    assert_true(trace_ms >= 450 && trace_ms < 10000);
    cdt_fleet_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stack),        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_memstats),     cmocka_unit_test(test_version),
        cmocka_unit_test(test_heap),         cmocka_unit_test(test_stats),
        cmocka_unit_test(test_binary),       cmocka_unit_test(test_setgc),
        cmocka_unit_test(test_unknown),      cmocka_unit_test(test_failure_left_open),
        cmocka_unit_test(test_trace_serial), cmocka_unit_test(test_cpu_profile),
    };
    const struct CMUnitTest alone[] = {cmocka_unit_test(test_short_durations)};
    int failed = cmocka_run_group_tests(alone, NULL, NULL);
    return failed + cmocka_run_group_tests(tests, setup, teardown);
}
