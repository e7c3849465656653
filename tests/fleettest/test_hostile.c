/*
 * Every hostile mode of the fleet behaves as specified on the pprof routes and on the gops port,
 * with short client deadlines. One launcher runs a target per mode; a second fleet trickles fast
 * (-slow-interval 1ms) so a slow answer can be read to its end and checked whole.
 */
#include "cdtest.h"
#include "fleet.h"

#include <errno.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

struct state {
    struct cdt_fleet fleet;
    struct cdt_fleet fast_slow;
    char version[64]; /* the honest 0x04 answer, from the busy target */
};

static const struct cdt_fleet_target *target(void **st, const char *hostile)
{
    struct state *s = *st;
    for (size_t i = 0; i < s->fleet.n; i++)
        if (strcmp(s->fleet.targets[i].hostile, hostile) == 0)
            return &s->fleet.targets[i];
    fail_msg("no target with hostile mode %s", hostile);
    return NULL;
}

static int setup(void **st)
{
    struct state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    const char *args[] = {"-n", "8", "-hostiles",
                          "slow,garbage,truncated,huge,hang,reset,error,busy", NULL};
    assert_int_equal(cdt_fleet_start(&s->fleet, args, 30000), 0);
    const char *fast[] = {"-hostile", "slow", "-slow-interval", "1ms", NULL};
    assert_int_equal(cdt_fleet_start(&s->fast_slow, fast, 30000), 0);
    *st = s;

    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_cmd(target(st, "busy")->gops_port, 0x04, &out, &len, 10000), 0);
    assert_true(len > 4 && len < sizeof(s->version));
    memcpy(s->version, out, len);
    free(out);
    return 0;
}

static int teardown(void **st)
{
    struct state *s = *st;
    cdt_fleet_stop(&s->fleet);
    cdt_fleet_stop(&s->fast_slow);
    free(s);
    return 0;
}

/* 1 when data is a complete gzip stream, 0 when it is not. */
static int gunzips(const uint8_t *data, size_t len)
{
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    assert_non_null(d);
    size_t cap = 64 * MIB, got = 0;
    void *out = malloc(cap);
    assert_non_null(out);
    enum libdeflate_result r = libdeflate_gzip_decompress(d, data, len, out, cap, &got);
    free(out);
    libdeflate_free_decompressor(d);
    return r == LIBDEFLATE_SUCCESS;
}

static void get(int port, const char *path, int *status, uint8_t **body, size_t *len)
{
    int rc = cdt_http_get(port, path, status, body, len, 10000);
    if (rc != 0)
        fail_msg("GET %s: %s", path, strerror(-rc));
}

/* The index stays normal in every mode, so a scraper's probe still finds the target. */
static void test_index_normal(void **st)
{
    struct state *s = *st;
    for (size_t i = 0; i < s->fleet.n; i++) {
        int status = 0;
        uint8_t *body = NULL;
        size_t len = 0;
        get(s->fleet.targets[i].pprof_port, "/debug/pprof/", &status, &body, &len);
        assert_int_equal(status, 200);
        assert_non_null(strstr((char *)body, "Types of profiles available"));
        free(body);
    }
}

static void test_slow(void **st)
{
    struct state *s = *st;
    const struct cdt_fleet_target *t = target(st, "slow");
    /* 200 and headers at once, then the real gzip body at 1 byte per 200 ms */
    struct cdt_http_probe p;
    assert_int_equal(cdt_http_probe(t->pprof_port, "/debug/pprof/heap", 0, 1000, &p), -ETIMEDOUT);
    print_message("slow http: status %d, %zu of %lld bytes in %lld ms\n", p.status, p.bytes,
                  (long long)p.content_length, (long long)p.elapsed_ms);
    assert_int_equal(p.status, 200);
    assert_true(p.bytes >= 1 && p.bytes <= 8);
    assert_int_equal(p.head[0], 0x1f);
    assert_true(p.content_length > 100);

    /* gops: the honest version string, trickled */
    int64_t t0 = cdt_now_ms();
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_cmd(t->gops_port, 0x04, &out, &len, 10000), 0);
    int64_t ms = cdt_now_ms() - t0;
    print_message("slow gops: %zu bytes in %lld ms\n", len, (long long)ms);
    assert_string_equal((char *)out, s->version);
    assert_true(ms >= (int64_t)(len - 1) * 150);
    free(out);

    /* read to the end (1 ms per byte), the answer is whole and valid */
    int status = 0;
    int port = s->fast_slow.targets[0].pprof_port;
    t0 = cdt_now_ms();
    assert_int_equal(cdt_http_get(port, "/debug/pprof/heap", &status, &out, &len, 30000), 0);
    ms = cdt_now_ms() - t0;
    print_message("slow http at 1ms/byte: %zu bytes in %lld ms\n", len, (long long)ms);
    assert_int_equal(status, 200);
    assert_true(ms >= (int64_t)len / 2);
    assert_true(gunzips(out, len));
    free(out);
}

static void test_garbage(void **st)
{
    const struct cdt_fleet_target *t = target(st, "garbage");
    int status = 0;
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    get(t->pprof_port, "/debug/pprof/heap", &status, &a, &alen);
    assert_int_equal(status, 200);
    get(t->pprof_port, "/debug/pprof/goroutine?debug=2", &status, &b, &blen);
    assert_int_equal(status, 200);
    assert_true(alen >= 1024 && alen <= 65536 && blen >= 1024 && blen <= 65536);
    assert_int_not_equal(a[0], 0x1f);
    assert_false(alen == blen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);

    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_cmd(t->gops_port, 0x04, &out, &len, 10000), 0);
    assert_true(len >= 1024);
    assert_int_not_equal(memcmp(out, "go1.", 4), 0);
    free(out);
}

static void test_truncated(void **st)
{
    struct state *s = *st;
    const struct cdt_fleet_target *t = target(st, "truncated");
    struct cdt_http_probe p;
    assert_int_equal(cdt_http_probe(t->pprof_port, "/debug/pprof/heap", 0, 10000, &p), 0);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.content_length, (int64_t)p.bytes);
    assert_memory_equal(p.head, "\x1f\x8b\x08", 3);

    int status = 0;
    uint8_t *out = NULL;
    size_t len = 0;
    get(t->pprof_port, "/debug/pprof/heap", &status, &out, &len);
    assert_int_equal(status, 200);
    assert_false(gunzips(out, len));
    free(out);

    assert_int_equal(cdt_gops_cmd(t->gops_port, 0x05, &out, &len, 10000), 0);
    assert_memory_equal(out, "\x1f\x8b\x08", 3);
    assert_false(gunzips(out, len));
    free(out);
    assert_int_equal(cdt_gops_cmd(t->gops_port, 0x04, &out, &len, 10000), 0);
    assert_int_equal(len, strlen(s->version) / 2);
    assert_memory_equal(out, s->version, len);
    free(out);
}

static void test_huge(void **st)
{
    const struct cdt_fleet_target *t = target(st, "huge");
    struct cdt_http_probe p;
    assert_int_equal(cdt_http_probe(t->pprof_port, "/debug/pprof/heap", 100 * MIB, 60000, &p), 0);
    print_message("huge http: %zu bytes in %lld ms\n", p.bytes, (long long)p.elapsed_ms);
    assert_int_equal(p.status, 200);
    assert_true(p.stopped);
    assert_true(p.bytes >= 100 * MIB);
    assert_int_equal(p.content_length, -1); /* streamed, no length announced */

    uint8_t req = 0x04, *out = NULL;
    size_t len = 0;
    int64_t t0 = cdt_now_ms();
    assert_int_equal(cdt_gops_exchange(t->gops_port, &req, 1, 100 * MIB, &out, &len, 60000),
                     -EFBIG);
    print_message("huge gops: %zu bytes in %lld ms\n", len, (long long)(cdt_now_ms() - t0));
    assert_int_equal(len, 100 * MIB);
    free(out);
}

static void test_hang(void **st)
{
    const struct cdt_fleet_target *t = target(st, "hang");
    struct cdt_http_probe p;
    assert_int_equal(cdt_http_probe(t->pprof_port, "/debug/pprof/heap", 0, 700, &p), -ETIMEDOUT);
    assert_int_equal(p.status, 0);
    assert_int_equal(p.bytes, 0);

    uint8_t req = 0x04, *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_exchange(t->gops_port, &req, 1, 4096, &out, &len, 700), -ETIMEDOUT);
    assert_int_equal(len, 0);
    free(out);
}

static void test_reset(void **st)
{
    const struct cdt_fleet_target *t = target(st, "reset");
    struct cdt_http_probe p;
    int rc = cdt_http_probe(t->pprof_port, "/debug/pprof/heap", 0, 5000, &p);
    if (rc != -ECONNRESET)
        fail_msg("reset over HTTP: rc %d (%s)", rc, p.error);
    assert_int_equal(p.status, 0);

    uint8_t req = 0x04, *out = NULL;
    size_t len = 0;
    assert_int_equal(cdt_gops_exchange(t->gops_port, &req, 1, 4096, &out, &len, 5000), -ECONNRESET);
    assert_int_equal(len, 0);
    free(out);
}

static void expect_go_error(int port, const char *path, const char *text)
{
    struct cdt_http_probe p;
    assert_int_equal(cdt_http_probe(port, path, 0, 10000, &p), 0);
    assert_int_equal(p.status, 500);
    assert_true(p.x_go_pprof);
    assert_string_equal(p.content_type, "text/plain; charset=utf-8");
    int status = 0;
    uint8_t *body = NULL;
    size_t len = 0;
    get(port, path, &status, &body, &len);
    assert_int_equal(status, 500);
    assert_string_equal((char *)body, text);
    free(body);
}

static void test_error(void **st)
{
    const struct cdt_fleet_target *t = target(st, "error");
    expect_go_error(t->pprof_port, "/debug/pprof/profile?seconds=1",
                    "Could not enable CPU profiling: cpu profiling already in use\n");
    expect_go_error(t->pprof_port, "/debug/pprof/trace?seconds=1",
                    "Could not enable tracing: runtime error: tracing is already enabled\n");
    expect_go_error(t->pprof_port, "/debug/pprof/heap", "failed to collect profile\n");

    /* the real agent's failure: no reply, connection left open; the agent goes on */
    for (int i = 0; i < 2; i++) {
        uint8_t req = 0x04, *out = NULL;
        size_t len = 0;
        assert_int_equal(cdt_gops_exchange(t->gops_port, &req, 1, 4096, &out, &len, 500),
                         -ETIMEDOUT);
        assert_int_equal(len, 0);
        free(out);
    }
}

/* busy is the real runtime, busy: the real handlers' 500s, the agent's 0x06/0x08 never answer,
 * everything else works. */
static void test_busy(void **st)
{
    struct state *s = *st;
    const struct cdt_fleet_target *t = target(st, "busy");
    expect_go_error(t->pprof_port, "/debug/pprof/profile?seconds=1",
                    "Could not enable CPU profiling: cpu profiling already in use\n");
    expect_go_error(t->pprof_port, "/debug/pprof/trace?seconds=1",
                    "Could not enable tracing: runtime error: tracing is already enabled\n");
    int status = 0;
    uint8_t *out = NULL;
    size_t len = 0;
    get(t->pprof_port, "/debug/pprof/heap", &status, &out, &len);
    assert_int_equal(status, 200);
    assert_true(gunzips(out, len));
    free(out);

    static const uint8_t cmds[] = {0x06, 0x08};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cdt_gops_exchange(t->gops_port, &cmds[i], 1, 4096, &out, &len, 1500),
                         -ETIMEDOUT);
        assert_int_equal(len, 0);
        free(out);
    }
    assert_int_equal(cdt_gops_cmd(t->gops_port, 0x04, &out, &len, 10000), 0);
    assert_string_equal((char *)out, s->version);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_normal), cmocka_unit_test(test_slow),
        cmocka_unit_test(test_garbage),      cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_huge),         cmocka_unit_test(test_hang),
        cmocka_unit_test(test_reset),        cmocka_unit_test(test_error),
        cmocka_unit_test(test_busy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
